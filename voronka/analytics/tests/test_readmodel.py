"""The daily read model (``pipelines.DailyTotal``): kept right by every write, equal to a rebuild, read only when
it gives the exact figures (``test_reports.py`` runs every report through both paths on the fixture company)."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import translation

from voronka.analytics import readmodel, reports
from voronka.pipelines import daily
from voronka.pipelines.models import DailyTotal, DailyTotalState

from .company import at, build

pytestmark = pytest.mark.django_db

JAN_FEB = {"date_from": "2026-01-01", "date_to": "2026-02-28"}
COVERED = ("new-leads", "deals", "funnel", "lost-reasons", "lead-conversion", "deal-amount")


@pytest.fixture
def co(monkeypatch):
    with translation.override("en"):
        yield build(monkeypatch)


def snapshot() -> dict:
    """The read model's non-empty rows, as {key: (count, amount)}."""
    return {(r.entity_type_id, r.kind, r.grain, r.day, r.pipeline_id, r.stage_id, r.responsible_id, r.is_open, r.source):
            (r.count, r.amount) for r in DailyTotal.objects.all() if r.count or r.amount}


def rebuilt() -> dict:
    """What a rebuild gives (and leaves in the table)."""
    from voronka.deals.models import Deal
    from voronka.leads.models import Lead

    daily.rebuild(1, Lead)
    daily.rebuild(2, Deal)
    return snapshot()


def both(actor, slug, **q) -> tuple:
    """The report through the read model and through the exact path: (model report, exact report)."""
    data = {**JAN_FEB, **{k: str(v) for k, v in q.items()}}
    with_model = reports.run(actor, slug, data)
    readmodel.ENABLED = False
    try:
        exact = reports.run(actor, slug, data)
    finally:
        readmodel.ENABLED = True
    return with_model, exact


def same(a, b) -> bool:
    strip = ("read_model",)
    return (a.rows == b.rows and a.totals == b.totals
            and {k: v for k, v in a.details.items() if k not in strip} == {k: v for k, v in b.details.items()
                                                                         if k not in strip})


def test_incremental_equals_rebuild_after_the_fixture_company(co):
    # moves back and forth, a lost and re-opened deal, a merge, a delete, conversions, month borders
    incremental = snapshot()
    assert incremental and incremental == rebuilt()
    assert rebuilt() == incremental  # idempotent
    leads_created = sum(c for k, (c, _a) in incremental.items() if k[0] == 1 and k[1] == "created" and k[2] == "d")
    assert leads_created == 5  # L1 L2 L3 L4 L7: L5 merged and L6 deleted do not count
    # each day's rows add up to their month's
    months: dict = {}
    for k, (c, a) in incremental.items():
        if k[2] == "d":
            slot = months.setdefault((*k[:2], k[3].replace(day=1), *k[4:]), [0, 0])
            slot[0], slot[1] = slot[0] + c, slot[1] + a
    assert {k: tuple(v) for k, v in months.items() if v[0] or v[1]} == \
        {(*k[:2], *k[3:]): v for k, v in incremental.items() if k[2] == "m"}


def test_the_covered_reports_read_the_model_and_agree(co):
    for who in ("admin", "head", "m1", "own"):
        for slug in COVERED:
            for q in ({}, {"group": "day", "date_from": "2026-01-31", "date_to": "2026-02-02"}, {"group": "user"},
                      {"group": "source"}, {"group": "department"}, {"group": "pipeline"}, {"group": "week"},
                      {"responsible": co.users["m2"].pk}, {"source": "site"},
                      {"department": co.users["m1"].department_id}, {"pipeline": co.pipelines["sales"].pk},
                      {"date_from": "2026-01-15", "date_to": "2026-03-10"},  # whole February, days around it
                      {"date_from": "2026-01-15", "date_to": "2026-02-20", "group": "quarter"},  # no whole month
                      {"date_from": "2026-01-31", "date_to": "2026-02-28", "group": "none"},
                      {"date_from": "2025-12-01", "date_to": "2026-03-31", "group": "year"}):
                if slug == "funnel" and "pipeline" in q:
                    continue
                model, exact = both(co.actors[who], slug, **q)
                assert model.details["read_model"] and not exact.details["read_model"], (who, slug, q)
                assert same(model, exact), (who, slug, q)
        model, exact = both(co.actors[who], "funnel", entity="lead")
        assert model.details["read_model"] and same(model, exact)


def test_what_the_model_cannot_answer_is_counted(co):
    a = co.actors["admin"]
    assert not reports.run(a, "lost-reasons", {**JAN_FEB, "reason_field": "uf_reason"}).details["read_model"]
    assert not reports.run(a, "deals", {**JAN_FEB, "cf_uf_reason": "Дорого"}).details["read_model"]
    co.users["head"].time_zone = "UTC"  # another zone than the installation's: its days are not the rows' days
    co.users["head"].save()
    r = reports.run(co.actors["head"], "new-leads", JAN_FEB)
    assert not r.details["read_model"] and r.totals["leads"] == 5
    DailyTotalState.objects.filter(pipeline_id=0).delete()  # never built (a bulk load before analytics-rebuild)
    assert not reports.run(a, "new-leads", JAN_FEB).details["read_model"]


def test_a_viewer_who_sees_part_gets_exact_figures_observers_too(co, monkeypatch):
    from voronka.core.recordkit import set_observers
    from voronka.deals.actions import DEAL as DEAL_SPEC
    from voronka.deals.actions import update_deal

    own = co.actors["own"]
    update_deal(co.actors["admin"], co.deals["D8"].pk, responsible=co.users["own"].pk)
    model, exact = both(own, "deals", group="none")
    assert model.details["read_model"] and same(model, exact)
    assert (model.totals["deals"], model.totals["amount"]) == (1, Decimal("70000.00"))  # D8 only
    m1 = co.actors["m1"]  # department rights: D1, D8 … of the sales department, not the production item
    model, exact = both(m1, "deals", group="pipeline")
    assert model.details["read_model"] and same(model, exact)
    # «own» observes D2 (m2's): he may read it, the rows under his rights do not hold it, its own rows are added
    set_observers(co.actors["admin"], DEAL_SPEC, co.deals["D2"].pk, [co.users["own"].pk])
    model, exact = both(own, "deals", group="none")
    assert model.details["read_model"] and same(model, exact)
    assert model.totals["deals"] == 2
    # m1 observes D2 too, but reads it anyway (his department's): the rows answer, the same figures
    set_observers(co.actors["admin"], DEAL_SPEC, co.deals["D2"].pk, [co.users["own"].pk, co.users["m1"].pk])
    for slug in ("deals", "time-to-close", "funnel"):
        model, exact = both(m1, slug, group="none")
        assert model.details["read_model"] and same(model, exact), slug
    # … and when he observes the production item P1 (not his department's), its own rows are added
    set_observers(co.actors["admin"], DEAL_SPEC, co.deals["P1"].pk, [co.users["m1"].pk])
    model, exact = both(m1, "deals", group="pipeline")
    assert model.details["read_model"] and same(model, exact)
    assert "Производство" in {r["label"] for r in model.rows}
    # beyond MAX_OBSERVED such records the records are counted
    monkeypatch.setattr(readmodel, "MAX_OBSERVED", 0)
    model, exact = both(m1, "deals", group="pipeline")
    assert not model.details["read_model"] and same(model, exact)
    # and nobody without rights sees a thing
    from voronka.identity.models import User

    nobody = User.objects.create_user("nobody", "n@example.ru", "nobody-pass", time_zone="Europe/Moscow")
    from voronka.core.actor import Actor

    for slug in COVERED:
        r = reports.run(Actor.for_user(nobody, "test"), slug, JAN_FEB)
        assert r.details["read_model"]
        assert not any(row.get("reached") or row.get("leads") or row.get("deals") or row.get("count")
                       for row in r.rows), slug


def stay_snapshot() -> dict:
    from voronka.pipelines.models import StayTotal

    return {(r.entity_type_id, r.kind, r.grain, r.day, r.pipeline_id, r.stage_id, r.responsible_id, r.is_open,
             r.source, r.bucket): (r.count, r.seconds) for r in StayTotal.objects.all() if r.count or r.seconds}


def stays_rebuilt() -> dict:
    from voronka.deals.models import Deal
    from voronka.leads.models import Lead
    from voronka.pipelines import stays

    stays.rebuild(1, Lead)
    stays.rebuild(2, Deal)
    return stay_snapshot()


DURATIONS = ("stage-time", "time-to-close")


def test_durations_incremental_equals_rebuild_and_reports_agree_with_the_exact_path(co):
    incremental = stay_snapshot()
    assert incremental and incremental == stays_rebuilt()
    # L3: assigned → qualified → assigned → qualified: two stays in «assigned» (50 min, 23 h); D3 lost and re-opened
    # (its stay in «lost» 1 day counts for the lost stage, not shown: final stages have no row)
    for who in ("admin", "head", "m1", "own"):
        for slug in DURATIONS:
            for q in ({}, {"group": "user"}, {"group": "source"}, {"group": "department"}, {"group": "pipeline"},
                      {"group": "week"}, {"group": "day", "date_from": "2026-01-31", "date_to": "2026-02-02"},
                      {"responsible": co.users["m2"].pk}, {"source": "site"},
                      {"department": co.users["m1"].department_id},
                      {"date_from": "2026-01-15", "date_to": "2026-03-10"},
                      {"date_from": "2025-12-01", "date_to": "2026-03-31", "group": "year"}):
                for entity in ("lead", "deal"):
                    model, exact = both(co.actors[who], slug, entity=entity, **q)
                    assert model.details["read_model"] and not exact.details["read_model"], (who, slug, q)
                    assert same(model, exact), (who, slug, entity, q)


def test_the_durations_model_is_read_only_when_built(co):
    from voronka.pipelines import stays
    from voronka.pipelines.models import DailyTotalState

    a = co.actors["admin"]
    DailyTotalState.objects.filter(pipeline_id=stays.COMPLETE, entity_type_id=2).delete()
    model, exact = both(a, "time-to-close")
    assert not model.details["read_model"] and same(model, exact)
    assert both(a, "new-leads")[0].details["read_model"]  # the daily totals are still built
    call_command("analytics-rebuild", stdout=StringIO())
    assert both(a, "time-to-close")[0].details["read_model"]
    # a database built before the amount histograms: the durations are there, the amounts are counted
    DailyTotalState.objects.filter(pipeline_id=stays.AMOUNTS, entity_type_id=2).delete()
    model, exact = both(a, "deal-amount")
    assert not model.details["read_model"] and same(model, exact) and model.totals["won"]
    assert both(a, "time-to-close")[0].details["read_model"]
    call_command("analytics-rebuild", stdout=StringIO())
    model, exact = both(a, "deal-amount")
    assert model.details["read_model"] and same(model, exact)


def test_durations_respect_rights(co):
    from voronka.core.actor import Actor
    from voronka.core.recordkit import set_observers
    from voronka.deals.actions import DEAL as DEAL_SPEC
    from voronka.identity.models import User

    own = co.actors["own"]
    model, exact = both(own, "time-to-close", group="none")
    assert model.details["read_model"] and same(model, exact)
    # «own» reads only his own deals: none of them is closed
    assert (model.totals["won"], model.totals["lost"]) == (0, 0)
    set_observers(co.actors["admin"], DEAL_SPEC, co.deals["D2"].pk, [co.users["own"].pk])
    model, exact = both(own, "time-to-close", group="none")  # an observer: D2's own rows are added
    assert model.details["read_model"] and same(model, exact) and model.totals["lost"] == 1
    nobody = User.objects.create_user("nobody", "n@example.ru", "nobody-pass", time_zone="Europe/Moscow")
    for slug in DURATIONS:
        r = reports.run(Actor.for_user(nobody, "test"), slug, JAN_FEB)
        assert r.details["read_model"]
        assert not any(row.get("won") or row.get("lost") or row.get("left") or row.get("slowest") for row in r.rows)


def test_histogram_medians_stay_within_the_bound():
    import random
    import statistics

    from voronka.pipelines import stays

    rng = random.Random(8)
    for v in [*range(0, 5000), *(2 ** k for k in range(40)), *(2 ** k - 1 for k in range(1, 40))]:
        b = stays.bucket(v)  # every value lies within its bucket's bounds, powers of two included
        assert stays.lower(b) <= v < stays.lower(b + 1), v
        assert stays.lower(b + 1) / max(stays.lower(b), 1) <= 1 + stays.ERROR_BOUND + 1e-12 or b <= 1
    for n in (1, 2, 3, 10, 101, 5000):
        values = [int(rng.lognormvariate(9, 2.5)) for _ in range(n)]
        h = stays.Histogram()
        for v in values:
            h.add(stays.bucket(v), 1, v)
        exact_median = statistics.median(values)
        exact_p90 = sorted(values)[max(0, -(-9 * n // 10) - 1)]
        assert h.count == n and h.mean() == sum(values) / n
        assert abs(h.median() - exact_median) <= stays.ERROR_BOUND * exact_median + 1e-9, n
        assert abs(h.p90() - exact_p90) <= stays.ERROR_BOUND * exact_p90 + 1e-9, n
        top = stays.Histogram.floor_of_top(h, 5)  # the five longest lie at or above it
        assert (top == 0) if n < 5 else (sorted(values)[-5] >= top and sum(v >= top for v in values) >= 5), n
    h = stays.Histogram()  # equal durations in a bucket: exact
    for v in (3600, 3600, 7200):
        h.add(stays.bucket(v), 1, v)
    assert (h.median(), h.p90()) == (3600.0, 7200.0)


def test_moves_back_and_forth_reopen_amounts_responsible_delete_restore_merge(co, monkeypatch):
    from voronka.deals.actions import create_deal, delete_deal, move_deal, restore_deal, update_deal
    from voronka.intake.duplicates import merge_records
    from voronka.leads.actions import create_lead, update_lead

    a, s = co.actors["admin"], co.stages
    d = create_deal(a, title="X", pipeline=co.pipelines["sales"].pk, responsible=co.users["m1"].pk,
                    opportunity=1000, source="site")
    steps = [
        lambda: move_deal(a, d.pk, stage=s["sales.invoice"].pk),
        lambda: move_deal(a, d.pk, stage=s["sales.new"].pk),  # back: it still reached «invoice»
        lambda: move_deal(a, d.pk, stage=s["sales.lost"].pk),
        lambda: move_deal(a, d.pk, stage=s["sales.invoice"].pk),  # re-opened
        lambda: update_deal(a, d.pk, opportunity="2500.50"),
        lambda: update_deal(a, d.pk, responsible=co.users["m2"].pk, source="phone", is_open=False),
        lambda: move_deal(a, d.pk, stage=s["sales.won"].pk),
        lambda: move_deal(a, d.pk, stage=s["production.planned"].pk, pipeline=co.pipelines["production"].pk),
        lambda: move_deal(a, d.pk, stage=s["sales.new"].pk, pipeline=co.pipelines["sales"].pk),
        lambda: delete_deal(a, d.pk),
        lambda: restore_deal(a, d.pk),
    ]
    for i, step in enumerate(steps):
        step()
        incremental = snapshot()
        assert incremental == rebuilt(), i
        assert stay_snapshot() == stays_rebuilt(), i
        for slug in ("funnel", "deals", "lost-reasons", "lead-conversion", "deal-amount", *DURATIONS):
            model, exact = both(a, slug)
            assert model.details["read_model"] and same(model, exact), (i, slug)
        e2e_model, e2e_exact = both(a, "end-to-end")  # reads the leads' deal status, or the deals before it is built
        assert same(e2e_model, e2e_exact), i
    # back in «new» of sales after winning elsewhere: the funnel still counts the stages it reached here
    funnel = reports.run(a, "funnel", {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    assert [r["reached"] for r in funnel.rows] == [1, 1, 0]
    # a merge sends the other lead to the recycle bin: its rows go
    l8 = create_lead(a, title="L8", responsible=co.users["m1"].pk, source="site", pipeline=co.pipelines["leads"].pk)
    l9 = create_lead(a, title="L9", responsible=co.users["m2"].pk, source="phone", pipeline=co.pipelines["leads"].pk)
    update_lead(a, l9.pk, stage=s["leads.qualified"].pk)
    # a won deal of L9 and an open one of L8: the merge re-points L9's deal to L8 in bulk (no deal hook runs)
    d9 = create_deal(a, title="D9", pipeline=co.pipelines["sales"].pk, responsible=co.users["m2"].pk, lead=l9.pk)
    create_deal(a, title="D8b", pipeline=co.pipelines["sales"].pk, responsible=co.users["m1"].pk, lead=l8.pk)
    move_deal(a, d9.pk, stage=s["sales.won"].pk)
    march = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    assert reports.run(a, "lead-conversion", march).totals["to_won"] == 1
    assert snapshot() == rebuilt()
    merge_records(a, 1, l8.pk, [l9.pk], values={"responsible": l9.pk})
    from voronka.leads.models import Lead

    assert Lead.objects.get(pk=l8.pk).deal_status == 2 and Lead.objects.get(pk=l9.pk).deal_status == 0
    assert snapshot() == rebuilt()
    model, exact = both(a, "lead-conversion", **march)
    assert model.details["read_model"] and same(model, exact)
    assert (model.totals["leads"], model.totals["to_deal"], model.totals["to_won"]) == (2, 1, 1)  # L7 none, L8 won
    # the won deal is re-opened, then given to another lead, then deleted and restored
    for step in (lambda: move_deal(a, d9.pk, stage=s["sales.new"].pk),
                 lambda: update_deal(a, d9.pk, lead=co.leads["L7"].pk),
                 lambda: move_deal(a, d9.pk, stage=s["sales.won"].pk),
                 lambda: delete_deal(a, d9.pk),
                 lambda: restore_deal(a, d9.pk),
                 lambda: update_deal(a, d9.pk, lead=None)):
        step()
        assert snapshot() == rebuilt()
        model, exact = both(a, "lead-conversion", **march)
        assert model.details["read_model"] and same(model, exact)
        assert same(*both(a, "end-to-end", **march))
    assert (model.totals["to_deal"], model.totals["to_won"]) == (1, 0)  # L8's open deal only
    assert stay_snapshot() == stays_rebuilt()
    for slug in DURATIONS:
        model, exact = both(a, slug, entity="lead", date_from="2026-03-01", date_to="2026-03-31")
        assert model.details["read_model"] and same(model, exact), slug
    model, exact = both(a, "new-leads", date_from="2026-03-01", date_to="2026-03-31", group="user")
    assert model.details["read_model"] and same(model, exact) and model.totals["leads"] == 2  # L7 (1 March in Moscow), L8


def test_changed_stages_make_the_reports_count_until_a_rebuild(co):
    from voronka.deals.actions import move_deal
    from voronka.pipelines.actions import reorder_stages

    a, s = co.actors["admin"], co.stages
    sales = co.pipelines["sales"]
    reorder_stages(a, sales.pk, [s["sales.invoice"].pk, s["sales.new"].pk, s["sales.won"].pk, s["sales.lost"].pk])
    model, exact = both(a, "funnel")
    assert not model.details["read_model"] and same(model, exact)
    assert not both(a, "deals")[0].details["read_model"]
    assert both(a, "new-leads")[0].details["read_model"]  # another kind of record, untouched
    move_deal(a, co.deals["D8"].pk, stage=s["sales.new"].pk)  # a write with the new order marks the rows stale
    assert DailyTotalState.objects.get(pipeline_id=sales.pk).signature == daily.STALE
    assert not both(a, "funnel")[0].details["read_model"]
    out = StringIO()
    call_command("analytics-rebuild", stdout=out)
    assert "lead:" in out.getvalue() and "deal:" in out.getvalue()
    model, exact = both(a, "funnel")
    assert model.details["read_model"] and same(model, exact)
    assert model.rows[0]["label"] == s["sales.invoice"].name


def test_day_of_a_record_is_the_installations_calendar_day(co):
    # L2 was created at 22:30 UTC on 31 January: 1 February in Moscow, the installation's zone
    row = DailyTotal.objects.get(entity_type_id=1, kind="created", grain="d", source="site",
                                 stage_id=co.stages["leads.junk"].pk)
    assert row.day.isoformat() == "2026-02-01" and at(1, 31, 22, 30).date().isoformat() == "2026-01-31"


def test_rebuild_recomputes_each_leads_deal_status_after_a_bulk_load(co):
    from voronka.leads.models import Lead

    incremental = snapshot()
    right = dict(Lead.objects.values_list("id", "deal_status"))
    assert right[co.leads["L1"].pk] == 2 and right[co.leads["L3"].pk] == 2 and right[co.leads["L2"].pk] == 0
    Lead.objects.update(deal_status=1)  # a bulk load that bypassed the deals' hook
    assert daily.refresh_deal_status(Lead) == len(right) - sum(1 for v in right.values() if v == 1)
    assert dict(Lead.objects.values_list("id", "deal_status")) == right
    assert rebuilt() == incremental


# --- time to first action and to qualification (``first`` / ``qual`` rows), the managers' speed -----------------

def first_actions_now() -> dict:
    from voronka.leads.models import Lead

    return dict(Lead.objects.values_list("id", "first_action_at"))


def test_lead_speed_and_managers_read_the_model_and_agree(co):
    from voronka.leads import firstaction

    incremental = first_actions_now()
    assert sum(v is not None for v in incremental.values()) >= 4  # L1 L2 L3 L4 (and the merged L5)
    firstaction.refresh()  # what the timeline says: the same instants
    assert first_actions_now() == incremental
    assert stay_snapshot() == stays_rebuilt()
    for who in ("admin", "head", "m1", "own"):
        for q in ({}, {"group": "user"}, {"group": "source"}, {"group": "department"}, {"group": "week"},
                  {"group": "day", "date_from": "2026-01-31", "date_to": "2026-02-06"}, {"group": "none"},
                  {"responsible": co.users["m2"].pk}, {"source": "site"}, {"department": co.users["m1"].department_id},
                  {"pipeline": co.pipelines["leads"].pk}, {"date_from": "2026-01-15", "date_to": "2026-03-10"},
                  {"date_from": "2025-12-01", "date_to": "2026-03-31", "group": "year"}):
            model, exact = both(co.actors[who], "lead-speed", **q)
            assert model.details["read_model"] and not exact.details["read_model"], (who, q)
            assert same(model, exact), (who, q)
            model, exact = both(co.actors[who], "managers", **{k: v for k, v in q.items() if k != "group"})
            assert model.details["read_model"] and not exact.details["read_model"], (who, q)
            assert same(model, exact), (who, q)
    own = reports.run(co.actors["own"], "lead-speed", JAN_FEB)  # «own» reads only his own leads: none of them
    assert own.totals["leads"] == 0 and own.totals["acted"] == 0


def test_first_action_and_qualification_follow_every_write(co):
    from voronka.activities.actions import add_comment
    from voronka.analytics.actions import set_stage_setting
    from voronka.core import history
    from voronka.core.actor import Actor
    from voronka.intake.duplicates import merge_records
    from voronka.leads.actions import create_lead, delete_lead, restore_lead, update_lead

    a, s, m1 = co.actors["admin"], co.stages, co.actors["head"]
    march = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    l8 = create_lead(a, title="L8", responsible=co.users["m1"].pk, source="site", pipeline=co.pipelines["leads"].pk,
                     stage=s["leads.qualified"].pk)  # created qualified: qualified at once
    l9 = create_lead(a, title="L9", responsible=co.users["m2"].pk, source="phone", pipeline=co.pipelines["leads"].pk)
    steps = [
        lambda: history.entry(Actor.system("robot:1"), 1, l9.pk, "comment", text="robot"),  # robots do not count
        lambda: add_comment(m1, entity_type_id=1, entity_id=l9.pk, text="first"),
        lambda: add_comment(m1, entity_type_id=1, entity_id=l9.pk, text="second"),  # not the first any more
        lambda: update_lead(a, l9.pk, stage=s["leads.qualified"].pk),
        lambda: update_lead(a, l9.pk, stage=s["leads.assigned"].pk),  # back: the first qualification stays
        lambda: update_lead(a, l9.pk, stage=s["leads.qualified"].pk),
        lambda: update_lead(a, l9.pk, responsible=co.users["m1"].pk, source="site", is_open=False),
        lambda: update_lead(a, l8.pk, title="L8 renamed"),  # a person's change: L8's first action
        lambda: delete_lead(a, l8.pk),
        lambda: restore_lead(a, l8.pk),
        lambda: merge_records(a, 1, l8.pk, [l9.pk], values={"responsible": l9.pk}),
    ]
    for i, step in enumerate(steps):
        step()
        assert stay_snapshot() == stays_rebuilt(), i
        for slug in ("lead-speed", "managers"):
            model, exact = both(a, slug, **march)
            assert same(model, exact), (i, slug)
        assert both(a, "lead-speed", **march)[0].details["read_model"], i
    r = reports.run(a, "lead-speed", {**march, "group": "none"})
    assert (r.totals["leads"], r.totals["qualified"], r.totals["qual_median"]) == (2, 1, 0.0)  # L7 none, L8 at once
    # which stages qualify changed: counted from the records until a rebuild
    set_stage_setting(a, s["leads.assigned"].pk, qualifies=True)
    set_stage_setting(a, s["leads.qualified"].pk, qualifies=True)
    model, exact = both(a, "lead-speed", **march)
    assert not model.details["read_model"] and same(model, exact)
    call_command("analytics-rebuild", stdout=StringIO())
    model, exact = both(a, "lead-speed", **march)
    assert model.details["read_model"] and same(model, exact)


OBSERVED_REPORTS = ("new-leads", "lead-conversion", "lead-speed", "deals", "lost-reasons", "deal-amount",
                    "time-to-close", "managers")


def test_observers_beyond_rights_keep_the_read_models_with_the_observed_records_added(co, client):
    """m1 (his department's records) observes P1 and C3, deals of production; «own» (his own records only) observes
    D2 and D3 (m2's: lost, won after a re-opening) and L3 (m2's lead: qualified, converted). Every report that
    reads the read models answers from them with those records' own rows added, with the figures of the records'
    path, under every filter and grouping; the list behind a number still holds the observed record."""
    from urllib.parse import urlencode

    from voronka.core.recordkit import set_observers
    from voronka.deals.actions import DEAL as DEAL_SPEC
    from voronka.leads.actions import LEAD as LEAD_SPEC

    a, u, d = co.actors["admin"], co.users, co.deals
    set_observers(a, DEAL_SPEC, d["P1"].pk, [u["m1"].pk])
    set_observers(a, DEAL_SPEC, d["C3"].pk, [u["m1"].pk])
    set_observers(a, DEAL_SPEC, d["D2"].pk, [u["own"].pk])
    set_observers(a, DEAL_SPEC, d["D3"].pk, [u["own"].pk])
    set_observers(a, LEAD_SPEC, co.leads["L3"].pk, [u["own"].pk])
    assert readmodel.observed_beyond_rights(co.actors["m1"], 2) == sorted([d["P1"].pk, d["C3"].pk])
    assert readmodel.observed_beyond_rights(co.actors["own"], 1) == [co.leads["L3"].pk]
    queries = ({}, {"group": "user"}, {"group": "department"}, {"group": "source"}, {"group": "pipeline"},
               {"group": "week"}, {"group": "day", "date_from": "2026-01-31", "date_to": "2026-02-02"},
               {"group": "none"}, {"responsible": u["m3"].pk}, {"responsible": u["m2"].pk}, {"source": "phone"},
               {"department": u["m3"].department_id}, {"department": u["m1"].department_id},
               {"pipeline": co.pipelines["production"].pk}, {"pipeline": co.pipelines["sales"].pk},
               {"date_from": "2026-01-15", "date_to": "2026-03-10"},
               {"date_from": "2025-12-01", "date_to": "2026-03-31", "group": "year"})
    for who in ("m1", "own"):
        actor = co.actors[who]
        for slug in OBSERVED_REPORTS:
            for q in queries:
                if slug == "managers":
                    q = {k: v for k, v in q.items() if k != "group"}
                model, exact = both(actor, slug, **q)
                assert model.details["read_model"] and not exact.details["read_model"], (who, slug, q)
                assert same(model, exact), (who, slug, q)
        for name in ("sales", "production", "complaints"):
            for slug in ("funnel", "stage-time"):
                for q in ({}, {"date_from": "2025-12-01", "date_to": "2026-03-31", "group": "year"},
                          {"responsible": u["m3"].pk}):
                    model, exact = both(actor, slug, pipeline=co.pipelines[name].pk, **q)
                    assert model.details["read_model"] and same(model, exact), (who, slug, name, q)
        model, exact = both(actor, "funnel", entity="lead")
        assert model.details["read_model"] and same(model, exact), who

    # the observed records are in the figures (not only equal to a path that misses them too) …
    r = reports.run(co.actors["m1"], "deals", {**JAN_FEB, "group": "pipeline"})
    production = next(row for row in r.rows if row["label"] == "Производство")
    assert r.details["read_model"] and production["deals"] == 1 and production["amount"] == Decimal("30000.00")
    r = reports.run(co.actors["own"], "lead-conversion", {**JAN_FEB, "group": "none"})
    assert r.details["read_model"] and (r.totals["leads"], r.totals["to_deal"], r.totals["to_won"]) == (1, 1, 1)
    r = reports.run(co.actors["own"], "time-to-close", {**JAN_FEB, "group": "none"})
    assert r.details["read_model"] and (r.totals["won"], r.totals["lost"]) == (1, 1)
    # … and in the lists behind the numbers
    r = reports.run(co.actors["m1"], "deals", {**JAN_FEB, "group": "pipeline"})
    production = next(row for row in r.rows if row["label"] == "Производство")
    client.force_login(u["m1"])
    page = client.get("/crm/deals/?" + urlencode(production["filter"]))
    assert page.status_code == 200 and ">P1<" in page.content.decode()
    r = reports.run(co.actors["own"], "new-leads", {**JAN_FEB, "group": "none"})
    client.force_login(u["own"])
    page = client.get("/crm/leads/?" + urlencode(r.rows[0]["filter"]))
    assert page.status_code == 200 and ">L3<" in page.content.decode()


def test_extra_rows_follow_the_same_period_parts_and_lookups_as_the_tables_rows():
    """``readmodel.days`` keeps an observed record's own row exactly when the table's row with the same key would be
    read (month rows for whole months, day rows at the ends); ``Rows.filter`` refuses a lookup it cannot test."""
    import datetime
    import zoneinfo

    from voronka.analytics.params import Params
    from voronka.pipelines.models import DailyTotal

    def row(grain, day):
        return {"kind": "created", "grain": grain, "day": datetime.date(2026, *day), "count": 1, "amount": 0}

    extra = [row("d", (1, 14)), row("d", (1, 15)), row("m", (1, 1)), row("m", (2, 1)), row("d", (2, 10)),
             row("d", (3, 10)), row("d", (3, 11)), row("m", (3, 1))]
    rows = readmodel.Rows(DailyTotal.objects.none(), extra)
    p = Params(zone=zoneinfo.ZoneInfo("Europe/Moscow"), date_from=datetime.date(2026, 1, 15),
               date_to=datetime.date(2026, 3, 10))
    kept = readmodel.days(rows, p).extra  # 15–31 Jan by day, February by month, 1–10 Mar by day
    assert [(r["grain"], r["day"].isoformat()) for r in kept] == [("d", "2026-01-15"), ("m", "2026-02-01"),
                                                                  ("d", "2026-03-10")]
    p.group = "day"
    assert len(readmodel.days(rows, p).extra) == 3  # the day rows of the period (15 Jan, 10 Feb, 10 Mar), no month
    assert readmodel.sums(readmodel.days(rows, p), "grain") == [("d", 3, 0)]
    assert rows.filter(kind__in=("created",), day__gte=datetime.date(2026, 3, 1)).extra == extra[5:]
    with pytest.raises(ValueError):
        rows.filter(kind__startswith="cr")


def test_the_last_month_of_a_period_reads_its_monthly_rows_when_nothing_follows_the_period_in_it(co):
    """A period that ends in the middle of a month reads that month's monthly rows instead of its days when the
    viewer has no daily row after the period's end in that month (a period ending today); with one, the days. The
    figures are the same either way, and the same as the exact path's."""
    import datetime
    import zoneinfo

    from voronka.analytics.params import Params
    from voronka.pipelines.models import DailyTotal

    def row(grain, day):
        return {"kind": "created", "grain": grain, "day": datetime.date(2026, *day), "count": 1, "amount": 0}

    extra = [row("m", (2, 1)), row("d", (3, 10)), row("m", (3, 1))]
    p = Params(zone=zoneinfo.ZoneInfo("Europe/Moscow"), date_from=datetime.date(2026, 1, 15),
               date_to=datetime.date(2026, 3, 10))
    kept = readmodel.days(readmodel.Rows(DailyTotal.objects.none(), extra), p).extra
    assert [(r["grain"], r["day"].isoformat()) for r in kept] == [("m", "2026-02-01"), ("m", "2026-03-01")]
    p.group = "week"  # weeks cut through months: days only
    assert [r["grain"] for r in readmodel.days(readmodel.Rows(DailyTotal.objects.none(), extra), p).extra] == ["d"]
    # a period ending the day before February's last new lead has days after it in February; one ending on the
    # fixture's last day with rows has none after it: both agree with the exact path for every viewer, and only
    # the second reads the month's rows for the superuser's new leads
    last = DailyTotal.objects.filter(grain="d").order_by("-day").values_list("day", flat=True).first()
    feb = DailyTotal.objects.filter(entity_type_id=1, kind="created", grain="d", count__gt=0,
                                    day__gte=datetime.date(2026, 2, 2), day__lt=datetime.date(2026, 3, 1)) \
        .order_by("-day").values_list("day", flat=True).first()
    assert feb is not None and last is not None and last.month != 2 and (last + datetime.timedelta(days=1)).day != 1
    before = feb - datetime.timedelta(days=1)
    reads = []
    real = readmodel._with_tail_month
    for who in ("admin", "m1", "own"):
        for date_to in (before.isoformat(), last.isoformat()):
            for slug in ("new-leads", "deals", "time-to-close"):
                with pytest.MonkeyPatch.context() as mp:
                    mp.setattr(readmodel, "_with_tail_month",
                               lambda p, parts, key=(who, slug): reads.append((*key, p.date_to)) or real(p, parts))
                    model, exact = both(co.actors[who], slug, date_from="2026-01-10", date_to=date_to, group="month")
                assert same(model, exact), (who, slug, date_to)
    assert ("admin", "new-leads", last) in reads and ("admin", "new-leads", before) not in reads
