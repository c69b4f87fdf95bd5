"""Block device I/O counters with node_exporter's ``node_disk_*`` names.

psutil reads /proc/diskstats on Linux and the disk performance counters on
Windows, so one collector serves both; times come in milliseconds and are
scaled to node_exporter's seconds.
"""

from __future__ import annotations

import psutil
from prometheus_client.core import Metric

from custode.collectors._psutil_counters import CounterSpec, device_counters
from custode.collectors.base import Collector, CollectorSettings, Regex, compile_pattern
from custode.collectors.registry import register

# node_exporter's default: partitions, loop and RAM disks would double-count
# the I/O of the whole disks they live on.
DEFAULT_DEVICE_EXCLUDE = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"

SPECS = (
    CounterSpec("node_disk_reads_completed_total", "The total number of reads completed successfully.",
                "read_count"),
    CounterSpec("node_disk_writes_completed_total", "The total number of writes completed successfully.",
                "write_count"),
    CounterSpec("node_disk_reads_merged_total", "The total number of reads merged.", "read_merged_count"),
    CounterSpec("node_disk_writes_merged_total", "The number of writes merged.", "write_merged_count"),
    CounterSpec("node_disk_read_bytes_total", "The total number of bytes read successfully.", "read_bytes"),
    CounterSpec("node_disk_written_bytes_total", "The total number of bytes written successfully.",
                "write_bytes"),
    CounterSpec("node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.",
                "read_time", 0.001),
    CounterSpec("node_disk_write_time_seconds_total", "This is the total number of seconds spent by all writes.",
                "write_time", 0.001),
    CounterSpec("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", "busy_time", 0.001),
)


class DiskstatsSettings(CollectorSettings):
    device_exclude: Regex = DEFAULT_DEVICE_EXCLUDE


@register
class DiskstatsCollector(Collector):
    name = "diskstats"
    description = "Disk reads, writes, bytes and busy time per block device (node_exporter names)."
    Settings = DiskstatsSettings
    settings: DiskstatsSettings

    def collect(self) -> list[Metric]:
        stats = psutil.disk_io_counters(perdisk=True)  # None or {} on hosts without disks
        return device_counters(stats, SPECS, compile_pattern(self.settings.device_exclude))
