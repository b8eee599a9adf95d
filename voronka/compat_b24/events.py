"""Event handlers (``event.bind``) and the outgoing notices: a form-encoded POST per event and handler.

An action writes ``lead.created`` … into the outbox; the outbox consumer here turns it into one
``EventDelivery`` per handler bound to the matching Bitrix24 event whose owner may read the record.
The worker's ``b24_events`` job POSTs due deliveries and retries failures with back-off
(30 s, 1 min, 2 min … up to ``VORONKA_B24_EVENT_MAX_ATTEMPTS`` tries). Delivery is at least once:
receivers get ``event_handler_id`` and ``ts`` and should ignore repeats.
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction

from voronka.core import clock, entity_types, policies
from voronka.core.actor import Actor

from . import actions
from . import params as P
from .errors import B24Error
from .models import EventDelivery, EventHandler
from .registry import Call, method

log = logging.getLogger(__name__)

WATCHED_PREFIXES = ("lead.", "deal.", "contact.", "company.")
_VERBS = {"created": "ADD", "updated": "UPDATE", "deleted": "DELETE"}
EVENTS = [*(f"ONCRM{kind}{verb}" for kind in ("LEAD", "DEAL", "CONTACT", "COMPANY") for verb in ("ADD", "UPDATE", "DELETE")),
          "ONCRMDEALMOVETOCATEGORY", "ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE", "ONCRMDYNAMICITEMDELETE"]
BATCH = 50
TIMEOUT = 5


def b24_event_name(outbox_name: str) -> str | None:
    kind, _, verb = outbox_name.partition(".")
    if kind not in ("lead", "deal", "contact", "company") or verb not in _VERBS:
        return None
    return f"ONCRM{kind.upper()}{_VERBS[verb]}"


def b24_event(event) -> tuple[str, dict] | None:
    """The Bitrix24 event of an outbox event and its extra ``data[FIELDS]`` (beyond ID), or None.

    Deals moved into another pipeline also raise ``ONCRMDEALMOVETOCATEGORY`` (with the new CATEGORY_ID and
    STAGE_ID); smart-process items raise ``ONCRMDYNAMICITEM{ADD,UPDATE,DELETE}`` with their ENTITY_TYPE_ID.
    """
    name = b24_event_name(event.name)
    if name is not None:
        return name, {}
    _kind, _, verb = event.name.partition(".")
    type_id = event.entity_type_id or 0
    if event.name == "deal.stage_changed":
        payload = event.payload or {}
        if payload.get("from_pipeline") in (None, payload.get("pipeline")):
            return None
        return "ONCRMDEALMOVETOCATEGORY", _deal_category(payload)
    if type_id >= entity_types.FIRST_DYNAMIC and verb in _VERBS:
        try:
            info = entity_types.get(type_id)
        except LookupError:
            return None
        if info.dynamic and info.staged and event.name == f"{info.code}.{verb}":
            return f"ONCRMDYNAMICITEM{_VERBS[verb]}", {"ENTITY_TYPE_ID": str(type_id)}
    return None


def _deal_category(payload: dict) -> dict:
    from voronka.pipelines.models import Stage

    from .crm import category_id, stage_code
    from .registry import Call

    call = Call(actor=Actor.system("b24"), webhook=None, base_url="", host="")
    cat = category_id(call, entity_types.DEAL, payload.get("pipeline"))
    stage = Stage.objects.filter(pk=payload.get("to_stage")).first()
    code = stage_code(stage) if stage is not None else ""
    return {"CATEGORY_ID": str(cat), "STAGE_ID": code if cat == 0 else f"C{cat}:{code}"}


def _may_read(user, type_id: int, entity_id: int) -> bool:
    obj = entity_types.get(type_id).model.objects.filter(pk=entity_id).first()
    return obj is not None and policies.can(Actor.for_user(user, "b24"), policies.READ, type_id, obj)


def on_dynamic_event(event) -> None:
    """Outbox consumer of every event: passes on those of smart-process items (no query for the others)."""
    if (event.entity_type_id or 0) >= entity_types.FIRST_DYNAMIC:
        on_outbox_event(event)


def on_outbox_event(event) -> None:
    """Outbox consumer: queue a delivery per bound handler (idempotent: one per handler and event)."""
    if event.entity_id is None:
        return
    found = b24_event(event)
    if found is None:
        return
    name, extra = found
    handlers = list(EventHandler.objects.filter(event=name).select_related("user"))
    for handler in handlers:
        if not handler.user.is_active or not _may_read(handler.user, event.entity_type_id, event.entity_id):
            continue
        body = {"event": name, "event_handler_id": str(handler.pk), "data[FIELDS][ID]": str(event.entity_id),
                **{f"data[FIELDS][{k}]": v for k, v in extra.items()},
                "ts": str(int(event.created_at.timestamp())), **_auth(handler)}
        try:
            with transaction.atomic():
                EventDelivery.objects.create(handler=handler, outbox_event_id=event.pk, event=name, url=handler.handler,
                                             body=body, next_attempt_at=clock.now())
        except IntegrityError:
            continue  # already queued by an earlier delivery of the same outbox event


def _auth(handler: EventHandler) -> dict:
    base = getattr(settings, "VORONKA_BASE_URL", "") or ""
    domain = urlsplit(base).netloc or "localhost"
    endpoint = f"{base.rstrip('/')}/rest/" if base else "/rest/"
    return {"auth[domain]": domain, "auth[client_endpoint]": endpoint, "auth[server_endpoint]": endpoint,
            "auth[member_id]": handler.application_token[:32], "auth[application_token]": handler.application_token}


def _post(url: str, body: dict) -> str | None:
    """POST the notice; None when the handler accepted it (2xx), else the reason."""
    problem = actions.handler_address_problem(url)
    if problem:
        return problem
    data = urlencode(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "User-Agent": "Voronka-B24-events"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:  # noqa: S310 (http/https checked on bind)
            if 200 <= resp.status < 300:
                return None
            return f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))[:500]


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


def deliver_due(limit: int = BATCH) -> int:
    """Worker job: POST the deliveries that are due; returns how many were tried."""
    now = clock.now()
    due = list(EventDelivery.objects.filter(delivered_at__isnull=True, failed_at__isnull=True,
                                            next_attempt_at__lte=now).order_by("next_attempt_at", "id")[:limit])
    for delivery in due:
        # a lease: push the next attempt forward first, so that two workers do not post the same notice
        claimed = EventDelivery.objects.filter(pk=delivery.pk, next_attempt_at=delivery.next_attempt_at,
                                               delivered_at__isnull=True).update(
            next_attempt_at=now + dt.timedelta(seconds=TIMEOUT * 4))
        if not claimed:
            continue
        error = _post(delivery.url, delivery.body)
        attempts = delivery.attempts + 1
        if error is None:
            EventDelivery.objects.filter(pk=delivery.pk).update(delivered_at=clock.now(), attempts=attempts,
                                                                last_error="")
        elif attempts >= settings.VORONKA_B24_EVENT_MAX_ATTEMPTS:
            EventDelivery.objects.filter(pk=delivery.pk).update(failed_at=clock.now(), attempts=attempts,
                                                                last_error=error)
        else:
            EventDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=clock.now() + backoff(attempts),
                                                                attempts=attempts, last_error=error)
    return len(due)


# --- methods ----------------------------------------------------------------------------------------

def _event_name(params: dict) -> str:
    name = str(P.get(params, "event", "") or "").strip().upper()
    if not name:
        raise B24Error("Event name is required", "ERROR_ARGUMENT", argument="event")
    if name not in EVENTS:
        raise B24Error("Event not found", "ERROR_EVENT_NOT_FOUND")
    return name


@method("event.bind", scope=None)
def bind(call: Call, params: dict) -> bool:
    name = _event_name(params)
    handler = str(P.get(params, "handler", "") or "").strip()
    if not handler:
        raise B24Error("Handler is required", "ERROR_ARGUMENT", argument="handler")
    if str(P.get(params, "event_type", "online") or "online").lower() == "offline":
        raise B24Error("Offline events are not supported", "ERROR_ARGUMENT", argument="event_type")
    try:
        actions.bind_event(call.actor, event=name, handler=handler)
    except Exception as exc:  # an ActionError with the message for the handler address
        from voronka.core.errors import ActionError

        if isinstance(exc, ActionError):
            raise B24Error(exc.message, "ERROR_ARGUMENT", argument="handler") from None
        raise
    return True


@method("event.unbind", scope=None)
def unbind(call: Call, params: dict) -> dict:
    name = _event_name(params)
    handler = str(P.get(params, "handler", "") or "").strip() or None
    return {"count": actions.unbind_event(call.actor, event=name, handler=handler)}


@method("event.get", scope=None)
def get(call: Call, params: dict) -> list:
    return [{"event": h.event, "handler": h.handler, "auth_type": "0", "offline": 0}
            for h in EventHandler.objects.filter(user_id=call.actor.user_id).order_by("id")]


@method("events", scope=None)
def events(call: Call, params: dict) -> list:
    return list(EVENTS)
