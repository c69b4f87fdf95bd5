"""Load averages with node_exporter's names (``node_load1/5/15``)."""

from __future__ import annotations

import os

from prometheus_client.core import Metric

from custode.collectors._common import scalar
from custode.collectors.base import Collector, CollectorUnavailable
from custode.collectors.registry import register


@register
class LoadavgCollector(Collector):
    name = "loadavg"
    description = "1, 5 and 15 minute load averages (POSIX only)."

    def collect(self) -> list[Metric]:
        # psutil emulates load on Windows by sampling the processor queue,
        # which is a different quantity: better absent than misleading.
        if not hasattr(os, "getloadavg"):
            raise CollectorUnavailable("load averages do not exist on Windows")
        return [scalar(f"node_load{minutes}", f"{minutes}m load average.", value)
                for minutes, value in zip((1, 5, 15), os.getloadavg(), strict=False)]
