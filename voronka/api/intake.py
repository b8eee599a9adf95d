"""Intake over the API: call events, site registrations, the intake log and replay, duplicate lookup and
merge, web form definitions, presence, taking a free item and hand-off. See docs/intake.md."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from pydantic import BaseModel, Field

from voronka.core import entity_types, policies
from voronka.core.errors import ActionError, NotFound, PermissionDenied, ValidationFailed
from voronka.distribution import actions as distribution
from voronka.intake import actions, duplicates, forms, mail
from voronka.intake.calls import external_id as call_external_id
from voronka.intake.models import IntakeLog, WebForm

from .errors import BadRequest, check_text
from .records import payload_data
from .schemas import MAX_ID, Id, Strict, responses

intake = Router(tags=["Intake"])
lookups = Router(tags=["Duplicates"])
distribution_router = Router(tags=["Distribution"])


# --- schemas -----------------------------------------------------------------------------------------

class CallEventIn(BaseModel):
    event: Literal["incoming", "outgoing", "missed"]
    from_: str = Field(alias="from", max_length=64, description="The caller's number (any common format).")
    to: str = Field(max_length=64, description="The number called.")
    duration: int = Field(0, ge=0, le=604800, description="Seconds of conversation (0 for a missed call).")
    recording_url: str | None = Field(None, max_length=2000, description="Where the recording can be fetched.")
    call_id: str | None = Field(None, max_length=100, description="The provider's id; a repeated event is not logged twice.")
    started_at: str | None = Field(None, max_length=40, description="ISO 8601 date and time.")
    user: int | None = Field(None, ge=1, le=MAX_ID, description="The employee who took or made the call.")
    source: str | None = Field(None, max_length=50, description="Source of a new lead (default «call»).")


class RegistrationIn(BaseModel):
    source: str | None = Field(None, max_length=50, description="Source code, e.g. «site-registration».")
    title: str | None = Field(None, max_length=255)
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    middle_name: str | None = Field(None, max_length=100)
    company_name: str | None = Field(None, max_length=255)
    phones: list[str] | None = Field(None, max_length=20)
    emails: list[str] | None = Field(None, max_length=20)
    inquiry: str | None = Field(None, max_length=20000)
    comment: str | None = Field(None, max_length=20000)
    utm_source: str | None = Field(None, max_length=255)
    utm_medium: str | None = Field(None, max_length=255)
    utm_campaign: str | None = Field(None, max_length=255)
    utm_content: str | None = Field(None, max_length=255)
    utm_term: str | None = Field(None, max_length=255)
    referrer: str | None = Field(None, max_length=2000)
    custom: dict[str, Any] | None = None


class IntakeResultOut(BaseModel):
    log: int = Field(description="Id of the intake log entry.")
    status: str = Field(description="created, merged, attached, ignored, pending (stored, not yet processed).")
    reason: str
    entity_type_id: int | None
    entity_id: int | None
    produced: list[list[int | str]]


class IntakeLogOut(IntakeResultOut):
    channel: str
    source: str
    received_at: str
    remote_addr: str
    attempts: int
    payload: dict[str, Any]
    errors: dict[str, Any]


class MatchOut(BaseModel):
    entity_type_id: int
    id: int
    reasons: list[str]
    score: int
    title: str


class MatchesOut(BaseModel):
    items: list[MatchOut]


class MergeIn(Strict):
    entity_type_id: int = Field(ge=1, le=4, description="1 lead, 2 deal, 3 contact, 4 company.")
    keep: Id
    merge: list[Id] = Field(min_length=1, max_length=50)
    values: dict[str, Id] = Field(default_factory=dict, description="Field name → id of the record to take it from.")


class MergedOut(BaseModel):
    entity_type_id: int
    id: int
    merged: list[int]


class FormFieldIn(Strict):
    name: str = Field(max_length=60)
    label: str | None = Field(None, max_length=200)
    type: Literal["text", "tel", "email", "textarea", "number", "select"] = "text"
    required: bool = False
    maps_to: str = Field(max_length=80, description="A lead field, «phones», «emails» or «custom.<code>».")
    options: list[str] | None = Field(None, max_length=100)
    placeholder: str | None = Field(None, max_length=200)


class FormIn(Strict):
    slug: str = Field(max_length=60, pattern=r"^[-a-zA-Z0-9_]+$")
    name: str = Field(max_length=200)
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    fields: list[FormFieldIn] = Field(min_length=1, max_length=40)
    consent_text: str | None = Field(None, max_length=2000)
    button: str | None = Field(None, max_length=100)
    source: str = Field(max_length=50, pattern=r"^[-a-zA-Z0-9_]+$")
    pipeline: int | None = Field(None, ge=1, le=MAX_ID)
    stage: str | None = Field(None, max_length=60)
    queue: int | None = Field(None, ge=1, le=MAX_ID)
    duplicate_policy: Literal["merge", "attach", "flag", "create", ""] | None = None
    mode: Literal["background", "now"] | None = Field(
        None, description="«background» (the default): a submission is answered once its fields are checked and "
                          "processed by the worker within a second; «now»: processed inside the request.")
    success_message: str | None = Field(None, max_length=2000)
    redirect_url: str | None = Field(None, max_length=200)
    allowed_origins: list[str] | None = Field(None, max_length=50)
    language: Literal["ru", "en", ""] | None = None
    is_active: bool | None = None


class FormPatchIn(FormIn):
    slug: str | None = Field(None, max_length=60, pattern=r"^[-a-zA-Z0-9_]+$")  # type: ignore[assignment]
    name: str | None = Field(None, max_length=200)  # type: ignore[assignment]
    fields: list[FormFieldIn] | None = Field(None, min_length=1, max_length=40)  # type: ignore[assignment]
    source: str | None = Field(None, max_length=50, pattern=r"^[-a-zA-Z0-9_]+$")  # type: ignore[assignment]


class FormOut(BaseModel):
    id: int
    slug: str
    name: str
    source: str
    is_active: bool
    mode: str
    url: str = Field(description="The public page; add ?embed=1 for the iframe variant.")
    embed_script: str = Field(description="A <script> tag that renders the form on any allowed site.")
    embed_iframe: str
    fields: list[dict[str, Any]]
    allowed_origins: list[str]


class FormsOut(BaseModel):
    items: list[FormOut]


class MailboxIn(Strict):
    name: str = Field(max_length=200)
    kind: Literal["imap", "smtp"] = "imap"
    source: str = Field("mail", max_length=50, pattern=r"^[-a-zA-Z0-9_]+$")
    is_active: bool = True
    imap_host: str | None = Field(None, max_length=255)
    imap_port: int | None = Field(None, ge=1, le=65535)
    imap_tls: bool | None = None
    imap_login: str | None = Field(None, max_length=255)
    imap_password: str | None = Field(None, max_length=255, description="Write-only; empty keeps the stored one.")
    imap_folder: str | None = Field(None, max_length=255)
    poll_seconds: int | None = Field(None, ge=10, le=86400)
    recipients: list[str] | None = Field(None, max_length=50, description="SMTP: the addresses it accepts.")


class MailboxPatchIn(MailboxIn):
    name: str | None = Field(None, max_length=200)  # type: ignore[assignment]
    kind: Literal["imap", "smtp"] | None = None  # type: ignore[assignment]
    source: str | None = Field(None, max_length=50, pattern=r"^[-a-zA-Z0-9_]+$")  # type: ignore[assignment]
    is_active: bool | None = None  # type: ignore[assignment]


class MailboxOut(BaseModel):
    id: int
    name: str
    kind: str
    source: str
    is_active: bool
    imap_host: str
    imap_port: int
    imap_tls: bool
    imap_login: str
    imap_folder: str
    poll_seconds: int
    recipients: list[str]
    last_uid: int
    last_polled_at: str | None
    last_error: str


class MailboxesOut(BaseModel):
    items: list[MailboxOut]


class PresenceIn(Strict):
    present: bool
    user: int | None = Field(None, ge=1, le=MAX_ID, description="Default: the caller.")


class PresenceOut(BaseModel):
    user: int
    present: bool


class RecordRefIn(Strict):
    entity_type_id: Literal[1, 2] = Field(description="1 lead, 2 deal.")
    entity_id: Id


class HandOffIn(RecordRefIn):
    user: Id
    note: str = Field("", max_length=5000)


class AssignedOut(BaseModel):
    entity_type_id: int
    entity_id: int
    responsible: int | None


# --- helpers -----------------------------------------------------------------------------------------

def _result(entry: IntakeLog) -> dict:
    return {"log": entry.pk, "status": entry.status, "reason": entry.reason, "entity_type_id": entry.entity_type_id,
            "entity_id": entry.entity_id, "produced": entry.produced or []}


def _answer(entry: IntakeLog):
    if entry.status == IntakeLog.Status.REJECTED:
        code = (entry.meta or {}).get("code") or "validation_failed"
        error_class = ValidationFailed if code == "validation_failed" else BadRequest
        raise error_class(entry.reason, code=code, fields={k: [str(m) for m in (v if isinstance(v, list) else [v])]
                                                          for k, v in (entry.errors or {}).items()})
    status = {IntakeLog.Status.CREATED: 201, IntakeLog.Status.PENDING: 202}.get(entry.status, 200)
    return Status(status, _result(entry))


def _intake_actor(request: HttpRequest):
    actor = request.auth
    if not policies.can(actor, policies.ADD, entity_types.LEAD):
        raise PermissionDenied(_("This token may not create leads."), code="forbidden_add")
    return actor


def _body_doc(schema: type[BaseModel]) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": schema.model_json_schema(by_alias=True)}}}}


def _ip(request: HttpRequest) -> str:
    return (request.META.get("REMOTE_ADDR") or "")[:45]


# --- inbound channels --------------------------------------------------------------------------------

@intake.post("/calls", response=responses({200: IntakeResultOut, 201: IntakeResultOut, 202: IntakeResultOut}),
             operation_id="intake_call", openapi_extra=_body_doc(CallEventIn),
             summary="A call event from the telephony provider")
def call_event(request: HttpRequest):
    """`incoming`, `outgoing` or `missed`. A known number gets a call entry on its contact's (and open deals')
    or lead's timeline; an unknown number becomes a new lead; a missed call also gets a call-back task.
    The raw event is logged first; a bad one is answered 422 and kept as rejected."""
    actor = _intake_actor(request)
    payload, raw = actions.parse_body(request.body)
    entry, new = actions.receive(IntakeLog.Channel.CALL, payload, raw=raw, source=str(payload.get("source") or "call"),
                                 remote_addr=_ip(request), user_id=actor.user_id,
                                 external_id=call_external_id(payload))
    if raw:
        entry = actions.reject(entry, _("The request body is not a JSON object."), code="invalid_json")
    elif new:
        entry = actions.process(entry.pk)
    return _answer(entry)


@intake.post("/leads", response=responses({200: IntakeResultOut, 201: IntakeResultOut, 202: IntakeResultOut}),
             operation_id="intake_lead", openapi_extra=_body_doc(RegistrationIn),
             summary="A lead from a site registration or any other system")
def registration(request: HttpRequest):
    """Duplicate control and distribution as for every channel, by the source's settings."""
    actor = _intake_actor(request)
    payload, raw = actions.parse_body(request.body)
    entry, _new = actions.receive(IntakeLog.Channel.API, payload, raw=raw, source=actions.registration_source(payload),
                                  remote_addr=_ip(request), user_id=actor.user_id)
    if raw:
        entry = actions.reject(entry, _("The request body is not a JSON object."), code="invalid_json")
    else:
        entry = actions.process(entry.pk)
    return _answer(entry)


@intake.get("/log/{log_id}", response=responses({200: IntakeLogOut}), operation_id="get_intake_log")
def get_log(request: HttpRequest, log_id: int):
    policies.require(request.auth, actions.SETTINGS, 0)
    entry = IntakeLog.objects.filter(pk=log_id).first() if 0 < log_id <= MAX_ID else None
    if entry is None:
        raise NotFound(_("Intake log entry #%(id)s does not exist.") % {"id": log_id})
    return {**_result(entry), "channel": entry.channel, "source": entry.source, "remote_addr": entry.remote_addr,
            "received_at": entry.received_at.isoformat(), "attempts": entry.attempts,
            "payload": entry.payload if isinstance(entry.payload, dict) else {}, "errors": entry.errors or {}}


@intake.post("/log/{log_id}/replay", response=responses({200: IntakeResultOut, 201: IntakeResultOut,
                                                          202: IntakeResultOut}), operation_id="replay_intake_log")
def replay(request: HttpRequest, log_id: int, force: bool = False):
    """Process a logged payload again (a pending one after a crash, a rejected one after fixing the cause;
    one that already produced something only with `force=true`)."""
    if not 0 < log_id <= MAX_ID:
        raise NotFound(_("Intake log entry #%(id)s does not exist.") % {"id": log_id})
    return _answer(actions.replay(request.auth, log_id, force=force))


# --- web form definitions ----------------------------------------------------------------------------

def _form_out(request: HttpRequest, form: WebForm) -> dict:
    url = request.build_absolute_uri(f"/f/{form.slug}/")
    return {"id": form.pk, "slug": form.slug, "name": form.name, "source": form.source, "is_active": form.is_active,
            "mode": form.mode, "url": url, "embed_script": f'<script src="{url}embed.js" async></script>',
            "embed_iframe": f'<iframe src="{url}?embed=1" style="width:100%;min-height:560px;border:0" '
                            f'title="{form.name}"></iframe>',
            "fields": form.fields, "allowed_origins": form.allowed_origins or []}


@intake.get("/forms", response=responses({200: FormsOut}), operation_id="list_web_forms")
def list_forms(request: HttpRequest):
    policies.require(request.auth, forms.SETTINGS, 0)
    return {"items": [_form_out(request, f) for f in WebForm.objects.order_by("name", "id")[:500]]}


@intake.post("/forms", response=responses({201: FormOut}), operation_id="create_web_form")
def create_form(request: HttpRequest, payload: FormIn):
    data = payload_data(payload)
    return Status(201, _form_out(request, forms.create_form(request.auth, **data)))


@intake.patch("/forms/{form_id}", response=responses({200: FormOut}), operation_id="update_web_form")
def update_form(request: HttpRequest, form_id: int, payload: FormPatchIn):
    data = payload_data(payload)
    if not 0 < form_id <= MAX_ID:
        raise NotFound(_("Web form #%(id)s does not exist.") % {"id": form_id})
    return _form_out(request, forms.update_form(request.auth, form_id, **data))


# --- intake mailboxes --------------------------------------------------------------------------------

def _mailbox_out(box) -> dict:
    return {"id": box.pk, "name": box.name, "kind": box.kind, "source": box.source, "is_active": box.is_active,
            "imap_host": box.imap_host, "imap_port": box.imap_port, "imap_tls": box.imap_tls,
            "imap_login": box.imap_login, "imap_folder": box.imap_folder, "poll_seconds": box.poll_seconds,
            "recipients": box.recipients or [], "last_uid": box.last_uid,
            "last_polled_at": box.last_polled_at.isoformat() if box.last_polled_at else None,
            "last_error": box.last_error}


@intake.get("/mailboxes", response=responses({200: MailboxesOut}), operation_id="list_mailboxes")
def list_mailboxes(request: HttpRequest):
    """Intake mailboxes (settings right «integrations»); passwords are never shown."""
    return {"items": [_mailbox_out(b) for b in mail.mailboxes_for(request.auth).order_by("name", "id")[:500]]}


@intake.post("/mailboxes", response=responses({201: MailboxOut}), operation_id="create_mailbox")
def create_mailbox(request: HttpRequest, payload: MailboxIn):
    return Status(201, _mailbox_out(mail.create_mailbox(request.auth, **payload_data(payload))))


@intake.patch("/mailboxes/{mailbox_id}", response=responses({200: MailboxOut}), operation_id="update_mailbox")
def update_mailbox(request: HttpRequest, mailbox_id: int, payload: MailboxPatchIn):
    if not 0 < mailbox_id <= MAX_ID:
        raise NotFound(_("The mailbox does not exist."))
    return _mailbox_out(mail.update_mailbox(request.auth, mailbox_id, **payload_data(payload)))


@intake.get("/mail/attachments/{attachment_id}", operation_id="download_mail_attachment",
            response=responses({200: None}))
def download_attachment(request: HttpRequest, attachment_id: int):
    """The file of an inbound message's attachment, for whoever may read the record it went to."""
    att = mail.attachment_for(request.auth, attachment_id if 0 < attachment_id <= MAX_ID else 0)
    return mail.attachment_response(att)


# --- duplicates --------------------------------------------------------------------------------------

@lookups.get("/duplicates", response=responses({200: MatchesOut}), operation_id="find_duplicates")
def find_duplicates(request: HttpRequest, phone: list[str] = Query(None, max_length=20),
                    email: list[str] = Query(None, max_length=20), name: str = Query("", max_length=300),
                    company: str = Query("", max_length=300)):
    """Records that look like the same person or company: by normalised phone, e-mail, or a similar name
    (with the company when given). Only records you may see are listed."""
    phones, emails = [p[:64] for p in phone or []], [e[:254] for e in email or []]
    check_text({"phone": phones, "email": emails, "name": name, "company": company})
    if not (phones or emails or name.strip() or company.strip()):
        raise BadRequest(_("Give a phone, an e-mail, a name or a company."), fields={"phone": [_("required")]})
    matches = duplicates.find_for(request.auth, phones=phones, emails=emails, name=name, company=company)
    return {"items": [m.as_dict() for m in matches[:50]]}


@lookups.post("/merge", response=responses({200: MergedOut}), operation_id="merge_records")
def merge(request: HttpRequest, payload: MergeIn):
    """Merge records of one kind into `keep`; `values` picks field values from the merged records."""
    kept = duplicates.merge_records(request.auth, payload.entity_type_id, payload.keep, list(payload.merge),
                                    values=dict(payload.values))
    return {"entity_type_id": payload.entity_type_id, "id": kept.pk, "merged": sorted(set(payload.merge) - {kept.pk})}


# --- distribution ------------------------------------------------------------------------------------

@distribution_router.post("/presence", response=responses({200: PresenceOut}), operation_id="set_presence")
def presence(request: HttpRequest, payload: PresenceIn):
    """At work or away. Coming to work picks up the free items waiting in the user's queues."""
    present = distribution.set_presence(request.auth, payload.present, user_id=payload.user)
    return {"user": payload.user or request.auth.user_id, "present": present}


@distribution_router.post("/take", response=responses({200: AssignedOut}), operation_id="take_free_item")
def take(request: HttpRequest, payload: RecordRefIn):
    obj = distribution.take(request.auth, payload.entity_type_id, payload.entity_id)
    return {"entity_type_id": payload.entity_type_id, "entity_id": obj.pk, "responsible": obj.responsible_id}


@distribution_router.post("/hand-off", response=responses({200: AssignedOut}), operation_id="hand_off")
def hand_off(request: HttpRequest, payload: HandOffIn):
    """Pass a record to another user (a head's assignment or an operator's hand-off); on the timeline."""
    obj = distribution.hand_off(request.auth, payload.entity_type_id, payload.entity_id, payload.user, note=payload.note)
    return {"entity_type_id": payload.entity_type_id, "entity_id": obj.pk, "responsible": obj.responsible_id}


__all__ = ["intake", "lookups", "distribution_router", "ActionError"]
