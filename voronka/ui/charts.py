"""Charts drawn on the server as inline SVG: bars over time, a funnel, shares. No JavaScript, no CDN.

Every bar or slice whose number opens a list is a link (``<a href>`` inside the SVG), and every chart has a
text title and a table next to it, so it reads without colour or a mouse too.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLORS = ("#3b82f6", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#f97316", "#64748b", "#ec4899",
          "#84cc16")


def _num(value) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _wrap(svg: str, url: str | None, title: str) -> str:
    inner = f"<title>{escape(title)}</title>{svg}"
    return f'<a href="{escape(url)}">{inner}</a>' if url else f"<g>{inner}</g>"


CHAR_W = 6.4  # the width of one character at font-size 11, a little over the average of Cyrillic and Latin


def label_lines(label: str, room: float) -> list[str]:
    """A label under a bar in at most two lines that fit ``room`` pixels: whole words first (a person's first
    name above the surname), then cut with «…». The bar's tooltip keeps the whole label."""
    fit = max(3, int(room / CHAR_W))
    words = label.split()
    lines: list[str] = []
    while words and len(lines) < 2:
        line = words.pop(0)
        while words and len(line) + 1 + len(words[0]) <= fit:
            line += " " + words.pop(0)
        if len(lines) == 1 and words:  # the second line takes the rest
            line = " ".join([line, *words])
            words = []
        lines.append(line if len(line) <= fit else line[:fit - 1] + "…")
    return lines or [""]


def bars(points: list[tuple[str, float, str, str | None]], *, title: str, height: int = 220) -> SafeString:
    """Vertical bars: (label, value, shown value, link)."""
    if not points:
        return mark_safe("")
    n = len(points)
    width = max(320, min(960, 56 * n + 40))
    top, bottom, left = 22, 44, 8
    plot_h = height - top - bottom
    slot = (width - 2 * left) / n
    bar_w = max(6.0, min(48.0, slot * 0.7))
    biggest = max((_num(v) for _l, v, _s, _u in points), default=0) or 1
    parts = []
    step = max(1, n // 12)  # at most a dozen labels under the bars
    for i, (label, value, shown, url) in enumerate(points):
        h = plot_h * max(0.0, _num(value)) / biggest
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h - h
        bar = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0.5):.1f}" rx="3" '
               f'fill="{COLORS[0]}"/>'
               f'<text x="{x + bar_w / 2:.1f}" y="{y - 5:.1f}" text-anchor="middle" font-size="11">{escape(shown)}</text>')
        parts.append(_wrap(bar, url, f"{label}: {shown}"))
        if i % step == 0:
            # the label may use its bars' slots; at the chart's edges it leans inwards instead of being cut off
            cx, half = x + bar_w / 2, slot * step / 2
            if cx - half < 2:
                tx, anchor, room = 2.0, "start", cx + half - 2
            elif cx + half > width - 2:
                tx, anchor, room = width - 2.0, "end", width - 2 - (cx - half)
            else:
                tx, anchor, room = cx, "middle", 2 * half
            spans = "".join(f'<tspan x="{tx:.1f}" dy="{0 if k == 0 else 13}">{escape(line)}</tspan>'
                            for k, line in enumerate(label_lines(label, room - 4)))
            parts.append(f'<text x="{tx:.1f}" y="{height - bottom + 16}" text-anchor="{anchor}" '
                         f'font-size="11" fill="#555">{spans}</text>')
    axis = f'<line x1="{left}" y1="{top + plot_h}" x2="{width - left}" y2="{top + plot_h}" stroke="#ccc"/>'
    return mark_safe(f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
                     f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">'
                     f'<title>{escape(title)}</title>{axis}{"".join(parts)}</svg>')


def funnel(points: list[tuple[str, float, str, str | None]], *, title: str) -> SafeString:
    """A funnel: one centred band per stage, as wide as its share of the first stage."""
    if not points:
        return mark_safe("")
    width, row_h, gap = 640, 34, 6
    height = len(points) * (row_h + gap) + 8
    first = _num(points[0][1]) or max((_num(v) for _l, v, _s, _u in points), default=0) or 1
    parts = []
    for i, (label, value, shown, url) in enumerate(points):
        w = max(4.0, (width - 240) * min(1.0, _num(value) / first))
        x = 220 + ((width - 240) - w) / 2
        y = 4 + i * (row_h + gap)
        band = (f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h}" rx="4" fill="{COLORS[i % len(COLORS)]}"/>'
                f'<text x="{220 + (width - 240) / 2:.1f}" y="{y + row_h / 2 + 4}" text-anchor="middle" font-size="12" '
                f'font-weight="600" fill="#111">{escape(shown)}</text>')
        parts.append(f'<text x="210" y="{y + row_h / 2 + 4}" text-anchor="end" font-size="12">{escape(label[:30])}</text>')
        parts.append(_wrap(band, url, f"{label}: {shown}"))
    return mark_safe(f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
                     f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">'
                     f'<title>{escape(title)}</title>{"".join(parts)}</svg>')


def shares(points: list[tuple[str, float, str, str | None]], *, title: str) -> SafeString:
    """Shares of a whole: one stacked band and a legend with the percentages."""
    points = [pt for pt in points if _num(pt[1]) > 0]
    if not points:
        return mark_safe("")
    total = sum(_num(v) for _l, v, _s, _u in points)
    width, band_h = 640, 28
    legend_h = 20 * len(points)
    height = band_h + 16 + legend_h
    parts, x = [], 0.0
    for i, (label, value, shown, url) in enumerate(points):
        share = _num(value) / total
        w = width * share
        color = COLORS[i % len(COLORS)]
        parts.append(_wrap(f'<rect x="{x:.1f}" y="0" width="{max(w, 1):.1f}" height="{band_h}" fill="{color}"/>', url,
                           f"{label}: {shown} ({share * 100:.1f} %)"))
        y = band_h + 16 + 20 * i
        legend = (f'<rect x="0" y="{y - 10}" width="12" height="12" rx="2" fill="{color}"/>'
                  f'<text x="18" y="{y}" font-size="12">{escape(label[:60])} — {escape(shown)} '
                  f'({share * 100:.1f} %)</text>')
        parts.append(_wrap(legend, url, f"{label}: {shown}"))
        x += w
    return mark_safe(f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
                     f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">'
                     f'<title>{escape(title)}</title>{"".join(parts)}</svg>')


def draw(kind: str, points, *, title: str) -> SafeString:
    return {"bars": bars, "funnel": funnel, "shares": shares}.get(kind, bars)(points, title=title)
