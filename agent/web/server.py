"""The HTTP server: one event loop holds every connection, a small pool runs the handlers.

A thread per connection (http.server's ThreadingHTTPServer, what Custode
had) was measured at 3,014 threads and 132 MB for 3,000 idle connections,
with ``/metrics`` unanswered for over a minute after them. Here an idle
connection costs a socket and a few hundred bytes in one asyncio loop; only
a request whose head is complete and authenticated reaches a worker thread,
so the thread count is fixed (the loop plus :attr:`Limits.workers`).

The limits, in the order a request meets them:

* at most :attr:`Limits.max_connections` at once; when full, a new
  connection evicts the connection idle the longest (first those that never
  sent a request), so a flood of idle sockets cannot lock Prometheus out;
* TLS, when the web config asks for it; a plain-HTTP request on the TLS
  port gets the same 400 node_exporter gives;
* the request head within :attr:`Limits.header_timeout` of the connection
  (or, on a kept-alive connection, of its first byte), at most
  :data:`~custode.agent.web.http1.MAX_HEAD_BYTES`;
* authentication from the headers (the route's own, else the web config's
  basic auth) before a byte of the body is read;
* a body only for a route that takes one, only with a declared length
  within the route's ``max_bytes``, and only if it arrives within
  :attr:`Limits.body_timeout` in total.

A client that breaks a rule gets its status and one JSON log line, never a
traceback; a handler that raises answers 500 and the connection survives.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from custode.agent.web.basic_auth import credentials
from custode.agent.web.http1 import (
    MAX_HEAD_BYTES,
    BadRequest,
    Head,
    body_length,
    carries_body,
    merged,
    parse_head,
    response_head,
)
from custode.agent.web.routes import Headers, Request, Response, Route, Router
from custode.agent.web.webconfig import WebConfigSource, WebSettings

log = logging.getLogger(__name__)
POST_BODY_TIMEOUT = 10.0  # seconds for the whole body, not per recv()
_TAKES_BODY = frozenset({"POST", "PUT", "PATCH"})
_TLS_HANDSHAKE = 0x16  # the first byte of every TLS ClientHello record
_PLAIN_ON_TLS = (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                 b"Client sent an HTTP request to an HTTPS server.\n")
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class ListenError(RuntimeError):
    """The address cannot be bound (in use, not local, no permission)."""


@dataclass(frozen=True)
class Limits:
    """The server's bounds; the defaults suit a host scraped by one or two Prometheus servers."""

    max_connections: int = 1024
    workers: int = 8
    header_timeout: float = 10.0
    idle_timeout: float = 120.0  # between requests on a kept-alive connection (Prometheus scrapes every 15-60 s)
    body_timeout: float | None = None  # None: POST_BODY_TIMEOUT, read when the request comes (tests change it)
    write_timeout: float = 30.0
    reload_interval: float = 3.0


class _ClientErrors:
    """One JSON log line per client error, at most ``burst`` per ``window`` seconds, then a count."""

    def __init__(self, burst: int = 20, window: float = 10.0) -> None:
        self.burst, self.window = burst, window
        self._start, self._logged, self._dropped = 0.0, 0, 0
        self.counts: Counter[str] = Counter()

    def note(self, peer: str, event: str, detail: str, **fields: object) -> None:
        self.counts[event] += 1
        now = time.monotonic()
        if now - self._start > self.window:
            if self._dropped:
                log.info("http client errors not logged", extra={"count": self._dropped, "seconds": self.window})
            self._start, self._logged, self._dropped = now, 0, 0
        if self._logged >= self.burst:
            self._dropped += 1
            return
        self._logged += 1
        log.info("http client error", extra={"peer": peer, "event": event, "detail": detail, **fields})


class _Connection:
    """What the loop knows of one connection: whether it may be evicted, and how to end it."""

    __slots__ = ("peer", "idle_since", "requests", "close")

    def __init__(self, peer: str, now: float) -> None:
        self.peer = peer
        self.idle_since: float | None = now
        self.requests = 0
        self.close: Callable[[], None] = lambda: None


def _peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)


class WebServer:
    """Bound at construction (so a busy port fails the start, naming it); served by :meth:`serve_forever`."""

    def __init__(self, address: tuple[str, int], router: Router, web: WebConfigSource | None = None,
                 limits: Limits | None = None) -> None:
        self.router = router
        self.web = web if web is not None else WebConfigSource(None)
        self.limits = limits or Limits()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # POSIX: rebind while TIME_WAIT
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.socket = sock
        self.server_address = sock.getsockname()
        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix="http-worker")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._done = threading.Event()
        self._serving = False
        self._shutdown_requested = threading.Event()
        self._conns: dict[int, _Connection] = {}
        self.client_errors = _ClientErrors()
        self.totals: Counter[str] = Counter()

    # --- life cycle -------------------------------------------------------------------

    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Run the loop until :meth:`shutdown` in the caller's thread (``poll_interval``: socketserver's, unused)."""
        loop = asyncio.SelectorEventLoop()  # epoll/kqueue; the Proactor loop cannot watch a socket before TLS
        self._loop = loop
        self._serving = True
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._done.set()

    def shutdown(self) -> None:
        """Stop serving and wait (a few seconds at most) for the loop to end."""
        self._shutdown_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed in between
                pass
        if self._serving:
            self._done.wait(10.0)

    def server_close(self) -> None:
        self.socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._shutdown_requested.is_set():
            return
        tasks: set[asyncio.Task[None]] = set()
        accept = loop.create_task(self._accept(tasks))
        reload = loop.create_task(self._reload())
        await self._stop.wait()
        accept.cancel()
        reload.cancel()
        for conn in list(self._conns.values()):
            conn.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(accept, reload, *tasks, return_exceptions=True)

    async def _reload(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.limits.reload_interval)
            try:
                await loop.run_in_executor(self._pool, self.web.refresh)
            except Exception:  # noqa: BLE001 - a reload bug must not stop serving
                log.exception("web config reload failed")

    # --- connections ------------------------------------------------------------------

    async def _accept(self, tasks: set[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        warned = 0.0
        while True:
            try:
                sock, address = await loop.sock_accept(self.socket)
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    if time.monotonic() - warned > 60:
                        warned = time.monotonic()
                        log.warning("cannot accept connections: out of file descriptors",
                                    extra={"error": exc.strerror, "open_connections": len(self._conns),
                                           "fix": "raise LimitNOFILE= in the unit, or lower the connection cap"})
                    await asyncio.sleep(0.1)
                continue
            self.totals["accepted"] += 1
            if len(self._conns) >= self.limits.max_connections and not self._evict_one():
                self.totals["refused"] += 1
                sock.close()
                continue
            task = loop.create_task(self._connection(sock, _peer(address)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def _evict_one(self) -> bool:
        """Close the idle connection with the least claim to stay; False when every one is busy."""
        idle = [(conn.requests > 0, conn.idle_since, key) for key, conn in self._conns.items()
                if conn.idle_since is not None]
        if not idle:
            return False
        _, _, key = min(idle)
        victim = self._conns.pop(key)
        victim.close()
        self.totals["evicted"] += 1
        return True

    async def _connection(self, sock: socket.socket, peer: str) -> None:
        loop = asyncio.get_running_loop()
        conn = _Connection(peer, loop.time())
        key = id(conn)
        self._conns[key] = conn
        writer: asyncio.StreamWriter | None = None
        conn.close = sock.close
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # head and body in one segment
            settings = self.web.settings
            if settings.ssl_context is not None and not await self._speaks_tls(sock, conn, peer):
                return
            reader = asyncio.StreamReader(limit=MAX_HEAD_BYTES, loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            handshake = self.limits.header_timeout if settings.ssl_context is not None else None
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, sock, ssl=settings.ssl_context, ssl_handshake_timeout=handshake)
            conn.close = transport.abort
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            if settings.allowed_sans and not self._san_allowed(transport, settings):
                self.client_errors.note(peer, "client_certificate_refused", "no allowed SAN in the certificate")
                return
            await self._serve(conn, reader, writer, settings)
        except asyncio.CancelledError:
            raise
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:  # ssl.SSLError is an OSError
            self.client_errors.note(peer, _kind(exc), _detail(exc))
        finally:
            self._conns.pop(key, None)
            if writer is not None:
                await _close(writer)
            else:
                conn.close()

    async def _speaks_tls(self, sock: socket.socket, conn: _Connection, peer: str) -> bool:
        """Wait for the first byte; a plain-HTTP request is answered 400 (as Go's server does) and closed."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        fd = sock.fileno()
        watching = True

        def unwatch() -> None:
            # Before the socket closes: the selector would keep a closed descriptor,
            # and the next socket given the same number could not be registered.
            nonlocal watching
            if watching:
                watching = False
                loop.remove_reader(fd)

        def evict() -> None:
            unwatch()
            if not readable.done():
                readable.set_exception(ConnectionAbortedError("evicted while idle"))
            sock.close()

        conn.close = evict
        loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(readable, self.limits.header_timeout)
        except TimeoutError:
            self.client_errors.note(peer, "handshake_timeout",
                                    f"no TLS handshake within {self.limits.header_timeout:g} s")
            return False
        finally:
            unwatch()
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        if not first:
            return False
        if first[0] != _TLS_HANDSHAKE:
            self.client_errors.note(peer, "plain_http_on_tls", "an HTTP request on the HTTPS port")
            _answer_and_close(sock, _PLAIN_ON_TLS)
            return False
        return True

    @staticmethod
    def _san_allowed(transport: asyncio.BaseTransport, settings: WebSettings) -> bool:
        cert = transport.get_extra_info("peercert") or {}
        names = {value for _, value in cert.get("subjectAltName", ())}
        return bool(names & settings.allowed_sans)

    # --- requests ---------------------------------------------------------------------

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     settings: WebSettings) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn.idle_since = loop.time()
            raw = await self._read_head(conn, reader, writer, settings)
            if raw is None:
                return
            conn.idle_since = None
            conn.requests += 1
            try:
                head = parse_head(raw)
            except BadRequest as exc:
                self.client_errors.note(conn.peer, "bad_request", exc.reason, status=exc.status)
                await self._write(writer, settings, "GET", Response.text(exc.status, exc.reason), close=True)
                return
            if not await self._request(conn, head, reader, writer, settings):
                return
            settings = self.web.settings  # a reload applies to the next request too (headers, users)

    async def _read_head(self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         settings: WebSettings) -> bytes | None:
        """The next request head; None when the client closed, went quiet, or was answered and dropped."""
        fresh = conn.requests == 0
        wait = self.limits.header_timeout if fresh else self.limits.idle_timeout
        try:
            first = await asyncio.wait_for(reader.read(1), wait)
        except TimeoutError:
            if fresh:
                self.client_errors.note(conn.peer, "header_timeout", f"no request within {wait:g} s")
            return None
        if not first:
            return None
        try:
            rest = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.limits.header_timeout)
        except TimeoutError:
            reason = f"request timeout: the request head did not arrive within {self.limits.header_timeout:g} s"
            self.client_errors.note(conn.peer, "header_timeout", reason)
            await self._write(writer, settings, "GET", Response.text(408, reason), close=True)
            return None
        except asyncio.LimitOverrunError:
            reason = f"request header fields too large: the head is over {MAX_HEAD_BYTES} bytes"
            self.client_errors.note(conn.peer, "head_too_large", reason)
            await self._write(writer, settings, "GET", Response.text(431, reason), close=True)
            return None
        except asyncio.IncompleteReadError:
            self.client_errors.note(conn.peer, "closed_mid_head", "the client closed during the request head")
            return None
        return first + rest

    async def _request(self, conn: _Connection, head: Head, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter, settings: WebSettings) -> bool:
        """Answer one request; True when the connection may carry another."""
        unread = carries_body(head) and head.method in _TAKES_BODY
        route = self.router.match(head.method, head.path)
        if route is None:
            await self._write(writer, settings, head.method, self._refusal(head), close=unread or head.wants_close())
            return not (unread or head.wants_close())
        denied = await self._authenticate(route, head, settings)
        if denied is not None:
            self.client_errors.note(conn.peer, "unauthorized", head.path, status=denied.status)
            close = unread or head.wants_close()
            await self._write(writer, settings, head.method, denied, close=close)
            return not close
        body = b""
        close = head.wants_close()
        if head.method in _TAKES_BODY:
            read = await self._read_body(conn, route, head, reader, writer, settings)
            if read is None:
                return False
            body = read
        elif carries_body(head):
            close = True  # a body we do not read would be taken for the next request
        user = None
        if route.authorize is None and settings.auth is not None:
            given = credentials(head.header("Authorization"))
            user = given[0] if given else None
        request = Request(head.method, head.path, head.query, Headers(head.headers), body, user)
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._pool, _call, route, request)
        self.totals[f"{response.status // 100}xx"] += 1
        await self._write(writer, settings, head.method, response, close=close, challenge=route.challenge)
        return not close

    def _refusal(self, head: Head) -> Response:
        """404 or 405 (with Allow), in words that say what is there."""
        allowed = self.router.allowed(head.path)
        if allowed:
            return Response.text(405, f"method not allowed: {head.path} takes {' or '.join(allowed)} only",
                                 {"Allow": ", ".join(allowed)})
        if head.method == "POST":
            return Response.text(404, f"not found: no POST endpoint at {head.path}")
        pages = ", ".join(route.path for route in self.router.pages())
        return Response.text(404, f"not found: try {pages}")

    async def _authenticate(self, route: Route, head: Head, settings: WebSettings) -> Response | None:
        """None to go on, else the 401; the route's own check replaces the web config's basic auth."""
        if route.authorize is not None:
            return route.authorize(Headers(head.headers))
        auth = settings.auth
        if auth is None:
            return None
        header = head.header("Authorization")
        verdict = auth.cached(header)
        if verdict is None:
            verdict = await asyncio.get_running_loop().run_in_executor(self._pool, auth.allows, header)
        if verdict:
            return None
        return Response.text(401, "unauthorized: send the user and password of the web config's basic_auth_users",
                             {"WWW-Authenticate": "Basic"})

    async def _read_body(self, conn: _Connection, route: Route, head: Head, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, settings: WebSettings) -> bytes | None:
        try:
            length = body_length(head, route.max_bytes)
        except BadRequest as exc:
            self.client_errors.note(conn.peer, "bad_body", exc.reason, status=exc.status)
            await self._write(writer, settings, head.method, Response.text(exc.status, exc.reason), close=True)
            return None
        if length and (head.header("Expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        limit = self.limits.body_timeout if self.limits.body_timeout is not None else POST_BODY_TIMEOUT
        try:
            return await asyncio.wait_for(reader.readexactly(length), limit)
        except TimeoutError:
            reason = f"request timeout: the body did not arrive within {limit:g} s"
        except asyncio.IncompleteReadError as exc:
            reason = f"bad request: body ended after {len(exc.partial)} of {length} bytes"
        self.client_errors.note(conn.peer, "bad_body", reason)
        status = 408 if reason.startswith("request timeout") else 400
        await self._write(writer, settings, head.method, Response.text(status, reason), close=True)
        return None

    async def _write(self, writer: asyncio.StreamWriter, settings: WebSettings, method: str, response: Response,
                     close: bool, challenge: str | None = None) -> None:
        extra: dict[str, str] = dict(response.headers)
        if response.status == 401 and challenge:
            extra.setdefault("WWW-Authenticate", challenge)
        headers = merged(settings.headers, {"Content-Type": response.content_type}, extra)
        head = response_head(response.status, headers, len(response.body), close)
        writer.write(head if method == "HEAD" else head + response.body)
        try:
            await asyncio.wait_for(writer.drain(), self.limits.write_timeout)
        except TimeoutError:
            raise ConnectionAbortedError(
                f"the client did not read the answer within {self.limits.write_timeout:g} s") from None

    # --- what the agent exposes about the server ----------------------------------------

    def metric_families(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        """Connection counts and client errors (read from memory; the runtime puts them in the cache)."""
        open_now = GaugeMetricFamily("custode_http_connections", "HTTP connections open now.",
                                     value=len(self._conns))
        totals = CounterMetricFamily("custode_http_connections_handled",
                                     "HTTP connections by outcome: accepted, refused (full, none idle), evicted.",
                                     labels=["outcome"])
        for outcome in ("accepted", "refused", "evicted"):
            totals.add_metric([outcome], self.totals[outcome])
        errors = CounterMetricFamily("custode_http_client_errors", "Requests refused or abandoned, by kind.",
                                     labels=["kind"])
        for kind, count in sorted(self.client_errors.counts.items()):
            errors.add_metric([kind], count)
        reload_ok = GaugeMetricFamily("custode_web_config_last_reload_successful",
                                      "1 when the web config file last read was valid.",
                                      value=1 if self.web.last_reload_ok else 0)
        return [open_now, totals, errors, reload_ok]


def _answer_and_close(sock: socket.socket, answer: bytes) -> None:
    """Send a last answer on a raw socket so the client can read it.

    Closing with the request still unread makes the kernel send a reset,
    which can reach the client before the answer and destroy it; so the
    request bytes already here are read first, and the write side is shut
    before the close."""
    try:
        for _ in range(16):
            if not sock.recv(65536):
                break
    except OSError:  # BlockingIOError: nothing more has arrived
        pass
    try:
        sock.send(answer)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _call(route: Route, request: Request) -> Response:
    try:
        return route.handle(request)
    except Exception:  # a handler bug must answer 500, not drop the connection
        log.exception("HTTP handler failed", extra={"path": request.path, "method": request.method})
        return Response.text(500, "internal error: see Custode's log")


def _kind(exc: BaseException) -> str:
    name = type(exc).__name__
    if "SSL" in name or "Certificate" in name:
        return "tls_error"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError, EOFError)):
        return "disconnected"
    if isinstance(exc, ConnectionAbortedError):
        return "aborted"
    return "connection_error"


def _detail(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason or exc) or type(exc).__name__
    return text[:200]


async def _close(writer: asyncio.StreamWriter) -> None:
    """Flush and close; a client that does not take the last bytes is cut off after two seconds."""
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2.0)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        writer.transport.abort()


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one, as Go programs do since Go 1.19.

    The soft limit is 1,024 on most systems, below the connection cap plus
    the agent's own files; the hard limit (524,288 under systemd) is what an
    administrator actually allows. Returns the soft limit in force."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def make_server(host: str, port: int, router: Router, web: WebConfigSource | None = None,
                limits: Limits | None = None) -> WebServer:
    """Bind (raising ListenError that names the address on failure) and return the server."""
    raise_open_files_limit()
    try:
        return WebServer((host, port), router, web, limits)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                          "choose another address with --listen or agent.listen") from None


def serve_in_thread(server: WebServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread

