"""Boot time, current time and uptime.

node_time_seconds next to node_boot_time_seconds lets Prometheus spot a host
clock that drifted; the uptime gauge is for local checks ("rebooted?") that
do not compute differences.
"""

from __future__ import annotations

import time

import psutil
from prometheus_client.core import Metric

from custode.collectors._common import scalar
from custode.collectors.base import Collector
from custode.collectors.registry import register


@register
class BoottimeCollector(Collector):
    name = "boottime"
    description = "Boot time, system time and uptime in seconds."

    def collect(self) -> list[Metric]:
        boot, now = psutil.boot_time(), time.time()
        return [
            scalar("node_boot_time_seconds", "Node boot time, in unixtime.", boot),
            scalar("node_time_seconds", "System time in seconds since epoch (1970).", now),
            scalar("custode_uptime_seconds", "Seconds since the host booted.", max(0.0, now - boot)),
        ]
