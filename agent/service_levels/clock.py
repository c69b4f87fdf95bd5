"""The arithmetic of one target on a business calendar: when "8 working hours" after an opening ends.

Three units, three rules (the README's "Service levels" section says them in
words): working time is counted inside the calendar's office spans, measured
between UTC instants so a DST change inside a span counts its real length;
working days end at the same wall-clock time N working days later; clock time
is plain elapsed time, nights, Sundays and holidays included.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from custode.agent.calendar import BusinessCalendar
from custode.agent.clock import ROME
from custode.agent.service_levels.targets import Target, Unit


def add_target(calendar: BusinessCalendar, start: datetime, target: Target) -> datetime:
    """The due time of ``target`` counted from ``start`` (aware), in Europe/Rome."""
    if target.unit is Unit.WORKING_TIME:
        return calendar.add_working_time(start, target.amount)
    if target.unit is Unit.WORKING_DAYS:
        return calendar.add_working_days(start, int(target.amount))
    return (start.astimezone(timezone.utc) + timedelta(seconds=target.amount)).astimezone(ROME)
