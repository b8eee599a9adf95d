from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from voronka.core import entity_types
from voronka.core.records import UtmFields
from voronka.pipelines.models import PipelineItem


class Source(models.Model):
    """Where a first contact came from: one value per web form, channel or campaign (F1, F31, F36)."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    sort = models.IntegerField(default=100)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["sort", "name"]
        verbose_name = _("source")
        verbose_name_plural = _("sources")

    def __str__(self) -> str:
        return self.name


class Lead(PipelineItem, UtmFields):
    ENTITY_TYPE_ID = entity_types.LEAD

    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    middle_name = models.CharField(_("middle name"), max_length=100, blank=True)
    company_name = models.CharField(_("company name"), max_length=255, blank=True)
    position = models.CharField(_("position"), max_length=200, blank=True)
    inquiry = models.TextField(_("what was asked"), blank=True)
    address = models.CharField(_("address"), max_length=500, blank=True)
    contact = models.ForeignKey("parties.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="leads",
                                verbose_name=_("contact"))
    company = models.ForeignKey("parties.Company", null=True, blank=True, on_delete=models.SET_NULL, related_name="leads",
                                verbose_name=_("company"))
    converted_at = models.DateTimeField(_("converted"), null=True, blank=True)
    # what became of the lead's deals, kept by the deals' writes (``voronka/deals/leadstatus.py``) for the reports'
    # lead conversion: 0 no live deal, 1 a live deal, 2 a live deal in a success stage
    deal_status = models.PositiveSmallIntegerField(default=0, editable=False)
    # the first action a person took on the lead (``voronka/leads/firstaction.py``): the reports' «time to first action»
    first_action_at = models.DateTimeField(null=True, blank=True, editable=False)
    # the lead end to end (``voronka/deals/outcome.py``), kept by the deals' and links' writes with ``deal_status``
    # for the end-to-end funnel: the outcome code (0 no sales deal, 1 deal open, 2 lost, 3 won, 4 delivered,
    # 5 an item failed), the revenue (the won sales deal's amount), the items made from the sales deal (count and
    # amounts: cost), the sales deal and its current pipeline. Nullable with a database default, so that adding
    # them to a large table is one ALTER TABLE … ADD COLUMN on both databases (no rewrite); never NULL in practice.
    chain_outcome = models.PositiveSmallIntegerField(null=True, blank=True, db_default=models.Value(0), editable=False)
    chain_revenue = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True, db_default=models.Value(0),
                                        editable=False)
    chain_items = models.PositiveIntegerField(null=True, blank=True, db_default=models.Value(0), editable=False)
    chain_cost = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True, db_default=models.Value(0),
                                     editable=False)
    chain_pipeline = models.PositiveIntegerField(null=True, blank=True, db_default=models.Value(0), editable=False)
    chain_deal = models.PositiveBigIntegerField(null=True, blank=True, db_default=models.Value(0), editable=False)

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        indexes = [
            models.Index(fields=["stage", "id"], name="lead_stage_idx"),
            models.Index(fields=["stage", "created_at", "id"], name="lead_stage_created_idx"),
            # the items waiting longest in a stage (analytics' «time in each stage»)
            models.Index(fields=["stage", "stage_changed_at", "id"], name="lead_stage_since_idx"),
            models.Index(fields=["pipeline", "id"], name="lead_pipeline_idx"),
            models.Index(fields=["responsible", "id"], name="lead_resp_idx"),
            models.Index(fields=["created_at", "id"], name="lead_created_idx"),
            models.Index(fields=["source", "id"], name="lead_source_idx"),
            # the converted leads only (~12 % of them): the end-to-end funnel's revenue for a viewer who may not
            # read every deal sums these under his rights (analytics.reports._chain_money)
            models.Index(fields=["responsible", "created_at"], condition=models.Q(chain_outcome__gt=0),
                         name="lead_chain_idx"),
        ]

    @staticmethod
    def refresh_analytics() -> None:
        """Recompute ``first_action_at`` from the timeline (``voronka analytics-rebuild`` calls it)."""
        from .firstaction import refresh

        refresh()

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.middle_name) if p)
