"""Memory statistics with node_exporter's ``node_memory_*`` names.

On Linux every /proc/meminfo line is exposed exactly as node_exporter names
it, so its dashboards (which use MemAvailable, Cached, Slab...) work as-is.
Elsewhere psutil supplies the handful of fields every OS has.
"""

from __future__ import annotations

import re
import sys

import psutil
from prometheus_client.core import Metric

from custode.collectors._common import scalar
from custode.collectors.base import Collector
from custode.collectors.registry import register

MEMINFO_PATH = "/proc/meminfo"

_PARENTHESES = re.compile(r"\((.*)\)")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_]")


def parse_meminfo(text: str) -> dict[str, float]:
    """Parse /proc/meminfo into node_exporter's metric-name suffixes and values.

    ``Active(anon):  1 kB`` becomes ``Active_anon_bytes: 1024``; lines without
    a unit (``HugePages_Total: 0``) are page counts and keep name and value.
    """
    result: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:  # some kernels emit blank lines
            continue
        if len(parts) not in (2, 3):
            raise ValueError(f"invalid line in meminfo: {line!r}")
        key = _PARENTHESES.sub(r"_\1", parts[0].removesuffix(":"))
        key = _NOT_IN_NAME.sub("_", key)  # a future odd field must not yield an invalid name
        value = float(parts[1])
        if len(parts) == 3:  # the kernel only ever uses kB here
            value *= 1024
            key += "_bytes"
        result[key] = value
    return result


def psutil_meminfo() -> dict[str, float]:
    """The fields psutil offers on every OS, under their meminfo names."""
    virtual, swap = psutil.virtual_memory(), psutil.swap_memory()
    return {
        "MemTotal_bytes": float(virtual.total),
        "MemAvailable_bytes": float(virtual.available),
        "MemFree_bytes": float(virtual.free),
        "SwapTotal_bytes": float(swap.total),
        "SwapFree_bytes": float(swap.free),
    }


@register
class MemoryCollector(Collector):
    name = "memory"
    description = "Memory and swap (node_memory_* from /proc/meminfo on Linux, psutil elsewhere)."

    def collect(self) -> list[Metric]:
        if sys.platform.startswith("linux"):
            with open(MEMINFO_PATH, encoding="ascii", errors="replace") as handle:
                fields = parse_meminfo(handle.read())
        else:
            fields = psutil_meminfo()
        return [scalar(f"node_memory_{key}", f"Memory information field {key}.", value)
                for key, value in sorted(fields.items())]
