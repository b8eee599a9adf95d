"""Sales plans against the fact with a forecast weighted by stage (F47), and client portraits (F46)."""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal

from django.db.models import Case, Count, F, IntegerField, Q, Value, When
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.errors import ValidationFailed
from voronka.core.selectors import records_visible_to

from .actions import can_plan
from .models import SalesPlan
from .params import Params, entity_code
from .reports import ZERO, Column, Definition, Report, in_period, items, money, pct

DEAL = entity_types.DEAL


def plan_end(plan: SalesPlan) -> datetime.date:
    months = {"month": 1, "quarter": 3, "year": 12}[plan.period]
    y, m = plan.starts_on.year, plan.starts_on.month + months
    y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return datetime.date(y, m, 1) - datetime.timedelta(days=1)


def stage_probabilities(pipeline_ids=None) -> dict[int, int]:
    """{stage id: % chance of winning}: the analytics setting, else spread evenly over the in-progress stages
    in their order (the first of four gets 20 %, the last 80 %); success 100, failure 0."""
    from voronka.pipelines.models import Stage

    # deals' and smart processes' stages (plans may be set per smart-process pipeline)
    stages = Stage.objects.exclude(pipeline__entity_type_id=entity_types.LEAD).select_related("analytics").order_by(
        "pipeline_id", "sort", "id")
    if pipeline_ids is not None:
        stages = stages.filter(pipeline_id__in=pipeline_ids)
    by_pipeline: dict[int, list] = defaultdict(list)
    for s in stages:
        by_pipeline[s.pipeline_id].append(s)
    out = {}
    for stage_list in by_pipeline.values():
        process = [s for s in stage_list if s.semantics == "process"]
        for s in stage_list:
            setting = getattr(s, "analytics", None)
            if setting is not None and setting.probability is not None:
                out[s.pk] = setting.probability
            elif s.semantics == "success":
                out[s.pk] = 100
            elif s.semantics == "failure":
                out[s.pk] = 0
            else:
                out[s.pk] = round(100 * (process.index(s) + 1) / (len(process) + 1))
    return out


def visible_plans(actor: Actor, p: Params):
    qs = SalesPlan.objects.filter(starts_on__gte=p.date_from.replace(day=1), starts_on__lte=p.date_to)
    if p.pipeline is not None:
        qs = qs.filter(pipeline_id=p.pipeline)
    if p.responsible is not None:
        qs = qs.filter(user_id=p.responsible)
    if p.department is not None:
        qs = qs.filter(department_id=p.department)
    # a plan for a smart process's pipeline is shown to those who may read that process
    from .params import smart_types

    qs = qs.filter(Q(pipeline__isnull=True) | Q(pipeline__entity_type_id__lt=entity_types.FIRST_DYNAMIC)
                   | Q(pipeline__entity_type_id__in=[i.id for i in smart_types(actor)]))
    if not can_plan(actor):
        user = actor.user
        mine = Q(user_id=user.pk) if user is not None else Q(pk__in=[])
        if user is not None and user.department_id:
            mine |= Q(department_id=user.department_id)
        qs = qs.filter(mine | Q(user__isnull=True, department__isnull=True))
    return qs.select_related("user", "department", "pipeline").order_by("starts_on", "period", "id")


def plan_fact(actor: Actor, p: Params) -> Report:
    from voronka.identity.models import Department

    plans = list(visible_plans(actor, p))
    chances = stage_probabilities()
    today = p.now.astimezone(p.zone).date()
    rows = []
    for plan in plans:
        end = plan_end(plan)
        start_at = datetime.datetime.combine(plan.starts_on, datetime.time(), p.zone)
        end_at = datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time(), p.zone)
        kind = plan.pipeline.entity_type_id if plan.pipeline_id else DEAL  # deals, or a smart process's items
        deals = records_visible_to(actor, kind)
        if plan.user_id:
            deals = deals.filter(responsible_id=plan.user_id)
        if plan.department_id:
            dept = Department.objects.get(pk=plan.department_id)
            deals = deals.filter(responsible__department_id__in=sorted(dept.descendant_ids()))
        if plan.pipeline_id:
            deals = deals.filter(pipeline_id=plan.pipeline_id)
        won = deals.filter(stage_semantics="success", closed_at__gte=start_at, closed_at__lt=end_at)
        fact_amount = money(sum((a or ZERO for a in won.values_list("opportunity", flat=True)), ZERO))
        fact_count = won.count()
        expected = Q(close_date__gte=plan.starts_on, close_date__lte=end)
        if plan.starts_on <= today <= end:
            expected |= Q(close_date__isnull=True)
        weighted = ZERO
        weighted_count = Decimal(0)
        own_chance = F("probability") if hasattr(deals.model, "probability") else Value(None, IntegerField())
        for stage_id, amount, own in deals.filter(expected, stage_semantics="process").annotate(_own=own_chance) \
                .values_list("stage_id", "opportunity", "_own"):
            chance = Decimal(own if own is not None else chances.get(stage_id, 0)) / 100
            weighted += Decimal(amount or 0) * chance
            weighted_count += chance
        who = str(plan.user) if plan.user_id else (plan.department.name if plan.department_id else _("Company"))
        label = f"{plan.starts_on:%Y-%m} {plan.get_period_display()}: {who}" + \
            (f" · {plan.pipeline.name}" if plan.pipeline_id else "")
        f = {"closed_from": plan.starts_on.isoformat(), "closed_to": end.isoformat(), "semantics": "success"}
        if plan.user_id:
            f["responsible"] = str(plan.user_id)
        if plan.department_id:
            f["department"] = str(plan.department_id)
        if plan.pipeline_id:
            f["pipeline"] = str(plan.pipeline_id)
        forecast = money(fact_amount + weighted)
        rows.append({"key": plan.pk, "label": label, "filter": f, "entity": entity_code(kind),
                     "plan_amount": money(plan.amount),
                     "fact_amount": fact_amount, "done": pct(fact_amount, plan.amount),
                     "forecast_amount": forecast, "forecast_done": pct(forecast, plan.amount),
                     "plan_count": plan.count, "fact_count": fact_count,
                     "forecast_count": round(float(fact_count + weighted_count), 1)})
    cols = [Column("plan_amount", _("Plan, amount"), "money"),
            Column("fact_amount", _("Fact, amount"), "money"), Column("done", _("Done"), "percent"),
            Column("forecast_amount", _("Forecast, amount"), "money"),
            Column("forecast_done", _("Forecast of plan"), "percent"),
            Column("plan_count", _("Plan, deals")), Column("fact_count", _("Won deals"), entity="deal"),
            Column("forecast_count", _("Forecast, deals"))]
    return Report("plan-fact", _("Sales plan and fact"), p, cols, rows, {}, chart_value="done",
                  notes=[_("Fact: deals won and closed within the plan's period. Forecast: the fact plus every open "
                           "deal expected to close in the period (by its expected close date; in the current period "
                           "also those without one), weighted by the deal's probability or else its stage's.")])


AGE_BANDS = ((0, 18, "<18"), (18, 25, "18–24"), (25, 35, "25–34"), (35, 45, "35–44"), (45, 55, "45–54"),
             (55, 65, "55–64"), (65, 200, "65+"))
PORTRAITS = {"age": 3, "gender": 3, "city": 3, "company_type": 4, "industry": 4, "size": 4}


def _age(birthday: datetime.date, today: datetime.date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


def _years_before(today: datetime.date, years: int) -> datetime.date:
    """The latest birthday of someone ``years`` old or older today (by ``_age``): the same day ``years`` years
    earlier, or 28 February when today is 29 February and that year has none."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def portrait(actor: Actor, p: Params) -> Report:
    from voronka.parties.models import Company, Contact

    by = p.extra.get("by", "age")
    if by not in PORTRAITS:
        raise ValidationFailed(_("Choose what to group by."), fields={"by": [", ".join(PORTRAITS)]})
    type_id = PORTRAITS[by]
    field = {"age": "birthday", "gender": "gender", "city": "city", "company_type": "company_type",
             "industry": "industry", "size": "employees"}[by]
    link = "contact" if type_id == 3 else "company"
    won_deals = in_period(items(actor, p, DEAL).filter(stage_semantics="success"), p, "closed_at")
    qs = records_visible_to(actor, type_id)
    if p.responsible is not None:
        qs = qs.filter(responsible_id=p.responsible)
    counts: dict = defaultdict(lambda: {"all": 0, "won": 0})
    today = p.now.astimezone(p.zone).date()
    if by == "age":
        # the band of each contact by the database: «age ≥ N today» is «born on or before today N years ago», so
        # the bands are ranges of birthdays (one grouped statement instead of every contact read into Python)
        whens = [When(birthday__isnull=True, then=Value(-1)), When(birthday__gt=today, then=Value(-1)),
                 When(birthday__lte=_years_before(today, AGE_BANDS[-1][1]), then=Value(-1))]
        for i, (lo, _hi, _name) in reversed(list(enumerate(AGE_BANDS))):
            whens.append(When(birthday__lte=_years_before(today, lo), then=Value(i)))
        band_of = Case(*whens, default=Value(-1), output_field=IntegerField())
        names = {i: name for i, (_lo, _hi, name) in enumerate(AGE_BANDS)}
        for row in qs.annotate(band=band_of).values("band").annotate(
                n=Count("id"), won=Count("id", filter=Q(pk__in=won_deals.values(f"{link}_id")))).order_by():
            band = names.get(row["band"], _("unknown"))
            counts[band]["all"] += row["n"]
            counts[band]["won"] += row["won"]
        order = [b[2] for b in AGE_BANDS] + [_("unknown")]
    else:
        for row in qs.values(field).annotate(n=Count("id")).order_by():
            key = (row[field] or "").strip() if isinstance(row[field], str) else row[field]
            counts[key]["all"] += row["n"]
        for row in qs.filter(pk__in=won_deals.values(f"{link}_id")).values(field).annotate(n=Count("id")).order_by():
            key = (row[field] or "").strip() if isinstance(row[field], str) else row[field]
            counts[key]["won"] += row["n"]
        order = sorted(counts, key=lambda k: -counts[k]["all"])
    model = Contact if type_id == 3 else Company
    choices = dict(model._meta.get_field(field).choices or []) if by in ("gender", "company_type") else {}
    total = sum(v["all"] for v in counts.values())
    total_won = sum(v["won"] for v in counts.values())
    rows = []
    for key in order:
        if key not in counts:
            continue
        v = counts[key]
        label = str(choices.get(key, key)) if key else _("(not set)")
        rows.append({"key": key, "label": label, "all": v["all"], "share": pct(v["all"], total), "won": v["won"],
                     "won_share": pct(v["won"], total_won), "won_rate": pct(v["won"], v["all"]), "filter": {}})
    cols = [Column("all", _("All clients")), Column("share", _("Share of all"), "percent"),
            Column("won", _("Bought in the period")), Column("won_share", _("Share of buyers"), "percent"),
            Column("won_rate", _("Bought of the group"), "percent")]
    title = _("Contacts by %(x)s") if type_id == 3 else _("Companies by %(x)s")
    what = {"age": _("age"), "gender": _("gender"), "city": _("city"), "company_type": _("type"),
            "industry": _("industry"), "size": _("size")}[by]
    return Report("portrait", title % {"x": what}, p, cols, rows, {"all": total, "won": total_won}, chart="shares",
                  chart_value="all",
                  notes=[_("Every client you may read (not only new ones) against those who won a deal closed in the "
                           "period. Age is as of today; the city stands for the region.")])


REPORTS = {d.slug: d for d in (
    Definition("plan-fact", gettext_lazy("Sales plan and fact"), plan_fact, "deal", group="none"),
    Definition("portrait", gettext_lazy("Client portrait"), portrait, "deal", group="none", extra=("by",)),
)}
