"""Maintenance of ``StayTotal``, the analytics read model of durations (see the model's docstring and
docs/analytics.md, «Durations»).

Every live record contributes one ``stay`` row per stay that ended (each move out of a stage, with the history's
``seconds_in_previous``) and, when it is closed, one ``close`` row (seconds from creation to the last closing),
each with count 1 and its seconds, in its duration's bucket. A write subtracts the record's contribution before the
change and adds the one after it (``StageHook``, in the write's transaction, from the same single read of the
record's history as the daily totals); ``rebuild`` recomputes everything from the records and their history.

Buckets: 0 holds durations under a second; bucket ``b`` ≥ 1 holds ``[2^((b-1)/8), 2^(b/8))`` seconds, eight per
doubling, so one bucket spans a ratio of 2^(1/8) ≈ 1.0905 (a year of seconds needs ~200 buckets). A row keeps the
exact sum of its durations: a median or percentile read from the histogram is the mean of its bucket, which lies
in the same bucket as the exact value, so it is off by less than 9.05 % of it, and it is exact whenever the
bucket holds equal durations (always when it holds one). Counts, sums and averages are exact.

The same histograms hold the amounts of won records (kind ``amount``, in cents in the ``seconds`` column, by the
day of the last closing): counts, sums and averages exact, medians within the same bound.
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction

from .daily import DAY, MONTH, local_day
from .models import DailyTotalState, StageHistory, StayTotal
from .totals import upsert_deltas

STAY, CLOSE, AMOUNT, FIRST, QUAL = "stay", "close", "amount", "first", "qual"
PER_DOUBLING = 8
ERROR_BOUND = 2 ** (1 / PER_DOUBLING) - 1  # relative, for medians and percentiles
COMPLETE = -1  # ``DailyTotalState.pipeline_id`` of the marker «the stay totals of this kind were built»
AMOUNTS = -3  # … and of the marker «the amount rows of this kind were built» (added later: databases built before
# it have the first marker without this one until ``analytics-rebuild``)
SPEED = -4  # … of the marker «the ``first`` and ``qual`` rows were built» (its signature: the qualifying stages)
FRESH = "fresh"  # the signature the migration gives that marker on a database without leads
# (entity type, settings version or None) -> the stages whose first entry qualifies a record, or None: set by the
# analytics app (it knows which stages qualify a lead); with none set there are no ``qual`` rows
QUALIFYING = None
COLUMNS = ("entity_type_id", "kind", "grain", "day", "pipeline_id", "stage_id", "responsible_id", "is_open", "source",
           "bucket")
# (from stage, to stage, seconds in the previous stage, moved at): one row of a record's history
Move = tuple[int | None, int, int | None, datetime.datetime]


def bucket(seconds: int) -> int:
    if seconds < 1:
        return 0
    b = 1 + math.floor(PER_DOUBLING * math.log2(seconds))
    # guard the floating-point edges so that the bucket's bounds really hold the value
    while b > 1 and seconds < lower(b):
        b -= 1
    while seconds >= lower(b + 1):
        b += 1
    return b


def lower(b: int) -> float:
    return 0.0 if b <= 0 else 2 ** ((b - 1) / PER_DOUBLING)


def history(entity_type_id: int, entity_id: int) -> list[Move]:
    """A record's history (one indexed read), shared with the daily totals' «entered stages»."""
    return list(StageHistory.objects.filter(entity_type_id=entity_type_id, entity_id=entity_id).order_by("id")
                .values_list("from_stage_id", "to_stage_id", "seconds_in_previous", "moved_at"))


def contribution(entity_type_id: int, state: dict, moves: Iterable[Move]) -> list[tuple[tuple, int, int]]:
    """The rows one live record adds. ``state`` as ``daily.state_of``."""
    tail = (state["pipeline_id"], None, state["responsible_id"] or 0, bool(state["is_open"]),
            (state["source"] or "")[:50])
    found: list[tuple[str, datetime.date, int, int]] = []
    for from_stage, _to, seconds, moved_at in moves:
        if from_stage is not None and seconds is not None:
            found.append((STAY, local_day(moved_at), from_stage, max(0, int(seconds))))
    if state["semantics"] != "process" and state["closed_at"] is not None:
        seconds = max(0, int((state["closed_at"] - state["created_at"]).total_seconds()))
        found.append((CLOSE, local_day(state["closed_at"]), state["stage_id"], seconds))
        if state["semantics"] == "success":  # the amount of a won record, in cents: «average and median amount»
            found.append((AMOUNT, local_day(state["closed_at"]), state["stage_id"], cents(state["opportunity"])))
    created_day = local_day(state["created_at"])
    first = state.get("first_action_at")
    if first is not None:
        found.append((FIRST, created_day, 0, _seconds(state["created_at"], first)))
    qualifying = state.get("qualifying")  # the caller's (cached with its settings), else asked here
    if qualifying is None and QUALIFYING is not None:
        qualifying = QUALIFYING(entity_type_id, None)
    if qualifying:
        qual = min((moved_at for _from, to, _s, moved_at in moves if to in qualifying), default=None)
        if qual is not None:
            found.append((QUAL, created_day, 0, _seconds(state["created_at"], qual)))
    out = []
    for kind, day, stage, seconds in found:
        b = bucket(seconds)
        for grain in (DAY, MONTH):
            key = (entity_type_id, kind, grain, day if grain == DAY else day.replace(day=1), tail[0], stage, *tail[2:],
                   b)
            out.append((key, 1, seconds))
    return out


def _seconds(start: datetime.datetime, end: datetime.datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def first_rows(entity_type_id: int, state: dict) -> list[tuple[tuple, int, int]]:
    """Only the ``first`` rows of a record (its first action changed, nothing else)."""
    return [r for r in contribution(entity_type_id, {**state, "semantics": "process", "closed_at": None,
                                                     "qualifying": frozenset()}, ()) if r[0][1] == FIRST]


def speed_complete(entity_type_id: int, qualifying: set[int]) -> bool:
    """Whether the ``first``/``qual`` rows were built, with the qualifying stages given (or on a fresh database)."""
    from . import daily

    sig = daily.states().get((entity_type_id, SPEED))
    return sig is not None and sig in (FRESH, speed_signature(qualifying))


def speed_signature(qualifying: set[int] | None) -> str:
    return ("q:" + ",".join(str(s) for s in sorted(qualifying or ())))[:4000]


def speed_stale(entity_type_id: int) -> None:
    """The qualifying stages changed: the ``qual`` rows are stale until ``analytics-rebuild``."""
    DailyTotalState.objects.filter(entity_type_id=entity_type_id, pipeline_id=SPEED).update(signature="stale")


def cents(amount) -> int:
    """An amount in whole cents (kopecks): the ``amount`` rows' unit (amounts have two decimal places)."""
    return max(0, int((decimal.Decimal(amount or 0) * 100).to_integral_value(decimal.ROUND_HALF_UP)))


def apply(deltas: Iterable[tuple[tuple, int, int]]) -> None:
    upsert_deltas(StayTotal._meta.db_table, COLUMNS, COLUMNS, deltas, value_column="seconds")


def change(before: list, after: list) -> None:
    apply([*((k, -c, -s) for k, c, s in before), *after])


def complete(entity_type_id: int) -> bool:
    from . import daily

    return (entity_type_id, COMPLETE) in daily.states()


def amounts_complete(entity_type_id: int) -> bool:
    from . import daily

    return (entity_type_id, AMOUNTS) in daily.states()


# --- reading a histogram -------------------------------------------------------------------------------------

class Histogram:
    """Counts and sums per bucket; medians and percentiles by the bucket that holds the rank (see the module)."""

    def __init__(self) -> None:
        self.buckets: dict[int, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, b: int, count: int, seconds: int) -> None:
        slot = self.buckets[b]
        slot[0] += count
        slot[1] += seconds

    @property
    def count(self) -> int:
        return sum(c for c, _s in self.buckets.values())

    @property
    def total(self) -> int:
        return sum(s for _c, s in self.buckets.values())

    def mean(self) -> float | None:
        n = self.count
        return float(self.total) / n if n else None

    def at_rank(self, rank: int) -> float:
        """The value of the ``rank``-th smallest duration (1-based), as its bucket's mean."""
        seen = 0
        for b in sorted(self.buckets):
            c, s = self.buckets[b]
            if c <= 0:
                continue
            seen += c
            if seen >= rank:
                return float(s) / c
        raise ValueError(rank)

    def floor_of_top(self, n: int) -> int:
        """A duration that the ``n`` longest durations reach: the lower bound of the bucket where, counting from
        the longest, ``n`` are reached (0 when there are fewer). A query for the slowest items may start there."""
        seen = 0
        for b in sorted(self.buckets, reverse=True):
            seen += self.buckets[b][0]
            if seen >= n:
                return math.floor(lower(b))
        return 0

    def median(self) -> float | None:
        n = self.count
        if not n:
            return None
        if n % 2:
            return self.at_rank(n // 2 + 1)
        return (self.at_rank(n // 2) + self.at_rank(n // 2 + 1)) / 2

    def p90(self) -> float | None:
        """Nearest rank, as ``reports.p90``."""
        n = self.count
        return self.at_rank(max(1, math.ceil(0.9 * n))) if n else None


# --- rebuild -------------------------------------------------------------------------------------------------

CHUNK = 20000


def rebuild(entity_type_id: int, model, *, scope: dict | None = None) -> int:
    """Recompute the stay totals of one record kind from the records and their history (idempotent), in chunks of
    record ids so that memory stays bounded at millions of records. Returns the number of rows written."""
    from voronka.core import fastinsert

    live = model.objects.filter(deleted_at__isnull=True, **(scope or {}))
    extra = [f.name for f in model._meta.concrete_fields if f.name == "first_action_at"]
    qualifying = QUALIFYING(entity_type_id, None) if QUALIFYING is not None else None
    known = qualifying or frozenset()  # asked once here, not once per record in ``contribution``
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    ids = live.order_by("pk").values_list("pk", flat=True)
    last = 0
    while True:
        chunk = list(ids.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            break
        lo, hi = chunk[0], chunk[-1]
        last = hi
        states = {r["id"]: {**r, "semantics": r.pop("stage_semantics"), "qualifying": known}
                  for r in live.filter(pk__gte=lo, pk__lte=hi)
                  .values("id", "created_at", "closed_at", "pipeline_id", "stage_id", "stage_semantics",
                          "responsible_id", "is_open", "source", "opportunity", *extra)}
        moves: dict[int, list[Move]] = defaultdict(list)
        history_rows = StageHistory.objects.filter(entity_type_id=entity_type_id, entity_id__gte=lo, entity_id__lte=hi)
        if not qualifying:  # only the stays; qualification needs every entry, the creation's too
            history_rows = history_rows.filter(seconds_in_previous__isnull=False, from_stage__isnull=False)
        for eid, *move in (history_rows
                           .values_list("entity_id", "from_stage_id", "to_stage_id", "seconds_in_previous",
                                        "moved_at").iterator(chunk_size=10000)):
            if eid in states:
                moves[eid].append(tuple(move))
        for eid, state in states.items():
            for key, c, s in contribution(entity_type_id, state, moves.get(eid, ())):
                if key[2] != DAY:  # the month rows are the sums of the day rows: added up below, not held twice
                    continue
                slot = out[key]
                slot[0] += c
                slot[1] += s
    months: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for key, (c, s) in out.items():
        slot = months[(*key[:2], MONTH, key[3].replace(day=1), *key[4:])]
        slot[0] += c
        slot[1] += s
    with transaction.atomic():
        StayTotal.objects.filter(entity_type_id=entity_type_id).delete()
        rows = ({**dict(zip(COLUMNS, k, strict=True)), "count": c, "seconds": s}
                for part in (out, months) for k, (c, s) in part.items() if c)
        written = fastinsert.insert_batches(StayTotal, rows, 5000)
        DailyTotalState.objects.update_or_create(entity_type_id=entity_type_id, pipeline_id=COMPLETE,
                                                 defaults={"signature": "stays"})
        DailyTotalState.objects.update_or_create(entity_type_id=entity_type_id, pipeline_id=AMOUNTS,
                                                 defaults={"signature": "amounts"})
        DailyTotalState.objects.update_or_create(entity_type_id=entity_type_id, pipeline_id=SPEED,
                                                 defaults={"signature": speed_signature(qualifying)})
    return written
