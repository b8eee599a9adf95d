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
from voronka.items.models import LINKABLE, ListRow, SmartItem, SmartType
from voronka.items.registry import LIST_WRITABLE, WRITABLE
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

types_router = Router(tags=["Smart processes and lists"])
items_router = Router(tags=["Smart processes and lists"])
lists_router = Router(tags=["Smart processes and lists"])

# the schemas of every type's items, built from a template spec with every linkable field
TEMPLATE = RecordSpec(model=SmartItem, entity_type_id=0, code="item", writable=(*WRITABLE, *LINKABLE),
                      hooks=(StageHook(),))
SCHEMAS = record_schemas(TEMPLATE, "SmartItem")
LISTING = ListConfig(orders=both_ways(("id", "created_at", "updated_at", "opportunity", "title")), search=("title",),
                     links=LINKABLE)
LIST_TEMPLATE = RecordSpec(model=ListRow, entity_type_id=0, code="row", writable=(*LIST_WRITABLE, *LINKABLE))
LIST_SCHEMAS = record_schemas(LIST_TEMPLATE, "ListRow")
LIST_LISTING = ListConfig(orders=both_ways(("id", "created_at", "updated_at", "title")), search=("title",),
                          links=LINKABLE)
TypeRef = Path(..., min_length=1, max_length=40, description="Smart process code or entity type id (1030 …).")


class StageSpecIn(Strict):
    name: str = Field(max_length=200)
    code: str | None = Field(None, max_length=60)
    color: str | None = Field(None, max_length=7)
    semantics: str | None = Field(None, max_length=10)
    required_fields: list[str] | None = Field(None, max_length=100)
    ask_fields: list[str] | None = Field(None, max_length=100)


class TypeIn(Strict):
    kind: str | None = Field(None, max_length=10, description="`process` (default): items with stages; `list`: rows.")
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
    kind: str
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
    return {"kind": t.kind, "id": t.id, "code": t.code, "name": t.name, "name_plural": t.name_plural, "links": list(t.links or []),
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


# --- items and rows ------------------------------------------------------------------------------------

class _Bound:
    """What ``records.bulk_create``/``bulk_update`` need of a record type, bound to one type."""

    def __init__(self, spec: RecordSpec, schemas: dict, kind: str):
        self.spec = spec
        self.schemas = schemas
        ref = spec.entity_type_id
        create_many = actions.create_items if kind == "process" else actions.create_rows
        update = actions.update_item if kind == "process" else actions.update_row
        self.actions = type("A", (), {
            "create_many": staticmethod(lambda actor, items: create_many(actor, ref, items)),
            "update": staticmethod(lambda actor, pk, **data: update(actor, ref, pk, **data)),
        })


def build(router: Router, *, kind: str, prefix: str, schemas: dict, listing: ListConfig, one: str, many: str) -> None:
    """The routes of every type of one kind: ``{prefix}`` is ``/{type}`` for items, ``/{type}/rows`` for lists."""
    In, Out, Page = schemas["in"], schemas["out"], schemas["page"]
    Filters = filter_schema(TEMPLATE if kind == "process" else LIST_TEMPLATE, one.capitalize(), listing)
    write = {"process": (actions.create_item, actions.update_item, actions.delete_item, actions.restore_item),
             "list": (actions.create_row, actions.update_row, actions.delete_row, actions.restore_row)}[kind]
    create, update, delete, restore = write

    def spec_of(ref: str) -> RecordSpec:
        return actions.spec(ref, kind=kind)

    def read(request, spec: RecordSpec, pk: int):
        return get_record_for(request.auth, spec.entity_type_id, pk)

    @router.get(prefix, response=responses({200: Page}), operation_id=f"list_{many}", summary=f"List {many}",
                description="One page of what the caller may see; `custom.<code>=<value>` filters custom fields.")
    def list_records(request, filters: Query[Filters], type: str = TypeRef):  # type: ignore[valid-type]
        spec = spec_of(type)
        qs = apply(spec, listing, records_visible_to(request.auth, spec.entity_type_id), filters, request.GET)
        page = pagination.page(qs, order=filters.order, cursor=filters.cursor, limit=filters.limit)
        pagination.check_export_threshold(request.auth, spec.entity_type_id, page)
        return {"items": serialize.records(spec, page.items), "next_cursor": page.next_cursor}

    @router.post(prefix, response=responses({201: Out}), operation_id=f"create_{one}", summary=f"Create a {one}")
    def create_record(request, payload: In, type: str = TypeRef):  # type: ignore[valid-type]
        spec = spec_of(type)
        return Status(201, serialize.record(spec, create(request.auth, spec.entity_type_id, **payload_data(payload))))

    @router.post(f"{prefix}/bulk", response=responses({200: BulkResultOut}), operation_id=f"bulk_create_{many}",
                 summary=f"Create many {many}", exclude_none=True)
    def bulk_create_records(request, payload: BulkCreateIn, type: str = TypeRef):
        return {"items": bulk_create(_Bound(spec_of(type), schemas, kind), request.auth, payload.items)}

    @router.patch(f"{prefix}/bulk", response=responses({200: BulkResultOut}), operation_id=f"bulk_update_{many}",
                  summary=f"Change many {many}", exclude_none=True)
    def bulk_update_records(request, payload: BulkUpdateIn, type: str = TypeRef):
        return {"items": bulk_update(_Bound(spec_of(type), schemas, kind), request.auth, payload.items)}

    @router.get(prefix + "/{id}", response=responses({200: Out}), operation_id=f"get_{one}", summary=f"Read a {one}")
    def get_record(request, type: str = TypeRef, id: int = RecordId):
        spec = spec_of(type)
        return serialize.record(spec, read(request, spec, id))

    @router.patch(prefix + "/{id}", response=responses({200: Out}), operation_id=f"update_{one}",
                  summary=f"Change a {one}", description="Only the fields sent are changed.")
    def update_record(request, payload: In, type: str = TypeRef, id: int = RecordId):  # type: ignore[valid-type]
        spec = spec_of(type)
        read(request, spec, id)
        return serialize.record(spec, update(request.auth, spec.entity_type_id, id, **payload_data(payload)))

    @router.delete(prefix + "/{id}", response=responses({204: None}), operation_id=f"delete_{one}",
                   summary=f"Delete a {one}", description="Moves it to the recycle bin.")
    def delete_record(request, type: str = TypeRef, id: int = RecordId):
        spec = spec_of(type)
        read(request, spec, id)
        delete(request.auth, spec.entity_type_id, id)
        return Status(204, None)

    @router.post(prefix + "/{id}/restore", response=responses({200: Out}), operation_id=f"restore_{one}",
                 summary=f"Restore a deleted {one}")
    def restore_record(request, type: str = TypeRef, id: int = RecordId):
        spec = spec_of(type)
        return serialize.record(spec, restore(request.auth, spec.entity_type_id, id))

    if kind == "process":
        @router.post(prefix + "/{id}/move", response=responses({200: Out}), operation_id="move_item",
                     summary="Move an item to a stage",
                     description="Fields the stage requires must be filled, or given in `fields`.")
        def move_record(request, payload: MoveIn, type: str = TypeRef, id: int = RecordId):
            spec = spec_of(type)
            read(request, spec, id)
            check_text(payload.fields or {})
            misplaced = sorted({"stage", "pipeline"} & set(payload.fields or {}))
            if misplaced:
                raise ValidationFailed(_("Give the stage and pipeline as the target, not among the fields."),
                                       fields={"fields": [_("must not contain %(names)s") % {"names": ", ".join(misplaced)}]})
            data = payload_data(payload)
            obj = actions.move_item(request.auth, spec.entity_type_id, id, stage=payload.stage,
                                    pipeline=payload.pipeline, fields=data.get("fields"))
            return serialize.record(spec, obj)

    @router.get(prefix + "/{id}/timeline", response=responses({200: TimelinePageOut}),
                operation_id=f"{one}_timeline", summary=f"Timeline of a {one}")
    def record_timeline(request, type: str = TypeRef, id: int = RecordId, limit: int = Query(50, ge=1, le=200),
                        before: int | None = Query(None, ge=1, le=MAX_ID)):
        return timeline_page(request.auth, spec_of(type).entity_type_id, id, limit, before)

    @router.post(prefix + "/{id}/comments", response=responses({201: TimelineEntryOut}),
                 operation_id=f"comment_{one}", summary=f"Comment on a {one}")
    def comment_record(request, payload: CommentIn, type: str = TypeRef, id: int = RecordId):
        from voronka.activities.actions import add_comment

        spec = spec_of(type)
        read(request, spec, id)
        errors = text_errors({"text": payload.text})
        if errors:
            raise ValidationFailed(_("Some fields are not valid."), fields=errors)
        entry = add_comment(request.auth, entity_type_id=spec.entity_type_id, entity_id=id, text=payload.text)
        return Status(201, serialize.timeline_entry(entry))


build(items_router, kind="process", prefix="/{type}", schemas=SCHEMAS, listing=LISTING, one="item", many="items")
build(lists_router, kind="list", prefix="/{type}/rows", schemas=LIST_SCHEMAS, listing=LIST_LISTING, one="row",
      many="rows")
