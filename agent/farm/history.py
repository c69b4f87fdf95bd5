"""Daily aggregates per polled host: what the yearly analysis report of a comune's servers reads.

One row per host and day (Europe/Rome), updated in place by every poll of
that day, so 400 days of 500 hosts are 200,000 small rows however often the
hosts are polled. The row keeps what the report asks for: availability,
resource use (average and peak), the tightest moment of each disk, antivirus
and Windows Update state, disk health, failed services and errors.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from typing import Any

from custode.agent.calendar import ROME
from custode.agent.farm.poller import PollResult


def day_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, ROME).date().isoformat()


def _stat(slot: dict[str, Any] | None, value: float) -> dict[str, Any]:
    """Running sum, count and maximum: enough for a daily average and peak."""
    slot = dict(slot or {"sum": 0.0, "n": 0, "max": value})
    slot["sum"] += value
    slot["n"] += 1
    slot["max"] = max(slot["max"], value)
    return slot


def _bump_max(data: dict[str, Any], key: str, value: float | None) -> None:
    if value is not None:
        data[key] = max(data.get(key, value), value)


def merge(data: dict[str, Any], result: PollResult) -> dict[str, Any]:
    """``data`` (one host's day so far) with ``result`` folded in; pure, for tests."""
    data = json.loads(json.dumps(data))  # a deep copy of plain JSON
    snap = result.snapshot
    if snap is None:
        errors = data.setdefault("errors", {})
        text = (result.error or "unknown")[:160]
        if text in errors or len(errors) < 5:
            errors[text] = errors.get(text, 0) + 1
        return data
    data["os"] = snap.os.name
    if result.cpu_busy_ratio is not None:
        data["cpu"] = _stat(data.get("cpu"), round(100 * result.cpu_busy_ratio, 2))
    used = snap.memory_used_percent
    if used is not None:
        data["memory"] = _stat(data.get("memory"), round(used, 2))
        data["memory_total_bytes"] = snap.memory_total_bytes
    filesystems = data.setdefault("filesystems", {})
    for fs in snap.filesystems:
        if fs.size_bytes <= 0:
            continue
        free = round(100 * fs.avail_bytes / fs.size_bytes, 2)
        slot = filesystems.get(fs.mountpoint)
        if slot is None or free < slot["min_free_percent"]:
            filesystems[fs.mountpoint] = {"min_free_percent": free, "avail_bytes": fs.avail_bytes,
                                          "size_bytes": fs.size_bytes}
    if snap.updates is not None:
        _bump_max(data, "updates_pending_max", snap.updates.pending)
        _bump_max(data, "security_pending_max", snap.updates.security)
        _bump_max(data, "last_update_installed", snap.updates.last_installed)
        if snap.updates.reboot_required:
            data["reboot_required"] = True
    if snap.antivirus is not None:
        active = any(av.active for av in snap.antivirus)
        key = "antivirus_active_polls" if active else "antivirus_inactive_polls"
        data[key] = data.get(key, 0) + 1
        ages = [snap.time - av.signature_updated for av in snap.antivirus if av.signature_updated]
        _bump_max(data, "signature_age_max_days", round(min(ages) / 86400, 1) if ages else None)
    if snap.disks is not None:
        _bump_max(data, "unhealthy_disks_max", sum(1 for d in snap.disks if d.healthy is False))
    if snap.failed_services is not None:
        _bump_max(data, "failed_services_max", len(snap.failed_services))
    if snap.events is not None:
        for level in ("critical", "error"):
            _bump_max(data, f"events_{level}_max",
                      sum(n for (_, lvl), n in snap.events.counts.items() if lvl == level))
    return data


def record(db: sqlite3.Connection, result: PollResult) -> None:
    """Fold one poll into its host's row of the day (inside the caller's transaction)."""
    target = result.target
    day = day_of(result.started_at)
    row = db.execute("SELECT polls, successes, data FROM farm_daily WHERE host = ? AND day = ?",
                     (target.name, day)).fetchone()
    polls, successes, data = (row["polls"], row["successes"], json.loads(row["data"])) if row else (0, 0, {})
    data = merge(data, result)
    db.execute("INSERT INTO farm_daily(host, day, tenant, polls, successes, data) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT(host, day) DO UPDATE SET tenant = excluded.tenant, polls = excluded.polls, "
               "successes = excluded.successes, data = excluded.data",
               (target.name, day, target.tenant, polls + 1, successes + (1 if result.up else 0),
                json.dumps(data, separators=(",", ":"))))


def prune(db: sqlite3.Connection, keep_days: int, today: date) -> int:
    """Delete rows older than ``keep_days``; returns how many went."""
    cutoff = (today - timedelta(days=keep_days)).isoformat()
    return db.execute("DELETE FROM farm_daily WHERE day < ?", (cutoff,)).rowcount
