from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from voronka.activities import actions
from voronka.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from voronka.core.models import TimelineEntry
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db


def test_task_lifecycle_on_the_timeline(admin, manager, lead_pipeline):
    lead = create_lead(admin, title="Перезвонить клиенту")
    deadline = timezone.now() + datetime.timedelta(hours=3)
    task = actions.create_task(admin, title="Позвонить", deadline=deadline.isoformat(), responsible=manager.user_id,
                               observers=[admin.user_id], entity_type_id=1, entity_id=lead.pk)
    assert task.responsible_id == manager.user_id and list(task.observers.all()) == [admin.user]
    task = actions.complete_task(manager, task.pk, result="Договорились о встрече")
    assert task.status == "done" and task.completed_at
    events = [e.data.get("event") for e in TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead.pk, kind="task")]
    assert sorted(events) == ["completed", "created"]
    with pytest.raises(Conflict):
        actions.complete_task(manager, task.pk)


def test_task_bad_input(admin, lead_pipeline):
    with pytest.raises(ValidationFailed):
        actions.create_task(admin, title="", deadline=None)
    with pytest.raises(ValidationFailed):
        actions.create_task(admin, title="x", deadline="вчера")
    with pytest.raises(ValidationFailed):
        actions.create_task(admin, title="x", entity_type_id=1, entity_id=999)
    with pytest.raises(ValidationFailed):
        actions.create_task(admin, title="x", observers=[12345])


def test_only_responsible_or_author_completes(admin, manager_user, lead_pipeline):
    from voronka.core.actor import Actor
    from voronka.identity.models import User

    other = Actor.for_user(User.objects.create_user("other", password="x"), "test")
    task = actions.create_task(admin, title="x", responsible=manager_user.pk)
    with pytest.raises(NotFound):  # cannot even see it
        actions.complete_task(other, task.pk)
    task.observers.add(other.user)
    with pytest.raises(PermissionDenied):
        actions.complete_task(other, task.pk)


def test_comment(admin, lead_pipeline):
    lead = create_lead(admin, title="x")
    entry = actions.add_comment(admin, entity_type_id=1, entity_id=lead.pk, text="  Клиент просил счёт  ")
    assert entry.text == "Клиент просил счёт" and entry.kind == "comment"
    with pytest.raises(ValidationFailed):
        actions.add_comment(admin, entity_type_id=1, entity_id=lead.pk, text="   ")
    with pytest.raises(ValidationFailed):
        actions.add_comment(admin, entity_type_id=99, entity_id=lead.pk, text="x")
