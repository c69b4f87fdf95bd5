"""TCP connects (with and without TLS) and ICMP echo to 127.0.0.1 and ::1, and ICMP's TCP fallback."""

from __future__ import annotations

import socket
import struct

import pytest
from probe_servers import PortalServer, SilentServer, closed_port

from custode.agent.blackbox import icmp_probe
from custode.agent.blackbox.base import ProbeResult
from custode.agent.blackbox.config import IcmpOptions, TcpOptions
from custode.agent.blackbox.probers import run_probe
from custode.agent.blackbox.target import adhoc_target


def probe(url: str, options=None, timeout: float = 3.0) -> ProbeResult:
    return run_probe(adhoc_target(url, "default", timeout=timeout, options=options))


def values(result: ProbeResult, name: str) -> dict[str, float]:
    return {s.labels.get("phase", ""): s.value for s in result.series if s.name == name}


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with PortalServer(tmp_path_factory.mktemp("portal"), days=10) as server:
        yield server


def test_tcp_connect_and_refusal() -> None:
    with SilentServer() as silent:  # accepting is all a TCP probe asks
        up = probe(f"tcp://127.0.0.1:{silent.port}")
    assert up.success and up.ip_protocol == 4 and up.error is None
    port = closed_port()
    down = probe(f"tcp://127.0.0.1:{port}")
    assert down.error == f"connection refused by 127.0.0.1:{port}"


def test_tcp_over_ipv6() -> None:
    with SilentServer("::1") as silent:
        result = probe(f"tcp://[::1]:{silent.port}")
    assert result.success and result.ip_protocol == 6 and result.ip_address == "::1"
    port = closed_port("::1")
    assert probe(f"tcp://[::1]:{port}").error == f"connection refused by [::1]:{port}"


def test_tcp_with_tls_reads_the_certificate(portal) -> None:
    result = probe(f"tcp://127.0.0.1:{portal.port}", TcpOptions(tls=True, ca_file=portal.ca_file))
    assert result.success, result.error
    assert result.cert_expiry == pytest.approx(portal.not_after, abs=1)
    assert values(result, "probe_ssl_earliest_cert_expiry") == {"": result.cert_expiry}
    assert result.tls_version == "TLS 1.3"
    unverified = probe(f"tcp://127.0.0.1:{portal.port}", TcpOptions(tls=True))
    assert unverified.error is not None and unverified.error.startswith("certificate verify failed")
    assert unverified.cert_expiry == pytest.approx(portal.not_after, abs=1)


def test_tcp_tls_to_a_silent_server_times_out_in_the_handshake() -> None:
    with SilentServer() as silent:
        result = probe(f"tcp://127.0.0.1:{silent.port}", TcpOptions(tls=True), timeout=0.5)
    assert result.error == f"no TLS handshake with 127.0.0.1:{silent.port} within 0.5 s"


@pytest.mark.parametrize(("url", "protocol"), [("icmp://127.0.0.1", 4), ("icmp://[::1]", 6), ("icmp://localhost", 4)])
def test_icmp_echo_on_loopback(url: str, protocol: int) -> None:
    result = probe(url)
    assert result.success, result.error
    assert result.ip_protocol == protocol and result.note is None
    phases = values(result, "probe_icmp_duration_seconds")
    assert set(phases) == {"resolve", "setup", "rtt"} and phases["rtt"] > 0
    hop = values(result, "probe_icmp_reply_hop_limit")
    assert hop == {"": 64.0}


def test_icmp_without_permission_falls_back_to_tcp_and_says_so(monkeypatch) -> None:
    monkeypatch.setattr(icmp_probe, "SOCKET_TYPES", ())  # as an unprivileged process outside ping_group_range
    with SilentServer() as silent:
        result = probe("icmp://127.0.0.1", IcmpOptions(fallback_port=silent.port))
    assert result.success, result.error
    assert result.note is not None and result.note.startswith("ICMP is not permitted for this process (")
    assert f"probed by a TCP connect to port {silent.port} instead" in result.note
    fallback = [s for s in result.series if s.name == "custode_probe_fallback_info"]
    assert fallback[0].labels == {"method": "tcp", "port": str(silent.port)}
    assert not values(result, "probe_icmp_duration_seconds")
    refused = probe("icmp://127.0.0.1", IcmpOptions(fallback_port=closed_port()))
    assert refused.error is not None and refused.error.startswith("connection refused by 127.0.0.1:")
    unset = probe("icmp://127.0.0.1")
    assert unset.error is not None and "may not send ICMP" in unset.error and "icmp.fallback_port" in unset.error


def test_echo_packets_and_replies_as_a_ping_socket_and_a_raw_socket_see_them() -> None:
    payload = b"custode 0123456789abcdef"
    request = icmp_probe.echo_request(4, 0x1234, 7, payload)
    assert icmp_probe.checksum(request) == 0  # a valid checksum sums to zero
    reply = struct.pack("!BBHHH", 0, 0, 0, 0x9999, 7) + payload  # a ping socket's kernel rewrote the id
    assert icmp_probe.parse_reply(reply, 4, False, 0x1234, 7, payload) == -1
    assert icmp_probe.parse_reply(reply, 4, True, 0x1234, 7, b"") is None
    ip_header = bytes([0x45, 0, 0, 0, 0, 0, 0, 0, 57, 1]) + bytes(10)
    raw = ip_header + struct.pack("!BBHHH", 0, 0, 0, 0x1234, 7) + payload
    assert icmp_probe.parse_reply(raw, 4, True, 0x1234, 7, payload) == 57
    own_request = ip_header + request  # a raw socket on loopback sees our request too
    assert icmp_probe.parse_reply(own_request, 4, True, 0x1234, 7, payload) is None
    v6 = struct.pack("!BBHHH", 129, 0, 0, 0x1234, 8) + payload
    assert icmp_probe.parse_reply(v6, 6, True, 0x1234, 8, payload) == -1
    assert icmp_probe.parse_reply(v6, 6, True, 0x1234, 9, payload) is None


def test_a_name_without_an_address_of_the_family_asked() -> None:
    target = adhoc_target("icmp://127.0.0.1", "default", timeout=2)
    assert run_probe(target).success
    from dataclasses import replace

    only6 = replace(target, where=replace(target.where, address="localhost"), ip_protocol="ip6", ip_fallback=False)
    result = run_probe(only6)
    has_v6 = any(info[0] == socket.AF_INET6 for info in socket.getaddrinfo("localhost", None))
    if has_v6:
        assert result.success and result.ip_protocol == 6
    else:
        assert result.error == "localhost has no IPv6 address (ip_fallback is off)"
