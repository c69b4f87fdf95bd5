"""A collection cycle: one wake-up, one render for the collectors that are quick, none held back by a slow one;
and the collectors' last runs reach SQLite in batches that count failures as one write per run did."""

from __future__ import annotations

import threading
import time

from test_collection import Counting, Hanging, Raising

from custode.agent.collection import BATCH_WAIT, CollectionCycle, CollectorRunner, RunOutcome, cycles
from custode.agent.collector_status import CollectorStatusBuffer
from custode.agent.metric_cache import MetricCache
from custode.agent.state import State
from custode.collectors.base import Collector


class Threads(Collector):
    name = "test_threads"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def collect(self):
        self.seen.append(threading.get_ident())
        return []


def _counting_renders(cache: MetricCache) -> list[float]:
    renders: list[float] = []
    original = cache._render

    def counted() -> None:
        renders.append(time.monotonic())
        original()

    cache._render = counted  # type: ignore[method-assign]
    return renders


def test_quick_collectors_are_published_in_one_render_and_a_hanging_one_alone() -> None:
    cache = MetricCache()
    renders = _counting_renders(cache)
    hanging = Hanging()
    runners = [CollectorRunner(Counting(), timeout=5, cache=cache, interval=15),
               CollectorRunner(Raising(), timeout=5, cache=cache, interval=15),
               CollectorRunner(hanging, timeout=BATCH_WAIT + 0.5, cache=cache, interval=15)]
    cycle = CollectionCycle(runners, cache)
    started = time.monotonic()
    outcomes = cycle.run()
    assert [o.success for o in outcomes] == [True, False, False]
    assert "timed out" in (outcomes[2].error or "")
    assert len(renders) == 2, "one render for the two quick collectors, one for the hanging one"
    assert renders[0] - started < BATCH_WAIT + 0.3, "the quick ones were not held back until the deadline"
    assert b"custode_test_calls 1.0" in cache.exposition.plain
    hanging.release.set()


def test_a_collector_runs_on_its_own_thread_every_time() -> None:
    cache = MetricCache()
    collector = Threads()
    runner = CollectorRunner(collector, timeout=2, cache=cache, interval=15)
    cycle = CollectionCycle([runner], cache)
    for _ in range(3):
        cycle.run()
    assert len(set(collector.seen)) == 1 and collector.seen[0] != threading.get_ident()


def test_cycles_group_runners_by_interval() -> None:
    cache = MetricCache()
    runners = [CollectorRunner(Counting(), 1, cache, interval=15), CollectorRunner(Raising(), 1, cache, interval=300),
               CollectorRunner(Threads(), 1, cache, interval=15)]
    grouped = cycles(runners, cache)
    assert [(c.interval, [r.name for r in c.runners]) for c in grouped] == \
        [(15, ["test_count", "test_threads"]), (300, ["test_raise"])]


def _outcomes(pattern: str) -> list[RunOutcome]:
    return [RunOutcome("smart", mark == "+", 0.1, 1000.0 + index, None if mark == "+" else f"failure {index}")
            for index, mark in enumerate(pattern)]


def test_batched_status_writes_count_like_one_write_per_run(tmp_path) -> None:
    pattern = "++---+--+----"
    direct, batched = State(tmp_path / "direct.db"), State(tmp_path / "batched.db")
    buffer = CollectorStatusBuffer(batched, flush_every=3600)
    for step, outcome in enumerate(_outcomes(pattern)):
        direct.record_collector_run(outcome.collector, outcome.finished_at, outcome.success, outcome.duration,
                                    outcome.error)
        buffer.record(outcome)
        if step % 4 == 3:
            buffer.flush()
        row_direct, = direct.collector_statuses()
        assert dict(row_direct)["consecutive_failures"] == len(pattern[:step + 1]) - len(pattern[:step + 1].rstrip("-"))
    buffer.flush()
    assert [dict(row) for row in direct.collector_statuses()] == [dict(row) for row in batched.collector_statuses()]


def test_a_change_of_success_is_written_at_once_and_repeats_wait(tmp_path) -> None:
    state = State(tmp_path / "state.db")
    buffer = CollectorStatusBuffer(state, flush_every=3600)
    first, second, third = _outcomes("++-")
    assert buffer.record(first) and state.collector_statuses()[0]["success"] == 1
    assert not buffer.record(second) and state.collector_statuses()[0]["last_run_at"] == first.finished_at
    assert buffer.record(third) and state.collector_statuses()[0]["success"] == 0
