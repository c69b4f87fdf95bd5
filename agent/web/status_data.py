"""What the status page shows, read from the stores the features keep: one function per section.

Read-only: nothing here writes to the state DB, opens an incident or
resolves one. Each section says *how much it knows* as well as what it
found (:class:`Availability`), because the page must never show an
all-clear it cannot back: a section whose data cannot be read carries the
reason in words, a feature the config does not use is "not configured", and
a tenant the feature has nothing for (no expected backup job) is "none
expected" -- none of them is a green light.

Every section is read for all the tenants of a page at once (a handful of
queries per render, whatever the number of comuni), then split by tenant.
Times are Unix seconds; the renderer puts them in Europe/Rome.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

from custode.agent.clock import ROME
from custode.agent.state import State, StateError
from custode.agent.storage_errors import explain_state

if TYPE_CHECKING:
    from custode.agent.backups.jobs import JobStatus
    from custode.agent.config import Config
    from custode.agent.incidents import Incident
    from custode.agent.restore.service import SetStatus
    from custode.agent.tickets.store import Ticket
    from custode.agent.updates.windows import WindowOccurrence

Row = TypeVar("Row")
T = TypeVar("T")

WINDOW_DAYS = 15
"""How far ahead the page looks for update windows: this week's and next week's, whatever the weekday."""
WINDOW_ROWS = 6
"""At most this many windows per tenant: the next ones, not the whole plan (``custode windows list`` has it)."""

BAD_BACKUP = ("failed", "missing")
"""Job states that are a problem (the backup did not happen, as far as anyone can tell)."""
DOUBTFUL_BACKUP = ("late", "warning")
"""Job states that call for attention: not yet reported, or done with warnings."""


class Availability(StrEnum):
    """How much a section knows."""

    SHOWN = "shown"
    """The data was read; its rows (possibly none) are the truth."""
    NOT_CONFIGURED = "not_configured"
    """The config does not use the feature at all."""
    NONE_EXPECTED = "none_expected"
    """The feature is in use, but has nothing for this tenant (no expected job, no backup set ...)."""
    UNREADABLE = "unreadable"
    """The state DB could not be read: ``error`` says why."""


class Verdict(IntEnum):
    """A tenant's headline, worst first when sorted in reverse. UNKNOWN outranks ATTENTION: a page that
    cannot see part of the picture must not look merely amber, and never green."""

    OK = 0
    ATTENTION = 1
    UNKNOWN = 2
    PROBLEM = 3


@dataclass(frozen=True)
class Section(Generic[Row]):
    """One section of one tenant: its rows, or why there are none to show."""

    availability: Availability
    rows: tuple[Row, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class MailboxDown:
    """A backup mailbox that cannot be read: every job whose reports it carries is blind meanwhile."""

    mailbox: str
    since: float
    summary: str | None
    """The incident's words (server, error), only on the page of the tenant the incident belongs to."""


@dataclass(frozen=True)
class BackupSection(Section["JobStatus"]):
    mailboxes_down: tuple[MailboxDown, ...] = ()


@dataclass(frozen=True)
class TenantStatus:
    """Everything the page shows for one tenant."""

    tenant: str
    name: str
    language: str
    backups: BackupSection
    incidents: Section[Incident]
    tickets: Section[Ticket]
    windows: Section[WindowOccurrence]
    restore_tests: Section[SetStatus]
    now: float

    def availabilities(self) -> tuple[Availability, ...]:
        return (self.backups.availability, self.incidents.availability, self.tickets.availability,
                self.windows.availability, self.restore_tests.availability)

    def incomplete(self) -> bool:
        """Part of the picture is not visible: a section could not be read, or a backup mailbox is down."""
        return Availability.UNREADABLE in self.availabilities() or bool(self.backups.mailboxes_down)

    def verdict(self) -> Verdict:
        """The worst of what the sections found; at least UNKNOWN when the picture is incomplete."""
        worst = Verdict.UNKNOWN if self.incomplete() else Verdict.OK
        for job in self.backups.rows:
            worst = max(worst, Verdict.PROBLEM if job.state in BAD_BACKUP
                        else Verdict.ATTENTION if job.state in DOUBTFUL_BACKUP else Verdict.OK)
        for incident in self.incidents.rows:
            worst = max(worst, Verdict.PROBLEM if incident.severity == "critical" else Verdict.ATTENTION)
        for ticket in self.tickets.rows:
            if ticket_late(ticket, self.now):
                worst = max(worst, Verdict.ATTENTION)
        for test_set in self.restore_tests.rows:
            if test_set.last_passed is False:
                worst = max(worst, Verdict.PROBLEM)
            elif test_set.overdue:
                worst = max(worst, Verdict.ATTENTION)
        return worst


def ticket_late(ticket: Ticket, now: float) -> bool:
    """Past its take-charge time without being taken in charge (or already counted as a breach)."""
    from custode.agent.tickets.model import TicketState

    if ticket.take_charge_breached:
        return True
    return (ticket.state == TicketState.OPEN and ticket.taken_at is None and ticket.due_at is not None
            and now > ticket.due_at)


# --- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read(Generic[T]):
    """What one read gave: its value, or (value None) the reason the state DB refused it, in words."""

    value: T | None = None
    error: str = ""


def _read(state: State, read: Callable[[], T]) -> Read[T]:
    """``read()``, or the reason in words when the state DB refuses it (corrupt, locked, a table missing)."""
    try:
        return Read(read())
    except (sqlite3.Error, StateError) as exc:
        return Read(error=str(exc) if isinstance(exc, StateError) else explain_state(exc, state.path))


def _split(items: Iterable[T], tenant_of: Callable[[T], str], tenants: Sequence[str]) -> dict[str, list[T]]:
    by_tenant: dict[str, list[T]] = {tenant: [] for tenant in tenants}
    for item in items:
        bucket = by_tenant.get(tenant_of(item))
        if bucket is not None:
            bucket.append(item)
    return by_tenant


def open_incidents(state: State) -> Read[list[Incident]]:
    """Every open incident, critical first (one query, shared by the incidents and backup sections)."""
    from custode.agent.incidents import Incidents

    return _read(state, lambda: Incidents(state).open_incidents())


def incident_sections(found: Read[list[Incident]], tenants: Sequence[str]) -> dict[str, Section[Incident]]:
    """Open incidents per tenant, as the incident model keeps them."""
    if found.value is None:
        return {tenant: Section(Availability.UNREADABLE, error=found.error) for tenant in tenants}
    split = _split(found.value, lambda incident: incident.tenant, tenants)
    return {tenant: Section(Availability.SHOWN, tuple(rows)) for tenant, rows in split.items()}


_BACKUP_ORDER = {"failed": 0, "missing": 1, "warning": 2, "late": 3, "ok": 4}


def backup_sections(config: Config, state: State, tenants: Sequence[str], now: float,
                    found: Read[list[Incident]]) -> dict[str, BackupSection]:
    """Each expected job judged now, as ``custode backups status`` judges it, and the mailboxes that are down.

    The jobs are judged from the reports at render time (not read from the
    last poll's verdict), so a poll that stopped cannot leave last night's
    "ok" standing: the clock alone turns a job late, then missing.
    """
    from custode.agent.backups.jobs import carry_since, evaluate, lookback
    from custode.agent.backups.service import MAILBOX_CHECK
    from custode.agent.backups.store import MailStore

    section = config.backups
    if not section.enabled or not (section.expected or section.mailboxes):
        return {tenant: BackupSection(Availability.NOT_CONFIGURED) for tenant in tenants}

    def judge() -> list[JobStatus]:
        store = MailStore(state)
        jobs = evaluate(section, store.reports_since(now - lookback(section)), now).jobs
        carry_since(jobs, store.job_states())
        return jobs

    read = _read(state, judge)
    if read.value is None or found.value is None:
        error = read.error or f"the backup mailboxes' state cannot be read: {found.error}"
        return {tenant: BackupSection(Availability.UNREADABLE, error=error) for tenant in tenants}
    down = [incident for incident in found.value if incident.check == MAILBOX_CHECK]
    jobs = _split(read.value, lambda job: job.tenant, tenants)
    out = {}
    for tenant in tenants:
        # A mailbox blinds every job whose reports it carries, whoever the mailbox's incident belongs to.
        mailboxes = tuple(MailboxDown(incident.target, incident.opened_at,
                                      incident.summary if incident.tenant == tenant else None)
                          for incident in down)
        rows = sorted(jobs[tenant], key=lambda job: (_BACKUP_ORDER[job.state], job.job.name.casefold()))
        availability = Availability.SHOWN if tenant in section.expected and section.expected[tenant] \
            else Availability.NONE_EXPECTED
        out[tenant] = BackupSection(availability, tuple(rows), mailboxes_down=mailboxes)
    return out


def ticket_sections(config: Config, state: State, tenants: Sequence[str]) -> dict[str, Section[Ticket]]:
    """Live tickets (open, or recovered within the flap window) per tenant, with their due times."""
    from custode.agent.tickets import store
    from custode.agent.tickets.planner import TicketPlanner
    from custode.agent.tickets.store import Ticket

    if not config.tickets.enabled or not config.tickets.backends:
        return {tenant: Section(Availability.NOT_CONFIGURED) for tenant in tenants}
    read = _read(state, lambda: [Ticket.from_row(row) for row in store.ticket_rows(state)])
    if read.value is None:
        return {tenant: Section(Availability.UNREADABLE, error=read.error) for tenant in tenants}
    planner = TicketPlanner(config, state)
    out: dict[str, Section[Ticket]] = {}
    for tenant, rows in _split(read.value, lambda ticket: ticket.tenant, tenants).items():
        rows.sort(key=lambda ticket: (ticket.due_at is None, ticket.due_at or 0.0, ticket.id))
        files = planner.backend_for(tenant) is not None
        out[tenant] = Section(Availability.SHOWN if files or rows else Availability.NONE_EXPECTED, tuple(rows))
    return out


def window_sections(config: Config, tenants: Sequence[str], now: float) -> dict[str, Section[WindowOccurrence]]:
    """The next update windows of each tenant (its own and the farm-wide ones), skipped ones with the reason.

    Computed from the config and the calendar, like ``custode windows list``: nothing is read from the DB.
    """
    from custode.agent.updates.windows import occurrences

    section = config.updates
    if not section.enabled or not any(window.enabled for window in section.windows.values()):
        return {tenant: Section(Availability.NOT_CONFIGURED) for tenant in tenants}
    moment = datetime.fromtimestamp(now, ROME)
    start = (moment - timedelta(days=1)).date()  # a window that opened yesterday evening may still run
    out: dict[str, Section[WindowOccurrence]] = {}
    for tenant in tenants:
        mine = [window for window in section.windows.values() if window.enabled and window.tenant in (None, tenant)]
        if not mine:
            out[tenant] = Section(Availability.NONE_EXPECTED)
            continue
        coming = [occ for occ in occurrences(config, start, WINDOW_DAYS + 1, tenant=tenant) if occ.end > moment]
        out[tenant] = Section(Availability.SHOWN, tuple(coming[:WINDOW_ROWS]))
    return out


def restore_sections(config: Config, state: State, tenants: Sequence[str],
                     now: float) -> dict[str, Section[SetStatus]]:
    """Each backup set's last restore test, its result and whether it is overdue (two queries)."""
    from custode.agent.incidents import Incidents
    from custode.agent.paths import data_dir
    from custode.agent.restore.service import RestoreService

    section = config.restore_tests
    if not section.enabled or not any(test_set.enabled for test_set in section.sets.values()):
        return {tenant: Section(Availability.NOT_CONFIGURED) for tenant in tenants}
    service = RestoreService(config, state, Incidents(state), lambda *record: None, data_dir(config),
                             clock=lambda: now)  # only read: statuses() writes nothing
    read = _read(state, lambda: service.statuses(only_enabled=True))
    if read.value is None:
        return {tenant: Section(Availability.UNREADABLE, error=read.error) for tenant in tenants}
    out: dict[str, Section[SetStatus]] = {}
    for tenant, rows in _split(read.value, lambda status: status.tenant, tenants).items():
        ordered: list[SetStatus] = sorted(rows, key=lambda status: status.name)
        out[tenant] = Section(Availability.SHOWN if ordered else Availability.NONE_EXPECTED, tuple(ordered))
    return out


def gather(config: Config, state: State, tenants: Sequence[str], now: float) -> list[TenantStatus]:
    """Every section for ``tenants`` (ids the config defines), read once for all of them."""
    found = open_incidents(state)
    backups = backup_sections(config, state, tenants, now, found)
    incidents = incident_sections(found, tenants)
    tickets = ticket_sections(config, state, tenants)
    windows = window_sections(config, tenants, now)
    restores = restore_sections(config, state, tenants, now)
    out = []
    for tenant in tenants:
        own = config.tenants.get(tenant)
        out.append(TenantStatus(tenant=tenant, name=own.name if own is not None else tenant,
                                language=own.language if own is not None else "it",
                                backups=backups[tenant], incidents=incidents[tenant], tickets=tickets[tenant],
                                windows=windows[tenant], restore_tests=restores[tenant], now=now))
    return out
