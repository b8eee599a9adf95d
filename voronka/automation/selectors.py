"""Reads of automation settings and runs for screens and the API, with the reader's rights applied.

- robots and stage limits: the ``settings:robots`` right (the same as the settings actions);
- runs (the automation log): ``settings:robots``, and a run's record is named only to someone who may read it;
- the dry run: reads only; nothing is written, nothing is planned.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from voronka.core import clock, entity_types, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, ValidationFailed

from . import conditions, effects, engine, rules, triggers
from .actions import SETTINGS
from .models import Robot, Run, StageLimit, StageTrigger


def can_configure(actor: Actor) -> bool:
    return policies.can(actor, SETTINGS, 0)


def require_configure(actor: Actor, entity_type_id: int = 0) -> None:
    policies.require(actor, SETTINGS, entity_type_id)


def staged_pipelines(actor: Actor) -> list:
    from voronka.pipelines.models import Pipeline

    require_configure(actor)
    staged = [i.id for i in entity_types.all_types() if i.staged]
    return list(Pipeline.objects.filter(entity_type_id__in=staged).order_by("entity_type_id", "sort", "id"))


def pipeline_for(actor: Actor, pipeline_ref):
    """A pipeline by id, or ``entity:code`` (``deal:sales``), or a lead pipeline's code."""
    from voronka.pipelines.models import Pipeline

    require_configure(actor)
    ref = str(pipeline_ref)
    qs = Pipeline.objects.all()
    if ref.isdigit():
        found = qs.filter(pk=int(ref)).first()
    else:
        kind, _sep, code = ref.rpartition(":")
        try:
            type_id = entity_types.by_code(kind or "lead").id
        except LookupError:
            type_id = None
        found = qs.filter(entity_type_id=type_id, code=code).first() if type_id else None
    if found is None or not entity_types.get(found.entity_type_id).staged:
        raise NotFound(_("Pipeline «%(p)s» does not exist.") % {"p": ref})
    return found


@dataclass
class StageColumn:
    stage: object
    robots: list = field(default_factory=list)
    limit: StageLimit | None = None
    triggers: list = field(default_factory=list)


def board(actor: Actor, pipeline) -> list[StageColumn]:
    """The pipeline's stages in order, each with its robots (in order) and its time limit: three queries."""
    require_configure(actor, pipeline.entity_type_id)
    stages = list(pipeline.stages.order_by("sort", "id"))
    columns = {s.pk: StageColumn(stage=s) for s in stages}
    for robot in Robot.objects.filter(stage_id__in=columns).order_by("order", "id"):
        columns[robot.stage_id].robots.append(robot)
    for limit in StageLimit.objects.filter(stage_id__in=columns):
        columns[limit.stage_id].limit = limit
    for trigger in StageTrigger.objects.filter(stage_id__in=columns).order_by("order", "id"):
        columns[trigger.stage_id].triggers.append(trigger)
    return [columns[s.pk] for s in stages]


def trigger_for(actor: Actor, trigger_id) -> StageTrigger:
    trigger = StageTrigger.objects.select_related("pipeline", "stage").filter(pk=trigger_id).first() \
        if str(trigger_id).isdigit() else None
    if trigger is None:
        raise NotFound(_("Trigger #%(id)s does not exist.") % {"id": trigger_id})
    require_configure(actor, trigger.pipeline.entity_type_id)
    return trigger


def trigger_url(trigger: StageTrigger) -> str:
    """The incoming webhook's address (for the people who may configure it), or "" for other kinds."""
    if trigger.kind != "webhook":
        return ""
    from django.conf import settings

    base = str(getattr(settings, "VORONKA_PUBLIC_URL", "") or "").rstrip("/")
    return f"{base}/hooks/trigger/{trigger.pk}/{trigger.secret}/"


def trigger_kinds() -> list[tuple[str, str, str]]:
    """(code, label, help) of every trigger kind, for the forms."""
    return [(k.code, str(k.label), str(k.help)) for k in triggers.KINDS.values()]


def trigger_examples() -> dict[str, str]:
    import yaml

    return {k.code: (yaml.safe_dump(k.example, allow_unicode=True, sort_keys=False, default_flow_style=False)
                     if k.example else "") for k in triggers.KINDS.values()}


def describe_trigger(trigger: StageTrigger) -> str:
    """What sets the trigger off, in words: «A call from or to the client (directions: missed)»."""
    kind = triggers.KINDS.get(trigger.kind)
    text = str(kind.label) if kind else trigger.kind
    params = {k: v for k, v in (trigger.params or {}).items() if v not in ("", None, [])}
    if params:
        text += " (" + "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                                 for k, v in params.items()) + ")"
    if trigger.allow_backwards:
        text += " · " + _("may move back")
    return text


def robot_for(actor: Actor, robot_id) -> Robot:
    robot = Robot.objects.select_related("pipeline", "stage").filter(pk=robot_id).first() \
        if str(robot_id).isdigit() else None
    if robot is None:
        raise NotFound(_("Robot #%(id)s does not exist.") % {"id": robot_id})
    require_configure(actor, robot.pipeline.entity_type_id)
    return robot


def robot_delay(robot: Robot) -> dict:
    if robot.delay_kind == Robot.Delay.AFTER:
        return {"kind": "after", "amount": robot.delay_amount, "unit": robot.delay_unit}
    if robot.delay_kind == Robot.Delay.AT_FIELD:
        return {"kind": "at_field", "field": robot.delay_field, "amount": robot.delay_amount, "unit": robot.delay_unit}
    if robot.delay_kind == Robot.Delay.WORKING:
        return {"kind": "working", "amount": robot.delay_amount, "unit": robot.delay_unit}
    return {"kind": "none"}


def describe_delay(robot: Robot) -> str:
    if robot.delay_kind == Robot.Delay.AFTER:
        return _("after %(d)s") % {"d": rules.human_duration(robot.delay_amount, robot.delay_unit)}
    if robot.delay_kind == Robot.Delay.WORKING:
        if not robot.delay_amount:
            return _("at the responsible's next working time")
        return _("after %(d)s of the responsible's working time") % {
            "d": rules.human_duration(robot.delay_amount, robot.delay_unit)}
    if robot.delay_kind == Robot.Delay.AT_FIELD:
        if robot.delay_amount == 0:
            return _("at «%(f)s»") % {"f": robot.delay_field}
        sign = "+" if robot.delay_amount > 0 else "−"
        return _("at «%(f)s» %(sign)s %(d)s") % {"f": robot.delay_field, "sign": sign,
                                                 "d": rules.human_duration(abs(robot.delay_amount), robot.delay_unit)}
    return _("at once")


def describe_action(action: str, params: dict) -> str:
    """One line a person reads: what the robot does."""
    label = str(dict(Robot.Action.choices).get(action, action))
    params = params or {}
    detail = ""
    if action == Robot.Action.CREATE_TASK:
        detail = params.get("title", "")
        if isinstance(params.get("deadline"), dict):
            d = params["deadline"]
            try:
                detail += " · " + _("deadline in %(d)s") % {"d": rules.human_duration(int(d.get("amount", 0)),
                                                                                     d.get("unit", "minutes"))}
            except (TypeError, ValueError):
                pass
    elif action in (Robot.Action.NOTIFY, Robot.Action.SMS, Robot.Action.COMMENT):
        detail = params.get("text", "")
        if action == Robot.Action.NOTIFY:
            detail = f"{', '.join(params.get('to') or ['responsible'])}: {detail}"
    elif action in (Robot.Action.MOVE_STAGE, Robot.Action.RETURN_TO_ORIGIN):
        detail = str(params.get("stage", ""))
    elif action == Robot.Action.SET_FIELDS and isinstance(params.get("fields"), dict):
        detail = ", ".join(params["fields"])
    elif action == Robot.Action.CHANGE_RESPONSIBLE:
        detail = str(params.get("user") or params.get("mode", ""))
    elif action == Robot.Action.WEBHOOK:
        detail = str(params.get("url", ""))
    elif action == Robot.Action.EMAIL_CLIENT:
        detail = str(params.get("subject", ""))
    elif action in (Robot.Action.CREATE_LINKED, Robot.Action.MOVE_LINKED):
        detail = str(params.get("entity_type", ""))
    elif action == Robot.Action.MARK_CONTACT and isinstance(params.get("fields"), dict):
        detail = ", ".join(params["fields"])
    elif action == Robot.Action.CONVERT_LEAD and params.get("deal_pipeline"):
        detail = str(params.get("deal_pipeline"))
    detail = str(detail).strip()
    return f"{label}: {detail}" if detail else label


def describe_recipient(token: str, names: dict[str, str] | None = None) -> str:
    """«user:ivanov» → the person's name, «role:head» → the role's name, «head» → «the head» (for people).
    ``names``: what ``recipient_names`` read for a set of tokens (else this token is looked up alone)."""
    token = str(token or "")
    words = {"responsible": _("the responsible"), "head": _("the head"), "creator": _("the creator")}
    if token in words:
        return words[token]
    if names is None:
        names = recipient_names([token])
    return names.get(token, token)


def recipient_names(tokens) -> dict[str, str]:
    """Display names of «user:LOGIN» and «role:CODE» tokens: one query per kind for all of them."""
    from voronka.identity.models import Role, User

    logins, codes = set(), set()
    for token in tokens:
        kind, _sep, code = str(token or "").partition(":")
        if code:
            (logins if kind == "user" else codes if kind == "role" else set()).add(code)
    found = {}
    for user in User.objects.filter(username__in=logins) if logins else ():
        found[f"user:{user.username}"] = user.get_full_name() or user.username
    for role in Role.objects.filter(code__in=codes) if codes else ():
        found[f"role:{role.code}"] = _("role «%(name)s»") % {"name": role.name}
    return found


def describe_limit(limit: StageLimit) -> list[str]:
    """The escalation chain as lines: «after 3 hours: notify head; reassign to head»."""
    lines = []
    steps = limit.steps or []
    names = recipient_names([t for step in steps for t in [*(step.get("notify") or []), step.get("reassign")] if t])
    for step in steps:
        after = step.get("after") or {"amount": 0, "unit": "minutes"}
        when = rules.human_duration(limit.amount, limit.unit)
        if after.get("amount"):
            when = _("%(limit)s + %(after)s") % {"limit": when, "after": rules.human_duration(after["amount"],
                                                                                              after.get("unit", "minutes"))}
        what = _("notify %(who)s") % {"who": ", ".join(describe_recipient(t, names) for t in step.get("notify") or ["responsible"])}
        if step.get("reassign"):
            what += "; " + _("reassign to %(who)s") % {"who": describe_recipient(step["reassign"], names)}
        if step.get("email"):
            what += "; " + _("also by e-mail")
        if limit.working_time:
            when = _("%(when)s of working time") % {"when": when}
        lines.append(f"{when}: {what}")
    return lines


# --- the automation log ----------------------------------------------------------------------------------

RUN_FILTERS = ("status", "pipeline", "robot", "entity_type", "entity_id", "date_from", "date_to")


def runs(actor: Actor, *, status: str = "", pipeline=None, robot=None, entity_type: str | int = "",
         entity_id=None, date_from: str = "", date_to: str = ""):
    """Runs, newest first (page them with ``keyset_page(order="-id")``). Bad filters raise ValidationFailed."""
    require_configure(actor)
    qs = Run.objects.select_related("robot", "limit", "trigger").order_by("-id")
    errors: dict[str, list[str]] = {}
    if status:
        if status not in Run.Status.values:
            errors["status"] = [_("Use one of: %(v)s.") % {"v": ", ".join(Run.Status.values)}]
        qs = qs.filter(status=status)
    if robot not in (None, ""):
        if not str(robot).isdigit():
            errors["robot"] = [_("A robot's number.")]
        else:
            qs = qs.filter(rule=f"robot:{int(robot)}")
    if pipeline not in (None, ""):
        if not str(pipeline).isdigit():
            errors["pipeline"] = [_("A pipeline's number.")]
        else:
            pipeline_id = int(pipeline)
            from django.db.models import Q

            qs = qs.filter(Q(robot__pipeline_id=pipeline_id) | Q(limit__stage__pipeline_id=pipeline_id)
                           | Q(trigger__pipeline_id=pipeline_id))
    if entity_type not in (None, ""):
        try:
            info = entity_types.get(int(entity_type)) if str(entity_type).isdigit() else entity_types.by_code(entity_type)
        except LookupError:
            errors["entity_type"] = [_("Unknown kind of record.")]
        else:
            qs = qs.filter(entity_type_id=info.id)
    if entity_id not in (None, ""):
        if not str(entity_id).isdigit() or int(entity_id) > 2**62:
            errors["entity_id"] = [_("A record's number.")]
        else:
            qs = qs.filter(entity_id=int(entity_id))
    for name, value, op in (("date_from", date_from, "gte"), ("date_to", date_to, "lt")):
        if value:
            day = parse_date(str(value)) if len(str(value)) <= 10 else None
            if day is None:
                errors[name] = [_("A date as YYYY-MM-DD.")]
                continue
            if op == "lt":
                day += datetime.timedelta(days=1)
            from django.utils import timezone

            moment = timezone.make_aware(datetime.datetime.combine(day, datetime.time()))
            qs = qs.filter(**{f"created_at__{op}": moment})
    if errors:
        raise ValidationFailed(_("Check the filters."), fields=errors)
    return qs


def run_records(actor: Actor, items: list[Run]) -> dict[tuple[int, int], object]:
    """The records of a page of runs that the actor may read, by (entity type, id); others stay unnamed."""
    from voronka.core.selectors import records_visible_to

    wanted: dict[int, set[int]] = {}
    for run in items:
        wanted.setdefault(run.entity_type_id, set()).add(run.entity_id)
    found = {}
    for type_id, ids in wanted.items():
        try:
            qs = records_visible_to(actor, type_id)
        except LookupError:
            continue
        for obj in qs.filter(pk__in=ids):
            found[(type_id, obj.pk)] = obj
    return found


def run_label(run: Run) -> str:
    if run.robot is not None:
        return run.robot.name
    if run.action == triggers.MOVE:
        return run.trigger.name if run.trigger is not None else _("Trigger")
    if run.action == "escalate":
        return _("Stage time limit")
    return run.rule


# --- the dry run -------------------------------------------------------------------------------------------

@dataclass
class DryRobot:
    robot: Robot
    holds: bool
    reason: str
    due_at: datetime.datetime | None
    does: str


@dataclass
class DryRun:
    record: object
    stage: object
    robots: list[DryRobot]
    timers: list[tuple[datetime.datetime, str]]
    notes: list[str]
    triggers: list[tuple[StageTrigger, bool, str]] = field(default_factory=list)


def dry_run(actor: Actor, entity_type_id: int, record_id, stage_id) -> DryRun:
    """What would run if the record entered the stage now: robots whose conditions hold on its current values,
    when they would be due, what they would do, and the stage limit's escalation timers. Writes nothing."""
    from voronka.core.selectors import get_record_for
    from voronka.pipelines.models import Stage

    require_configure(actor, entity_type_id)
    obj = get_record_for(actor, entity_type_id, record_id)
    stage = Stage.objects.select_related("pipeline").filter(pk=stage_id).first() if str(stage_id).isdigit() else None
    if stage is None or stage.pipeline.entity_type_id != entity_type_id:
        raise ValidationFailed(_("Choose a stage of this kind of record."),
                               fields={"stage": [_("Stage #%(id)s does not exist here.") % {"id": stage_id}]})
    now = clock.now()
    notes = []
    if stage.pipeline_id != obj.pipeline_id:
        notes.append(_("The record is in another pipeline; robots check its current values anyway."))
    if stage.pk == obj.stage_id:
        notes.append(_("The record is in this stage already; this shows what a new entry would run."))
    result = []
    for robot in Robot.objects.filter(stage=stage).order_by("order", "id"):
        if not robot.enabled:
            result.append(DryRobot(robot, False, _("The robot is disabled."), None, describe_action(robot.action, robot.params)))
            continue
        if robot.trigger == Robot.Trigger.ON_CREATE:
            result.append(DryRobot(robot, False, _("Runs only when a record is created in the stage."), None,
                                   describe_action(robot.action, robot.params)))
            continue
        try:
            holds = conditions.check(obj, robot.conditions)
            reason = "" if holds else _("The conditions do not hold.")
        except conditions.ConditionError as exc:
            holds, reason = False, str(exc)
        due, problem = engine.schedule_for(robot, obj, now)
        if problem:
            holds, reason, due = False, problem, None
        result.append(DryRobot(robot, holds, reason, due if holds else due,
                               describe_action(robot.action, robot.params)))
    timers = []
    limit = StageLimit.objects.filter(stage=stage, enabled=True).first()
    if limit is not None:
        moments = engine.limit_moments(limit, now, getattr(obj, "responsible", None))
        timers = list(zip(moments, describe_limit(limit), strict=False))
    moves = []  # the stage's triggers: would each move the record here from where it is now?
    for trigger in StageTrigger.objects.filter(stage=stage).select_related("stage").order_by("order", "id"):
        reason = triggers.why_not(trigger, obj)
        moves.append((trigger, not reason, reason))
    return DryRun(record=obj, stage=stage, robots=result, timers=timers, notes=notes, triggers=moves)


def action_examples() -> dict[str, str]:
    """A YAML example of the parameters of every action (shown next to the form, filled into an empty one)."""
    return {
        "create_task": "title: 'Call {title}'\ndescription: 'Phones: {phones}'\n"
                       "deadline: {amount: 1, unit: hours}\nresponsible: responsible\nobservers: [head]\n",
        "notify": "text: 'Lead «{title}» needs attention: {link}'\nto: [responsible, head]\nemail: false\n",
        "set_fields": "fields:\n  title: '{title} (checked)'\n",
        "change_responsible": "mode: round_robin\nusers: ['user:ivanov', 'user:petrova']\n",
        "move_stage": "stage: in_work\n",
        "return_to_origin": "stage: previous\n",
        "move_linked": "entity_type: deal\nstage: installation\nfrom_stages: [production]\n",
        "create_linked": "entity_type: deal\nfields:\n  title: 'Deal: {title}'\n",
        "comment": "text: 'The client was sent the price list.'\n",
        "webhook": "url: 'https://example.com/hook'\nsecret: 'change-me'\nfields: [title, stage, responsible]\n",
        "email_client": "subject: 'Your request {title}'\nbody: 'Hello! We have received your request.'\n",
        "sms": "text: 'Thank you! We will call you back within an hour.'\n",
        "convert_lead": "contact: true\ndeal_pipeline: welcome\n",
        "mark_contact": "fields:\n  custom.unsubscribed: true\ncomment: 'Unsubscribed from the mailings.'\n",
    }


CONDITIONS_EXAMPLE = ("all:\n- {field: source, op: in, value: [site, call]}\n"
                      "- {field: opportunity, op: greater, value: 10000}\n")
STEPS_EXAMPLE = ("- after: {amount: 0, unit: minutes}\n  notify: [responsible]\n"
                 "- after: {amount: 1, unit: hours}\n  notify: [head]\n  reassign: head\n")


def check_action(action: str) -> None:
    if action not in effects.DB and action not in effects.EXTERNAL:
        raise ValidationFailed(_("Choose an action."), fields={"action": [_("Choose an action.")]})


def robot_problems(action: str, conditions_spec, params) -> dict[str, list[str]]:
    """Every problem of a robot's conditions and parameters at once (the action stops at the first one), so
    a form can mark all the fields together. Reads only."""
    problems: dict[str, list[str]] = {}
    try:
        conditions.validate(conditions_spec)
    except conditions.ConditionError as exc:
        problems["conditions"] = [str(exc)]
    if action in effects.DB or action in effects.EXTERNAL:
        try:
            effects.check_params(action, params if params is not None else {})
        except ValueError as exc:
            problems["params"] = [str(exc)]
    return problems
