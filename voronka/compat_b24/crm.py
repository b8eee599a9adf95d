"""``crm.{lead,deal,contact,company}.*``: add, get, update, delete, list, fields, with Bitrix24's field names.

Each entity maps Bitrix24's UPPER_CASE fields onto Voronka's model fields. Writes go through the domain
actions (so rights, validation, history with the ``b24`` entry point, events and robots are the same as
anywhere else), reads through the selectors that apply the caller's rights.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.errors import ActionError
from voronka.core.selectors import get_record_for, records_visible_to
from voronka.deals import actions as deals
from voronka.leads import actions as leads
from voronka.parties import actions as parties
from voronka.parties.communications import DEFAULT_TYPE, KEYS, TYPES, empty, normalize, values_of
from voronka.parties.models import Communication
from voronka.pipelines.models import Pipeline, Stage

from . import params as P
from . import values as V
from .errors import B24Error, from_action
from .registry import Call, ListResult, method

PAGE = 50

# --- multi-fields ------------------------------------------------------------------------------------

MULTI = {"PHONE": "phone", "EMAIL": "email", "IM": "im", "WEB": "web"}
DATA_KEY = {kind: key for key, kind in KEYS.items()}  # phone → phones, im → messengers …
# Bitrix24's VALUE_TYPE → Voronka's type, per kind (unknown types get the kind's default)
_TYPE_IN = {
    "phone": {"WORK": "work", "MOBILE": "mobile", "HOME": "home", "FAX": "fax", "PAGER": "other", "MAILING": "other",
              "OTHER": "other"},
    "email": {"WORK": "work", "HOME": "home", "MAILING": "other", "OTHER": "other"},
    "im": {t.upper(): t for t in TYPES["im"]},
    "web": {t.upper(): t for t in TYPES["web"]} | {"FACEBOOK": "other", "INSTAGRAM": "other"},
}


def multi_out(comms: list, b24_type: str) -> list[dict]:
    return [{"ID": str(c.pk), "VALUE_TYPE": c.value_type.upper(), "VALUE": c.value, "TYPE_ID": b24_type}
            for c in comms]


def merge_multi(existing: list, items: Any, b24_type: str) -> list[dict]:
    """Apply Bitrix24's multi-field rules to the stored values; the result is the full new list.

    No ID: append (empty VALUE skipped); ID: change that value; ID with DELETE=Y or an empty VALUE:
    remove it; values not mentioned are kept.
    """
    if isinstance(items, dict):
        items = list(items.values())
    if isinstance(items, str):
        items = [{"VALUE": items}]
    if not isinstance(items, list):
        raise B24Error(f"Field {b24_type} must be an array.")
    current = [{"id": c.pk, "value": c.value, "type": c.value_type} for c in existing]
    kind = MULTI[b24_type]
    default_type = DEFAULT_TYPE[kind]
    for item in items:
        if isinstance(item, str):
            item = {"VALUE": item}
        if not isinstance(item, dict):
            continue
        item = {str(k).upper(): v for k, v in item.items()}
        raw_id = item.get("ID")
        try:
            item_id = int(str(raw_id)) if raw_id not in (None, "") else 0
        except ValueError:
            item_id = 0
        value = item.get("VALUE")
        value = "" if value is None else str(value).strip()
        given = str(item.get("VALUE_TYPE") or "").strip().upper()
        vtype = _TYPE_IN[kind].get(given) or (default_type if given else None)
        if item_id > 0:
            target = next((c for c in current if c["id"] == item_id), None)
            if target is None:
                continue
            if P.flag(item.get("DELETE", "N")) or not value:
                current.remove(target)
            else:
                target["value"] = value
                if vtype:
                    target["type"] = vtype
        elif value:
            current.append({"id": None, "value": value, "type": vtype or default_type})
    return [{"value": c["value"], "type": c["type"]} for c in current]


# --- entity descriptions -----------------------------------------------------------------------------

@dataclass
class Field:
    name: str
    type: str = "string"
    read: Callable[[Any, Call], Any] | None = None
    write: str | None = None  # the Voronka key an add/update writes
    to_in: Callable[[Any, Call], Any] | None = None
    orm: str | None = None  # for filter and order
    kind: str = "text"  # how filter values are read: text, int, money, datetime, date, flag, code
    readonly: bool = False
    immutable: bool = False
    required: bool = False
    status_type: str | None = None
    title: str = ""


def _attr(name: str, fmt=V.out_text):
    return lambda obj, call: fmt(getattr(obj, name))


def text(name: str, attr: str, **kw) -> Field:
    return Field(name, "string", _attr(attr), write=attr, orm=attr, **kw)


def fk(name: str, attr: str, type_: str, **kw) -> Field:
    return Field(name, type_, _attr(f"{attr}_id", V.out_id), write=None if kw.get("readonly") else attr,
                 to_in=_to_id, orm=f"{attr}_id", kind="int", **kw)


def _to_id(value, call):
    if value in (None, "", "0", 0):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise B24Error(f"Invalid id: {value}") from None


def _to_money(value, call):
    if value in (None, ""):
        return "0"
    try:
        return str(decimal.Decimal(str(value).replace(",", ".")))
    except decimal.InvalidOperation:
        raise B24Error(f"Invalid number: {value}") from None


def _to_flag(value, call):
    return P.flag(value) if not isinstance(value, str) else value.strip().upper() in ("Y", "1", "TRUE")


def _to_date(value, call):
    if value in (None, ""):
        return None
    text_value = str(value).strip()
    if len(text_value) >= 10 and text_value[4] == "-" and text_value[7] == "-":
        try:
            return dt.date(int(text_value[:4]), int(text_value[5:7]), int(text_value[8:10])).isoformat()
        except ValueError:
            raise B24Error(f"Invalid date: {text_value}") from None
    return V.parse_date(text_value).isoformat()


def _upper_code(value) -> str | None:
    return value.upper() if value else None


def _source_in(value, call):
    return "" if value in (None, "") else str(value).strip().lower()[:50]


def stage_code(stage: Stage) -> str:
    return stage.code.upper().replace("-", "_")


def _semantic(value: str) -> str:
    return {"success": "S", "failure": "F"}.get(value, "P")


@dataclass
class Entity:
    type_id: int
    name: str  # LEAD, DEAL …
    spec: Any
    create: Callable
    create_many: Callable
    update: Callable
    delete: Callable
    fields: list[Field]
    missing: str  # the legacy "not found" text of update/delete
    multi: bool = False
    staged: bool = False
    by_name: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {f.name: f for f in self.fields}


# pipelines and stages of a staged type, loaded once per call

def stages_of(call: Call, type_id: int) -> dict:
    key = ("stages", type_id)
    if key not in call.cache:
        pipelines = list(Pipeline.objects.filter(entity_type_id=type_id).order_by("sort", "id"))
        active = [p for p in pipelines if p.is_active]
        default = next((p for p in active if p.is_default), active[0] if active else None)
        stages = list(Stage.objects.filter(pipeline__entity_type_id=type_id).order_by("pipeline_id", "sort", "id"))
        call.cache[key] = {"pipelines": {p.pk: p for p in pipelines}, "default": default,
                           "stages": {s.pk: s for s in stages}}
    return call.cache[key]


def category_id(call: Call, type_id: int, pipeline_id: int) -> int:
    """Bitrix24's category id of a pipeline: the default deal (and lead) pipeline is 0; smart processes use the
    real id of every pipeline, the default one included (as Bitrix24 does for its dynamic types)."""
    if type_id >= entity_types.FIRST_DYNAMIC:
        return pipeline_id
    info = stages_of(call, type_id)
    return 0 if info["default"] is not None and info["default"].pk == pipeline_id else pipeline_id


def dynamic_stage_id(call: Call, type_id: int, stage: Stage) -> str:
    """A smart-process stage as Bitrix24 names it: ``DT<entityTypeId>_<categoryId>:<CODE>``."""
    return f"DT{type_id}_{stage.pipeline_id}:{stage_code(stage)}"


def pipeline_for_category(call: Call, type_id: int, value) -> int:
    info = stages_of(call, type_id)
    try:
        cat = int(str(value))
    except ValueError:
        raise B24Error("Category not found.") from None
    if cat == 0:
        if info["default"] is None:
            raise B24Error("Category not found.")
        return info["default"].pk
    if cat not in info["pipelines"]:
        raise B24Error("Category not found.")
    return cat


def deal_stage_id(obj, call: Call) -> str:
    stage = stages_of(call, entity_types.DEAL)["stages"].get(obj.stage_id)
    if stage is None:
        return ""
    cat = category_id(call, entity_types.DEAL, obj.pipeline_id)
    return stage_code(stage) if cat == 0 else f"C{cat}:{stage_code(stage)}"


def find_stage(call: Call, type_id: int, pipeline_id: int | None, value) -> Stage:
    """A stage by Bitrix24 id (``NEW``, ``C3:WON``) or Voronka id, in the given (or default) pipeline."""
    info = stages_of(call, type_id)
    text_value = str(value).strip()
    if ":" in text_value and text_value.upper().startswith("DT"):
        prefix, text_value = text_value.split(":", 1)
        owner, _sep, cat = prefix[2:].partition("_")
        if owner != str(type_id) or not cat:
            raise B24Error(f"Stage '{value}' is not found.")
        pipeline_id = pipeline_for_category(call, type_id, cat)
    elif ":" in text_value and text_value.upper().startswith("C"):
        prefix, text_value = text_value.split(":", 1)
        pipeline_id = pipeline_for_category(call, type_id, prefix[1:])
    if pipeline_id is None:
        pipeline_id = info["default"].pk if info["default"] else None
    for stage in info["stages"].values():
        if stage.pipeline_id == pipeline_id and (stage_code(stage) == text_value.upper() or str(stage.pk) == text_value):
            return stage
    raise B24Error(f"Stage '{value}' is not found.")


def lead_status(obj, call: Call) -> str | None:
    stage = stages_of(call, entity_types.LEAD)["stages"].get(obj.stage_id)
    return stage_code(stage) if stage else None


def _stage_filter_value(call: Call, type_id: int, value) -> Any:
    if isinstance(value, list):
        return [_stage_filter_value(call, type_id, v) for v in value]
    try:
        return find_stage(call, type_id, None, value).pk
    except B24Error:
        return -1  # no such stage: matches nothing


COMPANY_TYPES = {"client": "CUSTOMER", "contractor": "SUPPLIER", "partner": "PARTNER", "government": "GOVERNMENT",
                 "other": "OTHER"}
COMPANY_TYPES_IN = {v: k for k, v in COMPANY_TYPES.items()} | {"COMPETITOR": "other", "CLIENT": "client"}


def _company_type_in(value, call):
    return COMPANY_TYPES_IN.get(str(value or "").upper(), "other")


def _common(created_attr="created_at") -> list[Field]:
    return [
        Field("ID", "integer", _attr("pk", V.out_id), orm="id", kind="int", readonly=True, title="ID"),
        fk("ASSIGNED_BY_ID", "responsible", "user", title="Responsible"),
        fk("CREATED_BY_ID", "created_by", "user", readonly=True, title="Created by"),
        Field("DATE_CREATE", "datetime", _attr(created_attr, V.out_datetime), orm=created_attr, kind="datetime",
              readonly=True, title="Created"),
        Field("DATE_MODIFY", "datetime", _attr("updated_at", V.out_datetime), orm="updated_at", kind="datetime",
              readonly=True, title="Modified"),
        Field("OPENED", "char", _attr("is_open", V.out_flag), write="is_open", to_in=_to_flag, orm="is_open",
              kind="flag", title="Available to everyone"),
    ]


def _utm() -> list[Field]:
    return [text(f"UTM_{p.upper()}", f"utm_{p}") for p in ("source", "medium", "campaign", "content", "term")]


def _has(kind: str) -> Field:
    return Field(f"HAS_{kind.upper()}", "char", lambda obj, call, k=kind: V.out_flag(
        getattr(obj, "_b24_comms", {}).get(k)), readonly=True, kind="comm")


def _multi_fields() -> list[Field]:
    return [Field("PHONE", "crm_multifield", kind="phone"), Field("EMAIL", "crm_multifield", kind="email"),
            Field("WEB", "crm_multifield", kind="web"), Field("IM", "crm_multifield", kind="im"),
            _has("phone"), _has("email"), _has_imol()]


def _has_imol() -> Field:
    return Field("HAS_IMOL", "char", lambda obj, call: V.out_flag(getattr(obj, "_b24_imol", False)), readonly=True,
                 kind="comm")


LEAD = Entity(
    entity_types.LEAD, "LEAD", leads.LEAD, leads.create_lead, leads.create_leads, leads.update_lead, leads.delete_lead,
    [*_common(), text("TITLE", "title"), text("NAME", "first_name"), text("LAST_NAME", "last_name"),
     text("SECOND_NAME", "middle_name"), text("COMPANY_TITLE", "company_name"), text("POST", "position"),
     text("ADDRESS", "address"), text("COMMENTS", "comment"), text("SOURCE_DESCRIPTION", "inquiry"),
     Field("SOURCE_ID", "crm_status", _attr("source", _upper_code), write="source", to_in=_source_in, orm="source",
           kind="code", status_type="SOURCE"),
     Field("STATUS_ID", "crm_status", lead_status, write="stage", orm="stage_id", kind="stage", status_type="STATUS"),
     Field("STATUS_SEMANTIC_ID", "string", lambda o, c: _semantic(o.stage_semantics), orm="stage_semantics",
           kind="semantic", readonly=True),
     Field("OPPORTUNITY", "double", _attr("opportunity", V.out_money), write="opportunity", to_in=_to_money,
           orm="opportunity", kind="money"),
     text("CURRENCY_ID", "currency"),
     fk("CONTACT_ID", "contact", "crm_contact"), fk("COMPANY_ID", "company", "crm_company"),
     Field("MOVED_TIME", "datetime", _attr("stage_changed_at", V.out_datetime), orm="stage_changed_at",
           kind="datetime", readonly=True),
     Field("DATE_CLOSED", "datetime", _attr("closed_at", V.out_datetime), orm="closed_at", kind="datetime",
           readonly=True),
     *_utm(), *_multi_fields()],
    missing="Lead is not found", multi=True, staged=True)

DEAL = Entity(
    entity_types.DEAL, "DEAL", deals.DEAL, deals.create_deal, deals.create_deals, deals.update_deal, deals.delete_deal,
    [*_common(), text("TITLE", "title"), text("COMMENTS", "comment"),
     Field("SOURCE_ID", "crm_status", _attr("source", _upper_code), write="source", to_in=_source_in, orm="source",
           kind="code", status_type="SOURCE"),
     Field("CATEGORY_ID", "crm_category", lambda o, c: str(category_id(c, entity_types.DEAL, o.pipeline_id)),
           write="pipeline", orm="pipeline_id", kind="category", immutable=True),
     Field("STAGE_ID", "crm_status", deal_stage_id, write="stage", orm="stage_id", kind="stage",
           status_type="DEAL_STAGE"),
     Field("STAGE_SEMANTIC_ID", "string", lambda o, c: _semantic(o.stage_semantics), orm="stage_semantics",
           kind="semantic", readonly=True),
     Field("CLOSED", "char", lambda o, c: V.out_flag(o.stage_semantics != "process"), readonly=True),
     Field("OPPORTUNITY", "double", _attr("opportunity", V.out_money), write="opportunity", to_in=_to_money,
           orm="opportunity", kind="money"),
     text("CURRENCY_ID", "currency"),
     Field("PROBABILITY", "integer", _attr("probability", V.out_id), write="probability",
           to_in=lambda v, c: None if v in (None, "") else int(str(v)), orm="probability", kind="int"),
     Field("BEGINDATE", "date", _attr("begin_date", V.out_date), write="begin_date", to_in=_to_date,
           orm="begin_date", kind="date"),
     Field("CLOSEDATE", "date", _attr("close_date", V.out_date), write="close_date", to_in=_to_date,
           orm="close_date", kind="date"),
     Field("IS_RETURN_CUSTOMER", "char", _attr("is_repeat", V.out_flag), write="is_repeat", to_in=_to_flag,
           orm="is_repeat", kind="flag"),
     fk("CONTACT_ID", "contact", "crm_contact"), fk("COMPANY_ID", "company", "crm_company"),
     fk("LEAD_ID", "lead", "crm_lead", readonly=True),
     Field("MOVED_TIME", "datetime", _attr("stage_changed_at", V.out_datetime), orm="stage_changed_at",
           kind="datetime", readonly=True),
     *_utm()],
    missing="Not found", staged=True)

CONTACT = Entity(
    entity_types.CONTACT, "CONTACT", parties.CONTACT, parties.create_contact, parties.create_contacts, parties.update_contact,
    parties.delete_contact,
    [*_common(), text("NAME", "first_name"), text("LAST_NAME", "last_name"), text("SECOND_NAME", "middle_name"),
     text("POST", "position"), text("ADDRESS", "address"), text("ADDRESS_CITY", "city"), text("COMMENTS", "comment"),
     Field("SOURCE_ID", "crm_status", _attr("source", _upper_code), write="source", to_in=_source_in, orm="source",
           kind="code", status_type="SOURCE"),
     Field("BIRTHDATE", "date", _attr("birthday", V.out_date), write="birthday", to_in=_to_date, orm="birthday",
           kind="date"),
     fk("COMPANY_ID", "company", "crm_company"), *_multi_fields()],
    missing="Contact is not found", multi=True)

COMPANY = Entity(
    entity_types.COMPANY, "COMPANY", parties.COMPANY, parties.create_company, parties.create_companies, parties.update_company,
    parties.delete_company,
    [*_common(), Field("TITLE", "string", _attr("name"), write="name", orm="name", required=True),
     Field("COMPANY_TYPE", "crm_status", lambda o, c: COMPANY_TYPES.get(o.company_type, "OTHER"), write="company_type",
           to_in=_company_type_in, orm="company_type", kind="company_type", status_type="COMPANY_TYPE"),
     text("INDUSTRY", "industry"), text("EMPLOYEES", "employees"), text("ADDRESS", "actual_address"),
     text("ADDRESS_LEGAL", "legal_address"), text("COMMENTS", "comment"),
     Field("REVENUE", "double", _attr("revenue", V.out_money), write="revenue",
           to_in=lambda v, c: None if v in (None, "") else _to_money(v, c), orm="revenue", kind="money"),
     text("CURRENCY_ID", "currency"),
     Field("SOURCE_ID", "crm_status", _attr("source", _upper_code), write="source", to_in=_source_in, orm="source",
           kind="code", status_type="SOURCE"),
     *_multi_fields()],
    missing="Company is not found", multi=True)

ENTITIES = {e.name.lower(): e for e in (LEAD, DEAL, CONTACT, COMPANY)}
BY_TYPE = {e.type_id: e for e in ENTITIES.values()}


# --- user fields ------------------------------------------------------------------------------------

def uf_name(code: str, type_id: int = 0) -> str:
    """The Bitrix24 name of a custom field: ``UF_CRM_<CODE>``; a smart process's fields carry its type id,
    ``UF_CRM_<entityTypeId>_<CODE>`` (camelCase ``ufCrm<entityTypeId>_<Code>``), as Bitrix24 names them."""
    if type_id >= entity_types.FIRST_DYNAMIC:
        rest = code[7:] if code.startswith("uf_crm_") else code[3:] if code.startswith("uf_") else code
        prefix = f"{type_id}_"
        return "UF_CRM_" + (rest if rest.startswith(prefix) else prefix + rest).upper()
    return code.upper() if code.startswith("uf_crm_") else "UF_CRM_" + code[3:].upper()


def uf_defs(call: Call, type_id: int) -> dict:
    """{UF name: FieldDefinition} of a type."""
    from voronka.customfields.models import FieldDefinition

    key = ("uf", type_id)
    if key not in call.cache:
        call.cache[key] = {uf_name(d.code, type_id): d for d in FieldDefinition.objects.filter(entity_type_id=type_id)}
    return call.cache[key]


def uf_out(defn, value) -> Any:
    if value is None:
        return [] if defn.multiple else None
    if defn.kind == "boolean":
        return "1" if value else "0"
    if isinstance(value, list):
        return [str(v) if not isinstance(v, str) else v for v in value]
    return value if isinstance(value, str) else str(value)


def uf_in(defn, value) -> Any:
    if defn.kind == "boolean" and isinstance(value, str):
        return value.strip().upper() in ("1", "Y", "TRUE")
    if isinstance(value, dict):
        value = list(value.values())
    return value


# --- reading ----------------------------------------------------------------------------------------

def row(entity: Entity, obj, call: Call, select: set[str] | None, comms: dict | None) -> dict:
    """One record in Bitrix24's shape; ``select`` None = everything (get)."""
    obj._b24_comms = {k: bool(v) for k, v in (comms or {}).items()}
    obj._b24_imol = any(c.value_type in ("imol", "openline") for c in (comms or {}).get("im", ()))
    out: dict = {}
    for f in entity.fields:
        if f.read is None or (select is not None and f.name not in select):
            continue
        out[f.name] = f.read(obj, call)
    if entity.multi and comms is not None:
        for b24, kind in MULTI.items():
            if select is None or b24 in select:
                items = comms.get(kind) or []
                if items or select is not None:
                    out[b24] = multi_out(items, b24)
    for name, defn in uf_defs(call, entity.type_id).items():
        if select is None or name in select:
            out[name] = uf_out(defn, (obj.custom or {}).get(defn.code))
    return out


def _select(entity: Entity, names: list[str], call: Call) -> set[str]:
    wanted = {n.upper() for n in names}
    if not wanted or "*" in wanted:
        wanted |= {f.name for f in entity.fields if f.read is not None and f.type != "crm_multifield"}
    if "UF_*" in wanted:
        wanted |= set(uf_defs(call, entity.type_id))
    wanted.add("ID")
    return wanted


def _get(entity: Entity, call: Call, pk: int, not_found: str = "Not found"):
    try:
        return get_record_for(call.actor, entity.type_id, pk)
    except ActionError:
        raise B24Error(not_found) from None


def get(entity: Entity, call: Call, params: dict) -> dict:
    obj = _get(entity, call, P.entity_id(params))
    comms = values_of(entity.type_id, [obj.pk])[obj.pk] if entity.multi else None
    return row(entity, obj, call, None, comms)


# --- filters ----------------------------------------------------------------------------------------

_OPS = ("!=%", "!%=", "=%", "%=", "!%", "!@", "!=", ">=", "<=", "@", "%", "!", ">", "<", "=")


def split_key(key: str) -> tuple[str, str]:
    for op in _OPS:
        if key.startswith(op):
            return op, key[len(op):]
    return "", key


def _convert(f: Field | None, kind: str, value: Any, call: Call, entity: Entity) -> Any:
    if isinstance(value, list):
        return [_convert(f, kind, v, call, entity) for v in value]
    if isinstance(value, dict):
        raise B24Error("Invalid filter value.")
    if kind in ("int", "category"):
        if value in (None, ""):
            return None
        try:
            number = int(str(value).strip())
        except ValueError:
            raise B24Error(f"Invalid filter value: {value}") from None
        if kind == "category":
            return pipeline_for_category(call, entity.type_id, number) if number >= 0 else -1
        return number
    if kind == "money":
        try:
            return decimal.Decimal(str(value).replace(",", "."))
        except decimal.InvalidOperation:
            raise B24Error(f"Invalid filter value: {value}") from None
    if kind == "datetime":
        return V.parse_dt(value)
    if kind == "date":
        return dt.date.fromisoformat(_to_date(value, call)) if value not in (None, "") else None
    if kind == "flag":
        return _to_flag(value, call)
    if kind == "code":
        return str(value).lower()
    if kind == "company_type":
        return _company_type_in(value, call)
    if kind == "stage":
        return _stage_filter_value(call, entity.type_id, value)
    if kind == "semantic":
        return {"S": "success", "F": "failure", "P": "process"}.get(str(value).upper(), str(value))
    return "" if value is None else str(value)


def _like(path: str, pattern: str) -> Q:
    core = pattern.strip("%")
    if pattern.startswith("%") and pattern.endswith("%") and len(pattern) > 1:
        return Q(**{f"{path}__icontains": core})
    if pattern.startswith("%"):
        return Q(**{f"{path}__iendswith": core})
    if pattern.endswith("%"):
        return Q(**{f"{path}__istartswith": core})
    return Q(**{f"{path}__iexact": core})


def _lookup_forms(kind: str, value: str) -> set[str]:
    """The normalised forms a filter value may be stored under (a messenger handle: as Telegram's or not)."""
    text_value = str(value).strip()
    forms = {text_value.lower()}
    for value_type in (("other", "telegram", "whatsapp") if kind == "im" else ("other",)):
        try:
            forms.add(normalize(kind, text_value, value_type))
        except Exception:
            pass
    return forms


def _comm_q(entity: Entity, kind: str, op: str, value: Any) -> Q:
    values = value if isinstance(value, list) else [value]
    comms = Communication.objects.filter(entity_type_id=entity.type_id, kind=kind)
    if "%" in op:
        comms = comms.filter(Q(*[Q(normalized__icontains=str(v).strip().lower().lstrip("+@")) for v in values],
                               _connector=Q.OR))
    else:
        comms = comms.filter(normalized__in=sorted(set().union(*[_lookup_forms(kind, v) for v in values])))
    return Q(pk__in=comms.values("entity_id"))


def is_group(key: Any, value: Any) -> bool:
    """A nested filter group: ``{"0": {"logic": "OR", "0": {…}, "1": {…}}}`` (a numeric key or a ``logic`` inside)."""
    return isinstance(value, dict) and (str(key).isdigit() or any(str(k).lower() == "logic" for k in value))


MAX_GROUP_DEPTH = 5


def filter_q(entity: Entity, call: Call, raw: dict, depth: int = 0) -> Q:
    """The conditions of a filter joined by AND, or by OR when the group says ``"logic": "OR"``; groups nest."""
    if depth > MAX_GROUP_DEPTH:
        raise B24Error("Filter groups are nested too deeply.", "INVALID_ARG_VALUE")
    logic = next((str(v).strip().upper() for k, v in raw.items() if str(k).lower() == "logic"), "AND")
    if logic not in ("AND", "OR"):
        raise B24Error(f"Invalid filter logic: {logic}", "INVALID_ARG_VALUE")
    parts = []
    for key, value in raw.items():
        if str(key).lower() == "logic":
            continue
        if is_group(key, value):
            parts.append(filter_q(entity, call, value, depth + 1))
        else:
            part = _condition(entity, call, key, value)
            if part is not None:
                parts.append(part)
    if not parts:
        return Q()
    return Q(*parts, _connector=Q.OR) if logic == "OR" else Q(*parts)


def _condition(entity: Entity, call: Call, key: Any, value: Any) -> Q | None:
    ufs = uf_defs(call, entity.type_id)
    if not isinstance(key, str):
        return None
    op, name = split_key(key.strip())
    name = name.upper()
    negate = op.startswith("!")
    if name in MULTI:
        part = _comm_q(entity, MULTI[name], op, value)
    elif name in ufs:
        path = f"custom__{ufs[name].code}"
        part = Q(**{f"{path}__in": value}) if isinstance(value, list) else Q(**{path: uf_in(ufs[name], value)})
    else:
        f = entity.by_name.get(name)
        if f is None or f.orm is None:
            return None  # unknown fields are dropped, as Bitrix24 does
        value = _convert(f, f.kind, value, call, entity)
        path = f.orm
        base = op.lstrip("!")
        if base in ("", "=", "@"):
            if isinstance(value, list):
                part = Q(**{f"{path}__in": [v for v in value if v is not None]})
            elif value is None or (value == "" and f.kind != "text"):
                part = Q(**{f"{path}__isnull": True})
            else:
                part = Q(**{path: value})
        elif base in (">", ">=", "<", "<="):
            if isinstance(value, list) or value is None:
                raise B24Error(f"Invalid filter value for {key}.")
            lookup = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[base]
            part = Q(**{f"{path}__{lookup}": value})
        elif base in ("%", "=%", "%="):
            if f.kind != "text":  # LIKE on ids and codes is an equality
                part = Q(**{f"{path}__in": value}) if isinstance(value, list) else Q(**{path: value})
            elif base == "%":
                part = Q(**{f"{path}__icontains": str(value).replace("%", "")})
            else:
                part = _like(path, str(value))
        else:
            return None
    return ~part if negate else part


def _order(entity: Entity, raw: dict) -> list[str]:
    ordering = []
    for key, direction in raw.items():
        f = entity.by_name.get(str(key).upper())
        if f is None or f.orm is None:
            continue
        desc = str(direction).strip().upper() == "DESC"
        ordering.append(f"-{f.orm}" if desc else f.orm)
    if not any(o.lstrip("-") == "id" for o in ordering):
        ordering.append("id")
    return ordering


def _walk(entity: Entity, call: Call, params: dict, ordering: list[str]) -> dict | None:
    """What the earlier pages of the same list told in this request (a batch runs its commands one after
    another in one request): where each page ended and the total. Only lists ordered by ID have a keyset."""
    if ordering not in (["id"], ["-id"]):
        return None
    import json

    key = ("pages", entity.type_id, ordering[0], json.dumps(P.mapping(params, "filter"), sort_keys=True, default=str))
    return call.cache.setdefault(key, {"ends": {}, "total": None})


def forget_pages(call: Call) -> None:
    """A write ran in the batch: page boundaries and totals read before it may be wrong now."""
    for key in [k for k in call.cache if isinstance(k, tuple) and k and k[0] == "pages"]:
        del call.cache[key]


def listing(entity: Entity, call: Call, params: dict) -> ListResult:
    """One page of 50. Deep pages are cheap inside a batch (fast-bitrix24 ``get_all`` and b24pysdk ``as_list``
    send 50 pages of one list per batch): in ID order a page starts after the last id of the page before it
    (a keyset) instead of skipping ``start`` rows, and the total is counted once per batch, not per page."""
    select = _select(entity, P.names(params, "select"), call)
    qs = records_visible_to(call.actor, entity.type_id).filter(filter_q(entity, call, P.mapping(params, "filter")))
    ordering = _order(entity, P.mapping(params, "order"))
    qs = qs.order_by(*ordering)
    start = call.start
    no_count = start < 0
    offset = 0 if no_count else (start // PAGE) * PAGE
    walk = None if no_count else _walk(entity, call, params, ordering)
    if walk is not None and offset in walk["ends"]:
        after = walk["ends"][offset]
        rows = list(qs.filter(**{"pk__gt" if ordering == ["id"] else "pk__lt": after})[:PAGE])
    else:
        rows = list(qs[offset:offset + PAGE])
    if walk is not None and len(rows) == PAGE:
        walk["ends"][offset + PAGE] = rows[-1].pk
    _check_export(entity, call, params, offset, len(rows), no_count)
    comms = None
    if entity.multi and select & {*MULTI, "HAS_PHONE", "HAS_EMAIL", "HAS_IMOL"}:  # else not read at all
        comms = values_of(entity.type_id, [o.pk for o in rows])
    result = [row(entity, o, call, select, comms[o.pk] if comms is not None else None) for o in rows]
    if no_count:
        return ListResult(result)
    if len(rows) < PAGE and (rows or offset == 0):
        total = offset + len(rows)
    elif walk is not None and walk["total"] is not None and walk["total"] >= offset + len(rows):
        total = walk["total"]
    else:
        total = qs.count()
    if walk is not None:
        walk["total"] = total
    nxt = offset + len(rows) if offset + len(rows) < total else None
    return ListResult(result, total=total, next=nxt)


def _check_export(entity: Entity, call: Call, params: dict, offset: int, count: int, no_count: bool) -> None:
    """Reading a list past VORONKA_EXPORT_THRESHOLD rows is an export, as in the native API: it needs the
    export right, and crossing the line is audited. In the no-count mode (``start=-1`` with ``>ID``) the rows
    already read are those up to that id."""
    from django.conf import settings

    from voronka.core import audit, policies

    threshold = settings.VORONKA_EXPORT_THRESHOLD
    may_export = policies.can(call.actor, policies.EXPORT, entity.type_id)
    seen = offset
    if no_count:
        if may_export:
            return
        after = None
        for key, value in P.mapping(params, "filter").items():
            op, name = split_key(str(key))
            if name.upper() == "ID" and op in (">", ">="):
                try:
                    after = int(str(value))
                except ValueError:
                    after = None
        if after is None:
            return
        seen = records_visible_to(call.actor, entity.type_id).filter(pk__lte=after).count()
    if seen + count <= threshold:
        return
    if not may_export:
        raise B24Error(_("Access denied. Reading more than %(n)s records of a list is an export and needs the "
                         "export right.") % {"n": threshold})
    if seen < threshold:
        audit.record(call.actor, "records.listed_past_threshold", entity_type_id=entity.type_id, count=seen + count,
                     threshold=threshold)


# --- writing ----------------------------------------------------------------------------------------

def to_data(entity: Entity, call: Call, fields: dict, *, creating: bool, obj=None) -> dict:
    """Bitrix24 fields → the keyword arguments of the Voronka action. Unknown and read-only keys are dropped."""
    data: dict = {}
    custom: dict = {}
    ufs = uf_defs(call, entity.type_id)
    upper = {str(k).upper(): v for k, v in fields.items()}
    for name, value in upper.items():
        if name in ufs:
            custom[ufs[name].code] = uf_in(ufs[name], value)
            continue
        if name in MULTI and entity.multi:
            continue
        f = entity.by_name.get(name)
        if f is None or f.readonly or f.write is None or (f.immutable and not creating):
            continue
        if f.write in ("stage", "pipeline"):
            continue  # resolved below, together
        if isinstance(value, dict | list) and f.type != "crm_multifield":
            raise B24Error(f"Field {name} must be a scalar value.")
        data[f.write] = f.to_in(value, call) if f.to_in else ("" if value is None else str(value))
    if entity.staged:
        pipeline_id = obj.pipeline_id if obj is not None else None
        category = entity.by_name.get("CATEGORY_ID")
        movable = category is not None and not category.immutable  # smart processes: categoryId may change
        if upper.get("CATEGORY_ID") not in (None, "") and entity is not LEAD and (creating or movable):
            pipeline_id = pipeline_for_category(call, entity.type_id, upper["CATEGORY_ID"] or 0)
            data["pipeline"] = pipeline_id
        stage_key = "STATUS_ID" if entity is LEAD else "STAGE_ID"
        if upper.get(stage_key) not in (None, ""):
            stage = find_stage(call, entity.type_id, pipeline_id, upper[stage_key])
            if obj is not None and movable and "pipeline" not in data:
                data["pipeline"] = stage.pipeline_id  # a stage id names its category (DT1030_8:NEW)
            elif obj is not None and stage.pipeline_id != pipeline_id:
                raise B24Error("The stage belongs to another category.")
            data["stage"] = stage.pk
            data.setdefault("pipeline", stage.pipeline_id) if creating else None
    if entity.multi:
        existing = values_of(entity.type_id, [obj.pk])[obj.pk] if obj is not None else empty()
        for b24, kind in MULTI.items():
            if b24 in upper:
                data[DATA_KEY[kind]] = merge_multi(existing[kind], upper[b24], b24)
    if custom:
        data["custom"] = custom
    return data


def _contact_ids_in(entity: Entity, fields: dict) -> list[int] | None:
    """``CONTACT_IDS`` of a deal or lead (write-only, as in Bitrix24): all its contacts, the first primary."""
    if entity not in (DEAL, LEAD):
        return None
    raw = next((v for k, v in fields.items() if str(k).upper() == "CONTACT_IDS"), None)
    if raw is None:
        return None
    values = list(raw.values()) if isinstance(raw, dict) else raw if isinstance(raw, list) else [raw]
    ids = []
    for value in values:
        if value in (None, "", "0", 0):
            continue
        try:
            ids.append(int(str(value)))
        except ValueError:
            raise B24Error(f"Invalid id: {value}") from None
    return ids


def _set_contacts(entity: Entity, call: Call, pk: int, ids: list[int] | None) -> None:
    if ids is not None:
        from .extras import set_contacts

        set_contacts(entity, call, pk, ids)


def add(entity: Entity, call: Call, params: dict) -> int:
    from django.db import transaction

    fields = P.mapping(params, "fields")
    data = to_data(entity, call, fields, creating=True)
    contacts = _contact_ids_in(entity, fields)
    if contacts:
        data["contact"] = contacts[0]
    with transaction.atomic():
        obj = entity.create(call.actor, **data)
        _set_contacts(entity, call, obj.pk, contacts)
    return obj.pk


def add_many(entity: Entity, call: Call, many: list[dict]) -> list:
    """Several ``add`` commands of one batch written together (one transaction, one bulk insert).

    Returns, per command, the new id or the ``B24Error`` it failed with; a bad item writes nothing of itself
    and does not hold back the others, exactly as separate ``add`` calls would behave.
    """
    out: list = [None] * len(many)
    valid: list[tuple[int, dict]] = []
    for index, params in enumerate(many):
        try:
            valid.append((index, to_data(entity, call, P.mapping(params, "fields"), creating=True)))
        except B24Error as exc:
            out[index] = exc
    if valid:
        results = entity.create_many(call.actor, [data for _i, data in valid])
        for (index, _data), result in zip(valid, results, strict=True):
            out[index] = result.obj.pk if result.ok else from_action(result.error)
    return out


def update(entity: Entity, call: Call, params: dict) -> bool:
    pk = P.entity_id(params)
    fields = P.mapping(params, "fields")
    obj = _get(entity, call, pk, entity.missing)
    data = to_data(entity, call, fields, creating=False, obj=obj)
    contacts = _contact_ids_in(entity, fields)
    if data or contacts is not None:
        from django.db import transaction

        try:
            with transaction.atomic():
                if data:
                    entity.update(call.actor, pk, **data)
                _set_contacts(entity, call, pk, contacts)
        except ActionError as exc:
            raise from_action(exc, entity.missing) from None
    return True


def delete(entity: Entity, call: Call, params: dict) -> bool:
    pk = P.entity_id(params)
    _get(entity, call, pk, entity.missing)
    try:
        entity.delete(call.actor, pk)
    except ActionError as exc:
        raise from_action(exc, entity.missing) from None
    return True


def describe(f: Field) -> dict:
    d = {"type": f.type, "isRequired": f.required, "isReadOnly": f.readonly, "isImmutable": f.immutable,
         "isMultiple": f.type == "crm_multifield", "isDynamic": False, "title": f.title or f.name}
    if f.status_type:
        d["statusType"] = f.status_type
    return d


def fields_of(entity: Entity, call: Call, params: dict) -> dict:
    out = {f.name: describe(f) for f in entity.fields}
    for name, defn in uf_defs(call, entity.type_id).items():
        out[name] = {"type": UF_TYPES.get(defn.kind, "string"), "isRequired": defn.required, "isReadOnly": False,
                     "isImmutable": False, "isMultiple": defn.multiple, "isDynamic": True, "title": name,
                     "listLabel": defn.label, "formLabel": defn.label, "filterLabel": defn.label}
        if defn.kind == "enum":
            out[name]["items"] = [{"ID": str(c["id"]), "VALUE": c.get("label", "")}
                                  for c in defn.options.get("choices", [])]
    return out


UF_TYPES = {"string": "string", "text": "string", "integer": "integer", "decimal": "double", "money": "money",
            "date": "date", "datetime": "datetime", "boolean": "boolean", "enum": "enumeration", "user": "employee",
            "link": "crm"}


def _register(entity: Entity) -> None:
    n = entity.name.lower()
    method(f"crm.{n}.add")(lambda call, params: add(entity, call, params))
    method(f"crm.{n}.get")(lambda call, params: get(entity, call, params))
    method(f"crm.{n}.update")(lambda call, params: update(entity, call, params))
    method(f"crm.{n}.delete")(lambda call, params: delete(entity, call, params))
    method(f"crm.{n}.list")(lambda call, params: listing(entity, call, params))
    method(f"crm.{n}.fields")(lambda call, params: fields_of(entity, call, params))


for _entity in ENTITIES.values():
    _register(_entity)
