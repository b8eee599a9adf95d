from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from voronka.core.records import Record


class Pipeline(models.Model):
    """A pipeline ("direction") of one staged entity type: leads, deals or a smart process."""

    entity_type_id = models.PositiveIntegerField(_("entity type"))
    name = models.CharField(_("name"), max_length=200)
    code = models.SlugField(_("code"), max_length=60)
    sort = models.IntegerField(_("order"), default=100)
    is_default = models.BooleanField(_("default"), default=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["entity_type_id", "sort", "id"]
        constraints = [models.UniqueConstraint(fields=["entity_type_id", "code"], name="pipeline_code_uniq")]
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    class Semantics(models.TextChoices):
        PROCESS = "process", _("In progress")
        SUCCESS = "success", _("Success")
        FAILURE = "failure", _("Failure")

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages", verbose_name=_("pipeline"))
    name = models.CharField(_("name"), max_length=200)
    code = models.SlugField(_("code"), max_length=60)
    sort = models.IntegerField(_("order"), default=100)
    color = models.CharField(_("colour"), max_length=7, default="#3b82f6")
    semantics = models.CharField(_("meaning"), max_length=10, choices=Semantics.choices, default=Semantics.PROCESS)
    required_fields = models.JSONField(_("fields required to enter"), default=list, blank=True)
    # asked in the same small form before a move into the stage, never required (F23): «ask on entry, optional»
    ask_fields = models.JSONField(_("fields asked on entry (optional)"), default=list, blank=True)

    class Meta:
        ordering = ["pipeline_id", "sort", "id"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "code"], name="stage_code_uniq")]
        verbose_name = _("stage")
        verbose_name_plural = _("stages")

    def __str__(self) -> str:
        return self.name

    @property
    def is_final(self) -> bool:
        return self.semantics != self.Semantics.PROCESS


class StageHistory(models.Model):
    """One move of one item between stages: the source of truth for analytics."""

    entity_type_id = models.PositiveIntegerField()
    entity_id = models.BigIntegerField()
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="+")
    # no index of their own: stagehist_slowest_idx and stagehist_stage_idx begin with them (every move wrote two
    # B-trees more for nothing: lookups and the PROTECT check of a stage's deletion use the longer ones)
    from_stage = models.ForeignKey(Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   db_index=False)
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+", db_index=False)
    semantics = models.CharField(max_length=10)  # of to_stage at the time of the move
    moved_at = models.DateTimeField(default=timezone.now)
    seconds_in_previous = models.BigIntegerField(null=True, blank=True)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    responsible_id = models.BigIntegerField(null=True, blank=True)  # the item's responsible at the time
    entry_point = models.CharField(max_length=20, blank=True)
    cause = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["entity_type_id", "entity_id", "id"], name="stagehist_item_idx"),
            models.Index(fields=["to_stage", "moved_at"], name="stagehist_stage_idx"),
            models.Index(fields=["entity_type_id", "moved_at"], name="stagehist_time_idx"),
            # the slowest stays out of a stage (stage-time's «slowest items»)
            models.Index(fields=["from_stage", "seconds_in_previous"], name="stagehist_slowest_idx"),
            # moves into a pipeline from another one (the reports' round trips, F25): a short range per pipeline
            models.Index(fields=["pipeline", "from_stage"], name="stagehist_pipe_from_idx"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.entity_type_id}:{self.entity_id} → {self.to_stage_id}"


class PipelineItem(Record):
    """The abstract staged record: leads, deals and smart-process items all derive from it."""

    title = models.CharField(_("title"), max_length=255)
    # Indexes on (stage, id), (stage, created_at, id) and (pipeline, id) are declared by each concrete model.
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="+", verbose_name=_("pipeline"),
                                 db_index=False)
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+", verbose_name=_("stage"), db_index=False)
    stage_semantics = models.CharField(max_length=10, default="process", editable=False)
    stage_changed_at = models.DateTimeField(_("in stage since"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    opportunity = models.DecimalField(_("amount"), max_digits=18, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    source = models.CharField(_("source"), max_length=50, blank=True)
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.title


class StageTotal(models.Model):
    """A read model: how many live records and how much money sit in each stage, per responsible.

    Kept in the same transaction as every write (create, move, change, delete, restore), so a board's
    column counts and sums cost one small query whatever the number of records, and a user's totals are
    the sum over the responsibles their rights cover. ``responsible_id`` 0 means nobody.
    """

    entity_type_id = models.PositiveIntegerField()
    pipeline_id = models.BigIntegerField()
    stage_id = models.BigIntegerField()
    responsible_id = models.BigIntegerField()
    is_open = models.BooleanField()
    currency = models.CharField(max_length=3)
    count = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=24, decimal_places=2, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["entity_type_id", "stage_id", "responsible_id", "is_open", "currency"], name="stage_total_key")]
        indexes = [models.Index(fields=["entity_type_id", "pipeline_id"], name="stage_total_pipeline_idx")]

    def __str__(self) -> str:
        return f"{self.stage_id}/{self.responsible_id}: {self.count}"


class DailyTotal(models.Model):
    """The analytics read model: per calendar day (in the installation's ``TIME_ZONE``) and per the attributes the
    rights engine and the report filters look at, how many live records and how much money.

    ``kind``:

    - ``created``: records by the day they were created and their **current** stage when it is final (``stage_id``
      0: in progress; new leads, deals, the funnel's «won» and «lost at»);
    - ``reached``: records by the day they were created and the **furthest** stage of their current pipeline they
      ever entered (history; failure stages do not count, ``stage_id`` 0: none): the stage funnel;
    - ``closed``: records now in a final stage by the day of their last closing and their current stage.

    Every row exists twice: per day (``grain`` "d") and per month (``grain`` "m", ``day`` the 1st), so a year costs
    twelve months of rows plus the days at its ends. A record adds one row of each kind (and grain), keyed by its
    current pipeline, responsible (0: nobody), «open to everyone» flag and source, so the rights engine narrows
    these rows exactly as it narrows the records (records a viewer observes beyond his rights: their own rows are
    added at read time, ``analytics.readmodel``). Kept in the same transaction as every create, move,
    change, delete, restore and merge by ``StageHook``; ``voronka analytics-rebuild`` recomputes it after bulk
    loads. See ``voronka/pipelines/daily.py`` and docs/analytics.md.
    """

    entity_type_id = models.PositiveIntegerField()
    kind = models.CharField(max_length=8)
    grain = models.CharField(max_length=1, default="d")  # "d": the row is one day; "m": a month (``day`` its 1st)
    day = models.DateField()
    pipeline_id = models.BigIntegerField()
    stage_id = models.BigIntegerField()
    responsible_id = models.BigIntegerField()
    is_open = models.BooleanField()
    source = models.CharField(max_length=50)
    count = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=24, decimal_places=2, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["entity_type_id", "kind", "grain", "day", "pipeline_id", "stage_id", "responsible_id", "is_open",
                    "source"],
            name="daily_total_key")]

    def __str__(self) -> str:
        return f"{self.kind} {self.day} {self.stage_id}/{self.responsible_id}: {self.count}"


class StayTotal(models.Model):
    """The analytics read model of durations: per calendar day (installation's ``TIME_ZONE``; ``grain`` "d"/"m" as
    in ``DailyTotal``) and per the attributes the rights engine and the report filters look at, a histogram of
    durations in fixed log-scale buckets (``bucket``: see ``voronka/pipelines/stays.py``) with their count and
    their exact sum in seconds.

    ``kind``:

    - ``stay``: one row per stay that ended (a move out of ``stage_id``, the history's ``seconds_in_previous``), by
      the day the stay ended; «time in each stage»;
    - ``close``: records now in a final stage (``stage_id``), by the day of their last closing, with the seconds
      from creation to that closing; «time to close».
    - ``amount``: records now in a success stage (``stage_id``), by the day of their last closing, with their
      amount in **cents** in ``seconds`` (bucketed the same way); «average and median deal amount».

    Keyed by the record's **current** pipeline, responsible, «open to everyone» flag and source, so the rights
    engine narrows these rows exactly as it narrows the records. Kept in the same transaction as every write by
    ``StageHook``; ``voronka analytics-rebuild`` recomputes it.
    """

    entity_type_id = models.PositiveIntegerField()
    kind = models.CharField(max_length=8)
    grain = models.CharField(max_length=1, default="d")
    day = models.DateField()
    pipeline_id = models.BigIntegerField()
    stage_id = models.BigIntegerField()
    responsible_id = models.BigIntegerField()
    is_open = models.BooleanField()
    source = models.CharField(max_length=50)
    bucket = models.SmallIntegerField()
    count = models.BigIntegerField(default=0)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["entity_type_id", "kind", "grain", "day", "pipeline_id", "stage_id", "responsible_id", "is_open",
                    "source", "bucket"],
            name="stay_total_key")]

    def __str__(self) -> str:
        return f"{self.kind} {self.day} {self.stage_id}/{self.responsible_id} [{self.bucket}]: {self.count}"


class DailyTotalState(models.Model):
    """What the daily totals can be trusted for. ``pipeline_id`` 0: the totals of this record kind are complete
    (written by ``analytics-rebuild``, and by the migration on a database without records). Otherwise the order of
    one pipeline's stages the ``reached`` rows were computed with: after stages are reordered, added or removed the
    signature differs and the funnel reads the live tables until the next rebuild."""

    entity_type_id = models.PositiveIntegerField()
    pipeline_id = models.BigIntegerField()
    signature = models.CharField(max_length=4000, blank=True)
    rebuilt_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity_type_id", "pipeline_id"], name="daily_state_key")]

    def __str__(self) -> str:
        return f"{self.entity_type_id}/{self.pipeline_id}: {self.signature[:40]}"
