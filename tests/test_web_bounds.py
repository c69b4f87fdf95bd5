"""The server's bounds: floods of idle connections, slow and broken clients, bad request heads.

The flood runs against ``custode run`` in a child process, so its thread
count and memory are the agent's own; the rest runs the server in this
process with short timeouts.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, stop_process, wait_until

from custode.agent.web import Response, Route
from custode.agent.web.server import Limits

FLOOD = 2000


def _proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _scrape_seconds(port: int) -> float:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200 and b"custode_collector_success" in body
    return time.monotonic() - started


@pytest.mark.integration
def test_a_flood_of_idle_connections_neither_blocks_the_scrape_nor_grows_threads(tmp_path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
        pytest.fail(f"this machine allows {hard} open files; the test needs {FLOOD + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FLOOD + 200), hard))
    port = free_port()
    env = {**os.environ, "CUSTODE_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "custode.yaml").write_text("agent:\n  check_interval: 1s\n")
    proc = subprocess.Popen([sys.executable, "-m", "custode.agent", "run", "--listen", f"127.0.0.1:{port}",
                             "--config", str(tmp_path / "custode.yaml")],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "custode.log", "wb"))
    flood: list[socket.socket] = []
    try:
        def ready() -> bool:
            try:
                return _scrape_seconds(port) < 5
            except (OSError, AssertionError):
                return False

        assert wait_until(ready, 30, step=0.2), (tmp_path / "custode.log").read_text()
        for _ in range(3):
            _scrape_seconds(port)
        threads_before = _proc_status(proc.pid, "Threads")
        rss_before = _proc_status(proc.pid, "VmRSS")
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        worst, threads_during = 0.0, 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            worst = max(worst, _scrape_seconds(port))
            threads_during = max(threads_during, _proc_status(proc.pid, "Threads"))
            time.sleep(0.5)
        rss_during = _proc_status(proc.pid, "VmRSS")
        assert worst < 1.0, f"a scrape took {worst:.2f} s during the flood"
        assert threads_during <= threads_before + 8, (threads_before, threads_during)
        assert rss_during - rss_before < 40_000, f"RSS grew {rss_during - rss_before} kB"
        for sock in flood:
            sock.close()
        flood.clear()
        assert _scrape_seconds(port) < 1.0
        assert wait_until(lambda: _server_counts(port).get("evicted", 0) > 0, 10), _server_counts(port)
        assert _server_counts(port)["accepted"] >= FLOOD
    finally:
        for sock in flood:
            sock.close()
        stop_process(proc)
    log = (tmp_path / "custode.log").read_text()
    assert "Traceback" not in log
    assert all(json.loads(line) for line in log.splitlines())


def _server_counts(port: int) -> dict[str, float]:
    """custode_http_connections_handled_total by outcome, from the agent's own exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return {sample.labels["outcome"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "custode_http_connections_handled_total"}


@pytest.fixture
def serve(web_server):
    return lambda limits, extra=(): web_server(limits=limits, extra=extra)


def _exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _no_tracebacks(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a client's behaviour logged a traceback"


def test_an_idle_connection_is_closed_after_the_header_timeout(serve, caplog) -> None:
    caplog.set_level(logging.INFO)
    server = serve(Limits(header_timeout=0.5))
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server
        assert 0.4 < time.monotonic() - started < 3
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in answer
    events = [getattr(r, "event", None) for r in caplog.records if r.getMessage() == "http client error"]
    assert events.count("header_timeout") == 2
    _no_tracebacks(caplog)


def test_clients_that_vanish_mid_request_leave_one_log_line_and_no_traceback(serve, caplog) -> None:
    caplog.set_level(logging.INFO)
    server = serve(Limits(header_timeout=2))
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHo")
    for _ in range(20):  # ask, then go away without reading the answer
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert wait_until(lambda: server.client_errors.counts["closed_mid_head"] == 1, 5)
    assert _scrape_ok(port)
    _no_tracebacks(caplog)


def _scrape_ok(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/healthz")
    ok = conn.getresponse().status == 200
    conn.close()
    return ok


def test_when_full_the_longest_idle_connection_makes_room(serve) -> None:
    server = serve(Limits(max_connections=5, header_timeout=30))
    port = server.server_address[1]
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
    try:
        time.sleep(0.2)
        assert _scrape_ok(port)
        assert server.totals["evicted"] == 1
        assert idle[0].recv(10) == b""  # the oldest idle one was closed
    finally:
        for sock in idle:
            sock.close()


def test_unauthenticated_partial_posts_are_refused_without_reading_or_holding_them(serve) -> None:
    seen: list[bytes] = []
    route = Route("/hook", lambda request: seen.append(request.body) or Response.text(200, "ok"), ("POST",),
                  max_bytes=1 << 20,
                  authorize=lambda headers: None if headers.get("Authorization") == "Bearer t"
                  else Response.text(401, "authentication required"))
    server = serve(Limits(header_timeout=5), [route])
    port = server.server_address[1]
    started = time.monotonic()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(300)]
    try:
        for sock in socks:
            sock.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
        answers = [sock.recv(4096) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 401 ") for a in answers)
    assert time.monotonic() - started < 5  # none waited for its megabyte
    assert seen == []
    answer = _exchange(port, b"POST /hook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
                             b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
    assert answer.startswith(b"HTTP/1.1 200 ") and seen == [b"hi"]


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    (b"GET metrics HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n\r\n", 431),
])
def test_a_bad_request_head_gets_its_status_and_the_connection_closes(serve, caplog, request_bytes,
                                                                       status) -> None:
    server = serve(Limits(header_timeout=5))
    answer = _exchange(server.server_address[1], request_bytes)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:80]
    assert b"Connection: close" in answer
    _no_tracebacks(caplog)


def test_keep_alive_carries_several_requests_and_http10_closes(serve) -> None:
    server = serve(Limits())
    port = server.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b"ok\n"
    conn.close()
    assert server.totals["accepted"] == 1
    answer = _exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in answer
