from __future__ import annotations

import datetime
import decimal

from django import template
from django.utils.formats import get_format
from django.utils.translation import get_language, gettext_noop, ngettext
from django.utils.translation import gettext as _

register = template.Library()

SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€"}


_SEPARATORS: dict[str, tuple[str, str]] = {}


def _separators() -> tuple[str, str]:
    """(decimal separator, thousands separator) of the active language, looked up once per language."""
    lang = get_language() or ""
    seps = _SEPARATORS.get(lang)
    if seps is None:
        seps = _SEPARATORS[lang] = (get_format("DECIMAL_SEPARATOR"), get_format("THOUSAND_SEPARATOR"))
    return seps


def decimal_separator() -> str:
    """The active language's decimal separator («,» in Russian, «.» in English)."""
    return _separators()[0]


@register.filter
def money(value, currency="RUB"):
    """«1 234 567 ₽», «1 234,50 ₽» (grouped by thousands in the language's format; boards show hundreds of these,
    and Django's number_format looked its settings up again for every one)."""
    return format_money(value, currency, _separators())


def money_formatter():
    """``money`` with the active language's separators looked up once (for a loop over many amounts)."""
    separators = _separators()
    return lambda value, currency="RUB": format_money(value, currency, separators)


def format_money(value, currency: str, separators: tuple[str, str]) -> str:
    if value in (None, ""):
        return ""
    try:
        amount = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        return str(value)
    if not amount.is_finite():
        return str(value)
    dec_sep, thousand_sep = separators
    if amount == amount.to_integral_value():
        text = f"{amount:,.0f}"
    else:  # kopecks as two digits (a sum may come back as 23011.5), finer fractions as they are
        text = f"{amount:,.2f}" if amount == round(amount, 2) else f"{amount:,f}"
    text = text.replace(",", "\x00").replace(".", dec_sep).replace("\x00", thousand_sep)
    return f"{text} {SYMBOLS.get(currency, currency)}"


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


@register.simple_tag
def user_options(users, selected=None):
    """``<option>``s for a user select (boards, lists and cards render one per request: the template loop cost
    more than the rest of the toolbar). ``selected`` is a user id or its string form."""
    from django.utils.html import conditional_escape
    from django.utils.safestring import mark_safe

    chosen = str(selected) if selected not in (None, "") else None
    return mark_safe("".join(  # every value is escaped
        f'<option value="{u.pk}"{" selected" if chosen == str(u.pk) else ""}>{conditional_escape(str(u))}</option>'
        for u in users))
