"""A report's filters and grouping, parsed from a query string (API, web page) and checked.

Every date is a calendar date in the viewer's time zone (their profile, else the site's): «March» is
from 1 March 00:00 to 1 April 00:00 *there*, and grouping by day, week, month, quarter or year cuts
at the viewer's midnight, on SQLite and PostgreSQL alike (Django's ``Trunc`` with ``tzinfo``).
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import entity_types, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, ValidationFailed

TIME_GROUPS = ("day", "week", "month", "quarter", "year")
OTHER_GROUPS = ("source", "user", "department", "pipeline")
GROUPS = TIME_GROUPS + OTHER_GROUPS + ("none",)
ENTITIES = {"lead": 1, "deal": 2}
MAX_DAYS = 3 * 366 + 1  # day grouping over more than three years makes no readable table


def viewer_zone(actor: Actor) -> zoneinfo.ZoneInfo:
    name = getattr(actor.user, "time_zone", "") if actor.user is not None else ""
    for candidate in (name, settings.TIME_ZONE):
        if candidate:
            try:
                return zoneinfo.ZoneInfo(candidate)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


@dataclass
class Params:
    zone: zoneinfo.ZoneInfo
    date_from: datetime.date
    date_to: datetime.date  # inclusive
    group: str = "month"
    entity: int = 2
    pipeline: int | None = None
    source: str = ""
    responsible: int | None = None
    department: int | None = None
    custom: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # report-specific (e.g. reason_field, by)
    now: datetime.datetime = field(default_factory=lambda: timezone.now())
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # computed once per report (buckets)

    @property
    def start(self) -> datetime.datetime:
        return datetime.datetime.combine(self.date_from, datetime.time(), self.zone)

    @property
    def end(self) -> datetime.datetime:
        """The first instant after the period (exclusive)."""
        return datetime.datetime.combine(self.date_to + datetime.timedelta(days=1), datetime.time(), self.zone)

    def query(self) -> dict[str, str]:
        """The filters back as query parameters (for links and exports)."""
        q = {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat(), "group": self.group}
        if self.entity != 2:
            q["entity"] = entity_code(self.entity)
        for name in ("pipeline", "responsible", "department"):
            if getattr(self, name) is not None:
                q[name] = str(getattr(self, name))
        if self.source:
            q["source"] = self.source
        q.update({f"cf_{k}": v for k, v in self.custom.items()})
        q.update(self.extra)
        return q


def entity_code(type_id: int) -> str:
    """«lead», «deal» or a smart process's code (its list is ``/crm/<code>/``)."""
    for code, pk in ENTITIES.items():
        if pk == type_id:
            return code
    return entity_types.get(type_id).code


def smart_types(actor: Actor) -> list:
    """The smart processes (staged types defined at run time) whose records the viewer may read, by id: the reports'
    picker offers exactly these, and a report on any other one is «not found»."""
    return [info for info in entity_types.all_types()
            if info.dynamic and info.staged and policies.can(actor, policies.READ, info.id)]


def smart_type(actor: Actor, ref: str):
    """The readable smart process named by its code or id, or ``None`` when there is none (or the viewer may not read
    it: the two are not told apart)."""
    ref = ref.strip()
    for info in smart_types(actor):
        if ref in (info.code, str(info.id)):
            return info
    return None


def _int(data, name: str, errors: dict) -> int | None:
    raw = (data.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        errors[name] = [_("Must be a whole number.")]
        return None
    return int(raw)


def _date(data, name: str, errors: dict) -> datetime.date | None:
    raw = (data.get(name) or "").strip()
    if not raw:
        return None
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        errors[name] = [_("Must be a date like 2026-01-31.")]
        return None


def parse(actor: Actor, data, *, default_group: str = "month", extra_keys: tuple[str, ...] = (),
          default_entity: str = "deal", smart: bool = False) -> Params:
    """``data``: a QueryDict or a plain dict of strings. Unknown custom fields, bad dates and groupings
    raise ``ValidationFailed`` (422 in the API, a form error on a page).

    With ``smart`` the report also takes a smart process as ``entity`` (its code or id); without ``entity``, a
    pipeline of a smart process chooses that process. A process the viewer may not read is ``NotFound`` (404),
    exactly as one that does not exist."""
    zone = viewer_zone(actor)
    errors: dict[str, list[str]] = {}
    today = timezone.now().astimezone(zone).date()
    date_from = _date(data, "date_from", errors)
    date_to = _date(data, "date_to", errors)
    if date_to is None:
        date_to = today
    if date_from is None:
        date_from = date_to.replace(day=1)
    if not errors and date_from > date_to:
        errors["date_to"] = [_("The end of the period is before its start.")]
    group = (data.get("group") or default_group).strip()
    if group not in GROUPS:
        errors["group"] = [_("Group by one of: %(g)s.") % {"g": ", ".join(GROUPS)}]
    elif group == "day" and (date_to - date_from).days > MAX_DAYS:
        errors["group"] = [_("Too many days to group by day; choose weeks or months.")]
    entity = (data.get("entity") or "").strip()
    pipeline = _int(data, "pipeline", errors)
    type_id = None
    of_pipeline = None
    if smart and pipeline is not None:
        from voronka.pipelines.models import Pipeline

        of_pipeline = Pipeline.objects.filter(pk=pipeline).values_list("entity_type_id", flat=True).first()
        # a smart process's pipeline names its process (the picker's «Deals» is only the default)
        # (one the viewer may not read is not told apart from a pipeline that does not exist)
        if of_pipeline is not None and of_pipeline >= entity_types.FIRST_DYNAMIC and entity in ("", "deal") \
                and smart_type(actor, str(of_pipeline)) is not None:
            entity = str(of_pipeline)
    entity = entity or default_entity
    if entity in ENTITIES:
        type_id = ENTITIES[entity]
    elif smart:
        info = smart_type(actor, entity)
        if info is None:
            raise NotFound(_("There is no smart process «%(e)s».") % {"e": entity[:60]})
        type_id = info.id
        if pipeline is not None and of_pipeline != type_id:
            errors["pipeline"] = [_("Not a pipeline of «%(t)s».") % {"t": info.label_plural}]
    else:
        errors["entity"] = [_("Choose leads or deals.")]
    params = Params(zone=zone, date_from=date_from, date_to=date_to, group=group if group in GROUPS else "month",
                    entity=type_id or 2)
    params.pipeline = pipeline
    params.responsible = _int(data, "responsible", errors)
    params.department = _int(data, "department", errors)
    params.source = (data.get("source") or "").strip()[:50]
    from voronka.customfields.models import FieldDefinition

    for key in data:
        if key.startswith("cf_") and (data.get(key) or "").strip():
            code = key[3:]
            if not FieldDefinition.objects.filter(entity_type_id=params.entity, code=code).exists():
                errors[key] = [_("No custom field «%(c)s».") % {"c": code}]
            else:
                params.custom[code] = data.get(key).strip()[:200]
    for key in extra_keys:
        value = (data.get(key) or "").strip()
        if value:
            params.extra[key] = value[:100]
    if errors:
        raise ValidationFailed(_("Some filters are not valid."), fields=errors)
    return params
