"""Network interface traffic counters with node_exporter's ``node_network_*`` names."""

from __future__ import annotations

import psutil
from prometheus_client.core import Metric

from custode.collectors._psutil_counters import CounterSpec, device_counters
from custode.collectors.base import Collector, CollectorSettings, Regex, compile_pattern
from custode.collectors.registry import register

SPECS = (
    CounterSpec("node_network_receive_bytes_total", "Network device statistic receive_bytes.", "bytes_recv"),
    CounterSpec("node_network_transmit_bytes_total", "Network device statistic transmit_bytes.", "bytes_sent"),
    CounterSpec("node_network_receive_packets_total", "Network device statistic receive_packets.",
                "packets_recv"),
    CounterSpec("node_network_transmit_packets_total", "Network device statistic transmit_packets.",
                "packets_sent"),
    CounterSpec("node_network_receive_errs_total", "Network device statistic receive_errs.", "errin"),
    CounterSpec("node_network_transmit_errs_total", "Network device statistic transmit_errs.", "errout"),
    CounterSpec("node_network_receive_drop_total", "Network device statistic receive_drop.", "dropin"),
    CounterSpec("node_network_transmit_drop_total", "Network device statistic transmit_drop.", "dropout"),
)


class NetdevSettings(CollectorSettings):
    # Like node_exporter, nothing is excluded by default (it reports lo too).
    device_exclude: Regex = None


@register
class NetdevCollector(Collector):
    name = "netdev"
    description = "Bytes, packets, errors and drops per network interface (node_exporter names)."
    Settings = NetdevSettings
    settings: NetdevSettings

    def collect(self) -> list[Metric]:
        stats = psutil.net_io_counters(pernic=True)
        return device_counters(stats, SPECS, compile_pattern(self.settings.device_exclude))
