"""Tasks: list, create, read, change, complete. Writes go through voronka.activities.actions."""

import datetime
from typing import Literal

from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from pydantic import BaseModel, Field

from voronka.activities import actions
from voronka.activities.models import Task
from voronka.activities.selectors import visible_tasks
from voronka.core.errors import NotFound

from . import pagination
from .records import RecordId, payload_data
from .schemas import MAX_ID, Id, Moment, Strict, responses

router = Router(tags=["Tasks"])

Title = Field(max_length=255, description="What to do.")
Recurrence = Field(None, max_length=100, description=(
    "A recurring task: a five-field cron expression in the installation's time zone (`0 9 * * 1`: Mondays at "
    "9:00). Completing the task creates the next occurrence, due at the rule's first time after the old deadline "
    "or now, whichever is later. Empty: not recurring."))


class TaskIn(Strict):
    title: str = Title
    description: str | None = Field(None, max_length=65535)
    deadline: Moment | None = None
    responsible: int | None = Field(None, ge=1, le=MAX_ID, description="Default: the caller.")
    observers: list[Id] | None = Field(None, max_length=100)
    entity_type_id: int | None = Field(None, ge=1, le=2**31 - 1, description="Kind of the linked record (1 lead, 2 deal …).")
    entity_id: int | None = Field(None, ge=1, le=MAX_ID, description="Id of the linked record.")
    recurrence: str | None = Recurrence


class TaskUpdateIn(Strict):
    title: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=65535)
    deadline: Moment | None = None
    responsible: int | None = Field(None, ge=1, le=MAX_ID)
    observers: list[Id] | None = Field(None, max_length=100)
    recurrence: str | None = Recurrence


class TaskCompleteIn(Strict):
    result: str = Field("", max_length=20000)


class TaskCancelIn(Strict):
    reason: str = Field("", max_length=20000)


class TaskOut(BaseModel):
    id: int
    title: str
    description: str
    deadline: datetime.datetime | None
    responsible: int
    created_by: int | None
    observers: list[int]
    entity_type_id: int | None
    entity_id: int | None
    status: str
    result: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    completed_at: datetime.datetime | None
    is_overdue: bool
    recurrence: str
    recurrence_of: int | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class TaskFilters(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=2000)
    order: Literal["id", "-id", "created_at", "-created_at"] = "-id"
    status: Literal[tuple(Task.Status.values)] | None = None  # type: ignore[valid-type]
    responsible: int | None = Field(None, ge=1, le=MAX_ID)
    entity_type_id: int | None = Field(None, ge=1, le=2**31 - 1)
    entity_id: int | None = Field(None, ge=1, le=MAX_ID)


def _out(task: Task) -> dict:
    return {"id": task.pk, "title": task.title, "description": task.description, "deadline": task.deadline,
            "responsible": task.responsible_id, "created_by": task.created_by_id,
            "observers": sorted(u.pk for u in task.observers.all()), "entity_type_id": task.entity_type_id,
            "entity_id": task.entity_id, "status": task.status, "result": task.result, "created_at": task.created_at,
            "updated_at": task.updated_at, "completed_at": task.completed_at, "is_overdue": task.is_overdue,
            "recurrence": task.recurrence, "recurrence_of": task.recurrence_of_id}


def _get(actor, pk: int) -> Task:
    task = visible_tasks(actor).filter(pk=pk).prefetch_related("observers").first()
    if task is None:
        raise NotFound(_("Task #%(id)s does not exist.") % {"id": pk})
    return task


@router.get("", response=responses({200: TaskPage}), operation_id="list_tasks", summary="List tasks")
def list_tasks(request, filters: Query[TaskFilters]):
    qs = visible_tasks(request.auth)
    for name in ("status", "entity_type_id", "entity_id"):
        value = getattr(filters, name)
        if value is not None:
            qs = qs.filter(**{name: value})
    if filters.responsible is not None:
        qs = qs.filter(responsible_id=filters.responsible)
    page = pagination.page(qs.prefetch_related("observers"), order=filters.order, cursor=filters.cursor,
                           limit=filters.limit)
    return {"items": [_out(t) for t in page.items], "next_cursor": page.next_cursor}


@router.post("", response=responses({201: TaskOut}), operation_id="create_task", summary="Create a task")
def create_task(request, payload: TaskIn):
    task = actions.create_task(request.auth, **payload_data(payload))
    return Status(201, _out(_get(request.auth, task.pk)))


@router.get("/{id}", response=responses({200: TaskOut}), operation_id="get_task", summary="Read a task")
def get_task(request, id: int = RecordId):
    return _out(_get(request.auth, id))


@router.patch("/{id}", response=responses({200: TaskOut}), operation_id="update_task", summary="Change a task")
def update_task(request, payload: TaskUpdateIn, id: int = RecordId):
    _get(request.auth, id)
    actions.update_task(request.auth, id, **payload_data(payload))
    return _out(_get(request.auth, id))


@router.post("/{id}/complete", response=responses({200: TaskOut}), operation_id="complete_task",
             summary="Complete a task")
def complete_task(request, payload: TaskCompleteIn, id: int = RecordId):
    _get(request.auth, id)
    data = payload_data(payload)
    actions.complete_task(request.auth, id, result=data.get("result", ""))
    return _out(_get(request.auth, id))


@router.post("/{id}/cancel", response=responses({200: TaskOut}), operation_id="cancel_task",
             summary="Cancel a task (a recurring series ends with it)")
def cancel_task(request, payload: TaskCancelIn, id: int = RecordId):
    _get(request.auth, id)
    data = payload_data(payload)
    actions.cancel_task(request.auth, id, reason=data.get("reason", ""))
    return _out(_get(request.auth, id))
