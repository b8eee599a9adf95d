"""Request and response schemas. Record schemas are built from each record type's RecordSpec and model,
so a field added to a model (and to its ``writable`` list) appears in the API and its OpenAPI by itself."""

from __future__ import annotations

import datetime
import decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext as _
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from voronka.core.recordkit import RecordSpec
from voronka.parties.models import Communication

MAX_ID = 2**63 - 1  # the largest id a database column holds: larger ids would overflow, not just miss
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
OptionalRef = Annotated[int, Field(ge=0, le=MAX_ID)]  # 0 clears a link, as null does


def _utc(value: datetime.datetime) -> datetime.datetime:
    from .pagination import utc

    try:
        return utc(value)
    except OverflowError:
        raise ValueError(_("Is out of the range of dates.")) from None


# A date and time, kept as the same instant in UTC: PostgreSQL refuses offsets beyond ±16 hours.
Moment = Annotated[datetime.datetime, AfterValidator(_utc)]


class Strict(BaseModel):
    """A request body: every key must be known, so a typo is reported instead of silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. validation_failed, not_found, forbidden.")
    message: str = Field(description="A sentence for a person.")
    fields: dict[str, list[str]] = Field(default_factory=dict, description="Messages per field name.")


ERROR_CODES = (400, 401, 403, 404, 409, 422)


def responses(ok: dict[int, Any]) -> dict[int, Any]:
    """The success responses of an operation plus every documented error."""
    return {**ok, **{code: ErrorOut for code in ERROR_CODES}}


class CommunicationIn(Strict):
    value: str = Field(max_length=254)
    type: Literal[tuple(Communication.ValueType.values)] | None = None  # type: ignore[valid-type]


class CommunicationOut(BaseModel):
    value: str
    type: str
    normalized: str


Communications = list[Annotated[str, Field(max_length=254)] | CommunicationIn]


class ItemResultOut(BaseModel):
    index: int
    ok: bool
    id: int | None = None
    error: ErrorOut | None = None


class BulkResultOut(BaseModel):
    items: list[ItemResultOut]


# Items are objects; anything else gets its own failed result rather than failing the whole call.
BulkItems = Annotated[list[Any], WithJsonSchema({"type": "array", "items": {"type": "object"}, "minItems": 1,
                                                 "maxItems": settings.VORONKA_BULK_MAX})]


class BulkCreateIn(Strict):
    items: BulkItems = Field(min_length=1, max_length=settings.VORONKA_BULK_MAX,
                                        description="Records as for a single create; each gets its own result.")


class BulkUpdateIn(Strict):
    items: BulkItems = Field(min_length=1, max_length=settings.VORONKA_BULK_MAX,
                                        description="Each item has the record's \"id\" and the fields to change.")


class CommentIn(Strict):
    text: str = Field(min_length=1, max_length=20000)


class TimelineEntryOut(BaseModel):
    id: int
    kind: str
    entity_type_id: int
    entity_id: int
    created_at: datetime.datetime
    actor_kind: str
    actor_user: int | None
    actor_label: str
    entry_point: str
    cause: str
    text: str
    changes: dict[str, Any]
    data: dict[str, Any]


class TimelinePageOut(BaseModel):
    items: list[TimelineEntryOut]
    next_before: int | None = Field(description="Pass as before= to get older entries; null on the last page.")


# --- building record schemas from a model ----------------------------------------------------------

def _choices(field: models.Field):
    return Literal[tuple(value for value, _label in field.choices)]  # type: ignore[valid-type]


def _value_type(field: models.Field, *, for_input: bool) -> Any:
    """The Python type pydantic validates for a Django model field."""
    if isinstance(field, models.ForeignKey):
        return OptionalRef if for_input else int
    if field.choices and isinstance(field, models.CharField):
        return _choices(field)
    if isinstance(field, models.CharField | models.TextField):
        if for_input and getattr(field, "max_length", None):
            return Annotated[str, Field(max_length=field.max_length)]
        return str
    if isinstance(field, models.BooleanField):
        return bool
    if isinstance(field, models.DecimalField):
        return decimal.Decimal
    if isinstance(field, models.PositiveSmallIntegerField):
        return Annotated[int, Field(ge=0, le=32767)] if for_input else int
    if isinstance(field, models.IntegerField | models.BigIntegerField | models.AutoField):
        return Annotated[int, Field(ge=-MAX_ID, le=MAX_ID)] if for_input else int
    if isinstance(field, models.DateTimeField):
        return Moment if for_input else datetime.datetime
    if isinstance(field, models.DateField):
        return datetime.date
    if isinstance(field, models.JSONField):
        return Any
    return Any


def has_communications(spec: RecordSpec) -> bool:
    return any("phones" in hook.keys for hook in spec.hooks)


def is_staged(spec: RecordSpec) -> bool:
    return any("stage" in hook.keys for hook in spec.hooks)


def input_fields(spec: RecordSpec) -> dict[str, Any]:
    """Pydantic field definitions of everything a caller may write to a record: all optional."""
    fields: dict[str, Any] = {}
    for name in spec.writable:
        field = spec.model._meta.get_field(name)
        kind = _value_type(field, for_input=True)
        fields[name] = (kind | None, Field(None, description=str(field.verbose_name)))
    if is_staged(spec):
        fields["pipeline"] = (int | str | None, Field(None, description="Pipeline id or code."))
        fields["stage"] = (int | str | None, Field(None, description="Stage id or code."))
    if has_communications(spec):
        fields["phones"] = (Communications | None, Field(None, max_length=20, description=(
            "Phone numbers as text or {value, type}; any common format, normalised to E.164.")))
        fields["emails"] = (Communications | None, Field(None, max_length=20, description="E-mail addresses."))
        fields["messengers"] = (Communications | None, Field(None, max_length=20, description=(
            "Messenger handles as {value, type}, type one of telegram, whatsapp, viber, vk, max, skype, bitrix24, "
            "openline, imol, icq, msn, jabber, other (default).")))
        fields["websites"] = (Communications | None, Field(None, max_length=20, description=(
            "Web addresses as text or {value, type}, type one of work (default), home, vk, livejournal, twitter, "
            "other. A company's site is its first web address.")))
    if spec.has_custom:
        fields["custom"] = (dict[str, Any] | None, Field(None, description="Custom field values by code (uf_…)."))
    return fields


OUTPUT_EXCLUDED = {"deleted_at", "chain_outcome", "chain_revenue", "chain_items", "chain_cost", "chain_pipeline",
                   "chain_deal"}  # the end-to-end read model's columns (voronka/deals/outcome.py)


def output_fields(spec: RecordSpec) -> list[models.Field]:
    return [f for f in spec.model._meta.concrete_fields if f.name not in OUTPUT_EXCLUDED]


def record_schemas(spec: RecordSpec, name: str) -> dict[str, type[BaseModel]]:
    """The In, Out and Page schemas of one record type, named e.g. LeadIn, Lead, LeadPage."""
    record_in = create_model(f"{name}In", __base__=Strict, **input_fields(spec))
    out: dict[str, Any] = {}
    for field in output_fields(spec):
        kind = _value_type(field, for_input=False)
        out[field.name] = (kind | None, ...) if field.null else (kind, ...)
    if has_communications(spec):
        out["phones"] = (list[CommunicationOut], ...)
        out["emails"] = (list[CommunicationOut], ...)
        out["messengers"] = (list[CommunicationOut], ...)
        out["websites"] = (list[CommunicationOut], ...)
    record_out = create_model(name, **out)
    page = create_model(f"{name}Page", items=(list[record_out], ...),
                        next_cursor=(str | None, Field(description="Pass as cursor= for the next page; null on the last.")))
    return {"in": record_in, "out": record_out, "page": page}
