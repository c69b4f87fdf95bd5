"""Per-device counter families from psutil's ``perdisk``/``pernic`` dictionaries.

diskstats and netdev differ only in which fields they map to which
node_exporter names; the walking, filtering and unit scaling is the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from prometheus_client.core import Metric

from custode.collectors._common import matches, nonempty
from custode.collectors.base import counter


@dataclass(frozen=True)
class CounterSpec:
    """One psutil field exposed as one node_exporter counter."""

    name: str
    documentation: str
    field: str
    scale: float = 1.0  # e.g. 0.001 where psutil counts milliseconds


def device_counters(stats: Mapping[str, Any] | None, specs: Sequence[CounterSpec],
                    exclude: re.Pattern[str] | None) -> list[Metric]:
    """One counter family per spec, one sample per device not matching ``exclude``.

    Fields psutil lacks on this platform (e.g. ``busy_time`` on Windows) are
    skipped rather than reported as 0, which would look like an idle device.
    """
    families = [counter(spec.name, spec.documentation, ["device"]) for spec in specs]
    for device, values in sorted((stats or {}).items()):
        if matches(exclude, device):
            continue
        for spec, family in zip(specs, families, strict=True):
            value = getattr(values, spec.field, None)
            if value is not None:
                family.add_metric([device], float(value) * spec.scale)
    return nonempty(families)
