"""Device incidents from SNMP polls, judged in farm mode: watched interfaces, UPS on battery, reboots.

The devices' answers are built in code here (``DeviceSnapshot``), because what
is under test is the judging across polls and restarts; reading a real agent
is tests/test_snmp_client.py's and tests/test_farm_snmp.py's part, against
Debian's snmpd.
"""

from __future__ import annotations

import pytest
from conftest import ManualClock
from farm_helpers import down

from custode.agent.config_loader import ConfigError, load_text
from custode.agent.farm.poller import PollResult
from custode.agent.farm.service import FarmService
from custode.agent.history.model import day_of
from custode.agent.history.store import day_row
from custode.agent.incidents import Incidents
from custode.agent.snmp.device import POWERNET_MIB, XUPS_MIB, DeviceSnapshot, Interface, SystemInfo, UpsStatus
from custode.agent.state import State

T0 = 1_796_000_000.0  # 2026-11-30, a fixed moment: every clock here is a ManualClock

CONFIG = """
agent: {tenant: provider}
tenants:
  provider: {name: Consorzio}
  ponte: {name: Comune di Ponte San Pietro}
hosts:
  sw-core:
    address: 10.30.0.2
    transport: snmp
    tenant: ponte
    labels: {role: switch}
    snmp:
      community: {env: CUSTODE_TEST_COMMUNITY}
      watch_interfaces: [uplink0, {name: /WAN/, severity: warning}]
  ups-municipio:
    address: 10.30.0.9
    transport: snmp
    tenant: ponte
    snmp: {community: {env: CUSTODE_TEST_COMMUNITY}, modules: [system, ups]}
farm:
  checks:
    unreachable: {polls: 2}
    interfaces: {polls: POLLS}
"""


@pytest.fixture
def clock():
    return ManualClock(T0)


def _service(tmp_path, clock, polls: int = 1) -> FarmService:
    loaded = load_text(CONFIG.replace("POLLS", str(polls)))
    state = State(tmp_path / "state.db")
    return FarmService(loaded.model, state, Incidents(state, clock=clock), clock=clock)


def _interface(index: int, name: str, oper: int, alias: str = "", admin: int = 1) -> Interface:
    return Interface(index, name=name, descr=name, alias=alias,
                     values={"ifOperStatus": oper, "ifAdminStatus": admin, "ifHCInOctets": 1e9})


def _switch(uptime: float, uplink: int = 1, wan: int = 1) -> DeviceSnapshot:
    return DeviceSnapshot(SystemInfo(descr="Cisco IOS Software, C2960X", name="sw-core",
                                     uptime_ticks=int(uptime * 100)),
                          interfaces=(_interface(1, "Gi1/0/1", 1), _interface(48, "uplink0", uplink, "core"),
                                      _interface(49, "Gi1/0/49", wan, "WAN Fastweb")))


def _ups(uptime: float, source: int = 3, status: int = 2, minutes: float = 40, seconds: float = 0) -> DeviceSnapshot:
    return DeviceSnapshot(SystemInfo(descr="APC Web/SNMP Management Card", uptime_ticks=int(uptime * 100)),
                          ups=UpsStatus({"upsOutputSource": source, "upsBatteryStatus": status,
                                         "upsEstimatedMinutesRemaining": minutes, "upsSecondsOnBattery": seconds,
                                         "upsEstimatedChargeRemaining": 97}, model="Smart-UPS 1500"))


def _poll(service: FarmService, clock: ManualClock, name: str, device: DeviceSnapshot | None) -> None:
    target = next(t for t in service.targets if t.name == name)
    if device is None:
        service.handle([down(target, "no answer from 10.30.0.2:161 (SNMP v2c) within 2 s", at=clock.now)])
    else:
        service.handle([PollResult(target, clock.now, 0.05, None, device=device)])


def _open(service: FarmService) -> dict[str, tuple[str, str]]:
    return {i.key: (i.severity, i.summary) for i in service.incidents.open_incidents()}


def test_a_watched_interface_down_opens_its_incident_and_up_resolves_it(tmp_path, clock) -> None:
    service = _service(tmp_path, clock)
    _poll(service, clock, "sw-core", _switch(5000))
    assert _open(service) == {}
    clock.now += 300
    _poll(service, clock, "sw-core", _switch(5300, uplink=2, wan=7))
    opened = _open(service)
    assert opened["ponte/interface/sw-core:if/uplink0"] == (
        "critical", "interface uplink0 (core) on sw-core is down while enabled (ifOperStatus 2, 1 poll in a row)")
    assert opened["ponte/interface/sw-core:if/Gi1/0/49"][0] == "warning"  # the /WAN/ rule's own severity
    assert "lowerLayerDown" in opened["ponte/interface/sw-core:if/Gi1/0/49"][1]
    clock.now += 300
    _poll(service, clock, "sw-core", _switch(5600))
    assert _open(service) == {}


def test_an_interface_shut_by_its_administrator_is_not_down(tmp_path, clock) -> None:
    service = _service(tmp_path, clock)
    device = _switch(5000)
    shut = DeviceSnapshot(device.system, interfaces=(_interface(48, "uplink0", 2, admin=2),
                                                     _interface(49, "Gi1/0/49", 1, "WAN")))
    _poll(service, clock, "sw-core", shut)
    assert _open(service) == {}


def test_polls_in_a_row_are_counted_across_a_restart(tmp_path, clock) -> None:
    service = _service(tmp_path, clock, polls=2)
    _poll(service, clock, "sw-core", _switch(5000, uplink=2))
    assert _open(service) == {}
    service.state.close()
    clock.now += 300
    restarted = _service(tmp_path, clock, polls=2)
    _poll(restarted, clock, "sw-core", _switch(5300, uplink=2))
    assert restarted.incidents.open_incidents()[0].key == "ponte/interface/sw-core:if/uplink0"


def test_a_watched_name_the_device_does_not_have_is_said(tmp_path, clock) -> None:
    service = _service(tmp_path, clock)
    device = DeviceSnapshot(SystemInfo(name="sw-core", uptime_ticks=100), interfaces=(_interface(1, "Gi1/0/1", 1),))
    _poll(service, clock, "sw-core", device)
    opened = _open(service)
    assert opened["ponte/interface/sw-core:if/uplink0"] == (
        "warning", "watched interface uplink0 is not on sw-core (no ifName, ifDescr or ifAlias matches): fix "
                   "hosts.sw-core.snmp.watch_interfaces")


def test_a_reboot_is_an_event_seen_across_a_restart_and_closed_after_its_window(tmp_path, clock) -> None:
    service = _service(tmp_path, clock)
    _poll(service, clock, "sw-core", _switch(86_400))
    clock.now += 300
    _poll(service, clock, "sw-core", _switch(86_700))  # uptime grew with the clock: no reboot
    assert _open(service) == {}
    service.state.close()
    clock.now += 300
    restarted = _service(tmp_path, clock)  # Custode restarted; the device rebooted 120 s ago
    _poll(restarted, clock, "sw-core", _switch(120))
    severity, summary = _open(restarted)["ponte/reboot/sw-core:reboot"]
    assert severity == "warning"
    assert summary.startswith("sw-core restarted at 30/11/2026 ") and "+01:00 (sysUpTime went back)" in summary
    clock.now += 1800
    _poll(restarted, clock, "sw-core", _switch(1920))
    assert "ponte/reboot/sw-core:reboot" in _open(restarted)  # inside farm.checks.reboot.window (1 h)
    clock.now += 1800
    _poll(restarted, clock, "sw-core", _switch(3720))
    assert _open(restarted) == {}


def test_sysuptime_wrapping_after_497_days_is_not_a_reboot(tmp_path, clock) -> None:
    service = _service(tmp_path, clock)
    wrap = 2**32 / 100
    _poll(service, clock, "ups-municipio", _ups(wrap - 100))
    clock.now += 300
    _poll(service, clock, "ups-municipio", _ups(200))
    assert _open(service) == {}


def test_ups_on_battery_then_low_then_back_on_mains(tmp_path, clock) -> None:
    service = _service(tmp_path, clock)
    _poll(service, clock, "ups-municipio", _ups(9000))
    assert _open(service) == {}
    clock.now += 300
    _poll(service, clock, "ups-municipio", _ups(9300, source=5, minutes=25, seconds=240))
    assert _open(service)["ponte/ups/ups-municipio:ups"] == (
        "warning", "UPS ups-municipio (Smart-UPS 1500) is running on battery for 4 minutes: mains power is out, "
                   "25 minutes left, charge 97%")
    clock.now += 300
    _poll(service, clock, "ups-municipio", _ups(9600, source=5, status=3, minutes=6, seconds=540))
    assert _open(service)["ponte/ups/ups-municipio:ups"][0] == "critical"
    clock.now += 300
    _poll(service, clock, "ups-municipio", _ups(9900))
    assert _open(service) == {}


def _apc(uptime: float, output: int = 2, battery: int = 2, runtime_ticks: int = 240_000, on_battery_ticks: int = 0,
         replace: int = 1) -> DeviceSnapshot:
    """An APC card's PowerNet-MIB answer: output onLine(2)/onBattery(3), run time and time on battery in ticks."""
    return DeviceSnapshot(SystemInfo(descr="APC Web/SNMP Management Card", object_id="1.3.6.1.4.1.318.1.3.27",
                                     uptime_ticks=int(uptime * 100)),
                          ups=UpsStatus({"upsBasicOutputStatus": output, "upsBasicBatteryStatus": battery,
                                         "upsAdvBatteryRunTimeRemaining": runtime_ticks,
                                         "upsBasicBatteryTimeOnBattery": on_battery_ticks,
                                         "upsAdvBatteryCapacity": 100, "upsAdvBatteryReplaceIndicator": replace},
                                        model="Smart-UPS 1500", ident_model="Smart-UPS 1500", mib=POWERNET_MIB))


def test_an_apc_ups_is_judged_from_powernet_mib_like_any_ups(tmp_path, clock) -> None:
    service = _service(tmp_path, clock)
    _poll(service, clock, "ups-municipio", _apc(9000))
    assert _open(service) == {}
    clock.now += 300
    # 240000 ticks = 40 minutes; 12000 ticks = 2 minutes on battery
    _poll(service, clock, "ups-municipio", _apc(9300, output=3, on_battery_ticks=12_000))
    assert _open(service)["ponte/ups/ups-municipio:ups"] == (
        "warning", "UPS ups-municipio (Smart-UPS 1500) is running on battery for 2 minutes: mains power is out, "
                   "40 minutes left, charge 100%")
    clock.now += 300
    # 5 minutes left: under farm.checks.ups.min_runtime (10 minutes) while on battery
    _poll(service, clock, "ups-municipio", _apc(9600, output=3, runtime_ticks=30_000, on_battery_ticks=42_000))
    assert _open(service)["ponte/ups/ups-municipio:ups"][0] == "critical"
    clock.now += 300
    _poll(service, clock, "ups-municipio", _apc(9900, battery=4))
    assert _open(service)["ponte/ups/ups-municipio:ups"] == (
        "critical", "UPS ups-municipio (Smart-UPS 1500) reports its battery in fault, 40 minutes left, charge 100%: "
                    "replace or check it")
    clock.now += 300
    _poll(service, clock, "ups-municipio", _apc(10200, replace=2))
    assert _open(service)["ponte/ups/ups-municipio:ups"] == (
        "warning", "UPS ups-municipio (Smart-UPS 1500) runs on mains power but says its battery needs replacing, "
                   "40 minutes left, charge 100%: order a new one")
    clock.now += 300
    _poll(service, clock, "ups-municipio", _apc(10500))
    assert _open(service) == {}


def test_an_eaton_ups_on_xups_mib_is_judged_by_its_output_source_and_run_time(tmp_path, clock) -> None:
    def eaton(uptime: float, source: int, seconds_left: int) -> DeviceSnapshot:
        return DeviceSnapshot(SystemInfo(descr="ConnectUPS Web/SNMP Card V4.38", object_id="1.3.6.1.4.1.534.1",
                                         uptime_ticks=int(uptime * 100)),
                              ups=UpsStatus({"xupsOutputSource": source, "xupsBatTimeRemaining": seconds_left,
                                             "xupsBatCapacity": 64}, model="Eaton 9130", mib=XUPS_MIB))
    service = _service(tmp_path, clock)
    _poll(service, clock, "ups-municipio", eaton(9000, 3, 2400))
    assert _open(service) == {}
    clock.now += 300
    _poll(service, clock, "ups-municipio", eaton(9300, 5, 1500))
    assert _open(service)["ponte/ups/ups-municipio:ups"] == (
        "warning", "UPS ups-municipio (Eaton 9130) is running on battery: mains power is out, 25 minutes left, "
                   "charge 64%")
    clock.now += 300
    _poll(service, clock, "ups-municipio", eaton(9600, 5, 420))  # 7 minutes: under min_runtime (10 minutes)
    assert _open(service)["ponte/ups/ups-municipio:ups"][0] == "critical"


def test_an_unanswering_device_keeps_its_incidents_and_counts_in_its_day(tmp_path, clock) -> None:
    service = _service(tmp_path, clock)
    _poll(service, clock, "sw-core", _switch(5000, uplink=2))
    for _ in range(2):
        clock.now += 300
        _poll(service, clock, "sw-core", None)
    opened = _open(service)
    assert opened["ponte/reachability/sw-core:reachability"] == (
        "critical", "device sw-core could not be polled 2 times in a row: no answer from 10.30.0.2:161 (SNMP v2c) "
                    "within 2 s")
    assert "ponte/interface/sw-core:if/uplink0" in opened  # nothing measured: kept as it was
    row = day_row(service.state, "sw-core", day_of(T0))
    assert row is not None and (row.polls, row.successes) == (3, 1)
    assert row.data["os"] == "Cisco IOS Software, C2960X"


def test_playbooks_and_restore_tests_cannot_name_a_device() -> None:
    text = CONFIG.replace("POLLS", "1") + """
updates:
  windows:
    firmware: {application: Firmware, hosts: [sw-core], days: [thursday], start: "07:00", duration: 1h,
               playbook: firmware.yaml}
"""
    with pytest.raises(ConfigError) as error:
        load_text(text)
    assert ("updates.windows.firmware.hosts[0]: host 'sw-core' is an SNMP device (transport: snmp): it runs no "
            "commands") in str(error.value)
