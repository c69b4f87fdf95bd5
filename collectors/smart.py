"""Disk health from smartmontools' ``smartctl --json``.

Disks announce their death in SMART long before the filesystem notices.
smartctl is optional: without it the collector reports the capability as
missing and nothing else, because a host without smartmontools is not broken.
It runs every five minutes since querying SMART wakes disks and can be slow.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client.core import Metric
from pydantic import Field

from custode.collectors._common import capability, nonempty, run_command, unique
from custode.collectors.base import Collector, CollectorSettings, gauge
from custode.collectors.registry import register

log = logging.getLogger(__name__)

EXIT_DISK_FAILING = 1 << 3  # smartctl(8) EXIT STATUS bit 3: "SMART status check returned DISK FAILING"


@dataclass(frozen=True)
class SmartReport:
    """The facts Custode uses from one device's ``smartctl --json`` document."""

    device: str
    type: str
    model: str
    serial: str
    healthy: bool | None  # None: the device has no overall SMART verdict (e.g. some USB bridges)
    temperature_celsius: float | None
    power_on_hours: float | None
    exit_status: int | None


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_smartctl_json(data: dict[str, Any]) -> SmartReport:
    """Extract a :class:`SmartReport` from smartctl 7.x ``--json`` output.

    SCSI/SAS disks name their model differently from ATA/NVMe ones, hence
    the fallbacks.
    """
    passed = _get(data, "smart_status", "passed")
    exit_status = _get(data, "smartctl", "exit_status")
    model = data.get("model_name") or data.get("scsi_model_name") or data.get("scsi_product") or ""
    return SmartReport(
        device=str(_get(data, "device", "name") or ""),
        type=str(_get(data, "device", "type") or ""),
        model=str(model).strip(),
        serial=str(data.get("serial_number") or "").strip(),
        healthy=passed if isinstance(passed, bool) else None,
        temperature_celsius=_number(_get(data, "temperature", "current")),
        power_on_hours=_number(_get(data, "power_on_time", "hours")),
        exit_status=exit_status if isinstance(exit_status, int) else None,
    )


class SmartSettings(CollectorSettings):
    smartctl_path: str = Field("smartctl", description="smartctl program: a name looked up on PATH, or a path.")
    command_timeout: float = Field(20.0, gt=0, description="Seconds one smartctl call may take.")


@register
class SmartCollector(Collector):
    name = "smart"
    description = "SMART health, temperature and power-on hours per disk (needs smartmontools >= 7)."
    default_interval = 300.0
    default_timeout = 60.0
    Settings = SmartSettings
    settings: SmartSettings

    def collect(self) -> list[Metric]:
        smartctl = shutil.which(self.settings.smartctl_path)
        if smartctl is None:
            return [capability(self.name, "smartctl", False)]

        healthy = gauge("custode_smart_healthy", "1 if the disk passes its SMART overall-health self-assessment.",
                        ["device", "model", "serial"])
        temperature = gauge("custode_smart_temperature_celsius", "Current disk temperature.", ["device"])
        hours = gauge("custode_smart_power_on_hours", "Hours the disk has been powered on.", ["device"])
        exit_status = gauge("custode_smart_exit_status",
                            "smartctl's exit status bitmask (bit 3: disk failing, bit 4/5: attributes "
                            "at or past threshold, bit 6/7: error or self-test log has errors).", ["device"])
        seen: set[tuple[str, ...]] = set()
        for device in self._scan(smartctl):
            report = self._query(smartctl, device)
            if report is None:
                continue
            # RAID controllers expose several disks behind one node: -d megaraid,N
            label = report.device if "," not in report.type else f"{report.device} [{report.type}]"
            (label,) = unique(seen, (label,))
            if report.healthy is not None:
                healthy.add_metric([label, report.model, report.serial], 1.0 if report.healthy else 0.0)
            if report.temperature_celsius is not None:
                temperature.add_metric([label], report.temperature_celsius)
            if report.power_on_hours is not None:
                hours.add_metric([label], report.power_on_hours)
            if report.exit_status is not None:
                exit_status.add_metric([label], float(report.exit_status))
        return [*nonempty([healthy, temperature, hours, exit_status]), capability(self.name, "smartctl", True)]

    def _json(self, argv: list[str]) -> tuple[dict[str, Any], int]:
        result = run_command(argv, self.settings.command_timeout)
        try:
            data = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(f"smartctl printed no JSON (exit {result.returncode}); "
                               "smartmontools 7.0 or later is needed") from None
        if not isinstance(data, dict):
            raise RuntimeError("smartctl printed JSON that is not an object")
        return data, result.returncode

    def _scan(self, smartctl: str) -> list[dict[str, Any]]:
        """Devices smartctl can open, with the -d type it detected for each."""
        data, _ = self._json([smartctl, "--scan-open", "--json"])
        devices = data.get("devices") or []
        return [d for d in devices if isinstance(d, dict) and d.get("name")]

    def _query(self, smartctl: str, device: dict[str, Any]) -> SmartReport | None:
        argv = [smartctl, "--json", "--info", "--health", "--attributes"]
        if device.get("type"):
            argv += ["-d", str(device["type"])]
        argv.append(str(device["name"]))
        try:
            data, returncode = self._json(argv)
        except subprocess.TimeoutExpired:
            # One hung disk must not hide the others' health.
            log.warning("smartctl timed out", extra={"device": device["name"]})
            return None
        report = parse_smartctl_json(data)
        return replace(
            report,
            device=report.device or str(device["name"]),
            type=report.type or str(device.get("type") or ""),
            exit_status=report.exit_status if report.exit_status is not None else returncode,
        )
