"""One router per CRM record type (leads, deals, contacts, companies), built from a description of the type.

Reads go through ``core.selectors`` (so the caller's rights apply and a record they may not see is a 404),
writes through the domain actions. No annotations are postponed here: Ninja reads the views' annotations,
which refer to schemas built at run time.
"""

import datetime
import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from django.http import HttpResponse
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Status
from ninja.responses import NinjaJSONEncoder

from voronka.core.errors import ActionError, ValidationFailed
from voronka.core.recordkit import COLLECTOR_PAUSE_FROM, ItemResult, RecordSpec, collector_paused
from voronka.core.selectors import get_record_for, records_visible_to, timeline_for

from . import pagination, serialize
from .errors import ROOT, check_text, item_fields, text_errors
from .filters import ListConfig, apply, filter_schema
from .schemas import (
    MAX_ID,
    BulkCreateIn,
    BulkResultOut,
    BulkUpdateIn,
    CommentIn,
    TimelineEntryOut,
    TimelinePageOut,
    record_schemas,
    responses,
)

RecordId = Path(..., ge=1, le=MAX_ID, description="Record id.")


@dataclass
class Actions:
    create: Callable
    create_many: Callable
    update: Callable
    delete: Callable
    restore: Callable


@dataclass
class RecordType:
    name: str  # "Lead": names the schemas
    plural: str  # "leads": the path and the operation ids
    singular: str  # "lead"
    spec: RecordSpec
    actions: Actions
    listing: ListConfig
    # extra routes registered before the /{id} routes (static paths such as /repeat), then after them
    extra_static: list[Callable] = field(default_factory=list)
    extra_item: list[Callable] = field(default_factory=list)
    schemas: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.schemas = record_schemas(self.spec, self.name)
        self.schemas["filters"] = filter_schema(self.spec, self.name, self.listing)

    @property
    def type_id(self) -> int:
        return self.spec.entity_type_id


def payload_data(payload: pydantic.BaseModel) -> dict:
    """The fields a caller actually sent, as JSON-like values the actions accept."""
    data = payload.model_dump(mode="json", exclude_unset=True)
    check_text(data)
    return data


def _validated_item(rt: RecordType, raw: Any) -> dict:
    try:
        payload = rt.schemas["in"].model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(_("Some fields are not valid."), fields=item_fields(exc)) from None
    return payload_data(payload)


def _json_datetime(value: datetime.datetime) -> str:
    """A datetime as Django's JSON encoder writes it (milliseconds, «Z» for UTC)."""
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    if text.endswith("+00:00"):
        text = text.removesuffix("+00:00") + "Z"
    return text


_AS_IS = frozenset({str, int, bool, float, type(None)})
_CONVERT = {datetime.datetime: _json_datetime, decimal.Decimal: str, datetime.date: datetime.date.isoformat}


def render_json(data: dict) -> str:
    """``json.dumps(data, cls=NinjaJSONEncoder)``, the same text: the record's datetimes and decimals are turned
    into what the encoder's ``default`` returns for them, so the C encoder writes the rest without calling back into
    Python per value (a record has a dozen of them). Anything else falls back to Ninja's encoder."""
    plain = {}
    for key, value in data.items():
        kind = value.__class__
        if kind not in _AS_IS:
            convert = _CONVERT.get(kind)
            if convert is not None:
                value = convert(value)
        plain[key] = value
    try:
        return json.dumps(plain)
    except TypeError:  # a value of another type (inside a list or the custom fields): Ninja's encoder knows more
        return json.dumps(data, cls=NinjaJSONEncoder)


def created_response(data: dict) -> HttpResponse:
    """201 with a record built by ``serialize.record``, rendered as Ninja renders it but without validating it
    against the output schema again: the values come from the row just written and already have the schema's
    types (``test_write_path`` checks that both give the same body)."""
    return HttpResponse(render_json(data), status=201, content_type="application/json; charset=utf-8")


def bulk_create(rt: RecordType, actor, items: list[dict]) -> list[dict]:
    """Validate every item against the schema, hand the valid ones to the bulk action, report per item (the garbage
    collector paused for a large batch: ``recordkit.collector_paused``)."""
    with collector_paused(len(items) >= COLLECTOR_PAUSE_FROM):
        return _bulk_create(rt, actor, items)


def _bulk_create(rt: RecordType, actor, items: list[dict]) -> list[dict]:
    results: dict[int, ItemResult] = {}
    valid: list[tuple[int, dict]] = []
    for index, raw in enumerate(items):
        try:
            valid.append((index, _validated_item(rt, raw)))
        except ActionError as exc:
            results[index] = ItemResult(index, False, error=exc)
    if valid:
        for (index, _data), result in zip(valid, rt.actions.create_many(actor, [d for _i, d in valid]), strict=True):
            result.index = index
            results[index] = result
    return [serialize.item_result(results[i]) for i in range(len(items))]


def bulk_update(rt: RecordType, actor, items: list[dict]) -> list[dict]:
    """Each item is its own transaction: a bad item does not hold back the others."""
    out = []
    for index, raw in enumerate(items):
        try:
            if not isinstance(raw, dict):
                raise ValidationFailed(_("The record must be a JSON object."), fields={ROOT: [_("Must be an object.")]})
            pk = raw.get("id")
            if not isinstance(pk, int) or isinstance(pk, bool) or not (1 <= pk <= MAX_ID):
                raise ValidationFailed(_("Each item needs the id of the record to change."),
                                       fields={"id": [_("This field is required.") if pk is None else _("Must be a record id.")]})
            data = _validated_item(rt, {k: v for k, v in raw.items() if k != "id"})
            obj = rt.actions.update(actor, pk, **data)
            out.append(serialize.item_result(ItemResult(index, True, obj=obj)))
        except ActionError as exc:
            out.append(serialize.item_result(ItemResult(index, False, error=exc)))
    return out


def timeline_page(actor, type_id: int, pk: int, limit: int, before: int | None) -> dict:
    entries = timeline_for(actor, type_id, pk, limit=limit + 1, before_id=before)
    more = len(entries) > limit
    entries = entries[:limit]
    return {"items": [serialize.timeline_entry(e) for e in entries],
            "next_before": entries[-1].pk if more and entries else None}


def build_router(rt: RecordType) -> Router:
    router = Router(tags=[rt.plural.capitalize()])
    In, Out, Page, Filters = rt.schemas["in"], rt.schemas["out"], rt.schemas["page"], rt.schemas["filters"]
    spec, type_id = rt.spec, rt.type_id

    def read(request, pk: int):
        return get_record_for(request.auth, type_id, pk)

    @router.get("", response=responses({200: Page}), operation_id=f"list_{rt.plural}",
                summary=f"List {rt.plural}",
                description=(f"One page of {rt.plural} the caller may see, newest first unless `order` says otherwise. "
                             "Pass `next_cursor` as `cursor` for the next page. Custom fields filter as "
                             "`custom.<code>=<value>` (exact match; only defined codes)."))
    def list_records(request, filters: Query[Filters]):  # type: ignore[valid-type]
        qs = apply(spec, rt.listing, records_visible_to(request.auth, type_id), filters, request.GET)
        page = pagination.page(qs, order=filters.order, cursor=filters.cursor, limit=filters.limit)
        pagination.check_export_threshold(request.auth, type_id, page)
        return {"items": serialize.records(spec, page.items), "next_cursor": page.next_cursor}

    @router.post("", response=responses({201: Out}), operation_id=f"create_{rt.singular}",
                 summary=f"Create a {rt.singular}")
    def create_record(request, payload: In):  # type: ignore[valid-type]
        data = payload_data(payload)
        obj = rt.actions.create(request.auth, **data)
        return created_response(serialize.record(spec, obj,
                                                 without_communications=not ({"phones", "emails", "messengers", "websites", "site"} & set(data))))

    @router.post("/bulk", response=responses({200: BulkResultOut}), operation_id=f"bulk_create_{rt.plural}",
                 summary=f"Create many {rt.plural}",
                 description=("Up to VORONKA_BULK_MAX items, each validated like a single create. Valid items are "
                              "written together; the answer has a result per item: {index, ok, id} or "
                              "{index, ok: false, error}."), exclude_none=True)
    def bulk_create_records(request, payload: BulkCreateIn):
        return {"items": bulk_create(rt, request.auth, payload.items)}

    @router.patch("/bulk", response=responses({200: BulkResultOut}), operation_id=f"bulk_update_{rt.plural}",
                  summary=f"Change many {rt.plural}",
                  description="Each item has the record's `id` and the fields to change; a result per item.",
                  exclude_none=True)
    def bulk_update_records(request, payload: BulkUpdateIn):
        return {"items": bulk_update(rt, request.auth, payload.items)}

    for extra in rt.extra_static:
        extra(router, rt)

    @router.get("/{id}", response=responses({200: Out}), operation_id=f"get_{rt.singular}",
                summary=f"Read a {rt.singular}")
    def get_record(request, id: int = RecordId):
        return serialize.record(spec, read(request, id))

    @router.patch("/{id}", response=responses({200: Out}), operation_id=f"update_{rt.singular}",
                  summary=f"Change a {rt.singular}", description="Only the fields sent are changed.")
    def update_record(request, payload: In, id: int = RecordId):  # type: ignore[valid-type]
        read(request, id)
        obj = rt.actions.update(request.auth, id, **payload_data(payload))
        return serialize.record(spec, obj)

    @router.delete("/{id}", response=responses({204: None}), operation_id=f"delete_{rt.singular}",
                   summary=f"Delete a {rt.singular}", description="Moves the record to the recycle bin.")
    def delete_record(request, id: int = RecordId):
        read(request, id)
        rt.actions.delete(request.auth, id)
        return Status(204, None)

    @router.post("/{id}/restore", response=responses({200: Out}), operation_id=f"restore_{rt.singular}",
                 summary=f"Restore a deleted {rt.singular}")
    def restore_record(request, id: int = RecordId):
        obj = rt.actions.restore(request.auth, id)
        return serialize.record(spec, obj)

    @router.get("/{id}/timeline", response=responses({200: TimelinePageOut}),
                operation_id=f"{rt.singular}_timeline", summary=f"Timeline of a {rt.singular}",
                description="Changes, stage moves, comments and tasks, newest first.")
    def record_timeline(request, id: int = RecordId, limit: int = Query(50, ge=1, le=200),
                        before: int | None = Query(None, ge=1, le=MAX_ID)):
        return timeline_page(request.auth, type_id, id, limit, before)

    @router.post("/{id}/comments", response=responses({201: TimelineEntryOut}),
                 operation_id=f"comment_{rt.singular}", summary=f"Comment on a {rt.singular}")
    def comment_record(request, payload: CommentIn, id: int = RecordId):
        from voronka.activities.actions import add_comment

        read(request, id)
        errors = text_errors({"text": payload.text})
        if errors:
            raise ValidationFailed(_("Some fields are not valid."), fields=errors)
        entry = add_comment(request.auth, entity_type_id=type_id, entity_id=id, text=payload.text)
        return Status(201, serialize.timeline_entry(entry))

    for extra in rt.extra_item:
        extra(router, rt)
    return router
