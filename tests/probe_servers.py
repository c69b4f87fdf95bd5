"""Local servers for the service-probe tests, on 127.0.0.1 only, each stopped by its context manager.

* :class:`PortalServer`: HTTPS (or plain HTTP) with a test CA's certificate ending in ``days`` days (10 by
  default), its dates taken from this process' ``time.time()``: Custode's certificate check compares with its
  own clock, which the shifted run moves together with this process'. Paths: ``/`` the comune's page (200),
  ``/error`` 500, ``/redirect`` 302 to ``/``, ``/loop`` a redirect to itself, ``/maintenance`` a 200
  maintenance page, ``/slow`` the page after ``slow_seconds``.
* :class:`SilentServer`: accepts TCP connections and never answers (a hung application server).
* :class:`SilentUdp`: a UDP port that reads and never answers (a DNS server that does not reply).
* :func:`closed_port`: a port nothing listens on.
* :class:`Dnsmasq`: Debian's dnsmasq as an authoritative-only server for a few names.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import free_port, require_binary, stop_process, wait_until
from server_base import TestServer
from tls_material import Authority, Pair

PAGE = ("<html><head><title>Comune di Sassuolo</title></head><body><h1>Comune di Sassuolo</h1>"
        "<p>Portale istituzionale</p></body></html>").encode()
DNSMASQ = "/usr/sbin/dnsmasq"  # Debian's dnsmasq-base; /usr/sbin is not on every test's PATH
MAINTENANCE = b"<html><body><h1>Sito in manutenzione</h1></body></html>"


def certificates(folder: Path, days: int = 10) -> tuple[Authority, Pair]:
    """A CA and a server certificate for 127.0.0.1/localhost ending ``days`` days from now (this process' clock)."""
    authority = Authority(folder, time.time(), name="Custode probe CA")
    return authority, authority.issue("portal", "127.0.0.1", server=True, days=days)


class _Handler(BaseHTTPRequestHandler):
    server: _PortalHttpd
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", "Mon, 07 Dec 2026 09:00:00 GMT")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        if self.path == "/error":
            self._answer(500, b"<html><body>Internal Server Error</body></html>")
        elif self.path == "/redirect":
            self._answer(302, b"", {"Location": "/"})
        elif self.path == "/loop":
            self._answer(302, b"", {"Location": "/loop"})
        elif self.path == "/maintenance":
            self._answer(200, MAINTENANCE)
        elif self.path == "/slow":
            time.sleep(self.server.slow_seconds)
            self._answer(200, PAGE)
        elif self.path == "/auth":
            if self.headers.get("Authorization") == self.server.expected_auth:
                self._answer(200, PAGE)
            else:
                self._answer(401, b"", {"WWW-Authenticate": 'Basic realm="portale"'})
        else:
            self._answer(200, PAGE)


class _PortalHttpd(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # http.server's 5 drops the SYNs of 16 probes at once (retried after 1 s)

    def __init__(self, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.requests: list[str] = []
        self.slow_seconds = 0.3
        self.expected_auth = ""

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        request.settimeout(10)
        if self.context is not None:  # the handshake in the connection's own thread, never in the accept loop
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class PortalServer(TestServer):
    """The comune's portal: HTTPS with ``days`` days of certificate left (``tls=False``: plain HTTP)."""

    def __init__(self, folder: Path, days: int = 10, tls: bool = True) -> None:
        self.folder = folder
        self.days = days
        self.tls = tls
        self.authority: Authority | None = None
        self.pair: Pair | None = None
        self._httpd: _PortalHttpd | None = None
        self._thread: threading.Thread | None = None

    @property
    def ca_file(self) -> Path:
        assert self.authority is not None
        return self.authority.pem

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def requests(self) -> list[str]:
        assert self._httpd is not None
        return self._httpd.requests

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def set_slow(self, seconds: float) -> None:
        assert self._httpd is not None
        self._httpd.slow_seconds = seconds

    def expect_auth(self, header: str) -> None:
        assert self._httpd is not None
        self._httpd.expected_auth = header

    @property
    def not_after(self) -> float:
        from cryptography import x509

        assert self.pair is not None
        return x509.load_pem_x509_certificate(self.pair.cert.read_bytes()).not_valid_after_utc.timestamp()

    def start(self) -> None:
        context = None
        if self.tls:
            self.authority, self.pair = certificates(self.folder, self.days)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.pair.cert, self.pair.key)
        self._httpd = _PortalHttpd(context)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="probe-portal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)


class SilentServer(TestServer):
    """Accepts connections on ``host`` and never sends a byte (until stopped)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._listener: socket.socket | None = None
        self._accepted: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = 0

    def start(self) -> None:
        self._listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        self._listener.bind((self.host, 0))
        self.port = int(self._listener.getsockname()[1])
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept, name="probe-silent", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self._accepted.append(connection)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        for connection in self._accepted:
            connection.close()
        if self._listener is not None:
            self._listener.close()


class SilentUdp(TestServer):
    """A bound UDP port that never answers."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self.port = 0

    def start(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound once by :func:`conftest.free_port`, then released)."""
    return free_port(host)


class Dnsmasq(TestServer):
    """dnsmasq on 127.0.0.1:PORT answering only the names given (``--address=/NAME/IP``; IP empty: NXDOMAIN)."""

    def __init__(self, folder: Path, addresses: dict[str, str], mx: tuple[str, str, int] | None = None) -> None:
        self.folder = folder
        self.addresses = addresses
        self.mx = mx
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = DNSMASQ if Path(DNSMASQ).exists() else require_binary("dnsmasq", "dnsmasq-base")
        command = [binary, "--keep-in-foreground", "--no-daemon", f"--port={self.port}",
                   "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                   "--conf-file=/dev/null", "--pid-file=", f"--log-facility={self.folder / 'dnsmasq.log'}"]
        command += [f"--address=/{name}/{address}" for name, address in self.addresses.items()]
        if self.mx is not None:
            command.append(f"--mx-host={self.mx[0]},{self.mx[1]},{self.mx[2]}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert wait_until(self._answers, 10), "dnsmasq did not start answering"

    def _answers(self) -> bool:
        import dns.exception
        import dns.message
        import dns.query

        if self._process is not None and self._process.poll() is not None:
            why = self._process.stderr.read().decode() if self._process.stderr else ""
            raise AssertionError(f"dnsmasq exited: {why}")
        try:
            dns.query.udp(dns.message.make_query("probe-ready.invalid", "A"), "127.0.0.1", timeout=0.3,
                          port=self.port)
            return True
        except (OSError, dns.exception.DNSException):
            return False

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
