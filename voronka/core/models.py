"""Infrastructure tables that know no domain: the timeline/history and the event outbox."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TimelineEntry(models.Model):
    """One append-only line of a record's history: a change, a stage move, a comment, a task …

    ``entity_type_id``/``entity_id`` name the record it happened on; ``TimelineBinding``
    rows show the same entry on other records too (a lead's history on the deal it became).
    """

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        UPDATED = "updated", _("Changed")
        STAGE = "stage", _("Stage changed")
        DELETED = "deleted", _("Deleted")
        RESTORED = "restored", _("Restored")
        COMMENT = "comment", _("Comment")
        TASK = "task", _("Task")
        CONVERTED = "converted", _("Converted")
        LINKED = "linked", _("Linked")
        RESPONSIBLE = "responsible", _("Responsible changed")
        CALL = "call", _("Call")
        MAIL = "mail", _("E-mail")
        AUTOMATION = "automation", _("Automation")

    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    actor_kind = models.CharField(max_length=10, default="user")
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    actor_label = models.CharField(max_length=200, blank=True)
    entry_point = models.CharField(max_length=20, blank=True)
    cause = models.CharField(max_length=100, blank=True)
    text = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)  # {"field": [old, new]}
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["entity_type_id", "entity_id", "-id"], name="timeline_record_idx")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.entity_type_id}:{self.entity_id}"


class TimelineBinding(models.Model):
    entry = models.ForeignKey(TimelineEntry, on_delete=models.CASCADE, related_name="bindings")
    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity_type_id", "entity_id", "entry"], name="timeline_binding_uniq")]


class OutboxEvent(models.Model):
    """A domain event written in the same transaction as the change that caused it."""

    name = models.CharField(max_length=60)
    entity_type_id = models.PositiveIntegerField(null=True)
    entity_id = models.BigIntegerField(null=True)
    payload = models.JSONField(default=dict)
    actor_kind = models.CharField(max_length=10, default="user")
    actor_user_id = models.BigIntegerField(null=True)
    cause = models.CharField(max_length=100, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)  # a dispatcher's lease; expired = claim again
    attempts = models.PositiveSmallIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], name="outbox_pending_idx", condition=models.Q(dispatched_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"


class Observer(models.Model):
    """A user who follows a record (F30) and may read it whatever the role says."""

    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "entity_type_id", "entity_id"], name="observer_uniq")]
        indexes = [models.Index(fields=["entity_type_id", "entity_id"], name="observer_record_idx")]


class AuditEvent(models.Model):
    """Sensitive operations: exports, deletions, restores, purges, rights changes, logins."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40)
    actor_kind = models.CharField(max_length=10)
    actor_user_id = models.BigIntegerField(null=True)
    actor_label = models.CharField(max_length=200, blank=True)
    entry_point = models.CharField(max_length=20, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    entity_type_id = models.PositiveIntegerField(null=True)
    entity_id = models.BigIntegerField(null=True)
    count = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"


class ConfigVersion(models.Model):
    """A counter bumped in the same transaction as every change of CRM settings (pipelines, stages, fields).

    Processes cache settings keyed by this number: one tiny read per write instead of reloading them.
    """

    key = models.CharField(max_length=30, primary_key=True)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}={self.version}"
