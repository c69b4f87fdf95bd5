"""The farm's Windows probe run by the agent on its own host, so a comune server with Custode installed reports
antivirus, Windows Update and System-log errors as a polled one does.

The local collectors read CPU, memory, disks, services and SMART on Windows
too, but nothing of Microsoft Defender, pending updates or the event log: on a
server with its own agent those facts were unmeasured, while the same server
polled over WinRM had them. So the agent runs the very probe farm mode sends
(:mod:`custode.agent.farm.probes.windows`, same command text, same parser)
through this machine's PowerShell (:class:`~custode.agent.transports.local.LocalTransport`),
and hands the snapshot to the same code as a poll:

* checks: :func:`~custode.agent.farm.checks.probe_evaluations` (antivirus,
  os_updates, disk_health, os_support), for ``agent.hostname`` in tenant
  ``agent.tenant``. Not reachability (an agent cannot see itself down), and
  not disk space, memory, CPU or services, which the local checks judge from
  the collectors already;
* metrics: :func:`~custode.agent.farm.metrics.host_families`, windows_exporter's
  names with the ``tenant`` and ``host`` labels, minus :data:`SKIPPED_FAMILIES`;
  published in the metric cache, so a scrape only serialises them;
* history: what only the probe reads, folded into the agent host's daily row
  (:func:`~custode.agent.history.service.record_agent_facts`).

A run reports like a collector: ``custode_collector_success{collector="windows_probe"}``
(0 when it failed or timed out, and its series are dropped rather than shown
stale), its duration and last run, ``custode status`` (the collectors' table)
and, after ``checks.collectors.failures`` failures in a row, the ``collectors``
incident. A probe that hangs is killed by the transport at the timeout; the
job runs on a thread of its own, so it holds up no other job.

The Windows Update search costs the host seconds to minutes and loads WSUS, so
it runs every ``updates_interval`` (6 h), as in farm mode; the runs in between
keep the pending counts of the last search. A search that timed out is not
retried at the next run but after ``updates_interval``, so a slow search costs
one failed run, not every run.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING

from custode.agent.checks import apply
from custode.agent.clock import Clock, current_time
from custode.agent.collection import RunOutcome
from custode.agent.farm.checks import probe_evaluations
from custode.agent.farm.history import observation_of
from custode.agent.farm.metrics import TargetStatus, host_families
from custode.agent.farm.poller import PROBE_OUTPUT_LIMIT, PollResult
from custode.agent.farm.probes import windows as probe
from custode.agent.farm.snapshot import HostSnapshot, ProbeOutputError, UpdateStatus
from custode.agent.farm.targets import Target
from custode.agent.history.model import Observation
from custode.agent.history.service import record_agent_facts
from custode.agent.transports.base import Transport, TransportError
from custode.agent.transports.config import HostConfig
from custode.agent.transports.local import LocalTransport

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from custode.agent.config import Config
    from custode.agent.incidents import Incidents
    from custode.agent.metric_cache import MetricCache
    from custode.agent.state import State

log = logging.getLogger(__name__)

COLLECTOR = "windows_probe"
"""The name a run reports under: ``custode_collector_success{collector}``, its metric-cache source, in
``custode status``."""
SETTINGS = "agent.windows_probe"
"""Where its settings are, for the words of an error."""

SKIPPED_FAMILIES = frozenset({
    # A poll's bookkeeping: the agent's own run reports as a collector (custode_collector_*), and
    # custode_target_up 0 would raise CustodeFarmHostDown ("cannot be polled") for a host that is up.
    "custode_target_up", "custode_target_poll_duration_seconds", "custode_target_last_poll_timestamp_seconds",
    "custode_target_last_success_timestamp_seconds", "custode_target_consecutive_failures",
    "custode_target_last_error_info",
    # The host's clock against its own clock: always about 0.
    "custode_host_clock_skew_seconds",
    # Published by the local collectors already (cpu, boottime, services): the same fact twice, under two label
    # sets, would count twice in every sum and alert twice.
    "custode_cpu_utilisation_ratio", "custode_uptime_seconds", "custode_services_failed", "custode_service_failed",
})
"""Families of :func:`host_families` the agent does not publish for its own host, and why."""


def facts_of(result: PollResult) -> Observation:
    """What the probe read that no collection cycle folds into the day: antivirus, updates, events, disk health.

    CPU, memory, disk space and services are left out: the cycles fold them
    every 15 s, and a second source would count them twice."""
    seen = observation_of(result)
    return Observation(at=seen.at, updates_pending=seen.updates_pending, security_pending=seen.security_pending,
                       last_update_installed=seen.last_update_installed, reboot_required=seen.reboot_required,
                       antivirus_active=seen.antivirus_active, signature_age_days=seen.signature_age_days,
                       unhealthy_disks=seen.unhealthy_disks, events_critical=seen.events_critical,
                       events_error=seen.events_error)


def local_target(config: Config, interval: float, timeout: float) -> Target:
    """This host as a probe target: ``agent.hostname`` in ``agent.tenant``, with the labels of its ``hosts:``
    entry when one is named after it (a comune's inventory may list its own server)."""
    name = config.agent.hostname
    listed = config.hosts.get(name)
    return Target(name, config.agent.tenant, HostConfig(transport="local"), interval, timeout,
                  dict(listed.labels) if listed is not None else {})


class LocalWindowsProbe:
    """Runs the Windows probe here and hands the result to checks, metrics and history; one run at a time."""

    def __init__(self, config: Config, state: State, incidents: Incidents, cache: MetricCache, *,
                 interval: float, timeout: float, updates_interval: float, transport: Transport | None = None,
                 clock: Clock = current_time) -> None:
        self.state = state
        self.incidents = incidents
        self.cache = cache
        self.clock = clock
        self.target = local_target(config, interval, timeout)
        self.checks = config.farm.checks
        tenant = config.tenants.get(self.target.tenant)
        self.patch_policy = tenant.patch_policy if tenant is not None else None
        self.updates_interval = updates_interval
        self.transport = transport or LocalTransport(self.target.name, shell="powershell")
        self._searched_at: float | None = None
        self._last_search: UpdateStatus | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._problems: tuple[str, ...] = ()
        self._lock = threading.Lock()

    @property
    def timeout(self) -> float:
        return self.target.timeout

    def run(self) -> RunOutcome:
        """Probe once (at most ``timeout`` plus the transport's few seconds of clean-up) and publish it all."""
        with self._lock:
            started_at = self.clock()
            begin = time.monotonic()
            include_updates = self._search_due(started_at)
            try:
                snapshot, error = self._probe(started_at, include_updates)
            except Exception as exc:  # a bug must not leave the last success on /metrics
                log.exception("windows probe crashed", extra={"collector": COLLECTOR})
                snapshot, error = None, f"internal error in Custode ({type(exc).__name__}: {exc}); see the agent's log"
            duration = time.monotonic() - begin
            if snapshot is None:
                return self._failed(started_at, duration, error or "unknown error")
            snapshot = self._with_last_search(snapshot, include_updates)
            result = PollResult(self.target, started_at, duration, snapshot, cpu_busy_ratio=snapshot.cpu_busy_ratio,
                                included_updates=include_updates)
            outcome = self._outcome(duration, None)
            self.cache.update(COLLECTOR, self.families(result), outcome)
            self._note_problems(snapshot.problems)
            now = self.clock()
            apply(self.incidents, probe_evaluations(self.checks, result, now, self.patch_policy), now=now)
            self._record(facts_of(result), outcome)
            return outcome

    def families(self, result: PollResult) -> list[Metric]:
        """The host's families as farm mode builds them, less :data:`SKIPPED_FAMILIES`."""
        return [family for family in host_families(result, TargetStatus(result.started_at, 0))
                if family.name not in SKIPPED_FAMILIES]

    # -- one run --------------------------------------------------------------------------------------

    def _search_due(self, now: float) -> bool:
        return self._searched_at is None or now - self._searched_at >= self.updates_interval

    def _probe(self, started_at: float, include_updates: bool) -> tuple[HostSnapshot | None, str | None]:
        """The snapshot, or why there is none, in words an operator can act on."""
        command = probe.probe_command(include_updates=include_updates)
        try:
            result = self.transport.run(command, self.timeout, max_output=PROBE_OUTPUT_LIMIT)
        except TransportError as exc:
            return None, exc.cause
        if include_updates:
            self._searched_at = started_at  # tried: a search that hangs is not tried again at every run
        if result.timed_out:
            why = (": the Windows Update search can take minutes; raise the timeout if it is just slow (the next runs "
                   f"skip the search until {SETTINGS}.updates_interval has passed)" if include_updates else
                   ": the host is overloaded, or a query hangs (WMI, the event log)")
            return None, f"the Windows probe did not finish within {self.timeout:g} s ({SETTINGS}.timeout) and " \
                         f"was stopped{why}"
        try:
            return probe.parse(result.stdout, now=self.clock()), None
        except ProbeOutputError as exc:
            tail = "" if result.ok else f" (powershell.exe ended with {result.describe()})"
            return None, f"{exc}{tail}"

    def _with_last_search(self, snapshot: HostSnapshot, include_updates: bool) -> HostSnapshot:
        """The pending counts of the last Windows Update search, in a run that skipped it."""
        updates = snapshot.updates
        if include_updates:
            if updates is not None and updates.pending is not None:
                self._last_search = updates
            return snapshot
        last = self._last_search
        if last is None or (updates is not None and updates.pending is not None):
            return snapshot
        carried = dataclasses.replace(updates or UpdateStatus(), pending=last.pending, security=last.security,
                                      titles=last.titles)
        return dataclasses.replace(snapshot, updates=carried)

    def _outcome(self, duration: float, error: str | None) -> RunOutcome:
        """The run as a collector's outcome; failures and recoveries logged as a collector's are."""
        if error is None:
            if self._failures:
                log.info("windows probe recovered", extra={"collector": COLLECTOR, "failed_runs": self._failures})
            self._failures = 0
        else:
            self._failures += 1
            repeated = self._failures > 1 and error == self._last_error
            log.log(logging.DEBUG if repeated else logging.WARNING, "windows probe failed",
                    extra={"collector": COLLECTOR, "error": error, "consecutive_failures": self._failures})
        self._last_error = error
        return RunOutcome(COLLECTOR, error is None, duration, self.clock(), error=error,
                          consecutive_failures=self._failures)

    def _failed(self, started_at: float, duration: float, error: str) -> RunOutcome:
        """No series shown stale, incidents left as they are (nothing was judged), the error in the day's row."""
        outcome = self._outcome(duration, error)
        self.cache.update(COLLECTOR, None, outcome)
        self._record(Observation(at=started_at, up=False, error=f"{COLLECTOR}: {error}"), outcome)
        return outcome

    def _record(self, seen: Observation, outcome: RunOutcome) -> None:
        """The day's row and the collectors' table, in the state DB (a storage failure reaches the job's guard)."""
        with self.state.transaction() as db:
            record_agent_facts(db, self.target.name, self.target.tenant, seen)
        self.state.record_collector_run(COLLECTOR, outcome.finished_at, outcome.success, outcome.duration,
                                        outcome.error)

    def _note_problems(self, problems: tuple[str, ...]) -> None:
        """Parts of the probe this host could not answer (Defender, Windows Update...), logged when they change."""
        if problems != self._problems and problems:
            log.warning("windows probe: some facts could not be read", extra={"collector": COLLECTOR,
                                                                             "problems": list(problems)})
        self._problems = problems
