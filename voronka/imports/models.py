"""Import jobs (F52): one uploaded file, its column mapping, progress, counts and the rejected rows."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ImportJob(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Mode(models.TextChoices):
        MATCH_OR_CREATE = "match_or_create", _("Match existing, create when missing")
        MATCH_ONLY = "match_only", _("Only match existing")
        ALWAYS_CREATE = "always_create", _("Always create new")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("who"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    entity_type_id = models.PositiveIntegerField(_("what is imported"))
    file_name = models.CharField(_("file name"), max_length=255)
    file_path = models.CharField(max_length=500)  # inside the default storage
    file_format = models.CharField(max_length=10)  # csv | xlsx
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=2, blank=True)
    headers = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)  # {"column header": "deal.title"}
    mode = models.CharField(_("matching"), max_length=20, choices=Mode.choices, default=Mode.MATCH_OR_CREATE)
    options = models.JSONField(default=dict, blank=True)  # match_by, batch size …
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)  # rows of committed batches: where a resume starts
    created_count = models.PositiveIntegerField(_("created"), default=0)
    matched_count = models.PositiveIntegerField(_("matched"), default=0)
    rejected_count = models.PositiveIntegerField(_("rejected"), default=0)
    stats = models.JSONField(default=dict, blank=True)  # {"contact": {"created": 3, "matched": 5}, …}
    attempt = models.PositiveIntegerField(default=0)  # bumped by every runner that claims the job
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        indexes = [models.Index(fields=["created_by", "id"]), models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return self.file_name

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(100, int(self.processed_rows * 100 / self.total_rows))


class RejectedRow(models.Model):
    """A row that was not imported, with the reasons per column (the downloadable report)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejected")
    row_number = models.PositiveIntegerField()  # as in the spreadsheet: the header is row 1
    errors = models.JSONField(default=list)  # [{"column": "Телефон", "field": "contact.phones", "message": "…"}]
    values = models.JSONField(default=list)  # the row's cells as read

    class Meta:
        indexes = [models.Index(fields=["job", "row_number"])]
