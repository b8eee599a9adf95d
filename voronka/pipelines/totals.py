"""Maintenance and reads of ``StageTotal``: per-stage counts and sums that stay cheap at millions of records."""

from __future__ import annotations

import decimal
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection
from django.db.models import Count, Sum

from voronka.core import fastinsert, policies
from voronka.core.actor import Actor

from .models import StageTotal

Key = tuple[int, int, int, int, bool, str]  # entity type, pipeline, stage, responsible, open, currency


def key_of(entity_type_id: int, obj, *, stage_id=None, pipeline_id=None, responsible_id=None, is_open=None,
           currency=None) -> Key:
    return (entity_type_id, pipeline_id if pipeline_id is not None else obj.pipeline_id,
            stage_id if stage_id is not None else obj.stage_id,
            (responsible_id if responsible_id is not None else obj.responsible_id) or 0,
            bool(is_open if is_open is not None else obj.is_open), (currency or obj.currency or "")[:3])


def upsert_deltas(table: str, key_columns: tuple[str, ...], conflict: tuple[str, ...], deltas, *,
                  value_column: str = "amount") -> None:
    """Add (key, count, amount) deltas to a read-model table of counters: the deltas of one key are summed
    first, then one upsert per distinct key, in key order (two writes that touch the same rows lock them in the
    same order, so they cannot deadlock). Used by the board totals and the analytics' daily totals (``amount``),
    and by the analytics' stay totals (``value_column="seconds"``, an integer column)."""
    merged: dict[tuple, list] = defaultdict(lambda: [0, decimal.Decimal(0)])
    for key, count, amount in deltas:
        slot = merged[key]
        slot[0] += count
        slot[1] += decimal.Decimal(amount or 0)
    rows = sorted((k, c, a) for k, (c, a) in merged.items() if c or a)
    if not rows:
        return
    columns = ", ".join((*key_columns, "count", value_column))
    marks = "(" + ", ".join(["%s"] * (len(key_columns) + 2)) + ")"
    tail = (f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET count = {table}.count + excluded.count, "
            f"{value_column} = {table}.{value_column} + excluded.{value_column}")
    value = str if value_column == "amount" else int
    # inside fastinsert.pipelined() on PostgreSQL the upsert joins the write's single statement (one VALUES row
    # per key: the keys are distinct, and in key order)
    fastinsert.write_rows(connection, f"INSERT INTO {table} ({columns}) VALUES ", marks, tail,
                          [(*k, c, value(a)) for k, c, a in rows])


def apply(deltas: Iterable[tuple[Key, int, decimal.Decimal]]) -> None:
    """Add (count, amount) deltas; one upsert per distinct key."""
    upsert_deltas(StageTotal._meta.db_table,
                  ("entity_type_id", "pipeline_id", "stage_id", "responsible_id", "is_open", "currency"),
                  ("entity_type_id", "stage_id", "responsible_id", "is_open", "currency"), deltas)


def move(old: Key, new: Key, old_amount, new_amount) -> None:
    if old == new and old_amount == new_amount:
        return
    apply([(old, -1, -decimal.Decimal(old_amount or 0)), (new, 1, decimal.Decimal(new_amount or 0))])


def rebuild(entity_type_id: int, model) -> int:
    """Recompute the totals of one record kind from the records (after bulk loads that bypass actions)."""
    StageTotal.objects.filter(entity_type_id=entity_type_id).delete()
    rows = (model.objects.filter(deleted_at__isnull=True)
            .values("pipeline_id", "stage_id", "responsible_id", "is_open", "currency")
            .annotate(n=Count("id"), total=Sum("opportunity")).order_by())
    objs = [StageTotal(entity_type_id=entity_type_id, pipeline_id=r["pipeline_id"], stage_id=r["stage_id"],
                       responsible_id=r["responsible_id"] or 0, is_open=r["is_open"], currency=r["currency"] or "",
                       count=r["n"], amount=r["total"] or 0) for r in rows]
    StageTotal.objects.bulk_create(objs, batch_size=1000)
    return len(objs)


def for_actor(actor: Actor, entity_type_id: int, pipeline_id: int) -> dict[int, dict]:
    """{stage_id: {"count": n, "amounts": {currency: Decimal}}} over the records the actor may read."""
    qs = StageTotal.objects.filter(entity_type_id=entity_type_id, pipeline_id=pipeline_id)
    qs = policies.visible(actor, entity_type_id, qs)
    result: dict[int, dict] = {}
    for row in qs.values("stage_id", "currency").annotate(n=Sum("count"), total=Sum("amount")).order_by():
        slot = result.setdefault(row["stage_id"], {"count": 0, "amounts": {}})
        slot["count"] += row["n"] or 0
        if row["total"]:
            slot["amounts"][row["currency"]] = slot["amounts"].get(row["currency"], 0) + row["total"]
    return result
