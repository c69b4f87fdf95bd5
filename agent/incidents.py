"""Check results become incidents: one model for every feature that detects trouble.

A check result has a stable key (tenant, check, target) and a severity. The
first non-OK result opens an incident; later ones update it (occurrences,
last seen, severity changes); an OK result resolves it. There is at most one
open incident per key (a partial unique index enforces it), and every change
is an ``incident_events`` row written in the same transaction, so the ticket
outbox can consume the history without ever missing or repeating a step.

A check may ask that a condition hold for a while (``for``) before it counts,
like Prometheus' alert rules: the pending start is stored, so a restart does
not reset the clock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal

from custode.agent.clock import Clock, current_time
from custode.agent.state import State

log = logging.getLogger(__name__)

Severity = Literal["ok", "warning", "critical"]
_RANK = {"ok": 0, "warning": 1, "critical": 2}


def incident_key(tenant: str, check: str, target: str) -> str:
    return f"{tenant}/{check}/{target}"


@dataclass(frozen=True)
class CheckResult:
    tenant: str
    check: str
    target: str
    severity: Severity
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    covered_by: tuple[str, ...] = ()
    """Hosts (registry names) whose maintenance also silences this result, besides the ``HOST:`` of its target:
    a probe of a portal names the servers it runs on, so their update window does not open a ticket."""

    @property
    def key(self) -> str:
        return incident_key(self.tenant, self.check, self.target)


@dataclass(frozen=True)
class IncidentChange:
    """What an observation changed; the audit log and (later) tickets consume it."""

    kind: Literal["opened", "repeated", "severity_changed", "resolved"]
    incident_id: int
    key: str
    tenant: str
    severity: str
    summary: str


    def audit_record(self) -> tuple[str, str, dict[str, Any]]:
        """(action, subject, details) for the audit log, the same from the agent and from a CLI command."""
        return (f"incident.{self.kind}", self.key, {"incident_id": self.incident_id, "tenant": self.tenant,
                                                   "severity": self.severity, "summary": self.summary})


@dataclass(frozen=True)
class Incident:
    id: int
    key: str
    tenant: str
    check: str
    target: str
    severity: str
    max_severity: str
    status: str
    summary: str
    details: dict[str, Any]
    opened_at: float
    last_seen_at: float
    resolved_at: float | None
    occurrences: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Incident":
        return cls(id=row["id"], key=row["key"], tenant=row["tenant"], check=row["check_name"],
                   target=row["target"], severity=row["severity"], max_severity=row["max_severity"],
                   status=row["status"], summary=row["summary"], details=json.loads(row["details"]),
                   opened_at=row["opened_at"], last_seen_at=row["last_seen_at"],
                   resolved_at=row["resolved_at"], occurrences=row["occurrences"])


class Incidents:
    """The incident lifecycle on top of the state DB."""

    def __init__(self, state: State, on_change: Callable[[IncidentChange], None] | None = None,
                 clock: Clock = current_time) -> None:
        self.state = state
        self.on_change = on_change
        self.clock = clock

    def observe(self, result: CheckResult, *, hold_for: float | None = None,
                occurrence: bool = False, now: float | None = None) -> IncidentChange | None:
        """Record one check result; return the incident change it caused, if any.

        ``hold_for``: seconds a non-OK condition must persist before it counts.
        ``occurrence``: the result is a discrete event (a failed backup report),
        so a repeat is recorded in the history rather than only counted.
        """
        now = self.clock() if now is None else now
        with self.state.transaction() as db:
            change = self._observe(db, result, hold_for, occurrence, now)
        if change is not None:
            self._notify(change)
        return change

    def reconcile(self, tenant: str, check: str, present: Iterable[str], *, now: float | None = None,
                  reason: str = "the condition is no longer reported", scope: str = "") -> list[IncidentChange]:
        """Resolve states of ``check`` whose target was not in this evaluation.

        Only call it with a complete evaluation: a check whose data source
        failed must not reconcile, or a dead collector would resolve everything.
        ``scope`` limits it to targets starting with that prefix (``host:``), so
        one host's evaluation never resolves another host's incidents.
        """
        now = self.clock() if now is None else now
        keep = set(present)
        changes = []
        with self.state.transaction() as db:
            rows = db.execute("SELECT key, target FROM check_states WHERE tenant = ? AND check_name = ?",
                              (tenant, check)).fetchall()
            for row in rows:
                if row["target"] in keep or not row["target"].startswith(scope):
                    continue
                change = self._observe(db, CheckResult(tenant, check, row["target"], "ok", reason),
                                       None, False, now)
                db.execute("DELETE FROM check_states WHERE key = ?", (row["key"],))
                if change:
                    changes.append(change)
        for change in changes:
            self._notify(change)
        return changes

    def _observe(self, db: sqlite3.Connection, result: CheckResult, hold_for: float | None,
                 occurrence: bool, now: float) -> IncidentChange | None:
        key = result.key
        state = db.execute("SELECT * FROM check_states WHERE key = ?", (key,)).fetchone()
        current = state["severity"] if state else "ok"
        pending_since = state["pending_since"] if state else None

        if result.severity == "ok":
            effective: str = "ok"
            pending_since = None
        elif hold_for and current == "ok":
            pending_since = pending_since if pending_since is not None else now
            effective = result.severity if now - pending_since >= hold_for else "ok"
        else:
            effective = result.severity
        pending = result.severity if (effective == "ok" and result.severity != "ok") else None
        since = now if effective != current or state is None else state["since"]
        db.execute(
            """INSERT INTO check_states (key, tenant, check_name, target, severity, since, pending,
                                         pending_since, summary, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(key) DO UPDATE SET severity = excluded.severity, since = excluded.since,
                   pending = excluded.pending, pending_since = excluded.pending_since,
                   summary = excluded.summary, updated_at = excluded.updated_at""",
            (key, result.tenant, result.check, result.target, effective, since, pending,
             pending_since if pending else None, result.summary, now))

        incident = db.execute("SELECT * FROM incidents WHERE key = ? AND status = 'open'", (key,)).fetchone()
        details = json.dumps(result.details, sort_keys=True, default=str)
        if effective != "ok" and self._silenced(db, result, now):
            log.info("incident silenced", extra={"incident": key, "severity": effective})
            return None
        if effective == "ok":
            if incident is None:
                return None
            db.execute("UPDATE incidents SET status = 'resolved', resolved_at = ?, last_seen_at = ? WHERE id = ?",
                       (now, now, incident["id"]))
            return self._event(db, incident["id"], result, "resolved", incident["severity"], now)
        if incident is None:
            cursor = db.execute(
                """INSERT INTO incidents (key, tenant, check_name, target, severity, max_severity, status,
                                          summary, details, opened_at, last_seen_at, occurrences)
                   VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, 1)""",
                (key, result.tenant, result.check, result.target, effective, effective, result.summary,
                 details, now, now))
            return self._event(db, int(cursor.lastrowid or 0), result, "opened", effective, now)
        max_severity = max(incident["max_severity"], effective, key=_RANK.__getitem__)
        db.execute("""UPDATE incidents SET severity = ?, max_severity = ?, summary = ?, details = ?,
                      last_seen_at = ?, occurrences = occurrences + 1 WHERE id = ?""",
                   (effective, max_severity, result.summary, details, now, incident["id"]))
        if incident["severity"] != effective:
            return self._event(db, incident["id"], result, "severity_changed", effective, now)
        if occurrence:
            return self._event(db, incident["id"], result, "repeated", effective, now)
        return None

    @staticmethod
    def _silenced(db: sqlite3.Connection, result: CheckResult, now: float) -> bool:
        """A maintenance on the result's host is running: do not open or escalate (recovery still resolves).

        Check targets start with ``HOST:`` (see :mod:`custode.agent.checks`); a silence names the host.
        """
        row = db.execute(
            """SELECT 1 FROM silences WHERE ended_at IS NULL AND ends_at > ?
               AND (tenant IS NULL OR tenant = ?) AND substr(?, 1, length(host) + 1) = host || ':' LIMIT 1""",
            (now, result.tenant, result.target)).fetchone()
        if row is None and result.covered_by:
            # a host named by the result: host names are unique in the registry, whatever tenant silenced it
            marks = ", ".join("?" * len(result.covered_by))
            row = db.execute(f"""SELECT 1 FROM silences WHERE ended_at IS NULL AND ends_at > ?
                                 AND host IN ({marks}) LIMIT 1""", (now, *result.covered_by)).fetchone()
        return row is not None

    @staticmethod
    def _event(db: sqlite3.Connection, incident_id: int, result: CheckResult, kind: str, severity: str,
               now: float) -> IncidentChange:
        db.execute("INSERT INTO incident_events (incident_id, at, kind, severity, message) VALUES (?, ?, ?, ?, ?)",
                   (incident_id, now, kind, severity, result.summary))
        return IncidentChange(kind, incident_id, result.key, result.tenant, severity, result.summary)  # type: ignore[arg-type]

    def _notify(self, change: IncidentChange) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(change)
        except Exception:  # a listener must not undo a committed change
            log.exception("incident listener failed", extra={"incident": change.key})

    # --- queries ------------------------------------------------------------------

    def open_incidents(self, tenant: str | None = None) -> list[Incident]:
        sql = "SELECT * FROM incidents WHERE status = 'open'"
        params: tuple = ()
        if tenant is not None:
            sql += " AND tenant = ?"
            params = (tenant,)
        sql += " ORDER BY CASE severity WHEN 'critical' THEN 0 ELSE 1 END, opened_at"
        return [Incident.from_row(r) for r in self.state.query(sql, params)]

    def overlapping(self, tenant: str, check: str, start: float, end: float) -> list[Incident]:
        """``tenant``'s incidents of ``check`` open at some moment of ``[start, end)``, by opening time.

        For reports: an outage that began before the period and ended in it counts, as does one still open."""
        rows = self.state.query("""SELECT * FROM incidents WHERE tenant = ? AND check_name = ? AND opened_at < ?
                                   AND (resolved_at IS NULL OR resolved_at > ?) ORDER BY opened_at, id""",
                                (tenant, check, end, start))
        return [Incident.from_row(r) for r in rows]

    def get(self, incident_id: int) -> Incident | None:
        rows = self.state.query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return Incident.from_row(rows[0]) if rows else None

    def events(self, incident_id: int) -> list[sqlite3.Row]:
        return self.state.query("SELECT * FROM incident_events WHERE incident_id = ? ORDER BY id", (incident_id,))

    def pending(self) -> list[sqlite3.Row]:
        """Conditions seen but not yet held long enough to open an incident."""
        return self.state.query("SELECT * FROM check_states WHERE pending IS NOT NULL ORDER BY key")
