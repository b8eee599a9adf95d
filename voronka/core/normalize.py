"""Phone and e-mail normalisation shared by every app (records, intake, duplicates)."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

_DIGITS = re.compile(r"\D+")


def normalize_phone(raw: str, region: str | None = None) -> str:
    """Return the E.164 form of a phone number or raise ValidationError.

    «8 (916) 123-45-67», «+7 916 1234567» and «9161234567» are the same Russian number.
    """
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("Phone number is empty."))
    if len(text) == 12 and text.startswith("+7") and text[1:].isascii() and text[1:].isdigit():
        # «+7» and ten digits (the form most clients send) is already its own E.164 form whatever the region:
        # phonenumbers gives back the same text for every such number (``test_normalize`` compares them), and
        # its parse was about 1.5 % of a single API create
        return text
    region = region or settings.VORONKA_DEFAULT_REGION
    digits = _DIGITS.sub("", text)
    candidate = text
    # A Russian trunk prefix "8" followed by ten digits is the same as +7.
    if region == "RU" and not text.startswith("+") and len(digits) == 11 and digits[0] in "78":
        candidate = "+7" + digits[1:]
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(_("«%(value)s» is not a phone number.") % {"value": text}) from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(_("«%(value)s» is not a phone number.") % {"value": text})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    text = (raw or "").strip().lower()
    try:
        validate_email(text)
    except ValidationError:
        raise ValidationError(_("«%(value)s» is not an e-mail address.") % {"value": raw}) from None
    return text


def format_phone(e164: str) -> str:
    """Human form: +7 916 123-45-67."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


_SPACE = re.compile(r"\s")
_TELEGRAM_PREFIXES = ("https://", "http://", "t.me/", "telegram.me/", "www.t.me/")


def normalize_handle(raw: str, service: str = "other") -> str:
    """A messenger handle for lookup: «@Ivanov», «t.me/ivanov» and «ivanov» are the same Telegram user;
    a WhatsApp or Viber number is compared as a phone."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("The handle is empty."))
    lowered = text.lower()
    if service == "telegram":
        for prefix in _TELEGRAM_PREFIXES:
            lowered = lowered.removeprefix(prefix)
        lowered = lowered.lstrip("@").rstrip("/")
    elif service in ("whatsapp", "viber", "max") and len(_DIGITS.sub("", text)) >= 7 \
            and not re.search(r"[a-z]", lowered):
        try:
            return normalize_phone(text)
        except ValidationError:
            pass
    if not lowered or _SPACE.search(lowered):
        raise ValidationError(_("«%(value)s» is not a messenger handle.") % {"value": text})
    return lowered


def normalize_site(raw: str) -> str:
    """A web address for lookup: scheme, «www.» and a trailing slash do not matter, nor letter case."""
    text = (raw or "").strip()
    lowered = text.lower()
    for prefix in ("https://", "http://"):
        lowered = lowered.removeprefix(prefix)
    lowered = lowered.removeprefix("www.").rstrip("/")
    if not lowered or _SPACE.search(lowered):
        raise ValidationError(_("«%(value)s» is not a web address.") % {"value": text})
    return lowered
