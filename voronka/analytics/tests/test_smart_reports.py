"""Reports on a smart process's pipelines (issue 7): the deal reports, taking the process as ``entity``, through the
entity-type registry, with figures computed by hand — once from the read models and once from the records.

The process «Production orders» (code ``orders``): Queued → Cutting → Painting → Done / Rejected. Times are UTC, at
09:00 (noon in Moscow, the installation's zone), the period is January–February 2026, now is 5 March 12:00.

    I1 m1 1 000  made 5 Jan, Cutting 6 Jan, Painting 8 Jan, back to Cutting 9 Jan, Painting 12 Jan, Done 15 Jan
    I2 m1 2 000  made 10 Jan, Cutting 11 Jan, Rejected 13 Jan
    I3 m2 3 000  made 20 Jan, Cutting 22 Jan (still there); a task of m2 due 1 March, open
    I4 m2 4 000  made 3 Feb, Done 4 Feb (skips Cutting and Painting)
    I5 m1 5 000  made 5 Feb, Cutting 6 Feb, deleted 7 Feb (counts nowhere)
    I6 m2 6 000  made 10 Feb, Rejected 11 Feb, re-opened to Queued 12 Feb, Cutting 14 Feb (still there)
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import translation

from voronka.analytics import reports
from voronka.core.actor import Actor

from .company import NOW, Clock, at

pytestmark = pytest.mark.django_db
PERIOD = {"date_from": "2026-01-01", "date_to": "2026-02-28"}
DAY = 86400


@pytest.fixture(params=["read model", "exact"])
def orders(request, monkeypatch, admin):
    from voronka.activities.actions import create_task
    from voronka.analytics import readmodel
    from voronka.identity.models import User
    from voronka.items.actions import create_item, create_type, delete_item, move_item
    from voronka.pipelines.models import Pipeline

    monkeypatch.setattr(readmodel, "ENABLED", request.param == "read model")
    clock = Clock(monkeypatch)
    clock.set(at(1, 1))
    t = create_type(admin, name="Production order", name_plural="Production orders", code="orders", pipeline_name="General", stages=[
        {"name": "Queued", "code": "queued"}, {"name": "Cutting", "code": "cutting"},
        {"name": "Painting", "code": "painting"}, {"name": "Done", "code": "done", "semantics": "success"},
        {"name": "Rejected", "code": "rejected", "semantics": "failure"}])
    m1 = User.objects.create_user("m1", "m1@example.ru", "m1-pass", first_name="Мария", last_name="Первая")
    m2 = User.objects.create_user("m2", "m2@example.ru", "m2-pass", first_name="Николай", last_name="Второй")
    made = {}

    def item(name, amount, who, when):
        clock.set(when)
        made[name] = create_item(admin, "orders", title=name, opportunity=amount, responsible=who.pk)

    def move(name, stage, when):
        clock.set(when)
        move_item(admin, "orders", made[name].pk, stage=stage)

    item("I1", "1000", m1, at(1, 5, 9))
    for stage, day in (("cutting", 6), ("painting", 8), ("cutting", 9), ("painting", 12), ("done", 15)):
        move("I1", stage, at(1, day, 9))
    item("I2", "2000", m1, at(1, 10, 9))
    move("I2", "cutting", at(1, 11, 9))
    move("I2", "rejected", at(1, 13, 9))
    item("I3", "3000", m2, at(1, 20, 9))
    move("I3", "cutting", at(1, 22, 9))
    create_task(admin, title="Check the sheet", responsible=m2.pk, deadline=at(3, 1, 9), entity_type_id=t.id,
                entity_id=made["I3"].pk)
    item("I4", "4000", m2, at(2, 3, 9))
    move("I4", "done", at(2, 4, 9))
    item("I5", "5000", m1, at(2, 5, 9))
    move("I5", "cutting", at(2, 6, 9))
    clock.set(at(2, 7, 9))
    delete_item(admin, "orders", made["I5"].pk)
    item("I6", "6000", m2, at(2, 10, 9))
    move("I6", "rejected", at(2, 11, 9))
    move("I6", "queued", at(2, 12, 9))
    move("I6", "cutting", at(2, 14, 9))
    clock.set(NOW)
    with translation.override("en"):
        yield {"type": t, "items": made, "m1": m1, "m2": m2, "path": request.param,
               "pipeline": Pipeline.objects.get(entity_type_id=t.id)}


def run(actor, slug, **q):
    return reports.run(actor, slug, {**PERIOD, "entity": "orders", **{k: str(v) for k, v in q.items()}})


def by_label(report, *keys):
    return {r["label"]: tuple(r[k] for k in keys) for r in report.rows}


def close(value, expected, path):
    """A median or percentile: exact from the records, within the histograms' bound from the read model."""
    from voronka.pipelines.stays import ERROR_BOUND

    if path == "exact":
        return value == expected
    return value is not None and abs(value - expected) <= ERROR_BOUND * expected


def test_the_read_model_answers_a_new_process(orders, admin):
    r = run(admin, "funnel")
    assert r.details["read_model"] is (orders["path"] == "read model")
    r = run(admin, "stage-time")
    assert r.details["read_model"] is (orders["path"] == "read model")


def test_funnel(orders, admin):
    r = run(admin, "funnel")
    assert r.title == "Stage funnel: Production orders · General"
    assert by_label(r, "reached", "amount", "dropped", "dropped_amount") == {
        "Queued": (5, Decimal("16000.00"), 0, Decimal("0.00")),
        "Cutting": (5, Decimal("16000.00"), 3, Decimal("11000.00")),  # I4 skipped it: passes through
        "Painting": (2, Decimal("5000.00"), 0, Decimal("0.00")),
        "Success": (2, Decimal("5000.00"), None, None)}
    assert {x["label"]: (x["count"], x["amount"]) for x in r.details["lost"]} == {"Rejected": (1, Decimal("2000.00"))}
    cutting = next(x for x in r.rows if x["label"] == "Cutting")
    assert cutting["filter"]["reached_stage"] == str(cutting["key"])
    # the same with the pipeline alone: a smart process's pipeline chooses its process
    r2 = reports.run(admin, "funnel", {**PERIOD, "pipeline": str(orders["pipeline"].pk)})
    assert by_label(r2, "reached") == by_label(r, "reached")


def test_items_by_pipeline_and_period(orders, admin):
    cols = ("deals", "amount", "open", "won", "won_amount", "lost")
    r = run(admin, "deals", group="month")
    assert r.title == "Production orders by pipeline and period"
    assert by_label(r, *cols) == {"2026-01": (3, Decimal("6000.00"), 1, 1, Decimal("1000.00"), 1),
                                  "2026-02": (2, Decimal("10000.00"), 1, 1, Decimal("4000.00"), 0)}
    assert r.totals["won_rate"] == 66.7
    r = run(admin, "deals", group="pipeline")
    assert by_label(r, "deals", "amount") == {"General": (5, Decimal("16000.00"))}
    assert r.columns[0].entity == "orders"


def test_time_to_close(orders, admin):
    r = run(admin, "time-to-close", group="month")
    got = by_label(r, "won", "won_avg", "lost", "lost_avg")
    assert got == {"2026-01": (1, 10.0 * DAY, 1, 3.0 * DAY), "2026-02": (1, 1.0 * DAY, 0, None)}
    jan = next(x for x in r.rows if x["label"] == "2026-01")
    assert close(jan["won_median"], 10 * DAY, orders["path"]) and close(jan["lost_median"], 3 * DAY, orders["path"])
    assert (r.totals["won"], r.totals["won_avg"], r.totals["lost"]) == (2, 5.5 * DAY, 1)


def test_time_in_each_stage(orders, admin):
    path = orders["path"]
    r = run(admin, "stage-time")
    rows = {x["label"]: x for x in r.rows}
    assert list(rows) == ["Queued", "Cutting", "Painting"]
    # Queued: I1 1 d, I2 1 d, I3 2 d, I4 1 d, I6 1 d and, after its re-opening, 2 d (I5 is deleted)
    q = rows["Queued"]
    assert (q["left"], q["now"]) == (6, 0)
    assert q["avg"] == pytest.approx(8 * DAY / 6)
    assert close(q["median"], DAY, path) and close(q["p90"], 2 * DAY, path)
    c = rows["Cutting"]  # I1 2 d and 3 d, I2 2 d; I3 and I6 are there now
    assert (c["left"], c["now"], c["avg"]) == (3, 2, pytest.approx(7 * DAY / 3))
    assert close(c["median"], 2 * DAY, path) and close(c["p90"], 3 * DAY, path)
    assert c["now_max"] == (42 * DAY + 3 * 3600)  # I3 since 22 Jan 09:00
    assert [(x["title"], x["ongoing"]) for x in c["slowest"]] == [("I3", True), ("I6", True), ("I1", False),
                                                                  ("I1", False), ("I2", False)]
    p = rows["Painting"]  # I1 1 d and 3 d
    assert (p["left"], p["avg"]) == (2, 2.0 * DAY) and close(p["p90"], 3 * DAY, path)
    assert r.title == "Time in each stage: Production orders · General"


def test_lost_reasons(orders, admin):
    r = run(admin, "lost-reasons")
    assert by_label(r, "count", "amount", "share") == {"Rejected": (1, Decimal("2000.00"), 100.0)}
    assert r.rows[0]["filter"]["semantics"] == "failure"


def test_manager_load(orders, admin):
    r = run(admin, "managers")
    cols = ("open", "open_amount", "overdue_tasks", "new", "won", "won_amount", "win_rate", "close_median")
    assert by_label(r, *cols) == {
        "Мария Первая": (0, Decimal("0.00"), 0, 2, 1, Decimal("1000.00"), 50.0, 10.0 * DAY),
        "Николай Второй": (2, Decimal("9000.00"), 1, 3, 1, Decimal("4000.00"), 100.0, 1.0 * DAY)}
    assert r.title == "Manager load and efficiency: Production orders"
    assert (r.totals["open"], r.totals["new"], r.totals["won"], r.totals["win_rate"]) == (2, 5, 2, 66.7)


def test_plan_for_a_smart_pipeline(orders, admin):
    from voronka.analytics.actions import save_plan

    save_plan(admin, period="month", starts_on=datetime.date(2026, 2, 1), amount="8000", count=2,
              pipeline=orders["pipeline"].pk)
    r = reports.run(admin, "plan-fact", PERIOD)
    (row,) = r.rows
    assert (row["fact_amount"], row["fact_count"], row["done"]) == (Decimal("4000.00"), 1, 50.0)  # I4 done 4 Feb
    assert row["entity"] == "orders" and row["filter"]["pipeline"] == str(orders["pipeline"].pk)


def test_a_restored_item_counts_again(orders, admin):
    from voronka.items.actions import restore_item

    restore_item(admin, "orders", orders["items"]["I5"].pk)
    r = run(admin, "funnel")
    assert by_label(r, "reached")["Cutting"] == (6,)
    assert r.details["read_model"] is (orders["path"] == "read model")


def test_the_list_behind_a_number(orders, admin_user, client):
    client.force_login(admin_user)
    client.cookies["django_language"] = "en"
    page = client.get("/reports/funnel/?" + "&".join(f"{k}={v}" for k, v in PERIOD.items()) + "&entity=orders")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Stage funnel: Production orders · General" in html
    assert "/crm/orders/?" in html and "reached_stage=" in html
    cutting = orders["pipeline"].stages.get(code="cutting").pk
    listing = client.get(f"/crm/orders/?reached_stage={cutting}&created_from=2026-01-01&created_to=2026-02-28"
                         f"&pipeline={orders['pipeline'].pk}").content.decode()
    for name in ("I1", "I2", "I3", "I4", "I6"):
        assert f">{name}<" in listing
    assert ">I5<" not in listing
    page = client.get("/reports/stage-time/?" + "&".join(f"{k}={v}" for k, v in PERIOD.items()) + "&entity=orders")
    assert f"/crm/orders/{orders['items']['I3'].pk}/" in page.content.decode()


def _reader(login, type_id, scope):
    from voronka.identity.models import Role, RoleAssignment, RolePermission, User
    from voronka.identity.permissions import rights_changed

    user = User.objects.filter(username=login).first() or User.objects.create_user(login, f"{login}@example.ru", "pw")
    if scope is not None:
        role = Role.objects.create(code=f"r_{login}", name=f"Role {login}")
        RolePermission.objects.create(role=role, entity_type_id=type_id, perm="read", scope=scope)
        RoleAssignment.objects.create(role=role, user=user)
    rights_changed()
    return user


def test_rights_own_items_only(orders):
    """m1 reads only his own orders: every figure is his I1 and I2, from the read model as from the records."""
    from voronka.identity.models import Scope

    m1 = Actor.for_user(_reader("m1", orders["type"].id, Scope.OWN), "test")
    r = run(m1, "funnel")
    assert by_label(r, "reached", "amount") == {"Queued": (2, Decimal("3000.00")), "Cutting": (2, Decimal("3000.00")),
                                                "Painting": (1, Decimal("1000.00")), "Success": (1, Decimal("1000.00"))}
    assert r.details["read_model"] is (orders["path"] == "read model")
    assert by_label(run(m1, "deals", group="none"), "deals", "won") == {"Total": (2, 1)}
    assert by_label(run(m1, "managers"), "new") == {"Мария Первая": (2,)}
    stays = {x["label"]: x["left"] for x in run(m1, "stage-time").rows}
    assert stays == {"Queued": 2, "Cutting": 3, "Painting": 2}
    assert run(m1, "time-to-close").totals["won"] == 1


def test_rights_no_right_on_the_process_is_not_found(orders, client):
    """A deals manager without any right on the process: no process in the picker, 404 for every report on it (the
    same answer as for a process that does not exist), in the code, the API and the pages."""
    from voronka.api.tests.conftest import bearer
    from voronka.core.errors import NotFound
    from voronka.identity.models import ApiToken, Role, RoleAssignment
    from voronka.identity.permissions import rights_changed

    user = _reader("stranger", 0, None)
    RoleAssignment.objects.create(role=Role.objects.get(code="sales_manager"), user=user)
    rights_changed()
    stranger = Actor.for_user(user, "test")
    for slug in ("funnel", "deals", "stage-time", "time-to-close", "lost-reasons", "managers"):
        for ref in ("orders", str(orders["type"].id), "nothing-such"):
            with pytest.raises(NotFound):
                reports.run(stranger, slug, {**PERIOD, "entity": ref})
    # the process's pipeline alone does not choose it for him: it is an unknown deal pipeline, as any other
    with pytest.raises(reports.ValidationFailed):
        reports.run(stranger, "funnel", {**PERIOD, "pipeline": str(orders["pipeline"].pk)})
    assert reports.run(stranger, "deals", {**PERIOD, "pipeline": str(orders["pipeline"].pk)}).totals["deals"] == 0
    api = bearer(ApiToken.issue(user, name="t")[1])
    assert api.get("/analytics/funnel", entity="orders", **PERIOD).status_code == 404
    assert api.get("/analytics/funnel", entity="orders", format="csv", **PERIOD).status_code == 404
    listed = {x["slug"]: x["entities"] for x in api.get("/analytics").json()["items"]}
    assert "orders" not in listed["funnel"] and listed["funnel"][:2] == ["deal", "lead"]
    client.force_login(user)
    client.cookies["django_language"] = "en"
    assert client.get("/reports/funnel/?entity=orders").status_code == 404
    page = client.get("/reports/funnel/").content.decode()
    assert "Production orders" not in page and "orders" not in page.split('name="entity"')[1].split("</select>")[0]


def test_rights_a_process_reader_gets_the_picker(orders, client):
    from voronka.identity.models import Scope

    user = _reader("master", orders["type"].id, Scope.ALL)
    client.force_login(user)
    client.cookies["django_language"] = "en"
    page = client.get("/reports/funnel/").content.decode()
    assert '<option value="orders"' in page and "Production orders: General" in page
    page = client.get("/reports/funnel/?entity=orders&date_from=2026-01-01&date_to=2026-02-28")
    assert page.status_code == 200 and "Stage funnel: Production orders · General" in page.content.decode()
    page = client.get("/reports/managers/?entity=orders&date_from=2026-01-01&date_to=2026-02-28").content.decode()
    assert "Николай Второй" in page
    assert client.get("/reports/").status_code == 200
    # a mismatched pipeline is a clear error, not empty figures
    page = client.get("/reports/deals/?entity=orders&pipeline=999999")
    assert page.status_code == 422 and "Not a pipeline of" in page.content.decode()


@pytest.mark.parametrize("slug", ["funnel", "deals", "stage-time", "time-to-close", "lost-reasons", "managers"])
def test_queries_do_not_grow_with_items(orders, admin, slug):
    """The reports on a process cost the same number of statements with 5 items or 45 (read by the database in
    aggregates; only the five slowest per stage are read one by one)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.items.actions import create_item, move_item

    def count():
        with CaptureQueriesContext(connection) as ctx:
            run(admin, slug)
        return len(ctx.captured_queries)

    before = count()
    for i in range(40):
        made = create_item(admin, "orders", title=f"Extra {i}", opportunity=100, responsible=orders["m1"].pk)
        move_item(admin, "orders", made.pk, stage="cutting" if i % 2 else "rejected")
    after = count()
    print(f"{slug} [{orders['path']}]: {before} statements, {after} with 40 more items")
    assert after <= before + 1  # the slowest-items lookups may read one more stage's stays
