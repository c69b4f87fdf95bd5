"""What one SNMP poll of a device found: the shared shape metrics, checks, history and status read.

``None`` means "the device did not say" (a MIB it does not implement, a module
not asked for), never zero, as in :mod:`custode.agent.farm.snapshot`: a switch
without UPS-MIB has ``ups=None`` and no UPS check is judged on it.

Table rows keep their columns as ``values``: the snmp_exporter metric name
(``ifHCInOctets``, ``ifOperStatus``, ``upsBatteryStatus``…) to the number the
device returned, so the metrics are a loop and a new column is one line in
:mod:`custode.agent.snmp.oids`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from custode.agent.snmp.ups_mibs import (  # noqa: F401  (UPS_OUTPUT_BATTERY, POWERNET_MIB: re-exported)
    BATTERY_DEPLETED,
    BATTERY_LOW,
    POWERNET_MIB,
    UPS_MIB,
    UPS_MIBS,
    UPS_OUTPUT_BATTERY,
    XUPS_MIB,
    UpsMib,
)

TICKS_PER_SECOND = 100
"""sysUpTime and hrSystemUptime are TimeTicks: hundredths of a second."""

IF_UP = 1
IF_DOWN = 2
"""ifAdminStatus / ifOperStatus values (IF-MIB): up(1), down(2), testing(3), unknown(4), dormant(5),
notPresent(6), lowerLayerDown(7)."""


@dataclass(frozen=True)
class SystemInfo:
    """SNMPv2-MIB ``system`` group."""

    descr: str = ""
    object_id: str = ""
    """sysObjectID, dotted (the vendor's enterprise OID)."""
    name: str = ""
    location: str = ""
    contact: str = ""
    uptime_ticks: int | None = None
    """sysUpTime: hundredths of a second since the SNMP agent (re)started; wraps after 497 days."""


@dataclass(frozen=True)
class Interface:
    """One ifTable/ifXTable row, by ifIndex."""

    index: int
    name: str = ""
    """ifName (ifXTable); empty on devices without ifXTable."""
    descr: str = ""
    alias: str = ""
    """ifAlias: the description an administrator gave the port ("uplink core", "WAN Fastweb")."""
    values: dict[str, float] = field(default_factory=dict)
    """snmp_exporter metric name -> value: ifHCInOctets, ifInErrors, ifOperStatus, ifSpeed, ifHighSpeed…"""
    type_name: str = ""
    """ifType as snmp_exporter's EnumAsInfo label shows it: ``ethernetCsmacd`` (a type it has no name for: the
    number, ``"305"``); the number itself is ``values["ifType"]``."""
    phys_address: str | None = None
    """ifPhysAddress as ``aa:bb:cc:dd:ee:ff``; empty when the device gives an empty one (a loopback), None when
    it gives none at all (a row missing from the column: snmp_exporter then publishes no ifPhysAddress)."""
    specific: str = ""
    """ifSpecific (deprecated, usually ``0.0``) as a dotted OID; snmp_exporter's if_mib publishes it as a label."""
    exact: dict[str, str] = field(default_factory=dict)
    """ifName, ifDescr, ifAlias as snmp_exporter's labels show them, where they differ from the fields above:
    the text as sent, trailing NULs kept (some UPS cards pad ifDescr to 16 bytes with NULs). The fields above
    drop them, for people and for watch_interfaces; the metric labels use these, so series join with
    snmp_exporter's."""

    @property
    def admin_status(self) -> int | None:
        value = self.values.get("ifAdminStatus")
        return None if value is None else int(value)

    @property
    def oper_status(self) -> int | None:
        value = self.values.get("ifOperStatus")
        return None if value is None else int(value)

    @property
    def label(self) -> str:
        """How people name it: ifName, else ifDescr, else the index."""
        return self.name or self.descr or f"ifIndex {self.index}"


UPS_BATTERY_LOW = BATTERY_LOW
UPS_BATTERY_DEPLETED = BATTERY_DEPLETED
"""upsBatteryStatus (UPS-MIB, RFC 1628): unknown(1), batteryNormal(2), batteryLow(3), batteryDepleted(4)."""


@dataclass(frozen=True)
class UpsStatus:
    """A UPS's identity, battery and output, from UPS-MIB (RFC 1628) or a vendor's MIB (APC, Eaton).

    ``values`` keep each MIB's own object names (snmp_exporter's ``ups_mib`` or ``apcups``, XUPS-MIB's); the
    properties say the same facts alike for every MIB (:mod:`custode.agent.snmp.ups_mibs`), in the units
    people read, so the checks, the summary and Custode's ``custode_ups_*`` families judge every UPS alike.
    """

    values: dict[str, float] = field(default_factory=dict)
    """Scalars by the MIB's names: upsBatteryStatus, upsSecondsOnBattery, upsEstimatedMinutesRemaining,
    upsOutputSource… (UPS-MIB), upsBasicOutputStatus, upsAdvBatteryRunTimeRemaining… (PowerNet-MIB)."""
    model: str = ""
    """The model (with the manufacturer when given), for people."""
    outputs: tuple[dict[str, float], ...] = ()
    """upsOutputTable rows by upsOutputLineIndex order: upsOutputLineIndex, upsOutputVoltage, upsOutputPercentLoad…"""
    inputs: tuple[dict[str, float], ...] = ()
    """upsInputTable rows by upsInputLineIndex order: upsInputLineIndex, upsInputVoltage, upsInputFrequency…"""
    manufacturer: str = ""
    """The manufacturer as the UPS gives it (upsIdentManufacturer, xupsIdentManufacturer)."""
    ident_model: str = ""
    """The model as the UPS gives it (upsIdentModel, upsBasicIdentModel, xupsIdentModel)."""
    mib: str = UPS_MIB
    """Which MIB the UPS answered: ``UPS-MIB``, ``PowerNet-MIB`` or ``XUPS-MIB``."""

    @property
    def speaks(self) -> UpsMib:
        return UPS_MIBS[self.mib]

    @property
    def on_battery(self) -> bool | None:
        """The UPS feeds its load from the battery (or has run it flat and waits for the mains)."""
        return self.speaks.on_battery(self.values)

    @property
    def battery_status(self) -> int | None:
        """unknown(1), normal(2), low(3), depleted or in fault(4); None when the MIB has no such state."""
        return self.speaks.battery_status(self.values)

    @property
    def runtime_seconds(self) -> float | None:
        """Run time left on battery at the present load, seconds (whatever unit the MIB says it in)."""
        return self.speaks.runtime_seconds(self.values)

    @property
    def minutes_remaining(self) -> float | None:
        """:attr:`runtime_seconds` in minutes, as people read it (one decimal)."""
        seconds = self.runtime_seconds
        return None if seconds is None else round(seconds / 60, 1)

    @property
    def charge_percent(self) -> float | None:
        return self.speaks.charge_percent(self.values)

    @property
    def seconds_on_battery(self) -> float | None:
        return self.speaks.seconds_on_battery(self.values)

    @property
    def needs_replacing(self) -> bool:
        """The UPS itself says its battery must be replaced (PowerNet-MIB's replace indicator)."""
        return self.speaks.needs_replacing(self.values)


@dataclass(frozen=True)
class Storage:
    """One hrStorageTable row (RAM, swap, a filesystem, a flash)."""

    index: int
    descr: str
    type_oid: str
    allocation_units: int
    size: int
    """In allocation units, as the MIB gives it."""
    used: int

    @property
    def size_bytes(self) -> float:
        return float(self.size * self.allocation_units)

    @property
    def used_bytes(self) -> float:
        return float(self.used * self.allocation_units)


@dataclass(frozen=True)
class HostResources:
    """HOST-RESOURCES-MIB: uptime of the system (not of the SNMP agent), processor load, storage."""

    uptime_ticks: int | None = None
    processor_load: tuple[tuple[int, int], ...] = ()
    """(hrDeviceIndex, hrProcessorLoad percent over the last minute)."""
    storage: tuple[Storage, ...] = ()


@dataclass(frozen=True)
class DeviceSnapshot:
    system: SystemInfo
    interfaces: tuple[Interface, ...] | None = None
    """None: IF-MIB not asked for or not answered."""
    ups: UpsStatus | None = None
    host_resources: HostResources | None = None
    problems: tuple[str, ...] = ()
    """Modules the device could not answer, in words; never fatal to the poll."""
    requests: int = 0
    """SNMP requests the poll sent (GET, GETBULK), for the poll's cost."""
    if_number: int | None = None
    """ifNumber (IF-MIB): interfaces the device says it has; None when not read."""

    @property
    def uptime_seconds(self) -> float | None:
        """sysUpTime in seconds: how long the SNMP agent has run, which on a switch, router, firewall or UPS
        is how long the device has been up. A reboot is this going back (see :mod:`custode.agent.snmp.checks`);
        hrSystemUptime, where a device has it, is published but not judged, so every device is judged alike."""
        ticks = self.system.uptime_ticks
        return None if ticks is None else ticks / TICKS_PER_SECOND


class SnmpError(Exception):
    """A device could not be polled at all (no answer, wrong credentials, not SNMP); the words say which."""
