"""Every write to automation settings: robots and stage time limits. Same pattern as other settings actions:
the actor's right (``settings:robots``), validation with clear errors, one transaction, audit and an event."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import audit, config_cache, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, ValidationFailed

from . import conditions, effects, engine, limits, overdue
from .models import UNITS, Robot, StageLimit, TaskEscalation

SETTINGS = "settings:robots"
ROBOT_FIELDS = ("name", "order", "trigger", "conditions", "delay", "action", "params", "enabled")


def _stage(stage_id):
    from voronka.pipelines.models import Stage

    stage = Stage.objects.select_related("pipeline").filter(pk=stage_id).first() if str(stage_id).isdigit() else None
    if stage is None:
        raise NotFound(_("Stage #%(id)s does not exist.") % {"id": stage_id})
    return stage


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def _apply_delay(robot: Robot, delay) -> None:
    """``delay``: None / {"kind": "none"} / {"kind": "after", "amount": N, "unit": U} /
    {"kind": "at_field", "field": NAME, "amount": ±N, "unit": U}."""
    if delay in (None, {}, "none"):
        robot.delay_kind, robot.delay_amount, robot.delay_unit, robot.delay_field = "none", 0, "minutes", ""
        return
    if not isinstance(delay, dict) or delay.get("kind") not in ("none", "after", "at_field"):
        raise _invalid("delay", _("The delay is {kind: none | after | at_field, amount, unit, field}."))
    unknown = set(delay) - {"kind", "amount", "unit", "field"}
    if unknown:
        raise _invalid("delay", _("Unknown delay keys: %(k)s.") % {"k": ", ".join(sorted(unknown))})
    kind, amount, unit = delay["kind"], delay.get("amount", 0), delay.get("unit", "minutes")
    if not isinstance(amount, int) or isinstance(amount, bool) or (kind == "after" and amount < 0):
        raise _invalid("delay", _("The delay amount must be a whole number (zero or more after an event)."))
    if unit not in UNITS:
        raise _invalid("delay", _("The delay unit must be minutes, hours or days."))
    field = delay.get("field", "")
    if kind == "at_field":
        if not isinstance(field, str) or not field:
            raise _invalid("delay", _("A delay at a date field needs the field's name."))
    robot.delay_kind, robot.delay_amount, robot.delay_unit, robot.delay_field = kind, amount, unit, field or ""


def _check_field_exists(robot: Robot) -> None:
    if robot.delay_kind != "at_field":
        return
    from voronka.core import entity_types

    name = robot.delay_field
    if name.startswith("custom.") or name.startswith("uf_"):
        return
    model = entity_types.get(robot.pipeline.entity_type_id).model
    try:
        field = model._meta.get_field(name)
    except Exception:
        raise _invalid("delay", _("No field «%(f)s».") % {"f": name}) from None
    if field.get_internal_type() not in ("DateField", "DateTimeField"):
        raise _invalid("delay", _("Field «%(f)s» is not a date.") % {"f": name})


def _apply(robot: Robot, data: dict) -> None:
    unknown = set(data) - set(ROBOT_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise _invalid("name", _("A robot needs a name."))
        robot.name = data["name"].strip()[:200]
    if "order" in data:
        if not isinstance(data["order"], int) or isinstance(data["order"], bool):
            raise _invalid("order", _("The order is a whole number."))
        robot.order = data["order"]
    if "trigger" in data:
        if data["trigger"] not in Robot.Trigger.values:
            raise _invalid("trigger", _("The trigger is on_enter or on_create."))
        robot.trigger = data["trigger"]
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise _invalid("enabled", _("«enabled» is true or false."))
        robot.enabled = data["enabled"]
    if "conditions" in data:
        try:
            conditions.validate(data["conditions"])
        except conditions.ConditionError as exc:
            raise _invalid("conditions", str(exc)) from None
        robot.conditions = data["conditions"] or {}
    if "delay" in data:
        _apply_delay(robot, data["delay"])
    if "action" in data:
        robot.action = data["action"]
    if "params" in data:
        robot.params = data["params"]
    if not robot.action:
        raise _invalid("action", _("A robot needs an action."))
    try:
        effects.check_params(robot.action, robot.params if robot.params is not None else {})
    except ValueError as exc:
        raise _invalid("params" if robot.action in (*effects.DB, *effects.EXTERNAL) else "action", str(exc)) from None
    _check_field_exists(robot)


def create_robot(actor: Actor, *, stage: int, **data) -> Robot:
    with transaction.atomic():
        stage_obj = _stage(stage)
        policies.require(actor, SETTINGS, stage_obj.pipeline.entity_type_id)
        robot = Robot(pipeline=stage_obj.pipeline, stage=stage_obj, name="", action="", params={})
        _apply(robot, data)
        if not robot.name:
            robot.name = str(dict(Robot.Action.choices).get(robot.action, robot.action))
        robot.save()
        audit.record(actor, "automation.robot_created", entity_id=robot.pk, stage=stage_obj.pk, robot_action=robot.action)
        config_cache.bump()
        outbox.emit(actor, "automation.robot_created", None, robot.pk, {"stage": stage_obj.pk})
        return robot


def update_robot(actor: Actor, robot_id: int, **data) -> Robot:
    with transaction.atomic():
        robot = Robot.objects.select_for_update().select_related("pipeline").filter(pk=robot_id).first()
        if robot is None:
            raise NotFound(_("Robot #%(id)s does not exist.") % {"id": robot_id})
        policies.require(actor, SETTINGS, robot.pipeline.entity_type_id)
        _apply(robot, data)
        robot.updated_at = timezone.now()
        robot.save()
        audit.record(actor, "automation.robot_updated", entity_id=robot.pk, changed=sorted(data))
        config_cache.bump()
        outbox.emit(actor, "automation.robot_updated", None, robot.pk, {"changed": sorted(data)})
        return robot


def delete_robot(actor: Actor, robot_id: int) -> None:
    """Its pending runs are skipped when they come due (they say «the robot was deleted»); done runs stay."""
    with transaction.atomic():
        robot = Robot.objects.select_for_update().select_related("pipeline").filter(pk=robot_id).first()
        if robot is None:
            raise NotFound(_("Robot #%(id)s does not exist.") % {"id": robot_id})
        policies.require(actor, SETTINGS, robot.pipeline.entity_type_id)
        name = robot.name
        robot.delete()
        audit.record(actor, "automation.robot_deleted", entity_id=robot_id, name=name)
        config_cache.bump()
        outbox.emit(actor, "automation.robot_deleted", None, robot_id)


def set_stage_limit(actor: Actor, stage: int, *, amount: int, unit: str = "hours", steps: list | None = None,
                    enabled: bool = True) -> StageLimit:
    """Create or change a stage's time limit and re-plan the timers of the items in the stage."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise _invalid("amount", _("The limit is a whole number greater than zero."))
    if unit not in UNITS:
        raise _invalid("unit", _("The unit is minutes, hours or days."))
    steps = steps if steps is not None else [{"after": {"amount": 0, "unit": "minutes"}, "notify": ["responsible"]}]
    try:
        limits.check_steps(steps)
    except ValueError as exc:
        raise _invalid("steps", str(exc)) from None
    if not isinstance(enabled, bool):
        raise _invalid("enabled", _("«enabled» is true or false."))
    with transaction.atomic():
        stage_obj = _stage(stage)
        policies.require(actor, SETTINGS, stage_obj.pipeline.entity_type_id)
        limit = StageLimit.objects.select_for_update().filter(stage=stage_obj).first() or StageLimit(stage=stage_obj)
        limit.amount, limit.unit, limit.steps, limit.enabled = amount, unit, steps, enabled
        limit.updated_at = timezone.now()
        limit.save()
        planned = engine.replan_stage(stage_obj)
        audit.record(actor, "automation.limit_set", entity_id=limit.pk, stage=stage_obj.pk, amount=amount, unit=unit,
                     steps=len(steps), enabled=enabled, items=planned)
        config_cache.bump()
        outbox.emit(actor, "automation.limit_set", None, limit.pk, {"stage": stage_obj.pk})
        return limit


def delete_stage_limit(actor: Actor, stage: int) -> None:
    with transaction.atomic():
        stage_obj = _stage(stage)
        policies.require(actor, SETTINGS, stage_obj.pipeline.entity_type_id)
        deleted, _detail = StageLimit.objects.filter(stage=stage_obj).delete()  # its timers go with it
        if deleted:
            audit.record(actor, "automation.limit_deleted", stage=stage_obj.pk)
            config_cache.bump()
            outbox.emit(actor, "automation.limit_deleted", None, stage_obj.pk)



DEFAULT_TASK_CHAIN = [{"after": {"amount": 0, "unit": "minutes"}, "notify": ["responsible"]}]


def set_task_escalation(actor: Actor, *, steps: list | None = None, enabled: bool = True) -> TaskEscalation:
    """Set the escalation chain of overdue tasks (F41) and re-plan the timers of open tasks with a deadline.

    ``steps`` as a stage limit's chain; ``after`` counts from the task's deadline (default: notify the
    responsible at the deadline)."""
    policies.require(actor, SETTINGS, 0)
    steps = steps if steps is not None else DEFAULT_TASK_CHAIN
    try:
        limits.check_steps(steps)
    except ValueError as exc:
        raise _invalid("steps", str(exc)) from None
    if not isinstance(enabled, bool):
        raise _invalid("enabled", _("«enabled» is true or false."))
    with transaction.atomic():
        row = TaskEscalation.objects.select_for_update().order_by("id").first() or TaskEscalation()
        row.steps, row.enabled, row.updated_at = steps, enabled, timezone.now()
        row.save()
        planned = overdue.replan_all(steps if enabled else None)
        audit.record(actor, "automation.task_escalation_set", entity_id=row.pk, steps=len(steps), enabled=enabled,
                     tasks=planned)
        config_cache.bump()
        outbox.emit(actor, "automation.task_escalation_set", None, row.pk, {"enabled": enabled})
        return row


def delete_task_escalation(actor: Actor) -> None:
    """Overdue tasks escalate no more; pending timers are dropped (fired ones stay as a record)."""
    with transaction.atomic():
        policies.require(actor, SETTINGS, 0)
        deleted, _detail = TaskEscalation.objects.all().delete()
        overdue.replan_all(None)
        if deleted:
            audit.record(actor, "automation.task_escalation_deleted")
            config_cache.bump()
            outbox.emit(actor, "automation.task_escalation_deleted", None, None)


def reorder_robots(actor: Actor, stage: int, ids: list) -> list[Robot]:
    """Put a stage's robots in the given order (every robot of the stage, each once); renumbers 10, 20, 30 …"""
    with transaction.atomic():
        stage_obj = _stage(stage)
        policies.require(actor, SETTINGS, stage_obj.pipeline.entity_type_id)
        robots = {r.pk: r for r in Robot.objects.select_for_update().filter(stage=stage_obj)}
        if not isinstance(ids, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in ids) \
                or sorted(ids) != sorted(robots):
            raise _invalid("order", _("Give every robot of the stage exactly once."))
        now = timezone.now()
        for index, pk in enumerate(ids):
            robot = robots[pk]
            if robot.order != (index + 1) * 10:
                robot.order, robot.updated_at = (index + 1) * 10, now
                robot.save(update_fields=["order", "updated_at"])
        audit.record(actor, "automation.robots_reordered", entity_id=stage_obj.pk, order=ids)
        config_cache.bump()
        outbox.emit(actor, "automation.robots_reordered", None, stage_obj.pk, {"order": ids})
        return [robots[pk] for pk in ids]


def retry_run(actor: Actor, run_id: int):
    """Run a failed run again: it becomes pending, due now, with a fresh count of attempts."""
    from voronka.core import clock

    from .models import Run

    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first() if str(run_id).isdigit() else None
        if run is None:
            raise NotFound(_("Run #%(id)s does not exist.") % {"id": run_id})
        policies.require(actor, SETTINGS, run.entity_type_id)
        if run.status != Run.Status.FAILED:
            raise ValidationFailed(_("Only a failed run can be retried."),
                                   fields={"status": [_("The run is %(s)s.") % {"s": run.get_status_display()}]})
        previous = run.error
        run.status, run.attempts, run.scheduled_at = Run.Status.PENDING, 0, clock.now()
        run.lease_until, run.claim_token, run.finished_at = None, "", None
        run.save(update_fields=["status", "attempts", "scheduled_at", "lease_until", "claim_token", "finished_at"])
        audit.record(actor, "automation.run_retried", entity_type_id=run.entity_type_id, entity_id=run.entity_id,
                     run=run.pk, rule=run.rule, error=previous[:500])
        outbox.emit(actor, "automation.run_retried", None, run.pk, {"rule": run.rule})
        return run
