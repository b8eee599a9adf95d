"""The reports: each a function ``(actor, params) -> Report`` over the domain tables, written with the ORM.

Rights: every report starts from ``records_visible_to(actor, …)``, so a manager whose role reads only his
own leads sees only his own leads in every figure; stage history, tasks and timelines are narrowed to
the records the viewer may read. The exact definition of every figure is in ``docs/analytics.md``.
"""

from __future__ import annotations

import datetime
import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    Exists,
    F,
    Func,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Trunc
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from voronka.core import entity_types, policies
from voronka.core.actor import Actor
from voronka.core.errors import ValidationFailed
from voronka.core.memo import memo
from voronka.core.memo import scope as memo_scope
from voronka.core.models import TimelineEntry
from voronka.core.selectors import records_visible_to
from voronka.leads import firstaction

from . import chain, readmodel, roundtrip
from .params import TIME_GROUPS, Params

LEAD, DEAL = entity_types.LEAD, entity_types.DEAL
ZERO = Decimal("0")
# timeline entries that count as somebody acting on a lead (a person, not a robot)
ACTION_KINDS = firstaction.ACTION_KINDS


@dataclass
class Column:
    key: str
    label: str
    kind: str = "int"  # int, money, percent, duration (seconds), text
    entity: str = ""  # "lead"/"deal": the number opens that list …
    filter: dict[str, str] = field(default_factory=dict)  # … with these filters on top of the row's


@dataclass
class Report:
    slug: str
    title: str
    params: Params
    columns: list[Column]
    rows: list[dict[str, Any]]
    totals: dict[str, Any] = field(default_factory=dict)
    chart: str = "bars"  # bars, funnel, shares
    chart_value: str = ""  # the column drawn
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # extra tables (slowest items, outcomes)


# --- shared pieces --------------------------------------------------------------------------------------

def items(actor: Actor, p: Params, type_id: int, *, pipeline: bool = True, observers: bool = True) -> QuerySet:
    """The live records of a kind the actor may read, narrowed by the report's filters (not the period). Without
    ``observers``: only those his roles let him read (no «or observed» subquery, so the database can walk an index
    by responsible; ``readmodel.observed_beyond_rights`` lists the rest)."""
    qs = records_visible_to(actor, type_id) if observers else policies.visible(
        actor, type_id, entity_types.get(type_id).objects.filter(deleted_at__isnull=True), observers=False)
    if pipeline and p.pipeline is not None and hasattr(qs.model, "pipeline_id"):
        qs = qs.filter(pipeline_id=p.pipeline)
    if p.source and hasattr(qs.model, "source"):
        qs = qs.filter(source=p.source)
    if p.responsible is not None:
        qs = qs.filter(responsible_id=p.responsible)
    if p.department is not None:
        from voronka.identity.models import Department

        dept = Department.objects.filter(pk=p.department).first()
        qs = qs.filter(responsible__department_id__in=sorted(dept.descendant_ids()) if dept else [])
    if p.custom and type_id == p.entity:
        for code, value in p.custom.items():
            qs = qs.filter(_custom_q(type_id, code, value))
    return qs


def _custom_q(type_id: int, code: str, value: str) -> Q:
    from voronka.customfields.models import FieldDefinition

    defn = FieldDefinition.objects.get(entity_type_id=type_id, code=code)
    if defn.kind == "boolean":
        return Q(**{f"custom__{code}": value in ("1", "true", "yes", "on")})
    if defn.kind == "integer" and value.lstrip("-").isdigit():
        return Q(**{f"custom__{code}": int(value)})
    if defn.multiple:
        return Q(**{f"custom__{code}__contains": [value]})
    return Q(**{f"custom__{code}": value})


def in_period(qs: QuerySet, p: Params, name: str) -> QuerySet:
    return qs.filter(**{f"{name}__gte": p.start, f"{name}__lt": p.end})


MAX_BUCKETS = 400  # beyond this many periods a CASE gets long; the database's own truncation takes over


def buckets(p: Params) -> list[datetime.date]:
    """The first day of every period (day, week …) that meets the report's dates, in order."""
    key = ("buckets", p.group, p.date_from, p.date_to)
    if key in p.cache:
        return p.cache[key]
    out, k = [], _group_start(p, p.date_from)
    while k <= p.date_to:
        out.append(k)
        k = period_end(p, k) + datetime.timedelta(days=1)
    p.cache[key] = out
    return out


def group_expr(p: Params, time_field: str, *, prefix: str = ""):
    """The group of a row. Periods are cut at the viewer's midnights, computed here with ``zoneinfo`` (summer time
    included) and compared as plain instants: ``CASE WHEN created_at < <1 Feb 00:00 Moscow> THEN 0 …``, the same
    SQL on SQLite and PostgreSQL and no time-zone function called per row."""
    if p.group in TIME_GROUPS:
        starts = buckets(p)
        if len(starts) > MAX_BUCKETS:
            return Trunc(prefix + time_field, p.group, tzinfo=p.zone)
        whens = [When(**{f"{prefix}{time_field}__lt": datetime.datetime.combine(nxt, datetime.time(), p.zone)},
                      then=Value(i)) for i, nxt in enumerate(starts[1:])]
        if not whens:
            return Value(0, output_field=IntegerField())
        return Case(*whens, default=Value(len(starts) - 1), output_field=IntegerField())
    return {"source": F(prefix + "source"), "user": F(prefix + "responsible_id"),
            "department": F(prefix + "responsible__department_id"), "pipeline": F(prefix + "pipeline_id"),
            "none": Value(0)}[p.group]


def norm_key(p: Params, key):
    """A group key as a plain value: a local date for time groups."""
    if p.group in TIME_GROUPS:
        if key is None:
            return None
        if isinstance(key, int):
            return buckets(p)[key]
        if isinstance(key, datetime.datetime):
            if key.tzinfo is None:
                key = key.replace(tzinfo=p.zone)
            return key.astimezone(p.zone).date()
        return key
    return key


def period_end(p: Params, start: datetime.date) -> datetime.date:
    """The last day of the group starting at ``start``."""
    if p.group == "day":
        return start
    if p.group == "week":
        return start + datetime.timedelta(days=6)
    months = {"month": 1, "quarter": 3, "year": 12}[p.group]
    y, m = start.year, start.month + months
    y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return datetime.date(y, m, 1) - datetime.timedelta(days=1)


def labels(p: Params, keys) -> dict:
    keys = [k for k in keys if k is not None]
    if p.group in TIME_GROUPS:
        out = {}
        for k in keys:
            if p.group == "day":
                out[k] = k.isoformat()
            elif p.group == "week":
                out[k] = _("week of %(d)s") % {"d": k.isoformat()}
            elif p.group == "month":
                out[k] = f"{k:%Y-%m}"
            elif p.group == "quarter":
                out[k] = f"{k.year} Q{(k.month - 1) // 3 + 1}"
            else:
                out[k] = str(k.year)
        return out
    if p.group == "user":
        from voronka.identity.models import User

        return {u.pk: str(u) for u in User.objects.filter(pk__in=keys)}
    if p.group == "department":
        from voronka.identity.models import Department

        return {d.pk: d.name for d in Department.objects.filter(pk__in=keys)}
    if p.group == "pipeline":
        from voronka.pipelines.models import Pipeline

        return {x.pk: x.name for x in Pipeline.objects.filter(pk__in=keys)}
    if p.group == "source":
        from voronka.leads.models import Source

        names = dict(Source.objects.filter(code__in=keys).values_list("code", "name"))
        return {k: names.get(k) or k or _("(no source)") for k in keys}
    return {0: _("Total")}


def none_label(p: Params) -> str:
    return {"user": _("(nobody)"), "department": _("(no department)"), "source": _("(no source)")}.get(p.group, "—")


def row_filter(p: Params, key, *, time_field: str = "created") -> dict[str, str]:
    """The list filters that select a row's records (together with the report's own filters)."""
    f: dict[str, str] = {}
    if p.pipeline is not None:
        f["pipeline"] = str(p.pipeline)
    if p.source:
        f["source"] = p.source
    if p.responsible is not None:
        f["responsible"] = str(p.responsible)
    if p.department is not None:
        f["department"] = str(p.department)
    f.update({f"cf_{k}": v for k, v in p.custom.items()})
    start, end = p.date_from, p.date_to
    if p.group in TIME_GROUPS and key is not None:
        start, end = max(start, key), min(end, period_end(p, key))
    f[f"{time_field}_from"], f[f"{time_field}_to"] = start.isoformat(), end.isoformat()
    if p.group == "user":
        f["responsible"] = str(key) if key is not None else "none"
    elif p.group == "department" and key is not None:
        f["department"] = str(key)
    elif p.group == "source":
        f["source"] = key or ""
    elif p.group == "pipeline" and key is not None:
        f["pipeline"] = str(key)
    return f


def make_rows(p: Params, data: dict, *, time_field: str = "created", fill: bool = True) -> list[dict]:
    """Rows from ``{group key: {column: value}}``, in order, with labels and list filters; empty time groups
    inside the period are shown as zeros (a month without leads is a fact, not a gap)."""
    keys = list(data)
    if fill and p.group in TIME_GROUPS:
        k = _group_start(p, p.date_from)
        while k <= p.date_to:
            if k not in data:
                keys.append(k)
            k = period_end(p, k) + datetime.timedelta(days=1)
    names = labels(p, keys)
    if p.group in TIME_GROUPS:
        keys.sort(key=lambda k: (k is None, k or datetime.date.min))
    else:
        keys.sort(key=lambda k: (k is None, str(names.get(k, ""))))
    rows = []
    for k in keys:
        row = {"key": k.isoformat() if isinstance(k, datetime.date) else k,
               "label": names.get(k, none_label(p)) if k is not None else none_label(p),
               "filter": row_filter(p, k, time_field=time_field)}
        row.update(data.get(k) or {})
        rows.append(row)
    return rows


def _group_start(p: Params, day: datetime.date) -> datetime.date:
    if p.group == "day":
        return day
    if p.group == "week":
        return day - datetime.timedelta(days=day.weekday())
    if p.group == "month":
        return day.replace(day=1)
    if p.group == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def pct(part, whole) -> float | None:
    return round(100.0 * float(part) / float(whole), 1) if whole else None


def median(values) -> float | None:
    return float(statistics.median(values)) if values else None


def mean(values) -> float | None:
    return float(sum(values) / len(values)) if values else None


def p90(values) -> float | None:
    """The 90th percentile by the nearest rank (a real observed value, never interpolated)."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)])


def money(value) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def _totals(rows, keys) -> dict:
    return {k: sum((r.get(k) or 0) for r in rows) for k in keys}


def _entity_code(type_id: int) -> str:
    """«lead», «deal» or a smart process's code: the list a number opens."""
    from .params import entity_code

    return entity_code(type_id)


def _grouped(qs: QuerySet, p: Params, time_field: str, **aggregates) -> dict:
    out: dict = {}
    for row in qs.annotate(_g=group_expr(p, time_field)).values("_g").annotate(**aggregates).order_by():
        key = norm_key(p, row.pop("_g"))
        slot = out.setdefault(key, {k: 0 for k in aggregates})
        for k, v in row.items():
            slot[k] = (slot[k] or 0) + (v or 0)
    return out


def _grouped_values(qs: QuerySet, p: Params, time_field: str, *fields) -> list[tuple]:
    """(group key, *fields) for every row: for medians and percentiles, computed here."""
    return [(norm_key(p, g), *rest) for g, *rest in
            qs.annotate(_g=group_expr(p, time_field)).values_list("_g", *fields).order_by()]


# --- new leads (F44) -------------------------------------------------------------------------------------

def new_leads(actor: Actor, p: Params) -> Report:
    rm = readmodel.rows(actor, p, LEAD)
    if rm is not None:
        data = {}
        semantics = _semantics()
        for key, stage_id, n, _amount in readmodel.grouped(readmodel.days(rm.filter(kind="created"), p), p, "stage_id"):
            slot = data.setdefault(key, {"leads": 0, "in_work": 0, "converted": 0, "junk": 0})
            slot["leads"] += n
            slot[{"process": "in_work", "success": "converted"}.get(semantics.get(stage_id), "junk")] += n
        if p.group == "none":  # one «Total» row, as the database gives it even over no records
            data.setdefault(0, {"leads": 0, "in_work": 0, "converted": 0, "junk": 0})
    else:
        qs = in_period(items(actor, p, LEAD), p, "created_at")
        data = _grouped(qs, p, "created_at", leads=Count("id"),
                        in_work=Count("id", filter=Q(stage_semantics="process")),
                        converted=Count("id", filter=Q(stage_semantics="success")),
                        junk=Count("id", filter=Q(stage_semantics="failure")))
    rows = make_rows(p, data)
    for r in rows:
        for k in ("leads", "in_work", "converted", "junk"):
            r.setdefault(k, 0)
    cols = [Column("leads", _("New leads"), entity="lead"),
            Column("in_work", _("In work now"), entity="lead", filter={"semantics": "process"}),
            Column("converted", _("Successful"), entity="lead", filter={"semantics": "success"}),
            Column("junk", _("Failed"), entity="lead", filter={"semantics": "failure"})]
    return Report("new-leads", _("New leads"), p, cols, rows, _totals(rows, ["leads", "in_work", "converted", "junk"]),
                  chart_value="leads", details=_source(rm))


def _semantics() -> dict[int, str]:
    """{stage id: semantics}; 0 stands for «in progress» in the read model's ``created`` rows."""
    from voronka.pipelines.models import Stage

    return memo(("analytics.semantics",), lambda: {0: "process", **dict(Stage.objects.values_list("id", "semantics"))})


def _source(rm) -> dict:
    """Which path answered: the daily read model or the records themselves (tests and the page's note use it)."""
    return {"read_model": rm is not None}


# --- lead → deal conversion ------------------------------------------------------------------------------

def _with_deal(won: bool = False):
    """Ids of leads that have a live deal (a won one): a semi-join both databases run from the deals' lead index."""
    from voronka.deals.models import Deal

    deals = Deal.objects.filter(deleted_at__isnull=True, lead_id__isnull=False)
    if won:
        deals = deals.filter(stage_semantics="success")
    return deals.values("lead_id")


def lead_conversion(actor: Actor, p: Params) -> Report:
    from voronka.pipelines import daily

    rm = readmodel.rows(actor, p, LEAD)
    if rm is not None and not daily.conversion_complete():
        rm = None
    data: dict = {}
    if rm is not None:  # the leads' ``created`` rows and their ``deal`` rows (status 1: a live deal, 2: a won one)
        for key, kind, status, n, _amount in readmodel.grouped(
                readmodel.days(rm.filter(kind__in=("created", "deal")), p), p, "kind", "stage_id"):
            slot = data.setdefault(key, {"leads": 0})
            if kind == "created":
                slot["leads"] += n
            else:
                slot["to_deal"] = slot.get("to_deal", 0) + n
                if status == 2:
                    slot["to_won"] = slot.get("to_won", 0) + n
        if p.group == "none":  # one «Total» row, as the database gives it even over no records
            data.setdefault(0, {"leads": 0})
    else:
        qs = in_period(items(actor, p, LEAD), p, "created_at")
        data = _grouped(qs, p, "created_at", leads=Count("id"))
        for key, part in (("to_deal", qs.filter(pk__in=_with_deal())), ("to_won", qs.filter(pk__in=_with_deal(True)))):
            for k, v in _grouped(part, p, "created_at", n=Count("id")).items():
                data.setdefault(k, {"leads": 0})[key] = v["n"]
    rows = make_rows(p, data)
    for r in rows:
        for k in ("leads", "to_deal", "to_won"):
            r.setdefault(k, 0)
        r["deal_rate"], r["won_rate"] = pct(r["to_deal"], r["leads"]), pct(r["to_won"], r["leads"])
    totals = _totals(rows, ["leads", "to_deal", "to_won"])
    totals["deal_rate"], totals["won_rate"] = pct(totals["to_deal"], totals["leads"]), pct(totals["to_won"], totals["leads"])
    cols = [Column("leads", _("Leads"), entity="lead"),
            Column("to_deal", _("Became deals"), entity="lead", filter={"with_deal": "any"}),
            Column("deal_rate", _("Lead → deal"), "percent"),
            Column("to_won", _("Became won deals"), entity="lead", filter={"with_deal": "won"}),
            Column("won_rate", _("Lead → won deal"), "percent")]
    return Report("lead-conversion", _("Lead conversion"), p, cols, rows, totals, chart_value="deal_rate",
                  notes=[_("A lead counts once, by the day it was created, whatever happened to it later; "
                           "its deal's outcome counts even if the deal is another person's.")], details=_source(rm))


# --- time to first action and to qualification ---------------------------------------------------------

def qualification_stages(pipeline_ids=None) -> set[int]:
    """Stages whose reaching makes a lead qualified: those marked so in analytics settings; in a pipeline
    where none is marked, the first stage whose code or name says «qualif»/«квалиф» and every later
    in-progress stage, plus the success stages."""
    from voronka.pipelines.models import Stage

    stages = Stage.objects.filter(pipeline__entity_type_id=LEAD).select_related("analytics")
    if pipeline_ids is not None:
        stages = stages.filter(pipeline_id__in=pipeline_ids)
    by_pipeline: dict[int, list] = defaultdict(list)
    for s in stages.order_by("pipeline_id", "sort", "id"):
        by_pipeline[s.pipeline_id].append(s)
    out: set[int] = set()
    for stage_list in by_pipeline.values():
        marked = [s for s in stage_list if getattr(s, "analytics", None) and s.analytics.qualifies is not None]
        if marked:
            out.update(s.pk for s in marked if s.analytics.qualifies)
            continue
        seen = False
        for s in stage_list:
            word = f"{s.code} {s.name}".lower()
            if s.semantics == "process" and ("qualif" in word or "квалиф" in word):
                seen = True
            if s.semantics == "success" or (seen and s.semantics == "process"):
                out.add(s.pk)
    return out


def qualifying_for(type_id: int, version: int | None = None) -> frozenset[int] | None:
    """The qualifying stages of a record kind (leads only), cached per settings version (``version``: the one the
    caller read its settings at; None: read it): ``pipelines.stays`` asks on writes to leads."""
    if type_id != LEAD:
        return None
    from voronka.core import config_cache

    return config_cache.cached(("analytics-qualifying",), lambda: frozenset(qualification_stages()),
                               config_cache.current_version() if version is None else version)


def first_actions(lead_ids_qs) -> dict[int, datetime.datetime]:
    rows = (TimelineEntry.objects.filter(entity_type_id=LEAD, entity_id__in=lead_ids_qs, actor_kind__in=("user", "token"),
                                         kind__in=ACTION_KINDS)
            .values("entity_id").annotate(at=Min("created_at")).order_by())
    return {r["entity_id"]: r["at"] for r in rows}


def qualified_at(lead_ids_qs) -> dict[int, datetime.datetime]:
    from voronka.pipelines.models import StageHistory

    rows = (StageHistory.objects.filter(entity_type_id=LEAD, entity_id__in=lead_ids_qs,
                                        to_stage_id__in=sorted(qualification_stages()))
            .values("entity_id").annotate(at=Min("moved_at")).order_by())
    return {r["entity_id"]: r["at"] for r in rows}


def _speed_model(actor: Actor, p: Params):
    """The durations' read model for the leads' time to first action and to qualification, or None when it cannot
    answer (see ``readmodel.rows``; also not built, or built with other qualifying stages)."""
    from voronka.pipelines import stays

    rm = readmodel.rows(actor, p, LEAD, durations=True)
    if rm is not None and not stays.speed_complete(LEAD, set(qualification_stages())):
        return None
    return rm


def _whole_seconds(start: datetime.datetime, end: datetime.datetime) -> float:
    """A duration in whole seconds (fractions dropped), as the read model keeps it."""
    return float(max(0, int((end - start).total_seconds())))


def lead_speed(actor: Actor, p: Params) -> Report:
    rm = _speed_model(actor, p)
    if rm is not None:  # leads from the daily totals, the times from their histograms (medians within the bound)
        counts = readmodel.rows(actor, p, LEAD)
        leads_of: dict = defaultdict(int)  # several rows may fall into one group (a department's people)
        for key, n, _a in readmodel.grouped(readmodel.days(counts.filter(kind="created"), p), p):
            leads_of[key] += n
        hists = readmodel.histograms(readmodel.days(rm.filter(kind__in=("first", "qual")), p), p, "kind")
        data = {}
        for key in set(leads_of) | {k for k, _kind in hists}:
            data[key] = _speed_cells_of_histograms(leads_of.get(key, 0), hists.get((key, "first")),
                                                   hists.get((key, "qual")))
        merged = {"first": _merged(h for (_k, kind), h in hists.items() if kind == "first"),
                  "qual": _merged(h for (_k, kind), h in hists.items() if kind == "qual")}
        totals = _speed_cells_of_histograms(sum(leads_of.values()), merged["first"], merged["qual"])
        rows = make_rows(p, data)
        for r in rows:
            r.setdefault("leads", 0)
            r.setdefault("acted", 0)
            r.setdefault("qualified", 0)
        return _speed_report(p, rows, totals, rm)
    qs = in_period(items(actor, p, LEAD), p, "created_at")
    first = first_actions(qs.values("id"))
    qual = qualified_at(qs.values("id"))
    per: dict = defaultdict(lambda: {"first": [], "qual": [], "leads": 0})
    for key, pk, created in _grouped_values(qs, p, "created_at", "id", "created_at"):
        slot = per[key]
        slot["leads"] += 1
        if pk in first:
            slot["first"].append(_whole_seconds(created, first[pk]))
        if pk in qual:
            slot["qual"].append(_whole_seconds(created, qual[pk]))
    all_first = [v for s in per.values() for v in s["first"]]
    all_qual = [v for s in per.values() for v in s["qual"]]
    data = {k: _speed_cells(s["leads"], s["first"], s["qual"]) for k, s in per.items()}
    rows = make_rows(p, data)
    for r in rows:
        r.setdefault("leads", 0)
        r.setdefault("acted", 0)
        r.setdefault("qualified", 0)
    totals = _speed_cells(sum(s["leads"] for s in per.values()), all_first, all_qual)
    return _speed_report(p, rows, totals, None)


def _merged(histograms):
    from voronka.pipelines.stays import Histogram

    out = Histogram()
    for h in histograms:
        for b, (c, v) in h.buckets.items():
            out.add(b, c, v)
    return out


def _speed_cells_of_histograms(leads, first, qual) -> dict:
    def figures(h):
        return (h.count, h.mean(), h.median()) if h is not None and h.count else (0, None, None)

    acted, first_avg, first_median = figures(first)
    qualified, qual_avg, qual_median = figures(qual)
    return {"leads": leads, "acted": acted, "first_avg": first_avg, "first_median": first_median,
            "qualified": qualified, "qual_avg": qual_avg, "qual_median": qual_median}


def _speed_report(p: Params, rows, totals, rm) -> Report:
    cols = [Column("leads", _("Leads"), entity="lead"), Column("acted", _("With an action")),
            Column("first_avg", _("To first action, average"), "duration"),
            Column("first_median", _("To first action, median"), "duration"),
            Column("qualified", _("Qualified")),
            Column("qual_avg", _("To qualification, average"), "duration"),
            Column("qual_median", _("To qualification, median"), "duration")]
    return Report("lead-speed", _("Time to first action and to qualification"), p, cols, rows, totals,
                  chart_value="first_median",
                  notes=[_("First action: the first stage move, comment, task, call, e-mail, change or conversion "
                           "made by a person (robots do not count). Leads without one are left out of the times."),
                         *_duration_note(rm)], details=_source(rm))


def _speed_cells(leads, first, qual) -> dict:
    return {"leads": leads, "acted": len(first), "first_avg": mean(first), "first_median": median(first),
            "qualified": len(qual), "qual_avg": mean(qual), "qual_median": median(qual)}


# --- deals by pipeline and period (F45) ---------------------------------------------------------------

def deals(actor: Actor, p: Params) -> Report:
    kind = p.entity if p.entity >= entity_types.FIRST_DYNAMIC else DEAL  # deals, or a smart process's items
    rm = readmodel.rows(actor, p, kind)
    if rm is not None:
        data = {}
        semantics = _semantics()
        for key, stage_id, n, amount in readmodel.grouped(readmodel.days(rm.filter(kind="created"), p), p, "stage_id"):
            slot = data.setdefault(key, {"deals": 0, "amount": ZERO, "open": 0, "won": 0, "won_amount": ZERO, "lost": 0})
            sem = semantics.get(stage_id)
            slot["deals"] += n
            slot["amount"] += amount
            slot[{"process": "open", "success": "won"}.get(sem, "lost")] += n
            if sem == "success":
                slot["won_amount"] += amount
        if p.group == "none":
            data.setdefault(0, {})
    else:
        qs = in_period(items(actor, p, kind), p, "created_at")
        data = _grouped(qs, p, "created_at", deals=Count("id"), amount=Sum("opportunity"),
                        open=Count("id", filter=Q(stage_semantics="process")),
                        won=Count("id", filter=Q(stage_semantics="success")),
                        won_amount=Sum("opportunity", filter=Q(stage_semantics="success")),
                        lost=Count("id", filter=Q(stage_semantics="failure")))
    # a deal away in Complaints stays its pipeline's deal, «in complaints» (F25)
    roundtrip.attribute_deals(actor, p, kind, data, {"deals": 0, "amount": ZERO, "open": 0, "won": 0,
                                                      "won_amount": ZERO, "lost": 0, "in_complaints": 0})
    keys = ["deals", "amount", "open", "won", "won_amount", "lost", "in_complaints"]
    rows = make_rows(p, data)
    for r in rows:
        for k in keys:
            r[k] = money(r.get(k)) if "amount" in k else r.get(k, 0)
        r["won_rate"] = pct(r["won"], r["won"] + r["lost"])
    totals = _totals(rows, keys)
    totals["won_rate"] = pct(totals["won"], totals["won"] + totals["lost"])
    code = _entity_code(kind)
    cols = [Column("deals", _("New deals") if kind == DEAL else _("New items"), entity=code),
            Column("amount", _("Amount"), "money"),
            Column("open", _("Open"), entity=code, filter={"semantics": "process"}),
            Column("won", _("Won") if kind == DEAL else _("Successful"), entity=code, filter={"semantics": "success"}),
            Column("won_amount", _("Won amount") if kind == DEAL else _("Successful amount"), "money"),
            Column("lost", _("Lost") if kind == DEAL else _("Failed"), entity=code, filter={"semantics": "failure"}),
            Column("in_complaints", _("In complaints") if kind == DEAL else _("Away on a round trip")),
            Column("won_rate", _("Won of closed") if kind == DEAL else _("Successful of closed"), "percent")]
    title = _("Deals by pipeline and period") if kind == DEAL else \
        _("%(items)s by pipeline and period") % {"items": entity_types.get(kind).label_plural.capitalize()}
    return Report("deals", title, p, cols, rows, totals, chart_value="deals", details=_source(rm))


# --- stage funnel ---------------------------------------------------------------------------------------

def _pipeline(p: Params, type_id: int):
    from voronka.pipelines.models import Pipeline

    qs = Pipeline.objects.filter(entity_type_id=type_id)
    pipe = qs.filter(pk=p.pipeline).first() if p.pipeline is not None else \
        (qs.filter(is_default=True).first() or qs.first())
    if pipe is None:
        raise ValidationFailed(_("No such pipeline."), fields={"pipeline": [_("not found")]})
    return pipe


def _pipe_name(pipe) -> str:
    """A pipeline's name; a smart process's pipeline also names the process («Production orders · General»)."""
    if pipe.entity_type_id >= entity_types.FIRST_DYNAMIC:
        return f"{entity_types.get(pipe.entity_type_id).label_plural.capitalize()} · {pipe.name}"
    return pipe.name


def _kind_title(title: str, p: Params) -> str:
    """A report's title, naming the smart process it is about."""
    if p.entity >= entity_types.FIRST_DYNAMIC:
        return f"{title}: {entity_types.get(p.entity).label_plural.capitalize()}"
    return title


def funnel(actor: Actor, p: Params) -> Report:
    from voronka.pipelines.models import Stage, StageHistory

    pipe = _pipeline(p, p.entity)
    p.pipeline = pipe.pk
    stages = list(Stage.objects.filter(pipeline=pipe).order_by("sort", "id"))
    steps = [s for s in stages if s.semantics == "process"]
    order = {s.pk: i for i, s in enumerate(s for s in stages if s.semantics != "failure")}
    rm = readmodel.rows(actor, p, p.entity)
    # per funnel row (each in-progress stage, then «won now») the items and their amount; per failure stage the same
    if rm is not None:
        reached_at: dict[int, list] = defaultdict(lambda: [0, ZERO])
        now_at: dict[int, list] = defaultdict(lambda: [0, ZERO])
        for kind, stage_id, n, amount in readmodel.sums(readmodel.days(rm.filter(kind__in=("reached", "created")), p),
                                                         "kind", "stage_id"):
            slot = (reached_at[order.get(stage_id, -1)] if kind == "reached" else now_at[stage_id])
            slot[0] += n or 0
            slot[1] += amount or ZERO
        figures = [(sum(c for r, (c, _a) in reached_at.items() if r >= order[s.pk]),
                    sum((a for r, (_c, a) in reached_at.items() if r >= order[s.pk]), ZERO)) for s in steps]
        won = [now_at[s.pk] for s in stages if s.semantics == "success"]
        figures.append((sum(c for c, _a in won), sum((a for _c, a in won), ZERO)))
        lost_at = {s.pk: tuple(now_at[s.pk]) for s in stages if s.semantics == "failure"}
    else:
        qs = in_period(items(actor, p, p.entity), p, "created_at")
        current = {pk: (stage, sem, amount) for pk, stage, sem, amount in
                   qs.values_list("id", "stage_id", "stage_semantics", "opportunity")}
        furthest: dict[int, int] = {}
        for pk, stage_id in (StageHistory.objects.filter(entity_type_id=p.entity, entity_id__in=qs.values("id"),
                                                        to_stage_id__in=list(order))
                             .values_list("entity_id", "to_stage_id").distinct()):
            furthest[pk] = max(furthest.get(pk, -1), order[stage_id])
        won_ids = [pk for pk, (_st, sem, _a) in current.items() if sem == "success"]
        groups = [[pk for pk in current if furthest.get(pk, -1) >= order[s.pk]] for s in steps] + [won_ids]
        figures = [(len(ids), sum((current[pk][2] for pk in ids), ZERO)) for ids in groups]
        lost_at = {}
        for s in stages:
            if s.semantics == "failure":
                ids = [pk for pk, (st, _sem, _a) in current.items() if st == s.pk]
                lost_at[s.pk] = (len(ids), sum((current[pk][2] for pk in ids), ZERO))
    # deals of this pipeline away in Complaints (F25) are still its deals: counted at the stages they reached here
    away = roundtrip.away_from(actor, p, p.entity, pipe.pk, order)
    if away:
        for i, s in enumerate(steps):  # the last figure, «won now», has none of them
            here = [x for rank, x in away.values() if rank >= order[s.pk]]
            figures[i] = (figures[i][0] + len(here), figures[i][1] + sum(here, ZERO))
    code = _entity_code(p.entity)
    rows = []
    first = figures[0][0]
    names = [*steps, None]
    for i, (count, amount) in enumerate(figures):
        stage = names[i]
        amount = money(amount)
        nxt = figures[i + 1] if i + 1 < len(figures) else None
        row = {"key": stage.pk if stage else "won", "label": stage.name if stage else _("Success"),
               "reached": count, "amount": amount, "of_first": pct(count, first),
               "dropped": (count - nxt[0]) if nxt is not None else None,
               "dropped_amount": money(amount - money(nxt[1])) if nxt is not None else None,
               "drop_rate": pct(count - nxt[0], count) if nxt is not None else None,
               "filter": {**row_filter(p, None), **({"reached_stage": str(stage.pk)} if stage else {"semantics": "success"})}}
        rows.append(row)
    lost = [{"key": s.pk, "label": s.name, "count": lost_at[s.pk][0], "amount": money(lost_at[s.pk][1]),
             "filter": {**row_filter(p, None), "stage": str(s.pk)}} for s in stages if s.semantics == "failure"]
    cols = [Column("reached", _("Reached"), entity=code), Column("amount", _("Amount"), "money"),
            Column("of_first", _("Of the first stage"), "percent"), Column("dropped", _("Dropped after")),
            Column("dropped_amount", _("Amount dropped"), "money"), Column("drop_rate", _("Drop-off"), "percent")]
    return Report("funnel", _("Stage funnel: %(p)s") % {"p": _pipe_name(pipe)}, p, cols, rows,
                  {"reached": first, "won": figures[-1][0]}, chart="funnel", chart_value="reached",
                  notes=[_("Items created in the period and now in this pipeline. An item reached a stage if it ever "
                           "entered it or a later one (moving back does not un-count it; skipping stages passes "
                           "through them, and so does winning); «Success» counts items won now (a re-opened deal is "
                           "not).")],
                  details={"lost": lost, **_source(rm),
                           **({"away": {"label": _("In complaints now"), "count": len(away),
                                        "amount": money(sum((x for _r, x in away.values()), ZERO))}} if away else {})})


# --- deal amount ---------------------------------------------------------------------------------------

def deal_amount(actor: Actor, p: Params) -> Report:
    from voronka.pipelines import stays

    rm = readmodel.rows(actor, p, DEAL, durations=True)
    if rm is not None and not stays.amounts_complete(DEAL):
        rm = None
    if rm is not None:  # the amounts' histograms: count, sum and average exact, the median within the bound
        per_h = {key: h for (key,), h in readmodel.histograms(readmodel.days(rm.filter(kind="amount"), p), p).items()}
        data = {k: _amount_cells_of_histogram(h) for k, h in per_h.items()}
        total = stays.Histogram()
        for h in per_h.values():
            for b, (c, v) in h.buckets.items():
                total.add(b, c, v)
        totals = _amount_cells_of_histogram(total)
    else:
        qs = in_period(items(actor, p, DEAL).filter(stage_semantics="success"), p, "closed_at")
        per: dict = defaultdict(list)
        for key, amount in _grouped_values(qs, p, "closed_at", "opportunity"):
            per[key].append(Decimal(amount or 0))
        data = {k: _amount_cells(v) for k, v in per.items()}
        totals = _amount_cells([v for vs in per.values() for v in vs])
    rows = make_rows(p, data, time_field="closed")
    for r in rows:
        r.setdefault("won", 0)
        r.setdefault("sum", ZERO)
    cols = [Column("won", _("Won deals"), entity="deal", filter={"semantics": "success"}),
            Column("sum", _("Amount"), "money"), Column("avg", _("Average"), "money"),
            Column("median", _("Median"), "money")]
    notes = [_("Deals won (now in a success stage) and closed in the period, by the day they were closed.")]
    if rm is not None:
        notes.append(_("Medians are read from histograms of the amounts: within %(pct)s %% of the exact value; "
                       "counts, sums and averages are exact.") % {"pct": f"{stays.ERROR_BOUND * 100:.2f}"})
    return Report("deal-amount", _("Average and median deal amount"), p, cols, rows, totals,
                  chart_value="avg", notes=notes, details=_source(rm))


def _amount_cells_of_histogram(h) -> dict:
    """``_amount_cells`` from a histogram of amounts in cents (``pipelines.stays``, kind ``amount``)."""
    n = h.count
    total = Decimal(h.total) / 100
    med = h.median()
    return {"won": n, "sum": money(total), "avg": money(total / n) if n else None,
            "median": money(Decimal(repr(med)) / 100) if med is not None else None}


def _amount_cells(values) -> dict:
    return {"won": len(values), "sum": money(sum(values, ZERO)),
            "avg": money(sum(values, ZERO) / len(values)) if values else None,
            "median": money(statistics.median(values)) if values else None}


# --- lost reasons ----------------------------------------------------------------------------------------

def lost_reasons(actor: Actor, p: Params) -> Report:
    from voronka.pipelines.models import Stage

    qs = in_period(items(actor, p, p.entity).filter(stage_semantics="failure"), p, "closed_at")
    reason_field = p.extra.get("reason_field", "")
    if reason_field:
        from voronka.customfields.models import FieldDefinition

        if not FieldDefinition.objects.filter(entity_type_id=p.entity, code=reason_field).exists():
            raise ValidationFailed(_("No custom field «%(c)s».") % {"c": reason_field},
                                   fields={"reason_field": [_("not found")]})
    counts: dict = defaultdict(lambda: {"count": 0, "amount": ZERO})
    rm = None if reason_field else readmodel.rows(actor, p, p.entity)
    if rm is not None:
        failures = {pk for pk, sem in _semantics().items() if sem == "failure"}
        closed = rm.filter(kind="closed", stage_id__in=sorted(failures), stages_as_row_filter=True)
        for stage_id, n, amount in readmodel.sums(readmodel.days(closed, p), "stage_id"):
            if n:
                counts[(stage_id, "")] = {"count": n, "amount": amount or ZERO}
        qs = qs.none()
    for stage_id, custom, amount in qs.values_list("stage_id", "custom", "opportunity").iterator(chunk_size=5000):
        reason = ""
        if reason_field:
            value = (custom or {}).get(reason_field)
            reason = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
        slot = counts[(stage_id, reason)]
        slot["count"] += 1
        slot["amount"] += Decimal(amount or 0)
    names = dict(Stage.objects.filter(pk__in={k[0] for k in counts}).values_list("id", "name"))
    total = sum(v["count"] for v in counts.values())
    base = row_filter(p, None, time_field="closed")
    base["semantics"] = "failure"
    rows = []
    # most first; ties in stage order, so that the order does not depend on the order the database returns rows in
    for (stage_id, reason), v in sorted(counts.items(), key=lambda kv: (-kv[1]["count"], kv[0][0], kv[0][1])):
        label = names.get(stage_id, "?") + (f": {reason}" if reason else "")
        f = {**base, "stage": str(stage_id)}
        if reason_field and reason:
            f[f"cf_{reason_field}"] = reason
        rows.append({"key": f"{stage_id}:{reason}", "label": label, "count": v["count"], "amount": money(v["amount"]),
                     "share": pct(v["count"], total), "filter": f})
    code = _entity_code(p.entity)
    cols = [Column("count", _("Lost"), entity=code), Column("amount", _("Amount"), "money"),
            Column("share", _("Share"), "percent")]
    return Report("lost-reasons", _kind_title(_("Lost reasons"), p), p, cols, rows,
                  {"count": total, "amount": money(sum((v["amount"] for v in counts.values()), ZERO))},
                  chart="shares", chart_value="count",
                  notes=[_("Items now in a failure stage that were closed in the period: by the failure stage and, "
                           "when a reason field is chosen, by its value.")], details=_source(rm))


# --- time to close ---------------------------------------------------------------------------------------

def time_to_close(actor: Actor, p: Params) -> Report:
    rm = readmodel.rows(actor, p, p.entity, durations=True)
    if rm is not None:  # histograms of the durations (medians within the bound of ``pipelines.stays``)
        from voronka.pipelines.stays import Histogram

        semantics = _semantics()
        per: dict = defaultdict(lambda: {"success": Histogram(), "failure": Histogram()})
        allv = {"success": Histogram(), "failure": Histogram()}
        for (key, stage_id), h in readmodel.histograms(readmodel.days(rm.filter(kind="close"), p), p,
                                                       "stage_id").items():
            sem = semantics.get(stage_id)
            if sem in allv:
                for target in (per[key][sem], allv[sem]):
                    for b, (c, sec) in h.buckets.items():
                        target.add(b, c, sec)
        cells = _close_cells_of_histograms
    else:
        qs = in_period(items(actor, p, p.entity).exclude(stage_semantics="process"), p, "closed_at")
        per = defaultdict(lambda: {"success": [], "failure": []})
        for key, sem, created, closed in _grouped_values(qs, p, "closed_at", "stage_semantics", "created_at",
                                                         "closed_at"):
            per[key][sem].append(float(max(0, int((closed - created).total_seconds()))))  # whole seconds
        allv = {"success": [x for v in per.values() for x in v["success"]],
                "failure": [x for v in per.values() for x in v["failure"]]}
        cells = _close_cells
    data = {k: cells(v) for k, v in per.items()}
    rows = make_rows(p, data, time_field="closed")
    for r in rows:
        r.setdefault("won", 0)
        r.setdefault("lost", 0)
    code = _entity_code(p.entity)
    cols = [Column("won", _("Won"), entity=code, filter={"semantics": "success"}),
            Column("won_avg", _("Won: average"), "duration"), Column("won_median", _("Won: median"), "duration"),
            Column("lost", _("Lost"), entity=code, filter={"semantics": "failure"}),
            Column("lost_avg", _("Lost: average"), "duration"), Column("lost_median", _("Lost: median"), "duration")]
    return Report("time-to-close", _kind_title(_("Time to close"), p), p, cols, rows, cells(allv),
                  chart_value="won_median",
                  notes=[_("From creation to the last closing, for items closed in the period. A re-opened item "
                           "counts once, by its last closing."), *_duration_note(rm)], details=_source(rm))


def _close_cells_of_histograms(v) -> dict:
    won, lost = v["success"], v["failure"]
    return {"won": won.count, "won_avg": won.mean(), "won_median": won.median(),
            "lost": lost.count, "lost_avg": lost.mean(), "lost_median": lost.median()}


def _duration_note(rm) -> list[str]:
    from voronka.pipelines.stays import ERROR_BOUND

    if rm is None:
        return []
    return [_("Medians and percentiles come from the durations' read model: each is within %(pct)s %% of the exact "
              "value (exact when the durations around it are equal); counts and averages are exact.")
            % {"pct": f"{100 * ERROR_BOUND:.0f}"}]


def _close_cells(v) -> dict:
    return {"won": len(v["success"]), "won_avg": mean(v["success"]), "won_median": median(v["success"]),
            "lost": len(v["failure"]), "lost_avg": mean(v["failure"]), "lost_median": median(v["failure"])}


# --- time in each stage --------------------------------------------------------------------------------

SLOWEST = 5


def stage_time(actor: Actor, p: Params) -> Report:
    from voronka.pipelines.models import Stage, StageHistory

    pipe = _pipeline(p, p.entity)
    p.pipeline = pipe.pk
    stages = list(Stage.objects.filter(pipeline=pipe).order_by("sort", "id"))
    visible = items(actor, p, p.entity, pipeline=False)
    process = [s.pk for s in stages if s.semantics == "process"]
    history = StageHistory.objects.filter(entity_type_id=p.entity, seconds_in_previous__isnull=False)
    if connection.vendor == "sqlite":
        # SQLite otherwise runs «entity_id IN (the readable records)» as the driver of every query below: it walks
        # all readable records (1M at 1M) and probes each one's history (6 s a query at 1M). A correlated check of
        # each history row against its record's primary key lets the (stage, seconds) and time indexes lead.
        history = history.filter(Exists(visible.filter(pk=OuterRef("entity_id"))))
    else:  # PostgreSQL: a hashed semi-join
        history = history.filter(entity_id__in=visible.values("id"))
    history = in_period(history, p, "moved_at")
    rm = readmodel.rows(actor, p, p.entity, pipeline=False, durations=True)
    if rm is not None:  # histograms of the durations (medians within the bound of ``pipelines.stays``)
        per_stage = {stage_id: h for (_k, stage_id), h in readmodel.histograms(
            readmodel.days(rm.filter(kind="stay", stage_id__in=process), p, by_time=False), p, "stage_id",
            grouped_by=False).items()}
        figures = {sid: (h.count, h.median(), h.p90(), h.mean()) for sid, h in per_stage.items()}
    else:
        done_of: dict[int, list[float]] = defaultdict(list)
        for stage_id, seconds in history.filter(from_stage_id__in=process).values_list("from_stage_id",
                                                                                      "seconds_in_previous"):
            done_of[stage_id].append(float(seconds))
        figures = {sid: (len(v), median(v), p90(v), mean(v)) for sid, v in done_of.items()}
    # the slowest ended stays: per stage, the longest few from the (stage, seconds) index
    stays: dict[int, list[tuple[float, int, bool]]] = defaultdict(list)
    for stage_id in process:
        slow = history.filter(from_stage_id=stage_id)
        if connection.vendor == "sqlite":  # the period as «+moved_at», which is not an index: SQLite then reads the
            # stage's stays from the longest down (stagehist_slowest_idx) and stops at the fifth in the period
            slow = StageHistory.objects.filter(entity_type_id=p.entity, seconds_in_previous__isnull=False,
                                               from_stage_id=stage_id) \
                .filter(Exists(visible.filter(pk=OuterRef("entity_id")))) \
                .alias(moved=Func(F("moved_at"), template="+%(expressions)s", output_field=DateTimeField())) \
                .filter(moved__gte=p.start, moved__lt=p.end)
        if rm is not None and stage_id in per_stage:  # the histogram says from which duration on the five lie
            slow = slow.filter(seconds_in_previous__gte=per_stage[stage_id].floor_of_top(SLOWEST))
        for pk, seconds in slow.order_by("-seconds_in_previous", "id") \
                .values_list("entity_id", "seconds_in_previous")[:SLOWEST]:
            stays[stage_id].append((float(seconds), pk, False))
    now_items = visible.filter(pipeline=pipe, stage_semantics="process")
    # items in a stage now: counted by the database; only the longest-waiting few per stage are read
    board = readmodel.board_rows(actor, p, p.entity, pipeline=False) if rm is not None else None
    if board is not None:  # the board's read model, narrowed by the same rights and filters (no source filter)
        now_count = {sid: n for sid, n, _a in readmodel.sums(board.filter(pipeline_id=pipe.pk, stage_id__in=process),
                                                              "stage_id") if n}
    else:
        now_count = dict(now_items.values("stage_id").annotate(n=Count("id")).order_by().values_list("stage_id", "n"))
    ongoing: dict[int, list] = defaultdict(list)
    for stage_id in now_count:
        for pk, since in now_items.filter(stage_id=stage_id).order_by("stage_changed_at", "id").values_list(
                "id", "stage_changed_at")[:SLOWEST]:
            ongoing[stage_id].append((max(0.0, (p.now - since).total_seconds()), pk, True))
    titles_needed: set[int] = set()
    rows = []
    for s in stages:
        if s.semantics != "process":
            continue
        left, med, pct90, avg = figures.get(s.pk, (0, None, None, None))
        slowest = sorted(stays[s.pk] + ongoing[s.pk], key=lambda x: -x[0])[:SLOWEST]
        titles_needed.update(pk for _s, pk, _o in slowest)
        rows.append({"key": s.pk, "label": s.name, "left": left, "median": med, "p90": pct90,
                     "avg": avg, "now": now_count.get(s.pk, 0),
                     "now_max": max((x[0] for x in ongoing[s.pk]), default=None), "slowest": slowest,
                     "filter": {**row_filter(p, None, time_field="moved"), "stage": str(s.pk)}})
    model = entity_types.get(p.entity).model
    titles = dict(model.objects.filter(pk__in=titles_needed).values_list("id", "title"))
    for r in rows:
        r["slowest"] = [{"id": pk, "title": titles.get(pk, f"#{pk}"), "seconds": sec, "ongoing": on}
                        for sec, pk, on in r["slowest"]]
        for f in ("moved_from", "moved_to"):
            r["filter"].pop(f, None)
    code = _entity_code(p.entity)
    cols = [Column("left", _("Stays ended")), Column("median", _("Median"), "duration"),
            Column("p90", _("90th percentile"), "duration"), Column("avg", _("Average"), "duration"),
            Column("now", _("In the stage now"), entity=code), Column("now_max", _("Longest now"), "duration")]
    return Report("stage-time", _("Time in each stage: %(p)s") % {"p": _pipe_name(pipe)}, p, cols, rows, {},
                  chart_value="median",
                  notes=[_("A stay ends when the item leaves the stage; stays that ended in the period count, each "
                           "visit separately (an item that comes back is counted again). The slowest items include "
                           "those still in the stage."), *_duration_note(rm)], details=_source(rm))


# --- manager load and efficiency (F41, F49) -----------------------------------------------------------

def _sees_everything(actor: Actor, type_id: int) -> bool:
    from voronka.core import policies

    model = entity_types.get(type_id).model
    return not policies.visible(actor, type_id, model.objects.all()).query.where


def _open_load(actor: Actor, p: Params, type_id: int, qs: QuerySet) -> dict:
    """{responsible id: {"n": open items, "amount": their amount}} from the board's read model (``StageTotal``, kept
    in the same transaction as every write): for a viewer who reads every record, with no filter but the pipeline
    and the responsible; for one who reads part of them, under his rights as the reports' rows are (no source or
    custom-field filter; the records he observes beyond his rights added, ``readmodel.board_rows``). Otherwise the
    records are counted."""
    from voronka.pipelines.models import Stage, StageTotal

    everything = _sees_everything(actor, type_id)
    totals = None
    if everything and not (p.source or p.department is not None or p.custom):
        qs = StageTotal.objects.filter(entity_type_id=type_id, stage_id__in=Stage.objects.filter(
            semantics="process", pipeline__entity_type_id=type_id).values("id"))
        if p.pipeline is not None:
            qs = qs.filter(pipeline_id=p.pipeline)
        if p.responsible is not None:
            qs = qs.filter(responsible_id=p.responsible)
        totals = readmodel.Rows(qs)
    elif not everything and readmodel.ENABLED and not (p.source or p.custom):
        # a viewer who reads part of the records: the same rows under his rights (responsible, «open», pipeline),
        # exactly as the rows of the reports, with the records he observes beyond his rights
        board = readmodel.board_rows(actor, p, type_id)
        if board is not None:
            totals = board.filter(stage_id__in=sorted(sid for sid, sem in _semantics().items() if sem == "process"))
    if totals is not None:
        out: dict = {}
        for uid, n, amount in readmodel.sums(totals, "responsible_id"):
            if n:
                out[uid or None] = {"n": n, "amount": amount}
        return out
    return {r["responsible_id"]: r for r in qs.filter(stage_semantics="process").values("responsible_id")
            .annotate(n=Count("id"), amount=Sum("opportunity")).order_by()}


def _manager_figures_of_model(actor: Actor, p: Params):
    """The managers' efficiency in the period from the read models (new leads and those with a deal, won and closed
    deals with the won amount, the median time to win within the histograms' bound), per responsible; None when a
    read model cannot answer."""
    from voronka.pipelines import daily

    lead_rm, deal_rm = readmodel.rows(actor, p, LEAD), readmodel.rows(actor, p, DEAL)
    stay_rm = readmodel.rows(actor, p, DEAL, durations=True)
    if lead_rm is None or deal_rm is None or stay_rm is None or not daily.conversion_complete():
        return None
    success = sorted(sid for sid, sem in _semantics().items() if sem == "success")
    lead_rows: dict = {}
    for uid, kind, n, _a in readmodel.sums(readmodel.days(lead_rm.filter(kind__in=("created", "deal")), p,
                                                          by_time=False), "responsible_id", "kind"):
        if n:
            slot = lead_rows.setdefault(uid or None, {"n": 0})
            if kind == "created":
                slot["n"] += n
            else:
                slot["conv"] = slot.get("conv", 0) + n
    won: dict = {}
    closed_n: dict = {}
    for uid, stage_id, n, amount in readmodel.sums(readmodel.days(deal_rm.filter(kind="closed"), p, by_time=False),
                                                    "responsible_id", "stage_id"):
        if not n:
            continue
        closed_n[uid or None] = closed_n.get(uid or None, 0) + n
        if stage_id in success:
            slot = won.setdefault(uid or None, {"n": 0, "amount": ZERO})
            slot["n"] += n
            slot["amount"] += amount or ZERO
    close_median = {(uid or None): h.median() for (_k, uid), h in readmodel.histograms(
        readmodel.days(stay_rm.filter(kind="close", stage_id__in=success, stages_as_row_filter=True), p,
                       by_time=False), p, "responsible_id",
        grouped_by=False).items()}
    return lead_rows, won, closed_n, close_median


def managers(actor: Actor, p: Params) -> Report:
    from voronka.activities.models import Task
    from voronka.activities.selectors import narrow_to_visible
    from voronka.identity.models import User

    leads = items(actor, p, LEAD)
    deals_qs = items(actor, p, DEAL)
    open_leads = {uid: r["n"] for uid, r in _open_load(actor, p, LEAD, leads).items()}
    open_deals = _open_load(actor, p, DEAL, deals_qs)
    new = in_period(leads, p, "created_at")
    figures = _manager_figures_of_model(actor, p)
    if figures is not None:  # the daily totals and the histograms of time to close, per responsible
        lead_rows, won, closed_n, close_median = figures
    else:
        lead_rows = {r["responsible_id"]: r for r in new.values("responsible_id").annotate(n=Count("id")).order_by()}
        for uid, n in new.filter(pk__in=_with_deal()).values("responsible_id").annotate(n=Count("id")).order_by() \
                .values_list("responsible_id", "n"):
            lead_rows.setdefault(uid, {"n": 0})["conv"] = n
        won = {r["responsible_id"]: r for r in in_period(deals_qs.filter(stage_semantics="success"), p, "closed_at")
               .values("responsible_id").annotate(n=Count("id"), amount=Sum("opportunity")).order_by()}
        closed = in_period(deals_qs.exclude(stage_semantics="process"), p, "closed_at")
        closed_n = dict(closed.values("responsible_id").annotate(n=Count("id")).order_by()
                        .values_list("responsible_id", "n"))
        close_times: dict = defaultdict(list)
        for uid, created, at in closed.filter(stage_semantics="success").values_list("responsible_id", "created_at",
                                                                                      "closed_at"):
            close_times[uid].append(_whole_seconds(created, at))
        close_median = {uid: median(v) for uid, v in close_times.items()}
    speed_rm = _speed_model(actor, p)
    if speed_rm is not None:  # the time to first action from its histograms, per responsible (median within the bound)
        first_median = {(uid or None): h.median() for (_k, uid), h in readmodel.histograms(
            readmodel.days(speed_rm.filter(kind="first"), p, by_time=False), p, "responsible_id",
            grouped_by=False).items()}
    else:
        first = first_actions(new.values("id"))
        speed: dict = defaultdict(list)
        for pk, uid, created in new.values_list("id", "responsible_id", "created_at"):
            if pk in first:
                speed[uid].append(_whole_seconds(created, first[pk]))
        first_median = {uid: median(v) for uid, v in speed.items()}
    user_ids = ({u for u in open_leads} | set(open_deals) | set(lead_rows) | set(won)) - {None}
    # only the tasks the viewer may see (his own, or on a record he may read): a listed person's task on a record of
    # another department does not count for a head who cannot read that record
    overdue = dict(narrow_to_visible(actor, Task.objects.filter(responsible_id__in=sorted(user_ids), status="open",
                                                                deadline__lt=p.now))
                   .values("responsible_id").annotate(n=Count("id")).order_by().values_list("responsible_id", "n"))
    users = {u.pk: u for u in User.objects.filter(pk__in=user_ids)}
    rows = []
    for uid in sorted(user_ids, key=lambda i: str(users.get(i, ""))):
        base = {**row_filter(p, None), "responsible": str(uid)}
        for k in ("created_from", "created_to"):
            base.pop(k)
        lr = lead_rows.get(uid, {})
        rows.append({
            "key": uid, "label": str(users.get(uid, uid)), "filter": base,
            "open_leads": open_leads.get(uid, 0), "open_deals": open_deals.get(uid, {}).get("n", 0),
            "open_amount": money(open_deals.get(uid, {}).get("amount")), "overdue_tasks": overdue.get(uid, 0),
            "new_leads": lr.get("n", 0), "conversion": pct(lr.get("conv", 0), lr.get("n", 0)),
            "first_median": first_median.get(uid),
            "won": won.get(uid, {}).get("n", 0), "won_amount": money(won.get(uid, {}).get("amount")),
            "win_rate": pct(won.get(uid, {}).get("n", 0), closed_n.get(uid, 0)),
            "close_median": close_median.get(uid),
        })
    totals = _totals(rows, ["open_leads", "open_deals", "open_amount", "overdue_tasks", "new_leads", "won",
                            "won_amount"])
    cols = [Column("open_leads", _("Open leads"), entity="lead", filter={"semantics": "process"}),
            Column("open_deals", _("Open deals"), entity="deal", filter={"semantics": "process"}),
            Column("open_amount", _("Open amount"), "money"), Column("overdue_tasks", _("Overdue tasks")),
            Column("new_leads", _("New leads in the period")), Column("conversion", _("Lead → deal"), "percent"),
            Column("first_median", _("To first action, median"), "duration"),
            Column("won", _("Won in the period")), Column("won_amount", _("Won amount"), "money"),
            Column("win_rate", _("Won of closed"), "percent"),
            Column("close_median", _("Time to win, median"), "duration")]
    return Report("managers", _("Manager load and efficiency"), p, cols, rows, totals, chart_value="won_amount",
                  notes=[_("Load is now (open items, tasks past their deadline); efficiency is over the period. "
                           "Only the people whose records you may read are listed."),
                         *_duration_note(figures if figures is not None and speed_rm is not None else None)],
                  details=_source(figures if figures is not None and speed_rm is not None else None))


# --- support requests per company and contact (F49) ----------------------------------------------------

SUPPORT_WORDS = ("support", "service", "complaint", "claim", "поддерж", "сервис", "реклам", "жалоб", "претенз")


def support_pipelines(p: Params) -> list[int]:
    from voronka.pipelines.models import Pipeline

    if p.pipeline is not None:
        return [p.pipeline]
    out = []
    for pk, code, name in Pipeline.objects.filter(entity_type_id=DEAL).values_list("id", "code", "name"):
        word = f"{code} {name}".lower()
        if any(w in word for w in SUPPORT_WORDS):
            out.append(pk)
    return out


def support(actor: Actor, p: Params) -> Report:
    from voronka.parties.models import Company, Contact

    pipes = support_pipelines(p)
    qs = in_period(items(actor, p, DEAL, pipeline=False).filter(pipeline_id__in=pipes), p, "created_at")
    by = p.extra.get("by", "company")
    if by not in ("company", "contact"):
        raise ValidationFailed(_("Count by company or by contact."), fields={"by": [_("company or contact")]})
    agg = (qs.values(f"{by}_id").annotate(n=Count("id"), open=Count("id", filter=Q(stage_semantics="process")),
                                          solved=Count("id", filter=Q(stage_semantics="success")))
           .order_by("-n")[:200])
    agg = list(agg)
    model = Company if by == "company" else Contact
    names = {o.pk: str(o) for o in model.objects.filter(pk__in=[r[f"{by}_id"] for r in agg if r[f"{by}_id"]])}
    rows = []
    base = row_filter(p, None)
    base.pop("pipeline", None)
    for r in agg:
        key = r[f"{by}_id"]
        # each number opens the deals behind it: the client's, in the support pipelines, created in the period
        f = {**base, "pipeline": ",".join(str(x) for x in pipes), by: str(key) if key else "none"}
        rows.append({"key": key, "label": names.get(key, _("(not set)")) if key else _("(not set)"),
                     "requests": r["n"], "open": r["open"], "solved": r["solved"], "filter": f})
    cols = [Column("requests", _("Requests"), entity="deal"),
            Column("open", _("Open"), entity="deal", filter={"semantics": "process"}),
            Column("solved", _("Solved"), entity="deal", filter={"semantics": "success"})]
    return Report("support", _("Support requests per company and contact"), p, cols, rows,
                  _totals(rows, ["requests", "open", "solved"]), chart="shares", chart_value="requests",
                  notes=[_("A request is a deal created in the period in a support pipeline: the one chosen, or every "
                           "deal pipeline whose name or code says support, service, complaint or claim.")],
                  details={"pipelines": pipes})


# --- end to end: lead → sales deal → production / complaint (F48) --------------------------------------

OUTCOMES = ("lead_open", "lead_lost", "deal_open", "deal_lost", "in_complaints", "won", "delivered",
            "downstream_failed")


def _chain_columns(actor: Actor, p: Params, converted: QuerySet, per: dict, trips: dict, *, all_deals: bool,
                   count_leads: bool) -> None:
    """Add the leads with a sales deal (``converted``) from their ``chain_*`` columns, summed by the database in one
    statement: revenue and cost only where the viewer may read the sales deal; a sales deal away on a round trip
    counts as «in complaints» (its items and cost still count, its revenue does not)."""
    readable = Q() if all_deals else Q(chain_deal__in=records_visible_to(actor, DEAL).values("id"))
    away = Q(chain_deal__in=sorted(trips)) if trips else Q(pk__in=[])
    here = ~away if trips else Q()

    def only(q: Q) -> dict:
        return {"filter": q} if q else {}

    sums = {f"o{c}": Count("id", filter=here & Q(chain_outcome=c)) for c in OUTCOME_OF}
    for key, v in _grouped(converted, p, "created_at", n=Count("id"), away=Count("id", filter=away),
                           items=Sum("chain_items"), revenue=Sum("chain_revenue", **only(here & readable)),
                           cost=Sum("chain_cost", **only(readable)), **sums).items():
        slot = per[key]
        if count_leads:
            slot["leads"] += v["n"]
        slot["converted"] += v["n"]
        slot["in_complaints"] += v["away"]
        slot["downstream"] += v["items"] or 0
        slot["cost"] += Decimal(v["cost"] or 0)
        slot["revenue"] += Decimal(v["revenue"] or 0)
        for c, name in OUTCOME_OF.items():
            slot[name] += v[f"o{c}"]


def _chain_followed(actor: Actor, p: Params, leads: QuerySet, per: dict, trips: dict) -> None:
    """Every lead of ``leads``, its outcome computed now by following its chain (``outcome.outcomes``): the
    columns were not built yet."""
    from voronka.deals import outcome

    has_deal = Q(pk__in=_with_deal())
    for key, v in _grouped(leads.exclude(has_deal), p, "created_at", n=Count("id"),
                           lost=Count("id", filter=Q(stage_semantics="failure"))).items():
        per[key]["leads"] += v["n"]
        per[key]["lead_lost"] += v["lost"]
    lead_rows = _grouped_values(leads.filter(has_deal), p, "created_at", "id", "stage_semantics")
    found = outcome.outcomes([r[1] for r in lead_rows])
    deal_ids = sorted(o.deal for o in found.values())
    readable: set[int] = set()
    visible = records_visible_to(actor, DEAL)
    for i in range(0, len(deal_ids), outcome.CHUNK):
        readable.update(visible.filter(pk__in=deal_ids[i:i + outcome.CHUNK]).values_list("id", flat=True))
    for key, lead_id, lead_sem in lead_rows:
        slot = per[key]
        slot["leads"] += 1
        o = found.get(lead_id)
        if o is None:
            slot["lead_lost"] += lead_sem == "failure"
            continue
        slot["converted"] += 1
        slot["downstream"] += o.items
        if o.deal in readable:
            slot["cost"] += o.cost
        if o.deal in trips:
            slot["in_complaints"] += 1
            continue
        slot[OUTCOME_OF[o.code]] += 1
        if o.deal in readable:
            slot["revenue"] += o.revenue


OUTCOME_OF = {1: "deal_open", 2: "deal_lost", 3: "won", 4: "delivered", 5: "downstream_failed"}  # deals.outcome codes


def _chain_from_rows(rm, p: Params, per: dict, *, money: bool) -> None:
    """Counts (and, with ``money``, revenue and cost) from the daily totals' ``chain…`` rows, which carry each lead
    once under its own dimensions (so the viewer's rights on leads and the report's filters narrow them as every
    report's rows): a lead's outcome as stored, its sales deal wherever it is now."""
    from voronka.pipelines import daily

    kinds = ["created", f"{daily.CHAIN_KIND}0", daily.CHAIN_ITEMS, *(f"{daily.CHAIN_KIND}{c}" for c in OUTCOME_OF)]
    for key, kind, n, amount in readmodel.grouped(readmodel.days(rm.filter(kind__in=kinds), p), p, "kind"):
        slot = per[key]
        if kind == "created":
            slot["leads"] += n
        elif kind == f"{daily.CHAIN_KIND}0":
            slot["lead_lost"] += n
        elif kind == daily.CHAIN_ITEMS:
            slot["downstream"] += n
            if money:
                slot["cost"] += Decimal(amount or 0)
        else:
            slot["converted"] += n
            slot[OUTCOME_OF[int(kind[len(daily.CHAIN_KIND):])]] += n
            if money:
                slot["revenue"] += Decimal(amount or 0)


def _chain_trips(leads: QuerySet, p: Params, per: dict, trips: dict, *, money: bool) -> None:
    """The leads whose sales deal is away on a round trip now (``trips``, a handful): the rows counted them under
    their stored outcome; they move to «in complaints», their items and cost stay, and with ``money`` (the rows'
    sums are the figures) their revenue is taken off. Found through the deals (a lead's sales deal is one of its
    own deals, ``Deal.lead_id``), not by reading the period's leads."""
    from voronka.deals.models import Deal

    ids = sorted(trips)
    for i in range(0, len(ids), roundtrip.CHUNK):
        part = ids[i:i + roundtrip.CHUNK]
        qs = leads.filter(pk__in=Deal.objects.filter(pk__in=part).values("lead_id"), chain_deal__in=part,
                          chain_outcome__gt=0)
        for key, code, revenue in _grouped_values(qs, p, "created_at", "chain_outcome", "chain_revenue"):
            slot = per[key]
            slot[OUTCOME_OF[code]] -= 1
            slot["in_complaints"] += 1
            if money:
                slot["revenue"] -= Decimal(revenue or 0)


def _chain_money(actor: Actor, p: Params, per: dict, trips: dict, *, pipeline: bool) -> None:
    """Revenue and cost of the converted leads the viewer reads, counted only where he may also read the sales deal,
    from the leads' columns (the partial index ``lead_chain_idx`` holds just the converted leads, by responsible).
    The leads his roles let him read and the few he observes beyond them are summed apart, and the readable deals
    are those his roles cover plus those he observes: no «or observed» subquery keeps the database off its indexes."""
    from voronka.deals.models import Deal

    seen = readmodel.observed_beyond_rights(actor, DEAL)
    if len(seen) > readmodel.MAX_OBSERVED:  # the list is cut there: ask the rights with their observers
        readable = Q(chain_deal__in=records_visible_to(actor, DEAL).values("id"))
    else:
        readable = Q(chain_deal__in=policies.visible(actor, DEAL, Deal.objects.filter(deleted_at__isnull=True),
                                                     observers=False).values("id"))
        if seen:
            readable |= Q(chain_deal__in=seen)
    here = {"filter": ~Q(chain_deal__in=sorted(trips))} if trips else {}
    parts = [items(actor, p, LEAD, pipeline=pipeline, observers=False)]
    extra = readmodel.observed_beyond_rights(actor, LEAD)  # at most MAX_OBSERVED: the rows apply
    if extra:
        parts.append(items(actor, p, LEAD, pipeline=pipeline).filter(pk__in=extra))
    for qs in parts:
        for key, v in _grouped(in_period(qs, p, "created_at").filter(readable, chain_outcome__gt=0), p, "created_at",
                               revenue=Sum("chain_revenue", **here), cost=Sum("chain_cost")).items():
            per[key]["revenue"] += Decimal(v["revenue"] or 0)
            per[key]["cost"] += Decimal(v["cost"] or 0)


def end_to_end(actor: Actor, p: Params) -> Report:
    """Every lead of the period once, with its end-to-end outcome (``voronka/deals/outcome.py``, kept on the lead by
    the deals' and links' writes). Three ways, the same figures: the daily totals' ``chain…`` rows when the read
    model applies (under the viewer's rights on leads, as every report's rows; revenue and cost then come from the
    rows when he reads every deal, else from the converted leads' columns, counting only the deals he may read);
    else the leads' ``chain_*`` columns, summed by the database under the viewer's rights; else (columns not built
    yet: a bulk load before ``analytics-rebuild``) the chains followed by ``outcome.outcomes``. A sales deal away on
    a round trip (in Complaints) is decided now, from the stored sales deal: «in complaints», no revenue."""
    from voronka.pipelines import daily

    lead_pipe = p.entity == LEAD
    per: dict = defaultdict(lambda: {k: 0 for k in ("leads", "converted", *OUTCOMES, "downstream")} |
                            {"revenue": ZERO, "cost": ZERO})
    leads = in_period(items(actor, p, LEAD, pipeline=lead_pipe), p, "created_at")
    built = daily.chain_complete()
    all_deals = _sees_everything(actor, DEAL)
    rm = readmodel.rows(actor, p, LEAD, pipeline=lead_pipe) if built else None
    trips = roundtrip.away(DEAL)
    if rm is not None:
        _chain_from_rows(rm, p, per, money=all_deals)
        if trips:
            _chain_trips(leads, p, per, trips, money=all_deals)
        if not all_deals:
            _chain_money(actor, p, per, trips, pipeline=lead_pipe)
    elif built:
        for key, v in _grouped(leads.filter(chain_outcome=0), p, "created_at", n=Count("id"),
                               lost=Count("id", filter=Q(stage_semantics="failure"))).items():
            per[key]["leads"] += v["n"]
            per[key]["lead_lost"] += v["lost"]
        _chain_columns(actor, p, leads.filter(chain_outcome__gt=0), per, trips, all_deals=all_deals,
                       count_leads=True)
    else:
        _chain_followed(actor, p, leads, per, trips)
    for slot in per.values():
        slot["lead_open"] = slot["leads"] - slot["converted"] - slot["lead_lost"]
    data = {k: {**v, "revenue": money(v["revenue"]), "cost": money(v["cost"]),
                "won_total": v["won"] + v["delivered"] + v["downstream_failed"]} for k, v in per.items()}
    rows = make_rows(p, data)
    keys = ["leads", "converted", *OUTCOMES, "won_total", "downstream", "revenue", "cost"]
    for r in rows:
        for k in keys:
            r.setdefault(k, ZERO if k in ("revenue", "cost") else 0)
        r["won_rate"] = pct(r["won_total"], r["leads"])
    totals = _totals(rows, keys)
    totals["revenue"], totals["cost"] = money(totals["revenue"]), money(totals["cost"])
    totals["won_rate"] = pct(totals["won_total"], totals["leads"])
    cols = [Column("leads", _("Leads"), entity="lead"), Column("lead_open", _("Lead in work")),
            Column("lead_lost", _("Lost as a lead")), Column("converted", _("Became a sales deal")),
            Column("deal_open", _("Deal in work")), Column("deal_lost", _("Deal lost")),
            Column("in_complaints", _("Deal in complaints")),
            Column("won", _("Won, not yet delivered")), Column("delivered", _("Won and delivered")),
            Column("downstream_failed", _("Won, production or complaint failed")),
            Column("won_total", _("Won in all")), Column("won_rate", _("Lead → won"), "percent"),
            Column("revenue", _("Revenue (sales deals only)"), "money"),
            Column("downstream", _("Production and complaint items")),
            Column("cost", _("Their amounts (cost, not revenue)"), "money")]
    return Report("end-to-end", _("End-to-end funnel"), p, cols, rows, totals, chart_value="leads",
                  notes=[_("Each lead created in the period counts once, with its final outcome. Its sales deal is its "
                           "first deal that was not made from another deal; revenue is that deal's amount when won, "
                           "once. Items made from the sales deal (production, complaints: %(how)s) carry their "
                           "status and amount as cost, never revenue.") % {"how": chain.HOW}])


# --- registry --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Definition:
    slug: str
    title: Any
    fn: Callable[[Actor, Params], Report]
    entity: str = "deal"  # which export right the report needs, and its default entity
    group: str = "month"
    extra: tuple[str, ...] = ()
    choose_entity: bool = False
    smart: bool = False  # also takes a smart process as ``entity`` (its code or id)
    smart_fn: Callable[[Actor, Params], Report] | None = None  # the report for a smart process, when it differs


REPORTS: dict[str, Definition] = {d.slug: d for d in (
    Definition("new-leads", gettext_lazy("New leads"), new_leads, "lead"),
    Definition("lead-conversion", gettext_lazy("Lead conversion"), lead_conversion, "lead"),
    Definition("lead-speed", gettext_lazy("Time to first action and to qualification"), lead_speed, "lead"),
    Definition("deals", gettext_lazy("Deals by pipeline and period"), deals, "deal", group="pipeline", smart=True),
    Definition("funnel", gettext_lazy("Stage funnel"), funnel, "deal", group="none", choose_entity=True, smart=True),
    Definition("deal-amount", gettext_lazy("Average and median deal amount"), deal_amount, "deal"),
    Definition("lost-reasons", gettext_lazy("Lost reasons"), lost_reasons, "deal", group="none",
               extra=("reason_field",), choose_entity=True, smart=True),
    Definition("time-to-close", gettext_lazy("Time to close"), time_to_close, "deal", choose_entity=True, smart=True),
    Definition("stage-time", gettext_lazy("Time in each stage"), stage_time, "deal", group="none",
               choose_entity=True, smart=True),
    Definition("managers", gettext_lazy("Manager load and efficiency"), managers, "deal", group="user", smart=True,
               smart_fn=lambda actor, p: _smart().managers(actor, p)),
    Definition("support", gettext_lazy("Support requests"), support, "deal", group="none", extra=("by",)),
    Definition("end-to-end", gettext_lazy("End-to-end funnel"), end_to_end, "lead"),
)}


def definition(slug: str) -> Definition:
    from voronka.core.errors import NotFound

    if slug in REPORTS:
        return REPORTS[slug]
    from . import plans

    if slug in plans.REPORTS:
        return plans.REPORTS[slug]
    raise NotFound(_("There is no report «%(r)s».") % {"r": slug[:60]})


def run(actor: Actor, slug: str, data) -> Report:
    """Parse ``data`` (query parameters) and build the report ``slug`` for ``actor``."""
    from .params import parse

    d = definition(slug)
    default = d.entity
    if d.smart and not data.get("entity") and not data.get("pipeline") \
            and not policies.can(actor, policies.READ, entity_types.by_code(d.entity).id):
        # someone who reads only smart processes starts with the first of them
        from .params import smart_types

        default = next((info.code for info in smart_types(actor)), d.entity)
    p = parse(actor, data, default_group=d.group, extra_keys=d.extra, default_entity=default, smart=d.smart)
    with memo_scope():  # the read models' checks once per report (or per dashboard, which opens the scope itself)
        if d.smart_fn is not None and p.entity >= entity_types.FIRST_DYNAMIC:
            return d.smart_fn(actor, p)
        return d.fn(actor, p)


def export_entity(d: Definition, p: Params) -> str:
    """The kind whose export right a report's file needs: the chosen one where the report takes a choice."""
    if d.choose_entity or (d.smart and p.entity >= entity_types.FIRST_DYNAMIC):
        return _entity_code(p.entity)
    return d.entity


def entities(actor: Actor, d: Definition) -> list[str]:
    """What ``entity`` may say for a report and this viewer (the picker's choices)."""
    from .params import smart_types

    out = ["deal", "lead"] if d.choose_entity else [d.entity]
    return out + ([info.code for info in smart_types(actor)] if d.smart else [])


def _smart():
    from . import smart

    return smart
