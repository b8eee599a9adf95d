"""Which records were made from a deal: production items, complaints (F48).

Today the chain is read from the timeline: the robot «create a linked record» (and any action that links
two records the same way) writes a ``linked`` entry on the source deal naming the created record. When
the generic link table (``voronka.links``) is merged, ``downstream_of`` reads it too; nothing else in
analytics knows how the chain is stored.
"""

from __future__ import annotations

from collections import defaultdict

from django.apps import apps

from voronka.core import entity_types
from voronka.core.models import TimelineEntry

HOW = "records linked from the deal, e.g. by the robot «create a linked record»"
CHUNK = 5000


def downstream_of(deal_ids) -> dict[int, list[int]]:
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
        if apps.is_installed("voronka.links"):
            out_links = _from_links(part)
            for source, targets in out_links.items():
                out[source].update(targets)
    return {k: sorted(v - {k}) for k, v in out.items()}


def _from_links(deal_ids) -> dict[int, set[int]]:  # pragma: no cover - until voronka.links is merged
    Link = apps.get_model("links", "Link")
    out: dict[int, set[int]] = defaultdict(set)
    for source, target in (Link.objects.filter(source_type_id=entity_types.DEAL, source_id__in=deal_ids,
                                               target_type_id=entity_types.DEAL, deleted_at__isnull=True)
                           .values_list("source_id", "target_id")):
        out[source].add(target)
    return out
