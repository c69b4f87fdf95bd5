"""Running collectors under a timeout and caching what they return.

Python cannot kill a thread, so each collector has a daemon thread of its
own that its runner hands each run to and waits for at most ``timeout``
seconds (one long-lived thread, not a thread started per run). A collector
still running after that is marked failed and *remembered*: it is not started
again until that run returns, so a hanging NFS mount or a stuck ``smartctl``
costs its one thread and blocks nothing else. Results of a run that finishes
after its deadline are discarded: late data would be stale.

The collectors that share an interval form a :class:`CollectionCycle`: one
scheduler wake-up starts them all, and their results reach the metric cache
together, so the exposition is rendered once per cycle, not once per
collector.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from prometheus_client.core import Metric

from custode.agent.clock import current_time
from custode.agent.metric_cache import MetricCache
from custode.collectors.base import Collector, CollectorUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    collector: str
    success: bool
    duration: float
    finished_at: float
    error: str | None = None
    unavailable: bool = False
    consecutive_failures: int = 0


class _Run:
    """One run handed to a collector's thread: its start, its deadline, and what it returned."""

    __slots__ = ("started", "deadline", "done", "families", "error")

    def __init__(self, timeout: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.done = threading.Event()
        self.families: object = None
        self.error: BaseException | None = None

    def is_alive(self) -> bool:
        """Still running (the collector has not returned)."""
        return not self.done.is_set()


class _CollectorThread:
    """The daemon thread that runs one collector's runs, one at a time, started on first use."""

    def __init__(self, collector: Collector) -> None:
        self._collector = collector
        self._runs: queue.SimpleQueue[_Run] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, run: _Run) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=f"collector-{self._collector.name}",
                                            daemon=True)
            self._thread.start()
        self._runs.put(run)

    def _serve(self) -> None:
        while True:
            run = self._runs.get()
            try:
                run.families = self._collector.collect()
            except BaseException as exc:  # noqa: BLE001 - reported by the runner, never propagated
                run.error = exc
            finally:
                run.done.set()


class CollectorRunner:
    """Runs one collector; at most one live run per collector."""

    def __init__(self, collector: Collector, timeout: float, cache: MetricCache,
                 on_outcome: Callable[[RunOutcome], None] | None = None, interval: float | None = None) -> None:
        self.collector = collector
        self.name = collector.name
        self.timeout = timeout
        self.interval = interval if interval is not None else collector.default_interval
        self.cache = cache
        self.on_outcome = on_outcome
        self.consecutive_failures = 0
        self.last_outcome: RunOutcome | None = None
        self._hung: _Run | None = None
        self._thread = _CollectorThread(collector)
        self._lock = threading.Lock()

    def run(self) -> RunOutcome:
        """Collect once (blocking up to ``timeout``) and publish the result."""
        with self._lock:
            outcome, families = self.finish(self.start())
            outcome = self.account(outcome)
            self.cache.update(self.name, families, outcome)
            self.notify(outcome)
            return outcome

    def start(self) -> _Run | RunOutcome:
        """Hand a run to the collector's thread; an outcome at once if the previous run still hangs."""
        if self._hung is not None and self._hung.is_alive():
            return self._failed(time.monotonic(), f"previous run is still hanging (more than {self.timeout:g}s); "
                                                  "not started again until it returns")
        self._hung = None
        run = _Run(self.timeout)
        self._thread.submit(run)
        return run

    def finish(self, run: _Run | RunOutcome) -> tuple[RunOutcome, list[Metric] | None]:
        """Wait for the run until its deadline: its outcome and families (None: drop the collector's series)."""
        if isinstance(run, RunOutcome):
            return run, None
        if not run.done.wait(max(0.0, run.deadline - time.monotonic())):
            self._hung = run
            return self._failed(run.started, f"timed out after {self.timeout:g}s"), None
        error = run.error
        if isinstance(error, CollectorUnavailable):
            return RunOutcome(self.name, True, time.monotonic() - run.started, current_time(),
                              error=str(error), unavailable=True), []
        if error is not None:
            return self._failed(run.started, f"{type(error).__name__}: {error}"), None
        if not isinstance(run.families, list):
            return self._failed(run.started, "collect() did not return a list of metric families"), None
        return RunOutcome(self.name, True, time.monotonic() - run.started, current_time()), run.families

    def _failed(self, start: float, error: str) -> RunOutcome:
        return RunOutcome(self.name, False, time.monotonic() - start, current_time(), error=error)

    def account(self, outcome: RunOutcome) -> RunOutcome:
        """Count consecutive failures and log failures and recoveries; the outcome with its count."""
        if outcome.success:
            if self.consecutive_failures:
                log.info("collector recovered", extra={"collector": self.name,
                                                       "failed_runs": self.consecutive_failures})
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
            outcome = dataclasses.replace(outcome, consecutive_failures=self.consecutive_failures)
            # Warn on the first failure and when the reason changes; repeats go to debug.
            previous = self.last_outcome.error if self.last_outcome and not self.last_outcome.success else None
            level = logging.DEBUG if self.consecutive_failures > 1 and previous == outcome.error else logging.WARNING
            log.log(level, "collector failed", extra={"collector": self.name, "error": outcome.error,
                                                      "consecutive_failures": self.consecutive_failures})
        self.last_outcome = outcome
        return outcome

    def notify(self, outcome: RunOutcome) -> None:
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:
                log.exception("collector outcome listener failed", extra={"collector": self.name})


BATCH_WAIT = 1.0
"""Seconds a cycle waits for its collectors before publishing the ones done; nearly all take milliseconds."""


class CollectionCycle:
    """The collectors that share an interval: started together, published together (one render)."""

    def __init__(self, runners: list[CollectorRunner], cache: MetricCache) -> None:
        self.runners = runners
        self.cache = cache
        self.interval = runners[0].interval
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"collectors every {self.interval:g}s"

    def run(self) -> list[RunOutcome]:
        """One cycle: every collector started; those done within BATCH_WAIT published together, each
        slower one on its own when it ends or reaches its deadline, so it holds back no one's data."""
        with self._lock:
            started = [(runner, runner.start()) for runner in self.runners]
            batch_until = time.monotonic() + BATCH_WAIT
            ready, slow = [], []
            for runner, run in started:
                if isinstance(run, _Run) and not run.done.wait(max(0.0, min(run.deadline, batch_until)
                                                                        - time.monotonic())):
                    slow.append((runner, run))
                else:
                    ready.append((runner, run))
            outcomes = self._publish(ready)
            for late in slow:
                outcomes += self._publish([late])
            return outcomes

    def _publish(self, runs: list[tuple[CollectorRunner, _Run | RunOutcome]]) -> list[RunOutcome]:
        if not runs:
            return []
        results = [(runner, *runner.finish(run)) for runner, run in runs]
        outcomes = [runner.account(outcome) for runner, outcome, _ in results]
        self.cache.update_many({runner.name: families for runner, _, families in results},
                               {outcome.collector: outcome for outcome in outcomes})
        for (runner, _, _), outcome in zip(results, outcomes, strict=True):
            runner.notify(outcome)
        return outcomes


def cycles(runners: list[CollectorRunner], cache: MetricCache) -> list[CollectionCycle]:
    """The runners grouped by interval, shortest first."""
    by_interval: dict[float, list[CollectorRunner]] = {}
    for runner in runners:
        by_interval.setdefault(runner.interval, []).append(runner)
    return [CollectionCycle(group, cache) for _, group in sorted(by_interval.items())]
