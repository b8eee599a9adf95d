"""Reads of links, already narrowed to what the actor may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.selectors import get_record_for, records_visible_to

from .models import Link


@dataclass
class LinkedRecord:
    link: Link
    direction: str          # "out": this record is the source; "in": it is the target
    entity_type_id: int
    entity_id: int
    obj: object | None      # None when the actor may not see the far end (or it was deleted)

    @property
    def hidden(self) -> bool:
        return self.obj is None


def _live_q(type_id: int, pk: int) -> Q:
    return Q(source_type_id=type_id, source_id=pk) | Q(target_type_id=type_id, target_id=pk)


def _known(entity_type_id: int) -> None:
    try:
        entity_types.get(entity_type_id)
    except LookupError:
        from django.utils.translation import gettext as _

        from voronka.core.errors import NotFound

        raise NotFound(_("Unknown kind of record.")) from None


def links_of(actor: Actor, entity_type_id: int, entity_id: int, *, role: str | None = None,
             other_type_id: int | None = None, limit: int = 200) -> list[LinkedRecord]:
    """Live links of a record the actor may read. Far ends the actor may not read come back hidden
    (``obj`` None) so the card can say «1 record you cannot see» without naming it."""
    _known(entity_type_id)
    get_record_for(actor, entity_type_id, entity_id)  # «not found» if the record itself is not visible
    qs = Link.objects.filter(_live_q(entity_type_id, int(entity_id)), deleted_at__isnull=True).order_by("pk")
    if role is not None:
        qs = qs.filter(role=role)
    rows = []
    for link in qs[:limit]:
        other = link.other(entity_type_id, int(entity_id))
        if other_type_id is not None and other[0] != other_type_id:
            continue
        direction = "out" if (link.source_type_id, link.source_id) == (entity_type_id, int(entity_id)) else "in"
        rows.append(LinkedRecord(link, direction, other[0], other[1], None))
    by_type: dict[int, list[int]] = {}
    for row in rows:
        by_type.setdefault(row.entity_type_id, []).append(row.entity_id)
    found: dict[tuple[int, int], object] = {}
    for type_id, ids in by_type.items():
        try:
            entity_types.get(type_id)
        except LookupError:
            continue
        for obj in records_visible_to(actor, type_id).filter(pk__in=ids):
            found[(type_id, obj.pk)] = obj
    for row in rows:
        row.obj = found.get((row.entity_type_id, row.entity_id))
    return rows


def linked_ids(actor: Actor, entity_type_id: int, entity_id: int, *, other_type_id: int | None = None,
               role: str | None = None, direction: str = "both") -> list[tuple[int, int]]:
    """(kind, id) of the visible records linked to one record: for robots, triggers and reports.

    ``direction``: ``out`` (records this one is the source of), ``in`` (its sources) or ``both``.
    """
    rows = links_of(actor, entity_type_id, entity_id, role=role, other_type_id=other_type_id)
    return [(r.entity_type_id, r.entity_id) for r in rows if not r.hidden and direction in ("both", r.direction)]


def get_link(actor: Actor, link_id: int) -> Link | None:
    """A live link whose both ends the actor may read, or None."""
    link = Link.objects.filter(pk=link_id, deleted_at__isnull=True).first()
    if link is None:
        return None
    for type_id, pk in ((link.source_type_id, link.source_id), (link.target_type_id, link.target_id)):
        try:
            entity_types.get(type_id)
        except LookupError:
            return None
        if not records_visible_to(actor, type_id).filter(pk=pk).exists():
            return None
    return link
