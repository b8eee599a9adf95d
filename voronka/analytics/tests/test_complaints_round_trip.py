"""Reports on the complaints round trip (F25, seed 002): a sales deal closed «with defects» goes to the Complaints
pipeline and, fixed, returns to its sales pipeline. Its revenue counts once, in the sales pipeline; while it is in
Complaints it is a sales deal with the status «in complaint», not a new deal of the Complaints pipeline."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from voronka.analytics import reports

from .company import NOW, Clock, at

pytestmark = pytest.mark.django_db
JAN_FEB = {"date_from": "2026-01-01", "date_to": "2026-02-28", "tz": "UTC"}


@pytest.fixture(params=["read model", "exact"])
def trip(request, monkeypatch, admin):
    """Sales: new → invoice → won / defects (failure) / lost; Complaints: received → fixing → fixed / rejected.
    Robots: «defects» sends the deal to Complaints; «fixed» returns it to its pipeline, stage «won».

        D1 100 000  made 10 Jan, invoice 12 Jan, defects 20 Jan → Complaints, fixing 25 Jan, fixed 5 Feb → sales «won»
        D2  40 000  made 15 Jan, won 18 Jan
        D3  30 000  made 10 Feb, defects 12 Feb → Complaints, fixing 14 Feb (still there)
        D4  10 000  made 11 Feb, lost 13 Feb
        leads: L1 (10 Jan) → D1, L3 (10 Feb) → D3
    """
    from voronka.analytics import readmodel
    from voronka.automation.actions import create_robot
    from voronka.core.management.commands.worker import drain
    from voronka.deals.actions import create_deal, move_deal
    from voronka.leads.actions import create_lead
    from voronka.pipelines.actions import create_pipeline

    monkeypatch.setattr(readmodel, "ENABLED", request.param == "read model")
    clock = Clock(monkeypatch)
    clock.set(at(1, 1))
    sales = create_pipeline(admin, entity_type_id=2, name="Sales", code="sales", is_default=True, stages=[
        {"name": "New", "code": "new"}, {"name": "Invoice", "code": "invoice"},
        {"name": "Won", "code": "won", "semantics": "success"},
        {"name": "Defects", "code": "defects", "semantics": "failure"},
        {"name": "Lost", "code": "lost", "semantics": "failure"}])
    complaints = create_pipeline(admin, entity_type_id=2, name="Complaints", code="complaints", stages=[
        {"name": "Received", "code": "received"}, {"name": "Fixing", "code": "fixing"},
        {"name": "Fixed", "code": "fixed", "semantics": "success"},
        {"name": "Rejected", "code": "rejected", "semantics": "failure"}])
    create_robot(admin, stage=sales.stages.get(code="defects").pk, action="move_stage",
                 params={"pipeline": "complaints", "stage": "received"})
    create_robot(admin, stage=complaints.stages.get(code="fixed").pk, action="return_to_origin",
                 params={"stage": "won"})

    def deal(title, amount, when, **extra):
        clock.set(when)
        return create_deal(admin, title=title, opportunity=amount, **extra)

    def move(d, stage, when):
        clock.set(when)
        move_deal(admin, d.pk, stage=stage)
        drain()

    leads = create_pipeline(admin, entity_type_id=1, name="Leads", code="leads", stages=[
        {"name": "New", "code": "new"}, {"name": "Converted", "code": "converted", "semantics": "success"}])
    assert leads
    clock.set(at(1, 10, 8))
    l1 = create_lead(admin, title="L1")
    clock.set(at(2, 10, 8))
    l3 = create_lead(admin, title="L3")

    d1 = deal("D1", "100000", at(1, 10, 9), lead=l1.pk)
    move(d1, "invoice", at(1, 12, 9))
    move(d1, "defects", at(1, 20, 9))
    move(d1, "fixing", at(1, 25, 9))
    move(d1, "fixed", at(2, 5, 9))
    d2 = deal("D2", "40000", at(1, 15, 9))
    move(d2, "won", at(1, 18, 9))
    d3 = deal("D3", "30000", at(2, 10, 9), lead=l3.pk)
    move(d3, "defects", at(2, 12, 9))
    move(d3, "fixing", at(2, 14, 9))
    d4 = deal("D4", "10000", at(2, 11, 9))
    move(d4, "lost", at(2, 13, 9))
    clock.set(NOW)
    with translation.override("en"):
        yield {"sales": sales, "complaints": complaints, "deals": {"D1": d1, "D2": d2, "D3": d3, "D4": d4}}


def run(admin, slug, **q):
    return reports.run(admin, slug, {**JAN_FEB, **{k: str(v) for k, v in q.items()}})


def by_label(report, *keys):
    return {r["label"]: tuple(r[k] for k in keys) for r in report.rows}


def test_the_round_trip_itself(trip):
    from voronka.deals.models import Deal

    d1, d3 = Deal.objects.get(title="D1"), Deal.objects.get(title="D3")
    assert (d1.pipeline_id, d1.stage.code, d1.stage_semantics) == (trip["sales"].pk, "won", "success")
    assert (d3.pipeline_id, d3.stage.code) == (trip["complaints"].pk, "fixing")


def test_deals_by_pipeline_count_the_trip_once_in_sales(trip, admin):
    cols = ("deals", "amount", "open", "won", "won_amount", "lost", "in_complaints")
    k = Decimal("1000")
    expected = {"2026-01": (2, 140 * k, 0, 2, 140 * k, 0, 0),  # D1 (fixed, won again), D2
                "2026-02": (2, 40 * k, 0, 0, 0, 1, 1)}  # D3 in complaints, D4 lost
    for pipeline in (None, trip["sales"].pk):
        r = run(admin, "deals", group="month", **({"pipeline": pipeline} if pipeline else {}))
        assert by_label(r, *cols) == expected
        assert (r.totals["deals"], r.totals["won_amount"], r.totals["in_complaints"]) == (4, 140 * k, 1)
        assert r.totals["won_rate"] == 66.7  # 2 won of 3 closed; the complaint is neither
    r = run(admin, "deals", pipeline=trip["complaints"].pk)  # a complaint is not a new deal of Complaints
    assert r.totals["deals"] == 0 and r.totals["amount"] == 0
    r = run(admin, "deals", group="pipeline")
    assert by_label(r, *cols) == {"Sales": (4, 180 * k, 0, 2, 140 * k, 1, 1)}


def test_funnel_of_sales_keeps_the_deal_away(trip, admin):
    k = Decimal("1000")
    r = run(admin, "funnel", pipeline=trip["sales"].pk)
    # reached New: all four; Invoice: D1, and D2 that skipped it to win; Success: D1 and D2 won now
    assert by_label(r, "reached", "amount") == {"New": (4, 180 * k), "Invoice": (2, 140 * k),
                                                "Success": (2, 140 * k)}
    assert {x["label"]: (x["count"], x["amount"]) for x in r.details["lost"]} == {"Defects": (0, 0),
                                                                                  "Lost": (1, 10 * k)}
    assert (r.details["away"]["count"], r.details["away"]["amount"]) == (1, 30 * k)
    r = run(admin, "funnel", pipeline=trip["complaints"].pk)  # the complaints desk sees its work
    assert by_label(r, "reached", "amount") == {"Received": (1, 30 * k), "Fixing": (1, 30 * k), "Success": (0, 0)}


def test_revenue_counts_once_by_close_day_and_end_to_end(trip, admin):
    k = Decimal("1000")
    r = run(admin, "deal-amount", group="month")  # D2 won 18 Jan; D1 won when its complaint was fixed, 5 Feb
    assert by_label(r, "won", "sum") == {"2026-01": (1, 40 * k), "2026-02": (1, 100 * k)}
    assert (r.totals["won"], r.totals["sum"]) == (2, 140 * k)
    r = run(admin, "end-to-end", group="month")
    cols = ("leads", "converted", "deal_open", "in_complaints", "won", "won_total", "revenue")
    assert by_label(r, *cols) == {"2026-01": (1, 1, 0, 0, 1, 1, 100 * k), "2026-02": (1, 1, 0, 1, 0, 0, 0)}
    assert r.totals["revenue"] == 100 * k
    # the same before the leads' end-to-end columns are built (a bulk load): the chains are followed
    from voronka.pipelines import daily
    from voronka.pipelines.models import DailyTotalState

    DailyTotalState.objects.filter(entity_type_id=1, pipeline_id=daily.CHAIN).delete()
    assert by_label(run(admin, "end-to-end", group="month"), *cols) == by_label(r, *cols)


def test_the_report_pages_show_the_status(trip, admin_user, client):
    client.force_login(admin_user)
    client.cookies["django_language"] = "en"
    period = "date_from=2026-01-01&date_to=2026-02-28&tz=UTC"
    page = client.get(f"/reports/funnel/?{period}&pipeline={trip['sales'].pk}").content.decode()
    assert "In complaints now" in page
    page = client.get(f"/reports/deals/?{period}&group=month").content.decode()
    assert "In complaints" in page


def test_end_to_end_for_a_viewer_of_his_own_records(trip, admin):
    """A viewer who reads only his own records: L1 and L3 are his, D3 (away in Complaints) too, D1 is not. L3
    counts «in complaints», L1 won without D1's revenue (he may not read D1), D3's revenue never (away)."""
    from voronka.core.actor import Actor
    from voronka.deals.actions import update_deal
    from voronka.identity.models import Role, RoleAssignment, RolePermission, Scope, User
    from voronka.identity.permissions import rights_changed
    from voronka.leads.actions import update_lead
    from voronka.leads.models import Lead

    user = User.objects.create_user("own", "own@example.ru", "own-pass", time_zone=admin.user.time_zone)
    role = Role.objects.create(code="own_only", name="Own only")
    for type_id in (1, 2):
        RolePermission.objects.create(role=role, entity_type_id=type_id, perm="read", scope=Scope.OWN)
    RoleAssignment.objects.create(role=role, user=user)
    rights_changed()
    for lead in Lead.objects.filter(title__in=["L1", "L3"]):
        update_lead(admin, lead.pk, responsible=user.pk)
    update_deal(admin, trip["deals"]["D3"].pk, responsible=user.pk)
    r = run(Actor.for_user(user, "test"), "end-to-end", group="month")
    cols = ("leads", "converted", "deal_open", "in_complaints", "won", "won_total", "revenue")
    assert by_label(r, *cols) == {"2026-01": (1, 1, 0, 0, 1, 1, 0), "2026-02": (1, 1, 0, 1, 0, 0, 0)}
