"""The ``snmp_devices`` table: what a device's previous poll left that its next one is judged against.

A reboot is sysUpTime going back, which only a comparison with the last boot
time can tell; keeping that boot time in the state DB means a reboot during a
restart of Custode (or between two runs of ``custode farm poll``) is still seen.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DeviceMemory:
    host: str
    boot_time: float | None
    """Unix time the device last (re)started, as the poll worked out from sysUpTime."""
    uptime_seconds: float | None
    rebooted_at: float | None = None
    """When the last reboot seen happened (the new boot time); None: never seen one."""
    sys_name: str = ""
    sys_descr: str = ""
    interfaces: dict[str, int] = field(default_factory=dict)
    """Watched interface label -> polls in a row that saw it down (0: up at the last poll)."""
    updated_at: float = 0.0


def load(db: sqlite3.Connection, host: str) -> DeviceMemory | None:
    """The device's row, or None for a device never polled."""
    row = db.execute("SELECT * FROM snmp_devices WHERE host = ?", (host,)).fetchone()
    if row is None:
        return None
    return DeviceMemory(row["host"], row["boot_time"], row["uptime_seconds"], row["rebooted_at"], row["sys_name"],
                        row["sys_descr"], {str(k): int(v) for k, v in json.loads(row["interfaces"] or "{}").items()},
                        row["updated_at"])


def save(db: sqlite3.Connection, memory: DeviceMemory) -> None:
    db.execute(
        "INSERT INTO snmp_devices(host, boot_time, uptime_seconds, rebooted_at, sys_name, sys_descr, interfaces, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(host) DO UPDATE SET boot_time = excluded.boot_time, "
        "uptime_seconds = excluded.uptime_seconds, rebooted_at = excluded.rebooted_at, "
        "sys_name = excluded.sys_name, sys_descr = excluded.sys_descr, interfaces = excluded.interfaces, "
        "updated_at = excluded.updated_at",
        (memory.host, memory.boot_time, memory.uptime_seconds, memory.rebooted_at, memory.sys_name,
         memory.sys_descr, json.dumps(memory.interfaces, sort_keys=True), memory.updated_at))


def forget(db: sqlite3.Connection, hosts: list[str]) -> None:
    """Devices removed from the config."""
    db.executemany("DELETE FROM snmp_devices WHERE host = ?", [(h,) for h in hosts])

