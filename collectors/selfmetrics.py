"""Custode's own process: memory, CPU, file descriptors, threads, version.

Names follow prometheus_client's ProcessCollector so the usual "exporter
resource usage" dashboards work, but values come from psutil so Windows is
covered too (ProcessCollector reads /proc and is Linux-only).
"""

from __future__ import annotations

import sys

import psutil
from prometheus_client.core import Metric

from custode.collectors._common import scalar
from custode.collectors.base import Collector, counter, gauge
from custode.collectors.registry import register


def _version() -> str:
    try:  # imported late: collectors must not depend on the agent package to load
        from custode.agent import __version__
    except Exception:  # noqa: BLE001 - any failure just means "unknown"
        return "unknown"
    return str(__version__)


def _max_fds() -> float | None:
    if sys.platform == "win32":
        return None
    import resource  # POSIX only

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else float(soft)


@register
class SelfCollector(Collector):
    name = "self"
    description = "Resource usage and version of the Custode agent process itself."
    default_interval = 15.0

    def collect(self) -> list[Metric]:
        process = psutil.Process()
        with process.oneshot():
            memory = process.memory_info()
            times = process.cpu_times()
            families: list[Metric] = [
                scalar("process_resident_memory_bytes", "Resident memory size in bytes.", memory.rss),
                scalar("process_virtual_memory_bytes", "Virtual memory size in bytes.", memory.vms),
                scalar("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                       process.create_time()),
                scalar("custode_process_threads", "Number of OS threads in the Custode process.",
                       process.num_threads()),
            ]
            cpu = counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
            cpu.add_metric([], times.user + times.system)
            families.append(cpu)
            if hasattr(process, "num_fds"):  # POSIX; Windows has handles, a different quantity
                families.append(scalar("process_open_fds", "Number of open file descriptors.", process.num_fds()))
        max_fds = _max_fds()
        if max_fds is not None:
            families.append(scalar("process_max_fds", "Maximum number of open file descriptors.", max_fds))
        build = gauge("custode_build_info", "Custode version; the value is always 1.", ["version"])
        build.add_metric([_version()], 1.0)
        families.append(build)
        return families
