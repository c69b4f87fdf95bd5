"""The Windows probe on this host: the farm's PowerShell probe, run by the agent for its own server on a schedule.

A comune's Windows server running Custode as a service then reports
antivirus, Windows Update, System-log errors and disk health as a polled one
does (:mod:`custode.agent.farm.local_probe` says how). ``agent.windows_probe``
configures it; ``enabled: auto`` (the default) means on when the agent runs on
Windows, so a Linux agent never tries to start powershell.exe.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from custode.agent.clock import Clock, current_time
from custode.agent.durations import Duration
from custode.agent.schema import Strict
from custode.agent.services import Context, Job, Service

if TYPE_CHECKING:
    from custode.agent.farm.local_probe import LocalWindowsProbe

log = logging.getLogger(__name__)

ORDER = 35
EXECUTOR = "windows-probe"
"""A pool of one thread of its own: a probe that runs to its timeout holds up no other job."""


class WindowsProbeSection(Strict):
    """``agent.windows_probe``: whether, how often and for how long the agent runs the Windows probe on itself."""

    enabled: bool | Literal["auto"] = Field(
        default="auto", description="auto: on when Custode runs on Windows; true/false force it")
    interval: Duration = Field(default=900.0, ge=60, description="how often the probe runs")
    timeout: Duration = Field(default=120.0, gt=0, description="the probe is stopped after this and the run fails")
    updates_interval: Duration = Field(
        default=6 * 3600.0, gt=0, description="the Windows Update search (slow, a load on WSUS) runs this often; "
                                              "the runs in between keep the last counts")

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> "WindowsProbeSection":
        if self.timeout >= self.interval:
            raise ValueError(f"timeout ({self.timeout:g} s) must be shorter than interval ({self.interval:g} s): "
                             "a run would still be going when the next is due, and that one would be skipped")
        return self


def probe_wanted(section: WindowsProbeSection, platform: str) -> bool:
    """Whether to run the probe on a host whose ``sys.platform`` is ``platform`` (passed in: tests choose it)."""
    if section.enabled == "auto":
        return platform == "win32"
    return bool(section.enabled)


class LocalWindowsService(Service):
    name = "local_windows"

    def __init__(self, probe: LocalWindowsProbe, interval: float) -> None:
        self.feature = probe
        self.interval = interval

    def executors(self) -> dict[str, int]:
        return {EXECUTOR: 1}

    def jobs(self, now: datetime) -> list[Job]:
        return [Job("windows-probe", self.feature.run, "interval", {"seconds": self.interval}, executor=EXECUTOR,
                    run_now=True, misfire_grace_time=max(1, int(self.interval)))]


def build(context: Context, platform: str | None = None, clock: Clock = current_time) -> LocalWindowsService | None:
    """The probe's job when ``agent.windows_probe`` wants it on this platform (default: ``sys.platform``).

    Not when farm mode polls this very host (``hosts:`` has ``agent.hostname``
    polled over WinRM): two watchers of one host name would judge the same
    incidents twice and cannot share its daily row."""
    config = context.loaded.model
    section = config.agent.windows_probe
    if not probe_wanted(section, sys.platform if platform is None else platform):
        return None
    if config.agent.hostname in config.polled_hosts():
        log.warning("agent.windows_probe: this host (%s) is polled by farm mode already; its own probe does not "
                    "run (set the host's monitor: agent, or agent.windows_probe.enabled: false)",
                    config.agent.hostname)
        return None
    from custode.agent.farm.local_probe import LocalWindowsProbe

    probe = LocalWindowsProbe(config, context.state, context.incidents, context.cache, interval=section.interval,
                              timeout=section.timeout, updates_interval=section.updates_interval, clock=clock)
    return LocalWindowsService(probe, section.interval)
