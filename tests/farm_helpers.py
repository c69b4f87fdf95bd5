"""Snapshots and poll results built in code, for the farm tests that do not need a host."""

from __future__ import annotations

import time

from custode.agent.farm.poller import PollResult
from custode.agent.farm.snapshot import (
    Antivirus,
    DiskHealth,
    FailedService,
    Filesystem,
    HostSnapshot,
    OsInfo,
    UpdateStatus,
)
from custode.agent.farm.targets import Target
from custode.agent.transports.config import HostConfig, SshOptions, WinrmOptions

GIB = 1024 ** 3


def linux_target(name: str, tenant: str = "crema", **labels: str) -> Target:
    return Target(name, tenant, HostConfig(address=f"{name}.farm.lan", transport="ssh", ssh=SshOptions()),
                  300.0, 60.0, labels)


def windows_target(name: str, tenant: str = "crema") -> Target:
    return Target(name, tenant, HostConfig(address=f"{name}.farm.lan", transport="winrm",
                                           winrm=WinrmOptions(user="custode")), 300.0, 60.0, {})


def linux_snapshot(*, now: float | None = None, root_avail: float = 40 * GIB, failed: tuple[str, ...] = (),
                   pending: int | None = 0, last_update_days: float = 3, disks_ok: bool = True) -> HostSnapshot:
    now = time.time() if now is None else now
    return HostSnapshot(
        os=OsInfo("linux", "Debian GNU/Linux 12 (bookworm)", "12", kernel="6.1.0-26-amd64"),
        time=now, boot_time=now - 86400, cpu_count=2,
        cpu_seconds={("0", "user"): 100.0, ("0", "idle"): 900.0, ("1", "user"): 50.0, ("1", "idle"): 950.0},
        memory_total_bytes=8 * GIB, memory_available_bytes=6 * GIB, swap_total_bytes=GIB, swap_free_bytes=GIB,
        load=(0.5, 0.4, 0.3),
        filesystems=(Filesystem("/", "/dev/sda1", "ext4", 100 * GIB, root_avail, root_avail + 5 * GIB),),
        failed_services=tuple(FailedService(n, "systemd", state="failed") for n in failed),
        updates=None if pending is None else UpdateStatus(pending, 0, False, now - last_update_days * 86400,
                                                          tuple(f"pkg{i}" for i in range(min(pending, 3)))),
        disks=(DiskHealth("/dev/sda", disks_ok, "PASSED" if disks_ok else "FAILED!", "ST4000"),))


def windows_snapshot(*, now: float | None = None, defender_on: bool = True, c_free: float = 50 * GIB,
                     build: str = "17763", name: str = "Microsoft Windows Server 2019 Standard",
                     version: str = "10.0.17763", pending: int = 0, last_update_days: float = 10) -> HostSnapshot:
    now = time.time() if now is None else now
    return HostSnapshot(
        os=OsInfo("windows", name, version, build=build, server=True), time=now, boot_time=now - 3600,
        cpu_count=4, cpu_busy_ratio=0.25, memory_total_bytes=16 * GIB, memory_available_bytes=4 * GIB,
        filesystems=(Filesystem("C:", "C:", "NTFS", 100 * GIB, c_free, c_free, "Sistema"),),
        failed_services=(),
        updates=UpdateStatus(pending, min(pending, 5), False, now - last_update_days * 86400),
        antivirus=(Antivirus("Microsoft Defender", defender_on, defender_on, now - 3600),),
        disks=(DiskHealth("PhysicalDisk0", True, "Healthy"),))


def up(target: Target, snapshot: HostSnapshot, busy: float | None = 0.2, at: float | None = None) -> PollResult:
    return PollResult(target, time.time() if at is None else at, 0.3, snapshot, cpu_busy_ratio=busy,
                      included_updates=True)


def down(target: Target, error: str = "no answer from x:22 within 10 s (connect_timeout)",
         at: float | None = None) -> PollResult:
    return PollResult(target, time.time() if at is None else at, 10.0, None, error=error)
