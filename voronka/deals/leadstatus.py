"""What became of a lead's deals (``Lead.deal_status``: 0 none, 1 a live deal, 2 a live deal in a success stage),
kept in the same transaction as every write that can change it: a deal created, moved, re-pointed to another lead,
deleted or restored (``LeadStatusHook``) and a merge of leads, which re-points deals in bulk (``sync``). The
reports' lead → deal conversion reads it through the daily totals' ``deal`` rows (``pipelines.daily.deal_rows``).

The lead's end-to-end outcome (``Lead.chain_*``, ``outcome.outcomes``) is kept by the same writes, and by those that
change what was made from its sales deal: a write to an item (its stage, amount, deletion) re-reads the leads of
the deals it was made from (``leads_around``, through the links' target index), and a link made or removed
between deals re-reads the source deal's lead (``on_entry``, a history listener on the «linked» entries). The end-to-
end funnel reads it through the daily totals' ``chain…`` rows (``pipelines.daily.chain_rows``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import transaction

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.recordkit import Hook, WriteContext
from voronka.pipelines import daily

from . import outcome

WON, LIVE, NONE = 2, 1, 0


def sync(lead_ids: Iterable[int | None]) -> None:
    """Recompute the status of these leads from their live deals, and their end-to-end outcome (``outcome``: the
    ``chain_*`` columns); where either changed, store it and move the lead's ``deal`` and ``chain…`` rows in the
    daily totals (a lead in the recycle bin has no rows: only its columns change). The leads are locked first (in
    id order), so two writes to deals of one lead cannot both miss each other's deal."""
    ids = sorted({int(i) for i in lead_ids if i})
    if not ids:
        return
    with transaction.atomic(savepoint=False):  # one transaction with the write that called it (no savepoint);
        _sync(ids)  # its own where a caller runs outside one (a history listener called by hand, a script)


def _sync(ids: list[int]) -> None:
    from voronka.leads.models import Lead

    from .models import Deal

    leads = list(Lead.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    status: dict[int, int] = {}
    for lead_id, semantics in Deal.objects.filter(lead_id__in=ids, deleted_at__isnull=True) \
            .values_list("lead_id", "stage_semantics"):
        status[lead_id] = max(status.get(lead_id, NONE), WON if semantics == "success" else LIVE)
    found = outcome.outcomes(ids) if status else {}
    deltas = []
    for lead in leads:
        new, new_chain = status.get(lead.pk, NONE), found.get(lead.pk, outcome.NOTHING)
        old_chain = outcome.stored(lead)
        if new == lead.deal_status and new_chain == old_chain:
            continue
        if lead.deleted_at is None:
            state = daily.state_of(lead)
            deltas += [(k, -c, -a) for k, c, a in daily.deal_rows(entity_types.LEAD, state, lead.deal_status)]
            deltas += [(k, -c, -a) for k, c, a in daily.chain_rows(entity_types.LEAD, state, _chain(old_chain))]
            deltas += daily.deal_rows(entity_types.LEAD, state, new)
            deltas += daily.chain_rows(entity_types.LEAD, state, _chain(new_chain))
        Lead.objects.filter(pk=lead.pk).update(deal_status=new, **new_chain.columns())
    daily.apply(deltas)


def _chain(o: outcome.Outcome) -> tuple:
    return (o.code, o.revenue, o.items, o.cost, o.pipeline)


def leads_around(deal_ids: Iterable[int]) -> set[int]:
    """The leads whose outcome a write to these deals can change: their own leads and the leads of the deals they
    were made from (an item's status and amount are its source's cost and delivery)."""
    from .models import Deal

    ids = sorted({int(i) for i in deal_ids if i})
    up = outcome.upstream_of(ids)
    if not up:
        return set()
    return set(Deal.objects.filter(pk__in=sorted(up), lead_id__isnull=False).values_list("lead_id", flat=True))


def on_entry(entry) -> None:
    """A «linked» entry on a deal (a link made or removed by ``voronka.links``, or an item made by a robot): the
    source deal's lead may have gained or lost an item (history listener, in the write's transaction)."""
    if entry.kind != "linked" or entry.entity_type_id != entity_types.DEAL:
        return
    from .models import Deal

    lead_id = Deal.objects.filter(pk=entry.entity_id).values_list("lead_id", flat=True).first()
    if lead_id:
        sync([lead_id])


OUTCOME_FIELDS = ("lead", "pipeline", "opportunity")


def _same(a, b) -> bool:
    try:
        return Decimal(str(a or 0)) == Decimal(str(b or 0))
    except (ArithmeticError, ValueError):
        return a == b


class LeadStatusHook(Hook):
    """Keeps ``Lead.deal_status`` and the lead's end-to-end outcome right on every write to deals."""

    def after_create(self, actor: Actor, contexts: Sequence[WriteContext]) -> None:
        sync(c.obj.lead_id for c in contexts)

    def after_update(self, actor: Actor, ctx: WriteContext) -> None:
        old = ctx.before.get("lead", ctx.obj.lead_id)
        changed = ctx.state.get("move") or any(
            not _same(ctx.before[f], getattr(ctx.obj, f if f == "opportunity" else f"{f}_id"))
            for f in OUTCOME_FIELDS if f in ctx.before)
        if changed:
            sync({old, ctx.obj.lead_id} | leads_around([ctx.obj.pk]))

    def after_delete(self, obj, spec) -> None:
        sync({obj.lead_id} | leads_around([obj.pk]))

    def after_restore(self, obj, spec) -> None:
        sync({obj.lead_id} | leads_around([obj.pk]))
