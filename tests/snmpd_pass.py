"""A ``pass_persist`` program for net-snmp's snmpd: serves one subtree from a JSON state file.

snmpd starts it once per ``pass_persist`` line (``snmpd_pass.py STATE ROOT``)
and talks net-snmp's pass_persist protocol on stdin/stdout: ``PING`` ->
``PONG``; ``get``/``getnext`` then an OID -> the OID, its type and value on
three lines, or ``NONE``; ``set`` -> ``not-writable``.

The state file is ``{"objects": [[oid, type, value], ...]}`` with pass types
(``integer``, ``gauge``, ``counter``, ``counter64``, ``timeticks``,
``string``, ``octet`` (hex bytes), ``objectid``). It is read again whenever
it changes, so a test flips a value by rewriting it (tests/snmpd.py writes it
atomically). ``"delay": [OID prefix, seconds]`` makes the first answer about
OIDs under the prefix (once per state file) wait that long (snmpd waits for its pass programs, so
the whole agent stalls, like an overloaded switch). Only OIDs under ROOT are
served: snmpd asks this process only about ROOT, and an answer outside it
would break the agent's ordering.
"""

from __future__ import annotations

import json
import os
import sys
import time
from bisect import bisect_left, bisect_right


def oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in oid.strip().strip(".").split(".") if part)


class State:
    def __init__(self, path: str, root: str) -> None:
        self.path = path
        self.root = oid_key(root)
        self.stamp: tuple[int, int] | None = None
        self.keys: list[tuple[int, ...]] = []
        self.rows: list[tuple[str, str, str]] = []
        self.delay: tuple[tuple[int, ...], float] | None = None
        self.stalled: tuple[int, int] | None = None

    def load(self) -> None:
        try:
            info = os.stat(self.path)
        except OSError:
            self.keys, self.rows, self.stamp = [], [], None
            return
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self.stamp:
            return
        with open(self.path, encoding="utf-8") as handle:
            state = json.load(handle)
        objects = state.get("objects", [])
        delay = state.get("delay")
        self.delay = (oid_key(delay[0]), float(delay[1])) if delay else None
        served = sorted((oid_key(oid), kind, str(value)) for oid, kind, value in objects
                        if oid_key(oid)[:len(self.root)] == self.root)
        self.keys = [key for key, _, _ in served]
        self.rows = [("." + ".".join(map(str, key)), kind, value) for key, kind, value in served]
        self.stamp = stamp

    def stall(self, oid: tuple[int, ...]) -> None:
        """A slow device: sleep before the first answer about OIDs under the state's ``delay`` prefix.

        Once per state file: snmpd asks a pass program once per value, so stalling each would block the
        agent for as many times as a GETBULK has values under the prefix."""
        if self.delay is not None and oid[:len(self.delay[0])] == self.delay[0] and self.stalled != self.stamp:
            self.stalled = self.stamp
            time.sleep(self.delay[1])

    def get(self, oid: tuple[int, ...]) -> tuple[str, str, str] | None:
        self.load()
        at = bisect_left(self.keys, oid)
        return self.rows[at] if at < len(self.keys) and self.keys[at] == oid else None

    def get_next(self, oid: tuple[int, ...]) -> tuple[str, str, str] | None:
        self.load()
        at = bisect_right(self.keys, oid)
        return self.rows[at] if at < len(self.keys) else None


def main() -> int:
    state = State(sys.argv[1], sys.argv[2])
    out = sys.stdout
    for line in sys.stdin:
        command = line.strip()
        if command == "PING":
            out.write("PONG\n")
        elif command in ("get", "getnext"):
            oid = oid_key(sys.stdin.readline())
            state.load()
            state.stall(oid)
            row = state.get(oid) if command == "get" else state.get_next(oid)
            out.write("NONE\n" if row is None else "\n".join(row) + "\n")
        elif command == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out.write("not-writable\n")
        elif not command:
            return 0
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
