"""/api/v1/automation: robots per pipeline, time limits, runs and retry, YAML export/import, the dry run."""

from __future__ import annotations

import pytest

from voronka.automation.models import Robot, Run
from voronka.core.models import AuditEvent
from voronka.identity.models import ApiToken
from voronka.leads.actions import create_lead

from .conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(admin_token):
    return bearer(admin_token)


@pytest.fixture
def stages(lead_pipeline):
    return {s.code: s for s in lead_pipeline.stages.all()}


def test_robots_crud_and_order(api, lead_pipeline, stages):
    created = api.post(f"/automation/pipelines/{lead_pipeline.pk}/robots", {
        "stage": stages["new"].pk, "name": "Звонок", "action": "create_task",
        "params": {"title": "Позвонить {title}", "deadline": {"amount": 1, "unit": "hours"}},
        "delay": {"kind": "after", "amount": 5, "unit": "minutes"},
        "conditions": {"all": [{"field": "source", "op": "in", "value": ["site"]}]}})
    assert created.status_code == 201, created.json()
    robot = created.json()
    assert robot["delay"] == {"kind": "after", "amount": 5, "unit": "minutes"} and robot["stage"] == stages["new"].pk
    second = api.post("/automation/pipelines/lead:leads/robots", {"stage": stages["new"].pk, "action": "comment",
                                                                "params": {"text": "x"}}).json()
    listing = api.get(f"/automation/pipelines/{lead_pipeline.pk}/robots").json()
    new = next(s for s in listing["stages"] if s["code"] == "new")
    assert [r["id"] for r in new["robots"]] == [robot["id"], second["id"]]
    order = api.put(f"/automation/stages/{stages['new'].pk}/robot-order", {"robot_ids": [second["id"], robot["id"]]})
    assert [r["id"] for r in order.json()] == [second["id"], robot["id"]]
    patched = api.patch(f"/automation/robots/{robot['id']}", {"enabled": False, "delay": {"kind": "none"}})
    assert patched.json()["enabled"] is False and patched.json()["delay"] == {"kind": "none"}
    assert api.delete(f"/automation/robots/{second['id']}").status_code == 204
    assert api.get(f"/automation/robots/{second['id']}").status_code == 404
    assert AuditEvent.objects.filter(action="automation.robot_created").count() == 2


def test_bad_robots_are_422_with_fields(api, lead_pipeline, deal_pipelines, stages):
    url = f"/automation/pipelines/{lead_pipeline.pk}/robots"
    no_title = api.post(url, {"stage": stages["new"].pk, "action": "create_task", "params": {}})
    assert no_title.status_code == 422 and "params" in no_title.json()["fields"]
    bad_op = api.post(url, {"stage": stages["new"].pk, "action": "comment", "params": {"text": "x"},
                            "conditions": {"field": "title", "op": "like", "value": 1}})
    assert bad_op.status_code == 422 and "conditions" in bad_op.json()["fields"]
    other_stage = deal_pipelines["sales"].stages.first().pk
    wrong = api.post(url, {"stage": other_stage, "action": "comment", "params": {"text": "x"}})
    assert wrong.status_code == 422 and "stage" in wrong.json()["fields"]
    assert api.post("/automation/pipelines/nope/robots", {"stage": 1, "action": "comment"}).status_code == 404
    assert not Robot.objects.exists()


def test_time_limit(api, stages):
    url = f"/automation/stages/{stages['new'].pk}/time-limit"
    ok = api.put(url, {"amount": 3, "unit": "hours", "steps": [{"after": {"amount": 0, "unit": "minutes"}, "notify": ["head"]}]})
    assert ok.status_code == 200 and ok.json()["amount"] == 3
    bad = api.put(url, {"amount": 3, "steps": [{"notify": ["nobody"]}]})
    assert bad.status_code == 422 and "steps" in bad.json()["fields"]
    assert api.delete(url).status_code == 204


def test_runs_filters_and_retry(api, admin, stages):
    from voronka.automation.actions import create_robot
    from voronka.core.management.commands.worker import drain

    create_robot(admin, stage=stages["new"].pk, action="move_stage", params={"stage": "qualified"})
    lead = create_lead(admin, title="Без телефона")
    drain()
    page = api.get("/automation/runs", status="failed", entity_type="lead", entity_id=lead.pk).json()
    assert len(page["items"]) == 1 and page["items"][0]["error"]
    run_id = page["items"][0]["id"]
    retried = api.post(f"/automation/runs/{run_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    again = api.post(f"/automation/runs/{run_id}/retry")
    assert again.status_code == 422
    assert api.get("/automation/runs", status="bogus").status_code in (400, 422)
    assert api.get("/automation/runs", entity_type="planet").status_code == 400
    assert api.get("/automation/runs", cursor="xyz").status_code == 400
    assert api.get(f"/automation/runs/{run_id}").json()["id"] == run_id
    assert Run.objects.get(pk=run_id).status == "pending"


def test_export_import_and_dry_run(api, admin, lead_pipeline, stages):
    from voronka.automation.actions import create_robot

    create_robot(admin, stage=stages["assigned"].pk, name="Коммент", action="comment", params={"text": "x"})
    text = api.get(f"/automation/pipelines/{lead_pipeline.pk}/export").json()["yaml"]
    checked = api.post("/automation/import", {"yaml": text.replace("Коммент", "Заметка"), "dry_run": True})
    assert checked.status_code == 200 and checked.json()["robots"] == 1
    assert Robot.objects.get().name == "Коммент"
    bad = api.post("/automation/import", {"yaml": text.replace("action: comment", "action: dance")})
    assert bad.status_code == 422 and "Ничего не изменено" in bad.json()["message"]  # the API speaks Russian by default
    done = api.post("/automation/import", {"yaml": text.replace("Коммент", "Заметка")})
    assert done.status_code == 200 and Robot.objects.get().name == "Заметка"
    lead = create_lead(admin, title="Лид")
    before = Run.objects.count()
    dry = api.get("/automation/dry-run", entity_type="lead", record=lead.pk, stage=stages["assigned"].pk).json()
    assert dry["robots"][0]["would_run"] is True and dry["robots"][0]["name"] == "Заметка"
    assert Run.objects.count() == before
    assert api.get("/automation/dry-run", entity_type="lead", record=999999, stage=stages["new"].pk).status_code == 404


def test_rights_and_read_only_tokens(manager_user, admin_user, lead_pipeline, stages):
    manager = bearer(ApiToken.issue(manager_user, name="m")[1])
    assert manager.get(f"/automation/pipelines/{lead_pipeline.pk}/robots").status_code == 403
    assert manager.get("/automation/runs").status_code == 403
    assert bearer(ApiToken.issue(admin_user, name="r", scopes=["read"])[1]).get(
        f"/automation/pipelines/{lead_pipeline.pk}/robots").status_code == 403  # settings need the settings scope
    reader = bearer(ApiToken.issue(admin_user, name="rs", scopes=["read", "settings"])[1])
    assert reader.get(f"/automation/pipelines/{lead_pipeline.pk}/robots").status_code == 200
    refused = reader.post(f"/automation/pipelines/{lead_pipeline.pk}/robots",
                          {"stage": stages["new"].pk, "action": "comment", "params": {"text": "x"}})
    assert refused.status_code == 403


def test_triggers_crud_dry_run_and_the_log(api, admin, lead_pipeline, stages):
    from voronka.core.management.commands.worker import drain

    url = f"/automation/pipelines/{lead_pipeline.pk}/triggers"
    created = api.post(url, {"stage": stages["assigned"].pk, "kind": "webhook", "name": "Из 1С"})
    assert created.status_code == 201, created.json()
    hook = created.json()
    assert hook["url"].endswith(f"/hooks/trigger/{hook['id']}/{hook['url'].rstrip('/').rsplit('/', 1)[1]}/")
    call = api.post(url, {"stage": stages["qualified"].pk, "kind": "call", "params": {"directions": ["missed"]}}).json()
    assert "directions: missed" in call["description"]
    bad = api.post(url, {"stage": stages["new"].pk, "kind": "telepathy"})
    assert bad.status_code == 422 and "kind" in bad.json()["fields"]
    bad = api.post(url, {"stage": stages["new"].pk, "kind": "call", "params": {"directions": "all"}})
    assert bad.status_code == 422 and "params" in bad.json()["fields"]
    listing = api.get(f"/automation/pipelines/{lead_pipeline.pk}/robots").json()
    assigned = next(s for s in listing["stages"] if s["code"] == "assigned")
    assert [t["id"] for t in assigned["triggers"]] == [hook["id"]]
    rotated = api.patch(f"/automation/triggers/{hook['id']}", {"rotate_secret": True, "allow_backwards": True}).json()
    assert rotated["url"] != hook["url"] and rotated["allow_backwards"] is True
    lead = create_lead(admin, title="Лид")
    dry = api.get("/automation/dry-run", entity_type="lead", record=lead.pk, stage=stages["assigned"].pk).json()
    assert dry["triggers"] == [{"trigger": hook["id"], "name": "Из 1С", "would_move": True, "reason": ""}]
    from django.test import Client

    path = rotated["url"].split("://", 1)[1].split("/", 1)[1]
    assert Client().post(f"/{path}", {"id": lead.pk}).status_code == 202
    drain()
    run = api.get("/automation/runs", entity_id=lead.pk).json()["items"][0]
    assert (run["trigger"], run["name"], run["status"]) == (hook["id"], "Из 1С", "done")
    assert api.delete(f"/automation/triggers/{call['id']}").status_code == 204
    assert api.get(f"/automation/triggers/{call['id']}").status_code == 404


def test_payment_received(api, manager_user, admin, deal_pipelines):
    from voronka.deals.actions import create_deal

    deal = create_deal(admin, title="Баня", pipeline="sales")
    url = f"/automation/deals/{deal.pk}/payment-received"
    ok = api.post(url, {"amount": "15000", "reference": "pay-1"})
    assert ok.status_code == 200 and ok.json()["recorded"] is True
    assert api.post(url, {"amount": 15000, "reference": "pay-1"}).json()["recorded"] is False
    assert api.post(url, {"amount": 0}).status_code == 422
    assert api.post(url, {"amount": "много"}).status_code == 422
    assert api.post("/automation/deals/999999/payment-received", {"amount": 1}).status_code == 404
    manager = bearer(ApiToken.issue(manager_user, name="m")[1])
    assert manager.post(url, {"amount": 1}).status_code == 404  # not his deal: not found, not forbidden
    assert manager.get(f"/automation/triggers/{deal.pk}").status_code in (403, 404)
