"""Smart processes (F5): kinds of staged records an administrator defines at run time.

Every type is a row of ``SmartType`` whose primary key is its entity type id (1030 upward, as Bitrix24's
dynamic types); all their items live in one table, ``SmartItem``, told apart by ``entity_type_id``. The
registry (``registry.py``) gives each type its own entry, write-path spec and queryset scope, so pipelines,
stages, history, robots, rights, the UI and the API treat an item like a deal, with no per-type code.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from voronka.core.records import Record
from voronka.pipelines.models import PipelineItem

#: entities a type's items may point at with their own fields
LINKABLE = ("contact", "company")


class SmartType(models.Model):
    """A smart process (items with pipelines and stages) or a custom list (rows without stages, F6)."""

    class Kind(models.TextChoices):
        PROCESS = "process", _("Smart process")
        LIST = "list", _("List")

    id = models.PositiveIntegerField(_("entity type id"), primary_key=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.PROCESS)
    code = models.SlugField(_("code"), max_length=40, unique=True,
                            help_text=_("Latin letters, digits and hyphens; used in addresses and robot files."))
    name = models.CharField(_("name"), max_length=100)
    name_plural = models.CharField(_("name, plural"), max_length=100)
    links = models.JSONField(_("links to"), default=list, blank=True)  # subset of LINKABLE
    use_opportunity = models.BooleanField(_("has an amount"), default=True)
    sort = models.IntegerField(_("order"), default=100)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("changed"), default=timezone.now)

    class Meta:
        ordering = ["sort", "id"]
        verbose_name = _("smart process")
        verbose_name_plural = _("smart processes")

    def __str__(self) -> str:
        return self.name_plural


class SmartItem(PipelineItem):
    """An item of any smart process; ``entity_type_id`` says which."""

    entity_type_id = models.PositiveIntegerField(_("entity type"), editable=False)
    contact = models.ForeignKey("parties.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("contact"), db_index=False)
    company = models.ForeignKey("parties.Company", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("company"), db_index=False)
    begin_date = models.DateField(_("start date"), null=True, blank=True)
    close_date = models.DateField(_("end date"), null=True, blank=True)

    class Meta:
        verbose_name = _("item")
        verbose_name_plural = _("items")
        indexes = [
            models.Index(fields=["entity_type_id", "id"], name="item_type_idx"),
            models.Index(fields=["stage", "id"], name="item_stage_idx"),
            models.Index(fields=["stage", "created_at", "id"], name="item_stage_created_idx"),
            models.Index(fields=["pipeline", "id"], name="item_pipeline_idx"),
            models.Index(fields=["entity_type_id", "responsible", "id"], name="item_resp_idx"),
            models.Index(fields=["entity_type_id", "created_at", "id"], name="item_created_idx"),
            models.Index(fields=["contact", "id"], name="item_contact_idx"),
            models.Index(fields=["company", "id"], name="item_company_idx"),
        ]

    @property
    def ENTITY_TYPE_ID(self) -> int:  # noqa: N802 - the name every record answers to
        return self.entity_type_id


class ListRow(Record):
    """A row of any custom list (F6), e.g. a licence: its own fields are custom fields of the list's type."""

    entity_type_id = models.PositiveIntegerField(_("entity type"), editable=False)
    title = models.CharField(_("title"), max_length=255)
    contact = models.ForeignKey("parties.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("contact"), db_index=False)
    company = models.ForeignKey("parties.Company", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("company"), db_index=False)
    comment = models.TextField(_("comment"), blank=True)
    source = models.CharField(_("source"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("row")
        verbose_name_plural = _("rows")
        indexes = [
            models.Index(fields=["entity_type_id", "id"], name="listrow_type_idx"),
            models.Index(fields=["entity_type_id", "responsible", "id"], name="listrow_resp_idx"),
            models.Index(fields=["entity_type_id", "created_at", "id"], name="listrow_created_idx"),
            models.Index(fields=["entity_type_id", "title", "id"], name="listrow_title_idx"),
            models.Index(fields=["contact", "id"], name="listrow_contact_idx"),
            models.Index(fields=["company", "id"], name="listrow_company_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def ENTITY_TYPE_ID(self) -> int:  # noqa: N802
        return self.entity_type_id
