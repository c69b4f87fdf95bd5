"""Shared test helpers: free loopback ports, Debian binaries, isolated data dirs."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from agent import clock


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def require_binary(name: str, package: str) -> str:
    """Path of a Debian-packaged program; a missing one fails loudly, never skips."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(f"{name} is not installed: run 'bash scripts/test.sh' (it installs Debian's {package})")
    return path


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


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
