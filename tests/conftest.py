"""Shared test helpers: free loopback ports, Debian binaries, isolated data dirs."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from custode.agent import clock


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


GO_PROGRAMS = frozenset({"prometheus", "promtool", "prometheus-alertmanager", "prometheus-node-exporter", "restic",
                         "prometheus-snmp-exporter"})
"""Debian's Go builds make their own system calls: libfaketime cannot move their clock (see .ci/run)."""

_running: dict[str, pytest.Item] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    _running["item"] = item


def require_binary(name: str, package: str) -> str:
    """Path of a Debian-packaged program; a missing one fails loudly, never skips.

    A Go program reads the real clock whatever libfaketime says, so a test that
    starts one must be marked ``real_clock`` and is left out of the run with the
    clock moved ahead; an unmarked one fails here instead of failing on dates.
    """
    item = _running.get("item")
    if name in GO_PROGRAMS and item is not None and item.get_closest_marker("real_clock") is None:
        pytest.fail(f"{item.nodeid} starts {name}, a Go program that ignores libfaketime: "
                    "mark it @pytest.mark.real_clock")
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(f"{name} is not installed: run 'bash scripts/test.sh' (it installs Debian's {package})")
    return path


def host_env() -> dict[str, str]:
    """This process's environment without the libfaketime of .ci/run's shifted-clock run.

    For a program that plays a remote host's part (its backup tool, its
    clock): such a host lives on its own clock, and over sshd it would see the
    real day anyway.
    """
    return {key: value for key, value in os.environ.items() if not key.startswith(("LD_PRELOAD", "FAKETIME"))}


def host_clock() -> float:
    """The machine's own clock, as a program started without the suite's libfaketime reads it.

    A remote host (here: this machine over sshd, or a probe started with a
    clean environment) reports its own time; compare with this, not with the
    test process's clock, which .ci/run moves 400 days ahead in one run.
    """
    done = subprocess.run(["date", "+%s.%N"], capture_output=True, text=True, env=host_env(), check=True,
                          timeout=10)
    return float(done.stdout)


class ManualClock:
    """A clock the test moves by hand (``clock.now = …``): planners, pollers and the outbox take it as ``clock``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


WEBHOOK_SECRET = "segreto-di-prova"


@pytest.fixture
def receiver(monkeypatch):
    """A signed-webhook helpdesk on 127.0.0.1 (tests/webhook_receiver.py); its secret in CUSTODE_TEST_WEBHOOK."""
    from webhook_receiver import WebhookReceiver

    monkeypatch.setenv("CUSTODE_TEST_WEBHOOK", WEBHOOK_SECRET)
    with WebhookReceiver(WEBHOOK_SECRET.encode()) as server:
        yield server


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def wait_http(url: str, timeout: float) -> None:
    """Fail the test unless ``url`` answers 200 within ``timeout`` seconds (a server a test started)."""
    def answers() -> bool:
        try:
            return http_get(url, timeout=1)[0] == 200
        except OSError:
            return False

    assert wait_until(answers, timeout, step=0.2), f"{url} did not answer within {timeout}s"


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def stop_process(proc) -> None:
    """SIGTERM, then SIGKILL after 10 s: a server or agent started by a test never outlives it."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def web_server():
    """Start Custode's HTTP server in this process on the core routes (plus ``extra``); all stopped after the test."""
    import threading

    from custode.agent.metric_cache import MetricCache
    from custode.agent.web import Router, make_server
    from custode.agent.web.core import core_routes

    servers = []

    def start(web=None, limits=None, extra=()):
        router = Router()
        for route in core_routes(MetricCache(), lambda: (True, "ready"), lambda: (True, "ok"), router):
            router.add(route, "core")
        for route in extra:
            router.add(route, "test")
        server = make_server("127.0.0.1", 0, router, web, limits)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """No test may touch the real per-user data dir or /etc/custode."""
    data = tmp_path / "data"
    monkeypatch.setenv("CUSTODE_DATA_DIR", str(data))
    return data


@pytest.fixture
def write_config(tmp_path):
    def write(text: str, name: str = "custode.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


@pytest.fixture
def pin_clock():
    """Pin Custode's clock (``agent.clock``) where a fixture's dates are: ``pin_clock(datetime(..., tzinfo=...))``.

    A test that judges a fixture's fixed date must judge it at the fixture's own
    time, never at the day the suite happens to run. The pinned clock runs on
    from there (``running=False`` freezes it); it is put back after the test.
    Returns the clock callable, for code that takes a ``clock`` parameter.
    """
    with contextlib.ExitStack() as stack:
        def pin(at: float | datetime, running: bool = True) -> clock.Clock:
            return stack.enter_context(clock.pinned(at, running=running))
        yield pin
