"""A farm poll as an observation of the host's day (the shared model of :mod:`custode.agent.history`).

The daily rows themselves, their JSON keys and the folding are the history
package's, the same for a polled host and for a host with its own agent; what
is farm mode's is reading a :class:`PollResult` (an OS-neutral snapshot, or
why the host did not answer) into an :class:`Observation`.
"""

from __future__ import annotations

import sqlite3

from custode.agent.farm.poller import PollResult
from custode.agent.history.model import FilesystemSeen, Observation
from custode.agent.history.service import record_poll


def observation_of(result: PollResult) -> Observation:
    """What the poll saw, in the history's terms; a failed poll is only its error."""
    if result.device is not None:
        # A network device's day is its availability; it has no CPU, memory or disks in the servers' sense.
        descr = result.device.system.descr.strip()
        return Observation(at=result.started_at, os=descr.splitlines()[0][:80] if descr else None,
                           problems=result.device.problems)
    snap = result.snapshot
    if snap is None:
        return Observation(at=result.started_at, up=False, error=result.error or "unknown")
    used = snap.memory_used_percent
    updates, antivirus = snap.updates, snap.antivirus
    ages = [snap.time - av.signature_updated for av in antivirus or () if av.signature_updated]
    return Observation(
        at=result.started_at, os=snap.os.name,
        cpu_percent=100 * result.cpu_busy_ratio if result.cpu_busy_ratio is not None else None,
        memory_used_percent=used, memory_total_bytes=snap.memory_total_bytes if used is not None else None,
        filesystems=tuple(FilesystemSeen(fs.mountpoint, fs.avail_bytes, fs.size_bytes) for fs in snap.filesystems),
        updates_pending=updates.pending if updates else None,
        security_pending=updates.security if updates else None,
        last_update_installed=updates.last_installed if updates else None,
        reboot_required=updates.reboot_required if updates else None,
        antivirus_active=any(av.active for av in antivirus) if antivirus is not None else None,
        signature_age_days=round(min(ages) / 86400, 1) if ages else None,
        unhealthy_disks=sum(1 for d in snap.disks if d.healthy is False) if snap.disks is not None else None,
        failed_services=len(snap.failed_services) if snap.failed_services is not None else None,
        events_critical=_events(result, "critical"), events_error=_events(result, "error"))


def _events(result: PollResult, level: str) -> int | None:
    events = result.snapshot.events if result.snapshot else None
    return None if events is None else sum(n for (_, lvl), n in events.counts.items() if lvl == level)


def record(db: sqlite3.Connection, result: PollResult) -> None:
    """Fold one poll into its host's row of the day (inside the caller's transaction)."""
    record_poll(db, result.target.name, result.target.tenant, observation_of(result))
