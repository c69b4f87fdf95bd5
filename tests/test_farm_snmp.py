"""SNMP devices end to end in farm mode, against Debian's snmpd on loopback (tests/snmpd.py).

The agent's path (poller → FarmService: state rows, incidents, metrics) and the
acceptance interface with no config (``custode farm poll --snmp … --format
prometheus``), on a device whose interfaces, UPS and sysUpTime the test
flips through snmpd's pass_persist programs, beside a port nothing answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import ManualClock
from snmpd import COMMUNITY, V3_AUTH_KEY, V3_PRIV_KEY, V3_USER, SnmpDaemon, free_udp_port, interface, ups_state

from custode.agent.config_loader import load_text
from custode.agent.farm.service import FarmService, new_poller
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache, samples
from custode.agent.state import State

T0 = 1_796_000_000.0


@pytest.fixture
def device(tmp_path):
    daemon = SnmpDaemon(tmp_path / "snmpd", simulated_interfaces=True, override_uptime=True, sys_name="sw-ponte")
    daemon.set_state(interfaces=[interface(1, "Gi1/0/1", alias="stampanti"),
                                 interface(48, "Gi1/0/48", alias="uplink core", in_octets=10**12)],
                     ups=ups_state(), uptime_ticks=8_640_000)
    daemon.start()
    yield daemon
    daemon.stop()


def _config(port: int, dead_port: int) -> str:
    return f"""
agent: {{tenant: provider}}
tenants:
  provider: {{name: Consorzio}}
  ponte: {{name: Comune di Ponte San Pietro}}
hosts:
  sw-ponte:
    address: 127.0.0.1
    transport: snmp
    tenant: ponte
    labels: {{role: switch}}
    snmp:
      version: "3"
      port: {port}
      v3: {{user: {V3_USER}, auth_key: {{env: T_SNMP_AUTH}}, priv_key: {{env: T_SNMP_PRIV}}}}
      watch_interfaces: [/uplink/]
  sw-spento:
    address: 127.0.0.1
    transport: snmp
    tenant: ponte
    poll_timeout: 3s
    snmp: {{community: {{env: T_SNMP_COMMUNITY}}, port: {dead_port}, timeout: 0.5s, retries: 0}}
farm:
  workers: 4
  checks:
    unreachable: {{polls: 1}}
"""


def test_the_agent_polls_judges_and_publishes_a_device(tmp_path, device, monkeypatch) -> None:
    monkeypatch.setenv("T_SNMP_AUTH", V3_AUTH_KEY)
    monkeypatch.setenv("T_SNMP_PRIV", V3_PRIV_KEY)
    monkeypatch.setenv("T_SNMP_COMMUNITY", COMMUNITY)
    loaded = load_text(_config(device.port, free_udp_port()))
    clock = ManualClock(T0)
    state = State(tmp_path / "state.db")
    cache = MetricCache()
    poller = new_poller(loaded.model, clock=clock)
    service = FarmService(loaded.model, state, Incidents(state, clock=clock), cache, poller=poller, clock=clock)
    try:
        def cycle() -> dict[str, tuple[str, str]]:
            results = poller.poll()
            service.handle(results)
            return {i.key: (i.severity, i.summary) for i in service.incidents.open_incidents()}

        opened = cycle()
        assert set(opened) == {"ponte/reachability/sw-spento:reachability"}
        assert "no answer from 127.0.0.1" in opened["ponte/reachability/sw-spento:reachability"][1]
        families = service.families()
        up = {labels["host"]: value for labels, value in samples(families, "custode_target_up")}
        assert up == {"sw-ponte": 1.0, "sw-spento": 0.0}
        octets = {labels["ifName"]: value for labels, value in samples(families, "ifHCInOctets")}
        assert octets["Gi1/0/48"] == 10**12
        oper = [labels for labels, _ in samples(families, "ifOperStatus") if labels["ifIndex"] == "48"]
        assert oper[0]["ifAlias"] == "uplink core" and oper[0]["role"] == "switch"

        # the uplink goes down, the mains fail, and the switch restarts (sysUpTime back to 30 s)
        device.set_state(interfaces=[interface(1, "Gi1/0/1", alias="stampanti"),
                                     interface(48, "Gi1/0/48", alias="uplink core", oper=2)],
                         ups=ups_state(on_battery=True, minutes=30), uptime_ticks=3000)
        clock.now += 300
        opened = cycle()
        assert opened["ponte/interface/sw-ponte:if/Gi1/0/48"][0] == "critical"
        assert opened["ponte/ups/sw-ponte:ups"][0] == "warning"
        assert "running on battery" in opened["ponte/ups/sw-ponte:ups"][1]
        assert opened["ponte/reboot/sw-ponte:reboot"][0] == "warning"

        device.set_state(interfaces=[interface(1, "Gi1/0/1"), interface(48, "Gi1/0/48", alias="uplink core")],
                         ups=ups_state(), uptime_ticks=3000 + 300 * 100)
        clock.now += 300
        opened = cycle()
        assert set(opened) == {"ponte/reachability/sw-spento:reachability", "ponte/reboot/sw-ponte:reboot"}
        row = state.query("SELECT up, consecutive_failures, summary FROM farm_targets WHERE host = 'sw-ponte'")[0]
        assert row["up"] == 1 and '"sys_name": "sw-ponte"' in row["summary"]
    finally:
        service.close()
        state.close()


def test_farm_poll_snmp_prints_each_devices_series_and_target_up(device) -> None:
    dead = free_udp_port()
    env = {**os.environ, "CUSTODE_SNMP_AUTH_KEY": V3_AUTH_KEY, "CUSTODE_SNMP_PRIV_KEY": V3_PRIV_KEY}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "custode.agent", "farm", "poll", "--snmp", f"{COMMUNITY}@[::1]:{device.port}",
         "--snmp", f"{COMMUNITY}@127.0.0.1:{dead}", "--snmp-v3", f"{V3_USER}@127.0.0.1:{device.port}",
         "--snmp-v3", f"{V3_USER}@localhost:{device.port}",
         "--snmp-timeout", "0.5", "--snmp-retries", "0", "--timeout", "5", "--format", "prometheus"],
        capture_output=True, text=True, timeout=60, env=env)
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stderr  # one device does not answer
    text = done.stdout
    assert f'custode_target_up{{host="[::1]:{device.port}",tenant="default",transport="snmp"}} 1.0' in text
    assert f'custode_target_up{{host="127.0.0.1:{dead}",tenant="default",transport="snmp"}} 0.0' in text
    assert f'custode_target_up{{host="127.0.0.1:{device.port}",tenant="default",transport="snmp"}} 1.0' in text
    assert f'custode_target_up{{host="localhost:{device.port}",tenant="default",transport="snmp"}} 1.0' in text
    assert "# TYPE ifHCInOctets untyped" in text
    assert 'ifOperStatus{host="[::1]:%d",ifAlias="uplink core",ifDescr="Gi1/0/48",ifIndex="48",ifName="Gi1/0/48"' \
        % device.port in text.replace(',tenant="default"', "")
    assert "upsBatteryStatus" in text and "sysUpTime" in text
    assert COMMUNITY not in text  # the community is never printed


def test_farm_poll_snmp_refuses_a_malformed_target() -> None:
    done = subprocess.run([sys.executable, "-m", "custode.agent", "farm", "poll", "--snmp", "10.0.0.1"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "expected COMMUNITY@HOST[:PORT]" in done.stderr
