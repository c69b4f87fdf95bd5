"""SNMP polls against Debian's real net-snmp snmpd on loopback (tests/snmpd.py): v2c, v3, IPv6, errors, flips.

Every test is bounded in time by the options' request timeout and the runner's
poll timeout; every address is 127.0.0.1 or ::1.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from snmpd import (
    COMMUNITY,
    V3_AUTH_KEY,
    V3_AUTH_ONLY_KEY,
    V3_AUTH_ONLY_USER,
    V3_PRIV_KEY,
    V3_USER,
    SnmpDaemon,
    free_udp_port,
    interface,
    ups_state,
)

from custode.agent.snmp.credentials import Credentials, credentials_of
from custode.agent.snmp.device import IF_DOWN, IF_UP, UPS_OUTPUT_BATTERY, SnmpError
from custode.agent.snmp.options import SnmpOptions
from custode.agent.snmp.runner import SnmpRunner

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """snmpd with this machine's real interfaces and HOST-RESOURCES, and a UPS through pass_persist."""
    with SnmpDaemon(tmp_path_factory.mktemp("snmpd")) as server:
        server.set_state(ups=ups_state())
        yield server


@pytest.fixture
def switch(tmp_path):
    """snmpd whose interfaces and sysUpTime come from the JSON state: a switch a test can flip."""
    server = SnmpDaemon(tmp_path / "switch", simulated_interfaces=True, override_uptime=True, sys_name="sw-core")
    server.set_state(interfaces=[interface(1, "lo", if_type=24, mac="", speed_mbps=10),
                                 interface(1000, "uplink0", descr="GigabitEthernet0/1", alias="uplink core",
                                           in_octets=2**40 + 5, out_octets=12345)],
                     uptime_ticks=8_640_000)
    with server:
        yield server


@pytest.fixture(scope="module")
def runner():
    with SnmpRunner() as shared:
        yield shared


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("CUSTODE_TEST_SNMP_COMMUNITY", COMMUNITY)
    monkeypatch.setenv("CUSTODE_TEST_SNMP_AUTH", V3_AUTH_KEY)
    monkeypatch.setenv("CUSTODE_TEST_SNMP_PRIV", V3_PRIV_KEY)
    monkeypatch.setenv("CUSTODE_TEST_SNMP_AUTH_ONLY", V3_AUTH_ONLY_KEY)
    return monkeypatch


def v2c(port: int, **extra) -> SnmpOptions:
    return SnmpOptions(version="2c", community={"env": "CUSTODE_TEST_SNMP_COMMUNITY"}, port=port,
                       timeout=extra.pop("timeout", 1.0), retries=extra.pop("retries", 1), **extra)


def v3(port: int, user: str = V3_USER, priv: bool = True, **extra) -> SnmpOptions:
    block = {"user": user, "auth_key": {"env": extra.pop("auth_env", "CUSTODE_TEST_SNMP_AUTH")}}
    if priv:
        block["priv_key"] = {"env": extra.pop("priv_env", "CUSTODE_TEST_SNMP_PRIV")}
    return SnmpOptions(version="3", v3=block, port=port, timeout=extra.pop("timeout", 1.0),
                       retries=extra.pop("retries", 1), **extra)


def poll(runner, address, options, timeout=10.0):
    return runner.poll(address, options, credentials_of(options), timeout=timeout)


def walk_descr(server: SnmpDaemon) -> dict[int, str]:
    """ifDescr by ifIndex as net-snmp's own snmpwalk sees it."""
    done = subprocess.run(server.snmp_command("snmpwalk", "1.3.6.1.2.1.2.2.1.2"), capture_output=True, text=True,
                          env=server.command_env(), timeout=20, check=True)
    found = re.finditer(r"\.2\.2\.1\.2\.(\d+) = STRING: \"?([^\"\n]*)", done.stdout)
    return {int(match.group(1)): match.group(2) for match in found}


def test_v2c_poll_reads_system_real_interfaces_host_resources_and_ups(daemon, runner, secrets):
    started = time.monotonic()
    device = poll(runner, "127.0.0.1", v2c(daemon.port))
    elapsed = time.monotonic() - started
    assert device.problems == ()
    assert device.system.name == "custode-test-device"
    assert device.system.location == "Sala server, Municipio di Prova"
    assert device.system.contact == "ced@comune.example"
    assert device.system.descr.startswith("Linux")
    assert device.system.object_id == "1.3.6.1.4.1.8072.3.2.10"  # NET-SNMP-MIB netSnmpAgentOIDs.linux
    assert device.system.uptime_ticks is not None and device.uptime_seconds is not None

    # The same interfaces net-snmp's own snmpwalk lists, with ifXTable's names and 64-bit counters as floats.
    assert device.interfaces is not None
    by_index = {item.index: item for item in device.interfaces}
    assert {index: item.descr for index, item in by_index.items()} == walk_descr(daemon)
    assert device.if_number == len(by_index)
    loopback = next(item for item in device.interfaces if item.descr == "lo")
    assert loopback.name == "lo" and loopback.type_name == "softwareLoopback"
    assert loopback.oper_status == IF_UP and loopback.admin_status == IF_UP
    assert isinstance(loopback.values["ifHCInOctets"], float) and loopback.values["ifHCInOctets"] > 0
    assert loopback.values["ifMtu"] == 65536.0 and loopback.phys_address == "" and loopback.specific == "0.0"
    for item in device.interfaces:
        wanted = {"ifIndex", "ifType", "ifOperStatus", "ifAdminStatus", "ifHCOutOctets", "ifHighSpeed"}
        assert wanted <= set(item.values)
        assert item.phys_address == "" or re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", item.phys_address)

    host = device.host_resources
    assert host is not None and host.uptime_ticks is not None
    memory = next(item for item in host.storage if item.descr == "Physical memory")
    assert memory.type_oid == "1.3.6.1.2.1.25.2.1.2" and memory.allocation_units > 0
    assert 0 < memory.used_bytes <= memory.size_bytes

    assert device.ups is not None and device.ups.model == "Riello UPS Sentinel Pro 2200"
    assert device.ups.on_battery is False
    # One GET, then GETBULK walks: ifTable, ifXTable, the UPS tables, hrStorage + hrProcessorLoad.
    assert 5 <= device.requests <= 4 * (len(by_index) + 2) + 6
    assert elapsed < 5


def test_v3_auth_priv_poll_over_ipv4_and_ipv6(daemon, runner, secrets):
    for address in ("127.0.0.1", "::1", "[::1]"):
        device = poll(runner, address, v3(daemon.port))
        assert device.problems == ()
        assert device.system.name == "custode-test-device"
        assert any(item.descr == "lo" for item in device.interfaces or ())


def test_v3_auth_no_priv_and_v2c_over_ipv6(daemon, runner, secrets):
    device = poll(runner, "127.0.0.1", v3(daemon.port, user=V3_AUTH_ONLY_USER, priv=False,
                                          auth_env="CUSTODE_TEST_SNMP_AUTH_ONLY"))
    assert device.system.name == "custode-test-device"
    six = poll(runner, "::1", v2c(daemon.port))
    assert six.system.name == "custode-test-device" and six.problems == ()


def test_only_the_modules_asked_for_are_read(daemon, runner, secrets):
    device = poll(runner, "127.0.0.1", v2c(daemon.port, modules=["system"]))
    assert device.interfaces is None and device.ups is None and device.host_resources is None
    assert device.requests == 1 and device.if_number is None


def test_wrong_community_is_no_answer_in_words_within_the_timeout(daemon, runner, secrets):
    secrets.setenv("CUSTODE_TEST_SNMP_COMMUNITY", "not-the-community")
    started = time.monotonic()
    with pytest.raises(SnmpError) as caught:
        poll(runner, "127.0.0.1", v2c(daemon.port, timeout=0.5, retries=1))
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith(f"no answer from 127.0.0.1:{daemon.port} (SNMP v2c) within 0.5 s and 1 retry: ")
    assert "a firewall drops UDP" in message and "community is wrong" in message
    assert 0.9 <= elapsed < 3


def test_unanswered_port_is_no_answer_in_words_within_the_timeout(runner, secrets):
    port = free_udp_port()
    started = time.monotonic()
    with pytest.raises(SnmpError, match=rf"no answer from \[::1\]:{port} \(SNMP v2c\) within 0.3 s and 0 retries"):
        poll(runner, "::1", v2c(port, timeout=0.3, retries=0))
    assert time.monotonic() - started < 2
    with pytest.raises(SnmpError, match=rf"no answer from 127.0.0.1:{port} \(SNMP v3\) .*SNMPv3 is not enabled"):
        poll(runner, "127.0.0.1", v3(port, timeout=0.3, retries=0))


def test_v3_errors_from_report_pdus_in_words(daemon, runner, secrets):
    secrets.setenv("CUSTODE_TEST_SNMP_WRONG", "not-the-key-123")
    with pytest.raises(SnmpError, match=r"rejected the authentication of SNMPv3 user 'custode' "
                                        r"\(REPORT usmStatsWrongDigests\): snmp.v3.auth_key or auth_protocol \(SHA\)"):
        poll(runner, "127.0.0.1", v3(daemon.port, auth_env="CUSTODE_TEST_SNMP_WRONG", retries=0))
    # net-snmp drops a request it cannot decrypt ("error parsing ScopedPDU" in its log) without a REPORT: no
    # answer, which with the engine ID already known could also be a device gone down, so both are said.
    with pytest.raises(SnmpError, match=r"no answer from .*or snmp.v3.priv_key/priv_protocol \(AES\) differs"):
        poll(runner, "127.0.0.1", v3(daemon.port, priv_env="CUSTODE_TEST_SNMP_WRONG", timeout=0.5, retries=0))
    with pytest.raises(SnmpError, match=rf"127.0.0.1:{daemon.port} does not know SNMPv3 user 'nobody' "
                                        r"\(REPORT usmStatsUnknownUserNames\)"):
        poll(runner, "127.0.0.1", v3(daemon.port, user="nobody", retries=0))
    with pytest.raises(SnmpError, match=r"does not allow security level authPriv for SNMPv3 user 'custodeauth'"):
        poll(runner, "127.0.0.1", v3(daemon.port, user=V3_AUTH_ONLY_USER, auth_env="CUSTODE_TEST_SNMP_AUTH_ONLY",
                                     retries=0))
    # The right keys still work on the same engine afterwards.
    assert poll(runner, "127.0.0.1", v3(daemon.port)).system.name == "custode-test-device"


def test_wrong_priv_key_on_a_device_first_met_is_named(tmp_path, runner, secrets):
    secrets.setenv("CUSTODE_TEST_SNMP_WRONG", "not-the-key-123")
    with SnmpDaemon(tmp_path / "fresh") as fresh:
        with pytest.raises(SnmpError) as caught:
            poll(runner, "127.0.0.1", v3(fresh.port, priv_env="CUSTODE_TEST_SNMP_WRONG", timeout=0.5, retries=0))
    assert str(caught.value) == (
        f"127.0.0.1:{fresh.port} answered SNMPv3 engine discovery but not the encrypted request of user 'custode' "
        "(within 0.5 s and 0 retries): snmp.v3.priv_key or priv_protocol (AES) differs from the device's (agents "
        "such as net-snmp drop a request they cannot decrypt, unanswered)")


def test_device_without_ups_mib_has_no_ups_and_no_problem(tmp_path, runner, secrets):
    with SnmpDaemon(tmp_path / "plain") as plain:
        device = poll(runner, "127.0.0.1", v2c(plain.port))
    assert device.ups is None and device.problems == ()
    assert device.host_resources is not None


def test_ups_on_battery_is_seen_on_the_next_poll(daemon, runner, secrets):
    try:
        daemon.set_state(ups=ups_state(on_battery=True, battery_status=3, charge=40, minutes=6))
        ups = poll(runner, "127.0.0.1", v2c(daemon.port, modules=["system", "ups"])).ups
        assert ups is not None and ups.on_battery is True and ups.battery_status == 3
        assert ups.values["upsOutputSource"] == UPS_OUTPUT_BATTERY
        assert ups.values["upsEstimatedChargeRemaining"] == 40 and ups.values["upsEstimatedMinutesRemaining"] == 6
        assert ups.outputs == ({"upsOutputLineIndex": 1.0, "upsOutputVoltage": 230.0, "upsOutputCurrent": 31.0,
                                "upsOutputPower": 610.0, "upsOutputPercentLoad": 35.0},)
        assert ups.inputs[0]["upsInputVoltage"] == 0.0
    finally:
        daemon.set_state(ups=ups_state())
    assert poll(runner, "127.0.0.1", v2c(daemon.port, modules=["system", "ups"])).ups.on_battery is False


def test_interface_going_down_and_uptime_restart_are_seen_on_the_next_poll(switch, runner, secrets):
    first = poll(runner, "127.0.0.1", v3(switch.port))
    uplink = next(item for item in first.interfaces if item.index == 1000)
    assert (uplink.name, uplink.alias, uplink.descr, uplink.oper_status) == ("uplink0", "uplink core",
                                                                             "GigabitEthernet0/1", IF_UP)
    assert uplink.values["ifHCInOctets"] == float(2**40 + 5)  # beyond 32 bits: read as Counter64
    assert uplink.values["ifHighSpeed"] == 1000.0 and uplink.phys_address == "00:1a:2b:3c:4d:5e"
    assert first.system.uptime_ticks == 8_640_000 and first.if_number == 2

    switch.set_state(interfaces=[interface(1, "lo", if_type=24, mac="", speed_mbps=10),
                                 interface(1000, "uplink0", oper=IF_DOWN, descr="GigabitEthernet0/1")],
                     uptime_ticks=1234)
    second = poll(runner, "127.0.0.1", v3(switch.port))
    uplink = next(item for item in second.interfaces if item.index == 1000)
    assert uplink.oper_status == IF_DOWN and uplink.admin_status == IF_UP
    assert second.system.uptime_ticks == 1234 < first.system.uptime_ticks


def test_real_restart_of_the_agent_is_seen_and_v3_resynchronises(tmp_path, runner, secrets):
    with SnmpDaemon(tmp_path / "reboot") as device:
        before = poll(runner, "127.0.0.1", v3(device.port))
        time.sleep(1.2)
        device.restart()
        after = poll(runner, "127.0.0.1", v3(device.port))  # snmpEngineBoots went up: pysnmp resyncs
    assert after.system.uptime_ticks < before.system.uptime_ticks + 120
    assert after.problems == ()


def test_a_module_that_stops_answering_is_a_problem_not_an_error(tmp_path, runner, secrets):
    with SnmpDaemon(tmp_path / "slow") as slow:
        slow.set_state(ups=ups_state(), delay=["1.3.6.1.2.1.33.1.3.3", 1.5])  # the UPS input table stalls
        device = poll(runner, "127.0.0.1", v2c(slow.port, timeout=0.5, retries=0, modules=["system", "ups"]))
        assert device.system.name == "custode-test-device" and device.ups is None
        assert device.problems == (f"ups: 127.0.0.1:{slow.port} stopped answering while walking "
                                   "upsInputTable/upsOutputTable (1.3.6.1.2.1.33) (no answer within 0.5 s and "
                                   "0 retries); not read this poll",)

        time.sleep(1.5)  # let snmpd finish the stalled walk first: a new state would stall it again
        slow.set_state(delay=["1.3.6.1.2.1.33.1.3.3", 3])
        started = time.monotonic()
        device = poll(runner, "127.0.0.1", v2c(slow.port, timeout=3, retries=0, modules=["system", "ups"]),
                      timeout=1.5)
        assert time.monotonic() - started < 1.5 + 1.2
        assert device.ups is None and device.problems == (
            "ups: not read, the poll's time ran out while walking upsInputTable/upsOutputTable (1.3.6.1.2.1.33)",)


def test_same_v3_user_with_different_keys_on_two_devices_at_once(tmp_path, runner, secrets):
    """pysnmp's high-level API keeps one USM entry per user name; here each device engine gets its own."""
    secrets.setenv("CUSTODE_TEST_SNMP_AUTH2", "otherauth456")
    secrets.setenv("CUSTODE_TEST_SNMP_PRIV2", "otherpriv456")
    with SnmpDaemon(tmp_path / "b", v3_auth_key="otherauth456", v3_priv_key="otherpriv456", sys_name="dev-b") as b:
        with SnmpDaemon(tmp_path / "a", sys_name="dev-a") as a:
            jobs = [(a.port, v3(a.port)), (b.port, v3(b.port, auth_env="CUSTODE_TEST_SNMP_AUTH2",
                                                       priv_env="CUSTODE_TEST_SNMP_PRIV2"))] * 10
            with ThreadPoolExecutor(max_workers=20) as pool:
                names = list(pool.map(lambda job: poll(runner, "127.0.0.1", job[1]).system.name, jobs))
    assert names == ["dev-a", "dev-b"] * 10


def test_many_concurrent_polls_share_one_engine_without_growing_it(daemon, runner, secrets):
    options = [v2c(daemon.port, timeout=3), v3(daemon.port, timeout=3)]
    addresses = ["127.0.0.1", "::1"]
    jobs = [(addresses[i % 2], options[(i // 2) % 2]) for i in range(50)]
    before = runner.footprint()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        devices = list(pool.map(lambda job: poll(runner, job[0], job[1], timeout=30), jobs))
    elapsed = time.monotonic() - started
    assert all(device.problems == () and device.system.name == "custode-test-device" for device in devices)
    assert all(device.interfaces for device in devices)
    after = runner.footprint()
    assert after["targets"] == 0  # target rows live only while a poll uses them
    assert after["transports"] <= 2 and after["communities"] <= max(before["communities"], 1)
    assert after["users"] <= before["users"] + 2
    print(f"50 concurrent polls: {elapsed:.2f} s, {sum(d.requests for d in devices)} requests")
    assert elapsed < 25


def test_runner_gives_up_on_a_poll_past_its_timeout(tmp_path, runner, secrets):
    with SnmpDaemon(tmp_path / "stuck") as stuck:
        stuck.set_state(ups=ups_state(), delay=["1.3.6.1.2.1.33", 3])  # even the first GET waits 3 s
        started = time.monotonic()
        with pytest.raises(SnmpError, match=rf"no answer from 127.0.0.1:{stuck.port} \(SNMP v2c\) before the poll's "
                                            "deadline"):
            poll(runner, "127.0.0.1", v2c(stuck.port, timeout=2.5, retries=0), timeout=1.0)
        assert time.monotonic() - started < 2.5


def test_poll_device_directly_on_an_own_loop(daemon, secrets):
    """poll_device is a plain coroutine: any loop with its own engine runs it."""
    from pysnmp.entity.engine import SnmpEngine

    from custode.agent.snmp.client import poll_device

    async def main():
        engine = SnmpEngine()
        options = v2c(daemon.port)
        try:
            return await poll_device(engine, "127.0.0.1", options, credentials_of(options),
                                     deadline=time.monotonic() + 10)
        finally:
            engine.close_dispatcher()

    assert asyncio.run(main()).system.name == "custode-test-device"


def test_credentials_resolve_secrets_and_hide_them(secrets):
    credentials = credentials_of(v3(161))
    assert (credentials.user, credentials.auth_key, credentials.priv_key) == (V3_USER, V3_AUTH_KEY, V3_PRIV_KEY)
    assert credentials.level == "authPriv" and credentials.context == ""
    shown = repr(credentials) + str(credentials)
    assert V3_AUTH_KEY not in shown and V3_PRIV_KEY not in shown and "custode" in shown
    assert COMMUNITY not in repr(credentials_of(v2c(161)))
    assert repr(Credentials("2c", community="segreto")) == "Credentials(version='2c', community=<hidden>)"


def test_missing_or_short_secrets_say_where_and_how_to_fix(secrets):
    secrets.delenv("CUSTODE_TEST_SNMP_COMMUNITY")
    with pytest.raises(SnmpError, match=r"the SNMP community \(snmp.community\) cannot be read: environment "
                                        r"variable CUSTODE_TEST_SNMP_COMMUNITY is not set .*set it"):
        credentials_of(v2c(161))
    secrets.setenv("CUSTODE_TEST_SNMP_PRIV", "short")
    with pytest.raises(SnmpError, match=r"privacy key \(snmp.v3.priv_key, environment variable "
                                        r"CUSTODE_TEST_SNMP_PRIV\) has 5 characters; .*at least 8"):
        credentials_of(v3(161))
