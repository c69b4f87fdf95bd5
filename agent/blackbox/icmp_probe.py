"""The ICMP prober: one echo request and its reply, over IPv4 or IPv6, as blackbox_exporter's ``icmp`` module.

Which socket: an unprivileged ``SOCK_DGRAM``/``IPPROTO_ICMP`` "ping socket"
when ``net.ipv4.ping_group_range`` includes the process' group (Linux checks
that sysctl for IPv6 too), else a raw socket when the process may open one
(root, or ``CAP_NET_RAW``). When neither is allowed, a target with
``icmp.fallback_port`` is probed by a TCP connect to that port instead, and
the result says so (``note``, ``custode_probe_fallback_info``); without it,
the probe fails with the three ways to fix it.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from custode.agent.blackbox.base import (
    Deadline,
    ProbeFailed,
    ProbeResult,
    Resolved,
    connect,
    hostport,
    network_error,
    resolve,
    seconds,
)
from custode.agent.blackbox.config import IcmpOptions
from custode.agent.blackbox.target import Target

SOCKET_TYPES: tuple[int, ...] = (socket.SOCK_DGRAM, socket.SOCK_RAW)
"""Tried in this order: the unprivileged ping socket, then the raw one (tests empty it to reach the fallback)."""
PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # Linux' value; Python 3.11 does not name it
IP_TTL = getattr(socket, "IP_TTL", 2)
ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
_sequence = itertools.count(1)


class NotPermitted(Exception):
    """This process may open neither a ping socket nor a raw one."""


@dataclass(frozen=True)
class Reply:
    hop_limit: int | None


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def echo_request(version: int, identifier: int, sequence: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST[version], 0, 0, identifier, sequence)
    if version == 6:  # the kernel fills in ICMPv6's checksum (it covers the pseudo-header)
        return header + payload
    return struct.pack("!BBHHH", ECHO_REQUEST[version], 0, checksum(header + payload), identifier,
                       sequence) + payload


def parse_reply(data: bytes, version: int, raw: bool, identifier: int, sequence: int,
                payload: bytes) -> int | None:
    """The reply's TTL from the IPv4 header (raw IPv4 sockets), -1 if it is our reply without one, None if not ours.

    A ping socket's kernel rewrites the identifier, so there only the sequence
    and the payload tell our reply from another; a raw socket sees every ICMP
    packet of the host, our own request on loopback too."""
    ttl = -1
    if raw and version == 4:
        if len(data) < 20:
            return None
        header = (data[0] & 0x0F) * 4
        ttl = data[8]
        data = data[header:]
    if len(data) < 8:
        return None
    kind, _code, _sum, ident, seq = struct.unpack("!BBHHH", data[:8])
    if kind != ECHO_REPLY[version] or seq != sequence or data[8:] != payload:
        return None
    if raw and ident != identifier:
        return None
    return ttl


def permission_words() -> str:
    """Why this process may not send ICMP, for the failure reason."""
    gid = os.getgid()
    try:
        low, high = PING_GROUP_RANGE.read_text().split()[:2]
        ping = f"net.ipv4.ping_group_range is '{low} {high}', without group {gid}"
    except (OSError, ValueError):
        ping = "no ping sockets on this system"
    return f"{ping}; not root, no CAP_NET_RAW"


def open_socket(family: int) -> tuple[socket.socket, bool]:
    """(socket, raw) for ICMP of ``family``; NotPermitted when neither kind may be opened."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    for kind in SOCKET_TYPES:
        try:
            return socket.socket(family, kind, proto), kind == socket.SOCK_RAW
        except (PermissionError, ProcessLookupError):
            continue
        except OSError:
            continue
    raise NotPermitted(permission_words())


def probe(target: Target, result: ProbeResult, deadline: Deadline) -> None:
    options = target.options_as(IcmpOptions)
    host = target.where.address
    resolved = resolve(host, target.ip_protocol, target.ip_fallback, deadline)
    result.lookup_seconds = resolved.seconds
    result.ip_protocol, result.ip_address = resolved.protocol, resolved.address
    durations = {"resolve": resolved.seconds, "setup": 0.0, "rtt": 0.0}
    try:
        started = time.monotonic()
        try:
            sock, raw = open_socket(resolved.family)
        except NotPermitted as why:
            if options.fallback_port is None:
                raise ProbeFailed(f"this process may not send ICMP ({why}): run Custode as root, add its group to "
                                  "net.ipv4.ping_group_range, or set icmp.fallback_port to probe by TCP") from None
            _fallback(resolved, options.fallback_port, str(why), deadline, result)
            return
        with sock:
            durations["setup"] = time.monotonic() - started
            hop_limit = _echo(sock, raw, resolved.address, resolved.protocol, deadline, durations)
        if hop_limit is not None:
            result.add("probe_icmp_reply_hop_limit", "Replied packet hop limit (TTL for ipv4)", hop_limit)
    finally:
        if result.note is None:
            for phase, value in durations.items():
                result.add("probe_icmp_duration_seconds", "Duration of icmp request by phase", value, phase=phase)


def _fallback(resolved: Resolved, port: int, why: str, deadline: Deadline, result: ProbeResult) -> None:
    result.note = f"ICMP is not permitted for this process ({why}): probed by a TCP connect to port {port} instead"
    result.add("custode_probe_fallback_info", "1 when the probe was made another way than its kind says (an ICMP "
                                              "probe as a TCP connect), in the method and port labels", 1.0,
               method="tcp", port=str(port))
    connect(resolved, port, deadline).close()


def _echo(sock: socket.socket, raw: bool, address: str, version: int, deadline: Deadline,
          durations: dict[str, float]) -> int | None:
    """Send one echo request and wait for its reply; the reply's hop limit (None when unknown)."""
    identifier = secrets.randbits(16)
    sequence = next(_sequence) & 0xFFFF
    payload = b"custode " + secrets.token_bytes(16)
    where = hostport(address, None)
    try:
        if version == 6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        elif not raw:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    except OSError:
        pass  # no hop limit then
    destination = (address, 0, 0, 0) if version == 6 else (address, 0)
    started = time.monotonic()
    try:
        sock.settimeout(deadline.remaining(f"echo reply from {where}"))
        sock.sendto(echo_request(version, identifier, sequence, payload), destination)
        while True:
            sock.settimeout(deadline.remaining(f"echo reply from {where}"))
            data, ancillary, _flags, _source = sock.recvmsg(4096, socket.CMSG_SPACE(4))
            ttl = parse_reply(data, version, raw, identifier, sequence, payload)
            if ttl is None:
                continue
            durations["rtt"] = time.monotonic() - started
            for level, kind, value in ancillary:
                if (level, kind) in ((socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT), (socket.IPPROTO_IP, IP_TTL)) \
                        and len(value) >= 4:
                    ttl = struct.unpack("i", value[:4])[0]
            return ttl if ttl >= 0 else None
    except (socket.timeout, TimeoutError):
        raise ProbeFailed(f"no echo reply from {where} within {seconds(deadline.timeout)}") from None
    except ProbeFailed:
        raise
    except OSError as exc:
        raise ProbeFailed(network_error(exc, where)) from None
