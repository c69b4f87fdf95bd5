"""The network section of a report: SNMP devices and service probes, from their daily rows and incidents.

A network device is a host with ``transport: snmp`` (a switch, router,
firewall or UPS). Farm mode writes its day into ``host_daily`` like a polled
server's (:mod:`custode.agent.farm.history`: the polls and the ones answered,
``os`` = the first 80 characters of sysDescr, no CPU, memory or disks), so the
builder reads the tenant's daily rows once and splits them: devices here,
every other host in the servers section. A service probe (HTTPS portal,
hosted platform, the Internet link; :mod:`custode.agent.blackbox`) has one
``probe_daily`` row per day, read through its store's :func:`probe_days`
(a feature's SQL stays in its store).

Figures, and why they are computed so:

* a device's availability is successes / polls over the period, as a
  server's; a probe's is successes / probes;
* outages are the device's ``reachability`` incidents, interface downs its
  ``interface`` incidents (a watched interface down while enabled; a watched
  name the device does not have is a configuration warning, not a down),
  UPS events its ``ups`` incidents (on battery, or the battery low or
  depleted: ``detail`` says ``battery_low`` when one reached critical),
  probe downs the probe's ``probe`` incidents; each is cut to the period
  (begun before it: from its start; still open: to its end, ``end`` None);
* reboots are the device's ``reboot`` incidents whose ``booted_at`` (else
  the opening) falls in the period, one per incident;
* a probe's mean latency is the period's total duration over its probes;
  the median is that of the daily means (a few bad days move the mean, not
  the median); slow days are the days with one slow answer or more;
* the certificate is the one the last probe of the period saw
  (``cert_expiry`` of the last day that has it), and its days left are
  counted from the period's end (or now, while the period runs).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from custode.agent.blackbox.store import ProbeDay, probe_days
from custode.agent.blackbox.target import targets_of
from custode.agent.calendar import ROME
from custode.agent.history.store import HostDay
from custode.agent.incidents import Incident, Incidents
from custode.agent.reports.document import (
    DeviceRecord,
    NetworkEvent,
    NetworkEventKind,
    Outage,
    ProbeDayFigures,
    ProbeRecord,
)

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.state import State
    from custode.agent.transports.config import HostConfig

SNMP = "snmp"
INTERFACE_CHECK, UPS_CHECK, REBOOT_CHECK, PROBE_CHECK = "interface", "ups", "reboot", "probe"
"""The incidents' checks (custode.agent.snmp.checks, custode.agent.blackbox.checks)."""
MAX_ERRORS = 5
DAY = 86400.0


# --- which hosts and probes are the network's ---------------------------------------------------------

def snmp_hosts(config: "Config") -> dict[str, "HostConfig"]:
    """Every network device of the config (any tenant): the hosts whose rows belong here, not to the servers."""
    return {name: host for name, host in config.hosts.items() if host.transport == SNMP}


def watched(config: "Config", tenant: str) -> bool:
    """Whether the tenant has a network device farm mode polls, or a service probe that runs."""
    devices = any(host.transport == SNMP and (host.tenant or config.agent.tenant) == tenant
                  for host in config.polled_hosts().values())
    return devices or any(target.tenant == tenant for target in targets_of(config))


# --- incidents cut to the period -------------------------------------------------------------------

def _cut(incident: Incident, kind: NetworkEventKind, subject: str, start: float, end: float,
         detail: str = "") -> NetworkEvent:
    begin = max(incident.opened_at, start)
    resolved = incident.resolved_at
    finish = resolved if resolved is not None and resolved < end else None
    return NetworkEvent(subject=subject, kind=kind, start=datetime.fromtimestamp(begin, ROME),
                        end=None if finish is None else datetime.fromtimestamp(finish, ROME),
                        seconds=round((finish if finish is not None else end) - begin, 3),
                        summary=incident.summary, detail=detail)


def _host_of(incident: Incident) -> str:
    return str(incident.details.get("host") or incident.target.split(":", 1)[0])


def _interface_words(incident: Incident) -> str:
    """``Gi1/0/48 (uplink fibra)``: the interface as the device names it, with the administrator's alias."""
    name = str(incident.details.get("interface") or incident.target.split(":if/", 1)[-1])
    alias = str(incident.details.get("alias") or "")
    return f"{name} ({alias})" if alias and alias != name else name


def outage_event(outage: Outage) -> NetworkEvent:
    """A device's reachability outage (read with the servers' by :func:`custode.agent.reports.servers.outages`)."""
    return NetworkEvent(outage.host, "outage", outage.start, outage.end, outage.seconds, outage.summary)


def _reboot_moment(incident: Incident) -> float:
    booted = incident.details.get("booted_at")
    return float(booted) if isinstance(booted, (int, float)) else incident.opened_at


# --- devices -------------------------------------------------------------------------------------------

def device_records(state: "State", tenant: str, hosts: Mapping[str, "HostConfig"], days: Iterable[HostDay],
                   outages: Iterable[Outage], start: float, end: float) -> tuple[DeviceRecord, ...]:
    """One record per device with daily rows or incidents in ``[start, end)``, by name.

    ``days`` and ``outages`` are the tenant's (servers' too: only ``hosts``' are taken)."""
    incidents = Incidents(state)
    by_host: dict[str, list[HostDay]] = {}
    for row in days:
        if row.host in hosts:
            by_host.setdefault(row.host, []).append(row)
    events: dict[str, dict[str, list[NetworkEvent]]] = {}

    def add(event: NetworkEvent) -> None:
        if event.subject in hosts:
            events.setdefault(event.subject, {}).setdefault(event.kind, []).append(event)

    for outage in outages:
        add(outage_event(outage))
    for incident in incidents.overlapping(tenant, INTERFACE_CHECK, start, end):
        if not incident.details.get("missing"):  # a watched name the device lacks: a config warning
            add(_cut(incident, "interface_down", _host_of(incident), start, end, _interface_words(incident)))
    for incident in incidents.overlapping(tenant, UPS_CHECK, start, end):
        add(_cut(incident, "ups", _host_of(incident), start, end,
                 "battery_low" if incident.max_severity == "critical" else ""))
    reboots: dict[str, list[datetime]] = {}
    for incident in incidents.overlapping(tenant, REBOOT_CHECK, start, end):
        moment = _reboot_moment(incident)
        if _host_of(incident) in hosts and start <= moment < end:
            reboots.setdefault(_host_of(incident), []).append(datetime.fromtimestamp(moment, ROME))
    names = sorted(set(by_host) | set(events) | set(reboots))
    return tuple(_device(name, hosts[name], sorted(by_host.get(name, []), key=lambda r: r.day),
                         events.get(name, {}), sorted(reboots.get(name, [])))
                 for name in names)


def _device(name: str, host: "HostConfig", days: Sequence[HostDay], events: dict[str, list[NetworkEvent]],
            reboots: list[datetime]) -> DeviceRecord:
    polls = sum(d.polls for d in days)
    successes = sum(d.successes for d in days)
    description = next((d.data["os"] for d in reversed(days) if d.data.get("os")), None)

    def of(kind: str) -> tuple[NetworkEvent, ...]:
        return tuple(sorted(events.get(kind, []), key=lambda e: e.start))

    return DeviceRecord(host=name, role=host.labels.get("role"), site=host.labels.get("site"),
                        description=description,
                        availability_percent=round(100 * successes / polls, 3) if polls else None,
                        days_with_data=len(days), outages=of("outage"), reboots=tuple(reboots),
                        interface_downs=of("interface_down"), ups_events=of("ups"))


# --- probes --------------------------------------------------------------------------------------------

def probe_records(state: "State", tenant: str, first: date, last: date, start: float, end: float,
                  ) -> tuple[ProbeRecord, ...]:
    """One record per probe with daily rows or down incidents in the period, by name; certificates judged at
    ``end`` (the period's end, or now)."""
    by_probe: dict[str, list[ProbeDay]] = {}
    for row in probe_days(state, tenant, first, last):
        by_probe.setdefault(row.probe, []).append(row)
    downs: dict[str, list[Incident]] = {}
    for incident in Incidents(state).overlapping(tenant, PROBE_CHECK, start, end):
        downs.setdefault(incident.target, []).append(incident)
    return tuple(_probe(name, sorted(by_probe.get(name, []), key=lambda r: r.day), downs.get(name, []), start, end)
                 for name in sorted(set(by_probe) | set(downs)))


def _probe(name: str, days: Sequence[ProbeDay], incidents: list[Incident], start: float,
           end: float) -> ProbeRecord:
    probes = sum(d.probes for d in days)
    successes = sum(d.successes for d in days)
    means = [d.duration_sum / d.probes for d in days if d.probes]
    maxima = [d.duration_max for d in days if d.duration_max is not None]
    expiry = next((d.cert_expiry for d in reversed(days) if d.cert_expiry is not None), None)
    errors: Counter[str] = Counter()
    for day in days:
        errors.update(day.errors)
    # what is probed: the last row's, else (no row in the period: probing stopped) the incident's
    seen = incidents[-1].details if incidents else {}
    kind, target = (days[-1].kind, days[-1].target) if days else (str(seen.get("kind", "")), str(seen.get("url", "")))
    downs = tuple(_cut(i, "probe_down", name, start, end) for i in incidents)
    return ProbeRecord(
        name=name, kind=kind, target=target,
        availability_percent=round(100 * successes / probes, 3) if probes else None,
        probes=probes, successes=successes,
        latency_avg_seconds=round(sum(d.duration_sum for d in days) / probes, 6) if probes else None,
        latency_median_seconds=round(statistics.median(means), 6) if means else None,
        latency_max_seconds=round(max(maxima), 6) if maxima else None,
        slow_days=sum(1 for d in days if d.slow), cert_expires_at=_at(expiry),
        cert_days_left=None if expiry is None else round((expiry - end) / DAY, 2),
        downs=downs, errors=tuple(errors.most_common(MAX_ERRORS)),
        days=tuple(ProbeDayFigures(d.day, d.probes, d.successes, d.slow,
                                   round(d.duration_sum / d.probes, 6) if d.probes else None,
                                   d.duration_max, _at(d.cert_expiry)) for d in days))


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, ROME)
