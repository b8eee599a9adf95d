"""Every write to smart types (settings) and to their items.

Types are settings: defining one needs the «pipelines» settings right, creates its default pipeline with
stages and registers it in every process (through the settings version). Items go through the same write
path as deals (``core.recordkit`` with the stage hook); the type's spec comes from the registry.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import audit, config_cache, entity_types, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, ValidationFailed, from_django_validation
from voronka.core.recordkit import RecordSpec, create_many, create_one, delete_one, restore_one, update_one

from . import registry
from .models import LINKABLE, ListRow, SmartItem, SmartType

SETTINGS = "settings:pipelines"
TYPE_FIELDS = ("name", "name_plural", "code", "links", "use_opportunity", "sort", "kind")
#: codes and addresses already taken by built-in kinds of records and screens
RESERVED = {"lead", "leads", "deal", "deals", "contact", "contacts", "company", "companies", "task", "tasks",
            "item", "items", "type", "types", "list", "lists", "pipeline", "stage", "user", "comment", "quote",
            "invoice", "settings", "search", "import", "imports"}
CODE_RE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")


def default_stages() -> list[dict]:
    return [
        {"name": _("New"), "code": "new", "color": "#3b82f6"},
        {"name": _("In progress"), "code": "work", "color": "#f59e0b"},
        {"name": _("Done"), "code": "done", "semantics": "success", "color": "#22c55e"},
        {"name": _("Cancelled"), "code": "cancelled", "semantics": "failure", "color": "#ef4444"},
    ]


def _check_type(data: dict, *, creating: bool, current: SmartType | None = None) -> dict:
    unknown = sorted(set(data) - set(TYPE_FIELDS) - ({"stages", "pipeline_name"} if creating else set()))
    errors: dict[str, list[str]] = {k: [_("Unknown field.")] for k in unknown}
    for key in ("name", "name_plural"):
        if key in data:
            if not isinstance(data[key], str) or not data[key].strip():
                errors[key] = [_("This field cannot be empty.")]
            else:
                data[key] = data[key].strip()
    if creating and "name" not in data:
        errors["name"] = [_("This field is required.")]
    if "code" in data:
        code = data["code"]
        if not isinstance(code, str) or not CODE_RE.match(code):
            errors["code"] = [_("2–40 small Latin letters, digits and hyphens, starting with a letter.")]
        elif code in RESERVED:
            errors["code"] = [_("This code is reserved.")]
        elif current is not None and code != current.code:
            errors["code"] = [_("The code of a type cannot be changed: addresses and robot files use it.")]
        elif current is None and (SmartType.objects.filter(code=code).exists() or _code_taken(code)):
            errors["code"] = [_("A type with this code exists.")]
    if "links" in data:
        links = data["links"]
        if not isinstance(links, list) or not all(isinstance(x, str) and x in LINKABLE for x in links):
            errors["links"] = [_("A list of: %(names)s.") % {"names": ", ".join(LINKABLE)}]
        else:
            data["links"] = [x for x in LINKABLE if x in links]
    for key in ("use_opportunity",):
        if key in data and not isinstance(data[key], bool):
            errors[key] = [_("Must be true or false.")]
    if "kind" in data:
        if current is not None and data["kind"] != current.kind:
            errors["kind"] = [_("A process cannot become a list or back.")]
        elif data["kind"] not in SmartType.Kind.values:
            errors["kind"] = [_("One of: %(names)s.") % {"names": ", ".join(SmartType.Kind.values)}]
    if "sort" in data and (not isinstance(data["sort"], int) or isinstance(data["sort"], bool)):
        errors["sort"] = [_("Must be a whole number.")]
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), fields=errors)
    return data


def _code_taken(code: str) -> bool:
    registry.sync(force=True)  # no stale entry of a type whose creation rolled back
    return any(info.code == code for info in entity_types.all_types())


_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
                      "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"], strict=True))


def _slug(name: str) -> str:
    from django.utils.text import slugify

    base = slugify("".join(_TRANSLIT.get(ch, ch) for ch in name.lower()))[:30].strip("-") or "process"
    if not base[0].isalpha():
        base = f"p-{base}"
    code, n = base, 1
    while code in RESERVED or SmartType.objects.filter(code=code).exists() or _code_taken(code):
        n += 1
        code = f"{base}-{n}"
    return code


def create_type(actor: Actor, **data) -> SmartType:
    """Define a smart process with its default pipeline (``stages`` may replace the default stages)."""
    from voronka.pipelines.actions import create_pipeline

    policies.require(actor, SETTINGS, 0)
    data = _check_type(dict(data), creating=True)
    stages = data.pop("stages", None)
    pipeline_name = data.pop("pipeline_name", None) or _("General")
    if stages is not None and (not isinstance(stages, list) or not stages or not all(isinstance(s, dict) for s in stages)):
        raise ValidationFailed(_("Stages must be a non-empty list of objects."), fields={"stages": [_("invalid")]})
    data.setdefault("name_plural", data["name"])
    if not data.get("code"):
        data["code"] = _slug(data["name"])
    data.setdefault("links", list(LINKABLE))
    try:
        with transaction.atomic():
            last = SmartType.objects.select_for_update().aggregate(m=Max("id"))["m"]
            t = SmartType(id=max(last or 0, entity_types.FIRST_DYNAMIC - 1) + 1, **data)
            _clean(t)
            t.save(force_insert=True)
            config_cache.bump()
            registry.forget()
            registry.install(t)  # the pipeline below needs the type registered
            if t.kind == SmartType.Kind.PROCESS:
                from voronka.pipelines import daily

                daily.mark_new_kind(t.id)  # the reports read its (empty, so complete) totals from the start
                create_pipeline(actor, entity_type_id=t.id, name=pipeline_name, code="general", is_default=True,
                                stages=stages if stages is not None else default_stages())
            elif stages is not None:
                raise ValidationFailed(_("A list has no stages."), fields={"stages": [_("not for a list")]})
            audit.record(actor, "custom_list.created" if t.kind == SmartType.Kind.LIST else "smart_type.created",
                         type=t.id, name=t.name_plural)
            outbox.emit(actor, "smart_type.created", None, t.id, {"entity_type_id": t.id, "code": t.code})
    except IntegrityError:
        raise Conflict(_("Another type was created at the same moment; try again."), fields={"code": [_("taken")]}) \
            from None
    except BaseException:
        registry.forget()
        raise
    return t


def _clean(obj) -> None:
    try:
        obj.full_clean(validate_constraints=False, validate_unique=False)
    except ValidationError as exc:
        raise from_django_validation(exc) from None


def _lock_type(type_id) -> SmartType:
    t = SmartType.objects.select_for_update().filter(pk=type_id).first() if str(type_id).isdigit() else None
    if t is None:
        raise NotFound(_("Smart process #%(id)s does not exist.") % {"id": type_id})
    return t


def update_type(actor: Actor, type_id: int, **data) -> SmartType:
    policies.require(actor, SETTINGS, 0)
    with transaction.atomic():
        t = _lock_type(type_id)
        data = _check_type(dict(data), creating=False, current=t)
        changes = {k: [getattr(t, k), v] for k, v in data.items() if getattr(t, k) != v}
        if not changes:
            return t
        for key, value in data.items():
            setattr(t, key, value)
        t.updated_at = timezone.now()
        _clean(t)
        t.save()
        config_cache.bump()
        registry.forget()
        audit.record(actor, "smart_type.changed", type=t.id, name=t.name_plural, changes=changes)
        outbox.emit(actor, "smart_type.updated", None, t.id, {"changed": sorted(changes)})
    registry.install(t)
    return t


def delete_type(actor: Actor, type_id: int) -> None:
    """Remove a smart process that has no items (deleted ones included: purge them first)."""
    from voronka.customfields.models import FieldDefinition
    from voronka.pipelines.models import Pipeline, StageHistory

    policies.require(actor, SETTINGS, 0)
    with transaction.atomic():
        t = _lock_type(type_id)
        if SmartItem.objects.filter(entity_type_id=t.id).exists() or ListRow.objects.filter(entity_type_id=t.id).exists():
            raise Conflict(_("«%(t)s» has items (maybe in the recycle bin); delete and purge them first.")
                           % {"t": t.name_plural})
        StageHistory.objects.filter(entity_type_id=t.id).delete()
        from voronka.pipelines import daily

        daily.forget_kind(t.id)  # the analytics totals, so that a type made later with the same id starts clean
        Pipeline.objects.filter(entity_type_id=t.id).delete()
        FieldDefinition.objects.filter(entity_type_id=t.id).delete()
        from voronka.identity.models import RolePermission
        from voronka.identity.permissions import rights_changed

        if RolePermission.objects.filter(entity_type_id=t.id).delete()[0]:
            transaction.on_commit(rights_changed)
            rights_changed()
        t.delete()
        config_cache.bump()
        registry.forget()
        audit.record(actor, "smart_type.deleted", type=type_id, name=t.name_plural)
        outbox.emit(actor, "smart_type.deleted", None, int(type_id), {"code": t.code})
    entity_types.unregister(int(type_id))


# --- items ---------------------------------------------------------------------------------------------

def spec(type_ref, *, kind: str = "process") -> RecordSpec:
    """The write-path spec of a smart process (or, with ``kind="list"``, a custom list) given by id or code;
    NotFound for anything else."""
    try:
        info = entity_types.get(int(type_ref)) if str(type_ref).isdigit() else entity_types.by_code(str(type_ref))
    except (LookupError, ValueError):
        info = None
    model = ListRow if kind == SmartType.Kind.LIST else SmartItem
    if info is None or not info.dynamic or info.model is not model:
        if kind == SmartType.Kind.LIST:
            raise NotFound(_("List «%(t)s» does not exist.") % {"t": type_ref})
        raise NotFound(_("Smart process «%(t)s» does not exist.") % {"t": type_ref})
    return info.spec


def create_item(actor: Actor, type_ref, **data) -> SmartItem:
    return create_one(actor, spec(type_ref), data)


def create_items(actor: Actor, type_ref, items: list[dict]):
    return create_many(actor, spec(type_ref), items)


def update_item(actor: Actor, type_ref, item_id: int, **data) -> SmartItem:
    return update_one(actor, spec(type_ref), item_id, data)


def move_item(actor: Actor, type_ref, item_id: int, *, stage, pipeline=None, fields: dict | None = None) -> SmartItem:
    from voronka.pipelines.actions import move_to_stage

    return move_to_stage(actor, spec(type_ref), item_id, stage=stage, pipeline=pipeline, fields=fields)


def delete_item(actor: Actor, type_ref, item_id: int) -> SmartItem:
    return delete_one(actor, spec(type_ref), item_id)


def restore_item(actor: Actor, type_ref, item_id: int) -> SmartItem:
    return restore_one(actor, spec(type_ref), item_id)


# --- rows of custom lists (F6) -----------------------------------------------------------------------

def create_row(actor: Actor, list_ref, **data) -> ListRow:
    return create_one(actor, spec(list_ref, kind="list"), data)


def create_rows(actor: Actor, list_ref, items: list[dict], *, atomic_all: bool = False):
    return create_many(actor, spec(list_ref, kind="list"), items, atomic_all=atomic_all)


def update_row(actor: Actor, list_ref, row_id: int, **data) -> ListRow:
    return update_one(actor, spec(list_ref, kind="list"), row_id, data)


def delete_row(actor: Actor, list_ref, row_id: int) -> ListRow:
    return delete_one(actor, spec(list_ref, kind="list"), row_id)


def restore_row(actor: Actor, list_ref, row_id: int) -> ListRow:
    return restore_one(actor, spec(list_ref, kind="list"), row_id)
