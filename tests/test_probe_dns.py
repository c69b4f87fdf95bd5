"""The DNS prober against Debian's dnsmasq on 127.0.0.1 (authoritative for a few names, no upstream)."""

from __future__ import annotations

import pytest
from probe_servers import Dnsmasq, SilentUdp

from custode.agent.blackbox.base import ProbeResult
from custode.agent.blackbox.config import DnsOptions
from custode.agent.blackbox.probers import run_probe
from custode.agent.blackbox.target import adhoc_target


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory):
    with Dnsmasq(tmp_path_factory.mktemp("dnsmasq"),
                 {"portale.comune.test": "127.0.0.2", "chiuso.comune.test": ""},
                 mx=("comune.test", "posta.comune.test", 10)) as server:
        yield server


def probe(url: str, timeout: float = 3.0, **options) -> ProbeResult:
    return run_probe(adhoc_target(url, "default", timeout=timeout, options=DnsOptions(**options)))


def series(result: ProbeResult, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for s in result.series if s.name == name]


def test_an_a_record_with_the_answer_regex(dnsmasq) -> None:
    result = probe(f"dns://127.0.0.1:{dnsmasq.port}/portale.comune.test?type=A", answer=r"IN A 127\.0\.0\.2$")
    assert result.success, result.error
    assert series(result, "probe_dns_answer_rrs") == [({}, 1.0)]
    assert series(result, "probe_dns_query_succeeded") == [({}, 1.0)]
    assert series(result, "custode_probe_dns_rcode") == [({"rcode": "NOERROR"}, 0.0)]
    phases = dict((labels["phase"], value) for labels, value in series(result, "probe_dns_duration_seconds"))
    assert set(phases) == {"resolve", "connect", "request"} and phases["request"] > 0
    assert result.lookup_seconds is not None and result.ip_protocol == 4


def test_the_answer_regexes_fail_in_words(dnsmasq) -> None:
    url = f"dns://127.0.0.1:{dnsmasq.port}/portale.comune.test?type=A"
    wrong = probe(url, answer=r"127\.0\.0\.9")
    assert wrong.error == (r"no record of the answer for portale.comune.test A matches /127\.0\.0\.9/ "
                           "(got portale.comune.test. 0 IN A 127.0.0.2)")
    forbidden = probe(url, answer_not=r"127\.0\.0\.2")
    assert forbidden.error == (r"the answer for portale.comune.test A has portale.comune.test. 0 IN A 127.0.0.2, "
                               r"which matches /127\.0\.0\.2/")


def test_nxdomain_and_refused_are_failures_unless_expected(dnsmasq) -> None:
    gone = probe(f"dns://127.0.0.1:{dnsmasq.port}/chiuso.comune.test")
    assert gone.error == f"rcode NXDOMAIN not in NOERROR (asked 127.0.0.1:{dnsmasq.port} for chiuso.comune.test A)"
    assert series(gone, "custode_probe_dns_rcode") == [({"rcode": "NXDOMAIN"}, 3.0)]
    assert probe(f"dns://127.0.0.1:{dnsmasq.port}/chiuso.comune.test", rcodes=["NXDOMAIN"]).success
    unknown = probe(f"dns://127.0.0.1:{dnsmasq.port}/altro.example")
    assert unknown.error is not None and unknown.error.startswith("rcode REFUSED not in NOERROR")


def test_mx_over_tcp(dnsmasq) -> None:
    result = probe(f"dns://127.0.0.1:{dnsmasq.port}/comune.test?type=MX", transport="tcp",
                   answer=r"MX 10 posta\.comune\.test\.$")
    assert result.success, result.error
    phases = dict((labels["phase"], value) for labels, value in series(result, "probe_dns_duration_seconds"))
    assert phases["connect"] > 0


def test_a_server_that_never_answers() -> None:
    with SilentUdp() as silent:
        result = probe(f"dns://127.0.0.1:{silent.port}/portale.comune.test", timeout=0.5)
    assert result.error == f"no answer from 127.0.0.1:{silent.port} within 0.5 s"
    assert series(result, "probe_dns_query_succeeded") == [({}, 0.0)]
    assert 0.45 < result.duration < 0.8
