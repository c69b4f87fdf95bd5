"""Append-only, tamper-evident audit log.

Italian municipal contracts ask that the record of what the agent and its
operators did be "complete, unalterable, verifiable, time-stamped and
exportable in an open format".  This module meets that with a hash chain kept
in a plain JSON Lines file:

* open format: one UTF-8 JSON object per line, readable with ``jq``, a text
  editor or any JSON library, no custom binary container;
* time-stamped: every record carries an RFC 3339 UTC time with microseconds;
* verifiable / unalterable: every record carries the SHA-256 of its own
  canonical JSON ("hash") and the hash of the record before it ("prev").
  Editing a record breaks its own hash; removing, inserting or reordering
  records breaks the "prev" link of the record after; removing records from
  the end is the one change a chain cannot see by itself, so the head (seq,
  hash and where its line ends) is kept outside the log, in the state
  database, by a :class:`Keeper`.  Before every append the end of the file
  must match that head; a log that was cut, rewritten or replaced is not
  appended to (records written on top would grow it back past the kept head
  and hide the cut), and what could not be written is held by the keeper and
  written, in order and with its own time, once the log is whole again.
  :func:`verify` takes the head as ``expected_head``, and a ``start`` (the
  last verified record) to check only what was written since.

A record, keys in this order::

    {"seq": 1, "ts": "2026-11-23T18:45:01.123456Z", "actor": "agent",
     "action": "incident.opened", "subject": "web01", "details": {...},
     "prev": "000...000", "hash": "<sha256 hex>"}

"hash" is the SHA-256 of ``json.dumps(record_without_hash, sort_keys=True,
separators=(",", ":"), ensure_ascii=False).encode("utf-8")``, so anyone can
re-check it with a few lines of code in any language.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from custode.agent.clock import ROME, now_utc

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt
else:
    import fcntl

__all__ = [
    "GENESIS_PREV",
    "AuditDiverged",
    "AuditError",
    "AuditLog",
    "Entry",
    "Head",
    "Held",
    "Keeper",
    "VerifyResult",
    "export",
    "make_entry",
    "parse_since",
    "verify",
]

log = logging.getLogger(__name__)

GENESIS_PREV = "0" * 64
"""The "prev" of record 1: there is no record before it."""

KEYS = ("seq", "ts", "actor", "action", "subject", "details", "prev", "hash")
"""Record keys in the order they are written."""

TORN_WRITE_ACTION = "audit.torn_write_recovered"
RELEASED_ACTION = "audit.held_records_released"
"""Written before records that were held while the log could not take them (how many, where, why)."""
NEW_LOG_ACTION = "audit.new_log"
"""Record 1 of a log started by ``custode audit new-log``: the old file, its hash, the head it had lost."""

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
# Windows would otherwise turn "\n" into "\r\n" and change every hash.
_O_BINARY: int = getattr(os, "O_BINARY", 0)
_FILE_MODE = 0o640
_TAIL_CHUNK = 64 * 1024
_MAX_DEPTH = 64


class AuditError(RuntimeError):
    """The audit log cannot be appended to as it stands (say, its last line was
    damaged by hand).  Raised rather than guessing a seq and prev, because a
    guessed chain would look valid and hide the damage."""


# --------------------------------------------------------------------------- #
# Records
# --------------------------------------------------------------------------- #


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 hex over the canonical JSON of ``record`` minus its "hash" key."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def _text(value: str) -> str:
    """Make ``value`` encodable as UTF-8.

    File names and command output decoded with ``surrogateescape`` carry lone
    surrogates, which UTF-8 cannot encode; they are kept visible as
    backslash escapes instead of making the write fail."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Turn ``value`` into plain JSON data, using ``str()`` for anything else.

    An audit write must never crash the agent because a caller passed a
    datetime, a Path, an exception or a self-referencing dict in ``details``;
    ``str()`` keeps the information readable.  NaN and infinities become text
    too, since bare ``NaN`` is not valid JSON and would break other readers."""
    if depth > _MAX_DEPTH:
        return _text(str(value))
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Mapping):
        return {_text(str(k)): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return _text(str(value))


def _now_ts() -> str:
    return now_utc().strftime(_TS_FORMAT)


def _make_record(seq: int, ts: str, actor: str, action: str, subject: str | None,
                 details: Mapping[str, Any], prev: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "seq": seq,
        "ts": ts,
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "prev": prev,
    }
    record["hash"] = _record_hash(record)
    return record


def _line(record: Mapping[str, Any]) -> bytes:
    # json.dumps escapes control characters, so a record never spans lines.
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


# --------------------------------------------------------------------------- #
# Low-level file access
# --------------------------------------------------------------------------- #


@contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` across processes.

    A sibling lock file rather than the log itself: on Windows a locked byte
    cannot even be read, which would stop verify and export while the agent
    writes; on POSIX it costs nothing and keeps one scheme for both."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _O_BINARY, _FILE_MODE)
    try:
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            while True:
                os.lseek(fd, 0, os.SEEK_SET)
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for ~10 s itself
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield  # closing the descriptor releases the lock
    finally:
        os.close(fd)


def _read_at(fd: int, offset: int, size: int) -> bytes:
    """Read ``size`` bytes at ``offset`` (os.pread does not exist on Windows)."""
    os.lseek(fd, offset, os.SEEK_SET)
    parts: list[bytes] = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _read_tail(fd: int, size: int) -> tuple[bytes | None, int]:
    """Return (last complete line without its newline or None, end of that line).

    The second value is the offset just after the last newline: any bytes from
    there to ``size`` are a torn fragment.  Reads backwards in growing chunks
    until two newlines are seen, so the cost depends on the size of the last
    record, not of the log, which grows for years."""
    pos, buf, chunk = size, b"", _TAIL_CHUNK
    while True:
        last = buf.rfind(b"\n")
        if last != -1 and (pos == 0 or buf.rfind(b"\n", 0, last) != -1):
            break
        if pos == 0:
            return None, 0
        step = min(chunk, pos)
        pos -= step
        buf = _read_at(fd, pos, step) + buf
        chunk *= 2
    start = buf.rfind(b"\n", 0, last) + 1  # 0 when the line starts the file
    return buf[start:last], pos + last + 1


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and _HEX64_RE.fullmatch(value) is not None


def _head_of(line: bytes | None, path: Path) -> tuple[int, str]:
    """(seq, hash) of the last record, from its raw line."""
    if line is None:
        return 0, GENESIS_PREV
    try:
        record = json.loads(line.decode("utf-8"))
        seq, digest = record["seq"], record["hash"]
        if type(seq) is int and seq >= 1 and _is_hex64(digest):
            return seq, digest
    except (ValueError, TypeError, KeyError):
        pass
    raise AuditError(
        f"cannot append to audit log {path}: its last line is not a valid audit record, "
        "so the chain cannot be continued; run the audit verify command to see the damage, "
        "keep the file as evidence and start a new log"
    )


# --------------------------------------------------------------------------- #
# Writer
# --------------------------------------------------------------------------- #


class Head(NamedTuple):
    """A record of the log as it is kept outside the log: seq, hash and the byte offset just after its line.

    ``end`` lets a check read that one line back, and a verification start
    right after it, without reading the log from its first byte; it is None
    for an anchor stored before offsets were (the next verification finds it)."""

    seq: int
    hash: str
    end: int | None = None


@dataclass(frozen=True)
class Entry:
    """What a caller asked to record, before it has a place in the chain.

    It is what gets held while the log cannot take it, with its own time, so
    a record written late still says when the thing happened."""

    ts: str
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class Held:
    """An entry kept outside the log until the log can take it; ``held_in`` says where, ``key`` is the keeper's."""

    entry: Entry
    reason: str
    held_in: str
    key: object = None


class Keeper(Protocol):
    """What keeps the log honest from outside it (the state database).

    AuditLog calls it under its thread lock and the exclusive file lock, so
    another process cannot slip a record between the check and the write, nor
    release the same held entries twice."""

    def expected_head(self) -> Head | None:
        """The last record written, as kept outside the log; None when nothing is kept (a new log)."""
        ...

    def held(self) -> Sequence[Held]:
        """Entries that could not be written earlier, oldest first: they go in before any new one."""
        ...

    def written(self, head: Head, released: Sequence[Held]) -> None:
        """After the fsync: ``head`` is the new last record and ``released`` are in the log now."""
        ...


class AuditDiverged(AuditError):
    """The log no longer reaches, or no longer holds, the head kept outside it: it was cut, rewritten or replaced.

    Nothing is appended to such a log: records written on top of a cut end
    would grow it back past the kept head and make the cut invisible."""


def make_entry(action: str, subject: str | None = None, details: Mapping[str, Any] | None = None,
               actor: str = "agent") -> Entry:
    """An entry stamped now, its values made JSON-safe (see :func:`_jsonable`)."""
    if not isinstance(action, str) or not action:
        raise ValueError("audit action must be a non-empty string such as 'incident.opened'")
    data = _jsonable(details) if details is not None else {}
    if not isinstance(data, dict):  # a list or a string passed by mistake is kept, not refused
        data = {"value": data}
    return Entry(_now_ts(), _text(str(actor)), _text(action), None if subject is None else _text(str(subject)), data)


def _lines(fd: int, start: int, stop: int) -> Iterator[tuple[bytes, int]]:
    """Each complete line from ``start`` to ``stop`` without its newline, with the offset just after it."""
    pos, base, buf = start, start, b""
    while pos < stop:
        chunk = _read_at(fd, pos, min(_TAIL_CHUNK, stop - pos))
        if not chunk:
            return
        pos += len(chunk)
        buf += chunk
        idx = 0
        while (nl := buf.find(b"\n", idx)) >= 0:
            yield buf[idx:nl], base + nl + 1
            idx = nl + 1
        buf, base = buf[idx:], base + idx


def _is_head(line: bytes | None, head: Head) -> bool:
    try:
        record = json.loads((line or b"").decode("utf-8"))
        return bool(record["seq"] == head.seq and record["hash"] == head.hash)
    except (ValueError, TypeError, KeyError):
        return False


_FIX = ("Restore the log from a backup that holds record {seq}, or keep this file as evidence and start a new "
        "log with 'custode audit new-log --reason ...'; records are held until then")


class AuditLog:
    """Appends hash-chained records to one JSON Lines file.

    Safe to share between threads and to use from several processes at once
    (the agent and a CLI command): each append takes a thread lock and an
    exclusive file lock, learns the head from the end of the file, writes and
    fsyncs.  Nothing is cached between appends, so another process's records
    are always chained onto, and a log moved aside is never written to.

    With a ``keeper`` (the state database), the end of the file must also
    match the head the keeper kept before anything is appended (count and
    hash, and the offset where that record ends), held entries go in first,
    and the new head goes back to the keeper under the same lock."""

    def __init__(self, path: str | os.PathLike[str], actor: str = "agent",
                 on_append: Callable[[int, str], None] | None = None, keeper: Keeper | None = None) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.actor = actor
        self.on_append = on_append
        self.keeper = keeper
        self._lock = threading.Lock()

    def entry(self, action: str, subject: str | None = None, details: Mapping[str, Any] | None = None,
              *, actor: str | None = None) -> Entry:
        return make_entry(action, subject, details, self.actor if actor is None else actor)

    def append(self, action: str, subject: str | None = None,
               details: Mapping[str, Any] | None = None, *, actor: str | None = None) -> dict[str, Any]:
        """Write one record and return it.

        ``details`` values that JSON cannot carry are stored as ``str()`` of
        themselves.  If the file ends in a fragment left by a crash mid-write,
        the fragment is moved into an ``audit.torn_write_recovered`` record
        first, so the chain stays valid and no byte is lost.  ``on_append`` is
        called with the new (seq, hash) after the data is on disk, in seq
        order (it runs under the thread lock, so it must not append to this
        log itself); its errors are logged, not raised, because the record is
        already written.  With a keeper, :class:`AuditDiverged` means nothing
        was written because the log was cut or rewritten."""
        return self.append_entry(self.entry(action, subject, details, actor=actor))

    def append_entry(self, entry: Entry) -> dict[str, Any]:
        """Write an entry made earlier (:meth:`entry`), with its own time."""
        with self._lock:
            record = self._write([entry])[-1]
            if self.on_append is not None:
                try:
                    self.on_append(record["seq"], record["hash"])
                except Exception as exc:  # noqa: BLE001 - the record is written; do not lose it
                    log.error("audit on_append callback failed; the record is written",
                              extra={"audit_log": str(self.path), "seq": record["seq"], "error": str(exc)})
        return record

    def release(self) -> list[dict[str, Any]]:
        """Write the keeper's held entries now; with none, only check that an append would succeed.

        The health probe calls it: a log that was fixed gets its held records
        back without waiting for the next event, and one that broke is found
        within a probe interval.  Raises like :meth:`append`."""
        with self._lock:
            return self._write([])

    def start_new_log(self, entry: Callable[[Path | None], Entry], keep_as: Path | None,
                      reset: Callable[[], None]) -> dict[str, Any]:
        """Move the current file to ``keep_as``, let ``reset`` forget its head, write ``entry(kept)`` as record 1.

        All under the file lock, so no other writer sees the log missing in
        between and starts a chain of its own, and ``entry`` describes the
        old file exactly as it was moved."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _exclusive_lock(self.lock_path):
                kept = None
                if keep_as is not None and self.path.exists():
                    os.replace(self.path, keep_as)
                    kept = keep_as
                first = entry(kept)
                reset()
                return self._write_under_lock([first], lead=True)[0]

    def _write(self, entries: list[Entry]) -> list[dict[str, Any]]:
        if entries:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.lock_path):
            return self._write_under_lock(entries)

    def _write_under_lock(self, entries: list[Entry], lead: bool = False) -> list[dict[str, Any]]:
        """Check the tail, then write held entries and ``entries`` (``lead``: ``entries`` first) in one write."""
        keeper = self.keeper
        expected = keeper.expected_head() if keeper is not None else None
        held = list(keeper.held()) if keeper is not None else []
        exists = self.path.exists()
        if not exists and expected is not None and expected.seq > 0:
            raise AuditDiverged(
                f"audit log {self.path} is missing, but the state database says {expected.seq} records were "
                f"written to it: it was deleted or moved. " + _FIX.format(seq=expected.seq))
        if not entries and not held:
            self._check_writable(exists)
            if exists:
                fd = os.open(self.path, os.O_RDONLY | _O_BINARY)
                try:
                    size = os.fstat(fd).st_size
                    last_line, end = _read_tail(fd, size)
                    seq, prev = _head_of(last_line, self.path)
                    problem = self._tail_problem(fd, end, seq, prev, expected)
                finally:
                    os.close(fd)
                if problem:
                    raise AuditDiverged(problem)
            return []
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _O_BINARY, _FILE_MODE)
        try:
            if not exists:
                self._sync_dir()
            size = os.fstat(fd).st_size
            last_line, end = _read_tail(fd, size)
            seq, prev = _head_of(last_line, self.path)
            problem = self._tail_problem(fd, end, seq, prev, expected)
            if problem:
                raise AuditDiverged(problem)
            actor = entries[0].actor if entries else self.actor
            ts = entries[0].ts if entries else _now_ts()
            records: list[dict[str, Any]] = []
            fragment = b""
            if end < size:
                fragment = _read_at(fd, end, size - end)
                # Only the unfinished line goes; it is re-written in full
                # (base64) by the record below, in the same write.
                os.ftruncate(fd, end)
                records.append(_make_record(seq + 1, ts, actor, TORN_WRITE_ACTION, None, {
                    "fragment_base64": base64.b64encode(fragment).decode("ascii"),
                    "fragment_bytes": len(fragment),
                }, prev))
                seq, prev = records[-1]["seq"], records[-1]["hash"]
                log.warning("audit log %s ended in a %d-byte torn write; recovered as record %d",
                            self.path, len(fragment), seq)
            batch: list[Entry] = list(entries) if lead else []
            if held:
                batch.append(Entry(ts, self.actor, RELEASED_ACTION, None, {
                    "count": len(held),
                    "held_in": sorted({h.held_in for h in held}),
                    "first_ts": held[0].entry.ts, "last_ts": held[-1].entry.ts,
                    "reasons": list(dict.fromkeys(h.reason for h in held))[:5],
                }))
                batch += [h.entry for h in held]
            batch += [] if lead else entries
            for item in batch:
                records.append(_make_record(seq + 1, item.ts, item.actor, item.action, item.subject,
                                            item.details, prev))
                seq, prev = records[-1]["seq"], records[-1]["hash"]
            payload = b"".join(_line(record) for record in records)
            try:
                written = os.write(fd, payload)  # one write: O_APPEND puts it at the end
                while written < len(payload):  # short writes are rare on files; finish under the lock
                    written += os.write(fd, payload[written:])
            except OSError:
                _undo_partial(fd, end, fragment)
                raise
            os.fsync(fd)
        finally:
            os.close(fd)
        if keeper is not None:
            try:
                keeper.written(Head(seq, prev, end + len(payload)), held)
            except Exception as exc:  # noqa: BLE001 - the records are on disk; the keeper logs its own trouble
                log.error("audit keeper failed after a write; the records are in the log",
                          extra={"audit_log": str(self.path), "seq": seq, "error": str(exc)})
        return records

    def _check_writable(self, exists: bool) -> None:
        """Raise the OSError an append would meet (read-only mount, permissions), without writing a byte."""
        if exists:
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | _O_BINARY))
        elif not os.access(self.path.parent, os.W_OK):
            code = errno.EROFS if _read_only_dir(self.path.parent) else errno.EACCES
            raise OSError(code, os.strerror(code), str(self.path.parent))

    def _tail_problem(self, fd: int, end: int, seq: int, digest: str, expected: Head | None) -> str | None:
        """Why the file's last record does not continue the kept head, or None when it does."""
        if expected is None or expected.seq <= 0:
            return None
        where = f"audit log {self.path}"
        fix = _FIX.format(seq=expected.seq)
        if seq < expected.seq:
            gone = (f"record {expected.seq} was" if seq + 1 == expected.seq
                    else f"records {seq + 1} to {expected.seq} were")
            return (f"{where} ends at record {seq}, but record {expected.seq} was written to it: {gone} cut off "
                    f"its end. {fix}")
        if seq == expected.seq:
            if digest != expected.hash:
                return (f"{where}: its last record {seq} is not the one written (its hash differs from the head "
                        f"kept in the state database): the end of the log was cut and written again. {fix}")
            if expected.end is not None and expected.end != end:
                return (f"{where}: its records up to {seq} take {end} bytes, not the {expected.end} written: "
                        f"records before the last one were changed. {fix}")
            return None
        return self._continues_from(fd, end, expected, fix)

    def _continues_from(self, fd: int, end: int, expected: Head, fix: str) -> str | None:
        """Records after the kept head (another writer's, or written just before a crash) must chain onto it.

        With the head's offset only those records are read; without it (an
        anchor from before offsets were kept) the file is scanned once."""
        where = f"audit log {self.path}"
        found = expected.end is not None
        start, prev_seq, prev_hash = (expected.end, expected.seq, expected.hash) if found else (0, 0, GENESIS_PREV)
        if expected.end is not None:
            line, line_end = _read_tail(fd, expected.end) if expected.end <= end else (None, -1)
            if line_end != expected.end or not _is_head(line, expected):
                return (f"{where}: record {expected.seq}, the head kept in the state database, is no longer where "
                        f"it was written (ending at byte {expected.end}): the log was cut and written again. {fix}")
        for raw, _ in _lines(fd, start or 0, end):
            try:
                record = _parse_record(raw)
            except _BadLine as exc:
                return f"{where}: the line after record {prev_seq}: {exc}. {fix}"
            if not found:
                if record["seq"] == expected.seq:
                    if record["hash"] != expected.hash:
                        return (f"{where}: record {expected.seq} is not the one written (its hash differs from "
                                f"the head kept in the state database): the log was rewritten. {fix}")
                    found = True
                prev_seq, prev_hash = record["seq"], record["hash"]
                continue
            problem = _chain_problem(prev_seq + 1, record, prev_seq, prev_hash)
            if problem:
                return f"{where}, after record {expected.seq} (the head kept in the state database): {problem}. {fix}"
            prev_seq, prev_hash = record["seq"], record["hash"]
        if not found:
            return f"{where} holds no record {expected.seq}, the head kept in the state database. {fix}"
        return None

    def _sync_dir(self) -> None:
        """Make a newly created log survive a power cut (POSIX only)."""
        if os.name == "nt":  # pragma: no cover
            return
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _undo_partial(fd: int, end: int, fragment: bytes) -> None:
    """A write that failed half-way (a full disk): cut what it left, put a torn fragment back as it was.

    The caller keeps the records it could not write, so a half-written line
    must not stay behind to be recovered a second time; the fragment fits
    again, since the space it took was just freed."""
    try:
        os.ftruncate(fd, end)
        if fragment:
            os.write(fd, fragment)
    except OSError as exc:  # the log is left as the failed write left it; the next append recovers a fragment
        log.error("cannot undo a failed audit write", extra={"error": str(exc)})


def _read_only_dir(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # pragma: no cover - Windows has no statvfs
        return False


# --------------------------------------------------------------------------- #
# Verifier
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`.

    ``records`` counts the records found good, up to the first bad line.
    ``first_bad_line`` is a 1-based line of the file; ``reason`` is a sentence
    for a sysadmin that names that line."""

    ok: bool
    records: int
    first_bad_line: int | None = None
    reason: str | None = None
    head: Head | None = field(default=None, compare=False)
    """The last good record, with the offset after its line: where the next verification can start."""
    expected_end: int | None = field(default=None, compare=False)
    """Where the expected head's line ends, when it was found (for an anchor kept without its offset)."""
    torn: bool = field(default=False, compare=False)
    """The one problem is an unfinished last line, which the next append recovers without loss."""


class _BadLine(Exception):
    """A line that is not a well-formed record; the message is the reason."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys and other tools the first:
    # a duplicate could show one reader a different record than the hash covers.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _BadLine(f'key "{key}" appears twice')
        obj[key] = value
    return obj


def _parse_ts(value: Any) -> datetime:
    if not isinstance(value, str) or not _TS_RE.fullmatch(value):
        raise ValueError(value)
    return datetime.strptime(value, _TS_FORMAT).replace(tzinfo=timezone.utc)


def _parse_record(raw: bytes) -> dict[str, Any]:
    """Parse one line (without newline) into a record, or raise _BadLine."""
    if not raw.strip():
        raise _BadLine("empty line, not a record")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadLine("not valid UTF-8 text") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise _BadLine(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise _BadLine("not a JSON object")
    for kind, keys in (("missing", [k for k in KEYS if k not in obj]),
                       ("unexpected", [k for k in obj if k not in KEYS])):
        if keys:
            raise _BadLine(f"{kind} key(s) " + ", ".join(f'"{k}"' for k in keys))
    checks: list[tuple[str, bool, str]] = [
        ("seq", type(obj["seq"]) is int and obj["seq"] >= 1, "a whole number from 1"),
        ("actor", isinstance(obj["actor"], str), "a string"),
        ("action", isinstance(obj["action"], str), "a string"),
        ("subject", obj["subject"] is None or isinstance(obj["subject"], str), "a string or null"),
        ("details", isinstance(obj["details"], dict), "a JSON object"),
        ("prev", _is_hex64(obj["prev"]), "64 lowercase hex digits"),
        ("hash", _is_hex64(obj["hash"]), "64 lowercase hex digits"),
    ]
    for key, good, want in checks:
        if not good:
            raise _BadLine(f'"{key}" must be {want}')
    try:
        _parse_ts(obj["ts"])
    except ValueError:
        raise _BadLine('"ts" is not a UTC time like 2026-11-23T18:45:01.123456Z') from None
    return obj


def _chain_problem(n: int, record: Mapping[str, Any], prev_seq: int, prev_hash: str) -> str | None:
    """Why the record on line ``n`` does not follow the one before it, if it does not."""
    if record["hash"] != _record_hash(record):
        return f"line {n}: record content does not match its hash (the record was edited)"
    seq = record["seq"]
    if seq == prev_seq + 1:
        seq_note = ""
    elif seq == prev_seq + 2:
        seq_note = f"; seq goes from {prev_seq} to {seq}, so record {prev_seq + 1} is missing here"
    elif seq > prev_seq:
        seq_note = f"; seq goes from {prev_seq} to {seq}, so records {prev_seq + 1} to {seq - 1} are missing here"
    else:
        seq_note = f"; seq goes from {prev_seq} back to {seq}, out of order"
    if n == 1:
        if record["prev"] != GENESIS_PREV:
            return (f"line 1: prev hash should be 64 zeros for the first record "
                    f"(records at the start of the log were removed); it has seq {seq}")
        if seq != 1:
            return f"line 1: the first record has seq {seq}, not 1"
        return None
    if record["prev"] != prev_hash:
        return (f"line {n}: prev hash does not match line {n - 1} "
                f"(a record before it was removed, inserted or reordered){seq_note}")
    if seq_note:
        return f"line {n}: seq {seq} does not follow seq {prev_seq}{seq_note}"
    return None


def verify(path: str | os.PathLike[str], expected_head: tuple[int, str] | Head | None = None, *,
           start: Head | None = None) -> VerifyResult:
    """Check the chain and stop at the first bad line.

    Times may go backwards between records (NTP steps, a VM restored), so only
    their format is checked.  ``expected_head`` is the (seq, hash) kept outside
    the log (the state database's anchor): a log that no longer reaches that
    seq, or holds a different record there, was cut or rewritten at the end,
    the one change the chain alone cannot show.  Records after the expected
    head are fine: another process or a crash before the head was stored
    explain them, and they are chained like any other.

    ``start`` is a record verified before, with the offset after its line
    (the state database's checkpoint): that line is read back to confirm it
    is still there, and only what follows it is checked, so a start-up costs
    what was written since the last one, not the years before.  Without it
    the whole file is read (``custode audit verify``)."""
    file = Path(path)
    if not file.exists():
        return VerifyResult(False, 0, None, f"audit log {file} does not exist")
    records, prev_seq, prev_hash, offset, first = 0, 0, GENESIS_PREV, 0, 1
    head_seq = expected_head[0] if expected_head is not None else 0
    head_hash_found: str | None = None
    expected_end: int | None = None
    with open(file, "rb") as fh:
        if start is not None and start.seq > 0 and start.end is not None:
            size = os.fstat(fh.fileno()).st_size
            line, line_end = _read_tail(fh.fileno(), start.end) if start.end <= size else (None, -1)
            if line_end != start.end or not _is_head(line, start):
                return VerifyResult(False, 0, start.seq, (
                    f"line {start.seq}: record {start.seq}, verified before and kept as the checkpoint in the "
                    f"state database (its line ended at byte {start.end}), is no longer there: the log was cut "
                    f"or rewritten before it (the file has {size} bytes now)"))
            fh.seek(start.end)
            records, prev_seq, prev_hash, offset, first = start.seq, start.seq, start.hash, start.end, start.seq + 1
            if head_seq < start.seq:
                head_seq = 0  # verified up to the checkpoint already; the anchor lies behind it
            elif head_seq == start.seq:
                head_hash_found, expected_end = start.hash, start.end
        n = first - 1
        for n, raw in enumerate(fh, start=first):
            good = Head(prev_seq, prev_hash, offset) if records else None
            if not raw.endswith(b"\n"):
                return VerifyResult(False, records, n, (
                    f"line {n}: incomplete last line ({len(raw)} bytes with no newline): "
                    f"a write was interrupted; the next append moves it into an "
                    f"{TORN_WRITE_ACTION} record"), good, expected_end, torn=True)
            try:
                record = _parse_record(raw[:-1])
            except _BadLine as exc:
                return VerifyResult(False, records, n, f"line {n}: {exc}", good)
            problem = _chain_problem(n, record, prev_seq, prev_hash)
            if problem:
                return VerifyResult(False, records, n, problem, good)
            records, prev_seq, prev_hash, offset = records + 1, record["seq"], record["hash"], offset + len(raw)
            if head_seq and prev_seq == head_seq:
                head_hash_found, expected_end = prev_hash, offset
    head = Head(prev_seq, prev_hash, offset) if records else None
    if expected_head is not None and head_seq > 0:
        if records < head_seq:
            gone = f"record {head_seq} was" if records + 1 == head_seq else f"records {records + 1} to {head_seq} were"
            return VerifyResult(False, records, n + 1, (
                f"line {n + 1}: the log ends at record {records} but record {head_seq} was recorded "
                f"as its head; {gone} removed from the end (the log was truncated)"), head)
        if head_hash_found != expected_head[1]:
            return VerifyResult(False, records, head_seq, (
                f"line {head_seq}: record {head_seq} does not have the hash recorded as the head; "
                f"the end of the log was removed and written again from there"), head)
    return VerifyResult(True, records, head=head, expected_end=expected_end)


# --------------------------------------------------------------------------- #
# Export and time parsing
# --------------------------------------------------------------------------- #


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def export(path: str | os.PathLike[str], since: datetime | None = None,
           until: datetime | None = None) -> Iterator[str]:
    """Yield the raw JSON lines (without newline) with ``since <= ts < until``.

    Lines are passed through byte for byte (not re-serialised) so their hashes
    stay checkable by the receiver.  Naive datetimes are taken as UTC, like
    the stored times; :func:`parse_since` returns aware ones for user input.
    Without bounds every complete line is yielded, damaged ones included, so
    a full export is a faithful copy; with bounds a line whose time cannot be
    read cannot be placed and is skipped with a warning (run :func:`verify`
    for integrity).  An unfinished last line is never yielded: it is not a
    record yet, and the next append preserves it."""
    low = None if since is None else _as_utc(since)
    high = None if until is None else _as_utc(until)
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return
            text = raw[:-1].decode("utf-8", "replace")
            if low is None and high is None:
                yield text
                continue
            try:
                ts = _parse_ts(json.loads(text)["ts"])
            except (ValueError, TypeError, KeyError):
                log.warning("audit export: line %d of %s has no readable time; skipped", n, path)
                continue
            if (low is None or ts >= low) and (high is None or ts < high):
                yield text


_SINCE_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?"
)
_SINCE_FORMS = ("2026-11-23 (midnight, Italian time), 2026-11-23T10:00 (Italian time), "
                "2026-11-23T10:00:00+01:00 (explicit offset; Z for UTC)")


def _rome(local: datetime) -> datetime:
    # Windows has no system tz database; the tzdata package (a dependency there) provides it.
    return local.replace(tzinfo=ROME)


def parse_since(text: str) -> datetime:
    """Parse a time typed by a sysadmin into an aware datetime.

    The sysadmins are in Italy, so a date or time without an offset means
    Italian wall time (Europe/Rome, with summer time), and a bare date means
    midnight there; an explicit offset or Z is honoured as written."""
    cleaned = text.strip() if isinstance(text, str) else ""
    if _SINCE_RE.fullmatch(cleaned):
        try:
            moment = datetime.fromisoformat(cleaned)
        except ValueError:
            pass
        else:
            return _rome(moment) if moment.tzinfo is None else moment
    raise ValueError(f"cannot read {text!r} as a time; use one of: {_SINCE_FORMS}")


AuditWriter = Callable[[str, str | None, dict], None]
"""What features are handed to write audit records: (action, subject, details)."""


def tolerant_writer(audit: AuditLog) -> AuditWriter:
    """``append`` that logs instead of raising: a damaged audit log must not stop monitoring or an update."""
    def write(action: str, subject: str | None, details: dict) -> None:
        try:
            audit.append(action, subject, details)
        except Exception as exc:  # noqa: BLE001 - reported loudly, never fatal
            log.error("cannot write the audit log; run 'custode audit verify' to find the damage",
                      extra={"audit_log": str(audit.path), "error": str(exc), "action": action})
    return write

