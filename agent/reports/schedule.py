"""When each report is due: periods (``2026Q4``, ``2026``) and the Nth working day after one ends.

A comune reads every date on its own calendar, so the due day is counted on
the tenant's business calendar (provider closures, the tenant's patron day and
closures, national holidays, office days): the 5th working day after 31
December 2026 is Monday 11 January 2027, because 1 January is a holiday, 2-3
January a weekend and 6 January the Epiphany.

Like the update windows' occurrences, the schedule is computed, never stored:
only a report queued (or sent) is a row, in :mod:`custode.agent.reports.store`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from custode.agent.calendar import ROME, BusinessCalendar
from custode.agent.config import Config
from custode.agent.reports.config import ReportKindName, TenantReports

SEARCH_LIMIT = 400
"""Days searched for working days; a calendar with none in a year is a config problem, not a reason to loop."""
_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


class PeriodError(ValueError):
    """A period that does not name a quarter or a year (the message shows the forms)."""


@dataclass(frozen=True)
class Period:
    """A report's period: a quarter (``2026Q4``) or a year (``2026``), first and last day included."""

    kind: ReportKindName
    label: str
    start: date
    end: date

    def previous(self) -> Period:
        return period_containing(self.kind, self.start - timedelta(days=1))

    def next(self) -> Period:
        return period_containing(self.kind, self.end + timedelta(days=1))


def parse_period(kind: str, text: str) -> Period:
    """``2026Q4`` (also ``2026-Q4``, ``2026q4``) for a quarterly report, ``2026`` for a yearly one."""
    value = text.strip()
    if kind == "quarterly":
        match = _QUARTER.match(value)
        if not match:
            raise PeriodError(f"{text!r} is not a quarter; write YEARQn, e.g. 2026Q4")
        year, quarter = int(match[1]), int(match[2])
        return period_containing("quarterly", date(year, 3 * quarter - 2, 1))
    if kind == "yearly":
        if not _YEAR.match(value):
            raise PeriodError(f"{text!r} is not a year; write it with four digits, e.g. 2026")
        return period_containing("yearly", date(int(value), 1, 1))
    raise PeriodError(f"{kind!r} is not a kind of report; quarterly or yearly")


def period_containing(kind: ReportKindName, day: date) -> Period:
    if kind == "yearly":
        return Period("yearly", f"{day.year}", date(day.year, 1, 1), date(day.year, 12, 31))
    quarter = (day.month - 1) // 3 + 1
    start = date(day.year, 3 * quarter - 2, 1)
    following = date(day.year + 1, 1, 1) if quarter == 4 else date(day.year, 3 * quarter + 1, 1)
    return Period("quarterly", f"{day.year}Q{quarter}", start, following - timedelta(days=1))


def calendar_for(config: Config, tenant: str) -> BusinessCalendar:
    """The tenant's calendar: the provider's, with the tenant's patron day, closures and office hours."""
    spec = config.tenants[tenant].calendar if tenant in config.tenants else None
    return BusinessCalendar.build(config.calendar, spec)


def nth_working_day_after(calendar: BusinessCalendar, day: date, n: int) -> date:
    """The ``n``-th working day after ``day`` (``day`` itself never counts).

    A calendar with no office day at all counts calendar days: better a report
    a few days early than none.
    """
    counting = any(calendar.office_hours)
    found = 0
    current = day
    for _ in range(SEARCH_LIMIT):
        current += timedelta(days=1)
        if not counting or calendar.is_working_day(current):
            found += 1
            if found >= n:
                return current
    raise ValueError(f"fewer than {n} working days in the {SEARCH_LIMIT} days after {day}: check the office hours "
                     "and closures of the calendar")


def due_time(calendar: BusinessCalendar, period: Period, settings: TenantReports) -> datetime:
    """When the report of ``period`` is due: its working day at its time, Europe/Rome (with that day's offset)."""
    timing = settings.timing(period.kind)
    day = nth_working_day_after(calendar, period.end, timing.working_day)
    return datetime.combine(day, timing.at_time, ROME)


@dataclass(frozen=True)
class DueReport:
    tenant: str
    period: Period
    due: datetime


def due_reports(config: Config, now: datetime) -> list[DueReport]:
    """The reports whose due time has come, at most ``reports.catch_up`` ago, of every tenant that sends them.

    Only the latest ended period of each kind, and the one before it, can be
    due (the one before: early in a quarter, before the last one's due day);
    a due time further back than ``catch_up`` (a tenant that just turned
    reports on, an agent stopped for weeks) is not queued by itself: that
    report is sent by hand (``custode report send``), never as a surprise.
    """
    found = []
    catch_up = timedelta(seconds=config.reports.catch_up)
    today = now.astimezone(ROME).date()
    for tenant, spec in sorted(config.tenants.items()):
        settings = spec.reports
        if not settings.enabled:
            continue
        calendar = calendar_for(config, tenant)
        for kind in settings.kinds:
            latest = period_containing(kind, today).previous()
            for period in (latest.previous(), latest):
                due = due_time(calendar, period, settings)
                if due <= now < due + catch_up:
                    found.append(DueReport(tenant, period, due))
    return found
