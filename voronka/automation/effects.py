"""What robots do. Every effect is a call of an existing action with the system actor of the robot.

Database effects (``DB``) run inside the engine's transaction that also marks the run done, so a crash
applies them never or once. External effects (``EXTERNAL``: webhook, e-mail to the client, SMS) are split:
``prepare`` builds the request inside a transaction (stored on the run, so every retry sends the same
thing), ``send`` performs it outside any transaction with the run's idempotency key, and is retried with
exponential backoff on failure.

Each action has a ``check_<action>(params)`` that raises ValueError with a clear message for bad params.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import re
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.errors import ValidationFailed

from . import fields, rules
from .models import Robot, RoundRobinPointer

log = logging.getLogger(__name__)
A = Robot.Action


def _need(params: dict, key: str, kind, where: str):
    value = params.get(key)
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise ValueError(_("%(w)s: «%(k)s» is required.") % {"w": where, "k": key})
    return value


def _only(params: dict, allowed: set[str], where: str) -> None:
    if not isinstance(params, dict):
        raise ValueError(_("%(w)s: parameters must be an object.") % {"w": where})
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(_("%(w)s: unknown parameters %(k)s.") % {"w": where, "k": ", ".join(sorted(unknown))})


def _people(value, where: str, *, required: bool = True) -> None:
    if value is None and not required:
        return
    refs = [value] if isinstance(value, str) else value
    if not isinstance(refs, list) or (required and not refs):
        raise ValueError(_("%(w)s: give one or more people (%(h)s).") % {"w": where, "h": rules.PEOPLE_HELP})
    for ref in refs:
        rules.check_person(ref, where)


# --- create a task -------------------------------------------------------------------------------------

def check_create_task(params: dict) -> None:
    where = _("create task")
    _only(params, {"title", "description", "deadline", "responsible", "observers", "approval"}, where)
    _need(params, "title", str, where)
    approval = params.get("approval")
    if approval is not None and (not isinstance(approval, dict) or not approval
                                 or set(approval) - {"approved", "rejected"}):
        raise ValueError(_("%(w)s: «approval» maps approved and rejected to stage codes.") % {"w": where})
    if "deadline" in params:
        rules.check_duration(params["deadline"], f"{where}: deadline")
    _people(params.get("responsible", "responsible"), f"{where}: responsible")
    _people(params.get("observers"), f"{where}: observers", required=False)


def create_task(actor: Actor, obj, params: dict, run) -> dict:
    from voronka.activities.actions import create_task as action
    from voronka.core import clock

    responsible = rules.people([params.get("responsible", "responsible")], obj)
    if not responsible:
        raise ValidationFailed(_("Nobody to give the task to: %(r)s is empty.") % {"r": params.get("responsible", "responsible")})
    observers = [u.pk for u in rules.people(params.get("observers") or [], obj) if u.pk != responsible[0].pk]
    deadline = None
    if params.get("deadline"):
        amount, unit = rules.check_duration(params["deadline"], "deadline")
        deadline = clock.now() + rules.delta(amount, unit)
    task = action(actor, title=fields.render(params["title"], obj)[:255],
                  description=fields.render(params.get("description", ""), obj), deadline=deadline,
                  responsible=responsible[0], observers=observers,
                  entity_type_id=obj.ENTITY_TYPE_ID, entity_id=obj.pk, record=obj,
                  **({"approval": params["approval"]} if params.get("approval") else {}))
    return {"task": task.pk, "responsible": task.responsible_id, "title": task.title}


# --- notify --------------------------------------------------------------------------------------------

def check_notify(params: dict) -> None:
    where = _("notify")
    _only(params, {"text", "to", "email", "subject"}, where)
    _need(params, "text", str, where)
    _people(params.get("to", "responsible"), f"{where}: to")
    if not isinstance(params.get("email", False), bool):
        raise ValueError(_("%(w)s: «email» is true or false.") % {"w": where})


def notify(actor: Actor, obj, params: dict, run) -> dict:
    from voronka.activities.actions import notify as action

    to = params.get("to", "responsible")
    users = rules.people([to] if isinstance(to, str) else to, obj)
    text = fields.render(params["text"], obj)
    rows = action(actor, users=users, text=text, entity_type_id=obj.ENTITY_TYPE_ID, entity_id=obj.pk,
                  email=params.get("email", False), subject=fields.render(params.get("subject", ""), obj), record=obj)
    outputs = {"notified": [n.user_id for n in rows], "text": text}
    if not rows:
        outputs["warning"] = _("Nobody could be notified: no such people, or none of them may read the record.")
    return outputs


# --- set fields ----------------------------------------------------------------------------------------

def check_set_fields(params: dict) -> None:
    where = _("set fields")
    _only(params, {"fields"}, where)
    values = _need(params, "fields", dict, where)
    if not values:
        raise ValueError(_("%(w)s: give at least one field.") % {"w": where})


def _record_data(values: dict, obj) -> dict:
    data: dict[str, Any] = {}
    for name, template in values.items():
        value = fields.value_or_render(template, obj)
        if hasattr(value, "isoformat"):  # a date or time copied from the record: written as text like any input
            value = value.isoformat()
        if name.startswith("custom.") or name.startswith("uf_"):
            data.setdefault("custom", {})[name.removeprefix("custom.")] = value
        else:
            data[name] = value
    return data


def set_fields(actor: Actor, obj, params: dict, run) -> dict:
    from voronka.core.recordkit import update_one

    data = _record_data(params["fields"], obj)
    update_one(actor, rules.spec_for(obj.ENTITY_TYPE_ID), obj.pk, data)
    return {"fields": sorted(params["fields"])}


# --- change the responsible ------------------------------------------------------------------------------

def check_change_responsible(params: dict) -> None:
    where = _("change responsible")
    _only(params, {"mode", "user", "users"}, where)
    mode = params.get("mode", "user")
    if mode == "user":
        rules.check_person(_need(params, "user", str, where), where, allow_role=False)
    elif mode == "round_robin":
        users = _need(params, "users", list, where)
        if not users:
            raise ValueError(_("%(w)s: round robin needs a list of users.") % {"w": where})
        for ref in users:
            if not (isinstance(ref, str) and ref.startswith("user:")):
                raise ValueError(_("%(w)s: round robin takes users (user:ID or user:LOGIN).") % {"w": where})
            rules.check_person(ref, where)
    elif mode != "head":
        raise ValueError(_("%(w)s: the mode is user, round_robin or head.") % {"w": where})


def change_responsible(actor: Actor, obj, params: dict, run) -> dict:
    from voronka.core.recordkit import update_one

    mode = params.get("mode", "user")
    if mode == "round_robin":
        pointer, _created = RoundRobinPointer.objects.get_or_create(robot_id=run.robot_id)
        pointer = RoundRobinPointer.objects.select_for_update().get(pk=pointer.pk)
        refs = params["users"]
        user = None
        for i in range(len(refs)):  # skip users who left: the next one in the queue takes it
            candidates = rules.people([refs[(pointer.position + i) % len(refs)]], obj)
            if candidates:
                user = candidates[0]
                pointer.position += i + 1
                break
        if user is None:
            raise ValidationFailed(_("Nobody in the round robin queue is an active user."))
        pointer.save(update_fields=["position"])
    else:
        found = rules.people(["head" if mode == "head" else params["user"]], obj)
        if not found:
            raise ValidationFailed(_("Nobody to hand the record to (%(m)s).") % {"m": mode})
        user = found[0]
    before = obj.responsible_id
    update_one(actor, rules.spec_for(obj.ENTITY_TYPE_ID), obj.pk, {"responsible": user.pk})
    return {"from": before, "to": user.pk}


# --- move to a stage -------------------------------------------------------------------------------------

def check_move_stage(params: dict) -> None:
    where = _("move to stage")
    _only(params, {"stage", "pipeline"}, where)
    if not isinstance(params.get("stage"), str | int) or params.get("stage") in ("", None):
        raise ValueError(_("%(w)s: «stage» is required.") % {"w": where})


def move_stage(actor: Actor, obj, params: dict, run) -> dict:
    from voronka.pipelines.actions import move_to_stage

    before = obj.stage_id
    moved = move_to_stage(actor, rules.spec_for(obj.ENTITY_TYPE_ID), obj.pk, stage=params["stage"],
                          pipeline=params.get("pipeline"))
    return {"from": before, "to": moved.stage_id, "pipeline": moved.pipeline_id}


# --- return to the pipeline it came from (F25) ---------------------------------------------------------

def check_return_to_origin(params: dict) -> None:
    where = _("return to the pipeline it came from")
    _only(params, {"stage"}, where)
    if "stage" in params and (not isinstance(params["stage"], str | int) or params["stage"] in ("", None)):
        raise ValueError(_("%(w)s: «stage» is «previous» or a stage of the original pipeline.") % {"w": where})


def origin_of(entity_type_id: int, obj):
    """Where a record came from into its current pipeline: (original pipeline id, the last in-progress stage it
    had there), read from the stage history; None when it has always been in this pipeline."""
    from voronka.pipelines.models import StageHistory

    rows = list(StageHistory.objects.filter(entity_type_id=entity_type_id, entity_id=obj.pk)
                .select_related("from_stage", "to_stage").order_by("-id")[:500])
    for index, row in enumerate(rows):
        if row.pipeline_id == obj.pipeline_id and row.from_stage is not None \
                and row.from_stage.pipeline_id != obj.pipeline_id:
            origin = row.from_stage.pipeline_id
            earlier = [r for r in rows[index + 1:] if r.pipeline_id == origin]
            stage = next((r.to_stage_id for r in earlier if r.to_stage.semantics == "process"), None)
            return origin, stage
    return None


def return_to_origin(actor: Actor, obj, params: dict, run) -> dict:
    """The complaints round trip: a record sent to another pipeline (a deal «finished with defects» moved to
    Complaints) goes back to the pipeline it came from, to the stage it was in before it left (``previous``,
    the default) or to a stage of that pipeline given by code."""
    from voronka.pipelines.actions import move_to_stage

    found = origin_of(obj.ENTITY_TYPE_ID, obj)
    if found is None:
        raise ValidationFailed(_("The record has always been in this pipeline: there is nowhere to return to."))
    pipeline, previous = found
    target = params.get("stage", "previous")
    if target == "previous":
        if previous is None:
            raise ValidationFailed(_("The record had no stage in progress in the pipeline it came from."))
        target = previous
    before = (obj.pipeline_id, obj.stage_id)
    moved = move_to_stage(actor, rules.spec_for(obj.ENTITY_TYPE_ID), obj.pk, stage=target, pipeline=pipeline)
    return {"from": list(before), "to": [moved.pipeline_id, moved.stage_id]}


# --- create a linked record ----------------------------------------------------------------------------

def check_create_linked(params: dict) -> None:
    where = _("create linked record")
    _only(params, {"entity_type", "pipeline", "stage", "fields", "role", "responsible", "observers"}, where)
    code = _need(params, "entity_type", str, where)
    if "responsible" in params:
        _people(params["responsible"], f"{where}: responsible")
    _people(params.get("observers"), f"{where}: observers", required=False)
    try:
        info = entity_types.by_code(code)
        rules.spec_for(info.id)
    except LookupError:
        raise ValueError(_("%(w)s: unknown kind of record «%(c)s».") % {"w": where, "c": code}) from None
    if not isinstance(params.get("fields", {}), dict):
        raise ValueError(_("%(w)s: «fields» maps target fields to templates.") % {"w": where})


def create_linked(actor: Actor, obj, params: dict, run) -> dict:
    from voronka.core.recordkit import create_one

    info = entity_types.by_code(params["entity_type"])
    source_type = obj.ENTITY_TYPE_ID
    data = _record_data(params.get("fields") or {"title": "{title}"}, obj)
    if info.id == entity_types.DEAL and source_type == entity_types.LEAD:
        data.setdefault("lead", obj.pk)
    spec = rules.spec_for(info.id)
    for link in ("contact", "company"):  # the same client
        if link in spec.writable and hasattr(obj, f"{link}_id") and getattr(obj, f"{link}_id"):
            data.setdefault(link, getattr(obj, f"{link}_id"))
    if params.get("responsible"):  # e.g. the production master; people are resolved on the source record
        found = rules.people([params["responsible"]] if isinstance(params["responsible"], str)
                             else params["responsible"], obj)
        if found:
            data["responsible"] = found[0].pk
    data.setdefault("responsible", obj.responsible_id)
    for key in ("pipeline", "stage"):
        if params.get(key) not in (None, ""):
            data[key] = params[key]
    created = create_one(actor, spec, data)
    from voronka.links.actions import link

    # a link both cards show (and «move linked records» follows); its timeline entry is on both records
    link(actor, (source_type, obj.pk), (info.id, created.pk), role=params.get("role") or "")
    observers = [u.pk for u in rules.people(params.get("observers") or [], obj) if u.pk != created.responsible_id]
    if observers:  # F30: the deal's manager follows the production order
        from voronka.core.recordkit import set_observers

        set_observers(actor, spec, created.pk, observers)
    return {"created": [info.id, created.pk]}


# --- move linked records (F24: finishing production moves the deal on) ----------------------------------

def check_move_linked(params: dict) -> None:
    where = _("move linked records")
    _only(params, {"entity_type", "stage", "pipeline", "from_stages"}, where)
    code = _need(params, "entity_type", str, where)
    try:
        info = entity_types.by_code(code)
    except LookupError:
        raise ValueError(_("%(w)s: unknown kind of record «%(c)s».") % {"w": where, "c": code}) from None
    if not info.staged:
        raise ValueError(_("%(w)s: «%(c)s» has no stages.") % {"w": where, "c": code})
    if not isinstance(params.get("stage"), str | int) or params.get("stage") in ("", None):
        raise ValueError(_("%(w)s: «stage» is required.") % {"w": where})
    if "from_stages" in params and not (isinstance(params["from_stages"], list)
                                        and all(isinstance(x, str | int) for x in params["from_stages"])):
        raise ValueError(_("%(w)s: «from_stages» is a list of stage codes.") % {"w": where})


def move_linked(actor: Actor, obj, params: dict, run) -> dict:
    """Move every live record of a kind linked to this one to a stage (optionally only those now in
    ``from_stages``): put on the production item's «Done» stage, it moves the deal on."""
    from voronka.links.selectors import linked_ids
    from voronka.pipelines.actions import move_to_stage
    from voronka.pipelines.models import Stage

    info = entity_types.by_code(params["entity_type"])
    spec = rules.spec_for(info.id)
    moved, skipped = [], []
    for _type, pk in linked_ids(actor, obj.ENTITY_TYPE_ID, obj.pk, other_type_id=info.id):
        target = info.objects.filter(pk=pk, deleted_at__isnull=True).first()
        if target is None:
            continue
        if params.get("from_stages"):
            codes = {str(c) for c in params["from_stages"]}
            current = Stage.objects.filter(pk=target.stage_id).values_list("code", flat=True).first()
            if current not in codes and str(target.stage_id) not in codes:
                skipped.append(pk)
                continue
        done = move_to_stage(actor, spec, pk, stage=params["stage"], pipeline=params.get("pipeline"))
        moved.append([pk, done.stage_id])
    return {"moved": moved, "skipped": skipped}


# --- comment -------------------------------------------------------------------------------------------

def check_comment(params: dict) -> None:
    where = _("comment")
    _only(params, {"text"}, where)
    _need(params, "text", str, where)


def comment(actor: Actor, obj, params: dict, run) -> dict:
    from voronka.activities.actions import add_comment

    entry = add_comment(actor, entity_type_id=obj.ENTITY_TYPE_ID, entity_id=obj.pk,
                        text=fields.render(params["text"], obj), record=obj)
    return {"entry": entry.pk}


# --- outgoing webhook (external) -------------------------------------------------------------------------

def check_webhook(params: dict) -> None:
    where = _("webhook")
    _only(params, {"url", "secret", "fields"}, where)
    url = _need(params, "url", str, where)
    if not url.startswith(("http://", "https://")):
        raise ValueError(_("%(w)s: the URL must start with http:// or https://.") % {"w": where})
    if not isinstance(params.get("secret", ""), str):
        raise ValueError(_("%(w)s: the secret is text.") % {"w": where})
    if not isinstance(params.get("fields", []), list):
        raise ValueError(_("%(w)s: «fields» is a list of field names to send.") % {"w": where})


def prepare_webhook(actor: Actor, obj, params: dict, run) -> dict:
    from voronka.core.history import jsonable

    names = params.get("fields") or ["title", "stage", "responsible"]
    record = {}
    for name in names:
        try:
            record[name] = jsonable(fields.raw(obj, name))
        except KeyError:
            record[name] = None
    body = {"run": run.pk, "key": run.key, "rule": run.rule, "entity_type_id": obj.ENTITY_TYPE_ID,
            "entity_id": obj.pk, "record": record}
    return {"url": params["url"], "body": json.dumps(body, ensure_ascii=False, sort_keys=True)}


def sign(secret: str, body: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def send_webhook(request: dict, params: dict, run) -> dict:
    body = request["body"]
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Voronka",
               "X-Voronka-Idempotency-Key": run.key, "X-Voronka-Signature": sign(params.get("secret", ""), body)}
    req = urllib.request.Request(request["url"], data=body.encode(), headers=headers, method="POST")
    timeout = rules.setting("WEBHOOK_TIMEOUT", 10)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - an admin-configured URL
            return {"status": response.status}
    except urllib.error.HTTPError as exc:
        raise ExternalError(_("The webhook answered HTTP %(s)s.") % {"s": exc.code}) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ExternalError(_("The webhook could not be reached: %(e)s") % {"e": getattr(exc, "reason", exc)}) from None


class ExternalError(Exception):
    """An external effect failed in a way worth retrying."""


# --- e-mail to the client (external) ---------------------------------------------------------------------

def check_email_client(params: dict) -> None:
    where = _("e-mail to the client")
    _only(params, {"subject", "body"}, where)
    _need(params, "subject", str, where)
    _need(params, "body", str, where)


def _client_communications(obj, kind: str) -> list[str]:
    values = fields._communications(obj, kind)
    for link in ("contact", "company"):  # a deal reaches its client through the contact, then the company
        if values:
            break
        related = getattr(obj, link, None) if hasattr(obj, f"{link}_id") else None
        if related is not None:
            values = fields._communications(related, kind)
    return values


UNSUBSCRIBED_YES = {True, "1", "true", "yes", "on", "да"}


def unsubscribed_by(obj, address: str, kind: str = "email"):
    """The record that says the client unsubscribed from mailings (a custom field of
    ``VORONKA_UNSUBSCRIBED_FIELDS``, default ``unsubscribed`` and ``uf_unsubscribed``, set to yes), or None.
    Looked at: the record itself, its contact and company, and every contact with that address (``kind``:
    ``email`` or ``phone``, normalized). One flag covers e-mails and SMS alike."""
    from voronka.parties.models import Communication, Contact

    codes = tuple(getattr(settings, "VORONKA_UNSUBSCRIBED_FIELDS", ("unsubscribed", "uf_unsubscribed")))
    records = [obj] + [getattr(obj, link, None) for link in ("contact", "company") if getattr(obj, f"{link}_id", None)]
    records += list(Contact.objects.filter(deleted_at__isnull=True, pk__in=Communication.objects.filter(
        entity_type_id=entity_types.CONTACT, kind=kind, normalized=address).values("entity_id")[:20]))
    for record in records:
        custom = getattr(record, "custom", None) or {}
        if any(_yes(custom.get(code)) for code in codes):
            return record
    return None


def _yes(value) -> bool:
    return (value.strip().lower() if isinstance(value, str) else value) in UNSUBSCRIBED_YES


def prepare_email_client(actor: Actor, obj, params: dict, run) -> dict:
    to = _client_communications(obj, "email")
    if not to:
        raise ValidationFailed(_("The client has no e-mail address."))
    refused = unsubscribed_by(obj, to[0])
    if refused is not None:  # nothing is sent; the run log says why
        return {"skip": _("Not sent: the client unsubscribed from e-mails (%(what)s #%(id)s).") % {
            "what": _record_code(refused), "id": refused.pk}, "to": to[:1]}
    body = fields.render(params["body"], obj)
    request = {"to": to[:1], "subject": fields.render(params["subject"], obj)[:200], "body": body}
    if tracking_enabled():
        request["html"] = tracked_html(body, run.pk)
    return request


URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


def tracking_enabled() -> bool:
    return bool(getattr(settings, "VORONKA_EMAIL_TRACKING", True))


def tracking_url(kind: str, run_id: int, url: str = "") -> str:
    """The public address of the tracking pixel (``o``) or of a link's redirect (``c``), signed."""
    from django.core import signing

    data = {"r": run_id, "u": url} if url else {"r": run_id}
    token = signing.dumps(data, salt="voronka.automation.email", compress=True)
    base = str(getattr(settings, "VORONKA_PUBLIC_URL", "") or "http://localhost:8000").rstrip("/")
    return f"{base}/t/{kind}/{token}/"


def tracked_html(body: str, run_id: int) -> str:
    """The HTML part of a robot's e-mail: the text with its links going through the click redirect, and the
    opening pixel. The plain-text part keeps the original links."""
    parts, last = [], 0
    for m in URL_RE.finditer(body):
        parts.append(html.escape(body[last:m.start()]))
        parts.append(f'<a href="{html.escape(tracking_url("c", run_id, m.group(0)))}">{html.escape(m.group(0))}</a>')
        last = m.end()
    parts.append(html.escape(body[last:]))
    text = "".join(parts).replace("\n", "<br>\n")
    pixel = f'<img src="{html.escape(tracking_url("o", run_id))}" width="1" height="1" alt="">'
    return f"<html><body>{text}\n{pixel}</body></html>"


def send_email_client(request: dict, params: dict, run) -> dict:
    if request.get("skip"):
        return {"skipped": request["skip"], "to": request["to"]}
    domain = getattr(settings, "VORONKA_MAIL_DOMAIN", "voronka.local")
    message = EmailMultiAlternatives(request["subject"], request["body"], None, request["to"],
                                     headers={"Message-ID": f"<{run.key.replace(':', '.')}@{domain}>",
                                              "X-Voronka-Idempotency-Key": run.key})
    if request.get("html"):
        message.attach_alternative(request["html"], "text/html")
    try:
        message.send()
    except Exception as exc:  # SMTP errors, refused connections …
        raise ExternalError(_("The e-mail could not be sent: %(e)s") % {"e": exc}) from None
    return {"to": request["to"]}


# --- SMS (external) ------------------------------------------------------------------------------------

class SmsProvider:
    """Sends one SMS. ``key`` is the idempotency key: a provider that supports one should pass it on."""

    def send(self, phone: str, text: str, key: str) -> dict:  # pragma: no cover - interface
        raise NotImplementedError


class LogSmsProvider(SmsProvider):
    """The default: writes the SMS to the log (and keeps the last ones in memory for tests)."""

    sent: list[dict] = []

    def send(self, phone: str, text: str, key: str) -> dict:
        log.warning("SMS to %s (key %s): %s", phone, key, text)
        LogSmsProvider.sent.append({"phone": phone, "text": text, "key": key})
        del LogSmsProvider.sent[:-1000]
        return {"provider": "log"}


def sms_provider() -> SmsProvider:
    path = getattr(settings, "VORONKA_SMS_PROVIDER", None) or "voronka.automation.effects.LogSmsProvider"
    return import_string(path)()


def check_sms(params: dict) -> None:
    where = _("SMS")
    _only(params, {"text"}, where)
    _need(params, "text", str, where)


def _record_code(record) -> str:
    type_id = getattr(record, "ENTITY_TYPE_ID", 0)
    return entity_types.get(type_id).code if type_id else "record"


def prepare_sms(actor: Actor, obj, params: dict, run) -> dict:
    phones = _client_communications(obj, "phone")
    if not phones:
        raise ValidationFailed(_("The client has no phone number."))
    refused = unsubscribed_by(obj, phones[0], "phone")
    if refused is not None:  # «skipped» with the reason in the run log, like an e-mail
        return {"skip": _("Not sent: the client unsubscribed from SMS and mailings (%(what)s #%(id)s).") % {
            "what": _record_code(refused), "id": refused.pk}, "to": phones[:1]}
    return {"phone": phones[0], "text": fields.render(params["text"], obj)}


def send_sms(request: dict, params: dict, run) -> dict:
    try:
        return sms_provider().send(request["phone"], request["text"], run.key) or {}
    except Exception as exc:
        raise ExternalError(_("The SMS could not be sent: %(e)s") % {"e": exc}) from None


# --- the source dispatcher: convert a lead, mark the client's contact (seed 004) ----------------------------

def _contact_of(lead):
    """The contact a lead is about: the one linked to it, else one with the same e-mail, else the same phone."""
    from voronka.parties.models import Communication, Contact

    if lead.contact_id:
        contact = Contact.objects.filter(pk=lead.contact_id, deleted_at__isnull=True).first()
        if contact is not None:
            return contact
    comms = list(Communication.objects.filter(entity_type_id=entity_types.LEAD, entity_id=lead.pk)
                 .values_list("kind", "normalized"))
    for kind in ("email", "phone"):
        values = [n for k, n in comms if k == kind]
        if not values:
            continue
        ids = Communication.objects.filter(entity_type_id=entity_types.CONTACT, kind=kind, normalized__in=values) \
            .order_by("entity_id").values_list("entity_id", flat=True)[:20]
        contact = Contact.objects.filter(pk__in=list(ids), deleted_at__isnull=True).order_by("id").first()
        if contact is not None:
            return contact
    return None


def _only_leads(obj, where: str) -> None:
    if obj.ENTITY_TYPE_ID != entity_types.LEAD:
        raise ValidationFailed(_("%(w)s works on leads only.") % {"w": where})


def check_convert_lead(params: dict) -> None:
    where = _("convert lead")
    _only(params, {"contact", "company", "deal", "deal_pipeline", "deal_stage", "match_contact"}, where)
    for key in ("contact", "company", "deal", "match_contact"):
        if key in params and not isinstance(params[key], bool):
            raise ValueError(_("%(w)s: «%(k)s» is true or false.") % {"w": where, "k": key})
    for key in ("deal_pipeline", "deal_stage"):
        value = params.get(key)
        if value not in (None, "") and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise ValueError(_("%(w)s: «%(k)s» is the code or id of a pipeline/stage.") % {"w": where, "k": key})


def convert_lead(actor: Actor, obj, params: dict, run) -> dict:
    """Mark the lead converted: link (or create) the contact, optionally a company and a deal (e.g. in the
    pipeline of a welcome sequence, whose robots send the letters)."""
    from voronka.leads.actions import convert_lead as action

    _only_leads(obj, _("convert lead"))
    if obj.converted_at:
        return {"skipped": "already converted"}
    existing = _contact_of(obj) if params.get("match_contact", True) and not obj.contact_id else None
    pipeline = params.get("deal_pipeline") or None
    make_deal = bool(params.get("deal", False)) or pipeline is not None
    result = action(actor, obj.pk, create_contact=bool(params.get("contact", True)),
                    create_company=params.get("company"), create_deal=make_deal,
                    contact_id=existing.pk if existing else None, deal_pipeline=pipeline,
                    deal_stage=params.get("deal_stage") or None)
    return {k: getattr(result.get(k), "pk", None) for k in ("contact", "company", "deal")} | {
        "matched_contact": bool(existing)}


def check_mark_contact(params: dict) -> None:
    where = _("mark the contact")
    _only(params, {"fields", "comment", "move_deals"}, where)
    values = _need(params, "fields", dict, where)
    if not values:
        raise ValueError(_("%(w)s: give at least one field.") % {"w": where})
    if "comment" in params and not isinstance(params["comment"], str):
        raise ValueError(_("%(w)s: «comment» is text.") % {"w": where})
    move = params.get("move_deals")
    if move is not None and (not isinstance(move, dict) or set(move) != {"pipeline", "stage"}
                             or not all(isinstance(v, str | int) and v != "" for v in move.values())):
        raise ValueError(_("%(w)s: «move_deals» is {pipeline, stage}: the contact's open deals in that pipeline "
                           "move to that stage (e.g. a mailing sequence stops).") % {"w": where})


def mark_contact(actor: Actor, obj, params: dict, run) -> dict:
    """Set fields on the contact the lead is about (linked, or found by e-mail/phone), e.g. «unsubscribed»,
    and link the lead to it. No such contact: the lead says so in a comment and nothing else changes."""
    from voronka.core import history
    from voronka.core.recordkit import update_one
    from voronka.leads.actions import LEAD
    from voronka.parties.actions import CONTACT

    _only_leads(obj, _("mark the contact"))
    contact = _contact_of(obj)
    if contact is None:
        history.entry(actor, entity_types.LEAD, obj.pk, "automation",
                      text=_("No contact with this e-mail or phone: nothing was marked."))
        return {"contact": None}
    update_one(actor, CONTACT, contact.pk, _record_data(params["fields"], obj))
    text = fields.render(params.get("comment") or "", obj) or _("Marked from lead #%(id)s.") % {"id": obj.pk}
    history.entry(actor, entity_types.CONTACT, contact.pk, "automation", text=text[:5000],
                  data={"lead": obj.pk, "fields": sorted(params["fields"])}, also=[(entity_types.LEAD, obj.pk)])
    if obj.contact_id != contact.pk:
        update_one(actor, LEAD, obj.pk, {"contact": contact.pk})
    moved = []
    if params.get("move_deals"):
        moved = _move_contact_deals(actor, contact, params["move_deals"])
    return {"contact": contact.pk, "fields": sorted(params["fields"]), "deals": moved}


def _move_contact_deals(actor: Actor, contact, target: dict) -> list[int]:
    """Move the contact's open deals of one pipeline to a stage (its delayed robots then no longer run)."""
    from voronka.deals.models import Deal
    from voronka.pipelines.actions import move_to_stage
    from voronka.pipelines.models import Pipeline

    ref = str(target["pipeline"])
    pipeline = Pipeline.objects.filter(entity_type_id=entity_types.DEAL).filter(
        **({"pk": int(ref)} if ref.isdigit() else {"code": ref})).first()
    if pipeline is None:
        raise ValidationFailed(_("No deal pipeline «%(p)s».") % {"p": ref})
    moved = []
    for deal_id in Deal.objects.filter(contact_id=contact.pk, pipeline=pipeline, deleted_at__isnull=True,
                                       stage_semantics="process").order_by("id").values_list("id", flat=True)[:50]:
        move_to_stage(actor, rules.spec_for(entity_types.DEAL), deal_id, stage=target["stage"], pipeline=pipeline.pk)
        moved.append(deal_id)
    return moved


# --- the table ----------------------------------------------------------------------------------------

DB = {
    A.CREATE_TASK: (check_create_task, create_task),
    A.NOTIFY: (check_notify, notify),
    A.SET_FIELDS: (check_set_fields, set_fields),
    A.CHANGE_RESPONSIBLE: (check_change_responsible, change_responsible),
    A.MOVE_STAGE: (check_move_stage, move_stage),
    A.RETURN_TO_ORIGIN: (check_return_to_origin, return_to_origin),
    A.CREATE_LINKED: (check_create_linked, create_linked),
    A.MOVE_LINKED: (check_move_linked, move_linked),
    A.COMMENT: (check_comment, comment),
    A.CONVERT_LEAD: (check_convert_lead, convert_lead),
    A.MARK_CONTACT: (check_mark_contact, mark_contact),
}
# Database effects that change no record of a pipeline (they add a task, notifications, timeline lines and
# events): the records the worker loaded for a batch are still current after them.
KEEPS_RECORDS = {A.CREATE_TASK, A.NOTIFY, A.COMMENT}
EXTERNAL = {
    A.WEBHOOK: (check_webhook, prepare_webhook, send_webhook),
    A.EMAIL_CLIENT: (check_email_client, prepare_email_client, send_email_client),
    A.SMS: (check_sms, prepare_sms, send_sms),
}


def check_params(action: str, params: Any) -> None:
    if action in DB:
        DB[action][0](params)
    elif action in EXTERNAL:
        EXTERNAL[action][0](params)
    else:
        raise ValueError(_("Unknown action «%(a)s»; use one of %(all)s.")
                         % {"a": action, "all": ", ".join([*DB, *EXTERNAL])})

