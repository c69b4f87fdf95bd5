"""Every statement on ``probe_targets`` and ``probe_daily`` (migration 13 in :mod:`custode.agent.state`).

``probe_targets`` holds each probe's latest state: what the last run found,
and the failures and slow answers in a row with the time each streak began,
so a restart neither forgets an outage in progress nor opens it again from
zero. ``probe_daily`` has one row per probe and Europe/Rome day: probes
made, successes, slow ones, the duration's sum and maximum, the certificate's
expiry, the first and last run, and the failures counted by reason (JSON).
Callers keep their transactions: a function taking a ``sqlite3.Connection``
runs inside the caller's; a function taking a :data:`Source` reads inside one
or on its own through ``State.query``.

:func:`probe_days` and :class:`ProbeDay` are what the reports read.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeAlias

from custode.agent.history.model import day_of
from custode.agent.state import State

Source: TypeAlias = State | sqlite3.Connection
"""Where a read runs: a ``State`` (one statement of its own) or the connection of an open transaction."""

ERROR_REASONS_PER_DAY = 20
"""Distinct failure reasons kept in a day's row; further ones are counted under :data:`OTHER_REASONS`."""
OTHER_REASONS = "other reasons"
REASON_LIMIT = 300
"""Characters of a reason kept as a key."""


@dataclass(frozen=True)
class ProbeState:
    """A probe's latest state, as ``probe_targets`` keeps it."""

    probe: str
    tenant: str
    kind: str
    target: str
    last_probe_at: float | None = None
    last_success_at: float | None = None
    success: bool | None = None
    consecutive_failures: int = 0
    consecutive_slow: int = 0
    failing_since: float | None = None
    """When the failures in a row began (the first failed probe's start)."""
    slow_since: float | None = None
    last_error: str | None = None
    duration_seconds: float | None = None
    status_code: int | None = None
    cert_expiry: float | None = None


@dataclass(frozen=True)
class ProbeDay:
    """One probe's Europe/Rome day: ``successes / probes`` is its availability as the probes saw it."""

    probe: str
    day: date
    tenant: str
    kind: str
    target: str
    probes: int
    successes: int
    slow: int
    duration_sum: float
    duration_max: float | None
    cert_expiry: float | None
    first_at: float | None
    last_at: float | None
    errors: dict[str, int] = field(default_factory=dict)
    """Failed probes by reason in words ("status 500 not in 200-299": 12)."""

    @property
    def failures(self) -> int:
        return self.probes - self.successes

    @property
    def availability(self) -> float | None:
        """The share of the day's probes that succeeded (0..1); None for a day with no probe."""
        return self.successes / self.probes if self.probes else None

    @property
    def mean_duration(self) -> float | None:
        return self.duration_sum / self.probes if self.probes else None


def _rows(source: Source, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    if isinstance(source, State):
        return source.query(sql, params)
    return source.execute(sql, params).fetchall()


# --- probe_targets --------------------------------------------------------------------------------------------

_STATE_COLUMNS = ("probe", "tenant", "kind", "target", "last_probe_at", "last_success_at", "success",
                  "consecutive_failures", "consecutive_slow", "failing_since", "slow_since", "last_error",
                  "duration_seconds", "status_code", "cert_expiry")


def _state(row: sqlite3.Row) -> ProbeState:
    values = {name: row[name] for name in _STATE_COLUMNS}
    values["success"] = None if row["success"] is None else bool(row["success"])
    return ProbeState(**values)


def probe_states(source: Source) -> dict[str, ProbeState]:
    """Every probe's stored state, by probe name."""
    rows = _rows(source, f"SELECT {', '.join(_STATE_COLUMNS)} FROM probe_targets ORDER BY probe")
    return {row["probe"]: _state(row) for row in rows}


def save_state(db: sqlite3.Connection, state: ProbeState) -> None:
    """Write a probe's state over the stored one (inside the caller's transaction)."""
    values = [getattr(state, name) for name in _STATE_COLUMNS]
    values[_STATE_COLUMNS.index("success")] = None if state.success is None else int(state.success)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _STATE_COLUMNS[1:])
    db.execute(f"INSERT INTO probe_targets ({', '.join(_STATE_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in _STATE_COLUMNS)}) ON CONFLICT(probe) DO UPDATE SET {updates}",
               values)


def forget(db: sqlite3.Connection, probes: list[str]) -> int:
    """Drop the states of probes no longer configured (their daily rows stay until the retention)."""
    return sum(db.execute("DELETE FROM probe_targets WHERE probe = ?", (name,)).rowcount for name in probes)


# --- probe_daily ----------------------------------------------------------------------------------------------

_DAY_COLUMNS = ("probe", "day", "tenant", "kind", "target", "probes", "successes", "slow", "duration_sum",
                "duration_max", "cert_expiry", "first_at", "last_at", "errors")


def _probe_day(row: sqlite3.Row) -> ProbeDay:
    return ProbeDay(probe=row["probe"], day=date.fromisoformat(row["day"]), tenant=row["tenant"], kind=row["kind"],
                    target=row["target"], probes=int(row["probes"]), successes=int(row["successes"]),
                    slow=int(row["slow"]), duration_sum=float(row["duration_sum"]), duration_max=row["duration_max"],
                    cert_expiry=row["cert_expiry"], first_at=row["first_at"], last_at=row["last_at"],
                    errors={str(k): int(v) for k, v in json.loads(row["errors"] or "{}").items()})


def add_to_day(db: sqlite3.Connection, state: ProbeState, at: float, success: bool, slow: bool, duration: float,
               error: str | None, cert_expiry: float | None) -> None:
    """Fold one probe into its day's row (inside the caller's transaction)."""
    day = day_of(at).isoformat()
    found = db.execute("SELECT errors FROM probe_daily WHERE day = ? AND probe = ?", (day, state.probe)).fetchone()
    errors: dict[str, int] = json.loads(found["errors"]) if found else {}
    if not success:
        reason = (error or "failed")[:REASON_LIMIT]
        if reason not in errors and len([k for k in errors if k != OTHER_REASONS]) >= ERROR_REASONS_PER_DAY:
            reason = OTHER_REASONS
        errors[reason] = errors.get(reason, 0) + 1
    db.execute(
        "INSERT INTO probe_daily (day, probe, tenant, kind, target, probes, successes, slow, duration_sum, "
        "duration_max, cert_expiry, first_at, last_at, errors) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(day, probe) DO UPDATE SET tenant = excluded.tenant, kind = excluded.kind, "
        "target = excluded.target, probes = probe_daily.probes + 1, "
        "successes = probe_daily.successes + excluded.successes, slow = probe_daily.slow + excluded.slow, "
        "duration_sum = probe_daily.duration_sum + excluded.duration_sum, "
        "duration_max = MAX(COALESCE(probe_daily.duration_max, 0), excluded.duration_max), "
        "cert_expiry = COALESCE(excluded.cert_expiry, probe_daily.cert_expiry), "
        "first_at = MIN(COALESCE(probe_daily.first_at, excluded.first_at), excluded.first_at), "
        "last_at = MAX(COALESCE(probe_daily.last_at, excluded.last_at), excluded.last_at), "
        "errors = excluded.errors",
        (day, state.probe, state.tenant, state.kind, state.target, int(success), int(slow), duration, duration,
         cert_expiry, at, at, json.dumps(errors, ensure_ascii=False, sort_keys=True)))


def probe_days(source: Source, tenant: str | None, start_day: date, end_day: date,
               probe: str | None = None) -> list[ProbeDay]:
    """The daily rows of ``tenant``'s probes (every tenant's with None) from ``start_day`` to ``end_day``, both
    included, ordered by probe and day; only ``probe``'s when given. For the quarterly and yearly reports."""
    sql = f"SELECT {', '.join(_DAY_COLUMNS)} FROM probe_daily WHERE day >= ? AND day <= ?"
    params: list[Any] = [start_day.isoformat(), end_day.isoformat()]
    if tenant is not None:
        sql += " AND tenant = ?"
        params.append(tenant)
    if probe is not None:
        sql += " AND probe = ?"
        params.append(probe)
    return [_probe_day(row) for row in _rows(source, sql + " ORDER BY probe, day", tuple(params))]


def delete_days_before(db: sqlite3.Connection, cutoff: date) -> int:
    """Delete the daily rows of days before ``cutoff``; returns how many went."""
    return db.execute("DELETE FROM probe_daily WHERE day < ?", (cutoff.isoformat(),)).rowcount
