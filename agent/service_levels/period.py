"""Report periods (``2026Q4``, ``2026-11``, ``2026``) as Europe/Rome intervals, and their months and quarters.

A contract's quarter is the comune's quarter: it starts at midnight in Rome,
so a ticket opened at 2026-09-30T23:30+02:00 (21:30 UTC) is in Q3, whatever
zone the server runs in. Intervals are half-open ``[start, end)`` on epoch
seconds, taken from aware Rome datetimes so the DST change inside a quarter
cannot shift a boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal

from custode.agent.clock import ROME

SpanKind = Literal["month", "quarter", "year"]
_FORMS = re.compile(r"^\s*(?P<year>\d{4})(?:\s*(?:-?\s*[Qq](?P<quarter>[1-4])|-(?P<month>\d{1,2})))?\s*$")
HINT = "write 2026Q4 (a quarter), 2026-11 (a month) or 2026 (a year)"


@dataclass(frozen=True)
class Span:
    """One month, quarter or year in Europe/Rome."""

    key: str
    """``2026-11``, ``2026Q4`` or ``2026``: the label people and the CSV use."""
    kind: SpanKind
    start: datetime
    end: datetime
    """Exclusive: the first instant of the next span."""

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        return self.end.timestamp()

    def contains(self, moment: float) -> bool:
        return self.start_ts <= moment < self.end_ts

    def complete(self, now: float) -> bool:
        """Whether the span is over at ``now``: figures of a span still running are provisional."""
        return now >= self.end_ts


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), ROME)


def month(year: int, number: int) -> Span:
    following = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return Span(f"{year}-{number:02d}", "month", _midnight(date(year, number, 1)), _midnight(following))


def quarter(year: int, number: int) -> Span:
    first = 3 * (number - 1) + 1
    following = date(year + 1, 1, 1) if number == 4 else date(year, first + 3, 1)
    return Span(f"{year}Q{number}", "quarter", _midnight(date(year, first, 1)), _midnight(following))


def year(number: int) -> Span:
    return Span(str(number), "year", _midnight(date(number, 1, 1)), _midnight(date(number + 1, 1, 1)))


def parse_period(text: str) -> Span:
    """``2026Q4`` / ``2026-Q4`` / ``2026-11`` / ``2026``; anything else is a ValueError that says how to write it."""
    match = _FORMS.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a period; {HINT}")
    number = int(match["year"])
    if not 1970 <= number <= 9998:
        raise ValueError(f"{text!r}: year {number} is out of range; {HINT}")
    if match["quarter"]:
        return quarter(number, int(match["quarter"]))
    if match["month"]:
        month_number = int(match["month"])
        if not 1 <= month_number <= 12:
            raise ValueError(f"{text!r}: month {month_number} does not exist; {HINT}")
        return month(number, month_number)
    return year(number)


def months_of(span: Span) -> list[Span]:
    """The months of ``span`` in order (one for a month)."""
    first = span.start.date()
    if span.kind == "month":
        return [span]
    count = 3 if span.kind == "quarter" else 12
    return [month(first.year, first.month + offset) for offset in range(count)]


def quarters_of(span: Span) -> list[Span]:
    """The whole quarters inside ``span``: its own for a quarter, four for a year, none for a month."""
    if span.kind == "quarter":
        return [span]
    if span.kind == "year":
        return [quarter(span.start.year, number) for number in range(1, 5)]
    return []


def current(kind: SpanKind, now: float) -> Span:
    """The month, quarter or year that contains ``now`` (in Rome)."""
    today = datetime.fromtimestamp(now, ROME).date()
    if kind == "month":
        return month(today.year, today.month)
    if kind == "quarter":
        return quarter(today.year, (today.month - 1) // 3 + 1)
    return year(today.year)
