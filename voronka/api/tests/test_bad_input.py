"""Point 8 of the foundation: every kind of bad input gets a clear 4xx naming the field, and nothing is
half written. Each case counts the rows of every table a write touches before and after."""

from __future__ import annotations

import json

import pytest

from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.deals.models import Deal
from voronka.leads.models import Lead
from voronka.parties.models import Communication, Contact
from voronka.pipelines.models import StageHistory

pytestmark = pytest.mark.django_db

ROOT = "_"


def _state():
    return tuple(m.objects.count() for m in (Lead, Deal, Contact, Communication, StageHistory, TimelineEntry,
                                             OutboxEvent))


@pytest.fixture
def custom_fields(admin):
    from voronka.customfields.actions import define_field

    define_field(admin, entity_type_id=1, code="uf_budget", label="Бюджет", kind="integer")
    define_field(admin, entity_type_id=1, code="uf_model", label="Модель", kind="string", max_length=20)


CREATE_CASES = [
    pytest.param({"phones": ["не телефон"]}, "phones", 422, id="invalid phone"),
    pytest.param({"phones": ["+7 916 123"]}, "phones", 422, id="too short phone"),
    pytest.param({"phones": [{"value": "+79161234567", "type": "pager"}]}, "phones", 422, id="unknown phone type"),
    pytest.param({"phones": "+79161234567"}, "phones", 422, id="phones not a list"),
    pytest.param({"emails": ["nobody@"]}, "emails", 422, id="invalid e-mail"),
    pytest.param({"stage": "nope"}, "stage", 422, id="unknown stage"),
    pytest.param({"stage": 999999}, "stage", 422, id="unknown stage id"),
    pytest.param({"pipeline": "nope"}, "pipeline", 422, id="unknown pipeline"),
    pytest.param({"stage": "qualified"}, "phones", 422, id="missing required field for the stage"),
    pytest.param({"custom": {"uf_budget": "много"}}, "custom.uf_budget", 422, id="wrong type in custom field"),
    pytest.param({"custom": {"uf_model": "x" * 21}}, "custom.uf_model", 422, id="over-long custom text"),
    pytest.param({"custom": {"uf_nope": 1}}, "custom.uf_nope", 422, id="unknown custom field"),
    pytest.param({"custom": "uf_budget=1"}, "custom", 422, id="custom not an object"),
    pytest.param({"title": "x" * 256}, "title", 422, id="over-long title"),
    pytest.param({"first_name": "x" * 101}, "first_name", 422, id="over-long name"),
    pytest.param({"bogus": 1}, "bogus", 422, id="unknown field"),
    pytest.param({"title": 5}, "title", 422, id="number for text"),
    pytest.param({"first_name": ["list"]}, "first_name", 422, id="list for text"),
    pytest.param({"opportunity": "много"}, "opportunity", 422, id="text for money"),
    pytest.param({"opportunity": "1e30"}, "opportunity", 422, id="money too large"),
    pytest.param({"currency": "RUBLES"}, "currency", 422, id="over-long currency"),
    pytest.param({"responsible": 999999}, "responsible", 422, id="unknown user"),
    pytest.param({"responsible": 2**70}, "responsible", 422, id="id beyond any column"),
    pytest.param({"responsible": "главный"}, "responsible", 422, id="text for a user id"),
    pytest.param({"is_open": "perhaps"}, "is_open", 422, id="text for a boolean"),
    pytest.param({"title": "a\x00b"}, "title", 422, id="NUL character"),
    pytest.param({"comment": "\ud800"}, "comment", 422, id="lone surrogate"),
]


@pytest.mark.parametrize("data, field, status", CREATE_CASES)
def test_create_refuses_and_writes_nothing(api, lead_pipeline, custom_fields, data, field, status):
    before = _state()
    response = api.post("/leads", {"title": "Заявка", **data})
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == "validation_failed" and body["message"]
    assert field in body["fields"], body
    assert all(isinstance(m, str) and m for m in body["fields"][field])
    assert _state() == before


@pytest.mark.parametrize("data, field, status", CREATE_CASES)
def test_update_refuses_and_changes_nothing(api, lead_pipeline, custom_fields, data, field, status):
    lead = api.post("/leads", {"title": "Было", "custom": {"uf_budget": 1}}).json()
    before = _state()
    response = api.patch(f"/leads/{lead['id']}", data)
    if field == "phones" and data == {"stage": "qualified"}:
        assert response.status_code == 422  # the stage asks for phones the lead does not have
    assert response.status_code == status, response.content
    assert field in response.json()["fields"], response.json()
    assert _state() == before
    assert api.get(f"/leads/{lead['id']}").json() == lead


@pytest.mark.parametrize("raw, status, code", [
    pytest.param("{bad json", 400, "invalid_json", id="broken JSON"),
    pytest.param('{"title": "x",}', 400, "invalid_json", id="trailing comma"),
    pytest.param(b"\xff\xfe", 400, "invalid_json", id="not UTF-8"),
    pytest.param("[" * 100000 + "]" * 100000, 400, "invalid_json", id="nested too deep"),
    pytest.param("", 400, "body_required", id="empty body"),
    pytest.param("[1, 2]", 422, "validation_failed", id="array instead of object"),
    pytest.param('"text"', 422, "validation_failed", id="string instead of object"),
    pytest.param("null", 422, "validation_failed", id="null instead of object"),
])
def test_malformed_bodies(api, lead_pipeline, raw, status, code):
    before = _state()
    response = api.post("/leads", raw=raw)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["message"]
    assert ROOT in body["fields"]
    assert _state() == before


def test_stage_of_another_pipeline(api, deal_pipelines):
    offer = deal_pipelines["repeat"].stages.get(code="offer")
    before = _state()
    for data in ({"pipeline": "sales", "stage": "offer"}, {"pipeline": "sales", "stage": offer.pk},
                 {"pipeline": deal_pipelines["sales"].pk, "stage": str(offer.pk)}):
        response = api.post("/deals", {"title": "Сделка", **data})
        assert response.status_code == 422, response.content
        assert "stage" in response.json()["fields"]
    assert _state() == before


def test_move_with_bad_input(api, lead_pipeline, custom_fields):
    lead = api.post("/leads", {"title": "Лид"}).json()
    before = _state()
    for data, field in (({"stage": "nope"}, "stage"), ({"stage": "qualified"}, "phones"),
                        ({"stage": "qualified", "fields": {"phones": ["не телефон"]}}, "phones"),
                        ({"stage": "assigned", "fields": {"custom": {"uf_budget": "x"}}}, "custom.uf_budget"),
                        ({"stage": "assigned", "fields": {"bogus": 1}}, "bogus"),
                        ({"stage": "assigned", "fields": {"title": "a\x00"}}, "title"),
                        ({"stage": "assigned", "fields": {"stage": "junk"}}, "fields"),
                        ({"stage": "assigned", "extra": 1}, "extra"),
                        ({}, "stage")):
        response = api.post(f"/leads/{lead['id']}/move", data)
        assert response.status_code == 422, (data, response.content)
        assert field in response.json()["fields"], (data, response.json())
    assert _state() == before
    assert api.get(f"/leads/{lead['id']}").json() == lead


def test_the_last_bad_item_of_a_bulk_keeps_the_others(api, lead_pipeline):
    before = _state()
    response = api.post("/leads/bulk", raw=json.dumps({"items": [{"title": "ok"}, {"title": "x" * 300}]}))
    assert [r["ok"] for r in response.json()["items"]] == [True, False]
    assert _state()[0] == before[0] + 1


@pytest.mark.parametrize("deadline, status", [
    ("2026-02-01T10:00:00-23:00", 201),  # ISO allows it, PostgreSQL does not: stored as the same instant in UTC
    ("9999-12-31T23:59:59-10:00", 422),  # beyond year 9999 in UTC
    ("2026-02-30T10:00:00", 422),
])
def test_task_deadlines_at_the_edges(api, deadline, status):
    from voronka.activities.models import Task

    response = api.post("/tasks", {"title": "Срок", "deadline": deadline})
    assert response.status_code == status, response.content
    if status == 201:
        assert Task.objects.get().deadline.isoformat() == "2026-02-02T09:00:00+00:00"
    else:
        assert "deadline" in response.json()["fields"] and Task.objects.count() == 0


def _cursor(value) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("order, cursor", [
    ("created_at", ["вчера", 1]),
    ("created_at", [12, 1]),
    ("opportunity", ["1e999999", 1]),
    ("opportunity", ["NaN", 1]),
    ("title", [["a"], 1]),
    ("title", ["a\u0000", 1]),
    ("-id", [None, 2**80]),
    ("-id", [None, True]),
    ("-id", [None]),
])
def test_forged_cursors_are_400(api, lead_pipeline, order, cursor):
    api.post("/leads/bulk", {"items": [{"title": "a"}, {"title": "b"}]})
    response = api.get("/leads", order=order, cursor=_cursor(cursor), limit=1)
    assert response.status_code == 400, response.content
    assert "cursor" in response.json()["fields"]
    assert api.get("/leads").status_code == 200  # the connection is still usable (PostgreSQL)


def test_filter_dates_with_any_offset(api, lead_pipeline):
    api.post("/leads", {"title": "a"})
    assert len(api.get("/leads", created_at_from="2000-01-01T00:00:00-23:00").json()["items"]) == 1
    odd = api.get("/leads", order="created_at", cursor=_cursor(["0841-02-02 03:12:45-23:00", 1]))
    assert odd.status_code == 200 and len(odd.json()["items"]) == 1  # read as the same instant in UTC
    response = api.get("/leads", created_at_to="9999-12-31T23:59:59-23:00")
    assert response.status_code == 400 and "created_at_to" in response.json()["fields"]
