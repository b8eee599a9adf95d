from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Task(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    title = models.CharField(_("title"), max_length=255)
    description = models.TextField(_("description"), blank=True)
    deadline = models.DateTimeField(_("deadline"), null=True, blank=True)
    responsible = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tasks",
                                    verbose_name=_("responsible"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    observers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="observed_tasks",
                                       verbose_name=_("observers"))
    entity_type_id = models.PositiveIntegerField(null=True, blank=True)
    entity_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    result = models.TextField(_("result"), blank=True)
    # an approval task: the stage the linked record moves to on each outcome, {"approved": …, "rejected": …}
    approval = models.JSONField(_("approval"), default=dict, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, blank=True,
                               choices=[("approved", _("Approved")), ("rejected", _("Rejected"))])
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    cause = models.CharField(max_length=100, blank=True)
    # F22: a five-field cron expression (``recurrence.py``); completing the task creates the next occurrence
    recurrence = models.CharField(_("recurrence"), max_length=100, blank=True)
    recurrence_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="next_occurrence", verbose_name=_("previous occurrence"))

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        indexes = [
            models.Index(fields=["responsible", "status", "deadline"], name="task_resp_idx"),
            models.Index(fields=["entity_type_id", "entity_id"], name="task_record_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        return self.status == self.Status.OPEN and self.deadline is not None and self.deadline < timezone.now()


class Notification(models.Model):
    """An in-app message to one user, optionally about a record (robots, stage time limits, mentions)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications",
                             verbose_name=_("user"))
    text = models.TextField(_("text"))
    entity_type_id = models.PositiveIntegerField(null=True, blank=True)
    entity_id = models.BigIntegerField(null=True, blank=True)
    link = models.CharField(_("link"), max_length=500, blank=True)
    is_read = models.BooleanField(_("read"), default=False)
    created_at = models.DateTimeField(default=timezone.now)
    cause = models.CharField(max_length=100, blank=True)  # e.g. "robot:12", "limit:3"
    emailed = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "is_read", "-id"], name="notification_user_idx")]

    def __str__(self) -> str:
        return self.text[:60]
