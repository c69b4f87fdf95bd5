"""Custode against recordings of real devices (tests/data/snmprec, provenance in its PROVENANCE.md).

Debian's snmpd (tests/test_snmp_*.py) is one agent with one style; the devices
a comune has are Cisco, MikroTik and Zyxel switches and routers, APC and other
UPS cards, with their own gaps: no ifXTable, no sysUpTime in the answer, octet
strings in hex, ifIndex numbers with holes, PowerNet-MIB instead of UPS-MIB.
snmpsim serves each recording on 127.0.0.1 (tests/snmpsim_device.py) and:

- Custode's if_mib families equal those of Debian's real snmp_exporter 0.21
  (its if_mib module) reading the same recording: every name, label set and
  value (a recording does not move, so every value must match);
- an APC card's PowerNet-MIB families equal snmp_exporter's apcups module's;
- the farm judges the recorded UPS: on mains no incident, and the same
  recording with the UPS on battery (derived in the test, one value changed)
  opens the ``ups`` incident with the run time the card reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ManualClock
from snmpsim_device import RECORDINGS, RecordedDevice
from test_snmp_metrics import IF_MIB_NAMES, exporter_scrape, render, samples

from custode.agent.config_loader import load_text
from custode.agent.farm.poller import PollResult
from custode.agent.farm.service import FarmService
from custode.agent.incidents import Incidents
from custode.agent.snmp import oids
from custode.agent.snmp.credentials import credentials_of
from custode.agent.snmp.device import POWERNET_MIB, DeviceSnapshot
from custode.agent.snmp.options import SnmpOptions
from custode.agent.snmp.runner import SnmpRunner
from custode.agent.state import State

APCUPS = Path(__file__).parent / "data" / "snmp_exporter" / "apcups.yml"
APC_NAMES = {item.name for item in oids.APC_SCALARS} | {"sysUpTime"}
WITH_INTERFACES = sorted(path.stem for path in RECORDINGS.glob("*.snmprec")
                         if "\n1.3.6.1.2.1.2.2.1." in path.read_text(encoding="utf-8"))
"""Every recording with an ifTable: all of them today (a UPS card has its management port)."""
APC_RECORDING = "apc_smart-ups-rt3000"
T0 = 1_796_000_000.0

pytestmark = [pytest.mark.integration, pytest.mark.real_clock]


@pytest.fixture
def community(monkeypatch):
    monkeypatch.setenv("CUSTODE_TEST_SNMP_COMMUNITY", "custodetest")


def poll(device: RecordedDevice, modules: list[str]) -> DeviceSnapshot:
    options = SnmpOptions(version="2c", community={"env": "CUSTODE_TEST_SNMP_COMMUNITY"}, port=device.port,
                          modules=modules)
    with SnmpRunner() as runner:
        return runner.poll("127.0.0.1", options, credentials_of(options), timeout=20)


def test_every_recording_is_served_and_has_interfaces_to_compare() -> None:
    assert len(WITH_INTERFACES) >= 4, WITH_INTERFACES


@pytest.mark.parametrize("name", WITH_INTERFACES)
def test_if_mib_families_equal_snmp_exporter_on_a_real_device(tmp_path, community, name) -> None:
    with RecordedDevice(tmp_path / "device", name) as device:
        theirs_text = exporter_scrape(device, tmp_path)
        snapshot = poll(device, ["system", "if_mib"])
    ours_text = render(snapshot)
    theirs = {key: value for key, value in samples(theirs_text).items() if not key[0].startswith("snmp_")}
    ours = {key: value for key, value in samples(ours_text).items() if key[0] in IF_MIB_NAMES}
    assert theirs, theirs_text
    missing, extra = set(theirs) - set(ours), set(ours) - set(theirs)
    assert not missing and not extra, f"missing {sorted(missing)[:5]} extra {sorted(extra)[:5]}"
    assert ours == theirs
    assert snapshot.problems == ()
    assert snapshot.interfaces, "the recording's interfaces were not read"


def test_an_apc_card_gives_snmp_exporters_apcups_families_and_is_judged_as_a_ups(tmp_path, community) -> None:
    with RecordedDevice(tmp_path / "device", APC_RECORDING) as device:
        theirs_text = exporter_scrape(device, tmp_path, APCUPS, "apcups")
        snapshot = poll(device, ["system", "if_mib", "ups"])
    theirs = {key: value for key, value in samples(theirs_text).items() if key[0] in APC_NAMES}
    ours = {key: value for key, value in samples(render(snapshot)).items() if key[0] in APC_NAMES}
    assert ours == theirs and theirs, theirs_text
    ups = snapshot.ups
    assert ups is not None and ups.mib == POWERNET_MIB
    assert ups.model == "Smart-UPS RT 3000 XL"
    assert ups.on_battery is False
    assert ups.runtime_seconds == 19526  # upsAdvBatteryRunTimeRemaining 1952600 ticks
    assert ups.charge_percent == 100  # this card has only upsHighPrecBatteryCapacity, in tenths: 1000


CONFIG = """
agent: {tenant: provider}
tenants:
  provider: {name: Consorzio}
  vaiano: {name: Comune di Vaiano}
hosts:
  ups-ced:
    address: 127.0.0.1
    transport: snmp
    tenant: vaiano
    snmp: {community: {env: CUSTODE_TEST_SNMP_COMMUNITY}, modules: [system, ups]}
"""


def test_the_recorded_apc_ups_on_battery_opens_the_ups_incident(tmp_path, community) -> None:
    clock = ManualClock(T0)
    state = State(tmp_path / "state.db")
    service = FarmService(load_text(CONFIG).model, state, Incidents(state, clock=clock), clock=clock)
    target = next(t for t in service.targets if t.name == "ups-ced")
    with RecordedDevice(tmp_path / "mains", APC_RECORDING) as device:
        service.handle([PollResult(target, clock.now, 0.05, None, device=poll(device, ["system", "ups"]))])
    assert service.incidents.open_incidents() == []
    [ok] = state.query("SELECT summary FROM check_states WHERE key = 'vaiano/ups/ups-ced:ups'")
    # the card gives no upsBasicBatteryStatus: nothing is said of the battery rather than "normal"
    assert ok["summary"] == "UPS ups-ced (Smart-UPS RT 3000 XL) runs on mains power"
    clock.now += 300
    # the same card a minute into a power cut: upsBasicOutputStatus onBattery(3)
    on_battery = {"1.3.6.1.4.1.318.1.1.1.4.1.1.0": "2|3"}
    with RecordedDevice(tmp_path / "battery", APC_RECORDING, on_battery) as device:
        service.handle([PollResult(target, clock.now, 0.05, None, device=poll(device, ["system", "ups"]))])
    [incident] = service.incidents.open_incidents()
    assert incident.severity == "warning"
    assert incident.summary == ("UPS ups-ced (Smart-UPS RT 3000 XL) is running on battery: mains power is out, "
                                "325.4 minutes left, charge 100%")


def test_a_ups_card_without_ifxtable_names_its_ports_by_ifdescr_without_its_nul_padding(tmp_path, community):
    with RecordedDevice(tmp_path / "device", "minuteman_e1500rtxl2u") as device:
        snapshot = poll(device, ["system", "if_mib", "ups"])
    assert snapshot.interfaces is not None
    # ifDescr comes padded with NULs to 16 bytes: people and watch_interfaces see the name, the metric keeps
    # the bytes as snmp_exporter does (test_if_mib_families_equal_snmp_exporter_on_a_real_device)
    assert [i.label for i in snapshot.interfaces] == ["lo", "eth0", "tunl0", "gre0", "sit0"]
    assert snapshot.interfaces[1].exact["ifDescr"] == "eth0" + "\x00" * 12
    ups = snapshot.ups
    assert ups is not None and ups.mib == "UPS-MIB"
    assert (ups.on_battery, ups.battery_status, ups.minutes_remaining, ups.charge_percent) == (False, 2, 22, 100)
    # upsIdentManufacturer is recorded at 1.3.6.1.2.1.33.1.1.1 without its .0: not an instance, not read
    assert ups.manufacturer == ""


def test_the_recorded_rfc1628_ups_on_battery_opens_the_ups_incident(tmp_path, community) -> None:
    clock = ManualClock(T0)
    state = State(tmp_path / "state.db")
    service = FarmService(load_text(CONFIG).model, state, Incidents(state, clock=clock), clock=clock)
    target = next(t for t in service.targets if t.name == "ups-ced")
    # two minutes into a power cut: upsOutputSource battery(5), upsSecondsOnBattery 120
    on_battery = {"1.3.6.1.2.1.33.1.4.1.0": "2|5", "1.3.6.1.2.1.33.1.2.2.0": "2|120"}
    with RecordedDevice(tmp_path / "battery", "minuteman_e1500rtxl2u", on_battery) as device:
        service.handle([PollResult(target, clock.now, 0.05, None, device=poll(device, ["system", "ups"]))])
    [incident] = service.incidents.open_incidents()
    assert incident.summary == ("UPS ups-ced is running on battery for 2 minutes: mains power is out, "
                                "22 minutes left, charge 100%")


def test_an_eaton_connectups_card_is_read_over_xups_mib_and_not_judged_on_what_it_does_not_say(tmp_path, community):
    with RecordedDevice(tmp_path / "device", "eaton_connectups") as device:
        snapshot = poll(device, ["system", "if_mib", "ups"])
    ups = snapshot.ups
    assert ups is not None and ups.mib == "XUPS-MIB"
    assert ups.values == {"xupsBatVoltage": 78, "xupsBatCapacity": 100, "xupsInputFrequency": 500,
                          "xupsOutputFrequency": 500}
    assert ups.charge_percent == 100
    # the card's capture has no xupsOutputSource: on battery or not is unknown, so no ups check is judged
    assert ups.on_battery is None
    families = samples(render(snapshot))
    assert families[("custode_ups_battery_charge_percent", frozenset({("mib", "XUPS-MIB")}))] == 100
    assert not any(name == "custode_ups_on_battery" for name, _ in families)


ROUTER = """
agent: {tenant: provider}
tenants:
  provider: {name: Consorzio}
  ponte: {name: Comune di Ponte San Pietro}
hosts:
  router-ponte:
    address: 127.0.0.1
    transport: snmp
    tenant: ponte
    snmp: {community: {env: CUSTODE_TEST_SNMP_COMMUNITY}, modules: [system, host_resources]}
"""


def test_a_devices_disk_from_host_resources_is_judged_like_a_servers_filesystem(tmp_path, community) -> None:
    clock = ManualClock(T0)
    state = State(tmp_path / "state.db")
    service = FarmService(load_text(ROUTER).model, state, Incidents(state, clock=clock), clock=clock)
    target = next(t for t in service.targets if t.name == "router-ponte")
    with RecordedDevice(tmp_path / "as-recorded", "mikrotik_rb952") as device:
        service.handle([PollResult(target, clock.now, 0.05, None, device=poll(device, ["system", "host_resources"]))])
    assert service.incidents.open_incidents() == []  # system disk 16 MiB, 11.3 MiB used; "main memory" is RAM
    clock.now += 300
    # the same router with its flash nearly full: hrStorageUsed 15800 of 16384 units of 1 KiB
    full = {"1.3.6.1.2.1.25.2.3.1.6.131072": "2|15800"}
    with RecordedDevice(tmp_path / "full", "mikrotik_rb952", full) as device:
        service.handle([PollResult(target, clock.now, 0.05, None, device=poll(device, ["system", "host_resources"]))])
    [incident] = service.incidents.open_incidents()
    assert (incident.key, incident.severity) == ("ponte/filesystem/router-ponte:system disk", "critical")
    assert incident.summary == ("filesystem system disk on router-ponte has 3.6% free (584.0 KiB of 16.0 MiB), "
                                "below the critical threshold of 5%")
