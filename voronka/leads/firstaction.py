"""The first action a person took on a lead (``Lead.first_action_at``), for the reports' «time to first action».

An action is a timeline entry of one of ``ACTION_KINDS`` written by a person or a person's API token (robots do not
count). ``history.entry`` calls ``on_entry`` with every entry it saves, in the write's transaction: the first such
entry on a lead sets the column and adds the lead's ``first`` row to the durations' read model
(``pipelines.StayTotal``, see ``stays.contribution``), keyed by the lead's current attributes like its other rows;
``StageHook`` moves that row with them afterwards. Cost: one statement per person's action on a lead (the locked read
of the lead), two more on the first one. ``refresh`` recomputes the column from the timeline after bulk loads
(``voronka analytics-rebuild``).
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Min, OuterRef, Subquery

from voronka.core import entity_types

ACTION_KINDS = ("stage", "comment", "task", "call", "mail", "updated", "converted", "responsible")
PEOPLE = ("user", "token")
STATE = ("created_at", "closed_at", "pipeline_id", "stage_id", "stage_semantics", "responsible_id", "is_open",
         "source", "opportunity", "first_action_at")


def on_entry(entry) -> None:
    if entry.entity_type_id != entity_types.LEAD or entry.actor_kind not in PEOPLE or entry.kind not in ACTION_KINDS:
        return
    note(entry.entity_id, entry.created_at)


def note(lead_id: int, at) -> None:
    """The lead had a person's action at ``at``: keep the earliest one, with its read-model row (in the caller's
    transaction; one of its own when called outside any)."""
    if not connection.in_atomic_block:
        with transaction.atomic():
            return note(lead_id, at)
    from voronka.pipelines import stays

    from .models import Lead

    row = Lead.objects.select_for_update().filter(pk=lead_id, deleted_at__isnull=True).values(*STATE).first()
    if row is None or (row["first_action_at"] is not None and row["first_action_at"] <= at):
        return
    Lead.objects.filter(pk=lead_id).update(first_action_at=at)
    state = {**row, "semantics": row["stage_semantics"]}
    stays.change(stays.first_rows(entity_types.LEAD, state), stays.first_rows(entity_types.LEAD,
                                                                              {**state, "first_action_at": at}))


def actions():
    from voronka.core.models import TimelineEntry

    return TimelineEntry.objects.filter(entity_type_id=entity_types.LEAD, actor_kind__in=PEOPLE,
                                        kind__in=ACTION_KINDS)


def refresh() -> int:
    """Recompute every lead's ``first_action_at`` from the timeline (one UPDATE; bulk loads bypass ``on_entry``).
    Returns the number of leads changed."""
    from .models import Lead

    first = actions().filter(entity_id=OuterRef("pk")).values("entity_id").annotate(m=Min("created_at")).values("m")
    Lead.objects.filter(first_action_at__isnull=False).exclude(pk__in=actions().values("entity_id")) \
        .update(first_action_at=None)
    return Lead.objects.filter(pk__in=actions().values("entity_id")).update(first_action_at=Subquery(first))
