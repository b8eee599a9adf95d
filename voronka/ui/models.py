"""UI preferences: saved list and board views."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SavedView(models.Model):
    """Filters, columns and stages of a list or board, saved by a user for themselves or shared with a role (F16)."""

    entity_type_id = models.PositiveIntegerField()
    name = models.CharField(_("name"), max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="saved_views")
    role = models.ForeignKey("identity.Role", null=True, blank=True, on_delete=models.CASCADE, related_name="saved_views",
                             verbose_name=_("shared with role"))
    params = models.JSONField(default=dict)  # {"stage": [ids], "responsible": "me", "columns": [...], ...}
    is_default = models.BooleanField(_("open by default"), default=False)
    sort = models.IntegerField(default=100)

    class Meta:
        ordering = ["sort", "name"]

    def __str__(self) -> str:
        return self.name
