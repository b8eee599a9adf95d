"""Overdue-task escalation (F41): one timer per escalation step of each open task with a deadline.

- **Planning** is driven by the task's events (``task.created``, ``task.updated``, ``task.completed``,
  ``task.cancelled``), delivered at least once by the outbox: ``sync`` makes the task's timers match its
  current state (open or not, its deadline, the configured chain), so any number of deliveries, in any order,
  leaves the same timers. Changing the chain re-plans the open tasks with a deadline (a settings change).
  Nothing scans open tasks to find overdue ones.
- **Firing** (the worker's scheduler tick, ``fire_due``): due timers (an indexed range on ``due_at``) are
  locked one by one; in one transaction the step's people are notified, the task maybe reassigned, the
  outcome written on the linked record's timeline and the timer marked fired, so a crash rolls everything back
  and the timer fires again later, once. A timer whose task is finished or whose deadline moved is cancelled.
  A refused action fails the timer with its message; an unexpected error is retried with backoff.
"""

from __future__ import annotations

import datetime
import logging
import traceback

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from voronka.core import clock, entity_types, history
from voronka.core.actor import Actor
from voronka.core.errors import ActionError
from voronka.core.models import OutboxEvent

from . import rules
from .models import TaskEscalation, TaskTimer

log = logging.getLogger(__name__)

EVENTS = {"task.created", "task.updated", "task.completed", "task.cancelled"}
BATCH = 50
DEFAULT_MESSAGE = gettext_noop("Task «{title}» is overdue since {deadline}, responsible {responsible}")
LABEL = gettext_noop("Overdue task")


def config() -> tuple[list | None, bool]:
    """(the enabled escalation chain or None, whether its steps count the responsible's working time); cached
    per process against the settings version."""
    from voronka.core import config_cache

    def load():
        row = TaskEscalation.objects.filter(enabled=True).order_by("id").first()
        steps = list(row.steps or []) if row is not None and row.steps else None
        return steps, bool(steps and row.working_time)

    return config_cache.cached(("automation", "task_escalation"), load, config_cache.current_version())


def chain() -> list | None:
    """The enabled escalation chain, or None."""
    return config()[0]


def on_event(event: OutboxEvent) -> None:
    if event.name == "calendar.changed":
        steps, working_time = config()
        if working_time:  # the due moments of every open task's steps may have moved
            with transaction.atomic():
                replan_all(steps, working_time=True)
        return
    if event.name not in EVENTS or not isinstance(event.payload.get("task"), int):
        return
    if chain() is None and not TaskTimer.objects.filter(task_id=event.payload["task"],
                                                        status=TaskTimer.Status.PENDING).exists():
        return  # nothing configured and nothing planned: nothing to keep
    sync(event.payload["task"])


# --- planning -------------------------------------------------------------------------------------------

def wanted(task, steps: list | None, working_time: bool = False) -> dict[int, datetime.datetime]:
    """When each step is due: the deadline plus the step's «after», in calendar time or, with ``working_time``,
    in the working time of the task's responsible by the working calendar (a day is their usual working day;
    a step at the deadline of a task due outside working hours waits for the next working time)."""
    from voronka.activities.models import Task

    if task is None or task.status != Task.Status.OPEN or task.deadline is None or not steps:
        return {}
    afters = [((step.get("after") or {}).get("amount", 0), (step.get("after") or {}).get("unit", "minutes"))
              for step in steps]
    if not working_time:
        return {index: task.deadline + rules.delta(amount, unit) for index, (amount, unit) in enumerate(afters)}
    from voronka.calendars.working_time import add_working_time_in, schedule_for

    schedule = schedule_for(task.responsible, task.deadline)
    day = schedule.day_length()
    return {index: add_working_time_in(schedule, task.deadline,
                                       day * amount if unit == "days" else rules.delta(amount, unit))
            for index, (amount, unit) in enumerate(afters)}


def sync(task_id: int) -> None:
    """Make the task's timers match its current state and the chain. Safe to call any number of times."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                _sync(task_id, *config())
            return
        except IntegrityError:  # another process planned the same timer at the same moment: read again
            if attempt == 2:
                raise


def _sync(task_id: int, steps: list | None, working_time: bool = False) -> None:
    from voronka.activities.models import Task

    task = Task.objects.filter(pk=task_id).select_related("responsible").first()
    existing = {t.step: t for t in TaskTimer.objects.select_for_update().filter(task_id=task_id)}
    want = wanted(task, steps, working_time)
    drop = [t.pk for step, t in existing.items() if step not in want and t.status == TaskTimer.Status.PENDING]
    if drop:  # fired and failed timers stay: they say what happened
        TaskTimer.objects.filter(pk__in=drop).delete()
    for step, due in want.items():
        timer = existing.get(step)
        if timer is None:
            TaskTimer.objects.create(task_id=task_id, step=step, deadline=task.deadline, due_at=due)
        elif timer.deadline != task.deadline:  # the deadline moved: the chain starts over
            timer.deadline, timer.due_at, timer.status = task.deadline, due, TaskTimer.Status.PENDING
            timer.attempts, timer.outputs, timer.error, timer.fired_at = 0, {}, "", None
            timer.save()
        elif timer.status == TaskTimer.Status.PENDING and timer.due_at != due:
            timer.due_at = due
            timer.save(update_fields=["due_at"])


def replan_all(steps: list | None, working_time: bool = False) -> int:
    """The chain (or, for a chain in working time, the calendar) changed: re-plan every open task with a
    deadline (a settings change, not a periodic scan)."""
    from voronka.activities.models import Task

    if not steps:
        TaskTimer.objects.filter(status=TaskTimer.Status.PENDING).delete()
        return 0
    count = 0
    ids = Task.objects.filter(status=Task.Status.OPEN, deadline__isnull=False).values_list("id", flat=True)
    for pk in ids.iterator(chunk_size=2000):
        _sync(pk, steps, working_time)
        count += 1
    return count


# --- firing ---------------------------------------------------------------------------------------------

def _postgres() -> bool:
    return connection.vendor == "postgresql"


def actor_for(timer: TaskTimer) -> Actor:
    return Actor.system(cause=f"task_escalation:{timer.task_id}:{timer.step}", entry_point="automation", depth=1)


def fire_due(now: datetime.datetime, limit: int = BATCH) -> int:
    ids = list(TaskTimer.objects.filter(status=TaskTimer.Status.PENDING, due_at__lte=now)
               .order_by("due_at", "id").values_list("id", flat=True)[:limit])
    done = 0
    for pk in ids:
        try:
            done += _fire(pk, now)
        except ActionError as exc:  # the action refused: retrying would not help
            _fail(pk, _format(exc), retry=False)
            done += 1
        except Exception:
            log.exception("overdue task timer %s failed", pk)
            _fail(pk, traceback.format_exc(limit=6), retry=True)
            done += 1
    return done


def _fire(pk: int, now: datetime.datetime) -> int:
    from voronka.activities.models import Task

    with transaction.atomic():
        qs = TaskTimer.objects.select_for_update(skip_locked=True) if _postgres() else TaskTimer.objects
        timer = qs.filter(pk=pk, status=TaskTimer.Status.PENDING, due_at__lte=now).first()
        if timer is None:
            return 0  # another worker has it, or it was re-planned
        task = Task.objects.select_for_update().filter(pk=timer.task_id).first()
        row = TaskEscalation.objects.filter(enabled=True).order_by("id").first()
        steps = (row.steps or []) if row is not None else []
        if task is None or task.status != Task.Status.OPEN or task.deadline != timer.deadline \
                or timer.step >= len(steps):
            timer.status = TaskTimer.Status.CANCELLED  # the task is finished, or it was planned for another deadline
            timer.save(update_fields=["status"])
            return 1
        actor = actor_for(timer)
        outputs = escalate(actor, task, steps[timer.step])
        timer.status, timer.outputs, timer.error, timer.fired_at = TaskTimer.Status.FIRED, outputs, "", clock.now()
        timer.attempts += 1
        timer.save(update_fields=["status", "outputs", "error", "fired_at", "attempts"])
        _log(actor, task, timer, outputs.get("text", ""))
        return 1


def _format(exc: ActionError) -> str:
    text = exc.message
    if exc.fields:
        text += " " + "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
    return text


def _fail(pk: int, error: str, *, retry: bool) -> None:
    from voronka.activities.models import Task

    with transaction.atomic():
        timer = TaskTimer.objects.select_for_update().filter(pk=pk, status=TaskTimer.Status.PENDING).first()
        if timer is None:
            return
        timer.attempts += 1
        timer.error = error[:10000]
        if retry and timer.attempts < rules.max_attempts():
            timer.due_at = clock.now() + datetime.timedelta(seconds=rules.backoff_seconds(timer.attempts))
            timer.save(update_fields=["attempts", "error", "due_at"])
            return
        timer.status, timer.fired_at = TaskTimer.Status.FAILED, clock.now()
        timer.save(update_fields=["attempts", "error", "status", "fired_at"])
        task = Task.objects.filter(pk=timer.task_id).first()
        if task is not None:
            _log(actor_for(timer), task, timer, "")


def _record_exists(task) -> bool:
    if not task.entity_type_id or not task.entity_id:
        return False
    try:
        model = entity_types.get(task.entity_type_id).model
    except LookupError:
        return False
    return model.objects.filter(pk=task.entity_id, deleted_at__isnull=True).exists()


def _log(actor: Actor, task, timer: TaskTimer, text: str) -> None:
    """The escalation's line on the linked record's timeline (kind ``automation``, as runs)."""
    if not _record_exists(task):
        return
    history.entry(actor, task.entity_type_id, task.entity_id, "automation",
                  text=text or gettext(LABEL) + f": {task.title}",
                  data={"task": task.pk, "rule": f"task_overdue:{timer.step}", "action": "escalate_task",
                        "status": "done" if timer.status == TaskTimer.Status.FIRED else timer.status,
                        "error": timer.error[:1000], "outputs": timer.outputs, "attempts": timer.attempts})


# --- the escalation ---------------------------------------------------------------------------------------

def _person(user) -> str:
    return (user.get_full_name() or user.username) if user is not None else "—"


def render(template: str, values: dict) -> str:
    """``{name}`` placeholders replaced with ``values``; unknown ones stay visible as written (no engine)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def message_for(step: dict, task, language: str) -> str:
    """The step's text in ``language``: its own template or the default one, with the task's values."""
    with translation.override(language):
        template = step.get("message") or gettext(DEFAULT_MESSAGE)
        deadline = timezone.localtime(task.deadline).strftime("%d.%m.%Y %H:%M") if task.deadline else "—"
        return render(template, {"title": task.title, "deadline": deadline, "responsible": _person(task.responsible),
                                 "link": f"/tasks/{task.pk}/"})


def escalate(actor: Actor, task, step: dict) -> dict:
    """Notify the step's people (each in their language) and, if the step says so, hand the task over."""
    from voronka.activities.actions import notify, update_task

    recipients = rules.people(step.get("notify") or ["responsible"], task)
    on_record = _record_exists(task)
    task_people = {task.responsible_id, task.created_by_id, *task.observers.values_list("id", flat=True)}
    by_language: dict[str, list] = {}
    for user in recipients:
        by_language.setdefault(user.language or settings.LANGUAGE_CODE, []).append(user)
    outputs: dict = {"notified": [], "texts": {}}
    for language, users in sorted(by_language.items()):
        text = message_for(step, task, language)
        rows = notify(actor, users=users, text=text, entity_type_id=task.entity_type_id if on_record else None,
                      entity_id=task.entity_id if on_record else None, email=bool(step.get("email")))
        if on_record:  # people of the task who may not read its record are told without the record
            reached = {n.user_id for n in rows}
            own = [u for u in users if u.pk not in reached and u.pk in task_people]
            if own:
                rows += notify(actor, users=own, text=text, email=bool(step.get("email")))
        outputs["notified"] += [n.user_id for n in rows]
        outputs["texts"][language] = text
    outputs["text"] = message_for(step, task, translation.get_language() or settings.LANGUAGE_CODE)
    if not outputs["notified"]:
        outputs["warning"] = gettext("Nobody could be notified: no such people, or none of them may read the record.")
    if step.get("reassign"):
        found = rules.people([step["reassign"]], task)
        if found and found[0].pk != task.responsible_id:
            update_task(actor, task.pk, responsible=found[0].pk)
            outputs["reassigned_to"] = found[0].pk
    return outputs
