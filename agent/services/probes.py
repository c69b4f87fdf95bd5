"""Service probes (HTTP(S), TCP, ICMP, DNS, like blackbox_exporter): a tick every few seconds, a daily prune."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from custode.agent.services import Context, Job, Service

if TYPE_CHECKING:
    from custode.agent.blackbox.service import ProbeService as Probes

ORDER = 47
PROBE_TICK = 2
"""Seconds between ticks: how late at most a due probe starts and a finished one is recorded and published."""


class ProbesService(Service):
    name = "probes"

    def __init__(self, probes: Probes) -> None:
        self.feature = probes

    def jobs(self, now: datetime) -> list[Job]:
        return [Job("probes", self.feature.tick, "interval", {"seconds": PROBE_TICK}, executor="probes",
                    run_now=True),
                Job("probes-prune", self.feature.prune, "interval", {"hours": 24}, run_now=True)]

    def executors(self) -> dict[str, int]:
        return {"probes": 1}  # the tick only starts and collects probes; its own thread keeps it on time

    def stop(self) -> None:
        self.feature.close()


def build(context: Context) -> ProbesService | None:
    """Service probes, when the config has targets to probe."""
    from custode.agent.blackbox.service import ProbeService
    from custode.agent.blackbox.target import targets_of

    config = context.loaded.model
    if not targets_of(config):
        return None
    return ProbesService(ProbeService(config, context.state, context.incidents, context.cache))
