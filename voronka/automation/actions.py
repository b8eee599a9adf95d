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
    if not isinstance(delay, dict) or delay.get("kind") not in ("none", "after", "at_field", "working"):
        raise _invalid("delay", _("The delay is {kind: none | after | at_field | working, amount, unit, field}."))
    unknown = set(delay) - {"kind", "amount", "unit", "field"}
    if unknown:
        raise _invalid("delay", _("Unknown delay keys: %(k)s.") % {"k": ", ".join(sorted(unknown))})
    kind, amount, unit = delay["kind"], delay.get("amount", 0), delay.get("unit", "minutes")
    if not isinstance(amount, int) or isinstance(amount, bool) or (kind in ("after", "working") and amount < 0):
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


def _apply_name_and_order(rule, data: dict, name_missing: str) -> None:
    """The name and the order, shared by robots and triggers (both are stage rules on the board)."""
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise _invalid("name", name_missing)
        rule.name = data["name"].strip()[:200]
    if "order" in data:
        if not isinstance(data["order"], int) or isinstance(data["order"], bool):
            raise _invalid("order", _("The order is a whole number."))
        rule.order = data["order"]


def _apply(robot: Robot, data: dict) -> None:
    unknown = set(data) - set(ROBOT_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    _apply_name_and_order(robot, data, _("A robot needs a name."))
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
                    enabled: bool = True, working_time: bool = False) -> StageLimit:
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
    if not isinstance(working_time, bool):
        raise _invalid("working_time", _("«working_time» is true or false."))
    with transaction.atomic():
        stage_obj = _stage(stage)
        policies.require(actor, SETTINGS, stage_obj.pipeline.entity_type_id)
        limit = StageLimit.objects.select_for_update().filter(stage=stage_obj).first() or StageLimit(stage=stage_obj)
        limit.amount, limit.unit, limit.steps, limit.enabled = amount, unit, steps, enabled
        limit.working_time = working_time
        limit.updated_at = timezone.now()
        limit.save()
        planned = engine.replan_stage(stage_obj)
        audit.record(actor, "automation.limit_set", entity_id=limit.pk, stage=stage_obj.pk, amount=amount, unit=unit,
                     steps=len(steps), enabled=enabled, working_time=working_time, items=planned)
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


def set_task_escalation(actor: Actor, *, steps: list | None = None, enabled: bool = True,
                        working_time: bool = False) -> TaskEscalation:
    """Set the escalation chain of overdue tasks (F41) and re-plan the timers of open tasks with a deadline.

    ``steps`` as a stage limit's chain; ``after`` counts from the task's deadline (default: notify the
    responsible at the deadline), in calendar time or, with ``working_time``, in the working time of the
    task's responsible by the working calendar."""
    policies.require(actor, SETTINGS, 0)
    steps = steps if steps is not None else DEFAULT_TASK_CHAIN
    try:
        limits.check_steps(steps)
    except ValueError as exc:
        raise _invalid("steps", str(exc)) from None
    if not isinstance(enabled, bool):
        raise _invalid("enabled", _("«enabled» is true or false."))
    if not isinstance(working_time, bool):
        raise _invalid("working_time", _("«working_time» is true or false."))
    with transaction.atomic():
        row = TaskEscalation.objects.select_for_update().order_by("id").first() or TaskEscalation()
        row.steps, row.enabled, row.working_time, row.updated_at = steps, enabled, working_time, timezone.now()
        row.save()
        planned = overdue.replan_all(steps if enabled else None, working_time)
        audit.record(actor, "automation.task_escalation_set", entity_id=row.pk, steps=len(steps), enabled=enabled,
                     working_time=working_time, tasks=planned)
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


# --- triggers ------------------------------------------------------------------------------------------

TRIGGER_FIELDS = ("name", "kind", "params", "allow_backwards", "enabled", "order", "stage", "rotate_secret")


def _apply_trigger(trigger, data: dict) -> None:
    from . import triggers

    unknown = set(data) - set(TRIGGER_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    if "stage" in data:
        stage_obj = _stage(data["stage"])
        if trigger.pipeline_id and stage_obj.pipeline_id != trigger.pipeline_id:
            raise _invalid("stage", _("The stage must be in the trigger's pipeline."))
        trigger.stage, trigger.pipeline = stage_obj, stage_obj.pipeline
    _apply_name_and_order(trigger, data, _("A trigger needs a name."))
    for key in ("enabled", "allow_backwards"):
        if key in data:
            if not isinstance(data[key], bool):
                raise _invalid(key, _("«%(k)s» is true or false.") % {"k": key})
            setattr(trigger, key, data[key])
    if "kind" in data:
        if data["kind"] not in triggers.KINDS:
            raise _invalid("kind", _("Unknown event «%(k)s»; use one of %(all)s.")
                           % {"k": data["kind"], "all": ", ".join(triggers.KINDS)})
        trigger.kind = data["kind"]
    if "params" in data:
        trigger.params = data["params"] if data["params"] is not None else {}
    if not trigger.kind:
        raise _invalid("kind", _("A trigger needs an event."))
    try:
        triggers.check_params(trigger.kind, trigger.params)
    except ValueError as exc:
        raise _invalid("params", str(exc)) from None
    if data.get("rotate_secret") or not trigger.secret:
        import secrets

        trigger.secret = secrets.token_urlsafe(24)


def create_trigger(actor: Actor, *, stage: int, **data):
    """A trigger on ``stage``: ``kind`` (see ``triggers.KINDS``), ``params``, ``name``, ``allow_backwards``,
    ``enabled``, ``order``. A secret for the incoming webhook URL is generated."""
    from . import triggers
    from .models import StageTrigger

    with transaction.atomic():
        stage_obj = _stage(stage)
        policies.require(actor, SETTINGS, stage_obj.pipeline.entity_type_id)
        trigger = StageTrigger(pipeline=stage_obj.pipeline, stage=stage_obj, name="", kind="", params={})
        _apply_trigger(trigger, {k: v for k, v in data.items() if k != "stage"})
        if not trigger.name:
            trigger.name = str(triggers.KINDS[trigger.kind].label)
        trigger.save()
        audit.record(actor, "automation.trigger_created", entity_id=trigger.pk, stage=stage_obj.pk, kind=trigger.kind)
        config_cache.bump()
        outbox.emit(actor, "automation.trigger_created", None, trigger.pk, {"stage": stage_obj.pk})
        return trigger


def update_trigger(actor: Actor, trigger_id: int, **data):
    """Change the fields given; ``stage`` moves it within its pipeline; ``rotate_secret=True`` makes a new URL."""
    from .models import StageTrigger

    with transaction.atomic():
        trigger = (StageTrigger.objects.select_for_update().select_related("pipeline").filter(pk=trigger_id).first()
                   if str(trigger_id).isdigit() else None)
        if trigger is None:
            raise NotFound(_("Trigger #%(id)s does not exist.") % {"id": trigger_id})
        policies.require(actor, SETTINGS, trigger.pipeline.entity_type_id)
        _apply_trigger(trigger, data)
        trigger.updated_at = timezone.now()
        trigger.save()
        changed = sorted(k for k in data if k != "rotate_secret") + (["secret"] if data.get("rotate_secret") else [])
        audit.record(actor, "automation.trigger_updated", entity_id=trigger.pk, changed=changed)
        config_cache.bump()
        outbox.emit(actor, "automation.trigger_updated", None, trigger.pk, {"changed": changed})
        return trigger


def delete_trigger(actor: Actor, trigger_id: int) -> None:
    """Its pending runs are skipped when they come due («The trigger was deleted.»)."""
    from .models import StageTrigger

    with transaction.atomic():
        trigger = (StageTrigger.objects.select_for_update().select_related("pipeline").filter(pk=trigger_id).first()
                   if str(trigger_id).isdigit() else None)
        if trigger is None:
            raise NotFound(_("Trigger #%(id)s does not exist.") % {"id": trigger_id})
        policies.require(actor, SETTINGS, trigger.pipeline.entity_type_id)
        name = trigger.name
        trigger.delete()
        audit.record(actor, "automation.trigger_deleted", entity_id=trigger_id, name=name)
        config_cache.bump()
        outbox.emit(actor, "automation.trigger_deleted", None, trigger_id)


def call_trigger(trigger_id: int, secret: str, item_id, *, ip: str = "") -> dict:
    """An outside system called a trigger's incoming webhook URL (F37) with an item's id: check the secret
    (a wrong one, a disabled or missing trigger are all «not found»), check the item is in the trigger's
    pipeline, and emit ``automation.trigger_called``; the engine moves the item as for any trigger."""
    import hmac

    from voronka.core import entity_types

    from .models import StageTrigger

    trigger = StageTrigger.objects.select_related("pipeline").filter(pk=trigger_id, kind="webhook").first() \
        if str(trigger_id).isdigit() else None
    if trigger is None or not trigger.enabled or not secret \
            or not hmac.compare_digest(trigger.secret.encode(), str(secret).encode()):
        raise NotFound(_("No such trigger."))
    if isinstance(item_id, bool) or not str(item_id).strip().isdigit():
        raise _invalid("id", _("Give the record's id (a whole number) as «id»."))
    info = entity_types.get(trigger.pipeline.entity_type_id)
    obj = info.model.objects.filter(pk=int(str(item_id).strip()), deleted_at__isnull=True).first()
    if obj is None or obj.pipeline_id != trigger.pipeline_id:
        raise NotFound(_("%(what)s #%(id)s is not in the pipeline «%(p)s».")
                       % {"what": info.title, "id": item_id, "p": trigger.pipeline.name})
    import dataclasses

    actor = dataclasses.replace(Actor.system(cause=f"trigger_webhook:{trigger.pk}", entry_point="webhook"), ip=ip)
    with transaction.atomic():
        event = outbox.emit(actor, "automation.trigger_called", info.id, obj.pk, {"trigger": trigger.pk})
    return {"accepted": True, "event": event.pk, "entity_type": info.code, "id": obj.pk}


def record_email_event(token: str, kind: str) -> str | None:
    """A client opened a robot's e-mail (the tracking pixel) or clicked one of its links (the redirect): the
    first time each is recorded and ``email.opened`` / ``email.clicked`` is emitted on the record. Returns the
    link to redirect to (clicks), or None for a token that is not ours."""
    from django.core import signing
    from django.db import IntegrityError

    from .models import Run, TrackedEmailEvent

    try:
        data = signing.loads(token, salt="voronka.automation.email")
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("r"), int):
        return None
    url = str(data.get("u") or "") if kind == "clicked" else ""
    run = Run.objects.filter(pk=data["r"]).only("id", "entity_type_id", "entity_id", "depth").first()
    if run is None:
        return url or None
    actor = Actor.system(cause=f"email:{run.pk}", entry_point="tracking", depth=run.depth)
    try:
        with transaction.atomic():
            TrackedEmailEvent.objects.create(run=run, kind=kind, url=url[:1000])
            outbox.emit(actor, f"email.{kind}", run.entity_type_id, run.entity_id, {"run": run.pk, "url": url})
    except IntegrityError:
        pass  # seen before: recorded once
    return url or ""
