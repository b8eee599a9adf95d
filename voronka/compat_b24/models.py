"""Incoming webhooks (URL credentials for the Bitrix24-compatible API) and event handlers with their deliveries."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SCOPES = ("crm", "user", "task")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Webhook(models.Model):
    """``/rest/<user id>/<secret>/<method>``: calls run with the user's rights, limited to the scopes.

    Only the hash of the secret is stored; the URL is shown once, when the webhook is created.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="b24_webhooks",
                             verbose_name=_("user"))
    name = models.CharField(_("name"), max_length=100, blank=True)
    secret_hash = models.CharField(max_length=64, db_index=True)
    hint = models.CharField(max_length=4, blank=True)  # the secret's last characters, to tell webhooks apart
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("incoming webhook")
        verbose_name_plural = _("incoming webhooks")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name or self.pk} ({self.user})"


class EventHandler(models.Model):
    """``event.bind``: POST a form-encoded notice to ``handler`` when ``event`` happens to a record the owner may read."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=60)  # upper-case, e.g. ONCRMLEADADD
    handler = models.URLField(max_length=500)
    application_token = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "handler", "user"], name="b24_handler_uniq")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.event} → {self.handler}"


class EventDelivery(models.Model):
    """One notice to one handler, retried with back-off by the worker until it is accepted or given up."""

    handler = models.ForeignKey(EventHandler, null=True, on_delete=models.SET_NULL, related_name="deliveries")
    outbox_event_id = models.BigIntegerField()
    event = models.CharField(max_length=60)
    url = models.URLField(max_length=500)
    body = models.JSONField(default=dict)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)  # gave up
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["handler", "outbox_event_id"], name="b24_delivery_uniq")]
        indexes = [models.Index(fields=["next_attempt_at"], name="b24_delivery_due_idx",
                                condition=models.Q(delivered_at__isnull=True, failed_at__isnull=True))]
