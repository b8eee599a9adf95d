"""User fields, contact/company links, ``crm.duplicate.findbycomm``, timeline comments and activities."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from voronka.activities import actions as activities
from voronka.activities.models import Task
from voronka.core import entity_types
from voronka.core.errors import ActionError
from voronka.core.models import TimelineEntry
from voronka.core.normalize import normalize_email, normalize_phone
from voronka.core.selectors import get_record_for, records_visible_to
from voronka.customfields import actions as field_actions
from voronka.customfields.models import FieldDefinition
from voronka.parties.communications import find_owners

from . import crm
from . import params as P
from . import values as V
from .errors import B24Error, from_action
from .registry import Call, ListResult, method

# --- user fields ------------------------------------------------------------------------------------

UF_KINDS = {"string": "string", "integer": "integer", "double": "decimal", "boolean": "boolean",
            "datetime": "datetime", "date": "date", "money": "money", "enumeration": "enum", "employee": "user",
            "url": "string", "address": "string", "crm_status": "string"}
UF_TYPES_OUT = {v: k for k, v in UF_KINDS.items() if k not in ("url", "address", "crm_status")} | {"text": "string",
                                                                                                   "link": "crm"}
_NAME = re.compile(r"^[A-Z0-9_]+$")


def _label(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("ru") or value.get("en") or next(iter(value.values()), "")
    return str(value or "").strip()[:200]


def uf_row(defn: FieldDefinition, entity: crm.Entity) -> dict:
    row = {"ID": str(defn.pk), "ENTITY_ID": f"CRM_{entity.name}", "FIELD_NAME": crm.uf_name(defn.code),
           "USER_TYPE_ID": UF_TYPES_OUT.get(defn.kind, "string"), "XML_ID": None, "SORT": str(defn.sort),
           "MULTIPLE": "Y" if defn.multiple else "N", "MANDATORY": "Y" if defn.required else "N",
           "SHOW_FILTER": "Y" if defn.is_filterable else "N", "SHOW_IN_LIST": "Y", "EDIT_IN_LIST": "Y",
           "IS_SEARCHABLE": "N", "SETTINGS": [], "EDIT_FORM_LABEL": defn.label, "LIST_COLUMN_LABEL": defn.label,
           "LIST_FILTER_LABEL": defn.label}
    if defn.kind == "enum":
        row["LIST"] = [{"ID": str(c["id"]), "VALUE": c.get("label", ""), "SORT": str((i + 1) * 10), "DEF": "N",
                        "XML_ID": str(c["id"])} for i, c in enumerate(defn.options.get("choices", []))]
    return row


def _uf(entity: crm.Entity, params: dict) -> FieldDefinition:
    defn = FieldDefinition.objects.filter(pk=P.entity_id(params), entity_type_id=entity.type_id).first()
    if defn is None:
        raise B24Error("The 'FIELD_NAME' field is not found.")
    return defn


def _choices(items: Any) -> list[dict]:
    if isinstance(items, dict):
        items = list(items.values())
    out = []
    for n, item in enumerate(items or []):
        if isinstance(item, dict):
            item = {str(k).upper(): v for k, v in item.items()}
            out.append({"id": str(item.get("XML_ID") or item.get("ID") or n + 1), "label": str(item.get("VALUE", ""))})
    return out


def uf_add(entity: crm.Entity, call: Call, params: dict) -> int:
    fields = {str(k).upper(): v for k, v in P.mapping(params, "fields").items()}
    name = str(fields.get("FIELD_NAME") or "").strip().upper()
    if not name:
        raise B24Error("The 'FIELD_NAME' field is not found.", "ERROR_CORE")
    if not name.startswith("UF_CRM_"):
        name = "UF_CRM_" + name
    if not _NAME.match(name) or len(name) > 50:
        raise B24Error("Invalid field name.", "ERROR_CORE")
    kind = UF_KINDS.get(str(fields.get("USER_TYPE_ID") or "string").lower())
    if kind is None:
        raise B24Error("Unknown user field type.", "ERROR_CORE")
    label = _label(fields.get("EDIT_FORM_LABEL") or fields.get("LABEL") or fields.get("LIST_COLUMN_LABEL")) or name
    data: dict = {"code": name.lower(), "label": label, "kind": kind, "multiple": P.flag(fields.get("MULTIPLE", "N")),
                  "required": P.flag(fields.get("MANDATORY", "N")), "is_filterable": P.flag(fields.get("SHOW_FILTER", "N"))}
    if fields.get("SORT") not in (None, ""):
        data["sort"] = P.integer(fields, "SORT", 100)
    if kind == "enum":
        data["options"] = {"choices": _choices(fields.get("LIST"))}
    try:
        return field_actions.define_field(call.actor, entity_type_id=entity.type_id, **data).pk
    except ActionError as exc:
        raise B24Error(from_action(exc).description, "ERROR_CORE") from None


def uf_update(entity: crm.Entity, call: Call, params: dict) -> bool:
    defn = _uf(entity, params)
    fields = {str(k).upper(): v for k, v in P.mapping(params, "fields").items()}
    data: dict = {}
    label = _label(fields.get("EDIT_FORM_LABEL") or fields.get("LABEL") or fields.get("LIST_COLUMN_LABEL"))
    if label:
        data["label"] = label
    if "MANDATORY" in fields:
        data["required"] = P.flag(fields["MANDATORY"])
    if "SHOW_FILTER" in fields:
        data["is_filterable"] = P.flag(fields["SHOW_FILTER"])
    if fields.get("SORT") not in (None, ""):
        data["sort"] = P.integer(fields, "SORT", 100)
    if "LIST" in fields and defn.kind == "enum":
        data["options"] = {**defn.options, "choices": _choices(fields["LIST"])}
    if data:
        try:
            field_actions.update_field(call.actor, defn.pk, **data)
        except ActionError as exc:
            raise B24Error(from_action(exc).description, "ERROR_CORE") from None
    return True


def uf_delete(entity: crm.Entity, call: Call, params: dict) -> bool:
    defn = _uf(entity, params)
    try:
        field_actions.delete_field(call.actor, defn.pk)
    except ActionError as exc:
        raise from_action(exc) from None
    return True


def uf_list(entity: crm.Entity, call: Call, params: dict) -> ListResult:
    rows = [uf_row(d, entity) for d in FieldDefinition.objects.filter(entity_type_id=entity.type_id)]
    filt = {str(k).upper(): v for k, v in P.mapping(params, "filter").items()}
    rows = [r for r in rows if all(str(r.get(k)) == str(v) for k, v in filt.items() if k in r)]
    return ListResult(rows, total=len(rows))


def _register_uf(entity: crm.Entity) -> None:
    n = entity.name.lower()
    method(f"crm.{n}.userfield.add")(lambda call, params: uf_add(entity, call, params))
    method(f"crm.{n}.userfield.get")(lambda call, params: uf_row(_uf(entity, params), entity))
    method(f"crm.{n}.userfield.list")(lambda call, params: uf_list(entity, call, params))
    method(f"crm.{n}.userfield.update")(lambda call, params: uf_update(entity, call, params))
    method(f"crm.{n}.userfield.delete")(lambda call, params: uf_delete(entity, call, params))


for _e in crm.ENTITIES.values():
    _register_uf(_e)


@method("crm.userfield.types")
def userfield_types(call: Call, params: dict) -> list:
    return [{"ID": k, "title": k} for k in UF_KINDS]


# --- links: a deal's or lead's contacts, a contact's company, a company's contacts ---------------------
# A deal (or lead) has a primary contact (its ``contact`` field) and any number of further contacts, kept as
# links with the role «contact» (``voronka.links``: both cards show them). A contact has one company.

CONTACT_ROLE = "contact"


def _extra_contacts(owner: crm.Entity, call: Call, pk: int) -> list:
    """The live «contact» links of a record, whose contact the caller may see, in the order they were made."""
    from voronka.links.selectors import links_of

    return [r for r in links_of(call.actor, owner.type_id, pk, role=CONTACT_ROLE, other_type_id=entity_types.CONTACT)
            if not r.hidden and r.direction == "out"]


def _items_get(owner: crm.Entity, attr: str, key: str, call: Call, params: dict) -> list:
    obj = crm._get(owner, call, P.entity_id(params))
    value = getattr(obj, f"{attr}_id")
    rows = [{key: value, "SORT": 10, "ROLE_ID": 0, "IS_PRIMARY": "Y"}] if value else []
    if attr == "contact":
        if value and not records_visible_to(call.actor, entity_types.CONTACT).filter(pk=value).exists():
            rows = []  # a primary contact the caller may not see is not named
        for n, extra in enumerate(_extra_contacts(owner, call, obj.pk), start=2):
            if extra.entity_id != value:
                rows.append({key: extra.entity_id, "SORT": n * 10, "ROLE_ID": 0, "IS_PRIMARY": "N"})
    return rows


def _items_list(items: Any, key: str) -> list[int]:
    """The ids of ``items`` in order (by SORT when given), the primary one (IS_PRIMARY=Y, else the first) first."""
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, list):
        raise B24Error("The parameter items is not defined or invalid.")
    picked: list[tuple[int, int, int]] = []  # (not primary, sort, id)
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        item = {str(k).upper(): v for k, v in item.items()}
        try:
            target = int(str(item.get(key)))
        except ValueError:
            continue
        try:
            sort = int(str(item.get("SORT"))) if item.get("SORT") not in (None, "") else (n + 1) * 10
        except ValueError:
            sort = (n + 1) * 10
        picked.append((0 if P.flag(item.get("IS_PRIMARY", "N")) else 1, sort, target))
    primary = next((p for p in picked if p[0] == 0), None)
    ordered = sorted(picked, key=lambda p: (p[1], picked.index(p)))
    ids = [p[2] for p in ordered]
    if primary is not None:
        ids.remove(primary[2])
        ids.insert(0, primary[2])
    return list(dict.fromkeys(ids))


def _items_pick(items: Any, key: str) -> int | None:
    ids = _items_list(items, key)
    return ids[0] if ids else None


def _write_link(owner: crm.Entity, attr: str, call: Call, pk: int, value: int | None) -> bool:
    crm._get(owner, call, pk, owner.missing)
    try:
        owner.update(call.actor, pk, **{attr: value})
    except ActionError as exc:
        raise from_action(exc, owner.missing) from None
    return True


def set_contacts(owner: crm.Entity, call: Call, pk: int, ids: list[int]) -> bool:
    """Make ``ids`` the record's contacts: the first is the primary one, the others «contact» links; links to
    contacts no longer named are closed. Contacts the caller may not see are refused, as missing ones are."""
    from django.db import transaction

    from voronka.links import actions as link_actions

    ids = list(dict.fromkeys(ids))
    obj = crm._get(owner, call, pk, owner.missing)
    visible = set(records_visible_to(call.actor, entity_types.CONTACT).filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in ids if i not in visible and i != obj.contact_id]  # a hidden primary may stay
    if missing:
        raise B24Error(f"Contact is not found: {missing[0]}")
    try:
        with transaction.atomic():
            primary = ids[0] if ids else None
            if obj.contact_id != primary:
                owner.update(call.actor, pk, contact=primary)
            current = {r.entity_id: r.link.pk for r in _extra_contacts(owner, call, pk)}
            for contact_id, link_id in current.items():
                if contact_id not in ids[1:]:
                    link_actions.unlink(call.actor, link_id)
            for contact_id in ids[1:]:
                if contact_id not in current:
                    link_actions.link(call.actor, (owner.type_id, pk), (entity_types.CONTACT, contact_id),
                                      role=CONTACT_ROLE)
    except ActionError as exc:
        raise from_action(exc, owner.missing) from None
    return True


def _contact_ids(owner: crm.Entity, call: Call, pk: int) -> list[int]:
    """The record's contacts, primary first (kept even when the caller may not see it)."""
    obj = crm._get(owner, call, pk, owner.missing)
    extra = [r.entity_id for r in _extra_contacts(owner, call, pk) if r.entity_id != obj.contact_id]
    return ([obj.contact_id] if obj.contact_id else []) + extra


def _register_links(owner: crm.Entity, attr: str, key: str, target_type: int) -> None:
    n = f"crm.{owner.name.lower()}.{'contact' if key == 'CONTACT_ID' else 'company'}"
    several = attr == "contact"

    def items_set(call: Call, params: dict) -> bool:
        items = P.get(params, "items", [])
        if several:
            return set_contacts(owner, call, P.entity_id(params), _items_list(items, key))
        return _write_link(owner, attr, call, P.entity_id(params), _items_pick(items, key))

    def items_delete(call: Call, params: dict) -> bool:
        if several:
            return set_contacts(owner, call, P.entity_id(params), [])
        return _write_link(owner, attr, call, P.entity_id(params), None)

    def add(call: Call, params: dict) -> bool:
        pk = P.entity_id(params)
        fields = {str(k).upper(): v for k, v in P.mapping(params, "fields").items()}
        target = crm._to_id(fields.get(key), call)
        if not target:
            raise B24Error(f"The field {key} is required.")
        records_visible = records_visible_to(call.actor, target_type).filter(pk=target).exists()
        if not records_visible:
            raise B24Error("Not found")
        if several:
            ids = [i for i in _contact_ids(owner, call, pk) if i != target]
            primary = P.flag(fields.get("IS_PRIMARY", "N")) or not ids
            return set_contacts(owner, call, pk, [target, *ids] if primary else [*ids, target])
        return _write_link(owner, attr, call, pk, target)

    def delete(call: Call, params: dict) -> bool:
        pk = P.entity_id(params)
        fields = {str(k).upper(): v for k, v in P.mapping(params, "fields").items()}
        if several:
            ids = _contact_ids(owner, call, pk)
            if str(fields.get(key)) in map(str, ids):
                return set_contacts(owner, call, pk, [i for i in ids if str(i) != str(fields.get(key))])
            return True
        obj = crm._get(owner, call, pk, owner.missing)
        if str(getattr(obj, f"{attr}_id")) == str(fields.get(key)):
            return _write_link(owner, attr, call, pk, None)
        return True

    method(f"{n}.items.get")(lambda call, params: _items_get(owner, attr, key, call, params))
    method(f"{n}.items.set")(items_set)
    method(f"{n}.items.delete")(items_delete)
    method(f"{n}.add")(add)
    method(f"{n}.delete")(delete)
    method(f"{n}.fields")(lambda call, params: {k: {"type": "integer", "isRequired": k == key, "isReadOnly": False,
                                                    "isImmutable": False, "isMultiple": False, "isDynamic": False}
                                                for k in (key, "SORT", "ROLE_ID", "IS_PRIMARY")})


_register_links(crm.DEAL, "contact", "CONTACT_ID", entity_types.CONTACT)
_register_links(crm.LEAD, "contact", "CONTACT_ID", entity_types.CONTACT)
_register_links(crm.CONTACT, "company", "COMPANY_ID", entity_types.COMPANY)


@method("crm.company.contact.items.get")
def company_contacts(call: Call, params: dict) -> list:
    company = crm._get(crm.COMPANY, call, P.entity_id(params))
    ids = records_visible_to(call.actor, entity_types.CONTACT).filter(company_id=company.pk).order_by("id")
    return [{"CONTACT_ID": pk, "SORT": (i + 1) * 10, "ROLE_ID": 0, "IS_PRIMARY": "Y" if i == 0 else "N"}
            for i, pk in enumerate(ids.values_list("pk", flat=True)[:500])]


@method("crm.company.contact.add")
def company_contact_add(call: Call, params: dict) -> bool:
    company = crm._get(crm.COMPANY, call, P.entity_id(params), crm.COMPANY.missing)
    fields = {str(k).upper(): v for k, v in P.mapping(params, "fields").items()}
    contact_id = crm._to_id(fields.get("CONTACT_ID"), call)
    if not contact_id:
        raise B24Error("The field CONTACT_ID is required.")
    return _write_link(crm.CONTACT, "company", call, contact_id, company.pk)


@method("crm.company.contact.delete")
def company_contact_delete(call: Call, params: dict) -> bool:
    company = crm._get(crm.COMPANY, call, P.entity_id(params), crm.COMPANY.missing)
    fields = {str(k).upper(): v for k, v in P.mapping(params, "fields").items()}
    contact_id = crm._to_id(fields.get("CONTACT_ID"), call)
    contact = crm._get(crm.CONTACT, call, contact_id or 0, crm.CONTACT.missing) if contact_id else None
    if contact is not None and contact.company_id == company.pk:
        _write_link(crm.CONTACT, "company", call, contact.pk, None)
    return True


# --- duplicates -------------------------------------------------------------------------------------

_DUP_TYPES = {"LEAD": entity_types.LEAD, "CONTACT": entity_types.CONTACT, "COMPANY": entity_types.COMPANY}


@method("crm.duplicate.findbycomm")
def findbycomm(call: Call, params: dict) -> Any:
    kind = str(P.get(params, "type", "") or "").upper()
    if not kind:
        raise B24Error("Communication type is not defined.")
    if kind not in ("PHONE", "EMAIL"):
        raise B24Error(f"Communication type '{kind}' is not supported in current context.")
    values = P.get(params, "values")
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, str):
        values = [values]
    if not values or not isinstance(values, list):
        raise B24Error("Communication values is not defined.")
    entity_type = str(P.get(params, "entity_type", "") or "").upper()
    if entity_type and entity_type not in _DUP_TYPES:
        raise B24Error(f"Entity type '{entity_type}' is not supported in current context.")
    normalized = []
    for raw in values[:20]:
        try:
            value = normalize_phone(str(raw)) if kind == "PHONE" else normalize_email(str(raw))
        except Exception:
            continue
        if value not in normalized:
            normalized.append(value)
    types = [_DUP_TYPES[entity_type]] if entity_type else list(_DUP_TYPES.values())
    found: dict[str, list[int]] = {}
    owners = find_owners(kind.lower(), normalized, types).values_list("entity_type_id", "entity_id")
    by_type: dict[int, set[int]] = {}
    for type_id, pk in owners:
        by_type.setdefault(type_id, set()).add(pk)
    for name, type_id in _DUP_TYPES.items():
        ids = by_type.get(type_id)
        if ids:
            visible = sorted(records_visible_to(call.actor, type_id).filter(pk__in=ids).values_list("pk", flat=True))
            if visible:
                found[name] = visible
    return found or []


# --- timeline comments ------------------------------------------------------------------------------

_OWNER_TYPES = {"lead": 1, "deal": 2, "contact": 3, "company": 4}


def _owner(fields: dict) -> tuple[int, int]:
    fields = {str(k).upper(): v for k, v in fields.items()}
    kind = str(fields.get("ENTITY_TYPE") or "").lower()
    type_id = _OWNER_TYPES.get(kind)
    if type_id is None and str(fields.get("ENTITY_TYPE_ID") or "").isdigit():
        type_id = int(fields["ENTITY_TYPE_ID"]) if int(fields["ENTITY_TYPE_ID"]) in (1, 2, 3, 4) else None
    if type_id is None:
        raise B24Error("Entity type is not supported.", "INVALID_ARG_VALUE")
    try:
        pk = int(str(fields.get("ENTITY_ID")))
    except ValueError:
        raise B24Error("ENTITY_ID is required.", "INVALID_ARG_VALUE") from None
    return type_id, pk


def comment_row(entry: TimelineEntry) -> dict:
    kind = {v: k for k, v in _OWNER_TYPES.items()}.get(entry.entity_type_id, "")
    return {"ID": str(entry.pk), "CREATED": V.out_datetime(entry.created_at), "ENTITY_ID": entry.entity_id,
            "ENTITY_TYPE": kind, "AUTHOR_ID": str(entry.actor_user_id or 0), "COMMENT": entry.text, "FILES": []}


@method("crm.timeline.comment.add")
def comment_add(call: Call, params: dict) -> int:
    fields = P.mapping(params, "fields")
    type_id, pk = _owner(fields)
    text = str({str(k).upper(): v for k, v in fields.items()}.get("COMMENT") or "")
    if not text.strip():
        raise B24Error("Comment is empty.", "INVALID_ARG_VALUE")
    try:
        get_record_for(call.actor, type_id, pk)
    except ActionError:
        raise B24Error("Owner not found.", "OWNER_NOT_FOUND") from None
    try:
        return activities.add_comment(call.actor, entity_type_id=type_id, entity_id=pk, text=text).pk
    except ActionError as exc:
        raise B24Error(exc.message, "ACCESS_DENIED" if exc.status == 403 else "INVALID_ARG_VALUE") from None


def _visible_comment(call: Call, pk: int) -> TimelineEntry:
    entry = TimelineEntry.objects.filter(pk=pk, kind="comment").first()
    if entry is None or entry.entity_type_id not in (1, 2, 3, 4):
        raise B24Error("Not found", "NOT_FOUND")
    try:
        get_record_for(call.actor, entry.entity_type_id, entry.entity_id)
    except ActionError:
        raise B24Error("Not found", "NOT_FOUND") from None
    return entry


@method("crm.timeline.comment.get")
def comment_get(call: Call, params: dict) -> dict:
    return comment_row(_visible_comment(call, P.entity_id(params)))


@method("crm.timeline.comment.list")
def comment_list(call: Call, params: dict) -> ListResult:
    type_id, pk = _owner(P.mapping(params, "filter"))
    try:
        get_record_for(call.actor, type_id, pk)
    except ActionError:
        raise B24Error("Owner not found.", "OWNER_NOT_FOUND") from None
    qs = TimelineEntry.objects.filter(entity_type_id=type_id, entity_id=pk, kind="comment").order_by("-id")
    offset = max(call.start, 0) // 50 * 50
    rows = list(qs[offset:offset + 50])
    total = qs.count()
    return ListResult([comment_row(e) for e in rows], total=total,
                      next=offset + len(rows) if offset + len(rows) < total else None)


@method("crm.timeline.comment.fields")
def comment_fields(call: Call, params: dict) -> dict:
    return {k: {"type": t, "isRequired": k in ("ENTITY_ID", "ENTITY_TYPE", "COMMENT"), "isReadOnly": k in ("ID", "CREATED", "AUTHOR_ID"),
                "isImmutable": False, "isMultiple": False, "isDynamic": False}
            for k, t in (("ID", "integer"), ("CREATED", "datetime"), ("ENTITY_ID", "integer"), ("ENTITY_TYPE", "string"),
                         ("AUTHOR_ID", "user"), ("COMMENT", "string"), ("FILES", "attached_diskfile"))}


def _append_only(call: Call, params: dict) -> None:
    _visible_comment(call, P.entity_id(params))
    raise B24Error(_("Comments are part of the record's history, which cannot be changed."), "ACCESS_DENIED")


method("crm.timeline.comment.update")(_append_only)
method("crm.timeline.comment.delete")(_append_only)


# --- activities (Voronka's tasks on records) --------------------------------------------------------

def _visible_tasks(call: Call):
    """The tasks the caller may see (own, authored, observed, or on a record they may read), as everywhere."""
    from voronka.activities.selectors import visible_tasks

    return visible_tasks(call.actor)


def activity_row(task: Task) -> dict:
    done = task.status != Task.Status.OPEN
    return {"ID": str(task.pk), "OWNER_TYPE_ID": str(task.entity_type_id or ""), "OWNER_ID": str(task.entity_id or ""),
            "TYPE_ID": "3", "PROVIDER_ID": "TASKS", "PROVIDER_TYPE_ID": "TASK", "SUBJECT": task.title,
            "DESCRIPTION": task.description, "DESCRIPTION_TYPE": "1", "DIRECTION": "0",
            "START_TIME": V.out_datetime(task.created_at), "END_TIME": V.out_datetime(task.deadline),
            "DEADLINE": V.out_datetime(task.deadline), "COMPLETED": "Y" if done else "N", "STATUS": "2" if done else "1",
            "PRIORITY": "2", "RESPONSIBLE_ID": str(task.responsible_id), "AUTHOR_ID": str(task.created_by_id or ""),
            "CREATED": V.out_datetime(task.created_at), "LAST_UPDATED": V.out_datetime(task.updated_at),
            "RESULT_STATUS": "0", "ASSOCIATED_ENTITY_ID": str(task.pk)}


_ACTIVITY_FIELDS = {"ID": ("id", "int"), "OWNER_TYPE_ID": ("entity_type_id", "int"), "OWNER_ID": ("entity_id", "int"),
                    "RESPONSIBLE_ID": ("responsible_id", "int"), "AUTHOR_ID": ("created_by_id", "int"),
                    "SUBJECT": ("title", "text"), "DEADLINE": ("deadline", "datetime"),
                    "CREATED": ("created_at", "datetime"), "LAST_UPDATED": ("updated_at", "datetime")}


@method("crm.activity.get")
def activity_get(call: Call, params: dict) -> dict:
    task = _visible_tasks(call).filter(pk=P.entity_id(params)).first()
    if task is None:
        raise B24Error("Not found")
    return activity_row(task)


@method("crm.activity.list")
def activity_list(call: Call, params: dict) -> ListResult:
    qs = _visible_tasks(call)
    for key, value in P.mapping(params, "filter").items():
        op, name = crm.split_key(str(key))
        name = name.upper()
        if name == "COMPLETED":
            done = str(value).upper() in ("Y", "1", "TRUE")
            qs = qs.exclude(status=Task.Status.OPEN) if done else qs.filter(status=Task.Status.OPEN)
            continue
        if name == "TYPE_ID":
            if str(value) != "3" and not (isinstance(value, list) and "3" in map(str, value)):
                qs = qs.none()
            continue
        spec = _ACTIVITY_FIELDS.get(name)
        if spec is None:
            continue
        path, kind = spec
        if kind == "int":
            try:
                value = [int(str(v)) for v in value] if isinstance(value, list) else int(str(value))
            except ValueError:
                raise B24Error(f"Invalid filter value: {value}") from None
        elif kind == "datetime":
            value = V.parse_dt(value)
        lookup = {"": "", "=": "", ">": "__gt", ">=": "__gte", "<": "__lt", "<=": "__lte", "@": "__in",
                  "%": "__icontains"}.get(op.lstrip("!"))
        if lookup is None:
            continue
        if isinstance(value, list) and lookup == "":
            lookup = "__in"
        cond = Q(**{f"{path}{lookup}": value})
        qs = qs.exclude(cond) if op.startswith("!") else qs.filter(cond)
    order = [("-" if str(d).upper() == "DESC" else "") + _ACTIVITY_FIELDS[str(k).upper()][0]
             for k, d in P.mapping(params, "order").items() if str(k).upper() in _ACTIVITY_FIELDS] or ["id"]
    qs = qs.order_by(*order)
    offset = max(call.start, 0) // 50 * 50
    rows = list(qs[offset:offset + 50])
    total = qs.count()
    return ListResult([activity_row(t) for t in rows], total=total,
                      next=offset + len(rows) if offset + len(rows) < total else None)


# --- writing activities: a meeting, call, task or e-mail to do becomes a Voronka task on the record ---------

def _activity_data(call: Call, fields: dict, *, creating: bool) -> tuple[dict, bool | None]:
    """Bitrix24 activity fields → ``create_task``/``update_task`` arguments, and COMPLETED (None: not given)."""
    up = {str(k).upper(): v for k, v in fields.items()}
    data: dict = {}
    if "SUBJECT" in up or creating:
        subject = str(up.get("SUBJECT") or "").strip()
        if not subject:
            raise B24Error("The field SUBJECT is not defined or empty.")
        data["title"] = subject[:255]
    if "DESCRIPTION" in up:
        data["description"] = "" if up["DESCRIPTION"] is None else str(up["DESCRIPTION"])
    deadline = next((up[k] for k in ("DEADLINE", "END_TIME") if up.get(k) not in (None, "")), None)
    if deadline is not None:
        data["deadline"] = V.parse_dt(deadline)
    if up.get("RESPONSIBLE_ID") not in (None, "", "0", 0):
        try:
            data["responsible"] = int(str(up["RESPONSIBLE_ID"]))
        except ValueError:
            raise B24Error("The field RESPONSIBLE_ID is not valid.") from None
    if creating:
        owner_type, owner_id = up.get("OWNER_TYPE_ID"), up.get("OWNER_ID")
        bindings = up.get("BINDINGS")
        if owner_id in (None, "") and isinstance(bindings, list | dict) and bindings:
            first = next(iter(bindings.values() if isinstance(bindings, dict) else bindings))
            if isinstance(first, dict):
                first = {str(k).upper(): v for k, v in first.items()}
                owner_type, owner_id = first.get("OWNER_TYPE_ID"), first.get("OWNER_ID")
        if owner_id in (None, "") or owner_type in (None, ""):
            raise B24Error("The field OWNER_ID is not defined or invalid.")
        try:
            data["entity_type_id"], data["entity_id"] = int(str(owner_type)), int(str(owner_id))
        except ValueError:
            raise B24Error("The field OWNER_ID is not defined or invalid.") from None
        if (data["entity_type_id"] not in crm.BY_TYPE and data["entity_type_id"] not in _visible_smart(call)) or \
                not records_visible_to(call.actor, data["entity_type_id"]).filter(pk=data["entity_id"]).exists():
            raise B24Error("Owner is not found.")
    completed = None
    if "COMPLETED" in up:
        completed = str(up["COMPLETED"]).strip().upper() in ("Y", "1", "TRUE")
    elif str(up.get("STATUS") or "") == "2":
        completed = True
    return data, completed


def _visible_smart(call: Call) -> dict:
    from .smart import visible_types

    return visible_types(call)


@method("crm.activity.add")
def activity_add(call: Call, params: dict) -> int:
    data, completed = _activity_data(call, P.mapping(params, "fields"), creating=True)
    try:
        task = activities.create_task(call.actor, **data)
        if completed:  # a call or meeting that already happened is logged as a done task
            activities.complete_task(call.actor, task.pk)
    except ActionError as exc:
        raise from_action(exc) from None
    return task.pk


def _visible_task(call: Call, params: dict) -> Task:
    task = _visible_tasks(call).filter(pk=P.entity_id(params)).first()
    if task is None:
        raise B24Error("Not found")
    return task


@method("crm.activity.update")
def activity_update(call: Call, params: dict) -> bool:
    task = _visible_task(call, params)
    data, completed = _activity_data(call, P.mapping(params, "fields"), creating=False)
    try:
        if data and task.status == Task.Status.OPEN:
            activities.update_task(call.actor, task.pk, **data)
        if completed and task.status == Task.Status.OPEN:
            activities.complete_task(call.actor, task.pk)
    except ActionError as exc:
        raise from_action(exc) from None
    return True


@method("crm.activity.delete")
def activity_delete(call: Call, params: dict) -> bool:
    """Voronka keeps its tasks (the record's history refers to them): an open one is cancelled."""
    task = _visible_task(call, params)
    if task.status == Task.Status.OPEN:
        try:
            activities.cancel_task(call.actor, task.pk)  # the history names the Bitrix24 API as the entry point
        except ActionError as exc:
            raise from_action(exc) from None
    return True
