"""Tamper evidence that holds: the audit log is checked against the head the state database keeps.

Each test damages the file as someone with a shell on the server would (cut
its end, rewrite its last record with a valid hash, replace it with garbage,
grow it back with records of their own) and checks that the keeper refuses to
append, keeps the records it could not write, that the anchor does not move,
and that ``custode audit verify`` (the real command) names the damage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from audit_files import read_lines, records, write_lines
from conftest import free_port, http_get, wait_until

from custode.agent import audit
from custode.agent.audit import AuditLog, verify
from custode.agent.audit_keeper import AuditKeeper
from custode.agent.cli import main
from custode.agent.config_loader import load_text
from custode.agent.runtime import Agent
from custode.agent.state import State

HOST = "web01"


def custode(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a subprocess (the data dir comes from CUSTODE_DATA_DIR, set by conftest)."""
    return subprocess.run([sys.executable, "-m", "custode.agent", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ), stdin=subprocess.DEVNULL)


def anchored(data: Path, n: int, pad: int = 0) -> tuple[State, AuditKeeper]:
    """A log of ``n`` records written as the agent writes them: the state DB keeps its head."""
    state = State(data / "state.db")
    keeper = AuditKeeper(state, data / "audit.jsonl")
    for i in range(n):
        keeper.write("test.event", f"host{i}", {"i": i, **({"pad": "x" * pad} if pad else {})})
    assert keeper.status().ok
    return state, keeper


def metric(port: int, name: str) -> float | None:
    for line in http_get(f"http://127.0.0.1:{port}/metrics")[1].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@contextmanager
def running_agent(data: Path) -> Iterator[Agent]:
    loaded = load_text(f"agent:\n  data_dir: {data}\n  hostname: {HOST}\n", source="custode.yaml")
    agent = Agent(loaded, listen=f"127.0.0.1:{free_port()}", health_every=0.3)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def audit_incident(agent: Agent):
    return next((i for i in agent.incidents.open_incidents() if i.key == f"default/audit_log/{HOST}"), None)


# --------------------------------------------------------------------------- #
# Cut, then grown back
# --------------------------------------------------------------------------- #


def test_cut_then_regrow_is_refused_and_reported_by_the_cli(isolated_data_dir) -> None:
    state, keeper = anchored(isolated_data_dir, 10)
    path, anchor = keeper.path, state.audit_head()
    write_lines(path, read_lines(path)[:7])
    cut = path.read_bytes()

    restarted = AuditKeeper(state, path)  # the agent after a restart
    restarted.write("agent.started", HOST, {})
    assert path.read_bytes() == cut, "records were appended on top of a cut log"
    assert state.audit_head() == anchor, "the anchor moved"
    assert state.held_audit_summary()[0] == 1
    status = restarted.check()
    assert not status.ok and "records 8 to 10 were cut off its end" in (status.reason or "")

    AuditLog(path).append("cover.up")  # one record by a writer that keeps no anchor (by hand, an old version)
    state.close()
    result = custode("audit", "verify")
    assert result.returncode == 1, result.stdout
    assert ("line 9: the log ends at record 8 but record 10 was recorded as its head; "
            "records 9 to 10 were removed from the end (the log was truncated)") in result.stderr
    assert "1 record held in the state database" in result.stderr
    assert "Traceback" not in result.stderr


def test_regrown_past_the_kept_head_is_caught_by_its_offset(isolated_data_dir) -> None:
    """Records written on top until the log is longer than before: the kept offset and hash give it away."""
    state, keeper = anchored(isolated_data_dir, 10)
    path, anchor = keeper.path, state.audit_head()
    write_lines(path, read_lines(path)[:8])
    plain = AuditLog(path)
    for _ in range(3):
        plain.append("cover.up")
    assert verify(path).ok  # the chain alone is whole: records 1 to 11
    before = path.read_bytes()
    keeper.write("incident.opened", "web01:/var", {})
    assert path.read_bytes() == before and state.audit_head() == anchor
    assert "is no longer where it was written" in (keeper.status().reason or "")
    state.close()
    assert main(["audit", "verify"]) == 1


def test_cut_then_regrow_through_a_running_agent(isolated_data_dir, capsys) -> None:
    path = isolated_data_dir / "audit.jsonl"
    with running_agent(isolated_data_dir) as agent:
        for i in range(3):
            agent._audit("test.event", HOST, {"i": i})
    anchor = State(isolated_data_dir / "state.db").audit_head()
    assert anchor is not None and anchor[0] == len(read_lines(path))
    write_lines(path, read_lines(path)[:-2])
    cut = path.read_bytes()

    with running_agent(isolated_data_dir) as agent:
        base = f"http://127.0.0.1:{agent.port}"
        assert wait_until(lambda: metric(agent.port, "custode_audit_log_ok") == 0.0, 10)
        status, body = http_get(base + "/ready")
        assert status == 503 and b"the log was truncated" in body
        assert http_get(base + "/healthz")[0] == 200  # alive: a restart would not mend the log
        assert wait_until(lambda: audit_incident(agent) is not None, 10)
        assert audit_incident(agent).severity == "critical"
        assert path.read_bytes() == cut, "the agent appended to a cut log"
        assert agent.state.audit_head() == anchor
        held, _, reason = agent.state.held_audit_summary()
        assert held >= 2 and "cut off its end" in (reason or "")

        AuditLog(path).append("cover.up")  # grown back by one record
        result = custode("audit", "verify")
        assert result.returncode == 1 and "(the log was truncated)" in result.stderr

        damaged = hashlib.sha256(path.read_bytes()).hexdigest()
        result = custode("audit", "new-log", "--reason", "ticket 4711: log cut by hand")
        assert result.returncode == 0, result.stderr
        assert "new log started" in result.stdout
        assert wait_until(lambda: metric(agent.port, "custode_audit_log_ok") == 1.0, 15)
        assert wait_until(lambda: audit_incident(agent) is None, 10)
        assert agent.health.problem() is None

    new = records(path)
    first = new[0]
    assert (first["seq"], first["prev"], first["action"]) == (1, "0" * 64, "audit.new_log")
    assert first["details"]["previous_sha256"] == damaged
    assert first["details"]["previous_head"] == {"seq": anchor[0], "hash": anchor[1]}
    assert first["details"]["reason"] == "ticket 4711: log cut by hand"
    assert Path(first["details"]["previous_file"]).read_bytes().startswith(cut)  # kept as evidence
    actions = [r["action"] for r in new]
    assert actions[1] == "audit.held_records_released"
    for action in ("config.loaded", "agent.started", "incident.opened", "incident.resolved", "agent.stopped"):
        assert action in actions, action
    assert custode("audit", "verify").returncode == 0


# --------------------------------------------------------------------------- #
# Rewritten, replaced
# --------------------------------------------------------------------------- #


def test_a_rewritten_last_record_with_a_valid_hash_is_not_appended_to(isolated_data_dir, capsys) -> None:
    state, keeper = anchored(isolated_data_dir, 5)
    path = keeper.path
    lines = read_lines(path)
    last = json.loads(lines[-1])
    forged = audit._make_record(last["seq"], last["ts"], last["actor"], last["action"], last["subject"],
                                {"i": 999}, last["prev"])
    lines[-1] = audit._line(forged)
    write_lines(path, lines)
    assert verify(path).ok  # a valid chain: only the kept head can tell
    before = path.read_bytes()
    keeper.write("test.after", None, {})
    assert path.read_bytes() == before
    status = keeper.check()
    assert not status.ok and status.held == 1
    assert "its last record 5 is not the one written" in (status.reason or "")
    state.close()
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "line 5: record 5 does not have the hash recorded as the head" in err
    assert "custode audit new-log" in err


def test_a_garbage_file_in_place_of_the_log(isolated_data_dir) -> None:
    with running_agent(isolated_data_dir):
        pass
    path = isolated_data_dir / "audit.jsonl"
    garbage = os.urandom(4096).replace(b"\n", b"x") + b"\n" + os.urandom(300)
    path.write_bytes(garbage)
    with running_agent(isolated_data_dir) as agent:
        assert wait_until(lambda: metric(agent.port, "custode_audit_log_ok") == 0.0, 10)
        status, body = http_get(f"http://127.0.0.1:{agent.port}/ready")
        assert status == 503 and str(path).encode() in body
        assert wait_until(lambda: audit_incident(agent) is not None, 10)
        assert audit_incident(agent).severity == "critical"
        assert agent.state.held_audit_summary()[0] >= 2
    assert path.read_bytes() == garbage  # not "recovered" into a record: it is evidence
    result = custode("audit", "verify")
    assert result.returncode == 1 and "BROKEN at line 1" in result.stderr


def test_a_missing_log_is_not_started_again(isolated_data_dir) -> None:
    state, keeper = anchored(isolated_data_dir, 3)
    keeper.path.unlink()
    keeper.write("after.delete", None, {})
    assert not keeper.path.exists()
    assert "it was deleted or moved" in (keeper.status().reason or "")
    assert "is missing" in (keeper.verify_from_checkpoint().reason or "")
    state.close()


def test_a_new_log_is_refused_while_the_log_is_intact(isolated_data_dir, capsys) -> None:
    state, keeper = anchored(isolated_data_dir, 3)
    state.close()
    assert main(["audit", "new-log", "--reason", "why not"]) == 1
    assert "is intact (3 records" in capsys.readouterr().err
    assert len(read_lines(keeper.path)) == 3


# --------------------------------------------------------------------------- #
# What the log cannot take is kept
# --------------------------------------------------------------------------- #


def test_held_records_keep_their_time_and_order_and_go_in_after_a_restore(isolated_data_dir, pin_clock) -> None:
    state, keeper = anchored(isolated_data_dir, 4)
    path = keeper.path
    backup = path.read_bytes()
    write_lines(path, read_lines(path)[:2])
    start = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    for minute in range(3):
        pin_clock(start + timedelta(minutes=minute), running=False)  # the last pin holds until the test ends
        keeper.write("incident.opened", f"srv{minute}:/var", {"minute": minute})
    assert state.held_audit_summary()[0] == 3
    path.write_bytes(backup)  # restored from the backup
    assert keeper.check().ok
    recs = records(path)
    assert [r["action"] for r in recs[4:]] == ["audit.held_records_released"] + ["incident.opened"] * 3
    assert [r["ts"] for r in recs[5:]] == [f"2026-11-23T09:0{m}:00.000000Z" for m in range(3)]
    marker = recs[4]["details"]
    assert marker["count"] == 3 and marker["first_ts"] == "2026-11-23T09:00:00.000000Z"
    assert "cut off its end" in marker["reasons"][0]
    assert state.held_audit_summary()[0] == 0
    assert verify(path, expected_head=state.audit_anchor()).ok
    state.close()


def test_held_in_memory_when_the_state_database_refuses_too(isolated_data_dir, monkeypatch, caplog) -> None:
    state, keeper = anchored(isolated_data_dir, 2)
    backup = keeper.path.read_bytes()
    keeper.path.write_bytes(b"")

    def full(*args: object) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(state, "hold_audit_record", full)
    with caplog.at_level(logging.ERROR):
        keeper.write("update.started", "erp", {"window": "sunday"})
    line = next(r for r in caplog.records if r.getMessage().startswith("audit record not written"))
    assert line.held_in.startswith("memory")
    assert line.record["action"] == "update.started" and line.record["details"] == {"window": "sunday"}
    assert all(r.exc_info is None for r in caplog.records)
    assert keeper.status().held == 1
    keeper.path.write_bytes(backup)
    assert keeper.check().ok and keeper.status().held == 0
    assert records(keeper.path)[-1]["action"] == "update.started"
    state.close()


def test_another_writer_after_the_head_is_chained_onto(isolated_data_dir) -> None:
    """A CLI command or a crash before the head was stored: records after it that continue it are fine."""
    state, keeper = anchored(isolated_data_dir, 3)
    AuditLog(keeper.path).append("cli.did.something", actor="cli:root")
    keeper.write("agent.next", None, {})
    assert keeper.status().ok and state.audit_head()[0] == 5
    state.close()


def test_an_anchor_kept_without_its_offset_still_guards_and_gets_one(isolated_data_dir) -> None:
    """Anchors stored before offsets were kept (schema 6): the first append finds the record by scanning."""
    state = State(isolated_data_dir / "state.db")
    path = isolated_data_dir / "audit.jsonl"
    log = AuditLog(path, on_append=state.set_audit_anchor)  # the old wiring: seq and hash only
    for i in range(4):
        log.append("old.event", None, {"i": i})
    assert state.audit_head()[2] is None
    AuditLog(path).append("unanchored")
    keeper = AuditKeeper(state, path)
    keeper.write("new.event", None, {})
    assert keeper.status().ok
    assert state.audit_head() == (6, records(path)[-1]["hash"], path.stat().st_size)
    state.close()


# --------------------------------------------------------------------------- #
# Start-up verification from the checkpoint
# --------------------------------------------------------------------------- #


def test_start_up_verifies_from_the_checkpoint_only(isolated_data_dir, monkeypatch, capsys) -> None:
    state, keeper = anchored(isolated_data_dir, 300, pad=1000)
    path = keeper.path
    assert keeper.verify_from_checkpoint().ok  # the first start reads it all and keeps a checkpoint
    checkpoint = state.audit_checkpoint()
    assert checkpoint == (300, records(path)[-1]["hash"], path.stat().st_size)
    lines = read_lines(path)
    lines[49] = lines[49].replace(b'"i":49', b'"i":48')  # same length: no offset moves
    write_lines(path, lines)
    for i in range(5):
        keeper.write("after.checkpoint", None, {"i": i})

    read: list[int] = []
    real_read_at, real_open = audit._read_at, open

    class Counting:
        def __init__(self, fh) -> None:
            self.fh = fh

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def fileno(self) -> int:
            return self.fh.fileno()

        def seek(self, offset: int) -> int:
            return self.fh.seek(offset)

        def __iter__(self) -> Iterator[bytes]:
            for line in self.fh:
                read.append(len(line))
                yield line

    with monkeypatch.context() as patch:
        patch.setattr(audit, "_read_at", lambda fd, off, n: read.append(n) or real_read_at(fd, off, n))
        patch.setattr(audit, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
        restarted = AuditKeeper(state, path)
        assert restarted.verify_from_checkpoint().ok, "start-up read records before its checkpoint"
    after = path.stat().st_size - checkpoint[2]
    assert sum(read) <= after + 64 * 1024 < path.stat().st_size // 4
    assert state.audit_checkpoint()[0] == 305
    state.close()

    assert main(["audit", "verify"]) == 1  # the full check reads every line
    assert "line 50: record content does not match its hash (the record was edited)" in capsys.readouterr().err


def test_start_up_of_the_agent_does_not_reread_before_the_checkpoint(isolated_data_dir) -> None:
    for _ in range(2):  # the second start verifies the first one's records and keeps them as the checkpoint
        with running_agent(isolated_data_dir):
            pass
    state = State(isolated_data_dir / "state.db")
    assert state.audit_checkpoint()[0] >= 3
    state.close()
    path = isolated_data_dir / "audit.jsonl"
    lines = read_lines(path)
    lines[0] = lines[0].replace(b'"actor":"agent"', b'"actor":"agenT"')
    write_lines(path, lines)
    with running_agent(isolated_data_dir) as agent:
        assert wait_until(lambda: metric(agent.port, "custode_audit_log_ok") == 1.0, 10)
        assert agent.keeper.verify_problem is None
    result = custode("audit", "verify")
    assert result.returncode == 1 and "line 1: record content does not match its hash" in result.stderr


def test_the_first_start_verifies_everything(isolated_data_dir) -> None:
    state, keeper = anchored(isolated_data_dir, 20)
    lines = read_lines(keeper.path)
    lines[2] = lines[2].replace(b'"i":2', b'"i":7')
    write_lines(keeper.path, lines)
    status = AuditKeeper(state, keeper.path).verify_from_checkpoint()
    assert not status.ok and "line 3: record content does not match its hash" in (status.reason or "")
    assert state.audit_checkpoint() is None  # a broken chain never becomes a checkpoint
    state.close()


def test_a_cut_before_the_checkpoint_is_found_at_start(isolated_data_dir) -> None:
    state, keeper = anchored(isolated_data_dir, 20)
    assert keeper.verify_from_checkpoint().ok
    write_lines(keeper.path, read_lines(keeper.path)[:12])
    status = AuditKeeper(state, keeper.path).verify_from_checkpoint()
    assert not status.ok and "verified before and kept as the checkpoint" in (status.reason or "")
    state.close()


def test_a_torn_last_line_at_start_is_recovered_not_reported(isolated_data_dir) -> None:
    state, keeper = anchored(isolated_data_dir, 5)
    with open(keeper.path, "ab") as fh:
        fh.write(b'{"seq":6,"ts":"2026-')
    restarted = AuditKeeper(state, keeper.path)
    assert restarted.verify_from_checkpoint().ok
    restarted.write("agent.started", HOST, {})
    assert [r["action"] for r in records(keeper.path)[-2:]] == ["audit.torn_write_recovered", "agent.started"]
    assert restarted.status().ok
    state.close()
