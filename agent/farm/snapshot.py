"""What one poll of a remote host found, whatever its operating system.

The Linux shell probe and the Windows PowerShell probe both end in a
``HostSnapshot``; metrics, checks, incidents, ``custode status`` and the daily
aggregates read only this, so a fact is named and judged the same way on every
host. ``None`` always means "the host did not say" (a section failed, a tool
is missing, not the host's business), never zero: a check must not judge
what was not measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OsFamily = Literal["linux", "windows"]


@dataclass(frozen=True)
class OsInfo:
    family: OsFamily
    name: str
    """As people read it: ``Debian GNU/Linux 12 (bookworm)``, ``Microsoft Windows Server 2019 Standard``."""
    version: str = ""
    """``12``, ``10.0.17763``, ``6.1.7601`` (Windows: major.minor.build)."""
    build: str = ""
    """Windows build number (``17763``); empty on Linux."""
    kernel: str = ""
    """``uname -r`` on Linux; empty on Windows."""
    server: bool | None = None
    """Windows: a server SKU (ProductType 2 or 3); None on Linux."""


@dataclass(frozen=True)
class Filesystem:
    mountpoint: str
    """``/srv`` on Linux, the drive ``C:`` on Windows."""
    device: str
    fstype: str
    size_bytes: float
    avail_bytes: float
    """Usable by an ordinary user (Linux ``df`` Avail; Windows FreeSpace)."""
    free_bytes: float
    """Including blocks reserved for root (Linux); equals ``avail_bytes`` on Windows."""
    label: str = ""
    """Windows volume name; empty on Linux."""


@dataclass(frozen=True)
class FailedService:
    name: str
    manager: Literal["systemd", "windows"]
    display_name: str = ""
    state: str = ""
    """systemd: ``failed``; Windows: ``Stopped``, ``StartPending``…"""


@dataclass(frozen=True)
class DiskHealth:
    device: str
    """``/dev/sda`` or the Windows physical disk's friendly name."""
    healthy: bool | None
    status: str = ""
    """What the tool said: ``PASSED``, ``Healthy``, ``Warning``, ``Unhealthy``, ``Pred Fail``…"""
    model: str = ""


@dataclass(frozen=True)
class UpdateStatus:
    pending: int | None = None
    """Updates the package manager / Windows Update offers and are not installed."""
    security: int | None = None
    """Of which security updates (Linux security origin; Windows MsrcSeverity set or category Security)."""
    reboot_required: bool | None = None
    last_installed: float | None = None
    """Unix time the most recent update was installed."""
    titles: tuple[str, ...] = ()
    """A few pending updates by name (at most 20), for the incident text."""


@dataclass(frozen=True)
class Antivirus:
    product: str
    """``Microsoft Defender`` or the Security Center product's display name."""
    enabled: bool | None
    realtime: bool | None = None
    signature_updated: float | None = None
    """Unix time of the signatures in use."""
    source: Literal["defender", "security_center"] = "defender"

    @property
    def active(self) -> bool:
        """On, with real-time protection not reported off: what "the host has an antivirus" means."""
        return bool(self.enabled) and self.realtime is not False


@dataclass(frozen=True)
class LogEvent:
    time: float
    source: str
    level: Literal["critical", "error"]
    event_id: int
    message: str
    """First 300 characters."""


@dataclass(frozen=True)
class EventSummary:
    """Critical and error events of the Windows System log over the last ``hours``."""

    hours: int = 24
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    """(source, level) -> count; level ``critical`` or ``error``."""
    latest: tuple[LogEvent, ...] = ()
    """The newest few (at most 10), newest first."""


@dataclass(frozen=True)
class HostSnapshot:
    os: OsInfo
    time: float
    """The host's own clock, Unix time: a large skew from ours is worth knowing."""
    boot_time: float | None = None
    cpu_count: int | None = None
    cpu_seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    """Linux: (cpu, mode) -> seconds since boot, like node_cpu_seconds_total. Empty on Windows."""
    cpu_busy_ratio: float | None = None
    """Windows: processor load 0..1 measured by the probe. Linux: None (worked out from two polls)."""
    memory_total_bytes: float | None = None
    memory_available_bytes: float | None = None
    swap_total_bytes: float | None = None
    swap_free_bytes: float | None = None
    load: tuple[float, float, float] | None = None
    filesystems: tuple[Filesystem, ...] = ()
    failed_services: tuple[FailedService, ...] | None = None
    updates: UpdateStatus | None = None
    antivirus: tuple[Antivirus, ...] | None = None
    """None: the host did not report (Linux, or the query failed); () : it reported no product at all."""
    disks: tuple[DiskHealth, ...] | None = None
    events: EventSummary | None = None
    problems: tuple[str, ...] = ()
    """Sections the probe could not read, in words (``smartctl needs root: run Custode's account with
    sudo rights for smartctl``). Shown in status; never fatal to the poll."""

    @property
    def memory_used_percent(self) -> float | None:
        if not self.memory_total_bytes or self.memory_available_bytes is None:
            return None
        return 100 * (1 - self.memory_available_bytes / self.memory_total_bytes)


class ProbeOutputError(ValueError):
    """The probe's output could not be read at all (not our script, truncated, another shell)."""
