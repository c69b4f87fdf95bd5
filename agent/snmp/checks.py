"""Judging an SNMP device: a watched interface down, a UPS on battery, a reboot.

Reachability is farm mode's own check (the same for servers and devices).
What a device says is judged against what its previous poll left in
``snmp_devices`` (:mod:`custode.agent.snmp.store`): a reboot is seen only by
comparing boot times, and "down for N polls" only by counting. A module the
device did not answer (no UPS-MIB, IF-MIB timed out) is not judged: its
incidents stay as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from custode.agent.calendar import ROME
from custode.agent.checks import Evaluation, judge_filesystem
from custode.agent.config import FilesystemCheck
from custode.agent.farm.checks import HostJudge
from custode.agent.farm.config import FarmChecks
from custode.agent.incidents import Severity
from custode.agent.snmp.device import (
    IF_UP,
    UPS_BATTERY_DEPLETED,
    UPS_BATTERY_LOW,
    DeviceSnapshot,
    HostResources,
    Interface,
)
from custode.agent.snmp.options import SnmpOptions
from custode.agent.snmp.store import DeviceMemory

UPTIME_WRAP_SECONDS = 2**32 / 100
"""sysUpTime is a 32-bit TimeTicks: it wraps to 0 after 497 days without the device restarting."""
REBOOT_TOLERANCE = 60.0
"""Seconds the worked-out boot time may move between polls (request latency, a device's coarse clock)."""

OPER_WORDS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}
BATTERY_WORDS = {1: "unknown", 2: "normal", 3: "low", 4: "depleted"}


@dataclass(frozen=True)
class DeviceVerdict:
    """What this poll adds to the device's memory: the new memory and the reboot it saw (if any)."""

    memory: DeviceMemory
    rebooted_now: bool


def remember(previous: DeviceMemory | None, host: str, device: DeviceSnapshot, options: SnmpOptions,
             at: float) -> DeviceVerdict:
    """The device's memory after this poll: boot time, the reboot seen (if sysUpTime went back), down counts."""
    uptime = device.uptime_seconds
    boot = at - uptime if uptime is not None else None
    rebooted_at = previous.rebooted_at if previous else None
    rebooted_now = False
    if previous is not None and uptime is not None and previous.uptime_seconds is not None:
        expected = previous.uptime_seconds + max(0.0, at - previous.updated_at)
        wrapped = expected >= UPTIME_WRAP_SECONDS - REBOOT_TOLERANCE
        if uptime < expected - REBOOT_TOLERANCE and not wrapped:
            rebooted_at, rebooted_now = boot, True
    downs = dict(previous.interfaces) if previous else {}
    if device.interfaces is not None:
        watched = _watched(device, options)
        downs = {label: (downs.get(label, 0) + 1 if down else 0) for label, (_, down) in watched.items()}
    memory = DeviceMemory(host, boot, uptime, rebooted_at, device.system.name, device.system.descr[:200], downs, at)
    return DeviceVerdict(memory, rebooted_now)


def _watched(device: DeviceSnapshot, options: SnmpOptions) -> dict[str, tuple[Interface, bool]]:
    """Watched interfaces found on the device: label -> (interface, down); down = oper not up while admin up."""
    found: dict[str, tuple[Interface, bool]] = {}
    for interface in device.interfaces or ():
        for watch in options.watch_interfaces:
            if watch.matches(interface.name, interface.descr, interface.alias):
                down = interface.admin_status == IF_UP and interface.oper_status not in (None, IF_UP)
                found[interface.label] = (interface, down)
                break
    return found


def device_evaluations(farm: FarmChecks, judge: HostJudge, device: DeviceSnapshot, options: SnmpOptions,
                       memory: DeviceMemory, now: float, filesystem: FilesystemCheck | None = None
                       ) -> list[Evaluation]:
    """The device checks of one successful poll (``memory``: after this poll, from :func:`remember`);
    ``filesystem``: the levels of ``checks.filesystem`` (None: not judged) for a device's disks."""
    evaluations = []
    if filesystem is not None and device.host_resources is not None:
        disks = _storage(filesystem, judge, device.host_resources)
        if disks is not None:
            evaluations.append(disks)
    if farm.interfaces.enabled and device.interfaces is not None and options.watch_interfaces:
        evaluations.append(_interfaces(farm, judge, device, options, memory))
    if farm.ups.enabled and device.ups is not None and device.ups.on_battery is not None:
        evaluations.append(_ups(farm, judge, device))
    if farm.reboot.enabled and device.uptime_seconds is not None:
        evaluations.append(_reboot(farm, judge, memory, now))
    return evaluations


DISK_TYPES = frozenset({"1.3.6.1.2.1.25.2.1.4", "1.3.6.1.2.1.25.2.1.10"})
"""hrStorageFixedDisk and hrStorageNetworkDisk: a NAS's volumes, a server's drives (not RAM, swap, flash)."""
PSEUDO_MOUNTS = re.compile(r"^/(run|dev|sys|proc)(/|$)")
"""Linux pseudo filesystems net-snmp lists as fixed disks too (tmpfs on /run, /dev/shm): never full of data."""


def _storage(cfg: FilesystemCheck, judge: HostJudge, host: HostResources) -> Evaluation | None:
    """A NAS's or server's disks from HOST-RESOURCES-MIB, judged like a server's filesystems (same words)."""
    only = re.compile(cfg.mount_points) if cfg.mount_points else None
    disks = [item for item in host.storage
             if item.type_oid in DISK_TYPES and item.size > 0 and item.allocation_units > 0
             and not PSEUDO_MOUNTS.search(item.descr) and (only is None or only.search(item.descr))]
    if not disks:
        return None
    evaluation = judge.evaluation("filesystem", cfg.for_)
    for disk in disks:
        free = max(0.0, disk.size_bytes - disk.used_bytes)
        severity, summary, details = judge_filesystem(cfg, judge.host, disk.descr, free, disk.size_bytes)
        evaluation.results.append(judge.result("filesystem", disk.descr, severity, summary,
                                               hr_storage_index=disk.index, **details))
    return evaluation


def _interfaces(farm: FarmChecks, judge: HostJudge, device: DeviceSnapshot, options: SnmpOptions,
                memory: DeviceMemory) -> Evaluation:
    evaluation = judge.evaluation("interface")
    for watch in options.watch_interfaces:
        matched = [i for i in device.interfaces or () if watch.matches(i.name, i.descr, i.alias)]
        for interface in matched:
            downs = memory.interfaces.get(interface.label, 0)
            oper = OPER_WORDS.get(interface.oper_status or 0, str(interface.oper_status))
            alias = f" ({interface.alias})" if interface.alias and interface.alias != interface.label else ""
            severity: Severity = watch.severity if downs >= farm.interfaces.polls else "ok"
            if downs:
                summary = (f"interface {interface.label}{alias} on {judge.host} is {oper} while enabled "
                           f"(ifOperStatus {interface.oper_status}, {downs} poll{'s' if downs > 1 else ''} in a row)")
            else:
                summary = f"interface {interface.label}{alias} on {judge.host} is up"
            evaluation.results.append(judge.result("interface", f"if/{interface.label}", severity, summary,
                                                   interface=interface.label, alias=interface.alias,
                                                   if_index=interface.index, oper_status=interface.oper_status,
                                                   polls_down=downs))
        if not matched:
            # A watched name the device does not have: say so rather than watch nothing in silence.
            evaluation.results.append(judge.result(
                "interface", f"if/{watch.name}", "warning",
                f"watched interface {watch.name} is not on {judge.host} (no ifName, ifDescr or ifAlias matches): "
                f"fix hosts.{judge.host}.snmp.watch_interfaces",
                interface=watch.name, missing=True))
    return evaluation


def _ups(farm: FarmChecks, judge: HostJudge, device: DeviceSnapshot) -> Evaluation:
    ups = device.ups
    assert ups is not None
    cfg = farm.ups
    evaluation = judge.evaluation("ups")
    status = ups.battery_status
    minutes, charge, seconds = ups.minutes_remaining, ups.charge_percent, ups.seconds_on_battery
    runtime = ups.runtime_seconds
    low = status in (UPS_BATTERY_LOW, UPS_BATTERY_DEPLETED) or (
        bool(ups.on_battery) and runtime is not None and runtime < cfg.min_runtime)
    what = f"UPS {judge.host}" + (f" ({ups.model})" if ups.model else "")
    left = "".join([f", {minutes:g} minutes left" if minutes is not None else "",
                    f", charge {charge:g}%" if charge is not None else ""])
    words = ups.speaks.battery_words or BATTERY_WORDS
    severity: Severity
    if ups.on_battery:
        since = f" for {seconds / 60:.0f} minutes" if seconds else ""
        severity = cfg.battery_low if low else cfg.on_battery
        summary = f"{what} is running on battery{since}: mains power is out{left}"
    elif low:
        severity = cfg.battery_low
        summary = f"{what} reports its battery {words.get(status or 0, status)}{left}: replace or check it"
    elif ups.needs_replacing:
        severity = cfg.on_battery
        summary = f"{what} runs on mains power but says its battery needs replacing{left}: order a new one"
    else:
        severity = "ok"
        # a MIB without a battery state (XUPS-MIB, an APC card that omits it) says nothing of the battery
        battery = "" if status is None else f", battery {words.get(status, str(status))}"
        summary = f"{what} runs on mains power{battery}"
    evaluation.results.append(judge.result("ups", "ups", severity, summary, on_battery=ups.on_battery,
                                           battery_status=status, minutes_remaining=minutes,
                                           charge_percent=charge, seconds_on_battery=seconds, mib=ups.mib,
                                           needs_replacing=ups.needs_replacing))
    return evaluation


def _reboot(farm: FarmChecks, judge: HostJudge, memory: DeviceMemory, now: float) -> Evaluation:
    evaluation = judge.evaluation("reboot")
    rebooted = memory.rebooted_at
    if rebooted is not None and now - rebooted < farm.reboot.window:
        when = datetime.fromtimestamp(rebooted, ROME).strftime("%d/%m/%Y %H:%M %z")
        when = when[:-2] + ":" + when[-2:]
        summary = (f"{judge.host} restarted at {when} (sysUpTime went back): a power cut, a crash or a "
                   "restart by hand")
        evaluation.results.append(judge.result("reboot", "reboot", farm.reboot.severity, summary,
                                               booted_at=rebooted))
    else:
        evaluation.results.append(judge.result("reboot", "reboot", "ok",
                                               f"{judge.host} has been up since its last known start"))
    return evaluation

