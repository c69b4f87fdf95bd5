"""The ``farm:`` config section: how often remote hosts are polled and what counts as trouble.

The hosts themselves live in the top-level ``hosts:`` registry shared with
update playbooks and restore tests; this section only says how farm mode
treats the ones it polls.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from custode.agent.durations import Duration
from custode.agent.schema import Strict

MIN_HISTORY_DAYS = 400
"""The yearly analysis report of a comune's servers needs a full year plus the weeks it takes to write it."""


class AntivirusCheck(Strict):
    enabled: bool = True
    severity: Literal["warning", "critical"] = "critical"
    signature_max_age: Duration = Field(default=7 * 86400.0, gt=0,
                                        description="older signatures count as out of date (warning)")


class UpdatesCheck(Strict):
    enabled: bool = True
    max_age: Duration = Field(default=45 * 86400.0, gt=0,
                              description="no update installed for longer than this, with updates pending: warning")
    critical_age: Duration = Field(default=90 * 86400.0, gt=0, description="…and critical past this")


class DisksCheck(Strict):
    enabled: bool = True
    severity: Literal["warning", "critical"] = "critical"


class OsSupportCheck(Strict):
    enabled: bool = True
    severity: Literal["warning", "critical"] = "warning"


class UnreachableCheck(Strict):
    enabled: bool = True
    polls: int = Field(default=3, ge=1, description="consecutive failed polls before an incident")
    severity: Literal["warning", "critical"] = "critical"


class InterfacesCheck(Strict):
    """A watched interface (``hosts.X.snmp.watch_interfaces``) oper down while admin up; its severity is the
    interface's own."""

    enabled: bool = True
    polls: int = Field(default=1, ge=1, description="polls in a row that see it down before an incident")


class UpsCheck(Strict):
    enabled: bool = True
    on_battery: Literal["warning", "critical"] = Field(default="warning", description="the UPS runs on battery")
    battery_low: Literal["warning", "critical"] = Field(default="critical",
                                                         description="battery low or depleted, or on battery with "
                                                                     "less than min_runtime left")
    min_runtime: Duration = Field(default=600.0, ge=0, description="estimated runtime below this, on battery, "
                                                                   "counts as battery low")


class RebootCheck(Strict):
    enabled: bool = True
    severity: Literal["warning", "critical"] = "warning"
    window: Duration = Field(default=3600.0, gt=0, description="how long the reboot incident stays open after "
                                                               "the reboot (it is an event, not a state)")


class FarmChecks(Strict):
    """Farm-only checks; disk space, memory, CPU and services use the top-level ``checks:`` levels."""

    unreachable: UnreachableCheck = Field(default_factory=UnreachableCheck)
    antivirus: AntivirusCheck = Field(default_factory=AntivirusCheck)
    updates: UpdatesCheck = Field(default_factory=UpdatesCheck)
    disks: DisksCheck = Field(default_factory=DisksCheck)
    os_support: OsSupportCheck = Field(default_factory=OsSupportCheck)
    interfaces: InterfacesCheck = Field(default_factory=InterfacesCheck,
                                        description="SNMP devices: a watched interface down")
    ups: UpsCheck = Field(default_factory=UpsCheck, description="SNMP devices with UPS-MIB: on battery, battery low")
    reboot: RebootCheck = Field(default_factory=RebootCheck, description="SNMP devices: sysUpTime went back")


class FarmSection(Strict):
    enabled: bool = True
    interval: Duration = Field(default=300.0, ge=10, description="how often each host is polled")
    timeout: Duration = Field(default=60.0, gt=0, description="for the probe command on the host")
    updates_interval: Duration = Field(
        default=6 * 3600.0, gt=0, description="pending updates and SMART are read this often (they cost the host "
                                             "more than the rest)")
    read_updates: bool = Field(default=True, description="false: never read pending updates and SMART (another "
                                                         "tool watches them, e.g. WSUS reports)")
    workers: int = Field(default=32, ge=1, le=256, description="hosts polled at the same time")
    keep_connections: bool = Field(default=True, description="reuse SSH connections and WinRM shells between polls")
    history_days: int = Field(default=MIN_HISTORY_DAYS, ge=MIN_HISTORY_DAYS,
                              description="the older place of history.days (every host's daily rows): the longer "
                                          "of the two applies")
    checks: FarmChecks = Field(default_factory=FarmChecks)
