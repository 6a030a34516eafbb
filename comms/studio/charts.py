"""Server-rendered SVG charts: bars for messages, a line for opt-outs. No script, no library;
the numbers are also in the page as text for screen readers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PAD = 24
MAX_BAR = 36


def bar_line_chart(
    *,
    days: Sequence[dt.date | dt.datetime],
    bars: Sequence[int],
    line: Sequence[int] | None,
    label: str,
    width: int = 720,
    height: int = 160,
) -> SafeString:
    """An SVG with one bar per slot (messages) and, optionally, a line (opt-outs) on its own scale."""
    WIDTH, HEIGHT = width, height
    n = max(len(days), 1)
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    top = max(bars, default=0) or 1
    step = plot_w / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#8a93a3"/>',
        f'<text x="{PAD}" y="14" font-size="11" fill="#4a5262">{top}</text>',
    ]
    for i, value in enumerate(bars):
        if value <= 0:
            continue
        h = plot_h * value / top
        x = PAD + i * step
        bar = min(max(step * 0.8, 1), MAX_BAR)
        parts.append(
            f'<rect x="{x + (step - bar) / 2:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{bar:.1f}"'
            f' height="{h:.1f}" fill="#0b6157"><title>{escape(_day(days[i]))}: {value}</title></rect>'
        )
    if line is not None and any(line):
        line_top = max(line)
        points = " ".join(
            f"{PAD + (i + 0.5) * step:.1f},{HEIGHT - PAD - plot_h * v / line_top:.1f}" for i, v in enumerate(line)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="#b3261e" stroke-width="2"/>')
        parts.append(
            f'<text x="{WIDTH - PAD}" y="14" font-size="11" fill="#b3261e" text-anchor="end">{line_top}</text>'
        )
    if days:
        parts.append(
            f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="11" fill="#4a5262">{escape(_day(days[0]))}</text>'
        )
        parts.append(
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" font-size="11" fill="#4a5262" text-anchor="end">'
            f"{escape(_day(days[-1]))}</text>"
        )
    parts.append("</svg>")
    # Safe: every text interpolated above is escaped, everything else is a number.
    return mark_safe("".join(parts))


def _day(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%d.%m. %H:%M")
    return value.strftime("%d.%m.%Y")
