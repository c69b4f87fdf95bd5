"""The MIBs a UPS card may speak, and how each says the few facts Custode judges.

RFC 1628's UPS-MIB is the standard (Riello NetMan, Socomec, Vertiv, Eaton's
newer cards, most others); APC's cards answer only their PowerNet-MIB and
Eaton's older ConnectUPS cards XUPS-MIB. Each MIB is one :class:`UpsMib`
registered in :data:`UPS_MIBS`: its objects (:mod:`custode.agent.snmp.oids`),
the sysObjectID prefix of the devices asked for it, and how its values say
"on battery", the battery's state, the run time and charge left. The poll
(:mod:`custode.agent.snmp.client`), the metrics and the checks only go
through this table, so a further vendor MIB is one entry here and its objects
in ``oids``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from custode.agent.snmp import oids
from custode.agent.snmp.oids import MibObject

Values = Mapping[str, float]

TICKS_PER_SECOND = 100
UPS_MIB = "UPS-MIB"
POWERNET_MIB = "PowerNet-MIB"
XUPS_MIB = "XUPS-MIB"

BATTERY_UNKNOWN, BATTERY_NORMAL, BATTERY_LOW, BATTERY_DEPLETED = 1, 2, 3, 4
"""The battery states Custode judges: UPS-MIB's upsBatteryStatus numbers (PowerNet-MIB's agree, with
batteryInFaultCondition as 4)."""


def _none(_values: Values) -> None:
    return None


def _scaled(name: str, factor: float) -> Callable[[Values], float | None]:
    def read(values: Values) -> float | None:
        value = values.get(name)
        return None if value is None else value * factor
    return read


def _int(name: str) -> Callable[[Values], int | None]:
    def read(values: Values) -> int | None:
        value = values.get(name)
        return None if value is None else int(value)
    return read


@dataclass(frozen=True)
class UpsMib:
    name: str
    scalars: tuple[MibObject, ...]
    """The MIB's scalars Custode reads (one GET) and publishes under their own names."""
    manufacturer: MibObject | None
    model: MibObject | None
    """Identity strings, published as labels as snmp_exporter does."""
    on_battery: Callable[[Values], bool | None]
    battery_status: Callable[[Values], int | None]
    runtime_seconds: Callable[[Values], float | None]
    charge_percent: Callable[[Values], float | None]
    seconds_on_battery: Callable[[Values], float | None]
    needs_replacing: Callable[[Values], bool] = lambda _values: False
    enterprise: str | None = None
    """sysObjectID prefix of the devices asked for this MIB (None: every device, the standard's)."""
    battery_words: Mapping[int, str] | None = None

    def asked_of(self, object_id: str) -> bool:
        return self.enterprise is None or object_id.startswith(self.enterprise + ".")


# --- UPS-MIB (RFC 1628) -----------------------------------------------------------------------------------

UPS_OUTPUT_BATTERY = 5
"""upsOutputSource: other(1), none(2), normal(3), bypass(4), battery(5), booster(6), reducer(7)."""


def _rfc1628_on_battery(values: Values) -> bool | None:
    source, seconds = values.get("upsOutputSource"), values.get("upsSecondsOnBattery")
    if source is None and seconds is None:
        return None
    return source == UPS_OUTPUT_BATTERY or bool(seconds and seconds > 0)


RFC1628 = UpsMib(
    UPS_MIB, oids.UPS_SCALARS, oids.UPS_IDENT_MANUFACTURER, oids.UPS_IDENT_MODEL, _rfc1628_on_battery,
    _int("upsBatteryStatus"),
    _scaled("upsEstimatedMinutesRemaining", 60), _scaled("upsEstimatedChargeRemaining", 1),
    _scaled("upsSecondsOnBattery", 1), battery_words={1: "unknown", 2: "normal", 3: "low", 4: "depleted"})

# --- PowerNet-MIB (APC) -------------------------------------------------------------------------------------

APC_OUTPUT_ON_BATTERY = 3
APC_OUTPUT_SLEEPING_UNTIL_POWER_RETURN = 11
"""upsBasicOutputStatus: onBattery(3); sleepingUntilPowerReturn(11) is the UPS off after a power cut that emptied
its battery, waiting for the mains: the load is off and the mains still out."""
APC_BATTERY_NEEDS_REPLACING = 2


def _apc_on_battery(values: Values) -> bool | None:
    status = values.get("upsBasicOutputStatus")
    return None if status is None else status in (APC_OUTPUT_ON_BATTERY, APC_OUTPUT_SLEEPING_UNTIL_POWER_RETURN)


def _apc_charge(values: Values) -> float | None:
    """upsAdvBatteryCapacity, else upsHighPrecBatteryCapacity in tenths (cards that have only that one)."""
    capacity, tenths = values.get("upsAdvBatteryCapacity"), values.get("upsHighPrecBatteryCapacity")
    return capacity if capacity is not None or tenths is None else tenths / 10


POWERNET = UpsMib(
    POWERNET_MIB, oids.APC_SCALARS, None, oids.APC_IDENT_MODEL, _apc_on_battery, _int("upsBasicBatteryStatus"),
    _scaled("upsAdvBatteryRunTimeRemaining", 1 / TICKS_PER_SECOND), _apc_charge,
    _scaled("upsBasicBatteryTimeOnBattery", 1 / TICKS_PER_SECOND),
    needs_replacing=lambda values: values.get("upsAdvBatteryReplaceIndicator") == APC_BATTERY_NEEDS_REPLACING,
    enterprise=oids.APC_ENTERPRISE, battery_words={1: "unknown", 2: "normal", 3: "low", 4: "in fault"})

# --- XUPS-MIB (Eaton / Powerware) -----------------------------------------------------------------------------

XUPS_OUTPUT_BATTERY = 5


def _xups_on_battery(values: Values) -> bool | None:
    source = values.get("xupsOutputSource")
    return None if source is None else source == XUPS_OUTPUT_BATTERY


XUPS = UpsMib(
    XUPS_MIB, oids.XUPS_SCALARS, oids.XUPS_IDENT_MANUFACTURER, oids.XUPS_IDENT_MODEL, _xups_on_battery,
    _none, _scaled("xupsBatTimeRemaining", 1), _scaled("xupsBatCapacity", 1), _none,
    enterprise=oids.EATON_ENTERPRISE)
"""XUPS-MIB has no battery-low state of its own (its alarm table has one): low is judged by the run time left."""

UPS_MIBS: dict[str, UpsMib] = {mib.name: mib for mib in (RFC1628, POWERNET, XUPS)}
VENDOR_MIBS: tuple[UpsMib, ...] = (POWERNET, XUPS)
"""Asked, in this order, of a device of their vendor that does not answer UPS-MIB."""
