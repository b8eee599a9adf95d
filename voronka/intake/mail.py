"""Mail intake (F32): messages polled from IMAP mailboxes or received by the built-in SMTP endpoint.

Every message is stored raw (RFC 822) in the intake log first, then processed like any payload:

- a reply (In-Reply-To / References / the same Message-ID) goes to the record its thread went to;
- else a known sender (a contact, then an open lead, then a company, by e-mail) gets it on its timeline
  and on the contact's or company's open deals;
- else a new lead: subject → title, body → comment, the display name → first/last name, distributed by
  the source's queue.

Attachments are kept as files under the media directory (``MailAttachment``), listed on the timeline
entry of the message. IMAP polling is UID based: the intake log's unique external id
``imap:<mailbox>:<uidvalidity>:<uid>`` makes a poll that crashed halfway harmless to repeat.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import logging
import os
import re
from email.message import EmailMessage

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import close_old_connections, transaction
from django.utils.html import strip_tags
from django.utils.translation import gettext as _

from voronka.core import clock, entity_types, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, ValidationFailed
from voronka.core.normalize import normalize_email

from . import duplicates, secretbox
from .actions import Outcome, Rejected, Routing, create_intake_lead, handler, process, receive, storable
from .models import IntakeLog, MailAttachment, Mailbox, MailMessage

log = logging.getLogger("voronka.intake.mail")

SETTINGS = "settings:integrations"
MAX_TEXT = 20000
MSGID = re.compile(r"<[^<>\s]{1,490}>")
FETCH_CHUNK = 20


# --- raw storage -----------------------------------------------------------------------------------

def raw_text(data: bytes) -> tuple[str, str]:
    """The raw message as text the log can hold: UTF-8 (7-bit mail is ASCII) or base64 for anything else."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return text, "utf-8"
    return base64.b64encode(data).decode("ascii"), "base64"


def raw_bytes(entry: IntakeLog) -> bytes:
    if (entry.meta or {}).get("raw_encoding") == "base64":
        return base64.b64decode(entry.raw)
    return entry.raw.encode("utf-8")


def store(box: Mailbox, data: bytes, *, external_id: str = "", meta: dict | None = None,
          remote_addr: str = "") -> tuple[IntakeLog, bool]:
    """Keep one raw message in the intake log (before anything else); (entry, is_new)."""
    raw, encoding = raw_text(data)
    headers = parse(data)
    info = {"raw_encoding": encoding, "size": len(data), "subject": _header(headers, "Subject")[:300],
            "from": _header(headers, "From")[:300], "message_id": _first_id(headers, "Message-ID"), **(meta or {})}
    return receive(IntakeLog.Channel.MAIL, {}, raw=raw, source=box.source, remote_addr=remote_addr,
                   meta=info, external_id=external_id, mailbox=box)


def store_and_process(box: Mailbox, data: bytes, **kwargs) -> IntakeLog:
    entry, new = store(box, data, **kwargs)
    if new or entry.status == IntakeLog.Status.PENDING:
        return process(entry.pk)
    return entry


# --- parsing ---------------------------------------------------------------------------------------

def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def _header(msg, name: str) -> str:
    """A header as text; a malformed one is read as its raw text, never an exception."""
    try:
        value = msg.get(name)
        return storable(str(value)).strip() if value is not None else ""
    except Exception:
        for key, value in msg.raw_items():
            if key.lower() == name.lower():
                return storable(str(value)).strip()
        return ""


def message_ids(value: str) -> list[str]:
    return MSGID.findall(value or "")


def _first_id(msg, name: str) -> str:
    ids = message_ids(_header(msg, name))
    return ids[0] if ids else ""


def sender(msg) -> tuple[str, str]:
    """(display name, address) of From (Reply-To is not trusted for matching)."""
    name, address = email.utils.parseaddr(_header(msg, "From"))
    return storable(name).strip()[:200], address.strip()


def body_text(msg) -> str:
    """The text of a message: its text/plain part, else its HTML part without tags."""
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
    except Exception:
        part = None
    if part is None:
        return ""
    try:
        content = part.get_content()
    except Exception:
        payload = part.get_payload(decode=True) or b""
        content = payload.decode(part.get_content_charset() or "utf-8", "replace")
    if not isinstance(content, str):
        return ""
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_type() == "text/html":
        content = strip_tags(re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", content))
        content = re.sub(r"\n{3,}", "\n\n", content)
    return storable(content).strip()


def attachments(msg) -> list[tuple[str, str, bytes]]:
    """(file name, content type, bytes) of every attachment."""
    found = []
    try:
        parts = list(msg.iter_attachments())
    except Exception:
        return found
    for n, part in enumerate(parts, start=1):
        try:
            data = part.get_payload(decode=True)
            if data is None:  # an attached message
                data = part.as_bytes()
            name = part.get_filename() or ""
        except Exception:
            continue
        name = os.path.basename(storable(name).replace("\\", "/")).strip() or f"attachment-{n}"
        found.append((name[:200], part.get_content_type()[:150], data))
    return found


def split_name(display: str) -> tuple[str, str]:
    """«Иван Петров» → ("Иван", "Петров"); one word is a first name."""
    parts = display.replace('"', "").split()
    if not parts or "@" in display:
        return "", ""
    return parts[0][:100], " ".join(parts[1:])[:100]


# --- processing ------------------------------------------------------------------------------------

def _live(entity_type_id: int, pk: int):
    model = entity_types.get(entity_type_id).model
    return model.objects.filter(pk=pk, deleted_at__isnull=True).first()


def thread_target(ids: list[str]):
    """The live record an earlier message of this thread went to: an inbound one (``MailMessage``), or a
    letter a robot sent to the client (its Message-ID is ``<run key with «:» as «.»@VORONKA_MAIL_DOMAIN>``)."""
    if not ids:
        return None
    for row in MailMessage.objects.filter(message_id__in=ids[:50]).order_by("-id")[:20]:
        obj = _live(row.entity_type_id, row.entity_id)
        if obj is not None:
            return row.entity_type_id, obj
    return _robot_letter_target(ids)


def _robot_letter_target(ids: list[str]):
    from django.apps import apps

    domain = f"@{getattr(settings, 'VORONKA_MAIL_DOMAIN', 'voronka.local')}>"
    keys = [i[1:-len(domain)].replace(".", ":") for i in ids if i.endswith(domain)]
    if not keys or not apps.is_installed("voronka.automation"):
        return None
    Run = apps.get_model("automation", "Run")
    for run in Run.objects.filter(key__in=keys[:20]).order_by("-id"):
        obj = _live(run.entity_type_id, run.entity_id)
        if obj is not None:
            return run.entity_type_id, obj
    return None


def sender_target(address: str):
    """A contact first (mail from a known contact goes to it and its open deals), then an open lead, a company."""
    matches = duplicates.find(emails=[address], types=(entity_types.CONTACT, entity_types.LEAD, entity_types.COMPANY))
    for test in (lambda m: m.entity_type_id == entity_types.CONTACT, duplicates.is_open_lead,
                 lambda m: m.entity_type_id == entity_types.COMPANY):
        for match in matches:
            if test(match):
                return match.entity_type_id, match.obj
    return None


def _is_automatic(msg) -> bool:
    auto = _header(msg, "Auto-Submitted").lower()
    return bool(auto) and auto != "no"


@handler(IntakeLog.Channel.MAIL)
def handle_mail(actor: Actor, entry: IntakeLog) -> Outcome:
    box = entry.mailbox
    if box is not None and not box.is_active:
        raise Rejected(_("This mailbox is switched off."))
    if not entry.raw:
        raise ValidationFailed(_("The message is empty."), fields={"raw": [_("This field is required.")]})
    msg = parse(raw_bytes(entry))
    display, address = sender(msg)
    try:
        address = normalize_email(address)
    except ValidationError:
        raise ValidationFailed(_("The message has no valid sender address."),
                               fields={"from": [_("«%(value)s» is not an e-mail address.") % {
                                   "value": _header(msg, "From")[:200]}]}) from None
    if _is_automatic(msg):
        return Outcome(IntakeLog.Status.IGNORED, reason=_("An automatic message (Auto-Submitted): not a request."))
    subject = _header(msg, "Subject").replace("\n", " ")[:255]
    body = body_text(msg)
    own_id = _first_id(msg, "Message-ID")
    refs = message_ids(_header(msg, "In-Reply-To")) + list(reversed(message_ids(_header(msg, "References"))))
    target = thread_target(([own_id] if own_id else []) + refs)
    how = "thread" if target else ""
    if target is None:
        target = sender_target(address)
        how = "sender" if target else ""
    produced = []
    status = IntakeLog.Status.ATTACHED
    if target is None:
        first, last = split_name(display)
        routing = Routing.for_source(entry.source or (box.source if box else "") or "mail")
        lead = create_intake_lead(actor, {
            "title": subject or _("E-mail from %(address)s") % {"address": address},
            "first_name": first, "last_name": last, "emails": [address], "comment": body[:MAX_TEXT]}, routing)
        target = (entity_types.LEAD, lead)
        status = IntakeLog.Status.CREATED
        produced.append([entity_types.LEAD, lead.pk, "created"])
    t, obj = target
    deals = duplicates.open_deals_of(t, obj)
    files = attachments(msg)
    text = "\n\n".join(p for p in (subject or _("(no subject)"), body) if p)[:MAX_TEXT]
    data = {"channel": "mail", "direction": "in", "from": address, "from_name": display,
            "to": _header(msg, "To")[:500], "cc": _header(msg, "Cc")[:500], "subject": subject,
            "message_id": own_id, "in_reply_to": refs[:1], "mailbox": box.pk if box else None, "log": entry.pk,
            "matched_by": how}
    line = history.entry(actor, t, obj.pk, "mail", text=text, data=data,
                         also=[(entity_types.DEAL, d) for d in deals])
    kept = []
    for n, (name, content_type, content) in enumerate(files, start=1):
        att = MailAttachment(log=entry, entry_id=line.pk, entity_type_id=t, entity_id=obj.pk, filename=name,
                             content_type=content_type, size=len(content))
        _save_file(att, n, name, content)
        att.save()
        kept.append({"id": att.pk, "name": name, "size": len(content), "content_type": content_type})
    if kept:
        line.data = {**line.data, "attachments": kept}
        line.save(update_fields=["data"])
    if own_id:
        MailMessage.objects.create(message_id=own_id, log=entry, mailbox=box, entity_type_id=t, entity_id=obj.pk)
    outbox.emit(actor, "mail.received", t, obj.pk, {"entry": line.pk, "log": entry.pk, "deals": deals})
    produced.append([t, obj.pk, "mail"])
    reason = ""
    if how == "thread":
        reason = _("A reply in a thread of %(what)s #%(id)s.") % {"what": entity_types.get(t).code, "id": obj.pk}
    elif how == "sender":
        reason = _("From a known %(what)s #%(id)s.") % {"what": entity_types.get(t).code, "id": obj.pk}
    return Outcome(status, t, obj.pk, produced, reason=reason)


def _save_file(att: MailAttachment, n: int, name: str, content: bytes) -> None:
    """Files of a message live at ``mail/<log id>/<n>/<name>``: a replay, or a retry after a rolled-back
    attempt, writes the same path again instead of leaving copies behind."""
    from django.core.files.storage import default_storage

    safe = default_storage.get_valid_name(name) or f"attachment-{n}"
    path = f"mail/{att.log_id}/{n}/{safe}"
    if default_storage.exists(path):
        default_storage.delete(path)
    att.file.name = default_storage.save(path, ContentFile(content))


# --- mailboxes (settings) --------------------------------------------------------------------------

MAILBOX_FIELDS = ("name", "kind", "source", "is_active", "imap_host", "imap_port", "imap_tls", "imap_login",
                  "imap_password", "imap_folder", "poll_seconds", "recipients")


def _apply(box: Mailbox, data: dict) -> None:
    unknown = [k for k in data if k not in MAILBOX_FIELDS]
    if unknown:
        raise ValidationFailed(_("Some fields are not valid."), fields={k: [_("Unknown field.")] for k in unknown})
    for key, value in data.items():
        if key == "imap_password" and value in (None, ""):
            continue  # an empty password field keeps the stored one
        if key == "imap_password":
            if not isinstance(value, str) or len(value) > 255:
                raise ValidationFailed(_("Some fields are not valid."), fields={"imap_password": [_("not valid")]})
            value = secretbox.seal(value)  # never stored in plain text
        if key == "recipients":
            if isinstance(value, str):
                value = [v for v in re.split(r"[\s,;]+", value) if v]
            if not isinstance(value, list):
                raise ValidationFailed(_("Some fields are not valid."),
                                       fields={"recipients": [_("A list of e-mail addresses.")]})
            clean = []
            for item in value:
                try:
                    clean.append(normalize_email(str(item)))
                except ValidationError as exc:
                    raise ValidationFailed(exc.messages[0], fields={"recipients": exc.messages}) from None
            value = sorted(set(clean))
        setattr(box, key, value)
    errors: dict[str, list[str]] = {}
    if not (box.name or "").strip():
        errors["name"] = [_("This field is required.")]
    if box.kind not in Mailbox.Kind.values:
        errors["kind"] = [_("Must be one of: %(choices)s.") % {"choices": ", ".join(Mailbox.Kind.values)}]
    if not re.fullmatch(r"[-a-zA-Z0-9_]{1,50}", box.source or ""):
        errors["source"] = [_("Latin letters, digits, «-» and «_».")]
    if box.kind == Mailbox.Kind.IMAP:
        for key in ("imap_host", "imap_login", "imap_folder"):
            if not str(getattr(box, key) or "").strip():
                errors[key] = [_("This field is required.")]
        if not isinstance(box.imap_port, int) or isinstance(box.imap_port, bool) or not 1 <= box.imap_port <= 65535:
            errors["imap_port"] = [_("A port number from 1 to 65535.")]
    elif not box.recipients:
        errors["recipients"] = [_("Give at least one address the endpoint accepts.")]
    else:
        taken = {a for other in Mailbox.objects.filter(kind=Mailbox.Kind.SMTP).exclude(pk=box.pk)
                 for a in other.recipients}
        clash = [a for a in box.recipients if a in taken]
        if clash:
            errors["recipients"] = [_("Already accepted by another mailbox: %(list)s.") % {"list": ", ".join(clash)}]
    if not isinstance(box.poll_seconds, int) or isinstance(box.poll_seconds, bool) or not 10 <= box.poll_seconds <= 86400:
        errors["poll_seconds"] = [_("From 10 seconds to a day.")]
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), fields=errors)


def create_mailbox(actor: Actor, **data) -> Mailbox:
    from voronka.core import audit

    policies.require(actor, SETTINGS, 0)
    box = Mailbox()
    _apply(box, data)
    with transaction.atomic():
        box.save()
        audit.record(actor, "intake.mailbox_created", count=1, mailbox=box.pk)
    return box


def update_mailbox(actor: Actor, mailbox_id: int, **data) -> Mailbox:
    from voronka.core import audit

    policies.require(actor, SETTINGS, 0)
    with transaction.atomic():
        box = Mailbox.objects.select_for_update().filter(pk=mailbox_id).first()
        if box is None:
            raise NotFound(_("The mailbox does not exist."))
        before = (box.imap_host, box.imap_login, box.imap_folder)
        _apply(box, data)
        if (box.imap_host, box.imap_login, box.imap_folder) != before:
            box.uid_validity, box.last_uid = None, 0  # another folder: its UIDs start anew
        box.save()
        audit.record(actor, "intake.mailbox_changed", count=1, mailbox=box.pk)
    return box


def mailboxes_for(actor: Actor):
    policies.require(actor, SETTINGS, 0)
    return Mailbox.objects.all()


def attachment_for(actor: Actor, attachment_id: int) -> MailAttachment:
    """An attachment, if the actor may read the record it belongs to (else «not found», never «forbidden»)."""
    from voronka.core.selectors import get_record_for

    att = MailAttachment.objects.filter(pk=attachment_id).first() if attachment_id else None
    if att is None:
        raise NotFound(_("The file does not exist."))
    try:
        get_record_for(actor, att.entity_type_id, att.entity_id)
    except NotFound:
        raise NotFound(_("The file does not exist.")) from None
    return att


def attachment_response(att: MailAttachment):
    from django.http import FileResponse

    try:
        handle = att.file.open("rb")
    except OSError:
        raise NotFound(_("The file is missing from the storage.")) from None
    return FileResponse(handle, as_attachment=True, filename=att.filename,
                        content_type=att.content_type or "application/octet-stream")


# --- IMAP polling ----------------------------------------------------------------------------------

def poll(box: Mailbox, *, limit: int = 500) -> int:
    """Store (and process) the messages of the mailbox's folder with a UID above the last one stored.
    The folder is opened read-only: nothing is marked or moved on the server."""
    from imapclient import IMAPClient

    client = IMAPClient(box.imap_host, port=box.imap_port, ssl=box.imap_tls, timeout=30)
    stored = 0
    try:
        client.login(box.imap_login, secretbox.reveal(box.imap_password))
        info = client.select_folder(box.imap_folder, readonly=True)
        validity = int(info.get(b"UIDVALIDITY", 0) or 0)
        if box.uid_validity != validity:
            box.uid_validity, box.last_uid = validity, 0
            Mailbox.objects.filter(pk=box.pk).update(uid_validity=validity, last_uid=0)
        uids = sorted(u for u in client.search(["UID", f"{box.last_uid + 1}:*"]) if u > box.last_uid)[:limit]
        most = max_bytes()
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[start:start + FETCH_CHUNK]
            sizes = {uid: int((row or {}).get(b"RFC822.SIZE") or 0)
                     for uid, row in client.fetch(chunk, ["RFC822.SIZE"]).items()}
            small = [uid for uid in chunk if sizes.get(uid, 0) <= most]
            fetched = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
            for uid in chunk:
                external = f"imap:{box.pk}:{validity}:{uid}"
                meta = {"uid": uid, "folder": box.imap_folder}
                if sizes.get(uid, 0) > most:  # too big: its headers are kept, it is rejected, the body stays
                    head = client.fetch([uid], ["BODY.PEEK[HEADER]"]).get(uid) or {}
                    store_too_large(box, bytes(head.get(b"BODY[HEADER]") or b""), sizes[uid], most,
                                    external_id=external, meta=meta)
                    stored += 1
                    box.last_uid = uid
                    Mailbox.objects.filter(pk=box.pk).update(last_uid=uid)
                    continue
                data = (fetched.get(uid) or {}).get(b"BODY[]")
                if data is not None:
                    store_and_process(box, bytes(data), external_id=external, meta=meta, remote_addr="")
                    stored += 1
                box.last_uid = uid
                Mailbox.objects.filter(pk=box.pk).update(last_uid=uid)
    finally:
        try:
            client.logout()
        except Exception:
            pass
    return stored


def max_bytes() -> int:
    """The largest message taken in (``VORONKA_MAIL_MAX_BYTES``, 25 MB): the SMTP endpoint refuses bigger ones
    in the protocol; an IMAP poll keeps their headers in the log, rejected, and leaves them on the server."""
    return int(getattr(settings, "VORONKA_MAIL_MAX_BYTES", 25 * 1024 * 1024))


def store_too_large(box: Mailbox, headers: bytes, size: int, most: int, *, external_id: str,
                    meta: dict) -> IntakeLog:
    entry, new = store(box, headers, external_id=external_id, meta={**meta, "size": size, "headers_only": True})
    if not new and entry.status != IntakeLog.Status.PENDING:
        return entry
    from .actions import reject

    return reject(entry, _("The message is too large (%(size)s bytes; at most %(most)s are taken in). Only its "
                           "headers are kept here; the message stays in the mailbox on the server.") % {
        "size": size, "most": most}, code="too_large")


def poll_due(*, now=None) -> int:
    """The worker job: poll every active IMAP mailbox whose interval has passed. A mailbox is claimed
    with a conditional update, so two workers never poll it at once."""
    import datetime

    now = now or clock.now()
    done = 0
    for box in Mailbox.objects.filter(kind=Mailbox.Kind.IMAP, is_active=True).order_by("id"):
        if box.last_polled_at and box.last_polled_at + datetime.timedelta(seconds=box.poll_seconds) > now:
            continue
        if not Mailbox.objects.filter(pk=box.pk, last_polled_at=box.last_polled_at).update(last_polled_at=now):
            continue
        try:
            done += poll(box)
            error = ""
        except Exception as exc:  # a server that is down or refuses the login: try again next interval
            log.warning("polling mailbox %s (%s) failed: %s", box.pk, box.name, exc)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        Mailbox.objects.filter(pk=box.pk).update(last_error=error)
    return done


# --- the SMTP endpoint -----------------------------------------------------------------------------

def mailbox_for(address: str) -> Mailbox | None:
    try:
        address = normalize_email(address)
    except ValidationError:
        return None
    for box in Mailbox.objects.filter(kind=Mailbox.Kind.SMTP, is_active=True).order_by("id"):
        if address in (box.recipients or []):
            return box
    return None


def _fresh_connections() -> None:
    """The SMTP daemon lives long: drop database connections that died or aged (never inside a transaction)."""
    from django.db import connection

    if not connection.in_atomic_block:
        close_old_connections()


def deliver(recipients: list[str], data: bytes, *, peer: str = "", mail_from: str = "") -> list[IntakeLog]:
    """One message received over SMTP: stored once per mailbox among its recipients, then processed."""
    _fresh_connections()
    try:
        boxes: dict[int, tuple[Mailbox, list[str]]] = {}
        for rcpt in recipients:
            box = mailbox_for(rcpt)
            if box is not None:
                boxes.setdefault(box.pk, (box, []))[1].append(rcpt)
        if not boxes:  # switched off between RCPT and DATA: refuse rather than drop it
            raise LookupError("no active intake mailbox for these recipients")
        msg_id = _first_id(parse(data), "Message-ID")
        done = []
        for box, rcpts in boxes.values():
            external = f"smtp:{box.pk}:{msg_id}"[:120] if msg_id else ""
            done.append(store_and_process(box, data, external_id=external, remote_addr=peer,
                                          meta={"mail_from": mail_from[:300], "rcpt": rcpts[:20]}))
        return done
    finally:
        _fresh_connections()


class SMTPHandler:
    """aiosmtpd handler: accepts mail only for the addresses of active SMTP mailboxes."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        from asgiref.sync import sync_to_async

        box = await sync_to_async(_lookup, thread_sensitive=False)(address)
        if box is None:
            return "550 5.1.1 No such intake mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        from asgiref.sync import sync_to_async

        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        try:
            await sync_to_async(deliver, thread_sensitive=False)(
                list(envelope.rcpt_tos), data, peer=peer, mail_from=envelope.mail_from or "")
        except LookupError:
            return "550 5.1.1 No such intake mailbox here"
        except Exception:
            log.exception("storing a message received over SMTP failed")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 Stored"


def _lookup(address: str) -> Mailbox | None:
    _fresh_connections()
    return mailbox_for(address)


def smtp_controller(host: str, port: int):
    from aiosmtpd.controller import Controller

    return Controller(SMTPHandler(), hostname=host, port=port, decode_data=False,
                      data_size_limit=max_bytes(),
                      ident="Voronka intake")
