from __future__ import annotations

import datetime
import decimal

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

register = template.Library()

SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€"}


@register.filter
def money(value, currency="RUB"):
    if value in (None, ""):
        return ""
    amount = decimal.Decimal(value).quantize(decimal.Decimal("1")) if decimal.Decimal(value) == int(decimal.Decimal(value)) \
        else decimal.Decimal(value)
    return f"{number_format(amount, force_grouping=True)} {SYMBOLS.get(currency, currency)}"


@register.filter
def ago(delta):
    """A compact duration: 5 min, 3 h, 2 d."""
    if not isinstance(delta, datetime.timedelta):
        return ""
    return seconds(delta.total_seconds())


@register.filter
def seconds(value):
    try:
        s = int(value)
    except (TypeError, ValueError):
        return ""
    if s < 3600:
        n = max(s // 60, 1)
        return ngettext("%(n)d min", "%(n)d min", n) % {"n": n}
    if s < 86400:
        n = s // 3600
        return ngettext("%(n)d h", "%(n)d h", n) % {"n": n}
    n = s // 86400
    return ngettext("%(n)d day", "%(n)d days", n) % {"n": n}


ORDER_LABELS = {
    "-id": gettext_noop("Newest first"), "id": gettext_noop("Oldest first"), "-created_at": gettext_noop("Created, newest first"), "created_at": gettext_noop("Created, oldest first"),
    "-opportunity": gettext_noop("Amount, largest first"), "opportunity": gettext_noop("Amount, smallest first"),
    "-stage_changed_at": gettext_noop("Recently moved first"),
}


@register.filter
def order_label(value):
    return _(ORDER_LABELS.get(value, value))


@register.filter
def phone(e164):
    from voronka.core.normalize import format_phone

    return format_phone(e164) if e164 else ""
