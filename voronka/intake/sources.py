"""Settings of intake sources (duplicate policy, queue, pipeline and stage per source) and of Telegram bots,
changed by administrators with the settings right «integrations»."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import audit, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, ValidationFailed, from_django_validation

from .models import DuplicatePolicy, IntakeSource, TelegramBot

SETTINGS = "settings:integrations"
SOURCE_FIELDS = ("code", "name", "duplicate_policy", "queue", "pipeline", "stage")
BOT_FIELDS = ("name", "source", "header_token", "is_active")
CODE = re.compile(r"[-a-zA-Z0-9_]{1,50}")


def _apply(obj, data: dict, allowed: tuple[str, ...]) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    for key, value in data.items():
        if key in ("queue", "pipeline"):
            setattr(obj, f"{key}_id", value or None)
        else:
            setattr(obj, key, value if value is not None else "")
    try:
        obj.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise from_django_validation(exc) from None


def save_source(actor: Actor, source_id: int | None = None, **data) -> IntakeSource:
    policies.require(actor, SETTINGS, 0)
    if "code" in data and not CODE.fullmatch(str(data["code"] or "")):
        raise ValidationFailed(_("Some fields are not valid."), fields={"code": [_("Latin letters, digits, «-» and «_».")]})
    if data.get("duplicate_policy") not in (None, *DuplicatePolicy.values):
        raise ValidationFailed(_("Some fields are not valid."), fields={"duplicate_policy": [_("Unknown policy.")]})
    with transaction.atomic():
        if source_id:
            src = IntakeSource.objects.select_for_update().filter(pk=source_id).first()
            if src is None:
                raise NotFound(_("The source does not exist."))
        else:
            src = IntakeSource()
        _apply(src, data, SOURCE_FIELDS)
        if IntakeSource.objects.filter(code=src.code).exclude(pk=src.pk).exists():
            raise Conflict(_("A source with this code exists."), fields={"code": [_("taken")]})
        src.save()
        audit.record(actor, "intake.source_saved", count=1, source=src.code)
        return src


def save_bot(actor: Actor, bot_id: int | None = None, **data) -> TelegramBot:
    policies.require(actor, SETTINGS, 0)
    if "source" in data and not CODE.fullmatch(str(data["source"] or "")):
        raise ValidationFailed(_("Some fields are not valid."), fields={"source": [_("Latin letters, digits, «-» and «_».")]})
    if "header_token" in data and not re.fullmatch(r"[A-Za-z0-9_-]{0,256}", str(data["header_token"] or "")):
        raise ValidationFailed(_("Some fields are not valid."),
                               fields={"header_token": [_("Telegram allows A–Z, a–z, 0–9, «_» and «-».")]})
    with transaction.atomic():
        if bot_id:
            bot = TelegramBot.objects.select_for_update().filter(pk=bot_id).first()
            if bot is None:
                raise NotFound(_("The bot does not exist."))
        else:
            bot = TelegramBot()
        _apply(bot, data, BOT_FIELDS)
        bot.save()
        audit.record(actor, "intake.bot_saved", count=1, bot=bot.pk)
        return bot
