"""Custode's SNMP families against the real snmp_exporter 0.21 (Debian's) reading the same snmpd.

snmp_exporter runs with tests/data/snmp_exporter/if_mib.yml (upstream's if_mib
module, provenance in the file); both read tests/snmpd.py's snmpd on
127.0.0.1 and their if_mib samples must have the same names and label sets,
and the same values where a value does not move between two reads.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, host_env, http_get, require_binary, stop_process, wait_until
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from snmpd import COMMUNITY, SnmpDaemon, interface, ups_state

from custode.agent.farm.metrics import _Families
from custode.agent.snmp import oids
from custode.agent.snmp.credentials import credentials_of
from custode.agent.snmp.device import DeviceSnapshot, HostResources, Interface, Storage, SystemInfo, UpsStatus
from custode.agent.snmp.metrics import add_device_families, phys_address_label
from custode.agent.snmp.options import SnmpOptions
from custode.agent.snmp.runner import SnmpRunner

CONFIG = Path(__file__).parent / "data" / "snmp_exporter" / "if_mib.yml"
IF_MIB_NAMES = {item.name for item in oids.IF_METRICS} - {"ifType"} | {"ifType_info", "ifNumber", "sysUpTime"}
STEADY = {"ifAdminStatus", "ifOperStatus", "ifMtu", "ifSpeed", "ifHighSpeed", "ifType_info", "ifPhysAddress",
          "ifIndex", "ifNumber", "ifConnectorPresent", "ifPromiscuousMode", "ifSpecific", "ifLinkUpDownTrapEnable",
          "ifLastChange", "ifCounterDiscontinuityTime", "ifOutQLen"}


class _Collector:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def render(device: DeviceSnapshot, labels: dict[str, str] | None = None) -> str:
    """Custode's text format for one device, through prometheus_client as farm mode renders it."""
    out = _Families()
    add_device_families(out.add, labels or {}, device)
    registry = CollectorRegistry()
    registry.register(_Collector(out.result()))
    return generate_latest(registry).decode()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Sample lines as written (prometheus_client's parser would rename a counter's samples to ``_total``)."""
    out = {}
    for line in text.split("\n"):  # not splitlines(): a label may hold a raw \r (a Cisco sysDescr's CRLF)
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, line
        labels = frozenset((name, bytes(value, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8"))
                           for name, value in _LABEL.findall(match.group(2) or ""))
        out[(match.group(1), labels)] = float(match.group(3))
    return out


def types(text: str) -> dict[str, str]:
    return {family.name: family.type for family in text_string_to_metric_families(text)}


@pytest.fixture
def community(monkeypatch):
    monkeypatch.setenv("CUSTODE_TEST_SNMP_COMMUNITY", COMMUNITY)


def exporter_scrape(daemon: SnmpDaemon | Any, tmp_path: Path, config: Path = CONFIG, module: str = "if_mib") -> str:
    """snmp_exporter's answer for ``module`` read from ``daemon.port`` on 127.0.0.1 (snmpd or snmpsim)."""
    binary = require_binary("prometheus-snmp-exporter", "prometheus-snmp-exporter")
    port = free_port()
    log = (tmp_path / "snmp_exporter.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                            env=host_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return http_get(f"http://127.0.0.1:{port}/metrics", timeout=1)[0] == 200
            except OSError:
                return False

        assert wait_until(up, 15, step=0.2), (tmp_path / "snmp_exporter.log").read_text(errors="replace")
        status, body = http_get(f"http://127.0.0.1:{port}/snmp?target=127.0.0.1:{daemon.port}&module={module}",
                                timeout=20)
        assert status == 200, body[:500]
        return body.decode()
    finally:
        stop_process(proc)
        log.close()


def compare_with_exporter(daemon: SnmpDaemon, tmp_path: Path) -> tuple[dict, dict, str]:
    options = SnmpOptions(version="2c", community={"env": "CUSTODE_TEST_SNMP_COMMUNITY"}, port=daemon.port,
                          modules=["system", "if_mib"])
    theirs_text = exporter_scrape(daemon, tmp_path)
    with SnmpRunner() as runner:
        device = runner.poll("127.0.0.1", options, credentials_of(options), timeout=15)
    ours_text = render(device)
    theirs = {key: value for key, value in samples(theirs_text).items() if not key[0].startswith("snmp_")}
    ours = {key: value for key, value in samples(ours_text).items() if key[0] in IF_MIB_NAMES}
    return ours, theirs, ours_text + "\n" + theirs_text


@pytest.mark.real_clock
@pytest.mark.integration
def test_if_mib_families_equal_snmp_exporter_on_real_interfaces(tmp_path, community):
    with SnmpDaemon(tmp_path / "snmpd") as daemon:
        ours, theirs, both = compare_with_exporter(daemon, tmp_path)
    # net-snmp lacks ifLinkUpDownTrapEnable on Linux interfaces; every other if_mib family is there.
    assert IF_MIB_NAMES - {"ifLinkUpDownTrapEnable"} <= {name for name, _ in theirs} <= IF_MIB_NAMES
    assert set(ours) == set(theirs), both
    for key, value in theirs.items():
        if key[0] in STEADY:
            assert ours[key] == value, key


@pytest.mark.real_clock
@pytest.mark.integration
def test_if_mib_families_equal_snmp_exporter_on_a_switch_with_alias_and_64_bit_counters(tmp_path, community):
    with SnmpDaemon(tmp_path / "switch", simulated_interfaces=True) as daemon:
        daemon.set_state(interfaces=[
            interface(1, "Gi0/1", descr="GigabitEthernet0/1", alias="uplink core – sala server", in_octets=2**40,
                      mac="00:1a:2b:3c:4d:5e"),
            interface(2, "Gi0/2", descr="GigabitEthernet0/2", oper=2, admin=2, if_type=117, mac="a0:b1:c2:d3:e4:f5"),
        ])
        ours, theirs, both = compare_with_exporter(daemon, tmp_path)
    assert set(ours) == set(theirs), both
    assert {key: value for key, value in ours.items() if key[0] != "sysUpTime"} == \
        {key: value for key, value in theirs.items() if key[0] != "sysUpTime"}
    labels = dict(next(key[1] for key in ours if key[0] == "ifHCInOctets" and ("ifIndex", "1") in key[1]))
    assert labels == {"ifIndex": "1", "ifName": "Gi0/1", "ifDescr": "GigabitEthernet0/1",
                      "ifAlias": "uplink core – sala server"}
    assert ours[("ifHCInOctets", frozenset(labels.items()))] == float(2**40)


def test_counters_keep_snmp_exporters_sample_names_as_untyped(community):
    device = DeviceSnapshot(
        system=SystemInfo(name="sw", uptime_ticks=500),
        interfaces=(Interface(3, name="ge-0/0/3", values={"ifIndex": 3.0, "ifType": 6.0, "ifHCInOctets": 7.0,
                                                          "ifOperStatus": 1.0}, type_name="ethernetCsmacd",
                              phys_address="0a:0b:0c:0d:0e:0f"),),
        if_number=1)
    text = render(device, {"tenant": "comune-a", "host": "sw"})
    assert 'ifHCInOctets{host="sw",ifAlias="",ifDescr="",ifIndex="3",ifName="ge-0/0/3",tenant="comune-a"} 7.0' \
        in text
    assert "ifHCInOctets_total" not in text
    kinds = types(text)
    assert kinds["ifHCInOctets"] == "unknown" and kinds["ifOperStatus"] == "gauge"
    assert 'ifPhysAddress="0A:0B:0C:0D:0E:0F"' in text and 'ifType="ethernetCsmacd"' in text
    assert 'sysName{host="sw",sysName="sw",tenant="comune-a"} 1.0' in text
    assert phys_address_label("") == "00:00:00:00:00:00"


def test_ups_and_host_resources_families_are_snmp_exporter_style():
    device = DeviceSnapshot(
        system=SystemInfo(),
        ups=UpsStatus(values={"upsBatteryStatus": 2.0, "upsInputLineBads": 3.0, "upsOutputSource": 3.0},
                      model="Riello UPS Sentinel", manufacturer="Riello UPS", ident_model="Sentinel",
                      outputs=({"upsOutputLineIndex": 1.0, "upsOutputPercentLoad": 35.0},),
                      inputs=({"upsInputLineIndex": 1.0, "upsInputVoltage": 229.0},)),
        host_resources=HostResources(uptime_ticks=1000, processor_load=((196608, 12),),
                                     storage=(Storage(1, "Physical memory", "1.3.6.1.2.1.25.2.1.2", 1024, 100, 40),)))
    got = samples(render(device))
    assert got[("upsBatteryStatus", frozenset())] == 2.0
    assert got[("upsInputLineBads", frozenset())] == 3.0
    assert got[("upsIdentModel", frozenset({("upsIdentModel", "Sentinel")}))] == 1.0
    assert got[("upsOutputPercentLoad", frozenset({("upsOutputLineIndex", "1")}))] == 35.0
    assert got[("upsInputVoltage", frozenset({("upsInputLineIndex", "1")}))] == 229.0
    assert got[("hrProcessorLoad", frozenset({("hrDeviceIndex", "196608")}))] == 12.0
    storage = frozenset({("hrStorageIndex", "1"), ("hrStorageDescr", "Physical memory"),
                         ("hrStorageType", "1.3.6.1.2.1.25.2.1.2")})
    assert got[("hrStorageSize", storage)] == 100.0 and got[("hrStorageAllocationUnits", storage)] == 1024.0
    assert got[("hrSystemUptime", frozenset())] == 1000.0


@pytest.mark.integration
def test_ups_families_from_a_real_poll(tmp_path, community):
    with SnmpDaemon(tmp_path / "ups") as daemon:
        daemon.set_state(ups=ups_state(on_battery=True))
        options = SnmpOptions(version="2c", community={"env": "CUSTODE_TEST_SNMP_COMMUNITY"}, port=daemon.port,
                              modules=["system", "ups"])
        with SnmpRunner() as runner:
            device = runner.poll("127.0.0.1", options, credentials_of(options), timeout=10)
    got = samples(render(device, {"host": "ups-1"}))
    assert got[("upsOutputSource", frozenset({("host", "ups-1")}))] == 5.0
    assert got[("upsSecondsOnBattery", frozenset({("host", "ups-1")}))] == 120.0
    assert ("upsIdentManufacturer", frozenset({("host", "ups-1"), ("upsIdentManufacturer", "Riello UPS")})) in got
    assert os.environ["CUSTODE_TEST_SNMP_COMMUNITY"] not in render(device)


def test_an_apc_ups_gets_snmp_exporters_apcups_names_and_the_same_custode_ups_facts_as_any_ups() -> None:
    powernet = UpsStatus({"upsBasicOutputStatus": 3, "upsBasicBatteryStatus": 2, "upsAdvBatteryCapacity": 87,
                          "upsAdvBatteryRunTimeRemaining": 162_000, "upsBasicBatteryTimeOnBattery": 6_000,
                          "upsAdvBatteryReplaceIndicator": 1},
                         model="Smart-UPS 750", ident_model="Smart-UPS 750", mib="PowerNet-MIB")
    rfc1628 = UpsStatus({"upsOutputSource": 5, "upsBatteryStatus": 2, "upsEstimatedChargeRemaining": 87,
                         "upsEstimatedMinutesRemaining": 27, "upsSecondsOnBattery": 60})
    apc = samples(render(DeviceSnapshot(SystemInfo(uptime_ticks=100), ups=powernet), {"host": "ups1"}))
    ietf = samples(render(DeviceSnapshot(SystemInfo(uptime_ticks=100), ups=rfc1628), {"host": "ups2"}))
    assert apc[("upsBasicOutputStatus", frozenset({("host", "ups1")}))] == 3
    assert apc[("upsAdvBatteryRunTimeRemaining", frozenset({("host", "ups1")}))] == 162_000  # raw ticks, as upstream
    assert ("upsBasicIdentModel", frozenset({("host", "ups1"), ("upsBasicIdentModel", "Smart-UPS 750")})) in apc
    assert not any(name.startswith(("upsOutput", "upsIdent")) or name == "upsBatteryStatus" for name, _ in apc)

    def facts(found: dict, host: str, mib: str) -> dict[str, float]:
        return {name: value for (name, labels), value in found.items()
                if name.startswith("custode_ups_") and labels == frozenset({("host", host), ("mib", mib)})}
    same = {"custode_ups_on_battery": 1, "custode_ups_battery_status": 2, "custode_ups_battery_charge_percent": 87,
            "custode_ups_runtime_seconds": 1620, "custode_ups_seconds_on_battery": 60}
    assert facts(apc, "ups1", "PowerNet-MIB") == {**same, "custode_ups_battery_replace": 0}
    assert facts(ietf, "ups2", "UPS-MIB") == same
