"""Bitrix24 value formats: strings as stored, Y/N flags, ISO dates with offset; and lenient input dates."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .errors import B24Error

_DMY = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def out_text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def out_id(value: Any) -> str | None:
    return None if value is None else str(value)


def out_flag(value: Any) -> str:
    return "Y" if value else "N"


def out_money(value: Any) -> str:
    if value is None:
        return ""
    return str(decimal.Decimal(str(value)).quantize(decimal.Decimal("0.01")))


def out_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value).isoformat(timespec="seconds")


def out_date(value: dt.date | None) -> str:
    if value is None:
        return ""
    midnight = timezone.make_aware(dt.datetime.combine(value, dt.time()), timezone.get_current_timezone())
    return midnight.isoformat(timespec="seconds")


def parse_dt(value: Any) -> dt.datetime | None:
    """ISO-8601 with or without offset (without: the user's zone), ``dd.mm.yyyy[ hh:mm[:ss]]``, ``yyyy-mm-dd``."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        m = _DMY.match(text)
        if m:
            d, mo, y, h, mi, s = m.groups()
            try:
                parsed = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
            except ValueError:
                raise B24Error(f"Invalid date: {text}") from None
        else:
            m = _YMD.match(text)
            try:
                parsed = (dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m
                          else parse_datetime(text.replace(" ", "T", 1) if "T" not in text else text))
            except ValueError:
                parsed = None
            if parsed is None:
                raise B24Error(f"Invalid date: {text}")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
    return parsed


def parse_date(value: Any) -> dt.date | None:
    parsed = parse_dt(value)
    return None if parsed is None else timezone.localtime(parsed).date()
