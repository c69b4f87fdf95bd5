"""Writing every host's day: farm polls one at a time, the agent's own cycles in batches, and retention.

Farm mode folds each poll into its host's row in the transaction that records
the poll (:func:`record_poll`). The agent's own host is observed after every
run of its shortest collection cycle (:meth:`AgentHistory.cycle_finished`, on
the collection thread, off the scrape path, no I/O) and the observations are
written once a minute in one small transaction (:meth:`AgentHistory.flush`),
as the collectors' status is: one write per 15-s cycle would be four
transactions a minute on the server's disk for nothing. What a flush could not
write is kept for the next one. On Windows the agent also runs the farm's
Windows probe on its own host, on a schedule of its own: what it reads and the
cycles do not (antivirus, updates, System-log errors) is folded into the same
row by :func:`record_agent_facts`, without counting as a cycle. Rows older than
the retention go once a day (:func:`prune`), whichever source wrote them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from custode.agent.clock import Clock, current_time
from custode.agent.collection import RunOutcome
from custode.agent.history import store
from custode.agent.history.cycles import gap_shares, last_cycle, note_cycle, note_gap
from custode.agent.history.local import local_observation
from custode.agent.history.model import HistorySource, Observation, day_of, fold
from custode.agent.history.store import HostDay
from custode.agent.metric_cache import MetricCache
from custode.agent.state import State

if TYPE_CHECKING:
    from custode.agent.config import Config

log = logging.getLogger(__name__)

FLUSH_EVERY = 60.0
"""Seconds between the agent's history writes."""
MAX_PENDING = 5760
"""Observations held while the state DB cannot take them: a day of 15-s cycles; the oldest go first."""
MAX_PROBLEMS = 20
"""Failures of the slower cycles carried to the next observation (a collector failing on every run is one text)."""


def keep_days(config: Config) -> int:
    """Days of rows kept: ``history.days``, or ``farm.history_days`` if an older config asks for longer."""
    return max(config.history.days, config.farm.history_days)


_refused: set[tuple[str, str]] = set()
"""(host, source) clashes already logged: once per process, not on every poll or flush."""


def _refuse(host: str, day: date, found: str, wanted: str) -> None:
    if (host, wanted) in _refused:
        return
    _refused.add((host, wanted))
    log.warning("host history: the row of %s on %s was written by %s, not %s; two watchers of one host name "
                "cannot share a row, so this %s observation is not kept (rename one of them)", host, day, found,
                wanted, wanted, extra={"host": host, "day": day.isoformat()})


def record_poll(db: sqlite3.Connection, host: str, tenant: str, seen: Observation) -> bool:
    """Fold one farm poll into its host's row of the day (inside the caller's transaction)."""
    day = day_of(seen.at)
    current = _own_row(db, host, day, HistorySource.FARM)
    if current is None:
        return False
    polls, successes, data = current
    return store.save(db, HostDay(host, day, tenant, HistorySource.FARM, polls + 1, successes + (1 if seen.up else 0),
                                  fold(data, seen)))


def _own_row(db: sqlite3.Connection, host: str, day: date, source: HistorySource
             ) -> tuple[int, int, dict[str, Any]] | None:
    """(polls, successes, data) of the host's row of the day, empty if none; None if another watcher wrote it."""
    row = store.day_row(db, host, day)
    if row is not None and row.source != source:
        _refuse(host, day, row.source, source)
        return None
    return (row.polls, row.successes, row.data) if row else (0, 0, {})


def record_agent_facts(db: sqlite3.Connection, host: str, tenant: str, seen: Observation) -> bool:
    """Fold facts the agent's collection cycles do not read into its host's row of the day (caller's transaction).

    The Windows probe the agent runs on its own host
    (:mod:`custode.agent.farm.local_probe`) reads antivirus, Windows Update,
    System-log errors and disk health on a schedule of its own. Its run is not
    a collection cycle: ``polls`` and ``successes`` (the cycles due and run)
    stay as they are, and ``seen`` should carry only the facts the cycles do
    not fold (else CPU and memory would be counted twice). A failed run
    (``seen.up`` False) counts its error among the day's errors. The row may not
    exist yet (the first flush of the day comes later): it is made with no
    cycles, and the next flush adds them. A row another watcher wrote is left
    alone (False), as :func:`record_poll` does."""
    day = day_of(seen.at)
    current = _own_row(db, host, day, HistorySource.AGENT)
    if current is None:
        return False
    polls, successes, data = current
    return store.save(db, HostDay(host, day, tenant, HistorySource.AGENT, polls, successes, fold(data, seen)))


@dataclass
class _Day:
    """A row being built in one flush."""

    polls: int = 0
    successes: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    foreign: str | None = None
    """The source of a row another watcher wrote: left alone."""


class _AgentRows:
    """The agent host's rows one flush touches, read once and written once."""

    def __init__(self, db: sqlite3.Connection, host: str) -> None:
        self.db = db
        self.host = host
        self.days: dict[date, _Day] = {}

    def get(self, day: date) -> _Day:
        if day not in self.days:
            row = store.day_row(self.db, self.host, day)
            if row is None:
                self.days[day] = _Day()
            elif row.source != HistorySource.AGENT:
                _refuse(self.host, day, row.source, HistorySource.AGENT)
                self.days[day] = _Day(foreign=row.source)
            else:
                self.days[day] = _Day(row.polls, row.successes, row.data)
        return self.days[day]

    def last_cycle_before(self, at: float) -> float | None:
        """When the agent's last recorded cycle ran: today's row, else the latest row before it."""
        today = self.get(day_of(at))
        if today.foreign is None and last_cycle(today.data) is not None:
            return last_cycle(today.data)
        previous = store.latest_before(self.db, self.host, day_of(at))
        if previous is None or previous.source != HistorySource.AGENT:
            return None
        return last_cycle(previous.data)

    def save(self, tenant: str) -> None:
        for day, row in sorted(self.days.items()):
            if row.foreign is None and row.polls:
                store.save(self.db, HostDay(self.host, day, tenant, HistorySource.AGENT, row.polls, row.successes,
                                            row.data))


def record_cycles(db: sqlite3.Connection, host: str, tenant: str, interval: float, cycles: Sequence[Observation],
                  oldest: date | None = None) -> None:
    """Fold the agent's cycles (in time order) into its host's rows, with the cycles missed before each.

    ``oldest``: no row is made for a day before it (a gap of months fills no rows the retention deletes)."""
    if not cycles:
        return
    rows = _AgentRows(db, host)
    last = rows.last_cycle_before(cycles[0].at)
    for seen in cycles:
        if last is not None:
            for share in gap_shares(last, seen.at, interval, oldest):
                gap_day = rows.get(share.day)
                gap_day.polls += share.missed
                note_gap(gap_day.data, share, interval)
        day = rows.get(day_of(seen.at))
        day.polls += 1
        day.successes += 1
        day.data = fold(day.data, seen)
        note_cycle(day.data, seen.at, interval)
        last = seen.at if last is None else max(last, seen.at)
    rows.save(tenant)


class AgentHistory:
    """The agent's own host in the daily history: its shortest collection cycle observed, written a minute later."""

    def __init__(self, state: State, cache: MetricCache, host: str, tenant: str, interval: float, *,
                 keep: int, os_name: str | None = None, clock: Clock = current_time) -> None:
        self.state = state
        self.cache = cache
        self.host = host
        self.tenant = tenant
        self.interval = interval
        """The shortest cycle's interval: one cycle of it due per interval is what availability counts."""
        self.keep = keep
        self.os_name = os_name
        self.clock = clock
        self._pending: list[Observation] = []
        self._problems: list[str] = []
        self._lock = threading.Lock()

    def cycle_finished(self, started: float, outcomes: Sequence[RunOutcome], counted: bool) -> None:
        """A collection cycle that started at ``started`` ended; ``counted``: the shortest one, an observation.

        The other cycles' failures are carried into the next observation's errors."""
        problems = [f"collector {o.collector}: {o.error}" for o in outcomes if not o.success]
        with self._lock:
            if not counted:
                self._problems = (self._problems + problems)[-MAX_PROBLEMS:]
                return
            problems, self._problems = self._problems + problems, []
        seen = local_observation(self.cache, started, self.os_name, tuple(problems))
        with self._lock:
            self._pending.append(seen)
            del self._pending[:-MAX_PENDING]

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write the observations made since the last flush in one transaction; how many were written.

        On a failure they are kept for the next flush, and the error is raised (the job reports it)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        pending.sort(key=lambda seen: seen.at)
        oldest = day_of(self.clock()) - timedelta(days=self.keep)
        try:
            with self.state.transaction() as db:
                record_cycles(db, self.host, self.tenant, self.interval, pending, oldest)
        except Exception:
            with self._lock:
                self._pending = (pending + self._pending)[-MAX_PENDING:]
            raise
        return len(pending)


def prune(state: State, keep: int, now: float) -> int:
    """Delete the rows (every source) of days more than ``keep`` days before ``now``'s day; how many went."""
    cutoff = day_of(now) - timedelta(days=keep)
    with state.transaction() as db:
        removed = store.delete_before(db, cutoff)
    if removed:
        log.info("host history pruned", extra={"rows": removed, "before": cutoff.isoformat()})
    return removed
