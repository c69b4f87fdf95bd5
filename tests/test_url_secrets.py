"""Secrets never in URLs: refused in the config, redacted wherever a URL or an error is shown or kept.

Also: a helpdesk reached over plain http only on this machine (or when the
backend says so), ``config check`` naming every ``{env: VAR}`` secret the
environment lacks, and ``custode run`` stopping on one in one line.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import free_port

from custode.agent.cli import main
from custode.agent.config_loader import ConfigError, env_secret_problems, load_model_file, load_text
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.redact import REDACTED, redact_text, redact_url, redact_values, safe_exc_info, url_secrets
from custode.agent.state import State
from custode.agent.tickets import store
from custode.agent.tickets.backends.base import DeliveryError, TicketBackend
from custode.agent.tickets.backends.http import HttpClient
from custode.agent.tickets.service import TicketService
from custode.agent.updates.playbook import Playbook

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Sup3rS3cret"

# --- redact_url / redact_text ------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    (f"https://bot:{SECRET}@desk.example.it/api?key={SECRET}&page=2",
     f"https://bot:{REDACTED}@desk.example.it/api?key={REDACTED}&page=2"),
    (f"https://{SECRET}@api.example.it/v1", f"https://{REDACTED}@api.example.it/v1"),
    (f"https://h.example.it/x?access_token={SECRET}#top", f"https://h.example.it/x?access_token={REDACTED}#top"),
    (f"https://h.example.it/x?A-P-I_KEY=1&Api-Key={SECRET}", f"https://h.example.it/x?A-P-I_KEY=1&Api-Key={REDACTED}"),
    (f"https://s3.example.it/b/o?X-Amz-Signature={SECRET}&X-Amz-Date=1",
     f"https://s3.example.it/b/o?X-Amz-Signature={REDACTED}&X-Amz-Date=1"),
    (f"https://h.example.it/?sig={SECRET}&sv=2024", f"https://h.example.it/?sig={REDACTED}&sv=2024"),
    (f"sftp://backup:{SECRET}@nas.lan/repo", f"sftp://backup:{REDACTED}@nas.lan/repo"),
    ("sftp://backup@nas.lan/repo", "sftp://backup@nas.lan/repo"),
    ("https://desk.example.it/api/v2/tickets.json?page=2&per_page=100",
     "https://desk.example.it/api/v2/tickets.json?page=2&per_page=100"),
    ("http://[::1]:8080/x?token=", "http://[::1]:8080/x?token="),
])
def test_redact_url_hides_the_secret_parts_and_keeps_the_rest_byte_for_byte(url, expected) -> None:
    assert redact_url(url) == expected


def test_redact_text_finds_every_url_in_a_message_and_the_query_of_a_bare_path() -> None:
    text = (f"POST https://u:{SECRET}@a.example.it/x failed, then GET http://b.example.it/y?token={SECRET} "
            f"(HTTPConnectionPool(host='b', port=80): Max retries exceeded with url: /y?password={SECRET})")
    redacted = redact_text(text)
    assert SECRET not in redacted
    assert redacted.count(REDACTED) == 3 and "https://u:" in redacted and "a.example.it/x failed" in redacted


def test_a_real_requests_error_is_redacted() -> None:
    port = free_port()
    with pytest.raises(requests.RequestException) as caught:
        requests.get(f"http://127.0.0.1:{port}/api", params={"api_key": SECRET}, timeout=2)
    assert SECRET in str(caught.value), "requests quotes the query string: the reason for redact_text"
    assert SECRET not in redact_text(str(caught.value))


def test_redact_values_reaches_nested_strings() -> None:
    details = {"url": f"https://h.example.it/?token={SECRET}", "ops": [f"x http://h/?secret={SECRET}"], "n": 3}
    assert SECRET not in repr(redact_values(details)) and redact_values(details)["n"] == 3


def test_safe_exc_info_keeps_the_type_and_redacts_the_message() -> None:
    try:
        raise ValueError(f"bad answer from https://h.example.it/?token={SECRET}")
    except ValueError as exc:
        kind, value, traceback = safe_exc_info(exc)
    assert kind is ValueError and SECRET not in str(value) and REDACTED in str(value) and traceback is not None


def test_placeholders_are_not_secrets() -> None:
    assert url_secrets("https://h.example.it/?token={{ secret.token }}") == []
    assert url_secrets("https://user:${PASSWORD}@h.example.it/") == []
    assert url_secrets(f"https://h.example.it/?token={SECRET}") == ["query parameter 'token'"]


# --- the config refuses credentials in URLs -------------------------------------------------------

ZD = "{type: zendesk, url: 'URL', email: a@p.example.it, token: {env: ZT}}"
GLPI = "{type: glpi, url: 'URL', user_token: {env: U}}"
HOOK = "{type: webhook, url: 'URL', secret: {env: S}}"


@pytest.mark.parametrize("backend, url, what, fix", [
    (ZD, f"https://bot:{SECRET}@p.zendesk.com", "a password in the userinfo", "use the backend's token field"),
    (ZD, f"https://p.zendesk.com/?api_key={SECRET}", "query parameter 'api_key'", "use the backend's token field"),
    (GLPI, f"https://g.example.it/apirest.php?user_token={SECRET}", "query parameter 'user_token'",
     "use the backend's user_token (and app_token) field"),
    (HOOK, f"https://hooks.example.it/in?token={SECRET}", "query parameter 'token'", "X-Custode-Signature"),
    (HOOK, f"https://{SECRET}@hooks.example.it/in", "a credential in the userinfo", "the backend's secret field"),
    (HOOK, f"https://hooks.example.it/in?sig={SECRET}&v=1", "query parameter 'sig'", "X-Custode-Signature"),
])
def test_a_helpdesk_url_with_a_credential_is_refused_naming_the_field_and_the_fix(backend, url, what, fix) -> None:
    text = "tickets:\n  backends:\n    desk: " + backend.replace("URL", url) + "\n"
    with pytest.raises(ConfigError) as caught:
        load_text(text, "c.yaml")
    [problem] = [p for p in caught.value.problems if what in p.message]  # GLPI also wants the url to end so
    assert (problem.source, problem.line, problem.path) == ("c.yaml", 3, "tickets.backends.desk.url")
    assert fix in problem.message and "{env: VAR}" in problem.message
    assert SECRET not in str(caught.value), "the refusal must not repeat the secret"


def test_a_credential_in_any_other_url_of_the_config_is_refused_too() -> None:
    text = ("restore_tests:\n  sets:\n    nas:\n      backend: restic\n"
            f"      repository: 'rest:https://backup:{SECRET}@nas.lan:8000/crema'\n"
            "      source: /srv\n      password: {env: RESTIC_PASSWORD}\n")
    with pytest.raises(ConfigError) as caught:
        load_text(text, "c.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (5, "restore_tests.sets.nas.repository")
    assert "RESTIC_REST_PASSWORD" in problem.message and SECRET not in str(caught.value)


def test_a_credential_in_a_playbook_url_is_refused(tmp_path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(f"name: deploy\nsteps:\n  - check: {{http: 'https://app.lan/health?token={SECRET}'}}\n")
    with pytest.raises(ConfigError) as caught:
        load_model_file(path, Playbook, "playbook")
    [problem] = caught.value.problems
    assert problem.line == 3 and "{{ secret.NAME }}" in problem.message and SECRET not in str(caught.value)
    path.write_text("name: deploy\nsteps:\n  - check: {http: 'https://app.lan/health?token={{ secret.t }}'}\n"
                    "secrets: {t: {env: APP_TOKEN}}\n")
    load_model_file(path, Playbook, "playbook")  # a placeholder is a reference, not a secret


@pytest.mark.parametrize("url", ["https://desk.example.it/api?page=2", "sftp://backup@nas.lan/repo",
                                 "https://h.example.it/?token="])
def test_urls_without_credentials_pass(url) -> None:
    load_text(f"restore_tests:\n  sets:\n    a: {{backend: borg, repository: '{url}', source: /srv, "
              "password: {env: B}}\n")


# --- plain http only on this machine ------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/in", "http://127.9.9.9/in", "http://[::1]:8080/in",
                                 "http://localhost/in", "http://LOCALHOST./in", "https://hooks.example.it/in"])
def test_loopback_and_https_helpdesks_are_accepted(url) -> None:
    load_text("tickets:\n  backends:\n    desk: " + HOOK.replace("URL", url) + "\n")


@pytest.mark.parametrize("url", ["http://hooks.example.it/in", "http://10.0.0.5/in", "http://[fe80::1]/in",
                                 "http://localhost.example.it/in"])
def test_plain_http_to_another_machine_is_refused_unless_allowed(url) -> None:
    text = "tickets:\n  backends:\n    desk: " + HOOK.replace("URL", url) + "\n"
    with pytest.raises(ConfigError) as caught:
        load_text(text, "c.yaml")
    [problem] = caught.value.problems
    assert problem.path == "tickets.backends.desk.url" and problem.line == 3
    assert "in clear" in problem.message and "allow_insecure: true" in problem.message
    allowed = load_text(text.replace("{type: webhook,", "{type: webhook, allow_insecure: true,"))
    assert allowed.model.tickets.backends["desk"].url == url


# --- config check: env secrets the config needs --------------------------------------------------

BRIDGE = """\
agent: {tenant: crema}
tenants: {crema: {name: Crema}}
tickets:
  backends:
    desk: {type: webhook, url: 'https://hooks.example.it/in', secret: {env: CUSTODE_TEST_HOOK_SECRET}}
  alertmanager:
    enabled: ENABLED
    token: {env: CUSTODE_TEST_AM_TOKEN}
"""


def test_config_check_names_every_unset_env_secret_with_its_key_and_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("CUSTODE_TEST_HOOK_SECRET", raising=False)
    monkeypatch.setenv("CUSTODE_TEST_AM_TOKEN", "")  # empty counts as unset
    path = tmp_path / "custode.yaml"
    path.write_text(BRIDGE.replace("ENABLED", "true"))
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert (f"{path}:5: tickets.backends.desk.secret: environment variable CUSTODE_TEST_HOOK_SECRET is not set"
            in err)
    assert f"{path}:8: tickets.alertmanager.token: environment variable CUSTODE_TEST_AM_TOKEN is not set" in err
    monkeypatch.setenv("CUSTODE_TEST_HOOK_SECRET", "h")
    monkeypatch.setenv("CUSTODE_TEST_AM_TOKEN", "t")
    assert main(["config", "check", str(path)]) == 0
    assert "OK" in capsys.readouterr().out


def test_secrets_of_a_section_switched_off_are_not_required(monkeypatch) -> None:
    monkeypatch.delenv("CUSTODE_TEST_HOOK_SECRET", raising=False)
    monkeypatch.delenv("CUSTODE_TEST_AM_TOKEN", raising=False)
    loaded = load_text(BRIDGE.replace("ENABLED", "false"))
    assert [p.path for p in env_secret_problems(loaded)] == ["tickets.backends.desk.secret"]
    off = load_text(BRIDGE.replace("ENABLED", "true").replace("tickets:\n", "tickets:\n  enabled: false\n"))
    assert [p.path for p in env_secret_problems(off)] == ["tickets.alertmanager.token"], \
        "tickets.enabled: false leaves out the backends, not the bridge that has its own switch"


def test_run_with_an_unset_bridge_token_stops_with_one_clear_line(tmp_path) -> None:
    path = tmp_path / "custode.yaml"
    path.write_text(BRIDGE.replace("ENABLED", "true"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "CUSTODE_DATA_DIR": str(tmp_path / "data"), "CUSTODE_TEST_HOOK_SECRET": "h"}
    done = subprocess.run([sys.executable, "-m", "custode.agent", "run", "--config", str(path),
                           "--listen", f"127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert (f"custode: cannot start: tickets.alertmanager.token ({path}:8): environment variable "
            "CUSTODE_TEST_AM_TOKEN is not set") in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.startswith("custode:")]) == 1


# --- delivery errors are kept, logged, audited and shown redacted ---------------------------------


class LeakyBackend(TicketBackend):
    """A helpdesk whose every create fails with an error that quotes a URL carrying a credential."""

    kind = "leaky"

    def __init__(self, name: str, error: Exception) -> None:
        super().__init__(name)
        self.error = error

    def find_open(self, key, tenant):
        return None

    def create(self, draft):
        raise self.error

    def comment(self, thread, text, *, op_id, retry):
        raise AssertionError("not reached")

    def set_priority(self, thread, priority, text, *, op_id, retry):
        raise AssertionError("not reached")

    def solve(self, thread, text, *, op_id, retry):
        raise AssertionError("not reached")

    def reopen(self, thread, text, *, op_id, retry):
        raise AssertionError("not reached")


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "custode.yaml"
    path.write_text(f"""\
agent: {{tenant: crema, data_dir: '{tmp_path / "data"}'}}
tenants: {{crema: {{name: Crema}}}}
tickets:
  default_backend: leaky
  backends:
    leaky: {{type: webhook, url: 'https://hooks.example.it/in', secret: {{env: CUSTODE_TEST_HOOK_SECRET}}}}
""")
    return path


@pytest.mark.parametrize("error", [
    DeliveryError(f"POST https://hooks.example.it/in?token={SECRET}: HTTP 400", retryable=False),
    DeliveryError(f"cannot connect to http://u:{SECRET}@hooks.example.it/in; will retry", retryable=True),
    RuntimeError(f"unforeseen answer from https://hooks.example.it/in?api_key={SECRET}"),
], ids=["undeliverable", "retried", "unexpected"])
def test_a_delivery_error_never_carries_the_secret_anywhere(tmp_path, caplog, capsys, error) -> None:
    path = _config_file(tmp_path)
    from custode.agent.config_loader import load

    config = load(path).model
    (tmp_path / "data").mkdir()
    state = State(tmp_path / "data" / "state.db")
    audited: list[tuple[str, str, dict[str, Any]]] = []
    service = TicketService(config, state, audit=lambda *record: audited.append(record),
                            backends={"leaky": LeakyBackend("leaky", error)})
    Incidents(state).observe(CheckResult("crema", "disk", "srv1:/", "critical", "disk full"), occurrence=True)
    with caplog.at_level(logging.INFO):
        service.step()
    [row] = store.outbox_rows(state, include_finished=True)
    assert row["last_error"] and REDACTED in row["last_error"] and SECRET not in row["last_error"]
    logged = "\n".join(caplog.text.splitlines() + [repr(vars(r)) for r in caplog.records])
    assert SECRET not in logged and REDACTED in logged
    assert SECRET not in repr(audited)
    state.close()
    assert main(["tickets", "outbox", "--config", str(path)]) in (0, 1)
    assert main(["tickets", "outbox", "--json", "--config", str(path)]) in (0, 1)
    shown = capsys.readouterr()
    assert SECRET not in shown.out + shown.err and REDACTED in shown.out


def test_the_outbox_listing_redacts_errors_stored_before_redaction(tmp_path, capsys) -> None:
    path = _config_file(tmp_path)
    from custode.agent.config_loader import load

    config = load(path).model
    (tmp_path / "data").mkdir()
    state = State(tmp_path / "data" / "state.db")
    service = TicketService(config, state, backends={"leaky": LeakyBackend("leaky", RuntimeError("x"))})
    Incidents(state).observe(CheckResult("crema", "disk", "srv1:/", "critical", "disk full"), occurrence=True)
    service.plan()
    [row] = store.outbox_rows(state)
    with state.transaction() as db:  # as an older Custode stored it
        store.reschedule(db, row["id"], f"GET https://hooks.example.it/in?token={SECRET} failed", 0.0)
    state.close()
    main(["tickets", "outbox", "--config", str(path)])
    main(["tickets", "outbox", "--json", "--config", str(path)])
    shown = capsys.readouterr().out
    assert SECRET not in shown and shown.count(REDACTED) == 2


def test_the_http_client_redacts_the_url_it_names_in_its_errors() -> None:
    client = HttpClient("desk", f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(DeliveryError) as caught:
        client.request("GET", f"/api?token={SECRET}", what="read a ticket", params={"api_key": SECRET})
    assert SECRET not in str(caught.value) and f"/api?token={REDACTED}" in str(caught.value)
    assert caught.value.retryable
    client.close()
