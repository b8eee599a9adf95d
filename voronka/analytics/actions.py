"""Every write of analytics: stage probabilities and qualification marks, sales plans (F47)."""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import audit, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed

from .models import SalesPlan, StageSetting


def can_plan(actor: Actor) -> bool:
    """Plans are set by those who may configure pipelines or users (heads and administrators)."""
    return policies.can(actor, "settings:pipelines", 0) or policies.can(actor, "settings:users", 0)


def _require_plan(actor: Actor) -> None:
    if not can_plan(actor):
        raise PermissionDenied(_("You do not have the right to set sales plans."), code="forbidden_settings")


def set_stage_setting(actor: Actor, stage_id: int, *, probability=None, qualifies=None) -> StageSetting:
    """The chance of winning from a stage (0–100, empty = the default) and whether reaching it qualifies a lead."""
    from voronka.pipelines.models import Stage

    policies.require(actor, "settings:pipelines", 0)
    stage = Stage.objects.filter(pk=stage_id).first() if isinstance(stage_id, int) else None
    if stage is None:
        raise NotFound(_("No such stage."))
    errors = {}
    if probability not in (None, ""):
        try:
            probability = int(probability)
        except (TypeError, ValueError):
            probability = -1
        if not 0 <= probability <= 100:
            errors["probability"] = [_("A whole number from 0 to 100.")]
    else:
        probability = None
    if qualifies not in (None, True, False):
        errors["qualifies"] = [_("Must be true or false.")]
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), fields=errors)
    with transaction.atomic():
        obj, _created = StageSetting.objects.select_for_update().get_or_create(stage=stage)
        before = obj.qualifies
        obj.probability, obj.qualifies = probability, qualifies
        obj.save()
        if before != qualifies:  # which stages qualify a lead changed: the cached set, the read model's rows
            from voronka.core import config_cache
            from voronka.pipelines import stays

            config_cache.bump()
            stays.speed_stale(stage.pipeline.entity_type_id)
    return obj


def _period_start(period: str, day) -> datetime.date:
    if isinstance(day, str):
        try:
            day = datetime.date.fromisoformat(day)
        except ValueError:
            raise ValidationFailed(_("Some fields are not valid."),
                                   fields={"starts_on": [_("Must be a date like 2026-01-31.")]}) from None
    if not isinstance(day, datetime.date):
        raise ValidationFailed(_("Some fields are not valid."), fields={"starts_on": [_("This field is required.")]})
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def save_plan(actor: Actor, *, period: str = "month", starts_on, amount=0, count=0, user: int | None = None,
              department: int | None = None, pipeline: int | None = None) -> SalesPlan:
    """Set (create or replace) the plan of one period for one user, department, pipeline or the company."""
    from voronka.identity.models import Department, User
    from voronka.pipelines.models import Pipeline

    _require_plan(actor)
    errors: dict[str, list[str]] = {}
    if period not in SalesPlan.Period.values:
        errors["period"] = [_("month, quarter or year")]
        period = "month"
    start = _period_start(period, starts_on)
    try:
        amount = Decimal(str(amount if amount not in (None, "") else 0))
        if not amount.is_finite() or amount < 0 or amount >= Decimal("1e16"):
            raise InvalidOperation
    except InvalidOperation:
        errors["amount"] = [_("A sum of money, not negative.")]
    try:
        count = int(count or 0)
        if count < 0 or count > 10**9:
            raise ValueError
    except (TypeError, ValueError):
        errors["count"] = [_("A whole number, not negative.")]
    for name, model, value in (("user", User, user), ("department", Department, department),
                               ("pipeline", Pipeline, pipeline)):
        if value is not None and (not isinstance(value, int) or not model.objects.filter(pk=value).exists()):
            errors[name] = [_("not found")]
    if user is not None and department is not None:
        errors["department"] = [_("A plan is for a user or for a department, not both.")]
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), fields=errors)
    with transaction.atomic():
        key = {"period": period, "starts_on": start, "user_id": user, "department_id": department,
               "pipeline_id": pipeline}
        plan = SalesPlan.objects.select_for_update().filter(**key).first() or SalesPlan(**key)
        plan.amount, plan.count, plan.created_by_id, plan.updated_at = amount, count, actor.user_id, timezone.now()
        plan.save()
        audit.record(actor, "analytics.plan_saved", plan=plan.pk, amount=str(amount), count=count)
    return plan


def delete_plan(actor: Actor, plan_id: int) -> None:
    _require_plan(actor)
    with transaction.atomic():
        plan = SalesPlan.objects.select_for_update().filter(pk=plan_id).first()
        if plan is None:
            raise NotFound(_("No such plan."))
        plan.delete()
        audit.record(actor, "analytics.plan_deleted", plan=plan_id)
