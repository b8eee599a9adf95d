"""Telegram bot webhooks (F34): a new chat creates a lead, its messages go to the lead's timeline, and an
e-mail or phone typed in the chat is matched to an existing contact (Bot API ``Update`` objects)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from voronka.core import entity_types, history, outbox
from voronka.core.actor import Actor
from voronka.core.errors import ValidationFailed
from voronka.core.normalize import normalize_email, normalize_phone
from voronka.core.recordkit import update_one

from . import duplicates, names
from .actions import Outcome, Rejected, Routing, _merge_into, create_intake_lead, handler
from .models import IntakeLog, TelegramChat

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
PHONE = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{8,18}\d")
MESSAGE_KINDS = ("message", "edited_message", "business_message", "edited_business_message")


def extract(text: str) -> tuple[list[str], list[str]]:
    """Phones and e-mails typed in a message, normalised; what does not parse is ignored."""
    phones, emails = [], []
    for raw in EMAIL.findall(text or ""):
        try:
            value = normalize_email(raw)
        except ValidationError:
            continue
        if value not in emails:
            emails.append(value)
    for raw in PHONE.findall(EMAIL.sub(" ", text or "")):
        try:
            value = normalize_phone(raw)
        except ValidationError:
            continue
        if value not in phones:
            phones.append(value)
    return phones[:5], emails[:5]


def update_external_id(bot_id: int, payload) -> str:
    update_id = payload.get("update_id") if isinstance(payload, dict) else None
    if isinstance(update_id, int) and not isinstance(update_id, bool):
        return f"{bot_id}:{update_id}"
    return ""


def _message(update) -> tuple[str, dict] | tuple[None, None]:
    for kind in MESSAGE_KINDS:
        if isinstance(update.get(kind), dict):
            return kind, update[kind]
    return None, None


@handler(IntakeLog.Channel.TELEGRAM)
def handle_update(actor: Actor, entry: IntakeLog) -> Outcome:
    bot = entry.bot
    if bot is None or not bot.is_active:
        raise Rejected(_("This bot is not active."))
    update = entry.payload
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise ValidationFailed(_("Not a Telegram update."), fields={"update_id": [_("This field is required.")]})
    kind, msg = _message(update)
    if msg is None:
        return Outcome(IntakeLog.Status.IGNORED, reason=_("No message in this update."))
    chat, sender = msg.get("chat"), msg.get("from") or {}
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int) or not isinstance(sender, dict):
        raise ValidationFailed(_("The message has no chat."), fields={"chat": [_("This field is required.")]})
    text = msg.get("text") or msg.get("caption") or ""
    text = text if isinstance(text, str) else ""
    phones, emails = extract(text)
    shared = msg.get("contact")
    if isinstance(shared, dict) and isinstance(shared.get("phone_number"), str):
        try:
            phone = normalize_phone(shared["phone_number"])
            if phone not in phones:
                phones.insert(0, phone)
        except ValidationError:
            pass
    first = str(sender.get("first_name") or chat.get("first_name") or "")[:100]
    last = str(sender.get("last_name") or chat.get("last_name") or "")[:100]
    username = str(sender.get("username") or chat.get("username") or "")[:100]
    who = " ".join(p for p in (first, last) if p) or (f"@{username}" if username else str(chat["id"]))
    link = TelegramChat.objects.select_for_update().filter(bot=bot, chat_id=chat["id"]).first()
    lead = None
    produced = []
    status = IntakeLog.Status.ATTACHED
    if link is not None:
        model = entity_types.get(link.entity_type_id).model
        if not model.objects.filter(pk=link.entity_id, deleted_at__isnull=True).exists():
            link.delete()
            link = None
    if link is None:
        routing = Routing.for_source(bot.source)
        lead = create_intake_lead(actor, {"title": _("Telegram: %(who)s") % {"who": who}, "first_name": first,
                                          "last_name": last, "phones": phones, "emails": emails,
                                          "messengers": _telegram_handle(username)}, routing)
        link = TelegramChat.objects.create(bot=bot, chat_id=chat["id"], username=username,
                                           entity_type_id=entity_types.LEAD, entity_id=lead.pk)
        status = IntakeLog.Status.CREATED
        produced.append([entity_types.LEAD, lead.pk, "created"])
    t, pk = link.entity_type_id, link.entity_id
    shown = text or (_("(shared a contact)") if shared else _("(a message without text)"))
    label = f"@{username}" if username else who
    line = history.entry(actor, t, pk, "comment", text=f"Telegram · {label}: {shown}"[:20000],
                         data={"channel": "telegram", "bot": bot.pk, "chat": chat["id"],
                               "message_id": msg.get("message_id"), "kind": kind, "log": entry.pk})
    outbox.emit(actor, f"{entity_types.get(t).code}.commented", t, pk, {"entry": line.pk, "channel": "telegram"})
    produced.append([t, pk, "message"])
    if (phones or emails) and t == entity_types.LEAD:
        produced.extend(_match_contact(actor, pk, phones, emails, is_new=lead is not None))
    return Outcome(status, t, pk, produced)


def _telegram_handle(username: str) -> list[dict]:
    """The chat's username as the lead's Telegram handle (a username that is not a valid handle is left out)."""
    from voronka.parties.communications import parse_values

    if not username:
        return []
    try:
        parse_values("im", [{"value": f"@{username}", "type": "telegram"}])
    except ValueError:
        return []
    return [{"value": f"@{username}", "type": "telegram"}]


def _match_contact(actor: Actor, lead_id: int, phones: list[str], emails: list[str], *, is_new: bool) -> list:
    """Put typed phones/e-mails on the chat's lead and link the lead to the contact (and company) they belong to."""
    from voronka.leads.actions import LEAD
    from voronka.leads.models import Lead

    produced = []
    lead = Lead.objects.get(pk=lead_id)
    if not is_new and _merge_into(actor, duplicates.Match(entity_types.LEAD, lead_id, obj=lead),
                                  {"phones": phones, "emails": emails}):
        produced.append([entity_types.LEAD, lead_id, "updated"])
        lead.refresh_from_db()
    matches = duplicates.find(phones=phones, emails=emails, types=(entity_types.CONTACT,))
    if matches and lead.contact_id is None:
        contact = matches[0].obj
        update_one(actor, LEAD, lead_id, {"contact": contact.pk, **({"company": contact.company_id}
                                                                    if contact.company_id and not lead.company_id else {})})
        history.entry(actor, entity_types.CONTACT, contact.pk, "linked",
                      text=_("Writes in Telegram: lead #%(id)s.") % {"id": lead_id}, data={"lead": lead_id},
                      also=[(entity_types.LEAD, lead_id)])
        names.refresh(entity_types.LEAD, [lead_id])
        produced.append([entity_types.CONTACT, contact.pk, "linked"])
    return produced
