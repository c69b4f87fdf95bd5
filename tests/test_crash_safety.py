"""kill -9 the writer at random instants: the state DB and audit log stay consistent."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from custode.agent.audit import AuditLog, verify
from custode.agent.state import State

WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = 6


def _check_invariants(state: State) -> None:
    assert state.integrity_problems() == []
    rows = state.query("""
        SELECT i.id, i.status,
               SUM(e.kind = 'opened') AS opened, SUM(e.kind = 'resolved') AS resolved, MIN(e.id) AS first_event,
               (SELECT id FROM incident_events WHERE incident_id = i.id AND kind = 'opened') AS opened_event
        FROM incidents i LEFT JOIN incident_events e ON e.incident_id = i.id GROUP BY i.id""")
    assert rows, "the writer made no incidents at all"
    for row in rows:
        assert row["opened"] == 1, f"incident {row['id']} has {row['opened']} 'opened' events"
        assert row["first_event"] == row["opened_event"], f"incident {row['id']}: history does not start with 'opened'"
        assert row["resolved"] == (1 if row["status"] == "resolved" else 0)
    keys = state.query("SELECT key, COUNT(*) AS n FROM incidents WHERE status = 'open' GROUP BY key HAVING n > 1")
    assert keys == []


def test_kill_9_during_writes_leaves_consistent_state(tmp_path) -> None:
    db, audit = tmp_path / "state.db", tmp_path / "audit.jsonl"
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for round_number in range(ROUNDS):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(db), str(audit), str(round_number)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        state = State(db)  # opens (and recovers the WAL) after the crash
        try:
            _check_invariants(state)
            anchor = state.audit_anchor()
        finally:
            state.close()
        # A crash may leave a torn last audit line; the next append recovers it without losing bytes.
        AuditLog(audit).append("test.after_crash", str(round_number))
        result = verify(audit)
        assert result.ok, result.reason
        assert anchor is None or result.records >= anchor[0]
