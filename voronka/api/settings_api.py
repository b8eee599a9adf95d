"""Pipelines with their stages, custom field definitions and users: what a client needs to fill in records."""

from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q
from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from pydantic import BaseModel, Field

from voronka.core import entity_types, policies
from voronka.core.errors import NotFound, ValidationFailed
from voronka.customfields.models import FieldDefinition
from voronka.pipelines import actions as pipeline_actions
from voronka.pipelines.models import Pipeline, Stage

from . import pagination
from .errors import BadRequest, check_text, text_errors
from .records import RecordId, payload_data
from .schemas import MAX_ID, Id, Strict, responses

pipelines = Router(tags=["Pipelines"])
stages = Router(tags=["Pipelines"])
custom_fields = Router(tags=["Custom fields"])
users = Router(tags=["Users"])

EntityTypeParam = Query(None, max_length=30, description="Entity type code (lead, deal …) or id (1, 2 …).")


def resolve_entity_type(ref: str | None) -> int | None:
    if ref is None:
        return None
    ref = ref.strip()
    try:
        return entity_types.get(int(ref)).id if ref.isdigit() else entity_types.by_code(ref).id
    except (LookupError, ValueError):
        raise BadRequest(_("Unknown entity type «%(ref)s».") % {"ref": ref}, fields={"entity_type": [_("unknown")]}) from None


# --- pipelines and stages ----------------------------------------------------------------------------

SemanticsLiteral = Literal[tuple(Stage.Semantics.values)]  # type: ignore[valid-type]


class StageOut(BaseModel):
    id: int
    name: str
    code: str
    sort: int
    color: str
    semantics: str
    required_fields: list[Any]
    ask_fields: list[Any] = []


class PipelineOut(BaseModel):
    id: int
    entity_type_id: int
    name: str
    code: str
    sort: int
    is_default: bool
    is_active: bool
    stages: list[StageOut]


class StageIn(Strict):
    name: str = Field(max_length=200)
    code: str | None = Field(None, max_length=60, description="Default: made from the name.")
    sort: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    color: str | None = Field(None, max_length=7, description="#rrggbb")
    semantics: SemanticsLiteral | None = None  # type: ignore[valid-type]
    required_fields: list[str] | None = Field(None, max_length=100, description="Fields required to enter the stage.")
    ask_fields: list[str] | None = Field(None, max_length=100, description=(
        "Fields also asked in the form before a move into the stage, optional (never block a move)."))


class StageUpdateIn(Strict):
    name: str | None = Field(None, max_length=200)
    code: str | None = Field(None, max_length=60)
    sort: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    color: str | None = Field(None, max_length=7)
    semantics: SemanticsLiteral | None = None  # type: ignore[valid-type]
    required_fields: list[str] | None = Field(None, max_length=100)
    ask_fields: list[str] | None = Field(None, max_length=100)


class PipelineIn(Strict):
    entity_type_id: int = Field(ge=1, le=2**31 - 1)
    name: str = Field(max_length=200)
    code: str | None = Field(None, max_length=60)
    sort: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    is_default: bool = False
    stages: list[StageIn] | None = Field(None, max_length=100)


class StageOrderIn(Strict):
    stage_ids: list[Id] = Field(max_length=500)


def _stage(s: Stage) -> dict:
    return {"id": s.pk, "name": s.name, "code": s.code, "sort": s.sort, "color": s.color, "semantics": s.semantics,
            "required_fields": s.required_fields or [], "ask_fields": s.ask_fields or []}


def _pipeline(p: Pipeline) -> dict:
    return {"id": p.pk, "entity_type_id": p.entity_type_id, "name": p.name, "code": p.code, "sort": p.sort,
            "is_default": p.is_default, "is_active": p.is_active, "stages": [_stage(s) for s in p.stages.all()]}


def _readable(actor, p: Pipeline) -> bool:
    return policies.can(actor, policies.READ, p.entity_type_id, pipeline_id=p.pk)


def _pipelines_qs():
    return Pipeline.objects.prefetch_related(Prefetch("stages", queryset=Stage.objects.order_by("sort", "id")))


def _get_pipeline(actor, pk: int) -> Pipeline:
    p = _pipelines_qs().filter(pk=pk).first()
    if p is None or not _readable(actor, p):
        raise NotFound(_("Pipeline #%(id)s does not exist.") % {"id": pk})
    return p


@pipelines.get("", response=responses({200: list[PipelineOut]}), operation_id="list_pipelines",
               summary="List pipelines with their stages")
def list_pipelines(request, entity_type: str | None = EntityTypeParam):
    qs = _pipelines_qs()
    type_id = resolve_entity_type(entity_type)
    if type_id is not None:
        qs = qs.filter(entity_type_id=type_id)
    return [_pipeline(p) for p in qs if _readable(request.auth, p)]


@pipelines.post("", response=responses({201: PipelineOut}), operation_id="create_pipeline",
                summary="Create a pipeline (settings right needed)")
def create_pipeline(request, payload: PipelineIn):
    data = payload_data(payload)
    for stage in data.get("stages") or []:
        check_text(stage)
    data.setdefault("code", "")
    if data["code"] is None:
        data["code"] = ""
    p = pipeline_actions.create_pipeline(request.auth, **data)
    return Status(201, _pipeline(_pipelines_qs().get(pk=p.pk)))


@pipelines.get("/{id}", response=responses({200: PipelineOut}), operation_id="get_pipeline",
               summary="Read a pipeline with its stages")
def get_pipeline(request, id: int = RecordId):
    return _pipeline(_get_pipeline(request.auth, id))


@pipelines.post("/{id}/stages", response=responses({201: StageOut}), operation_id="create_stage",
                summary="Add a stage to a pipeline")
def create_stage(request, payload: StageIn, id: int = RecordId):
    _get_pipeline(request.auth, id)
    data = {k: v for k, v in payload_data(payload).items() if v is not None}
    return Status(201, _stage(pipeline_actions.create_stage(request.auth, id, **data)))


@pipelines.put("/{id}/stage-order", response=responses({200: PipelineOut}), operation_id="reorder_stages",
               summary="Put the stages of a pipeline in this order")
def reorder_stages(request, payload: StageOrderIn, id: int = RecordId):
    _get_pipeline(request.auth, id)
    pipeline_actions.reorder_stages(request.auth, id, payload.stage_ids)
    return _pipeline(_get_pipeline(request.auth, id))


@stages.patch("/{id}", response=responses({200: StageOut}), operation_id="update_stage", summary="Change a stage")
def update_stage(request, payload: StageUpdateIn, id: int = RecordId):
    data = payload_data(payload)
    for key in ("name", "semantics", "sort", "code", "color", "required_fields", "ask_fields"):
        if key in data and data[key] is None:
            raise ValidationFailed(_("Some fields are not valid."), fields={key: [_("This field cannot be empty.")]})
    return _stage(pipeline_actions.update_stage(request.auth, id, **data))


@stages.delete("/{id}", response=responses({204: None}), operation_id="delete_stage",
               summary="Delete a stage without records or history")
def delete_stage(request, id: int = RecordId):
    pipeline_actions.delete_stage(request.auth, id)
    return Status(204, None)


# --- custom field definitions -------------------------------------------------------------------

class FieldDefinitionOut(BaseModel):
    id: int
    entity_type_id: int
    pipeline: int | None = Field(description="Only in this pipeline; null for every pipeline.")
    code: str
    label: str
    kind: str
    required: bool
    multiple: bool
    options: dict[str, Any]
    max_length: int
    sort: int
    is_filterable: bool


@custom_fields.get("", response=responses({200: list[FieldDefinitionOut]}), operation_id="list_custom_fields",
                   summary="Custom field definitions")
def list_custom_fields(request, entity_type: str | None = EntityTypeParam):
    qs = FieldDefinition.objects.all()
    type_id = resolve_entity_type(entity_type)
    if type_id is not None:
        qs = qs.filter(entity_type_id=type_id)
    return [{"id": d.pk, "entity_type_id": d.entity_type_id, "pipeline": d.pipeline_id, "code": d.code,
             "label": d.label, "kind": d.kind, "required": d.required, "multiple": d.multiple,
             "options": d.options or {}, "max_length": d.max_length, "sort": d.sort, "is_filterable": d.is_filterable}
            for d in qs]


# --- users ------------------------------------------------------------------------------------------

class UserOut(BaseModel):
    id: int
    username: str
    first_name: str
    last_name: str
    middle_name: str
    full_name: str
    position: str
    department: int | None
    is_active: bool
    is_present: bool


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class UserFilters(BaseModel):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, max_length=2000)
    search: str | None = Field(None, min_length=1, max_length=150)
    department: int | None = Field(None, ge=1, le=MAX_ID)
    active: bool = Field(True, description="Only active users (default) or only inactive ones.")


def _user(u) -> dict:
    return {"id": u.pk, "username": u.username, "first_name": u.first_name, "last_name": u.last_name,
            "middle_name": u.middle_name, "full_name": u.get_full_name() or u.username, "position": u.position,
            "department": u.department_id, "is_active": u.is_active, "is_present": u.is_present}


@users.get("", response=responses({200: UserPage}), operation_id="list_users", summary="List users")
def list_users(request, filters: Query[UserFilters]):
    qs = get_user_model().objects.filter(is_active=filters.active)
    if filters.search:
        text = filters.search.strip()
        if text_errors({"search": text}):
            raise BadRequest(_("Some parameters of the request are not valid."), fields=text_errors({"search": text}))
        qs = qs.filter(Q(username__icontains=text) | Q(first_name__icontains=text) | Q(last_name__icontains=text))
    if filters.department is not None:
        qs = qs.filter(department_id=filters.department)
    page = pagination.page(qs, order="id", cursor=filters.cursor, limit=filters.limit)
    return {"items": [_user(u) for u in page.items], "next_cursor": page.next_cursor}


@users.get("/me", response=responses({200: UserOut}), operation_id="get_me", summary="The caller")
def me(request):
    return _user(request.auth.user)


@users.get("/{id}", response=responses({200: UserOut}), operation_id="get_user", summary="Read a user")
def get_user(request, id: int = RecordId):
    u = get_user_model().objects.filter(pk=id).first()
    if u is None:
        raise NotFound(_("User #%(id)s does not exist.") % {"id": id})
    return _user(u)
