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
from django.db.models import Q
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
    fastinsert.then(_schedule_dispatch)  # inside ``fastinsert.staged()``: with the rows, in the transaction


def _schedule_dispatch() -> None:
    from django.conf import settings

    if not _consumers or not settings.VORONKA_OUTBOX_DISPATCH_ON_COMMIT:
        return  # the worker's sweep delivers (every --interval seconds); the request pays nothing for it
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(entry[1] is dispatch_pending for entry in connection.run_on_commit):
        return  # one dispatch after the commit covers every event of the transaction
    transaction.on_commit(dispatch_pending)


LEASE = datetime.timedelta(minutes=5)
CHUNK = 50  # events claimed, delivered and marked done together (three statements, not two per event)


def dispatch_pending(limit: int = 1000) -> int:
    """Deliver pending events to consumers, oldest first; returns how many were delivered.

    They go ``CHUNK`` at a time: one ``UPDATE … RETURNING`` claims those still free (a lease that another dispatcher,
    the web process or a second worker, respects; it skips what is claimed and takes the next ones), they are read,
    each is handed to its consumers in order, then one ``UPDATE`` marks the chunk dispatched (an event whose consumer
    failed gets its error recorded on its own row). A dispatcher that dies mid-chunk leaves its events claimed until
    the lease ends; they are delivered again then (at least once, as before)."""
    now = timezone.now()
    ids = list(OutboxEvent.objects.filter(dispatched_at__isnull=True)
               .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).order_by("id")
               .values_list("id", flat=True)[:limit])
    delivered = 0
    for start in range(0, len(ids), CHUNK):
        claimed = _claim(ids[start:start + CHUNK])
        if not claimed:
            continue
        done, failed = [], []
        for event in OutboxEvent.objects.filter(pk__in=claimed).order_by("id"):
            errors = []
            for consumer in consumers_for(event.name):
                try:
                    consumer(event)
                except Exception:  # a consumer's failure is recorded, never swallowed silently
                    log.exception("outbox consumer %r failed on %s", consumer, event)
                    errors.append(traceback.format_exc(limit=5))
            if errors:
                failed.append((event.pk, "\n".join(errors)[:10000]))
            else:
                done.append(event.pk)
        _mark_done(done, failed)
        delivered += len(done) + len(failed)
    return delivered


def _statements(connection) -> tuple[str, str]:
    """The claim and the «done» ``UPDATE`` of a chunk, written once per database (``{ids}``: its placeholders)."""
    q = connection.ops.quote_name
    table, pk = q(OutboxEvent._meta.db_table), q(OutboxEvent._meta.pk.column)
    claimed, attempts, dispatched, error = (q(OutboxEvent._meta.get_field(f).column) for f in (
        "claimed_until", "attempts", "dispatched_at", "error"))
    return (f"UPDATE {table} SET {claimed} = %s, {attempts} = {attempts} + 1 WHERE {pk} IN ({{ids}}) AND "
            f"{dispatched} IS NULL AND ({claimed} IS NULL OR {claimed} < %s) RETURNING {pk}",
            f"UPDATE {table} SET {dispatched} = %s, {error} = %s WHERE {pk} IN ({{ids}})")


_sql: dict[str, tuple[str, str]] = {}


def _statements_of(connection) -> tuple[str, str]:
    sql = _sql.get(connection.vendor)
    if sql is None:
        sql = _sql[connection.vendor] = _statements(connection)
    return sql


def _claim(ids: list[int]) -> list[int]:
    """Take a lease on those of ``ids`` that are still pending and free; returns the ids this dispatcher got."""
    connection = transaction.get_connection()
    claim = _statements_of(connection)[0]
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(claim.format(ids=", ".join(["%s"] * len(ids))), [adapt(now + LEASE), *ids, adapt(now)])
        return [row[0] for row in cursor.fetchall()]


def _mark_done(done: list[int], failed: list[tuple[int, str]]) -> None:
    connection = transaction.get_connection()
    mark = _statements_of(connection)[1]
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        if done:
            cursor.execute(mark.format(ids=", ".join(["%s"] * len(done))), [now, "", *done])
        for pk, error in failed:
            cursor.execute(mark.format(ids="%s"), [now, error, pk])
