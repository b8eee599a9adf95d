"""``crm.item.*``: the universal API in camelCase for leads (1), deals (2), contacts (3), companies (4) and
smart processes (their entity type ids, 1030 upward; see ``smart.py``).

The same records and the same code as ``crm.lead.*`` & co.: names are translated (``ASSIGNED_BY_ID`` ↔
``assignedById``, ``UF_CRM_1030_POWER`` ↔ ``ufCrm1030_Power``), values get JSON types, phones and e-mails
travel in ``fm``. Other entity type ids, and smart processes the caller may not read, answer ``NOT_FOUND``.
"""

from __future__ import annotations

import re
from typing import Any

from voronka.core.errors import ActionError

from . import crm, smart
from . import params as P
from .errors import B24Error, from_action
from .registry import Call, ListResult, method

RENAMES = {"ID": "id", "DATE_CREATE": "createdTime", "DATE_MODIFY": "updatedTime", "CREATED_BY_ID": "createdBy",
           "STATUS_ID": "stageId", "STATUS_SEMANTIC_ID": "stageSemanticId", "DATE_CLOSED": "closedate"}
INT_TYPES = {"integer", "user", "crm_company", "crm_contact", "crm_lead", "crm_category"}
_FM_KINDS = ("PHONE", "EMAIL", "WEB", "IM")


_DYNAMIC_UF = re.compile(r"^UF_CRM_(\d+)_(.+)$")


def camel(name: str) -> str:
    if name in RENAMES:
        return RENAMES[name]
    dynamic = _DYNAMIC_UF.match(name)
    if dynamic:  # a smart process's field: UF_CRM_1030_POWER_KW -> ufCrm1030_PowerKw
        return f"ufCrm{dynamic.group(1)}_" + "".join(p.capitalize() for p in dynamic.group(2).lower().split("_"))
    head, *rest = name.lower().split("_")
    return head + "".join(p.capitalize() for p in rest)


def names(entity: crm.Entity, call: Call) -> dict[str, str]:
    """{camelName: UPPER_NAME} of an entity, user fields included."""
    out = {camel(f.name): f.name for f in entity.fields if f.type != "crm_multifield"}
    out.update({camel(n): n for n in crm.uf_defs(call, entity.type_id)})
    return out


def _entity(call: Call, params: dict) -> crm.Entity:
    try:
        type_id = P.integer(params, "entityTypeId")
    except B24Error:
        raise B24Error("Smart process not found", "NOT_FOUND") from None
    entity = crm.BY_TYPE.get(type_id or 0)
    if entity is None and (type_id or 0) >= crm.entity_types.FIRST_DYNAMIC:
        entity = smart.entity(call, type_id)
    if entity is None:
        raise B24Error("Smart process not found", "NOT_FOUND")
    return entity


def _typed(f: crm.Field | None, value: Any) -> Any:
    if f is None or value is None:
        return value
    if f.type in INT_TYPES:
        return int(value) if value not in ("", None) else None
    if f.type == "double":
        return float(value) if value not in ("", None) else None
    if f.type in ("date", "datetime") and value == "":
        return None  # the universal API answers null for an empty date
    return value


def to_item(entity: crm.Entity, legacy: dict, with_fm: bool, upper_uf: bool) -> dict:
    item: dict = {}
    for key, value in legacy.items():
        if key in _FM_KINDS:
            continue
        name = key if upper_uf and key.startswith("UF_") else camel(key)
        item[name] = _typed(entity.by_name.get(key), value)
    if with_fm and entity.multi:
        item["fm"] = [{"id": int(v["ID"]), "typeId": kind, "valueType": v["VALUE_TYPE"], "value": v["VALUE"]}
                      for kind in _FM_KINDS for v in legacy.get(kind, [])]
        for kind in (k for k in _FM_KINDS if k in crm.MULTI or k in entity.by_name):
            values = legacy.get(kind, [])
            item[kind.lower()] = values[0]["VALUE"] if values else None
    return item


def _upper(entity: crm.Entity, call: Call, key: str, *, strict: bool, what: str) -> str | None:
    if not isinstance(key, str):
        return None
    known = names(entity, call)
    if key in known:
        return known[key]
    upper = key.upper()
    if upper in entity.by_name or upper in crm.uf_defs(call, entity.type_id) or upper in crm.MULTI:
        return upper
    if strict:
        raise B24Error(f"Invalid {what}: field '{key}' is not allowed in {what}", "INVALID_ARG_VALUE")
    return None


def _fields_in(entity: crm.Entity, call: Call, fields: dict, *, creating: bool) -> dict:
    out: dict = {}
    for key, value in fields.items():
        if key == "fm":
            continue
        upper = _upper(entity, call, key, strict=False, what="fields")
        if upper is not None:
            out[upper] = value
    fm = fields.get("fm")
    if fm is not None and entity.multi:
        entries = list(fm.items()) if isinstance(fm, dict) else [(None, v) for v in fm] if isinstance(fm, list) else []
        for key, value in entries:
            if not isinstance(value, dict):
                continue
            kind = str(value.get("typeId") or "").upper()
            if kind not in _FM_KINDS or (kind not in crm.MULTI and kind not in entity.by_name):
                continue
            entry = {"VALUE": value.get("value", ""), "VALUE_TYPE": value.get("valueType", "")}
            if key is not None and str(key).isdigit() and not creating:
                entry["ID"] = key
            out.setdefault(kind, []).append(entry)
    return out


def _legacy_error(exc: B24Error, entity: crm.Entity) -> B24Error:
    if exc.code:
        return exc
    if exc.description in ("Not found", entity.missing):
        return B24Error("Element not found", "NOT_FOUND")
    if exc.description == "Access denied.":
        return B24Error("Access denied", "ACCESS_DENIED")
    return B24Error(exc.description, "CRM_FIELD_ERROR_VALUE_NOT_VALID")


def _get_item(entity: crm.Entity, call: Call, pk: int, upper_uf: bool) -> dict:
    try:
        legacy = crm.get(entity, call, {"ID": pk})
    except B24Error as exc:
        raise _legacy_error(exc, entity) from None
    return to_item(entity, legacy, True, upper_uf)


def _uf_upper(params: dict) -> bool:
    return P.flag(P.get(params, "useOriginalUfNames", "N"))


@method("crm.item.add")
def item_add(call: Call, params: dict) -> dict:
    entity = _entity(call, params)
    fields = _fields_in(entity, call, P.mapping(params, "fields"), creating=True)
    try:
        pk = crm.add(entity, call, {"fields": fields})
    except B24Error as exc:
        raise _legacy_error(exc, entity) from None
    except ActionError as exc:
        raise _legacy_error(from_action(exc), entity) from None
    return {"item": _get_item(entity, call, pk, _uf_upper(params))}


@method("crm.item.get")
def item_get(call: Call, params: dict) -> dict:
    entity = _entity(call, params)
    return {"item": _get_item(entity, call, P.entity_id(params), _uf_upper(params))}


@method("crm.item.update")
def item_update(call: Call, params: dict) -> dict:
    entity = _entity(call, params)
    pk = P.entity_id(params)
    fields = _fields_in(entity, call, P.mapping(params, "fields"), creating=False)
    try:
        crm.update(entity, call, {"ID": pk, "fields": fields})
    except B24Error as exc:
        raise _legacy_error(exc, entity) from None
    return {"item": _get_item(entity, call, pk, _uf_upper(params))}


@method("crm.item.delete")
def item_delete(call: Call, params: dict) -> list:
    entity = _entity(call, params)
    try:
        crm.delete(entity, call, {"ID": P.entity_id(params)})
    except B24Error as exc:
        raise _legacy_error(exc, entity) from None
    return []


def _filter(entity: crm.Entity, call: Call, raw: dict, depth: int = 0) -> dict:
    """camelCase filter keys to the legacy names; nested groups (``"logic": "OR"``) are translated inside."""
    if depth > crm.MAX_GROUP_DEPTH:
        raise B24Error("Filter groups are nested too deeply.", "INVALID_ARG_VALUE")
    out: dict = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        if key.lower() == "logic":
            out["logic"] = value
            continue
        if crm.is_group(key, value):
            out[key] = _filter(entity, call, value, depth + 1)
            continue
        if key.isdigit():
            raise B24Error(f"Invalid filter: group '{key}' must be an object", "INVALID_ARG_VALUE")
        op, name = crm.split_key(key)
        upper = _upper(entity, call, name, strict=True, what="filter")
        out[op + upper] = value
    return out


@method("crm.item.list")
def item_list(call: Call, params: dict) -> ListResult:
    entity = _entity(call, params)
    select = P.names(params, "select") or ["*"]
    with_fm = "*" in select or "fm" in select
    legacy_select = ["*", "UF_*"] if "*" in select else [u for s in select if s != "fm"
                                                        if (u := _upper(entity, call, s, strict=False, what="select"))]
    if with_fm and entity.multi:
        legacy_select += [k for k in _FM_KINDS if k in crm.MULTI or k in entity.by_name]
    order = {}
    for key, direction in P.mapping(params, "order").items():
        order[_upper(entity, call, key, strict=True, what="order")] = direction
    legacy = crm.listing(entity, call, {"select": legacy_select, "filter": _filter(entity, call, P.mapping(params, "filter")),
                                        "order": order})
    items = [to_item(entity, row, with_fm, _uf_upper(params)) for row in legacy.result]
    if call.start < 0:
        return ListResult({"items": items})
    return ListResult({"items": items}, total=legacy.total, next=legacy.next)


@method("crm.item.fields")
def item_fields(call: Call, params: dict) -> dict:
    entity = _entity(call, params)
    legacy = crm.fields_of(entity, call, {})
    out = {}
    for upper, desc in legacy.items():
        if upper in _FM_KINDS:
            continue
        out[upper if _uf_upper(params) and upper.startswith("UF_") else camel(upper)] = {**desc, "upperName": upper}
    if entity.multi:
        out["fm"] = {"type": "crm_multifield", "isRequired": False, "isReadOnly": False, "isImmutable": False,
                     "isMultiple": True, "isDynamic": False, "title": "fm", "upperName": "FM"}
    return {"fields": out}
