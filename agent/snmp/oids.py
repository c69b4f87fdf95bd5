"""Numeric OIDs, snmp_exporter names and enumerations of the MIBs a poll reads; no MIB files are loaded.

Metric names, types, label names and lookups are snmp_exporter's, so a
dashboard or alert written for snmp_exporter's ``if_mib`` works on Custode's
families unchanged. They were taken, as facts, from the snmp_exporter
repository (github.com/prometheus/snmp_exporter):

- ``snmp.yml`` module ``if_mib`` and ``generator/generator.yml`` at tag
  v0.21.0 (commit 0d8c3527cac0c26f1d6005b84b74413d14264c37), the version
  Debian 12 ships as prometheus-snmp-exporter and tests/test_snmp_metrics.py
  runs: walk ``interfaces`` (1.3.6.1.2.1.2) and ``ifXTable``
  (1.3.6.1.2.1.31.1.1), get sysUpTime; every column a metric named as the MIB
  object with label ``ifIndex`` plus the lookups ``ifAlias``, ``ifDescr``,
  ``ifName`` (those three are not metrics themselves); ``ifType`` as
  EnumAsInfo (``ifType_info{ifType="ethernetCsmacd"} 1``); ``ifPhysAddress``
  as PhysAddress48 and ``ifSpecific`` as OctetString (value 1, the text in a
  label of the metric's own name); the others gauge or counter as below;
- ``snmp.yml`` at commit 1d54f35992fdcfc6d3547b4d3debd0f32e2bfcac (2026-07,
  file last changed in 15ac93562c2a9ae93d3ac88ff9ec1bd59acf7378): modules
  ``ups_mib`` (UPS-MIB, RFC 1628: scalars unlabelled, ``upsInputTable`` /
  ``upsOutputTable`` rows labelled ``upsInputLineIndex`` /
  ``upsOutputLineIndex``, identity strings as labels), ``hrStorage`` (label
  ``hrStorageIndex`` plus lookups ``hrStorageDescr`` and ``hrStorageType``,
  the type as a dotted OID), ``hrDevice`` (``hrProcessorLoad`` by
  ``hrDeviceIndex``), ``hrSystem`` and ``system`` (sysDescr and the other
  strings as labels). The ``ifType`` names are that file's (IANAifType-MIB,
  a superset of v0.21.0's: five newer types at 304-308). Upstream's newer
  ``if_mib`` no longer carries sysUpTime (it moved to ``system``); Custode
  keeps v0.21.0's, which has it.

OIDs are dotted strings without a leading dot (as snmp.yml writes them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["gauge", "counter", "EnumAsInfo", "PhysAddress48", "OctetString", "DisplayString"]
"""snmp_exporter's type for the object: gauge/counter are numbers; EnumAsInfo is ``NAME_info`` with the enum's
name in label NAME, value 1; PhysAddress48/OctetString/DisplayString are value 1 with the text in label NAME."""

STRING_KINDS: frozenset[str] = frozenset({"PhysAddress48", "OctetString", "DisplayString"})


@dataclass(frozen=True)
class MibObject:
    """One MIB object: a scalar (read at ``<oid>.0``) or a table column (walked, rows by index)."""

    name: str
    """The MIB object's name, which is also snmp_exporter's metric name."""
    oid: str
    kind: Kind
    help: str
    enum: Mapping[int, str] | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.oid.split("."))

    @property
    def instance(self) -> tuple[int, ...]:
        """A scalar's instance OID (``<oid>.0``)."""
        return (*self.key, 0)


def _by_name(objects: tuple[MibObject, ...]) -> dict[str, MibObject]:
    return {item.name: item for item in objects}


# --- enumerations -----------------------------------------------------------------------------------------

IF_ADMIN_STATUS: Mapping[int, str] = {1: "up", 2: "down", 3: "testing"}
IF_OPER_STATUS: Mapping[int, str] = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant",
                                     6: "notPresent", 7: "lowerLayerDown"}
TRUTH_VALUE: Mapping[int, str] = {1: "true", 2: "false"}
IF_LINK_UP_DOWN_TRAP_ENABLE: Mapping[int, str] = {1: "enabled", 2: "disabled"}
UPS_BATTERY_STATUS: Mapping[int, str] = {1: "unknown", 2: "batteryNormal", 3: "batteryLow", 4: "batteryDepleted"}
UPS_OUTPUT_SOURCE: Mapping[int, str] = {1: "other", 2: "none", 3: "normal", 4: "bypass", 5: "battery",
                                        6: "booster", 7: "reducer"}
HR_STORAGE_TYPES: Mapping[str, str] = {
    "1.3.6.1.2.1.25.2.1.1": "hrStorageOther", "1.3.6.1.2.1.25.2.1.2": "hrStorageRam",
    "1.3.6.1.2.1.25.2.1.3": "hrStorageVirtualMemory", "1.3.6.1.2.1.25.2.1.4": "hrStorageFixedDisk",
    "1.3.6.1.2.1.25.2.1.5": "hrStorageRemovableDisk", "1.3.6.1.2.1.25.2.1.6": "hrStorageFloppyDisk",
    "1.3.6.1.2.1.25.2.1.7": "hrStorageCompactDisc", "1.3.6.1.2.1.25.2.1.8": "hrStorageRamDisk",
    "1.3.6.1.2.1.25.2.1.9": "hrStorageFlashMemory", "1.3.6.1.2.1.25.2.1.10": "hrStorageNetworkDisk",
}
"""hrStorageType values (HOST-RESOURCES-TYPES), for people: the metric label keeps the dotted OID, as snmp_exporter."""

IF_TYPES: Mapping[int, str] = {
    1: "other", 2: "regular1822", 3: "hdh1822", 4: "ddnX25", 5: "rfc877x25", 6: "ethernetCsmacd",
    7: "iso88023Csmacd", 8: "iso88024TokenBus", 9: "iso88025TokenRing", 10: "iso88026Man", 11: "starLan",
    12: "proteon10Mbit", 13: "proteon80Mbit", 14: "hyperchannel", 15: "fddi", 16: "lapb", 17: "sdlc", 18: "ds1",
    19: "e1", 20: "basicISDN", 21: "primaryISDN", 22: "propPointToPointSerial", 23: "ppp", 24: "softwareLoopback",
    25: "eon", 26: "ethernet3Mbit", 27: "nsip", 28: "slip", 29: "ultra", 30: "ds3", 31: "sip", 32: "frameRelay",
    33: "rs232", 34: "para", 35: "arcnet", 36: "arcnetPlus", 37: "atm", 38: "miox25", 39: "sonet", 40: "x25ple",
    41: "iso88022llc", 42: "localTalk", 43: "smdsDxi", 44: "frameRelayService", 45: "v35", 46: "hssi", 47: "hippi",
    48: "modem", 49: "aal5", 50: "sonetPath", 51: "sonetVT", 52: "smdsIcip", 53: "propVirtual",
    54: "propMultiplexor", 55: "ieee80212", 56: "fibreChannel", 57: "hippiInterface", 58: "frameRelayInterconnect",
    59: "aflane8023", 60: "aflane8025", 61: "cctEmul", 62: "fastEther", 63: "isdn", 64: "v11", 65: "v36",
    66: "g703at64k", 67: "g703at2mb", 68: "qllc", 69: "fastEtherFX", 70: "channel", 71: "ieee80211",
    72: "ibm370parChan", 73: "escon", 74: "dlsw", 75: "isdns", 76: "isdnu", 77: "lapd", 78: "ipSwitch", 79: "rsrb",
    80: "atmLogical", 81: "ds0", 82: "ds0Bundle", 83: "bsc", 84: "async", 85: "cnr", 86: "iso88025Dtr",
    87: "eplrs", 88: "arap", 89: "propCnls", 90: "hostPad", 91: "termPad", 92: "frameRelayMPI", 93: "x213",
    94: "adsl", 95: "radsl", 96: "sdsl", 97: "vdsl", 98: "iso88025CRFPInt", 99: "myrinet", 100: "voiceEM",
    101: "voiceFXO", 102: "voiceFXS", 103: "voiceEncap", 104: "voiceOverIp", 105: "atmDxi", 106: "atmFuni",
    107: "atmIma", 108: "pppMultilinkBundle", 109: "ipOverCdlc", 110: "ipOverClaw", 111: "stackToStack",
    112: "virtualIpAddress", 113: "mpc", 114: "ipOverAtm", 115: "iso88025Fiber", 116: "tdlc",
    117: "gigabitEthernet", 118: "hdlc", 119: "lapf", 120: "v37", 121: "x25mlp", 122: "x25huntGroup",
    123: "transpHdlc", 124: "interleave", 125: "fast", 126: "ip", 127: "docsCableMaclayer",
    128: "docsCableDownstream", 129: "docsCableUpstream", 130: "a12MppSwitch", 131: "tunnel", 132: "coffee",
    133: "ces", 134: "atmSubInterface", 135: "l2vlan", 136: "l3ipvlan", 137: "l3ipxvlan", 138: "digitalPowerline",
    139: "mediaMailOverIp", 140: "dtm", 141: "dcn", 142: "ipForward", 143: "msdsl", 144: "ieee1394", 145: "if-gsn",
    146: "dvbRccMacLayer", 147: "dvbRccDownstream", 148: "dvbRccUpstream", 149: "atmVirtual", 150: "mplsTunnel",
    151: "srp", 152: "voiceOverAtm", 153: "voiceOverFrameRelay", 154: "idsl", 155: "compositeLink",
    156: "ss7SigLink", 157: "propWirelessP2P", 158: "frForward", 159: "rfc1483", 160: "usb", 161: "ieee8023adLag",
    162: "bgppolicyaccounting", 163: "frf16MfrBundle", 164: "h323Gatekeeper", 165: "h323Proxy", 166: "mpls",
    167: "mfSigLink", 168: "hdsl2", 169: "shdsl", 170: "ds1FDL", 171: "pos", 172: "dvbAsiIn", 173: "dvbAsiOut",
    174: "plc", 175: "nfas", 176: "tr008", 177: "gr303RDT", 178: "gr303IDT", 179: "isup",
    180: "propDocsWirelessMaclayer", 181: "propDocsWirelessDownstream", 182: "propDocsWirelessUpstream",
    183: "hiperlan2", 184: "propBWAp2Mp", 185: "sonetOverheadChannel", 186: "digitalWrapperOverheadChannel",
    187: "aal2", 188: "radioMAC", 189: "atmRadio", 190: "imt", 191: "mvl", 192: "reachDSL", 193: "frDlciEndPt",
    194: "atmVciEndPt", 195: "opticalChannel", 196: "opticalTransport", 197: "propAtm", 198: "voiceOverCable",
    199: "infiniband", 200: "teLink", 201: "q2931", 202: "virtualTg", 203: "sipTg", 204: "sipSig",
    205: "docsCableUpstreamChannel", 206: "econet", 207: "pon155", 208: "pon622", 209: "bridge", 210: "linegroup",
    211: "voiceEMFGD", 212: "voiceFGDEANA", 213: "voiceDID", 214: "mpegTransport", 215: "sixToFour", 216: "gtp",
    217: "pdnEtherLoop1", 218: "pdnEtherLoop2", 219: "opticalChannelGroup", 220: "homepna", 221: "gfp",
    222: "ciscoISLvlan", 223: "actelisMetaLOOP", 224: "fcipLink", 225: "rpr", 226: "qam", 227: "lmp",
    228: "cblVectaStar", 229: "docsCableMCmtsDownstream", 230: "adsl2", 231: "macSecControlledIF",
    232: "macSecUncontrolledIF", 233: "aviciOpticalEther", 234: "atmbond", 235: "voiceFGDOS", 236: "mocaVersion1",
    237: "ieee80216WMAN", 238: "adsl2plus", 239: "dvbRcsMacLayer", 240: "dvbTdm", 241: "dvbRcsTdma",
    242: "x86Laps", 243: "wwanPP", 244: "wwanPP2", 245: "voiceEBS", 246: "ifPwType", 247: "ilan", 248: "pip",
    249: "aluELP", 250: "gpon", 251: "vdsl2", 252: "capwapDot11Profile", 253: "capwapDot11Bss",
    254: "capwapWtpVirtualRadio", 255: "bits", 256: "docsCableUpstreamRfPort", 257: "cableDownstreamRfPort",
    258: "vmwareVirtualNic", 259: "ieee802154", 260: "otnOdu", 261: "otnOtu", 262: "ifVfiType", 263: "g9981",
    264: "g9982", 265: "g9983", 266: "aluEpon", 267: "aluEponOnu", 268: "aluEponPhysicalUni",
    269: "aluEponLogicalLink", 270: "aluGponOnu", 271: "aluGponPhysicalUni", 272: "vmwareNicTeam",
    277: "docsOfdmDownstream", 278: "docsOfdmaUpstream", 279: "gfast", 280: "sdci", 281: "xboxWireless",
    282: "fastdsl", 283: "docsCableScte55d1FwdOob", 284: "docsCableScte55d1RetOob", 285: "docsCableScte55d2DsOob",
    286: "docsCableScte55d2UsOob", 287: "docsCableNdf", 288: "docsCableNdr", 289: "ptm", 290: "ghn",
    291: "otnOtsi", 292: "otnOtuc", 293: "otnOduc", 294: "otnOtsig", 295: "microwaveCarrierTermination",
    296: "microwaveRadioLinkTerminal", 297: "ieee8021axDrni", 298: "ax25", 299: "ieee19061nanocom", 300: "cpri",
    301: "omni", 302: "roe", 303: "p2pOverLan", 304: "docsCableScte25d1FwdOob", 305: "docsCableScte25d1RetOob",
    306: "docsCableScte25d2MacOob", 307: "lora", 308: "lorawan",
}
"""IANAifType names, as snmp_exporter's ``ifType_info`` label shows them (a number not listed shows as itself)."""


def if_type_name(value: int) -> str:
    """The ``ifType`` label snmp_exporter's EnumAsInfo gives: the enum's name, else the number."""
    return IF_TYPES.get(value, str(value))


# --- SNMPv2-MIB system --------------------------------------------------------------------------------------

SYS_DESCR = MibObject("sysDescr", "1.3.6.1.2.1.1.1", "DisplayString",
                      "A textual description of the device (hardware, OS, firmware).")
SYS_OBJECT_ID = MibObject("sysObjectID", "1.3.6.1.2.1.1.2", "OctetString",
                          "The vendor's authoritative identification of the device (an enterprise OID).")
SYS_UP_TIME = MibObject("sysUpTime", "1.3.6.1.2.1.1.3", "gauge",
                        "Hundredths of a second since the device's SNMP agent was (re)started.")
SYS_CONTACT = MibObject("sysContact", "1.3.6.1.2.1.1.4", "DisplayString", "Who to contact about the device.")
SYS_NAME = MibObject("sysName", "1.3.6.1.2.1.1.5", "DisplayString", "The device's administratively given name.")
SYS_LOCATION = MibObject("sysLocation", "1.3.6.1.2.1.1.6", "DisplayString", "Where the device is.")
SYSTEM: tuple[MibObject, ...] = (SYS_DESCR, SYS_OBJECT_ID, SYS_UP_TIME, SYS_CONTACT, SYS_NAME, SYS_LOCATION)

# --- IF-MIB (RFC 2863) --------------------------------------------------------------------------------------

IF_NUMBER = MibObject("ifNumber", "1.3.6.1.2.1.2.1", "gauge", "Number of network interfaces on the device.")

IF_INDEX_LABEL = "ifIndex"
IF_ALIAS = MibObject("ifAlias", "1.3.6.1.2.1.31.1.1.1.18", "DisplayString",
                     "The description an administrator gave the interface.")
IF_DESCR = MibObject("ifDescr", "1.3.6.1.2.1.2.2.1.2", "DisplayString",
                     "Textual description of the interface (vendor, product, version).")
IF_NAME = MibObject("ifName", "1.3.6.1.2.1.31.1.1.1.1", "DisplayString",
                    "The interface's name as the device's own interface calls it.")
IF_LOOKUPS: tuple[MibObject, ...] = (IF_ALIAS, IF_DESCR, IF_NAME)
"""Columns snmp_exporter turns into labels of every interface metric (in this order), not metrics."""

IF_TABLE: tuple[MibObject, ...] = (
    MibObject("ifIndex", "1.3.6.1.2.1.2.2.1.1", "gauge", "The interface's index (ifIndex)."),
    IF_DESCR,
    MibObject("ifType", "1.3.6.1.2.1.2.2.1.3", "EnumAsInfo", "The type of interface (IANAifType).", IF_TYPES),
    MibObject("ifMtu", "1.3.6.1.2.1.2.2.1.4", "gauge", "Largest packet the interface sends or receives, octets."),
    MibObject("ifSpeed", "1.3.6.1.2.1.2.2.1.5", "gauge",
              "The interface's bandwidth, bits per second (tops at 4294967295; see ifHighSpeed)."),
    MibObject("ifPhysAddress", "1.3.6.1.2.1.2.2.1.6", "PhysAddress48", "The interface's MAC address."),
    MibObject("ifAdminStatus", "1.3.6.1.2.1.2.2.1.7", "gauge",
              "Wanted state: up(1), down(2), testing(3).", IF_ADMIN_STATUS),
    MibObject("ifOperStatus", "1.3.6.1.2.1.2.2.1.8", "gauge",
              "Current state: up(1), down(2), testing(3), unknown(4), dormant(5), notPresent(6), "
              "lowerLayerDown(7).", IF_OPER_STATUS),
    MibObject("ifLastChange", "1.3.6.1.2.1.2.2.1.9", "gauge",
              "sysUpTime (hundredths of a second) when the interface last changed state."),
    MibObject("ifInOctets", "1.3.6.1.2.1.2.2.1.10", "counter", "Octets received (32-bit counter)."),
    MibObject("ifInUcastPkts", "1.3.6.1.2.1.2.2.1.11", "counter", "Unicast packets received (32-bit)."),
    MibObject("ifInNUcastPkts", "1.3.6.1.2.1.2.2.1.12", "counter", "Non-unicast packets received (deprecated)."),
    MibObject("ifInDiscards", "1.3.6.1.2.1.2.2.1.13", "counter", "Inbound packets discarded without an error."),
    MibObject("ifInErrors", "1.3.6.1.2.1.2.2.1.14", "counter", "Inbound packets with errors."),
    MibObject("ifInUnknownProtos", "1.3.6.1.2.1.2.2.1.15", "counter", "Inbound packets of an unknown protocol."),
    MibObject("ifOutOctets", "1.3.6.1.2.1.2.2.1.16", "counter", "Octets sent (32-bit counter)."),
    MibObject("ifOutUcastPkts", "1.3.6.1.2.1.2.2.1.17", "counter", "Unicast packets sent (32-bit)."),
    MibObject("ifOutNUcastPkts", "1.3.6.1.2.1.2.2.1.18", "counter", "Non-unicast packets sent (deprecated)."),
    MibObject("ifOutDiscards", "1.3.6.1.2.1.2.2.1.19", "counter", "Outbound packets discarded without an error."),
    MibObject("ifOutErrors", "1.3.6.1.2.1.2.2.1.20", "counter", "Outbound packets not sent because of errors."),
    MibObject("ifOutQLen", "1.3.6.1.2.1.2.2.1.21", "gauge", "Length of the output packet queue (deprecated)."),
    MibObject("ifSpecific", "1.3.6.1.2.1.2.2.1.22", "OctetString",
              "A reference to media-specific MIB definitions (deprecated; usually 0.0)."),
)

IF_X_TABLE: tuple[MibObject, ...] = (
    IF_NAME,
    MibObject("ifInMulticastPkts", "1.3.6.1.2.1.31.1.1.1.2", "counter", "Multicast packets received (32-bit)."),
    MibObject("ifInBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.3", "counter", "Broadcast packets received (32-bit)."),
    MibObject("ifOutMulticastPkts", "1.3.6.1.2.1.31.1.1.1.4", "counter", "Multicast packets sent (32-bit)."),
    MibObject("ifOutBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.5", "counter", "Broadcast packets sent (32-bit)."),
    MibObject("ifHCInOctets", "1.3.6.1.2.1.31.1.1.1.6", "counter", "Octets received (64-bit counter)."),
    MibObject("ifHCInUcastPkts", "1.3.6.1.2.1.31.1.1.1.7", "counter", "Unicast packets received (64-bit)."),
    MibObject("ifHCInMulticastPkts", "1.3.6.1.2.1.31.1.1.1.8", "counter", "Multicast packets received (64-bit)."),
    MibObject("ifHCInBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.9", "counter", "Broadcast packets received (64-bit)."),
    MibObject("ifHCOutOctets", "1.3.6.1.2.1.31.1.1.1.10", "counter", "Octets sent (64-bit counter)."),
    MibObject("ifHCOutUcastPkts", "1.3.6.1.2.1.31.1.1.1.11", "counter", "Unicast packets sent (64-bit)."),
    MibObject("ifHCOutMulticastPkts", "1.3.6.1.2.1.31.1.1.1.12", "counter", "Multicast packets sent (64-bit)."),
    MibObject("ifHCOutBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.13", "counter", "Broadcast packets sent (64-bit)."),
    MibObject("ifLinkUpDownTrapEnable", "1.3.6.1.2.1.31.1.1.1.14", "gauge",
              "Whether the device sends linkUp/linkDown traps for the interface: enabled(1), disabled(2).",
              IF_LINK_UP_DOWN_TRAP_ENABLE),
    MibObject("ifHighSpeed", "1.3.6.1.2.1.31.1.1.1.15", "gauge", "The interface's bandwidth, megabits per second."),
    MibObject("ifPromiscuousMode", "1.3.6.1.2.1.31.1.1.1.16", "gauge",
              "Whether the interface accepts all packets: true(1), false(2).", TRUTH_VALUE),
    MibObject("ifConnectorPresent", "1.3.6.1.2.1.31.1.1.1.17", "gauge",
              "Whether the interface has a physical connector: true(1), false(2).", TRUTH_VALUE),
    IF_ALIAS,
    MibObject("ifCounterDiscontinuityTime", "1.3.6.1.2.1.31.1.1.1.19", "gauge",
              "sysUpTime (hundredths of a second) of the last discontinuity of the interface's counters."),
)

IF_LOOKUP_NAMES: frozenset[str] = frozenset(item.name for item in IF_LOOKUPS)
IF_METRICS: tuple[MibObject, ...] = tuple(item for item in IF_TABLE + IF_X_TABLE if item.name not in IF_LOOKUP_NAMES)
"""The interface columns snmp_exporter's if_mib publishes as metrics, in walk order."""
IF_COLUMNS: dict[str, MibObject] = _by_name(IF_TABLE + IF_X_TABLE)

# --- UPS-MIB (RFC 1628), 1.3.6.1.2.1.33 ---------------------------------------------------------------------

UPS_MIB = "1.3.6.1.2.1.33"
UPS_IDENT_MANUFACTURER = MibObject("upsIdentManufacturer", "1.3.6.1.2.1.33.1.1.1", "DisplayString",
                                   "The UPS's manufacturer.")
UPS_IDENT_MODEL = MibObject("upsIdentModel", "1.3.6.1.2.1.33.1.1.2", "DisplayString", "The UPS's model.")
UPS_IDENT: tuple[MibObject, ...] = (UPS_IDENT_MANUFACTURER, UPS_IDENT_MODEL)
UPS_SCALARS: tuple[MibObject, ...] = (
    MibObject("upsBatteryStatus", "1.3.6.1.2.1.33.1.2.1", "gauge",
              "Battery: unknown(1), batteryNormal(2), batteryLow(3), batteryDepleted(4).", UPS_BATTERY_STATUS),
    MibObject("upsSecondsOnBattery", "1.3.6.1.2.1.33.1.2.2", "gauge",
              "Seconds since the UPS switched to battery; 0 when on utility power."),
    MibObject("upsEstimatedMinutesRemaining", "1.3.6.1.2.1.33.1.2.3", "gauge",
              "Estimated minutes until the battery is depleted at the present load."),
    MibObject("upsEstimatedChargeRemaining", "1.3.6.1.2.1.33.1.2.4", "gauge",
              "Estimated battery charge, percent of full."),
    MibObject("upsBatteryVoltage", "1.3.6.1.2.1.33.1.2.5", "gauge", "Battery voltage, 0.1 volt DC."),
    MibObject("upsBatteryCurrent", "1.3.6.1.2.1.33.1.2.6", "gauge", "Battery current, 0.1 ampere DC."),
    MibObject("upsBatteryTemperature", "1.3.6.1.2.1.33.1.2.7", "gauge", "Battery temperature, degrees Celsius."),
    MibObject("upsInputLineBads", "1.3.6.1.2.1.33.1.3.1", "counter",
              "Times the input went out of tolerance (a power cut, a brown-out)."),
    MibObject("upsInputNumLines", "1.3.6.1.2.1.33.1.3.2", "gauge", "Number of input lines."),
    MibObject("upsOutputSource", "1.3.6.1.2.1.33.1.4.1", "gauge",
              "Output fed from: other(1), none(2), normal(3), bypass(4), battery(5), booster(6), reducer(7).",
              UPS_OUTPUT_SOURCE),
    MibObject("upsOutputFrequency", "1.3.6.1.2.1.33.1.4.2", "gauge", "Output frequency, 0.1 hertz."),
    MibObject("upsOutputNumLines", "1.3.6.1.2.1.33.1.4.3", "gauge", "Number of output lines."),
    MibObject("upsAlarmsPresent", "1.3.6.1.2.1.33.1.6.1", "gauge", "Number of alarms present on the UPS."),
)
UPS_INPUT_INDEX_LABEL = "upsInputLineIndex"
UPS_INPUT_TABLE: tuple[MibObject, ...] = (
    MibObject("upsInputFrequency", "1.3.6.1.2.1.33.1.3.3.1.2", "gauge", "Input frequency, 0.1 hertz."),
    MibObject("upsInputVoltage", "1.3.6.1.2.1.33.1.3.3.1.3", "gauge", "Input voltage, volts RMS."),
    MibObject("upsInputCurrent", "1.3.6.1.2.1.33.1.3.3.1.4", "gauge", "Input current, 0.1 ampere RMS."),
    MibObject("upsInputTruePower", "1.3.6.1.2.1.33.1.3.3.1.5", "gauge", "Input true power, watts."),
)
UPS_OUTPUT_INDEX_LABEL = "upsOutputLineIndex"
UPS_OUTPUT_TABLE: tuple[MibObject, ...] = (
    MibObject("upsOutputVoltage", "1.3.6.1.2.1.33.1.4.4.1.2", "gauge", "Output voltage, volts RMS."),
    MibObject("upsOutputCurrent", "1.3.6.1.2.1.33.1.4.4.1.3", "gauge", "Output current, 0.1 ampere RMS."),
    MibObject("upsOutputPower", "1.3.6.1.2.1.33.1.4.4.1.4", "gauge", "Output true power, watts."),
    MibObject("upsOutputPercentLoad", "1.3.6.1.2.1.33.1.4.4.1.5", "gauge",
              "Output load, percent of the UPS's rated capacity."),
)
UPS_OBJECTS: dict[str, MibObject] = _by_name(UPS_IDENT + UPS_SCALARS + UPS_INPUT_TABLE + UPS_OUTPUT_TABLE)

# --- PowerNet-MIB (APC by Schneider Electric), 1.3.6.1.4.1.318.1.1.1 ----------------------------------------
# APC's network management cards answer their own PowerNet-MIB, not RFC 1628. Names, types and enumerations
# are snmp_exporter's ``apcups`` module (snmp.yml at commit 00db524e1f4c18d927053ea4590393d53d34ae14): every
# object a gauge named as the MIB object, TimeTicks as their raw hundredths of a second, upsCommStatus read by
# GET. upsBasicIdentModel (not in that module) is read for the model people see and published as a label.

APC_ENTERPRISE = "1.3.6.1.4.1.318"
"""sysObjectID prefix of APC devices: only they are asked for PowerNet-MIB."""
APC_BASIC_BATTERY_STATUS: Mapping[int, str] = {1: "unknown", 2: "batteryNormal", 3: "batteryLow",
                                               4: "batteryInFaultCondition"}
APC_BASIC_OUTPUT_STATUS: Mapping[int, str] = {
    1: "unknown", 2: "onLine", 3: "onBattery", 4: "onSmartBoost", 5: "timedSleeping", 6: "softwareBypass",
    7: "off", 8: "rebooting", 9: "switchedBypass", 10: "hardwareFailureBypass", 11: "sleepingUntilPowerReturn",
    12: "onSmartTrim", 13: "ecoMode", 14: "hotStandby", 15: "onBatteryTest", 16: "emergencyStaticBypass",
    17: "staticBypassStandby", 18: "powerSavingMode", 19: "spotMode", 20: "eConversion", 21: "chargerSpotmode",
    22: "inverterSpotmode"}
APC_REPLACE_INDICATOR: Mapping[int, str] = {1: "noBatteryNeedsReplacing", 2: "batteryNeedsReplacing"}
APC_INPUT_FAIL_CAUSE: Mapping[int, str] = {
    1: "noTransfer", 2: "highLineVoltage", 3: "brownout", 4: "blackout", 5: "smallMomentarySag",
    6: "deepMomentarySag", 7: "smallMomentarySpike", 8: "largeMomentarySpike", 9: "selfTest",
    10: "rateOfVoltageChange"}
APC_IDENT_MODEL = MibObject("upsBasicIdentModel", "1.3.6.1.4.1.318.1.1.1.1.1.1", "DisplayString",
                            "The UPS's model name (e.g. Smart-UPS 1500).")
APC_SCALARS: tuple[MibObject, ...] = (
    MibObject("upsBasicBatteryStatus", "1.3.6.1.4.1.318.1.1.1.2.1.1", "gauge",
              "The status of the UPS batteries: unknown(1), batteryNormal(2), batteryLow(3), "
              "batteryInFaultCondition(4).", APC_BASIC_BATTERY_STATUS),
    MibObject("upsBasicBatteryTimeOnBattery", "1.3.6.1.4.1.318.1.1.1.2.1.2", "gauge",
              "Hundredths of a second since the UPS switched to battery; 0 on mains power."),
    MibObject("upsAdvBatteryCapacity", "1.3.6.1.4.1.318.1.1.1.2.2.1", "gauge",
              "The remaining battery capacity, percent of full."),
    MibObject("upsAdvBatteryTemperature", "1.3.6.1.4.1.318.1.1.1.2.2.2", "gauge",
              "The internal UPS temperature, degrees Celsius."),
    MibObject("upsAdvBatteryRunTimeRemaining", "1.3.6.1.4.1.318.1.1.1.2.2.3", "gauge",
              "Run time left on battery at the present load, hundredths of a second."),
    MibObject("upsHighPrecBatteryCapacity", "1.3.6.1.4.1.318.1.1.1.2.3.1", "gauge",
              "The remaining battery capacity, tenths of a percent of full (cards that lack upsAdvBatteryCapacity)."),
    MibObject("upsAdvBatteryReplaceIndicator", "1.3.6.1.4.1.318.1.1.1.2.2.4", "gauge",
              "Whether the batteries need replacing: noBatteryNeedsReplacing(1), batteryNeedsReplacing(2).",
              APC_REPLACE_INDICATOR),
    MibObject("upsAdvInputLineVoltage", "1.3.6.1.4.1.318.1.1.1.3.2.1", "gauge", "The utility line voltage, VAC."),
    MibObject("upsAdvInputFrequency", "1.3.6.1.4.1.318.1.1.1.3.2.4", "gauge", "The input frequency, Hz."),
    MibObject("upsAdvInputLineFailCause", "1.3.6.1.4.1.318.1.1.1.3.2.5", "gauge",
              "Why the UPS last went to battery: noTransfer(1), highLineVoltage(2), brownout(3), blackout(4)…",
              APC_INPUT_FAIL_CAUSE),
    MibObject("upsBasicOutputStatus", "1.3.6.1.4.1.318.1.1.1.4.1.1", "gauge",
              "The UPS's state: onLine(2), onBattery(3), onSmartBoost(4), off(7), sleepingUntilPowerReturn(11), "
              "onSmartTrim(12)…", APC_BASIC_OUTPUT_STATUS),
    MibObject("upsAdvOutputVoltage", "1.3.6.1.4.1.318.1.1.1.4.2.1", "gauge", "The output voltage, VAC."),
    MibObject("upsAdvOutputFrequency", "1.3.6.1.4.1.318.1.1.1.4.2.2", "gauge", "The output frequency, Hz."),
    MibObject("upsAdvOutputLoad", "1.3.6.1.4.1.318.1.1.1.4.2.3", "gauge",
              "The UPS's load, percent of its rated capacity."),
    MibObject("upsAdvOutputCurrent", "1.3.6.1.4.1.318.1.1.1.4.2.4", "gauge", "The current the load draws, A."),
    MibObject("upsAdvTestDiagnosticsResults", "1.3.6.1.4.1.318.1.1.1.7.2.3", "gauge",
              "The last self-test: ok(1), failed(2), invalidTest(3), testInProgress(4).",
              {1: "ok", 2: "failed", 3: "invalidTest", 4: "testInProgress"}),
    MibObject("upsCommStatus", "1.3.6.1.4.1.318.1.1.1.8.1", "gauge",
              "The management card's communication with the UPS: ok(1), noComm(2).", {1: "ok", 2: "noComm"}),
)
APC_OBJECTS: dict[str, MibObject] = _by_name((APC_IDENT_MODEL, *APC_SCALARS))

# --- XUPS-MIB (Eaton / Powerware), 1.3.6.1.4.1.534.1 ---------------------------------------------------------
# Eaton's ConnectUPS and older Powerware cards answer XUPS-MIB. snmp_exporter has no module for it: the names
# are the MIB's objects (snmp_exporter's own rule), the OIDs and enumerations those of Network UPS Tools'
# drivers/powerware-mib.c (github.com/networkupstools/nut, commit 0a00ddb74000492e2fd03d8af350211b9f77194c).

EATON_ENTERPRISE = "1.3.6.1.4.1.534"
XUPS_OUTPUT_SOURCE: Mapping[int, str] = {1: "other", 2: "none", 3: "normal", 4: "bypass", 5: "battery", 6: "booster",
                                         7: "reducer", 8: "parallelCapacity", 9: "parallelRedundant",
                                         10: "highEfficiencyMode"}
XUPS_ABM_STATUS: Mapping[int, str] = {1: "batteryCharging", 2: "batteryDischarging", 3: "batteryFloating",
                                      4: "batteryResting", 5: "unknown", 6: "batteryDisabled"}
XUPS_IDENT_MANUFACTURER = MibObject("xupsIdentManufacturer", "1.3.6.1.4.1.534.1.1.1", "DisplayString",
                                    "The UPS's manufacturer.")
XUPS_IDENT_MODEL = MibObject("xupsIdentModel", "1.3.6.1.4.1.534.1.1.2", "DisplayString", "The UPS's model.")
XUPS_SCALARS: tuple[MibObject, ...] = (
    MibObject("xupsBatTimeRemaining", "1.3.6.1.4.1.534.1.2.1", "gauge",
              "Run time left on battery at the present load, seconds."),
    MibObject("xupsBatVoltage", "1.3.6.1.4.1.534.1.2.2", "gauge", "Battery voltage, volts DC."),
    MibObject("xupsBatCurrent", "1.3.6.1.4.1.534.1.2.3", "gauge", "Battery current, amperes DC."),
    MibObject("xupsBatCapacity", "1.3.6.1.4.1.534.1.2.4", "gauge", "Battery charge, percent of full."),
    MibObject("xupsBatteryAbmStatus", "1.3.6.1.4.1.534.1.2.5", "gauge",
              "Battery charger (ABM): charging(1), discharging(2), floating(3), resting(4), unknown(5), "
              "disabled(6).", XUPS_ABM_STATUS),
    MibObject("xupsInputFrequency", "1.3.6.1.4.1.534.1.3.1", "gauge", "Input frequency, 0.1 hertz."),
    MibObject("xupsInputLineBads", "1.3.6.1.4.1.534.1.3.2", "counter",
              "Times the input went out of tolerance (a power cut, a brown-out)."),
    MibObject("xupsOutputLoad", "1.3.6.1.4.1.534.1.4.1", "gauge", "Output load, percent of the UPS's capacity."),
    MibObject("xupsOutputFrequency", "1.3.6.1.4.1.534.1.4.2", "gauge", "Output frequency, 0.1 hertz."),
    MibObject("xupsOutputSource", "1.3.6.1.4.1.534.1.4.5", "gauge",
              "Output fed from: other(1), none(2), normal(3), bypass(4), battery(5), booster(6), reducer(7)…",
              XUPS_OUTPUT_SOURCE),
    MibObject("xupsEnvAmbientTemp", "1.3.6.1.4.1.534.1.6.1", "gauge", "Ambient temperature at the UPS, °C."),
    MibObject("xupsAlarms", "1.3.6.1.4.1.534.1.7.1", "gauge", "Number of alarms present on the UPS."),
)

# --- HOST-RESOURCES-MIB (RFC 2790), 1.3.6.1.2.1.25 -----------------------------------------------------------

HR_SYSTEM_UPTIME = MibObject("hrSystemUptime", "1.3.6.1.2.1.25.1.1", "gauge",
                             "Hundredths of a second since the host (not its SNMP agent) was last initialised.")
HR_STORAGE_INDEX_LABEL = "hrStorageIndex"
HR_STORAGE_TYPE = MibObject("hrStorageType", "1.3.6.1.2.1.25.2.3.1.2", "OctetString",
                            "The kind of storage (an OID of HOST-RESOURCES-TYPES).")
HR_STORAGE_DESCR = MibObject("hrStorageDescr", "1.3.6.1.2.1.25.2.3.1.3", "DisplayString",
                             "The storage's description (a mount point, Physical memory, Swap space).")
HR_STORAGE_ALLOCATION_UNITS = MibObject("hrStorageAllocationUnits", "1.3.6.1.2.1.25.2.3.1.4", "gauge",
                                        "Bytes in one allocation unit of the storage.")
HR_STORAGE_SIZE = MibObject("hrStorageSize", "1.3.6.1.2.1.25.2.3.1.5", "gauge",
                            "Size of the storage, in allocation units.")
HR_STORAGE_USED = MibObject("hrStorageUsed", "1.3.6.1.2.1.25.2.3.1.6", "gauge",
                            "Storage in use, in allocation units.")
HR_STORAGE_TABLE: tuple[MibObject, ...] = (HR_STORAGE_TYPE, HR_STORAGE_DESCR, HR_STORAGE_ALLOCATION_UNITS,
                                           HR_STORAGE_SIZE, HR_STORAGE_USED)
HR_STORAGE_METRICS: tuple[MibObject, ...] = (HR_STORAGE_ALLOCATION_UNITS, HR_STORAGE_SIZE, HR_STORAGE_USED)
HR_STORAGE_LOOKUPS: tuple[MibObject, ...] = (HR_STORAGE_DESCR, HR_STORAGE_TYPE)
HR_DEVICE_INDEX_LABEL = "hrDeviceIndex"
HR_PROCESSOR_LOAD = MibObject("hrProcessorLoad", "1.3.6.1.2.1.25.3.3.1.2", "gauge",
                              "Percent of the last minute the processor was not idle.")
