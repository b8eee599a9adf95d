from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from voronka.core import entity_types
from voronka.core.records import UtmFields
from voronka.pipelines.models import PipelineItem


class Deal(PipelineItem, UtmFields):
    ENTITY_TYPE_ID = entity_types.DEAL

    contact = models.ForeignKey("parties.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="deals",
                                verbose_name=_("contact"))
    company = models.ForeignKey("parties.Company", null=True, blank=True, on_delete=models.SET_NULL, related_name="deals",
                                verbose_name=_("company"))
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="deals",
                             verbose_name=_("lead"))
    is_repeat = models.BooleanField(_("repeat sale"), default=False)
    probability = models.PositiveSmallIntegerField(_("probability, %"), null=True, blank=True)
    begin_date = models.DateField(_("start date"), null=True, blank=True)
    close_date = models.DateField(_("expected close date"), null=True, blank=True)

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        indexes = [
            models.Index(fields=["stage", "id"], name="deal_stage_idx"),
            models.Index(fields=["stage", "created_at", "id"], name="deal_stage_created_idx"),
            # the items waiting longest in a stage (analytics' «time in each stage»)
            models.Index(fields=["stage", "stage_changed_at", "id"], name="deal_stage_since_idx"),
            models.Index(fields=["pipeline", "id"], name="deal_pipeline_idx"),
            models.Index(fields=["opportunity", "id"], name="deal_amount_idx"),
            models.Index(fields=["responsible", "id"], name="deal_resp_idx"),
            models.Index(fields=["created_at", "id"], name="deal_created_idx"),
        ]
