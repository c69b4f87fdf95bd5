"""The Alertmanager webhook bridge: HTTP hardening, auth, payload validation, incidents; then a real Alertmanager."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time

import pytest
from alertmanager_server import AlertmanagerServer
from conftest import free_port, wait_until

from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.state import State
from custode.agent.tickets.alertmanager import AlertmanagerReceiver, group_target, instance_host, parse_notification
from custode.agent.tickets.config import AlertmanagerBridge
from custode.agent.web import Route, Router, make_server
from custode.agent.web import server as web_server
from custode.agent.web.core import core_routes

TOKEN = "s3cret-bearer-token"
PASSWORD = "basic-pa55word"
PATH = "/alertmanager"


@pytest.fixture
def state(tmp_path):
    db = State(tmp_path / "state.db")
    yield db
    db.close()


@pytest.fixture
def incidents(state):
    return Incidents(state)


def router_with(route: Route) -> Router:
    """The agent's own routes and ``route``, as the runtime registers them."""
    router = Router()
    for core in core_routes(MetricCache(), lambda: (True, "ready"), lambda: (True, "healthy"), router):
        router.add(core, "core")
    router.add(route, "test")
    return router


@pytest.fixture
def bridge(incidents, monkeypatch):
    """The bridge served by make_server on 127.0.0.1 (bearer and basic auth both configured)."""
    monkeypatch.setenv("AM_TOKEN", TOKEN)
    monkeypatch.setenv("AM_PASSWORD", PASSWORD)
    settings = AlertmanagerBridge(enabled=True, path=PATH, token={"env": "AM_TOKEN"}, username="am",
                                  password={"env": "AM_PASSWORD"}, max_bytes=4096, default_tenant="default")
    receiver = AlertmanagerReceiver(settings, incidents, ["comune-a", "comune-b", "default"])
    server = make_server("127.0.0.1", free_port(), router_with(receiver.route()))
    # A short poll interval: shutdown() waits for it, and there is one server per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def alert(status: str = "firing", **labels: str) -> dict:
    return {"status": status, "labels": labels, "annotations": {"summary": "disk almost full"},
            "startsAt": "2024-05-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom:9090/graph?g0.expr=x", "fingerprint": "1a30ba71cca2921f"}


def payload(status: str = "firing", tenant: str | None = "comune-a", severity: str = "critical",
            instance: str = "db1:9100", **changes: object) -> dict:
    labels = {"alertname": "DiskFull", "instance": instance, "severity": severity}
    if tenant is not None:
        labels["tenant"] = tenant
    body = {"version": "4", "groupKey": '{}:{alertname="DiskFull"}', "truncatedAlerts": 0, "status": status,
            "receiver": "custode", "groupLabels": {"alertname": "DiskFull"}, "commonLabels": labels,
            "commonAnnotations": {"summary": "disk almost full"}, "externalURL": "http://am:9093",
            "alerts": [alert(status, **labels)]}
    body.update(changes)
    return body


def post(port: int, body: bytes | dict, headers: dict[str, str] | None = None,
         path: str = PATH) -> tuple[int, str, http.client.HTTPResponse]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json",
                                                       **({"Authorization": f"Bearer {TOKEN}"}
                                                          if headers is None else headers)})
        response = conn.getresponse()
        return response.status, response.read().decode(), response
    finally:
        conn.close()


def raw_exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until the server closes (bounded by ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


KEY = "comune-a/alertmanager/db1:alertname=DiskFull"


# --- authentication ---------------------------------------------------------------


def test_missing_credentials_are_refused_with_a_challenge(bridge, incidents) -> None:
    status, text, response = post(bridge, payload(), headers={})
    assert status == 401
    assert text.startswith("authentication required: no Authorization header") and text.endswith("\n")
    assert response.getheader("WWW-Authenticate", "").startswith("Bearer")
    assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert incidents.open_incidents() == []


@pytest.mark.parametrize("header", [
    "Bearer wrong-token-value",
    "Bearer " + TOKEN + "x",
    "Basic " + base64.b64encode(b"am:wrong-password-value").decode(),
    "Basic " + base64.b64encode(b"someone:" + PASSWORD.encode()).decode(),
    "Basic !!!not-base64!!!",
    "Digest username=am",
])
def test_wrong_credentials_are_refused_without_echoing_them(bridge, incidents, header) -> None:
    status, text, _ = post(bridge, payload(), headers={"Authorization": header})
    assert status == 401 and text.startswith("authentication required: ")
    sent = header.split(" ", 1)[1]
    for secret in (sent, TOKEN, PASSWORD, "wrong-password-value", "wrong-token-value"):
        assert secret not in text
    assert incidents.open_incidents() == []


def test_bearer_token_opens_an_incident(bridge, incidents) -> None:
    status, text, _ = post(bridge, payload())
    assert (status, text) == (200, f"ok: {KEY} opened\n")
    [incident] = incidents.open_incidents()
    assert (incident.key, incident.tenant, incident.check, incident.severity) == \
        (KEY, "comune-a", "alertmanager", "critical")


def test_basic_auth_is_accepted_and_scheme_is_case_insensitive(bridge, incidents) -> None:
    credentials = base64.b64encode(f"am:{PASSWORD}".encode()).decode()
    status, text, _ = post(bridge, payload(), headers={"authorization": f"basic {credentials}"})
    assert (status, text) == (200, f"ok: {KEY} opened\n")


# --- HTTP hardening -------------------------------------------------------------------


def test_oversized_body_gets_413_before_it_is_sent(bridge, incidents) -> None:
    # Only the headers go out: the server must answer without waiting for 2 MB that never come.
    started = time.monotonic()
    answer = raw_exchange(bridge, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                                  "Content-Length: 2000000\r\n\r\n".encode())
    assert time.monotonic() - started < 3
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in head
    assert text.startswith(b"payload too large: 2000000 bytes, the limit is 4096")
    assert incidents.open_incidents() == []


def test_an_unauthenticated_post_is_refused_before_its_body_is_read(bridge, incidents) -> None:
    # The head promises 1 MiB that never comes: the 401 must come at once, not after a body timeout.
    started = time.monotonic()
    answer = raw_exchange(bridge, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
                                  "Content-Length: 4000\r\n\r\n{".encode())
    assert time.monotonic() - started < 2
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ") and b"Connection: close" in head
    assert b'WWW-Authenticate: Bearer realm="custode"' in head
    assert text.startswith(b"authentication required: the bearer token is wrong")
    assert incidents.open_incidents() == []


def test_oversized_body_with_expect_continue_is_refused_up_front(bridge) -> None:
    answer = raw_exchange(bridge, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                  f"Authorization: Bearer {TOKEN}\r\nContent-Length: 5000\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer


def test_small_body_with_expect_continue_is_accepted(bridge, incidents) -> None:
    body = json.dumps(payload()).encode()
    with socket.create_connection(("127.0.0.1", bridge), timeout=5) as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                     f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    assert [i.key for i in incidents.open_incidents()] == [KEY]


def test_a_failing_handler_answers_500() -> None:
    def broken(request):
        raise RuntimeError("bug")

    server = make_server("127.0.0.1", free_port(), router_with(Route("/x", broken, ("POST",), max_bytes=10)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        status, text, _ = post(server.server_address[1], b"{}", path="/x")
        assert (status, text) == (500, "internal error: see Custode's log\n")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_missing_content_length_gets_411(bridge) -> None:
    answer = raw_exchange(bridge, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 411 ")
    assert b"length required" in answer


def test_bad_content_length_gets_400(bridge) -> None:
    answer = raw_exchange(bridge, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                                  "Content-Length: -5\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400 ") and b"not a non-negative integer" in answer


def test_a_trickling_body_is_cut_off_in_bounded_time(bridge, monkeypatch) -> None:
    monkeypatch.setattr(web_server, "POST_BODY_TIMEOUT", 0.6)
    with socket.create_connection(("127.0.0.1", bridge), timeout=5) as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Length: 100\r\n\r\n".encode())
        started = time.monotonic()
        answer = b""
        sock.settimeout(0.1)
        for _ in range(30):  # one byte every 0.1 s: each recv() is quick, the whole body never completes
            try:
                answer = sock.recv(4096)
            except socket.timeout:
                pass
            if answer:
                break
            try:
                sock.sendall(b"x")
            except OSError:
                break
        sock.settimeout(5)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert 0.5 < elapsed < 2.5


def test_get_on_the_post_path_is_405_and_unknown_post_is_404(bridge) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", bridge, timeout=5)
    conn.request("GET", PATH)
    response = conn.getresponse()
    assert response.status == 405 and response.getheader("Allow") == "POST"
    assert response.read() == f"method not allowed: {PATH} takes POST only\n".encode()
    conn.close()
    status, text, _ = post(bridge, payload(), path="/nowhere")
    assert status == 404 and text == "not found: no POST endpoint at /nowhere\n"


def test_keep_alive_connection_serves_metrics_after_a_post(bridge) -> None:
    """The body was consumed exactly: the next request on the same connection parses."""
    conn = http.client.HTTPConnection("127.0.0.1", bridge, timeout=5)
    try:
        conn.request("POST", PATH, body=json.dumps(payload()).encode(),
                     headers={"Authorization": f"Bearer {TOKEN}"})
        first = conn.getresponse()
        assert first.status == 200
        first.read()
        conn.request("GET", "/metrics")
        second = conn.getresponse()
        assert second.status == 200 and second.getheader("Content-Type").startswith("text/plain; version=0.0.4")
        second.read()
    finally:
        conn.close()


# --- payload validation -------------------------------------------------------------


def _with_alert_labels(labels: dict) -> dict:
    body = payload()
    body["alerts"][0]["labels"] = labels
    return body


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "the body is not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"\xff\xfe", "the body is not UTF-8"),
    (b"[1, 2]", "the body must be a JSON object (an Alertmanager notification), not a list"),
    (payload(version="3"), 'version "3" is not supported: Custode accepts Alertmanager webhook version "4"'),
    (payload(version=4), 'version 4 is not supported: Custode accepts Alertmanager webhook version "4"'),
    ({k: v for k, v in payload().items() if k != "groupKey"}, "groupKey is missing"),
    (payload(groupKey=""), "groupKey must be a non-empty string"),
    (payload(status="pending"), 'status must be "firing" or "resolved", not "pending"'),
    (payload(alerts={"a": 1}), "alerts must be a list, not an object"),
    (payload(alerts=[]), "alerts is empty"),
    (payload(truncatedAlerts=-1), "truncatedAlerts must be a non-negative integer, not -1"),
    (payload(commonLabels={"tenant": "comune-a", "port": 9100}), "commonLabels.port must be a string, not a number"),
    (payload(groupLabels=["alertname"]), "groupLabels must be an object of strings, not a list"),
    (_with_alert_labels({"alertname": "X", "up": True}), "alerts[0].labels.up must be a string, not a boolean"),
    (payload(alerts=[{"status": "firing"}]), "alerts[0].labels is missing"),
    (payload(alerts=["x"]), "alerts[0] must be an object, not a string"),
    (payload(alerts=[{**alert(), "status": "ok"}]), 'alerts[0].status must be "firing" or "resolved", not "ok"'),
    (payload(externalURL=5), "externalURL must be a string, not a number"),
])
def test_malformed_payloads_get_a_precise_400(bridge, incidents, body, reason) -> None:
    status, text, _ = post(bridge, body)
    assert status == 400, text
    assert text.startswith("bad request: " + reason), text
    assert incidents.open_incidents() == []


def test_unknown_tenant_names_the_tenant_and_the_fix(bridge, incidents) -> None:
    status, text, _ = post(bridge, payload(tenant="comune-z"))
    assert status == 400
    assert "unknown tenant 'comune-z' (from label 'tenant')" in text
    assert "define it under tenants:" in text and "tickets.alertmanager.default_tenant" in text


def test_no_tenant_label_uses_default_tenant(bridge, incidents) -> None:
    status, text, _ = post(bridge, payload(tenant=None))
    assert (status, text) == (200, "ok: default/alertmanager/db1:alertname=DiskFull opened\n")


def test_no_tenant_at_all_is_400(incidents, monkeypatch) -> None:
    monkeypatch.setenv("AM_TOKEN", TOKEN)
    receiver = AlertmanagerReceiver(AlertmanagerBridge(enabled=True, token={"env": "AM_TOKEN"}), incidents,
                                    ["comune-a"])
    status, text = receiver.handle({"Authorization": f"Bearer {TOKEN}"}, json.dumps(payload(tenant=None)).encode())
    assert status == 400 and text.startswith("bad request: no tenant: the alerts have no 'tenant' label")


def test_a_group_mixing_tenants_is_refused(bridge) -> None:
    body = payload(tenant=None)
    body["alerts"] = [alert(alertname="DiskFull", tenant="comune-a"), alert(alertname="DiskFull", tenant="comune-b")]
    status, text, _ = post(bridge, body)
    assert status == 400 and "mixes tenants (comune-a, comune-b)" in text and "group_by" in text


# --- the incident lifecycle -----------------------------------------------------------


def test_firing_repeat_escalation_and_resolution(bridge, incidents) -> None:
    assert post(bridge, payload(severity="warning"))[1] == f"ok: {KEY} opened\n"
    assert post(bridge, payload(severity="warning"))[1] == f"ok: {KEY} updated\n"  # repeat_interval re-send
    assert post(bridge, payload(severity="page"))[1] == f"ok: {KEY} updated\n"  # page counts as critical
    [incident] = incidents.open_incidents()
    assert (incident.severity, incident.max_severity, incident.occurrences) == ("critical", "critical", 3)
    assert incident.summary == "disk almost full"
    details = incident.details
    assert (details["receiver"], details["external_url"], details["group_key"], details["count"]) == \
        ("custode", "http://am:9093", '{}:{alertname="DiskFull"}', 1)
    assert details["alerts"][0]["labels"]["instance"] == "db1:9100"
    assert details["alerts"][0]["generatorURL"] == "http://prom:9090/graph?g0.expr=x"
    assert [e["kind"] for e in incidents.events(incident.id)] == ["opened", "repeated", "severity_changed"]

    assert post(bridge, payload(status="resolved"))[1] == f"ok: {KEY} resolved\n"
    assert incidents.open_incidents() == []
    resolved = incidents.get(incident.id)
    assert resolved.status == "resolved"
    assert incidents.events(incident.id)[-1]["message"] == "resolved: disk almost full"
    assert post(bridge, payload(status="resolved"))[1] == f"ok: {KEY} unchanged\n"


def test_state_database_error_is_503(bridge, state) -> None:
    state.close()
    status, text, _ = post(bridge, payload())
    assert status == 503 and "Alertmanager will retry" in text


def _notification(**changes: object):
    return parse_notification(json.dumps(payload(**changes)).encode())


def test_target_is_stable_and_readable() -> None:
    assert [instance_host(i) for i in ("db1:9100", "db1", "[::1]:9100", "https://web.example.it:8443/x", "")] == \
        ["db1", "db1", "::1", "web.example.it", ""]
    assert group_target(_notification(groupLabels={"tenant": "comune-a", "job": "node", "alertname": "Up"}),
                        "tenant") == "db1:alertname=Up,job=node"
    no_instance = _notification(commonLabels={"alertname": "DiskFull"}, groupLabels={})
    target = group_target(no_instance, "tenant")
    assert target.startswith("alertmanager:group-") and len(target) == len("alertmanager:group-") + 12
    assert target == group_target(_notification(commonLabels={}, groupLabels={}), "tenant")
    other = _notification(commonLabels={}, groupLabels={}, groupKey='{}:{job="x"}')
    assert group_target(other, "tenant") != target


def test_severity_and_summary_fallbacks(bridge, incidents) -> None:
    body = payload(severity="info", commonAnnotations={})
    body["alerts"].append(alert(alertname="DiskFull", instance="db1:9100", severity="info", tenant="comune-a"))
    assert post(bridge, body)[0] == 200
    [incident] = incidents.open_incidents()
    assert (incident.severity, incident.summary) == ("warning", "DiskFull: 2 alerts firing")


# --- with the real Alertmanager -------------------------------------------------------


@pytest.mark.real_clock
@pytest.mark.integration
def test_real_alertmanager_opens_and_resolves_an_incident(bridge, incidents, tmp_path) -> None:
    labels = {"alertname": "DiskFull", "tenant": "comune-b", "severity": "critical", "instance": "db7:9100"}
    key = "comune-b/alertmanager/db7:alertname=DiskFull,instance=db7:9100"
    with AlertmanagerServer(tmp_path / "am", f"http://127.0.0.1:{bridge}{PATH}", TOKEN) as am:
        am.fire(labels, {"summary": "/var on db7 is 97% full"})
        opened = wait_until(lambda: incidents.open_incidents(), 10, step=0.1)
        assert opened, "no incident within 10 s; alertmanager log:\n" + am.log_tail()
        [incident] = incidents.open_incidents()
        assert (incident.key, incident.tenant, incident.severity, incident.summary) == \
            (key, "comune-b", "critical", "/var on db7 is 97% full")
        assert incident.details["external_url"].startswith("http") and incident.details["count"] == 1

        am.resolve(labels, {"summary": "/var on db7 is 97% full"})
        resolved = wait_until(lambda: incidents.get(incident.id).status == "resolved", 10, step=0.1)
        assert resolved, "incident not resolved within 10 s; alertmanager log:\n" + am.log_tail()
        assert [e["kind"] for e in incidents.events(incident.id)][0] == "opened"
        assert incidents.events(incident.id)[-1]["kind"] == "resolved"
