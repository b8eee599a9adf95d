"""Recurring tasks (F22): a cron rule; completing the task creates the next occurrence once."""

from __future__ import annotations

import datetime

import pytest

from voronka.activities import actions, recurrence
from voronka.activities.models import Task
from voronka.core import clock, outbox
from voronka.core.errors import ValidationFailed
from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db

MONDAY_9 = datetime.datetime(2026, 3, 2, 6, 0, tzinfo=datetime.UTC)  # 09:00 in Moscow, a Monday


@pytest.fixture(autouse=True)
def _frozen():
    clock.freeze(MONDAY_9 - datetime.timedelta(days=1))
    yield
    clock.freeze(None)


def test_completing_a_recurring_task_creates_the_next_occurrence_once(admin, manager, lead_pipeline):
    lead = create_lead(admin, title="Regular client")
    task = actions.create_task(admin, title="Call the regular client", description="Ask about a new order",
                               deadline=MONDAY_9, responsible=manager.user_id, observers=[admin.user_id],
                               entity_type_id=1, entity_id=lead.pk, recurrence="0 9 * * 1")
    assert task.recurrence == "0 9 * * 1"
    actions.complete_task(manager, task.pk, result="Called")
    nxt = Task.objects.get(recurrence_of=task)
    assert (nxt.title, nxt.description, nxt.responsible_id, nxt.entity_type_id, nxt.entity_id, nxt.status,
            nxt.recurrence, nxt.created_by_id) == ("Call the regular client", "Ask about a new order",
                                                   manager.user_id, 1, lead.pk, "open", "0 9 * * 1", admin.user_id)
    assert list(nxt.observers.all()) == [admin.user]
    assert nxt.deadline == MONDAY_9 + datetime.timedelta(days=7)
    assert nxt.cause == f"recurrence:{task.pk}"
    created = TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead.pk, kind="task", data__task=nxt.pk)
    assert created.count() == 1
    # the events delivered again (at least once) create nothing more
    for event in OutboxEvent.objects.filter(name__startswith="task."):
        for consumer in outbox.consumers_for(event.name):
            consumer(event)
        for consumer in outbox.consumers_for(event.name):
            consumer(event)
    assert Task.objects.filter(recurrence_of=task).count() == 1
    assert Task.objects.count() == 2
    # the series goes on from the new one
    actions.complete_task(manager, nxt.pk)
    assert Task.objects.get(recurrence_of=nxt).deadline == MONDAY_9 + datetime.timedelta(days=14)


def test_a_late_completion_skips_occurrences_in_the_past(admin, manager, lead_pipeline):
    task = actions.create_task(admin, title="Daily report", deadline=MONDAY_9, responsible=manager.user_id,
                               recurrence="0 9 * * *")
    clock.freeze(MONDAY_9 + datetime.timedelta(days=3, hours=2))  # Thursday 11:00
    actions.complete_task(manager, task.pk)
    assert Task.objects.get(recurrence_of=task).deadline == MONDAY_9 + datetime.timedelta(days=4)


def test_cancelling_or_no_rule_creates_nothing(admin, manager, lead_pipeline):
    plain = actions.create_task(admin, title="Once", deadline=MONDAY_9, responsible=manager.user_id)
    actions.complete_task(manager, plain.pk)
    series = actions.create_task(admin, title="Weekly", deadline=MONDAY_9, responsible=manager.user_id,
                                 recurrence="0 9 * * 1")
    actions.cancel_task(manager, series.pk, reason="The client left")
    assert Task.objects.count() == 2
    assert Task.objects.get(pk=series.pk).status == "cancelled"


def test_the_rule_can_be_changed_or_removed(admin, manager, lead_pipeline):
    task = actions.create_task(admin, title="Weekly", deadline=MONDAY_9, responsible=manager.user_id)
    actions.update_task(admin, task.pk, recurrence="  30 10   1 * * ")
    assert Task.objects.get(pk=task.pk).recurrence == "30 10 1 * *"
    actions.update_task(admin, task.pk, recurrence="")
    actions.complete_task(manager, task.pk)
    assert Task.objects.count() == 1


@pytest.mark.parametrize(("rule", "message"), [
    ("every day", "needs five fields"),
    ("61 9 * * *", "is not a valid cron expression"),
    ("0 9 * * 1 2026", "needs five fields"),
    ("0 0 30 2 *", "never comes true"),
    (42, "cron expression"),
    ("0 " * 60, "at most 100"),
])
def test_bad_rules_are_refused_per_field(admin, rule, message):
    from django.utils import translation

    with pytest.raises(ValidationFailed) as exc, translation.override("en"):
        actions.create_task(admin, title="x", recurrence=rule)
    assert message in exc.value.fields["recurrence"][0]
    task = actions.create_task(admin, title="x")
    with pytest.raises(ValidationFailed) as exc:
        actions.update_task(admin, task.pk, recurrence=rule)
    assert "recurrence" in exc.value.fields


def test_presets_are_cron_at_the_deadline_time():
    assert recurrence.from_preset("daily", MONDAY_9) == "0 9 * * *"
    assert recurrence.from_preset("weekly", MONDAY_9) == "0 9 * * 1"
    assert recurrence.from_preset("monthly", MONDAY_9) == "0 9 2 * *"
    assert recurrence.from_preset("weekly", None) == "0 9 * * 1"
