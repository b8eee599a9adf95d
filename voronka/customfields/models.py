from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class FieldDefinition(models.Model):
    """A field an administrator added to an entity type (optionally only in one pipeline).

    Values live in the record's ``custom`` JSON column under ``code``.
    """

    class Kind(models.TextChoices):
        STRING = "string", _("String")
        TEXT = "text", _("Text")
        INTEGER = "integer", _("Integer")
        DECIMAL = "decimal", _("Number")
        MONEY = "money", _("Money")
        DATE = "date", _("Date")
        DATETIME = "datetime", _("Date and time")
        BOOLEAN = "boolean", _("Yes/No")
        ENUM = "enum", _("List")
        USER = "user", _("User")
        LINK = "link", _("Link to a record")

    entity_type_id = models.PositiveIntegerField(_("entity type"))
    pipeline = models.ForeignKey("pipelines.Pipeline", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="field_definitions", verbose_name=_("only in pipeline"))
    code = models.CharField(_("code"), max_length=50, validators=[RegexValidator(r"^uf_[a-z0-9_]{1,46}$",
                            _("A code starts with uf_ and has only small Latin letters, digits and _."))])
    label = models.CharField(_("label"), max_length=200)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)
    required = models.BooleanField(_("required"), default=False)
    multiple = models.BooleanField(_("multiple"), default=False)
    options = models.JSONField(_("options"), default=dict, blank=True)  # enum: {"choices": [{"id": "x", "label": ".."}]}
    max_length = models.PositiveIntegerField(default=255)
    sort = models.IntegerField(default=100)
    is_filterable = models.BooleanField(_("filterable"), default=False)

    class Meta:
        ordering = ["entity_type_id", "sort", "id"]
        constraints = [models.UniqueConstraint(fields=["entity_type_id", "code"], name="field_code_uniq")]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")

    def __str__(self) -> str:
        return f"{self.label} ({self.code})"

    def choice_ids(self) -> list[str]:
        return [str(c["id"]) for c in self.options.get("choices", [])]
