"""Reads of the daily read models (``pipelines.DailyTotal``, counts and sums; ``pipelines.StayTotal``, histograms of
durations) for the reports that they can answer (exactly, or for medians and percentiles within the bound of
``pipelines.stays``).

A report asks ``rows(actor, p, type_id)``: the read model's rows the viewer may read, narrowed by the report's
filters, or ``None`` when the read model cannot give the exact answer and the report must count the records:

- the viewer's time zone is not the installation's (the rows are the installation's calendar days);
- a custom-field filter is set (the rows do not carry custom fields);
- the totals of that record kind were never built (a database loaded in bulk before ``analytics-rebuild``);
- the viewer observes a live record of that kind that his roles alone would not let him read (observed records
  are readable by their observers but the rows do not know who observes what);
- a pipeline's stages were reordered, added, removed or changed semantics since the rows were computed.

The rights engine narrows the rows exactly as it narrows the records: by responsible, «open to everyone» and
pipeline (the rows carry the record's current values of all three).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from django.db.models import Q, QuerySet, Sum

from voronka.core import entity_types, policies
from voronka.core.actor import Actor
from voronka.core.memo import memo

from .params import TIME_GROUPS, Params

ENABLED = True  # the benchmark and the tests switch it off to compare with the exact path


def rows(actor: Actor, p: Params, type_id: int, *, pipeline: bool = True, durations: bool = False) -> QuerySet | None:
    """The daily totals (``DailyTotal``), or with ``durations`` the histograms of durations (``StayTotal``)."""
    from voronka.pipelines import daily, stays
    from voronka.pipelines.models import DailyTotal, StayTotal

    if not ENABLED or p.custom or p.zone.key != daily.zone().key or not daily.complete(type_id) \
            or (durations and not stays.complete(type_id)) or not daily.stages_unchanged(type_id):
        return None
    model = StayTotal if durations else DailyTotal
    from .reports import _sees_everything

    if not _sees_everything(actor, type_id) and observes_beyond_rights(actor, type_id):
        return None
    return narrow(actor, p, type_id, model.objects.filter(entity_type_id=type_id), pipeline=pipeline)


def observes_beyond_rights(actor: Actor, type_id: int) -> bool:
    """``_observes_beyond_rights``, asked once per report or page."""
    if not actor.user_id:
        return False
    return memo(("analytics.observes_beyond_rights", actor.user_id, type_id),
                lambda: _observes_beyond_rights(actor, type_id))


def _observes_beyond_rights(actor: Actor, type_id: int) -> bool:
    """Whether the viewer observes a live record of the kind that his roles alone would not let him read: the rows
    cannot count it for him (they know the responsible, openness and pipeline, not who observes what). An observer
    of records he reads anyway (a manager watching a colleague's deal in his own department) keeps the read model.
    One statement over his observed records (a handful)."""
    from voronka.core.models import Observer

    model = entity_types.get(type_id).model
    observed = model.objects.filter(pk__in=Observer.objects.filter(user_id=actor.user_id, entity_type_id=type_id)
                                    .values("entity_id"), deleted_at__isnull=True)
    by_roles = policies.visible(actor, type_id, observed, observers=False)
    return observed.exclude(pk__in=by_roles.values("pk")).exists()


def narrow(actor: Actor, p: Params, type_id: int, qs: QuerySet, *, pipeline: bool = True) -> QuerySet:
    """A read model's rows narrowed by the viewer's rights and the report's filters (a model without ``source``,
    such as the board's ``StageTotal``, must not be asked with a source filter)."""
    qs = policies.visible(actor, type_id, qs, observers=False)
    if pipeline and p.pipeline is not None:
        qs = qs.filter(pipeline_id=p.pipeline)
    if p.source:
        qs = qs.filter(source=p.source)
    if p.responsible is not None:
        qs = qs.filter(responsible_id=p.responsible)
    if p.department is not None:
        from voronka.identity.models import Department, User

        dept = Department.objects.filter(pk=p.department).first()
        qs = qs.filter(responsible_id__in=User.objects.filter(
            department_id__in=sorted(dept.descendant_ids()) if dept else []).values("id"))
    return qs


def days(qs: QuerySet, p: Params, *, by_time: bool = True) -> QuerySet:
    """The rows of the period: whole months from the monthly rows, the days at either end from the daily rows
    (only daily rows when grouping by day or week, whose periods cut through months; ``by_time`` False: the report
    does not group by time whatever ``p.group`` says)."""
    start, end = p.date_from, p.date_to
    first_full = start if start.day == 1 else _next_month(start)
    after_full = _next_month(end) if _next_month(end) - datetime.timedelta(days=1) == end else end.replace(day=1)
    if (by_time and p.group in ("day", "week")) or first_full >= after_full:
        return qs.filter(grain="d", day__gte=start, day__lte=end)
    q = Q(grain="m", day__gte=first_full, day__lt=after_full)
    if start < first_full:
        q |= Q(grain="d", day__gte=start, day__lt=first_full)
    if after_full <= end:
        q |= Q(grain="d", day__gte=after_full, day__lte=end)
    return qs.filter(q)


def _next_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


def grouped(qs: QuerySet, p: Params, *fields: str) -> Iterable[tuple]:
    """(group key, *fields, count, amount) for every distinct group and fields, summed by the database; the group
    key is the one ``reports.make_rows`` expects (the first day of a time group, a responsible, a department …)."""
    dims = {"source": "source", "user": "responsible_id", "department": "responsible_id",
            "pipeline": "pipeline_id"}
    group_field = "day" if p.group in TIME_GROUPS else dims.get(p.group)
    names = [n for n in (group_field, *fields) if n]
    names = list(dict.fromkeys(names))
    key_of = _key_function(p, qs, group_field)
    for row in qs.values(*names).annotate(n=Sum("count"), a=Sum("amount")).order_by():
        if not row["n"] and not row["a"]:
            continue
        yield (key_of(row.get(group_field) if group_field else None), *(row[f] for f in fields), row["n"] or 0,
               row["a"] or 0)


def histograms(qs: QuerySet, p: Params, *fields: str, grouped_by: bool = True) -> dict:
    """{(group key, *fields): Histogram} over the duration rows, each bucket's count and seconds summed by the
    database (``grouped_by`` False: the group key is None)."""
    from voronka.pipelines.stays import Histogram

    dims = {"source": "source", "user": "responsible_id", "department": "responsible_id",
            "pipeline": "pipeline_id"}
    group_field = ("day" if p.group in TIME_GROUPS else dims.get(p.group)) if grouped_by else None
    names = list(dict.fromkeys(n for n in (group_field, *fields, "bucket") if n))
    key_of = _key_function(p, qs, group_field) if grouped_by else (lambda _v: None)
    out: dict = {}
    for row in qs.values(*names).annotate(n=Sum("count"), s=Sum("seconds")).order_by():
        if not row["n"]:
            continue
        key = (key_of(row.get(group_field) if group_field else None), *(row[f] for f in fields))
        out.setdefault(key, Histogram()).add(row["bucket"], row["n"], row["s"] or 0)
    return out


def _key_function(p: Params, qs: QuerySet, group_field: str | None) -> Callable:
    from . import reports

    if p.group in TIME_GROUPS:
        return lambda day: reports._group_start(p, day)
    if p.group == "user":
        return lambda uid: uid or None
    if p.group == "department":
        from voronka.identity.models import User

        departments = dict(User.objects.filter(pk__in=qs.values("responsible_id")).values_list("id", "department_id"))
        return lambda uid: departments.get(uid)
    if p.group == "source":
        return lambda source: source
    if p.group == "pipeline":
        return lambda pid: pid
    return lambda _none: 0
