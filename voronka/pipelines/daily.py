"""Maintenance of ``DailyTotal``, the analytics read model (see the model's docstring and docs/analytics.md).

Every record contributes one ``created`` row, one ``reached`` row and, when it is closed, one ``closed`` row,
each with count 1 and its amount. A write subtracts the record's contribution before the change and adds the
one after it (``StageHook``, in the write's transaction); ``rebuild`` recomputes everything from the records and
their stage history. Both give the same rows, which the tests check.
"""

from __future__ import annotations

import datetime
import decimal
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, IntegerField, Max, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from voronka.core import fastinsert

from .models import DailyTotal, DailyTotalState, Pipeline, Stage, StageHistory
from .totals import upsert_deltas

CREATED, REACHED, CLOSED, WITH_DEAL = "created", "reached", "closed", "deal"
CONVERSION = -2  # ``DailyTotalState.pipeline_id`` of the marker «the leads' ``deal`` rows were built»
CHAIN = -5  # … of the marker «the leads' end-to-end (``chain…``) rows and columns were built»
# the leads' end-to-end rows (``chain_rows``): ``chain<outcome>`` (count 1, the revenue), ``chaini`` (the items made
# from the sales deal: their count and amounts)
CHAIN_KIND, CHAIN_ITEMS = "chain", "chaini"
# entity type, kind, grain, day, pipeline, stage, responsible, open to everyone, source
Key = tuple[int, str, str, datetime.date, int, int, int, bool, str]
DAY, MONTH = "d", "m"
STALE = "stale"


def zone() -> zoneinfo.ZoneInfo:
    """The days of the read model are the installation's calendar days."""
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def local_day(moment: datetime.datetime) -> datetime.date:
    return moment.astimezone(zone()).date()


# --- stage order ---------------------------------------------------------------------------------------------

def order_of(stages: Iterable[Stage]) -> dict[int, int]:
    """{stage id: rank} over a pipeline's stages that are not failures, in board order: «furthest» compares ranks."""
    ordered = sorted((s for s in stages if s.semantics != "failure"), key=lambda s: (s.sort, s.pk))
    return {s.pk: i for i, s in enumerate(ordered)}


def signature(stages: Iterable[Stage]) -> str:
    """The stage order the ``reached`` rows of a pipeline depend on."""
    return ",".join(f"{s.pk}{s.semantics[0]}" for s in sorted(stages, key=lambda s: (s.sort, s.pk)))[:4000]


def furthest(stage_ids: Iterable[int], order: dict[int, int]) -> int:
    """The furthest stage among ``stage_ids`` by ``order`` (0: none of them counts)."""
    best, best_rank = 0, -1
    for sid in stage_ids:
        rank = order.get(sid, -1)
        if rank > best_rank:
            best, best_rank = sid, rank
    return best


# --- one record's contribution ----------------------------------------------------------------------------

def contribution(entity_type_id: int, state: dict, reached_stage: int) -> list[tuple[Key, int, decimal.Decimal]]:
    """The rows one live record adds. ``state``: created_at, closed_at, pipeline_id, stage_id, semantics,
    responsible_id, is_open, source, opportunity."""
    amount = decimal.Decimal(state["opportunity"] or 0)
    tail = (state["responsible_id"] or 0, bool(state["is_open"]), (state["source"] or "")[:50])
    day = local_day(state["created_at"])
    pipe = state["pipeline_id"]
    final = state["semantics"] != "process"
    rows = [(CREATED, day, state["stage_id"] if final else 0), (REACHED, day, reached_stage or 0)]
    if final and state["closed_at"] is not None:
        rows.append((CLOSED, local_day(state["closed_at"]), state["stage_id"]))
    out = [((entity_type_id, kind, grain, d if grain == DAY else d.replace(day=1), pipe, stage, *tail), 1, amount)
           for kind, d, stage in rows for grain in (DAY, MONTH)]
    return out + deal_rows(entity_type_id, state, state.get("deal_status") or 0) \
        + chain_rows(entity_type_id, state, state.get("chain"))


def deal_rows(entity_type_id: int, state: dict, status: int) -> list[tuple[Key, int, decimal.Decimal]]:
    """A lead's ``deal`` rows (by its creation day; ``stage_id`` the status: 1 a live deal, 2 a live won deal;
    no amount): the reports' lead → deal conversion. None for status 0."""
    if not status:
        return []
    day = local_day(state["created_at"])
    tail = (state["responsible_id"] or 0, bool(state["is_open"]), (state["source"] or "")[:50])
    return [((entity_type_id, WITH_DEAL, grain, day if grain == DAY else day.replace(day=1), state["pipeline_id"],
              status, *tail), 1, decimal.Decimal(0)) for grain in (DAY, MONTH)]


def chain_rows(entity_type_id: int, state: dict, chain: tuple | None) -> list[tuple[Key, int, decimal.Decimal]]:
    """A lead's end-to-end rows (by its creation day, under its own dimensions, as ``deal_rows``). ``chain``:
    (outcome code, revenue, items, cost, the sales deal's pipeline) as ``Lead.chain_*`` hold them
    (``voronka/deals/outcome.py``). With a sales deal: a ``chain<code>`` row (count 1, amount the revenue;
    ``stage_id`` the sales deal's current pipeline, so that the report can set apart the deals away on a round
    trip), and a ``chaini`` row when items were made from it (count the items, amount their cost). Without one, a
    ``chain0`` row only when the lead itself was lost (``stage_id`` 0): the report's «lost as a lead»."""
    if chain is None:
        return []
    code, revenue, items, cost, pipeline = chain
    if not code and state["semantics"] != "failure":
        return []
    day = local_day(state["created_at"])
    tail = (state["responsible_id"] or 0, bool(state["is_open"]), (state["source"] or "")[:50])
    rows = [(f"{CHAIN_KIND}{code}", 1, decimal.Decimal(revenue or 0))]
    if code and items:
        rows.append((CHAIN_ITEMS, items, decimal.Decimal(cost or 0)))
    return [((entity_type_id, kind, grain, day if grain == DAY else day.replace(day=1), state["pipeline_id"],
              pipeline if code else 0, *tail), n, amount) for kind, n, amount in rows for grain in (DAY, MONTH)]


def chain_of(obj) -> tuple | None:
    """(code, revenue, items, cost, pipeline) from a lead's ``chain_*`` columns; None for a record without them. A
    lead just inserted may still hold the database default marker instead of values: nothing yet (0 …)."""
    if not hasattr(obj, "chain_outcome"):
        return None
    values = [getattr(obj, f) for f in ("chain_outcome", "chain_revenue", "chain_items", "chain_cost",
                                        "chain_pipeline")]
    if not all(v is None or isinstance(v, int | decimal.Decimal) for v in values):
        return (0, decimal.Decimal(0), 0, decimal.Decimal(0), 0)
    code, revenue, items, cost, pipeline = values
    return (code or 0, decimal.Decimal(revenue or 0), items or 0, decimal.Decimal(cost or 0), pipeline or 0)


def state_of(obj, **overrides) -> dict:
    state = {"created_at": obj.created_at, "closed_at": obj.closed_at, "pipeline_id": obj.pipeline_id,
             "stage_id": obj.stage_id, "semantics": obj.stage_semantics, "responsible_id": obj.responsible_id,
             "is_open": obj.is_open, "source": getattr(obj, "source", ""), "opportunity": obj.opportunity,
             "deal_status": getattr(obj, "deal_status", 0), "first_action_at": getattr(obj, "first_action_at", None),
             "chain": chain_of(obj)}
    state.update(overrides)
    return state


def entered_stages(entity_type_id: int, entity_id: int) -> set[int]:
    """Every stage the record ever entered (one indexed read of its history)."""
    return set(StageHistory.objects.filter(entity_type_id=entity_type_id, entity_id=entity_id)
               .values_list("to_stage_id", flat=True).distinct())


def apply(deltas: Iterable[tuple[Key, int, decimal.Decimal]]) -> None:
    """Add (count, amount) deltas; one upsert per distinct key."""
    columns = ("entity_type_id", "kind", "grain", "day", "pipeline_id", "stage_id", "responsible_id", "is_open",
               "source")
    upsert_deltas(DailyTotal._meta.db_table, columns, columns, deltas)


def change(entity_type_id: int, before: list, after: list) -> None:
    apply([*((k, -c, -a) for k, c, a in before), *after])


# (entity type, pipeline) -> (settings version, signature) this process wrote and saw committed
_noted: dict[tuple[int, int], tuple[int, str]] = {}


def note_order(entity_type_id: int, pipeline_id: int, stages: Iterable[Stage], *, version: int | None = None,
               sig: str | None = None) -> None:
    """Remember the stage order a write used for its ``reached`` row; a different order than the one remembered
    marks the pipeline stale (the funnel then reads the live tables until a rebuild).

    With ``version`` (the settings version the stages were read at) the statement runs once per process and
    version: once a note with the same signature has committed, repeating it changes nothing (the row holds
    that signature, or «stale», or what a rebuild wrote from the same stages), until the stages change, which
    bumps the version."""
    sig = signature(stages) if sig is None else sig
    key = (entity_type_id, pipeline_id)
    if version is not None and _noted.get(key) == (version, sig):
        return
    table = DailyTotalState._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (entity_type_id, pipeline_id, signature, rebuilt_at) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT (entity_type_id, pipeline_id) DO UPDATE SET signature = %s "
            f"WHERE {table}.signature <> excluded.signature",
            [entity_type_id, pipeline_id, sig, timezone.now(), STALE])
    if version is not None:
        transaction.on_commit(lambda: _noted.__setitem__(key, (version, sig)))


# --- reads -------------------------------------------------------------------------------------------------

def states() -> dict[tuple[int, int], str]:
    """{(entity type, pipeline id or marker): signature}: the whole state table (a row per pipeline and a few
    markers per kind), read once per report or dashboard (``core.memo``) and answering every check below."""
    from voronka.core.memo import memo

    return memo(("pipelines.daily.states",), lambda: {
        (t, pid): sig for t, pid, sig in DailyTotalState.objects.values_list("entity_type_id", "pipeline_id",
                                                                             "signature")})


def complete(entity_type_id: int) -> bool:
    """Whether the totals of a record kind were built (by a rebuild, or from an empty database)."""
    return (entity_type_id, 0) in states()


def conversion_complete() -> bool:
    """Whether the leads' ``deal`` rows were built (by a rebuild, or from an empty database)."""
    return (1, CONVERSION) in states()


def chain_complete() -> bool:
    """Whether the leads' end-to-end rows and ``chain_*`` columns were built (by a rebuild, or from an empty
    database); until then the end-to-end funnel follows the chains."""
    return (1, CHAIN) in states()


def stages_unchanged(entity_type_id: int) -> bool:
    """Whether every pipeline of a record kind has the stages (order and semantics) its rows were computed with."""
    from voronka.core.memo import memo

    return memo(("pipelines.daily.stages_unchanged", entity_type_id), lambda: _stages_unchanged(entity_type_id))


def _stages_unchanged(entity_type_id: int) -> bool:
    kept = {pid: sig for (t, pid), sig in states().items() if t == entity_type_id and pid > 0}
    if not kept:
        return True
    stages_of: dict[int, list[Stage]] = defaultdict(list)
    for s in Stage.objects.filter(pipeline_id__in=sorted(kept)):
        stages_of[s.pipeline_id].append(s)
    return all(sig == signature(stages_of[pid]) for pid, sig in kept.items())


# --- rebuild ---------------------------------------------------------------------------------------------

def rebuild(entity_type_id: int, model, *, scope: dict | None = None) -> int:
    """Recompute the daily totals of one record kind from the records and their stage history (idempotent), and the
    stay totals with them (``stays.rebuild``). Returns the number of daily rows written."""
    scope = scope or {}
    tz = zone()
    pipelines = list(Pipeline.objects.filter(entity_type_id=entity_type_id))
    stages_of: dict[int, list[Stage]] = defaultdict(list)
    for s in Stage.objects.filter(pipeline__in=pipelines):
        stages_of[s.pipeline_id].append(s)
    rank: dict[int, int] = {}
    by_rank: dict[tuple[int, int], int] = {}
    for pid, stages in stages_of.items():
        for sid, r in order_of(stages).items():
            rank[sid] = r
            by_rank[(pid, r)] = sid
    live = model.objects.filter(deleted_at__isnull=True, **scope)
    dims = ("pipeline_id", "responsible_id", "is_open", "source")
    out: dict[Key, list] = defaultdict(lambda: [0, decimal.Decimal(0)])

    def add(kind, rows, stage_of):
        for r in rows:
            for grain, day in ((DAY, r["d"]), (MONTH, r["d"].replace(day=1))):
                key = (entity_type_id, kind(r) if callable(kind) else kind, grain, day, r["pipeline_id"], stage_of(r), r["responsible_id"] or 0,
                       bool(r["is_open"]), (r["source"] or "")[:50])
                out[key][0] += r["n"]
                out[key][1] += decimal.Decimal(r["a"] or 0)

    add(CREATED, live.values(*dims, "stage_id", "stage_semantics", d=TruncDate("created_at", tzinfo=tz))
        .annotate(n=Count("id"), a=Sum("opportunity")).order_by(),
        lambda r: 0 if r["stage_semantics"] == "process" else r["stage_id"])
    if hasattr(model, "refresh_analytics"):  # columns the record kind keeps for the reports (leads: first action)
        model.refresh_analytics()
    if any(f.name == "deal_status" for f in model._meta.concrete_fields):
        refresh_deal_status(model)
        add(WITH_DEAL, live.filter(deal_status__gt=0).values(*dims, "deal_status", d=TruncDate("created_at", tzinfo=tz))
            .annotate(n=Count("id"), a=Value(0)).order_by(), lambda r: r["deal_status"])
    if any(f.name == "chain_outcome" for f in model._meta.concrete_fields):
        from voronka.deals import outcome  # the one definition of a lead's end-to-end outcome

        outcome.refresh(model)
        day = TruncDate("created_at", tzinfo=tz)
        add(lambda r: f"{CHAIN_KIND}{r['chain_outcome']}", live.filter(chain_outcome__gt=0)
            .values(*dims, "chain_outcome", "chain_pipeline", d=day)
            .annotate(n=Count("id"), a=Sum("chain_revenue")).order_by(), lambda r: r["chain_pipeline"] or 0)
        add(f"{CHAIN_KIND}0", live.filter(chain_outcome=0, stage_semantics="failure").values(*dims, d=day)
            .annotate(n=Count("id"), a=Value(0)).order_by(), lambda r: 0)
        add(CHAIN_ITEMS, live.filter(chain_outcome__gt=0, chain_items__gt=0).values(*dims, "chain_pipeline", d=day)
            .annotate(n=Sum("chain_items"), a=Sum("chain_cost")).order_by(), lambda r: r["chain_pipeline"] or 0)
    add(CLOSED, live.exclude(stage_semantics="process").filter(closed_at__isnull=False)
        .values(*dims, "stage_id", d=TruncDate("closed_at", tzinfo=tz))
        .annotate(n=Count("id"), a=Sum("opportunity")).order_by(), lambda r: r["stage_id"])
    if rank:
        ranked = Case(*[When(to_stage_id=sid, then=Value(r)) for sid, r in rank.items()], default=Value(-1),
                      output_field=IntegerField())
        best = (StageHistory.objects.filter(entity_type_id=entity_type_id, entity_id=OuterRef("pk"),
                                            to_stage__pipeline_id=OuterRef("pipeline_id"))
                .values("entity_id").annotate(m=Max(ranked)).values("m"))
        add(REACHED, live.annotate(best=Subquery(best, output_field=IntegerField()))
            .values(*dims, "best", d=TruncDate("created_at", tzinfo=tz))
            .annotate(n=Count("id"), a=Sum("opportunity")).order_by(),
            lambda r: by_rank.get((r["pipeline_id"], r["best"]), 0) if r["best"] is not None else 0)
    with transaction.atomic():
        _replace(entity_type_id, out, pipelines, stages_of)
        from . import stays  # the durations' read model is rebuilt with it (one command, one marker each)

        stays.rebuild(entity_type_id, model, scope=scope)
    return len(out)


def refresh_deal_status(lead_model) -> int:
    """Recompute every lead's ``deal_status`` from its deals (bulk loads bypass the deals' hook): three UPDATEs
    with ``IN (subquery)``, which both databases run as one pass over the deals (a correlated ``EXISTS`` per lead
    is slow on SQLite). The deal model is found through the lead's reverse relation, so this app needs no import
    of the deals app. Returns the number of leads changed."""
    deal_model = lead_model._meta.get_field("deals").related_model
    live = deal_model.objects.filter(deleted_at__isnull=True, lead_id__isnull=False)
    won = live.filter(stage_semantics="success").values("lead_id")
    leads = lead_model.objects
    changed = leads.filter(pk__in=won).exclude(deal_status=2).update(deal_status=2)
    changed += leads.filter(pk__in=live.values("lead_id")).exclude(pk__in=won).exclude(deal_status=1) \
        .update(deal_status=1)
    changed += leads.filter(deal_status__gt=0).exclude(pk__in=live.values("lead_id")).update(deal_status=0)
    return changed


def _replace(entity_type_id: int, out: dict, pipelines, stages_of) -> None:
    DailyTotal.objects.filter(entity_type_id=entity_type_id).delete()
    names = ("entity_type_id", "kind", "grain", "day", "pipeline_id", "stage_id", "responsible_id", "is_open", "source")
    rows = ({**dict(zip(names, k, strict=True)), "count": c, "amount": a} for k, (c, a) in out.items() if c or a)
    fastinsert.insert_batches(DailyTotal, rows, 5000)
    now = timezone.now()
    DailyTotalState.objects.filter(entity_type_id=entity_type_id).delete()
    marks = [DailyTotalState(entity_type_id=entity_type_id, pipeline_id=CONVERSION, signature="conversion",
                             rebuilt_at=now),
             DailyTotalState(entity_type_id=entity_type_id, pipeline_id=CHAIN, signature="chain",
                             rebuilt_at=now)] if entity_type_id == 1 else []
    DailyTotalState.objects.bulk_create(
        marks + [DailyTotalState(entity_type_id=entity_type_id, pipeline_id=0, signature="complete", rebuilt_at=now)]
        + [DailyTotalState(entity_type_id=entity_type_id, pipeline_id=p.pk, signature=signature(stages_of[p.pk]),
                           rebuilt_at=now) for p in pipelines])


def rebuild_all() -> dict[str, int]:
    """Rebuild the daily totals of every staged record kind (leads, deals, smart processes): {code: rows}."""
    from voronka.core import entity_types

    out = {}
    for info in entity_types.all_types():
        if not info.staged:
            continue
        with transaction.atomic():
            out[info.code] = rebuild(info.id, info.model, scope=dict(info.scope))
    return out


def mark_new_kind(entity_type_id: int) -> None:
    """A kind of record defined just now (a smart process) has no records: its (empty) daily and stay totals are
    complete, so the reports read them from the first item on. Rows left by an earlier kind with the same id are
    dropped first."""
    from . import stays

    forget_kind(entity_type_id)
    now = timezone.now()
    DailyTotalState.objects.bulk_create([
        DailyTotalState(entity_type_id=entity_type_id, pipeline_id=0, signature="complete", rebuilt_at=now),
        DailyTotalState(entity_type_id=entity_type_id, pipeline_id=stays.COMPLETE, signature="complete",
                        rebuilt_at=now)])


def forget_kind(entity_type_id: int) -> None:
    """Drop the totals of a kind of record that is being removed (a smart process without items)."""
    from .models import StayTotal

    DailyTotal.objects.filter(entity_type_id=entity_type_id).delete()
    StayTotal.objects.filter(entity_type_id=entity_type_id).delete()
    DailyTotalState.objects.filter(entity_type_id=entity_type_id).delete()
