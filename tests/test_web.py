"""The HTTP layer: routes registered by owners, conflicts refused, every answer built by one server."""

from __future__ import annotations

import gzip
import http.client
import threading
from collections.abc import Iterator

import pytest
from conftest import free_port

from custode.agent.metric_cache import MetricCache
from custode.agent.web import Request, Response, Route, RouteConflict, Router, make_server
from custode.agent.web.core import core_routes


def echo(request: Request) -> Response:
    return Response.text(200, f"{request.method} {request.path} q={request.query} {len(request.body)} bytes")


@pytest.fixture
def serve() -> Iterator:
    servers = []

    def start(*routes: Route, ready: bool = True) -> int:
        router = Router()
        for route in core_routes(MetricCache(), lambda: (ready, "ready" if ready else "collectors not run yet"),
                                 lambda: (True, "healthy"), router):
            router.add(route, "core")
        for route in routes:
            router.add(route, "feature")
        server = make_server("127.0.0.1", free_port(), router)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server.server_address[1]

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), response
    finally:
        connection.close()


def test_a_second_owner_of_a_method_and_path_is_refused_naming_both() -> None:
    router = Router()
    router.add(Route("/alertmanager", echo, ("POST",)), "alertmanager")
    router.add(Route("/alertmanager", echo, ("GET",)), "status-page")  # another method on the same path is fine
    with pytest.raises(RouteConflict, match=r"POST /alertmanager is claimed by both 'alertmanager' and 'webhook'"):
        router.add(Route("/alertmanager", echo, ("POST",)), "webhook")
    assert router.owner("POST", "/alertmanager") == "alertmanager"
    assert router.allowed("/alertmanager") == ["GET", "POST"]
    with pytest.raises(ValueError, match="must start with '/'"):
        router.add(Route("metrics", echo), "core")


def test_the_runtime_refuses_a_service_route_on_a_core_path(tmp_path) -> None:
    from custode.agent.config_loader import load_text
    from custode.agent.runtime import Agent

    loaded = load_text(f"agent:\n  data_dir: {tmp_path}\n", source="c.yaml")
    agent = Agent(loaded, listen=f"127.0.0.1:{free_port()}")
    try:
        class Shadow:
            name = "shadow"

            def routes(self) -> list[Route]:
                return [Route("/metrics", echo)]

        agent.services.append(Shadow())  # type: ignore[arg-type]
        with pytest.raises(RouteConflict, match="GET /metrics is claimed by both 'core' and 'shadow'"):
            agent.router()
    finally:
        agent.state.close()


def test_core_routes_answer_and_a_404_names_every_titled_page(serve) -> None:
    port = serve(Route("/status", echo, title="/status"), ready=False)
    # "/" is the status page's (tests/test_status_page.py), not the core's: a core-only router has none.
    assert request(port, "GET", "/")[:2] == (404, b"not found: try /metrics, /healthz, /ready, /status\n")
    assert request(port, "GET", "/ready")[:2] == (503, b"collectors not run yet\n")
    assert request(port, "GET", "/healthz")[:2] == (200, b"healthy\n")
    status, body, response = request(port, "GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and response.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == request(port, "GET", "/metrics")[1]


def test_a_feature_route_gets_method_path_query_and_bounded_body(serve) -> None:
    port = serve(Route("/hook", echo, ("POST",), max_bytes=8), Route("/page", echo))
    assert request(port, "POST", "/hook?x=1", b"12345678")[:2] == (200, b"POST /hook q=x=1 8 bytes\n")
    assert request(port, "POST", "/hook", b"123456789")[0] == 413
    assert request(port, "GET", "/page?a=b")[:2] == (200, b"GET /page q=a=b 0 bytes\n")
    status, body, response = request(port, "HEAD", "/page")
    assert (status, body) == (200, b"") and response.getheader("Content-Length") == str(len(b"HEAD /page q= 0 bytes\n"))


def test_wrong_method_is_405_with_allow_and_unknown_path_is_404(serve) -> None:
    port = serve(Route("/hook", echo, ("POST",), max_bytes=8))
    status, body, response = request(port, "GET", "/hook")
    assert (status, response.getheader("Allow")) == (405, "POST")
    assert body == b"method not allowed: /hook takes POST only\n"
    status, body, _ = request(port, "POST", "/metrics", b"x")
    assert status == 405
    status, body, _ = request(port, "GET", "/nowhere")
    assert (status, body) == (404, b"not found: try /metrics, /healthz, /ready\n")


def test_a_raising_handler_answers_500_and_keeps_the_connection(serve) -> None:
    def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    port = serve(Route("/broken", broken))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/broken")
        first = connection.getresponse()
        assert (first.status, first.read()) == (500, b"internal error: see Custode's log\n")
        connection.request("GET", "/healthz")  # same connection
        assert connection.getresponse().status == 200
    finally:
        connection.close()
