"""The queue's chart: objections filed per week, and how many of them are overdue now, as an SVG drawn on the
server (no script, no style attribute: the page's Content-Security-Policy allows neither). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape

from debar.console.views import Objection

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 30, 40
FILED_COLOUR, OVERDUE_COLOUR = "#2b5d9c", "#b3261e"


@dataclass(frozen=True, slots=True)
class Week:
    monday: date
    filed: int
    overdue: int


def monday_of(epoch_s: int) -> date:
    day = datetime.fromtimestamp(epoch_s, UTC).date()
    return day - timedelta(days=day.weekday())


def weekly(objections: Iterable[Objection], now: int, weeks: int = 8) -> list[Week]:
    """The last `weeks` weeks (Monday to Sunday, UTC), oldest first, this week last; objections filed before them
    are not counted."""
    last = monday_of(now)
    mondays = [last - timedelta(weeks=i) for i in reversed(range(weeks))]
    filed = dict.fromkeys(mondays, 0)
    overdue = dict.fromkeys(mondays, 0)
    for objection in objections:
        monday = monday_of(objection.filed_at)
        if monday in filed:
            filed[monday] += 1
            overdue[monday] += objection.overdue
    return [Week(m, filed[m], overdue[m]) for m in mondays]


def _scale_top(highest: int) -> int:
    """A round top for the axis: 1, 2, 5, 10, 20, 50, ... at least `highest`."""
    power = 1
    while True:
        for step in (1, 2, 5):
            if step * power >= highest:
                return step * power
        power *= 10


def svg(weeks: list[Week]) -> str:
    """An accessible SVG (role img, a title, a description listing every figure) of paired bars per week."""
    top = _scale_top(max([w.filed for w in weeks] + [1]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(weeks), 1)
    bar = slot * 0.35
    described = "; ".join(f"week of {w.monday.isoformat()}: {w.filed} filed, {w.overdue} overdue" for w in weeks)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'role="img" aria-labelledby="chart-title chart-desc" class="chart">',
        '<title id="chart-title">Objections filed per week, and how many of them are overdue now</title>',
        f'<desc id="chart-desc">{escape(described)}</desc>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#555"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11" fill="#333">{top}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="11" fill="#333">0</text>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}" stroke="#ddd"/>',
    ]
    for i, week in enumerate(weeks):
        x = LEFT + i * slot + slot * 0.15
        for offset, count, colour, what in (
            (0, week.filed, FILED_COLOUR, "filed"),
            (bar, week.overdue, OVERDUE_COLOUR, "overdue"),
        ):
            height = plot_h * count / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{count} {what}</title></rect>'
            )
            if count:
                parts.append(
                    f'<text x="{x + offset + bar / 2:.1f}" y="{TOP + plot_h - height - 3:.1f}" text-anchor="middle" '
                    f'font-size="10" fill="#333">{count}</text>'
                )
        parts.append(
            f'<text x="{x + bar:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" font-size="11" fill="#333">'
            f"{week.monday.strftime('%m-%d')}</text>"
        )
    legend_y = HEIGHT - 8
    parts += [
        f'<rect x="{LEFT}" y="{legend_y - 9}" width="10" height="10" fill="{FILED_COLOUR}"/>',
        f'<text x="{LEFT + 14}" y="{legend_y}" font-size="11" fill="#333">filed (week starting)</text>',
        f'<rect x="{LEFT + 150}" y="{legend_y - 9}" width="10" height="10" fill="{OVERDUE_COLOUR}"/>',
        f'<text x="{LEFT + 164}" y="{legend_y}" font-size="11" fill="#333">of those, overdue now</text>',
        "</svg>",
    ]
    return "".join(parts)
