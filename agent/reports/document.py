"""The report as data: every figure a renderer prints, already computed, with no wording of its own.

The builder (:mod:`custode.agent.reports.data`) fills these records from the
state DB; the renderers (HTML, PDF, CSV) only lay them out and translate the
fixed words (``it``/``en``). Keeping the two apart lets the figures be tested
against a scenario without parsing a PDF, and a renderer be tested on a
document written by hand. Times are aware datetimes in Europe/Rome; sizes are
bytes; percentages are 0-100 floats; ``None`` means "no data", never zero.
``as_json()`` gives the JSON form (ISO 8601 times) used by ``--format json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

ReportKind = Literal["quarterly", "yearly"]


class Light(StrEnum):
    """A traffic light of the summary."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    NONE = "none"
    """Nothing to judge (no data, or the comune did not buy that service)."""


@dataclass(frozen=True)
class SummaryLight:
    area: Literal["backups", "availability", "security", "service_levels", "updates", "capacity", "network"]
    light: Light
    values: dict[str, Any] = field(default_factory=dict)
    """The figures behind the light, for the renderer's sentence, e.g. {"nights_failed": 3, "jobs": 3}."""


# --- backups -------------------------------------------------------------------------------------

BackupOutcome = Literal["success", "warning", "failure", "missing", "not_due"]


@dataclass(frozen=True)
class BackupDay:
    day: date
    outcome: BackupOutcome
    reported_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class BackupJobHistory:
    job: str
    software: str | None
    schedule: str
    """The cron expression, as configured."""
    days: tuple[BackupDay, ...]
    """One per day of the period on which the job was due (``not_due`` days may be left out)."""

    def count(self, outcome: BackupOutcome) -> int:
        return sum(1 for d in self.days if d.outcome == outcome)


@dataclass(frozen=True)
class RestoreTestRecord:
    set_name: str
    finished_at: datetime
    passed: bool
    files_checked: int
    files_verified: int
    mismatches: int
    restored_bytes: int
    snapshot_time: datetime | None
    certificate_id: str
    summary: str


@dataclass(frozen=True)
class CoveredPath:
    set_name: str
    path: str
    protected: bool
    reason: str
    size_bytes: int | None


@dataclass(frozen=True)
class BackupSection:
    jobs: tuple[BackupJobHistory, ...] = ()
    restore_tests: tuple[RestoreTestRecord, ...] = ()
    paths: tuple[CoveredPath, ...] = ()
    """Backed-up and unprotected folders (the yearly report lists them; the quarterly counts them)."""


# --- servers: availability, capacity, security ---------------------------------------------------

@dataclass(frozen=True)
class Outage:
    host: str
    start: datetime
    end: datetime | None
    """None: still down at the end of the period."""
    seconds: float
    summary: str


@dataclass(frozen=True)
class DiskTrend:
    mount: str
    size_bytes: int
    used_percent_start: float | None
    used_percent_end: float | None
    used_percent_max: float | None
    full_by: date | None
    """When it fills at the period's rate (least squares over the daily peaks); None when not filling."""
    daily_used_percent: tuple[tuple[date, float], ...] = ()
    """Daily peak used % for the chart."""


@dataclass(frozen=True)
class ServerRecord:
    host: str
    os: str | None
    source: Literal["farm", "agent"]
    availability_percent: float | None
    """Share of the period's polls (farm) or collection cycles (agent) that reached the host."""
    days_with_data: int
    cpu_avg_percent: float | None
    cpu_max_percent: float | None
    memory_avg_percent: float | None
    memory_max_percent: float | None
    daily_cpu: tuple[tuple[date, float, float], ...] = ()
    """(day, average, peak) for the chart."""
    daily_memory: tuple[tuple[date, float, float], ...] = ()
    disks: tuple[DiskTrend, ...] = ()
    antivirus: str | None = None
    """Product and state in words the builder takes from the last snapshot, e.g. "Windows Defender, active"."""
    antivirus_signature_age_days: float | None = None
    updates_pending: int | None = None
    updates_security_pending: int | None = None
    last_update_installed: datetime | None = None
    os_supported: bool | None = None
    """False: an operating system its vendor no longer supports."""
    event_errors: int | None = None
    hardware_problems: tuple[str, ...] = ()
    antivirus_active: bool | None = None
    """At the end of the period (the last day with antivirus data): False when a poll found no active product."""
    antivirus_days_inactive: int = 0
    """Days of the period on which some poll found no active antivirus."""
    os_end_of_support: date | None = None
    """When the vendor's support of the operating system ends (or ended), where Custode knows it."""
    unhealthy_disk_days: int = 0
    """Days on which a disk reported a health problem (SMART, storage pool)."""


@dataclass(frozen=True)
class ServersSection:
    servers: tuple[ServerRecord, ...] = ()
    outages: tuple[Outage, ...] = ()


# --- network: SNMP devices and service probes -----------------------------------------------------

NetworkEventKind = Literal["outage", "interface_down", "ups", "probe_down"]


@dataclass(frozen=True)
class NetworkEvent:
    """One incident of a device or probe, cut to the period."""

    subject: str
    """The device (its name under ``hosts:``) or the probe."""
    kind: NetworkEventKind
    start: datetime
    end: datetime | None
    """None: still going on at the end of the period."""
    seconds: float
    summary: str
    detail: str = ""
    """The interface (``Gi1/0/48 (uplink fibra)``) of an interface down, ``battery_low`` for a UPS event that
    reached the critical battery level; empty otherwise."""


def _total(events: tuple[NetworkEvent, ...]) -> float:
    return round(sum(e.seconds for e in events), 3)


@dataclass(frozen=True)
class DeviceRecord:
    """A network device (``transport: snmp``): a switch, router, firewall or UPS."""

    host: str
    role: str | None
    """The host's ``labels.role`` (``switch``, ``firewall``, ``ups``...), as configured."""
    site: str | None
    """The host's ``labels.site``."""
    description: str | None
    """sysDescr as the polls recorded it (its first 80 characters)."""
    availability_percent: float | None
    """Share of the period's polls the device answered."""
    days_with_data: int
    outages: tuple[NetworkEvent, ...] = ()
    reboots: tuple[datetime, ...] = ()
    """When the device booted, for each reboot in the period."""
    interface_downs: tuple[NetworkEvent, ...] = ()
    """Watched interfaces that went down."""
    ups_events: tuple[NetworkEvent, ...] = ()
    """The UPS ran on battery (or its battery was low)."""

    @property
    def outage_seconds(self) -> float:
        return _total(self.outages)

    @property
    def interface_down_seconds(self) -> float:
        return _total(self.interface_downs)

    @property
    def interface_down_longest_seconds(self) -> float | None:
        return max((e.seconds for e in self.interface_downs), default=None)

    @property
    def ups_seconds(self) -> float:
        return _total(self.ups_events)


@dataclass(frozen=True)
class ProbeDayFigures:
    """One probe's day, for the CSV detail."""

    day: date
    probes: int
    successes: int
    slow: int
    latency_avg_seconds: float | None
    latency_max_seconds: float | None
    cert_expires_at: datetime | None


@dataclass(frozen=True)
class ProbeRecord:
    """A service probe (HTTPS portal, hosted platform, the Internet link), like blackbox_exporter's."""

    name: str
    kind: str
    """``http``, ``tcp``, ``icmp``, ``dns``... as the probe is configured."""
    target: str
    """What is probed: the URL, host or address."""
    availability_percent: float | None
    """successes / probes over the period."""
    probes: int
    successes: int
    latency_avg_seconds: float | None
    """The period's mean: the probes' total duration over their count."""
    latency_median_seconds: float | None
    """The median of the daily means: a few bad days do not move it, as they move the mean."""
    latency_max_seconds: float | None
    slow_days: int
    """Days with at least one answer slower than the probe's limit."""
    cert_expires_at: datetime | None
    """The certificate's expiry as the last probe of the period saw it (None: no TLS)."""
    cert_days_left: float | None
    """Days from the end of the period (or now, while it runs) to ``cert_expires_at``; negative: expired."""
    downs: tuple[NetworkEvent, ...] = ()
    errors: tuple[tuple[str, int], ...] = ()
    """The commonest failure texts of the period with their counts, commonest first (at most five)."""
    days: tuple[ProbeDayFigures, ...] = ()

    @property
    def down_seconds(self) -> float:
        return _total(self.downs)


@dataclass(frozen=True)
class NetworkSection:
    devices: tuple[DeviceRecord, ...] = ()
    probes: tuple[ProbeRecord, ...] = ()
    watched: bool = False
    """The comune has network devices or probes (configured, or recorded in the period): only then does the
    report have a network section and a ``network`` light."""


# --- updates and tickets -----------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowRecord:
    window: str
    application: str
    start: datetime
    outcome: Literal["succeeded", "rolled_back", "failed", "interrupted", "skipped", "not_run"]
    reason: str | None = None
    """Why skipped (the holiday, the closure) or what failed."""
    announced_at: datetime | None = None
    trigger: Literal["scheduled", "manual", "now"] | None = None
    """How the run started (``now``: an urgent run outside the window); None when nothing ran."""
    run_id: int | None = None


@dataclass(frozen=True)
class UpdatesSection:
    windows: tuple[WindowRecord, ...] = ()


@dataclass(frozen=True)
class LevelFigures:
    """One service level over the period, from :mod:`custode.agent.service_levels.report`."""

    level: str
    label: str
    opened: int
    take_charge_within: int
    take_charge_late: int
    resolved_within: int
    resolved_late: int
    still_open: int
    threshold_percent: float | None
    met: bool | None
    penalty_euros_min: float
    penalty_euros_max: float


@dataclass(frozen=True)
class TicketRecord:
    ref: str | None
    level: str
    subject: str
    opened_at: datetime
    taken_at: datetime | None
    resolved_at: datetime | None
    within_target: bool | None


@dataclass(frozen=True)
class TicketsSection:
    contract: str | None = None
    levels: tuple[LevelFigures, ...] = ()
    tickets: tuple[TicketRecord, ...] = ()


# --- the whole report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    kind: ReportKind
    period: str
    """``2026Q4`` or ``2026``."""
    period_start: date
    period_end: date
    """Last day included."""
    tenant: str
    tenant_name: str
    provider_name: str
    language: Literal["it", "en"]
    generated_at: datetime
    features: tuple[str, ...]
    """The services the comune bought (its profile); sections of services it did not buy say so."""
    summary: tuple[SummaryLight, ...]
    backups: BackupSection
    servers: ServersSection
    updates: UpdatesSection
    tickets: TicketsSection
    empty: bool
    """Nothing at all was recorded for the tenant in the period: the report says so instead of empty tables."""
    network: NetworkSection = field(default_factory=NetworkSection)
    """Network devices and service probes (last, with a default: documents written before it still build)."""

    @property
    def has_network(self) -> bool:
        """The comune has network devices or probes: only then has the report their section, light and files."""
        return self.network.watched or any(s.area == "network" for s in self.summary)

    def as_json(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
