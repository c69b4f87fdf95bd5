"""The HTTP endpoints: /metrics, /healthz, /ready.

Nothing here does I/O beyond writing bytes the cache already rendered, so a
scrape answers in well under a millisecond whatever the collectors are doing.
Keep-alive (HTTP/1.1) spares Prometheus a TCP handshake per scrape.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from agent.metric_cache import MetricCache

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ListenError(RuntimeError):
    """The address cannot be bound (in use, not local, no permission)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def make_server(host: str, port: int, cache: MetricCache, ready: Callable[[], tuple[bool, str]],
                healthy: Callable[[], tuple[bool, str]]) -> ThreadingHTTPServer:
    """Bind (raising ListenError that names the address on failure) and return the server."""

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
                self._send(200 if ok else 503, (reason + "\n").encode(), "text/plain; charset=utf-8")
            elif path == "/":
                body = (b"<html><head><title>Custode</title></head><body><h1>Custode</h1>"
                        b"<p><a href='/metrics'>/metrics</a> <a href='/healthz'>/healthz</a> "
                        b"<a href='/ready'>/ready</a></p></body></html>")
                self._send(200, body, "text/html; charset=utf-8")
            else:
                self._send(404, b"not found: try /metrics, /healthz or /ready\n", "text/plain; charset=utf-8")

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def _send(self, status: int, body: bytes, content_type: str, gzip: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if gzip:
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("http " + format % args)

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
