"""Reading a record's fields for robots: conditions, ``{field}`` templates, date-field delays.

Templates are a small safe substitution, never Django's template engine: ``{title}``, ``{stage}``,
``{responsible}``, ``{custom.code}`` … are replaced by the record's values; a placeholder the record does
not know stays visible as it was written, so a typo shows in the result instead of vanishing.
"""

from __future__ import annotations

import datetime
import decimal
import re
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)\}")


def _communications(obj, kind: str, column: str = "normalized") -> list[str]:
    """Phones (E.164) or e-mails (lower case) of a record; ``column="value"`` gives them as typed."""
    from voronka.parties.models import Communication

    type_id = getattr(obj, "ENTITY_TYPE_ID", 0)
    return list(Communication.objects.filter(entity_type_id=type_id, entity_id=obj.pk, kind=kind)
                .order_by("sort", "id").values_list(column, flat=True))


def raw(obj, name: str) -> Any:
    """The stored value of a field (foreign keys as ids), ``custom.code``/``uf_*`` custom fields, or
    ``phones``/``emails`` (lists). Raises KeyError for a name the record does not have."""
    if name.startswith("custom.") or name.startswith("uf_"):
        return (obj.custom or {}).get(name.removeprefix("custom."))
    if name in ("phones", "emails"):
        return _communications(obj, name[:-1])
    if name == "id":
        return obj.pk
    try:
        field = obj._meta.get_field(name)
    except Exception:
        raise KeyError(name) from None
    if isinstance(field, models.ForeignKey):
        return getattr(obj, f"{name}_id")
    if not getattr(field, "concrete", False) or field.many_to_many:
        raise KeyError(name)
    return getattr(obj, name)


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).strftime("%d.%m.%Y %H:%M") if timezone.is_aware(value) else \
            value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, datetime.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_display(v) for v in value)
    return str(value)


def display(obj, name: str) -> str:
    """A field as a person reads it: names instead of ids (responsible, stage, pipeline, contact …)."""
    if name == "link":
        from voronka.activities.actions import record_link

        return record_link(getattr(obj, "ENTITY_TYPE_ID", None), obj.pk)
    if name in ("phones", "emails"):
        return _display(_communications(obj, name[:-1], "value"))
    if name.startswith("custom.") or name.startswith("uf_") or name == "id":
        return _display(raw(obj, name))
    try:
        field = obj._meta.get_field(name)
    except Exception:
        raise KeyError(name) from None
    if isinstance(field, models.ForeignKey):
        related = getattr(obj, name)
        if related is None:
            return ""
        full = getattr(related, "get_full_name", None)
        return (full() if callable(full) else "") or str(related)
    if field.choices:
        return str(dict(field.flatchoices).get(getattr(obj, name), getattr(obj, name)))
    return _display(raw(obj, name))


def render(template: str, obj=None, extra: dict | None = None) -> str:
    """Replace ``{name}`` by ``extra[name]`` or the record's field; unknown placeholders stay as written."""
    if not isinstance(template, str):
        return ""
    extra = extra or {}

    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name in extra:
            return _display(extra[name])
        if obj is None:
            return match.group(0)
        try:
            return display(obj, name)
        except KeyError:
            return match.group(0)

    return PLACEHOLDER.sub(sub, template)


def value_or_render(template: Any, obj) -> Any:
    """A template that is exactly one placeholder gives the raw value (keeps numbers, dates, ids); other strings
    are rendered; anything else is returned as it is."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip())
        if whole:
            try:
                return raw(obj, whole.group(1))
            except KeyError:
                return template
        return render(template, obj)
    return template
