"""What became of a lead end to end (the analytics' «end-to-end funnel», F48): its sales deal, the deal's status, and
the items made from the deal (production, complaints), read by one function, ``outcomes``, which the report's live
path, the hooks that keep ``Lead.chain_*`` (``leadstatus.sync``) and the rebuild (``refresh``) all use.

A lead's sales deal is its first live deal (by id) that was not made from another live deal of the same lead. Its
outcome: ``NONE`` (no sales deal), ``OPEN``, ``LOST``, or, won, ``WON`` (not yet delivered), ``DELIVERED`` (every
item made from it in a success stage) or ``FAILED`` (an item in a failure stage). Revenue is the sales deal's amount
when won; the items' amounts are cost. Whether the deal is away on a round trip (in Complaints) is decided when the
report runs, from the deal and its current pipeline, both stored.

Items made from a deal come from two sources: live links from the deal to another deal (``voronka.links``, any
role), and the «linked» timeline entries a robot wrote on the deal naming the deal it made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from voronka.core import entity_types
from voronka.core.models import TimelineEntry
from voronka.links.models import Link

NONE, OPEN, LOST, WON, DELIVERED, FAILED = range(6)
CHUNK = 5000
ZERO = Decimal("0.00")
FIELDS = ("chain_outcome", "chain_revenue", "chain_items", "chain_cost", "chain_pipeline", "chain_deal")


@dataclass(frozen=True)
class Outcome:
    code: int = NONE
    revenue: Decimal = ZERO
    items: int = 0
    cost: Decimal = ZERO
    pipeline: int = 0
    deal: int = 0

    def columns(self) -> dict:
        return dict(zip(FIELDS, (self.code, self.revenue, self.items, self.cost, self.pipeline, self.deal),
                        strict=True))


NOTHING = Outcome()


def stored(lead) -> Outcome:
    """The outcome a lead's columns hold (a lead just inserted may hold the database default marker: nothing)."""
    values = [getattr(lead, f, None) for f in FIELDS]
    if not all(isinstance(v, int | Decimal) or v is None for v in values):
        return NOTHING
    code, revenue, items, cost, pipeline, deal = values
    return Outcome(code or 0, _money(revenue), items or 0, _money(cost), pipeline or 0, deal or 0)


def _money(v) -> Decimal:
    return Decimal(v or 0).quantize(ZERO)


def downstream_of(deal_ids: Iterable[int]) -> dict[int, list[int]]:
    """{deal id: [ids of deals made from it]} (one level; each listed once, in id order)."""
    out: dict[int, set[int]] = defaultdict(set)
    ids = list(deal_ids)
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        for source, data in (TimelineEntry.objects.filter(entity_type_id=entity_types.DEAL, entity_id__in=part,
                                                          kind="linked")
                             .values_list("entity_id", "data")):
            data = data or {}
            if data.get("entity_type_id") == entity_types.DEAL and isinstance(data.get("entity_id"), int):
                out[source].add(data["entity_id"])
        for source, target in (Link.objects.filter(source_type_id=entity_types.DEAL, source_id__in=part,
                                                   target_type_id=entity_types.DEAL, deleted_at__isnull=True)
                               .values_list("source_id", "target_id")):
            out[source].add(target)
    return {k: sorted(v - {k}) for k, v in out.items()}


def upstream_of(deal_ids: Iterable[int]) -> set[int]:
    """The deals these deals were made from (the reverse of ``downstream_of``): the links' target index, and the
    robot's «linked» entries bound to the deal made (the entry is shown on both records)."""
    ids = sorted({int(i) for i in deal_ids if i})
    if not ids:
        return set()
    out = set(Link.objects.filter(target_type_id=entity_types.DEAL, target_id__in=ids, source_type_id=entity_types.DEAL,
                                  deleted_at__isnull=True).values_list("source_id", flat=True))
    for source, data in (TimelineEntry.objects.filter(kind="linked", entity_type_id=entity_types.DEAL,
                                                      bindings__entity_type_id=entity_types.DEAL,
                                                      bindings__entity_id__in=ids)
                         .values_list("entity_id", "data")):
        if (data or {}).get("entity_type_id") == entity_types.DEAL and (data or {}).get("entity_id") in ids:
            out.add(source)
    return out - set(ids)


def outcomes(lead_ids: Iterable[int] | None = None) -> dict[int, Outcome]:
    """{lead id: its outcome} for the leads that have a sales deal (the others: ``NOTHING``); ``None``: every lead."""
    from .models import Deal

    live = Deal.objects.filter(deleted_at__isnull=True, lead_id__isnull=False)
    rows: list[tuple] = []
    if lead_ids is None:
        rows = list(live.values_list("id", "lead_id", "stage_semantics", "opportunity", "pipeline_id"))
    else:
        ids = sorted({int(i) for i in lead_ids if i})
        for i in range(0, len(ids), CHUNK):
            rows += live.filter(lead_id__in=ids[i:i + CHUNK]).values_list(
                "id", "lead_id", "stage_semantics", "opportunity", "pipeline_id")
    rows.sort()
    downstream = downstream_of([r[0] for r in rows])
    made_from_sibling: set[int] = set()
    lead_of = {r[0]: r[1] for r in rows}
    for source, targets in downstream.items():
        made_from_sibling.update(t for t in targets if lead_of.get(t) == lead_of[source])
    sales: dict[int, tuple] = {}
    for r in rows:
        if r[0] not in made_from_sibling:
            sales.setdefault(r[1], r)
    needed = sorted({x for r in sales.values() for x in downstream.get(r[0], [])})
    items: dict[int, tuple[str, Decimal]] = {}
    for i in range(0, len(needed), CHUNK):
        items.update({pk: (sem, amount) for pk, sem, amount in Deal.objects.filter(
            pk__in=needed[i:i + CHUNK], deleted_at__isnull=True).values_list("id", "stage_semantics", "opportunity")})
    out = {}
    for lead_id, (pk, _lead, sem, amount, pipeline) in sales.items():
        downs = [items[x] for x in downstream.get(pk, []) if x in items]
        cost = _money(sum((Decimal(a or 0) for _s, a in downs), ZERO))
        revenue = ZERO
        if sem == "process":
            code = OPEN
        elif sem == "failure":
            code = LOST
        else:
            revenue = _money(amount)
            if any(s == "failure" for s, _a in downs):
                code = FAILED
            elif downs and all(s == "success" for s, _a in downs):
                code = DELIVERED
            else:
                code = WON
        out[lead_id] = Outcome(code, revenue, len(downs), cost, pipeline, pk)
    return out


def refresh(lead_model) -> int:
    """Recompute every lead's ``chain_*`` columns from the deals (bulk loads bypass the hooks): the leads with a
    sales deal from ``outcomes``, the others reset to nothing. Only changed leads are written. Returns the number
    of leads changed."""
    found = outcomes(None)
    current = {pk: Outcome(*((v or 0) if i in (0, 2, 4, 5) else _money(v) for i, v in enumerate(vals)))
               for pk, *vals in lead_model.objects.exclude(chain_outcome=NONE, chain_deal=0)
               .values_list("pk", *FIELDS).iterator(chunk_size=CHUNK)}
    changed = [(pk, o) for pk, o in found.items() if current.get(pk) != o]
    changed += [(pk, NOTHING) for pk in current if pk not in found]
    write(lead_model, changed)
    return len(changed)


def write(lead_model, changed: list[tuple[int, Outcome]]) -> None:
    """Store outcomes in bulk: on PostgreSQL a temporary table filled by ``COPY`` and one ``UPDATE … FROM``; on
    SQLite one prepared ``UPDATE`` per lead (``executemany``, no round trips). ``bulk_update``'s ``CASE`` per
    column cost ~2 ms a lead at 100k (PostgreSQL, busy machine)."""
    from django.db import connection, transaction

    if not changed:
        return
    q = connection.ops.quote_name
    table = q(lead_model._meta.db_table)
    columns = [q(lead_model._meta.get_field(f).column) for f in FIELDS]
    rows = [(pk, o.code, o.revenue, o.items, o.cost, o.pipeline, o.deal) for pk, o in sorted(changed)]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE TEMPORARY TABLE voronka_chain_fill (id bigint PRIMARY KEY, o smallint, "
                           "r numeric(18, 2), i integer, c numeric(18, 2), p integer, d bigint)")
            with cursor.cursor.copy("COPY voronka_chain_fill (id, o, r, i, c, p, d) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            sets = ", ".join(f"{col} = f.{x}" for col, x in zip(columns, "oricpd", strict=True))
            cursor.execute(f"UPDATE {table} SET {sets} FROM voronka_chain_fill f WHERE {table}.id = f.id")
            cursor.execute("DROP TABLE voronka_chain_fill")
        else:
            sets = ", ".join(f"{col} = %s" for col in columns)
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE id = %s",
                               [(o, str(r), i, str(c), p, d, pk) for pk, o, r, i, c, p, d in rows])
