"""The report's network scenario: Vaiano's quarter (tests/report_scenario.py) plus its network devices and probes.

:func:`fill_network` writes, each part the way the feature itself writes it:

* three SNMP devices (a switch, a firewall, a UPS) polled four times a day
  (00:00, 06:00, 12:00, 18:00 Europe/Rome: 368 polls in 2026Q4) through
  ``custode.agent.farm.history.record``, as the farm job records a device's
  poll (its sysDescr's first line, cut to 80 characters, is the row's ``os``);
  the firewall misses two polls on 18 November;
* their incidents through ``Incidents``, with the details
  ``custode.agent.snmp.checks`` gives them: a firewall outage, three downs of
  the switch's uplink (the last still open at midnight of 31 December) and a
  watched name the switch lacks (a configuration warning, not a down), two
  reboots (one booted in September), three UPS events (one begun on 30
  September, one that reached the battery-low level);
* three service probes probed every hour (24 a day) through
  ``custode.agent.blackbox.store.add_to_day``, as the prober folds a probe into
  its day: the HTTPS portal (three failures, three slow afternoons, its
  certificate renewed on 31 October, ending 10 January 2027), the Internet
  link (seven failures over two days, no certificate), a hosted platform
  probed from 1 November whose certificate ended on 28 December; and the
  probes' down incidents.

The returned dict holds the figures the report must show, worked out by hand
here (never by the builder's code) from what was written.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from report_scenario import load_scenario_config, scenario_config

from custode.agent.blackbox.store import ProbeState, add_to_day
from custode.agent.calendar import ROME
from custode.agent.config import Config
from custode.agent.config_loader import load_text
from custode.agent.farm import history as farm_history
from custode.agent.farm.poller import PollResult
from custode.agent.farm.targets import Target
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.snmp.device import DeviceSnapshot, SystemInfo
from custode.agent.state import State

FIRST, LAST = date(2026, 10, 1), date(2026, 12, 31)
PERIOD_END = datetime(2027, 1, 1, tzinfo=ROME)
POLL_HOURS = (0, 6, 12, 18)
SWITCH_DESCR = ("Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E8, RELEASE SOFTWARE "
                "(fc1)\r\nTechnical Support: http://www.cisco.com/techsupport\r\nCopyright (c) 1986-2023 by Cisco")
FIREWALL_DESCR = "FortiGate-60F v7.2.8,build1639,240313 (GA.M)"
UPS_DESCR = ("APC Web/SNMP Management Card (MB:v4.1.0 PF:v6.8.2 PN:apc_hw05_aos_682.bin AF1:v6.8.2 "
             "AN1:apc_hw05_sumx_682.bin MN:SMT1500RMI2U HR:02 SN: 5A1234X56789 MD:03/15/2019)")

NETWORK_HOSTS = """\
  TENANT-sw-core:
    {address: 10.20.0.2, transport: snmp, tenant: TENANT, labels: {role: switch, site: municipio},
     snmp: {community: {env: CUSTODE_SNMP_TENANT}, watch_interfaces: [Gi1/0/48, Gi1/0/52]}}
  TENANT-fw01:
    {address: 10.20.0.1, transport: snmp, tenant: TENANT, labels: {role: firewall, site: municipio},
     snmp: {community: {env: CUSTODE_SNMP_TENANT}, watch_interfaces: [{name: /WAN/, severity: warning}]}}
  TENANT-ups01:
    {address: 10.20.0.9, transport: snmp, tenant: TENANT, labels: {role: ups},
     snmp: {community: {env: CUSTODE_SNMP_TENANT}, modules: [system, ups]}}
"""
NETWORK_PROBES = """
probes:
  targets:
    TENANT-portale: {url: "https://www.comune.TENANT.example.it/", tenant: TENANT}
    TENANT-internet: {url: "icmp://1.1.1.1", tenant: TENANT}
    TENANT-halley-cloud: {url: "https://halley.example.it/login", tenant: TENANT}
"""


def network_config(tenant: str = "vaiano") -> str:
    """The report scenario's config with the tenant's three devices and three probes."""
    text = scenario_config(tenant).replace("hosts:\n", "hosts:\n" + NETWORK_HOSTS.replace("TENANT", tenant), 1)
    return text + NETWORK_PROBES.replace("TENANT", tenant)


def load_network_config(tenant: str = "vaiano") -> Config:
    return load_text(network_config(tenant)).model


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ROME)


def _days() -> list[date]:
    return [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


def _observe(incidents: Incidents, tenant: str, check: str, target: str, spans: list[tuple[datetime, str, str]],
             **details: Any) -> None:
    """One incident's life: (moment, severity, summary) in order, the last one usually ``ok``."""
    for moment, severity, summary in spans:
        incidents.observe(CheckResult(tenant, check, target, severity, summary, details),  # type: ignore[arg-type]
                          now=moment.timestamp())


# --- devices -------------------------------------------------------------------------------------------

def _fill_polls(state: State, config: Config, tenant: str, host: str, descr: str,
                missed: set[datetime]) -> int:
    target = Target(host, tenant, config.hosts[host], 6 * 3600.0, 10.0)
    answered = 0
    with state.transaction() as db:
        for day in _days():
            for hour in POLL_HOURS:
                moment = at(day, hour)
                if moment in missed:
                    farm_history.record(db, PollResult(target, moment.timestamp(), 10.0, None,
                                                       error="no SNMP response from 10.20.0.1:161 (timeout)"))
                    continue
                answered += 1
                farm_history.record(db, PollResult(target, moment.timestamp(), 0.4, None,
                                                   device=DeviceSnapshot(SystemInfo(descr=descr, name=host))))
    return answered


def _fill_devices(state: State, config: Config, tenant: str) -> dict[str, Any]:
    switch, firewall, ups = f"{tenant}-sw-core", f"{tenant}-fw01", f"{tenant}-ups01"
    missed = {at(date(2026, 11, 18), 6), at(date(2026, 11, 18), 12)}
    polls = len(_days()) * len(POLL_HOURS)
    assert polls == 368
    answered = {switch: _fill_polls(state, config, tenant, switch, SWITCH_DESCR, set()),
                firewall: _fill_polls(state, config, tenant, firewall, FIREWALL_DESCR, missed),
                ups: _fill_polls(state, config, tenant, ups, UPS_DESCR, set())}
    incidents = Incidents(state)
    # the firewall: unreachable from the first missed poll to the next good one, 12 hours
    _observe(incidents, tenant, "reachability", f"{firewall}:reachability",
             [(at(date(2026, 11, 18), 6), "critical", f"device {firewall} could not be polled 1 times in a row: "
                                                      "no SNMP response"),
              (at(date(2026, 11, 18), 18), "ok", f"device {firewall} answers")], host=firewall, transport="snmp")
    # the switch's uplink: 45 min, 2 h, and 2 h still down when the period ends
    uplink = f"{switch}:if/Gi1/0/48"
    for start, end in ((at(date(2026, 10, 20), 14), at(date(2026, 10, 20), 14, 45)),
                       (at(date(2026, 11, 30), 9, 10), at(date(2026, 11, 30), 11, 10)),
                       (at(date(2026, 12, 31), 22), None)):
        spans = [(start, "critical", f"interface Gi1/0/48 (uplink fibra) on {switch} is down while enabled")]
        if end is not None:
            spans.append((end, "ok", f"interface Gi1/0/48 (uplink fibra) on {switch} is up"))
        _observe(incidents, tenant, "interface", uplink, spans, host=switch, interface="Gi1/0/48",
                 alias="uplink fibra", if_index=10148, oper_status=2, polls_down=1)
    _observe(incidents, tenant, "interface", f"{switch}:if/Gi1/0/52",  # a watched name the switch lacks
             [(at(date(2026, 10, 6), 0), "warning", f"watched interface Gi1/0/52 is not on {switch}"),
              (at(date(2026, 10, 7), 0), "ok", "fixed")], host=switch, interface="Gi1/0/52", missing=True)
    # reboots: one in the period, and one whose boot was in September (its incident lasts into October)
    booted = at(date(2026, 10, 30), 3, 12)
    _observe(incidents, tenant, "reboot", f"{switch}:reboot",
             [(at(date(2026, 9, 29), 4), "warning", f"{switch} restarted"),
              (at(date(2026, 10, 1), 4), "ok", f"{switch} has been up since its last known start")],
             host=switch, booted_at=at(date(2026, 9, 29), 3, 58).timestamp())
    _observe(incidents, tenant, "reboot", f"{switch}:reboot",
             [(at(date(2026, 10, 30), 6), "warning", f"{switch} restarted at 30/10/2026 03:12"),
              (at(date(2026, 10, 31), 6), "ok", f"{switch} has been up since its last known start")],
             host=switch, booted_at=booted.timestamp())
    # the UPS: 10 min of a September event in the period, 20 min, 55 min reaching the battery-low level
    on_battery = {"host": ups, "on_battery": True, "battery_status": 2, "minutes_remaining": 25.0}
    _observe(incidents, tenant, "ups", f"{ups}:ups",
             [(at(date(2026, 9, 30), 23, 50), "warning", f"UPS {ups} is running on battery"),
              (at(date(2026, 10, 1), 0, 10), "ok", f"UPS {ups} runs on mains power")], **on_battery)
    _observe(incidents, tenant, "ups", f"{ups}:ups",
             [(at(date(2026, 10, 11), 11), "warning", f"UPS {ups} is running on battery"),
              (at(date(2026, 10, 11), 11, 20), "ok", f"UPS {ups} runs on mains power")], **on_battery)
    _observe(incidents, tenant, "ups", f"{ups}:ups",
             [(at(date(2026, 12, 20), 2), "warning", f"UPS {ups} is running on battery"),
              (at(date(2026, 12, 20), 2, 40), "critical", f"UPS {ups} is running on battery, 4 minutes left"),
              (at(date(2026, 12, 20), 2, 55), "ok", f"UPS {ups} runs on mains power")],
             **{**on_battery, "battery_status": 3, "minutes_remaining": 4.0})
    return {
        "polls": polls, "answered": answered,
        "descriptions": {switch: SWITCH_DESCR.splitlines()[0][:80], firewall: FIREWALL_DESCR, ups: UPS_DESCR[:80]},
        "availability": {switch: 100.0, firewall: 100 * 366 / 368, ups: 100.0},
        "labels": {switch: ("switch", "municipio"), firewall: ("firewall", "municipio"), ups: ("ups", None)},
        "outages": {firewall: [(at(date(2026, 11, 18), 6), at(date(2026, 11, 18), 18), 12 * 3600.0)]},
        "interface_downs": {switch: [(at(date(2026, 10, 20), 14), at(date(2026, 10, 20), 14, 45), 45 * 60.0),
                                     (at(date(2026, 11, 30), 9, 10), at(date(2026, 11, 30), 11, 10), 2 * 3600.0),
                                     (at(date(2026, 12, 31), 22), None, 2 * 3600.0)]},
        "interface_total_minutes": 45 + 120 + 120, "interface_longest_minutes": 120,
        "reboots": {switch: [booted]},
        "ups_events": {ups: [(at(date(2026, 10, 1), 0), at(date(2026, 10, 1), 0, 10), 10 * 60.0, ""),
                             (at(date(2026, 10, 11), 11), at(date(2026, 10, 11), 11, 20), 20 * 60.0, ""),
                             (at(date(2026, 12, 20), 2), at(date(2026, 12, 20), 2, 55), 55 * 60.0, "battery_low")]},
        "ups_total_minutes": 10 + 20 + 55,
    }


# --- probes --------------------------------------------------------------------------------------------

def _fill_probe(state: State, probe: ProbeState, days: list[date], duration: Any, failed: set[datetime],
                error: str, cert: Any) -> None:
    """24 probes a day at each full hour; ``duration(moment)`` and ``cert(day)`` give the answer's figures."""
    with state.transaction() as db:
        for day in days:
            for hour in range(24):
                moment = at(day, hour)
                if moment in failed:
                    add_to_day(db, probe, moment.timestamp(), False, False, 10.0, error, None)
                    continue
                seconds, slow = duration(moment)
                add_to_day(db, probe, moment.timestamp(), True, slow, seconds, None, cert(day))


def _fill_probes(state: State, tenant: str) -> dict[str, Any]:
    portal, internet, halley = f"{tenant}-portale", f"{tenant}-internet", f"{tenant}-halley-cloud"
    days = _days()
    renewed = date(2026, 10, 31)
    old_cert, new_cert = at(date(2026, 11, 5), 0).timestamp(), at(date(2027, 1, 10), 0).timestamp()
    slow_days = {date(2026, 12, 10), date(2026, 12, 11), date(2026, 12, 12)}
    portal_failed = {at(date(2026, 11, 18), h) for h in (9, 10, 11)}
    _fill_probe(state, ProbeState(portal, tenant, "http", f"https://www.comune.{tenant}.example.it/"), days,
                lambda m: (1.5, True) if m.date() in slow_days and 12 <= m.hour <= 17 else (0.2, False),
                portal_failed, "connection timed out", lambda d: old_cert if d < renewed else new_cert)
    internet_failed = ({at(date(2026, 11, 30), h) for h in range(8, 13)} | {at(date(2026, 12, 1), h) for h in (8, 9)})
    _fill_probe(state, ProbeState(internet, tenant, "icmp", "icmp://1.1.1.1"), days, lambda m: (0.015, False),
                internet_failed, "no reply (100% packet loss)", lambda d: None)
    halley_cert = at(date(2026, 12, 28), 12).timestamp()
    _fill_probe(state, ProbeState(halley, tenant, "http", "https://halley.example.it/login"),
                [d for d in days if d >= date(2026, 11, 1)], lambda m: (0.35, False), set(), "", lambda d: halley_cert)
    incidents = Incidents(state)
    details = {"probe": portal, "url": f"https://www.comune.{tenant}.example.it/", "kind": "http"}
    _observe(incidents, tenant, "probe", portal,
             [(at(date(2026, 11, 18), 11), "critical", f"{portal} failed 3 times in a row: connection timed out"),
              (at(date(2026, 11, 18), 12), "ok", f"{portal} answers")], **details)
    details = {"probe": internet, "url": "icmp://1.1.1.1", "kind": "icmp"}
    for start, end in ((at(date(2026, 11, 30), 10), at(date(2026, 11, 30), 13)),
                       (at(date(2026, 12, 1), 9), at(date(2026, 12, 1), 10))):
        _observe(incidents, tenant, "probe", internet,
                 [(start, "critical", f"{internet} failed 3 times in a row: no reply"), (end, "ok", "answers")],
                 **details)
    # worked by hand: 92 days x 24 probes; the portal's durations are 0.2 s, 1.5 s on 18 slow afternoon probes,
    # 10 s on its 3 failures; the Internet link's 15 ms, 10 s on its 7 failures
    return {
        portal: {"kind": "http", "target": f"https://www.comune.{tenant}.example.it/", "probes": 2208,
                 "successes": 2205, "availability": 100 * 2205 / 2208,
                 "latency_avg": (2187 * 0.2 + 18 * 1.5 + 3 * 10.0) / 2208, "latency_median": 0.2,
                 "latency_max": 10.0, "slow_days": 3, "cert_expires_at": at(date(2027, 1, 10), 0),
                 "cert_days_left": 9.0, "errors": (("connection timed out", 3),),
                 "downs": [(at(date(2026, 11, 18), 11), at(date(2026, 11, 18), 12), 3600.0)]},
        internet: {"kind": "icmp", "target": "icmp://1.1.1.1", "probes": 2208, "successes": 2201,
                   "availability": 100 * 2201 / 2208, "latency_avg": (2201 * 0.015 + 7 * 10.0) / 2208,
                   "latency_median": 0.015, "latency_max": 10.0, "slow_days": 0, "cert_expires_at": None,
                   "cert_days_left": None, "errors": (("no reply (100% packet loss)", 7),),
                   "downs": [(at(date(2026, 11, 30), 10), at(date(2026, 11, 30), 13), 3 * 3600.0),
                             (at(date(2026, 12, 1), 9), at(date(2026, 12, 1), 10), 3600.0)]},
        halley: {"kind": "http", "target": "https://halley.example.it/login", "probes": 61 * 24,
                 "successes": 61 * 24, "availability": 100.0, "latency_avg": 0.35, "latency_median": 0.35,
                 "latency_max": 0.35, "slow_days": 0, "cert_expires_at": at(date(2026, 12, 28), 12),
                 "cert_days_left": -3.5, "errors": (), "downs": []},
    }


def fill_network(state: State, config: Config, tenant: str = "vaiano") -> dict[str, Any]:
    """Write the quarter's network history of ``tenant``; return the figures the report must show."""
    devices = _fill_devices(state, config, tenant)
    probes = _fill_probes(state, tenant)
    return {"devices": devices, "probes": probes,
            "light": {"light": "red", "devices": 3, "probes": 3, "lowest": f"{tenant}-fw01",
                      "lowest_percent": round(100 * 366 / 368, 3), "outages": 1, "reboots": 1,
                      "interface_downs": 3, "ups_events": 3, "probe_downs": 3,
                      "first_certificate": f"{tenant}-halley-cloud", "certificate_days_left": -3.5}}


__all__ = ["FIRST", "LAST", "PERIOD_END", "fill_network", "load_network_config", "load_scenario_config",
           "network_config"]
