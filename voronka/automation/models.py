"""Robots on stages, stage time limits, their timers, and the run records of the engine."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

UNITS = ("minutes", "hours", "days")


class Robot(models.Model):
    """Does one action when an item enters (or is created in) a stage, after an optional delay and conditions."""

    class Trigger(models.TextChoices):
        ON_ENTER = "on_enter", _("When an item enters the stage (created there or moved in)")
        ON_CREATE = "on_create", _("When an item is created in the stage")

    class Delay(models.TextChoices):
        NONE = "none", _("At once")
        AFTER = "after", _("After a time")
        AT_FIELD = "at_field", _("At a date field plus or minus an offset")
        WORKING = "working", _("At the next working time of the responsible (plus working time)")

    class Action(models.TextChoices):
        CREATE_TASK = "create_task", _("Create a task")
        NOTIFY = "notify", _("Notify")
        SET_FIELDS = "set_fields", _("Set fields")
        CHANGE_RESPONSIBLE = "change_responsible", _("Change the responsible")
        MOVE_STAGE = "move_stage", _("Move to a stage")
        RETURN_TO_ORIGIN = "return_to_origin", _("Return to the pipeline it came from")
        CREATE_LINKED = "create_linked", _("Create a linked record")
        MOVE_LINKED = "move_linked", _("Move linked records to a stage")
        COMMENT = "comment", _("Add a comment")
        WEBHOOK = "webhook", _("Call a webhook")
        EMAIL_CLIENT = "email_client", _("Send an e-mail to the client")
        SMS = "sms", _("Send an SMS")
        CONVERT_LEAD = "convert_lead", _("Convert the lead (contact, deal)")
        MARK_CONTACT = "mark_contact", _("Mark the lead's contact")

    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("pipeline"))
    stage = models.ForeignKey("pipelines.Stage", on_delete=models.CASCADE, related_name="robots",
                              verbose_name=_("stage"))
    name = models.CharField(_("name"), max_length=200)
    order = models.IntegerField(_("order"), default=100)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices, default=Trigger.ON_ENTER)
    conditions = models.JSONField(_("conditions"), default=dict, blank=True)
    delay_kind = models.CharField(_("delay"), max_length=10, choices=Delay.choices, default=Delay.NONE)
    delay_amount = models.IntegerField(_("delay amount"), default=0)  # may be negative for at_field
    delay_unit = models.CharField(_("delay unit"), max_length=10, default="minutes")
    delay_field = models.CharField(_("date field"), max_length=100, blank=True)
    action = models.CharField(_("action"), max_length=30, choices=Action.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["stage_id", "order", "id"]
        indexes = [models.Index(fields=["stage", "order", "id"], name="robot_stage_idx")]
        verbose_name = _("robot")
        verbose_name_plural = _("robots")

    def __str__(self) -> str:
        return self.name


class RoundRobinPointer(models.Model):
    """Where the next «change the responsible, round robin» of a robot continues; locked while it is used."""

    robot = models.OneToOneField(Robot, on_delete=models.CASCADE, related_name="round_robin")
    position = models.BigIntegerField(default=0)


class StageLimit(models.Model):
    """How long an item may stay in a stage, and whom to tell (and maybe reassign to) when it stays longer.

    ``steps`` is the escalation chain, a list of
    ``{"after": {"amount": N, "unit": "minutes|hours|days"}, "notify": ["responsible" | "head" | "user:ID" |
    "role:CODE" …], "reassign": "" | "head" | "user:ID", "message": "template", "email": false}``;
    ``after`` counts from the limit (the first step usually has 0).
    """

    stage = models.OneToOneField("pipelines.Stage", on_delete=models.CASCADE, related_name="time_limit",
                                 verbose_name=_("stage"))
    amount = models.PositiveIntegerField(_("limit"))
    unit = models.CharField(_("unit"), max_length=10, default="hours")
    working_time = models.BooleanField(_("in working time"), default=False)  # of the responsible, by the calendar
    steps = models.JSONField(_("escalation steps"), default=list)
    enabled = models.BooleanField(_("enabled"), default=True)
    working_time = models.BooleanField(_("in working time"), default=False)  # of the task's responsible
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("stage time limit")
        verbose_name_plural = _("stage time limits")

    def __str__(self) -> str:
        return f"{self.stage_id}: {self.amount} {self.unit}"


class Timer(models.Model):
    """One escalation step of one item's stay in one stage, due at ``due_at``. Planned when the item enters the
    stage or the limit changes; fired once by the worker; dropped when the item leaves. Nobody scans open items."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        FIRED = "fired", _("Fired")
        CANCELLED = "cancelled", _("Cancelled")

    limit = models.ForeignKey(StageLimit, on_delete=models.CASCADE, related_name="timers")
    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    stage_id = models.BigIntegerField()
    step = models.PositiveSmallIntegerField()
    entered_at = models.DateTimeField()  # the item's stage_changed_at for this stay
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity_type_id", "entity_id", "stage_id", "step"],
                                               name="timer_item_stage_step_uniq")]
        indexes = [models.Index(fields=["due_at", "id"], name="timer_due_idx",
                                condition=models.Q(status="pending"))]

    def __str__(self) -> str:
        return f"{self.entity_type_id}:{self.entity_id} stage {self.stage_id} step {self.step} at {self.due_at}"


class Run(models.Model):
    """One execution of one rule on one item: the engine's durable record (the automation log)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    key = models.CharField(max_length=120, unique=True)  # idempotency key: one run per cause and rule
    robot = models.ForeignKey(Robot, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    limit = models.ForeignKey(StageLimit, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    trigger = models.ForeignKey("StageTrigger", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    step = models.PositiveSmallIntegerField(null=True, blank=True)
    rule = models.CharField(max_length=100)  # "robot:12", "limit:3:0" or "trigger:4", kept when the rule is deleted
    action = models.CharField(max_length=30)
    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    cause_event_id = models.BigIntegerField(null=True, blank=True)
    depth = models.PositiveSmallIntegerField(default=1)
    scheduled_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cause_event_id", "robot"], name="run_event_robot_uniq",
                                    condition=models.Q(cause_event_id__isnull=False, robot__isnull=False)),
        ]
        indexes = [
            models.Index(fields=["scheduled_at", "id"], name="run_due_idx", condition=models.Q(status="pending")),
            models.Index(fields=["lease_until"], name="run_lease_idx", condition=models.Q(status="running")),
            models.Index(fields=["entity_type_id", "entity_id", "-id"], name="run_item_idx"),
        ]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.rule} on {self.entity_type_id}:{self.entity_id} ({self.status})"


class TaskEscalation(models.Model):
    """The escalation chain of overdue tasks (F41), one for the installation.

    ``steps`` has the shape of a stage limit's chain (``after`` counts from the task's deadline); see
    ``limits.check_steps``. Each open task with a deadline gets one ``TaskTimer`` per step.
    """

    steps = models.JSONField(_("escalation steps"), default=list)
    enabled = models.BooleanField(_("enabled"), default=True)
    working_time = models.BooleanField(_("in working time"), default=False)  # of the task's responsible
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("overdue task escalation")
        verbose_name_plural = _("overdue task escalations")

    def __str__(self) -> str:
        return f"{len(self.steps or [])} steps"


class TaskTimer(models.Model):
    """One escalation step of one open task, due at its deadline plus the step's offset. Planned and re-planned
    from the task's events (created, updated, completed, cancelled); fired once by the worker; nobody scans
    open tasks. ``deadline`` is the deadline it was planned for: a moved deadline starts the steps over."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        FIRED = "fired", _("Fired")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    task = models.ForeignKey("activities.Task", on_delete=models.CASCADE, related_name="+")
    step = models.PositiveSmallIntegerField()
    deadline = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    outputs = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "step"], name="task_timer_task_step_uniq")]
        indexes = [models.Index(fields=["due_at", "id"], name="task_timer_due_idx",
                                condition=models.Q(status="pending"))]

    def __str__(self) -> str:
        return f"task {self.task_id} step {self.step} at {self.due_at}"


class StageTrigger(models.Model):
    """Moves an item to its stage when something happens outside the pipeline (a form is filled, a call comes
    in, a payment arrives …). ``kind`` names an entry of ``triggers.KINDS``; ``params`` are that kind's
    settings. Forward only (by stage order) unless ``allow_backwards``. ``secret`` is the incoming webhook's."""

    pipeline = models.ForeignKey("pipelines.Pipeline", on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("pipeline"))
    stage = models.ForeignKey("pipelines.Stage", on_delete=models.CASCADE, related_name="triggers",
                              verbose_name=_("stage"))
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("event"), max_length=30)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    allow_backwards = models.BooleanField(_("may move back"), default=False)
    enabled = models.BooleanField(_("enabled"), default=True)
    secret = models.CharField(_("secret"), max_length=64, blank=True)
    order = models.IntegerField(_("order"), default=100)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["stage_id", "order", "id"]
        indexes = [models.Index(fields=["pipeline", "kind"], name="trigger_pipeline_kind_idx")]
        verbose_name = _("trigger")
        verbose_name_plural = _("triggers")

    def __str__(self) -> str:
        return self.name


class TrackedEmailEvent(models.Model):
    """The first opening of a robot's e-mail to a client, or the first click of one of its links: each is
    recorded once (and emits ``email.opened`` / ``email.clicked`` once), whatever the mail client reloads."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="email_events")
    kind = models.CharField(max_length=10)  # opened | clicked
    url = models.CharField(max_length=1000, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "kind", "url"], name="tracked_email_event_uniq")]
