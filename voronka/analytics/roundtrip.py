"""Records on a round trip (F25): a deal «finished with defects» sent to the Complaints pipeline comes back to
the pipeline it came from when the complaint is fixed (the robot «return to origin»). While it is away it is still
that pipeline's deal: the reports attribute it to the pipeline it came from, with the status «in complaints»,
and count its revenue there once — not as a new deal of the Complaints pipeline.

A pipeline is a round-trip pipeline when one of its stages has an enabled «return to origin» robot; a record in
it that came from another pipeline (the stage history says so, as for the robot) is away from that pipeline.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connections
from django.db.models import Q, QuerySet

from voronka.core.actor import Actor

from .params import Params

CHUNK = 2000  # record ids per statement when narrowing the trips to the records asked about
PAIRS = 100  # (pipeline, stage) pairs per statement when reading the moves into round-trip pipelines


def away(type_id: int, records: QuerySet | None = None) -> dict[int, int]:
    """{record id: the pipeline it came from} for the live records now in a round-trip pipeline (two small
    queries, and none more when no pipeline returns its records). ``records`` narrows the records looked at (the
    report's period, a lead's deals …): a subquery, so that a round-trip pipeline with many records costs no more
    than the report's own records."""
    from voronka.core import entity_types
    from voronka.pipelines.models import Stage, StageHistory

    pipes = pipelines(type_id)
    if not pipes:
        return {}
    model = entity_types.get(type_id).model
    base = model.objects.all() if records is None else records
    there = base.filter(pipeline_id__in=sorted(pipes), deleted_at__isnull=True).values("id")
    # moves into a round-trip pipeline from a stage of another pipeline, read from (pipeline, from_stage): only those
    # moves are read (one per trip ever made), not every move inside the pipeline; then the ones of the records
    # asked about, in chunks (a join with the records let PostgreSQL read the whole pipeline's history instead)
    pipeline_of = dict(Stage.objects.filter(pipeline__entity_type_id=type_id).values_list("id", "pipeline_id"))
    pairs = [(pipe, sid) for pipe in sorted(pipes) for sid, pid in sorted(pipeline_of.items()) if pid != pipe]
    found: list[tuple[int, int, int]] = []
    history = StageHistory.objects.filter(entity_type_id=type_id).order_by()
    for i in range(0, len(pairs), PAIRS):
        part = pairs[i:i + PAIRS]
        if connections[history.db].vendor == "sqlite":
            # each pair its own SELECT of a UNION ALL: given ``from_stage_id IN (…)`` SQLite's planner multiplies the
            # index's average rows per pair by the list's length and walks the whole pipeline's history by
            # ``pipeline_id`` instead (~120 ms at 5M rows for a handful of moves; ~15 ms this way)
            selects = [history.filter(pipeline_id=pipe, from_stage_id=sid).values_list("id", "entity_id",
                                                                                     "from_stage_id")
                       for pipe, sid in part]
            found.extend(selects[0].union(*selects[1:], all=True) if len(selects) > 1 else selects[0])
        else:  # PostgreSQL walks the index for the list (a UNION ALL gets a parallel plan that costs more)
            cross = Q()
            for pipe in sorted({pipe for pipe, _sid in part}):
                cross |= Q(pipeline_id=pipe, from_stage_id__in=[sid for p, sid in part if p == pipe])
            found.extend(history.filter(cross).values_list("id", "entity_id", "from_stage_id"))
    moves = [(pk, from_stage) for _id, pk, from_stage in sorted(found)]
    ids = sorted({pk for pk, _s in moves})
    asked: set[int] = set()
    for i in range(0, len(ids), CHUNK):
        asked.update(there.filter(pk__in=ids[i:i + CHUNK]).values_list("id", flat=True))
    origin: dict[int, int] = {}
    for pk, from_stage in moves:
        if pk in asked:
            origin[pk] = pipeline_of[from_stage]  # the last entry into the round-trip pipeline wins
    return origin


def pipelines(type_id: int) -> set[int]:
    """The round-trip pipelines of a record kind (asked once per report or page)."""
    from voronka.automation.models import Robot
    from voronka.core.memo import memo

    return memo(("analytics.roundtrip", type_id), lambda: set(
        Robot.objects.filter(action=Robot.Action.RETURN_TO_ORIGIN, enabled=True, pipeline__entity_type_id=type_id)
        .values_list("pipeline_id", flat=True)))


def visible_away(actor: Actor, p: Params, type_id: int, trips: dict[int, int]) -> list[tuple]:
    """(group key, id, amount, current pipeline, current semantics, origin) of the away records the report counts:
    readable by the viewer, created in the period, narrowed by the report's filters except the pipeline."""
    from .reports import _grouped_values, in_period, items

    qs = in_period(items(actor, p, type_id, pipeline=False).filter(pk__in=sorted(trips)), p, "created_at")
    return [(key, pk, Decimal(amount or 0), pipe, sem, trips[pk]) for key, pk, amount, pipe, sem in
            _grouped_values(qs, p, "created_at", "id", "opportunity", "pipeline_id", "stage_semantics")]


def away_in_period(p: Params, type_id: int) -> dict[int, int]:
    """``away`` for the records created in the report's period, once per report or dashboard (the funnel and «deals
    by pipeline» ask the same)."""
    from voronka.core.memo import memo

    return memo(("analytics.away", type_id, p.start, p.end), lambda: away(type_id, _of_period(p, type_id)))


def _of_period(p: Params, type_id: int) -> QuerySet:
    """The records created in the report's period (``visible_away`` counts no others)."""
    from voronka.core import entity_types

    return entity_types.get(type_id).model.objects.filter(created_at__gte=p.start, created_at__lt=p.end)


def attribute_deals(actor: Actor, p: Params, type_id: int, data: dict, zero: dict) -> None:
    """Move the away records of the «deals by pipeline» figures (``data``: group key → counters) from where they
    are to the pipeline they came from, as «in complaints» (neither open, won nor lost there)."""
    trips = away_in_period(p, type_id)
    if not trips:
        return
    by_pipeline = p.group == "pipeline"
    for key, _pk, amount, pipe, sem, origin in visible_away(actor, p, type_id, trips):
        if p.pipeline is None or p.pipeline == pipe:  # counted where it is now: take it out
            slot = data.get(key)
            if slot is not None:
                slot["deals"] -= 1
                slot["amount"] = (slot["amount"] or 0) - amount
                status = {"process": "open", "success": "won"}.get(sem, "lost")
                slot[status] -= 1
                if status == "won":
                    slot["won_amount"] = (slot["won_amount"] or 0) - amount
        if p.pipeline is None or p.pipeline == origin:  # … and count it where it belongs
            slot = data.setdefault(origin if by_pipeline else key, dict(zero))
            slot["deals"] = (slot.get("deals") or 0) + 1
            slot["amount"] = (slot.get("amount") or 0) + amount
            slot["in_complaints"] = (slot.get("in_complaints") or 0) + 1
    for k in [k for k, v in data.items() if not v.get("deals") and not v.get("in_complaints")]:
        if k != 0:
            data.pop(k)


def away_from(actor: Actor, p: Params, type_id: int, pipeline_id: int, order: dict[int, int]) -> dict:
    """{id: (rank of the furthest stage it reached in ``pipeline_id`` by ``order``, amount)} of the records the
    funnel of that pipeline counts that are now away from it on a round trip."""
    from voronka.pipelines.models import StageHistory

    trips = {pk: o for pk, o in away_in_period(p, type_id).items() if o == pipeline_id}
    if not trips:
        return {}
    found = {pk: amount for _key, pk, amount, _pipe, _sem, _origin in visible_away(actor, p, type_id, trips)}
    rank: dict[int, int] = {}
    for pk, stage_id in (StageHistory.objects.filter(entity_type_id=type_id, entity_id__in=sorted(found),
                                                    to_stage_id__in=list(order))
                         .values_list("entity_id", "to_stage_id").distinct()):
        rank[pk] = max(rank.get(pk, -1), order[stage_id])
    return {pk: (rank.get(pk, -1), amount) for pk, amount in found.items()}
