"""Update runs, their steps, the per-window lock and incident silences, in the state DB.

Taking the lock, creating the run and silencing its hosts happen in one
transaction, and so do finishing, lifting the silences and releasing the lock:
a crash leaves either a running run that owns its lock (recovered on the next
start as ``interrupted``) or nothing.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from dataclasses import dataclass

import psutil

from custode.agent.state import State
from custode.agent.updates.states import Phase, RunStatus, StepStatus


class RunBusy(Exception):
    """Another run of the same window holds the lock and its process is alive."""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: float

    @classmethod
    def me(cls) -> "Owner":
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    def alive(self) -> bool:
        """The owning process still runs: same host, same PID, same start time (PIDs are reused)."""
        if self.host != socket.gethostname():
            return True  # not ours to judge; a state DB is local, so this only happens after a rename
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 1.0
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            return False


@dataclass(frozen=True)
class NewRun:
    window: str
    application: str
    tenant: str | None
    trigger: str
    reason: str | None
    playbook: str
    window_start: float
    window_end: float
    silence: list[tuple[str | None, str]]
    """(tenant, host) pairs whose incidents are silenced during the run."""
    silence_until: float


class UpdateStore:
    def __init__(self, state: State) -> None:
        self.state = state

    def begin(self, run: NewRun, now: float, owner: Owner | None = None) -> int:
        owner = owner or Owner.me()
        with self.state.transaction() as db:
            lock = db.execute("SELECT * FROM update_locks WHERE window = ?", (run.window,)).fetchone()
            if lock is not None:
                raise RunBusy(f"window {run.window} is already being updated by run {lock['run_id']} "
                              f"(process {lock['owner_pid']} on {lock['owner_host']})")
            run_id = int(db.execute(
                """INSERT INTO update_runs (window, application, tenant, trigger, reason, playbook, window_start,
                                            window_end, started_at, status)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (run.window, run.application, run.tenant, run.trigger, run.reason, run.playbook,
                 run.window_start, run.window_end, now, RunStatus.RUNNING)).lastrowid or 0)
            db.execute("""INSERT INTO update_locks (window, run_id, owner_host, owner_pid, owner_started, taken_at)
                          VALUES (?, ?, ?, ?, ?, ?)""", (run.window, run_id, owner.host, owner.pid,
                                                          owner.started, now))
            db.executemany("""INSERT INTO silences (tenant, host, reason, run_id, created_at, ends_at)
                              VALUES (?, ?, ?, ?, ?, ?)""",
                           [(tenant, host, f"update {run.window}", run_id, now, run.silence_until)
                            for tenant, host in run.silence])
        return run_id

    def start_step(self, run_id: int, phase: Phase, position: int, name: str, kind: str, host: str | None,
                   now: float) -> int:
        with self.state.transaction() as db:
            return int(db.execute(
                """INSERT INTO update_steps (run_id, phase, position, name, kind, host, started_at, status)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (run_id, phase, position, name, kind, host, now, StepStatus.RUNNING)).lastrowid or 0)

    def end_step(self, step_id: int, status: StepStatus, detail: str, exit_code: int | None, stdout: str, stderr: str,
                 now: float) -> None:
        with self.state.transaction() as db:
            db.execute("""UPDATE update_steps SET ended_at = ?, status = ?, detail = ?, exit_code = ?, stdout = ?,
                          stderr = ? WHERE id = ?""", (now, status, detail, exit_code, stdout, stderr, step_id))

    def finish(self, run_id: int, status: RunStatus, summary: str, now: float) -> None:
        """Record the outcome, lift the run's silences and release its lock, all at once."""
        with self.state.transaction() as db:
            db.execute("UPDATE update_runs SET status = ?, summary = ?, ended_at = ? WHERE id = ?",
                       (status, summary, now, run_id))
            db.execute("UPDATE update_steps SET status = ?, ended_at = ? WHERE run_id = ? AND status = ?",
                       (StepStatus.INTERRUPTED, now, run_id, StepStatus.RUNNING))
            db.execute("UPDATE silences SET ended_at = ? WHERE run_id = ? AND ended_at IS NULL", (now, run_id))
            db.execute("DELETE FROM update_locks WHERE run_id = ?", (run_id,))

    def orphaned(self) -> list[sqlite3.Row]:
        """Runs whose lock is held by a process that no longer exists (a crash, a kill -9, a reboot)."""
        rows = self.state.query("""SELECT l.*, r.application, r.tenant, r.started_at FROM update_locks l
                                   JOIN update_runs r ON r.id = l.run_id ORDER BY l.taken_at""")
        return [r for r in rows if not Owner(r["owner_host"], r["owner_pid"], r["owner_started"]).alive()]

    def run(self, run_id: int) -> sqlite3.Row | None:
        rows = self.state.query("SELECT * FROM update_runs WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def steps(self, run_id: int) -> list[sqlite3.Row]:
        return self.state.query("SELECT * FROM update_steps WHERE run_id = ? ORDER BY id", (run_id,))

    def history(self, window: str | None = None, limit: int = 50) -> list[sqlite3.Row]:
        sql = "SELECT * FROM update_runs"
        params: tuple = ()
        if window:
            sql += " WHERE window = ?"
            params = (window,)
        return self.state.query(sql + " ORDER BY started_at DESC, id DESC LIMIT ?", params + (limit,))

    def runs_between(self, start: float, end: float) -> list[sqlite3.Row]:
        """Runs whose window opened, or that started, in ``[start, end)``, by start: a period's runs in one query."""
        return self.state.query("""SELECT * FROM update_runs WHERE (window_start >= ? AND window_start < ?)
                                   OR (started_at >= ? AND started_at < ?) ORDER BY started_at, id""",
                                (start, end, start, end))

    def last_finished(self) -> dict[str, sqlite3.Row]:
        """The latest finished run of every window (for the metrics)."""
        rows = self.state.query("""SELECT * FROM update_runs WHERE id IN (
                                       SELECT MAX(id) FROM update_runs WHERE status != ? GROUP BY window)""",
                                (RunStatus.RUNNING,))
        return {r["window"]: r for r in rows}

    def last_success_times(self) -> dict[str, float]:
        rows = self.state.query("SELECT window, MAX(ended_at) AS at FROM update_runs WHERE status = ? "
                                "GROUP BY window", (RunStatus.SUCCEEDED,))
        return {r["window"]: r["at"] for r in rows}

    def running(self) -> set[str]:
        return {r["window"] for r in self.state.query("SELECT window FROM update_locks")}
