"""``custode probe`` as a user runs it: a subprocess against local servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from probe_servers import PortalServer, closed_port

DAY = 86400.0


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with PortalServer(tmp_path_factory.mktemp("portal"), days=10) as server:
        yield server


def custode(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CUSTODE_DATA_DIR": str(data)}  # keeps the shifted run's clock, as the servers have it
    return subprocess.run([sys.executable, "-m", "custode.agent", "probe", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def series(text: str) -> dict[str, float]:
    """``name{labels} value`` lines -> {``name{labels}``: value} (HELP and TYPE left out)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_prometheus_output_is_the_series_blackbox_exporter_prints(portal, tmp_path) -> None:
    done = custode(portal.url(), "--ca-file", str(portal.ca_file), "--format", "prometheus", data=tmp_path)
    assert done.returncode == 0, done.stderr
    found = series(done.stdout)
    assert found["probe_success"] == 1
    assert found["probe_http_status_code"] == 200
    assert found["probe_ssl_earliest_cert_expiry"] == pytest.approx(time.time() + 10 * DAY, abs=300)
    assert found["probe_ssl_earliest_cert_expiry"] == pytest.approx(portal.not_after, abs=1)
    assert found["probe_ip_protocol"] == 4 and found["probe_http_ssl"] == 1
    assert {f'probe_http_duration_seconds{{phase="{p}"}}' for p in ("resolve", "connect", "tls", "processing",
                                                                    "transfer")} <= set(found)
    assert 'probe_tls_version_info{version="TLS 1.3"}' in found
    assert not [name for name in found if name.startswith("custode_")]
    assert not (tmp_path / "state.db").exists()  # nothing recorded


def test_a_failing_url_exits_1(portal, tmp_path) -> None:
    done = custode(portal.url("/error"), "--ca-file", str(portal.ca_file), "--format", "prometheus", data=tmp_path)
    assert done.returncode == 1
    found = series(done.stdout)
    assert found["probe_success"] == 0 and found["probe_http_status_code"] == 500


def test_several_urls_in_a_table_and_as_json(portal, tmp_path) -> None:
    port = closed_port()
    urls = [portal.url(), f"tcp://127.0.0.1:{port}", "icmp://127.0.0.1"]
    table = custode(*urls, "--ca-file", str(portal.ca_file), "--body", "Sassuolo", data=tmp_path)
    assert table.returncode == 1
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "STATE", "TIME", "DETAIL", "PROBLEM"]
    assert f"connection refused by 127.0.0.1:{port}" in table.stdout and "certificate until" in table.stdout
    prometheus = series(custode(*urls, "--format", "prometheus", "--ca-file", str(portal.ca_file),
                                data=tmp_path).stdout)
    assert prometheus[f'probe_success{{target="{portal.url()}"}}'] == 1
    assert prometheus[f'probe_success{{target="tcp://127.0.0.1:{port}"}}'] == 0
    document = json.loads(custode(*urls, "--json", "--ca-file", str(portal.ca_file), data=tmp_path).stdout)
    by_target = {item["target"]: item for item in document["probes"]}
    assert by_target[portal.url()]["status_code"] == 200
    assert by_target[portal.url()]["certificate_expires_at"].endswith(("+01:00", "+02:00"))
    assert by_target["icmp://127.0.0.1"]["success"] is True


def test_usage_errors_before_anything_connects(tmp_path) -> None:
    done = custode("ftp://files.example.it/", data=tmp_path)
    assert done.returncode == 2 and "unknown scheme 'ftp'" in done.stderr
    nothing = custode(data=tmp_path)
    assert nothing.returncode == 1 and "give URLs to probe" in nothing.stderr


def test_the_configured_probes_are_recorded_like_a_scheduled_run(portal, tmp_path) -> None:
    config = tmp_path / "custode.yaml"
    config.write_text(f"""
agent: {{data_dir: {tmp_path / 'data'}, tenant: sassuolo}}
tenants:
  sassuolo: {{name: Comune di Sassuolo}}
  capannori: {{name: Comune di Capannori}}
probes:
  failures: 1
  targets:
    portale:
      tenant: sassuolo
      url: {portal.url()}
      http: {{ca_file: {portal.ca_file}}}
    pratiche:
      tenant: capannori
      url: {portal.url('/error')}
      http: {{ca_file: {portal.ca_file}}}
""")
    done = custode("--config", str(config), data=tmp_path / "data")
    assert done.returncode == 1 and done.stdout, done.stderr
    assert done.stdout.splitlines()[0].startswith(f"Config: {config}")
    only = custode("--config", str(config), "--tenant", "sassuolo", "--format", "prometheus", data=tmp_path / "data")
    assert only.returncode == 0, only.stderr
    found = series(only.stdout)
    assert any(name.startswith("custode_probe_consecutive_failures{") for name in found)
    assert not any('probe="pratiche"' in name for name in found)
    from custode.agent.blackbox.store import day_of, probe_days, probe_states
    from custode.agent.incidents import Incidents
    from custode.agent.state import State

    state = State(tmp_path / "data" / "state.db")
    try:
        assert set(probe_states(state)) == {"portale", "pratiche"}
        today = day_of(time.time())
        days = probe_days(state, "sassuolo", today - timedelta(days=1), today + timedelta(days=1))
        assert [(d.probe, d.probes, d.successes) for d in days] == [("portale", 2, 2)]
        keys = {i.key: i for i in Incidents(state).open_incidents()}
        assert keys["capannori/probe/pratiche"].summary.startswith(f"{portal.url('/error')} is down: status 500")
        assert keys["sassuolo/certificate/portale"].severity == "warning"
    finally:
        state.close()
    audit = (tmp_path / "data" / "audit.jsonl").read_text()
    assert "capannori/probe/pratiche" in audit
    unknown = custode("--config", str(config), "--probe", "portal", data=tmp_path / "data")
    assert unknown.returncode == 1 and "did you mean 'portale'" in unknown.stderr
