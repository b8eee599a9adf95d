"""List rows rendered in Python: a list page shows up to 50 rows × 8 cells, and the template engine's
per-node cost dominated the page time at scale (see docs/benchmarks.md)."""

from __future__ import annotations

import html

from django.utils.formats import date_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from .templatetags.ui import money, phone

_DATE_PARTS = {"d": "{0.day:02d}", "j": "{0.day}", "m": "{0.month:02d}", "n": "{0.month}", "Y": "{0.year:04d}",
               "y": "{1:02d}"}


def _date_formatter():
    """The active language's SHORT_DATE_FORMAT as a plain format string when it only has day, month and year
    («d.m.Y», «m/d/Y»): Django's ``date_format`` costs ~60 µs a call, and a list page formats 50 dates."""
    from django.utils.formats import get_format

    fmt = get_format("SHORT_DATE_FORMAT")
    if any((ch.isalpha() and ch not in _DATE_PARTS) or ch in "\\{}" for ch in fmt):
        return lambda value: date_format(value, "SHORT_DATE_FORMAT")
    template = "".join(_DATE_PARTS.get(ch, ch) for ch in fmt)
    return lambda value: template.format(value, value.year % 100)


def _cell(cell: dict, url: str, dates=None) -> str:
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
        return html.escape(dates(value)) if dates else conditional_escape(date_format(value, "SHORT_DATE_FORMAT"))
    return conditional_escape(cell.get("text", ""))


def render_rows(rows: list[dict], base_url: str, with_phones: bool) -> SafeString:
    select = conditional_escape(_("Select"))
    dates = _date_formatter()
    parts = []
    for row in rows:
        pk = row["obj"].pk
        url = f"{base_url}{pk}/"
        cells = "".join(f"<td>{_cell(c, url, dates)}</td>" for c in row["cells"])
        phones = ""
        if with_phones:
            values = ", ".join(conditional_escape(phone(p.normalized)) for p in (row["comms"] or {}).get("phone", []))
            phones = f'<td class="small">{values}</td>'
        parts.append(f'<tr><td class="check"><input type="checkbox" name="ids" value="{pk}" form="bulk-form" '
                     f'aria-label="{select}"></td>{cells}{phones}</tr>')
    return mark_safe("\n".join(parts))  # every value above is escaped


def render_cards(cards: list[dict], stage_id: int, base_url: str, memo: dict | None = None) -> SafeString:
    """Kanban cards (a board shows up to 20 per column in every column: ~300 cards a screen, so this loop
    avoids per-value lookups: separators and translations once, each person's name and each duration once)."""
    from .templatetags.ui import ago, money_formatter

    fmt = money_formatter()
    free = conditional_escape(_("free"))
    in_stage = conditional_escape(_("in this stage"))
    overdue = conditional_escape(_("overdue task"))
    memo = {} if memo is None else memo  # shared by the columns of one board
    people: dict[int, str] = memo.setdefault("people", {})  # a board names the same few people on most cards
    durations: dict[tuple[int, int], str] = memo.setdefault("durations", {})  # «3 d», «5 h»: a few values
    parts = []
    for c in cards:
        obj = c["obj"]
        # html.escape is what Django's escape() does, without its lazy-string wrapper (3 µs a call here)
        amount = f'<div class="kcard-amount">{_esc(fmt(obj.opportunity, obj.currency))}</div>' if obj.opportunity else ""
        if obj.responsible_id:
            who = people.get(obj.responsible_id)
            if who is None:
                who = people[obj.responsible_id] = _esc(str(obj.responsible))
        else:
            who = free
        secs = int(c["in_stage"].total_seconds())
        key = (0, max(secs // 60, 1)) if secs < 3600 else (1, secs // 3600) if secs < 86400 else (2, secs // 86400)
        spent = durations.get(key)
        if spent is None:
            spent = durations[key] = _esc(ago(c["in_stage"]))
        if c["overdue"]:
            parts.append(
                f'<article class="kcard overdue" draggable="true" tabindex="0" data-id="{obj.pk}" data-stage="{stage_id}">'
                f'<a href="{base_url}{obj.pk}/" class="kcard-title">{_esc(obj.title)}</a>{amount}<div class="kcard-meta '
                f'small muted"><span>{who}</span><span title="{in_stage}">{spent}</span></div>'
                f'<span class="badge danger small">{overdue}</span></article>')
        else:
            parts.append(
                f'<article class="kcard" draggable="true" tabindex="0" data-id="{obj.pk}" data-stage="{stage_id}">'
                f'<a href="{base_url}{obj.pk}/" class="kcard-title">{_esc(obj.title)}</a>{amount}<div class="kcard-meta '
                f'small muted"><span>{who}</span><span title="{in_stage}">{spent}</span></div></article>')
    return mark_safe("\n".join(parts))  # every value above is escaped


def _esc(value) -> str:
    return value.__html__() if hasattr(value, "__html__") else html.escape(str(value))


def render_more(more_url: str, cursor: str | None) -> str:
    """The «More» button at the foot of a column (loads the next cards when it scrolls into view)."""
    if not cursor:
        return ""
    return (f'<button class="btn small more" hx-get="{conditional_escape(more_url)}?cursor={conditional_escape(cursor)}" '
            f'hx-swap="outerHTML" hx-trigger="click, intersect once">{conditional_escape(_("More"))}</button>')


def render_columns(columns: list[dict], *, more_base: str, quick_add_url: str | None) -> SafeString:
    """A board's columns (a 14-stage board rendered 14 template includes and URL reversals per request).

    ``more_base`` is the «more» URL with the stage id left out (``…/board/``); ``quick_add_url`` the create
    URL for the first column, or None when the user may not add."""
    quick_add = conditional_escape(_("Quick add"))
    success = ' <span class="badge ok">✓</span>'
    failure = ' <span class="badge danger">✕</span>'
    parts = []
    for i, column in enumerate(columns):
        stage = column["stage"]
        name = conditional_escape(stage.name)
        mark = success if stage.semantics == "success" else failure if stage.semantics == "failure" else ""
        amounts = "".join(f" · {conditional_escape(money(amount, cur))}" for cur, amount in column["amounts"])
        add = (f'<a class="quick-add small" href="{conditional_escape(quick_add_url)}&amp;stage={stage.pk}'
               f'&amp;back=board">+ {quick_add}</a>' if quick_add_url and i == 0 else "")
        more = render_more(f"{more_base}{stage.pk}/more/", column["next_cursor"])
        parts.append(
            f'<section class="column" data-stage="{stage.pk}" aria-label="{name}">'
            f'<header style="border-top-color:{conditional_escape(stage.color)}"><div class="column-title">{name}{mark}</div>'
            f'<div class="column-meta"><span class="count" data-count>{conditional_escape(column["count"])}</span>'
            f'{amounts}</div>{add}</header><div class="cards" data-drop>{column["cards_html"]}{more}</div></section>')
    return mark_safe("\n".join(parts))  # every value above is escaped
