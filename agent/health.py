"""What the agent says about its own storage: can the state database and the audit log be read and written?

``/ready``, the gauges ``custode_state_db_ok`` and ``custode_audit_log_ok``
and the incidents ``state_db`` and ``audit_log`` all come from flags held in
memory. The flags are set by probes that run as scheduler jobs (a cheap one
every :data:`PROBE_EVERY` seconds, SQLite's ``quick_check`` at start and every
:data:`DEEP_EVERY`, the audit chain from its checkpoint every
:data:`VERIFY_EVERY`) and by storage failures met anywhere else: a job that
raised, a log line carrying one. Nothing on the scrape path does I/O.

A corrupt database stays reported until the agent restarts (the file must
be restored or recovered, which needs the agent stopped); a full, read-only
or unreadable one is cleared by the first probe that reads and writes again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily

from custode.agent.audit_keeper import AuditKeeper
from custode.agent.clock import Clock, current_time
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.services import Job
from custode.agent.state import State, StateError
from custode.agent.storage_errors import MIN_FREE_BYTES, Problem, classify, explain_state, free_bytes, is_storage_error

__all__ = ["DEEP_EVERY", "PROBE_EVERY", "VERIFY_EVERY", "Health", "StateHealth", "StorageLogFilter"]

log = logging.getLogger(__name__)

PROBE_EVERY = 10.0
"""Seconds between cheap probes: a new read-only connection reads the schema and each table's first row,
one row is written, free space is looked at, and the audit log's tail is checked against its head."""
DEEP_EVERY = 6 * 3600.0
"""Seconds between ``PRAGMA quick_check`` runs, which read the whole database (also once at start)."""
VERIFY_EVERY = 3600.0
"""Seconds between verifications of the audit chain from its checkpoint (what was written since)."""
REPEAT_LOG_AFTER = 600.0
"""The same storage failure from the same place is logged again after this long, not at every job run."""

SOURCE = "custode_health"
"""The metric cache source the two gauges are published under."""


def handles(exc: BaseException) -> bool:
    """A storage failure (reported as health), as opposed to a bug (left to the job guard's traceback)."""
    return isinstance(exc, StateError) or is_storage_error(exc)


class StateHealth:
    """The state database's flags: a sticky corruption, and the last transient failure (full, read-only...)."""

    def __init__(self, state: State, write_every: float = 6 * PROBE_EVERY) -> None:
        self.state = state
        self.write_every = write_every
        self._corrupt: str | None = None
        self._transient: str | None = None
        self._written_at: float | None = None

    def probe(self, now: float) -> None:
        """Cheap: free space, a fresh read of the schema and first rows, and now and then one small write.

        The write (a WAL frame) is made once a minute while all is well, at
        every probe while something is wrong, so recovery shows at once and an
        idle agent does not write its disk every few seconds for nothing."""
        try:
            self.state.read_check(deep=False)
            if (self._transient is not None or self._written_at is None
                    or abs(now - self._written_at) >= self.write_every):
                self.state.touch_health_probe(now)
                self._written_at = now
        except sqlite3.Error as exc:
            self.failed(exc)
            return
        free = free_bytes(self.state.path)
        if free is not None and free < MIN_FREE_BYTES:
            self._transient = explain_state(sqlite3.OperationalError("database or disk is full"), self.state.path)
        else:
            self._transient = None

    def deep_check(self) -> None:
        """``PRAGMA quick_check`` through a fresh connection: finds damage in pages no query touched yet."""
        try:
            problems = self.state.read_check(deep=True)
        except sqlite3.Error as exc:
            self.failed(exc)
            return
        if problems:
            lines = [line for text in problems for line in text.splitlines() if line and not line.startswith("***")]
            first = lines[0] if lines else problems[0]
            self.failed(sqlite3.DatabaseError(f"database disk image is malformed: quick_check found: {first}"))

    def failed(self, exc: BaseException) -> str:
        """Record a failure met anywhere; returns the sentence that explains it."""
        if isinstance(exc, StateError):
            message, problem = str(exc), exc.problem
        else:
            message, problem = explain_state(exc, self.state.path), classify(exc, self.state.path)
        if problem is Problem.CORRUPT:
            self._corrupt = self._corrupt or message
        else:
            self._transient = message
        return message

    def problem(self) -> str | None:
        return self._corrupt or self._transient


@dataclass
class _Reported:
    ok: bool | None = None


class Health:
    """The flags of the state database and the audit log, and what they are shown as."""

    def __init__(self, state: State, keeper: AuditKeeper, cache: MetricCache, incidents: Incidents,
                 tenant: str, host: str, every: float = PROBE_EVERY, clock: Clock = current_time) -> None:
        self.db = StateHealth(state, write_every=6 * every)
        self.keeper = keeper
        self.cache = cache
        self.incidents = incidents
        self.tenant = tenant
        self.host = host
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._reported = {"state_db": _Reported(), "audit_log": _Reported()}
        self._last_logged: dict[tuple[str, str], float] = {}
        self._shown: dict[str, str | None] = {"state_db": None, "audit_log": None}
        self.recheck_every = 6 * every
        """While the chain is reported broken it is verified again this often, so a restored log or a
        ``custode audit new-log`` clears the flag within a minute, not at the next hourly verification."""
        self._verified_at = time.monotonic()
        self._published: tuple[bool, bool] | None = None

    def jobs(self) -> list[Job]:
        grace = max(1, int(self.every))
        return [Job("health", self.probe, "interval", {"seconds": self.every}, run_now=True, misfire_grace_time=grace),
                Job("state-db-check", self.deep_check, "interval", {"seconds": DEEP_EVERY}, run_now=True),
                Job("audit-verify", self.verify_audit, "interval", {"seconds": VERIFY_EVERY})]

    def start(self) -> None:
        """Before the agent's first audit record: verify the chain from its checkpoint, show the result."""
        self.keeper.verify_from_checkpoint()
        self.publish()

    # --- jobs -------------------------------------------------------------------------------------

    def probe(self) -> None:
        self.db.probe(self.clock())
        self.keeper.check()
        if self.keeper.verify_problem is not None and time.monotonic() - self._verified_at >= self.recheck_every:
            self._verified_at = time.monotonic()
            self.keeper.verify_from_checkpoint()
        self.publish()
        self._report_incidents()

    def deep_check(self) -> None:
        self.db.deep_check()
        self.publish()

    def verify_audit(self) -> None:
        self._verified_at = time.monotonic()
        self.keeper.verify_from_checkpoint()
        self.publish()

    # --- failures met elsewhere ------------------------------------------------------------------

    def state_failed(self, exc: BaseException, where: str, log_it: bool = True) -> str:
        """A job or a log line met a storage failure: flag it, log it (once in a while), return the sentence."""
        message = self.db.failed(exc)
        if log_it:
            key, now = (where, message[:80]), time.monotonic()
            with self._lock:
                due = now - self._last_logged.get(key, -REPEAT_LOG_AFTER) >= REPEAT_LOG_AFTER
                if due:
                    self._last_logged[key] = now
            if due:
                log.error("state database failure", extra={"where": where, "state_db": str(self.db.state.path),
                                                           "error": message})
        self.publish()
        return message

    # --- what is shown ---------------------------------------------------------------------------

    def problems(self) -> dict[str, str | None]:
        """The two flags as sentences (None: fine), from memory only."""
        audit = self.keeper.status()
        audit_problem = audit.reason
        if audit_problem is not None and audit.held:
            audit_problem += f" ({audit.held} audit record{'s' if audit.held != 1 else ''} held)"
        return {"state_db": self.db.problem(), "audit_log": audit_problem}

    def problem(self) -> str | None:
        """For /ready: every problem in one line, or None."""
        found = [p for p in self.problems().values() if p]
        return "; ".join(found) if found else None

    def publish(self) -> None:
        """The two gauges into the cache, only when one changed: a render joins every source's bytes."""
        problems = self.problems()
        values = (problems["state_db"] is None, problems["audit_log"] is None)
        self._log_changes(problems)
        with self._lock:
            if values == self._published:
                return
            self._published = values
        state = GaugeMetricFamily("custode_state_db_ok", "1 when the state database can be read and written; 0 when "
                                  "it is corrupt, on a full or read-only disk, or cannot be opened (see the log).")
        state.add_metric([], 0.0 if problems["state_db"] else 1.0)
        audit = GaugeMetricFamily("custode_audit_log_ok", "1 when the audit log continues the head kept in the "
                                  "state database and can be written; 0 when it was cut, rewritten, replaced or "
                                  "cannot be written (records are held until it is fixed).")
        audit.add_metric([], 0.0 if problems["audit_log"] else 1.0)
        self.cache.update(SOURCE, [state, audit])

    def _log_changes(self, problems: dict[str, str | None]) -> None:
        for name, problem in problems.items():
            with self._lock:
                before, self._shown[name] = self._shown[name], problem
            if (before is None) == (problem is None):
                continue
            what = "state database" if name == "state_db" else "audit log"
            if problem is None:
                log.warning("%s is fine again", what, extra={"check": name})
            else:
                log.error("%s is not usable", what, extra={"check": name, "reason": problem})

    def _report_incidents(self) -> None:
        """Open or resolve the two incidents when a flag changed (retried while the database refuses)."""
        paths = {"state_db": self.db.state.path, "audit_log": self.keeper.path}
        for name, problem in self.problems().items():
            reported = self._reported[name]
            ok = problem is None
            if reported.ok == ok:
                continue
            what = "state database" if name == "state_db" else "audit log"
            summary = problem if problem else f"{what} {paths[name]} can be read and written again"
            try:
                self.incidents.observe(CheckResult(self.tenant, name, self.host, "ok" if ok else "critical", summary,
                                                   {"host": self.host, "file": str(paths[name])}))
            except Exception as exc:  # noqa: BLE001 - the gauge and /ready carry it; retried at the next probe
                if not handles(exc):
                    raise
                continue
            reported.ok = ok


class StorageLogFilter(logging.Filter):
    """Turns a storage failure logged with its traceback, by any part of the agent, into one line with the fix.

    Features log what their jobs meet with ``log.exception``; for a corrupt
    or full database the traceback says nothing a sysadmin can act on, so it
    is replaced by the explanation (``storage_error``), and the failure is
    flagged like one the probes found."""

    def __init__(self, health: Health) -> None:
        super().__init__()
        self.health = health

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        cause = _storage_cause(exc)
        if cause is not None:
            record.storage_error = self.health.state_failed(cause, record.name, log_it=False)
            record.exc_info = None
            record.exc_text = None
        return True


def _storage_cause(exc: BaseException | None) -> BaseException | None:
    seen = 0
    while exc is not None and seen < 8:
        if handles(exc):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
