"""The configuration schema (pydantic models) and its embedded defaults.

Every model forbids unknown keys: a misspelt option silently ignored is how a
monitoring agent ends up not monitoring. Loading, line numbers and the wording
of errors live in :mod:`custode.agent.config_loader`.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from custode.agent.backups.config import BackupsSection
from custode.agent.blackbox.config import ProbesSection
from custode.agent.calendar import CalendarSection, TenantCalendar
from custode.agent.durations import Duration
from custode.agent.farm.config import FarmSection
from custode.agent.history.config import HistorySection
from custode.agent.patch_policy import PatchPolicy
from custode.agent.profiles import Profile, ProfileRef
from custode.agent.reports.config import ReportsSection, TenantReports
from custode.agent.restore.config import RestoreTestsSection
from custode.agent.schema import Strict, check_names
from custode.agent.service_levels.config import ServiceLevels
from custode.agent.services.local_windows import WindowsProbeSection
from custode.agent.services.status_page import StatusPageSection
from custode.agent.smtp_settings import SmtpSettings, check_addresses
from custode.agent.tickets.config import TenantTickets, TicketsSection
from custode.agent.transports.config import HostConfig
from custode.agent.updates.config import UpdatesSection, WindowNotice
from custode.collectors.base import Regex

DEFAULT_PORT = 10191
DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"
DEFAULT_TENANT = "default"
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6, ``:PORT`` for all interfaces)."""
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<p6>\d+)|(?P<host>[^:\[\]]*):(?P<port>\d+)", value.strip())
    if not match:
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:10191, 127.0.0.1:10191 or [::1]:10191")
    host = match.group("v6") or match.group("host") or "0.0.0.0"
    port = int(match.group("p6") or match.group("port"))
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range; use 1-65535")
    return host, port


class AgentSection(Strict):
    listen: str = DEFAULT_LISTEN
    data_dir: Path | None = Field(default=None, description="state DB and audit log live here")
    tenant: str = DEFAULT_TENANT
    hostname: str = Field(default_factory=socket.gethostname)
    check_interval: Duration = 30.0
    web_config_file: Path | None = Field(
        default=None, description="TLS and basic auth for every route, in the exporter-toolkit web-config format")
    windows_probe: WindowsProbeSection = Field(
        default_factory=WindowsProbeSection,
        description="the farm's Windows probe run on this host: antivirus, Windows Update, System log, disk health")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value.strip()


class LoggingSection(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "text"] = "auto"


class StateSection(Strict):
    path: Path | None = None


class AuditSection(Strict):
    path: Path | None = None


class Tenant(Strict):
    """A comune (or the provider itself): hosts, jobs and tickets belong to one."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    referents: list[str] = Field(default_factory=list,
                                 description="e-mail addresses told of maintenance (start, expected end, outcome)")
    language: Literal["it", "en"] = "it"
    vars: dict[str, str] = Field(default_factory=dict, description="playbook variables for this tenant's runs")
    calendar: TenantCalendar = Field(default_factory=TenantCalendar,
                                     description="patron day and closures on top of the provider's calendar")
    tickets: TenantTickets = Field(default_factory=TenantTickets,
                                   description="which helpdesk backend files this comune's tickets")
    service_levels: ServiceLevels | None = Field(
        default=None, description="the contract's levels, targets and penalties; default: tickets.sla")
    profile: ProfileRef | None = Field(default=None, description="a name under profiles: (the services it bought); "
                                                                 "default: every service")
    patch_policy: PatchPolicy | None = Field(default=None, description="when OS patches are due; default: "
                                                                       "continuous, farm.checks.updates ages")
    notice: WindowNotice = Field(default_factory=WindowNotice,
                                 description="advance notice of update windows to the referents")
    reports: TenantReports = Field(default_factory=TenantReports,
                                   description="the quarterly and yearly reports e-mailed to this comune")

    _addresses = field_validator("referents")(lambda cls, value: check_addresses(value))


class ThresholdCheck(Strict):
    enabled: bool = True
    for_: Duration | None = Field(default=None, alias="for")


class LevelCheck(ThresholdCheck):
    """A check with a warning and a critical level; subclasses say which way is worse.

    ``_levels`` names the (warning, critical) fields and ``_low_is_bad`` whether
    lower values are worse (free space) or higher ones (CPU busy).
    """

    _levels: ClassVar[tuple[str, str]]
    _low_is_bad: ClassVar[bool]
    _why: ClassVar[str] = ""

    def severity_of(self, value: float) -> Literal["ok", "warning", "critical"]:
        """Judge ``value`` against this check's levels, in the direction declared above."""
        warning, critical = (getattr(self, key) for key in self._levels)
        if self._low_is_bad:
            return "critical" if value < critical else "warning" if value < warning else "ok"
        return "critical" if value >= critical else "warning" if value >= warning else "ok"

    def limit_for(self, severity: str) -> float:
        """The threshold a non-OK severity was judged against (for messages)."""
        return getattr(self, self._levels[1] if severity == "critical" else self._levels[0])

    @model_validator(mode="after")
    def _order(self) -> "LevelCheck":
        warning_key, critical_key = self._levels
        warning, critical = getattr(self, warning_key), getattr(self, critical_key)
        if (critical >= warning) if self._low_is_bad else (critical <= warning):
            word = "lower" if self._low_is_bad else "higher"
            raise ValueError(f"{critical_key} ({critical:g}) must be {word} than {warning_key} ({warning:g})"
                             + (f": {self._why}" if self._why else ""))
        return self


class FilesystemCheck(LevelCheck):
    _levels = ("warning_avail_percent", "critical_avail_percent")
    _low_is_bad = True
    _why = "less free space is worse"
    warning_avail_percent: float = Field(default=10.0, gt=0, lt=100)
    critical_avail_percent: float = Field(default=5.0, ge=0, lt=100)
    mount_points: Regex = Field(default=None, description="regex; only these mountpoints")


class MemoryCheck(LevelCheck):
    _levels = ("warning_available_percent", "critical_available_percent")
    _low_is_bad = True
    _why = "less free memory is worse"
    for_: Duration | None = Field(default=300.0, alias="for")
    warning_available_percent: float = Field(default=10.0, gt=0, lt=100)
    critical_available_percent: float = Field(default=5.0, ge=0, lt=100)


class CpuCheck(LevelCheck):
    _levels = ("warning_percent", "critical_percent")
    _low_is_bad = False
    for_: Duration | None = Field(default=900.0, alias="for")
    warning_percent: float = Field(default=90.0, gt=0, le=100)
    critical_percent: float = Field(default=98.0, gt=0, le=100)


class ServicesCheck(ThresholdCheck):
    severity: Literal["warning", "critical"] = "critical"
    ignore: Regex = Field(default=None, description="regex of unit/service names to ignore")


class CollectorHealthCheck(ThresholdCheck):
    failures: int = Field(default=3, ge=1, description="consecutive failed runs before an incident")
    severity: Literal["warning", "critical"] = "warning"


class ChecksSection(Strict):
    filesystem: FilesystemCheck = Field(default_factory=FilesystemCheck)
    memory: MemoryCheck = Field(default_factory=MemoryCheck)
    cpu: CpuCheck = Field(default_factory=CpuCheck)
    services: ServicesCheck = Field(default_factory=ServicesCheck)
    collectors: CollectorHealthCheck = Field(default_factory=CollectorHealthCheck)


class Config(Strict):
    """The whole file. ``collectors`` is validated per collector by the loader."""

    agent: AgentSection = Field(default_factory=AgentSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    state: StateSection = Field(default_factory=StateSection)
    audit: AuditSection = Field(default_factory=AuditSection)
    tenants: dict[str, Tenant] = Field(default_factory=dict)
    profiles: dict[str, Profile] = Field(default_factory=dict, description="service profiles tenants refer to")
    collectors: dict[str, Any] = Field(default_factory=dict)
    checks: ChecksSection = Field(default_factory=ChecksSection)
    backups: BackupsSection = Field(default_factory=BackupsSection)
    calendar: CalendarSection = Field(default_factory=CalendarSection)
    smtp: SmtpSettings | None = Field(default=None, description="outgoing mail: notices to referents")
    updates: UpdatesSection = Field(default_factory=UpdatesSection)
    restore_tests: RestoreTestsSection = Field(default_factory=RestoreTestsSection)
    hosts: dict[str, HostConfig] = Field(
        default_factory=dict, description="remote hosts: polled by farm mode, targets of playbooks and restore tests")
    farm: FarmSection = Field(default_factory=FarmSection)
    probes: ProbesSection = Field(default_factory=ProbesSection,
                                  description="service probes (HTTP(S), TCP, ICMP, DNS) of what the contracts cover")
    history: HistorySection = Field(default_factory=HistorySection,
                                    description="every host's daily rows for the yearly report: how long kept")
    tickets: TicketsSection = Field(default_factory=TicketsSection)
    status_page: StatusPageSection = Field(default_factory=StatusPageSection,
                                           description="the page at / and /tenant/ID, and who sees which tenant")
    reports: ReportsSection = Field(default_factory=ReportsSection,
                                    description="the provider's name in the reports, and their retries")

    @model_validator(mode="before")
    @classmethod
    def _hoist_update_hosts(cls, data: Any) -> Any:
        """Before farm mode, hosts sat under ``updates.hosts``; such configs keep working unchanged."""
        if not isinstance(data, dict) or not isinstance(data.get("updates"), dict):
            return data
        if "hosts" not in data["updates"]:
            return data
        legacy = data["updates"]["hosts"] or {}
        hosts = data.get("hosts") or {}
        if not isinstance(legacy, dict) or not isinstance(hosts, dict):
            return data  # the field validators report the wrong type
        clash = sorted(set(legacy) & set(hosts))
        if clash:
            raise ValueError(f"host {clash[0]!r} is defined both under hosts: and under updates.hosts:; keep it "
                             "only under hosts: (updates.hosts is the older place for the same registry)")
        updates = {k: v for k, v in data["updates"].items() if k != "hosts"}
        return {**data, "hosts": {**hosts, **legacy}, "updates": updates}

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: dict) -> dict:
        return check_names(value, "host names")

    def polled_hosts(self) -> dict[str, HostConfig]:
        """The hosts farm mode polls, by name."""
        return {name: host for name, host in self.hosts.items() if host.polled} if self.farm.enabled else {}

    def tenant_ids(self) -> list[str]:
        """Defined tenants, or the implicit default tenant of a single-comune install."""
        return sorted(self.tenants) or [DEFAULT_TENANT]
