"""Writing a record's history: one helper used by every action."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterable
from typing import Any

from . import fastinsert
from .actor import Actor
from .models import TimelineBinding, TimelineEntry


def jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


# callables run with every saved entry, in its transaction (the leads' first action: ``voronka/leads/firstaction.py``)
listeners: list = []


def entry(actor: Actor, entity_type_id: int, entity_id: int, kind: str, *, text: str = "",
          changes: dict | None = None, data: dict | None = None, also: Iterable[tuple[int, int]] = (),
          save: bool = True) -> TimelineEntry:
    """Build (and by default save) a timeline entry on a record, optionally bound to others."""
    obj = TimelineEntry(**entry_row(actor, entity_type_id, entity_id, kind, text=text, changes=changes, data=data))
    if save:
        fastinsert.insert([obj], returning=True)  # the statement is built once, not by the ORM on every entry
        bind(obj, also)
        for listener in listeners:
            listener(obj)
    return obj


def entry_row(actor: Actor, entity_type_id: int, entity_id: int, kind: str, *, text: str = "",
              changes: dict | None = None, data: dict | None = None, label: str | None = None) -> dict:
    """The columns of a timeline entry (``fastinsert.insert_rows`` writes many of them at once)."""
    return {"entity_type_id": entity_type_id, "entity_id": entity_id, "kind": kind, "actor_kind": actor.kind,
            "actor_user_id": actor.user_id, "actor_label": (actor.label if label is None else label)[:200],
            "entry_point": actor.entry_point[:20], "cause": actor.cause[:100], "text": text,
            "changes": jsonable(changes or {}), "data": jsonable(data or {})}


def bind(obj: TimelineEntry, targets: Iterable[tuple[int, int]]) -> None:
    rows = [TimelineBinding(entry=obj, entity_type_id=t, entity_id=i) for t, i in targets]
    if rows:
        TimelineBinding.objects.bulk_create(rows, ignore_conflicts=True)


def bind_history(source: tuple[int, int], targets: Iterable[tuple[int, int]]) -> int:
    """Show every entry of ``source`` (its own and those bound to it) on ``targets`` too."""
    from django.db.models import Q

    stype, sid = source
    ids = list(TimelineEntry.objects.filter(
        Q(entity_type_id=stype, entity_id=sid) | Q(bindings__entity_type_id=stype, bindings__entity_id=sid)
    ).values_list("id", flat=True).distinct())
    rows = [TimelineBinding(entry_id=e, entity_type_id=t, entity_id=i) for e in ids for t, i in targets]
    TimelineBinding.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(ids)


def diff(before: dict, after: dict) -> dict:
    return {k: [jsonable(before.get(k)), jsonable(v)] for k, v in after.items() if jsonable(before.get(k)) != jsonable(v)}
