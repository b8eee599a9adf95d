"""The abstract record every CRM entity shares: responsible, audit stamps, soft delete, custom fields."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Record(models.Model):
    ENTITY_TYPE_ID: int = 0

    # Indexes: each concrete model declares (responsible, id); single-column FK indexes would only slow writes.
    responsible = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("responsible"), db_index=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"), db_index=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("changed"), default=timezone.now)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    custom = models.JSONField(_("custom fields"), default=dict, blank=True)
    is_open = models.BooleanField(_("available to everyone"), default=True)

    class Meta:
        abstract = True

    @property
    def entity_ref(self) -> tuple[int, int]:
        return (self.ENTITY_TYPE_ID, self.pk)


class UtmFields(models.Model):
    """Advertising attribution (F36): the UTM tags of the visit a record came from."""

    utm_source = models.CharField("utm_source", max_length=255, blank=True)
    utm_medium = models.CharField("utm_medium", max_length=255, blank=True)
    utm_campaign = models.CharField("utm_campaign", max_length=255, blank=True)
    utm_content = models.CharField("utm_content", max_length=255, blank=True)
    utm_term = models.CharField("utm_term", max_length=255, blank=True)

    class Meta:
        abstract = True
