"""The single-create fast path of the API: the 201 body is rendered from the values in hand without the output
schema's second validation, so it must be exactly what the schema would give (and what a read gives)."""

from __future__ import annotations

import json

import pytest

from voronka.api.records import created_response
from voronka.api.resources import COMPANIES, CONTACTS, DEALS, LEADS
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db


def _fields(admin):
    from voronka.customfields.actions import define_field

    define_field(admin, entity_type_id=1, code="uf_budget", label="Бюджет", kind="decimal")
    define_field(admin, entity_type_id=1, code="uf_when", label="Когда", kind="datetime")
    define_field(admin, entity_type_id=1, code="uf_vip", label="VIP", kind="boolean")


RICH = {"title": "Полный лид", "first_name": "Иван", "last_name": "Петров", "opportunity": "1500.5",
        "currency": "RUB", "source": "web", "comment": "Перезвонить", "is_open": True,
        "utm_source": "yandex", "phones": [{"value": "8 (916) 123-45-67", "type": "work"}],
        "emails": ["Ivan@Example.RU"],
        "custom": {"uf_budget": "12.30", "uf_when": "2026-11-24T10:15:00+03:00", "uf_vip": True}}


def test_the_created_body_is_what_a_read_of_the_record_gives(api, admin, lead_pipeline):
    _fields(admin)
    response = api.post("/leads", RICH)
    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    created = response.json()
    assert created == api.get(f"/leads/{created['id']}").json()
    assert created["opportunity"] == "1500.50" and created["phones"][0]["normalized"] == "+79161234567"


def test_a_title_only_create_answers_like_a_read(api, lead_pipeline):
    created = api.post("/leads", {"title": "Только название"}).json()
    assert created == api.get(f"/leads/{created['id']}").json()
    assert created["phones"] == [] and created["emails"] == []


@pytest.mark.parametrize("kind", ["leads", "deals", "contacts", "companies"])
def test_the_fast_body_equals_the_schema_validated_one(kind, api, admin, lead_pipeline, deal_pipelines):
    from ninja.renderers import JSONRenderer

    from voronka.api import serialize

    rt = {"leads": LEADS, "deals": DEALS, "contacts": CONTACTS, "companies": COMPANIES}[kind]
    if kind == "leads":
        _fields(admin)
        obj = create_lead(admin, **RICH)
    else:
        obj = rt.actions.create(admin, **({"title": "Сделка", "opportunity": "99.9"} if kind == "deals" else
                                          {"name": "ООО Ромашка"} if kind == "companies" else
                                          {"first_name": "Анна", "phones": ["+79161234568"]}))
    data = serialize.record(rt.spec, obj)
    fast = json.loads(created_response(data).content)
    validated = rt.schemas["out"].model_validate(data).model_dump()
    assert fast == json.loads(JSONRenderer().render(None, validated, response_status=201))


def test_the_body_text_is_ninjas_text():
    """The 201 body's own rendering writes byte for byte what Ninja's encoder writes, fallback included."""
    import datetime
    import decimal
    import zoneinfo

    from ninja.responses import NinjaJSONEncoder

    from voronka.api.records import render_json

    moscow = zoneinfo.ZoneInfo("Europe/Moscow")
    data = {"id": 7, "title": "Ромашка \"кавычки\"", "opportunity": decimal.Decimal("1500.50"), "ok": True,
            "none": None, "rate": 0.5, "created_at": datetime.datetime(2026, 11, 24, 22, 1, 2, 345678, tzinfo=datetime.UTC),
            "moved_at": datetime.datetime(2026, 11, 24, 22, 1, 2, tzinfo=moscow),
            "naive": datetime.datetime(2026, 1, 2, 3, 4, 5), "day": datetime.date(2026, 11, 24),
            "phones": [{"value": "+7 916", "type": "mobile"}], "custom": {"x": [1, "два"]}}
    assert render_json(data) == json.dumps(data, cls=NinjaJSONEncoder)
    nested = {**data, "custom": {"when": datetime.date(2026, 1, 1), "sum": decimal.Decimal("1.0")}}
    assert render_json(nested) == json.dumps(nested, cls=NinjaJSONEncoder)  # the fallback


def test_a_warm_single_create_sends_a_fixed_list_of_statements(api, lead_pipeline,
                                                               django_capture_on_commit_callbacks):
    """A bound that fails when someone adds a statement to a create. SQLite: versions (1), transaction (2), the
    lead, its phone, stage history, board and daily totals, timeline and outbox (7). PostgreSQL: versions,
    BEGIN, the lead, one statement for all the side rows, COMMIT (5 statements, 5 round trips). Nothing else: no
    token, settings or rights lookup once they are cached."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.pipelines import daily

    daily._noted.clear()
    with django_capture_on_commit_callbacks(execute=True):  # the stage-order note is remembered after commit
        assert api.post("/leads", {"title": "Прогрев", "phones": ["+79161230000"]}).status_code == 201
    with CaptureQueriesContext(connection) as ctx:
        assert api.post("/leads", {"title": "Счёт", "phones": ["+79161230001"]}).status_code == 201
    sqls = [q["sql"] for q in ctx.captured_queries]
    shown = "\n".join(sqls)
    assert not any("identity_" in s or "pipelines_stage\"" in s or "dailytotalstate" in s for s in sqls), shown
    side = ["parties_communication", "pipelines_stagehistory", "pipelines_stagetotal", "pipelines_dailytotal",
            "core_timelineentry", "core_outboxevent"]
    if connection.vendor == "postgresql":
        assert len(sqls) == 5, shown
        assert sqls[0].startswith("SELECT") and "core_configversion" in sqls[0]
        # BEGIN and COMMIT (a savepoint and its release inside the test's transaction)
        assert sqls[1].startswith(("BEGIN", "SAVEPOINT")) and sqls[-1].startswith(("COMMIT", "RELEASE"))
        assert sqls[2].startswith('INSERT INTO "leads_lead"')
        assert sqls[3].startswith("WITH ") and all(table in sqls[3] for table in side), shown
    else:
        assert len(sqls) == 10, shown
        assert [next((t for t in side if t in q), None) for q in sqls[3:9]] == side, shown


def test_several_records_in_one_side_statement_keep_every_row(admin, lead_pipeline,
                                                              django_capture_on_commit_callbacks):
    """A small bulk create (under fastinsert.COPY_FROM) writes its side rows in one statement on PostgreSQL:
    several VALUES rows per table, one upsert row per totals key, and the totals add up like one by one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.core.models import OutboxEvent, TimelineEntry
    from voronka.leads.actions import create_leads
    from voronka.parties.models import Communication
    from voronka.pipelines.models import StageHistory, StageTotal

    with django_capture_on_commit_callbacks(execute=True):  # the stage-order note: once per process, its own upsert
        create_leads(admin, [{"title": "Прогрев"}])
    before = sum(StageTotal.objects.filter(entity_type_id=1).values_list("count", flat=True))
    with CaptureQueriesContext(connection) as ctx:
        results = create_leads(admin, [{"title": f"Пакет {i}", "phones": [f"+7916123450{i}"], "opportunity": "10"}
                                       for i in range(5)])
    assert all(r.ok for r in results)
    ids = [r.obj.pk for r in results]
    assert Communication.objects.filter(entity_type_id=1, entity_id__in=ids).count() == 5
    assert StageHistory.objects.filter(entity_type_id=1, entity_id__in=ids).count() == 5
    assert TimelineEntry.objects.filter(entity_type_id=1, entity_id__in=ids, kind="created").count() == 5
    assert OutboxEvent.objects.filter(entity_type_id=1, entity_id__in=ids, name="lead.created").count() == 5
    assert sum(StageTotal.objects.filter(entity_type_id=1).values_list("count", flat=True)) == before + 5
    if connection.vendor == "postgresql":
        assert len([q for q in ctx.captured_queries if q["sql"].startswith("WITH ")]) == 1, "\n".join(q["sql"][:300] for q in ctx.captured_queries)


def _prepared_statements() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_postgres_prepares_a_creates_statements_once_per_connection(api, admin, lead_pipeline):
    """The versions read, the record's INSERT and the side rows' statement are bound on the server and prepared
    by the first create of a connection; later creates of the same shape reuse them, and the values arrive intact."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("server-side binding and prepared statements are PostgreSQL's")
    _fields(admin)
    created = [api.post("/leads", {**RICH, "title": "Прогрев", "phones": ["+79161230070"]})]  # token, stage-order note
    created.append(api.post("/leads", {**RICH, "phones": ["+79161230071"]}))
    prepared = _prepared_statements()
    assert any(s.startswith('INSERT INTO "leads_lead"') for s in prepared), prepared
    assert any(s.startswith("WITH w0 AS (INSERT INTO") for s in prepared), prepared
    assert any("core_configversion" in s for s in prepared), prepared
    created.append(api.post("/leads", {**RICH, "title": "Третий", "phones": ["+79161230072"]}))
    assert sorted(_prepared_statements()) == sorted(prepared)  # the same statements again, none new
    for response in created:
        assert response.status_code == 201, response.content
        assert response.json() == api.get(f"/leads/{response.json()['id']}").json()
    body = created[-1].json()
    assert body["opportunity"] == "1500.50" and body["custom"]["uf_vip"] is True and body["first_name"] == "Иван"


def test_postgres_without_prepare_binds_but_prepares_nothing(api, lead_pipeline, settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("server-side binding and prepared statements are PostgreSQL's")
    settings.VORONKA_PG_PREPARE = False
    before = _prepared_statements()
    assert not any(s.startswith('INSERT INTO "leads_lead"') for s in before), before
    for n in range(3):
        assert api.post("/leads", {"title": f"Без подготовки {n}", "phones": [f"+7916123008{n}"]}).status_code == 201
    assert _prepared_statements() == before


def test_connections_closed_after_each_request_never_prepare(settings):
    from django.db import connection

    from voronka.core import bound

    saved = connection.settings_dict.get("CONN_MAX_AGE")
    try:
        connection.settings_dict["CONN_MAX_AGE"] = 0
        assert not bound.preparing(connection)
        connection.settings_dict["CONN_MAX_AGE"] = 600
        assert bound.preparing(connection)
        settings.VORONKA_PG_PREPARE = False
        assert not bound.preparing(connection)
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = saved
