"""Who sees which task: own, authored, observed, or on a record one may read — nothing else."""

from __future__ import annotations

import pytest

from voronka.activities import selectors
from voronka.activities.actions import create_task
from voronka.core.errors import NotFound
from voronka.identity.models import Department, User
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db


def test_visibility(admin, manager, manager_user, lead_pipeline):
    stranger = User.objects.create_user("stranger", "s@example.ru", "p", department=Department.objects.create(name="Цех"))
    hidden_lead = create_lead(admin, title="Чужой лид", responsible=stranger.pk)
    own_lead = create_lead(admin, title="Свой лид", responsible=manager_user.pk)
    on_hidden = create_task(admin, title="Чужая задача", responsible=stranger.pk, entity_type_id=1, entity_id=hidden_lead.pk)
    on_own = create_task(admin, title="По своему лиду", responsible=stranger.pk, entity_type_id=1, entity_id=own_lead.pk)
    observed = create_task(admin, title="Наблюдаю", responsible=stranger.pk, observers=[manager_user.pk])
    mine = create_task(admin, title="Моя", responsible=manager_user.pk)
    assert set(selectors.visible_tasks(manager).values_list("pk", flat=True)) == {on_own.pk, observed.pk, mine.pk}
    with pytest.raises(NotFound):
        selectors.task_for(manager, on_hidden.pk)
    with pytest.raises(NotFound):
        selectors.tasks_on_record(manager, 1, hidden_lead.pk)
    assert [t.pk for t in selectors.tasks_on_record(manager, 1, own_lead.pk)] == [on_own.pk]
    assert [t.pk for t in selectors.my_tasks(manager)] == [mine.pk, observed.pk]  # no deadlines: newest first
    assert selectors.open_task_counts(manager) == {"open": 1, "overdue": 0}
