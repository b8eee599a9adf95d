"""List rows rendered in Python: a list page shows up to 50 rows × 8 cells, and the template engine's
per-node cost dominated the page time at scale (see docs/benchmarks.md)."""

from __future__ import annotations

from django.utils.formats import date_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from .templatetags.ui import money, phone


def _cell(cell: dict, url: str) -> str:
    if cell.get("link"):
        return format_html('<a href="{}">{}</a>', url, cell["text"])
    if "stage" in cell:
        stage = cell["stage"]
        return format_html('<span class="stage-dot" style="background:{}"></span>{}', stage.color, stage.name)
    if "money" in cell:
        return conditional_escape(money(cell["money"], cell["currency"])) if cell["money"] else ""
    if "date" in cell:
        value = cell["date"]
        if hasattr(value, "tzinfo") and value.tzinfo is not None:
            value = localtime(value)
        return conditional_escape(date_format(value, "SHORT_DATE_FORMAT"))
    return conditional_escape(cell.get("text", ""))


def render_rows(rows: list[dict], base_url: str, with_phones: bool) -> SafeString:
    select = conditional_escape(_("Select"))
    parts = []
    for row in rows:
        pk = row["obj"].pk
        url = f"{base_url}{pk}/"
        cells = "".join(f"<td>{_cell(c, url)}</td>" for c in row["cells"])
        phones = ""
        if with_phones:
            values = ", ".join(conditional_escape(phone(p.normalized)) for p in (row["comms"] or {}).get("phone", []))
            phones = f'<td class="small">{values}</td>'
        parts.append(f'<tr><td class="check"><input type="checkbox" name="ids" value="{pk}" form="bulk-form" '
                     f'aria-label="{select}"></td>{cells}{phones}</tr>')
    return mark_safe("\n".join(parts))  # every value above is escaped


def render_cards(cards: list[dict], stage_id: int, base_url: str) -> SafeString:
    """Kanban cards (a board shows up to 20 per column in every column)."""
    from .templatetags.ui import ago

    free = conditional_escape(_("free"))
    in_stage = conditional_escape(_("in this stage"))
    overdue = conditional_escape(_("overdue task"))
    parts = []
    for c in cards:
        obj = c["obj"]
        amount = (f'<div class="kcard-amount">{conditional_escape(money(obj.opportunity, obj.currency))}</div>'
                  if obj.opportunity else "")
        who = conditional_escape(str(obj.responsible)) if obj.responsible_id else free
        badge = f'<span class="badge danger small">{overdue}</span>' if c["overdue"] else ""
        parts.append(
            f'<article class="kcard{" overdue" if c["overdue"] else ""}" draggable="true" tabindex="0" '
            f'data-id="{obj.pk}" data-stage="{stage_id}"><a href="{base_url}{obj.pk}/" class="kcard-title">'
            f'{conditional_escape(obj.title)}</a>{amount}<div class="kcard-meta small muted"><span>{who}</span>'
            f'<span title="{in_stage}">{conditional_escape(ago(c["in_stage"]))}</span></div>{badge}</article>')
    return mark_safe("\n".join(parts))  # every value above is escaped
