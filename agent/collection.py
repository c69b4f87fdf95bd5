"""Running collectors under a timeout and caching what they return.

Python cannot kill a thread, so each collection runs in its own daemon
thread that the runner waits for at most ``timeout`` seconds. A collector
still running after that is marked failed and *remembered*: it is not started
again until that thread returns, so a hanging NFS mount or a stuck
``smartctl`` costs one thread, not one thread per interval. Results of a run
that finishes after its deadline are discarded: late data would be stale.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from prometheus_client.core import Metric

from agent.clock import current_time
from agent.metric_cache import MetricCache
from collectors.base import Collector, CollectorUnavailable

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


class CollectorRunner:
    """Runs one collector; at most one live thread per collector."""

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
        self._hung: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self) -> RunOutcome:
        """Collect once (blocking up to ``timeout``) and publish the result."""
        with self._lock:
            start = time.monotonic()
            if self._hung is not None and self._hung.is_alive():
                outcome = self._failed(start, f"previous run is still hanging (more than {self.timeout:g}s); "
                                              "not started again until it returns")
                return self._publish(outcome, None)
            self._hung = None
            box: dict[str, object] = {}

            def target() -> None:
                try:
                    box["families"] = self.collector.collect()
                except BaseException as exc:  # noqa: BLE001 - reported, never propagated
                    box["error"] = exc

            thread = threading.Thread(target=target, name=f"collector-{self.name}", daemon=True)
            thread.start()
            thread.join(self.timeout)
            if thread.is_alive():
                self._hung = thread
                return self._publish(self._failed(start, f"timed out after {self.timeout:g}s"), None)
            error = box.get("error")
            if isinstance(error, CollectorUnavailable):
                outcome = RunOutcome(self.name, True, time.monotonic() - start, current_time(),
                                     error=str(error), unavailable=True)
                return self._publish(outcome, [])
            if error is not None:
                return self._publish(self._failed(start, f"{type(error).__name__}: {error}"), None)
            families = box.get("families")
            if not isinstance(families, list):
                return self._publish(self._failed(start, "collect() did not return a list of metric families"), None)
            return self._publish(RunOutcome(self.name, True, time.monotonic() - start, current_time()), families)

    def _failed(self, start: float, error: str) -> RunOutcome:
        return RunOutcome(self.name, False, time.monotonic() - start, current_time(), error=error)

    def _publish(self, outcome: RunOutcome, families: list[Metric] | None) -> RunOutcome:
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
        self.cache.update(self.name, families, outcome)
        if self.on_outcome is not None:
            try:
                self.on_outcome(outcome)
            except Exception:
                log.exception("collector outcome listener failed", extra={"collector": self.name})
        return outcome
