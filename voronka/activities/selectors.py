"""Reads of tasks and notifications, already narrowed to what the actor may see.

A task is visible to its responsible, its author, its observers, and whoever may read the record it is on.
"""

from __future__ import annotations

from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.errors import NotFound
from voronka.core.selectors import get_record_for, records_visible_to

from .models import Task


def visible_tasks(actor: Actor) -> QuerySet:
    return _narrow(actor, Task.objects.all(), correlated=False)


def narrow_to_visible(actor: Actor, qs: QuerySet) -> QuerySet:
    """``qs`` (tasks) narrowed to those the actor may see, by the rules of ``visible_tasks``, for reports that count
    a few tasks of a few people (the managers' overdue tasks): the record check is a correlated ``EXISTS`` per
    entity type (a primary-key lookup of the task's record under the actor's rights), so its cost grows with the
    tasks in ``qs``, not with the records the actor may read (``visible_tasks`` builds ``IN (every readable
    id)``, a million ids for a head at 1M records)."""
    return _narrow(actor, qs, correlated=True)


def _narrow(actor: Actor, qs: QuerySet, *, correlated: bool) -> QuerySet:
    """The task rules, in one place: everything for the system and superusers, nothing for the inactive; else the
    actor's own tasks (responsible, author, observer) and the tasks on records he may read. ``correlated`` picks
    the plan of the record check (a correlated ``EXISTS`` per task, or ``IN`` the readable ids)."""
    user = actor.user
    if actor.is_system or (user is not None and user.is_superuser):
        return qs
    if user is None or not user.is_active:
        return qs.none()
    observed = Task.observers.through.objects.filter(user_id=user.pk)
    q = Q(responsible_id=user.pk) | Q(created_by_id=user.pk)
    q |= Q(Exists(observed.filter(task_id=OuterRef("pk")))) if correlated else Q(pk__in=observed.values("task_id"))
    for info in entity_types.all_types():
        readable = records_visible_to(actor, info.id)
        q |= Q(entity_type_id=info.id) & (Q(Exists(readable.filter(pk=OuterRef("entity_id")))) if correlated
                                          else Q(entity_id__in=readable.values("pk")))
    return qs.filter(q)


def task_for(actor: Actor, pk: int) -> Task:
    """One task the actor may see, or «not found» (the same answer whether it exists or not)."""
    task = visible_tasks(actor).filter(pk=pk).select_related("responsible", "created_by").first()
    if task is None:
        raise NotFound(_("Task #%(id)s does not exist.") % {"id": pk})
    return task


def my_tasks(actor: Actor, *, show: str = "open", limit: int = 200) -> list[Task]:
    """The actor's own tasks (responsible, author, observer): overdue first, then by deadline."""
    user = actor.user
    if user is None:
        return []
    now = timezone.now()
    qs = Task.objects.filter(Q(responsible_id=user.pk) | Q(created_by_id=user.pk) |
                             Q(pk__in=Task.observers.through.objects.filter(user_id=user.pk).values("task_id")))
    if show == "open":
        qs = qs.filter(status=Task.Status.OPEN)
    elif show == "done":
        qs = qs.exclude(status=Task.Status.OPEN)
    qs = qs.annotate(overdue_first=Case(When(status="open", deadline__lt=now, then=Value(0)),
                                        When(status="open", deadline__isnull=False, then=Value(1)),
                                        default=Value(2), output_field=IntegerField()))
    return list(qs.select_related("responsible").order_by("overdue_first", "deadline", "-id")[:limit])


def tasks_on_record(actor: Actor, entity_type_id: int, entity_id: int, *, limit: int = 50) -> list[Task]:
    """Tasks on a record the actor may read (reading the record lets one see its tasks)."""
    get_record_for(actor, entity_type_id, entity_id)
    return list(Task.objects.filter(entity_type_id=entity_type_id, entity_id=entity_id).select_related("responsible")
                .order_by("status", "deadline")[:limit])


def open_task_counts(actor: Actor) -> dict[str, int]:
    """The home page's figures: the actor's open tasks and how many of them are overdue."""
    if actor.user is None:
        return {"open": 0, "overdue": 0}
    tasks = Task.objects.filter(responsible_id=actor.user_id, status=Task.Status.OPEN)
    return {"open": tasks.count(), "overdue": tasks.filter(deadline__lt=timezone.now()).count()}


def overdue_among(entity_type_id: int, ids) -> set[int]:
    """Which of these records (already read through a rights-checking selector) have an overdue open task.

    A board asks this for its ~300 cards at once; the statement is written out because building a 300-value
    ``IN`` lookup through the ORM cost more than running it (~1 ms a board)."""
    ids = [int(i) for i in ids]
    if not ids:
        return set()
    from django.db import connection

    table = connection.ops.quote_name(Task._meta.db_table)
    sql = (f"SELECT DISTINCT entity_id FROM {table} WHERE entity_type_id = %s AND status = %s AND deadline < %s "
           f"AND entity_id IN ({', '.join(['%s'] * len(ids))})")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [entity_type_id, Task.Status.OPEN.value, now, *ids])
        return {row[0] for row in cursor.fetchall()}
