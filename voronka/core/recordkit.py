"""The shared write path for every CRM record: create (one or many), update, delete, restore.

Domain apps describe a record type with a ``RecordSpec`` (its model, the fields a caller may
write, hooks for phones/e-mails and stages) and expose thin actions on top. One code path serves
the UI, the REST API (single and bulk), the Bitrix24 facade, intake, robots and the CLI:

- every item is validated completely before anything is written; a bulk call reports a result
  per item and writes all valid items in one transaction;
- a write records a timeline entry (who, through which entry point, what changed) and puts a
  domain event into the outbox in the same transaction.
"""

from __future__ import annotations

import decimal
import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import audit, fastinsert, history, instances, outbox, policies
from .actor import Actor
from .errors import ActionError, Conflict, NotFound, ValidationFailed
from .prepared import Prepared


class Hook:
    """Extends the write path (phones and e-mails, stages …). Every method is optional."""

    #: payload keys this hook consumes (they are not model fields)
    keys: tuple[str, ...] = ()
    #: ``after_create`` writes only through ``fastinsert`` (``insert`` without ids wanted back, ``insert_rows``,
    #: ``write_rows``) and ``fastinsert.then``, and reads nothing the write depends on: a create then prepares its
    #: rows before the transaction (``fastinsert.staged``), with the new records' ids standing as ``Pending``
    staged_create: bool = False

    def prepare(self, ctx: WriteContext) -> None:
        """Validate and stage the hook's part of one item; add errors to ``ctx.errors``."""

    def finish(self, ctx: WriteContext) -> None:
        """Checks that need every field assigned (custom fields included), e.g. a stage's required fields."""

    def after_create(self, actor: Actor, contexts: Sequence[WriteContext]) -> None:
        """Write the hook's rows for freshly created objects (pk set)."""

    def after_update(self, actor: Actor, ctx: WriteContext) -> None:
        """Write the hook's rows after an update."""

    def purge(self, obj, spec: RecordSpec) -> None:
        """Remove the hook's rows of a record that is purged for good."""

    def after_delete(self, obj, spec: RecordSpec) -> None:
        """A record went to the recycle bin."""

    def after_restore(self, obj, spec: RecordSpec) -> None:
        """A record came back from the recycle bin."""


@dataclass
class RecordSpec:
    model: type[models.Model]
    entity_type_id: int
    code: str  # event prefix: "lead", "deal" …
    writable: tuple[str, ...]  # model fields a caller may write (FKs by field name, given as ids)
    hooks: tuple[Hook, ...] = ()
    defaults: Callable[[Actor, dict], dict] | None = None  # extra defaults on create
    has_custom: bool = True
    # column values that select this type's rows in a table shared by several types (smart processes)
    scope: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "is_open" not in self.writable and any(f.name == "is_open" for f in self.model._meta.fields):
            self.writable = (*self.writable, "is_open")
        self._fk = {f.name for f in self.model._meta.get_fields() if isinstance(f, models.ForeignKey)}
        # fields whose untouched value needs no check: blank allowed, or a non-empty default (see _validate_model)
        self.trusted = {f.name for f in self.model._meta.concrete_fields
                        if f.blank or (f.has_default() and f.get_default() not in (None, ""))
                        or f.auto_created or f.primary_key}
        self.allowed = set(self.writable) | {k for h in self.hooks for k in h.keys} | ({"custom"} if self.has_custom else set())

    def new(self, **values):
        """A fresh unsaved instance with its defaults and ``values`` (attnames or plain field names; ids for
        foreign keys). Django's keyword constructor walks every field with a default lookup each, which cost a
        create more than its insert; ``instances.new`` only assigns."""
        return instances.new(self.model, **values)


@dataclass
class WriteContext:
    spec: RecordSpec
    actor: Actor
    obj: Any
    data: dict
    creating: bool
    before: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    state: dict = field(default_factory=dict)  # hooks keep their staged values here
    batch: dict = field(default_factory=dict)  # shared by all items of one call (lookup caches)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(str(message))


@dataclass
class ItemResult:
    index: int
    ok: bool
    obj: Any = None
    error: ActionError | None = None

    def as_dict(self) -> dict:
        if self.ok:
            return {"index": self.index, "ok": True, "id": self.obj.pk}
        return {"index": self.index, "ok": False, "error": self.error.as_dict()}


def _field_value(obj, name: str, fk: set[str]) -> Any:
    return getattr(obj, f"{name}_id") if name in fk else getattr(obj, name)


def _assign(ctx: WriteContext) -> None:
    spec, obj = ctx.spec, ctx.obj
    if not isinstance(ctx.data, dict):
        raise ValidationFailed(_("The record must be a JSON object."))
    unknown = [k for k in ctx.data if k not in spec.allowed]
    for key in unknown:
        ctx.error(key, _("Unknown field."))
    for name in spec.writable:
        if name not in ctx.data:
            continue
        value = ctx.data[name]
        model_field = obj._meta.get_field(name)
        if name in spec._fk:
            if value in ("", 0):
                value = None
            if value is not None:
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    ctx.error(name, _("Must be the id of a record."))
                    continue
            attr = f"{name}_id"
        else:
            attr = name
            if value is None and not model_field.null:
                if isinstance(model_field, models.CharField | models.TextField):
                    value = ""
                else:
                    ctx.error(name, _("This field cannot be empty."))
                    continue
            if isinstance(value, str) and isinstance(model_field, models.CharField | models.TextField):
                value = value.strip()
            elif value is not None and not isinstance(value, str | int | float | bool | decimal.Decimal):
                if not isinstance(model_field, models.JSONField):
                    ctx.error(name, _("Has a wrong type."))
                    continue
            elif isinstance(value, bool | int | float) and isinstance(model_field, models.CharField | models.TextField):
                ctx.error(name, _("Must be text."))
                continue
        old = ctx.before.get(name) if not ctx.creating else None
        setattr(obj, attr, value)
        try:
            # to_python for a clear early error (dates, decimals); full_clean repeats the checks
            if value is not None and attr == name:
                value = model_field.to_python(value)
                if isinstance(model_field, models.DecimalField) and value.is_finite():
                    value = value.quantize(decimal.Decimal(1).scaleb(-model_field.decimal_places))
                setattr(obj, attr, value)
        except ValidationError as exc:
            ctx.error(name, "; ".join(exc.messages))
            continue
        except (decimal.InvalidOperation, OverflowError, ValueError, TypeError):
            ctx.error(name, _("The value is not valid."))
            continue
        if not ctx.creating and history.jsonable(old) != history.jsonable(_field_value(obj, name, spec._fk)):
            ctx.changes[name] = [old, _field_value(obj, name, spec._fk)]


# Set by the write path itself (created_by) or checked by hooks and _check_responsible with cached lookups:
# full_clean would spend a query per foreign key per record on them.
_CHECKED_ELSEWHERE = {"created_by", "pipeline", "stage", "responsible"}


def _validate_model(ctx: WriteContext) -> None:
    """The model's own field checks (length, choices, blank, validators) on what this write touched.

    Fields the caller did not give keep a value that was valid when it was written: their default (which
    ``trusted_defaults`` lists per model: blank allowed or a non-empty default), or what an earlier write
    checked. The rest, and every field the caller, ``RecordSpec.defaults`` or a hook set, is checked.
    """
    given = ctx.data.keys() | ctx.state.get("defaulted", ())
    exclude = {name for name in ctx.spec.trusted if name not in given}
    exclude |= {name for name in ctx.errors} | _CHECKED_ELSEWHERE
    try:
        ctx.obj.full_clean(exclude=sorted(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            for message in messages:
                ctx.error("_" if name == "__all__" else name, message)


def _check_responsible(ctx: WriteContext) -> None:
    """The responsible must be an active user; lookups are cached for the whole call (bulk imports)."""
    pk = getattr(ctx.obj, "responsible_id", None)
    if pk is None or "responsible" in ctx.errors:
        return
    if not ctx.creating and ctx.before.get("responsible") == pk:
        return
    if pk == ctx.actor.user_id and ctx.actor.user is not None and ctx.actor.user.is_active:
        return  # oneself: already known to be an active user
    known = ctx.batch.setdefault("active_users", {})
    if pk not in known:
        from django.contrib.auth import get_user_model

        known[pk] = get_user_model().objects.filter(pk=pk, is_active=True).exists()
    if not known[pk]:
        ctx.error("responsible", _("No active user with id %(id)s.") % {"id": pk})


def _custom(ctx: WriteContext) -> None:
    if not ctx.spec.has_custom:
        return
    from voronka.customfields.validation import clean_custom  # customfields knows only core

    pipeline_id = getattr(ctx.obj, "pipeline_id", None)
    if "custom" not in ctx.data and not ctx.creating:
        return  # nothing to validate: stored values stay as they are
    if "config_version" not in ctx.batch:
        from . import config_cache

        ctx.batch["config_version"] = config_cache.current_version()
    try:
        merged = clean_custom(ctx.spec.entity_type_id, pipeline_id, ctx.data.get("custom"),
                              existing=ctx.obj.custom if not ctx.creating else None, partial=not ctx.creating,
                              version=ctx.batch["config_version"])
    except ValidationFailed as exc:
        for name, messages in exc.fields.items():
            for m in messages:
                ctx.error(name, m)
        return
    if not ctx.creating and merged != (ctx.before.get("custom") or {}):
        ctx.changes["custom"] = [ctx.before.get("custom") or {}, merged]
    ctx.obj.custom = merged


def _prepare(ctx: WriteContext) -> None:
    _assign(ctx)
    for hook in ctx.spec.hooks:
        hook.prepare(ctx)
    _custom(ctx)
    for hook in ctx.spec.hooks:
        hook.finish(ctx)
    _check_responsible(ctx)
    _validate_model(ctx)


def _failure(ctx: WriteContext) -> ValidationFailed:
    # a hook may say what is wrong in a sentence (e.g. which fields a stage asks for), else the generic message
    return ValidationFailed(ctx.state.get("failure_message") or _("Some fields are not valid."), fields=ctx.errors)


#: items of a batch from which the garbage collector pauses while it is built and written
COLLECTOR_PAUSE_FROM = 20


@contextmanager
def collector_paused(pause: bool = True) -> Iterator[None]:
    """The cyclic garbage collector off for the block (a large batch). A batch of records builds tens of thousands
    of objects that all live until it is written (instances, contexts, rows); each time their count crosses the
    collector's thresholds it walks them, and once they reach the oldest generation the whole heap, for cycles they
    do not have: measured a quarter of the CPU of a 500-lead bulk create. Objects without cycles are freed as
    usual; any cycle the block made is collected by the next automatic run after it. Nested or concurrent blocks
    (threads) leave the switch to the one that turned it off."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def create_many(actor: Actor, spec: RecordSpec, items: Sequence[dict], *, atomic_all: bool = False,
                active_users: Iterable[int] = ()) -> list[ItemResult]:
    """Validate every item, then write the valid ones together. With ``atomic_all`` any error writes nothing.
    ``active_users``: ids the caller has just read as active users in this transaction (a distribution queue's pick),
    so the responsible check does not read them again."""
    with collector_paused(len(items) >= COLLECTOR_PAUSE_FROM):
        return _create_many(actor, spec, items, atomic_all=atomic_all, active_users=active_users)


def _create_many(actor: Actor, spec: RecordSpec, items: Sequence[dict], *, atomic_all: bool,
                 active_users: Iterable[int]) -> list[ItemResult]:
    results: list[ItemResult] = []
    contexts: list[WriteContext] = []
    now = timezone.now()
    batch: dict = {"now": now}
    if active_users:
        batch["active_users"] = dict.fromkeys(active_users, True)
    for index, data in enumerate(items):
        if not isinstance(data, dict):
            results.append(ItemResult(index, False, error=ValidationFailed(_("The record must be a JSON object."))))
            continue
        values = dict(spec.defaults(actor, data)) if spec.defaults else {}
        obj = spec.new(created_at=now, updated_at=now, created_by_id=actor.user_id, **spec.scope)
        if "responsible" in spec.writable and "responsible" not in data:
            obj.responsible_id = actor.user_id
        for k, v in values.items():
            setattr(obj, k, v)
        ctx = WriteContext(spec, actor, obj, data, creating=True, batch=batch)
        ctx.state["defaulted"] = values.keys()
        try:
            _prepare(ctx)
            if not ctx.errors:
                policies.require(actor, policies.ADD, spec.entity_type_id, obj,
                                 pipeline_id=getattr(obj, "pipeline_id", None))
        except ActionError as exc:
            results.append(ItemResult(index, False, error=exc))
            continue
        if ctx.errors:
            results.append(ItemResult(index, False, error=_failure(ctx)))
            continue
        contexts.append(ctx)
        results.append(ItemResult(index, True, obj=obj))
    if atomic_all and any(not r.ok for r in results):
        return results
    if contexts and all(hook.staged_create for hook in spec.hooks):
        _write_staged(actor, spec, contexts)
    elif contexts:
        with transaction.atomic():
            fastinsert.insert([c.obj for c in contexts], returning=True)
            # the side rows need the ids, nothing needs their answers: on PostgreSQL one statement
            with fastinsert.pipelined(len(contexts)):
                _side_rows(actor, spec, contexts)
    return results


def _side_rows(actor: Actor, spec: RecordSpec, contexts: Sequence[WriteContext]) -> None:
    for hook in spec.hooks:
        hook.after_create(actor, contexts)
    label = actor.label
    fastinsert.insert_rows(history.TimelineEntry, [
        history.entry_row(actor, spec.entity_type_id, c.obj.pk, "created", label=label) for c in contexts])
    outbox.emit_rows([outbox.row(actor, f"{spec.code}.created", spec.entity_type_id, c.obj.pk,
                                 {"fields": sorted(c.data.keys())}) for c in contexts])


def _write_staged(actor: Actor, spec: RecordSpec, contexts: Sequence[WriteContext]) -> None:
    """The records and their side rows (phones, stage history, totals, timeline, outbox), every row's values
    prepared before ``BEGIN``: inside the transaction only the statements run. On SQLite the transaction holds the
    database's one write lock, which every other writer waits for (measured: half of a create's CPU was spent
    holding it, half of that in Python)."""
    objs = [c.obj for c in contexts]
    pending = [fastinsert.Pending() for _ in objs]
    try:
        for obj, pk in zip(objs, pending, strict=True):
            obj.pk = pk
        with fastinsert.staged() as side:
            _side_rows(actor, spec, contexts)
    finally:
        for obj in objs:
            obj.pk = None
    insert_records = fastinsert.insert_later(objs)
    with transaction.atomic():
        insert_records()
        for obj, pk in zip(objs, pending, strict=True):
            pk.value = obj.pk
        # on PostgreSQL the side rows in one statement
        with fastinsert.pipelined(len(contexts)):
            side.run()


def create_one(actor: Actor, spec: RecordSpec, data: dict, *, active_users: Iterable[int] = ()):
    [result] = create_many(actor, spec, [data], active_users=active_users)
    if not result.ok:
        raise result.error
    return result.obj


def snapshot(spec: RecordSpec, obj) -> dict:
    snap = {name: _field_value(obj, name, spec._fk) for name in spec.writable}
    if spec.has_custom:
        snap["custom"] = dict(obj.custom or {})
    return snap


def _spec_label(spec: RecordSpec) -> str:
    from . import entity_types

    try:
        return entity_types.get(spec.entity_type_id).label.capitalize()
    except LookupError:
        return str(spec.model._meta.verbose_name).capitalize()


# The lock of a record without a scope, compiled once per model and «deleted too» (``voronka.core.prepared``):
# building the ORM query cost more CPU than the database spent answering it (every update, every robot run).
_LOCKS: dict[tuple, tuple[Prepared, list[str]]] = {}
_LOCK_PK = -918273641


def _prepared_lock(model, include_deleted: bool) -> tuple[Prepared, list[str]]:
    key = (model, include_deleted)
    hit = _LOCKS.get(key)
    if hit is None:
        attnames = [f.attname for f in model._meta.concrete_fields]

        def build(pk):
            qs = model.objects.select_for_update().filter(pk=pk)
            return (qs if include_deleted else qs.filter(deleted_at__isnull=True)).values_list(*attnames)

        hit = _LOCKS[key] = (Prepared(build, [_LOCK_PK]), attnames)
    return hit


def lock(spec: RecordSpec, pk: int, *, include_deleted: bool = False):
    if not spec.scope and type(pk) is int and transaction.get_connection().in_atomic_block:
        prepared, attnames = _prepared_lock(spec.model, include_deleted)
        rows = prepared.rows(pk)
        if rows:
            return spec.model.from_db("default", attnames, rows[0])
        raise NotFound(_("%(what)s #%(id)s does not exist.") % {"what": _spec_label(spec), "id": pk})
    qs = spec.model.objects.select_for_update()
    if spec.scope:
        qs = qs.filter(**spec.scope)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    try:
        return qs.get(pk=pk)
    except (ObjectDoesNotExist, ValueError, TypeError):
        raise NotFound(_("%(what)s #%(id)s does not exist.") % {"what": _spec_label(spec),
                                                               "id": pk}) from None


def update_one(actor: Actor, spec: RecordSpec, pk: int, data: dict, *, event_payload: dict | None = None):
    with transaction.atomic():
        obj = lock(spec, pk)
        policies.require(actor, policies.READ, spec.entity_type_id, obj)
        policies.require(actor, policies.UPDATE, spec.entity_type_id, obj)
        ctx = WriteContext(spec, actor, obj, data, creating=False, before=snapshot(spec, obj))
        fields = obj._meta.concrete_fields
        was = [getattr(obj, f.attname) for f in fields]
        _prepare(ctx)
        if ctx.errors:
            raise _failure(ctx)
        if ctx.changes or ctx.state.get("dirty"):
            obj.updated_at = timezone.now()
            # Only the columns that changed (JSON ones always: they may be changed in place): a shorter UPDATE
            # built once per column set (`fastinsert.update`); the row is locked, so no change of anyone else is
            # overwritten either way.
            changed = [f.attname for f, old in zip(fields, was, strict=True) if not f.primary_key and (
                isinstance(f, models.JSONField) or getattr(obj, f.attname) != old) and f.attname != "updated_at"]
            if fastinsert.update(obj, [*changed, "updated_at"]) != 1:  # pragma: no cover - the row is locked
                raise NotFound(_("%(what)s #%(id)s does not exist.") % {"what": _spec_label(spec), "id": pk})
            for hook in spec.hooks:
                hook.after_update(actor, ctx)
            plain = {k: v for k, v in ctx.changes.items() if k not in ctx.state.get("own_history", ())}
            if plain:
                history.entry(actor, spec.entity_type_id, obj.pk, "updated", changes=plain)
                outbox.emit(actor, f"{spec.code}.updated", spec.entity_type_id, obj.pk,
                            {"changed": sorted(plain), **(event_payload or {})})
        return obj


def delete_one(actor: Actor, spec: RecordSpec, pk: int):
    """Soft delete: the record goes to the recycle bin, from which an administrator can restore it."""
    with transaction.atomic():
        obj = lock(spec, pk)
        policies.require(actor, policies.READ, spec.entity_type_id, obj)
        policies.require(actor, policies.DELETE, spec.entity_type_id, obj)
        obj.deleted_at = timezone.now()
        obj.save(update_fields=["deleted_at"])
        for hook in spec.hooks:
            hook.after_delete(obj, spec)
        history.entry(actor, spec.entity_type_id, obj.pk, "deleted")
        audit.record(actor, "record.deleted", entity_type_id=spec.entity_type_id, entity_id=obj.pk, count=1,
                     title=str(obj)[:200])
        outbox.emit(actor, f"{spec.code}.deleted", spec.entity_type_id, obj.pk)
        return obj


RECYCLE_BIN = "settings:recycle_bin"


def restore_one(actor: Actor, spec: RecordSpec, pk: int):
    with transaction.atomic():
        obj = lock(spec, pk, include_deleted=True)
        policies.require(actor, RECYCLE_BIN, spec.entity_type_id, obj)
        if obj.deleted_at is None:
            return obj
        obj.deleted_at = None
        obj.save(update_fields=["deleted_at"])
        for hook in spec.hooks:
            hook.after_restore(obj, spec)
        history.entry(actor, spec.entity_type_id, obj.pk, "restored")
        audit.record(actor, "record.restored", entity_type_id=spec.entity_type_id, entity_id=obj.pk, count=1,
                     title=str(obj)[:200])
        outbox.emit(actor, f"{spec.code}.restored", spec.entity_type_id, obj.pk)
        return obj


def purge_one(actor: Actor, spec: RecordSpec, pk: int) -> None:
    """Remove a record from the recycle bin for good (an administrator's audited action).

    Its phones, e-mails and observers go with it; the timeline and stage history stay as history.
    """
    from .models import Observer

    with transaction.atomic():
        obj = lock(spec, pk, include_deleted=True)
        policies.require(actor, RECYCLE_BIN, spec.entity_type_id, obj)
        if obj.deleted_at is None:
            raise Conflict(_("Only a record in the recycle bin can be purged; delete it first."))
        for hook in spec.hooks:
            hook.purge(obj, spec)
        Observer.objects.filter(entity_type_id=spec.entity_type_id, entity_id=obj.pk).delete()
        title = str(obj)[:200]
        obj.delete()
        audit.record(actor, "record.purged", entity_type_id=spec.entity_type_id, entity_id=pk, count=1, title=title)
        outbox.emit(actor, f"{spec.code}.purged", spec.entity_type_id, pk)


def set_observers(actor: Actor, spec: RecordSpec, pk: int, user_ids: list[int]) -> list[int]:
    """Replace the observers of a record (F30). Observers may read the record."""
    from django.contrib.auth import get_user_model

    from .models import Observer

    if not isinstance(user_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in user_ids):
        raise ValidationFailed(_("Observers must be a list of user ids."), fields={"observers": [_("list of ids")]})
    with transaction.atomic():
        obj = lock(spec, pk)
        policies.require(actor, policies.READ, spec.entity_type_id, obj)
        policies.require(actor, policies.UPDATE, spec.entity_type_id, obj)
        wanted = set(user_ids)
        found = set(get_user_model().objects.filter(pk__in=wanted, is_active=True).values_list("id", flat=True))
        if found != wanted:
            raise ValidationFailed(_("Some observers are not active users."),
                                   fields={"observers": [str(i) for i in sorted(wanted - found)]})
        current = set(Observer.objects.filter(entity_type_id=spec.entity_type_id, entity_id=obj.pk)
                      .values_list("user_id", flat=True))
        if current == wanted:
            return sorted(wanted)
        Observer.objects.filter(entity_type_id=spec.entity_type_id, entity_id=obj.pk,
                                user_id__in=current - wanted).delete()
        Observer.objects.bulk_create([Observer(entity_type_id=spec.entity_type_id, entity_id=obj.pk, user_id=u)
                                      for u in wanted - current])
        history.entry(actor, spec.entity_type_id, obj.pk, "updated", changes={"observers": [sorted(current), sorted(wanted)]})
        outbox.emit(actor, f"{spec.code}.updated", spec.entity_type_id, obj.pk, {"changed": ["observers"]})
        return sorted(wanted)
