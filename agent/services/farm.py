"""Farm mode: remote hosts polled over SSH and WinRM, a tick every few seconds, removed hosts forgotten daily."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from custode.agent.services import Context, Job, Service

if TYPE_CHECKING:
    from custode.agent.farm.service import FarmService as Farm

ORDER = 40
FARM_TICK = 5
"""Seconds between farm ticks: how late at most a due poll starts and a finished one is published."""


class FarmService(Service):
    name = "farm"

    def __init__(self, farm: Farm) -> None:
        self.feature = farm

    def jobs(self, now: datetime) -> list[Job]:
        return [Job("farm", self.feature.tick, "interval", {"seconds": FARM_TICK}, run_now=True),
                Job("farm-prune", self.feature.prune, "interval", {"hours": 24}, run_now=True)]

    def stop(self) -> None:
        self.feature.close()


def build(context: Context) -> FarmService | None:
    """Farm mode, when the config has hosts to poll."""
    config = context.loaded.model
    if not config.polled_hosts():
        return None
    from custode.agent.farm.service import FarmService as Farm
    from custode.agent.farm.service import new_poller

    return FarmService(Farm(config, context.state, context.incidents, context.cache, poller=new_poller(config)))
