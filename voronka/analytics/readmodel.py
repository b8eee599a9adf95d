"""Reads of the daily read models (``pipelines.DailyTotal``, counts and sums; ``pipelines.StayTotal``, histograms of
durations) for the reports that they can answer (exactly, or for medians and percentiles within the bound of
``pipelines.stays``).

A report asks ``rows(actor, p, type_id)``: the read model's rows the viewer may read, narrowed by the report's
filters, or ``None`` when the read model cannot give the exact answer and the report must count the records:

- the viewer's time zone is not the installation's (the rows are the installation's calendar days);
- a custom-field filter is set (the rows do not carry custom fields);
- the totals of that record kind were never built (a database loaded in bulk before ``analytics-rebuild``);
- the viewer observes more than ``MAX_OBSERVED`` live records of that kind that his roles alone would not let him
  read;
- a pipeline's stages were reordered, added, removed or changed semantics since the rows were computed.

The rights engine narrows the rows exactly as it narrows the records: by responsible, «open to everyone» and
pipeline (the rows carry the record's current values of all three).

Observers. A user also reads the records he observes, which his roles alone may not let him read (in seed 002 a
seller observes his client's production deal), and the rows do not know who observes what. For such a viewer the
answer is a ``Rows``: the table's rows under his rights plus the **own rows** of those few observed records — the
rows the write path adds for them (``pipelines.stages.own_rows``, the same ``daily``/``stays`` contribution
functions), computed from the live records once per report or page and narrowed by the report's filters as the
table's rows are. A record his roles do not cover has no row under his rights, so nothing counts twice; every read
below (``days``, ``grouped``, ``histograms``, ``sums``) adds both parts, so every report (and the dashboard) gets
the merged figures. Beyond ``MAX_OBSERVED`` such records of a kind the report counts the live records.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from django.db import connections
from django.db.models import F, Q, QuerySet, Sum

from voronka.core import entity_types, policies
from voronka.core.actor import Actor
from voronka.core.memo import memo

from .params import TIME_GROUPS, Params

ENABLED = True  # the benchmark and the tests switch it off to compare with the exact path
UNINDEXED_STAGES = True  # stage lists as a row filter on PostgreSQL (``Rows.filter``); off: an index condition
MAX_OBSERVED = 200  # observed records beyond the viewer's rights (per kind) whose own rows are added; more: the records
# (a handful is the normal case; each costs a few rows in Python and a share of two indexed reads per page)


class Rows:
    """A read model's rows for one viewer and report: ``qs``, the table's rows under his rights and the report's
    filters, and ``extra``, the own rows of the records he observes beyond his rights (dicts of the table's columns,
    with ``count`` and ``amount`` or ``seconds``), narrowed by the same filters. ``filter`` narrows both with the
    same lookups (exact, ``__in``, ``__gte``, ``__gt``, ``__lte``, ``__lt``); ``days``, ``grouped``,
    ``histograms`` and ``sums`` read both and add them up."""

    def __init__(self, qs: QuerySet, extra: Iterable[dict] = ()) -> None:
        self.qs = qs
        self.extra = list(extra)

    def filter(self, *, stages_as_row_filter: bool = False, **lookups) -> Rows:
        """``stages_as_row_filter``: on PostgreSQL a ``stage_id__in`` list filters the rows the day range walk
        returns instead of being an index condition. PostgreSQL (before 17) walks the index once per value of an
        IN on a column after the key's day range: seven stages over a year of monthly rows are seven walks of the
        whole range, one walk with the filter (at 1M over a year: lost reasons ~220 → ~70 ms, the managers' time
        to win about halved for the superuser). Measured better only for those two (the ``closed``/``close`` rows);
        ``stage-time``'s process stages measured slower that way, so it is asked per call."""
        db_lookups = dict(lookups)
        qs = self.qs
        if stages_as_row_filter and UNINDEXED_STAGES and "stage_id__in" in db_lookups \
                and connections[qs.db].vendor == "postgresql":
            if "stage_unindexed" not in qs.query.annotations:
                qs = qs.alias(stage_unindexed=F("stage_id") + 0)
            db_lookups["stage_unindexed__in"] = db_lookups.pop("stage_id__in")
        return Rows(qs.filter(**db_lookups), [r for r in self.extra if _matches(r, lookups)])

    def responsible_ids(self) -> set[int]:
        """The responsibles of the extra rows (the table's are asked from the database)."""
        return {r["responsible_id"] for r in self.extra}


_TESTS: dict[str, Callable] = {
    "exact": lambda v, x: v == x, "in": lambda v, x: v in x, "gte": lambda v, x: v >= x, "gt": lambda v, x: v > x,
    "lte": lambda v, x: v <= x, "lt": lambda v, x: v < x}


def _matches(row: dict, lookups: dict) -> bool:
    for lookup, wanted in lookups.items():
        name, _sep, test = lookup.partition("__")
        if name not in row or (test or "exact") not in _TESTS:
            raise ValueError(f"Rows.filter cannot test {lookup!r} in Python")
        if not _TESTS[test or "exact"](row[name], wanted):
            return False
    return True


def rows(actor: Actor, p: Params, type_id: int, *, pipeline: bool = True, durations: bool = False) -> Rows | None:
    """The daily totals (``DailyTotal``), or with ``durations`` the histograms of durations (``StayTotal``), with
    the own rows of the records the viewer observes beyond his rights."""
    from voronka.pipelines import daily, stays
    from voronka.pipelines.models import DailyTotal, StayTotal

    if not ENABLED or p.custom or p.zone.key != daily.zone().key or not daily.complete(type_id) \
            or (durations and not stays.complete(type_id)) or not daily.stages_unchanged(type_id):
        return None
    own = observed_rows(actor, type_id)
    if own is None:
        return None
    model = StayTotal if durations else DailyTotal
    qs = narrow(actor, p, type_id, model.objects.filter(entity_type_id=type_id), pipeline=pipeline)
    return Rows(qs, narrow_own(p, own["stays" if durations else "daily"], pipeline=pipeline))


def board_rows(actor: Actor, p: Params, type_id: int, *, pipeline: bool = True) -> Rows | None:
    """The board's read model (``StageTotal``: records now in each stage, by responsible) under the viewer's rights
    and the report's filters (no source filter: its rows have none), with the own rows of the records he observes
    beyond his rights; None when there are too many of those."""
    from voronka.pipelines.models import StageTotal

    own = observed_rows(actor, type_id)
    if own is None or p.source:
        return None
    qs = narrow(actor, p, type_id, StageTotal.objects.filter(entity_type_id=type_id), pipeline=pipeline)
    return Rows(qs, narrow_own(p, own["board"], pipeline=pipeline))


def observed_rows(actor: Actor, type_id: int) -> dict[str, list[dict]] | None:
    """{"daily", "stays", "board": the own rows of the live records of a kind that the viewer observes beyond his
    rights} (all empty for most viewers), computed once per report or page; None beyond ``MAX_OBSERVED`` records."""
    if not actor.user_id:
        return {"daily": [], "stays": [], "board": []}
    return memo(("analytics.observed_rows", actor.user_id, type_id), lambda: _observed_rows(actor, type_id))


def _observed_rows(actor: Actor, type_id: int) -> dict[str, list[dict]] | None:
    from voronka.pipelines import stages, stays, totals

    from .reports import _sees_everything

    empty: dict[str, list[dict]] = {"daily": [], "stays": [], "board": []}
    if _sees_everything(actor, type_id):
        return empty
    ids = observed_beyond_rights(actor, type_id)
    if not ids:
        return empty
    if len(ids) > MAX_OBSERVED:
        return None
    objs = list(entity_types.get(type_id).model.objects.filter(pk__in=ids, deleted_at__isnull=True).order_by("pk"))
    daily_rows, stay_rows = stages.own_rows(type_id, objs)
    daily_names = ("entity_type_id", "kind", "grain", "day", "pipeline_id", "stage_id", "responsible_id", "is_open",
                   "source")
    board_names = ("entity_type_id", "pipeline_id", "stage_id", "responsible_id", "is_open", "currency")
    return {"daily": [{**dict(zip(daily_names, k, strict=True)), "count": c, "amount": a} for k, c, a in daily_rows],
            "stays": [{**dict(zip(stays.COLUMNS, k, strict=True)), "count": c, "seconds": s} for k, c, s in stay_rows],
            "board": [{**dict(zip(board_names, totals.key_of(type_id, o), strict=True)), "count": 1,
                       "amount": o.opportunity or 0} for o in objs]}


def observed_beyond_rights(actor: Actor, type_id: int) -> list[int]:
    """``_observed_beyond_rights``, asked once per report or page."""
    if not actor.user_id:
        return []
    return memo(("analytics.observed_beyond_rights", actor.user_id, type_id),
                lambda: _observed_beyond_rights(actor, type_id))


def _observed_beyond_rights(actor: Actor, type_id: int) -> list[int]:
    """The ids of the live records of the kind that the viewer observes and his roles alone would not let him read
    (in id order): the rows under his rights do not count them (they know the responsible, openness and pipeline,
    not who observes what). An observer of records he reads anyway (a manager watching a colleague's deal in his
    own department) has none. One statement over his observed records (a handful); at most ``MAX_OBSERVED`` + 1
    ids are read."""
    from voronka.core.models import Observer

    model = entity_types.get(type_id).model
    observed = model.objects.filter(pk__in=Observer.objects.filter(user_id=actor.user_id, entity_type_id=type_id)
                                    .values("entity_id"), deleted_at__isnull=True)
    by_roles = policies.visible(actor, type_id, observed, observers=False)
    return list(observed.exclude(pk__in=by_roles.values("pk")).order_by("pk")
                .values_list("pk", flat=True)[:MAX_OBSERVED + 1])


def narrow_own(p: Params, own: list[dict], *, pipeline: bool = True) -> list[dict]:
    """Own rows of observed records narrowed by the report's filters, as ``narrow`` narrows the table's rows (the
    viewer may read these records: no rights test)."""
    if not own:
        return []
    out = own
    if pipeline and p.pipeline is not None:
        out = [r for r in out if r["pipeline_id"] == p.pipeline]
    if p.source:
        out = [r for r in out if r.get("source") == p.source]
    if p.responsible is not None:
        out = [r for r in out if r["responsible_id"] == p.responsible]
    if p.department is not None and out:
        people = set(_department_people(p.department))
        out = [r for r in out if r["responsible_id"] in people]
    return out


def _department_people(department_id: int) -> list[int]:
    from voronka.identity.models import Department, User

    dept = Department.objects.filter(pk=department_id).first()
    return list(User.objects.filter(department_id__in=sorted(dept.descendant_ids()) if dept else [])
                .values_list("id", flat=True))


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


def days(rows: Rows, p: Params, *, by_time: bool = True) -> Rows:
    """The rows of the period: whole months from the monthly rows, the days at either end from the daily rows
    (only daily rows when grouping by day or week, whose periods cut through months; ``by_time`` False: the report
    does not group by time whatever ``p.group`` says). A month that the period ends in is read from its monthly rows
    too when the viewer has no daily row after the period's end in that month (the usual case: a period that ends
    today): a monthly row is the sum of its month's daily rows, so the two give the same figures, and a year to date
    then reads ~25 days' worth of daily rows less."""
    parts = _period_parts(p, by_time=by_time)
    if not (by_time and p.group in ("day", "week")) and _tail_month_whole(rows, p, parts):
        parts = _with_tail_month(p, parts)
    q = Q()
    for grain, lo, hi in parts:
        q |= Q(grain=grain, day__gte=lo, day__lt=hi)
    return Rows(rows.qs.filter(q), [r for r in rows.extra
                                    if any(r["grain"] == g and lo <= r["day"] < hi for g, lo, hi in parts)])


def _period_parts(p: Params, *, by_time: bool) -> list[tuple[str, datetime.date, datetime.date]]:
    """[(grain, first day, day after the last)]: the parts of the period ``days`` reads."""
    start, end = p.date_from, p.date_to
    after_end = end + datetime.timedelta(days=1)
    first_full = start if start.day == 1 else _next_month(start)
    after_full = _next_month(end) if _next_month(end) - datetime.timedelta(days=1) == end else end.replace(day=1)
    if (by_time and p.group in ("day", "week")) or first_full >= after_full:
        return [("d", start, after_end)]
    parts = [("m", first_full, after_full)]
    if start < first_full:
        parts.append(("d", start, first_full))
    if after_full <= end:
        parts.append(("d", after_full, after_end))
    return parts


def _tail_part(p: Params, parts: list) -> tuple[datetime.date, datetime.date] | None:
    """(first day, day after) of the daily part that ends the period in the middle of a month, when that month also
    began inside the period (so its monthly row may stand for it); else None."""
    grain, lo, hi = parts[-1]
    if grain != "d" or hi != p.date_to + datetime.timedelta(days=1) or _next_month(p.date_to) == hi:
        return None
    month = p.date_to.replace(day=1)
    if month < p.date_from:
        return None
    if lo < month:  # the period's only daily part: it may end in the month of its start or cross into the tail month
        return (month, hi) if len(parts) == 1 else None
    return lo, hi


def _tail_month_whole(rows: Rows, p: Params, parts: list) -> bool:
    tail = _tail_part(p, parts)
    if tail is None:
        return False
    after = _next_month(p.date_to)
    if any(r["grain"] == "d" and tail[1] <= r["day"] < after for r in rows.extra):
        return False
    return not rows.qs.filter(grain="d", day__gte=tail[1], day__lt=after).exists()


def _with_tail_month(p: Params, parts: list) -> list[tuple[str, datetime.date, datetime.date]]:
    """``parts`` with the period's last month read from its monthly rows (see ``days``)."""
    month = p.date_to.replace(day=1)
    after = p.date_to + datetime.timedelta(days=1)
    *head, (_g, lo, _hi) = parts
    out = [(g, a, b) for g, a, b in head]
    if lo < month:  # a daily part that crossed into the month keeps its days before it
        out.append(("d", lo, month))
    for i, (g, a, b) in enumerate(out):
        if g == "m" and b == month:  # the whole months run on into it
            out[i] = ("m", a, after)
            return out
    out.append(("m", month, after))
    return out


def _next_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


def sums(rows: Rows, *fields: str, value: str = "amount") -> list[tuple]:
    """(*fields, count, value) for every distinct value of ``fields``: the table's rows summed by the database, the
    own rows of observed records added (groups whose count and value are both 0 are left out)."""
    out: dict[tuple, list] = {}
    if fields:
        summed = rows.qs.values_list(*fields).annotate(n=Sum("count"), v=Sum(value)).order_by()
    else:  # one sum over every row
        total = rows.qs.aggregate(n=Sum("count"), v=Sum(value))
        summed = [(total["n"], total["v"])]
    if not rows.extra:  # nothing to merge (most viewers): the database's groups as they are
        return [(*key, n or 0, v or 0) for *key, n, v in summed if n or v]
    for *key, n, v in summed:
        _add(out, tuple(key), n or 0, v or 0)
    for r in rows.extra:
        _add(out, tuple(r[f] for f in fields), r["count"], r[value])
    return [(*key, n, v) for key, (n, v) in out.items() if n or v]


def _add(out: dict, key: tuple, n, v) -> None:
    slot = out.get(key)
    if slot is None:
        out[key] = [n, v]
    else:
        slot[0] += n
        slot[1] += v


def grouped(rows: Rows, p: Params, *fields: str) -> Iterable[tuple]:
    """(group key, *fields, count, amount) for every distinct group and fields, summed by the database (and the own
    rows of observed records added); the group key is the one ``reports.make_rows`` expects (the first day of a
    time group, a responsible, a department …)."""
    dims = {"source": "source", "user": "responsible_id", "department": "responsible_id",
            "pipeline": "pipeline_id"}
    group_field = "day" if p.group in TIME_GROUPS else dims.get(p.group)
    names = [n for n in (group_field, *fields) if n]
    names = list(dict.fromkeys(names))
    key_of = _key_function(p, rows, group_field)
    for *values, n, a in sums(rows, *names):
        row = dict(zip(names, values, strict=True))
        yield (key_of(row.get(group_field) if group_field else None), *(row[f] for f in fields), n or 0, a or 0)


def histograms(rows: Rows, p: Params, *fields: str, grouped_by: bool = True) -> dict:
    """{(group key, *fields): Histogram} over the duration rows, each bucket's count and seconds summed by the
    database (and the own rows of observed records added; ``grouped_by`` False: the group key is None)."""
    from voronka.pipelines.stays import Histogram

    dims = {"source": "source", "user": "responsible_id", "department": "responsible_id",
            "pipeline": "pipeline_id"}
    group_field = ("day" if p.group in TIME_GROUPS else dims.get(p.group)) if grouped_by else None
    names = list(dict.fromkeys(n for n in (group_field, *fields, "bucket") if n))
    key_of = _key_function(p, rows, group_field) if grouped_by else (lambda _v: None)
    out: dict = {}
    for *values, n, s in sums(rows, *names, value="seconds"):
        if not n:
            continue
        row = dict(zip(names, values, strict=True))
        key = (key_of(row.get(group_field) if group_field else None), *(row[f] for f in fields))
        out.setdefault(key, Histogram()).add(row["bucket"], n, s or 0)
    return out


def _key_function(p: Params, rows: Rows, group_field: str | None) -> Callable:
    from . import reports

    if p.group in TIME_GROUPS:
        return lambda day: reports._group_start(p, day)
    if p.group == "user":
        return lambda uid: uid or None
    if p.group == "department":
        from voronka.identity.models import User

        people = Q(pk__in=rows.qs.values("responsible_id"))
        if rows.extra:
            people |= Q(pk__in=sorted(rows.responsible_ids()))
        departments = dict(User.objects.filter(people).values_list("id", "department_id"))
        return lambda uid: departments.get(uid)
    if p.group == "source":
        return lambda source: source
    if p.group == "pipeline":
        return lambda pid: pid
    return lambda _none: 0
