"""The HTTP(S) prober: blackbox_exporter's ``http`` module, with its phases and series.

Each request is made by hand on ``http.client`` over a socket this module
connects and wraps itself, so every phase is timed as blackbox_exporter times
it (``probe_http_duration_seconds{phase}``: resolve, connect, tls,
processing, transfer, summed over the redirects) and the peer's certificate
is read from the TLS socket. TLS is verified against the system CAs, or only
against ``ca_file``. Redirects are followed up to ``max_redirects``; the
expected status codes default to 2xx; ``body``/``body_not`` are regexes over
the first ``body_limit`` bytes (``probe_failed_due_to_regex``).
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from custode.agent import __version__
from custode.agent.blackbox.base import (
    Deadline,
    ProbeFailed,
    ProbeResult,
    connect,
    handshake,
    hostport,
    network_error,
    peek_certificate,
    resolve,
    seconds,
    tls_context,
    tls_facts,
)
from custode.agent.blackbox.config import HttpOptions
from custode.agent.blackbox.target import Target
from custode.agent.secrets import SecretError

PHASES = ("resolve", "connect", "tls", "processing", "transfer")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024
USER_AGENT = f"Custode/{__version__} (service probe)"


@dataclass
class _Answer:
    status: int
    version: int
    headers: http.client.HTTPMessage
    body: bytes
    https: bool


class _Connection(http.client.HTTPConnection):
    """``http.client`` on a socket connected (and wrapped) by the prober; the Host header as for ``https``."""


def _status_ok(status: int, expected: list[int | str]) -> bool:
    for item in expected or ["2xx"]:
        if isinstance(item, int) and status == item:
            return True
        if isinstance(item, str) and str(status)[0] == item[0]:
            return True
    return False


def status_words(expected: list[int | str]) -> str:
    """``200-299`` for 2xx, ``200, 301`` for a list: how "status 500 not in …" reads."""
    return ", ".join(f"{item[0]}00-{item[0]}99" if isinstance(item, str) else str(item) for item in expected or ["2xx"])


def _headers(options: HttpOptions) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close", **options.headers}
    try:
        if options.basic_auth is not None:
            pair = f"{options.basic_auth.user}:{options.basic_auth.password.resolve()}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif options.bearer_token is not None:
            headers["Authorization"] = "Bearer " + options.bearer_token.resolve()
    except SecretError as exc:
        raise ProbeFailed(f"the probe's credentials cannot be read: {exc}") from None
    return headers


def probe(target: Target, result: ProbeResult, deadline: Deadline) -> None:
    options = target.options_as(HttpOptions)
    phases = dict.fromkeys(PHASES, 0.0)
    redirects = 0
    answer: _Answer | None = None
    regex_failed = False
    try:
        url, method, headers = target.url, options.method, _headers(options)
        while True:
            answer = _request(target, url, method, headers, deadline, phases, result)
            location = answer.headers.get("Location")
            if not (options.follow_redirects and answer.status in REDIRECTS and location):
                break
            redirects += 1
            if redirects > options.max_redirects:
                raise ProbeFailed(f"more than {options.max_redirects} redirects (the last to {location})")
            following = urljoin(url, location)
            if urlsplit(following).hostname != urlsplit(url).hostname:
                headers.pop("Authorization", None)  # credentials stay with the host they are for
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method = "GET"
            url = following
        if not _status_ok(answer.status, options.status):
            raise ProbeFailed(f"status {answer.status} not in {status_words(options.status)}")
        text = answer.body.decode(answer.headers.get_content_charset() or "utf-8", errors="replace")
        if options.body and not re.search(options.body, text):
            regex_failed = True
            raise ProbeFailed(f"body does not match /{options.body}/")
        if options.body_not and re.search(options.body_not, text):
            regex_failed = True
            raise ProbeFailed(f"body matches /{options.body_not}/, which it must not")
    finally:
        _series(result, phases, redirects, answer, regex_failed)


def _series(result: ProbeResult, phases: dict[str, float], redirects: int, answer: _Answer | None,
            regex_failed: bool) -> None:
    for phase in PHASES:
        result.add("probe_http_duration_seconds", "Duration of http request by phase, summed over all redirects",
                   phases[phase], phase=phase)
    length = -1.0
    if answer is not None:
        try:
            length = float(int(answer.headers.get("Content-Length", "-1")))
        except ValueError:
            length = -1.0
    result.add("probe_http_content_length", "Length of http content response", length if answer else 0.0)
    result.add("probe_http_uncompressed_body_length", "Length of uncompressed response body",
               len(answer.body) if answer else 0.0)
    result.add("probe_http_redirects", "The number of redirects", redirects)
    result.add("probe_http_ssl", "Indicates if SSL was used for the final redirect",
               1.0 if answer is not None and answer.https else 0.0)
    result.add("probe_http_status_code", "Response HTTP status code", answer.status if answer else 0.0)
    result.add("probe_http_version", "Returns the version of HTTP of the probe response",
               answer.version / 10 if answer else 0.0)
    result.add("probe_failed_due_to_regex", "Indicates if probe failed due to regex", 1.0 if regex_failed else 0.0)
    modified = answer.headers.get("Last-Modified") if answer else None
    if modified:
        try:
            result.add("probe_http_last_modified_timestamp_seconds",
                       "Returns the Last-Modified HTTP response header in unixtime",
                       parsedate_to_datetime(modified).timestamp())
        except (TypeError, ValueError):
            pass


def _request(target: Target, url: str, method: str, headers: dict[str, str], deadline: Deadline,
             phases: dict[str, float], result: ProbeResult) -> _Answer:
    """One request of the probe (the first, or a redirect's): timed by phase, its certificate read."""
    options = target.options_as(HttpOptions)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ProbeFailed(f"redirected to {url}, which is not an http or https URL")
    https = scheme == "https"
    host = parts.hostname
    port = parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    resolved = resolve(host, target.ip_protocol, target.ip_fallback, deadline)
    phases["resolve"] += resolved.seconds
    result.lookup_seconds = (result.lookup_seconds or 0.0) + resolved.seconds
    result.ip_protocol, result.ip_address = resolved.protocol, resolved.address
    where = hostport(resolved.address, port)

    started = time.monotonic()
    sock: socket.socket = connect(resolved, port, deadline)
    phases["connect"] += time.monotonic() - started
    if https:
        started = time.monotonic()
        try:
            sock = handshake(sock, tls_context(options.verify, options.ca_file), host, deadline, where)
        except ProbeFailed as failed:
            phases["tls"] += time.monotonic() - started
            if str(failed).startswith("certificate verify failed"):
                peek_certificate(resolved, port, host, deadline, result)
            raise
        phases["tls"] += time.monotonic() - started
        assert isinstance(sock, ssl.SSLSocket)
        result.series = [s for s in result.series if not s.name.startswith(("probe_ssl_", "probe_tls_"))]
        tls_facts(result, sock)
    else:
        result.cert_expiry, result.tls_version = None, None
        result.series = [s for s in result.series if not s.name.startswith(("probe_ssl_", "probe_tls_"))]

    connection = _Connection(host, port)
    connection.default_port = 443 if https else 80
    connection.sock = sock
    stage = "answer"
    try:
        started = time.monotonic()
        sock.settimeout(deadline.remaining())
        connection.request(method, path, body=b"" if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        phases["processing"] += time.monotonic() - started
        stage = "complete answer"
        started = time.monotonic()
        body = bytearray()
        limit = options.body_limit
        while len(body) < limit and not response.isclosed():  # closed: the whole body is read
            sock.settimeout(deadline.remaining(stage))
            chunk = response.read(min(CHUNK, limit - len(body)))
            if not chunk:
                break
            body += chunk
        phases["transfer"] += time.monotonic() - started
        result.status_code = response.status
        return _Answer(response.status, response.version, response.headers, bytes(body), https)
    except ProbeFailed:
        raise
    except (socket.timeout, TimeoutError):
        raise ProbeFailed(f"no {stage} within {seconds(deadline.timeout)}") from None
    except http.client.RemoteDisconnected:
        raise ProbeFailed(f"{where} closed the connection without answering") from None
    except http.client.HTTPException as exc:
        raise ProbeFailed(f"not an HTTP answer from {where}: {type(exc).__name__} {exc}".rstrip()) from None
    except ssl.SSLError as exc:
        raise ProbeFailed(f"TLS error with {where}: {exc.reason or exc}") from None
    except OSError as exc:
        raise ProbeFailed(network_error(exc, where)) from None
    finally:
        connection.close()
