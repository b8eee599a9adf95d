"""List filters shared by every record type: main fields, phone/e-mail lookups and custom fields.

The query parameters are a pydantic model built per record type (so the OpenAPI lists exactly the
filters a type has); custom fields come as ``custom.<code>=value`` and are checked against the
definitions, because their names are not known when the schema is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from pydantic import BaseModel, Field, create_model

from voronka.core.errors import ValidationFailed
from voronka.core.normalize import normalize_email, normalize_phone
from voronka.core.recordkit import RecordSpec
from voronka.customfields.models import FieldDefinition
from voronka.parties.communications import normalize
from voronka.parties.models import Communication

from .errors import BadRequest, text_errors
from .schemas import MAX_ID, Moment, has_communications, is_staged

CUSTOM_PREFIX = "custom."


@dataclass
class ListConfig:
    orders: tuple[str, ...]
    search: tuple[str, ...]
    links: tuple[str, ...] = ()  # foreign keys filterable by id (contact, company …)


def both_ways(names: tuple[str, ...]) -> tuple[str, ...]:
    """Both directions of each field. Only non-null fields: keyset pages over NULLs skip rows (and NULLs sort
    first on SQLite, last on PostgreSQL)."""
    return tuple(o for n in names for o in (n, f"-{n}"))


def filter_schema(spec: RecordSpec, name: str, config: ListConfig) -> type[BaseModel]:
    ids = dict(ge=1, le=MAX_ID)
    fields: dict[str, Any] = {
        "limit": (int, Field(50, ge=1, le=settings.VORONKA_API_PAGE_MAX, description="Page size.")),
        "cursor": (str | None, Field(None, max_length=2000, description="next_cursor of the previous page.")),
        "order": (Literal[config.orders], Field("-id", description="Sort; id breaks ties.")),  # type: ignore[valid-type]
    }
    if is_staged(spec):
        fields["pipeline"] = (str | None, Field(None, max_length=60, description="Pipeline id or code."))
        fields["stage"] = (str | None, Field(None, max_length=60, description="Stage id or code."))
    fields["responsible"] = (int | None, Field(None, **ids, description="Responsible user id."))
    for link in config.links:
        fields[link] = (int | None, Field(None, **ids, description=f"{link.capitalize()} id."))
    fields["source"] = (str | None, Field(None, max_length=50, description="Source code."))
    fields["created_at_from"] = (Moment | None, Field(None, description="Created at or after."))
    fields["created_at_to"] = (Moment | None, Field(None, description="Created before."))
    fields["search"] = (str | None, Field(None, min_length=1, max_length=200,
                                          description="Text contained in: " + ", ".join(config.search) + "."))
    if has_communications(spec):
        fields["phone"] = (str | None, Field(None, max_length=50, description="A phone number in any format."))
        fields["email"] = (str | None, Field(None, max_length=254, description="An e-mail address."))
        fields["messenger"] = (str | None, Field(None, max_length=254, description=(
            "A messenger handle («@ivanov», «t.me/ivanov»; a WhatsApp or Viber number in any format).")))
        fields["website"] = (str | None, Field(None, max_length=254, description=(
            "A web address; scheme, «www.» and a trailing slash do not matter.")))
    return create_model(f"{name}Filters", **fields)


def _by_ref(model, name: str, ref: str, scope: dict) -> list[int]:
    ref = ref.strip()
    if ref.isdigit() and int(ref) <= MAX_ID:
        return [int(ref)]
    found = list(model.objects.filter(code=ref, **scope).values_list("id", flat=True))
    if not found:
        raise BadRequest(_("Unknown %(what)s «%(ref)s».") % {"what": name, "ref": ref}, fields={name: [_("unknown")]})
    return found


def _custom_filters(spec: RecordSpec, params) -> Q:
    wanted = {k[len(CUSTOM_PREFIX):]: params.get(k) for k in params if k.startswith(CUSTOM_PREFIX)}
    if not wanted:
        return Q()
    defs = {d.code: d for d in FieldDefinition.objects.filter(entity_type_id=spec.entity_type_id, code__in=list(wanted))}
    from voronka.customfields.validation import clean_custom  # normalises a value exactly as it is stored

    q = Q()
    errors: dict[str, list[str]] = {}
    for code, raw in wanted.items():
        key = f"{CUSTOM_PREFIX}{code}"
        defn = defs.get(code)
        if defn is None:
            errors[key] = [_("There is no custom field with this code.")]
            continue
        if defn.multiple or defn.kind == FieldDefinition.Kind.MONEY or "__" in code:
            errors[key] = [_("This field cannot be filtered on yet.")]
            continue
        try:
            value = clean_custom(spec.entity_type_id, defn.pipeline_id, {code: raw}, partial=True)[code]
        except ValidationFailed as exc:
            errors[key] = [m for messages in exc.fields.values() for m in messages] or [exc.message]
            continue
        except KeyError:  # an empty value: look for records without it
            q &= Q(**{f"custom__{code}__isnull": True}) | Q(**{f"custom__{code}": ""})
            continue
        q &= Q(**{f"custom__{code}": value})
    if errors:
        raise BadRequest(_("Some filters are not valid."), fields=errors)
    return q


def apply(spec: RecordSpec, config: ListConfig, qs: QuerySet, f: BaseModel, params) -> QuerySet:
    errors = text_errors({k: v for k, v in f.model_dump().items() if isinstance(v, str)})
    if errors:
        raise BadRequest(_("Some parameters of the request are not valid."), fields=errors)
    data = f.model_dump(exclude_none=True)
    if is_staged(spec):
        from voronka.pipelines.models import Pipeline, Stage

        if "pipeline" in data:
            qs = qs.filter(pipeline_id__in=_by_ref(Pipeline, "pipeline", data["pipeline"],
                                                   {"entity_type_id": spec.entity_type_id}))
        if "stage" in data:
            scope = {"pipeline__entity_type_id": spec.entity_type_id}
            qs = qs.filter(stage_id__in=_by_ref(Stage, "stage", data["stage"], scope))
    if "responsible" in data:
        qs = qs.filter(responsible_id=data["responsible"])
    for link in config.links:
        if link in data:
            qs = qs.filter(**{f"{link}_id": data[link]})
    if "source" in data:
        qs = qs.filter(source=data["source"])
    if "created_at_from" in data:
        qs = qs.filter(created_at__gte=data["created_at_from"])
    if "created_at_to" in data:
        qs = qs.filter(created_at__lt=data["created_at_to"])
    if "search" in data:
        text = data["search"].strip()
        if text:
            q = Q()
            for name in config.search:
                q |= Q(**{f"{name}__icontains": text})
            qs = qs.filter(q)
    for key, kind, normalizer in (("phone", "phone", normalize_phone), ("email", "email", normalize_email)):
        if key in data:
            try:
                normalized = normalizer(data[key])
            except ValidationError as exc:
                raise BadRequest(_("Some parameters of the request are not valid."),
                                 fields={key: exc.messages}) from None
            owners = Communication.objects.filter(kind=kind, normalized=normalized, entity_type_id=spec.entity_type_id)
            qs = qs.filter(pk__in=owners.values("entity_id"))
    for key, kind in (("messenger", "im"), ("website", "web")):
        if data.get(key):
            forms = set()
            for value_type in (("other", "telegram", "whatsapp") if kind == "im" else ("other",)):
                try:
                    forms.add(normalize(kind, data[key], value_type))
                except ValidationError as exc:
                    error = exc
            if not forms:
                raise BadRequest(_("Some parameters of the request are not valid."), fields={key: error.messages})
            owners = Communication.objects.filter(kind=kind, normalized__in=sorted(forms),
                                                  entity_type_id=spec.entity_type_id)
            qs = qs.filter(pk__in=owners.values("entity_id"))
    return qs.filter(_custom_filters(spec, params))
