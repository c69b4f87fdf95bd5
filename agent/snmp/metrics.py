"""Prometheus families of one polled SNMP device, named as snmp_exporter names them.

Interfaces are exactly snmp_exporter 0.21's ``if_mib`` module: every
ifTable/ifXTable column a family of the MIB object's name (``ifHCInOctets``,
``ifOperStatus``…) with labels ``ifIndex``, ``ifAlias``, ``ifDescr``,
``ifName``; ``ifType_info{ifType="ethernetCsmacd"} 1``;
``ifPhysAddress{ifPhysAddress="00:1A:2B:3C:4D:5E"} 1``; plus ``ifNumber`` and
``sysUpTime``. UPS-MIB, APC's PowerNet-MIB, HOST-RESOURCES-MIB and the
system strings follow snmp_exporter's ``ups_mib``, ``apcups``,
``hrStorage``/``hrDevice``/``hrSystem`` and ``system`` modules; every UPS also
gets Custode's ``custode_ups_*`` (the same facts whichever MIB it speaks).
The farm adds its own labels (``tenant``, ``host``…) to
every sample. Sources of the names: :mod:`custode.agent.snmp.oids`.

Counters are published with kind ``"unknown"`` (untyped in the text format).
Custode renders with prometheus_client, whose text format names a ``counter``
family ``X`` and its samples ``X_total``; snmp_exporter's samples are plain
``ifHCInOctets``, and an untyped family keeps that exact sample name, so a
``rate(ifHCInOctets[5m])`` written for snmp_exporter works unchanged.
"""

from __future__ import annotations

from typing import Protocol

from custode.agent.snmp import oids
from custode.agent.snmp.device import DeviceSnapshot, Interface, UpsStatus
from custode.agent.snmp.oids import MibObject


class AddSample(Protocol):
    def __call__(self, name: str, documentation: str, labels: dict[str, str], value: float,
                 kind: str = "gauge") -> None: ...


def _kind(item: MibObject) -> str:
    return "unknown" if item.kind == "counter" else "gauge"


def _doc(item: MibObject) -> str:
    counter = " (a counter, published untyped to keep snmp_exporter's sample name)" if item.kind == "counter" else ""
    return f"{item.help}{counter} - {item.oid}"


def phys_address_label(address: str) -> str:
    """snmp_exporter's PhysAddress48 text: six octets, upper-case hex, zero-padded (none: ``00:00:00:00:00:00``)."""
    octets = [part for part in address.split(":") if part][:6]
    octets += ["00"] * (6 - len(octets))
    return ":".join(part.upper().zfill(2) for part in octets)


def _interface_families(add: AddSample, labels: dict[str, str], interface: Interface) -> None:
    base = {**labels, oids.IF_INDEX_LABEL: str(interface.index), "ifAlias": interface.alias,
            "ifDescr": interface.descr, "ifName": interface.name, **interface.exact}
    for item in oids.IF_METRICS:
        if item.kind == "EnumAsInfo":
            if "ifType" in interface.values:
                add("ifType_info", f"{item.help} (EnumAsInfo) - {item.oid}",
                    {**base, "ifType": interface.type_name}, 1.0)
        elif item.kind == "PhysAddress48":
            if interface.phys_address is not None:
                add(item.name, _doc(item), {**base, item.name: phys_address_label(interface.phys_address)}, 1.0)
        elif item.kind in oids.STRING_KINDS:
            if interface.specific:
                add(item.name, _doc(item), {**base, item.name: interface.specific}, 1.0)
        else:
            value = interface.values.get(item.name)
            if value is not None:
                add(item.name, _doc(item), base, value, _kind(item))


def _ups_families(add: AddSample, labels: dict[str, str], ups: UpsStatus) -> None:
    """Custode's own ``custode_ups_*``: the same facts for a UPS-MIB and a PowerNet-MIB UPS, so one alert
    rule and one dashboard panel serve both (the MIB's own families stay for snmp_exporter's dashboards)."""
    with_mib = {**labels, "mib": ups.mib}
    facts = (
        ("custode_ups_on_battery", "1 while the UPS feeds its load from the battery (mains power out).",
         None if ups.on_battery is None else float(ups.on_battery)),
        ("custode_ups_battery_status", "Battery: unknown(1), normal(2), low(3), depleted or in fault(4).",
         None if ups.battery_status is None else float(ups.battery_status)),
        ("custode_ups_battery_charge_percent", "Battery charge, percent of full.", ups.charge_percent),
        ("custode_ups_runtime_seconds", "Run time left on battery at the present load, seconds.",
         ups.runtime_seconds),
        ("custode_ups_seconds_on_battery", "Seconds since the UPS switched to battery; 0 on mains power.",
         ups.seconds_on_battery),
    )
    for name, documentation, value in facts:
        if value is not None:
            add(name, documentation, with_mib, value)
    if "upsAdvBatteryReplaceIndicator" in ups.values:
        add("custode_ups_battery_replace", "1 when the UPS says its battery needs replacing.", with_mib,
            float(ups.needs_replacing))


def add_device_families(add: AddSample, labels: dict[str, str], device: DeviceSnapshot) -> None:
    """Add the device's samples through ``add`` (farm mode's ``_Families.add``), each with ``labels`` too."""
    system = device.system
    if system.uptime_ticks is not None:
        add(oids.SYS_UP_TIME.name, _doc(oids.SYS_UP_TIME), dict(labels), float(system.uptime_ticks))
    for item, text in ((oids.SYS_DESCR, system.descr), (oids.SYS_OBJECT_ID, system.object_id),
                       (oids.SYS_NAME, system.name), (oids.SYS_LOCATION, system.location),
                       (oids.SYS_CONTACT, system.contact)):
        if text:
            add(item.name, _doc(item), {**labels, item.name: text}, 1.0)

    if device.if_number is not None:
        add(oids.IF_NUMBER.name, _doc(oids.IF_NUMBER), dict(labels), float(device.if_number))
    for interface in device.interfaces or ():
        _interface_families(add, labels, interface)

    ups = device.ups
    if ups is not None:
        for ident, text in ((ups.speaks.manufacturer, ups.manufacturer), (ups.speaks.model, ups.ident_model)):
            if ident is not None and text:
                add(ident.name, _doc(ident), {**labels, ident.name: text}, 1.0)
        for item in ups.speaks.scalars:
            value = ups.values.get(item.name)
            if value is not None:
                add(item.name, _doc(item), dict(labels), value, _kind(item))
        _ups_families(add, labels, ups)
        for rows, columns, index_label in ((ups.inputs, oids.UPS_INPUT_TABLE, oids.UPS_INPUT_INDEX_LABEL),
                                           (ups.outputs, oids.UPS_OUTPUT_TABLE, oids.UPS_OUTPUT_INDEX_LABEL)):
            for row in rows:
                index = row.get(index_label)
                if index is None:
                    continue
                row_labels = {**labels, index_label: str(int(index))}
                add(index_label, f"The line's index ({index_label}).", row_labels, index)
                for item in columns:
                    value = row.get(item.name)
                    if value is not None:
                        add(item.name, _doc(item), row_labels, value, _kind(item))

    host = device.host_resources
    if host is not None:
        if host.uptime_ticks is not None:
            add(oids.HR_SYSTEM_UPTIME.name, _doc(oids.HR_SYSTEM_UPTIME), dict(labels), float(host.uptime_ticks))
        for device_index, load in host.processor_load:
            add(oids.HR_PROCESSOR_LOAD.name, _doc(oids.HR_PROCESSOR_LOAD),
                {**labels, oids.HR_DEVICE_INDEX_LABEL: str(device_index)}, float(load))
        for storage in host.storage:
            storage_labels = {**labels, oids.HR_STORAGE_INDEX_LABEL: str(storage.index),
                              "hrStorageDescr": storage.descr, "hrStorageType": storage.type_oid}
            for item, number in ((oids.HR_STORAGE_ALLOCATION_UNITS, storage.allocation_units),
                                 (oids.HR_STORAGE_SIZE, storage.size), (oids.HR_STORAGE_USED, storage.used)):
                add(item.name, _doc(item), storage_labels, float(number))
