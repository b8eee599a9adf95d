"""Every report against the fixture company (``company.py``), with the figures computed by hand there."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from voronka.analytics import actions, reports
from voronka.analytics.export import as_dict
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed

from .company import build

pytestmark = pytest.mark.django_db

JAN_FEB = {"date_from": "2026-01-01", "date_to": "2026-02-28"}
H, D = 3600.0, 86400.0


@pytest.fixture(params=["read model", "exact"])
def co(request, monkeypatch):
    """The fixture company; every test runs twice: reports that the daily read model covers read it, then the
    same reports count the records (``readmodel.ENABLED`` off). The figures must be the same."""
    from voronka.analytics import readmodel

    monkeypatch.setattr(readmodel, "ENABLED", request.param == "read model")
    with translation.override("en"):
        yield build(monkeypatch)


def run(co, who, slug, **q):
    return reports.run(co.actors[who], slug, {**JAN_FEB, **{k: str(v) for k, v in q.items()}})


def by_label(report, *keys):
    return {r["label"]: tuple(r[k] for k in keys) for r in report.rows}


def test_lead_reports_by_month_in_the_viewers_zone(co):
    r = run(co, "admin", "new-leads")
    # L2 (31 Jan 22:30 UTC) is a February lead in Moscow; L5 merged, L6 deleted, L7 is March in Moscow
    assert by_label(r, "leads", "in_work", "converted", "junk") == {"2026-01": (1, 0, 1, 0), "2026-02": (3, 1, 1, 1)}
    assert r.totals["leads"] == 4 and r.params.zone.key == "Europe/Moscow"
    jan = r.rows[0]["filter"]
    assert (jan["created_from"], jan["created_to"]) == ("2026-01-01", "2026-01-31")

    r = run(co, "admin", "lead-conversion")
    assert by_label(r, "leads", "to_deal", "to_won", "deal_rate") == {"2026-01": (1, 1, 1, 100.0),
                                                                       "2026-02": (3, 1, 1, 33.3)}
    assert (r.totals["deal_rate"], r.totals["won_rate"]) == (50.0, 50.0)

    r = run(co, "admin", "lead-speed")
    # L1: comment after 30 min, qualified after 3 h; L2: first move after 7.5 h; L3: 10 min, qualified after 1 h
    # (its second qualification does not count); L4: the merge after 2 h
    assert by_label(r, "first_avg", "first_median", "qual_median") == {
        "2026-01": (0.5 * H, 0.5 * H, 3 * H), "2026-02": ((7.5 * H + 600 + 2 * H) / 3, 2 * H, 1 * H)}
    assert (r.totals["acted"], r.totals["qualified"], r.totals["first_median"]) == (4, 2, (0.5 * H + 2 * H) / 2)

    r = run(co, "admin", "new-leads", group="source")
    assert by_label(r, "leads") == {"phone": (2,), "site": (2,)}
    r = run(co, "admin", "new-leads", group="user")
    assert by_label(r, "leads") == {"Мария Тестов": (3,), "Николай Тестов": (1,)}
    assert {row["filter"]["responsible"] for row in r.rows} == {str(co.users["m1"].pk), str(co.users["m2"].pk)}


def test_month_border_for_a_viewer_in_utc(co):
    co.users["head"].time_zone = "UTC"
    co.users["head"].save()
    r = run(co, "head", "new-leads")
    assert by_label(r, "leads") == {"2026-01": (2,), "2026-02": (3,)}  # L2 back in January, L7 in February
    r = run(co, "head", "new-leads", group="week", date_from="2026-02-23", date_to="2026-03-01")
    assert by_label(r, "leads") == {"week of 2026-02-23": (1,)}
    r = run(co, "head", "new-leads", group="day", date_from="2026-01-31", date_to="2026-02-01")
    assert by_label(r, "leads") == {"2026-01-31": (1,), "2026-02-01": (0,)}
    r = run(co, "admin", "new-leads", group="day", date_from="2026-01-31", date_to="2026-02-01")
    assert by_label(r, "leads") == {"2026-01-31": (0,), "2026-02-01": (1,)}
    # more days than a CASE takes: the database truncates in the viewer's zone, with the same answer
    r = run(co, "admin", "new-leads", group="day", date_from="2025-01-01", date_to="2026-03-31")
    assert len(r.rows) == 455 and {x["label"]: x["leads"] for x in r.rows if x["leads"]} == {
        "2026-01-10": 1, "2026-02-01": 1, "2026-02-05": 1, "2026-02-10": 1, "2026-03-01": 1}
    r = run(co, "admin", "new-leads", group="quarter", date_from="2026-01-01", date_to="2026-03-31")
    assert by_label(r, "leads") == {"2026 Q1": (5,)}


def test_deal_reports(co):
    sales = co.pipelines["sales"].pk
    r = run(co, "admin", "deals")
    assert by_label(r, "deals", "amount", "open", "won", "won_amount", "lost") == {
        "Продажи": (4, Decimal("240000.00"), 1, 2, Decimal("150000.00"), 1),
        "Производство": (1, Decimal("30000.00"), 0, 1, Decimal("30000.00"), 0),
        "Рекламации": (1, Decimal("5000.00"), 0, 0, Decimal("0.00"), 1)}

    r = run(co, "admin", "funnel", pipeline=sales)
    # D1 new→invoice→won, D8 new→invoice (open), D2 new→lost, D3 new→invoice→lost→invoice→won
    assert [(x["label"], x["reached"], x["amount"], x["dropped"], x["drop_rate"]) for x in r.rows] == [
        ("Новая", 4, Decimal("240000.00"), 1, 25.0), ("Счёт", 3, Decimal("220000.00"), 1, 33.3),
        ("Success", 2, Decimal("150000.00"), None, None)]
    assert [(x["label"], x["count"], x["amount"]) for x in r.details["lost"]] == [("Проиграна", 1, Decimal("20000.00"))]

    r = run(co, "admin", "deal-amount", pipeline=sales)
    assert by_label(r, "won", "avg", "median") == {"2026-01": (1, Decimal("100000.00"), Decimal("100000.00")),
                                                   "2026-02": (1, Decimal("50000.00"), Decimal("50000.00"))}
    assert (r.totals["avg"], r.totals["median"]) == (Decimal("75000.00"), Decimal("75000.00"))
    assert r.rows[0]["filter"]["closed_from"] == "2026-01-01"

    r = run(co, "admin", "lost-reasons", reason_field="uf_reason")
    # D3 was lost and re-opened: it is won now and not a lost deal
    assert by_label(r, "count", "amount", "share") == {"Проиграна: Дорого": (1, Decimal("20000.00"), 50.0),
                                                        "Отклонена": (1, Decimal("5000.00"), 50.0)}
    assert r.rows[0]["filter"]["cf_uf_reason"] == "Дорого"

    r = run(co, "admin", "time-to-close", pipeline=sales, group="none")
    assert (r.totals["won"], r.totals["won_median"], r.totals["lost"], r.totals["lost_median"]) == (2, 8 * D, 1, D)

    r = run(co, "admin", "stage-time", pipeline=sales)
    new, invoice = r.rows
    assert (new["left"], new["median"], new["p90"], new["avg"]) == (4, D, 3 * D, 1.5 * D)
    # D3 visited «Счёт» twice (2 and 4 days), D1 once (5 days); D8 sits there since 21 Jan 09:00
    assert (invoice["left"], invoice["median"], invoice["p90"], invoice["now"]) == (3, 4 * D, 5 * D, 1)
    assert invoice["now_max"] == 43 * D + 3 * H
    assert invoice["slowest"][0] == {"id": co.deals["D8"].pk, "title": "D8", "seconds": 43 * D + 3 * H,
                                     "ongoing": True}


def test_managers_support_end_to_end_plans_portraits(co):
    r = run(co, "admin", "managers")
    assert by_label(r, "open_leads", "open_deals", "overdue_tasks", "new_leads", "conversion", "won", "won_amount",
                    "win_rate") == {
        "Мария Тестов": (1, 1, 1, 3, 33.3, 1, Decimal("100000.00"), 100.0),
        "Николай Тестов": (1, 0, 0, 1, 100.0, 1, Decimal("50000.00"), 50.0),
        "Олег Тестов": (0, 0, 0, 0, None, 1, Decimal("30000.00"), 50.0)}

    r = run(co, "admin", "support")
    assert by_label(r, "requests", "open", "solved") == {"Ромашка": (1, 0, 0)}
    assert r.details["pipelines"] == [co.pipelines["complaints"].pk]

    r = run(co, "admin", "end-to-end", group="none")
    t = r.totals
    # L1 won and delivered, L3 won with a rejected complaint, L2 lost as a lead, L4 still a lead;
    # revenue once: D1 + D3, never P1 or C3
    assert (t["leads"], t["converted"], t["lead_open"], t["lead_lost"], t["delivered"], t["downstream_failed"],
            t["won_total"], t["won_rate"]) == (4, 2, 1, 1, 1, 1, 2, 50.0)
    assert (t["revenue"], t["cost"], t["downstream"]) == (Decimal("150000.00"), Decimal("35000.00"), 2)

    sales = co.pipelines["sales"]
    actions.set_stage_setting(co.actors["admin"], co.stages["sales.invoice"].pk, probability=60)
    actions.save_plan(co.actors["admin"], period="month", starts_on="2026-02-14", amount=200000, count=2,
                      user=co.users["m1"].pk)
    actions.save_plan(co.actors["admin"], period="month", starts_on="2026-02-01", amount=300000, count=3)
    actions.save_plan(co.actors["admin"], period="month", starts_on="2026-02-01", amount=250000, count=3,
                      pipeline=sales.pk)
    r = run(co, "admin", "plan-fact", date_from="2026-02-01", date_to="2026-02-28")
    rows = {(x["label"].split(": ")[1]): x for x in r.rows}
    # m1: nothing won in February; D8 (70 000, «Счёт» = 60 %, expected 25 Feb) is the forecast
    m1 = rows["Мария Тестов"]
    assert (m1["fact_amount"], m1["forecast_amount"], m1["forecast_done"], m1["forecast_count"]) == (
        Decimal("0.00"), Decimal("42000.00"), 21.0, 0.6)
    company = rows["Company"]
    assert (company["fact_amount"], company["fact_count"], company["forecast_amount"], company["done"]) == (
        Decimal("50000.00"), 1, Decimal("92000.00"), 16.7)
    assert rows["Company · Продажи"]["fact_amount"] == Decimal("50000.00")
    # the same plan set again replaces it
    actions.save_plan(co.actors["admin"], period="month", starts_on="2026-02-03", amount=1, count=1,
                      user=co.users["m1"].pk)
    assert len(run(co, "admin", "plan-fact", date_from="2026-02-01", date_to="2026-02-28").rows) == 3
    # a manager sees his own plan and the company's, not his colleague's
    actions.save_plan(co.actors["admin"], starts_on="2026-02-01", amount=5, user=co.users["m2"].pk)
    mine = run(co, "m1", "plan-fact", date_from="2026-02-01", date_to="2026-02-28")
    assert sorted(x["label"].split(": ")[1] for x in mine.rows) == ["Company", "Company · Продажи", "Мария Тестов"]
    with pytest.raises(PermissionDenied):
        actions.save_plan(co.actors["m1"], starts_on="2026-02-01", amount=5)

    r = run(co, "admin", "portrait", by="age")
    assert by_label(r, "all", "won") == {"25–34": (1, 1), "35–44": (1, 1), "unknown": (1, 0)}
    r = run(co, "admin", "portrait", by="city")
    assert by_label(r, "all", "won") == {"Казань": (2, 1), "Москва": (1, 1)}
    r = run(co, "admin", "portrait", by="gender")
    assert by_label(r, "all", "won") == {"Male": (1, 1), "Female": (1, 1), "(not set)": (1, 0)}


def test_a_manager_with_own_rights_sees_only_his_own_in_every_report(co):
    own = co.users["own"]
    # «own» reads only his own records: give him L4 (open) and D8 (open) to check every figure
    from voronka.deals.actions import update_deal
    from voronka.leads.actions import update_lead

    update_lead(co.actors["admin"], co.leads["L4"].pk, responsible=own.pk)
    update_deal(co.actors["admin"], co.deals["D8"].pk, responsible=own.pk)
    assert by_label(run(co, "own", "new-leads"), "leads") == {"2026-01": (0,), "2026-02": (1,)}
    assert run(co, "own", "lead-conversion").totals["leads"] == 1
    assert run(co, "own", "deals", group="none").totals["deals"] == 1
    f = run(co, "own", "funnel", pipeline=co.pipelines["sales"].pk)
    assert [x["reached"] for x in f.rows] == [1, 1, 0]
    assert run(co, "own", "lost-reasons").rows == []
    assert run(co, "own", "deal-amount").totals["won"] == 0
    st = run(co, "own", "stage-time", pipeline=co.pipelines["sales"].pk)
    assert [x["left"] for x in st.rows] == [1, 0] and [x["slowest"][0]["title"] for x in st.rows] == ["D8", "D8"]
    m = run(co, "own", "managers")
    assert [x["label"] for x in m.rows] == ["Ося Тестов"] and m.rows[0]["overdue_tasks"] == 0
    assert run(co, "own", "support").rows == []
    e = run(co, "own", "end-to-end", group="none")
    assert (e.totals["leads"], e.totals["revenue"]) == (1, Decimal("0.00"))
    assert run(co, "own", "portrait", by="city").rows == []
    # a sales manager reads the department's records: the production master's deals stay out
    d = run(co, "m1", "deals")
    assert set(by_label(d, "deals")) == {"Продажи"}


def test_managers_count_only_the_overdue_tasks_the_viewer_may_see(co):
    """m1 (sales manager: reads the sales department's leads and deals) sees m2 listed; an overdue task of m2 on P1
    (m3's production deal, which m1 may not read) is not m1's to count, nor is a task of m2 on no record at all;
    one on m2's own deal D3 (which m1 reads) is. The administrator counts them all."""
    from voronka.activities.actions import create_task

    a, u = co.actors["admin"], co.users
    due = "2026-02-25T09:00:00+00:00"
    create_task(a, title="check P1", responsible=u["m2"].pk, deadline=due, entity_type_id=2,
                entity_id=co.deals["P1"].pk)
    create_task(a, title="no record", responsible=u["m2"].pk, deadline=due)
    create_task(a, title="check D3", responsible=u["m2"].pk, deadline=due, entity_type_id=2,
                entity_id=co.deals["D3"].pk)
    assert by_label(run(co, "m1", "managers"), "overdue_tasks") == {"Мария Тестов": (1,), "Николай Тестов": (1,)}
    assert run(co, "m1", "managers").totals["overdue_tasks"] == 2
    # m2 sees his own tasks wherever they are
    assert by_label(run(co, "m2", "managers"), "overdue_tasks")["Николай Тестов"] == (3,)
    assert by_label(run(co, "admin", "managers"), "overdue_tasks")["Николай Тестов"] == (3,)


def test_bad_filters_are_clear_errors(co):
    with pytest.raises(ValidationFailed) as err:
        run(co, "admin", "new-leads", date_from="2026-13-01", group="decade")
    assert set(err.value.fields) == {"date_from", "group"}
    with pytest.raises(ValidationFailed) as err:
        run(co, "admin", "new-leads", date_from="2026-03-01", date_to="2026-02-01")
    assert "date_to" in err.value.fields
    with pytest.raises(ValidationFailed):
        run(co, "admin", "deals", cf_uf_nothing="1")
    with pytest.raises(ValidationFailed):
        run(co, "admin", "lost-reasons", reason_field="uf_nothing")
    with pytest.raises(ValidationFailed):
        run(co, "admin", "funnel", pipeline=999999)
    with pytest.raises(ValidationFailed):
        run(co, "admin", "new-leads", group="day", date_from="2020-01-01", date_to="2026-01-01")
    with pytest.raises(NotFound):
        run(co, "admin", "no-such-report")
    # a custom field filter narrows deals
    assert run(co, "admin", "deals", group="none", cf_uf_reason="Дорого").totals["deals"] == 1
    data = as_dict(run(co, "admin", "funnel"))
    assert data["time_zone"] == "Europe/Moscow" and data["rows"][0]["amount"] == 240000.0


def test_age_bands_at_their_borders(co):
    """The bands are counted by the database as ranges of birthdays: each contact lands where ``_age`` puts it, on
    the day of a birthday, the day before, and for 29 February (now: 5 March 2026, Moscow)."""
    import datetime

    from voronka.analytics.plans import AGE_BANDS, _age
    from voronka.parties.actions import create_contact
    from voronka.parties.models import Contact

    today = datetime.date(2026, 3, 5)
    births = [datetime.date(2026 - 18, 3, 5), datetime.date(2026 - 18, 3, 6), datetime.date(2026 - 65, 3, 5),
              datetime.date(2026 - 65, 3, 6), datetime.date(2008, 2, 29), datetime.date(2000, 2, 29),
              datetime.date(2026, 3, 6), datetime.date(1800, 1, 1), datetime.date(2026 - 25, 3, 4)]
    for i, born in enumerate(births):
        create_contact(co.actors["admin"], first_name=f"B{i}", birthday=born.isoformat(), responsible=co.users["m1"].pk)
    expected: dict = {}
    for born in Contact.objects.filter(deleted_at__isnull=True).values_list("birthday", flat=True):
        band = "unknown"
        if born is not None:
            age = _age(born, today)
            band = next((name for lo, hi, name in AGE_BANDS if lo <= age < hi), "unknown")
        expected[band] = expected.get(band, 0) + 1
    got = {k: v[0] for k, v in by_label(run(co, "admin", "portrait", by="age"), "all").items()}
    assert got == expected
    assert got["65+"] == 1 and got["<18"] == 1  # 65 today counts as 65+, 18 tomorrow is still under 18
