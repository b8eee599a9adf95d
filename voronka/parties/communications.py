"""Phones, e-mails, messenger handles and web addresses of any record, as a write-path hook and lookups for
duplicates and search.

A company's ``site`` field mirrors its first web address: writing ``site`` replaces that first address,
writing ``websites`` sets ``site`` to the first of them (or clears it)."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from voronka.core import fastinsert, instances
from voronka.core.actor import Actor
from voronka.core.normalize import normalize_email, normalize_handle, normalize_phone, normalize_site
from voronka.core.recordkit import Hook, WriteContext

from .models import Communication

MAX_VALUES = 20

# payload key → kind
KEYS = {"phones": "phone", "emails": "email", "messengers": "im", "websites": "web"}
KINDS = tuple(KEYS.values())
_PLAIN = ("work", "mobile", "home", "fax", "other")
TYPES = {
    "phone": _PLAIN,
    "email": _PLAIN,
    "im": ("telegram", "whatsapp", "viber", "vk", "max", "skype", "bitrix24", "openline", "imol", "icq", "msn",
           "jabber", "other"),
    "web": ("work", "home", "vk", "livejournal", "twitter", "other"),
}
DEFAULT_TYPE = {"phone": "mobile", "email": "work", "im": "other", "web": "work"}


def normalize(kind: str, value: str, value_type: str = "") -> str:
    """The lookup form of a value of a kind; raises ValidationError."""
    if kind == "phone":
        return normalize_phone(value)
    if kind == "email":
        return normalize_email(value)
    if kind == "im":
        return normalize_handle(value, value_type)
    return normalize_site(value)


def empty() -> dict[str, list]:
    return {kind: [] for kind in KINDS}


def parse_values(kind: str, raw) -> list[Communication]:
    """Accept ["+7…", …] or [{"value": "+7…", "type": "mobile"}, …]; raise ValueError with a message.

    Messengers: ``{"value": "@ivanov", "type": "telegram"}``; a value without a type is «other»."""
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
        value_type = DEFAULT_TYPE[kind]
        if isinstance(item, dict):
            value = item.get("value")
            value_type = item.get("type") or item.get("value_type") or value_type
            if value_type not in TYPES[kind]:
                raise ValueError(_("unknown type «%(t)s»") % {"t": value_type})
        else:
            value = item
        if not isinstance(value, str):
            raise ValueError(_("must be text"))
        if len(value) > 254:
            raise ValueError(_("is too long"))
        try:
            normalized = normalize(kind, value, value_type)
        except ValidationError as exc:
            raise ValueError(exc.messages[0]) from None
        key = (value_type, normalized) if kind == "im" else normalized
        if key in seen:
            continue
        seen.add(key)
        result.append(instances.new(Communication, kind=kind, value=value.strip(), normalized=normalized,
                                    value_type=value_type, sort=position))
    return result


class CommunicationsHook(Hook):
    keys = tuple(KEYS)

    def prepare(self, ctx: WriteContext) -> None:
        for key, kind in KEYS.items():
            if key not in ctx.data:
                continue
            try:
                ctx.state[key] = parse_values(kind, ctx.data[key])
                ctx.state["dirty"] = True
            except ValueError as exc:
                ctx.error(key, str(exc))
        if "site" in ctx.spec.writable and "websites" not in ctx.errors:
            self._mirror_site(ctx)

    def _mirror_site(self, ctx: WriteContext) -> None:
        """Keep a company's ``site`` equal to its first web address."""
        if "websites" in ctx.state:
            first = ctx.state["websites"][0].value[:255] if ctx.state["websites"] else ""
            if first != (ctx.obj.site or ""):
                if not ctx.creating:
                    ctx.changes["site"] = [ctx.obj.site or "", first]
                ctx.obj.site = first
            return
        if "site" not in ctx.data or "site" in ctx.errors:
            return
        site = (ctx.obj.site or "").strip()
        existing = [] if ctx.creating else list(Communication.objects.filter(
            entity_type_id=ctx.spec.entity_type_id, entity_id=ctx.obj.pk, kind="web"))
        if existing and site and existing[0].value == site:
            return
        rest = [{"value": c.value, "type": c.value_type} for c in existing[1:]]
        try:
            ctx.state["websites"] = parse_values("web", ([{"value": site, "type": existing[0].value_type
                                                            if existing else "work"}] if site else []) + rest)
        except ValueError as exc:
            ctx.error("site", str(exc))
            return
        ctx.state["dirty"] = True
        ctx.obj.site = ctx.state["websites"][0].value[:255] if ctx.state["websites"] else ""  # cleared: the next one
        if "site" in ctx.changes:
            ctx.changes["site"] = [ctx.changes["site"][0], ctx.obj.site]

    staged_create = True  # after_create writes only through fastinsert

    def after_create(self, actor: Actor, contexts: Sequence[WriteContext]) -> None:
        rows = []
        for ctx in contexts:
            written = empty()
            for key in KEYS:
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
        for key, kind in KEYS.items():
            if key not in ctx.state:
                continue
            existing = Communication.objects.filter(entity_type_id=type_id, entity_id=pk, kind=kind)
            before = [c.value for c in existing]
            new = ctx.state[key]
            if [c.normalized for c in existing] == [c.normalized for c in new] and \
                    [c.value_type for c in existing] == [c.value_type for c in new] and \
                    (kind in ("phone", "email") or [c.value for c in existing] == [c.value for c in new]):
                continue
            existing.delete()
            for comm in new:
                comm.entity_type_id, comm.entity_id = type_id, pk
            Communication.objects.bulk_create(new)
            changes[key] = [before, [c.value for c in new]]
        ctx.changes.update(changes)


def values_of(entity_type_id: int, ids: Sequence[int]) -> dict[int, dict[str, list[Communication]]]:
    """Phones, e-mails, messengers and sites of many records in one query: {id: {"phone": [...], "email": [...],
    "im": [...], "web": [...]}}."""
    result: dict[int, dict[str, list[Communication]]] = {pk: empty() for pk in ids}
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
