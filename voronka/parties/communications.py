"""Phones and e-mails of any record, as a write-path hook and lookups for duplicates and search."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from voronka.core import fastinsert
from voronka.core.actor import Actor
from voronka.core.normalize import normalize_email, normalize_phone
from voronka.core.recordkit import Hook, WriteContext

from .models import Communication

MAX_VALUES = 20


def parse_values(kind: str, raw) -> list[Communication]:
    """Accept ["+7…", …] or [{"value": "+7…", "type": "mobile"}, …]; raise ValueError with a message."""
    if raw is None:
        return []
    if isinstance(raw, str | dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise ValueError(_("must be a list"))
    if len(raw) > MAX_VALUES:
        raise ValueError(_("at most %(n)s values") % {"n": MAX_VALUES})
    result, seen = [], set()
    for position, item in enumerate(raw):
        value_type = Communication.ValueType.MOBILE if kind == "phone" else Communication.ValueType.WORK
        if isinstance(item, dict):
            value = item.get("value")
            value_type = item.get("type") or item.get("value_type") or value_type
            if value_type not in Communication.ValueType.values:
                raise ValueError(_("unknown type «%(t)s»") % {"t": value_type})
        else:
            value = item
        if not isinstance(value, str):
            raise ValueError(_("must be text"))
        if len(value) > 254:
            raise ValueError(_("is too long"))
        try:
            normalized = normalize_phone(value) if kind == "phone" else normalize_email(value)
        except ValidationError as exc:
            raise ValueError(exc.messages[0]) from None
        if normalized in seen:
            continue
        seen.add(normalized)
        result.append(Communication(kind=kind, value=value.strip(), normalized=normalized, value_type=value_type,
                                    sort=position))
    return result


class CommunicationsHook(Hook):
    keys = ("phones", "emails")

    def prepare(self, ctx: WriteContext) -> None:
        for key, kind in (("phones", "phone"), ("emails", "email")):
            if key not in ctx.data:
                continue
            try:
                ctx.state[key] = parse_values(kind, ctx.data[key])
                ctx.state["dirty"] = True
            except ValueError as exc:
                ctx.error(key, str(exc))

    def after_create(self, actor: Actor, contexts: Sequence[WriteContext]) -> None:
        rows = []
        for ctx in contexts:
            written = {"phone": [], "email": []}
            for key in ("phones", "emails"):
                for comm in ctx.state.get(key, ()):
                    comm.entity_type_id, comm.entity_id = ctx.spec.entity_type_id, ctx.obj.pk
                    rows.append(comm)
                    written[comm.kind].append(comm)
            ctx.obj.written_communications = written  # what a caller may show without reading them back
        if rows:
            fastinsert.insert(rows)

    def purge(self, obj, spec) -> None:
        Communication.objects.filter(entity_type_id=spec.entity_type_id, entity_id=obj.pk).delete()

    def after_update(self, actor: Actor, ctx: WriteContext) -> None:
        type_id, pk = ctx.spec.entity_type_id, ctx.obj.pk
        changes = {}
        for key, kind in (("phones", "phone"), ("emails", "email")):
            if key not in ctx.state:
                continue
            existing = Communication.objects.filter(entity_type_id=type_id, entity_id=pk, kind=kind)
            before = [c.value for c in existing]
            new = ctx.state[key]
            if [c.normalized for c in existing] == [c.normalized for c in new] and \
                    [c.value_type for c in existing] == [c.value_type for c in new]:
                continue
            existing.delete()
            for comm in new:
                comm.entity_type_id, comm.entity_id = type_id, pk
            Communication.objects.bulk_create(new)
            changes[key] = [before, [c.value for c in new]]
        ctx.changes.update(changes)


def values_of(entity_type_id: int, ids: Sequence[int]) -> dict[int, dict[str, list[Communication]]]:
    """Phones and e-mails of many records in one query: {id: {"phone": [...], "email": [...]}}."""
    result: dict[int, dict[str, list[Communication]]] = {pk: {"phone": [], "email": []} for pk in ids}
    if not ids:
        return result
    for comm in Communication.objects.filter(entity_type_id=entity_type_id, entity_id__in=list(ids)):
        result[comm.entity_id][comm.kind].append(comm)
    return result


def find_owners(kind: str, normalized_values: Sequence[str], entity_type_ids: Sequence[int] | None = None):
    qs = Communication.objects.filter(kind=kind, normalized__in=list(normalized_values))
    if entity_type_ids:
        qs = qs.filter(entity_type_id__in=list(entity_type_ids))
    return qs
