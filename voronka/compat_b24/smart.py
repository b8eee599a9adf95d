"""Smart processes through the facade: ``crm.item.*`` for their entity type ids and ``crm.type.list/get``.

A smart process of Voronka (``voronka.items``, type ids from 1030) is described here as a ``crm.Entity``
built at run time from the entity-type registry, so ``crm.item.*`` serves it with the same code as deals:
writes through ``voronka.items.actions``, reads through the selectors with the caller's rights. Stage ids
are Bitrix24's ``DT<entityTypeId>_<categoryId>:<CODE>``, category ids are the real pipeline ids, custom
fields are ``UF_CRM_<entityTypeId>_<CODE>`` (``ufCrm<entityTypeId>_<Code>`` in camelCase).

A type the caller may not read items of does not exist for them (``NOT_FOUND`` "Smart process not found"),
as in the native API: neither its items nor its name leak.
"""

from __future__ import annotations

from voronka.core import entity_types, policies
from voronka.items import actions as items
from voronka.items.models import SmartItem, SmartType

from . import crm
from . import params as P
from . import values as V
from .errors import B24Error
from .registry import Call, ListResult, method

SETTINGS = items.SETTINGS


def _stage_id(type_id: int):
    def read(obj, call: Call) -> str:
        stage = crm.stages_of(call, type_id)["stages"].get(obj.stage_id)
        return crm.dynamic_stage_id(call, type_id, stage) if stage is not None else ""
    return read


def _fields(type_id: int, links: tuple[str, ...]) -> list[crm.Field]:
    F = crm.Field
    out = [
        *crm._common(), crm.text("TITLE", "title"), crm.text("COMMENTS", "comment"),
        F("SOURCE_ID", "crm_status", crm._attr("source", crm._upper_code), write="source", to_in=crm._source_in,
          orm="source", kind="code", status_type="SOURCE"),
        F("CATEGORY_ID", "crm_category", lambda o, c: str(o.pipeline_id), write="pipeline", orm="pipeline_id",
          kind="category"),  # an item moves into another category by update, as in Bitrix24
        F("STAGE_ID", "crm_status", _stage_id(type_id), write="stage", orm="stage_id", kind="stage",
          status_type=f"DYNAMIC_{type_id}_STAGE"),
        F("STAGE_SEMANTIC_ID", "string", lambda o, c: crm._semantic(o.stage_semantics), orm="stage_semantics",
          kind="semantic", readonly=True),
        F("CLOSED", "char", lambda o, c: V.out_flag(o.stage_semantics != "process"), readonly=True),
        F("OPPORTUNITY", "double", crm._attr("opportunity", V.out_money), write="opportunity", to_in=crm._to_money,
          orm="opportunity", kind="money"),
        crm.text("CURRENCY_ID", "currency"),
        F("BEGINDATE", "date", crm._attr("begin_date", V.out_date), write="begin_date", to_in=crm._to_date,
          orm="begin_date", kind="date"),
        F("CLOSEDATE", "date", crm._attr("close_date", V.out_date), write="close_date", to_in=crm._to_date,
          orm="close_date", kind="date"),
        F("MOVED_TIME", "datetime", crm._attr("stage_changed_at", V.out_datetime), orm="stage_changed_at",
          kind="datetime", readonly=True),
    ]
    if "contact" in links:
        out.append(crm.fk("CONTACT_ID", "contact", "crm_contact"))
    if "company" in links:
        out.append(crm.fk("COMPANY_ID", "company", "crm_company"))
    return out


def visible_types(call: Call) -> dict[int, SmartType]:
    """The smart processes (not lists) the caller may read items of; every one for settings administrators."""
    key = ("smart_types",)
    if key not in call.cache:
        admin = policies.can(call.actor, SETTINGS, 0)
        registered = {i.id for i in entity_types.all_types() if i.dynamic and i.model is SmartItem}
        call.cache[key] = {t.id: t for t in SmartType.objects.filter(kind=SmartType.Kind.PROCESS)
                           if t.id in registered and (admin or policies.can(call.actor, policies.READ, t.id))}
    return call.cache[key]


def entity(call: Call, type_id: int) -> crm.Entity | None:
    """The ``crm.Entity`` of a smart process the caller may see, else None."""
    key = ("smart_entity", type_id)
    if key not in call.cache:
        t = visible_types(call).get(type_id)
        call.cache[key] = None if t is None else _build(t)
    return call.cache[key]


def _build(t: SmartType) -> crm.Entity:
    tid = t.id
    return crm.Entity(
        tid, f"DYNAMIC_{tid}", entity_types.spec_for(tid),
        lambda actor, **data: items.create_item(actor, tid, **data),
        lambda actor, many: items.create_items(actor, tid, many),
        lambda actor, pk, **data: items.update_item(actor, tid, pk, **data),
        lambda actor, pk: items.delete_item(actor, tid, pk),
        _fields(tid, tuple(t.links or ())), missing="Not found", staged=True)


# --- crm.type.* ----------------------------------------------------------------------------------------

def type_row(call: Call, t: SmartType) -> dict:
    links = set(t.links or ())
    return {"id": t.id, "entityTypeId": t.id, "title": t.name, "code": t.code, "createdBy": None,
            "createdTime": V.out_datetime(t.created_at), "updatedTime": V.out_datetime(t.updated_at),
            "isCategoriesEnabled": "Y", "isStagesEnabled": "Y", "isBeginCloseDatesEnabled": "Y",
            "isClientEnabled": "Y" if links else "N", "isLinkWithProductsEnabled": "N", "isMycompanyEnabled": "N",
            "isDocumentsEnabled": "N", "isSourceEnabled": "Y", "isUseInUserfieldEnabled": "N",
            "isObserversEnabled": "N", "isRecyclebinEnabled": "Y", "isAutomationEnabled": "Y",
            "isBizProcEnabled": "N", "isSetOpenPermissions": "Y", "isPaymentsEnabled": "N",
            "isCountersEnabled": "N", "customSectionId": None, "relations": {}}


@method("crm.type.list")
def type_list(call: Call, params: dict) -> ListResult:
    rows = [type_row(call, t) for t in sorted(visible_types(call).values(), key=lambda t: (t.sort, t.id))]
    filt = {str(k).lstrip("=").lower(): v for k, v in P.mapping(params, "filter").items()}
    for key, value in filt.items():
        wanted = {str(v) for v in value} if isinstance(value, list) else {str(value)}
        name = {"entitytypeid": "entityTypeId", "id": "id", "title": "title", "code": "code"}.get(key)
        if name is not None:
            rows = [r for r in rows if str(r[name]) in wanted]
    start = max(call.start, 0) // crm.PAGE * crm.PAGE
    page = rows[start:start + crm.PAGE]
    nxt = start + len(page) if start + len(page) < len(rows) else None
    return ListResult({"types": page}, total=len(rows), next=nxt)


def _type(call: Call, value) -> SmartType:
    try:
        type_id = int(str(value).strip())
    except (TypeError, ValueError):
        raise B24Error("Smart process not found", "NOT_FOUND") from None
    t = visible_types(call).get(type_id)
    if t is None:
        raise B24Error("Smart process not found", "NOT_FOUND")
    return t


@method("crm.type.get")
def type_get(call: Call, params: dict) -> dict:
    return {"type": type_row(call, _type(call, P.get(params, "id")))}


@method("crm.type.getbyentitytypeid")
def type_get_by_entity_type_id(call: Call, params: dict) -> dict:
    return {"type": type_row(call, _type(call, P.get(params, "entityTypeId")))}


@method("crm.type.fields")
def type_fields(call: Call, params: dict) -> dict:
    def d(type_, ro=False, req=False):
        return {"type": type_, "isRequired": req, "isReadOnly": ro, "isImmutable": ro, "isMultiple": False,
                "isDynamic": False}
    return {"fields": {"id": d("integer", ro=True), "entityTypeId": d("integer", ro=True),
                       "title": d("string", req=True), "code": d("string", ro=True),
                       "createdTime": d("datetime", ro=True), "updatedTime": d("datetime", ro=True),
                       "isClientEnabled": d("boolean")}}
