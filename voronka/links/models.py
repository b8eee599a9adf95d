"""Links between any two records (deal ↔ production item, deal ↔ complaint, lead ↔ deal …).

A link has a direction (``source`` → ``target``: the deal is the source of the production item made
for it) and an optional ``role`` naming the relation (``production``, ``complaint`` …) so that robots,
triggers and reports can follow one kind of chain. Both cards show the link. Unlinking keeps the row
(``deleted_at``): reports and the history can still tell that two records were linked.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Link(models.Model):
    source_type_id = models.IntegerField(_("source kind"))
    source_id = models.BigIntegerField(_("source id"))
    target_type_id = models.IntegerField(_("target kind"))
    target_id = models.BigIntegerField(_("target id"))
    role = models.CharField(_("role"), max_length=50, blank=True, default="")
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    cause = models.CharField(max_length=100, blank=True, default="")
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        verbose_name = _("link")
        verbose_name_plural = _("links")
        constraints = [
            models.UniqueConstraint(fields=["source_type_id", "source_id", "target_type_id", "target_id", "role"],
                                    condition=Q(deleted_at__isnull=True), name="links_link_unique_live"),
            models.CheckConstraint(condition=~Q(source_type_id=models.F("target_type_id"), source_id=models.F("target_id")),
                                   name="links_link_not_self"),
        ]
        indexes = [
            models.Index(fields=["source_type_id", "source_id"], name="links_source_idx"),
            models.Index(fields=["target_type_id", "target_id"], name="links_target_idx"),
        ]

    def __str__(self):
        return f"{self.source_type_id}:{self.source_id} → {self.target_type_id}:{self.target_id} {self.role}".strip()

    def other(self, entity_type_id: int, entity_id: int) -> tuple[int, int]:
        """The far end of the link seen from one of its records."""
        if (self.source_type_id, self.source_id) == (entity_type_id, entity_id):
            return self.target_type_id, self.target_id
        return self.source_type_id, self.source_id
