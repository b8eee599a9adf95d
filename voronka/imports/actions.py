"""Every change to import jobs: upload, mapping, preview (a dry run), start, resume.

The records themselves are written by ``runner`` through ``recordkit.create_many`` with the job's actor
(the user who started it). Rights: importing needs the add right on the imported kind of record, and on
contacts and companies when the import may create them.
"""

from __future__ import annotations

import os
import uuid

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import audit, entity_types, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from . import engine, readers
from . import mapping as mp
from .models import ImportJob

PREVIEW_ROWS = 20
MAX_PREVIEW_ROWS = 200
KIND_NAMES = {entity_types.CONTACT: "contacts", entity_types.COMPANY: "companies", entity_types.LEAD: "leads",
              entity_types.DEAL: "deals"}


def type_of(code) -> int:
    entity_types.all_types()  # custom lists defined in another process are import types here too
    if code in mp.TYPES:
        return mp.TYPES[code]
    if isinstance(code, int) and code in mp.TYPE_CODES:
        return code
    raise ValidationFailed(_("Choose what to import: contacts, companies, leads or deals."),
                           fields={"type": [_("unknown")]})


def _right_message(type_id: int) -> str:
    return {entity_types.CONTACT: _("You do not have the right to add contacts."),
            entity_types.COMPANY: _("You do not have the right to add companies."),
            entity_types.LEAD: _("You do not have the right to add leads."),
            entity_types.DEAL: _("You do not have the right to add deals.")}.get(
        type_id, _("You do not have the right to add records here."))


def require_rights(actor: Actor, entity_type_id: int, column_map: dict | None = None, mode: str = "") -> None:
    """The add right on the imported kind, and on contacts/companies that the mapping may create."""
    needed = [entity_type_id]
    if column_map and mode != ImportJob.Mode.MATCH_ONLY:
        records = {target.split(".", 1)[0] for target in column_map.values()}
        needed += [mp.TYPE_OF_RECORD[r] for r in ("contact", "company") if r in records]
    for type_id in dict.fromkeys(needed):
        if not policies.can(actor, policies.ADD, type_id):
            raise PermissionDenied(_right_message(type_id), code="forbidden_add")


def get_job(actor: Actor, pk) -> ImportJob:
    """A job of the actor's (an administrator sees every job); anything else is «not found»."""
    try:
        job = ImportJob.objects.select_related("created_by").get(pk=int(pk))
    except (ImportJob.DoesNotExist, TypeError, ValueError):
        job = None
    if job is None or not (actor.is_system or (actor.user is not None and (
            job.created_by_id == actor.user_id or actor.user.is_superuser))):
        raise NotFound(_("Import #%(id)s does not exist.") % {"id": pk})
    return job


def jobs_of(actor: Actor, limit: int = 50):
    qs = ImportJob.objects.select_related("created_by").order_by("-id")
    if not (actor.user is not None and actor.user.is_superuser):
        qs = qs.filter(created_by_id=actor.user_id)
    return qs[:limit]


def create_job(actor: Actor, *, file, file_name: str, type, mapping=None, mode: str = ImportJob.Mode.MATCH_OR_CREATE,
               options: dict | None = None) -> ImportJob:
    """Store an uploaded file (a Django ``File`` or an open binary file), read its header and suggest a mapping."""
    entity_type_id = type_of(type)
    require_rights(actor, entity_type_id)
    if actor.user_id is None:
        raise PermissionDenied(_("An import is done by a user."))
    if mode not in ImportJob.Mode.values:
        raise ValidationFailed(_("Unknown matching mode «%(m)s».") % {"m": mode}, fields={"mode": [_("unknown")]})
    file_name = os.path.basename(file_name or "")[:255] or "import"
    file_format = readers.format_of(file_name)
    stored = default_storage.save(f"imports/{uuid.uuid4().hex}.{file_format}", file)
    try:
        with readers.open_table(default_storage.path(stored), file_format) as table:
            headers, encoding, delimiter = table.headers, table.encoding, table.delimiter
        column_map = mp.suggest(headers, entity_type_id) if mapping is None else mp.check(mapping, headers,
                                                                                         entity_type_id)
    except Exception:
        default_storage.delete(stored)
        raise
    clean_options = _options(options)
    clean_options["entry_point"] = actor.entry_point
    job = ImportJob.objects.create(created_by_id=actor.user_id, entity_type_id=entity_type_id, file_name=file_name,
                                   file_path=stored, file_format=file_format, encoding=encoding, delimiter=delimiter,
                                   headers=headers, mapping=column_map, mode=mode, options=clean_options)
    return job


def _options(options) -> dict:
    options = dict(options or {})
    unknown = set(options) - {"match_by", "batch_size"}
    if unknown:
        raise ValidationFailed(_("Unknown options."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    result = {}
    if "match_by" in options:
        keys = options["match_by"]
        if not isinstance(keys, list) or not set(keys) <= set(engine.MATCH_KEYS):
            raise ValidationFailed(_("Match by: a list of email, phone, inn, name."), fields={"match_by": [_("invalid")]})
        result["match_by"] = list(keys)
    if "batch_size" in options:
        size = options["batch_size"]
        if not isinstance(size, int) or not 1 <= size <= 1000:
            raise ValidationFailed(_("The batch size is 1 to 1000 rows."), fields={"batch_size": [_("invalid")]})
        result["batch_size"] = size
    return result


def configure(actor: Actor, job: ImportJob, *, mapping=None, mode: str | None = None,
              options: dict | None = None) -> ImportJob:
    """Change the mapping, matching mode or options of a job that has not started."""
    if job.status != ImportJob.Status.DRAFT:
        raise Conflict(_("This import has already started; its mapping cannot change."))
    update = []
    if mapping is not None:
        job.mapping = mp.check(mapping, job.headers, job.entity_type_id)
        update.append("mapping")
    if mode is not None:
        if mode not in ImportJob.Mode.values:
            raise ValidationFailed(_("Unknown matching mode «%(m)s».") % {"m": mode}, fields={"mode": [_("unknown")]})
        job.mode = mode
        update.append("mode")
    if options is not None:
        job.options = {**_options(options), "entry_point": job.options.get("entry_point", actor.entry_point)}
        update.append("options")
    if update:
        ImportJob.objects.filter(pk=job.pk).update(**{f: getattr(job, f) for f in update})
    return job


def job_actor(job: ImportJob, entry_point: str | None = None) -> Actor:
    return Actor(kind="user", user=job.created_by, entry_point=entry_point or job.options.get("entry_point") or "import",
                 cause=f"import:{job.pk}")


def importer_for(actor: Actor, job: ImportJob) -> engine.Importer:
    column_map = mp.check(job.mapping, job.headers, job.entity_type_id)
    require_rights(actor, job.entity_type_id, column_map, job.mode)
    return engine.Importer(actor, job.entity_type_id, job.headers, column_map, mode=job.mode,
                           match_by=job.options.get("match_by") or engine.MATCH_KEYS)


def preview(actor: Actor, job: ImportJob, *, limit: int = PREVIEW_ROWS) -> dict:
    """The first ``limit`` rows as they would be imported, and their totals; nothing is written."""
    limit = max(1, min(int(limit), MAX_PREVIEW_ROWS))
    importer = importer_for(actor, job)
    rows, raw = [], []
    with readers.open_table(default_storage.path(job.file_path), job.file_format, encoding=job.encoding,
                            delimiter=job.delimiter) as table:
        for number, cells in table.rows():
            raw.append((number, cells))
            if len(raw) >= limit:
                break
    plans = importer.plan_many(raw)
    with transaction.atomic():
        importer.write(plans)
        transaction.set_rollback(True)  # a dry run: the writes only checked that every row would go in
    totals = {"create": 0, "match": 0, "reject": 0}
    for plan in plans:
        described = importer.describe(plan)
        described["values"] = dict(zip(job.headers, plan.cells, strict=False))
        totals[described["action"]] += 1
        rows.append(described)
    return {"rows": rows, "totals": totals, "mapping": job.mapping, "headers": job.headers}


def start(actor: Actor, job: ImportJob) -> ImportJob:
    """Queue the import for the background worker (``voronka worker``)."""
    if job.status != ImportJob.Status.DRAFT:
        raise Conflict(_("This import has already started."))
    importer_for(actor, job)  # rights and mapping are checked now, not only in the worker
    try:
        total = readers.count_rows(default_storage.path(job.file_path), job.file_format, encoding=job.encoding,
                                   delimiter=job.delimiter)
    except OSError:
        raise ValidationFailed(_("The uploaded file is gone; upload it again.")) from None
    with transaction.atomic():
        updated = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.DRAFT).update(
            status=ImportJob.Status.QUEUED, total_rows=total)
        if not updated:
            raise Conflict(_("This import has already started."))
        audit.record(actor, "import.started", entity_type_id=job.entity_type_id, file=job.file_name, job=job.pk)
        _enqueue(job.pk)
    job.refresh_from_db()
    return job


def resume(actor: Actor, job: ImportJob) -> ImportJob:
    """Continue a failed or interrupted import from its last committed batch."""
    if job.status not in (ImportJob.Status.FAILED, ImportJob.Status.RUNNING):
        raise Conflict(_("Only a failed or interrupted import can be resumed."))
    importer_for(actor, job)
    with transaction.atomic():
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED, error="")
        _enqueue(job.pk)
    job.refresh_from_db()
    return job


def _enqueue(job_id: int) -> None:
    from .tasks import run_import

    transaction.on_commit(lambda: run_import.enqueue(job_id))


def mark(job: ImportJob, **fields) -> None:
    ImportJob.objects.filter(pk=job.pk).update(**fields)
    for k, v in fields.items():
        setattr(job, k, v)


def now():
    return timezone.now()
