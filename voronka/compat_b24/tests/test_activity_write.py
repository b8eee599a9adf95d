"""``crm.activity.add/update/delete``: a task or a call on a record becomes a Voronka task through its actions."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_activity_add_update_delete(rest, lead_pipeline, admin_user):
    from voronka.activities.models import Task
    from voronka.core.models import TimelineEntry

    _s, body = rest("crm.lead.add", {"fields": {"TITLE": "Звонок с сайта"}})
    lead_id = body["result"]
    status, body = rest("crm.activity.add", {"fields": {
        "OWNER_TYPE_ID": 1, "OWNER_ID": lead_id, "TYPE_ID": 3, "SUBJECT": "Перезвонить клиенту",
        "DESCRIPTION": "Уточнить адрес", "DEADLINE": "2026-12-01T10:00:00+03:00", "RESPONSIBLE_ID": admin_user.pk}})
    assert status == 200, body
    task = Task.objects.get(pk=body["result"])
    assert (task.title, task.entity_type_id, task.entity_id, task.status) == ("Перезвонить клиенту", 1, lead_id, "open")
    assert TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead_id, kind="task").exists()
    _s, body = rest("crm.activity.get", {"id": task.pk})
    assert body["result"]["SUBJECT"] == "Перезвонить клиенту" and body["result"]["COMPLETED"] == "N"
    assert body["result"]["DEADLINE"].startswith("2026-12-01T10:00:00")
    status, body = rest("crm.activity.update", {"id": task.pk, "fields": {"SUBJECT": "Перезвонить завтра"}})
    assert status == 200 and body["result"] is True
    assert rest("crm.activity.get", {"id": task.pk})[1]["result"]["SUBJECT"] == "Перезвонить завтра"
    status, body = rest("crm.activity.update", {"id": task.pk, "fields": {"COMPLETED": "Y"}})
    assert status == 200
    assert rest("crm.activity.get", {"id": task.pk})[1]["result"]["COMPLETED"] == "Y"
    # a call that already happened (telephony logs it through BINDINGS), completed at once
    status, body = rest("crm.activity.add", {"fields": {
        "BINDINGS": [{"OWNER_TYPE_ID": 1, "OWNER_ID": lead_id}], "TYPE_ID": 2, "DIRECTION": 1,
        "SUBJECT": "Входящий звонок", "COMPLETED": "Y", "COMMUNICATIONS": [{"VALUE": "+79005550001"}]}})
    assert status == 200, body
    call_task = Task.objects.get(pk=body["result"])
    assert call_task.status == "done" and call_task.entity_id == lead_id
    status, body = rest("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 2, "SUBJECT": "Встреча"}})
    assert status == 400 and body["error_description"] == "The field OWNER_ID is not defined or invalid."
    status, body = rest("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 1, "OWNER_ID": lead_id}})
    assert status == 400 and body["error_description"] == "The field SUBJECT is not defined or empty."
    status, body = rest("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 1, "OWNER_ID": 10**9, "SUBJECT": "x"}})
    assert status == 400 and body["error_description"] == "Owner is not found."
    status, body = rest("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 1, "OWNER_ID": lead_id, "SUBJECT": "x",
                                                        "DEADLINE": "не дата"}})
    assert status == 400
    # delete: an open task is cancelled (Voronka keeps tasks: the record's history refers to them)
    _s, body = rest("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 1, "OWNER_ID": lead_id, "SUBJECT": "Лишнее"}})
    extra = body["result"]
    status, body = rest("crm.activity.delete", {"id": extra})
    assert status == 200 and body["result"] is True
    assert Task.objects.get(pk=extra).status == "cancelled"
    status, body = rest("crm.activity.delete", {"id": 10**9})
    assert status == 400 and body["error_description"] == "Not found"


def test_activity_rights(client, rest, admin, manager_user, lead_pipeline):
    """A user who cannot see the record cannot attach an activity to it nor change its activities."""
    from voronka.compat_b24.actions import create_webhook

    _s, body = rest("crm.lead.add", {"fields": {"TITLE": "Чужой лид", "OPENED": "N"}})
    lead_id = body["result"]
    _s, body = rest("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 1, "OWNER_ID": lead_id, "SUBJECT": "Своё"}})
    task_id = body["result"]
    _hook, secret = create_webhook(admin, user_id=manager_user.pk, scopes=["crm"])
    prefix = f"/rest/{manager_user.pk}/{secret}/"

    def call(method, payload):
        resp = client.post(prefix + method, data=payload, content_type="application/json")
        return resp.status_code, resp.json()

    status, body = call("crm.activity.add", {"fields": {"OWNER_TYPE_ID": 1, "OWNER_ID": lead_id, "SUBJECT": "x"}})
    assert status == 400 and body["error_description"] == "Owner is not found."
    for method, payload in [("crm.activity.update", {"id": task_id, "fields": {"SUBJECT": "y"}}),
                            ("crm.activity.delete", {"id": task_id}), ("crm.activity.get", {"id": task_id})]:
        status, body = call(method, payload)
        assert status == 400 and body["error_description"] == "Not found", method
