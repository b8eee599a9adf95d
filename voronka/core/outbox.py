"""The event outbox: actions write events in their transaction; consumers get them after commit.

Consumers register with ``subscribe(name_or_prefix, fn)`` from an ``AppConfig.ready``.
Dispatch claims each event with a conditional UPDATE that takes a lease, so two dispatchers
(the web process right after commit and the worker sweeping leftovers) do not deliver it at
the same time. Only after every consumer ran is the event marked dispatched. A process that
dies between commit and dispatch, or in the middle of delivering, leaves the event pending or
its lease expiring; the worker's sweep (``voronka worker``) delivers it again later. Delivery
is therefore at least once: consumers must be idempotent (automation keys its runs by event
and rule), and nothing is lost.
"""

from __future__ import annotations

import datetime
import logging
import traceback
from collections import defaultdict
from collections.abc import Callable

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import fastinsert
from .actor import Actor
from .history import jsonable
from .models import OutboxEvent

log = logging.getLogger(__name__)

Consumer = Callable[[OutboxEvent], None]
_consumers: dict[str, list[Consumer]] = defaultdict(list)
_local = {"scheduled": False}


def subscribe(pattern: str, consumer: Consumer) -> None:
    """``pattern`` is an exact event name, a prefix ending in '.' (``"deal."``) or ``"*"``."""
    if consumer not in _consumers[pattern]:
        _consumers[pattern].append(consumer)


def unsubscribe(pattern: str, consumer: Consumer) -> None:
    if consumer in _consumers.get(pattern, []):
        _consumers[pattern].remove(consumer)


def consumers_for(name: str) -> list[Consumer]:
    found = list(_consumers.get(name, []))
    for pattern, fns in _consumers.items():
        if pattern == "*" or (pattern.endswith(".") and name.startswith(pattern)):
            found.extend(fns)
    return found


def build(actor: Actor, name: str, entity_type_id: int | None, entity_id: int | None, payload: dict | None = None) -> OutboxEvent:
    return OutboxEvent(**row(actor, name, entity_type_id, entity_id, payload))


def row(actor: Actor, name: str, entity_type_id: int | None, entity_id: int | None, payload: dict | None = None) -> dict:
    """The columns of one event (``emit_rows`` writes many at once without building instances)."""
    return {"name": name, "entity_type_id": entity_type_id, "entity_id": entity_id, "payload": jsonable(payload or {}),
            "actor_kind": actor.kind, "actor_user_id": actor.user_id, "cause": actor.cause[:100], "depth": actor.depth}


def emit(actor: Actor, name: str, entity_type_id: int | None = None, entity_id: int | None = None,
         payload: dict | None = None) -> OutboxEvent:
    event = build(actor, name, entity_type_id, entity_id, payload)
    fastinsert.insert([event], returning=True)  # the statement is built once, not by the ORM on every event
    _schedule_dispatch()
    return event


def emit_many(events: list[OutboxEvent]) -> None:
    fastinsert.insert(events)
    _schedule_dispatch()


def emit_rows(rows: list[dict]) -> None:
    fastinsert.insert_rows(OutboxEvent, rows)
    _schedule_dispatch()


def _schedule_dispatch() -> None:
    from django.conf import settings

    if not _consumers or not settings.VORONKA_OUTBOX_DISPATCH_ON_COMMIT:
        return  # the worker's sweep delivers (every --interval seconds); the request pays nothing for it
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(entry[1] is dispatch_pending for entry in connection.run_on_commit):
        return  # one dispatch after the commit covers every event of the transaction
    transaction.on_commit(dispatch_pending)


LEASE = datetime.timedelta(minutes=5)


def dispatch_pending(limit: int = 1000) -> int:
    """Deliver pending events to consumers; returns how many were delivered."""
    delivered = 0
    now = timezone.now()
    pending = list(OutboxEvent.objects.filter(dispatched_at__isnull=True)
                   .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).order_by("id")[:limit])
    for event in pending:
        now = timezone.now()
        claimed = OutboxEvent.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now), pk=event.pk, dispatched_at__isnull=True,
        ).update(claimed_until=now + LEASE, attempts=F("attempts") + 1)
        if not claimed:
            continue
        errors = []
        for consumer in consumers_for(event.name):
            try:
                consumer(event)
            except Exception:  # a consumer's failure is recorded, never swallowed silently
                log.exception("outbox consumer %r failed on %s", consumer, event)
                errors.append(traceback.format_exc(limit=5))
        OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=timezone.now(),
                                                       error="\n".join(errors)[:10000])
        delivered += 1
    return delivered
