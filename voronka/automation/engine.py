"""The outbox consumer of automation: domain events become run records and stage-limit timers.

Both are idempotent, because the outbox delivers at least once:

- a run's key is ``event:<event id>:robot:<robot id>`` (unique, plus UNIQUE(cause event, robot)): the same
  event delivered twice plans each robot once;
- timers are *synchronised* with the item's current state (stage, time it entered, deleted or not), so any
  number of deliveries, in any order, leaves the same timers.

Nothing here executes an action: the worker's scheduler does (``scheduler.py``), never the web request.
"""

from __future__ import annotations

import datetime
import logging

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.models import OutboxEvent

from . import rules
from .models import Robot, Run, StageLimit, Timer

log = logging.getLogger(__name__)

VERBS = {"created", "stage_changed", "deleted", "restored", "purged", "updated"}


def configured_stages() -> dict[str, frozenset[int]]:
    """Which stages have enabled robots and limits: cached per process, checked against the settings version
    (one tiny read), so that writes to stages without automation cost almost nothing."""
    from voronka.core import config_cache

    def load():
        limits = StageLimit.objects.filter(enabled=True)
        return {"robots": frozenset(Robot.objects.filter(enabled=True).values_list("stage_id", flat=True)),
                "limits": frozenset(limits.values_list("stage_id", flat=True)),
                "working": frozenset(limits.filter(working_time=True).values_list("stage_id", flat=True))}

    return config_cache.cached(("automation",), load, config_cache.current_version())


def on_event(event: OutboxEvent) -> None:
    if event.name == "calendar.changed":
        replan_working_time()
        return
    prefix, _sep, verb = event.name.rpartition(".")
    if verb not in VERBS or not event.entity_type_id or not event.entity_id:
        return
    try:
        info = entity_types.get(event.entity_type_id)
    except LookupError:
        return
    if not info.staged or info.code != prefix:
        return
    configured = configured_stages()
    if verb == "updated":  # a new responsible moves the timers of a limit counted in his working time
        if "responsible" in ((event.payload or {}).get("changed") or []) and configured["working"]:
            sync_timers(info, event.entity_id)
        return
    if verb == "created" and not configured["robots"] and not configured["limits"]:
        return  # nothing is configured anywhere: no robot to plan, no timer to keep
    if verb == "stage_changed":
        stages = {event.payload.get("from_stage"), event.payload.get("to_stage")}
        if not stages & (configured["robots"] | configured["limits"]):
            return  # neither the stage it left nor the one it entered has automation
    if verb in ("created", "stage_changed"):
        plan_runs(event, info, configured["robots"])
    sync_timers(info, event.entity_id)


# --- robots ----------------------------------------------------------------------------------------------

def _entry_stage(event: OutboxEvent, info) -> int | None:
    if event.name.endswith(".stage_changed"):
        return event.payload.get("to_stage")
    from voronka.pipelines.models import StageHistory

    return (StageHistory.objects.filter(entity_type_id=info.id, entity_id=event.entity_id, from_stage__isnull=True)
            .order_by("id").values_list("to_stage_id", flat=True).first())


def schedule_for(robot: Robot, obj, base: datetime.datetime) -> tuple[datetime.datetime, str]:
    """When a robot's run is due, counted from the moment the item entered the stage; or why it cannot be."""
    if robot.delay_kind == Robot.Delay.AFTER:
        return base + rules.delta(robot.delay_amount, robot.delay_unit), ""
    if robot.delay_kind == Robot.Delay.WORKING:  # the responsible's next working time, plus working time
        from voronka.calendars.working_time import add_working_time, working_duration

        person = getattr(obj, "responsible", None) if obj is not None else None
        return add_working_time(person, base, working_duration(person, robot.delay_amount, robot.delay_unit)), ""
    if robot.delay_kind == Robot.Delay.AT_FIELD:
        moment = rules.date_field_moment(obj, robot.delay_field) if obj is not None else None
        if moment is None:
            return base, _("The date field «%(f)s» is empty.") % {"f": robot.delay_field}
        return moment + rules.delta(robot.delay_amount, robot.delay_unit), ""
    return base, ""


def plan_runs(event: OutboxEvent, info, with_robots: frozenset[int] | None = None) -> int:
    """Create one run per robot the event triggers; returns how many were new."""
    from .scheduler import log_run

    if with_robots is not None and not with_robots:
        return 0
    stage_id = _entry_stage(event, info)
    if stage_id is None or (with_robots is not None and stage_id not in with_robots):
        return 0
    triggers = [Robot.Trigger.ON_ENTER] + ([Robot.Trigger.ON_CREATE] if event.name.endswith(".created") else [])
    robots = list(Robot.objects.filter(stage_id=stage_id, enabled=True, trigger__in=triggers).order_by("order", "id"))
    if not robots:
        return 0
    obj = info.model.objects.filter(pk=event.entity_id).first()
    too_deep = event.depth >= rules.max_depth()
    new = 0
    for robot in robots:
        scheduled, problem = schedule_for(robot, obj, event.created_at)
        run = Run(key=f"event:{event.pk}:robot:{robot.pk}", robot=robot, rule=f"robot:{robot.pk}", action=robot.action,
                  entity_type_id=info.id, entity_id=event.entity_id, cause_event_id=event.pk, depth=event.depth + 1,
                  scheduled_at=scheduled,
                  inputs={"event": event.name, "event_at": event.created_at.isoformat(), "stage": stage_id})
        if too_deep:
            run.status, run.error = Run.Status.SKIPPED, _(
                "Stopped: this chain of rule-caused changes reached the depth limit (%(n)s).") % {"n": rules.max_depth()}
        elif problem:
            run.status, run.error = Run.Status.SKIPPED, problem
        if run.status == Run.Status.SKIPPED:
            run.finished_at = event.created_at
        try:
            with transaction.atomic():
                run.save()
                if run.status == Run.Status.SKIPPED:
                    log_run(run, robot.name)
        except IntegrityError:
            continue  # planned already: the event was delivered again
        new += 1
    return new


# --- stage time limits -------------------------------------------------------------------------------------

def wanted_timers(obj) -> dict[tuple[int, int], tuple[StageLimit, datetime.datetime]]:
    if obj is None or obj.deleted_at is not None:
        return {}
    limit = StageLimit.objects.filter(stage_id=obj.stage_id, enabled=True).first()
    if limit is None:
        return {}
    wanted = {}
    for index, due in enumerate(limit_moments(limit, obj.stage_changed_at, getattr(obj, "responsible", None))):
        wanted[(obj.stage_id, index)] = (limit, due)
    return wanted


def limit_moments(limit: StageLimit, entered: datetime.datetime, responsible=None) -> list[datetime.datetime]:
    """When each escalation step of ``limit`` is due for a stay that began at ``entered``: calendar time, or
    the responsible's working time (by the working calendar) when the limit says so."""
    steps = [step.get("after") or {"amount": 0, "unit": "minutes"} for step in (limit.steps or [])]
    if not limit.working_time:
        at_limit = entered + rules.delta(limit.amount, limit.unit)
        return [at_limit + rules.delta(a.get("amount", 0), a.get("unit", "minutes")) for a in steps]
    from voronka.calendars.working_time import add_working_time_in, schedule_for

    schedule = schedule_for(responsible, entered)
    day = schedule.day_length()

    def span(amount: int, unit: str) -> datetime.timedelta:
        return day * amount if unit == "days" else rules.delta(amount, unit)

    limit_span = span(limit.amount, limit.unit)
    return [add_working_time_in(schedule, entered, limit_span + span(a.get("amount", 0), a.get("unit", "minutes")))
            for a in steps]


def sync_timers(info, entity_id: int) -> None:
    """Make the item's timers match its current stay: plan, move or drop them. Safe to call any number of times."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                _sync(info, entity_id)
            return
        except IntegrityError:  # another process planned the same timer at the same moment: read again
            if attempt == 2:
                raise


def _sync(info, entity_id: int) -> None:
    obj = info.model.objects.filter(pk=entity_id).first()
    existing = {(t.stage_id, t.step): t for t in
                Timer.objects.select_for_update().filter(entity_type_id=info.id, entity_id=entity_id)}
    wanted = wanted_timers(obj)
    drop = [t.pk for key, t in existing.items() if key not in wanted]
    if drop:
        Timer.objects.filter(pk__in=drop).delete()
    for (stage_id, step), (limit, due) in wanted.items():
        timer = existing.get((stage_id, step))
        if timer is None:
            Timer.objects.create(limit=limit, entity_type_id=info.id, entity_id=entity_id, stage_id=stage_id, step=step,
                                 entered_at=obj.stage_changed_at, due_at=due)
        elif timer.entered_at != obj.stage_changed_at:  # a new stay in the same stage: start over
            timer.limit, timer.entered_at, timer.due_at, timer.status = limit, obj.stage_changed_at, due, Timer.Status.PENDING
            timer.save()
        elif timer.status == Timer.Status.PENDING and (timer.due_at != due or timer.limit_id != limit.pk):
            timer.limit, timer.due_at = limit, due
            timer.save(update_fields=["limit", "due_at"])


def replan_working_time() -> int:
    """The working calendar changed: re-plan the timers of items in stages whose limit counts working time."""
    from voronka.pipelines.models import Stage

    count = 0
    for stage in Stage.objects.filter(time_limit__enabled=True, time_limit__working_time=True).select_related("pipeline"):
        with transaction.atomic():
            count += replan_stage(stage)
    return count


def replan_stage(stage) -> int:
    """The limit of a stage changed: re-plan the timers of the items in it (a settings change, not a scan)."""
    info = entity_types.get(stage.pipeline.entity_type_id)
    ids = info.model.objects.filter(stage_id=stage.pk, deleted_at__isnull=True).values_list("id", flat=True)
    count = 0
    for pk in ids.iterator(chunk_size=2000):
        _sync(info, pk)
        count += 1
    # items that left the stage have no timers for it; a disabled or removed limit leaves none behind
    if not StageLimit.objects.filter(stage_id=stage.pk, enabled=True).exists():
        Timer.objects.filter(stage_id=stage.pk).delete()
    return count
