"""Temperatures and fan speeds with node_exporter's ``node_hwmon_*`` names.

Virtual machines and most Windows hosts expose no sensors; that is normal,
so the collector succeeds with no samples and says so through
``custode_capability_available`` instead of failing every interval.
"""

from __future__ import annotations

from typing import Any

import psutil
from prometheus_client.core import Metric

from custode.collectors._common import capability, nonempty, unique
from custode.collectors.base import Collector, gauge
from custode.collectors.registry import register

LABELS = ("chip", "sensor")


def _sensor_keys(chip: str, entries: list[Any], kind: str,
                 seen: set[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """(chip, sensor) per entry: the label, or ``temp<N>``/``fan<N>`` when unlabelled."""
    return [unique(seen, (chip, entry.label or f"{kind}{index}"))
            for index, entry in enumerate(entries, start=1)]


def _read(name: str) -> dict[str, list[Any]]:
    reader = getattr(psutil, name, None)  # absent on Windows
    return (reader() or {}) if reader is not None else {}


@register
class HwmonCollector(Collector):
    name = "hwmon"
    description = "Hardware temperatures and fan speeds from psutil's sensors (where the host has them)."

    def collect(self) -> list[Metric]:
        temperatures, fans = _read("sensors_temperatures"), _read("sensors_fans")
        temp = gauge("node_hwmon_temp_celsius", "Hardware monitor for temperature (input)", LABELS)
        crit = gauge("node_hwmon_temp_crit_celsius", "Hardware monitor for temperature (crit)", LABELS)
        high = gauge("node_hwmon_temp_max_celsius", "Hardware monitor for temperature (max)", LABELS)
        rpm = gauge("node_hwmon_fan_rpm", "Hardware monitor for fan revolutions per minute (input)", LABELS)

        seen_temps: set[tuple[str, ...]] = set()
        for chip, entries in sorted(temperatures.items()):
            for labels, entry in zip(_sensor_keys(chip, entries, "temp", seen_temps), entries, strict=True):
                for family, value in ((temp, entry.current), (crit, entry.critical), (high, entry.high)):
                    if value is not None:
                        family.add_metric(list(labels), float(value))
        seen_fans: set[tuple[str, ...]] = set()
        for chip, entries in sorted(fans.items()):
            for labels, entry in zip(_sensor_keys(chip, entries, "fan", seen_fans), entries, strict=True):
                if entry.current is not None:
                    rpm.add_metric(list(labels), float(entry.current))

        available = bool(temperatures or fans)
        return [*nonempty([temp, crit, high, rpm]), capability(self.name, "sensors", available)]
