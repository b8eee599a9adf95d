"""Imports over the API (F52): upload a file, adjust the mapping, preview, start, follow, download the report.

The import itself runs in the background worker with the caller as its actor. See docs/import.md.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, StreamingHttpResponse
from django.utils.translation import gettext as _
from ninja import File, Form, Router, Status
from ninja.files import UploadedFile
from pydantic import BaseModel, Field

from voronka.core.errors import NotFound
from voronka.imports import actions, runner
from voronka.imports import mapping as mp
from voronka.imports.models import ImportJob

from .errors import BadRequest
from .schemas import MAX_ID, responses

router = Router(tags=["Import"])

MAX_UPLOAD = 200 * 1024 * 1024


class JobOut(BaseModel):
    id: int
    type: str = Field(description="contacts, companies, leads or deals")
    file_name: str
    status: str = Field(description="draft, queued, running, done, failed")
    mode: str
    headers: list[str]
    mapping: dict[str, str]
    options: dict[str, Any]
    total_rows: int | None
    processed_rows: int
    percent: int
    created: int
    matched: int
    rejected: int
    stats: dict[str, Any]
    created_by: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str
    targets: dict[str, str] = Field(description="Every field a column may go to, with its label.")


class JobsOut(BaseModel):
    items: list[JobOut]


class ConfigureIn(BaseModel):
    mapping: dict[str, str] | None = Field(None, description='{"column header": "target"}, e.g. "deal.title"')
    mode: Literal["match_or_create", "match_only", "always_create"] | None = None
    match_by: list[Literal["email", "phone", "inn", "name"]] | None = None
    batch_size: int | None = Field(None, ge=1, le=1000)


class PreviewRowOut(BaseModel):
    row: int
    action: str = Field(description="create, match or reject")
    id: int | None
    title: str
    linked: dict[str, Any]
    errors: list[dict[str, str]]
    values: dict[str, str]


class PreviewOut(BaseModel):
    rows: list[PreviewRowOut]
    totals: dict[str, int]
    mapping: dict[str, str]
    headers: list[str]


def _out(job: ImportJob) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {"id": job.pk, "type": mp.TYPE_CODES[job.entity_type_id], "file_name": job.file_name,
            "status": job.status, "mode": job.mode, "headers": job.headers, "mapping": job.mapping,
            "options": {k: v for k, v in job.options.items() if k != "entry_point"},
            "total_rows": job.total_rows, "processed_rows": job.processed_rows, "percent": job.percent,
            "created": job.created_count, "matched": job.matched_count, "rejected": job.rejected_count,
            "stats": job.stats, "created_by": job.created_by_id, "created_at": job.created_at.isoformat(),
            "started_at": iso(job.started_at), "finished_at": iso(job.finished_at), "error": job.error,
            "targets": {k: str(v) for k, v in mp.target_choices(job.entity_type_id)}}


def _job(request: HttpRequest, job_id: int) -> ImportJob:
    if not 0 < job_id <= MAX_ID:
        raise NotFound(_("Import #%(id)s does not exist.") % {"id": job_id})
    return actions.get_job(request.auth, job_id)


def _options(payload: ConfigureIn, job: ImportJob) -> dict | None:
    if payload.match_by is None and payload.batch_size is None:
        return None
    options = {k: v for k, v in job.options.items() if k != "entry_point"}
    if payload.match_by is not None:
        options["match_by"] = list(payload.match_by)
    if payload.batch_size is not None:
        options["batch_size"] = payload.batch_size
    return options


@router.post("", response=responses({201: JobOut}), operation_id="upload_import")
def upload(request: HttpRequest, file: File[UploadedFile],
           type: Form[Literal["contacts", "companies", "leads", "deals"]],
           mode: Form[Literal["match_or_create", "match_only", "always_create"]] = "match_or_create"):
    """Upload an .xlsx or .csv file (multipart). The answer holds its columns and a mapping suggested from
    the header names; change it with `PATCH /imports/{id}`, check it with `POST /imports/{id}/preview`."""
    if file.size is not None and file.size > MAX_UPLOAD:
        raise BadRequest(_("The file is larger than 200 MB."), fields={"file": [_("too large")]})
    job = actions.create_job(request.auth, file=file, file_name=file.name or "", type=type, mode=mode)
    return Status(201, _out(job))


@router.get("", response=responses({200: JobsOut}), operation_id="list_imports")
def list_imports(request: HttpRequest):
    """Your last 50 imports (an administrator sees everyone's)."""
    return {"items": [_out(j) for j in actions.jobs_of(request.auth)]}


@router.get("/{job_id}", response=responses({200: JobOut}), operation_id="get_import")
def status(request: HttpRequest, job_id: int):
    """The job: status, progress (`processed_rows` of `total_rows`, `percent`) and counts."""
    return _out(_job(request, job_id))


@router.patch("/{job_id}", response=responses({200: JobOut}), operation_id="configure_import")
def configure(request: HttpRequest, job_id: int, payload: ConfigureIn):
    """Set the column mapping, the matching mode and options of an import that has not started."""
    job = _job(request, job_id)
    actions.configure(request.auth, job, mapping=payload.mapping, mode=payload.mode, options=_options(payload, job))
    return _out(job)


@router.post("/{job_id}/preview", response=responses({200: PreviewOut}), operation_id="preview_import")
def preview(request: HttpRequest, job_id: int, limit: int = 20):
    """A dry run of the first `limit` rows (at most 200): what each would do and why a row would be
    rejected. Nothing is written."""
    if not 1 <= limit <= actions.MAX_PREVIEW_ROWS:
        raise BadRequest(_("The limit is 1 to 200 rows."), fields={"limit": [_("out of range")]})
    return actions.preview(request.auth, _job(request, job_id), limit=limit)


@router.post("/{job_id}/start", response=responses({202: JobOut}), operation_id="start_import")
def start(request: HttpRequest, job_id: int):
    """Queue the import for the background worker; follow it with `GET /imports/{id}`."""
    return Status(202, _out(actions.start(request.auth, _job(request, job_id))))


@router.post("/{job_id}/resume", response=responses({202: JobOut}), operation_id="resume_import")
def resume(request: HttpRequest, job_id: int):
    """Continue a failed or interrupted import after its last committed batch."""
    return Status(202, _out(actions.resume(request.auth, _job(request, job_id))))


@router.get("/{job_id}/report", response=responses({200: None}), operation_id="import_report")
def report(request: HttpRequest, job_id: int):
    """The rejected rows as CSV (UTF-8, «;»): row number, reasons per column, the row's cells."""
    job = _job(request, job_id)
    response = StreamingHttpResponse(runner.report_lines(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected.csv"'
    return response
