"""Prometheus families for the polled hosts: node_exporter / windows_exporter names where those exist.

A dashboard or alert rule written for node_exporter's ``node_filesystem_avail_bytes``
or windows_exporter's ``windows_logical_disk_free_bytes`` works on farm hosts
unchanged, told apart by the ``tenant`` and ``host`` labels (plus the host's
own labels). Facts neither exporter has are ``custode_*``, with the same name
for Linux and Windows so one rule covers both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import Metric

from custode.agent.farm.poller import PollResult
from custode.agent.farm.snapshot import HostSnapshot

ERROR_LABEL_LIMIT = 200
"""Characters of the last error kept in a label: enough to read, bounded for Prometheus."""


@dataclass(frozen=True)
class TargetStatus:
    """What the metrics need besides the latest result: the history the poller does not keep."""

    last_success_at: float | None
    consecutive_failures: int


class _Families:
    """Collects samples by metric name; label sets may differ between hosts (their own labels)."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def add(self, name: str, documentation: str, labels: dict[str, str], value: float,
            kind: str = "gauge") -> None:
        family_name = name[:-len("_total")] if kind == "counter" and name.endswith("_total") else name
        family = self._families.get(family_name)
        if family is None:
            family = self._families[family_name] = Metric(family_name, documentation, kind)
        family.add_sample(name, labels, float(value))

    def result(self) -> list[Metric]:
        return list(self._families.values())


def farm_families(results: Iterable[PollResult], status: dict[str, TargetStatus]) -> list[Metric]:
    """Families for several hosts' results at once (``status`` by host name)."""
    return [family for result in results
            for family in host_families(result, status.get(result.target.name, TargetStatus(None, 0)))]


def host_families(result: PollResult, extra: TargetStatus) -> list[Metric]:
    """One host's families from its latest result; built once per poll, not per publish."""
    out = _Families()
    target = result.target
    labels = target.metric_labels()
    target_labels = {**labels, "transport": target.transport}
    out.add("custode_target_up", "1 if the host's last poll succeeded, 0 if it could not be reached or read.",
            target_labels, 1.0 if result.up else 0.0)
    out.add("custode_target_poll_duration_seconds", "Wall time of the host's last poll.", labels,
            result.duration)
    out.add("custode_target_last_poll_timestamp_seconds", "Unix time the host's last poll started.", labels,
            result.started_at)
    if extra.last_success_at is not None:
        out.add("custode_target_last_success_timestamp_seconds",
                "Unix time of the host's last successful poll.", labels, extra.last_success_at)
    out.add("custode_target_consecutive_failures", "Polls in a row that failed.", labels,
            extra.consecutive_failures)
    if result.error:
        out.add("custode_target_last_error_info", "Why the host's last poll failed (in the error label).",
                {**labels, "error": result.error[:ERROR_LABEL_LIMIT]}, 1.0)
    if result.snapshot is not None:
        _snapshot_families(out, labels, result)
    if result.device is not None:
        _device_families(out, labels, result)
    return out.result()


def _device_families(out: _Families, labels: dict[str, str], result: PollResult) -> None:
    """snmp_exporter's names for what the device answered, plus the few ``custode_*`` facts of a device."""
    from custode.agent.snmp.metrics import add_device_families

    device = result.device
    assert device is not None
    system = device.system
    out.add("custode_snmp_device_info", "What the SNMP device says it is (value 1).",
            {**labels, "sys_name": system.name, "sys_descr": system.descr.strip()[:ERROR_LABEL_LIMIT],
             "sys_object_id": system.object_id, "sys_location": system.location}, 1.0)
    out.add("custode_snmp_requests", "SNMP requests the device's last poll sent.", labels, device.requests)
    out.add("custode_target_probe_problems", "Parts of the probe the host could not answer (see custode status).",
            labels, len(device.problems))
    if device.uptime_seconds is not None:
        out.add("custode_uptime_seconds", "Seconds since the host booted.", labels, device.uptime_seconds)
    add_device_families(out.add, labels, device)


def _snapshot_families(out: _Families, labels: dict[str, str], result: PollResult) -> None:
    snap, busy = result.snapshot, result.cpu_busy_ratio
    assert snap is not None
    windows = snap.os.family == "windows"
    out.add("custode_os_info", "Operating system of the host (value 1).",
            {**labels, "family": snap.os.family, "name": snap.os.name, "version": snap.os.version,
             "kernel": snap.os.kernel}, 1.0)
    out.add("custode_target_probe_problems", "Parts of the probe the host could not answer (see custode status).",
            labels, len(snap.problems))
    out.add("custode_host_clock_skew_seconds", "The host's clock minus Custode's (middle of the poll).",
            labels, round(snap.time - (result.started_at + result.duration / 2), 1))
    if busy is not None:
        out.add("custode_cpu_utilisation_ratio", "Share of CPU time spent busy (0..1) since the previous poll.",
                labels, busy)
    if snap.cpu_count is not None:
        out.add("windows_cs_logical_processors" if windows else "custode_cpu_logical_processors",
                "Logical processors.", labels, snap.cpu_count)
    if snap.boot_time is not None:
        out.add("windows_system_boot_time_timestamp_seconds" if windows else "node_boot_time_seconds",
                "Unix time the host booted.", labels, snap.boot_time)
        out.add("custode_uptime_seconds", "Seconds since the host booted.", labels,
                max(0.0, snap.time - snap.boot_time))
    if windows:
        _windows_families(out, labels, snap)
    else:
        _linux_families(out, labels, snap)
    _common_families(out, labels, snap)


def _linux_families(out: _Families, labels: dict[str, str], snap: HostSnapshot) -> None:
    for (cpu, mode), seconds in snap.cpu_seconds.items():
        out.add("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.",
                {**labels, "cpu": cpu, "mode": mode}, seconds, kind="counter")
    memory = [("node_memory_MemTotal_bytes", snap.memory_total_bytes),
              ("node_memory_MemAvailable_bytes", snap.memory_available_bytes),
              ("node_memory_SwapTotal_bytes", snap.swap_total_bytes),
              ("node_memory_SwapFree_bytes", snap.swap_free_bytes)]
    for name, value in memory:
        if value is not None:
            out.add(name, f"Memory information field {name.split('_')[2]}.", labels, value)
    if snap.load is not None:
        for minutes, value in zip((1, 5, 15), snap.load, strict=False):
            out.add(f"node_load{minutes}", f"{minutes}m load average.", labels, value)
    for fs in snap.filesystems:
        fs_labels = {**labels, "device": fs.device, "fstype": fs.fstype, "mountpoint": fs.mountpoint}
        out.add("node_filesystem_size_bytes", "Filesystem size in bytes.", fs_labels, fs.size_bytes)
        out.add("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.", fs_labels,
                fs.avail_bytes)
        out.add("node_filesystem_free_bytes", "Filesystem free space in bytes.", fs_labels, fs.free_bytes)
    for disk in snap.disks or ():
        if disk.healthy is not None:
            out.add("custode_smart_healthy", "1 if SMART reports the disk healthy.",
                    {**labels, "device": disk.device}, 1.0 if disk.healthy else 0.0)


def _windows_families(out: _Families, labels: dict[str, str], snap: HostSnapshot) -> None:
    out.add("windows_os_info", "Windows product and version (value 1).",
            {**labels, "product": snap.os.name, "version": snap.os.version, "build_number": snap.os.build}, 1.0)
    if snap.memory_total_bytes is not None:
        out.add("windows_cs_physical_memory_bytes", "Physical memory installed.", labels, snap.memory_total_bytes)
    if snap.memory_available_bytes is not None:
        out.add("windows_os_physical_memory_free_bytes", "Physical memory free and available.", labels,
                snap.memory_available_bytes)
    for fs in snap.filesystems:
        volume = {**labels, "volume": fs.mountpoint}
        out.add("windows_logical_disk_size_bytes", "Size of the logical disk.", volume, fs.size_bytes)
        out.add("windows_logical_disk_free_bytes", "Free space on the logical disk.", volume, fs.avail_bytes)
    for disk in snap.disks or ():
        if disk.healthy is not None:
            out.add("custode_physical_disk_healthy", "1 if Windows reports the physical disk healthy.",
                    {**labels, "disk": disk.device, "status": disk.status}, 1.0 if disk.healthy else 0.0)
    _support_families(out, labels, snap)
    if snap.events is not None:
        for (source, level), count in sorted(snap.events.counts.items()):
            out.add("custode_eventlog_events", "Critical and error events in the System log over the last 24 h.",
                    {**labels, "log": "System", "level": level, "source": source}, count)


def _support_families(out: _Families, labels: dict[str, str], snap: HostSnapshot) -> None:
    from custode.agent.farm.windows_eos import support_status

    support = support_status(snap.os, snap.time)
    if support.end_of_support is not None:
        out.add("custode_os_end_of_support_timestamp_seconds",
                "Unix time Microsoft's extended support of this release ends (or ended).", labels,
                support.end_of_support)
    out.add("custode_os_supported", "0 if the operating system is past its end of support.", labels,
            0.0 if support.unsupported else 1.0)
    out.add("custode_os_contract_excluded",
            "1 for Windows older than Server 2012: the service contracts give no guarantee for it.", labels,
            1.0 if support.contract_excluded else 0.0)


def _common_families(out: _Families, labels: dict[str, str], snap: HostSnapshot) -> None:
    if snap.failed_services is not None:
        out.add("custode_services_failed", "Failed units / automatic services not running.", labels,
                len(snap.failed_services))
        for service in snap.failed_services:
            out.add("custode_service_failed", "1 for each failed unit or stopped automatic service.",
                    {**labels, "name": service.name, "manager": service.manager}, 1.0)
    updates = snap.updates
    if updates is not None:
        facts = [("custode_os_updates_pending", "Updates offered and not installed.", updates.pending),
                 ("custode_os_security_updates_pending", "Security updates offered and not installed.",
                  updates.security),
                 ("custode_os_last_update_timestamp_seconds", "Unix time the last update was installed.",
                  updates.last_installed)]
        for name, documentation, value in facts:
            if value is not None:
                out.add(name, documentation, labels, value)
        if updates.reboot_required is not None:
            out.add("custode_os_reboot_required", "1 if installed updates wait for a reboot.", labels,
                    1.0 if updates.reboot_required else 0.0)
    for av in snap.antivirus or ():
        av_labels = {**labels, "product": av.product, "source": av.source}
        if av.enabled is not None:
            out.add("custode_antivirus_enabled", "1 if the antivirus is on.", av_labels, 1.0 if av.enabled else 0.0)
        if av.realtime is not None:
            out.add("custode_antivirus_realtime_protection_enabled", "1 if real-time protection is on.", av_labels,
                    1.0 if av.realtime else 0.0)
        if av.signature_updated is not None:
            out.add("custode_antivirus_signature_timestamp_seconds", "Unix time of the signatures in use.",
                    av_labels, av.signature_updated)
