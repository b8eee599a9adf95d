"""Running an import job: read the file in batches, write each batch in one transaction with the job's
progress and its rejected rows, so a job interrupted by a crash resumes after its last committed batch.

A runner claims the job by bumping ``attempt``; every batch commits only while the attempt is still its
own, so two runners never import the same rows. ``resume_stalled`` (a worker job) re-queues a job whose
runner stopped sending heartbeats (a killed worker leaves the task «running» for ever).
"""

from __future__ import annotations

import csv
import datetime
import io
import logging
from collections.abc import Callable, Iterator

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core.actor import Actor
from voronka.core.errors import ActionError

from . import actions, readers
from .models import ImportJob, RejectedRow

log = logging.getLogger("voronka.imports")

BATCH = 500
STALL = datetime.timedelta(minutes=5)


class LostClaim(Exception):
    """Another runner took the job over."""


def _claim(job_id: int) -> tuple[ImportJob, int] | None:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("created_by").filter(pk=job_id).first()
        if job is None or job.status not in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
            return None
        now = timezone.now()
        fields = {"status": ImportJob.Status.RUNNING, "attempt": job.attempt + 1, "heartbeat_at": now}
        if job.started_at is None:
            fields["started_at"] = now
        ImportJob.objects.filter(pk=job.pk).update(**fields)
        for k, v in fields.items():
            setattr(job, k, v)
        return job, job.attempt


def run(job_id: int, *, progress: Callable[[ImportJob], None] | None = None,
        actor: Actor | None = None, crash_after: int | None = None) -> ImportJob | None:
    """Import the job's rows from where it stopped. ``crash_after`` (tests) stops after that many batches."""
    claimed = _claim(job_id)
    if claimed is None:
        return None
    job, attempt = claimed
    actor = actor or actions.job_actor(job)
    try:
        importer = actions.importer_for(actor, job)
        batch_size = int(job.options.get("batch_size") or BATCH)
        batches = 0
        with readers.open_table(default_storage.path(job.file_path), job.file_format, encoding=job.encoding,
                                delimiter=job.delimiter) as table:
            rows = table.rows(skip=job.processed_rows)
            while True:
                chunk = []
                last_number = None
                for number, cells in rows:
                    chunk.append((number, cells))
                    last_number = number
                    if len(chunk) >= batch_size:
                        break
                if not chunk:
                    break
                chunk = importer.plan_many(chunk)
                _commit(job, attempt, importer, chunk, processed=last_number - 1)
                if progress:
                    progress(job)
                batches += 1
                if crash_after is not None and batches >= crash_after:
                    raise SimulatedCrash
        with transaction.atomic():
            done = ImportJob.objects.filter(pk=job.pk, attempt=attempt).update(
                status=ImportJob.Status.DONE, finished_at=timezone.now(), heartbeat_at=timezone.now())
            if not done:
                raise LostClaim
        job.refresh_from_db()
        if progress:
            progress(job)
        return job
    except (SimulatedCrash, LostClaim):
        raise
    except ActionError as exc:
        _failed(job, attempt, exc.message)
    except OSError as exc:
        _failed(job, attempt, _("The file cannot be read: %(e)s") % {"e": exc.strerror or exc})
    except Exception as exc:  # noqa: BLE001 - the job records the failure; the worker keeps going
        log.exception("import %s failed", job.pk)
        _failed(job, attempt, _("The import stopped because of an internal error: %(e)s") % {"e": exc})
    job.refresh_from_db()
    return job


class SimulatedCrash(Exception):  # noqa: N818 - a test double for a killed worker
    pass


def _failed(job: ImportJob, attempt: int, message: str) -> None:
    ImportJob.objects.filter(pk=job.pk, attempt=attempt).update(
        status=ImportJob.Status.FAILED, error=message[:2000], finished_at=timezone.now())


def _commit(job: ImportJob, attempt: int, importer, plans: list, *, processed: int) -> None:
    with transaction.atomic():
        importer.write(plans)
        counts = {"create": 0, "match": 0, "reject": 0}
        stats = {}
        rejected = []
        for plan in plans:
            outcome = importer.outcome(plan)
            counts[outcome] += 1
            if outcome == "reject":
                rejected.append(RejectedRow(job_id=job.pk, row_number=plan.number, errors=plan.errors,
                                            values=plan.cells))
                continue
            for record, action in plan.actions.items():
                if record != importer.main:
                    kind = "created" if action == "create" and plan.keys.get(record) != "=" else "matched"
                    stats.setdefault(record, {}).setdefault(kind, 0)
                    stats[record][kind] += 1
        job.refresh_from_db(fields=["stats"])
        merged = dict(job.stats or {})
        for record, kinds in stats.items():
            merged[record] = {k: (merged.get(record) or {}).get(k, 0) + kinds.get(k, 0)
                              for k in ("created", "matched")}
        updated = ImportJob.objects.filter(pk=job.pk, attempt=attempt).update(
            processed_rows=processed, created_count=F("created_count") + counts["create"],
            matched_count=F("matched_count") + counts["match"], rejected_count=F("rejected_count") + counts["reject"],
            stats=merged, heartbeat_at=timezone.now())
        if not updated:
            raise LostClaim
        RejectedRow.objects.bulk_create(rejected)
    job.processed_rows = processed
    job.created_count += counts["create"]
    job.matched_count += counts["match"]
    job.rejected_count += counts["reject"]
    job.stats = merged


def dry_run(actor: Actor, job: ImportJob, *, progress: Callable[[int, dict], None] | None = None) -> dict:
    """The whole file through the write path, every batch rolled back: exact totals, nothing written."""
    importer = actions.importer_for(actor, job)
    importer.memo = set()
    totals = {"create": 0, "match": 0, "reject": 0}
    rejected: list = []
    batch_size = int(job.options.get("batch_size") or BATCH)
    with readers.open_table(default_storage.path(job.file_path), job.file_format, encoding=job.encoding,
                            delimiter=job.delimiter) as table:
        rows = table.rows()
        done = 0
        while True:
            chunk = []
            for number, cells in rows:
                chunk.append((number, cells))
                if len(chunk) >= batch_size:
                    break
            if not chunk:
                break
            chunk = importer.plan_many(chunk)
            with transaction.atomic():
                importer.write(chunk)
                transaction.set_rollback(True)
            for plan in chunk:
                outcome = importer.outcome(plan)
                totals[outcome] += 1
                if outcome == "reject" and len(rejected) < 1000:
                    rejected.append({"row": plan.number, "errors": plan.errors})
            done = chunk[-1].number - 1
            if progress:
                progress(done, totals)
    return {"totals": totals, "rejected": rejected}


def resume_stalled() -> int:
    """A worker job: re-queue running imports whose runner has been silent for ``STALL``."""
    cutoff = timezone.now() - STALL
    count = 0
    for pk in ImportJob.objects.filter(status=ImportJob.Status.RUNNING, heartbeat_at__lt=cutoff) \
            .values_list("pk", flat=True)[:10]:
        with transaction.atomic():
            if ImportJob.objects.filter(pk=pk, status=ImportJob.Status.RUNNING, heartbeat_at__lt=cutoff).update(
                    status=ImportJob.Status.QUEUED, heartbeat_at=timezone.now()):
                actions._enqueue(pk)
                count += 1
    return count


def report_lines(job: ImportJob) -> Iterator[str]:
    """The rejected rows as CSV (UTF-8 with a byte-order mark, «;»: opens in Excel): the row number, the
    reasons and the row's cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow([_("Row"), _("Errors"), *job.headers])
    yield "\ufeff" + flush()
    last = 0
    while True:
        page = list(RejectedRow.objects.filter(job=job, row_number__gt=last).order_by("row_number")[:1000])
        if not page:
            break
        for row in page:
            reasons = "; ".join(f"{e['column']}: {e['message']}" if e.get("column") else e["message"]
                                for e in row.errors)
            writer.writerow([row.row_number, reasons, *row.values])
        yield flush()
        last = page[-1].row_number
