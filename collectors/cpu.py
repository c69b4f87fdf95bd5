"""CPU time per logical CPU and mode, plus a ready-made busy ratio.

The per-mode counters keep node_exporter's names so existing dashboards and
alert rules work unchanged. The ratio is Custode's own: local checks need a
0..1 value now, without a PromQL ``rate()`` over two scrapes.
"""

from __future__ import annotations

from typing import Any

import psutil
from prometheus_client.core import Metric

from custode.collectors._common import nonempty, scalar
from custode.collectors.base import Collector, CollectorSettings, counter
from custode.collectors.registry import register

# psutil field -> node_exporter mode. Windows' interrupt and DPC time are the
# same ideas as Linux's hard and soft IRQ time, so dashboards see one vocabulary.
MODES: dict[str, str] = {
    "user": "user", "nice": "nice", "system": "system", "idle": "idle",
    "iowait": "iowait", "irq": "irq", "softirq": "softirq", "steal": "steal",
    "interrupt": "irq", "dpc": "softirq",
}
GUEST_MODES: dict[str, str] = {"guest": "user", "guest_nice": "nice"}

# Fields already contained in others (Linux guest time is inside user/nice,
# Windows interrupt/DPC time inside system): counting them again would inflate
# the total, as psutil's own cpu_percent() also avoids for guest time.
_CONTAINED = {"guest", "guest_nice", "interrupt", "dpc"}
_IDLE = {"idle", "iowait"}  # waiting for I/O is not work the CPU does


def busy_and_total(per_cpu: list[Any]) -> tuple[float, float]:
    """Busy and total CPU seconds summed over all CPUs."""
    busy = total = 0.0
    for times in per_cpu:
        for field, value in times._asdict().items():
            if field in _CONTAINED:
                continue
            total += value
            if field not in _IDLE:
                busy += value
    return busy, total


@register
class CpuCollector(Collector):
    name = "cpu"
    description = "CPU seconds per logical CPU and mode (node_exporter names), busy ratio and CPU count."

    def __init__(self, settings: CollectorSettings | None = None) -> None:
        super().__init__(settings)
        self._previous: tuple[float, float] | None = None

    def collect(self) -> list[Metric]:
        per_cpu = psutil.cpu_times(percpu=True)
        seconds = counter("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", ["cpu", "mode"])
        guest = counter("node_cpu_guest_seconds_total",
                        "Seconds the CPUs spent in guests (VMs) for each mode.", ["cpu", "mode"])
        for index, times in enumerate(per_cpu):
            cpu = str(index)
            values = times._asdict()
            emitted: dict[str, float] = {}
            for field, mode in MODES.items():
                if field in values:
                    emitted[mode] = emitted.get(mode, 0.0) + values[field]
            for mode, value in emitted.items():
                seconds.add_metric([cpu, mode], value)
            for field, mode in GUEST_MODES.items():
                if field in values:
                    guest.add_metric([cpu, mode], values[field])

        families: list[Metric] = [seconds, guest]
        ratio = self._utilisation(per_cpu)
        if ratio is not None:
            families.append(scalar("custode_cpu_utilisation_ratio",
                                   "Busy fraction (0..1) of all CPUs since the previous collection.", ratio))
        count = psutil.cpu_count(logical=True)
        if count:
            families.append(scalar("custode_cpu_logical_processors", "Number of logical CPUs.", count))
        return nonempty(families)

    def _utilisation(self, per_cpu: list[Any]) -> float | None:
        """Busy ratio since the last call; None the first time.

        The first collection has no baseline: an average since boot would
        pass for "now" and could wrongly raise or clear a CPU alert.
        """
        current = busy_and_total(per_cpu)
        previous, self._previous = self._previous, current
        if previous is None:
            return None
        d_busy, d_total = current[0] - previous[0], current[1] - previous[1]
        if d_total <= 0:  # same clock tick, or CPUs went offline in between
            return None
        return min(1.0, max(0.0, d_busy / d_total))
