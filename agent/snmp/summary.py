"""The few facts of a device that ``custode status``, ``custode farm list`` and ``farm poll`` show."""

from __future__ import annotations

from typing import Any

from custode.agent.snmp.device import IF_UP, DeviceSnapshot
from custode.agent.snmp.options import SnmpOptions


def device_summary(device: DeviceSnapshot, options: SnmpOptions | None) -> dict[str, Any]:
    """``os`` is the device's sysDescr (first line), like a server's operating system in the same columns."""
    descr = device.system.descr.strip().splitlines()[0] if device.system.descr.strip() else ""
    summary: dict[str, Any] = {"os": descr[:80], "device": True, "problems": list(device.problems)[:10]}
    if device.system.name:
        summary["sys_name"] = device.system.name
    if device.uptime_seconds is not None:
        summary["uptime_seconds"] = round(device.uptime_seconds)
    if device.interfaces is not None:
        summary["interfaces"] = len(device.interfaces)
        watched = options.watch_interfaces if options else []
        down = [i.label for i in device.interfaces
                if any(w.matches(i.name, i.descr, i.alias) for w in watched)
                and i.admin_status == IF_UP and i.oper_status not in (None, IF_UP)]
        if down:
            summary["watched_down"] = down[:10]
    if device.ups is not None:
        summary["ups_on_battery"] = device.ups.on_battery
        charge = device.ups.charge_percent
        if charge is not None:
            summary["ups_charge_percent"] = charge
    return summary
