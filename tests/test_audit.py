"""Tests for custode.agent.audit: the hash-chained audit log.

Tamper tests work on the file as an attacker would (editing, deleting,
swapping lines) and check that verify names the exact line, since that line
is what a sysadmin has to show an auditor."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from audit_files import read_lines, records, write_lines

from custode.agent import audit
from custode.agent.audit import AuditError, AuditLog, VerifyResult, export, parse_since, verify

ROOT = Path(__file__).resolve().parents[1]
ZERO = "0" * 64


def make_log(path: Path, n: int, **kwargs: object) -> AuditLog:
    log = AuditLog(path, **kwargs)  # type: ignore[arg-type]
    for i in range(n):
        log.append("test.event", f"host{i}", {"i": i})
    return log


def tamper(path: Path, n: int, change: Callable[[list[bytes]], object]) -> VerifyResult:
    """Write n records, let ``change`` edit the list of raw lines in place, verify."""
    make_log(path, n)
    lines = read_lines(path)
    change(lines)
    write_lines(path, lines)
    return verify(path)


def independent_hash(record: dict) -> str:
    """The hash as the format describes it, recomputed without agent code."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def assert_valid_chain(path: Path, count: int) -> list[dict]:
    result = verify(path)
    assert result == VerifyResult(True, count, None, None)
    recs = records(path)
    assert [r["seq"] for r in recs] == list(range(1, count + 1))
    return recs


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #


def test_append_then_verify_ok(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 7)
    assert_valid_chain(path, 7)


def test_chain_fields_follow_the_format(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    heads: list[tuple[int, str]] = []
    log = AuditLog(path, actor="agent", on_append=lambda s, h: heads.append((s, h)))
    first = log.append("incident.opened", "web01", {"check": "disk", "pct": 93.5})
    second = log.append("incident.ack", None, None, actor="cli:root")
    third = log.append("note", "città", {"msg": "perché"})

    lines = read_lines(path)
    assert len(lines) == 3 and all(line.endswith(b"\n") for line in lines)
    recs = [json.loads(line) for line in lines]
    assert recs == [first, second, third]
    for rec in recs:
        assert list(rec) == ["seq", "ts", "actor", "action", "subject", "details", "prev", "hash"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rec["ts"])
        assert rec["hash"] == independent_hash(rec)
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert recs[0]["prev"] == ZERO
    assert recs[1]["prev"] == recs[0]["hash"] and recs[2]["prev"] == recs[1]["hash"]
    assert (recs[0]["actor"], recs[1]["actor"]) == ("agent", "cli:root")
    assert recs[1]["subject"] is None and recs[1]["details"] == {}
    assert "città".encode() in lines[2]  # UTF-8, not \u escapes
    assert heads == [(r["seq"], r["hash"]) for r in recs]


def test_bad_details_are_stringified_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    cyclic: dict = {}
    cyclic["self"] = cyclic
    rec = AuditLog(path).append("x", "\udcff", {
        "when": datetime(2026, 1, 2, tzinfo=timezone.utc),
        "path": Path("/etc"),
        (1, 2): "tuple key",
        "nan": float("nan"),
        "nested": [ValueError("boom"), {3}, (4, b"5")],
        "cyclic": cyclic,
        "surrogate": "a\udc80b",
    })
    d = rec["details"]
    assert d["when"] == "2026-01-02 00:00:00+00:00" and d["path"] == "/etc"
    assert d["(1, 2)"] == "tuple key" and d["nan"] == "nan"
    assert d["nested"] == ["boom", "{3}", [4, "b'5'"]]
    assert d["cyclic"]["self"]["self"]["self"]  # cut off deep down, not a crash
    assert d["surrogate"] == "a\\udc80b" and rec["subject"] == "\\udcff"
    assert json.loads(read_lines(path)[0]) == rec
    assert AuditLog(path).append("y", None, ["not", "a", "mapping"])["details"] == {"value": ["not", "a", "mapping"]}  # type: ignore[arg-type]
    assert_valid_chain(path, 2)


def test_creates_parents_and_restrictive_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "audit.jsonl"
    make_log(path, 1)
    assert path.exists()
    if os.name != "nt":
        old = os.umask(0o022)
        os.umask(old)
        assert path.stat().st_mode & 0o777 == 0o640 & ~old


def test_failing_on_append_does_not_lose_the_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    def boom(seq: int, digest: str) -> None:
        raise RuntimeError("sqlite is locked")

    rec = AuditLog(path, on_append=boom).append("x")
    assert rec["seq"] == 1
    assert_valid_chain(path, 1)


def test_empty_action_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        AuditLog(tmp_path / "a.jsonl").append("")


def test_concurrent_threads(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    heads: list[int] = []
    log = AuditLog(path, on_append=lambda s, h: heads.append(s))
    start = threading.Barrier(4)

    def worker(t: int) -> None:
        start.wait()
        for i in range(25):
            log.append("thread.event", f"t{t}", {"i": i})

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    recs = assert_valid_chain(path, 100)
    for t in range(4):
        assert sorted(r["details"]["i"] for r in recs if r["subject"] == f"t{t}") == list(range(25))
    assert heads == list(range(1, 101))  # the anchor never moves backwards


def test_on_append_calls_stay_in_seq_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file lock alone would serialise the writes, but a thread paused
    between its write and its callback could then report an older head after
    a newer one, moving the agent's anchor backwards."""
    real_lock = audit._exclusive_lock
    written = threading.Event()

    @contextmanager
    def slow_after_release(lock_path: Path) -> Iterator[None]:
        with real_lock(lock_path):
            yield
        if threading.current_thread().name == "slow":
            written.set()
            time.sleep(0.2)

    monkeypatch.setattr(audit, "_exclusive_lock", slow_after_release)
    heads: list[int] = []
    log = AuditLog(tmp_path / "audit.jsonl", on_append=lambda s, h: heads.append(s))
    slow = threading.Thread(target=log.append, args=("first",), name="slow")
    slow.start()
    assert written.wait(5)
    log.append("second")
    slow.join()
    assert heads == [1, 2]


CHILD = """
import sys, os
from pathlib import Path
from custode.agent.audit import AuditLog
path, go, name = sys.argv[1:4]
log = AuditLog(path, actor=name)
Path(go + "." + name).touch()
while not os.path.exists(go):  # spin, not sleep: start within microseconds of each other
    pass
for i in range(50):
    log.append("proc.event", name, {"i": i})
"""


def test_concurrent_processes(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    go = tmp_path / "go"
    names = ["proc0", "proc1"]
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(go), name], cwd=ROOT)
        for name in names
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"go.{name}").exists() for name in names):
        assert time.monotonic() < deadline, "children did not start"
        assert all(c.poll() is None for c in children), "a child exited before the start signal"
        time.sleep(0.005)
    go.touch()
    # the parent appends too, through a second instance with its own lock
    log = AuditLog(path, actor="parent")
    for i in range(20):
        log.append("parent.event", None, {"i": i})
    assert [c.wait(timeout=60) for c in children] == [0, 0]
    recs = assert_valid_chain(path, 120)
    for actor, count in (("proc0", 50), ("proc1", 50), ("parent", 20)):
        assert sorted(r["details"]["i"] for r in recs if r["actor"] == actor) == list(range(count))


# --------------------------------------------------------------------------- #
# Tampering
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("k", [1, 5, 10])
def test_edited_line_is_named(tmp_path: Path, k: int) -> None:
    def edit(lines: list[bytes]) -> None:
        rec = json.loads(lines[k - 1])
        rec["subject"] = "innocent"
        lines[k - 1] = (json.dumps(rec, separators=(",", ":")) + "\n").encode()

    result = tamper(tmp_path / "audit.jsonl", 10, edit)
    assert not result.ok and result.first_bad_line == k and result.records == k - 1
    assert result.reason == f"line {k}: record content does not match its hash (the record was edited)"


def test_edit_with_recomputed_hash_is_caught_by_the_next_line(tmp_path: Path) -> None:
    def forge(lines: list[bytes]) -> None:
        rec = json.loads(lines[2])
        rec["subject"] = "forged"
        rec["hash"] = independent_hash(rec)
        lines[2] = (json.dumps(rec) + "\n").encode()

    result = tamper(tmp_path / "audit.jsonl", 6, forge)
    assert result.first_bad_line == 4
    assert result.reason == ("line 4: prev hash does not match line 3 "
                             "(a record before it was removed, inserted or reordered)")


@pytest.mark.parametrize("k", [2, 5, 9])
def test_deleted_line_is_named(tmp_path: Path, k: int) -> None:
    result = tamper(tmp_path / "audit.jsonl", 10, lambda lines: lines.pop(k - 1))
    assert not result.ok and result.first_bad_line == k
    assert result.reason == (
        f"line {k}: prev hash does not match line {k - 1} (a record before it was removed, "
        f"inserted or reordered); seq goes from {k - 1} to {k + 1}, so record {k} is missing here")


def test_deleted_first_lines_are_named(tmp_path: Path) -> None:
    def drop_first_two(lines: list[bytes]) -> None:
        del lines[:2]

    result = tamper(tmp_path / "audit.jsonl", 5, drop_first_two)
    assert result.first_bad_line == 1
    assert result.reason == ("line 1: prev hash should be 64 zeros for the first record "
                             "(records at the start of the log were removed); it has seq 3")


@pytest.mark.parametrize("k", [1, 4, 9])
def test_swapped_lines_are_named(tmp_path: Path, k: int) -> None:
    def swap(lines: list[bytes]) -> None:
        lines[k - 1], lines[k] = lines[k], lines[k - 1]

    result = tamper(tmp_path / "audit.jsonl", 10, swap)
    assert not result.ok and result.first_bad_line == k
    assert result.reason is not None and result.reason.startswith(f"line {k}: prev hash")


@pytest.mark.parametrize(("garbage", "why"), [
    (b"rm -rf /var/log\n", "not valid JSON"),
    (b"[1, 2]\n", "not a JSON object"),
    (b"\n", "empty line"),
    (b"\xff\xfe\n", "not valid UTF-8"),
    (b'{"seq": 4}\n', 'missing key(s) "ts", "actor"'),
])
def test_garbage_line_is_named(tmp_path: Path, garbage: bytes, why: str) -> None:
    result = tamper(tmp_path / "audit.jsonl", 6, lambda lines: lines.insert(3, garbage))
    assert not result.ok and result.first_bad_line == 4 and result.records == 3
    assert result.reason is not None and result.reason.startswith(f"line 4: {why}")


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    """json.loads keeps the last of two keys and some tools the first: a second
    "action" could show an auditor a different record than the hash covers."""
    def duplicate(lines: list[bytes]) -> None:
        lines[1] = lines[1].replace(b'"action":', b'"action":"harmless","action":', 1)

    assert tamper(tmp_path / "audit.jsonl", 2, duplicate).reason == 'line 2: key "action" appears twice'


def test_bad_field_types_are_named(tmp_path: Path) -> None:
    def bad_ts(lines: list[bytes]) -> None:
        lines[1] = re.sub(rb'"ts":"[^"]+"', b'"ts":"yesterday"', lines[1])

    result = tamper(tmp_path / "audit.jsonl", 2, bad_ts)
    assert result.reason == 'line 2: "ts" is not a UTC time like 2026-11-23T18:45:01.123456Z'


def test_seq_gap_with_intact_hashes_is_named(tmp_path: Path) -> None:
    """A writer bug, not an attacker: the links hold but a seq is skipped."""
    path = tmp_path / "audit.jsonl"
    r1 = audit._make_record(1, "2026-01-01T00:00:00.000000Z", "a", "x", None, {}, ZERO)
    r3 = audit._make_record(3, "2026-01-01T00:00:00.000000Z", "a", "x", None, {}, r1["hash"])
    path.write_bytes(audit._line(r1) + audit._line(r3))
    assert verify(path).reason == ("line 2: seq 3 does not follow seq 1; "
                                   "seq goes from 1 to 3, so record 2 is missing here")


def test_time_going_backwards_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    times = iter(["2026-11-23T10:00:00.000000Z", "2026-11-23T09:00:00.000000Z"])
    monkeypatch.setattr(audit, "_now_ts", lambda: next(times))
    make_log(path, 2)
    assert verify(path).ok


def test_missing_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert verify(path) == VerifyResult(False, 0, None, f"audit log {path} does not exist")
    path.touch()
    assert verify(path) == VerifyResult(True, 0, None, None)


# --------------------------------------------------------------------------- #
# Truncation and the external head
# --------------------------------------------------------------------------- #


def test_truncation_is_caught_only_with_the_expected_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    heads: list[tuple[int, str]] = []
    make_log(path, 10, on_append=lambda s, h: heads.append((s, h)))
    head = heads[-1]
    assert verify(path, expected_head=head).ok
    write_lines(path, read_lines(path)[:7])
    assert verify(path).ok  # the chain alone cannot see a cut end
    result = verify(path, expected_head=head)
    assert not result.ok and result.first_bad_line == 8 and result.records == 7
    assert result.reason == ("line 8: the log ends at record 7 but record 10 was recorded as its head; "
                             "records 8 to 10 were removed from the end (the log was truncated)")


def test_truncated_to_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    rec = AuditLog(path).append("x")
    path.write_bytes(b"")
    result = verify(path, expected_head=(rec["seq"], rec["hash"]))
    assert (result.ok, result.first_bad_line) == (False, 1)
    assert "record 1 was removed from the end" in (result.reason or "")


def test_truncated_and_rewritten_end_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = make_log(path, 10)
    head = records(path)[-1]
    write_lines(path, read_lines(path)[:6])
    for _ in range(5):
        log.append("cover.up")
    assert verify(path).ok
    result = verify(path, expected_head=(head["seq"], head["hash"]))
    assert not result.ok and result.first_bad_line == 10
    assert result.reason == ("line 10: record 10 does not have the hash recorded as the head; "
                             "the end of the log was removed and written again from there")


def test_records_after_the_expected_head_are_fine(tmp_path: Path) -> None:
    """The CLI appends without updating the agent's anchor."""
    path = tmp_path / "audit.jsonl"
    log = make_log(path, 3)
    head = records(path)[-1]
    log.append("cli.did.something", actor="cli:root")
    assert verify(path, expected_head=(head["seq"], head["hash"])).ok


# --------------------------------------------------------------------------- #
# Torn writes
# --------------------------------------------------------------------------- #


def test_torn_write_is_recovered_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = make_log(path, 3)
    full = read_lines(path)[0]
    fragment = full[: len(full) // 2]
    with open(path, "ab") as fh:
        fh.write(fragment)
    torn = verify(path)
    assert (torn.ok, torn.first_bad_line, torn.records) == (False, 4, 3)
    assert torn.reason is not None and torn.reason.startswith("line 4: incomplete last line")
    assert list(export(path)) == [line[:-1].decode() for line in read_lines(path)[:3]]

    rec = log.append("after.crash", "web01")
    recs = assert_valid_chain(path, 5)
    recovery = recs[3]
    assert recovery["action"] == "audit.torn_write_recovered"
    assert recovery["details"] == {
        "fragment_base64": base64.b64encode(fragment).decode(),
        "fragment_bytes": len(fragment),
    }
    assert base64.b64decode(recovery["details"]["fragment_base64"]) == fragment
    assert recs[4] == rec and rec["seq"] == 5 and rec["prev"] == recovery["hash"]


def test_file_that_is_only_a_fragment(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"seq":1,"ts":"20')
    AuditLog(path).append("x")
    recs = assert_valid_chain(path, 2)
    assert recs[0]["prev"] == ZERO and recs[0]["details"]["fragment_bytes"] == 17


def test_damaged_last_line_refuses_to_guess(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 2)
    path.write_bytes(path.read_bytes() + b"tampered\n")
    before = path.read_bytes()
    with pytest.raises(AuditError, match="last line is not a valid audit record"):
        AuditLog(path).append("x")
    assert path.read_bytes() == before


def test_append_reads_only_the_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Years of records must not be re-read on every append."""
    path = tmp_path / "audit.jsonl"
    prev, out = ZERO, []
    for seq in range(1, 3_001):
        rec = audit._make_record(seq, "2026-01-01T00:00:00.000000Z", "a", "x", None, {}, prev)
        out.append(audit._line(rec))
        prev = rec["hash"]
    path.write_bytes(b"".join(out))
    read: list[int] = []
    real_read_at = audit._read_at
    monkeypatch.setattr(audit, "_read_at", lambda fd, off, n: read.append(n) or real_read_at(fd, off, n))
    assert AuditLog(path).append("y")["seq"] == 3_001
    assert path.stat().st_size > 500_000 and sum(read) <= 64 * 1024
    assert verify(path).ok


def test_large_records_span_tail_chunks(tmp_path: Path) -> None:
    """The tail reader grows past its first chunk when a record is big."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append("big", None, {"blob": "x" * 200_000})
    log.append("big", None, {"blob": "y" * 150_000})
    log.append("small")
    assert_valid_chain(path, 3)


# --------------------------------------------------------------------------- #
# Export and parse_since
# --------------------------------------------------------------------------- #


def test_export_filters_by_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    stamps = ["2026-11-23T08:00:00.000000Z", "2026-11-23T09:00:00.000000Z",
              "2026-11-23T10:00:00.000000Z", "2026-11-23T12:00:00.000000Z"]
    times = iter(stamps)
    monkeypatch.setattr(audit, "_now_ts", lambda: next(times))
    make_log(path, 4)
    raw = [line[:-1].decode() for line in read_lines(path)]

    assert list(export(path)) == raw
    # 10:00 in Rome is 09:00 UTC in November: inclusive lower bound
    assert list(export(path, since=parse_since("2026-11-23T10:00"))) == raw[1:]
    # naive datetimes are UTC; the upper bound is exclusive
    assert list(export(path, since=datetime(2026, 11, 23, 9), until=datetime(2026, 11, 23, 12))) == raw[1:3]
    assert list(export(path, until=datetime(2026, 11, 23, 8, 0, 0, 1, tzinfo=timezone.utc))) == raw[:1]
    assert list(export(path, since=parse_since("2026-11-24"))) == []


def test_export_keeps_damage_when_unfiltered(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 2)
    path.write_bytes(path.read_bytes() + b"garbage\n")
    assert list(export(path))[-1] == "garbage"
    assert len(list(export(path, since=datetime(2000, 1, 1)))) == 2


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-11-23", datetime(2026, 11, 22, 23, 0, tzinfo=timezone.utc)),
    ("2026-07-01", datetime(2026, 6, 30, 22, 0, tzinfo=timezone.utc)),
    ("2026-11-23T10:00", datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)),
    ("2026-11-23 10:00:30", datetime(2026, 11, 23, 9, 0, 30, tzinfo=timezone.utc)),
    ("2026-11-23T10:00:00+01:00", datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)),
    ("2026-11-23T10:00:00-05:00", datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)),
    (" 2026-11-23T10:00:00.5Z ", datetime(2026, 11, 23, 10, 0, 0, 500000, tzinfo=timezone.utc)),
])
def test_parse_since_forms(text: str, utc: datetime) -> None:
    parsed = parse_since(text)
    assert parsed.tzinfo is not None
    assert parsed == utc


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "23/11/2026", "2026-11-23T25:00",
                                  "2026-11-23T10"])
def test_parse_since_rejects_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_since(text)
    message = str(err.value)
    assert repr(text) in message
    for form in ("2026-11-23 ", "2026-11-23T10:00 ", "2026-11-23T10:00:00+01:00"):
        assert form in message


# --------------------------------------------------------------------------- #
# Verification from a checkpoint, failed writes
# --------------------------------------------------------------------------- #


def test_verify_from_a_start_checks_only_what_follows(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 6)
    whole = verify(path)
    assert whole.head is not None and whole.head.seq == 6 and whole.head.end == path.stat().st_size
    middle = audit.Head(4, records(path)[3]["hash"], sum(len(line) for line in read_lines(path)[:4]))
    lines = read_lines(path)
    lines[0] = lines[0].replace(b'"i":0', b'"i":9')  # before the start: not read
    write_lines(path, lines)
    result = verify(path, expected_head=(6, records(path)[5]["hash"]), start=middle)
    assert (result.ok, result.records) == (True, 6) and result.expected_end == path.stat().st_size
    assert not verify(path).ok
    write_lines(path, read_lines(path)[:3])
    gone = verify(path, start=middle)
    assert not gone.ok and "verified before and kept as the checkpoint" in (gone.reason or "")


def test_a_write_that_fails_half_way_leaves_no_fragment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk mid-write: the half line is cut, a torn fragment already there is put back as it was."""
    path = tmp_path / "audit.jsonl"
    log = make_log(path, 2)
    with open(path, "ab") as fh:
        fh.write(b'{"seq":3,"ts"')
    before = path.read_bytes()
    real_write = os.write
    target = os.stat(path).st_ino

    def half_then_full(fd: int, data: bytes) -> int:
        if os.fstat(fd).st_ino == target and len(data) > 20:
            real_write(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(audit.os, "write", half_then_full)
    with pytest.raises(OSError):
        log.append("lost?")
    monkeypatch.undo()
    assert path.read_bytes() == before
    log.append("after")
    assert [r["action"] for r in assert_valid_chain(path, 4)[2:]] == ["audit.torn_write_recovered", "after"]
