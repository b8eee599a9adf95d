"""What became of a lead's deals (``Lead.deal_status``: 0 none, 1 a live deal, 2 a live deal in a success stage),
kept in the same transaction as every write that can change it: a deal created, moved, re-pointed to another lead,
deleted or restored (``LeadStatusHook``) and a merge of leads, which re-points deals in bulk (``sync``). The
reports' lead → deal conversion reads it through the daily totals' ``deal`` rows (``pipelines.daily.deal_rows``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.recordkit import Hook, WriteContext
from voronka.pipelines import daily

WON, LIVE, NONE = 2, 1, 0


def sync(lead_ids: Iterable[int | None]) -> None:
    """Recompute the status of these leads from their live deals; where it changed, store it and move the lead's
    ``deal`` rows in the daily totals (a lead in the recycle bin has no rows: only its column changes). The leads
    are locked first (in id order), so two writes to deals of one lead cannot both miss each other's deal."""
    from voronka.leads.models import Lead

    from .models import Deal

    ids = sorted({int(i) for i in lead_ids if i})
    if not ids:
        return
    leads = list(Lead.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    status: dict[int, int] = {}
    for lead_id, semantics in Deal.objects.filter(lead_id__in=ids, deleted_at__isnull=True) \
            .values_list("lead_id", "stage_semantics"):
        status[lead_id] = max(status.get(lead_id, NONE), WON if semantics == "success" else LIVE)
    deltas = []
    for lead in leads:
        new = status.get(lead.pk, NONE)
        if new == lead.deal_status:
            continue
        if lead.deleted_at is None:
            state = daily.state_of(lead)
            deltas += [(k, -c, -a) for k, c, a in daily.deal_rows(entity_types.LEAD, state, lead.deal_status)]
            deltas += daily.deal_rows(entity_types.LEAD, state, new)
        Lead.objects.filter(pk=lead.pk).update(deal_status=new)
    daily.apply(deltas)


class LeadStatusHook(Hook):
    """Keeps ``Lead.deal_status`` right on every write to deals."""

    def after_create(self, actor: Actor, contexts: Sequence[WriteContext]) -> None:
        sync(c.obj.lead_id for c in contexts)

    def after_update(self, actor: Actor, ctx: WriteContext) -> None:
        old = ctx.before.get("lead", ctx.obj.lead_id)
        if old != ctx.obj.lead_id or ctx.state.get("move"):
            sync([old, ctx.obj.lead_id])

    def after_delete(self, obj, spec) -> None:
        sync([obj.lead_id])

    def after_restore(self, obj, spec) -> None:
        sync([obj.lead_id])
