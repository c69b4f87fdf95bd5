"""Running a backup tool: bounded, prompt-free, timeout-bound subprocesses and what restic and borg share.

Secrets are redacted from every message, path arguments are chunked below
ARG_MAX, and timestamps keep nanoseconds so an unchanged file's mtime compares
equal to the source's with no tolerance.
"""

from __future__ import annotations

import calendar
import collections
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from custode.agent.restore.model import RestoreError

log = logging.getLogger(__name__)

STDERR_LIMIT = 64 * 1024
"""Bytes of a tool's stderr kept for messages (the tail: the fatal line comes last)."""
STDOUT_LIMIT = 64 * 1024 * 1024
"""Bytes of stdout kept when no line callback consumes it (``snapshots --json`` of a big repository)."""
ARGV_BUDGET = 96 * 1024
"""Bytes of path arguments per invocation: far below Linux's ARG_MAX, so 1000 long paths split in a few runs."""
_READER_JOIN = 5.0


@dataclass(frozen=True)
class ToolRun:
    """What one tool invocation produced (stdout only when no line callback consumed it)."""

    exit_code: int | None
    """None when the run was stopped by its timeout."""
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def tail(self, lines: int = 3) -> str:
        """The last lines of stderr, joined, for one-line messages."""
        kept = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return " | ".join(kept[-lines:])


class _TailBuffer:
    """Keeps the last ``limit`` bytes of text lines, so the tool's final complaint always survives."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lines: collections.deque[str] = collections.deque()
        self.size = 0
        self.dropped = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line)
        while self.size > self.limit and len(self.lines) > 1:
            self.size -= len(self.lines.popleft())
            self.dropped += 1

    def text(self) -> str:
        head = f"[… {self.dropped} earlier lines not kept]\n" if self.dropped else ""
        return head + "\n".join(self.lines)


def _pump(stream, sink: Callable[[str], None], failures: list[BaseException]) -> None:
    """Feed each line to ``sink``; a failing sink is recorded (run_tool re-raises it) and the pipe kept drained,
    so the tool never blocks on a full pipe."""
    try:
        for raw in iter(stream.readline, b""):
            if failures:
                continue
            try:
                sink(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            except Exception as exc:  # noqa: BLE001 - re-raised by run_tool in the caller's thread
                failures.append(exc)
    except (OSError, ValueError):
        pass  # the pipe was closed by run_tool after a timeout (a grandchild kept it open)


def run_tool(argv: list[str], *, env: dict[str, str], timeout: float, package: str, cwd: str | None = None,
             on_stdout_line: Callable[[str], None] | None = None,
             on_stderr_line: Callable[[str], None] | None = None) -> ToolRun:
    """Run a backup tool with no stdin and no terminal, bounded in time and in memory.

    ``start_new_session`` detaches the tool from any controlling terminal, so a
    tool that would ask for a password on ``/dev/tty`` (borg via getpass,
    restic) gets end-of-file instead and fails with a message; the timeout
    kills the whole process group (ssh children of sftp/ssh repositories too).
    A missing binary is a :class:`RestoreError` naming the Debian package.
    """
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=cwd, start_new_session=True)
    except FileNotFoundError:
        raise RestoreError(f"{argv[0]} not found: install the Debian package {package} "
                           f"(apt-get install {package}) or set 'binary' to the tool's path") from None
    except PermissionError:
        raise RestoreError(f"{argv[0]} cannot be executed (permission denied): check the file's mode, or set "
                           "'binary' to a working installation") from None
    except OSError as exc:
        raise RestoreError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    out_lines: list[str] = []
    out_size = [0]

    def keep_stdout(line: str) -> None:
        if out_size[0] < STDOUT_LIMIT:
            out_lines.append(line)
            out_size[0] += len(line) + 1

    errors = _TailBuffer(STDERR_LIMIT)

    def keep_stderr(line: str) -> None:
        errors.add(line)
        if on_stderr_line is not None:
            on_stderr_line(line)

    failures: list[BaseException] = []
    readers = [threading.Thread(target=_pump, args=(proc.stdout, on_stdout_line or keep_stdout, failures),
                                daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, keep_stderr, failures), daemon=True)]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        proc.wait(timeout=max(timeout, 0.001))
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    for reader in readers:
        reader.join(timeout=_READER_JOIN)
    for stream in (proc.stdout, proc.stderr):
        stream.close()
    if failures:
        raise failures[0]
    return ToolRun(exit_code=None if timed_out else proc.returncode, stdout="\n".join(out_lines),
                   stderr=errors.text(), seconds=time.monotonic() - started, timed_out=timed_out)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Remove passwords, and credentials embedded in repository URLs, from a message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(://[^/@:\s]+):[^/@\s]+@", r"\1:***@", text)


def chunked(items: list[str], cost: Callable[[str], int] = len, budget: int = ARGV_BUDGET) -> Iterator[list[str]]:
    """Split arguments into runs whose total size stays within ``budget`` (at least one item per run)."""
    batch: list[str] = []
    size = 0
    for item in items:
        weight = cost(item) + 1
        if batch and size + weight > budget:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += weight
    if batch:
        yield batch


_TIMESTAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*(Z|[+-]\d\d:?\d\d)?$")


def parse_timestamp(text: str) -> float:
    """RFC 3339 / ISO 8601 to epoch seconds, keeping nanoseconds (restic writes 9 fractional digits).

    The result equals ``st_mtime_ns / 1e9`` for the same instant, so an
    unchanged file compares equal with no tolerance. A timestamp without an
    offset is read as UTC (borg runs with ``TZ=UTC`` for that reason).
    """
    match = _TIMESTAMP.match(text.strip())
    if not match:
        raise ValueError(f"unrecognised timestamp {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    seconds = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0))
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    nanos = int((fraction or "").ljust(9, "0")[:9])
    return (seconds * 1_000_000_000 + nanos) / 1e9


def find_named_path(line: str, candidates: dict[str, str]) -> str | None:
    """The value of the longest candidate path that ``line`` mentions as a whole path (followed by ``:``,
    ``,``, a space, a quote or the end of the line), so ``/a/b.txt`` is not found in ``/a/b.txt.bak``."""
    best: tuple[int, str] | None = None
    for text, value in candidates.items():
        start = line.find(text)
        while start >= 0:
            end = start + len(text)
            if end == len(line) or line[end] in ":, \t'\"":
                if best is None or len(text) > best[0]:
                    best = (len(text), value)
                break
            start = line.find(text, start + 1)
    return best[1] if best else None


def path_within(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or below it (``/``-separated, no trailing slash)."""
    return root in ("", "/") or path == root or path.startswith(root + "/")


def covers(included: str, root: str) -> bool:
    """True when a backed-up path and the set's source root overlap (one contains the other)."""
    return path_within(root, included) or path_within(included, root)


