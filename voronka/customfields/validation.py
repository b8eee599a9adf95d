"""Validation of custom field values. Called by every action that writes a record."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from voronka.core.errors import ValidationFailed

from .models import FieldDefinition


def definitions(entity_type_id: int, pipeline_id: int | None = None, version: int | None = None) -> list[FieldDefinition]:
    """Field definitions of an entity type (and pipeline); cached per process when ``version`` is given."""
    from voronka.core import config_cache

    def load():
        return list(FieldDefinition.objects.filter(entity_type_id=entity_type_id))

    defs = config_cache.cached(("fields", entity_type_id), load, version) if version is not None else load()
    return [d for d in defs if d.pipeline_id is None or d.pipeline_id == pipeline_id]


def _one(defn: FieldDefinition, value: Any) -> Any:
    kind = defn.kind
    K = FieldDefinition.Kind
    if kind in (K.STRING, K.TEXT):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(_("must be text"))
        text = str(value)
        limit = defn.max_length if kind == K.STRING else 65535
        if len(text) > limit:
            raise ValueError(_("is longer than %(n)s characters") % {"n": limit})
        return text
    if kind == K.INTEGER:
        if isinstance(value, bool):
            raise ValueError(_("must be a whole number"))
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            raise ValueError(_("must be a whole number")) from None
        if abs(number) > 2**63 - 1:
            raise ValueError(_("is too large"))
        return number
    if kind == K.DECIMAL:
        if isinstance(value, bool):
            raise ValueError(_("must be a number"))
        try:
            number = decimal.Decimal(str(value).strip().replace(",", "."))
        except decimal.InvalidOperation:
            raise ValueError(_("must be a number")) from None
        if not number.is_finite():
            raise ValueError(_("must be a number"))
        return str(number)
    if kind == K.MONEY:
        amount, currency = value, settings.VORONKA_DEFAULT_CURRENCY
        if isinstance(value, dict):
            amount, currency = value.get("amount"), value.get("currency") or currency
        elif isinstance(value, str) and "|" in value:
            amount, currency = value.split("|", 1)
        try:
            number = decimal.Decimal(str(amount).strip().replace(",", "."))
        except decimal.InvalidOperation:
            raise ValueError(_("must be an amount of money")) from None
        if not number.is_finite() or isinstance(amount, bool):
            raise ValueError(_("must be an amount of money"))
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise ValueError(_("has an unknown currency"))
        return {"amount": str(number.quantize(decimal.Decimal("0.01"))), "currency": currency.upper()}
    if kind == K.DATE:
        parsed = value if isinstance(value, datetime.date) else (parse_date(value) if isinstance(value, str) else None)
        if parsed is None:
            raise ValueError(_("must be a date like 2026-01-31"))
        return parsed.isoformat()
    if kind == K.DATETIME:
        parsed = value if isinstance(value, datetime.datetime) else (parse_datetime(value) if isinstance(value, str) else None)
        if parsed is None:
            raise ValueError(_("must be a date and time like 2026-01-31T10:00:00+03:00"))
        return parsed.isoformat()
    if kind == K.BOOLEAN:
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"y", "yes", "true", "1"}:
            return True
        if str(value).lower() in {"n", "no", "false", "0"}:
            return False
        raise ValueError(_("must be yes or no"))
    if kind == K.ENUM:
        if str(value) not in defn.choice_ids():
            raise ValueError(_("«%(v)s» is not one of the choices") % {"v": value})
        return str(value)
    if kind == K.USER:
        from django.contrib.auth import get_user_model

        try:
            pk = int(value)
        except (TypeError, ValueError):
            raise ValueError(_("must be a user id")) from None
        if not get_user_model().objects.filter(pk=pk, is_active=True).exists():
            raise ValueError(_("no active user with id %(v)s") % {"v": value})
        return pk
    if kind == K.LINK:
        from voronka.core import entity_types

        target = defn.options.get("entity_type_id")
        try:
            pk = int(value)
        except (TypeError, ValueError):
            raise ValueError(_("must be a record id")) from None
        if target:  # the type's own rows: a smart process's items share one table with the other processes'
            if not entity_types.get(int(target)).objects.filter(pk=pk).exists():
                raise ValueError(_("no record with id %(v)s") % {"v": value})
        return pk
    raise ValueError(_("has an unknown type"))


def clean_custom(entity_type_id: int, pipeline_id: int | None, values: dict | None, *, existing: dict | None = None,
                 partial: bool = False, version: int | None = None) -> dict:
    """Validate ``values`` against the definitions and return the merged custom dict.

    Unknown codes and wrong types raise ValidationFailed naming each field.
    """
    values = values or {}
    if not isinstance(values, dict):
        raise ValidationFailed(_("Custom fields must be an object."), fields={"custom": [_("must be an object")]})
    defs = {d.code: d for d in definitions(entity_type_id, pipeline_id, version)}
    errors: dict[str, list[str]] = {}
    result = dict(existing or {})
    for code, value in values.items():
        defn = defs.get(code)
        if defn is None:
            errors[code] = [_("unknown field")]
            continue
        if value is None or value == "" or value == []:
            result.pop(code, None)
            continue
        try:
            if defn.multiple:
                items = value if isinstance(value, list) else [value]
                result[code] = [_one(defn, v) for v in items]
            else:
                if isinstance(value, list):
                    raise ValueError(_("takes one value"))
                result[code] = _one(defn, value)
        except ValueError as exc:
            errors[code] = [str(exc)]
    if not partial:
        for code, defn in defs.items():
            if defn.required and result.get(code) in (None, "", []):
                errors.setdefault(code, []).append(_("This field is required."))
    if errors:
        raise ValidationFailed(_("Some custom fields are not valid."), fields={f"custom.{k}": v for k, v in errors.items()})
    return result
