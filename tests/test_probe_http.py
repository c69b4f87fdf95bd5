"""The HTTP(S) prober against real local servers: phases, certificate, status, redirects, regexes, timeouts."""

from __future__ import annotations

import base64
import time

import pytest
from probe_servers import PortalServer, SilentServer, closed_port

from custode.agent.blackbox.base import ProbeResult
from custode.agent.blackbox.config import HttpOptions, ProbesSection
from custode.agent.blackbox.http_probe import status_words
from custode.agent.blackbox.probers import run_probe
from custode.agent.blackbox.target import adhoc_target
from custode.agent.blackbox.urls import target_from_url

DAY = 86400.0


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with PortalServer(tmp_path_factory.mktemp("portal"), days=10) as server:
        yield server


def probe(url: str, timeout: float = 5.0, **options) -> ProbeResult:
    return run_probe(adhoc_target(url, "default", timeout=timeout, options=HttpOptions(**options)))


def value(result: ProbeResult, name: str, **labels: str) -> float:
    found = [s.value for s in result.series if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found} in {[s.name for s in result.series]}"
    return found[0]


def test_a_good_https_page_with_its_phases_certificate_and_tls_version(portal) -> None:
    result = probe(portal.url(), ca_file=portal.ca_file, body="Comune di Sassuolo")
    assert result.success, result.error
    assert result.error is None and result.status_code == 200
    assert value(result, "probe_http_status_code") == 200
    assert value(result, "probe_http_ssl") == 1
    assert value(result, "probe_http_version") == 1.1
    assert value(result, "probe_http_redirects") == 0
    assert value(result, "probe_failed_due_to_regex") == 0
    assert value(result, "probe_http_content_length") == value(result, "probe_http_uncompressed_body_length") > 0
    assert value(result, "probe_http_last_modified_timestamp_seconds") > 0
    phases = {s.labels["phase"]: s.value for s in result.series if s.name == "probe_http_duration_seconds"}
    assert set(phases) == {"resolve", "connect", "tls", "processing", "transfer"}
    assert phases["tls"] > 0 and phases["processing"] > 0 and all(v >= 0 for v in phases.values())
    assert sum(phases.values()) <= result.duration + 0.01
    assert result.cert_expiry == pytest.approx(portal.not_after, abs=1)
    assert result.cert_expiry == pytest.approx(time.time() + 10 * DAY, abs=120)
    assert value(result, "probe_ssl_earliest_cert_expiry") == result.cert_expiry
    assert value(result, "probe_tls_version_info", version="TLS 1.3") == 1
    info = [s for s in result.series if s.name == "probe_ssl_last_chain_info"]
    assert info and info[0].labels["subject"] == "CN=127.0.0.1" and "127.0.0.1" in info[0].labels["subjectalternative"]
    assert result.ip_protocol == 4 and result.ip_address == "127.0.0.1"


def test_the_system_cas_do_not_trust_a_private_ca_but_the_expiry_is_still_read(portal) -> None:
    result = probe(portal.url())
    assert not result.success
    assert result.error is not None and result.error.startswith("certificate verify failed: ")
    assert "127.0.0.1:" in result.error
    assert result.cert_expiry == pytest.approx(portal.not_after, abs=1)  # read once more, unverified


def test_verify_false_accepts_the_certificate_and_still_reads_its_expiry(portal) -> None:
    result = probe(portal.url(), verify=False)
    assert result.success, result.error
    assert result.cert_expiry == pytest.approx(portal.not_after, abs=1)


def test_a_500_is_down_in_words(portal) -> None:
    result = probe(portal.url("/error"), ca_file=portal.ca_file)
    assert not result.success
    assert result.error == "status 500 not in 200-299"
    assert value(result, "probe_http_status_code") == 500


def test_expected_statuses_may_be_codes_or_classes(portal) -> None:
    assert probe(portal.url("/error"), ca_file=portal.ca_file, status=[500]).success
    assert probe(portal.url("/error"), ca_file=portal.ca_file, status=["5xx", 200]).success
    failed = probe(portal.url("/"), ca_file=portal.ca_file, status=[204, "3xx"])
    assert failed.error == "status 200 not in 204, 300-399"
    assert status_words([]) == "200-299"
    with pytest.raises(ValueError, match="a code from 100 to 599"):
        HttpOptions(status=["20x"])


def test_redirects_are_followed_counted_and_limited(portal) -> None:
    followed = probe(portal.url("/redirect"), ca_file=portal.ca_file)
    assert followed.success and value(followed, "probe_http_redirects") == 1
    assert value(followed, "probe_http_status_code") == 200
    phases = {s.labels["phase"]: s.value for s in followed.series if s.name == "probe_http_duration_seconds"}
    assert phases["tls"] > 0
    kept = probe(portal.url("/redirect"), ca_file=portal.ca_file, follow_redirects=False)
    assert kept.error == "status 302 not in 200-299"
    loop = probe(portal.url("/loop"), ca_file=portal.ca_file, max_redirects=3)
    assert loop.error == "more than 3 redirects (the last to /loop)"


def test_body_regexes_fail_the_probe_in_words(portal) -> None:
    missing = probe(portal.url(), ca_file=portal.ca_file, body="Comune di Capannori")
    assert missing.error == "body does not match /Comune di Capannori/"
    assert value(missing, "probe_failed_due_to_regex") == 1
    maintenance = probe(portal.url("/maintenance"), ca_file=portal.ca_file, body_not="(?i)manutenzione")
    assert maintenance.error == "body matches /(?i)manutenzione/, which it must not"
    assert value(maintenance, "probe_failed_due_to_regex") == 1
    head = probe(portal.url(), ca_file=portal.ca_file, method="HEAD")
    assert head.success and value(head, "probe_http_uncompressed_body_length") == 0


def test_a_server_that_never_answers_costs_the_timeout_and_no_more() -> None:
    with SilentServer() as silent:
        started = time.monotonic()
        result = probe(f"http://127.0.0.1:{silent.port}/", timeout=1.0)
        took = time.monotonic() - started
    assert result.error == "no answer within 1 s"
    assert 0.9 <= took < 1.6 and result.duration < 1.1


def test_https_to_a_server_that_never_answers_fails_in_the_handshake() -> None:
    with SilentServer() as silent:
        result = probe(f"https://127.0.0.1:{silent.port}/", timeout=0.5)
    assert result.error == f"no TLS handshake with 127.0.0.1:{silent.port} within 0.5 s"


def test_a_closed_port_is_refused_in_words() -> None:
    port = closed_port()
    result = probe(f"https://127.0.0.1:{port}/")
    assert result.error == f"connection refused by 127.0.0.1:{port}"
    assert value(result, "probe_http_status_code") == 0 and value(result, "probe_http_ssl") == 0


def test_a_name_that_does_not_resolve() -> None:
    result = probe("https://portale.invalid/", timeout=3)
    assert result.error is not None and result.error.startswith("cannot resolve portale.invalid")


def test_a_resolver_that_hangs_costs_the_timeout_and_no_more(monkeypatch) -> None:
    import socket as sockets

    from custode.agent.blackbox import base

    real = sockets.getaddrinfo

    def hanging(host, *args, **kwargs):
        if host == "lento.comune.test":
            time.sleep(2)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(base.socket, "getaddrinfo", hanging)
    started = time.monotonic()
    result = probe("https://lento.comune.test/", timeout=0.5)
    assert result.error == "cannot resolve lento.comune.test within 0.5 s"
    assert time.monotonic() - started < 0.8


def test_plain_http_has_no_certificate(tmp_path) -> None:
    with PortalServer(tmp_path, tls=False) as plain:
        result = probe(plain.url())
    assert result.success and result.cert_expiry is None
    assert value(result, "probe_http_ssl") == 0
    assert not [s for s in result.series if s.name.startswith(("probe_ssl_", "probe_tls_"))]


def test_basic_auth_reads_its_password_from_a_secret(portal, monkeypatch) -> None:
    from custode.agent.blackbox.config import BasicAuth
    from custode.agent.secrets import SecretRef

    portal.expect_auth("Basic " + base64.b64encode(b"ced:segreto").decode())
    auth = BasicAuth(user="ced", password=SecretRef(env="CUSTODE_TEST_PROBE_PASSWORD"))
    unset = probe(portal.url("/auth"), ca_file=portal.ca_file, basic_auth=auth)
    assert unset.error is not None and unset.error.startswith("the probe's credentials cannot be read: environment "
                                                              "variable CUSTODE_TEST_PROBE_PASSWORD is not set")
    monkeypatch.setenv("CUSTODE_TEST_PROBE_PASSWORD", "segreto")
    assert probe(portal.url("/auth"), ca_file=portal.ca_file, basic_auth=auth).success
    monkeypatch.setenv("CUSTODE_TEST_PROBE_PASSWORD", "sbagliato")
    assert probe(portal.url("/auth"), ca_file=portal.ca_file, basic_auth=auth).error == "status 401 not in 200-299"


def test_credentials_never_go_into_plain_headers() -> None:
    with pytest.raises(ValueError, match="basic_auth or bearer_token"):
        HttpOptions(headers={"Authorization": "Basic Y2VkOnNlZ3JldG8="})


@pytest.mark.parametrize(("url", "kind", "address", "port", "shown"), [
    ("https://www.comune.sassuolo.mo.it/", "http", "www.comune.sassuolo.mo.it", 443,
     "https://www.comune.sassuolo.mo.it/"),
    ("http://[::1]:8080/stato?x=1", "http", "::1", 8080, "http://[::1]:8080/stato?x=1"),
    ("tcp://pratiche.comune.capannori.lu.it:443", "tcp", "pratiche.comune.capannori.lu.it", 443,
     "tcp://pratiche.comune.capannori.lu.it:443"),
    ("icmp://[2001:db8::1]", "icmp", "2001:db8::1", None, "icmp://[2001:db8::1]"),
    ("dns://192.0.2.53/www.comune.test?type=mx", "dns", "192.0.2.53", 53, "dns://192.0.2.53/www.comune.test?type=MX"),
    ("dns://ns1.example.it:5353/www.comune.test", "dns", "ns1.example.it", 5353,
     "dns://ns1.example.it:5353/www.comune.test?type=A"),
])
def test_target_urls(url, kind, address, port, shown) -> None:
    parsed = target_from_url(url)
    assert (parsed.kind, parsed.address, parsed.port, parsed.url) == (kind, address, port, shown)


@pytest.mark.parametrize(("url", "words"), [
    ("www.comune.sassuolo.mo.it", "is not a URL"),
    ("ftp://files.example.it/", "unknown scheme 'ftp'"),
    ("tcp://host", "needs its port"),
    ("icmp://host:7", "no port, path or query"),
    ("dns://192.0.2.53/", "names the server and the name"),
    ("dns://192.0.2.53/x?class=IN", "unknown query option 'class'"),
    ("https://host:99999/", "port"),
])
def test_bad_target_urls_say_what_is_expected(url, words) -> None:
    with pytest.raises(ValueError, match=words):
        target_from_url(url)


def test_the_config_validates_targets_where_they_are_written() -> None:
    from pydantic import ValidationError

    ok = ProbesSection.model_validate({"targets": {
        "portale": {"url": "https://www.comune.sassuolo.mo.it/", "http": {"body": "Sassuolo"}},
        "link": {"kind": "icmp", "address": "192.0.2.1", "icmp": {"fallback_port": 443}},
        "ns": {"kind": "dns", "address": "192.0.2.53", "dns": {"name": "www.comune.test", "type": "aaaa"}}}})
    assert ok.targets["ns"].parsed().url == "dns://192.0.2.53/www.comune.test?type=AAAA"
    for entry, words in (({"url": "https://x/", "tcp": {"tls": True}}, "'tcp:' options given"),
                         ({"url": "https://x/", "kind": "tcp"}, "is a http target"),
                         ({"kind": "http", "address": "x"}, "written as its url"),
                         ({"url": "https://x/", "labels": {"probe": "x"}}, "set by Custode"),
                         ({"url": "dns://192.0.2.53/x", "dns": {"rcodes": ["MAYBE"]}}, "unknown DNS rcode"),
                         ({"url": "https://x/", "timeout": "2m"}, "shorter than interval")):
        with pytest.raises(ValidationError, match=words):
            ProbesSection.model_validate({"targets": {"t": entry}})
