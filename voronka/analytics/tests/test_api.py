"""Reports over the API: JSON, CSV/XLSX for those with the export right, plans, stage settings, errors."""

from __future__ import annotations

import io

import pytest
from django.utils import translation

from voronka.api.tests.conftest import ApiClient, bearer
from voronka.core.models import AuditEvent
from voronka.identity.models import ApiToken

from .company import build

pytestmark = pytest.mark.django_db

Q = {"date_from": "2026-01-01", "date_to": "2026-02-28"}


@pytest.fixture
def co(monkeypatch):
    with translation.override("en"):
        yield build(monkeypatch)


def client(co, who) -> ApiClient:
    return bearer(ApiToken.issue(co.users[who], name="t")[1])


def test_json_csv_xlsx_and_rights(co, settings):
    settings.LANGUAGE_CODE = "en"  # the export's «Total» row is asserted in English
    head, m1, own = client(co, "head"), client(co, "m1"), client(co, "own")
    r = head.get("/analytics")
    assert r.status_code == 200 and "end-to-end" in {x["slug"] for x in r.json()["items"]}
    r = head.get("/analytics/new-leads", **Q)
    assert r.status_code == 200, r.content
    body = r.json()
    assert [(x["label"], x["leads"]) for x in body["rows"]] == [("2026-01", 1), ("2026-02", 3)]
    assert body["time_zone"] == "Europe/Moscow" and body["columns"][0]["entity"] == "lead"
    assert own.get("/analytics/new-leads", **Q).json()["totals"]["leads"] == 0

    r = head.get("/analytics/deals", format="csv", group="none", **Q)
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[1].startswith("Total;6;275000.0")
    assert AuditEvent.objects.filter(action="analytics.exported", actor_user_id=co.users["head"].pk).count() == 1
    r = head.get("/analytics/funnel", format="xlsx", **Q)
    assert r.status_code == 200
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(r.content)).active
    assert [c.value for c in next(ws.iter_rows(min_row=2, max_row=2))][:2] == ["Новая", 4]
    # a sales manager has no export right: 403, nothing audited
    r = m1.get("/analytics/deals", format="csv", **Q)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_export"
    assert AuditEvent.objects.filter(action="analytics.exported", actor_user_id=co.users["m1"].pk).count() == 0


def test_errors(co):
    head = client(co, "head")
    r = head.get("/analytics/no-such", **Q)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = head.get("/analytics/new-leads", date_from="yesterday")
    assert r.status_code == 422 and "date_from" in r.json()["fields"]
    r = head.get("/analytics/new-leads", format="pdf", **Q)
    assert r.status_code == 422
    assert ApiClient().get("/analytics/new-leads").status_code == 401


def test_plans_and_stage_settings(co):
    admin, m1 = client(co, "admin"), client(co, "m1")
    r = admin.post("/analytics/plans", {"starts_on": "2026-02-10", "amount": "1000", "count": 2,
                                        "user": co.users["m1"].pk})
    assert r.status_code == 201, r.content
    plan = r.json()
    assert plan["starts_on"] == "2026-02-01"
    assert m1.post("/analytics/plans", {"starts_on": "2026-02-10", "amount": "1"}).status_code == 403
    r = admin.post("/analytics/plans", {"starts_on": "2026-02-10", "amount": "-1"})
    assert r.status_code == 422
    r = admin.post("/analytics/plans", {"starts_on": "2026-02-10", "user": 999999})
    assert r.status_code == 422 and "user" in r.json()["fields"]
    r = m1.get("/analytics/plans", date_from="2026-02-01", date_to="2026-02-28")
    assert [x["id"] for x in r.json()["items"]] == [plan["id"]]
    stage = co.stages["sales.invoice"].pk
    r = admin.put(f"/analytics/stages/{stage}", {"probability": 55})
    assert r.status_code == 200 and r.json()["probability"] == 55
    assert admin.put(f"/analytics/stages/{stage}", {"probability": 101}).status_code == 422
    assert m1.put(f"/analytics/stages/{stage}", {"probability": 5}).status_code == 403
    assert admin.put("/analytics/stages/999999", {"probability": 5}).status_code == 404
    assert m1.delete(f"/analytics/plans/{plan['id']}").status_code == 403
    assert admin.delete(f"/analytics/plans/{plan['id']}").status_code == 204
    assert admin.delete(f"/analytics/plans/{plan['id']}").status_code == 404
