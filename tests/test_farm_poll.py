"""Farm mode against real hosts: Debian's OpenSSH server on loopback stands for the Linux servers.

Many targets point at the one sshd under different names; a closed port, a
blackhole that never answers, a key the server refuses and a probe that hangs
stand for the hosts that go wrong. None of them may delay the others.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from conftest import free_port, host_clock, http_get, require_binary, stop_process, wait_until
from prometheus_client.parser import text_string_to_metric_families
from ssh_server import Blackhole, SshServer, generate_key

from custode.agent.farm.poller import FarmPoller
from custode.agent.farm.targets import Target
from custode.agent.transports import open_transport
from custode.agent.transports.config import HostConfig, SshOptions

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sshd():
    with SshServer() as server:
        yield server


def _options(server: SshServer, **changes) -> SshOptions:
    values = {"user": server.user, "port": server.port, "identity_file": server.client_key,
              "known_hosts": server.known_hosts, "use_agent": False, "connect_timeout": 3}
    values.update(changes)
    return SshOptions(**values)


def _target(name: str, options: SshOptions, timeout: float = 20.0, tenant: str = "crema") -> Target:
    return Target(name, tenant, HostConfig(address="127.0.0.1", ssh=options), 300.0, timeout)


def _meminfo_total() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return float(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


class _Slow:
    """The real SSH transport, with the probe preceded by a sleep: a host whose probe hangs."""

    def __init__(self, inner) -> None:
        self.inner, self.shell, self.kind, self.name = inner, inner.shell, inner.kind, inner.name

    def run(self, command, timeout, **kwargs):
        return self.inner.run("sleep 30; " + command, timeout, **kwargs)

    def close(self) -> None:
        self.inner.close()


def test_failures_are_reported_and_never_delay_the_rest(sshd, tmp_path) -> None:
    stranger = tmp_path / "stranger_key"
    generate_key(stranger)
    with Blackhole() as hole:
        targets = [_target("web1", _options(sshd)), _target("web2", _options(sshd)),
                   _target("dead", _options(sshd, port=free_port())),
                   _target("blackholed", _options(sshd, port=hole.port)),
                   _target("wrong-key", _options(sshd, identity_file=stranger)),
                   _target("slow", _options(sshd), timeout=3.0)]

        def factory(name, host):
            transport = open_transport(name, host)
            return _Slow(transport) if name == "slow" else transport

        poller = FarmPoller(targets, workers=8, transport_factory=factory, updates_interval=None)
        started = time.monotonic()
        results = {r.target.name: r for r in poller.poll()}
        elapsed = time.monotonic() - started
        poller.close()
    assert results["web1"].up and results["web2"].up
    assert results["web1"].duration < 3.0 and results["web2"].duration < 3.0  # not held up by the others
    assert "nothing listens on 127.0.0.1" in results["dead"].error and "connection refused" in results["dead"].error
    assert "sent no SSH greeting within 3 s" in results["blackholed"].error
    assert "authentication failed for" in results["wrong-key"].error
    assert "did not finish within 3 s (poll_timeout)" in results["slow"].error
    assert elapsed < 3 + 3 + 4, f"one cycle took {elapsed:.1f} s: the failures were waited for one after another"
    snapshot = results["web1"].snapshot
    assert snapshot.memory_total_bytes == _meminfo_total()
    assert abs(snapshot.boot_time - (host_clock() - float(Path("/proc/uptime").read_text().split()[0]))) < 3
    root = os.statvfs("/")
    assert [fs.size_bytes for fs in snapshot.filesystems if fs.mountpoint == "/"] == [root.f_blocks * root.f_frsize]


def test_connections_are_kept_between_polls_and_cpu_is_measured_between_them(sshd) -> None:
    logins_before = sshd.log().count("Accepted publickey")
    poller = FarmPoller([_target("a", _options(sshd)), _target("b", _options(sshd))], workers=2,
                        updates_interval=None)
    try:
        first = poller.poll()
        time.sleep(0.3)
        second = poller.poll()
    finally:
        poller.close()
    assert all(r.up for r in first + second)
    assert sshd.log().count("Accepted publickey") - logins_before == 2  # one login per host, not per poll
    assert all(r.cpu_busy_ratio is None for r in first)  # one reading of the counters is no rate yet
    assert all(r.cpu_busy_ratio is not None and 0.0 <= r.cpu_busy_ratio <= 1.0 for r in second)


def test_updates_are_read_every_updates_interval_and_carried_between(sshd) -> None:
    clock = [1_000_000.0]
    poller = FarmPoller([_target("a", _options(sshd))], workers=1, updates_interval=3600.0,
                        clock=lambda: clock[0])
    try:
        first = poller.poll()[0]
        clock[0] += 60
        second = poller.poll()[0]
    finally:
        poller.close()
    assert first.included_updates and not second.included_updates
    assert first.snapshot.updates is not None  # Debian here: apt-get -s answered
    assert second.snapshot.updates == first.snapshot.updates


def test_acceptance_command_prints_the_exposition(sshd, tmp_path) -> None:
    dead = free_port()
    command = [sys.executable, "-m", "custode.agent", "farm", "poll",
               "--ssh", f"{sshd.user}@127.0.0.1:{sshd.port}", "--ssh", f"{sshd.user}@127.0.0.1:{dead}",
               "--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts),
               "--connect-timeout", "3", "--format", "prometheus"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          cwd=ROOT, env={**os.environ, "SSH_AUTH_SOCK": ""})
    assert done.returncode == 1, done.stderr  # one target is down
    families = {f.name: f for f in text_string_to_metric_families(done.stdout)}
    up = {s.labels["host"]: s.value for s in families["custode_target_up"].samples}
    assert up == {f"127.0.0.1:{sshd.port}": 1.0, f"127.0.0.1:{dead}": 0.0}
    memory = [s for s in families["node_memory_MemTotal_bytes"].samples]
    assert [(s.labels["host"], s.value) for s in memory] == [(f"127.0.0.1:{sshd.port}", _meminfo_total())]
    assert "custode_os_updates_pending" in families  # a one-off poll reads the slow parts too


def _farm_config(sshd: SshServer, tmp_path: Path, dead_port: int) -> Path:
    lines = ["agent: {tenant: provider, hostname: farmnode}", "tenants:", "  provider: {name: Consorzio}"]
    lines += [f"  comune{i:02d}: {{name: Comune {i:02d}}}" for i in range(20)]
    ssh = (f"{{user: {sshd.user}, port: PORT, identity_file: '{sshd.client_key}', "
           f"known_hosts: '{sshd.known_hosts}', use_agent: false, connect_timeout: 3s}}")
    lines.append("hosts:")
    lines += [f"  srv{i:02d}: {{address: 127.0.0.1, tenant: comune{i:02d}, labels: {{role: app}}, "
              f"ssh: {ssh.replace('PORT', str(sshd.port))}}}" for i in range(20)]
    lines.append(f"  gone: {{address: 127.0.0.1, tenant: comune00, ssh: {ssh.replace('PORT', str(dead_port))}}}")
    # apt's simulation costs this machine seconds of CPU per host; it is tested on its own above
    lines += ["farm:", "  interval: 10s", "  workers: 8", "  read_updates: false",
              "  checks:", "    unreachable: {polls: 1}",
              # every real filesystem here has less than 99.8% free: a "full disk" on every host
              "checks:", "  filesystem: {warning_avail_percent: 99.9, critical_avail_percent: 99.8, "
              "mount_points: '^/$'}",
              "collectors:", "  cpu: {interval: 2s, timeout: 1s}"]
    path = tmp_path / "farm.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.real_clock
def test_farm_node_with_20_tenants_in_status_prometheus_and_report(sshd, tmp_path) -> None:
    prometheus = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    config = _farm_config(sshd, tmp_path, free_port())
    port, prom_port = free_port(), free_port()
    env = {**os.environ, "CUSTODE_DATA_DIR": str(tmp_path / "data"), "SSH_AUTH_SOCK": ""}
    agent = subprocess.Popen([sys.executable, "-m", "custode.agent", "run", "--config", str(config),
                              "--listen", f"127.0.0.1:{port}"], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "custode.log", "wb"))
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: custode\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
    prom = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    try:
        def query(expr: str) -> list[dict]:
            try:
                status, body = http_get(f"http://127.0.0.1:{prom_port}/api/v1/query?query={urllib.parse.quote(expr)}")
            except OSError:
                return []
            return json.loads(body)["data"]["result"] if status == 200 else []

        assert wait_until(lambda: len(query("custode_target_up")) == 21, 60, step=0.5), \
            (tmp_path / "custode.log").read_text()[-3000:]
        per_tenant = {r["metric"]["tenant"]: float(r["value"][1])
                      for r in query("sum by (tenant) (custode_target_up)")}
        assert len(per_tenant) == 20 and per_tenant["comune00"] == 1.0 and per_tenant["comune19"] == 1.0
        assert [r["metric"]["host"] for r in query("custode_target_up == 0")] == ["gone"]
        avail = query('node_filesystem_avail_bytes{host="srv07",mountpoint="/"}')
        assert avail and avail[0]["metric"]["tenant"] == "comune07" and avail[0]["metric"]["role"] == "app"
        _, exposition = http_get(f"http://127.0.0.1:{port}/metrics")
        lint = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60)
        assert b"error" not in (lint.stdout + lint.stderr).lower(), lint.stdout + lint.stderr

        def status_text() -> str:
            return subprocess.run([sys.executable, "-m", "custode.agent", "status", "--config", str(config)], env=env,
                                  cwd=ROOT, capture_output=True, text=True, timeout=60).stdout

        assert wait_until(lambda: "Farm: 20 of 21 hosts answered their last poll." in status_text(), 30)
        text = status_text()
        assert "gone (comune00): down for" in text and "connection refused" in text
        assert "CRITICAL  filesystem / on srv13 has" in text
        assert re.search(r"CRITICAL  host gone could not be polled \d+ times in a row: nothing listens", text)
    finally:
        for proc in (prom, agent):
            stop_process(proc)
    assert agent.returncode == 0, (tmp_path / "custode.log").read_text()[-3000:]
    report = subprocess.run([sys.executable, "-m", "custode.agent", "farm", "report", "--config", str(config),
                             "--format", "json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    rows = json.loads(report.stdout)["hosts"]
    assert len(rows) == 21, report.stderr
    srv = [r for r in rows if r["host"] == "srv03"][0]
    assert srv["availability_percent"] == 100.0 and srv["os"] and "/" in srv["filesystems"]
    assert [r["availability_percent"] for r in rows if r["host"] == "gone"] == [0.0]
