"""The end-to-end funnel's read model: each lead's outcome (``Lead.chain_*``, ``voronka/deals/outcome.py``) and its
``chain…`` rows in the daily totals, kept exact by every write that can change them; the report reads the rows, the
columns, or follows the chains, with the same figures."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from django.utils import translation

from voronka.analytics import readmodel, reports
from voronka.deals import outcome
from voronka.pipelines import daily
from voronka.pipelines.models import DailyTotal, DailyTotalState

from .company import build

pytestmark = pytest.mark.django_db
JAN_FEB = {"date_from": "2026-01-01", "date_to": "2026-02-28"}
KEYS = ("leads", "converted", "lead_open", "lead_lost", "deal_open", "deal_lost", "in_complaints", "won",
        "delivered", "downstream_failed", "won_total", "downstream", "revenue", "cost")


@pytest.fixture
def co(monkeypatch):
    with translation.override("en"):
        yield build(monkeypatch)


def three_ways(actor, **q) -> list:
    """The report's (rows, totals) from the daily rows, from the columns and from the chains followed."""
    data = {**JAN_FEB, **{k: str(v) for k, v in q.items()}}

    def figures(r):
        return ([{k: row.get(k) for k in ("key", *KEYS)} for row in r.rows], {k: r.totals.get(k) for k in KEYS})

    out = [figures(reports.run(actor, "end-to-end", data))]
    readmodel.ENABLED = False
    try:
        out.append(figures(reports.run(actor, "end-to-end", data)))
        marker = DailyTotalState.objects.get(entity_type_id=1, pipeline_id=daily.CHAIN)
        marker.delete()  # the columns never built (a bulk load): the chains are followed
        try:
            out.append(figures(reports.run(actor, "end-to-end", data)))
        finally:
            marker.save()
    finally:
        readmodel.ENABLED = True
    return out


def test_the_hand_computed_figures_from_the_rows_the_columns_and_the_chains(co):
    from voronka.leads.models import Lead

    # L1 won and delivered (P1 shipped), L3 won with a rejected complaint (C3, by the robot's entry), L2 lost as a
    # lead, L4 still a lead; revenue once: D1 + D3, never P1 or C3
    stored = {name: outcome.stored(Lead.objects.get(pk=co.leads[name].pk)) for name in ("L1", "L2", "L3", "L4")}
    assert stored["L1"] == outcome.Outcome(outcome.DELIVERED, Decimal("100000.00"), 1, Decimal("30000.00"),
                                           co.pipelines["sales"].pk, co.deals["D1"].pk)
    assert stored["L3"] == outcome.Outcome(outcome.FAILED, Decimal("50000.00"), 1, Decimal("5000.00"),
                                           co.pipelines["sales"].pk, co.deals["D3"].pk)
    assert stored["L2"] == stored["L4"] == outcome.NOTHING
    for who in ("admin", "head", "m1", "own"):
        ways = three_ways(co.actors[who], group="none")
        assert ways[0] == ways[1] == ways[2], who
    t = three_ways(co.actors["admin"], group="none")[0][1]
    assert (t["leads"], t["converted"], t["lead_open"], t["lead_lost"], t["delivered"], t["downstream_failed"],
            t["won_total"]) == (4, 2, 1, 1, 1, 1, 2)
    assert (t["revenue"], t["cost"], t["downstream"]) == (Decimal("150000.00"), Decimal("35000.00"), 2)
    # m1 reads the sales department's deals, not m3's production: D1 and D3 are his to count, so the figures hold
    m1 = three_ways(co.actors["m1"], group="none")[0][1]
    assert (m1["revenue"], m1["cost"]) == (Decimal("150000.00"), Decimal("35000.00"))
    # by month (Moscow): L1 in January, L2 L3 L4 in February
    rows = {r["key"]: r for r in three_ways(co.actors["admin"], group="month")[0][0]}
    assert [(r["leads"], r["delivered"], r["downstream_failed"], r["lead_lost"]) for _k, r in sorted(rows.items())] \
        == [(1, 1, 0, 0), (3, 0, 1, 1)]


def chain_snapshot() -> dict:
    return {(r.kind, r.grain, r.day, r.pipeline_id, r.stage_id, r.responsible_id, r.is_open, r.source):
            (r.count, r.amount) for r in DailyTotal.objects.filter(entity_type_id=1, kind__startswith="chain")
            if r.count or r.amount}


def expected_rows() -> dict:
    """The ``chain…`` rows every live lead should have, from its outcome computed afresh."""
    from voronka.leads.models import Lead

    fresh = outcome.outcomes(None)
    out: dict = defaultdict(lambda: [0, Decimal(0)])
    for lead in Lead.objects.filter(deleted_at__isnull=True):
        o = fresh.get(lead.pk, outcome.NOTHING)
        for key, n, amount in daily.chain_rows(1, daily.state_of(lead), (o.code, o.revenue, o.items, o.cost,
                                                                         o.pipeline)):
            out[key[1:]][0] += n
            out[key[1:]][1] += amount
    return {k: tuple(v) for k, v in out.items() if v[0] or v[1]}


def check_exact(label) -> None:
    from voronka.leads.models import Lead

    fresh = outcome.outcomes(None)
    for lead in Lead.objects.all():
        assert outcome.stored(lead) == fresh.get(lead.pk, outcome.NOTHING), (label, lead.title)
    assert chain_snapshot() == expected_rows(), label


def test_every_write_keeps_the_columns_and_the_rows_exact(co):
    from voronka.deals.actions import create_deal, delete_deal, move_deal, restore_deal, update_deal
    from voronka.intake.duplicates import merge_records
    from voronka.leads.models import Lead
    from voronka.links.actions import link, unlink

    a, s, p = co.actors["admin"], co.stages, co.pipelines
    d8, l4 = co.deals["D8"], co.leads["L4"]
    check_exact("fixture")
    items: dict = {}

    def item():
        items["p"] = create_deal(a, title="P8", pipeline=p["production"].pk, responsible=co.users["m3"].pk,
                                 opportunity=7000)

    def make_link():
        items["link"] = link(a, (2, d8.pk), (2, items["p"].pk), role="production")

    steps = [
        ("re-pointed to a lead", lambda: update_deal(a, d8.pk, lead=l4.pk)),
        ("won", lambda: move_deal(a, d8.pk, stage=s["sales.won"].pk)),
        ("amount", lambda: update_deal(a, d8.pk, opportunity="71500.50")),
        ("re-opened", lambda: move_deal(a, d8.pk, stage=s["sales.invoice"].pk)),
        ("won again", lambda: move_deal(a, d8.pk, stage=s["sales.won"].pk)),
        ("an item made", item),
        ("linked", make_link),
        ("item shipped", lambda: move_deal(a, items["p"].pk, stage=s["production.shipped"].pk)),
        ("item amount", lambda: update_deal(a, items["p"].pk, opportunity="9000")),
        ("item failed", lambda: move_deal(a, items["p"].pk, stage=s["production.failed"].pk)),
        ("item deleted", lambda: delete_deal(a, items["p"].pk)),
        ("item restored", lambda: restore_deal(a, items["p"].pk)),
        ("unlinked", lambda: unlink(a, items["link"].pk)),
        ("deleted", lambda: delete_deal(a, d8.pk)),
        ("restored", lambda: restore_deal(a, d8.pk)),
        ("lost", lambda: move_deal(a, d8.pk, stage=s["sales.lost"].pk)),
        ("merged", lambda: merge_records(a, 1, l4.pk, [co.leads["L1"].pk])),  # D1 (and P1) join L4: D1 sells
        ("re-pointed away", lambda: update_deal(a, co.deals["D1"].pk, lead=co.leads["L7"].pk)),
        ("another pipeline", lambda: move_deal(a, co.deals["D1"].pk, stage=s["complaints.new"].pk,
                                               pipeline=p["complaints"].pk)),
    ]
    expected = {"re-pointed to a lead": outcome.OPEN, "won": outcome.WON, "re-opened": outcome.OPEN,
                "item shipped": outcome.DELIVERED, "item failed": outcome.FAILED, "item deleted": outcome.WON,
                "item restored": outcome.FAILED, "unlinked": outcome.WON, "deleted": outcome.NONE,
                "restored": outcome.WON, "lost": outcome.LOST, "merged": outcome.DELIVERED}
    for label, step in steps:
        step()
        check_exact(label)
        if label in expected:
            assert outcome.stored(Lead.objects.get(pk=l4.pk)).code == expected[label], label
        ways = three_ways(a, group="month")
        assert ways[0] == ways[1] == ways[2], label
    assert outcome.stored(Lead.objects.get(pk=co.leads["L7"].pk)).pipeline == p["complaints"].pk


def test_the_rebuild_gives_the_rows_and_columns_the_writes_kept(co):
    from voronka.leads.models import Lead

    kept = chain_snapshot()
    columns = {pk: outcome.stored(lead) for pk, lead in ((x.pk, x) for x in Lead.objects.all())}
    assert kept
    Lead.objects.update(chain_outcome=0, chain_revenue=0, chain_items=0, chain_cost=0, chain_pipeline=0,
                        chain_deal=0)  # as a bulk load leaves them
    DailyTotalState.objects.filter(entity_type_id=1, pipeline_id=daily.CHAIN).delete()
    assert not daily.chain_complete()
    daily.rebuild(1, Lead)
    assert chain_snapshot() == kept
    assert {x.pk: outcome.stored(x) for x in Lead.objects.all()} == columns
    assert DailyTotalState.objects.filter(entity_type_id=1, pipeline_id=daily.CHAIN).exists()


def test_the_columns_are_neither_written_nor_shown_by_the_api_and_forms():
    from voronka.api import schemas
    from voronka.leads.actions import LEAD
    from voronka.leads.models import Lead

    shown = {f.name for f in schemas.output_fields(LEAD)}
    for name in outcome.FIELDS:
        assert name not in shown and name not in LEAD.writable
        assert not Lead._meta.get_field(name).editable


def test_a_merge_of_deals_keeps_the_leads_outcomes_exact(co):
    """Merging deals moves their links (and so their items) onto the kept deal without the deals' own hooks: the
    leads on both sides of the merge and the leads of the deals the merged ones were made from are recomputed."""
    from voronka.deals.actions import create_deal, move_deal
    from voronka.intake.duplicates import merge_records
    from voronka.leads.models import Lead
    from voronka.links.actions import link

    a, s, p = co.actors["admin"], co.stages, co.pipelines
    l2, l4 = co.leads["L2"], co.leads["L4"]
    kept = create_deal(a, title="Kept", pipeline=p["sales"].pk, lead=l4.pk, opportunity=1000)
    other = create_deal(a, title="Other", pipeline=p["sales"].pk, lead=l2.pk, opportunity=2000)
    move_deal(a, kept.pk, stage=s["sales.won"].pk)
    item = create_deal(a, title="Item", pipeline=p["production"].pk, responsible=co.users["m3"].pk, opportunity=300)
    link(a, (2, other.pk), (2, item.pk), role="production")
    move_deal(a, item.pk, stage=s["production.shipped"].pk)
    check_exact("before the merge")
    assert outcome.stored(Lead.objects.get(pk=l4.pk)).items == 0
    merge_records(a, 2, kept.pk, [other.pk])
    check_exact("deals merged")
    after = outcome.stored(Lead.objects.get(pk=l4.pk))
    assert (after.code, after.items, after.cost) == (outcome.DELIVERED, 1, Decimal("300.00"))
    assert outcome.stored(Lead.objects.get(pk=l2.pk)) == outcome.NOTHING


@pytest.mark.django_db(transaction=True)
def test_the_outcome_is_kept_by_a_write_outside_a_transaction():
    """A «linked» entry written outside any transaction (a script, a test helper) still locks the lead in one of
    its own: PostgreSQL refuses ``SELECT … FOR UPDATE`` in autocommit."""
    from voronka.core import history
    from voronka.core.actor import Actor
    from voronka.deals.actions import create_deal
    from voronka.leads import demo
    from voronka.leads.actions import create_lead
    from voronka.leads.models import Lead
    from voronka.pipelines.actions import create_pipeline

    system = Actor.system("test")
    for spec in demo.pipeline_specs():  # the demo's lead and sales pipelines, without their required fields
        if spec.get("is_default") and spec["entity_type_id"] in (1, 2):
            create_pipeline(system, **{**spec, "stages": [{**st, "required_fields": []} for st in spec["stages"]]})
    lead = create_lead(system, title="Chain")
    deal = create_deal(system, title="Sale", lead=lead.pk, opportunity=500)
    item = create_deal(system, title="Item", opportunity=70)
    history.entry(system, 2, deal.pk, "linked", text="Item", data={"entity_type_id": 2, "entity_id": item.pk},
                  also=[(2, item.pk)])
    stored = outcome.stored(Lead.objects.get(pk=lead.pk))
    assert (stored.code, stored.items, stored.cost) == (outcome.OPEN, 1, Decimal("70.00"))


def test_a_viewer_of_the_lead_but_not_of_its_deals_gets_no_money_from_them(co):
    """«own» reads only his own records: given L1, he counts its outcome (won and delivered) but neither the revenue
    of D1 (m1's) nor the cost of P1 (m3's); from the rows, the columns and the chains alike."""
    from voronka.leads.actions import update_lead

    update_lead(co.actors["admin"], co.leads["L1"].pk, responsible=co.users["own"].pk)
    ways = three_ways(co.actors["own"], group="none")
    assert ways[0] == ways[1] == ways[2]
    t = ways[0][1]
    assert (t["leads"], t["converted"], t["delivered"], t["won_total"], t["downstream"]) == (1, 1, 1, 1, 1)
    assert (t["revenue"], t["cost"]) == (Decimal("0.00"), Decimal("0.00"))
    m1 = three_ways(co.actors["m1"], group="none")
    assert m1[0] == m1[1] == m1[2]
    # «own» is in m1's department, so m1 still reads L1: every figure as before
    assert (m1[0][1]["leads"], m1[0][1]["revenue"], m1[0][1]["cost"]) == (4, Decimal("150000.00"),
                                                                          Decimal("35000.00"))
