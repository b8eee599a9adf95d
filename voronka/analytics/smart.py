"""Reports on smart processes (issue 7): what differs from deals.

The stage funnel, time in each stage, items by pipeline and period, time to close and lost reasons are the deal
reports themselves, taking the smart process as ``entity`` (``reports.py``: they read the kind's records through
the entity-type registry and the read models keyed by entity type). Only the managers' table differs: leads and
their speed make no sense for a production order, so a process gets its own columns here — load now and efficiency
in the period over its items alone.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Sum
from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.actor import Actor

from .params import Params
from .reports import (
    Column,
    Report,
    _entity_code,
    _open_load,
    _totals,
    in_period,
    items,
    median,
    money,
    pct,
    row_filter,
)


def managers(actor: Actor, p: Params) -> Report:
    """Per responsible: items in progress now (count, amount), their open tasks past the deadline; items created in the
    period, closed successfully in the period (count, amount), successful of closed, median time from creation to
    success. Only the items the viewer may read count, and only their responsibles are listed."""
    from voronka.activities.models import Task
    from voronka.identity.models import User

    type_id = p.entity
    info = entity_types.get(type_id)
    qs = items(actor, p, type_id)
    load = _open_load(actor, p, type_id, qs)
    new = dict(in_period(qs, p, "created_at").values("responsible_id").annotate(n=Count("id")).order_by()
               .values_list("responsible_id", "n"))
    closed = in_period(qs.exclude(stage_semantics="process"), p, "closed_at")
    won = {r["responsible_id"]: r for r in closed.filter(stage_semantics="success").values("responsible_id")
           .annotate(n=Count("id"), amount=Sum("opportunity")).order_by()}
    closed_n = dict(closed.values("responsible_id").annotate(n=Count("id")).order_by()
                    .values_list("responsible_id", "n"))
    times: dict = defaultdict(list)
    for uid, created, at in closed.filter(stage_semantics="success").values_list("responsible_id", "created_at",
                                                                                  "closed_at"):
        times[uid].append(max(0.0, (at - created).total_seconds()))
    # tasks past their deadline on the items of this process the viewer may read, by the task's responsible
    overdue = dict(Task.objects.filter(entity_type_id=type_id, entity_id__in=qs.filter(stage_semantics="process")
                                       .values("id"), status="open", deadline__lt=p.now)
                   .values("responsible_id").annotate(n=Count("id")).order_by().values_list("responsible_id", "n"))
    user_ids = (set(load) | set(new) | set(won) | set(closed_n)) - {None}
    users = {u.pk: u for u in User.objects.filter(pk__in=user_ids)}
    rows = []
    for uid in sorted(user_ids, key=lambda i: str(users.get(i, ""))):
        base = {**row_filter(p, None), "responsible": str(uid)}
        for k in ("created_from", "created_to"):
            base.pop(k)
        rows.append({
            "key": uid, "label": str(users.get(uid, uid)), "filter": base,
            "open": load.get(uid, {}).get("n", 0), "open_amount": money(load.get(uid, {}).get("amount")),
            "overdue_tasks": overdue.get(uid, 0), "new": new.get(uid, 0),
            "won": won.get(uid, {}).get("n", 0), "won_amount": money(won.get(uid, {}).get("amount")),
            "win_rate": pct(won.get(uid, {}).get("n", 0), closed_n.get(uid, 0)),
            "close_median": median(times.get(uid, [])),
        })
    totals = _totals(rows, ["open", "open_amount", "overdue_tasks", "new", "won", "won_amount"])
    totals["win_rate"] = pct(totals["won"], sum(closed_n.get(uid, 0) for uid in user_ids))
    code = _entity_code(type_id)
    created = {"created_from": p.date_from.isoformat(), "created_to": p.date_to.isoformat()}
    closed_in = {"closed_from": p.date_from.isoformat(), "closed_to": p.date_to.isoformat()}
    cols = [Column("open", _("In progress now"), entity=code, filter={"semantics": "process"}),
            Column("open_amount", _("Their amount"), "money"), Column("overdue_tasks", _("Overdue tasks")),
            Column("new", _("Created in the period"), entity=code, filter=created),
            Column("won", _("Successful in the period"), entity=code, filter={**closed_in, "semantics": "success"}),
            Column("won_amount", _("Successful amount"), "money"),
            Column("win_rate", _("Successful of closed"), "percent"),
            Column("close_median", _("Time to success, median"), "duration")]
    return Report("managers", _("Manager load and efficiency: %(items)s") % {"items": info.label_plural.capitalize()},
                  p, cols, rows, totals, chart_value="won",
                  notes=[_("Load is now (items in progress, their tasks past the deadline); efficiency is over the "
                           "period (items created, items closed). Only the items you may read count.")])
