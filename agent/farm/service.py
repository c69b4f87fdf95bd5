"""Farm mode in the agent: poll on schedule, record, judge, publish, in one batch per tick.

The agent calls :meth:`FarmService.tick` every few seconds. It starts the
polls that are due (non-blocking) and handles the ones that finished since
the last tick: one transaction for the state rows and the hosts' daily rows
(:mod:`custode.agent.history`), the checks into the incident model, and one
render of the metrics.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from custode.agent.checks import apply
from custode.agent.clock import Clock, current_time
from custode.agent.farm import history
from custode.agent.farm.checks import farm_evaluations
from custode.agent.farm.metrics import TargetStatus, host_families
from custode.agent.farm.poller import FarmPoller, PollResult
from custode.agent.farm.targets import Target, targets_of
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.patch_policy import round_due_families
from custode.agent.snmp import store as devices
from custode.agent.snmp.checks import remember
from custode.agent.snmp.store import DeviceMemory
from custode.agent.snmp.summary import device_summary
from custode.agent.state import State

log = logging.getLogger(__name__)

CACHE_SOURCE = "farm/"
"""Prefix of the metric-cache sources: one per host, so a poll re-renders only its own host's series."""
FARM_CHECKS = ("reachability", "filesystem", "memory", "cpu", "services", "antivirus", "os_updates", "disk_health",
               "os_support", "interface", "ups", "reboot")
"""Every check farm mode judges a host by (see agent/farm/checks.py)."""
PATCH_ROUNDS_SOURCE = "os_patch_rounds"
"""Metric-cache source of the tenants' next patch round (not under ``farm/``: a host may be called anything)."""


def snapshot_summary(result: PollResult) -> dict[str, Any]:
    """The few facts ``custode status`` and ``custode farm list`` show for a host."""
    if result.device is not None:
        return device_summary(result.device, result.target.host.snmp)
    snap = result.snapshot
    if snap is None:
        return {}
    summary: dict[str, Any] = {"os": snap.os.name, "problems": list(snap.problems)[:10]}
    if result.cpu_busy_ratio is not None:
        summary["cpu_percent"] = round(100 * result.cpu_busy_ratio, 1)
    if snap.memory_used_percent is not None:
        summary["memory_used_percent"] = round(snap.memory_used_percent, 1)
    sized = [fs for fs in snap.filesystems if fs.size_bytes > 0]
    if sized:
        worst = min(sized, key=lambda fs: fs.avail_bytes / fs.size_bytes)
        summary["tightest_filesystem"] = [worst.mountpoint, round(100 * worst.avail_bytes / worst.size_bytes, 1)]
    if snap.updates is not None:
        summary["updates_pending"] = snap.updates.pending
        summary["last_update_installed"] = snap.updates.last_installed
    if snap.antivirus is not None:
        summary["antivirus_active"] = any(av.active for av in snap.antivirus)
    if snap.failed_services is not None:
        summary["failed_services"] = [s.name for s in snap.failed_services][:10]
    return summary


def new_poller(config, clock: Clock = current_time) -> FarmPoller:
    """The poller the agent runs, with the ``farm:`` settings."""
    farm = config.farm
    return FarmPoller(targets_of(config), workers=farm.workers, keep_connections=farm.keep_connections,
                      updates_interval=farm.updates_interval if farm.read_updates else None, clock=clock)


class FarmService:
    """Records, judges and publishes poll results; with a ``poller``, also polls on the agent's ticks.

    The command line polls by itself and hands its results to :meth:`handle`,
    so it needs no poller here.
    """

    def __init__(self, config, state: State, incidents: Incidents, cache: MetricCache | None = None,
                 poller: FarmPoller | None = None, clock: Clock = current_time) -> None:
        self.config = config
        self.state = state
        self.incidents = incidents
        self.cache = cache
        self.clock = clock
        self.targets: list[Target] = targets_of(config)
        self.poller = poller
        self.status: dict[str, TargetStatus] = self._load_status()

    def _load_status(self) -> dict[str, TargetStatus]:
        rows = self.state.query("SELECT host, last_success_at, consecutive_failures FROM farm_targets")
        names = {t.name for t in self.targets}
        return {r["host"]: TargetStatus(r["last_success_at"], r["consecutive_failures"])
                for r in rows if r["host"] in names}

    # -- the agent's job -----------------------------------------------------------

    def tick(self, now: float | None = None) -> list[PollResult]:
        """Start the due polls, then handle whatever finished; returns the handled results."""
        assert self.poller is not None, "tick() needs the agent's poller (new_poller)"
        self.poller.submit_due(now)
        results = self.poller.drain()
        if results:
            try:
                self.handle(results)
            except Exception:
                dropped = self.poller.give_back(results)  # retried at the next tick, not lost
                log.error("farm results could not be recorded; kept for the next tick",
                          extra={"results": len(results), "dropped_oldest": dropped})
                raise
        return results

    def handle(self, results: list[PollResult]) -> None:
        """Record, judge and publish finished polls (also the CLI's path after a one-off poll)."""
        now = self.clock()
        memories: dict[int, DeviceMemory] = {}
        with self.state.transaction() as db:
            for index, result in enumerate(results):
                memory = self._record(db, result)
                if memory is not None:
                    memories[index] = memory
        published: dict[str, list] = {}
        policies = {tenant_id: tenant.patch_policy for tenant_id, tenant in self.config.tenants.items()}
        for index, result in enumerate(results):
            status = self.status[result.target.name]
            apply(self.incidents, farm_evaluations(self.config.checks, self.config.farm.checks, result,
                                                   status.consecutive_failures, now,
                                                   policies.get(result.target.tenant), memories.get(index)),
                  now=now)
            published[CACHE_SOURCE + result.target.name] = host_families(result, status)
        published[PATCH_ROUNDS_SOURCE] = round_due_families(policies, now)
        if self.cache is not None:
            self.cache.update_many(published)

    def families(self) -> list:
        """Every polled host's published families (what /metrics shows of the farm)."""
        if self.cache is None:
            return []
        return [family for target in self.targets for family in self.cache.families(CACHE_SOURCE + target.name) or ()]

    def _record(self, db, result: PollResult) -> DeviceMemory | None:
        """The poll's rows in the state DB; for an SNMP device that answered, its memory after this poll."""
        target = result.target
        previous = self.status.get(target.name, TargetStatus(None, 0))
        if result.up:
            status = TargetStatus(result.started_at, 0)
        else:
            status = TargetStatus(previous.last_success_at, previous.consecutive_failures + 1)
        self.status[target.name] = status
        summary = json.dumps(snapshot_summary(result)) if result.up else None
        db.execute(
            "INSERT INTO farm_targets(host, tenant, transport, address, last_poll_at, last_success_at, up, "
            "consecutive_failures, last_error, poll_seconds, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "COALESCE(?, '{}')) ON CONFLICT(host) DO UPDATE SET tenant = excluded.tenant, "
            "transport = excluded.transport, address = excluded.address, last_poll_at = excluded.last_poll_at, "
            "last_success_at = excluded.last_success_at, up = excluded.up, "
            "consecutive_failures = excluded.consecutive_failures, last_error = excluded.last_error, "
            "poll_seconds = excluded.poll_seconds, summary = COALESCE(?, farm_targets.summary)",
            (target.name, target.tenant, target.transport, target.host.address, result.started_at,
             status.last_success_at, 1 if result.up else 0, status.consecutive_failures, result.error,
             result.duration, summary, summary))
        history.record(db, result)
        if result.device is None or target.host.snmp is None:
            return None
        verdict = remember(devices.load(db, target.name), target.name, result.device, target.host.snmp,
                           result.started_at)
        devices.save(db, verdict.memory)
        if verdict.rebooted_now:
            log.info("SNMP device restarted", extra={"host": target.name, "booted_at": verdict.memory.rebooted_at})
        return verdict.memory

    def prune(self) -> None:
        """Forget the hosts no longer in the config, and resolve their incidents.

        Their daily rows stay: the yearly report of a host removed in June still
        covers its first half-year, and the daily retention (``history.days``,
        :func:`custode.agent.history.service.prune`) deletes them in time."""
        names = {t.name for t in self.targets}
        gone = [r for r in self.state.query("SELECT host, tenant FROM farm_targets") if r["host"] not in names]
        if not gone:
            return
        with self.state.transaction() as db:
            db.executemany("DELETE FROM farm_targets WHERE host = ?", [(r["host"],) for r in gone])
            devices.forget(db, [r["host"] for r in gone])
        for row in gone:  # its incidents would otherwise stay open for ever
            for check in FARM_CHECKS:
                self.incidents.reconcile(row["tenant"], check, (), scope=f"{row['host']}:",
                                         reason=f"host {row['host']} is no longer polled (removed from the config)")

    def close(self) -> None:
        if self.poller is not None:
            self.poller.close()

