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
