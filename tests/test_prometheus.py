"""A real Prometheus (Debian's package) scrapes ``custode run``; promtool lints the exposition."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
from conftest import free_port, http_get, require_binary, wait_http, wait_until
from conftest import stop_process as _stop
from mailfactory import SCRIPT_RULE, deliver, script_report
from update_helpers import PLAYBOOKS

pytestmark = [pytest.mark.integration, pytest.mark.real_clock]


@pytest.fixture
def custode(tmp_path):
    port = free_port()
    config = tmp_path / "custode.yaml"
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    sent = datetime.now(timezone.utc) - timedelta(minutes=5)
    deliver(maildir, script_report("nightly", "failed", sent), arrived=sent)
    config.write_text("agent:\n  hostname: itest\ncollectors:\n  cpu:\n    interval: 2s\n    timeout: 1s\n"
                      f"backups:\n  poll_interval: 2s\n  mailboxes: [{{type: maildir, name: local, "
                      f"path: '{tmp_path / 'Maildir'}'}}]\n  rules: [{json.dumps(SCRIPT_RULE)}]\n"
                      "  expected:\n    default: [{name: nightly, software: NAS script, "
                      "schedule: '0 * * * *', grace: 6h}]\n"
                      f"updates:\n  playbooks_dir: {PLAYBOOKS}\n  hosts: {{here: {{transport: local}}}}\n"
                      "  windows:\n    weekly: {application: Toy App, days: [thursday], start: '17:30', "
                      "hosts: [here], playbook: noop.yaml}\n"
                      f"restore_tests:\n  sets:\n    nas: {{backend: mirror, repository: '{tmp_path / 'copy'}', "
                      f"source: '{tmp_path / 'srv' / 'dati'}', coverage: {{volumes: ['{tmp_path / 'srv'}']}}}}\n")
    (tmp_path / "srv" / "dati").mkdir(parents=True)
    (tmp_path / "srv" / "nuova-app").mkdir()
    env = {**os.environ, "CUSTODE_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "custode.agent", "run", "--config", str(config),
                             "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "custode.log", "wb"))
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", 30)
        yield port, tmp_path
    finally:
        _stop(proc)
    assert proc.returncode == 0, (tmp_path / "custode.log").read_text()


def _query(prom: int, expr: str) -> list[dict]:
    status, body = http_get(f"http://127.0.0.1:{prom}/api/v1/query?query={urllib.parse.quote(expr)}")
    assert status == 200, body
    return json.loads(body)["data"]["result"]


def test_prometheus_scrapes_custode(custode, tmp_path) -> None:
    port, _ = custode
    prometheus = require_binary("prometheus", "prometheus")
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: custode\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    try:
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", 60)
        deadline = time.monotonic() + 60
        cpu, success = [], []
        while time.monotonic() < deadline and not (cpu and success):
            cpu = _query(prom_port, 'node_cpu_seconds_total{job="custode",mode="idle"}')
            success = _query(prom_port, 'custode_collector_success{job="custode"}')
            time.sleep(0.5)
        assert cpu, ("Prometheus has no node_cpu_seconds_total from Custode: "
                     + (tmp_path / "prometheus.log").read_text()[-2000:])
        assert len(cpu) == os.cpu_count()
        by_collector = {r["metric"]["collector"]: float(r["value"][1]) for r in success}
        assert {"cpu", "memory", "filesystem"} <= set(by_collector)
        assert by_collector["cpu"] == 1.0
        up = _query(prom_port, 'up{job="custode"}')
        assert [float(r["value"][1]) for r in up] == [1.0]
        memory = _query(prom_port, "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes")
        assert memory and 0 < float(memory[0]["value"][1]) <= 1
        # the backup panel's query: which jobs are failed or missing, per tenant
        failing = []
        while time.monotonic() < deadline and not failing:
            failing = _query(prom_port, 'sum by (tenant, backup_job) (custode_backup_state{state=~"failed|missing"})')
            time.sleep(0.5)
        assert [(r["metric"]["backup_job"], float(r["value"][1])) for r in failing] == [("nightly", 1.0)]
    finally:
        _stop(proc)


def _lint(promtool: str, exposition: bytes) -> tuple[int, set[str], str]:
    result = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60)
    text = (result.stdout + result.stderr).decode()
    flagged = {line.split()[0] for line in text.splitlines() if line.strip()}
    return result.returncode, flagged, text


def test_promtool_accepts_the_exposition(custode, tmp_path) -> None:
    """Parses cleanly; lint findings are only on node_exporter's own names, kept verbatim on purpose.

    promtool flags node_exporter's meminfo names (node_memory_MemAvailable_bytes ...) as camelCase,
    but dashboards such as "Node Exporter Full" need exactly those names, so the test proves each
    finding is a name node_exporter itself exposes on this machine, and nothing Custode invented.
    """
    port, _ = custode
    promtool = require_binary("promtool", "prometheus")
    # Backup and update metrics are published by their own jobs; under load either may come second.
    assert wait_until(lambda: all(name in http_get(f"http://127.0.0.1:{port}/metrics")[1]
                                  for name in (b"custode_backup_state{", b"custode_update_running{",
                                               b"custode_backup_unprotected_paths{")), 15)
    status, exposition = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert (b'custode_backup_reports_total{backup_job="nightly",software="NAS script",status="failure",'
            b'tenant="default"} 1.0') in exposition
    assert (b'custode_update_window_next_start_timestamp_seconds{application="Toy App",tenant="default",'
            b'window="weekly"}') in exposition
    assert b'custode_update_running{application="Toy App",tenant="default",window="weekly"} 0.0' in exposition
    # Never tested: overdue at once; the coverage check ran at start and found the folder nobody backs up.
    assert b'custode_restore_test_overdue{backend="mirror",set="nas",tenant="default"} 1.0' in exposition
    assert b'custode_backup_unprotected_paths{backend="mirror",set="nas",tenant="default"} 1.0' in exposition
    code, flagged, text = _lint(promtool, exposition)
    assert code in (0, 3), f"promtool could not parse the exposition (exit {code}): {text}"
    assert not {name for name in flagged if name.startswith("custode_")}, text
    assert all("snake_case" in line for line in text.splitlines() if line.strip()), text
    if flagged:
        exporter = require_binary("prometheus-node-exporter", "prometheus-node-exporter")
        exporter_port = free_port()
        proc = subprocess.Popen([exporter, f"--web.listen-address=127.0.0.1:{exporter_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{exporter_port}/metrics", 30)
            _, theirs = http_get(f"http://127.0.0.1:{exporter_port}/metrics")
        finally:
            _stop(proc)
        _, their_flagged, _ = _lint(promtool, theirs)
        assert flagged <= their_flagged, f"lint findings not shared by node_exporter: {flagged - their_flagged}"
