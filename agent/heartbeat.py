"""The running agent's heartbeat in the state DB, and what ``custode status`` concludes from it.

A state DB alone cannot say whether anyone is still writing it: a stopped
agent's last collector runs and "no open incidents" look the same as a
healthy running one's. So the agent writes one row every
:data:`BEAT_EVERY` seconds (its pid, config, address, start) and marks it
stopped when it stops; ``status`` reads it and says "running", "stopped" or
"not running (last seen …)", and exits non-zero unless it is running.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

from custode.agent.state import State

BEAT_EVERY = 15.0
STALE_AFTER = 3 * BEAT_EVERY + 15
"""Seconds without a beat after which an agent that did not say it stopped is taken as gone (killed, crashed)."""


@dataclass(frozen=True)
class AgentSeen:
    pid: int
    hostname: str
    config: str
    listen: str
    version: str
    started_at: float
    seen_at: float
    stopped_at: float | None

    def running(self, now: float, hostname: str | None = None) -> bool:
        """A fresh beat, not marked stopped, and (on this host) a live process with that pid."""
        if self.stopped_at is not None or now - self.seen_at > STALE_AFTER:
            return False
        if hostname is not None and hostname == self.hostname:
            return _alive(self.pid)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return True  # Windows: os.kill(pid, 0) is not a probe; trust the beat's freshness
    return True


def beat(state: State, *, pid: int, hostname: str, config: str, listen: str, version: str, started_at: float,
         now: float, stopped: bool = False) -> None:
    with state.transaction() as db:
        db.execute("""INSERT INTO agent_heartbeat (id, pid, hostname, config, listen, version, started_at, seen_at,
                                                   stopped_at)
                      VALUES (1, :pid, :hostname, :config, :listen, :version, :started_at, :now, :stopped_at)
                      ON CONFLICT(id) DO UPDATE SET pid = :pid, hostname = :hostname, config = :config,
                          listen = :listen, version = :version, started_at = :started_at, seen_at = :now,
                          stopped_at = :stopped_at""",
                   {"pid": pid, "hostname": hostname, "config": config, "listen": listen, "version": version,
                    "started_at": started_at, "now": now, "stopped_at": now if stopped else None})


def last_seen(state: State) -> AgentSeen | None:
    try:
        rows = state.query("SELECT * FROM agent_heartbeat WHERE id = 1")
    except sqlite3.OperationalError:  # an older schema opened read-only
        return None
    if not rows:
        return None
    row = rows[0]
    return AgentSeen(int(row["pid"]), row["hostname"], row["config"], row["listen"], row["version"],
                     float(row["started_at"]), float(row["seen_at"]),
                     None if row["stopped_at"] is None else float(row["stopped_at"]))


def other_agents(own_config: str) -> list[tuple[int, str]]:
    """(pid, config) of ``custode run`` processes on this host with another config (Linux /proc only).

    What a sysadmin needs when ``status`` reads a state DB no agent uses:
    the command line of the agent that does run.
    """
    found: list[tuple[int, str]] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
        except OSError:
            continue
        if "run" not in argv or not any(part.endswith(("custode", "custode.agent")) for part in argv):
            continue
        config = "<default>"
        for flag in ("--config", "-c"):
            if flag in argv and argv.index(flag) + 1 < len(argv):
                config = argv[argv.index(flag) + 1]
        if config != own_config:
            found.append((int(entry), config))
    return sorted(found)
