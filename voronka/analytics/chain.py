"""Which records were made from a deal: production items, complaints (F48).

Two sources, read together: live links in ``voronka.links`` from the deal to another deal (any role:
``production``, ``complaint`` …; the deal is the link's source), and the ``linked`` timeline entries the
robot «create a linked record» writes on the deal it ran on. Nothing else in analytics knows how the
chain is stored.
"""

from __future__ import annotations

from collections import defaultdict

from voronka.core import entity_types
from voronka.core.models import TimelineEntry
from voronka.links.models import Link

HOW = "deals the sales deal links to, or made from it by the robot «create a linked record»"
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
        for source, target in (Link.objects.filter(source_type_id=entity_types.DEAL, source_id__in=part,
                                                   target_type_id=entity_types.DEAL, deleted_at__isnull=True)
                               .values_list("source_id", "target_id")):
            out[source].add(target)
    return {k: sorted(v - {k}) for k, v in out.items()}
