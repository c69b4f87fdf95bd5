"""The report's charts as small hand-written SVG, inline in the HTML, so the PDF keeps them as vectors.

Why not a charting library: pygal renders in WeasyPrint, but each chart is
about 37 kB of SVG with a stylesheet and script hooks, and a 50-server
yearly report has a hundred charts; these are 2-6 kB, need no dependency
(HTML must render on an install without the ``reports`` extra), and use only
the SVG subset WeasyPrint draws (``rect``, ``polyline``, ``line``, ``text``
with presentation attributes, no CSS and no script). Every label is escaped;
colours come with a legend in words (the tables carry the same figures),
so a chart printed in grey still reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from markupsafe import Markup

from custode.agent.reports.words import Words

OUTCOME_COLOURS = {"success": "#2e7d32", "warning": "#f9a825", "failure": "#c62828", "missing": "#4a148c",
                   "not_due": "#e0e0e0"}
"""The backup outcomes; ``missing`` is dark violet, not red, so it differs from a failure without colour too."""
GRID = "#bdbdbd"
AXIS_TEXT = "#424242"
FONT = 'font-family="DejaVu Sans, sans-serif"'


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[date, float]]
    colour: str
    dashed: bool = False
    width: float = 1.4


@dataclass(frozen=True)
class Frame:
    """The plotting area of a chart over ``start``..``end`` (days included) and 0-100 %."""

    start: date
    end: date
    width: float
    height: float
    left: float = 26.0
    right: float = 6.0
    top: float = 6.0
    bottom: float = 16.0

    @property
    def days(self) -> int:
        return max(1, (self.end - self.start).days + 1)

    def x(self, day: date) -> float:
        """The middle of ``day``'s column."""
        inner = self.width - self.left - self.right
        return self.left + inner * ((day - self.start).days + 0.5) / self.days

    def y(self, percent: float) -> float:
        inner = self.height - self.top - self.bottom
        return self.top + inner * (1 - max(0.0, min(100.0, percent)) / 100)


def _svg(width: float, height: float, title: str, body: list[str]) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width:g}" height="{height:g}" '
                  f'viewBox="0 0 {width:g} {height:g}" role="img" aria-label="{escape(title)}">'
                  f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _axes(frame: Frame, words: Words) -> list[str]:
    """Horizontal lines at 0, 50 and 100 %, and a tick with the month's name at the first of each month."""
    parts = []
    for level in (0, 50, 100):
        y = frame.y(level)
        parts.append(f'<line x1="{frame.left:g}" y1="{y:.1f}" x2="{frame.width - frame.right:g}" y2="{y:.1f}" '
                     f'stroke="{GRID}" stroke-width="0.5"/>')
        parts.append(f'<text x="{frame.left - 3:g}" y="{y + 3:.1f}" font-size="7" text-anchor="end" '
                     f'fill="{AXIS_TEXT}" {FONT}>{level}</text>')
    bottom = frame.y(0)
    for first in month_starts(frame.start, frame.end):
        x = frame.x(first) - (frame.x(first) - frame.x(first - timedelta(days=1))) / 2
        parts.append(f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 3:.1f}" stroke="{GRID}" '
                     f'stroke-width="0.5"/>')
        if frame.days <= 120 or first.month % 2 == 1:
            parts.append(f'<text x="{x + 2:.1f}" y="{bottom + 11:.1f}" font-size="7" fill="{AXIS_TEXT}" {FONT}>'
                         f"{escape(words.month_short(first.month))}</text>")
    return parts


def month_starts(start: date, end: date) -> list[date]:
    """The first day of every month from ``start``'s to ``end``'s (``start`` itself when it is a first)."""
    firsts, day = [], date(start.year, start.month, 1)
    while day <= end:
        if day >= start:
            firsts.append(day)
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return firsts


def _polylines(frame: Frame, series: Series) -> list[str]:
    """One polyline per run of consecutive days: a day with no data breaks the line instead of bridging it."""
    runs: list[list[tuple[date, float]]] = []
    for day, value in sorted(series.points):
        if runs and (day - runs[-1][-1][0]).days == 1:
            runs[-1].append((day, value))
        else:
            runs.append([(day, value)])
    dash = ' stroke-dasharray="3 2"' if series.dashed else ""
    parts = []
    for run in runs:
        if len(run) == 1:
            day, value = run[0]
            parts.append(f'<rect x="{frame.x(day) - 0.8:.1f}" y="{frame.y(value) - 0.8:.1f}" width="1.6" '
                         f'height="1.6" fill="{series.colour}"/>')
            continue
        points = " ".join(f"{frame.x(d):.1f},{frame.y(v):.1f}" for d, v in run)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{series.colour}" '
                     f'stroke-width="{series.width:g}" stroke-linejoin="round"{dash}/>')
    return parts


def line_chart(title: str, series: Sequence[Series], start: date, end: date, words: Words,
               width: float = 330, height: float = 120, extra: Sequence[str] = ()) -> Markup:
    """Percentages (0-100) per day over the period, one line per series."""
    frame = Frame(start, end, width, height)
    body = _axes(frame, words)
    for one in series:
        body.extend(_polylines(frame, one))
    body.extend(extra)
    return _svg(width, height, title, body)


def cpu_memory_chart(daily_cpu: Sequence[tuple[date, float, float]],
                     daily_memory: Sequence[tuple[date, float, float]], start: date, end: date,
                     words: Words) -> Markup:
    """CPU and memory: the daily average as a solid line, the daily peak as a thin dashed one."""
    cpu, memory = "#1565c0", "#ef6c00"
    series = [Series(f"{words('cpu')} {words('peak')}", [(d, p) for d, _, p in daily_cpu], cpu, True, 0.7),
              Series(f"{words('memory')} {words('peak')}", [(d, p) for d, _, p in daily_memory], memory, True, 0.7),
              Series(f"{words('cpu')} {words('average')}", [(d, a) for d, a, _ in daily_cpu], cpu),
              Series(f"{words('memory')} {words('average')}", [(d, a) for d, a, _ in daily_memory], memory)]
    return line_chart(words("chart.cpu_memory"), series, start, end, words)


DISK_COLOURS = ("#00695c", "#6a1b9a", "#5d4037", "#283593", "#827717", "#ad1457")


def disk_colour(index: int) -> str:
    return DISK_COLOURS[index % len(DISK_COLOURS)]


def disks_chart(disks: Sequence[tuple[str, Sequence[tuple[date, float]], date | None]], start: date, end: date,
                words: Words) -> Markup:
    """Used % of each disk per day, a red line at 100 %, and a dashed trend to the fill date.

    The trend runs from the last measured day towards (fill date, 100 %);
    a fill date past the period is drawn up to the chart's right edge, at the
    height the trend reaches there, so the slope shows without stretching the
    period's axis by years."""
    frame = Frame(start, end, 330, 120)
    body = _axes(frame, words)
    full = frame.y(100)
    body.append(f'<line x1="{frame.left:g}" y1="{full:.1f}" x2="{frame.width - frame.right:g}" y2="{full:.1f}" '
                f'stroke="#c62828" stroke-width="0.8"/>')
    for index, (label, points, full_by) in enumerate(disks):
        colour = disk_colour(index)
        body.extend(_polylines(frame, Series(label, points, colour)))
        if full_by is None or not points:
            continue
        last_day, last_value = max(points)
        span = (full_by - last_day).days
        if span <= 0:
            continue
        to_day = min(full_by, end)
        to_value = last_value + (100 - last_value) * (to_day - last_day).days / span
        body.append(f'<line x1="{frame.x(last_day):.1f}" y1="{frame.y(last_value):.1f}" x2="{frame.x(to_day):.1f}" '
                    f'y2="{frame.y(to_value):.1f}" stroke="{colour}" stroke-width="1" stroke-dasharray="3 2"/>')
    return _svg(frame.width, frame.height, words("chart.disks"), body)


def outcome_strip(days: Sequence[tuple[date, str]], start: date, end: date, width: float = 62,
                  height: float = 9, title: str = "") -> Markup:
    """One coloured cell per day of ``start``..``end``; a day with no record is left blank (white).

    Consecutive days of one outcome are one rectangle: fewer elements, and no
    hairline gaps where anti-aliasing meets two cells' edges. The strip
    stretches to its table cell (``preserveAspectRatio="none"``)."""
    count = max(1, (end - start).days + 1)
    cell = width / count
    by_offset = {(day - start).days: outcome for day, outcome in days if 0 <= (day - start).days < count}
    body = [f'<rect x="0" y="0" width="{width:g}" height="{height:g}" fill="#ffffff" stroke="{GRID}" '
            f'stroke-width="0.4"/>']
    offset = 0
    while offset < count:
        outcome = by_offset.get(offset)
        run = 1
        while offset + run < count and by_offset.get(offset + run) == outcome:
            run += 1
        if outcome is not None:
            body.append(f'<rect x="{offset * cell:.2f}" y="0.5" width="{run * cell:.2f}" height="{height - 1:g}" '
                        f'fill="{OUTCOME_COLOURS.get(outcome, GRID)}"/>')
        offset += run
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="strip" width="{width:g}" height="{height:g}" '
                  f'viewBox="0 0 {width:g} {height:g}" preserveAspectRatio="none" role="img" '
                  f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>')


def swatch(colour: str, dashed: bool = False, line: bool = False) -> Markup:
    """A legend's sample: a cell's colour, or a solid (``line``) or dashed line."""
    if line and not dashed:
        return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="swatch" width="14" height="6" '
                      f'viewBox="0 0 14 6"><line x1="0" y1="3" x2="14" y2="3" stroke="{colour}" stroke-width="2"/>'
                      f'</svg>')
    if dashed:
        return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="swatch" width="14" height="6" '
                      f'viewBox="0 0 14 6"><line x1="0" y1="3" x2="14" y2="3" stroke="{colour}" stroke-width="1.2" '
                      f'stroke-dasharray="3 2"/></svg>')
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="swatch" width="8" height="8" viewBox="0 0 8 8">'
                  f'<rect width="8" height="8" fill="{colour}"/></svg>')
