"""The HTTP server: reads a request, finds its route, writes the handler's answer.

Keep-alive (HTTP/1.1) spares Prometheus a TCP handshake per scrape. A body
is accepted only for a route that takes one, only with a declared length
within the route's ``max_bytes`` (checked before a byte of it is read), and
only if it arrives within ``POST_BODY_TIMEOUT`` seconds in total, so neither a
huge nor a trickling client can pin one of the server's threads. A handler
that raises answers 500; the connection survives.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from custode.agent.web.routes import TEXT, Headers, Request, Response, Route, Router

log = logging.getLogger(__name__)
POST_BODY_TIMEOUT = 10.0  # seconds for the whole body, not per recv()
_TAKES_BODY = frozenset({"POST", "PUT", "PATCH"})


class ListenError(RuntimeError):
    """The address cannot be bound (in use, not local, no permission)."""


class WebServer(ThreadingHTTPServer):
    """A threading server that carries the router its handler reads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], router: Router) -> None:
        self.router = router
        super().__init__(address, RequestHandler)


class _WebServer6(WebServer):
    address_family = socket.AF_INET6


class RequestHandler(BaseHTTPRequestHandler):
    """One connection; every method goes through :meth:`_dispatch`."""

    server: WebServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits
    # for the client's delayed ACK (~40 ms on Linux) on every keep-alive scrape.
    disable_nagle_algorithm = True
    server_version = "custode"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        router = self.server.router
        route = router.match(self.command, path)
        if route is None:
            self._refuse(path, router.allowed(path))
            return
        body = b""
        if self.command in _TAKES_BODY:
            length = self._declared_length(route)
            if length is None:
                return
            read = self._read_body(length)
            if read is None:
                return
            body = read
        request = Request(self.command, path, query, Headers(list(self.headers.items())), body)
        try:
            response = route.handle(request)
        except Exception:  # a handler bug must answer 500, not drop the connection
            log.exception("HTTP handler failed", extra={"path": path, "method": self.command})
            response = Response.text(500, "internal error: see Custode's log")
        headers = dict(response.headers)
        if response.status == 401 and route.challenge:
            headers.setdefault("WWW-Authenticate", route.challenge)
        self._send(response.status, response.body, response.content_type, headers)

    def _refuse(self, path: str, allowed: list[str]) -> None:
        """404 or 405; with a body left unread, the connection cannot carry another request."""
        unread = self.command in _TAKES_BODY
        if allowed:
            methods = " or ".join(allowed)
            self._text(405, f"method not allowed: {path} takes {methods} only",
                       {"Allow": ", ".join(allowed)}, close=unread)
        elif self.command == "POST":
            self._text(404, f"not found: no POST endpoint at {path}", close=True)
        else:
            pages = ", ".join(route.path for route in self.server.router.pages())
            self._text(404, f"not found: try {pages}", close=unread)

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before the client sends it (curl asks for large uploads)."""
        route = self.server.router.match(self.command, self.path.partition("?")[0])
        if route is not None and self.command in _TAKES_BODY:
            return self._declared_length(route) is not None and super().handle_expect_100()
        return super().handle_expect_100()

    def _declared_length(self, route: Route) -> int | None:
        """Content-Length when acceptable; otherwise answer 411/400/413 (closing) and return None."""
        raw = self.headers.get("Content-Length")
        if raw is None:
            self._text(411, "length required: send the body with a Content-Length header", close=True)
            return None
        try:
            length = int(raw.strip())
        except ValueError:
            length = -1
        if length < 0:
            self._text(400, f"bad request: Content-Length {raw!r} is not a non-negative integer", close=True)
            return None
        if length > route.max_bytes:
            self._text(413, f"payload too large: {length} bytes, the limit is {route.max_bytes}; "
                            "send fewer alerts per notification (webhook_configs max_alerts) "
                            "or raise max_bytes", close=True)
            return None
        return length

    def _read_body(self, length: int) -> bytes | None:
        """Exactly ``length`` bytes within POST_BODY_TIMEOUT in total; None (answered 408/400) otherwise."""
        previous = self.connection.gettimeout()
        deadline = time.monotonic() + POST_BODY_TIMEOUT
        chunks: list[bytes] = []
        received = 0
        try:
            while received < length:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.connection.settimeout(remaining)
                chunk = self.rfile.read1(length - received)
                if not chunk:
                    self._text(400, f"bad request: body ended after {received} of {length} bytes", close=True)
                    return None
                chunks.append(chunk)
                received += len(chunk)
        except (TimeoutError, socket.timeout):
            self._text(408, f"request timeout: the body did not arrive within {POST_BODY_TIMEOUT:g} s", close=True)
            return None
        finally:
            try:
                self.connection.settimeout(previous)
            except OSError:
                pass
        return b"".join(chunks)

    def _text(self, status: int, reason: str, headers: Mapping[str, str] | None = None, close: bool = False) -> None:
        extra = dict(headers or {})
        if close:
            extra["Connection"] = "close"
        self._send(status, (reason + "\n").encode(), TEXT, extra)

    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)  # "Connection: close" also sets close_connection
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        log.debug("http %s", format % args)


def make_server(host: str, port: int, router: Router) -> WebServer:
    """Bind (raising ListenError that names the address on failure) and return the server."""
    server_cls = _WebServer6 if ":" in host else WebServer
    try:
        return server_cls((host, port), router)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                          "choose another address with --listen or agent.listen") from None


def serve_in_thread(server: WebServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
