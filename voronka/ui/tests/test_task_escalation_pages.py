"""Settings → Robots → Overdue tasks, and the repetition of tasks in the task forms."""

from __future__ import annotations

import pytest

from voronka.activities.models import Task
from voronka.automation.models import TaskEscalation, TaskTimer
from voronka.core.models import AuditEvent
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    from django.conf import settings

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(admin_user)
    return client


def test_the_overdue_tasks_settings_form(admin_client, admin, lead_pipeline):
    from voronka.activities.actions import create_task

    create_task(admin, title="Call", deadline="2030-01-01T10:00:00+03:00")
    page = admin_client.get("/settings/overdue-tasks/")
    assert page.status_code == 200 and "Not set: overdue tasks do not escalate." in page.content.decode()
    bad = admin_client.post("/settings/overdue-tasks/", {"enabled": "on", "steps": "- notify: [somebody]\n"})
    assert bad.status_code == 422 and "is not one of" in bad.content.decode()
    broken = admin_client.post("/settings/overdue-tasks/", {"enabled": "on", "steps": "- notify: [\n"})
    assert broken.status_code == 422 and "not valid YAML" in broken.content.decode()
    ok = admin_client.post("/settings/overdue-tasks/", {
        "enabled": "on", "steps": "- notify: [responsible]\n- after: {amount: 1, unit: days}\n  notify: [head]\n"})
    assert ok.status_code == 302
    assert len(TaskEscalation.objects.get().steps) == 2
    assert TaskTimer.objects.count() == 2  # the open task with a deadline is planned at once
    assert AuditEvent.objects.filter(action="automation.task_escalation_set").exists()
    assert TaskEscalation.objects.get().working_time is False
    admin_client.post("/settings/overdue-tasks/", {"enabled": "on", "working_time": "on",
                                                   "steps": "- notify: [responsible]\n"})
    assert TaskEscalation.objects.get().working_time is True
    assert "In working time of the responsible" in admin_client.get("/settings/overdue-tasks/").content.decode()
    admin_client.post("/settings/overdue-tasks/", {"delete": "1"})
    assert not TaskEscalation.objects.exists() and not TaskTimer.objects.exists()


def test_the_manager_may_not_configure_it(client, manager_user):
    client.force_login(manager_user)
    assert client.get("/settings/overdue-tasks/").status_code == 403


def test_a_recurring_task_from_the_record_card_and_the_task_card(admin_client, admin, lead_pipeline):
    lead = create_lead(admin, title="Regular client")
    card = admin_client.get(f"/crm/leads/{lead.pk}/")
    assert "Does not repeat" in card.content.decode()
    admin_client.post(f"/crm/leads/{lead.pk}/task/", {"title": "Call", "deadline": "2030-01-07T09:30",
                                                      "responsible": admin.user_id, "repeat": "weekly"})
    task = Task.objects.get()
    assert task.recurrence == "30 9 * * 1"
    response = admin_client.post(f"/tasks/{task.pk}/recurrence/", {"repeat": "cron", "cron": "0 25 * * *"},
                                 follow=True)
    assert "is not a valid cron expression" in response.content.decode()
    admin_client.post(f"/tasks/{task.pk}/recurrence/", {"repeat": "cron", "cron": "0 9 1 * *"})
    task.refresh_from_db()
    assert task.recurrence == "0 9 1 * *"
    assert "0 9 1 * *" in admin_client.get(f"/tasks/{task.pk}/").content.decode()
    admin_client.post(f"/tasks/{task.pk}/complete/", {"result": "ok"})
    assert Task.objects.filter(recurrence_of=task).count() == 1
    nxt = Task.objects.get(recurrence_of=task)
    admin_client.post(f"/tasks/{nxt.pk}/cancel/")
    nxt.refresh_from_db()
    assert nxt.status == "cancelled" and Task.objects.count() == 2
