"""The scheduler: claims due runs and timers and executes them, exactly once for database effects.

``tick()`` is registered as a ``voronka worker`` job. Each tick:

1. **fires due timers** (``Timer.due_at <= now``, an indexed range, never a scan of open items): in one
   transaction per batch each timer is marked fired and its escalation run is created (unique key), or the
   timer is cancelled if the item has left that stay;
2. **claims due runs** with a lease: ``status=pending and scheduled_at <= now`` or ``status=running`` with an
   expired lease (its worker died). PostgreSQL: one ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)
   RETURNING`` statement, so several workers share the work; SQLite: a conditional UPDATE inside an IMMEDIATE transaction (writers are
   serialised). Every claim gets a fresh token;
3. **executes** each claimed run. A database effect runs in one transaction with the run's completion
   (the run row is locked and its token checked first; consecutive database runs share one transaction, see
   ``execute_batch``): a crash rolls both back and the run is claimed
   again when its lease expires, so it is applied exactly once. External effects (webhook, e-mail, SMS) are
   prepared in a transaction, sent outside it with the run's key as idempotency key, and retried with
   exponential backoff; they are delivered at least once.

Failures are stored on the run (``error``) and on the item's timeline; nothing is swallowed.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import traceback
from contextlib import contextmanager, nullcontext

from django.db import connection, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from voronka.core import clock, entity_types, fastinsert, history
from voronka.core.actor import Actor
from voronka.core.errors import ActionError
from voronka.core.models import OutboxEvent

from . import conditions, effects, limits, overdue, rules, triggers
from .models import Run, Timer

log = logging.getLogger(__name__)

BATCH = 50
ESCALATE = "escalate"


def tick() -> int:
    now = clock.now()
    work = fire_timers(now) + overdue.fire_due(now)
    token, ids, kinds = _claim(now, rules.setting("BATCH_SIZE", BATCH))
    if rules.setting("BATCH_TRANSACTIONS", 1):
        execute_claimed(ids, token, kinds)
    else:
        for pk in ids:
            execute(pk, token)
    return work + len(ids)


def execute_claimed(ids: list[int], token: str, kinds: dict[int, str] | None = None) -> None:
    """Execute claimed runs in their order: consecutive database runs in one transaction (``execute_batch``),
    external ones one by one (they cannot share a transaction with the outside world). ``kinds``: {run id:
    action} if the claim returned them."""
    if kinds is None:
        kinds = dict(Run.objects.filter(pk__in=ids).values_list("id", "action"))
    group: list[int] = []
    for pk in ids:
        if kinds.get(pk) in effects.EXTERNAL:
            execute_batch(group, token)
            group = []
            _execute_external(pk, token)
        elif pk in kinds:
            group.append(pk)
    execute_batch(group, token)


def execute_batch(ids: list[int], token: str) -> None:
    """Database runs in one transaction: each run's effect and its completion are applied together or not at
    all (a crash rolls the whole batch back and the runs are claimed again when the lease expires), and the
    batch pays for one commit instead of one per run.

    First the batch runs **without savepoints** (``_run_batch(savepoints=False)``): no SAVEPOINT/RELEASE round
    trips per run or per nested action. If any run raises (a refused action, an unexpected error, a database
    error), that whole transaction is rolled back, nothing of it stays, and the batch is run again with a
    savepoint per run (``savepoints=True``), where a refused action rolls back to its savepoint and fails alone
    and an unexpected error is retried after the batch like a single run's. If that batch fails too (a deadlock
    with another worker, a lost connection), each run is executed alone, as without batching. A run is
    therefore never lost (it is still claimed by us, or completed) and never applied twice (only a committed
    transaction applies it, and it commits its completion with it).

    What does not depend on the run is read once for the batch: the runs with their robots, limits and triggers
    (one locking query), the records they act on (one query per kind of record), and the completions are written
    together at the end (one UPDATE statement for the runs, one INSERT for their timeline lines), still inside
    the batch's transaction. A run's record is read again only after a run that may have changed records
    (anything but a comment, a task or a notification)."""
    if len(ids) <= 1:
        for pk in ids:
            _execute_db(pk, token)
        return
    if rules.setting("BATCH_OPTIMISTIC", 1):
        try:
            _run_batch(ids, token, savepoints=False)
            return
        except Exception:  # noqa: BLE001 - rolled back as a whole: run it again, each run in its savepoint
            log.debug("a batch of automation runs failed without savepoints; running it with them", exc_info=True)
    retry: list[tuple[int, str]] = []
    try:
        retry = _run_batch(ids, token, savepoints=True)
    except Exception:
        log.exception("a batch of automation runs failed; running them one by one")
        for pk in ids:
            _execute_db(pk, token)
        return
    for pk, error in retry:
        _fail(pk, token, error, retry=True)


class _BatchAbandoned(Exception):
    """The batch without savepoints cannot commit as it is: roll it back and run it with savepoints."""


@contextmanager
def _no_savepoints():
    """Inside the batch's transaction: nested ``atomic()`` blocks (the actions') open no savepoints. An error
    that leaves such a block then marks the whole transaction for rollback instead of its savepoint, which is
    what the batch without savepoints wants (it is then run again with them)."""
    # ``savepoint()`` asks ``_savepoint_allowed()`` (both backends): shadow it on this connection object only
    connection._savepoint_allowed = _never
    try:
        yield
    finally:
        del connection._savepoint_allowed


def _never() -> bool:
    return False


def _run_batch(ids: list[int], token: str, *, savepoints: bool) -> list[tuple[int, str]]:
    """One transaction for the batch (see ``execute_batch``). With ``savepoints`` each run has its own and a
    run that raises fails or is retried alone (returned: (run id, error) to retry after the transaction);
    without, any run that raises rolls the whole transaction back (the exception propagates)."""
    retry: list[tuple[int, str]] = []
    with transaction.atomic():
        runs = {r.pk: r for r in Run.objects.select_for_update(of=("self",))
                .select_related("robot", "limit", "trigger__stage").filter(pk__in=ids)}
        mine = [runs[pk] for pk in ids if pk in runs and runs[pk].status == Run.Status.RUNNING
                and runs[pk].claim_token == token]  # the others: someone else owns them now (our lease expired)
        records = _load_records(mine)
        finished: list[Run] = []
        with (nullcontext() if savepoints else _no_savepoints()), \
                (nullcontext() if savepoints else fastinsert.deferred(DEFERRED, chunk=max(16, len(mine)))):
            for run in mine:
                key = (run.entity_type_id, run.entity_id)
                record = records.get(key, _UNREAD) if records is not None else _UNREAD
                if not savepoints:
                    if run.action not in WRITES_ONLY:
                        fastinsert.flush_deferred()  # it might read the timeline or the outbox: write them first
                    _finished(run, *_apply(run, record))
                    finished.append(run)
                else:
                    try:
                        with transaction.atomic():
                            outcome = _apply(run, record)
                    except ActionError as exc:
                        _finished(run, Run.Status.FAILED, outputs=run.outputs,
                                  error=_format_action_error(exc)[:10000])
                        finished.append(run)
                    except Exception:
                        log.exception("automation run %s failed", run.pk)
                        retry.append((run.pk, _short_traceback()))
                    else:
                        _finished(run, *outcome)
                        finished.append(run)
                if records is None or run.action in effects.KEEPS_RECORDS:
                    pass
                elif run.action in OWN_RECORD_ONLY:
                    records[key] = _UNREAD  # it changed its record: a later run of that record reads it again
                else:
                    records = None  # it may have changed any record: the following runs read theirs again
            if connection.needs_rollback:  # an error was caught inside an action: nothing of it may commit
                raise _BatchAbandoned("an error inside a run marked the batch's transaction for rollback")
        _complete(finished)
    return retry


# Written at the end of a batch without savepoints (their ids are taken from the sequence in advance), one
# statement per table instead of one round trip per row: append-only rows that the runs below never read back.
DEFERRED = (history.TimelineEntry, OutboxEvent)

_UNREAD = object()
# What changes no record but the run's own (another run of that record in the batch reads it again).
OWN_RECORD_ONLY = {ESCALATE, triggers.MOVE, effects.A.SET_FIELDS, effects.A.CHANGE_RESPONSIBLE, effects.A.MOVE_STAGE,
                   effects.A.RETURN_TO_ORIGIN}
# What reads no timeline entry and no outbox event of the batch (the others flush the deferred rows first).
WRITES_ONLY = effects.KEEPS_RECORDS | OWN_RECORD_ONLY


def _load_records(runs: list[Run]) -> dict[tuple[int, int], object]:
    """The records of ``runs``, one query per kind of record: {(entity type id, id): record} (deleted ones
    included, as ``_target`` reads them; a missing key is a record that does not exist)."""
    wanted: dict[int, set[int]] = {}
    for run in runs:
        wanted.setdefault(run.entity_type_id, set()).add(run.entity_id)
    found: dict[tuple[int, int], object] = {}
    for type_id, pks in wanted.items():
        model = entity_types.get(type_id).model
        qs = model.objects.filter(pk__in=pks)
        if any(f.name == "responsible" and f.is_relation for f in model._meta.concrete_fields):
            qs = qs.select_related("responsible")  # who most robots address (tasks, notifications, the head)
        for obj in qs:
            found[(type_id, obj.pk)] = obj
    for run in runs:
        found.setdefault((run.entity_type_id, run.entity_id), None)
    return found


def _apply(run: Run, record=_UNREAD) -> tuple[str, dict | None, str]:
    """Decide and apply one locked, claimed database run (inside the caller's transaction); returns its
    outcome (status, outputs, error) for ``_finish``. ``record``: the run's record if the caller has read it."""
    obj, reason = _target(run, record)
    if reason:
        return Run.Status.SKIPPED, None, reason
    actor = actor_for(run)
    if run.action == ESCALATE:
        outputs = limits.escalate(actor, obj, run)
    elif run.action == triggers.MOVE:
        outputs = triggers.move(actor, obj, run.trigger, run)
    else:
        outputs = effects.DB[run.action][1](actor, obj, run.robot.params or {}, run)
    return Run.Status.DONE, outputs, ""


# --- timers ----------------------------------------------------------------------------------------------

def _postgres() -> bool:
    return connection.vendor == "postgresql"


def fire_timers(now: datetime.datetime, limit: int = BATCH) -> int:
    """Fire up to ``limit`` due timers in one transaction: each is marked fired and its escalation run created
    (the run's key is unique per timer and stay, so a timer fired twice still makes one run), or cancelled if
    the item has left that stay. PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several workers share them.
    A constant number of statements whatever ``limit``: the timers, their records (one query per kind of
    record), the runs (one INSERT), the two status updates."""
    due = Timer.objects.filter(status=Timer.Status.PENDING, due_at__lte=now)
    if not due.exists():
        return 0  # the usual case, checked every tick: one indexed read, no transaction
    with transaction.atomic():
        qs = due.order_by("due_at", "id")
        if _postgres():
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        timers = list(qs.select_related("limit")[:limit])
        if not timers:
            return 0
        wanted: dict[int, set[int]] = {}
        for timer in timers:
            wanted.setdefault(timer.entity_type_id, set()).add(timer.entity_id)
        stays = {}
        for type_id, pks in wanted.items():
            model = entity_types.get(type_id).model
            for pk, stage_id, entered, deleted in model.objects.filter(pk__in=pks).values_list(
                    "pk", "stage_id", "stage_changed_at", "deleted_at"):
                stays[(type_id, pk)] = (stage_id, entered, deleted)
        fired, cancelled, runs = [], [], []
        for timer in timers:
            stay = stays.get((timer.entity_type_id, timer.entity_id))
            if stay is None or stay[2] is not None or stay[0] != timer.stage_id or stay[1] != timer.entered_at:
                cancelled.append(timer.pk)  # the stay it was planned for is over
                continue
            stamp = int(timer.entered_at.timestamp() * 1_000_000)
            runs.append(Run(key=f"timer:{timer.pk}:{stamp}", limit=timer.limit, step=timer.step,
                            rule=f"limit:{timer.limit_id}:{timer.step}", action=ESCALATE,
                            entity_type_id=timer.entity_type_id, entity_id=timer.entity_id, depth=1,
                            scheduled_at=timer.due_at, inputs={"stage": timer.stage_id,
                                                               "entered_at": timer.entered_at.isoformat(),
                                                               "timer": timer.pk}))
            fired.append(timer.pk)
        if runs:
            Run.objects.bulk_create(runs, ignore_conflicts=True)  # a run made already (fired twice) stays one
            Timer.objects.filter(pk__in=fired).update(status=Timer.Status.FIRED)
        if cancelled:
            Timer.objects.filter(pk__in=cancelled).update(status=Timer.Status.CANCELLED)
    return len(fired)


# --- claiming ------------------------------------------------------------------------------------------

def _due_ids(now: datetime.datetime, limit: int, lock: bool) -> list[int]:
    pending = Run.objects.filter(status=Run.Status.PENDING, scheduled_at__lte=now)
    stale = Run.objects.filter(status=Run.Status.RUNNING, lease_until__lt=now)
    if lock:
        pending, stale = pending.select_for_update(skip_locked=True), stale.select_for_update(skip_locked=True)
    ids = list(stale.order_by("lease_until", "id").values_list("id", flat=True)[:limit])
    ids += list(pending.order_by("scheduled_at", "id").values_list("id", flat=True)[:limit - len(ids)])
    return ids


def claim_runs(now: datetime.datetime, limit: int = BATCH) -> tuple[str, list[int]]:
    """Take up to ``limit`` due runs for this worker; returns (claim token, run ids in execution order)."""
    token, ids, _kinds = _claim(now, limit)
    return token, ids


def _claim(now: datetime.datetime, limit: int = BATCH) -> tuple[str, list[int], dict[int, str] | None]:
    """``claim_runs`` plus {run id: action} when the claim read them (PostgreSQL), else None."""
    token = secrets.token_hex(16)
    lease = now + datetime.timedelta(seconds=rules.lease_seconds())
    if _postgres():
        rows = _claim_statement(now, limit, token, lease)
        return token, [pk for pk, _action in rows], dict(rows)
    with transaction.atomic():
        ids = _due_ids(now, limit, lock=False)
        if not ids:
            return token, [], None
        # the condition is checked again by the UPDATE itself: a run claimed meanwhile is not taken twice
        from django.db.models import Q

        Run.objects.filter(Q(status=Run.Status.PENDING, scheduled_at__lte=now)
                           | Q(status=Run.Status.RUNNING, lease_until__lt=now), pk__in=ids).update(
            status=Run.Status.RUNNING, lease_until=lease, claim_token=token, attempts=F("attempts") + 1)
    claimed = set(Run.objects.filter(pk__in=ids, claim_token=token, status=Run.Status.RUNNING)
                  .values_list("id", flat=True))
    return token, [pk for pk in ids if pk in claimed], None


_CLAIM_SQL: list[str] = []


def _claim_statement(now: datetime.datetime, limit: int, token: str,
                     lease: datetime.datetime) -> list[tuple[int, str]]:
    """PostgreSQL: the claim in one statement (one round trip, its own transaction). Runs whose lease expired
    (their worker died) come first, then due pending runs, each part in its index order; ``FOR UPDATE SKIP
    LOCKED`` leaves the rows another worker is claiming to it, and a row committed by another worker meanwhile
    is checked again against the WHERE after its lock, so no run is claimed twice. Returns (id, action) in
    execution order."""
    if not _CLAIM_SQL:
        meta, q = Run._meta, connection.ops.quote_name
        t, c = q(meta.db_table), {f: q(meta.get_field(f).column) for f in (
            "id", "status", "scheduled_at", "lease_until", "claim_token", "attempts", "action")}
        _CLAIM_SQL.append(
            f"WITH stale AS (SELECT {c['id']} AS id, 0 AS part, {c['lease_until']} AS at FROM {t} "
            f"WHERE {c['status']} = %s AND {c['lease_until']} < %s ORDER BY {c['lease_until']}, {c['id']} "
            f"LIMIT %s FOR UPDATE SKIP LOCKED), "
            f"pending AS (SELECT {c['id']} AS id, 1 AS part, {c['scheduled_at']} AS at FROM {t} "
            f"WHERE {c['status']} = %s AND {c['scheduled_at']} <= %s ORDER BY {c['scheduled_at']}, {c['id']} "
            f"LIMIT %s FOR UPDATE SKIP LOCKED), "
            f"taken AS (SELECT id, part, at FROM stale UNION ALL SELECT id, part, at FROM pending "
            f"ORDER BY part, at, id LIMIT %s) "
            f"UPDATE {t} r SET {c['status']} = %s, {c['lease_until']} = %s, {c['claim_token']} = %s, "
            f"{c['attempts']} = r.{c['attempts']} + 1 FROM taken WHERE r.{c['id']} = taken.id "
            f"RETURNING r.{c['id']}, r.{c['action']}, taken.part, taken.at")
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL[0], [Run.Status.RUNNING.value, now, limit, Run.Status.PENDING.value, now, limit,
                                       limit, Run.Status.RUNNING.value, lease, token])
        rows = cursor.fetchall()
    rows.sort(key=lambda r: (r[2], r[3], r[0]))
    return [(pk, action) for pk, action, _part, _at in rows]


def _lock(pk: int, token: str) -> Run | None:
    run = Run.objects.select_for_update(of=("self",)).select_related("robot", "limit", "trigger__stage").filter(pk=pk).first()
    if run is None or run.status != Run.Status.RUNNING or run.claim_token != token:
        return None  # someone else owns it now (our lease expired): never apply it twice
    return run


# --- execution -----------------------------------------------------------------------------------------

def actor_for(run: Run) -> Actor:
    if run.action == triggers.MOVE:
        return Actor.system(cause=f"trigger:{run.trigger_id or run.rule.split(':')[1]}", entry_point="automation",
                            depth=run.depth)
    cause = f"robot:{run.robot_id}" if run.robot_id else run.rule.rsplit(":", 1)[0]
    return Actor.system(cause=cause, entry_point="automation", depth=run.depth)


def label(run: Run) -> str:
    if run.robot is not None:
        return run.robot.name
    if run.action == ESCALATE:
        return _("Stage time limit")
    if run.action == triggers.MOVE:
        return run.trigger.name if run.trigger is not None else _("Trigger")
    return run.rule


def _log_data(run: Run) -> dict:
    return {"run": run.pk, "rule": run.rule, "action": run.action, "status": run.status,
            "error": run.error[:1000], "outputs": run.outputs, "attempts": run.attempts}


def log_run(run: Run, name: str | None = None) -> None:
    """The run's line on the item's timeline (in the transaction that decides the run's outcome)."""
    history.entry(actor_for(run), run.entity_type_id, run.entity_id, "automation", text=name or label(run),
                  data=_log_data(run))


def _log_row(run: Run) -> dict:
    """``log_run``'s line as a row for ``fastinsert.insert_rows``."""
    return history.entry_row(actor_for(run), run.entity_type_id, run.entity_id, "automation", text=label(run),
                             data=_log_data(run))


def _finished(run: Run, status: str, outputs: dict | None = None, error: str = "") -> None:
    run.status, run.outputs, run.error = status, outputs or {}, error
    run.finished_at, run.lease_until = clock.now(), None


def _finish(run: Run, status: str, outputs: dict | None = None, error: str = "") -> None:
    _finished(run, status, outputs, error)
    run.save(update_fields=["status", "outputs", "error", "finished_at", "lease_until"])
    log_run(run)


_COMPLETE_SQL: dict[str, str] = {}


def _complete(runs: list[Run]) -> None:
    """Write the completions of ``runs`` (``_finished`` set them) and their timeline lines: one UPDATE statement
    (executed for every run) and one INSERT, whatever the batch's size. Inside the batch's transaction."""
    if not runs:
        return
    sql = _COMPLETE_SQL.get(connection.vendor)
    meta = Run._meta
    if sql is None:
        q = connection.ops.quote_name
        cols = ", ".join(f"{q(meta.get_field(f).column)} = %s" for f in ("status", "outputs", "error", "finished_at"))
        sql = _COMPLETE_SQL[connection.vendor] = (
            f"UPDATE {q(meta.db_table)} SET {cols}, {q(meta.get_field('lease_until').column)} = NULL "
            f"WHERE {q(meta.pk.column)} = %s")
    outputs, finished_at = meta.get_field("outputs"), meta.get_field("finished_at")
    rows = [(run.status, outputs.get_db_prep_save(run.outputs, connection), run.error,
             finished_at.get_db_prep_save(run.finished_at, connection), run.pk) for run in runs]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    fastinsert.insert_rows(history.TimelineEntry, [_log_row(run) for run in runs])


def _target(run: Run, record=_UNREAD):
    """(record, None) if the run should act now, or (None/record, reason) if it is to be skipped.
    ``record``: the run's record (None: it does not exist) if the caller has read it in this transaction."""
    if record is _UNREAD:
        record = entity_types.get(run.entity_type_id).model.objects.filter(pk=run.entity_id).first()
    obj = record
    if obj is None or obj.deleted_at is not None:
        return None, _("The record was deleted.")
    if run.action == ESCALATE:
        if run.limit is None:
            return obj, _("The stage time limit was removed.")
        entered = parse_datetime(run.inputs.get("entered_at", ""))
        if obj.stage_id != run.limit.stage_id or obj.stage_changed_at != entered:
            return obj, _("The record has left the stage.")
        return obj, None
    if run.action == triggers.MOVE:
        return obj, triggers.why_not(run.trigger, obj) or None
    robot = run.robot
    if robot is None:
        return obj, _("The robot was deleted.")
    if not robot.enabled:
        return obj, _("The robot is disabled.")
    event_at = parse_datetime(run.inputs.get("event_at", ""))
    if obj.stage_id != robot.stage_id or (event_at is not None and obj.stage_changed_at > event_at):
        return obj, _("The record has left the stage.")
    try:
        holds = conditions.check(obj, robot.conditions)
    except conditions.ConditionError as exc:
        raise ActionError(str(exc), code="bad_condition") from None
    if not holds:
        return obj, _("The conditions do not hold.")
    return obj, None


def _fail(pk: int, token: str, error: str, *, retry: bool) -> None:
    with transaction.atomic():
        run = _lock(pk, token)
        if run is None:
            return
        if retry and run.attempts < rules.max_attempts():
            run.status, run.error, run.lease_until = Run.Status.PENDING, error[:10000], None
            run.scheduled_at = clock.now() + datetime.timedelta(seconds=rules.backoff_seconds(run.attempts))
            run.save(update_fields=["status", "error", "lease_until", "scheduled_at"])
            return
        _finish(run, Run.Status.FAILED, outputs=run.outputs, error=error[:10000])


def execute(pk: int, token: str) -> None:
    run = Run.objects.filter(pk=pk).only("action").first()
    if run is None:
        return
    if run.action in effects.EXTERNAL:
        _execute_external(pk, token)
    else:
        _execute_db(pk, token)


def _short_traceback() -> str:
    return traceback.format_exc(limit=6)


def _execute_db(pk: int, token: str) -> None:
    try:
        with transaction.atomic():
            run = _lock(pk, token)
            if run is None:
                return
            _finish(run, *_apply(run))
    except ActionError as exc:  # the action refused: retrying would not help
        _fail(pk, token, _format_action_error(exc), retry=False)
    except Exception:
        log.exception("automation run %s failed", pk)
        _fail(pk, token, _short_traceback(), retry=True)


def _format_action_error(exc: ActionError) -> str:
    text = exc.message
    if exc.fields:
        text += " " + "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
    return text


def _execute_external(pk: int, token: str) -> None:
    _check, prepare, send = None, None, None
    try:
        with transaction.atomic():
            run = _lock(pk, token)
            if run is None:
                return
            _check, prepare, send = effects.EXTERNAL[run.action]
            if "request" not in run.inputs:  # built once: every retry sends exactly the same request
                obj, reason = _target(run)
                if reason:
                    _finish(run, Run.Status.SKIPPED, error=reason)
                    return
                run.inputs = {**run.inputs, "request": prepare(actor_for(run), obj, run.robot.params or {}, run)}
                run.save(update_fields=["inputs"])
            request = run.inputs["request"]
            if isinstance(request, dict) and request.get("skip"):  # e.g. the client unsubscribed: nothing to send
                _finish(run, Run.Status.SKIPPED, outputs={"to": request.get("to", [])}, error=str(request["skip"]))
                return
            params = (run.robot.params or {}) if run.robot else {}
    except ActionError as exc:
        _fail(pk, token, _format_action_error(exc), retry=False)
        return
    except Exception:
        log.exception("automation run %s could not be prepared", pk)
        _fail(pk, token, _short_traceback(), retry=True)
        return
    try:
        outputs = send(run.inputs["request"], params, run)
    except effects.ExternalError as exc:
        _fail(pk, token, str(exc), retry=True)
        return
    except Exception:
        log.exception("automation run %s: the external effect failed", pk)
        _fail(pk, token, _short_traceback(), retry=True)
        return
    with transaction.atomic():
        run = _lock(pk, token)
        if run is not None:
            _finish(run, Run.Status.DONE, outputs=outputs)
