"""A collector plug-in: reads a UPS status file and exposes its battery charge."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric

from custode.collectors.base import Collector, CollectorSettings, CollectorUnavailable


class UpsSettings(CollectorSettings):
    """Options under ``collectors.ups_example`` in Custode's config."""

    status_file: str = "/run/ups/status"


class UpsCollector(Collector):
    name = "ups_example"
    description = "Battery charge from a UPS status file (an example plug-in)."
    Settings = UpsSettings

    def collect(self) -> list[Metric]:
        path = Path(self.settings.status_file)  # type: ignore[attr-defined]
        if not path.exists():
            raise CollectorUnavailable(f"{path} does not exist: no UPS daemon on this host")
        charge = GaugeMetricFamily("ups_example_battery_charge_ratio", "Battery charge, 0 to 1.")
        charge.add_metric([], float(path.read_text(encoding="utf-8").strip()) / 100)
        return [charge]
