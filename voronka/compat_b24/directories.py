"""Directories and pipelines: ``crm.status.*``, ``crm.category.*``, ``crm.dealcategory.*``, ``crm.stagehistory.list``.

Stage directories are the stages of Voronka's pipelines: ``STATUS`` = lead stages of the default lead pipeline,
``DEAL_STAGE`` = deal stages of the default deal pipeline (category 0), ``DEAL_STAGE_<n>`` = another deal pipeline.
``SOURCE`` lists the lead sources; the other classic directories are fixed lists.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.errors import ActionError
from voronka.core.selectors import records_visible_to
from voronka.leads.models import Source
from voronka.pipelines import actions as pipeline_actions
from voronka.pipelines.models import Pipeline, Stage, StageHistory

from . import params as P
from . import values as V
from .crm import COMPANY_TYPES, category_id, dynamic_stage_id, stage_code, stages_of
from .errors import B24Error, from_action
from .registry import Call, ListResult, method

SOURCE_BASE = 1_000_000  # ids of SOURCE rows (sources are not stages)
FIXED_BASE = 2_000_000
_SEMANTICS = {"success": "S", "failure": "F", "process": None}
_EXTRA = {"success": "success", "failure": "failure", "process": "process"}
FIXED = {
    "COMPANY_TYPE": [(code, code.capitalize()) for code in COMPANY_TYPES.values()],
    "CONTACT_TYPE": [("CLIENTS", "Clients"), ("SUPPLIER", "Suppliers"), ("PARTNER", "Partners"), ("OTHER", "Other")],
    "DEAL_TYPE": [("SALE", "Sale"), ("COMPLEX", "Complex sale"), ("SERVICE", "Service")],
    "INDUSTRY": [("IT", "Information technology"), ("MANUFACTURING", "Manufacturing"), ("OTHER", "Other")],
    "EMPLOYEES": [("EMPLOYEES_1", "fewer than 50"), ("EMPLOYEES_2", "50-250"), ("EMPLOYEES_3", "250-500"),
                  ("EMPLOYEES_4", "more than 500")],
    "HONORIFIC": [("HNR_RU_1", "Mr."), ("HNR_RU_2", "Mrs.")],
}


# --- directory rows ---------------------------------------------------------------------------------

def _stage_row(call: Call, stage: Stage, entity_id: str) -> dict:
    type_id = stage.pipeline.entity_type_id
    cat = category_id(call, type_id, stage.pipeline_id) if type_id != entity_types.LEAD else None
    sem = _SEMANTICS.get(stage.semantics)
    if type_id >= entity_types.FIRST_DYNAMIC:
        status_id = dynamic_stage_id(call, type_id, stage)
    else:
        status_id = stage_code(stage) if not cat else f"C{cat}:{stage_code(stage)}"
    return {"ID": str(stage.pk), "ENTITY_ID": entity_id, "STATUS_ID": status_id, "NAME": stage.name,
            "NAME_INIT": stage.name, "SORT": str(stage.sort),
            "SYSTEM": "N", "CATEGORY_ID": None if cat is None else str(cat), "COLOR": stage.color, "SEMANTICS": sem,
            "EXTRA": {"SEMANTICS": _EXTRA.get(stage.semantics, "process"), "COLOR": stage.color}}



def directories(call: Call) -> dict[str, dict]:
    """{ENTITY_ID: {"name", "pipeline" (for stage directories), "entity_type_id", "category_id"}}."""
    result: dict[str, dict] = {}
    leads = stages_of(call, entity_types.LEAD)
    if leads["default"] is not None:
        result["STATUS"] = {"name": _("Lead stages"), "pipeline": leads["default"], "entity_type_id": 1}
    deals = stages_of(call, entity_types.DEAL)
    for pipeline in deals["pipelines"].values():
        cat = category_id(call, entity_types.DEAL, pipeline.pk)
        key = "DEAL_STAGE" if cat == 0 else f"DEAL_STAGE_{cat}"
        result[key] = {"name": _("Deal stages: %(p)s") % {"p": pipeline.name}, "pipeline": pipeline,
                       "entity_type_id": 2, "category_id": cat}
    from .smart import visible_types

    for t in visible_types(call).values():  # smart processes: DYNAMIC_<type>_STAGE_<category>
        for pipeline in stages_of(call, t.id)["pipelines"].values():
            result[f"DYNAMIC_{t.id}_STAGE_{pipeline.pk}"] = {
                "name": f"{t.name}: {pipeline.name}", "pipeline": pipeline,
                "entity_type_id": t.id, "category_id": pipeline.pk, "prefix": f"DT{t.id}_{pipeline.pk}"}
    result["SOURCE"] = {"name": _("Sources")}
    for key in FIXED:
        result[key] = {"name": key.replace("_", " ").capitalize()}
    return result


def rows_of(call: Call, entity_id: str) -> list[dict]:
    info = directories(call).get(entity_id)
    if info is None:
        return []
    if "pipeline" in info:
        stages = Stage.objects.filter(pipeline=info["pipeline"]).select_related("pipeline").order_by("sort", "id")
        return [_stage_row(call, s, entity_id) for s in stages]
    if entity_id == "SOURCE":
        return [{"ID": str(SOURCE_BASE + s.pk), "ENTITY_ID": "SOURCE", "STATUS_ID": s.code.upper(), "NAME": s.name,
                 "NAME_INIT": s.name, "SORT": str(s.sort), "SYSTEM": "N", "CATEGORY_ID": None, "COLOR": None,
                 "SEMANTICS": None, "EXTRA": []} for s in Source.objects.filter(is_active=True)]
    base = FIXED_BASE + sorted(FIXED).index(entity_id) * 100
    return [{"ID": str(base + i), "ENTITY_ID": entity_id, "STATUS_ID": code, "NAME": name, "NAME_INIT": name,
             "SORT": str((i + 1) * 10), "SYSTEM": "Y", "CATEGORY_ID": None, "COLOR": None, "SEMANTICS": None,
             "EXTRA": []} for i, (code, name) in enumerate(FIXED[entity_id])]


def all_rows(call: Call) -> list[dict]:
    return [r for key in directories(call) for r in rows_of(call, key)]


def _match(row: dict, filt: dict) -> bool:
    for key, value in filt.items():
        name = str(key).lstrip("=").upper()
        if name not in row:
            continue
        if isinstance(value, list):
            if str(row[name]) not in {str(v) for v in value}:
                return False
        elif str(row[name] if row[name] is not None else "") != str(value):
            return False
    return True


@method("crm.status.list")
def status_list(call: Call, params: dict) -> ListResult:
    filt = P.mapping(params, "filter")
    rows = [r for r in all_rows(call) if _match(r, filt)]
    for key, direction in reversed(list(P.mapping(params, "order").items())):
        name = str(key).upper()
        numeric = name in ("ID", "SORT")
        rows.sort(key=lambda r, n=name, num=numeric: (int(r.get(n) or 0) if num else str(r.get(n) or "")),
                  reverse=str(direction).upper() == "DESC")
    return ListResult(rows, total=len(rows))


@method("crm.status.entity.items")
def status_entity_items(call: Call, params: dict) -> list:
    entity_id = str(P.get(params, "entityId", "") or "").upper()
    if not entity_id or entity_id not in directories(call):
        raise B24Error("The parameter entityId is not defined or invalid.")
    return rows_of(call, entity_id)


@method("crm.status.entity.types")
def status_entity_types(call: Call, params: dict) -> list:
    out = []
    for key, info in directories(call).items():
        row: dict[str, Any] = {"ID": key, "NAME": str(info["name"])}
        if "pipeline" in info:
            row["SEMANTIC_INFO"] = {"START_FIELD": "", "FINAL_SUCCESS_FIELD": "", "FINAL_UNSUCCESS_FIELD": "",
                                   "FINAL_SORT": 0}
            row["ENTITY_TYPE_ID"] = info["entity_type_id"]
            if info.get("category_id"):
                row["PREFIX"] = info.get("prefix") or f"C{info['category_id']}"
                row["CATEGORY_ID"] = info["category_id"]
        out.append(row)
    return out


@method("crm.status.get")
def status_get(call: Call, params: dict) -> dict:
    pk = P.entity_id(params)
    found = next((r for r in all_rows(call) if r["ID"] == str(pk)), None)
    if found is None:
        raise B24Error("Not found")
    return found


@method("crm.status.fields")
def status_fields(call: Call, params: dict) -> dict:
    def d(type_, ro=False, req=False):
        return {"type": type_, "isRequired": req, "isReadOnly": ro, "isImmutable": False, "isMultiple": False,
                "isDynamic": False}
    return {"ID": d("integer", ro=True), "ENTITY_ID": d("string", req=True), "STATUS_ID": d("string", req=True),
            "SORT": d("integer"), "NAME": d("string", req=True), "NAME_INIT": d("string", ro=True),
            "SYSTEM": d("char", ro=True), "CATEGORY_ID": d("integer", ro=True), "COLOR": d("string"),
            "SEMANTICS": d("string"), "EXTRA": d("crm_status_extra")}


def _stage_data(fields: dict, creating: bool) -> dict:
    up = {str(k).upper(): v for k, v in fields.items()}
    data: dict = {}
    if "NAME" in up:
        data["name"] = str(up["NAME"])
    if "SORT" in up:
        try:
            data["sort"] = int(str(up["SORT"]))
        except ValueError:
            raise B24Error("SORT must be a number.") from None
    if up.get("COLOR"):
        data["color"] = str(up["COLOR"])[:7]
    if "SEMANTICS" in up and creating:
        data["semantics"] = {"S": "success", "F": "failure"}.get(str(up["SEMANTICS"] or "").upper(), "process")
    if creating and up.get("STATUS_ID"):
        data["code"] = str(up["STATUS_ID"]).split(":")[-1].lower().replace("_", "-")[:60]
    return data


@method("crm.status.add")
def status_add(call: Call, params: dict) -> int:
    fields = P.mapping(params, "fields")
    entity_id = str({str(k).upper(): v for k, v in fields.items()}.get("ENTITY_ID") or "").upper()
    if not entity_id:
        raise B24Error("The field ENTITY_ID is required.")
    info = directories(call).get(entity_id)
    if info is None or "pipeline" not in info:
        raise B24Error("Specified entity type is not supported.")
    data = _stage_data(fields, True)
    if not data.get("name"):
        raise B24Error("The field NAME is required.")
    if data.get("code") and Stage.objects.filter(pipeline=info["pipeline"], code=data["code"]).exists():
        raise B24Error("The specified status ID already exists.", "ERROR_CORE")
    try:
        return pipeline_actions.create_stage(call.actor, info["pipeline"].pk, **data).pk
    except ActionError as exc:
        raise from_action(exc) from None


def _own_stage(call: Call, pk: int) -> Stage:
    from .smart import visible_types

    stage = Stage.objects.select_related("pipeline").filter(pk=pk).first()
    if stage is None or stage.pipeline.entity_type_id not in (1, 2, *visible_types(call)):
        raise B24Error("Not found")
    return stage


@method("crm.status.update")
def status_update(call: Call, params: dict) -> bool:
    stage = _own_stage(call, P.entity_id(params))
    data = _stage_data(P.mapping(params, "fields"), False)
    if data:
        try:
            pipeline_actions.update_stage(call.actor, stage.pk, **data)
        except ActionError as exc:
            raise from_action(exc) from None
    return True


@method("crm.status.delete")
def status_delete(call: Call, params: dict) -> bool:
    stage = _own_stage(call, P.entity_id(params))
    try:
        pipeline_actions.delete_stage(call.actor, stage.pk)
    except ActionError as exc:
        if exc.status == 409:
            raise B24Error("There are active items in this status.") from None
        raise from_action(exc) from None
    return True


# --- pipelines as categories ------------------------------------------------------------------------

def _entity_type(call: Call, params: dict) -> int:
    type_id = P.integer(params, "entityTypeId")
    if type_id is None:
        raise B24Error("entityTypeId is required", "ENTITY_TYPE_NOT_SUPPORTED")
    try:
        info = entity_types.get(type_id)
    except LookupError:
        raise B24Error("Entity type is not supported", "ENTITY_TYPE_NOT_SUPPORTED") from None
    if not info.staged:
        raise B24Error("Entity type is not supported", "ENTITY_TYPE_NOT_SUPPORTED")
    if info.dynamic:
        from .smart import visible_types

        if type_id not in visible_types(call):  # a smart process the caller may not read does not exist for them
            raise B24Error("Smart process not found", "NOT_FOUND")
    return type_id


def category_row(call: Call, type_id: int, pipeline: Pipeline) -> dict:
    cat = category_id(call, type_id, pipeline.pk)
    default = pipeline.is_default if type_id >= entity_types.FIRST_DYNAMIC else cat == 0
    return {"id": cat, "name": pipeline.name, "sort": pipeline.sort, "entityTypeId": type_id,
            "isDefault": "Y" if default else "N", "originId": "", "originatorId": ""}


def _pipeline(call: Call, type_id: int, cat) -> Pipeline:
    try:
        cat = int(str(cat))
    except ValueError:
        raise B24Error("Category not found", "NOT_FOUND") from None
    info = stages_of(call, type_id)
    pipeline = info["default"] if cat == 0 else info["pipelines"].get(cat)
    if pipeline is None:
        raise B24Error("Category not found", "NOT_FOUND")
    return pipeline


@method("crm.category.list")
def category_list(call: Call, params: dict) -> ListResult:
    type_id = _entity_type(call, params)
    pipelines = [p for p in stages_of(call, type_id)["pipelines"].values() if p.is_active]
    rows = sorted((category_row(call, type_id, p) for p in pipelines), key=lambda r: (r["sort"], r["id"]))
    return ListResult({"categories": rows}, total=len(rows))


@method("crm.category.get")
def category_get(call: Call, params: dict) -> dict:
    type_id = _entity_type(call, params)
    return {"category": category_row(call, type_id, _pipeline(call, type_id, P.get(params, "id", "")))}


@method("crm.category.add")
def category_add(call: Call, params: dict) -> dict:
    type_id = _entity_type(call, params)
    fields = P.mapping(params, "fields")
    name = str(P.get(fields, "name", "") or P.get(fields, "title", "") or "").strip()
    if not name:
        raise B24Error("The field name is required.", "CRM_FIELD_ERROR_REQUIRED")
    sort = P.integer(fields, "sort", 500)
    stages = [{"name": _("New"), "code": "new"}, {"name": _("Won"), "code": "won", "semantics": "success"},
              {"name": _("Lost"), "code": "lose", "semantics": "failure"}]
    try:
        pipeline = pipeline_actions.create_pipeline(call.actor, entity_type_id=type_id, name=name, sort=sort,
                                                    is_default=P.flag(P.get(fields, "isDefault", "N")),
                                                    stages=stages)
    except ActionError as exc:
        raise B24Error(exc.message, "ACCESS_DENIED" if exc.status == 403 else "CRM_FIELD_ERROR_VALUE_NOT_VALID") from None
    call.cache.pop(("stages", type_id), None)
    return {"category": category_row(call, type_id, pipeline)}


@method("crm.dealcategory.list")
def dealcategory_list(call: Call, params: dict) -> ListResult:
    rows = [{"ID": str(r["id"]), "NAME": r["name"], "SORT": str(r["sort"]), "IS_LOCKED": "N", "CREATED_DATE": ""}
            for r in category_list(call, {"entityTypeId": 2}).result["categories"] if r["id"] != 0]
    return ListResult(rows, total=len(rows))


@method("crm.dealcategory.get")
def dealcategory_get(call: Call, params: dict) -> dict:
    pipeline = _legacy_pipeline(call, params)
    return {"ID": str(category_id(call, 2, pipeline.pk)), "NAME": pipeline.name, "SORT": str(pipeline.sort),
            "IS_LOCKED": "N", "CREATED_DATE": ""}


def _legacy_pipeline(call: Call, params: dict) -> Pipeline:
    try:
        return _pipeline(call, 2, P.get(params, "id", 0) or 0)
    except B24Error:
        raise B24Error("Not found") from None


@method("crm.dealcategory.add")
def dealcategory_add(call: Call, params: dict) -> int:
    fields = P.mapping(params, "fields")
    name = str(P.get(fields, "NAME", "") or "").strip()
    if not name:
        raise B24Error("The field NAME is required.")
    return category_add(call, {"entityTypeId": 2, "fields": {"name": name, "sort": P.get(fields, "SORT", 500)}})[
        "category"]["id"]


@method("crm.dealcategory.fields")
def dealcategory_fields(call: Call, params: dict) -> dict:
    def d(type_, ro=False):
        return {"type": type_, "isRequired": False, "isReadOnly": ro, "isImmutable": False, "isMultiple": False,
                "isDynamic": False}
    return {"ID": d("integer", True), "CREATED_DATE": d("date", True), "NAME": d("string"), "IS_LOCKED": d("char", True),
            "SORT": d("integer")}


@method("crm.dealcategory.status")
def dealcategory_status(call: Call, params: dict) -> str:
    pipeline = _legacy_pipeline(call, params)
    cat = category_id(call, 2, pipeline.pk)
    return "DEAL_STAGE" if cat == 0 else f"DEAL_STAGE_{cat}"


@method("crm.dealcategory.stage.list")
def dealcategory_stage_list(call: Call, params: dict) -> list:
    pipeline = _legacy_pipeline(call, params)
    cat = category_id(call, 2, pipeline.pk)
    rows = rows_of(call, "DEAL_STAGE" if cat == 0 else f"DEAL_STAGE_{cat}")
    return [{"NAME": r["NAME"], "SORT": r["SORT"], "STATUS_ID": r["STATUS_ID"]} for r in rows]


@method("crm.dealcategory.default.get")
def dealcategory_default_get(call: Call, params: dict) -> dict:
    default = stages_of(call, 2)["default"]
    return {"ID": 0, "NAME": default.name if default else ""}


# --- stage history ----------------------------------------------------------------------------------

_HISTORY_FIELDS = {"ID": "id", "OWNER_ID": "entity_id", "CREATED_TIME": "moved_at", "STAGE_ID": "to_stage_id",
                   "STATUS_ID": "to_stage_id", "CATEGORY_ID": "pipeline_id"}


@method("crm.stagehistory.list")
def stagehistory_list(call: Call, params: dict) -> ListResult:
    from .smart import visible_types

    type_id = P.integer(params, "entityTypeId")
    if type_id not in (entity_types.LEAD, entity_types.DEAL, *visible_types(call)):
        raise B24Error("Entity type is not supported", "ENTITY_TYPE_NOT_SUPPORTED")
    visible = records_visible_to(call.actor, type_id).values("pk")
    qs = StageHistory.objects.filter(entity_type_id=type_id, entity_id__in=visible).select_related("from_stage",
                                                                                                     "to_stage")
    for key, value in P.mapping(params, "filter").items():
        from .crm import split_key

        op, name = split_key(str(key))
        path = _HISTORY_FIELDS.get(name.upper())
        if path is None:
            continue
        if path == "moved_at":
            value = V.parse_dt(value)
        lookup = {"": "", "=": "", ">": "__gt", ">=": "__gte", "<": "__lt", "<=": "__lte", "@": "__in"}.get(op)
        if lookup is None:
            continue
        if isinstance(value, list) and lookup == "":
            lookup = "__in"
        qs = qs.filter(**{f"{path}{lookup}": value})
    order = [("-" if str(d).upper() == "DESC" else "") + _HISTORY_FIELDS[str(k).upper()]
             for k, d in P.mapping(params, "order").items() if str(k).upper() in _HISTORY_FIELDS] or ["id"]
    qs = qs.order_by(*order)
    offset = max(call.start, 0) // 50 * 50
    rows = list(qs[offset:offset + 50])
    total = qs.count()
    items = []
    for h in rows:
        type_code = 1 if h.from_stage_id is None else (3 if h.semantics != "process" else 2)
        if h.from_stage is not None and h.from_stage.pipeline_id != h.pipeline_id:
            type_code = 5
        item: dict[str, Any] = {"ID": h.pk, "TYPE_ID": type_code, "OWNER_ID": h.entity_id,
                                "CREATED_TIME": V.out_datetime(h.moved_at)}
        sem = {"success": "S", "failure": "F"}.get(h.semantics, "P")
        code = stage_code(h.to_stage)
        if type_id == entity_types.LEAD:
            item.update({"STATUS_ID": code, "STATUS_SEMANTIC_ID": sem})
        else:
            cat = category_id(call, type_id, h.pipeline_id)
            if type_id >= entity_types.FIRST_DYNAMIC:
                stage_value = dynamic_stage_id(call, type_id, h.to_stage)
            else:
                stage_value = code if cat == 0 else f"C{cat}:{code}"
            item.update({"CATEGORY_ID": cat, "STAGE_ID": stage_value,
                         "STAGE_SEMANTIC_ID": sem})
        items.append(item)
    nxt = offset + len(rows) if offset + len(rows) < total else None
    return ListResult({"items": items}, total=total, next=nxt)




def _pipeline_write(call: Call, type_id: int, fn, *args, **kw):
    try:
        result = fn(call.actor, *args, **kw)
    except ActionError as exc:
        if exc.status == 403:
            raise B24Error("Access denied", "ACCESS_DENIED") from None
        if exc.status == 409:
            raise B24Error(exc.message, "REMOVING_DISABLED") from None
        raise B24Error(from_action(exc).description, "CRM_FIELD_ERROR_VALUE_NOT_VALID") from None
    call.cache.pop(("stages", type_id), None)
    return result


def _pipeline_changes(fields: dict) -> dict:
    data: dict = {}
    name = P.get(fields, "name")
    if name not in (None, ""):
        data["name"] = str(name).strip()[:200]
    if P.get(fields, "sort") not in (None, ""):
        data["sort"] = P.integer(fields, "sort")
    if P.get(fields, "isDefault") not in (None, "") and P.flag(P.get(fields, "isDefault")):
        data["is_default"] = True
    return data


@method("crm.category.update")
def category_update(call: Call, params: dict) -> dict:
    type_id = _entity_type(call, params)
    pipeline = _pipeline(call, type_id, P.get(params, "id", ""))
    data = _pipeline_changes(P.mapping(params, "fields"))
    if data:
        pipeline = _pipeline_write(call, type_id, pipeline_actions.update_pipeline, pipeline.pk, **data)
    return {"category": category_row(call, type_id, pipeline)}


@method("crm.category.delete")
def category_delete(call: Call, params: dict) -> None:
    type_id = _entity_type(call, params)
    pipeline = _pipeline(call, type_id, P.get(params, "id", ""))
    _pipeline_write(call, type_id, pipeline_actions.delete_pipeline, pipeline.pk)
    return None


@method("crm.dealcategory.update")
def dealcategory_update(call: Call, params: dict) -> bool:
    pipeline = _legacy_pipeline(call, params)
    data = _pipeline_changes({str(k).lower(): v for k, v in P.mapping(params, "fields").items()})
    data.pop("is_default", None)
    if data:
        _pipeline_write(call, 2, pipeline_actions.update_pipeline, pipeline.pk, **data)
    return True


@method("crm.dealcategory.delete")
def dealcategory_delete(call: Call, params: dict) -> bool:
    pipeline = _legacy_pipeline(call, params)
    _pipeline_write(call, 2, pipeline_actions.delete_pipeline, pipeline.pk)
    return True
