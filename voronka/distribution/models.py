"""Queues that share new records among the employees who are at work (F14)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Queue(models.Model):
    class Mode(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("Round robin")
        LEAST_LOADED = "least_loaded", _("Least loaded")
        WEIGHTED = "weighted", _("Weighted")

    code = models.SlugField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=200)
    mode = models.CharField(_("mode"), max_length=20, choices=Mode.choices, default=Mode.ROUND_ROBIN)
    entity_type_id = models.PositiveIntegerField(_("entity type"), default=1)
    cap = models.PositiveIntegerField(_("open items per user at most"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    # members outside their working time (the working calendar: company week, holidays, own hours, absences)
    # count as away, like the at-work switch; the worker gives waiting items out when their working day starts
    working_hours = models.BooleanField(_("only during working hours (working calendar)"), default=False)
    # The round-robin pointer: the member who got the last item. Changed only under the queue's row lock.
    last_member = models.ForeignKey("QueueMember", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assigned_total = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("distribution queue")
        verbose_name_plural = _("distribution queues")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class QueueMember(models.Model):
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_memberships")
    weight = models.PositiveIntegerField(_("weight"), default=1)
    cap = models.PositiveIntegerField(_("open items at most"), null=True, blank=True)  # overrides the queue's cap
    sort = models.IntegerField(default=100)
    current_weight = models.BigIntegerField(default=0)  # smooth weighted round robin state
    assigned_count = models.BigIntegerField(default=0)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "user"], name="queue_member_uniq")]
        ordering = ["sort", "id"]

    def __str__(self) -> str:
        return f"{self.queue_id}:{self.user_id}"


class FreeItem(models.Model):
    """A record a queue could not give to anybody (nobody present or everybody at the cap): it waits here,
    without a responsible, until someone arrives, takes it, or a head assigns it."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="free_items")
    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity_type_id", "entity_id"], name="free_item_uniq")]
        indexes = [models.Index(fields=["queue", "id"], name="free_item_queue_idx")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.entity_type_id}:{self.entity_id}"
