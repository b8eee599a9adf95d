"""Exports of records to CSV or XLSX: only with the export right, only what the actor may export, audited."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Sequence

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from . import audit, entity_types, policies
from .actor import Actor
from .errors import PermissionDenied, ValidationFailed

FORMATS = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
MAX_ROWS = 1_000_000


def _cell(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, int | float) else str(value)


def export_records(actor: Actor, entity_type_id: int, qs: QuerySet, *, columns: Sequence[str], fmt: str = "csv",
                   extra: Iterable | None = None) -> tuple[bytes, str, str]:
    """Export ``qs`` (already filtered by the caller, e.g. a list's filters) narrowed to what the actor may read
    *and* export. Returns (content, content type, file name)."""
    if fmt not in FORMATS:
        raise ValidationFailed(_("Unknown export format."), fields={"format": [_("csv or xlsx")]})
    if not policies.can(actor, policies.EXPORT, entity_type_id):
        raise PermissionDenied(_("You do not have the right to export these records."), code="forbidden_export")
    info = entity_types.get(entity_type_id)
    known = {f.name for f in info.model._meta.fields} | {f.attname for f in info.model._meta.fields}
    bad = [c for c in columns if c not in known]
    if bad:
        raise ValidationFailed(_("Unknown columns: %(c)s.") % {"c": ", ".join(bad)}, fields={"columns": bad})
    qs = policies.visible(actor, entity_type_id, policies.visible(actor, entity_type_id, qs), perm=policies.EXPORT)
    rows = qs.order_by("id").values_list(*columns)[:MAX_ROWS]
    count = 0
    if fmt == "csv":
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024, mode="w+b") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            writer = csv.writer(text, delimiter=";")
            writer.writerow(columns)
            for row in rows.iterator(chunk_size=2000):
                writer.writerow([_cell(v) for v in row])
                count += 1
            text.flush()
            raw.seek(0)
            content = raw.read()
            text.detach()
    else:
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet(info.label_plural[:31])
        ws.append(list(columns))
        for row in rows.iterator(chunk_size=2000):
            ws.append([_cell(v) for v in row])
            count += 1
        buffer = io.BytesIO()
        wb.save(buffer)
        content = buffer.getvalue()
    audit.record(actor, "records.exported", entity_type_id=entity_type_id, count=count, format=fmt,
                 columns=list(columns))
    name = f"{info.code}-{timezone.now():%Y%m%d-%H%M}.{fmt}"
    return content, FORMATS[fmt], name
