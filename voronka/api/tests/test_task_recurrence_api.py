"""Task recurrence and overdue-task escalation through the API."""

from __future__ import annotations

import pytest

from voronka.activities.models import Task

pytestmark = pytest.mark.django_db


def test_recurring_task_through_the_api(api, manager_user, lead_pipeline):
    response = api.post("/tasks", {"title": "Call regular clients", "deadline": "2026-03-02T09:00:00+03:00",
                                   "responsible": manager_user.pk, "recurrence": "0 9 * * 1"})
    assert response.status_code == 201, response.content
    task = response.json()
    assert task["recurrence"] == "0 9 * * 1" and task["recurrence_of"] is None
    response = api.post(f"/tasks/{task['id']}/complete", {"result": "done"})
    assert response.status_code == 200
    nxt = Task.objects.get(recurrence_of_id=task["id"])
    assert api.get(f"/tasks/{nxt.pk}").json()["recurrence_of"] == task["id"]
    response = api.patch(f"/tasks/{nxt.pk}", {"recurrence": "every monday"})
    assert response.status_code == 422, response.content
    assert "recurrence" in response.json()["fields"]
    response = api.post(f"/tasks/{nxt.pk}/cancel", {"reason": "stop"})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Task.objects.count() == 2


def test_a_bad_rule_is_a_422(api, lead_pipeline):
    response = api.post("/tasks", {"title": "x", "recurrence": "61 9 * * *"})
    assert response.status_code == 422, response.content
    assert "recurrence" in response.json()["fields"]
    assert Task.objects.count() == 0


def test_task_escalation_settings(api, manager_api):
    assert api.get("/automation/task-escalation").json() == {"configured": False, "enabled": False,
                                                             "working_time": False, "steps": []}
    response = api.put("/automation/task-escalation", {"steps": [{"notify": ["responsible"]},
                                                                  {"after": {"amount": 1, "unit": "hours"},
                                                                   "notify": ["head"], "reassign": "head"}]})
    assert response.status_code == 200, response.content
    assert response.json()["configured"] and len(response.json()["steps"]) == 2
    response = api.put("/automation/task-escalation", {"steps": [{"notify": ["responsible"]}], "working_time": True})
    assert response.status_code == 200 and response.json()["working_time"] is True
    response = api.put("/automation/task-escalation", {"steps": [{"notify": ["responsible"]}], "working_time": "often"})
    assert response.status_code == 422, response.content
    response = api.put("/automation/task-escalation", {"steps": [{"notify": ["someone"]}]})
    assert response.status_code == 422 and "steps" in response.json()["fields"]
    assert manager_api.get("/automation/task-escalation").status_code == 403
    assert manager_api.put("/automation/task-escalation", {"steps": []}).status_code == 403
    assert api.delete("/automation/task-escalation").status_code == 204
    assert api.get("/automation/task-escalation").json()["configured"] is False
