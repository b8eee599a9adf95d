"""Every write of intake: receive a payload into the log, process it (one transaction), replay it.

``submit`` (the doors: web forms, registrations) logs the payload and processes it in one transaction, committed
before the caller answers; a refusal or a crash rolls the processing back and logs the payload anew with the reason
(``rejected``) or the traceback (``pending``). Channels that may repeat a payload (an ``external_id``) and the replay
use ``receive``, which stores the raw payload first, committed on its own, so a crash later loses nothing;
``process`` then runs the channel's handler in one transaction with the log row locked; the handler
writes through the domain actions as ``Actor.system(cause="intake:<channel>:<log id>", entry_point="intake")``
(on behalf of the token's user for authenticated channels). An ``ActionError`` rolls everything back and
leaves the payload ``rejected`` with the reason; any other exception rolls back and leaves it ``pending``
with the traceback, to be replayed (``voronka intake replay ID``).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import audit, config_cache, entity_types, fastinsert, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import ActionError, Conflict, NotFound, ValidationFailed
from voronka.core.prepared import Prepared

from . import duplicates, names
from .models import DuplicateMark, DuplicatePolicy, IntakeLog, IntakeSource

log = logging.getLogger("voronka.intake")

SETTINGS = "settings:integrations"
LEAD_FIELDS = ("title", "first_name", "last_name", "middle_name", "company_name", "position", "inquiry", "address",
               "comment", "opportunity", "currency", "utm_source", "utm_medium", "utm_campaign", "utm_content",
               "utm_term")
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


class Rejected(ActionError):
    """A payload intake refuses as a whole (spam, an inactive form, a foreign origin)."""

    status = 400
    code = "rejected"


@dataclass
class Outcome:
    status: str
    entity_type_id: int | None = None
    entity_id: int | None = None
    produced: list = field(default_factory=list)
    reason: str = ""
    deals: list[int] | None = None  # the open deals it was shown on, when known (not read again)


@dataclass
class Routing:
    """Where a new lead of one source goes and what is done with duplicates."""

    source: str = ""
    policy: str = DuplicatePolicy.ATTACH
    queue_id: int | None = None
    pipeline_id: int | None = None
    stage: str = ""

    @classmethod
    def for_source(cls, code: str, *, configured: bool = False, **overrides) -> Routing:
        """``configured``: the code comes from settings (a form's source), not from the payload, so that a code
        without a source row is remembered too (the set of such codes is bounded by the settings)."""
        routing = cls(source=code, policy=getattr(settings, "VORONKA_INTAKE_DUPLICATE_POLICY", DuplicatePolicy.ATTACH))
        src = _source_settings(code, configured) if code else None
        if src is not None:
            routing.policy, routing.queue_id, routing.pipeline_id, routing.stage = src
        for key, value in overrides.items():
            if value:
                setattr(routing, key, value)
        return routing


_NO_SOURCE = ()  # a remembered miss


def _source_settings(code: str, configured: bool = False) -> tuple | None:
    """(policy, queue, pipeline, stage) of a source: kept per process behind the settings version (every change of a
    source bumps it, see ``apps.py``). A code without a source is remembered only when it comes from settings
    (``configured``); codes a payload names are looked up each time, so random ones cannot fill the memory."""
    key = ("intake-source", code)
    version = config_cache.current_version()
    hit = config_cache.peek(key, version)
    if hit is None:
        rows = _SOURCE_QUERY.rows(code)
        hit = rows[0] if rows else _NO_SOURCE
        if rows or configured:
            config_cache.cached(key, lambda: hit, version)
    return hit or None


_SOURCE_QUERY = Prepared(lambda code: IntakeSource.objects.filter(code=code).values_list(
    "duplicate_policy", "queue_id", "pipeline_id", "stage")[:1], ["\x00code"])


Handler = Callable[[Actor, IntakeLog], Outcome]
HANDLERS: dict[str, Handler] = {}


def handler(channel: str):
    def register(fn: Handler) -> Handler:
        HANDLERS[channel] = fn
        return fn

    return register


# --- the log -------------------------------------------------------------------------------------

def receive(channel: str, payload=None, *, raw: str = "", source: str = "", remote_addr: str = "",
            meta: dict | None = None, external_id: str = "", form=None, bot=None, mailbox=None,
            user_id: int | None = None) -> tuple[IntakeLog, bool]:
    """Store an inbound payload before anything else happens. Returns (log, is_new): a payload with an
    ``external_id`` seen before (a Telegram retry, a repeated call event) returns the earlier entry."""
    entry = _log_row(channel, payload, raw=raw, source=source, remote_addr=remote_addr, meta=meta,
                     external_id=external_id, form=form, bot=bot, mailbox=mailbox, user_id=user_id)
    try:
        with transaction.atomic():
            fastinsert.insert([entry], returning=True)  # the statement is built once, not by the ORM per payload
    except IntegrityError:
        if not external_id:
            raise
        return IntakeLog.objects.get(channel=channel, external_id=external_id[:120]), False
    return entry, True


def _log_row(channel: str, payload=None, *, raw: str = "", source: str = "", remote_addr: str = "",
             meta: dict | None = None, external_id: str = "", form=None, bot=None, mailbox=None,
             user_id: int | None = None) -> IntakeLog:
    if channel not in _CHANNELS:
        raise ValueError(channel)
    entry = IntakeLog(channel=channel, payload=payload if payload is not None else {}, raw=raw, source=source[:50],
                      remote_addr=(remote_addr or "")[:45], meta=meta or {}, external_id=external_id[:120],
                      form_id=form.pk if form is not None else None, bot_id=bot.pk if bot is not None else None,
                      mailbox_id=mailbox.pk if mailbox is not None else None, user_id=user_id)
    # the related objects given are kept on the row, as ``form=form`` would (without the descriptors' checks)
    for related, value in ((_FORM, form), (_BOT, bot), (_MAILBOX, mailbox)):
        if value is not None:
            related.set_cached_value(entry, value)
    return entry


_CHANNELS = frozenset(IntakeLog.Channel.values)
_FORM, _BOT, _MAILBOX = (IntakeLog._meta.get_field(name) for name in ("form", "bot", "mailbox"))


def actor_for(entry: IntakeLog) -> Actor:
    user = get_user_model().objects.filter(pk=entry.user_id).first() if entry.user_id else None
    return Actor.system(cause=f"intake:{entry.channel}:{entry.pk}", entry_point="intake", on_behalf_of=user)


_LOCK = Prepared(lambda pk: IntakeLog.objects.select_for_update().filter(pk=pk).values_list("status"), [-7])
_DONE_FIELDS = ("status", "reason", "entity_type_id", "entity_id", "produced", "errors", "error", "attempts",
                "processed_at")


def _save_outcome(entry: IntakeLog) -> None:
    """``UPDATE`` the outcome columns of the log row (``fastinsert.update``: the statement and the value converters
    chosen once, not by the ORM)."""
    fastinsert.update(entry, _DONE_FIELDS)


def process(log_id: int, *, replay: bool = False, form=None, entry: IntakeLog | None = None) -> IntakeLog:
    """Run the channel's handler for a logged payload. Never raises for a bad payload: the returned log
    says what happened (``status``, ``reason``, ``errors``). ``entry``: the row ``receive`` has just written (its
    status is read again under the lock, the rest not)."""
    try:
        with transaction.atomic():
            if entry is not None and entry.pk == log_id and not replay:
                locked = _LOCK.rows(log_id)
                if not locked:
                    raise IntakeLog.DoesNotExist(log_id)
                entry.status = locked[0][0]
            else:
                entry = IntakeLog.objects.select_for_update().get(pk=log_id)
            if entry.status != IntakeLog.Status.PENDING and not replay:
                return IntakeLog.objects.get(pk=log_id)
            _run(entry, form=form)
            return entry
    except ActionError as exc:
        return _finish(log_id, status=IntakeLog.Status.REJECTED, reason=exc.message, errors=exc.fields,
                       code=exc.code)
    except Exception:
        log.exception("intake payload #%s failed; it stays pending for a replay", log_id)
        return _finish(log_id, status=IntakeLog.Status.PENDING, error=traceback.format_exc(limit=8))


def _finish(log_id: int, *, status: str, reason: str = "", errors: dict | None = None, error: str = "",
            code: str = "") -> IntakeLog:
    with transaction.atomic():
        entry = IntakeLog.objects.select_for_update().get(pk=log_id)
        entry.status, entry.reason, entry.errors, entry.error = status, reason, errors or {}, error[:20000]
        if code:
            entry.meta = {**(entry.meta or {}), "code": code}
        entry.attempts += 1
        entry.processed_at = timezone.now() if status != IntakeLog.Status.PENDING else None
        entry.save()
        return entry


def reject(entry: IntakeLog, reason: str, *, code: str = "rejected", errors: dict | None = None) -> IntakeLog:
    """Mark a logged payload rejected without processing it (e.g. refused at the door)."""
    return _finish(entry.pk, status=IntakeLog.Status.REJECTED, reason=reason, errors=errors, code=code)


def replay(actor: Actor, log_id: int, *, force: bool = False) -> IntakeLog:
    """Process a logged payload again (after a crash, or after fixing what made it rejected).
    A payload that already produced something is replayed only with ``force`` (duplicate control applies)."""
    policies.require(actor, SETTINGS, 0)
    entry = IntakeLog.objects.filter(pk=log_id).first()
    if entry is None:
        raise NotFound(_("Intake log entry #%(id)s does not exist.") % {"id": log_id})
    if entry.status not in (IntakeLog.Status.QUEUED, IntakeLog.Status.PENDING, IntakeLog.Status.REJECTED) \
            and not force:
        raise Conflict(_("This payload was already processed (%(status)s); replay it with force.") % {
            "status": entry.get_status_display()})
    result = process(log_id, replay=True)
    audit.record(actor, "intake.replayed", count=1, log=log_id, status=result.status)
    outbox.emit(actor, "intake.replayed", result.entity_type_id, result.entity_id, {"log": log_id, "status": result.status})
    return result


def submit(channel: str, payload, *, queue: bool = False, **kwargs) -> IntakeLog:
    """Receive and process in one call (what the edges do): one transaction that inserts the log row, runs the
    handler and writes the outcome into the row, committed once. The payload is never lost once the caller answers
    with success, since the answer comes after the commit. When the handler refuses the payload (``ActionError``)
    or crashes, everything it wrote is rolled back and the payload is logged anew in a transaction of its own, with
    its outcome in the same ``INSERT``: ``rejected`` with the reason, or ``pending`` with the traceback for a replay.
    A payload with an ``external_id`` (retries of a sender) takes the two-step path (``receive``, then ``process``),
    which answers a repeated id with the earlier entry.

    ``queue`` (a web form «in the background»): only the channel's door checks run (``check``: the form's fields,
    the honeypot, the origin); a payload they refuse is logged ``rejected`` at once, any other is logged ``queued``
    in one statement and processed later by the worker (``process_queued``)."""
    if queue:
        return _enqueue(channel, payload, **kwargs)
    if kwargs.get("external_id"):
        entry, new = receive(channel, payload, **kwargs)
        if not new:
            return entry
        return process(entry.pk, form=kwargs.get("form"), entry=entry)
    entry = _log_row(channel, payload, **kwargs)
    if channel in CHECKS:
        # the channel's own checks read nothing but its settings: run before the write transaction (on SQLite its
        # lock is what concurrent submissions wait for); a payload they refuse is logged with the reason in one INSERT
        try:
            entry.checked = CHECKS[channel](entry)
        except ActionError as exc:
            return _log_outcome(channel, payload, {"status": IntakeLog.Status.REJECTED, "reason": exc.message,
                                                   "errors": exc.fields or {}, "code": exc.code}, entry=entry, **kwargs)
        except Exception:  # a bug in the checks: the handler meets it again and the payload is logged pending
            log.exception("the checks of a %s payload failed; it is processed anyway", channel)
    try:
        with transaction.atomic():
            if _reserve_id(entry):  # the row is written once, with its outcome, at the end of the transaction
                _run(entry, form=kwargs.get("form"), insert=True)
            else:
                fastinsert.insert([entry], returning=True)  # the statement is built once, not by the ORM
                _run(entry, form=kwargs.get("form"))
        return entry
    except ActionError as exc:
        outcome = {"status": IntakeLog.Status.REJECTED, "reason": exc.message, "errors": exc.fields or {},
                   "code": exc.code}
    except Exception:
        log.exception("intake payload failed; it is logged pending for a replay")
        outcome = {"status": IntakeLog.Status.PENDING, "error": traceback.format_exc(limit=8)}
    # a fresh row: the rolled-back one (and its id) never existed for anybody else
    return _log_outcome(channel, payload, outcome, **kwargs)


def _reserve_id(entry: IntakeLog) -> bool:
    """Give a log row that is about to be processed its primary key before it is written, inside the caller's
    transaction, so that the row is inserted once with its outcome (its id is in the cause of everything the handler
    writes) instead of inserted, then updated (``fastinsert.reserve_ids``: the identity sequence on PostgreSQL; on
    SQLite the id ``AUTOINCREMENT`` would give next, which nobody else can take while every transaction holds the
    write lock from its ``BEGIN IMMEDIATE``). False (the row is then inserted first and updated) on another database
    or transaction mode."""
    from django.db import connection

    if connection.vendor != "postgresql" and not (connection.vendor == "sqlite" and str(
            connection.settings_dict.get("OPTIONS", {}).get("transaction_mode") or "").upper()
            in ("IMMEDIATE", "EXCLUSIVE")):
        return False
    entry.pk = fastinsert.reserve_ids(IntakeLog, 1)[0]
    return True


def _log_outcome(channel: str, payload, outcome: dict, *, entry: IntakeLog | None = None, **kwargs) -> IntakeLog:
    """Log a payload with its outcome in the same ``INSERT`` (a refusal, a crash), in a transaction of its own.
    ``entry``: its log row, built and not written yet (else it is built here)."""
    if entry is None or entry.pk is not None:
        entry = _log_row(channel, payload, **kwargs)
    entry.status, entry.reason = outcome["status"], outcome.get("reason", "")
    entry.errors, entry.error = outcome.get("errors") or {}, outcome.get("error", "")[:20000]
    if outcome.get("code"):
        entry.meta = {**(entry.meta or {}), "code": outcome["code"]}
    entry.attempts = 1
    entry.processed_at = timezone.now() if entry.status != IntakeLog.Status.PENDING else None
    with transaction.atomic():
        fastinsert.insert([entry], returning=True)
    return entry


# --- the queue: payloads accepted at the door, processed by the worker in batches ----------------------

Check = Callable[[IntakeLog], object]
CHECKS: dict[str, Check] = {}  # the door's checks of a channel that can queue: raise an ActionError to refuse
PRESEARCH: dict[str, Callable[[IntakeLog], Prefound | None]] = {}  # its duplicate search, read-only


def check(channel: str, presearch=None):
    """Register the door's checks of a channel (and the read-only part of its duplicate search, run before the
    write transaction of a batch)."""
    def register(fn: Check) -> Check:
        CHECKS[channel] = fn
        if presearch is not None:
            PRESEARCH[channel] = presearch
        return fn

    return register


def _enqueue(channel: str, payload, **kwargs) -> IntakeLog:
    entry = _log_row(channel, payload, **kwargs)
    try:
        CHECKS[channel](entry)
    except ActionError as exc:
        return _log_outcome(channel, payload, {"status": IntakeLog.Status.REJECTED, "reason": exc.message,
                                               "errors": exc.fields or {}, "code": exc.code}, entry=entry, **kwargs)
    except Exception:  # a bug in the checks: the payload is kept (queued); the worker logs what its handler says
        log.exception("the door's checks of a %s payload failed; it is queued anyway", channel)
    entry.status = IntakeLog.Status.QUEUED
    with transaction.atomic():
        fastinsert.insert([entry], returning=True)
    return entry


BATCH = 200  # queued payloads a worker claims at a time, oldest first
CHUNK = 25  # of them, processed in one write transaction (each in a savepoint)
LEASE = datetime.timedelta(minutes=5)  # a claim a worker did not finish in this time (it died) is let go


def batch_size() -> int:
    return int(getattr(settings, "VORONKA_INTAKE_BATCH", BATCH))


def _claim(limit: int) -> tuple[list[int], datetime.datetime]:
    """Claim up to ``limit`` queued payloads, oldest first, for this worker: a short transaction of its own that
    stamps them with a lease (``claimed_until``, also the claim's token). PostgreSQL skips rows another worker is
    claiming (``FOR UPDATE SKIP LOCKED``); on SQLite the transaction takes the write lock at its start, so two
    claims never overlap. Until the lease ends no other worker takes them; a worker that dies lets them go."""
    now = timezone.now()
    until = now + LEASE
    with transaction.atomic():
        free = IntakeLog.objects.filter(status=IntakeLog.Status.QUEUED).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).order_by("id")
        ids = list(free.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        if ids:
            IntakeLog.objects.filter(pk__in=ids).update(claimed_until=until)
    return ids, until


@dataclass
class Prefound:
    """The duplicate search of a queued payload, made before the write transaction (``find`` reads only). Under
    the lock the exact phone/e-mail check runs again and the target is read again; ``stale``: search anew.
    ``checked``: what the channel's checks made of the payload (not done again by the handler)."""

    matches: list
    stale: bool = False
    name: str = ""
    checked: tuple | None = None


def process_queued(limit: int | None = None) -> int:
    """One batch of the queue (the worker's job ``intake``): claim up to ``limit`` queued payloads and process
    each as ``submit`` would have at once, sharing its code. They are processed ``CHUNK`` at a time, in one
    transaction per chunk with a savepoint per payload: a payload that is refused (``rejected`` with the reason)
    or crashes (``pending`` with the traceback, replayable) rolls back only itself. The name search of a chunk runs
    before its transaction (on SQLite, outside the write lock). A worker killed mid-batch loses nothing: what it
    did not commit is still queued and is claimed again when its lease ends. Returns how many were processed."""
    ids, token = _claim(limit or batch_size())
    if not ids:
        return 0
    entries = list(IntakeLog.objects.filter(pk__in=ids).order_by("id"))
    by_form = _forms_of(entries)
    done = 0
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start:start + CHUNK]
        # the settings versions are read once for the chunk (its checks and its transaction), as once per request
        # at the door, not by every payload's routing and write
        with config_cache.request_scope():
            for entry in chunk:
                if entry.form_id is not None:
                    entry.form = by_form.get(entry.form_id)
                entry.prefound = _presearch(entry)
            done += _process_chunk(chunk, token)
    return done


def _forms_of(entries) -> dict:
    from .models import WebForm

    wanted = {e.form_id for e in entries if e.form_id is not None}
    return WebForm.objects.in_bulk(wanted) if wanted else {}


def _presearch(entry: IntakeLog):
    fn = PRESEARCH.get(entry.channel)
    if fn is None:
        return None
    try:
        return fn(entry)
    except Exception:  # refused or broken: the handler meets it again under the lock and logs the outcome
        return None


def _process_chunk(chunk: list[IntakeLog], token) -> int:
    done = 0
    created: list[str] = []  # the names of the records this chunk wrote (their rows are not in any presearch)
    with transaction.atomic():
        mine = set(IntakeLog.objects.select_for_update().filter(
            pk__in=[e.pk for e in chunk], status=IntakeLog.Status.QUEUED, claimed_until=token)
            .values_list("id", flat=True))
        for entry in chunk:
            if entry.pk not in mine:  # replayed by hand meanwhile, or the lease ended and another worker took it
                continue
            prefound = getattr(entry, "prefound", None)
            if prefound is not None and prefound.name and any(
                    duplicates.name_score(prefound.name, other) >= duplicates.threshold() for other in created):
                prefound.stale = True  # a record written earlier in this chunk may be its duplicate
            try:
                with transaction.atomic():
                    _run(entry, form=entry.form if entry.form_id else None)
            except ActionError as exc:
                _fail(entry, IntakeLog.Status.REJECTED, reason=exc.message, errors=exc.fields, code=exc.code)
            except Exception:
                log.exception("queued intake payload #%s failed; it stays pending for a replay", entry.pk)
                _fail(entry, IntakeLog.Status.PENDING, error=traceback.format_exc(limit=8))
            else:
                if prefound is not None and prefound.name:
                    created.append(prefound.name)
            done += 1
    return done


def _fail(entry: IntakeLog, status: str, *, reason: str = "", errors=None, error: str = "", code: str = "") -> None:
    """The outcome of a payload whose savepoint was rolled back, in the chunk's transaction."""
    meta = {**(entry.meta or {}), "code": code} if code else entry.meta
    IntakeLog.objects.filter(pk=entry.pk).update(
        status=status, reason=reason, errors=errors or {}, error=error[:20000], meta=meta,
        attempts=F("attempts") + 1, processed_at=timezone.now() if status != IntakeLog.Status.PENDING else None)
    entry.status, entry.reason, entry.errors, entry.error = status, reason, errors or {}, error


def queued_stats() -> dict:
    """How many payloads wait in the queue and since when (the intake log and the health of the worker)."""
    return IntakeLog.objects.filter(status=IntakeLog.Status.QUEUED).aggregate(
        count=Count("id"), oldest=Min("received_at"))


def _run(entry: IntakeLog, *, form=None, insert: bool = False) -> None:
    """The handler of a logged payload and its outcome in the log row, inside the caller's transaction (raises what
    the handler raises). ``insert``: the row is not written yet (its id is reserved): it is inserted with the
    outcome, else its outcome columns are updated."""
    from voronka.core.models import OutboxEvent, TimelineEntry

    if form is not None and entry.form_id == form.pk:
        entry.form = form  # the form the door has just read: not read again
    # the timeline entries and outbox events of a form submission go out in one statement each (PostgreSQL;
    # their ids come from one nextval call per table, 4 at a time: a new lead writes 3 entries and 4 events).
    # Not for the other channels: mail updates its timeline entry after writing its attachments.
    rows = fastinsert.deferred([TimelineEntry, OutboxEvent], chunk=4) \
        if entry.channel == IntakeLog.Channel.FORM else contextlib.nullcontext()
    with rows:
        outcome = HANDLERS[entry.channel](actor_for(entry), entry)
    entry.status, entry.reason = outcome.status, outcome.reason
    entry.entity_type_id, entry.entity_id = outcome.entity_type_id, outcome.entity_id
    entry.produced, entry.errors, entry.error = outcome.produced, {}, ""
    entry.attempts += 1
    entry.processed_at = timezone.now()
    if insert:
        fastinsert.insert([entry])
    else:
        _save_outcome(entry)


# --- leads from any channel ----------------------------------------------------------------------

def note_of(lines: list[tuple[str, str]]) -> str:
    return "\n".join(f"{label}: {value}" for label, value in lines if value not in (None, "", []))[:20000]


def _emit(actor: Actor, events: list | None, name: str, entity_type_id: int | None, entity_id: int | None,
          payload: dict | None = None) -> None:
    """An outbox event now, or (``events`` given) its row for the caller to write with its own in one statement."""
    if events is None:
        outbox.emit(actor, name, entity_type_id, entity_id, payload)
    else:
        events.append(outbox.row(actor, name, entity_type_id, entity_id, payload))


def intake_lead(actor: Actor, entry: IntakeLog, data: dict, routing: Routing, *, note: str = "",
                events: list | None = None) -> Outcome:
    """A first contact from any channel: duplicate control, then a new lead distributed by the source's queue,
    or an attachment to / a merge into what already exists. ``events``: a list the outbox events of the outcome
    are added to (as rows), for the caller to write with its own in one statement; else they are written here."""
    # «create»: always a new lead, no duplicate search (registrations, unsubscribes: robots handle them)
    matches = [] if routing.policy == DuplicatePolicy.CREATE else \
        find_duplicates(data, prefound=getattr(entry, "prefound", None))
    target = duplicates.best_target(matches) if matches else None
    text = note or _("New request through %(channel)s.") % {"channel": entry.get_channel_display()}
    if target is not None and routing.policy in (DuplicatePolicy.ATTACH, DuplicatePolicy.MERGE):
        t, pk = target.entity_type_id, target.id
        status = IntakeLog.Status.ATTACHED
        produced = []
        if routing.policy == DuplicatePolicy.MERGE and t in (entity_types.LEAD, entity_types.CONTACT):
            changed = _merge_into(actor, target, data)
            if changed:
                status = IntakeLog.Status.MERGED
                produced.append([t, pk, "updated"])
        entry_obj = _comment_on(actor, target, text, events=events)
        deals = duplicates.open_deal_ids(t, pk)
        history.bind(entry_obj, [(entity_types.DEAL, d) for d in deals])
        produced.append([t, pk, "comment"])
        return Outcome(status, t, pk, produced,
                       reason=_("Matched %(what)s #%(id)s by %(how)s.") % {
                           "what": entity_types.get(t).code, "id": pk, "how": ", ".join(target.reasons)}, deals=deals)
    lead = create_intake_lead(actor, data, routing, flagged=matches, events=events)
    if note:  # the comment of add_comment, on the lead this action has just created (no second read of it)
        comment = history.entry(actor, entity_types.LEAD, lead.pk, "comment", text=note.strip())
        _emit(actor, events, "lead.commented", entity_types.LEAD, lead.pk, {"entry": comment.pk})
    reason = _("Possible duplicate of %(list)s.") % {"list": ", ".join(
        f"{entity_types.get(m.entity_type_id).code} #{m.id}" for m in matches[:5])} if matches else ""
    return Outcome(IntakeLog.Status.CREATED, entity_types.LEAD, lead.pk, [[entity_types.LEAD, lead.pk, "created"]],
                   reason=reason, deals=[])


def criteria(data: dict) -> dict:
    """What the duplicate search of a lead's data looks for."""
    return {"phones": data.get("phones") or [], "emails": data.get("emails") or [],
            "name": " ".join(str(data.get(k) or "") for k in ("last_name", "first_name", "middle_name")).strip(),
            "company": str(data.get("company_name") or "")}


def find_duplicates(data: dict, *, prefound: Prefound | None = None) -> list:
    """``duplicates.find`` of a lead's data. With ``prefound`` (the search made before the write transaction of a
    queued batch): the phone/e-mail check runs again here, under the lock (the strongest proof, and cheap), and the
    record the payload would go to (``best_target`` of the name matches found before) is read again: if it was
    deleted or changed so that it is no longer the target (a lead converted meanwhile), or a phone/e-mail match
    has gone, or the search is ``stale``, it is searched anew. The other matches only name possible duplicates."""
    wanted = criteria(data)
    if prefound is None or prefound.stale:
        return duplicates.find(**wanted, load=False)
    if wanted["phones"] or wanted["emails"]:
        exact = duplicates.find(phones=wanted["phones"], emails=wanted["emails"], load=False)
        if exact:
            return exact
    matches = prefound.matches
    if any({"phone", "email"} & set(m.reasons) for m in matches):
        return duplicates.find(**wanted, load=False)
    target = duplicates.best_target(matches) if matches else None
    if target is None:
        return matches
    if not duplicates.recheck(target) or duplicates.best_target(matches) is not target:
        return duplicates.find(**wanted, load=False)
    return matches


def presearch(data: dict, routing: Routing) -> Prefound:
    """The read-only duplicate search of a queued payload (see ``find_duplicates``)."""
    if routing.policy == DuplicatePolicy.CREATE:
        return Prefound([])
    wanted = criteria(data)
    return Prefound(duplicates.find(**wanted, load=False), name=" ".join(names.words(wanted["name"])))


def _comment_on(actor: Actor, target: duplicates.Match, text: str, *, events: list | None = None):
    """``activities.add_comment`` on the record the duplicate search has just found live in this transaction: the
    same checks (the text, the record not deleted, the actor's right to update it), the same timeline entry and
    event, without its savepoint (the submission is one transaction: a failure rolls all of it back). The record is
    not read for a system actor (every intake writer): its rights do not depend on the record."""
    from voronka.activities.actions import MAX_COMMENT, add_comment

    t, pk = target.entity_type_id, target.id
    obj = None if actor.is_system else target.obj
    if not text.strip() or len(text) > MAX_COMMENT or (
            not actor.is_system and (obj is None or obj.deleted_at is not None)):
        return add_comment(actor, entity_type_id=t, entity_id=pk, text=text, record=obj)  # its errors
    info = entity_types.get(t)
    policies.require(actor, policies.UPDATE, info.id, obj)
    comment = history.entry(actor, info.id, pk, "comment", text=text.strip())
    _emit(actor, events, f"{info.code}.commented", info.id, pk, {"entry": comment.pk})
    return comment


def create_intake_lead(actor: Actor, data: dict, routing: Routing, *, flagged=(), events: list | None = None):
    """Create the lead (with the queue's pick as responsible), then record the distribution and any duplicate mark.
    ``events``: as ``intake_lead``'s."""
    from voronka.core.recordkit import create_one
    from voronka.distribution import actions as distribution
    from voronka.leads.actions import LEAD

    data = dict(data)
    data.setdefault("source", routing.source)
    if routing.pipeline_id and "pipeline" not in data:
        data["pipeline"] = routing.pipeline_id
    if flagged:
        stage = _duplicate_stage(data.get("pipeline"))
        if stage is not None:
            data["stage"] = stage
    if routing.stage and "stage" not in data:
        data["stage"] = routing.stage
    queue, member = distribution.reserve_member(routing.queue_id) if routing.queue_id else (None, None)
    user_id = data["responsible"] = member.user_id if member else None
    # the member the queue has just picked is an active user (read under the queue's lock): not checked again
    lead = create_one(actor, LEAD, data, active_users=[user_id] if user_id is not None else ())
    names.refresh(entity_types.LEAD, [lead.pk], objs=[lead], new=True)
    if queue is not None:
        distribution.record_outcome(actor, queue.pk, entity_types.LEAD, lead.pk, user_id, queue=queue,
                                    user=member.user if member else None, events=events)
    if flagged:
        duplicates.load(flagged[:20])  # their titles, one statement per kind
        matches = [m.as_dict() for m in flagged[:20]]
        DuplicateMark.objects.create(entity_type_id=entity_types.LEAD, entity_id=lead.pk, matches=matches)
        history.entry(actor, entity_types.LEAD, lead.pk, "linked",
                      text=_("Possible duplicate: check and merge."), data={"duplicates": matches})
        _emit(actor, events, "lead.duplicate_suspected", entity_types.LEAD, lead.pk, {"matches": matches})
    return lead


def _duplicate_stage(pipeline_id) -> int | None:
    """The «duplicate check» stage (code ``duplicate_check``) of the lead pipeline, if it has one."""
    from voronka.pipelines.models import Pipeline, Stage

    pipeline = Pipeline.objects.filter(pk=pipeline_id).first() if pipeline_id else \
        Pipeline.objects.filter(entity_type_id=entity_types.LEAD, is_active=True).order_by("-is_default", "sort", "id").first()
    if pipeline is None:
        return None
    stage = Stage.objects.filter(pipeline=pipeline, code="duplicate_check").first()
    return stage.pk if stage else None


def _merge_into(actor: Actor, target: duplicates.Match, data: dict) -> bool:
    """Fill the empty fields of the existing lead/contact and add new phones and e-mails."""
    from voronka.core.recordkit import update_one
    from voronka.parties.models import Communication

    spec = duplicates.spec_for(target.entity_type_id)
    obj = target.obj
    update = {k: v for k, v in data.items() if k in spec.writable and k not in ("responsible", "source", "title")
              and v not in (None, "") and getattr(obj, k, None) in (None, "")}
    for key, kind in (("phones", "phone"), ("emails", "email")):
        new = duplicates._clean(data.get(key), duplicates.normalize_phone if kind == "phone" else duplicates.normalize_email)
        existing = list(Communication.objects.filter(entity_type_id=target.entity_type_id, entity_id=target.id, kind=kind))
        have = {c.normalized for c in existing}
        if any(n not in have for n in new):
            update[key] = [{"value": c.value, "type": c.value_type} for c in existing] + [n for n in new if n not in have]
    if not update:
        return False
    update_one(actor, spec, target.id, update)
    names.refresh(target.entity_type_id, [target.id])
    return True


def lead_data_from(payload: dict, *, allowed=LEAD_FIELDS) -> dict:
    """Lead fields of a JSON payload (registrations, the generic endpoint); unknown keys are errors."""
    if not isinstance(payload, dict):
        raise ValidationFailed(_("The body must be a JSON object."))
    extra = {"phones", "emails", "custom", "source", "referrer", "consent"}
    unknown = [k for k in payload if k not in allowed and k not in extra]
    if unknown:
        raise ValidationFailed(_("Some fields are not valid."), fields={k: [_("Unknown field.")] for k in unknown})
    data = {k: v for k, v in payload.items() if k in allowed or k in ("phones", "emails", "custom")}
    if not any(data.get(k) for k in ("phones", "emails", "first_name", "last_name", "company_name", "title")):
        raise ValidationFailed(_("Give at least a name, a phone or an e-mail."),
                               fields={"phones": [_("A phone, an e-mail or a name is required.")]})
    return data


@handler(IntakeLog.Channel.API)
def handle_registration(actor: Actor, entry: IntakeLog) -> Outcome:
    payload = entry.payload
    data = lead_data_from(payload)
    routing = Routing.for_source(entry.source or str(payload.get("source") or "api"))
    lines = [(_("Source"), routing.source), (_("Referrer"), payload.get("referrer")),
             (_("Comment"), payload.get("comment") or payload.get("inquiry"))]
    return intake_lead(actor, entry, data, routing, note=note_of(lines))


def registration_source(payload) -> str:
    source = payload.get("source") if isinstance(payload, dict) else None
    return source[:50] if isinstance(source, str) and source else "api"


def deadline_in(minutes: int) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(minutes=minutes)



def storable(value, depth: int = 0):
    """A parsed JSON payload as both databases store it: NUL characters and lone surrogates (which PostgreSQL
    refuses) become U+FFFD, so even a broken payload is logged before it is judged."""
    if depth > 50:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [storable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {storable(str(k), depth + 1): storable(v, depth + 1) for k, v in value.items()}
    return value


def parse_body(body: bytes) -> tuple[dict, str]:
    """(payload, raw): a JSON object, or {} and the text of a body that is not one."""
    import json

    text = (body or b"")[:256 * 1024].decode("utf-8", "replace")
    try:
        value = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        return {}, storable(text)
    if not isinstance(value, dict):
        return {}, storable(text)
    return storable(value), ""


# the channel handlers register themselves
from . import calls, forms, mail, telegram  # noqa: E402,F401
