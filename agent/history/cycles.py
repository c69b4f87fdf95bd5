"""The agent's own availability: the collection cycles that were due, those that ran, and the gaps.

A farm node sees a polled host down; an agent cannot see itself down. What it
can see, at its next cycle, is that the cycles between this one and the last
one did not run. So an agent row counts in ``polls`` the cycles that were due
(one per interval, from the agent's first recorded cycle on) and in
``successes`` the cycles that ran: ``successes / polls`` is the share of
collection cycles that ran, the same formula as a polled host's availability.

A gap is spread over the days it covers: the cycles due before midnight count
against the day before, and every whole day in between gets a row of its own
with none run (those days the agent, or its host, was not running at all).
``data["cycles"]`` keeps the day's first and last cycle and its longest gap,
which a report shows as "agent not running".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from custode.agent.history.model import day_end, day_of, day_start

MISSED_AFTER = 1.5
"""A gap of this many intervals or more lost a cycle (a cycle a few seconds late is not one missed)."""


@dataclass(frozen=True)
class GapShare:
    """The part of one gap between two cycles that ran that falls on one day."""

    day: date
    missed: int
    """Cycles due in this part that did not run."""
    start: float
    end: float


def gap_shares(last: float, now: float, interval: float, oldest: date | None = None) -> list[GapShare]:
    """The cycles that did not run between the cycle at ``last`` and the one at ``now``, day by day.

    ``oldest``: no share before this day (rows past the retention would be deleted the same night)."""
    if now <= last or interval <= 0:
        return []
    due = max(1, math.floor((now - last) / interval + 0.5))  # the last one due is the one that ran at ``now``
    first_day, last_day = day_of(last), day_of(now)
    if oldest is not None and first_day < oldest:
        first_day = min(oldest, last_day)
    shares = []
    day = first_day
    while day <= last_day:
        start, end = max(last, day_start(day)), min(now, day_end(day))
        lowest = max(1, math.ceil((day_start(day) - last) / interval))
        highest = min(due - 1, math.ceil((day_end(day) - last) / interval) - 1)
        shares.append(GapShare(day, max(0, highest - lowest + 1), start, end))
        day += timedelta(days=1)
    return shares


def _cycles(data: dict[str, Any], interval: float) -> dict[str, Any]:
    slot: dict[str, Any] = data.setdefault("cycles", {})
    slot["interval"] = interval
    return slot


def note_gap(data: dict[str, Any], share: GapShare, interval: float) -> None:
    """Keep the share as the day's longest gap if it is longer than the one kept (in place)."""
    slot = _cycles(data, interval)
    seconds = round(share.end - share.start, 1)
    if seconds > slot.get("longest_gap", {}).get("seconds", 0.0):
        slot["longest_gap"] = {"seconds": seconds, "from": share.start, "to": share.end}


def note_cycle(data: dict[str, Any], at: float, interval: float) -> None:
    """A cycle ran at ``at``: the day's first and last cycle (in place)."""
    slot = _cycles(data, interval)
    slot["first"] = min(slot.get("first", at), at)
    slot["last"] = max(slot.get("last", at), at)


def last_cycle(data: dict[str, Any]) -> float | None:
    """When the row's last cycle ran (None: none ran that day, or a farm row)."""
    value = data.get("cycles", {}).get("last")
    return float(value) if value is not None else None


def not_running(data: dict[str, Any]) -> dict[str, float] | None:
    """The day's longest gap, when it lost at least one cycle: ``{seconds, from, to}``; None otherwise."""
    slot = data.get("cycles", {})
    gap = slot.get("longest_gap")
    interval = slot.get("interval") or 0
    if not gap or not interval or gap["seconds"] < MISSED_AFTER * interval:
        return None
    return dict(gap)
