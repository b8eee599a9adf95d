"""Smart processes over the API: ``/types`` defines them, ``/items/{type}`` serves their items.

Types are defined at run time, so their items are served by one set of routes with the type (code or id) in
the path rather than by a router per type. All types share one item schema (``SmartItem``; their own fields
are custom fields in ``custom``); reads go through ``core.selectors`` with the caller's rights, writes through
``voronka.items.actions``.
"""

from typing import Any

from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Status
from pydantic import BaseModel, Field

from voronka.core import entity_types, policies
from voronka.core.errors import NotFound, ValidationFailed
from voronka.core.recordkit import RecordSpec
from voronka.core.selectors import get_record_for, records_visible_to
from voronka.items import actions
from voronka.items.models import LINKABLE, SmartItem, SmartType
from voronka.items.registry import WRITABLE
from voronka.pipelines.stages import StageHook

from . import pagination, serialize
from .errors import check_text, text_errors
from .filters import ListConfig, apply, both_ways, filter_schema
from .records import RecordId, bulk_create, bulk_update, payload_data, timeline_page
from .resources import MoveIn
from .schemas import (
    MAX_ID,
    BulkCreateIn,
    BulkResultOut,
    BulkUpdateIn,
    CommentIn,
    Strict,
    TimelineEntryOut,
    TimelinePageOut,
    record_schemas,
    responses,
)

types_router = Router(tags=["Smart processes"])
items_router = Router(tags=["Smart processes"])

# the schemas of every type's items, built from a template spec with every linkable field
TEMPLATE = RecordSpec(model=SmartItem, entity_type_id=0, code="item", writable=(*WRITABLE, *LINKABLE),
                      hooks=(StageHook(),))
SCHEMAS = record_schemas(TEMPLATE, "SmartItem")
LISTING = ListConfig(orders=both_ways(("id", "created_at", "updated_at", "opportunity", "title")), search=("title",),
                     links=LINKABLE)
Filters = filter_schema(TEMPLATE, "SmartItem", LISTING)
ItemIn, ItemOut, ItemPage = SCHEMAS["in"], SCHEMAS["out"], SCHEMAS["page"]
TypeRef = Path(..., min_length=1, max_length=40, description="Smart process code or entity type id (1030 …).")


class StageSpecIn(Strict):
    name: str = Field(max_length=200)
    code: str | None = Field(None, max_length=60)
    color: str | None = Field(None, max_length=7)
    semantics: str | None = Field(None, max_length=10)
    required_fields: list[str] | None = Field(None, max_length=100)


class TypeIn(Strict):
    name: str = Field(max_length=100, description="Singular name, e.g. «Production order».")
    name_plural: str | None = Field(None, max_length=100)
    code: str | None = Field(None, max_length=40, description="Used in addresses; default: made from the name.")
    links: list[str] | None = Field(None, max_length=10, description=f"Which of {', '.join(LINKABLE)} items point at.")
    use_opportunity: bool | None = None
    sort: int | None = Field(None, ge=-(2**31), le=2**31 - 1)
    pipeline_name: str | None = Field(None, max_length=200, description="Name of the default pipeline.")
    stages: list[StageSpecIn] | None = Field(None, min_length=1, max_length=100,
                                             description="Stages of the default pipeline (default: four usual ones).")


class TypeUpdateIn(Strict):
    name: str | None = Field(None, max_length=100)
    name_plural: str | None = Field(None, max_length=100)
    code: str | None = Field(None, max_length=40)
    links: list[str] | None = Field(None, max_length=10)
    use_opportunity: bool | None = None
    sort: int | None = Field(None, ge=-(2**31), le=2**31 - 1)


class TypeOut(BaseModel):
    id: int = Field(description="Entity type id: use it where an entity type is asked (pipelines, fields, rights).")
    code: str
    name: str
    name_plural: str
    links: list[str]
    use_opportunity: bool
    sort: int
    created_at: Any
    updated_at: Any


def _type_out(t: SmartType) -> dict:
    return {"id": t.id, "code": t.code, "name": t.name, "name_plural": t.name_plural, "links": list(t.links or []),
            "use_opportunity": t.use_opportunity, "sort": t.sort, "created_at": t.created_at,
            "updated_at": t.updated_at}


def _readable_types(actor) -> set[int]:
    return {i.id for i in entity_types.all_types() if i.dynamic and policies.can(actor, policies.READ, i.id)}


@types_router.get("", response=responses({200: list[TypeOut]}), operation_id="list_types",
                  summary="List smart processes",
                  description="The types the caller may read items of (every type for settings administrators).")
def list_types(request):
    admin = policies.can(request.auth, actions.SETTINGS, 0)
    readable = None if admin else _readable_types(request.auth)
    return [_type_out(t) for t in SmartType.objects.all() if readable is None or t.id in readable]


def _type_for(request, ref: str) -> SmartType:
    t = SmartType.objects.filter(pk=int(ref)).first() if ref.isdigit() else SmartType.objects.filter(code=ref).first()
    if t is None or not (policies.can(request.auth, actions.SETTINGS, 0) or t.id in _readable_types(request.auth)):
        raise NotFound(_("Smart process «%(t)s» does not exist.") % {"t": ref})
    return t


@types_router.post("", response=responses({201: TypeOut}), operation_id="create_type",
                   summary="Define a smart process",
                   description="Creates the type with its default pipeline and stages; needs the pipelines settings right.")
def create_type(request, payload: TypeIn):
    data = payload.model_dump(exclude_unset=True)
    check_text({k: v for k, v in data.items() if isinstance(v, str)})
    if "stages" in data:
        data["stages"] = [{k: v for k, v in s.items() if v is not None} for s in data["stages"]]
    return Status(201, _type_out(actions.create_type(request.auth, **data)))


@types_router.get("/{ref}", response=responses({200: TypeOut}), operation_id="get_type", summary="Read a smart process")
def get_type(request, ref: str = TypeRef):
    return _type_out(_type_for(request, ref))


@types_router.patch("/{ref}", response=responses({200: TypeOut}), operation_id="update_type",
                    summary="Change a smart process")
def update_type(request, payload: TypeUpdateIn, ref: str = TypeRef):
    t = _type_for(request, ref)
    data = payload.model_dump(exclude_unset=True)
    check_text({k: v for k, v in data.items() if isinstance(v, str)})
    return _type_out(actions.update_type(request.auth, t.id, **data))


@types_router.delete("/{ref}", response=responses({204: None}), operation_id="delete_type",
                     summary="Delete a smart process", description="Only a type with no items (recycle bin included).")
def delete_type(request, ref: str = TypeRef):
    t = _type_for(request, ref)
    actions.delete_type(request.auth, t.id)
    return Status(204, None)


# --- items ---------------------------------------------------------------------------------------------

class _Bound:
    """What ``records.bulk_create``/``bulk_update`` need of a record type, bound to one smart process."""

    def __init__(self, spec: RecordSpec):
        self.spec = spec
        self.schemas = SCHEMAS
        ref = spec.entity_type_id
        self.actions = type("A", (), {
            "create_many": staticmethod(lambda actor, items: actions.create_items(actor, ref, items)),
            "update": staticmethod(lambda actor, pk, **data: actions.update_item(actor, ref, pk, **data)),
        })


def _spec(ref: str) -> RecordSpec:
    return actions.spec(ref)


def _read(request, spec: RecordSpec, pk: int):
    return get_record_for(request.auth, spec.entity_type_id, pk)


@items_router.get("/{type}", response=responses({200: ItemPage}), operation_id="list_items",
                  summary="List items of a smart process",
                  description="One page of the items the caller may see; `custom.<code>=<value>` filters custom fields.")
def list_items(request, filters: Query[Filters], type: str = TypeRef):  # type: ignore[valid-type]
    spec = _spec(type)
    qs = apply(spec, LISTING, records_visible_to(request.auth, spec.entity_type_id), filters, request.GET)
    page = pagination.page(qs, order=filters.order, cursor=filters.cursor, limit=filters.limit)
    pagination.check_export_threshold(request.auth, spec.entity_type_id, page)
    return {"items": serialize.records(spec, page.items), "next_cursor": page.next_cursor}


@items_router.post("/{type}", response=responses({201: ItemOut}), operation_id="create_item",
                   summary="Create an item of a smart process")
def create_item(request, payload: ItemIn, type: str = TypeRef):  # type: ignore[valid-type]
    spec = _spec(type)
    obj = actions.create_item(request.auth, spec.entity_type_id, **payload_data(payload))
    return Status(201, serialize.record(spec, obj))


@items_router.post("/{type}/bulk", response=responses({200: BulkResultOut}), operation_id="bulk_create_items",
                   summary="Create many items", exclude_none=True)
def bulk_create_items(request, payload: BulkCreateIn, type: str = TypeRef):
    return {"items": bulk_create(_Bound(_spec(type)), request.auth, payload.items)}


@items_router.patch("/{type}/bulk", response=responses({200: BulkResultOut}), operation_id="bulk_update_items",
                    summary="Change many items", exclude_none=True)
def bulk_update_items(request, payload: BulkUpdateIn, type: str = TypeRef):
    return {"items": bulk_update(_Bound(_spec(type)), request.auth, payload.items)}


@items_router.get("/{type}/{id}", response=responses({200: ItemOut}), operation_id="get_item", summary="Read an item")
def get_item(request, type: str = TypeRef, id: int = RecordId):
    spec = _spec(type)
    return serialize.record(spec, _read(request, spec, id))


@items_router.patch("/{type}/{id}", response=responses({200: ItemOut}), operation_id="update_item",
                    summary="Change an item", description="Only the fields sent are changed.")
def update_item(request, payload: ItemIn, type: str = TypeRef, id: int = RecordId):  # type: ignore[valid-type]
    spec = _spec(type)
    _read(request, spec, id)
    return serialize.record(spec, actions.update_item(request.auth, spec.entity_type_id, id, **payload_data(payload)))


@items_router.delete("/{type}/{id}", response=responses({204: None}), operation_id="delete_item",
                     summary="Delete an item", description="Moves the item to the recycle bin.")
def delete_item(request, type: str = TypeRef, id: int = RecordId):
    spec = _spec(type)
    _read(request, spec, id)
    actions.delete_item(request.auth, spec.entity_type_id, id)
    return Status(204, None)


@items_router.post("/{type}/{id}/restore", response=responses({200: ItemOut}), operation_id="restore_item",
                   summary="Restore a deleted item")
def restore_item(request, type: str = TypeRef, id: int = RecordId):
    spec = _spec(type)
    return serialize.record(spec, actions.restore_item(request.auth, spec.entity_type_id, id))


@items_router.post("/{type}/{id}/move", response=responses({200: ItemOut}), operation_id="move_item",
                   summary="Move an item to a stage",
                   description="Fields the stage requires must be filled, or given in `fields`.")
def move_item(request, payload: MoveIn, type: str = TypeRef, id: int = RecordId):
    spec = _spec(type)
    _read(request, spec, id)
    check_text(payload.fields or {})
    misplaced = sorted({"stage", "pipeline"} & set(payload.fields or {}))
    if misplaced:
        raise ValidationFailed(_("Give the stage and pipeline as the target, not among the fields."),
                               fields={"fields": [_("must not contain %(names)s") % {"names": ", ".join(misplaced)}]})
    data = payload_data(payload)
    obj = actions.move_item(request.auth, spec.entity_type_id, id, stage=payload.stage, pipeline=payload.pipeline,
                            fields=data.get("fields"))
    return serialize.record(spec, obj)


@items_router.get("/{type}/{id}/timeline", response=responses({200: TimelinePageOut}), operation_id="item_timeline",
                  summary="Timeline of an item")
def item_timeline(request, type: str = TypeRef, id: int = RecordId, limit: int = Query(50, ge=1, le=200),
                  before: int | None = Query(None, ge=1, le=MAX_ID)):
    return timeline_page(request.auth, _spec(type).entity_type_id, id, limit, before)


@items_router.post("/{type}/{id}/comments", response=responses({201: TimelineEntryOut}), operation_id="comment_item",
                   summary="Comment on an item")
def comment_item(request, payload: CommentIn, type: str = TypeRef, id: int = RecordId):
    from voronka.activities.actions import add_comment

    spec = _spec(type)
    _read(request, spec, id)
    errors = text_errors({"text": payload.text})
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), fields=errors)
    entry = add_comment(request.auth, entity_type_id=spec.entity_type_id, entity_id=id, text=payload.text)
    return Status(201, serialize.timeline_entry(entry))
