"""Health that tells the truth: /ready, custode_state_db_ok and custode_audit_log_ok when storage fails.

The state database is damaged the way disks and people damage it (random
bytes over its pages, while the agent runs and before it starts), its disk is
filled (a small tmpfs; needs root for the mount), the audit log is made
unwritable. Each time: the gauge goes to 0, /ready answers 503 naming the
file, the log says what to do in one JSON line without a traceback, nothing
written before is lost, and everything comes back once the cause is gone.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import free_port, http_get, stop_process, wait_until

from custode.agent.audit import verify
from custode.agent.config_loader import load_text
from custode.agent.incidents import CheckResult
from custode.agent.logs import JsonFormatter
from custode.agent.runtime import Agent
from custode.agent.services import Job
from custode.agent.state import State, StateError
from custode.agent.storage_errors import Problem, classify, explain_state, mount_point

HOST = "web01"
PAGE = 4096


def custode(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "custode.agent", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ), stdin=subprocess.DEVNULL)


def metric(port: int, name: str) -> float | None:
    for line in http_get(f"http://127.0.0.1:{port}/metrics")[1].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def answers(url: str) -> int | None:
    """The status of a GET, None while nothing listens yet."""
    try:
        return http_get(url, timeout=2)[0]
    except OSError:
        return None


def root_pages(db: Path, *tables: str) -> list[int]:
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'table'").fetchall())
    return [rows[table] for table in tables]


def scribble(db: Path, pages: list[int], seed: int = 7) -> None:
    """Random bytes over whole pages, as a failing disk or a stray dd would leave them."""
    rng = random.Random(seed)
    with open(db, "r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * PAGE)
            fh.write(rng.randbytes(PAGE))


def assert_no_traceback(lines: list[dict]) -> None:
    assert lines, "the agent logged nothing"
    for line in lines:
        assert "exception" not in line, json.dumps(line)
        assert "Traceback" not in json.dumps(line), line


@pytest.fixture
def json_log() -> Iterator[Callable[[], list[dict]]]:
    """The agent's JSON log, as journald would get it (installed before the agent starts)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


@contextmanager
def running_agent(config: str) -> Iterator[Agent]:
    agent = Agent(load_text(config, source="custode.yaml"), listen=f"127.0.0.1:{free_port()}", health_every=0.3)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def agent_config(data: Path, audit: Path | None = None) -> str:
    text = f"agent:\n  data_dir: {data}\n  hostname: {HOST}\n"
    return text + (f"audit:\n  path: {audit}\n" if audit else "")


def incident(agent: Agent, check: str):
    return next((i for i in agent.incidents.open_incidents() if i.key == f"default/{check}/{HOST}"), None)


# --------------------------------------------------------------------------- #
# A corrupt state database
# --------------------------------------------------------------------------- #


def test_state_db_scribbled_over_while_the_agent_runs(tmp_path) -> None:
    """A real ``custode run`` with JSON logs: 503, the gauge at 0, the fix in the log, no traceback."""
    data, port = tmp_path / "data", free_port()
    config = tmp_path / "custode.yaml"
    config.write_text(f"agent:\n  data_dir: {data}\n  listen: 127.0.0.1:{port}\nlogging:\n  format: json\n")
    proc = subprocess.Popen([sys.executable, "-m", "custode.agent", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: proc.poll() is None and answers(base + "/ready") == 200, 60), proc.poll()
        assert metric(port, "custode_state_db_ok") == 1.0
        db = data / "state.db"
        # A young database lives in its WAL; after a checkpoint (hours into a real run) the pages are in the file.
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        scribble(db, [1, 2, 3, *root_pages(db, "incidents", "collector_status")])
        assert wait_until(lambda: metric(port, "custode_state_db_ok") == 0.0, 40)
        status, body = http_get(base + "/ready")
        assert status == 503 and f"state database {db} is corrupt".encode() in body
        assert b'".recover"' in body
        assert http_get(base + "/healthz")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        stop_process(proc)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert_no_traceback(lines)
    told = [line for line in lines if "is corrupt" in json.dumps(line)]
    assert told and any(f'sqlite3 {db} \\".recover\\" | sqlite3 {data / "state-recovered.db"}' in json.dumps(line)
                        for line in told)


def test_state_db_damaged_before_start_is_found_at_start(tmp_path, json_log) -> None:
    data = tmp_path / "data"
    with running_agent(agent_config(data)) as agent:
        agent.incidents.observe(CheckResult("default", "filesystem", f"{HOST}:/var", "critical", "/var is full"))
    db = data / "state.db"
    scribble(db, root_pages(db, "host_daily", "coverage_items", "update_steps"))
    with running_agent(agent_config(data)) as agent:  # opens: the header and schema are whole
        assert wait_until(lambda: metric(agent.port, "custode_state_db_ok") == 0.0, 15)
        status, body = http_get(f"http://127.0.0.1:{agent.port}/ready")
        assert status == 503 and b"is corrupt (database disk image is malformed" in body
        assert http_get(f"http://127.0.0.1:{agent.port}/healthz")[0] == 200
        assert metric(agent.port, "custode_audit_log_ok") == 1.0  # the audit log itself is fine
    lines = json_log()
    assert_no_traceback(lines)
    assert any(line["msg"] == "state database is not usable" and ".recover" in line["reason"] for line in lines)


def test_a_state_db_that_does_not_open_stops_every_command_with_the_fix(isolated_data_dir) -> None:
    State(isolated_data_dir / "state.db").close()
    db = isolated_data_dir / "state.db"
    scribble(db, [1])
    recover = f'sqlite3 {db} ".recover" | sqlite3 {isolated_data_dir / "state-recovered.db"}'
    for command in (["status"], ["audit", "verify"], ["run", "--listen", f"127.0.0.1:{free_port()}"]):
        result = custode(*command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert f"state database {db} is corrupt (file is not a database)" in result.stderr, command
        assert recover in result.stderr and "move it aside" not in result.stderr
    assert "the chain is checked without the head kept there" in custode("audit", "verify").stderr


def test_status_on_a_damaged_table_names_the_file(isolated_data_dir) -> None:
    state = State(isolated_data_dir / "state.db")
    state.record_collector_run("cpu", 1.0, True, 0.1, None)
    state.close()
    db = isolated_data_dir / "state.db"
    scribble(db, root_pages(db, "collector_status"))
    result = custode("status")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"state database {db} is corrupt" in result.stderr


# --------------------------------------------------------------------------- #
# A full disk
# --------------------------------------------------------------------------- #


@contextmanager
def small_disk(where: Path, size: str = "16m") -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root (mount -t tmpfs); run the suite as root to test "
                    "a full disk")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write until the filesystem has not one byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 1 << 16, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)


def test_a_full_disk_is_reported_and_nothing_written_before_is_lost(tmp_path, json_log) -> None:
    with small_disk(tmp_path / "fs") as disk:
        data = disk / "custode"
        with running_agent(agent_config(data)) as agent:
            base = f"http://127.0.0.1:{agent.port}"
            assert wait_until(lambda: http_get(base + "/ready")[0] == 200, 30)
            for i in range(3):
                agent._audit("test.before", HOST, {"i": i})
            agent.incidents.observe(CheckResult("default", "filesystem", f"{HOST}:/srv", "critical", "/srv full"))
            audit_before = (data / "audit.jsonl").read_bytes()

            fill(disk / "filler")
            assert wait_until(lambda: metric(agent.port, "custode_state_db_ok") == 0.0
                              and metric(agent.port, "custode_audit_log_ok") == 0.0, 15)
            status, body = http_get(base + "/ready")
            assert status == 503, body
            assert f"cannot write state database {data / 'state.db'}: the disk is full (filesystem {disk}".encode() \
                in body
            assert f"cannot write audit log {data / 'audit.jsonl'}: the disk is full".encode() in body
            # Bigger than what is left of the file's last page (tmpfs, like any fs, fills in pages).
            agent._audit("test.during", HOST, {"while": "full", "pad": "x" * 20_000})
            assert (data / "audit.jsonl").read_bytes() == audit_before

            (disk / "filler").unlink()
            assert wait_until(lambda: metric(agent.port, "custode_state_db_ok") == 1.0
                              and metric(agent.port, "custode_audit_log_ok") == 1.0, 15)
            assert wait_until(lambda: http_get(base + "/ready")[0] == 200, 10)
            assert [i.summary for i in agent.incidents.open_incidents()] == ["/srv full"]
        audit_after = (data / "audit.jsonl").read_bytes()
        state = State(data / "state.db")
        try:
            assert verify(data / "audit.jsonl", expected_head=state.audit_anchor()).ok
            assert state.query("SELECT COUNT(*) FROM incidents")[0][0] == 1
        finally:
            state.close()
    assert audit_after.startswith(audit_before)
    actions = [json.loads(line)["action"] for line in audit_after.splitlines()]
    assert "test.during" in actions and "audit.held_records_released" in actions
    lines = json_log()
    assert_no_traceback(lines)
    held = [line for line in lines if line["msg"].startswith("audit record not written")
            and line["action"] == "test.during"]
    assert held, "no log line says where the record is held"
    if held[0]["held_in"].startswith("memory"):  # the state DB's WAL may still have had room for it
        assert held[0]["record"]["details"]["while"] == "full"
    assert not any("aside" in json.dumps(line) for line in lines)
    assert any(line["msg"] == "state database is fine again" for line in lines)


def test_starting_on_a_full_disk_says_so(tmp_path) -> None:
    with small_disk(tmp_path / "fs", size="1m") as disk:
        fill(disk / "filler")
        with pytest.raises(StateError) as caught:
            State(disk / "state.db")
    message = str(caught.value)
    assert caught.value.problem is Problem.FULL
    assert f"cannot write state database {disk / 'state.db'}: the disk is full (filesystem {disk}" in message
    assert "aside" not in message and "not damaged" in message


# --------------------------------------------------------------------------- #
# An unwritable audit log
# --------------------------------------------------------------------------- #


@contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """The folder becomes unwritable: a read-only bind mount as root (root ignores modes), chmod otherwise."""
    if os.geteuid() == 0:
        bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
        if bind.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {bind.stderr.strip()}")
        # A remount read-only fails ("mount point is busy") while a file there is open for writing: the agent's
        # audit append holds one for a moment, so try again until it is between appends.
        for _ in range(100):
            remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True)
            if remount.returncode == 0:
                break
            time.sleep(0.05)
        else:
            subprocess.run(["umount", str(folder)], check=False)
            raise AssertionError(f"cannot remount {folder} read-only: {remount.stderr.strip()}")
        try:
            yield "is mounted read-only"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        modes = {path: path.stat().st_mode for path in [folder, *folder.iterdir()]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield "permission denied"
        finally:
            for path, mode in modes.items():
                path.chmod(mode)


def test_an_unwritable_audit_log(tmp_path, json_log) -> None:
    data, folder = tmp_path / "data", tmp_path / "audit"
    log = folder / "audit.jsonl"
    with running_agent(agent_config(data, log)) as agent:
        assert wait_until(lambda: metric(agent.port, "custode_audit_log_ok") == 1.0, 10)
        before = log.read_bytes()
        with read_only(folder) as words:
            agent._audit("test.during", HOST, {"n": 1})
            assert log.read_bytes() == before
            assert wait_until(lambda: metric(agent.port, "custode_audit_log_ok") == 0.0, 10)
            status, body = http_get(f"http://127.0.0.1:{agent.port}/ready")
            assert status == 503 and f"audit log {log}".encode() in body and words.encode() in body
            assert metric(agent.port, "custode_state_db_ok") == 1.0
            assert wait_until(lambda: incident(agent, "audit_log") is not None, 10)
            assert agent.state.held_audit_summary()[0] >= 1
        assert wait_until(lambda: metric(agent.port, "custode_audit_log_ok") == 1.0, 10)
        assert wait_until(lambda: incident(agent, "audit_log") is None, 10)
        assert agent.state.held_audit_summary()[0] == 0
    assert log.read_bytes().startswith(before)
    assert "test.during" in log.read_text()
    assert verify(log).ok
    lines = json_log()
    assert_no_traceback(lines)
    assert any(line["msg"].startswith("audit record not written") and line["held_in"].startswith(
        "state database table audit_held") for line in lines)


# --------------------------------------------------------------------------- #
# The words, and no traceback from jobs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("error", "problem", "words"), [
    (sqlite3.DatabaseError("database disk image is malformed"), Problem.CORRUPT, "is corrupt"),
    (sqlite3.DatabaseError("file is not a database"), Problem.CORRUPT, '".recover"'),
    (sqlite3.OperationalError("database or disk is full"), Problem.FULL, "the disk is full (filesystem"),
    (sqlite3.OperationalError("attempt to write a readonly database"), Problem.READ_ONLY, "is read-only for user"),
    (sqlite3.OperationalError("unable to open database file"), Problem.PERMISSION, "permission denied for user"),
    (sqlite3.OperationalError("disk I/O error"), Problem.IO, "the disk may be failing"),
])
def test_each_failure_has_its_own_advice(tmp_path, error, problem, words) -> None:
    db = tmp_path / "state.db"
    assert classify(error, db) is problem
    message = explain_state(error, db)
    assert str(db) in message and words in message and "aside" not in message


def test_the_mount_point_is_the_filesystem_that_holds_the_file(tmp_path) -> None:
    assert mount_point(tmp_path / "missing" / "state.db") == mount_point(tmp_path)
    assert mount_point("/") == Path("/")


def test_a_job_meeting_a_corrupt_db_is_one_line_and_a_flag(tmp_path, json_log) -> None:
    agent = Agent(load_text(agent_config(tmp_path / "data"), source="custode.yaml"), listen=f"127.0.0.1:{free_port()}")
    try:
        def job() -> None:
            raise sqlite3.DatabaseError("database disk image is malformed")

        def bug() -> None:
            raise sqlite3.IntegrityError("UNIQUE constraint failed: incidents.key")

        agent._shielded("backups-poll", job)()
        assert "is corrupt" in (agent.health.problem() or "")
        with pytest.raises(sqlite3.IntegrityError):  # a bug still reaches the job guard and its traceback
            agent._shielded("tickets", bug)()
        agent._watch_logs()
        try:
            try:
                raise sqlite3.OperationalError("database or disk is full")
            except sqlite3.OperationalError:
                logging.getLogger("custode.agent.tickets.service").exception("ticket planning failed; will try again")
        finally:
            agent._unwatch_logs()
        assert isinstance(Job("x", job, "interval"), Job)
    finally:
        agent.state.close()
    lines = json_log()
    assert_no_traceback(lines)
    shielded = next(line for line in lines if line.get("where") == "job backups-poll")
    assert "restore state.db from the last backup" in shielded["error"]
    planning = next(line for line in lines if line["msg"] == "ticket planning failed; will try again")
    assert "the disk is full" in planning["storage_error"]


def _shell_recovers() -> bool:
    if shutil.which("sqlite3") is None:
        return False
    probe = subprocess.run(["sqlite3", ":memory:", "SELECT count(*) FROM sqlite_dbpage"], capture_output=True,
                           timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not _shell_recovers(), reason="this sqlite3 shell has no .recover (built without "
                    "SQLITE_ENABLE_DBPAGE_VTAB, like Debian 12's); the advice says to use sqlite.org's then")
def test_the_recover_command_in_the_advice_works(tmp_path) -> None:
    """The advice is only worth giving if it runs as written."""
    db = tmp_path / "state.db"
    state = State(db)
    state.record_collector_run("cpu", 1.0, True, 0.1, None)
    state.close()
    scribble(db, root_pages(db, "host_daily"))
    command = explain_state(sqlite3.DatabaseError("database disk image is malformed"), db).split("with: ")[1]
    command = command.split(" and put")[0]
    subprocess.run(command, shell=True, check=True, capture_output=True, timeout=60)
    recovered = State(tmp_path / "state-recovered.db")
    try:
        assert [r["name"] for r in recovered.collector_statuses()] == ["cpu"]
    finally:
        recovered.close()
