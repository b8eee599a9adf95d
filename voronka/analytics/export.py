"""A report as JSON-ready data, CSV or XLSX. Exports need the export right on the report's kind of record
and are written to the audit log, like exports of records."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import audit, entity_types, policies
from voronka.core.actor import Actor
from voronka.core.errors import PermissionDenied, ValidationFailed

from .reports import Report

FORMATS = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def plain(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def as_dict(report: Report) -> dict:
    p = report.params
    return {
        "report": report.slug, "title": str(report.title), "time_zone": p.zone.key,
        "period": {"from": p.date_from.isoformat(), "to": p.date_to.isoformat()}, "group": p.group,
        "filters": p.query(),
        "columns": [{"key": c.key, "label": str(c.label), "kind": c.kind, "entity": c.entity or None,
                     "filter": c.filter} for c in report.columns],
        "rows": [plain(r) for r in report.rows], "totals": plain(report.totals),
        "chart": report.chart, "chart_value": report.chart_value, "notes": [str(n) for n in report.notes],
        "details": plain(report.details),
    }


def _cell(value, kind: str):
    if value is None:
        return ""
    if kind == "duration":
        return round(float(value) / 3600, 2)  # hours: a spreadsheet sums and charts them
    if isinstance(value, Decimal):
        return float(value)
    return value


def export(actor: Actor, report: Report, entity: str, fmt: str) -> tuple[bytes, str, str]:
    if fmt not in FORMATS:
        raise ValidationFailed(_("Unknown export format."), fields={"format": [_("csv or xlsx")]})
    type_id = entity_types.by_code(entity).id
    if not policies.can(actor, policies.EXPORT, type_id):
        raise PermissionDenied(_("You do not have the right to export these records."), code="forbidden_export")
    head = [_("Group")] + [str(c.label) + (_(", hours") if c.kind == "duration" else "") for c in report.columns]
    body = [[r.get("label", "")] + [_cell(r.get(c.key), c.kind) for c in report.columns] for r in report.rows]
    if report.totals and any(c.key in report.totals for c in report.columns):
        body.append([_("Total")] + [_cell(report.totals.get(c.key), c.kind) for c in report.columns])
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";")
        writer.writerow(head)
        writer.writerows(body)
        content = buffer.getvalue().encode("utf-8-sig")
    else:
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet(str(report.title)[:31].replace(":", " "))
        ws.append(head)
        for row in body:
            ws.append(row)
        out = io.BytesIO()
        wb.save(out)
        content = out.getvalue()
    audit.record(actor, "analytics.exported", entity_type_id=type_id, count=len(body), report=report.slug,
                 format=fmt, filters=report.params.query())
    return content, FORMATS[fmt], f"{report.slug}-{timezone.now():%Y%m%d-%H%M}.{fmt}"
