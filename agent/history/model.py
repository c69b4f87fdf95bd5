"""One observation of a host, whoever made it, and how it is folded into the host's day.

A farm poll and an agent's collection cycle see the same kinds of facts (disk
space, memory, CPU, failed services, disk health; a polled Windows host also
antivirus, updates and System-log errors, and so does an agent on Windows
through its own run of the farm probe). Both are turned into an
:class:`Observation` first, so the daily row has one set of JSON keys and a
report reads every host alike. ``None`` always means "not measured", never
zero: a day must not claim what nobody looked at.

The JSON ``data`` of a row (every key optional, present once measured):

* ``os``: the OS as people read it.
* ``cpu``, ``memory``: ``{sum, n, max}`` of busy / used percent: a daily average and peak.
* ``memory_total_bytes``.
* ``filesystems``: mount point -> ``{min_free_percent, avail_bytes, size_bytes}`` at the day's tightest moment.
* ``updates_pending_max``, ``security_pending_max``, ``last_update_installed`` (Unix time), ``reboot_required``.
* ``antivirus_active_polls``, ``antivirus_inactive_polls``, ``signature_age_max_days``.
* ``unhealthy_disks_max``, ``failed_services_max``, ``events_critical_max``, ``events_error_max``.
* ``errors``: text -> count, at most five texts: why a poll failed, or which collector failed.
* ``cycles`` (agent rows only, :mod:`custode.agent.history.cycles`): ``interval``, ``first``, ``last``,
  ``longest_gap`` ``{seconds, from, to}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from custode.agent.clock import ROME

MAX_ERROR_TEXTS = 5
"""Distinct error texts kept per day: the commonest few are what the report names; a flood is not."""
ERROR_TEXT_LIMIT = 160


class HistorySource(StrEnum):
    """Who wrote a row: the values ``host_daily.source`` holds (its CHECK constraint)."""

    FARM = "farm"
    """Farm mode's polls of a remote host."""
    AGENT = "agent"
    """The running agent's own collection cycles, for its own host (``agent.hostname``)."""


@dataclass(frozen=True)
class FilesystemSeen:
    mountpoint: str
    avail_bytes: float
    size_bytes: float


@dataclass(frozen=True)
class Observation:
    """What one farm poll or one agent collection cycle saw of a host."""

    at: float
    """Unix time of the poll's or cycle's start: the day it counts for."""
    up: bool = True
    """False: the host could not be observed at all (a failed poll); only ``error`` counts then."""
    error: str | None = None
    os: str | None = None
    cpu_percent: float | None = None
    memory_used_percent: float | None = None
    memory_total_bytes: float | None = None
    filesystems: tuple[FilesystemSeen, ...] = ()
    updates_pending: int | None = None
    security_pending: int | None = None
    last_update_installed: float | None = None
    reboot_required: bool | None = None
    antivirus_active: bool | None = None
    """None: the host did not report; True/False: some product is / none is on with real-time protection."""
    signature_age_days: float | None = None
    unhealthy_disks: int | None = None
    failed_services: int | None = None
    events_critical: int | None = None
    events_error: int | None = None
    problems: tuple[str, ...] = ()
    """What went wrong while the host was observed (a collector that failed); counted with the errors."""


def day_of(timestamp: float) -> date:
    """The Europe/Rome day a moment belongs to: reports and rows are keyed by the comuni's days."""
    return datetime.fromtimestamp(timestamp, ROME).date()


def day_start(day: date) -> float:
    """Unix time of the day's first instant in Europe/Rome (23 or 25 hours on DST days)."""
    return datetime.combine(day, time(0), ROME).timestamp()


def day_end(day: date) -> float:
    return day_start(day + timedelta(days=1))


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


def count_error(data: dict[str, Any], text: str) -> None:
    """One more of ``text`` in the day's errors; a new text only while fewer than five are kept."""
    errors = data.setdefault("errors", {})
    text = text[:ERROR_TEXT_LIMIT]
    if text in errors or len(errors) < MAX_ERROR_TEXTS:
        errors[text] = errors.get(text, 0) + 1


def fold(data: dict[str, Any], seen: Observation) -> dict[str, Any]:
    """``data`` (one host's day so far) with ``seen`` folded in; pure, and ``data`` is left as it was."""
    data = json.loads(json.dumps(data))  # a deep copy of plain JSON
    if not seen.up:
        count_error(data, seen.error or "unknown")
        return data
    if seen.os:
        data["os"] = seen.os
    if seen.cpu_percent is not None:
        data["cpu"] = _stat(data.get("cpu"), round(seen.cpu_percent, 2))
    if seen.memory_used_percent is not None:
        data["memory"] = _stat(data.get("memory"), round(seen.memory_used_percent, 2))
        data["memory_total_bytes"] = seen.memory_total_bytes
    filesystems = data.setdefault("filesystems", {})
    for fs in seen.filesystems:
        if fs.size_bytes <= 0:
            continue
        free = round(100 * fs.avail_bytes / fs.size_bytes, 2)
        slot = filesystems.get(fs.mountpoint)
        if slot is None or free < slot["min_free_percent"]:
            filesystems[fs.mountpoint] = {"min_free_percent": free, "avail_bytes": fs.avail_bytes,
                                          "size_bytes": fs.size_bytes}
    _bump_max(data, "updates_pending_max", seen.updates_pending)
    _bump_max(data, "security_pending_max", seen.security_pending)
    _bump_max(data, "last_update_installed", seen.last_update_installed)
    if seen.reboot_required:
        data["reboot_required"] = True
    if seen.antivirus_active is not None:
        key = "antivirus_active_polls" if seen.antivirus_active else "antivirus_inactive_polls"
        data[key] = data.get(key, 0) + 1
    _bump_max(data, "signature_age_max_days", seen.signature_age_days)
    _bump_max(data, "unhealthy_disks_max", seen.unhealthy_disks)
    _bump_max(data, "failed_services_max", seen.failed_services)
    _bump_max(data, "events_critical_max", seen.events_critical)
    _bump_max(data, "events_error_max", seen.events_error)
    for problem in seen.problems:
        count_error(data, problem)
    return data
