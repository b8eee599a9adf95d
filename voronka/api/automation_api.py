"""Automation over the API: robots and triggers per pipeline, stage time limits, «payment received» on a deal,
the automation log (runs, retry), YAML export/import of a pipeline and the dry run. Everything needs the ``settings:robots`` right (the settings
actions and selectors check it); a read-only token may read but not change."""

from __future__ import annotations

import datetime
from typing import Any, Literal

from django.db import transaction
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Status
from pydantic import BaseModel, Field

from voronka.automation import actions, config_io
from voronka.automation import selectors as automation
from voronka.automation.models import UNITS, Robot, Run, StageLimit
from voronka.core.errors import NotFound, ValidationFailed

from . import pagination
from .errors import check_text
from .records import RecordId, payload_data
from .schemas import MAX_ID, Id, Strict, responses
from .settings_api import resolve_entity_type

router = Router(tags=["Automation"])

PipelineRef = Path(..., min_length=1, max_length=80,
                   description="A pipeline id, or entity:code (deal:sales), or a lead pipeline's code.")
TriggerLiteral = Literal[tuple(Robot.Trigger.values)]  # type: ignore[valid-type]
ActionLiteral = Literal[tuple(Robot.Action.values)]  # type: ignore[valid-type]
UnitLiteral = Literal[UNITS]  # type: ignore[valid-type]
StatusLiteral = Literal[tuple(Run.Status.values)]  # type: ignore[valid-type]


class DelayIn(Strict):
    kind: Literal["none", "after", "at_field", "working"]
    amount: int = Field(0, ge=-100000, le=100000)
    unit: UnitLiteral = "minutes"  # type: ignore[valid-type]
    field: str | None = Field(None, max_length=100, description="A date field, for kind at_field.")


class RobotIn(Strict):
    stage: Id = Field(description="The stage's id (in this pipeline).")
    name: str = Field("", max_length=200)
    order: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    trigger: TriggerLiteral = "on_enter"  # type: ignore[valid-type]
    conditions: dict[str, Any] = Field(default_factory=dict, description="{all: [...]} / {any: [...]} of {field, op, value}.")
    delay: DelayIn | None = None
    action: ActionLiteral  # type: ignore[valid-type]
    params: dict[str, Any] = Field(default_factory=dict, description="The action's parameters (see docs/automation.md).")
    enabled: bool = True


class RobotUpdateIn(Strict):
    name: str | None = Field(None, max_length=200)
    order: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    trigger: TriggerLiteral | None = None  # type: ignore[valid-type]
    conditions: dict[str, Any] | None = None
    delay: DelayIn | None = None
    action: ActionLiteral | None = None  # type: ignore[valid-type]
    params: dict[str, Any] | None = None
    enabled: bool | None = None


class RobotOut(BaseModel):
    id: int
    pipeline: int
    stage: int
    name: str
    order: int
    trigger: str
    conditions: dict[str, Any]
    delay: dict[str, Any]
    action: str
    params: dict[str, Any]
    enabled: bool
    description: str = Field(description="What the robot does, in words.")


class TriggerIn(Strict):
    stage: Id = Field(description="The stage the item moves to (in this pipeline).")
    kind: str = Field(min_length=1, max_length=30, description="webform, email_opened, link_clicked, call, payment, "
                      "task_completed, field_value, webhook.")
    name: str = Field("", max_length=200)
    params: dict[str, Any] = Field(default_factory=dict, description="The event's parameters (see docs/automation.md).")
    allow_backwards: bool = False
    enabled: bool = True
    order: int | None = Field(None, ge=-(2**31), le=2**31 - 1)


class TriggerUpdateIn(Strict):
    stage: Id | None = None
    kind: str | None = Field(None, min_length=1, max_length=30)
    name: str | None = Field(None, max_length=200)
    params: dict[str, Any] | None = None
    allow_backwards: bool | None = None
    enabled: bool | None = None
    order: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    rotate_secret: bool | None = Field(None, description="true: a new secret, the old webhook URL stops working.")


class TriggerOut(BaseModel):
    id: int
    pipeline: int
    stage: int
    name: str
    kind: str
    params: dict[str, Any]
    allow_backwards: bool
    enabled: bool
    order: int
    url: str = Field(description="For kind webhook: the address an outside system POSTs the record's id to.")
    description: str = Field(description="What sets it off, in words.")


class PaymentIn(Strict):
    amount: float | str = Field(description="The amount paid, more than zero.")
    currency: str = Field("", max_length=3)
    reference: str = Field("", max_length=100, description="The payment's id in the payment system: a repeated "
                           "notice with the same reference is recorded once.")
    note: str = Field("", max_length=1000)


class PaymentOut(BaseModel):
    recorded: bool
    entry: int


class TimeLimitOut(BaseModel):
    stage: int
    amount: int
    unit: str
    enabled: bool
    working_time: bool
    steps: list[Any]


class TimeLimitIn(Strict):
    amount: int = Field(ge=1, le=100000)
    unit: UnitLiteral = "hours"  # type: ignore[valid-type]
    enabled: bool = True
    working_time: bool = Field(False, description="Count the limit in the responsible's working time.")
    steps: list[dict[str, Any]] | None = Field(None, max_length=20,
                                               description="Escalation steps; default: notify the responsible.")


class TaskEscalationOut(BaseModel):
    configured: bool
    enabled: bool
    working_time: bool
    steps: list[Any]


class TaskEscalationIn(Strict):
    enabled: bool = True
    working_time: bool = Field(False, description="Count the steps' `after` in the working time of the task's "
                               "responsible, by the working calendar.")
    steps: list[dict[str, Any]] | None = Field(None, max_length=20, description=(
        "Escalation steps, `after` counted from the task's deadline; default: notify the responsible at the "
        "deadline."))


class StageRobotsOut(BaseModel):
    id: int
    code: str
    name: str
    robots: list[RobotOut]
    triggers: list[TriggerOut]
    time_limit: TimeLimitOut | None


class PipelineRobotsOut(BaseModel):
    id: int
    entity_type_id: int
    code: str
    name: str
    stages: list[StageRobotsOut]


class RobotOrderIn(Strict):
    robot_ids: list[Id] = Field(max_length=500)


class RunOut(BaseModel):
    id: int
    rule: str
    robot: int | None
    limit: int | None
    trigger: int | None
    name: str
    action: str
    entity_type_id: int
    entity_id: int
    status: str
    attempts: int
    scheduled_at: datetime.datetime
    created_at: datetime.datetime
    finished_at: datetime.datetime | None
    error: str
    outputs: dict[str, Any]
    depth: int


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


class RunFilters(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=2000)
    status: StatusLiteral | None = None  # type: ignore[valid-type]
    pipeline: int | None = Field(None, ge=1, le=MAX_ID)
    robot: int | None = Field(None, ge=1, le=MAX_ID)
    entity_type: str | None = Field(None, max_length=30, description="lead, deal … or an id.")
    entity_id: int | None = Field(None, ge=1, le=MAX_ID)
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None


class ExportOut(BaseModel):
    pipeline: int
    yaml: str


class ImportIn(Strict):
    yaml: str = Field(max_length=512 * 1024)
    dry_run: bool = Field(False, description="Only check the document: nothing is written.")


class ImportOut(BaseModel):
    pipeline: str
    stages: int
    robots: int
    triggers: int
    limits: int
    dry_run: bool


class DryRobotOut(BaseModel):
    robot: int
    name: str
    would_run: bool
    reason: str
    due_at: datetime.datetime | None
    does: str


class DryTimerOut(BaseModel):
    due_at: datetime.datetime
    step: str


class DryTriggerOut(BaseModel):
    trigger: int
    name: str
    would_move: bool
    reason: str


class DryRunOut(BaseModel):
    entity_type_id: int
    record: int
    stage: int
    robots: list[DryRobotOut]
    triggers: list[DryTriggerOut]
    time_limit: list[DryTimerOut]
    notes: list[str]


class DryRunQuery(BaseModel):
    entity_type: str = Field(min_length=1, max_length=30, description="lead, deal … or an id.")
    record: int = Field(ge=1, le=MAX_ID)
    stage: int = Field(ge=1, le=MAX_ID)


def _robot(r: Robot) -> dict:
    return {"id": r.pk, "pipeline": r.pipeline_id, "stage": r.stage_id, "name": r.name, "order": r.order,
            "trigger": r.trigger, "conditions": r.conditions or {}, "delay": automation.robot_delay(r),
            "action": r.action, "params": r.params or {}, "enabled": r.enabled,
            "description": automation.describe_action(r.action, r.params)}


def _trigger(t) -> dict:
    return {"id": t.pk, "pipeline": t.pipeline_id, "stage": t.stage_id, "name": t.name, "kind": t.kind,
            "params": t.params or {}, "allow_backwards": t.allow_backwards, "enabled": t.enabled, "order": t.order,
            "url": automation.trigger_url(t), "description": automation.describe_trigger(t)}


def _limit(limit: StageLimit | None) -> dict | None:
    if limit is None:
        return None
    return {"stage": limit.stage_id, "amount": limit.amount, "unit": limit.unit, "enabled": limit.enabled,
            "working_time": limit.working_time,
            "steps": limit.steps or []}


def _delay(data: dict) -> None:
    delay = data.get("delay")
    if isinstance(delay, dict):
        data["delay"] = {k: v for k, v in delay.items() if v is not None}


def _stage_of(actor, pipeline, stage_id: int):
    stage = pipeline.stages.filter(pk=stage_id).first()
    if stage is None:
        raise ValidationFailed(_("Some fields are not valid."),
                               fields={"stage": [_("Stage #%(id)s is not in this pipeline.") % {"id": stage_id}]})
    return stage


@router.get("/pipelines/{pipeline}/robots", response=responses({200: PipelineRobotsOut}),
            operation_id="list_robots", summary="A pipeline's stages with their robots and time limits")
def list_robots(request, pipeline: str = PipelineRef):
    p = automation.pipeline_for(request.auth, pipeline)
    columns = automation.board(request.auth, p)
    return {"id": p.pk, "entity_type_id": p.entity_type_id, "code": p.code, "name": p.name,
            "stages": [{"id": c.stage.pk, "code": c.stage.code, "name": c.stage.name,
                        "robots": [_robot(r) for r in c.robots], "triggers": [_trigger(t) for t in c.triggers],
                        "time_limit": _limit(c.limit)} for c in columns]}


@router.post("/pipelines/{pipeline}/robots", response=responses({201: RobotOut}), operation_id="create_robot",
             summary="Add a robot to a stage of the pipeline")
def create_robot(request, payload: RobotIn, pipeline: str = PipelineRef):
    p = automation.pipeline_for(request.auth, pipeline)
    data = payload_data(payload)
    stage = _stage_of(request.auth, p, data.pop("stage"))
    if data.get("order") is None:
        data.pop("order", None)
    if data.get("delay") is None:
        data.pop("delay", None)
    _delay(data)
    return Status(201, _robot(actions.create_robot(request.auth, stage=stage.pk, **data)))


@router.get("/robots/{id}", response=responses({200: RobotOut}), operation_id="get_robot", summary="Read a robot")
def get_robot(request, id: int = RecordId):
    return _robot(automation.robot_for(request.auth, id))


@router.patch("/robots/{id}", response=responses({200: RobotOut}), operation_id="update_robot",
              summary="Change a robot (only the fields sent)")
def update_robot(request, payload: RobotUpdateIn, id: int = RecordId):
    automation.robot_for(request.auth, id)
    data = payload_data(payload)
    for key in ("name", "order", "trigger", "action", "enabled"):
        if key in data and data[key] is None:
            raise ValidationFailed(_("Some fields are not valid."), fields={key: [_("This field cannot be empty.")]})
    for key in ("conditions", "params"):
        if key in data and data[key] is None:
            data[key] = {}
    _delay(data)
    actions.update_robot(request.auth, id, **data)
    return _robot(automation.robot_for(request.auth, id))


@router.delete("/robots/{id}", response=responses({204: None}), operation_id="delete_robot", summary="Delete a robot")
def delete_robot(request, id: int = RecordId):
    automation.robot_for(request.auth, id)
    actions.delete_robot(request.auth, id)
    return Status(204, None)


@router.post("/pipelines/{pipeline}/triggers", response=responses({201: TriggerOut}), operation_id="create_trigger",
             summary="Add a trigger to a stage of the pipeline")
def create_trigger(request, payload: TriggerIn, pipeline: str = PipelineRef):
    p = automation.pipeline_for(request.auth, pipeline)
    data = payload_data(payload)
    stage = _stage_of(request.auth, p, data.pop("stage"))
    if data.get("order") is None:
        data.pop("order", None)
    return Status(201, _trigger(actions.create_trigger(request.auth, stage=stage.pk, **data)))


@router.get("/triggers/{id}", response=responses({200: TriggerOut}), operation_id="get_trigger",
            summary="Read a trigger")
def get_trigger(request, id: int = RecordId):
    return _trigger(automation.trigger_for(request.auth, id))


@router.patch("/triggers/{id}", response=responses({200: TriggerOut}), operation_id="update_trigger",
              summary="Change a trigger (only the fields sent)")
def update_trigger(request, payload: TriggerUpdateIn, id: int = RecordId):
    automation.trigger_for(request.auth, id)
    data = payload_data(payload)
    for key in ("stage", "kind", "name", "order", "allow_backwards", "enabled", "rotate_secret"):
        if key in data and data[key] is None:
            raise ValidationFailed(_("Some fields are not valid."), fields={key: [_("This field cannot be empty.")]})
    if "params" in data and data["params"] is None:
        data["params"] = {}
    actions.update_trigger(request.auth, id, **data)
    return _trigger(automation.trigger_for(request.auth, id))


@router.delete("/triggers/{id}", response=responses({204: None}), operation_id="delete_trigger",
               summary="Delete a trigger")
def delete_trigger(request, id: int = RecordId):
    automation.trigger_for(request.auth, id)
    actions.delete_trigger(request.auth, id)
    return Status(204, None)


@router.post("/deals/{id}/payment-received", response=responses({200: PaymentOut}), operation_id="payment_received",
             summary="Record that the client paid for a deal (sets off «payment received» triggers)")
def payment_received(request, payload: PaymentIn, id: int = RecordId):
    from voronka.deals.payments import payment_received as record

    return record(request.auth, id, **payload_data(payload))


@router.put("/stages/{id}/robot-order", response=responses({200: list[RobotOut]}), operation_id="reorder_robots",
            summary="Put a stage's robots in this order")
def reorder_robots(request, payload: RobotOrderIn, id: int = RecordId):
    return [_robot(r) for r in actions.reorder_robots(request.auth, id, list(payload.robot_ids))]


@router.put("/stages/{id}/time-limit", response=responses({200: TimeLimitOut}), operation_id="set_time_limit",
            summary="Set a stage's time limit and escalation steps (re-plans the timers of its items)")
def set_time_limit(request, payload: TimeLimitIn, id: int = RecordId):
    data = payload_data(payload)
    return _limit(actions.set_stage_limit(request.auth, id, **data))


@router.delete("/stages/{id}/time-limit", response=responses({204: None}), operation_id="delete_time_limit",
               summary="Remove a stage's time limit")
def delete_time_limit(request, id: int = RecordId):
    actions.delete_stage_limit(request.auth, id)
    return Status(204, None)


# --- runs --------------------------------------------------------------------------------------------

def _run(run: Run) -> dict:
    return {"id": run.pk, "rule": run.rule, "robot": run.robot_id, "limit": run.limit_id, "trigger": run.trigger_id,
            "name": automation.run_label(run),
            "action": run.action, "entity_type_id": run.entity_type_id, "entity_id": run.entity_id,
            "status": run.status, "attempts": run.attempts, "scheduled_at": run.scheduled_at,
            "created_at": run.created_at, "finished_at": run.finished_at, "error": run.error,
            "outputs": run.outputs or {}, "depth": run.depth}


@router.get("/runs", response=responses({200: RunPage}), operation_id="list_runs",
            summary="The automation log: runs, newest first")
def list_runs(request, filters: Query[RunFilters]):
    if filters.entity_type is not None:
        resolve_entity_type(filters.entity_type)
    if filters.entity_type is not None:
        check_text({"entity_type": filters.entity_type})
    qs = automation.runs(request.auth, status=filters.status or "", pipeline=filters.pipeline, robot=filters.robot,
                         entity_type=filters.entity_type or "", entity_id=filters.entity_id,
                         date_from=filters.date_from.isoformat() if filters.date_from else "",
                         date_to=filters.date_to.isoformat() if filters.date_to else "")
    page = pagination.page(qs, order="-id", cursor=filters.cursor, limit=filters.limit)
    return {"items": [_run(r) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/runs/{id}", response=responses({200: RunOut}), operation_id="get_run", summary="Read a run")
def get_run(request, id: int = RecordId):
    run = automation.runs(request.auth).filter(pk=id).first()
    if run is None:
        raise NotFound(_("Run #%(id)s does not exist.") % {"id": id})
    return _run(run)


@router.post("/runs/{id}/retry", response=responses({200: RunOut}), operation_id="retry_run",
             summary="Run a failed run again")
def retry_run(request, id: int = RecordId):
    actions.retry_run(request.auth, id)
    return _run(automation.runs(request.auth).get(pk=id))


# --- export, import, dry run -----------------------------------------------------------------------------

@router.get("/pipelines/{pipeline}/export", response=responses({200: ExportOut}), operation_id="export_automation",
            summary="A pipeline's stages, robots and time limits as YAML")
def export_automation(request, pipeline: str = PipelineRef):
    p = automation.pipeline_for(request.auth, pipeline)
    return {"pipeline": p.pk, "yaml": config_io.export_pipeline(p)}


class _Rollback(Exception):
    pass


@router.post("/import", response=responses({200: ImportOut}), operation_id="import_automation",
             summary="Import a pipeline's YAML (all or nothing; dry_run only checks)")
def import_automation(request, payload: ImportIn):
    automation.require_configure(request.auth)
    check_text({"yaml": payload.yaml})
    summary: dict = {}
    try:
        with transaction.atomic():
            summary = config_io.import_document(request.auth, payload.yaml)
            if payload.dry_run:
                raise _Rollback
    except _Rollback:
        pass
    except config_io.ImportFailed as exc:
        raise ValidationFailed(_("Nothing was changed: %(e)s") % {"e": exc}, fields={"yaml": [str(exc)]}) from None
    return {**summary, "dry_run": payload.dry_run}


@router.get("/dry-run", response=responses({200: DryRunOut}), operation_id="dry_run",
            summary="What would run if the record entered the stage now (writes nothing)")
def dry_run(request, query: Query[DryRunQuery]):
    check_text({"entity_type": query.entity_type})
    type_id = resolve_entity_type(query.entity_type)
    result = automation.dry_run(request.auth, type_id, query.record, query.stage)
    return {"entity_type_id": type_id, "record": result.record.pk, "stage": result.stage.pk,
            "robots": [{"robot": d.robot.pk, "name": d.robot.name, "would_run": d.holds, "reason": d.reason,
                        "due_at": d.due_at if d.holds else None, "does": d.does} for d in result.robots],
            "triggers": [{"trigger": t.pk, "name": t.name, "would_move": moves, "reason": reason}
                         for t, moves, reason in result.triggers],
            "time_limit": [{"due_at": due, "step": line} for due, line in result.timers], "notes": result.notes}


def _task_escalation(row) -> dict:
    return {"configured": row is not None, "enabled": bool(row and row.enabled),
            "working_time": bool(row and row.working_time), "steps": (row.steps or []) if row else []}


@router.get("/task-escalation", response=responses({200: TaskEscalationOut}), operation_id="get_task_escalation",
            summary="The escalation chain of overdue tasks")
def get_task_escalation(request):
    from voronka.automation.models import TaskEscalation
    from voronka.core import policies

    policies.require(request.auth, actions.SETTINGS, 0)
    return _task_escalation(TaskEscalation.objects.order_by("id").first())


@router.put("/task-escalation", response=responses({200: TaskEscalationOut}), operation_id="set_task_escalation",
            summary="Set the escalation chain of overdue tasks (re-plans the timers of open tasks)")
def set_task_escalation(request, payload: TaskEscalationIn):
    return _task_escalation(actions.set_task_escalation(request.auth, **payload_data(payload)))


@router.delete("/task-escalation", response=responses({204: None}), operation_id="delete_task_escalation",
               summary="Stop escalating overdue tasks")
def delete_task_escalation(request):
    actions.delete_task_escalation(request.auth)
    return Status(204, None)
