"""The Grafana dashboards in packaging/grafana: linted like grafana/dashboard-linter, and every query run.

The lint tests (``grafana_lint.py`` says which rules and how they differ from the Go linter) hold
each dashboard to the rules and prove each rule catches a dashboard broken for it. The integration
test starts a real ``custode run`` with data in every feature (a failed and a good backup report, an
update window with a finished run, a restore-test set with a passed test and a folder it leaves out,
tickets through a webhook double, a Linux host over a real sshd, a Windows host over the WinRM double
and a host that does not answer), has Debian's Prometheus scrape it every second, and runs every
panel's query with its variables resolved through Prometheus's label API.
"""

from __future__ import annotations

import contextlib
import copy
import json
import mailbox
import os
import re
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import free_port, http_get, require_binary, stop_process, wait_http
from grafana_lint import (
    RULES,
    PromQLError,
    VectorSelector,
    content_panels,
    lint,
    parse,
    parse_variable_query,
    selectors,
    targets,
    variable_query,
    variables,
)
from mailfactory import SCRIPT_RULE, deliver, script_report
from update_helpers import PLAYBOOKS

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "packaging" / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards"
INSTALL_DIR = "/usr/share/custode/grafana/dashboards"
"""Where the .deb installs the dashboards; the provisioning file points Grafana there."""

EXPECTED = {"custode-overview", "custode-backups", "custode-farm", "custode-tickets", "custode-updates-restore"}
FILES = sorted(DASHBOARD_DIR.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


DASHBOARDS = {path.stem: _load(path) for path in FILES}


# ----------------------------------------------------------------------------------------------- static tests

def test_the_dashboards_are_shipped_with_stable_uids_and_provisioned_from_the_install_dir() -> None:
    assert set(DASHBOARDS) == EXPECTED
    assert {d["uid"] for d in DASHBOARDS.values()} == EXPECTED  # the file name is the uid: links stay valid
    assert len({d["title"] for d in DASHBOARDS.values()}) == len(EXPECTED)
    provisioning = yaml.safe_load((GRAFANA / "provisioning" / "dashboards.yaml").read_text(encoding="utf-8"))
    assert provisioning["apiVersion"] == 1
    [provider] = provisioning["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == INSTALL_DIR
    readme = (GRAFANA / "README.md").read_text(encoding="utf-8")
    assert INSTALL_DIR in readme and all(f"{name}.json" in readme for name in EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dashboard_passes_every_lint_rule(name: str) -> None:
    assert [str(f) for f in lint(DASHBOARDS[name])] == []


def test_every_panel_has_a_target_and_every_dashboard_the_common_variables() -> None:
    for dashboard in DASHBOARDS.values():
        names = [v["name"] for v in variables(dashboard)]
        assert names[:4] == ["datasource", "job", "instance", "tenant"], names
        assert len(content_panels(dashboard)) >= 8


def _metric_names(node) -> set[str]:
    names = set()
    for selector in selectors(node):
        if selector.name:
            names.add(selector.name)
        for m in selector.matchers:
            if m.name == "__name__":
                names.update(m.value.split("|"))
    return names


GENERATED_NAMES = {"node_load1", "node_load5", "node_load15"}
"""Names built by an f-string (``f"node_load{minutes}"``), so not quoted whole in the source."""


def test_every_metric_a_dashboard_uses_is_one_custode_exposes() -> None:
    """A renamed metric must break this test, not silently empty a panel (the integration test runs them)."""
    source = "\n".join(p.read_text(encoding="utf-8") for folder in ("agent", "collectors")
                       for p in (ROOT / folder).rglob("*.py"))
    used: set[str] = set()
    for dashboard in DASHBOARDS.values():
        for _, target in targets(dashboard):
            used |= _metric_names(parse(target["expr"].replace("$__rate_interval", "1m")))
        for var in variables(dashboard):
            if var["type"] == "query":
                _, node, _ = parse_variable_query(variable_query(var))
                used |= _metric_names(node) if node is not None else set()
    assert "custode_backup_state" in used and "windows_logical_disk_free_bytes" in used
    # counters are registered without _total (prometheus_client adds it) or with it (the farm's own families)
    missing = {name for name in used - GENERATED_NAMES
               if f'"{name}"' not in source and f'"{name.removesuffix("_total")}"' not in source}
    assert missing == set()


# ----------------------------------------------------------------------------------------------- each rule bites

def _first_stat(d: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in content_panels(d) if p["type"] == "stat")


def _var(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in variables(d) if v["name"] == name)


def _set_expr(expr: str):
    def mutate(d: dict[str, Any]) -> None:
        _first_stat(d)["targets"][0]["expr"] = expr
    return mutate


def _drop_var(name: str):
    def mutate(d: dict[str, Any]) -> None:
        d["templating"]["list"] = [v for v in variables(d) if v["name"] != name]
    return mutate


J = 'job=~"$job", instance=~"$instance"'
BROKEN: dict[str, tuple[str, Any]] = {
    "datasource-variable-renamed": ("template-datasource-rule", lambda d: _var(d, "datasource").update(name="ds")),
    "job-variable-single-select": ("template-job-rule", lambda d: _var(d, "job").update(multi=False)),
    "instance-variable-missing": ("template-instance-rule", _drop_var("instance")),
    "variable-query-unparsable": ("template-label-promql-rule", lambda d: _var(d, "tenant")["query"].update(
        query="label_values(custode_incidents_open{, tenant)")),
    "variable-refreshed-on-load-only": ("template-on-time-change-reload-rule",
                                        lambda d: _var(d, "tenant").update(refresh=1)),
    "panel-with-a-fixed-datasource": ("panel-datasource-rule", lambda d: _first_stat(d).update(
        datasource={"type": "prometheus", "uid": "PBFA97CFB590B2093"})),
    "panel-without-description": ("panel-title-description-rule",
                                  lambda d: _first_stat(d).update(description="")),
    "panel-without-unit": ("panel-units-rule", lambda d: _first_stat(d)["fieldConfig"]["defaults"].pop("unit")),
    "panel-with-an-unknown-unit": ("panel-units-rule",
                                   lambda d: _first_stat(d)["fieldConfig"]["defaults"].update(unit="seconds")),
    "panel-without-targets": ("panel-no-targets-rule", lambda d: _first_stat(d).update(targets=[])),
    "query-unparsable": ("target-promql-rule", _set_expr(f"sum(custode_incidents_open{{{J}}}")),
    "rate-over-a-fixed-range": ("target-rate-interval-rule", _set_expr(
        f"sum(rate(custode_ticket_sla_breaches_total{{{J}}}[5m]))")),
    "increase-over-a-fixed-range": ("target-rate-interval-rule", _set_expr(
        f"sum(increase(custode_backup_reports_total{{{J}}}[1h]))")),
    "selector-without-job": ("target-job-rule", _set_expr('sum(custode_incidents_open{instance=~"$instance"})')),
    "selector-with-a-fixed-instance": ("target-instance-rule", _set_expr(
        'sum(custode_incidents_open{job=~"$job", instance="srv01:10191"})')),
    "counter-summed-raw": ("target-counter-agg-rule", _set_expr(f"sum(custode_ticket_sla_breaches_total{{{J}}})")),
    "exported-for-sharing": ("custode-provisioning-rule", lambda d: d.update(
        __inputs=[{"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"}])),
    "ds-input-reference": ("custode-provisioning-rule", lambda d: _first_stat(d)["targets"][0].update(
        datasource={"type": "prometheus", "uid": "${DS_PROMETHEUS}"})),
    "old-schema": ("custode-provisioning-rule", lambda d: d.update(schemaVersion=36)),
    "no-uid": ("custode-provisioning-rule", lambda d: d.pop("uid")),
    "overlapping-panels": ("custode-provisioning-rule", lambda d: _first_stat(d)["gridPos"].update(w=12)),
    "repeated-panel-id": ("custode-provisioning-rule", lambda d: _first_stat(d).update(id=content_panels(d)[-1]["id"])),
    "target-with-a-fixed-datasource": ("custode-target-datasource-rule", lambda d: _first_stat(d)["targets"][0].update(
        datasource={"type": "prometheus", "uid": "prometheus"})),
    "tenant-variable-missing": ("custode-template-tenant-rule", _drop_var("tenant")),
}


def test_every_rule_has_a_broken_dashboard_that_fails_it() -> None:
    assert {rule for rule, _ in BROKEN.values()} == set(RULES)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_dashboard_broken_for_a_rule_fails_it(case: str) -> None:
    rule, mutate = BROKEN[case]
    dashboard = copy.deepcopy(DASHBOARDS["custode-overview"])
    assert lint(dashboard, only={rule}) == []
    mutate(dashboard)
    findings = lint(dashboard, only={rule})
    assert findings and {f.rule for f in findings} == {rule}, findings


# ----------------------------------------------------------------------------------------------- integration

SECRET = "grafana-test-secret"
WINDOWS_FIXTURE = ROOT / "tests" / "data" / "farm" / "windows" / "server2019-c-full.json"
"""A Server 2019 with a stopped SQL Server, System-log errors and a full C: drive: data for every Windows panel."""

GLOBALS = {"__rate_interval": "1m", "__interval": "5s", "__range": "2m", "__range_s": "120", "__range_ms": "120000"}

EXPECTED_EMPTY: dict[tuple[str, str], str] = {}
"""(dashboard uid, panel title) -> why the panel may legitimately show nothing in this short scenario.

Empty on purpose: the scenario gives every panel data (a host down for "Farm hosts down" and its error,
a Windows host with failed services and System-log errors, a restore large enough to time). Add an entry
only with its reason.
"""

INVALID = ["sum(custode_build_info", 'custode_build_info{job=x}', "rate(custode_build_info)",
           "nonexistent_function(custode_build_info)", "custode_build_info[1m][1m]", '{job=""}']
"""Expressions both Prometheus and grafana_lint's parser must refuse: the parser is held to Prometheus's."""


def _scenario_config(tmp: Path, sshd, win, hook_url: str, dead_port: int, snmpd=None, portal=None) -> str:
    ssh = lambda port: (f"{{user: {sshd.user}, port: {port}, identity_file: '{sshd.client_key}', "  # noqa: E731
                        f"known_hosts: '{sshd.known_hosts}', use_agent: false, connect_timeout: 3s}}")
    return f"""agent: {{tenant: crema, hostname: itest, check_interval: 2s}}
tenants:
  crema: {{name: Comune di Crema}}
  cremona: {{name: Comune di Cremona}}
collectors:
  cpu: {{interval: 2s, timeout: 1s}}
backups:
  poll_interval: 2s
  mailboxes: [{{type: maildir, name: local, path: '{tmp / 'Maildir'}'}}]
  rules: [{json.dumps(SCRIPT_RULE)}]
  expected:
    crema:
      - {{name: nightly, software: NAS script, schedule: '0 * * * *', grace: 6h}}
      - {{name: weekly, software: NAS script, schedule: '0 * * * *', grace: 6h}}
hosts:
  here: {{transport: local}}
  linux01: {{address: 127.0.0.1, tenant: crema, labels: {{role: app}}, ssh: {ssh(sshd.port)}}}
  gone: {{address: 127.0.0.1, tenant: crema, ssh: {ssh(dead_port)}}}
  win01: {{address: 127.0.0.1, transport: winrm, tenant: cremona, winrm: {{user: {win.user},
    password: {{env: CUSTODE_TEST_WINRM}}, port: {win.port}, auth: basic, ca_file: '{win.ca_file}',
    connect_timeout: 5s}}}}
  sw01: {{address: 127.0.0.1, transport: snmp, tenant: cremona, labels: {{role: switch}},
    snmp: {{community: {{env: CUSTODE_TEST_COMMUNITY}}, port: {snmpd.port}, watch_interfaces: [uplink0]}}}}
probes:
  interval: 5s
  timeout: 3s
  targets:
    portale: {{tenant: crema, url: '{portal.url()}', http: {{ca_file: '{portal.ca_file}'}}}}
farm:
  interval: 10s
  checks: {{unreachable: {{polls: 1}}}}
updates:
  playbooks_dir: {PLAYBOOKS}
  windows:
    weekly: {{application: Toy App, days: [thursday], start: '17:30', hosts: [here], playbook: noop.yaml}}
restore_tests:
  sets:
    nas: {{tenant: crema, backend: mirror, repository: '{tmp / 'copy'}', source: '{tmp / 'srv' / 'dati'}',
      coverage: {{volumes: ['{tmp / 'srv'}']}}}}
tickets:
  default_backend: hook
  backends:
    hook: {{type: webhook, url: '{hook_url}', secret: {{env: CUSTODE_TEST_WEBHOOK}}}}
  sla:
    high: {{take_charge: 8h, resolve: 16h}}
"""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """Prometheus's port, scraping a ``custode run`` that has data for every dashboard."""
    from probe_servers import PortalServer
    from snmpd import COMMUNITY as SNMP_COMMUNITY
    from snmpd import SnmpDaemon, interface, ups_state
    from ssh_server import SshServer
    from webhook_receiver import WebhookReceiver
    from winrm_server import WinrmServer

    from custode.agent.farm.probes.windows import COMMAND_HEADER

    prometheus_bin = require_binary("prometheus", "prometheus")
    tmp = tmp_path_factory.mktemp("grafana")
    box = mailbox.Maildir(tmp / "Maildir", create=True)
    sent = datetime.now(timezone.utc) - timedelta(minutes=5)
    deliver(box, script_report("nightly", "failed", sent), arrived=sent)
    deliver(box, script_report("weekly", "success", sent), arrived=sent)
    data = tmp / "srv" / "dati"
    data.mkdir(parents=True)
    (tmp / "srv" / "nuova-app").mkdir()  # on the data volume, in no backup set: an unprotected path
    (tmp / "copy").mkdir()
    for i in range(8):  # enough bytes for the restore to take measurable time (the throughput panel)
        payload = os.urandom(512 * 1024)
        (data / f"delibera-{i}.pdf").write_bytes(payload)
        (tmp / "copy" / f"delibera-{i}.pdf").write_bytes(payload)
    with contextlib.ExitStack() as stack:
        sshd = stack.enter_context(SshServer())
        win = stack.enter_context(WinrmServer(tls=True))
        win.on(re.escape(COMMAND_HEADER), (0, WINDOWS_FIXTURE.read_text(encoding="utf-8").replace("\n", "\r\n"), ""))
        hook = stack.enter_context(WebhookReceiver(SECRET.encode()))
        # a switch whose uplink is down, with a UPS on battery behind it, and the comune's HTTPS portal
        snmpd = stack.enter_context(SnmpDaemon(tmp / "snmpd", simulated_interfaces=True))
        snmpd.set_state(interfaces=[interface(1, "Gi1/0/1", in_octets=10**9, out_octets=10**8),
                                    interface(48, "uplink0", alias="uplink core", oper=2, in_errors=3)],
                        ups=ups_state(on_battery=True))
        portal = stack.enter_context(PortalServer(tmp / "portal", days=10))
        config = tmp / "custode.yaml"
        config.write_text(_scenario_config(tmp, sshd, win, hook.url, free_port(), snmpd, portal),
                          encoding="utf-8")
        env = {**os.environ, "CUSTODE_DATA_DIR": str(tmp / "data"), "SSH_AUTH_SOCK": "",
               "CUSTODE_TEST_WINRM": win.password, "CUSTODE_TEST_WEBHOOK": SECRET,
               "CUSTODE_TEST_COMMUNITY": SNMP_COMMUNITY}
        for command in (["update", "run", "weekly", "--now", "--reason", "dashboard test"],
                        ["restore-test", "run", "nas"]):
            done = subprocess.run([sys.executable, "-m", "custode.agent", *command, "--config", str(config)],
                                  env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        port, prom_port = free_port(), free_port()
        agent = subprocess.Popen([sys.executable, "-m", "custode.agent", "run", "--config", str(config),
                                  "--listen", f"127.0.0.1:{port}"], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=open(tmp / "custode.log", "wb"))
        stack.callback(stop_process, agent)
        (tmp / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: custode\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        prom = subprocess.Popen([prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=open(tmp / "prometheus.log", "wb"))
        stack.callback(stop_process, prom)
        wait_http(f"http://127.0.0.1:{port}/ready", 30)
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", 60)
        yield prom_port, tmp
    assert agent.returncode == 0, (tmp / "custode.log").read_text()[-3000:]


def _api(prom: int, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    query = urllib.parse.urlencode(params, doseq=True)
    status, body = http_get(f"http://127.0.0.1:{prom}/api/v1/{path}?{query}", timeout=10)
    return status, json.loads(body)


def _grafana_format(values: list[str]) -> str:
    """How Grafana puts a multi-value variable into a regex matcher: each value escaped, ``(a|b)``.

    Grafana's ``prometheusRegularEscape``: a backslash before each regex character, itself doubled
    because the value lands in a PromQL double-quoted string (``127\\\\.0\\\\.0\\\\.1``).
    """
    escaped = [re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", v.replace("\\", "\\" * 4)) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def _interpolate(text: str, values: dict[str, str]) -> str:
    """Grafana's substitution of ``$name`` and ``${name}`` (a ``:format`` suffix ignored)."""
    def one(m: re.Match[str]) -> str:
        name = (m.group(1) or m.group(2)).split(":")[0]
        assert name in values, f"no value for ${name} in {text!r}"
        return values[name]
    return re.sub(r"\$\{([^}]+)\}|\$(\w+)", one, text)


def _resolve_variables(prom: int, dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Each query variable's values, in order, each query with the earlier ones' values (as Grafana does)."""
    resolved: dict[str, list[str]] = {}
    for var in variables(dashboard):
        if var["type"] != "query":
            continue
        function, node, label = parse_variable_query(variable_query(var))
        assert function == "label_values" and isinstance(node, VectorSelector) and label
        head = variable_query(var).strip()[len("label_values("):].rsplit(",", 1)[0]
        selector = _interpolate(head, {name: _grafana_format(v) for name, v in resolved.items()})
        status, answer = _api(prom, f"label/{label}/values", **{"match[]": selector})
        assert status == 200, answer
        resolved[var["name"]] = sorted(answer["data"])
    return resolved


def _run(prom: int, expr: str, instant: bool) -> tuple[int, dict[str, Any]]:
    now = time.time()
    if instant:
        return _api(prom, "query", query=expr, time=now)
    return _api(prom, "query_range", query=expr, start=now - 120, end=now, step=5)


def _queries(prom: int) -> dict[tuple[str, str, str, str], tuple[str, bool]]:
    """(uid, panel, refId, mode) -> (expression with variables substituted, instant)."""
    out = {}
    for uid, dashboard in sorted(DASHBOARDS.items()):
        resolved = _resolve_variables(prom, dashboard)
        modes = {"all": {name: ".+" for name in resolved},  # the "All" a first visit shows (allValue)
                 "values": {name: _grafana_format(vals) if vals else "" for name, vals in resolved.items()}}
        for mode, values in modes.items():
            for panel, target in targets(dashboard):
                expr = _interpolate(target["expr"], {**GLOBALS, **values})
                out[(uid, panel["title"], target["refId"], mode)] = (expr, bool(target.get("instant")))
    return out


@pytest.mark.integration
@pytest.mark.real_clock
def test_every_variable_resolves_to_values_through_the_label_api(prometheus) -> None:
    prom, tmp = prometheus
    deadline = time.monotonic() + 40
    while True:
        resolved = {uid: _resolve_variables(prom, dashboard) for uid, dashboard in sorted(DASHBOARDS.items())}
        empty = {(uid, name) for uid, found in resolved.items() for name, values in found.items() if not values}
        # the Linux host's first poll runs apt's simulation: it answers a few seconds after the others
        if (not empty and len(resolved["custode-farm"]["host"]) == 4) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert empty == set(), (tmp / "custode.log").read_text()[-3000:]
    assert resolved["custode-overview"]["tenant"] == ["crema", "cremona"]  # every configured tenant
    assert resolved["custode-farm"]["host"] == ["gone", "linux01", "sw01", "win01"]
    assert resolved["custode-backups"]["backup_job"] == ["nightly", "weekly"]
    assert resolved["custode-updates-restore"]["window"] == ["weekly"]
    assert resolved["custode-updates-restore"]["set"] == ["nas"]
    assert all(found["job"] == ["custode"] for found in resolved.values())


@pytest.mark.integration
@pytest.mark.real_clock
def test_every_panel_query_runs_on_prometheus_and_returns_series(prometheus) -> None:
    prom, tmp = prometheus
    deadline = time.monotonic() + 45
    pending = None
    while True:
        queries = _queries(prom)
        pending = pending or set(queries)
        failures: dict[tuple[str, str, str, str], str] = {}
        for key in sorted(pending):
            expr, instant = queries[key]
            status, answer = _run(prom, expr, instant)
            if status != 200:
                failures[key] = f"{status} {answer.get('errorType')}: {answer.get('error')}: {expr}"
            elif not answer["data"]["result"] and key[:2] not in EXPECTED_EMPTY:
                failures[key] = f"no series: {expr}"
        pending = set(failures)
        refused = {k: v for k, v in failures.items() if not v.startswith("no series")}
        assert refused == {}, "Prometheus refused a dashboard query"
        if not failures or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert failures == {}, (tmp / "custode.log").read_text()[-2000:]
    assert len(queries) > 150  # five dashboards, both variable modes
    assert set(EXPECTED_EMPTY) <= {(uid, p["title"]) for uid, d in DASHBOARDS.items() for p in content_panels(d)}


@pytest.mark.integration
@pytest.mark.real_clock
@pytest.mark.parametrize("expr", INVALID)
def test_prometheus_and_the_lint_parser_refuse_the_same_broken_queries(prometheus, expr: str) -> None:
    prom, _ = prometheus
    status, answer = _api(prom, "query", query=expr)
    assert (status, answer.get("errorType")) == (400, "bad_data"), answer
    with pytest.raises(PromQLError):
        parse(expr)
