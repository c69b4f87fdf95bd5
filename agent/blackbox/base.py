"""What every prober shares: the result, the deadline, name lookup under it, failure reasons in words, TLS facts.

A prober is ``probe(target, deadline) -> ProbeResult``. It never raises for a
target's fault: a refused connection, a lookup that fails, a certificate that
does not verify are a failed result whose ``error`` a comune's clerk can read
("connection refused by 127.0.0.1:8443", "no answer within 5 s",
"certificate verify failed: …"). Every blocking call runs under the probe's
:class:`Deadline`: sockets get the time that is left as their timeout, and a
name lookup (``getaddrinfo`` has no timeout of its own) runs on a small pool
of its own, so a worker waits for it at most until the deadline.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from custode.agent.blackbox.target import Target

LOOKUPS = 32
"""Name lookups running at once, each on a daemon thread of its own: a hung resolver holds one of these (until
the resolver's own timeouts end it), never a probe worker past its deadline, and never the agent's exit."""
_lookup_slots = threading.BoundedSemaphore(LOOKUPS)


@dataclass(frozen=True)
class Series:
    """One sample a prober measured, with blackbox_exporter's name (labels of its own, e.g. ``phase``)."""

    name: str
    help: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ProbeResult:
    """One probe of one target. ``started_at`` is the service's clock; ``duration`` is monotonic time."""

    target: Target
    started_at: float
    success: bool = False
    duration: float = 0.0
    error: str | None = None
    note: str | None = None
    """How the probe was made when it is not what the target asked (an ICMP probe made as a TCP connect)."""
    ip_protocol: int | None = None
    ip_address: str | None = None
    lookup_seconds: float | None = None
    status_code: int | None = None
    cert_expiry: float | None = None
    """The earliest notAfter of the certificates read (Python 3.11: the leaf's only, see :func:`tls_facts`)."""
    tls_version: str | None = None
    series: list[Series] = field(default_factory=list)

    def add(self, name: str, help_text: str, value: float, **labels: str) -> None:
        self.series.append(Series(name, help_text, float(value), dict(labels)))


class ProbeFailed(Exception):
    """A prober's way out with the reason in words (caught by the prober's own frame)."""


class Deadline:
    """The hard end of one probe, in monotonic time."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.start = time.monotonic()
        self.end = self.start + timeout

    def remaining(self, what: str = "answer") -> float:
        """Seconds left; ProbeFailed when none (``what`` says what was still awaited)."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise ProbeFailed(f"no {what} within {seconds(self.timeout)}")
        return left

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def seconds(value: float) -> str:
    """``5 s``, ``2.5 s``, ``0.25 s``: how a timeout or a duration reads in a ticket."""
    return f"{value:.3g} s" if value < 10 else f"{value:.0f} s"


def hostport(address: str, port: int | None) -> str:
    shown = f"[{address}]" if ":" in address else address
    return shown if port is None else f"{shown}:{port}"


@dataclass(frozen=True)
class Resolved:
    family: int
    address: str
    seconds: float

    @property
    def protocol(self) -> int:
        return 6 if self.family == socket.AF_INET6 else 4


def ip_hash(address: str) -> float:
    """blackbox_exporter's ``probe_ip_addr_hash``: FNV-1a (32 bit) of the address' bytes (4 or 16)."""
    value = 0x811C9DC5
    for byte in ipaddress.ip_address(address).packed:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return float(value)


def resolve(host: str, ip_protocol: str, fallback: bool, deadline: Deadline) -> Resolved:
    """The address to probe: the first of ``ip_protocol`` (ip4/ip6), else, with ``fallback``, of the other."""
    start = time.monotonic()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return Resolved(family, str(literal), time.monotonic() - start)
    infos = _getaddrinfo(host, deadline)
    wanted = socket.AF_INET6 if ip_protocol == "ip6" else socket.AF_INET
    addresses = [(info[0], str(info[4][0])) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    chosen = next((a for a in addresses if a[0] == wanted), None)
    if chosen is None and fallback:
        chosen = addresses[0] if addresses else None
    if chosen is None:
        other = "IPv6" if wanted == socket.AF_INET6 else "IPv4"
        raise ProbeFailed(f"{host} has no {other} address" + ("" if fallback else " (ip_fallback is off)"))
    return Resolved(chosen[0], chosen[1].split("%", 1)[0], time.monotonic() - start)


def _getaddrinfo(host: str, deadline: Deadline) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` (which has no timeout) on a daemon thread, waited for until the deadline."""
    late = f"cannot resolve {host} within {seconds(deadline.timeout)}"
    if not _lookup_slots.acquire(timeout=max(0.0, deadline.end - time.monotonic())):
        raise ProbeFailed(late)
    outcome: list[Any] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM))
        except OSError as exc:
            outcome.append(exc)
        finally:
            _lookup_slots.release()
            done.set()

    threading.Thread(target=lookup, name="probe-lookup", daemon=True).start()
    if not done.wait(max(0.0, deadline.end - time.monotonic())):
        raise ProbeFailed(late)
    found = outcome[0]
    if isinstance(found, OSError):
        raise ProbeFailed(f"cannot resolve {host}: {found.strerror or found}")
    return list(found)


def connect(resolved: Resolved, port: int, deadline: Deadline) -> socket.socket:
    """A TCP connection under the deadline; ProbeFailed with the reason in words."""
    where = hostport(resolved.address, port)
    sock = socket.socket(resolved.family, socket.SOCK_STREAM)
    try:
        sock.settimeout(deadline.remaining(f"connection to {where}"))
        sock.connect((resolved.address, port))
    except BaseException as exc:
        sock.close()
        if isinstance(exc, ProbeFailed):
            raise
        if isinstance(exc, (socket.timeout, TimeoutError)):
            raise ProbeFailed(f"no connection to {where} within {seconds(deadline.timeout)}") from None
        if isinstance(exc, OSError):
            raise ProbeFailed(network_error(exc, where)) from None
        raise
    return sock


def network_error(exc: OSError, where: str) -> str:
    """An OSError of a connection as a clerk reads it."""
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset by {where}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"no answer from {where}"
    code = exc.errno
    if code in (errno.EHOSTUNREACH, errno.EHOSTDOWN):
        return f"host {where} unreachable"
    if code == errno.ENETUNREACH:
        return f"network unreachable on the way to {where}"
    if code == errno.EADDRNOTAVAIL:
        return f"cannot reach {where} from here (no route or no address of that family)"
    return f"connection to {where} failed: {exc.strerror or exc}"


# --- TLS ------------------------------------------------------------------------------------------------------

def tls_context(verify: bool, ca_file: Path | str | None) -> ssl.SSLContext:
    """Verified against the system CAs, or only ``ca_file``'s; ``verify`` false accepts any certificate."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def handshake(sock: socket.socket, context: ssl.SSLContext, server_name: str | None,
              deadline: Deadline, where: str) -> ssl.SSLSocket:
    """The TLS handshake under the deadline; ProbeFailed says why it failed ("certificate verify failed: …")."""
    tls = context.wrap_socket(sock, server_hostname=server_name, do_handshake_on_connect=False)
    try:
        tls.settimeout(deadline.remaining(f"TLS handshake with {where}"))
        tls.do_handshake()
    except BaseException as exc:
        tls.close()
        if isinstance(exc, ProbeFailed):
            raise
        if isinstance(exc, ssl.SSLCertVerificationError):
            raise ProbeFailed(f"certificate verify failed: {exc.verify_message or exc.reason} ({where})") from None
        if isinstance(exc, (socket.timeout, TimeoutError)):
            raise ProbeFailed(f"no TLS handshake with {where} within {seconds(deadline.timeout)}") from None
        if isinstance(exc, ssl.SSLError):
            raise ProbeFailed(f"TLS handshake with {where} failed: {exc.reason or exc}") from None
        if isinstance(exc, OSError):
            raise ProbeFailed(network_error(exc, where)) from None
        raise
    return tls


TLS_VERSIONS = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3",
                "SSLv3": "SSL 3.0"}
"""Python's names -> blackbox_exporter's ``probe_tls_version_info{version}`` (Go's ``tls.VersionName``)."""


def tls_facts(result: ProbeResult, tls: ssl.SSLSocket) -> None:
    """The TLS version and the certificates' expiry into ``result``, as blackbox_exporter's series.

    ``probe_ssl_earliest_cert_expiry`` is the earliest notAfter of the
    certificates the server sent. Python 3.11's ``getpeercert`` gives only
    the leaf, so here it is the leaf's notAfter: an intermediate that ends
    before the leaf is not seen. On Python 3.13 and later
    ``SSLSocket.get_verified_chain`` gives the whole verified chain, and
    every certificate in it counts.
    """
    from cryptography import x509

    version = tls.version()
    if version:
        result.tls_version = TLS_VERSIONS.get(version, version)
        result.add("probe_tls_version_info", "Returns the TLS version used or NaN when unknown", 1.0,
                   version=result.tls_version)
    leaf = tls.getpeercert(binary_form=True)
    if not leaf:
        return
    chain: list[bytes] = [leaf]
    verified = getattr(tls, "get_verified_chain", None)  # Python 3.13+
    if callable(verified) and tls.context.verify_mode != ssl.CERT_NONE:
        try:
            chain = [bytes(cert) for cert in verified()] or chain  # DER, leaf first
        except (ssl.SSLError, ValueError, TypeError):
            chain = [leaf]
    certificates = [x509.load_der_x509_certificate(der) for der in chain]
    expiries = [cert.not_valid_after_utc.timestamp() for cert in certificates]
    result.cert_expiry = min(expiries)
    result.add("probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime", result.cert_expiry)
    if len(chain) > 1:
        result.add("probe_ssl_last_chain_expiry_timestamp_seconds",
                   "Returns last SSL chain expiry in timestamp", min(expiries))
    cert = certificates[0]
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        alternative = ",".join(str(getattr(name, "value", name)) for name in names)
    except x509.ExtensionNotFound:
        alternative = ""
    result.add("probe_ssl_last_chain_info", "Contains SSL leaf certificate information", 1.0,
               fingerprint_sha256=hashlib.sha256(leaf).hexdigest(), subject=cert.subject.rfc4514_string(),
               issuer=cert.issuer.rfc4514_string(), subjectalternative=alternative,
               serialnumber=f"{cert.serial_number:x}")


def peek_certificate(resolved: Resolved, port: int, server_name: str | None, deadline: Deadline,
                     result: ProbeResult) -> None:
    """After a failed verification: read the certificate once more, unverified, for its expiry only.

    An expired certificate then shows as one (``certificate`` incident,
    ``probe_ssl_earliest_cert_expiry`` in the past) besides the failed probe.
    Nothing the server says here can make the probe succeed."""
    try:
        sock = connect(resolved, port, deadline)
        tls = handshake(sock, tls_context(False, None), server_name, deadline, hostport(resolved.address, port))
    except ProbeFailed:
        return
    try:
        facts = ProbeResult(result.target, result.started_at)
        tls_facts(facts, tls)
        result.cert_expiry = facts.cert_expiry
        result.series += [s for s in facts.series if s.name == "probe_ssl_earliest_cert_expiry"]
    except (OSError, ValueError):
        pass
    finally:
        tls.close()
