"""The HTTP endpoints: /metrics, /healthz, /ready, and optional POST routes (the Alertmanager bridge).

Nothing on the GET side does I/O beyond writing bytes the cache already
rendered, so a scrape answers in well under a millisecond whatever the
collectors are doing. Keep-alive (HTTP/1.1) spares Prometheus a TCP handshake
per scrape.

POST routes accept a bounded body only: the length must be declared and not
exceed the route's limit (checked before a byte of body is read), and the body
must arrive within ``POST_BODY_TIMEOUT`` seconds in total, so neither a huge
nor a trickling client can pin one of the server's threads.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator, Mapping

from custode.agent.metric_cache import MetricCache

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
POST_BODY_TIMEOUT = 10.0  # seconds for the whole body, not per recv()


class ListenError(RuntimeError):
    """The address cannot be bound (in use, not local, no permission)."""


@dataclass(frozen=True)
class PostRoute:
    """A POST endpoint: the largest body it takes, and the handler (headers, body) → (status, reason).

    ``challenge`` is sent as ``WWW-Authenticate`` with a 401, as HTTP requires.
    """

    max_bytes: int
    handle: Callable[[Mapping[str, str], bytes], tuple[int, str]]
    challenge: str | None = None


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively (HTTP field names are)."""

    def __init__(self, items: Mapping[str, str] | list[tuple[str, str]]) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items = {name.lower(): value for name, value in pairs}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def make_server(host: str, port: int, cache: MetricCache, ready: Callable[[], tuple[bool, str]],
                healthy: Callable[[], tuple[bool, str]],
                post_routes: Mapping[str, PostRoute] | None = None) -> ThreadingHTTPServer:
    """Bind (raising ListenError that names the address on failure) and return the server."""
    posts: dict[str, PostRoute] = dict(post_routes or {})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, the second waits
        # for the client's delayed ACK (~40 ms on Linux) on every keep-alive scrape.
        disable_nagle_algorithm = True
        server_version = "custode"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                exposition = cache.exposition
                if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                    self._send(200, exposition.gzipped, CONTENT_TYPE, gzip=True)
                else:
                    self._send(200, exposition.plain, CONTENT_TYPE)
            elif path in ("/healthz", "/ready"):
                ok, reason = (healthy if path == "/healthz" else ready)()
                self._send(200 if ok else 503, (reason + "\n").encode(), TEXT)
            elif path == "/":
                body = (b"<html><head><title>Custode</title></head><body><h1>Custode</h1>"
                        b"<p><a href='/metrics'>/metrics</a> <a href='/healthz'>/healthz</a> "
                        b"<a href='/ready'>/ready</a></p></body></html>")
                self._send(200, body, "text/html; charset=utf-8")
            elif path in posts:
                self._text(405, f"method not allowed: {path} takes POST only", {"Allow": "POST"})
            else:
                self._send(404, b"not found: try /metrics, /healthz or /ready\n", TEXT)

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            route = posts.get(path)
            if route is None:
                # The body is left unread, so the connection cannot carry another request.
                self._text(404, f"not found: no POST endpoint at {path}", close=True)
                return
            length = self._declared_length(route)
            if length is None:
                return
            body = self._read_body(length)
            if body is None:
                return
            try:
                status, reason = route.handle(Headers(list(self.headers.items())), body)
            except Exception:  # a handler bug must answer 500, not drop the connection
                log.exception("POST handler failed", extra={"path": path})
                status, reason = 500, "internal error: see Custode's log"
            extra = {"WWW-Authenticate": route.challenge} if status == 401 and route.challenge else None
            self._text(status, reason, extra)

        def handle_expect_100(self) -> bool:
            """Refuse an oversized body before the client sends it (curl asks for large uploads)."""
            route = posts.get(self.path.split("?", 1)[0])
            if route is not None and self.command == "POST":
                return self._declared_length(route) is not None and super().handle_expect_100()
            return super().handle_expect_100()

        def _declared_length(self, route: PostRoute) -> int | None:
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
                self._text(408, f"request timeout: the body did not arrive within {POST_BODY_TIMEOUT:g} s",
                           close=True)
                return None
            finally:
                try:
                    self.connection.settimeout(previous)
                except OSError:
                    pass
            return b"".join(chunks)

        def _text(self, status: int, reason: str, headers: Mapping[str, str] | None = None,
                  close: bool = False) -> None:
            extra = dict(headers or {})
            if close:
                extra["Connection"] = "close"
            self._send(status, (reason + "\n").encode(), TEXT, headers=extra)

        def _send(self, status: int, body: bytes, content_type: str, gzip: bool = False,
                  headers: Mapping[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if gzip:
                self.send_header("Content-Encoding", "gzip")
            for name, value in (headers or {}).items():
                self.send_header(name, value)  # "Connection: close" also sets close_connection
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("http %s", format % args)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_cls = type("Server", (_Server,), {"address_family": family})
    try:
        return server_cls((host, port), Handler)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                          "choose another address with --listen or agent.listen") from None


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
