"""Reports (issue 8): the list of reports, one page per report (filters, an SVG chart, a table whose numbers
open the records behind them, export), dashboards for a head and for a manager, and sales plans.

Every figure comes from ``voronka.analytics`` with the signed-in user as the actor, so it is narrowed to
what the user may read.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from voronka.analytics import actions as analytics_actions
from voronka.analytics import plans, reports
from voronka.analytics.params import GROUPS, TIME_GROUPS, entity_code, smart_types
from voronka.core import entity_types, policies
from voronka.core.errors import ActionError, NotFound, ValidationFailed
from voronka.core.memo import scope as memo_scope

from . import charts
from .templatetags.ui import decimal_separator, money, seconds
from .views import actor_of, page

LIST_URL = {"lead": "/crm/leads/", "deal": "/crm/deals/"}
CARD_URL = {1: "/crm/leads/{}/", 2: "/crm/deals/{}/"}
GROUP_LABELS = {"day": gettext_lazy("day"), "week": gettext_lazy("week"), "month": gettext_lazy("month"),
                "quarter": gettext_lazy("quarter"), "year": gettext_lazy("year"), "source": gettext_lazy("source"),
                "user": gettext_lazy("responsible"), "department": gettext_lazy("department"),
                "pipeline": gettext_lazy("pipeline"), "none": gettext_lazy("no grouping")}
EXTRA_CHOICES = {
    "support": {"by": (("company", gettext_lazy("company")), ("contact", gettext_lazy("contact")))},
    "portrait": {"by": (("age", gettext_lazy("contacts by age")), ("gender", gettext_lazy("contacts by gender")),
                        ("city", gettext_lazy("contacts by city")),
                        ("company_type", gettext_lazy("companies by type")),
                        ("industry", gettext_lazy("companies by industry")),
                        ("size", gettext_lazy("companies by size")))},
}


def can_see_reports(actor) -> bool:
    return any(policies.can(actor, policies.READ, t) for t in (entity_types.LEAD, entity_types.DEAL)) \
        or bool(smart_types(actor))


def fmt(value, kind: str) -> str:
    if value is None or value == "":
        return "—"
    if kind == "money":
        return money(value)
    if kind == "percent":
        # the language's decimal separator: «12,8 %» in Russian, «12.8 %» in English
        return f"{value:.1f} %".replace(".", decimal_separator()) if isinstance(value, float) else f"{value} %"
    if kind == "duration":
        s = float(value)
        if s >= 86400 and s % 86400 >= 3600:
            return f"{seconds(s)} {seconds(s % 86400)}"
        return seconds(s) if s >= 60 else _("under a minute")
    return str(value)


def list_url(entity: str, filters: dict) -> str | None:
    """The list behind a number: leads, deals or a smart process's items (``/crm/<code>/``), with the filters."""
    base = LIST_URL.get(entity) or (f"/crm/{entity}/" if entity else None)
    if base is None:
        return None
    return base + "?" + urlencode({k: v for k, v in filters.items() if v not in (None, "")})


def card_url(type_id: int, pk: int) -> str:
    if type_id in CARD_URL:
        return CARD_URL[type_id].format(pk)
    return f"/crm/{entity_code(type_id)}/{pk}/"


def table(report: reports.Report) -> dict:
    cols = report.columns
    rows = []
    for r in report.rows:
        cells = []
        for c in cols:
            value = r.get(c.key)
            # a row may say which list it opens (a plan for a smart-process pipeline opens that process's items)
            entity = (r.get("entity") or c.entity) if c.entity else ""
            url = list_url(entity, {**r.get("filter", {}), **c.filter}) if entity and value not in (None, 0) else None
            cells.append({"text": fmt(value, c.kind), "url": url, "kind": c.kind})
        slowest = [{**x, "url": card_url(report.params.entity, x["id"]),
                    "text": fmt(x["seconds"], "duration")} for x in r.get("slowest") or []]
        rows.append({"label": r.get("label", ""), "cells": cells, "slowest": slowest})
    totals = None
    if report.totals and any(c.key in report.totals for c in cols):
        totals = [fmt(report.totals.get(c.key), c.kind) if c.key in report.totals else "" for c in cols]
    return {"columns": cols, "rows": rows, "totals": totals}


def chart(report: reports.Report, *, kind: str | None = None, value: str | None = None):
    value = value or report.chart_value
    col = next((c for c in report.columns if c.key == value), None)
    if col is None:
        return ""
    points = []
    for r in report.rows:
        v = r.get(value)
        url = list_url(col.entity, {**r.get("filter", {}), **col.filter}) if col.entity else None
        points.append((str(r.get("label", "")), float(v or 0), fmt(v, col.kind), url))
    return charts.draw(kind or report.chart, points, title=f"{report.title}: {col.label}")


def _choices(actor, report_entity: int, values):
    from voronka.customfields.models import FieldDefinition
    from voronka.identity.models import Department, User
    from voronka.leads.models import Source
    from voronka.pipelines.models import Pipeline

    fields = list(FieldDefinition.objects.filter(entity_type_id=report_entity,
                                                 kind__in=["enum", "boolean", "integer", "string"]))
    kinds = {info.id: info.label_plural.capitalize() for info in smart_types(actor)}
    pipelines = list(Pipeline.objects.filter(entity_type_id__in=[1, 2, *kinds]).order_by("entity_type_id", "sort", "id"))
    for pipe in pipelines:  # a smart process's pipelines are labelled with its name in the picker
        pipe.kind_label = kinds.get(pipe.entity_type_id, "")
    return {
        "pipelines": pipelines,
        "kinds": [{"code": info.code, "id": info.id, "label": kinds[info.id]} for info in smart_types(actor)],
        "sources": list(Source.objects.filter(is_active=True)),
        "users": list(User.objects.filter(is_active=True).order_by("first_name", "last_name")),
        "departments": list(Department.objects.order_by("name")),
        "fields": fields,
        "custom": [{"code": f.code, "label": f.label, "value": values.get(f"cf_{f.code}", "")} for f in fields],
    }


@login_required
def index(request):
    actor = actor_of(request)
    if not can_see_reports(actor):
        return page(request, "ui/analytics/none.html", {}, nav="reports", status=404)
    every = [*reports.REPORTS.values(), *plans.REPORTS.values()]
    return page(request, "ui/analytics/index.html", {"reports": every,
                                                     "can_plan": analytics_actions.can_plan(actor)}, nav="reports")


@login_required
def report_page(request, slug: str):
    actor = actor_of(request)
    if not can_see_reports(actor) or (slug not in reports.REPORTS and slug not in plans.REPORTS):
        return page(request, "ui/analytics/none.html", {}, nav="reports", status=404)
    d = reports.definition(slug)
    result, error = None, None
    try:
        result = reports.run(actor, slug, request.GET)
    except ValidationFailed as exc:
        error = exc
    except NotFound:  # a smart process the viewer may not read, or none: the same «not found»
        return page(request, "ui/analytics/none.html", {}, nav="reports", status=404)
    values = request.GET
    entity = result.params.entity if result is not None else \
        (1 if (values.get("entity") or d.entity) == "lead" else 2)
    context = {"d": d, "report": result, "error": error, "values": values, "groups": GROUPS,
               "group_labels": GROUP_LABELS, "time_groups": TIME_GROUPS, "extra": EXTRA_CHOICES.get(slug, {}),
               "choices": _choices(actor, entity, values), "entity": entity,
               "can_export": policies.can(actor, policies.EXPORT, entity_types.by_code(
                   reports.export_entity(d, result.params) if result is not None else d.entity).id)}
    context["form_from"] = result.params.date_from.isoformat() if result else values.get("date_from", "")
    context["form_to"] = result.params.date_to.isoformat() if result else values.get("date_to", "")
    if result is not None:
        context["table"] = table(result)
        context["chart"] = chart(result)
        context["query"] = urlencode(result.params.query())
        context["group"] = result.params.group
        context["lost"] = [{**x, "url": list_url(reports._entity_code(result.params.entity), x["filter"]),
                            "amount_text": money(x["amount"])} for x in result.details.get("lost", [])]
    status = 422 if error else 200
    return page(request, "ui/analytics/report.html", context, nav="reports", status=status)


def _dashboard_report(actor, slug, query):
    try:
        return reports.run(actor, slug, query)
    except ActionError:
        return None


def _kpi(report, key, kind):
    if report is None:
        return "—"
    return fmt(report.totals.get(key), kind)


@login_required
def dashboard(request, who: str = "head"):
    """The head's dashboard (everything the head may read) or «my» dashboard (the user's own records)."""
    actor = actor_of(request)
    if not can_see_reports(actor):
        return page(request, "ui/analytics/none.html", {}, nav="reports", status=404)
    q = QueryDict(mutable=True)
    days = 0
    try:
        from voronka.analytics.params import parse

        p = parse(actor, request.GET)
        days = (p.date_to - p.date_from).days + 1
    except ValidationFailed as exc:
        messages.error(request, exc.message + " " + "; ".join(m for v in exc.fields.values() for m in v))
    for key in ("date_from", "date_to", "pipeline"):
        if request.GET.get(key):
            q[key] = request.GET[key]
    if who == "me":
        q["responsible"] = str(actor.user_id)
    with memo_scope():  # the eleven reports share the read models' checks (one read of each per page)
        return _dashboard_page(request, actor, who, q, chart_grain(days))


def chart_grain(days: int) -> str:
    """The time grain of the dashboard's «new leads» chart for a period of ``days``: a bar a day up to a month, a
    week up to a quarter, then a month (a year by day would be 365 bars nobody can read, and the daily read-model
    rows of a whole year instead of twelve monthly ones)."""
    if days <= 31:
        return "day"
    return "week" if days <= 92 else "month"


def _dashboard_page(request, actor, who, q, grain: str = "day"):
    by_time = q.copy()
    by_time["group"] = grain
    leads = _dashboard_report(actor, "new-leads", by_time)
    conversion = _dashboard_report(actor, "lead-conversion", q)
    by_source = q.copy()
    by_source["group"] = "source"
    sources = _dashboard_report(actor, "new-leads", by_source)
    funnel = _dashboard_report(actor, "funnel", q)
    lost = _dashboard_report(actor, "lost-reasons", q)
    deals_q = q.copy()
    deals_q["group"] = "none"
    deals = _dashboard_report(actor, "deals", deals_q)
    amounts = _dashboard_report(actor, "deal-amount", deals_q)
    managers = _dashboard_report(actor, "managers", q)
    plan = _dashboard_report(actor, "plan-fact", q)
    e2e = _dashboard_report(actor, "end-to-end", deals_q)
    widgets = [
        {"title": {"day": _("New leads by day"), "week": _("New leads by week"),
                   "month": _("New leads by month")}[grain], "chart": chart(leads) if leads else ""},
        {"title": funnel.title if funnel else _("Stage funnel"), "chart": chart(funnel) if funnel else ""},
        {"title": _("Sources of new leads"), "chart": chart(sources, kind="shares") if sources else ""},
        {"title": _("Lost reasons"), "chart": chart(lost) if lost else ""},
    ]
    kpis = [
        (_("New leads"), _kpi(leads, "leads", "int")),
        (_("Lead → deal"), _kpi(conversion, "deal_rate", "percent")),
        (_("Lead → won deal (end to end)"), _kpi(e2e, "won_rate", "percent")),
        (_("Revenue, counted once"), _kpi(e2e, "revenue", "money")),
        (_("Won deals"), _kpi(amounts, "won", "int")),
        (_("Average won deal"), _kpi(amounts, "avg", "money")),
        (_("Open deals created in the period"), _kpi(deals, "open", "int")),
        (_("Overdue tasks"), _kpi(managers, "overdue_tasks", "int")),
    ]
    context = {"who": who, "kpis": kpis, "widgets": widgets, "values": request.GET,
               "managers": table(managers) if managers else None,
               "plan": table(plan) if plan and plan.rows else None,
               "form_from": leads.params.date_from.isoformat() if leads else request.GET.get("date_from", ""),
               "form_to": leads.params.date_to.isoformat() if leads else request.GET.get("date_to", "")}
    return page(request, "ui/analytics/dashboard.html", context, nav="reports")


@login_required
def plans_page(request):
    from voronka.identity.models import Department, User
    from voronka.pipelines.models import Stage

    actor = actor_of(request)
    if not can_see_reports(actor):
        return page(request, "ui/analytics/none.html", {}, nav="reports", status=404)
    result, error = None, None
    try:
        result = reports.run(actor, "plan-fact", request.GET)
    except ValidationFailed as exc:
        error = exc
    stages = []
    if policies.can(actor, "settings:pipelines", 0):
        chances = plans.stage_probabilities()
        kinds = [2, *(i.id for i in smart_types(actor))]
        for s in Stage.objects.filter(pipeline__entity_type_id__in=kinds, semantics="process").select_related(
                "pipeline", "analytics").order_by("pipeline__sort", "pipeline_id", "sort", "id"):
            setting = getattr(s, "analytics", None)
            stages.append({"stage": s, "value": setting.probability if setting else None, "default": chances.get(s.pk)})

    context = {"report": result, "error": error, "table": table(result) if result else None,
               "form_from": result.params.date_from.isoformat() if result else request.GET.get("date_from", ""),
               "form_to": result.params.date_to.isoformat() if result else request.GET.get("date_to", ""),
               "can_plan": analytics_actions.can_plan(actor), "stages": stages, "values": request.GET,
               "users": User.objects.filter(is_active=True).order_by("first_name"),
               "departments": Department.objects.order_by("name"),
               "pipelines": _plan_pipelines(actor)}
    return page(request, "ui/analytics/plans.html", context, nav="reports", status=422 if error else 200)


def _plan_pipelines(actor) -> list:
    """Deal pipelines and those of the smart processes the viewer may read, the latter named with their process."""
    from voronka.pipelines.models import Pipeline

    kinds = {i.id: i.label_plural.capitalize() for i in smart_types(actor)}
    out = list(Pipeline.objects.filter(entity_type_id__in=[2, *kinds]).order_by("entity_type_id", "sort", "id"))
    for pipe in out:
        if pipe.entity_type_id in kinds:
            pipe.name = f"{kinds[pipe.entity_type_id]} · {pipe.name}"
    return out


def _int_or_none(value):
    return int(value) if (value or "").isdigit() else None


@login_required
@require_POST
def plan_save(request):
    actor = actor_of(request)
    data = request.POST
    try:
        analytics_actions.save_plan(actor, period=data.get("period") or "month", starts_on=data.get("starts_on") or None,
                                    amount=data.get("amount") or 0, count=data.get("count") or 0,
                                    user=_int_or_none(data.get("user")),
                                    department=_int_or_none(data.get("department")),
                                    pipeline=_int_or_none(data.get("pipeline")))
        messages.success(request, _("The plan is saved."))
    except ActionError as exc:
        details = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in (exc.fields or {}).items())
        messages.error(request, f"{exc.message} {details}".strip())
    return HttpResponseRedirect(reverse("ui:report_plans") + "?" + urlencode(
        {k: request.POST.get(k) for k in ("date_from", "date_to") if request.POST.get(k)}))


@login_required
@require_POST
def stage_probabilities(request):
    actor = actor_of(request)
    try:
        for key, value in request.POST.items():
            if key.startswith("stage_") and key[6:].isdigit():
                analytics_actions.set_stage_setting(actor, int(key[6:]), probability=value.strip() or None)
        messages.success(request, _("Probabilities are saved."))
    except ActionError as exc:
        details = "; ".join(f"{', '.join(map(str, v))}" for v in (exc.fields or {}).values())
        messages.error(request, f"{exc.message} {details}".strip())
    return HttpResponseRedirect(reverse("ui:report_plans"))
