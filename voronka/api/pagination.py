"""Keyset pages for every list of the API, with cursors checked before they reach the database.

A cursor is opaque to clients but not to forgers: its value is re-read as the order field's type and
normalised (aware datetimes in UTC, bounded numbers), so a forged cursor ends in a 400, never in a
database error.
"""

from __future__ import annotations

import datetime
import decimal

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core.errors import ValidationFailed
from voronka.core.selectors import Page, keyset_page
from voronka.core.selectors import _decode as decode_cursor
from voronka.core.selectors import _encode as encode_cursor

from .errors import BadRequest, text_errors
from .schemas import MAX_ID


def _invalid() -> BadRequest:
    return BadRequest(_("The cursor is not valid; start from the first page."), fields={"cursor": [_("not valid")]})


def utc(value: datetime.datetime) -> datetime.datetime:
    """An aware datetime in UTC (naive ones are read in the default time zone). PostgreSQL refuses offsets
    beyond ±16 hours that ISO 8601 allows, and every offset means the same instant in UTC."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value.astimezone(datetime.UTC)


def _clean_value(model, name: str, value):
    if value is None:
        return None
    if isinstance(value, list | dict | bool) or text_errors({"v": value}):
        raise _invalid()
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        raise _invalid() from None
    try:
        parsed = field.to_python(value)
    except (ValidationError, TypeError, ValueError, decimal.InvalidOperation):
        raise _invalid() from None
    if isinstance(parsed, datetime.datetime):
        try:
            return utc(parsed).isoformat()
        except OverflowError:
            raise _invalid() from None
    if isinstance(parsed, decimal.Decimal):
        if not parsed.is_finite() or parsed.adjusted() >= getattr(field, "max_digits", 20):
            raise _invalid()
        return str(parsed)
    if isinstance(parsed, int) and not -MAX_ID <= parsed <= MAX_ID:
        raise _invalid()
    if isinstance(field, models.DateField) and not isinstance(parsed, datetime.date):
        raise _invalid()
    return parsed.isoformat() if isinstance(parsed, datetime.date) else parsed


def clean_cursor(model, order: str, cursor: str) -> str:
    try:
        value, last_id, *rest = decode_cursor(cursor)
    except (ValidationFailed, ValueError):
        raise _invalid() from None
    seen = rest[0] if rest else 0
    if not isinstance(seen, int) or isinstance(seen, bool) or not 0 <= seen <= MAX_ID:
        raise _invalid()
    if not isinstance(last_id, int) or isinstance(last_id, bool) or not -MAX_ID <= last_id <= MAX_ID:
        raise _invalid()
    name = order.lstrip("-")
    return encode_cursor([None if name == "id" else _clean_value(model, name, value), last_id, seen])


def page(qs: QuerySet, *, order: str, cursor: str | None, limit: int) -> Page:
    if cursor:
        cursor = clean_cursor(qs.model, order, cursor)
    try:
        return keyset_page(qs, order=order, cursor=cursor, limit=limit)
    except ValidationFailed as exc:
        raise BadRequest(exc.message, fields=exc.fields) from None


def check_export_threshold(actor, entity_type_id: int, page: Page) -> None:
    """Reading a list page by page is an export once it goes past VORONKA_EXPORT_THRESHOLD rows: beyond that
    the caller needs the export right, and crossing the line is written to the audit log."""
    from django.conf import settings

    from voronka.core import audit, policies
    from voronka.core.errors import PermissionDenied

    threshold = settings.VORONKA_EXPORT_THRESHOLD
    end = page.seen + len(page.items)
    if end <= threshold:
        return
    if not policies.can(actor, policies.EXPORT, entity_type_id):
        raise PermissionDenied(_("Reading more than %(n)s records of a list is an export and needs the export right.")
                               % {"n": threshold}, code="forbidden_export")
    if page.seen < threshold:
        audit.record(actor, "records.listed_past_threshold", entity_type_id=entity_type_id, count=end,
                     threshold=threshold)
