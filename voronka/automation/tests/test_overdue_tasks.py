"""Overdue-task escalation (F41): timers follow the task's events; the chain fires once, at the right moments."""

import datetime

import pytest

from voronka.activities import actions as tasks
from voronka.activities.models import Notification
from voronka.automation.actions import delete_task_escalation, set_task_escalation
from voronka.automation.models import TaskTimer
from voronka.core import clock, outbox
from voronka.core.errors import PermissionDenied, ValidationFailed
from voronka.core.models import AuditEvent, OutboxEvent, TimelineEntry
from voronka.identity.models import Department, User
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db

CHAIN = [{"after": {"amount": 0, "unit": "minutes"}, "notify": ["responsible"]},
         {"after": {"amount": 2, "unit": "hours"}, "notify": ["head"], "reassign": "head"}]
DEADLINE = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _before_the_deadline():
    clock.freeze(DEADLINE - datetime.timedelta(days=1))


@pytest.fixture
def team(admin_user):
    owner = User.objects.create_user("owner", "owner@example.ru", "x", first_name="Oleg", last_name="Owner",
                                     language="en")
    dept = Department.objects.create(name="Sales", head=owner)
    worker = User.objects.create_user("ira", "ira@example.ru", "x", first_name="Ira", last_name="Zvonkova",
                                      department=dept, language="en")
    from voronka.identity.models import Role, RoleAssignment
    from voronka.identity.permissions import rights_changed

    RoleAssignment.objects.create(role=Role.objects.get(code="call_centre_operator"), user=worker)
    RoleAssignment.objects.create(role=Role.objects.get(code="head_of_sales"), user=owner)
    rights_changed()
    return {"owner": owner, "worker": worker}


def timers():
    return list(TaskTimer.objects.order_by("task_id", "step").values_list("step", "due_at", "status"))


def test_timers_are_planned_replanned_and_dropped_by_task_events(admin, team, lead_pipeline, drive):
    set_task_escalation(admin, steps=CHAIN)
    task = tasks.create_task(admin, title="Call back", deadline=DEADLINE, responsible=team["worker"].pk)
    drive()
    assert timers() == [(0, DEADLINE, "pending"), (1, DEADLINE + datetime.timedelta(hours=2), "pending")]
    later = DEADLINE + datetime.timedelta(days=1)
    tasks.update_task(admin, task.pk, deadline=later)
    drive()
    assert timers() == [(0, later, "pending"), (1, later + datetime.timedelta(hours=2), "pending")]
    tasks.update_task(admin, task.pk, deadline=None)
    drive()
    assert timers() == []
    tasks.update_task(admin, task.pk, deadline=DEADLINE)
    drive()
    assert len(timers()) == 2
    tasks.complete_task(admin, task.pk)
    drive()
    assert timers() == []
    other = tasks.create_task(admin, title="Send", deadline=DEADLINE, responsible=team["worker"].pk)
    drive()
    tasks.cancel_task(admin, other.pk)
    drive()
    assert timers() == []
    assert not tasks.Task.objects.filter(recurrence_of=other).exists()


def test_no_chain_no_timers_and_changing_the_chain_replans_open_tasks(admin, team, lead_pipeline, drive):
    task = tasks.create_task(admin, title="Call back", deadline=DEADLINE, responsible=team["worker"].pk)
    tasks.create_task(admin, title="No deadline", responsible=team["worker"].pk)
    drive()
    assert timers() == []
    set_task_escalation(admin, steps=CHAIN)
    assert timers() == [(0, DEADLINE, "pending"), (1, DEADLINE + datetime.timedelta(hours=2), "pending")]
    set_task_escalation(admin, steps=CHAIN[:1])
    assert timers() == [(0, DEADLINE, "pending")]
    set_task_escalation(admin, steps=CHAIN, enabled=False)
    assert timers() == []
    set_task_escalation(admin, steps=CHAIN)
    delete_task_escalation(admin)
    assert timers() == []
    assert TaskTimer.objects.filter(task=task).count() == 0
    assert AuditEvent.objects.filter(action="automation.task_escalation_set").count() == 4


def test_the_chain_fires_once_at_the_right_moments(admin, team, lead_pipeline, drive):
    set_task_escalation(admin, steps=CHAIN)
    lead = create_lead(admin, title="Windows", responsible=team["worker"].pk)
    task = tasks.create_task(admin, title="Call back", deadline=DEADLINE, responsible=team["worker"].pk,
                             entity_type_id=1, entity_id=lead.pk)
    drive()
    clock.freeze(DEADLINE - datetime.timedelta(seconds=1))
    drive()
    assert not Notification.objects.exists()
    clock.freeze(DEADLINE)
    drive()
    drive()
    [note] = Notification.objects.all()
    assert note.user == team["worker"] and note.entity_id == lead.pk
    assert note.text == "Task «Call back» is overdue since 02.03.2026 12:00, responsible Ira Zvonkova"
    assert note.cause == f"task_escalation:{task.pk}:0"
    clock.freeze(DEADLINE + datetime.timedelta(hours=2))
    drive()
    drive()
    notes = list(Notification.objects.order_by("id"))
    assert [n.user for n in notes] == [team["worker"], team["owner"]]
    task.refresh_from_db()
    assert task.responsible == team["owner"]  # the second step hands the task to the head
    assert timers() == [(0, DEADLINE, "fired"), (1, DEADLINE + datetime.timedelta(hours=2), "fired")]
    entries = TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead.pk, kind="automation").order_by("id")
    assert [(e.data["rule"], e.data["status"]) for e in entries] == [("task_overdue:0", "done"),
                                                                    ("task_overdue:1", "done")]
    assert entries[0].text == note.text
    # the same events delivered again change nothing
    for event in OutboxEvent.objects.filter(name__startswith="task."):
        for consumer in outbox.consumers_for(event.name):
            consumer(event)
    drive()
    assert Notification.objects.count() == 2
    assert timers() == [(0, DEADLINE, "fired"), (1, DEADLINE + datetime.timedelta(hours=2), "fired")]


def test_a_moved_deadline_starts_the_chain_over_and_a_stale_timer_is_cancelled(admin, team, lead_pipeline, drive):
    set_task_escalation(admin, steps=CHAIN[:1])
    task = tasks.create_task(admin, title="Call back", deadline=DEADLINE, responsible=team["worker"].pk)
    drive()
    clock.freeze(DEADLINE)
    drive()
    assert Notification.objects.count() == 1
    later = DEADLINE + datetime.timedelta(days=1)
    tasks.update_task(admin, task.pk, deadline=later)
    drive()
    assert timers() == [(0, later, "pending")]
    # a timer whose task finished before its event was consumed is cancelled when it comes due, not fired
    tasks.Task.objects.filter(pk=task.pk).update(status="done")
    clock.freeze(later)
    drive()
    assert timers() == [(0, later, "cancelled")]
    assert Notification.objects.count() == 1


def test_a_custom_message_a_named_user_and_a_role(admin, team, lead_pipeline, drive):
    set_task_escalation(admin, steps=[{"notify": ["user:owner", "responsible"],
                                       "message": "{title} ({deadline}) — {responsible} {nope}"}])
    tasks.create_task(admin, title="Call back", deadline=DEADLINE, responsible=team["worker"].pk)
    drive()
    clock.freeze(DEADLINE + datetime.timedelta(minutes=5))
    drive()
    notes = list(Notification.objects.order_by("user_id"))
    assert {n.user for n in notes} == {team["owner"], team["worker"]}
    assert {n.text for n in notes} == {"Call back (02.03.2026 12:00) — Ira Zvonkova {nope}"}


def test_the_default_message_in_russian(admin, team, lead_pipeline, drive):
    team["worker"].language = "ru"
    team["worker"].save()
    set_task_escalation(admin, steps=CHAIN[:1])
    tasks.create_task(admin, title="Перезвонить", deadline=DEADLINE, responsible=team["worker"].pk)
    drive()
    clock.freeze(DEADLINE)
    drive()
    [note] = Notification.objects.all()
    assert "Перезвонить" in note.text and "02.03.2026 12:00" in note.text


@pytest.mark.parametrize(("steps", "message"), [
    ([], "non-empty list"),
    ([{"notify": ["nobody"]}], "is not one of"),
    ([{"after": {"amount": -1, "unit": "hours"}}], "zero or more"),
    ([{"reassign": "role:x"}], "«reassign» is head or user:ID"),
    ([{"notify": ["user:ghost"]}], "no active user"),
])
def test_bad_chains_get_clear_errors(admin, steps, message):
    with pytest.raises(ValidationFailed) as exc:
        set_task_escalation(admin, steps=steps)
    assert message in exc.value.fields["steps"][0]


def test_only_people_with_the_right_set_the_chain(manager):
    with pytest.raises(PermissionDenied):
        set_task_escalation(manager, steps=CHAIN)


def test_a_refused_escalation_fails_the_timer_visibly(admin, team, lead_pipeline, drive):
    set_task_escalation(admin, steps=[{"notify": ["responsible"], "message": "x" * 6000}])
    lead = create_lead(admin, title="Windows", responsible=team["worker"].pk)
    tasks.create_task(admin, title="Call back", deadline=DEADLINE, responsible=team["worker"].pk,
                      entity_type_id=1, entity_id=lead.pk)
    drive()
    clock.freeze(DEADLINE)
    drive()
    [timer] = TaskTimer.objects.all()
    assert timer.status == "failed" and "at most 5000 characters" in timer.error
    entry = TimelineEntry.objects.get(entity_type_id=1, entity_id=lead.pk, kind="automation")
    assert entry.data["status"] == "failed" and "5000" in entry.data["error"]
    assert not Notification.objects.exists()


def test_an_unexpected_error_is_retried_with_backoff_then_applied_once(admin, team, lead_pipeline, drive,
                                                                       monkeypatch):
    from voronka.automation import overdue

    set_task_escalation(admin, steps=CHAIN[:1])
    tasks.create_task(admin, title="Call back", deadline=DEADLINE, responsible=team["worker"].pk)
    drive()
    real = overdue.escalate
    monkeypatch.setattr(overdue, "escalate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    clock.freeze(DEADLINE)
    drive()
    [timer] = TaskTimer.objects.all()
    assert (timer.status, timer.attempts, timer.due_at) == ("pending", 1, DEADLINE + datetime.timedelta(seconds=30))
    assert "boom" in timer.error and not Notification.objects.exists()
    monkeypatch.setattr(overdue, "escalate", real)
    clock.freeze(DEADLINE + datetime.timedelta(seconds=30))
    drive()
    drive()
    timer.refresh_from_db()
    assert timer.status == "fired" and Notification.objects.count() == 1


# --- in working time ------------------------------------------------------------------------------------------

def test_a_chain_in_working_time_counts_the_responsibles_working_hours(admin, team, lead_pipeline, drive):
    """Mon–Fri 9:00–18:00 Moscow (a working day is 9 hours). A task due on Friday at 17:00: the first step at
    the deadline, «2 hours later» is Monday 10:00 (1 h on Friday, 1 h on Monday), «1 day later» is Monday 17:00;
    a task due on Saturday is escalated at Monday's opening, not at the weekend."""
    from zoneinfo import ZoneInfo

    from voronka.calendars import actions as calendar

    msk = ZoneInfo("Europe/Moscow")
    hours = [["09:00", "18:00"]]
    calendar.set_company_calendar(admin, time_zone="Europe/Moscow", week={
        "mon": hours, "tue": hours, "wed": hours, "thu": hours, "fri": hours, "sat": [], "sun": []})
    friday = datetime.datetime(2026, 3, 6, 17, 0, tzinfo=msk)  # a Friday
    chain = [{"notify": ["responsible"]}, {"after": {"amount": 2, "unit": "hours"}, "notify": ["head"]},
             {"after": {"amount": 1, "unit": "days"}, "notify": ["head"]}]
    set_task_escalation(admin, steps=chain, working_time=True)
    task = tasks.create_task(admin, title="Call back", deadline=friday, responsible=team["worker"].pk)
    weekend = tasks.create_task(admin, title="Saturday", deadline=friday + datetime.timedelta(hours=17),
                                responsible=team["worker"].pk)
    drive()
    monday = datetime.datetime(2026, 3, 9, tzinfo=msk)
    assert [due for _s, due, _st in timers()][:3] == [friday, monday.replace(hour=10), monday.replace(hour=17)]
    assert TaskTimer.objects.get(task=weekend, step=0).due_at == monday.replace(hour=9)
    # the calendar changes (Monday becomes a holiday): the steps move to Tuesday
    calendar.set_day(admin, date=monday.date(), working=False)
    drive()
    tuesday = monday + datetime.timedelta(days=1)
    assert TaskTimer.objects.get(task=task, step=1).due_at == tuesday.replace(hour=10)
    assert TaskTimer.objects.get(task=weekend, step=0).due_at == tuesday.replace(hour=9)
    # calendar time again: back to the deadline plus the steps
    set_task_escalation(admin, steps=chain, working_time=False)
    assert TaskTimer.objects.get(task=task, step=1).due_at == friday + datetime.timedelta(hours=2)


def test_a_new_responsible_moves_the_steps_to_their_working_time(admin, team, lead_pipeline, drive):
    from zoneinfo import ZoneInfo

    from voronka.calendars import actions as calendar

    msk = ZoneInfo("Europe/Moscow")
    hours = [["09:00", "18:00"]]
    week = {"mon": hours, "tue": hours, "wed": hours, "thu": hours, "fri": hours, "sat": [], "sun": []}
    calendar.set_company_calendar(admin, time_zone="Europe/Moscow", week=week)
    calendar.set_user_schedule(admin, team["owner"].pk, time_zone="Asia/Yekaterinburg")  # Moscow + 2 h
    friday = datetime.datetime(2026, 3, 6, 17, 0, tzinfo=msk)
    set_task_escalation(admin, steps=[{"after": {"amount": 2, "unit": "hours"}}], working_time=True)
    task = tasks.create_task(admin, title="Call back", deadline=friday, responsible=team["worker"].pk)
    drive()
    assert TaskTimer.objects.get(task=task).due_at == datetime.datetime(2026, 3, 9, 10, 0, tzinfo=msk)
    tasks.update_task(admin, task.pk, responsible=team["owner"].pk)  # his day ended at 16:00 Moscow time
    drive()
    assert TaskTimer.objects.get(task=task).due_at == datetime.datetime(2026, 3, 9, 9, 0, tzinfo=msk)


def test_working_time_must_be_a_flag(admin):
    with pytest.raises(ValidationFailed):
        set_task_escalation(admin, steps=CHAIN, working_time="yes")
