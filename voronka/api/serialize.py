"""Records, timeline entries and bulk results as plain data for the response schemas.

A page of records costs one query for the rows and one for all their phones, e-mails, messengers and sites.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence

from django.db import models

from voronka.core.recordkit import ItemResult, RecordSpec
from voronka.parties.communications import KEYS, values_of

from .schemas import has_communications, output_fields


def _comms(items) -> list[dict]:
    return [{"value": c.value, "type": c.value_type, "normalized": c.normalized} for c in items]


def _quantizers(spec: RecordSpec) -> dict[str, decimal.Decimal]:
    """Decimal fields in their stored precision: a fresh object's default 0 reads as "0.00" like a stored one."""
    return {f.name: decimal.Decimal(1).scaleb(-f.decimal_places) for f in output_fields(spec)
            if isinstance(f, models.DecimalField)}


_layouts: dict[type, tuple] = {}


def _layout(spec: RecordSpec) -> tuple[list[tuple[str, str]], dict[str, decimal.Decimal], bool]:
    """(name, attname) of the output fields and the decimal quantizers, fixed per model (so computed once per
    process: the single create renders one record per request), and whether the type has phones and e-mails."""
    layout = _layouts.get(spec.model)
    if layout is None:
        layout = _layouts[spec.model] = ([(f.name, f.attname) for f in output_fields(spec)], _quantizers(spec))
    return (*layout, has_communications(spec))


def records(spec: RecordSpec, objs: Sequence, *, without_communications: bool = False) -> list[dict]:
    """``without_communications``: the caller knows the records have no phones or e-mails (just created
    without any), so they are not looked up."""
    attrs, quantize, with_comms = _layout(spec)
    known = {o.pk: o.written_communications for o in objs if hasattr(o, "written_communications")}
    missing = [o.pk for o in objs if o.pk not in known]
    comms = None
    if with_comms and objs and not without_communications:
        comms = {**(values_of(spec.entity_type_id, missing) if missing else {}), **known}
    result = []
    for obj in objs:
        row = {name: getattr(obj, attname) for name, attname in attrs}
        for name, exp in quantize.items():
            value = row[name]
            if value is not None and not isinstance(value, decimal.Decimal):
                value = decimal.Decimal(str(value))
            if value is not None and value.is_finite():
                row[name] = value.quantize(exp)
        if comms is not None:
            mine = comms.get(obj.pk) or {}
            for key, kind in KEYS.items():
                row[key] = _comms(mine.get(kind, ()))
        elif with_comms:
            for key in KEYS:
                row[key] = []
        result.append(row)
    return result


def record(spec: RecordSpec, obj, *, without_communications: bool = False) -> dict:
    return records(spec, [obj], without_communications=without_communications)[0]


def timeline_entry(entry) -> dict:
    return {"id": entry.pk, "kind": entry.kind, "entity_type_id": entry.entity_type_id, "entity_id": entry.entity_id,
            "created_at": entry.created_at, "actor_kind": entry.actor_kind, "actor_user": entry.actor_user_id,
            "actor_label": entry.actor_label, "entry_point": entry.entry_point, "cause": entry.cause,
            "text": entry.text, "changes": entry.changes or {}, "data": entry.data or {}}


def item_result(result: ItemResult) -> dict:
    data = result.as_dict()
    if not result.ok:
        data["error"].setdefault("fields", {})
    return data
