"""How late a missed target is, in the unit a penalty counts: started days, hours, working days, slots.

Penalties are per *started* unit: the first unit starts at the due time, so a
resolution one minute late costs one unit, and a missed target always costs
at least one (a miss that falls outside office hours still missed). Calendar
days and hours are plain elapsed time counted from the due time, nights and
holidays included. Working hours are the office time of the level's calendar
between the due time and the end of the lateness; a working day ends at the
same wall-clock time one working day later (as ``BusinessCalendar.add_working_days``
counts targets), so "per working day" reads the lateness the way the contract
read the target.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from custode.agent.calendar import BusinessCalendar
from custode.agent.clock import ROME
from custode.agent.service_levels.targets import Target, Unit

EPSILON = 1e-6
"""Seconds ignored when rounding up: a due time and a moment that are equal must not start a second unit."""
MAX_UNITS = 100_000


def started(seconds: float, unit_seconds: float) -> int:
    """Started units of ``unit_seconds`` in ``seconds`` of lateness; at least one."""
    return max(1, math.ceil(max(0.0, seconds - EPSILON) / unit_seconds))


def working_seconds(calendar: BusinessCalendar, start: float, end: float) -> float:
    """Office time of ``calendar`` between two instants (UTC arithmetic, so a DST change counts its real length)."""
    if end <= start:
        return 0.0
    begin = datetime.fromtimestamp(start, timezone.utc)
    finish = datetime.fromtimestamp(end, timezone.utc)
    day = begin.astimezone(ROME).date()
    last = finish.astimezone(ROME).date()
    total = 0.0
    while day <= last:
        for span_start, span_end in calendar.spans_on(day):
            overlap = (min(span_end, finish) - max(span_start, begin)).total_seconds()
            if overlap > 0:
                total += overlap
        day += timedelta(days=1)
    return total


def started_working_days(calendar: BusinessCalendar, due: float, end: float, days_per_unit: int = 1) -> int:
    """Started units of ``days_per_unit`` working days from ``due`` to ``end``; at least one."""
    moment = datetime.fromtimestamp(due, ROME)
    for units in range(1, MAX_UNITS):
        if calendar.add_working_days(moment, units * days_per_unit).timestamp() >= end - EPSILON:
            return units
    return MAX_UNITS


def started_units(calendar: BusinessCalendar, per: str, slot: Target | None, due: float, end: float) -> int:
    """Units of lateness from ``due`` to ``end`` as a PenaltyRule's ``per`` counts them (``ticket``: one)."""
    if per == "ticket":
        return 1
    if per == "day":
        return started(end - due, 86400.0)
    if per == "hour":
        return started(end - due, 3600.0)
    if per == "working_hour":
        return started(working_seconds(calendar, due, end), 3600.0)
    if per == "working_day":
        return started_working_days(calendar, due, end)
    if per == "slot":
        assert slot is not None, "per: slot without a slot length (the config model refuses it)"
        if slot.unit is Unit.WORKING_DAYS:
            return started_working_days(calendar, due, end, int(slot.amount))
        if slot.unit is Unit.WORKING_TIME:
            return started(working_seconds(calendar, due, end), slot.amount)
        return started(end - due, slot.amount)
    raise ValueError(f"unknown penalty unit {per!r}")


def unit_words(per: str, slot: Target | None, count: int) -> str:
    """'3 started slots of 4 working hours', '1 started working day': the count as the report says it."""
    plural = count != 1
    if per == "ticket":
        return "per missed target"
    if per == "slot" and slot is not None:
        return f"{count} started slot{'s' if plural else ''} of {slot.describe('en')}"
    noun = {"day": "day", "hour": "hour", "working_day": "working day", "working_hour": "working hour"}[per]
    return f"{count} started {noun}{'s' if plural else ''}"
