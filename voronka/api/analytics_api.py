"""Analytics over the API: every report as JSON, CSV or XLSX; sales plans; stage probabilities.

Reports take their filters as query parameters (``date_from``, ``date_to``, ``group``, ``entity``, ``pipeline``,
``source``, ``responsible``, ``department``, ``cf_<code>`` and the report's own, e.g. ``reason_field``); every
figure is narrowed to what the caller may read. See docs/analytics.md for the definitions.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status
from pydantic import BaseModel, Field

from voronka.analytics import actions, export, plans, reports
from voronka.analytics.models import SalesPlan
from voronka.analytics.params import parse

from .schemas import MAX_ID, Id, Strict, responses

router = Router(tags=["Analytics"])


class ReportInfo(BaseModel):
    slug: str
    title: str
    url: str
    entities: list[str] = Field(description="What `entity` may say: lead, deal, the smart processes you may read.")


class ReportList(BaseModel):
    items: list[ReportInfo]


class PlanIn(Strict):
    period: Literal["month", "quarter", "year"] = "month"
    starts_on: datetime.date = Field(description="Any day of the period; kept as its first day.")
    amount: Decimal = Field(Decimal(0), ge=0, lt=Decimal("1e16"))
    count: int = Field(0, ge=0, le=10**9, description="Won deals planned.")
    user: int | None = Field(None, ge=1, le=MAX_ID)
    department: int | None = Field(None, ge=1, le=MAX_ID)
    pipeline: int | None = Field(None, ge=1, le=MAX_ID)


class PlanOut(BaseModel):
    id: int
    period: str
    starts_on: datetime.date
    amount: Decimal
    count: int
    user: int | None
    department: int | None
    pipeline: int | None


class PlanList(BaseModel):
    items: list[PlanOut]


class StageSettingIn(Strict):
    probability: int | None = Field(None, ge=0, le=100, description="% chance of winning from this stage.")
    qualifies: bool | None = Field(None, description="Reaching this lead stage means the lead is qualified.")


class StageSettingOut(BaseModel):
    stage: int
    probability: int | None
    qualifies: bool | None


def _plan(plan: SalesPlan) -> dict:
    return {"id": plan.pk, "period": plan.period, "starts_on": plan.starts_on, "amount": plan.amount,
            "count": plan.count, "user": plan.user_id, "department": plan.department_id, "pipeline": plan.pipeline_id}


@router.get("", response=responses({200: ReportList}), summary="The reports")
def list_reports(request: HttpRequest):
    every = {**reports.REPORTS, **plans.REPORTS}
    return {"items": [{"slug": d.slug, "title": str(d.title), "url": f"/api/v1/analytics/{d.slug}",
                       "entities": reports.entities(request.auth, d)} for d in every.values()]}


@router.get("/plans", response=responses({200: PlanList}), summary="Sales plans in a period")
def list_plans(request: HttpRequest):
    p = parse(request.auth, request.GET)
    return {"items": [_plan(x) for x in plans.visible_plans(request.auth, p)]}


@router.post("/plans", response=responses({201: PlanOut}), summary="Set a sales plan (replaces the same one)")
def save_plan(request: HttpRequest, payload: PlanIn):
    return Status(201, _plan(actions.save_plan(request.auth, **payload.model_dump())))


@router.delete("/plans/{plan_id}", response=responses({204: None}), summary="Delete a sales plan")
def delete_plan(request: HttpRequest, plan_id: Id):
    actions.delete_plan(request.auth, plan_id)
    return Status(204, None)


@router.put("/stages/{stage_id}", response=responses({200: StageSettingOut}),
            summary="A stage's probability of winning and qualification mark")
def set_stage(request: HttpRequest, stage_id: Id, payload: StageSettingIn):
    obj = actions.set_stage_setting(request.auth, stage_id, **payload.model_dump())
    return {"stage": obj.stage_id, "probability": obj.probability, "qualifies": obj.qualifies}


@router.get("/{report}", response=responses({200: dict[str, Any]}), summary="A report (JSON, CSV or XLSX)",
            description="Add `format=csv` or `format=xlsx` to download it (needs the export right); "
                        "any other query parameter is a filter (see docs/analytics.md).")
def report(request: HttpRequest, report: str):
    fmt = request.GET.get("format") or "json"
    result = reports.run(request.auth, report, request.GET)
    if fmt == "json":
        return export.as_dict(result)
    d = reports.definition(report)
    content, ctype, name = export.export(request.auth, result, reports.export_entity(d, result.params), fmt)
    response = HttpResponse(content, content_type=ctype)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
