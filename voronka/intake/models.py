"""Intake: the log of every inbound payload, web forms, Telegram bots, per-source settings, the name index."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DuplicatePolicy(models.TextChoices):
    MERGE = "merge", _("Merge into the existing record")
    ATTACH = "attach", _("Attach to the existing record")
    FLAG = "flag", _("Create and flag for a duplicate check")
    CREATE = "create", _("Always create a new lead (its robots decide)")


class IntakeLog(models.Model):
    """One raw inbound payload, stored before it is processed, with what came of it. Nothing is lost:
    a payload whose processing crashed stays pending and can be replayed."""

    class Channel(models.TextChoices):
        FORM = "form", _("Web form")
        MAIL = "mail", _("E-mail")
        CALL = "call", _("Call")
        TELEGRAM = "telegram", _("Telegram")
        API = "api", _("Registration / API")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        PENDING = "pending", _("Pending")
        CREATED = "created", _("Created")
        MERGED = "merged", _("Merged")
        ATTACHED = "attached", _("Attached")
        REJECTED = "rejected", _("Rejected")
        IGNORED = "ignored", _("Ignored")

    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    source = models.CharField(_("source"), max_length=50, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    remote_addr = models.CharField(_("remote address"), max_length=45, blank=True)
    external_id = models.CharField(max_length=120, blank=True)  # Telegram update, call id: a retry is not new
    form = models.ForeignKey("WebForm", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    bot = models.ForeignKey("TelegramBot", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    mailbox = models.ForeignKey("Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user_id = models.BigIntegerField(null=True, blank=True)  # the token's user, for an authenticated channel
    meta = models.JSONField(default=dict, blank=True)  # referrer, origin, user agent …
    payload = models.JSONField(default=dict, blank=True)
    raw = models.TextField(blank=True)  # a payload that is not JSON (a mail message)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(_("reason"), blank=True)
    errors = models.JSONField(default=dict, blank=True)  # per-field messages of a rejection
    entity_type_id = models.PositiveIntegerField(null=True, blank=True)  # the main record it produced or touched
    entity_id = models.BigIntegerField(null=True, blank=True)
    produced = models.JSONField(default=list, blank=True)  # [[entity_type_id, id, "created" | "updated" …], …]
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)  # the traceback of a crash; the payload stays pending
    # a queued payload claimed by a worker: until then no other worker takes it (a worker that died mid-batch
    # lets it go when the time passes); the value is also the claim's token. Meaningless once processed.
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("intake log entry")
        verbose_name_plural = _("intake log")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "id"], name="intake_status_idx"),
            models.Index(fields=["channel", "remote_addr", "received_at"], name="intake_rate_idx"),
            models.Index(fields=["entity_type_id", "entity_id"], name="intake_record_idx"),
        ]
        constraints = [models.UniqueConstraint(fields=["channel", "external_id"], condition=~models.Q(external_id=""),
                                               name="intake_external_uniq")]

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk} {self.status}"


class IntakeSource(models.Model):
    """What to do with what comes from one source (a channel, a landing page, a registration handler)."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    duplicate_policy = models.CharField(_("duplicates"), max_length=10, choices=DuplicatePolicy.choices,
                                        default=DuplicatePolicy.ATTACH)
    queue = models.ForeignKey("distribution.Queue", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              verbose_name=_("distribution queue"))
    pipeline = models.ForeignKey("pipelines.Pipeline", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", verbose_name=_("pipeline"))
    stage = models.CharField(_("stage code"), max_length=60, blank=True)

    class Meta:
        verbose_name = _("intake source")
        verbose_name_plural = _("intake sources")

    def __str__(self) -> str:
        return self.name or self.code


def _slug_secret() -> str:
    return secrets.token_urlsafe(24)


class WebForm(models.Model):
    """A web form (F31): its fields map to lead fields, phones, e-mails or custom fields.

    ``mode``: «in the background» (the default of a new form) answers a submission once its fields are checked
    and the payload is logged as queued; the worker processes it within a second (duplicate control, the lead,
    distribution). «At once» does all of it inside the request (the visitor waits for it)."""

    class Mode(models.TextChoices):
        BACKGROUND = "background", _("In the background (answer at once, the worker processes it)")
        NOW = "now", _("At once (inside the request)")

    slug = models.SlugField(_("address"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=200)
    title = models.CharField(_("title shown"), max_length=200, blank=True)
    description = models.TextField(_("text above the fields"), blank=True)
    # [{"name": "phone", "label": "Телефон", "type": "tel", "required": true, "maps_to": "phones"}, …]
    fields = models.JSONField(_("fields"), default=list)
    consent_text = models.TextField(_("consent checkbox text"), blank=True)  # empty: no consent checkbox
    button = models.CharField(_("button"), max_length=100, blank=True)
    source = models.SlugField(_("source"), max_length=50)
    pipeline = models.ForeignKey("pipelines.Pipeline", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", verbose_name=_("pipeline"))
    stage = models.CharField(_("stage code"), max_length=60, blank=True)
    queue = models.ForeignKey("distribution.Queue", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              verbose_name=_("distribution queue"))
    duplicate_policy = models.CharField(_("duplicates"), max_length=10, choices=DuplicatePolicy.choices, blank=True)
    mode = models.CharField(_("processing"), max_length=10, choices=Mode.choices, default=Mode.BACKGROUND)
    success_message = models.TextField(_("success message"), blank=True)
    redirect_url = models.URLField(_("redirect after sending"), blank=True)
    allowed_origins = models.JSONField(_("sites allowed to embed it"), default=list, blank=True)
    language = models.CharField(_("language"), max_length=5, blank=True)  # empty: the visitor's
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("web form")
        verbose_name_plural = _("web forms")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TelegramBot(models.Model):
    """A Telegram bot whose webhook is /intake/telegram/<secret>/ (set it with Telegram's setWebhook)."""

    name = models.CharField(_("name"), max_length=200)
    secret = models.CharField(max_length=64, unique=True, default=_slug_secret)
    header_token = models.CharField(max_length=256, blank=True)  # setWebhook's secret_token, checked if set
    source = models.SlugField(_("source"), max_length=50, default="telegram")
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("Telegram bot")
        verbose_name_plural = _("Telegram bots")

    def __str__(self) -> str:
        return self.name


class TelegramChat(models.Model):
    """A Telegram chat and the record its messages go to."""

    bot = models.ForeignKey(TelegramBot, on_delete=models.CASCADE, related_name="chats")
    chat_id = models.BigIntegerField()
    username = models.CharField(max_length=100, blank=True)
    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bot", "chat_id"], name="telegram_chat_uniq")]

    def __str__(self) -> str:
        return f"{self.bot_id}:{self.chat_id}"


class NameKey(models.Model):
    """The name index of duplicate search, so that similar names are found through an index, never by a scan.

    Keys: ``p`` — a pair of a person's name words, each cut to its first letters (``иванов иван петрович``
    gives «ива ива» and «ива пет»: two people with two similar name words share a key even with a typo later
    in a word), or the one word of a one-word name; ``f`` — all the words of a name, sorted (the exact
    person among many who share the pairs); ``q`` — such a pair joined to the person's company key
    (``ива ива|ромашка``); ``c`` — a company's normalised name. Every row carries the record's normalised
    name words and company key, so candidates are scored from the rows the index walk returns, without
    loading a record.
    """

    class Kind(models.TextChoices):
        FULL = "f", _("Whole name")
        PAIR = "p", _("Name words")
        PAIR_AT_COMPANY = "q", _("Name words at a company")
        COMPANY = "c", _("Company")

    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    kind = models.CharField(max_length=1, choices=Kind.choices)
    key = models.CharField(max_length=100)
    words = models.CharField(max_length=300, blank=True, default="")  # the record's normalised name words
    company = models.CharField(max_length=100, blank=True, default="")  # the record's company key

    class Meta:
        indexes = [
            # one key's newest records first (no sort of a common name's rows), with every column a walk reads: a
            # walk is one range of this index and reads no table row (an index-only scan on PostgreSQL)
            models.Index(fields=["kind", "key", "-entity_id", "entity_type_id", "words", "company"],
                         name="namekey_walk_idx"),
            models.Index(fields=["entity_type_id", "entity_id"], name="namekey_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


class DuplicateMark(models.Model):
    """A record created with a possible duplicate: a head checks it (merge or dismiss)."""

    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    matches = models.JSONField(default=list)  # [{"entity_type_id": 1, "id": 5, "reasons": ["phone"], "score": 100}]
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["entity_type_id", "entity_id"], name="dupmark_record_idx")]

    def __str__(self) -> str:
        return f"{self.entity_type_id}:{self.entity_id}"


class Mailbox(models.Model):
    """An intake mailbox (F32): polled over IMAP by the worker, or fed by the built-in SMTP endpoint
    (``voronka mail-smtpd``) for the recipient addresses it accepts."""

    class Kind(models.TextChoices):
        IMAP = "imap", _("IMAP mailbox (polled)")
        SMTP = "smtp", _("Built-in SMTP endpoint")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.IMAP)
    source = models.SlugField(_("source"), max_length=50, default="mail")
    is_active = models.BooleanField(_("active"), default=True)
    imap_host = models.CharField(_("IMAP server"), max_length=255, blank=True)
    imap_port = models.PositiveIntegerField(_("IMAP port"), default=993)
    imap_tls = models.BooleanField(_("TLS"), default=True)
    imap_login = models.CharField(_("login"), max_length=255, blank=True)
    imap_password = models.TextField(_("password"), blank=True)  # encrypted: ``secretbox.seal``
    imap_folder = models.CharField(_("folder"), max_length=255, default="INBOX")
    poll_seconds = models.PositiveIntegerField(_("poll every (seconds)"), default=60)
    # SMTP: the envelope recipients this mailbox accepts, lower case ("sales@crm.example.ru")
    recipients = models.JSONField(_("accepted recipient addresses"), default=list, blank=True)
    # IMAP state: the folder's UIDVALIDITY and the highest UID stored in the intake log
    uid_validity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    last_polled_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("intake mailbox")
        verbose_name_plural = _("intake mailboxes")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MailMessage(models.Model):
    """A processed inbound message and the record it went to: replies thread by Message-ID."""

    message_id = models.CharField(max_length=500)
    log = models.ForeignKey(IntakeLog, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["message_id"], name="mailmsg_msgid_idx"),
                   models.Index(fields=["entity_type_id", "entity_id"], name="mailmsg_record_idx")]

    def __str__(self) -> str:
        return self.message_id


class MailAttachment(models.Model):
    """A file that came with an inbound message, kept under the media directory and shown on the
    timeline entry of the message (read rights are those of the record)."""

    log = models.ForeignKey(IntakeLog, on_delete=models.CASCADE, related_name="+")
    entry_id = models.BigIntegerField(null=True, blank=True)  # the timeline entry of the message
    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    file = models.FileField(upload_to="mail/%Y/%m/", max_length=300)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=150, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["entity_type_id", "entity_id"], name="mailatt_record_idx")]

    def __str__(self) -> str:
        return self.filename
