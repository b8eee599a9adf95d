"""Analytics settings and sales plans. The reports themselves read the domain tables (see reports.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StageSetting(models.Model):
    """What analytics needs to know about a stage: the chance that an item in it is won, and whether
    reaching it means a lead is qualified. A stage without a row gets the defaults of ``settings.py``."""

    stage = models.OneToOneField("pipelines.Stage", on_delete=models.CASCADE, related_name="analytics",
                                 verbose_name=_("stage"))
    probability = models.PositiveSmallIntegerField(_("probability of winning, %"), null=True, blank=True)
    qualifies = models.BooleanField(_("reaching it means qualified"), null=True, blank=True)

    class Meta:
        verbose_name = _("stage analytics setting")
        verbose_name_plural = _("stage analytics settings")

    def __str__(self) -> str:
        return f"{self.stage_id}: {self.probability}"


class SalesPlan(models.Model):
    """A sales plan (F47): an amount and a number of won deals for one period, for a user, a department,
    a pipeline or the whole company (all three empty)."""

    class Period(models.TextChoices):
        MONTH = "month", _("Month")
        QUARTER = "quarter", _("Quarter")
        YEAR = "year", _("Year")

    period = models.CharField(_("period"), max_length=10, choices=Period.choices, default=Period.MONTH)
    starts_on = models.DateField(_("starts on"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+", verbose_name=_("user"))
    department = models.ForeignKey("identity.Department", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="+", verbose_name=_("department"))
    pipeline = models.ForeignKey("pipelines.Pipeline", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="+", verbose_name=_("pipeline"))
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2, default=0)
    count = models.PositiveIntegerField(_("won deals"), default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_on", "id"]
        verbose_name = _("sales plan")
        verbose_name_plural = _("sales plans")
        indexes = [models.Index(fields=["starts_on", "period"], name="sales_plan_period_idx")]

    def __str__(self) -> str:
        return f"{self.period} {self.starts_on}"
