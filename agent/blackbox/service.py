"""Service probes in the agent: start the due probes, then record, judge and publish the finished ones.

The agent calls :meth:`ProbeService.tick` every few seconds. It starts every
probe that is due on a bounded thread pool (a probe's own deadline ends it: a
hanging target holds one worker for at most its timeout and never blocks the
others) and handles the probes that finished since the last tick: one
transaction for their states and daily rows (:mod:`custode.agent.blackbox.store`),
their checks into the incident model, one render of their metrics. A probe
of a tenant whose profile lacks ``monitoring`` is recorded and published but
opens no incident.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from custode.agent.blackbox import store
from custode.agent.blackbox.base import ProbeResult, seconds
from custode.agent.blackbox.checks import PROBE_CHECKS, advance, is_slow, probe_evaluations
from custode.agent.blackbox.metrics import probe_families
from custode.agent.blackbox.probers import run_probe
from custode.agent.blackbox.store import ProbeState
from custode.agent.blackbox.target import Target, targets_of
from custode.agent.checks import apply
from custode.agent.clock import Clock, current_time
from custode.agent.history.model import day_of
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.profiles import has_feature
from custode.agent.state import State

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from custode.agent.config import Config

log = logging.getLogger(__name__)

CACHE_SOURCE = "probes/"
"""Prefix of the metric-cache sources: one per probe, so a finished probe re-renders only its own series."""
OVERDUE_GRACE = 5.0
"""Seconds past its timeout after which a probe still running is counted as failed (its late result dropped)."""
UNHANDLED_LIMIT = 10_000
"""Results kept for the next tick when the state DB could not take them; the oldest go first beyond this."""


@dataclass
class _Running:
    target: Target
    future: Future[ProbeResult]
    started: float  # monotonic
    started_at: float  # the service's clock


def probe_now(targets: list[Target], workers: int, clock: Clock = current_time) -> list[ProbeResult]:
    """Probe every target once, at the same time on ``workers`` threads; results in the targets' order."""
    if not targets:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets))), thread_name_prefix="probe")
    try:
        futures = [(target, clock(), pool.submit(run_probe, target, clock)) for target in targets]
        results = []
        for target, started_at, future in futures:
            try:
                results.append(future.result(timeout=target.timeout + OVERDUE_GRACE))
            except FutureTimeout:
                results.append(_overdue(target, started_at))
        return results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _overdue(target: Target, started_at: float) -> ProbeResult:
    return ProbeResult(target, started_at, success=False, duration=target.timeout,
                       error=f"no answer within {seconds(target.timeout)}")


class ProbeService:
    """Records, judges and publishes probe results; with :meth:`tick`, also probes on schedule.

    ``custode probe --config`` probes by itself (:func:`probe_now`) and hands
    the results to :meth:`handle`, so a run by hand leaves the same records."""

    def __init__(self, config: Config, state: State, incidents: Incidents, cache: MetricCache | None = None,
                 clock: Clock = current_time, targets: list[Target] | None = None) -> None:
        self.config = config
        self.state = state
        self.incidents = incidents
        self.cache = cache
        self.clock = clock
        self.targets: list[Target] = targets_of(config) if targets is None else targets
        names = {target.name for target in self.targets}
        self.states: dict[str, ProbeState] = {name: s for name, s in store.probe_states(state).items()
                                              if name in names}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, _Running] = {}
        self._next_due: dict[str, float] = {}
        self._unhandled: list[ProbeResult] = []

    # -- the agent's job -------------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[ProbeResult]:
        """Start the due probes, then handle whatever finished; returns the handled results."""
        now = self.clock() if now is None else now
        self._submit_due(now)
        results = self._unhandled + self._finished()
        self._unhandled = []
        if results:
            try:
                self.handle(results)
            except Exception:
                self._unhandled = results[-UNHANDLED_LIMIT:]  # recorded at the next tick, not lost
                log.error("probe results could not be recorded; kept for the next tick",
                          extra={"results": len(results)})
                raise
        return results

    def busy(self) -> bool:
        """Whether a probe is still running (tests wait for this to turn false)."""
        with self._lock:
            return any(not run.future.done() for run in self._running.values())

    def _submit_due(self, now: float) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.config.probes.workers, thread_name_prefix="probe")
            for target in self.targets:
                if target.name in self._running or self._next_due.get(target.name, now) > now:
                    continue
                self._next_due[target.name] = now + target.interval
                future = self._pool.submit(run_probe, target, self.clock)
                self._running[target.name] = _Running(target, future, time.monotonic(), now)

    def _finished(self) -> list[ProbeResult]:
        done: list[ProbeResult] = []
        with self._lock:
            for name, run in list(self._running.items()):
                if run.future.done():
                    del self._running[name]
                    try:
                        done.append(run.future.result())
                    except Exception as exc:  # noqa: BLE001 - run_probe does not raise; a cancelled future might
                        done.append(ProbeResult(run.target, run.started_at, error=f"the probe did not run: {exc}"))
                elif time.monotonic() - run.started > run.target.timeout + OVERDUE_GRACE:
                    del self._running[name]  # its worker is stuck past the deadline: judged now, dropped later
                    log.warning("probe still running past its timeout; counted as failed",
                                extra={"probe": name, "timeout": run.target.timeout})
                    done.append(_overdue(run.target, run.started_at))
        return done

    # -- record, judge, publish ------------------------------------------------------------------------------

    def handle(self, results: list[ProbeResult]) -> None:
        """Record, judge and publish finished probes (also the command line's path after a run by hand)."""
        now = self.clock()
        advanced: dict[str, ProbeState] = {}
        with self.state.transaction() as db:
            for result in sorted(results, key=lambda r: r.started_at):
                target: Target = result.target
                state = advance(advanced.get(target.name) or self.states.get(target.name), target, result)
                advanced[target.name] = state
                store.save_state(db, state)
                store.add_to_day(db, state, result.started_at, result.success, is_slow(target, result),
                                 result.duration, result.error, result.cert_expiry)
        self.states.update(advanced)
        latest = {r.target.name: r for r in sorted(results, key=lambda r: r.started_at)}
        for result in sorted(results, key=lambda r: r.started_at):
            target = result.target
            apply(self.incidents, probe_evaluations(target, result, advanced[target.name], now,
                                                    self._unmonitored(target.tenant)), now=now)
        if self.cache is not None:
            self.cache.update_many({CACHE_SOURCE + name: self.families(result) for name, result in latest.items()})

    def families(self, result: ProbeResult) -> list[Metric]:
        """One probe's families, with its streak and last success from the stored state."""
        state = self.states.get(result.target.name)
        return probe_families(result, result.target.metric_labels(),
                              consecutive_failures=state.consecutive_failures if state else 0,
                              last_success_at=state.last_success_at if state else None)

    def _unmonitored(self, tenant: str) -> str | None:
        if has_feature(self.config, tenant, "monitoring"):
            return None
        return f"the service profile {self.config.tenants[tenant].profile} of {tenant} has no monitoring"

    # -- housekeeping ----------------------------------------------------------------------------------------

    def prune(self, now: float | None = None) -> None:
        """Forget the probes no longer configured (resolving their incidents); drop daily rows past the retention.

        A removed probe's daily rows stay until then: the quarterly report of a
        service dropped in May still covers its April."""
        from custode.agent.history.service import keep_days

        now = self.clock() if now is None else now
        names = {target.name for target in self.targets}
        stored = store.probe_states(self.state)
        gone = [name for name in stored if name not in names]
        cutoff = day_of(now) - timedelta(days=keep_days(self.config))
        with self.state.transaction() as db:
            if gone:
                store.forget(db, gone)
            removed = store.delete_days_before(db, cutoff)
        if removed:
            log.info("probe days pruned", extra={"rows": removed, "before": cutoff.isoformat()})
        tenants = {s.tenant for s in stored.values()} | {target.tenant for target in self.targets}
        for tenant in sorted(tenants):
            present = [target.name for target in self.targets if target.tenant == tenant]
            for check in PROBE_CHECKS:
                self.incidents.reconcile(tenant, check, present, now=now,
                                         reason="the probe is no longer in the config (or is disabled)")

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
