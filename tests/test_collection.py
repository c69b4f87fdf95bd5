"""A hanging or raising collector never blocks the scrape or the other collectors."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import free_port, http_get, wait_until

from custode.agent.collection import CollectorRunner
from custode.agent.config_loader import load_text
from custode.agent.metric_cache import MetricCache
from custode.agent.runtime import Agent
from custode.collectors.base import Collector, CollectorUnavailable, gauge


class Hanging(Collector):
    name = "test_hang"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = 0

    def collect(self):
        self.started += 1
        self.release.wait(60)
        return []


class Raising(Collector):
    name = "test_raise"

    def collect(self):
        raise RuntimeError("disk controller said no")


class Counting(Collector):
    name = "test_count"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def collect(self):
        self.calls += 1
        family = gauge("custode_test_calls", "How often the counting collector ran.")
        family.add_metric([], self.calls)
        return [family]


class Absent(Collector):
    name = "test_absent"

    def collect(self):
        raise CollectorUnavailable("no such subsystem here")


def _value(body: bytes, series: str) -> float | None:
    for line in body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def test_runner_times_out_and_does_not_pile_up_threads() -> None:
    cache = MetricCache()
    hanging = Hanging()
    runner = CollectorRunner(hanging, timeout=0.2, cache=cache)
    start = time.monotonic()
    first = runner.run()
    assert time.monotonic() - start < 1.0
    assert not first.success and "timed out after 0.2s" in (first.error or "")
    second = runner.run()
    assert not second.success and "still hanging" in (second.error or "")
    assert hanging.started == 1, "a hung collector must not be started again while its thread lives"
    assert second.consecutive_failures == 2
    hanging.release.set()
    wait_until(lambda: runner._hung is None or not runner._hung.is_alive(), 2)
    third = runner.run()
    assert hanging.started == 2 and third.success, "restarted once its thread returned, and recovered"


def test_raising_collector_reports_error_and_drops_stale_series() -> None:
    cache = MetricCache()
    ok = CollectorRunner(Counting(), timeout=1, cache=cache)
    ok.run()
    assert b"custode_test_calls 1.0" in cache.exposition.plain
    bad = CollectorRunner(Raising(), timeout=1, cache=cache)
    outcome = bad.run()
    assert outcome.error == "RuntimeError: disk controller said no"
    body = cache.exposition.plain
    assert _value(body, 'custode_collector_success{collector="test_raise"}') == 0.0
    assert _value(body, 'custode_collector_success{collector="test_count"}') == 1.0


def test_unavailable_is_a_capability_not_a_failure() -> None:
    cache = MetricCache()
    outcome = CollectorRunner(Absent(), timeout=1, cache=cache).run()
    assert outcome.success and outcome.unavailable and outcome.error == "no such subsystem here"


@pytest.fixture
def agent_with_bad_collectors():
    loaded = load_text("agent:\n  check_interval: 1s\nchecks:\n  collectors:\n    failures: 2\n")
    hanging, counting = Hanging(), Counting()
    extra = [(hanging, 0.5, 0.3), (Raising(), 0.5, 0.3), (counting, 0.5, 0.3)]
    agent = Agent(loaded, listen=f"127.0.0.1:{free_port()}", extra_collectors=extra)
    agent.start()
    yield agent, hanging, counting
    hanging.release.set()
    agent.stop()


def test_scrape_answers_fast_while_collectors_hang_and_raise(agent_with_bad_collectors) -> None:
    agent, hanging, counting = agent_with_bad_collectors
    url = f"http://127.0.0.1:{agent.port}/metrics"
    assert wait_until(lambda: agent.ready()[0], 15), agent.ready()[1]
    calls_before = counting.calls
    for _ in range(20):
        start = time.monotonic()
        status, body = http_get(url, timeout=1.0)
        assert status == 200
        assert time.monotonic() - start < 1.0
        time.sleep(0.05)
    assert counting.calls > calls_before, "the healthy collector kept running"
    assert _value(body, 'custode_collector_success{collector="test_hang"}') == 0.0
    assert _value(body, 'custode_collector_success{collector="test_raise"}') == 0.0
    assert _value(body, 'custode_collector_success{collector="test_count"}') == 1.0
    assert _value(body, 'custode_collector_success{collector="cpu"}') == 1.0
    assert b"node_cpu_seconds_total{" in body
    assert hanging.started == 1


def test_failing_collectors_become_incidents(agent_with_bad_collectors) -> None:
    agent, _, _ = agent_with_bad_collectors

    def opened() -> set[str]:
        return {i.target for i in agent.incidents.open_incidents()}

    assert wait_until(lambda: {f"{agent.checks.host}:collector/test_raise",
                               f"{agent.checks.host}:collector/test_hang"} <= opened(), 15), opened()
    assert f"{agent.checks.host}:collector/test_count" not in opened()
    series = 'custode_incidents_open{severity="warning",tenant="default"}'
    assert wait_until(lambda: (_value(http_get(f"http://127.0.0.1:{agent.port}/metrics")[1], series) or 0) >= 2, 5)


def test_health_and_readiness_endpoints() -> None:
    loaded = load_text("")
    agent = Agent(loaded, listen=f"127.0.0.1:{free_port()}")
    assert agent.ready()[0] is False
    agent.start()
    try:
        base = f"http://127.0.0.1:{agent.port}"
        assert http_get(base + "/healthz")[0] == 200
        assert wait_until(lambda: http_get(base + "/ready")[0] == 200, 15)
        assert http_get(base + "/nope")[0] == 404
        status, body = http_get(base + "/metrics", headers={"Accept-Encoding": "gzip"})
        assert status == 200
        import gzip

        assert b"custode_collector_success" in gzip.decompress(body)
    finally:
        agent.stop()
