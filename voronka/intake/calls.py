"""Call events from a telephony provider (F33): a known number gets a call entry on its record's timeline,
an unknown one becomes a new lead, and a missed call gets a call-back task."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from voronka.core import entity_types, history, outbox
from voronka.core.actor import Actor
from voronka.core.errors import ValidationFailed
from voronka.core.normalize import format_phone, normalize_phone

from . import duplicates
from .actions import Outcome, Routing, create_intake_lead, deadline_in, handler
from .models import IntakeLog

EVENTS = ("incoming", "outgoing", "missed")
FIELDS = {"event", "from", "to", "duration", "recording_url", "call_id", "started_at", "user", "source"}


def _validate(p) -> dict:
    if not isinstance(p, dict):
        raise ValidationFailed(_("The body must be a JSON object."))
    errors: dict[str, list[str]] = {}
    for key in p:
        if key not in FIELDS:
            errors[str(key)] = [_("Unknown field.")]
    if p.get("event") not in EVENTS:
        errors["event"] = [_("Must be one of: %(choices)s.") % {"choices": ", ".join(EVENTS)}]
    for key in ("from", "to"):
        if not isinstance(p.get(key), str) or not p.get(key).strip() or len(p[key]) > 64:
            errors[key] = [_("A phone number is required.")]
    duration = p.get("duration", 0)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration <= 86400 * 7:
        errors["duration"] = [_("Must be a whole number of seconds.")]
    url = p.get("recording_url") or ""
    if not isinstance(url, str) or len(url) > 2000 or (url and not url.startswith(("http://", "https://"))):
        errors["recording_url"] = [_("Must be an http(s) address.")]
    for key in ("call_id", "source"):
        if p.get(key) is not None and (not isinstance(p[key], str) or len(p[key]) > 100):
            errors[key] = [_("Must be text of at most 100 characters.")]
    started = p.get("started_at")
    if started is not None and (not isinstance(started, str) or parse_datetime(started) is None):
        errors["started_at"] = [_("Must be a date and time like 2026-01-31T10:00:00+03:00.")]
    user = p.get("user")
    if user is not None and (isinstance(user, bool) or not isinstance(user, int) or user < 1):
        errors["user"] = [_("Must be the id of a user.")]
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), fields=errors)
    return p


def external_id(payload) -> str:
    call_id = payload.get("call_id") if isinstance(payload, dict) else None
    event = payload.get("event") if isinstance(payload, dict) else None
    return f"{event}:{call_id}"[:120] if isinstance(call_id, str) and call_id and isinstance(event, str) else ""


@handler(IntakeLog.Channel.CALL)
def handle_call(actor: Actor, entry: IntakeLog) -> Outcome:
    from voronka.activities.actions import create_task

    p = _validate(entry.payload)
    event = p["event"]
    client = p["to"] if event == "outgoing" else p["from"]
    try:
        number = normalize_phone(client)
    except ValidationError as exc:
        raise ValidationFailed(exc.messages[0], fields={"to" if event == "outgoing" else "from": exc.messages}) from None
    matches = duplicates.find(phones=[number], types=(entity_types.CONTACT, entity_types.LEAD, entity_types.COMPANY))
    target = duplicates.best_target(matches) or (matches[0] if matches else None)
    produced = []
    if target is None:
        routing = Routing.for_source(entry.source or p.get("source") or "call")
        lead = create_intake_lead(actor, {"title": _("Call from %(number)s") % {"number": format_phone(number)},
                                          "phones": [number]}, routing)
        t, obj, status = entity_types.LEAD, lead, IntakeLog.Status.CREATED
        produced.append([t, lead.pk, "created"])
    else:
        t, obj, status = target.entity_type_id, target.obj, IntakeLog.Status.ATTACHED
    labels = {"incoming": _("Incoming call"), "outgoing": _("Outgoing call"), "missed": _("Missed call")}
    duration = p.get("duration") or 0
    text = f"{labels[event]}: {format_phone(number)}"
    if duration:
        text += " · " + _("%(m)d min %(s)02d s") % {"m": duration // 60, "s": duration % 60}
    data = {"direction": event, "from": p["from"], "to": p["to"], "number": number, "duration": duration,
            "recording_url": p.get("recording_url") or "", "call_id": p.get("call_id") or "",
            "started_at": p.get("started_at") or "", "log": entry.pk}
    deals = duplicates.open_deals_of(t, obj)
    call = history.entry(actor, t, obj.pk, "call", text=text, data=data, also=[(entity_types.DEAL, d) for d in deals])
    outbox.emit(actor, "call.logged", t, obj.pk, {"entry": call.pk, "direction": event, "deals": deals})
    produced.append([t, obj.pk, "call"])
    reason = ""
    if event == "missed":
        responsible = getattr(obj, "responsible_id", None) or p.get("user") or entry.user_id
        if responsible:
            minutes = int(getattr(settings, "VORONKA_CALLBACK_MINUTES", 15))
            task = create_task(actor, title=_("Call back %(number)s") % {"number": format_phone(number)},
                               entity_type_id=t, entity_id=obj.pk, responsible=responsible,
                               deadline=deadline_in(minutes))
            produced.append([0, task.pk, "task"])
        else:
            reason = _("Nobody is responsible for the record: no call-back task was set.")
    return Outcome(status, t, obj.pk, produced, reason=reason)


def parse_started(value: str | None) -> datetime.datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None
