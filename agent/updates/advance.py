"""Which advance notices are due: each window occurrence, N working days ahead, to each tenant it concerns.

The contracts ask that releases be announced to the comune "with due notice"
(Sassuolo's penalty is €500–1,000 per release not announced in advance). So
each tenant's referents get every coming occurrence that concerns them
``tenants.<id>.notice.working_days`` working days before it, counted on *that
tenant's* calendar (its patron day and closures are not working days), early
in the morning, so the mail is there when the office opens. 0 means the
morning of the day itself. An occurrence skipped for a holiday or closure is
announced as cancelled, on the same day it would have been announced.

Like the occurrences, the plan is computed, not stored: only what was sent
(or could not be) is recorded, by :mod:`custode.agent.updates.announce`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from custode.agent.calendar import ROME, BusinessCalendar
from custode.agent.config import Config
from custode.agent.updates.notice_store import NewNotice, NoticeKey
from custode.agent.updates.states import NoticeKind
from custode.agent.updates.windows import WindowOccurrence, calendar_for, occurrences, window_tenants

NOTICE_TIME = time(7, 0)
"""Early morning, Europe/Rome: when a notice becomes due on its day (in the mailbox before the office opens)."""
SEARCH_LIMIT = 400
"""Days searched for working days; a calendar with none in a year is a config problem, not a reason to loop."""


@dataclass(frozen=True)
class PlannedNotice:
    """One notice to one tenant about one occurrence: when it is due and who reads it."""

    tenant: str
    tenant_name: str
    language: str
    recipients: list[str]
    occurrence: WindowOccurrence
    hosts: list[str]
    due: datetime

    @property
    def kind(self) -> NoticeKind:
        return NoticeKind.CANCELLED if self.occurrence.skipped else NoticeKind.ADVANCE

    @property
    def key(self) -> NoticeKey:
        return NoticeKey(self.tenant, self.occurrence.window, self.occurrence.start.timestamp(), self.kind)

    def record(self) -> NewNotice:
        return NewNotice(self.key, self.occurrence.end.timestamp(), self.occurrence.application,
                         self.due.timestamp())


def _has_working_days(calendar: BusinessCalendar) -> bool:
    return any(calendar.office_hours)


def notice_day(calendar: BusinessCalendar, day: date, working_days: int) -> date:
    """The day ``working_days`` working days before ``day`` (``day`` itself for 0).

    Two working days before a Thursday is the Tuesday; before a Monday after
    a closure Friday, the Thursday. A calendar with no office hours at all
    counts calendar days: better a notice than none.
    """
    counting = _has_working_days(calendar)
    found = 0
    current = day
    for _ in range(SEARCH_LIMIT):
        if found >= working_days:
            return current
        current -= timedelta(days=1)
        if not counting or calendar.is_working_day(current):
            found += 1
    return current


def due_time(calendar: BusinessCalendar, occurrence: WindowOccurrence, working_days: int) -> datetime:
    """When the notice of ``occurrence`` becomes due: early morning of its notice day, and before it starts."""
    day = notice_day(calendar, occurrence.start.astimezone(ROME).date(), working_days)
    due = datetime.combine(day, NOTICE_TIME, ROME)
    if due >= occurrence.start:  # a window opening before 07:00, announced on its own day
        due = datetime.combine(day, time(0, 0), ROME)
    return due


def horizon_days(calendar: BusinessCalendar, today: date, working_days: int) -> int:
    """How many days from ``today`` hold every occurrence whose notice is due by today: N+1 working days on."""
    counting = _has_working_days(calendar)
    found = 0
    for offset in range(SEARCH_LIMIT):
        day = today + timedelta(days=offset)
        if not counting or calendar.is_working_day(day):
            found += 1
            if found > working_days:
                return offset + 2
    return SEARCH_LIMIT


def planned_notices(config: Config, now: datetime) -> list[PlannedNotice]:
    """Every notice due at ``now`` whose window has not started yet, sorted by start, window and tenant.

    Which tenants an occurrence concerns is the rule of the start and outcome
    notices (:func:`custode.agent.updates.windows.tenants_concerned`): the
    window's tenant, else the tenants of its hosts. A tenant whose
    ``notice.enabled`` is false, a window with ``notify: false`` and a config
    with ``updates.enabled: false`` get none. Tenants without referents are
    planned too, so that what could not be sent is recorded with the reason.
    """
    if not config.updates.enabled:
        return []  # no window runs, so none is announced
    today = now.astimezone(ROME).date()
    calendars: dict[str, BusinessCalendar] = {}
    days = 1
    for tenant_id, spec in config.tenants.items():
        if spec.notice.enabled:
            calendars[tenant_id] = calendar_for(config, tenant_id)
            days = max(days, horizon_days(calendars[tenant_id], today, spec.notice.working_days))
    out = []
    for occurrence in occurrences(config, today, days):
        window = config.updates.windows[occurrence.window]
        if occurrence.start <= now or not window.notify:
            continue
        for tenant_id in window_tenants(config, occurrence.window):
            tenant = config.tenants.get(tenant_id)
            if tenant is None or tenant_id not in calendars:
                continue
            due = due_time(calendars[tenant_id], occurrence, tenant.notice.working_days)
            if due <= now:
                out.append(PlannedNotice(tenant_id, tenant.name, tenant.language, list(tenant.referents),
                                         occurrence, list(window.hosts), due))
    out.sort(key=lambda n: (n.occurrence.start, n.occurrence.window, n.tenant))
    return out
