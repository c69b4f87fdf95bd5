"""One poll of one SNMP device with pysnmp 7's asyncio engine: a GET of the scalars, GETBULK walks of the tables.

A poll costs one GET (the system group, plus ifNumber, hrSystemUptime and the
UPS-MIB scalars of the modules asked for: a device without a MIB answers
noSuchObject for its objects, which is how "no UPS-MIB here" is learnt for
free), then GETBULK walks of only the table columns the modules need. A walk
asks for several columns side by side and keeps each one's place, so a sparse
column (a row missing in it) costs nothing extra; each response carries about
``max_repetitions`` values, as big as snmp_exporter's. A column ends where the
device leaves its subtree (or says endOfMibView); a column longer than
:data:`MAX_ROWS`, an OID that does not increase or a request that gets no
column further ends it too, so a broken agent cannot loop.

The poll talks to pysnmp's command generator below its high-level API (whose
per-call configurator adds every USM user once per *user name*, so two devices
with the same v3 user and different keys would overwrite each other's keys
mid-poll in a shared engine). Here a v3 user is registered per (device engine
ID, user name), with keys localised to that engine: the first request to a v3
device lets pysnmp discover the engine ID (RFC 3414 4), fails locally for the
unknown user, and is sent again once the user is added for that engine.
Transports are one UDP socket per address family for the whole engine; target
rows live while a poll uses them. What the engine holds therefore grows with
the devices and credentials configured, never with the number of polls.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as snmp_config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.error import StatusInformation

from custode.agent.snmp import oids
from custode.agent.snmp.credentials import Credentials
from custode.agent.snmp.device import (
    DeviceSnapshot,
    HostResources,
    Interface,
    SnmpError,
    Storage,
    SystemInfo,
    UpsStatus,
)
from custode.agent.snmp.oids import MibObject
from custode.agent.snmp.options import SnmpOptions
from custode.agent.snmp.ups_mibs import VENDOR_MIBS, UpsMib

MAX_ROWS = 10_000
"""Rows read from one table column at most (a 10,000-port device is beyond any contract's)."""

AUTH_PROTOCOLS: dict[str, Any] = {
    "MD5": snmp_config.USM_AUTH_HMAC96_MD5, "SHA": snmp_config.USM_AUTH_HMAC96_SHA,
    "SHA224": snmp_config.USM_AUTH_HMAC128_SHA224, "SHA256": snmp_config.USM_AUTH_HMAC192_SHA256,
    "SHA384": snmp_config.USM_AUTH_HMAC256_SHA384, "SHA512": snmp_config.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "DES": snmp_config.USM_PRIV_CBC56_DES, "AES": snmp_config.USM_PRIV_CFB128_AES,
    "AES192": snmp_config.USM_PRIV_CFB192_AES, "AES256": snmp_config.USM_PRIV_CFB256_AES,
}
"""AES192/AES256 with the key extension of draft-reeder (Cisco's, net-snmp's ``AES-192-C``/``AES-256-C``)."""

_ERROR_STATUS = {1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess",
                 16: "authorizationError"}
_TOO_BIG = 1
_CONTEXT_KEY = "custode_snmp_registry"
_NULL = univ.Null("")

Oid = tuple[int, ...]


class _Failed(Exception):
    """A request pysnmp gave up on; ``indication`` is its errind (timeout, a v3 REPORT…)."""

    def __init__(self, indication: object) -> None:
        super().__init__(str(indication))
        self.indication = indication


class _OutOfTime(Exception):
    """The poll's deadline passed while a request was out."""


class _ModuleError(Exception):
    """A module could not be read; the words go to ``DeviceSnapshot.problems``."""


# --- what one engine holds ------------------------------------------------------------------------------------


@dataclass
class _UserSlot:
    fingerprint: str
    uses: int = 0


@dataclass
class _Registry:
    """Everything :func:`poll_device` configured in one engine (kept as the engine's user context)."""

    transports: set[Oid] = field(default_factory=set)
    communities: dict[str, str] = field(default_factory=dict)
    """Community fingerprint -> security name of its snmpCommunityTable row."""
    params: dict[tuple[str, str, int], str] = field(default_factory=dict)
    targets: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)
    """(params, domain, address, timeout, retries) -> [target name, polls using it]."""
    users: dict[tuple[bytes, str], _UserSlot] = field(default_factory=dict)
    engine_ids: dict[tuple[Oid, tuple[Any, ...]], bytes] = field(default_factory=dict)
    """(domain, address) -> the engine ID a v3 user was last registered for there (pysnmp's cache expires)."""
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    users_changed: asyncio.Condition | None = None

    def name(self, prefix: str) -> str:
        return f"custode-{prefix}{next(self.ids)}"


def registry_of(engine: SnmpEngine) -> _Registry:
    registry = engine.get_user_context(_CONTEXT_KEY)
    if registry is None:
        registry = _Registry()
        engine.set_user_context(**{_CONTEXT_KEY: registry})
    assert isinstance(registry, _Registry)
    return registry


def engine_footprint(engine: SnmpEngine) -> dict[str, int]:
    """How many rows the polls keep in the engine (for tests and ``custode status``)."""
    registry = registry_of(engine)
    return {"transports": len(registry.transports), "communities": len(registry.communities),
            "params": len(registry.params), "targets": len(registry.targets), "users": len(registry.users)}


# --- words ----------------------------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _retries(count: int) -> str:
    return f"{count} retr{'y' if count == 1 else 'ies'}"


@dataclass(frozen=True)
class _Where:
    host: str
    port: int
    credentials: Credentials
    options: SnmpOptions

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def version(self) -> str:
        return f"SNMP v{self.credentials.version}"

    def no_answer(self, within: str | None = None, discovered: bool = False) -> str:
        wait = within or f"within {_seconds(self.options.timeout)} and {_retries(self.options.retries)}"
        cred = self.credentials
        if cred.version == "3" and discovered and cred.priv_protocol:
            return (f"{self} answered SNMPv3 engine discovery but not the encrypted request of user "
                    f"'{cred.user}' ({wait}): snmp.v3.priv_key or priv_protocol ({cred.priv_protocol}) differs "
                    "from the device's (agents such as net-snmp drop a request they cannot decrypt, unanswered)")
        if cred.version == "3":
            causes = (f"the device is down, a firewall drops UDP {self.port}, or SNMPv3 is not enabled on it "
                      "(a v3 agent answers any request, even from an unknown user)")
            if cred.priv_protocol:
                causes += (f", or snmp.v3.priv_key/priv_protocol ({cred.priv_protocol}) differs from the device's "
                           "(a request it cannot decrypt goes unanswered)")
        else:
            causes = (f"the device is down, a firewall drops UDP {self.port}, or the community is wrong "
                      "(v2c agents do not answer a wrong community)")
        return f"no answer from {self} ({self.version}) {wait}: {causes}"

    def v3_words(self, indication: object) -> str | None:
        """A v3 REPORT (or local USM failure) in words; None if it is not one."""
        cred = self.credentials
        user = f"user '{cred.user}'"
        if isinstance(indication, errind.UnknownUserName):
            return (f"{self} does not know SNMPv3 {user} (REPORT usmStatsUnknownUserNames): create the user on "
                    "the device or fix snmp.v3.user")
        if isinstance(indication, errind.WrongDigest):
            return (f"{self} rejected the authentication of SNMPv3 {user} (REPORT usmStatsWrongDigests): "
                    f"snmp.v3.auth_key or auth_protocol ({cred.auth_protocol}) differs from the device's")
        if isinstance(indication, errind.DecryptionError):
            return (f"{self} could not decrypt the request of SNMPv3 {user} (REPORT usmStatsDecryptionErrors): "
                    f"snmp.v3.priv_key or priv_protocol ({cred.priv_protocol}) differs from the device's")
        if isinstance(indication, errind.UnsupportedSecurityLevel):
            return (f"{self} does not allow security level {cred.level} for SNMPv3 {user} (REPORT "
                    "usmStatsUnsupportedSecLevels): give snmp.v3 the auth_key/priv_key the device's user has, "
                    "or set the user up with authentication and privacy on the device")
        if isinstance(indication, errind.NotInTimeWindow):
            return (f"{self} kept answering 'not in time window' for SNMPv3 {user} (REPORT "
                    "usmStatsNotInTimeWindows): its engine boots/time went backwards; try again, and if it "
                    "persists restart the device's SNMP agent")
        if isinstance(indication, errind.UnknownEngineID):
            return (f"{self} kept reporting an unknown SNMP engine ID (REPORT usmStatsUnknownEngineIDs): "
                    "its engine ID changed (a replaced or reset device); Custode learns the new one within "
                    "5 minutes")
        if isinstance(indication, errind.AuthenticationFailure | errind.AuthenticationError):
            return (f"the answer of {self} for SNMPv3 {user} failed authentication: snmp.v3.auth_key or "
                    f"auth_protocol ({cred.auth_protocol}) differs from the device's")
        if isinstance(indication, errind.UnknownSecurityName):
            return f"SNMPv3 {user} could not be set up for {self}'s engine ID (discovery failed)"
        return None

    def failure(self, indication: object, discovered: bool = False) -> str:
        if isinstance(indication, errind.RequestTimedOut):
            return self.no_answer(discovered=discovered)
        return self.v3_words(indication) or f"SNMP request to {self} ({self.version}) failed: {indication}"


# --- values ---------------------------------------------------------------------------------------------------


def _absent(value: object) -> bool:
    return value is None or isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance
                                       | rfc1905.EndOfMibView) or type(value) is univ.Null


def _number(value: object) -> float | None:
    if _absent(value) or not isinstance(value, univ.Integer):
        return None
    return float(int(value))


def _octets(value: object) -> bytes:
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    return b""


def _text(value: object, keep_nul: bool = False) -> str:
    """A DisplayString: UTF-8 (what devices send today), else latin-1 (older firmware); trailing NULs dropped
    unless ``keep_nul`` (snmp_exporter keeps them in its labels)."""
    if isinstance(value, univ.ObjectIdentifier):
        return _dotted(value)
    raw = _octets(value) if keep_nul else _octets(value).rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _dotted(value: object) -> str:
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(str(part) for part in tuple(value))
    return _text(value) if isinstance(value, univ.OctetString) else ""


def _mac(value: object) -> str:
    return ":".join(f"{byte:02x}" for byte in _octets(value))


# --- the poll -------------------------------------------------------------------------------------------------


async def _resolve(host: str, port: int) -> tuple[Oid, tuple[Any, ...]]:
    """Transport domain and address for ``host`` (IPv4, IPv6 with or without brackets, or a name)."""
    loop = asyncio.get_running_loop()
    flags = 0
    try:
        ipaddress.ip_address(host.split("%")[0])
        flags = socket.AI_NUMERICHOST
    except ValueError:
        pass
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP, flags=flags)
    except (socket.gaierror, UnicodeError) as exc:
        raise SnmpError(f"cannot resolve SNMP device address {host!r}: {exc}") from None
    family, _, _, _, sockaddr = found[0]
    if family == socket.AF_INET6:
        # pysnmp keys a peer's engine ID by the address its socket reports, for IPv6 the 4-tuple
        # (host, port, flowinfo, scope id): a 2-tuple here never finds the engine ID discovered for it.
        full: tuple[Any, ...] = (*sockaddr, 0, 0)[:4]
        return udp6.DOMAIN_NAME, full
    return udp.DOMAIN_NAME, tuple(sockaddr[:2])


def _host_of(address: str) -> str:
    host = address.strip()
    if host.startswith("[") and "]" in host:
        host = host[1:host.index("]")]
    return host


class _Session:
    """One poll: the engine rows it holds, its requests and its deadline."""

    def __init__(self, engine: SnmpEngine, address: str, options: SnmpOptions, credentials: Credentials,
                 deadline: float | None) -> None:
        self.engine = engine
        self.registry = registry_of(engine)
        self.options = options
        self.credentials = credentials
        self.deadline = deadline
        self.where = _Where(_host_of(address), options.port, credentials, options)
        self.requests = 0
        self.problems: list[str] = []
        self.target = ""
        self._target_key: tuple[Any, ...] | None = None
        self._user_key: tuple[bytes, str] | None = None
        self._domain: Oid = ()
        self._address: tuple[Any, ...] = ()
        self.engine_id_known_before = False

    # engine rows

    async def setup(self) -> None:
        self._domain, self._address = await _resolve(self.where.host, self.options.port)
        if self._domain not in self.registry.transports:
            if snmp_config.get_transport(self.engine, self._domain) is None:
                transport = (udp6.Udp6AsyncioTransport() if self._domain == udp6.DOMAIN_NAME
                             else udp.UdpAsyncioTransport())
                snmp_config.add_transport(self.engine, self._domain, transport.open_client_mode())
            self.registry.transports.add(self._domain)
        cred = self.credentials
        if cred.version == "3":
            security_name, model = cred.user, 3
        else:
            key = cred.fingerprint
            security_name = self.registry.communities.get(key, "")
            if not security_name:
                security_name = self.registry.name("c")
                snmp_config.add_v1_system(self.engine, security_name, cred.community, contextName=b"",
                                          transportTag=b"", securityName=security_name)
                self.registry.communities[key] = security_name
            model = 1
        params_key = (security_name, cred.level, model)
        params = self.registry.params.get(params_key)
        if params is None:
            params = self.registry.params[params_key] = self.registry.name("p")
            snmp_config.add_target_parameters(self.engine, params, security_name, cred.level, model)
        self._target_key = (params, self._domain, self._address, self.options.timeout, self.options.retries)
        held = self.registry.targets.get(self._target_key)
        if held is None:
            held = self.registry.targets[self._target_key] = [self.registry.name("a"), 0]
            snmp_config.add_target_address(self.engine, held[0], self._domain, self._address, params,
                                           int(round(self.options.timeout * 100)), self.options.retries)
        held[1] += 1
        self.target = str(held[0])
        if cred.version == "3":
            engine_id = self._peer_engine_id()
            self.engine_id_known_before = engine_id is not None
            # pysnmp may have forgotten the engine ID (300 s) while the USM row for it, with the keys of an
            # earlier poll, is still there: hold it now so a changed key is in place before the first request.
            engine_id = engine_id or self.registry.engine_ids.get((self._domain, self._address))
            if engine_id is not None:
                await self._hold_user(engine_id)

    @property
    def discovered_now(self) -> bool:
        """A v3 device that answered this poll's engine discovery (so it is up and speaks v3)."""
        return (self.credentials.version == "3" and not self.engine_id_known_before
                and self._peer_engine_id() is not None)

    def _peer_engine_id(self) -> bytes | None:
        mpmod = self.engine.message_processing_subsystems[3]
        engine_id = mpmod.get_peer_engine_info(self._domain, self._address)[0]
        return bytes(engine_id) if engine_id else None

    def forget_engine_id(self) -> None:
        """Drop pysnmp's cached engine ID of the device, so the next poll discovers it again.

        pysnmp keeps a peer's engine ID for 300 s and does not replace it when the device reports another
        one; a replaced or reset device (new engine ID) would fail until then. A device that is merely down
        costs nothing more: the next poll's discovery times out like any request.
        """
        mpmod = self.engine.message_processing_subsystems[3]
        cache = getattr(mpmod, "_SnmpV3MessageProcessingModel__engineIdCache", None)
        if isinstance(cache, dict):
            cache.pop((self._domain, self._address), None)

    async def _hold_user(self, engine_id: bytes) -> None:
        """Register the v3 user for the device's engine (once), waiting while other polls use other keys."""
        cred = self.credentials
        key = (engine_id, cred.user)
        if self._user_key == key:
            return
        self._release_user()
        registry = self.registry
        if registry.users_changed is None:
            registry.users_changed = asyncio.Condition()
        async with registry.users_changed:
            while True:
                slot = registry.users.get(key)
                if slot is not None and slot.fingerprint == cred.fingerprint:
                    break
                if slot is None or slot.uses == 0:
                    if slot is not None:
                        snmp_config.delete_v3_user(self.engine, cred.user, engine_id)
                    snmp_config.add_v3_user(
                        self.engine, cred.user,
                        AUTH_PROTOCOLS[cred.auth_protocol] if cred.auth_protocol else snmp_config.USM_AUTH_NONE,
                        cred.auth_key or None,
                        PRIV_PROTOCOLS[cred.priv_protocol] if cred.priv_protocol else snmp_config.USM_PRIV_NONE,
                        cred.priv_key or None,
                        securityEngineId=rfc1902.OctetString(engine_id), securityName=cred.user)
                    slot = registry.users[key] = _UserSlot(cred.fingerprint)
                    break
                # Same device engine and user name, other keys, in use by another poll: wait for it.
                await registry.users_changed.wait()
            slot.uses += 1
        self._user_key = key
        registry.engine_ids[(self._domain, self._address)] = engine_id

    def _release_user(self) -> None:
        if self._user_key is None:
            return
        slot = self.registry.users.get(self._user_key)
        self._user_key = None
        if slot is not None:
            slot.uses -= 1
            condition = self.registry.users_changed
            if slot.uses == 0 and condition is not None:
                asyncio.get_running_loop().create_task(self._notify(condition))

    @staticmethod
    async def _notify(condition: asyncio.Condition) -> None:
        async with condition:
            condition.notify_all()

    def release(self) -> None:
        self._release_user()
        if self._target_key is None:
            return
        key, self._target_key = self._target_key, None
        held = self.registry.targets.get(key)
        if held is not None:
            held[1] -= 1
            if held[1] <= 0:
                del self.registry.targets[key]
                snmp_config.delete_target_address(self.engine, held[0])

    # requests

    async def request(self, varbinds: Sequence[Oid], repetitions: int = 0) -> tuple[int, int, list[Any]]:
        """One GET (``repetitions`` 0) or GETBULK; (error status, error index, varbinds)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, int, list[Any]]] = loop.create_future()

        def done(_engine: object, _handle: object, indication: object, status: Any, index: Any,
                 answer: Sequence[Any], _context: object) -> None:
            if future.done():
                return
            if indication:
                future.set_exception(_Failed(indication))
            else:
                future.set_result((int(status or 0), int(index or 0), list(answer or ())))

        pairs = [(rfc1902.ObjectName(oid), _NULL) for oid in varbinds]
        context = self.credentials.context.encode("utf-8")
        self.requests += 1
        try:
            if repetitions:
                cmdgen.BulkCommandGeneratorSingleRun().send_varbinds(
                    self.engine, self.target, None, context, 0, repetitions, pairs, done)
            else:
                cmdgen.GetCommandGenerator().send_varbinds(self.engine, self.target, None, context, pairs, done)
        except StatusInformation as exc:
            raise _Failed(exc["errorIndication"]) from None
        except PySnmpError as exc:
            raise _Failed(exc) from None
        remaining = None if self.deadline is None else self.deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            future.cancel()
            raise _OutOfTime()
        try:
            return await asyncio.wait_for(future, remaining)
        except TimeoutError:
            raise _OutOfTime() from None

    async def first_get(self, varbinds: Sequence[Oid]) -> tuple[int, int, list[Any]]:
        """The first request; for v3 it learns the engine ID and registers the user for it."""
        try:
            return await self.request(varbinds)
        except _Failed as failed:
            if self.credentials.version != "3" or not isinstance(failed.indication, errind.UnknownSecurityName):
                raise
            engine_id = self._peer_engine_id()
            if engine_id is None:
                raise
            await self._hold_user(engine_id)
            return await self.request(varbinds)

    async def walk(self, columns: Sequence[MibObject]) -> dict[str, dict[Oid, Any]]:
        """The rows of ``columns`` (name -> index -> value), several columns per GETBULK."""
        rows: dict[str, dict[Oid, Any]] = {column.name: {} for column in columns}
        cursor: dict[str, Oid] = {column.name: column.key for column in columns}
        active = list(columns)
        budget = max(1, self.options.max_repetitions)
        while active:
            group = active[:budget]
            repetitions = max(1, budget // len(group))
            status, index, answer = await self.request([cursor[column.name] for column in group], repetitions)
            if status:
                if status == _TOO_BIG and budget > 1:
                    budget = max(1, budget // 2)
                    continue
                name = _ERROR_STATUS.get(status, str(status))
                raise _ModuleError(f"{self.where} answered {name} to a GETBULK of {group[0].name}"
                                   f"{' and others' if len(group) > 1 else ''}")
            ended: set[str] = set()
            moved = False
            for position, (name, value) in enumerate(answer):
                column = group[position % len(group)]
                if column.name in ended:
                    continue
                oid = tuple(name)
                if isinstance(value, rfc1905.EndOfMibView) or oid[:len(column.key)] != column.key:
                    ended.add(column.name)
                    continue
                if oid <= cursor[column.name]:
                    self.problems.append(f"{self.where} returned {column.name} OIDs out of order "
                                         f"({'.'.join(map(str, oid))}); the rest of that column was not read")
                    ended.add(column.name)
                    continue
                cursor[column.name] = oid
                moved = True
                found = rows[column.name]
                found[oid[len(column.key):]] = value
                if len(found) >= MAX_ROWS:
                    self.problems.append(f"{self.where} has more than {MAX_ROWS} rows of {column.name}; "
                                         "the rest was not read")
                    ended.add(column.name)
            if not answer:
                ended.update(column.name for column in group)
            if not moved and not ended:
                if budget == 1:
                    raise _ModuleError(f"{self.where} answered a GETBULK of {group[0].name} with nothing usable")
                budget = max(1, budget // 2)
            active = [column for column in active if column.name not in ended]
        return rows


# --- modules --------------------------------------------------------------------------------------------------


def _scalar_oids(modules: Sequence[str]) -> list[MibObject]:
    wanted = list(oids.SYSTEM)
    if "if_mib" in modules:
        wanted.append(oids.IF_NUMBER)
    if "host_resources" in modules:
        wanted.append(oids.HR_SYSTEM_UPTIME)
    if "ups" in modules:
        wanted += oids.UPS_IDENT + oids.UPS_SCALARS
    return wanted


def _interfaces(table: dict[str, dict[Oid, Any]], extended: dict[str, dict[Oid, Any]]) -> tuple[Interface, ...]:
    columns = {**table, **extended}
    indexes = sorted({index for found in columns.values() for index in found if len(index) == 1})
    out = []
    for index in indexes:
        def value(name: str, at: Oid = index) -> Any:
            return columns.get(name, {}).get(at)

        numbers: dict[str, float] = {}
        for column in oids.IF_METRICS:
            if column.kind in oids.STRING_KINDS:
                continue
            number = _number(value(column.name))
            if number is not None:
                numbers[column.name] = number
        if_type = numbers.get("ifType")
        texts = {name: _text(value(name)) for name in oids.IF_LOOKUP_NAMES}
        exact = {name: raw for name in oids.IF_LOOKUP_NAMES
                 if (raw := _text(value(name), keep_nul=True)) != texts[name]}
        mac = value("ifPhysAddress")
        out.append(Interface(
            index=index[0], name=texts["ifName"], descr=texts["ifDescr"], alias=texts["ifAlias"], values=numbers,
            type_name="" if if_type is None else oids.if_type_name(int(if_type)),
            phys_address=None if mac is None or _absent(mac) else _mac(mac), specific=_dotted(value("ifSpecific")),
            exact=exact))
    return tuple(out)


def _table_rows(found: dict[str, dict[Oid, Any]], columns: Sequence[MibObject], index_label: str
                ) -> tuple[dict[str, float], ...]:
    indexes = sorted({index for column in columns for index in found.get(column.name, {}) if len(index) == 1})
    rows = []
    for index in indexes:
        row: dict[str, float] = {index_label: float(index[0])}
        for column in columns:
            number = _number(found.get(column.name, {}).get(index))
            if number is not None:
                row[column.name] = number
        rows.append(row)
    return tuple(rows)


async def _read_ups(session: _Session, scalar: Callable[[MibObject], Any], system: SystemInfo
                    ) -> UpsStatus | None:
    """UPS-MIB (RFC 1628) from the first GET, else the vendor's own MIB (APC's PowerNet-MIB, Eaton's XUPS-MIB)
    when the device is that vendor's (sysObjectID): one more GET."""
    values = {item.name: number for item in oids.UPS_SCALARS if (number := _number(scalar(item))) is not None}
    manufacturer = _text(scalar(oids.UPS_IDENT_MANUFACTURER)).strip()
    model = _text(scalar(oids.UPS_IDENT_MODEL)).strip()
    if values or manufacturer or model:
        async def read_ups_mib() -> UpsStatus:
            found = await session.walk(oids.UPS_INPUT_TABLE + oids.UPS_OUTPUT_TABLE)
            return UpsStatus(
                values=values, model=_full_model(manufacturer, model), manufacturer=manufacturer, ident_model=model,
                outputs=_table_rows(found, oids.UPS_OUTPUT_TABLE, oids.UPS_OUTPUT_INDEX_LABEL),
                inputs=_table_rows(found, oids.UPS_INPUT_TABLE, oids.UPS_INPUT_INDEX_LABEL))
        result: UpsStatus | None = await _read_module(
            session, "ups", "walking upsInputTable/upsOutputTable (1.3.6.1.2.1.33)", read_ups_mib)
        return result
    vendor = next((mib for mib in VENDOR_MIBS if mib.asked_of(system.object_id)), None)
    if vendor is None:
        return None

    async def read_vendor() -> UpsStatus | None:
        assert vendor is not None
        return await _read_vendor_ups(session, vendor)
    found: UpsStatus | None = await _read_module(session, "ups", f"reading {vendor.name}", read_vendor)
    return found


async def _read_vendor_ups(session: _Session, mib: UpsMib) -> UpsStatus | None:
    """One GET of a vendor MIB's identity and scalars; None when the device has none of them (an APC PDU)."""
    idents = [item for item in (mib.manufacturer, mib.model) if item is not None]
    wanted = [*idents, *mib.scalars]
    status, _, answer = await session.request([item.instance for item in wanted])
    if status:
        raise _ModuleError(f"{session.where} answered {_ERROR_STATUS.get(status, status)} to a GET of "
                           f"{mib.name}'s UPS objects")
    got = {tuple(name): value for name, value in answer}

    def text(item: MibObject | None) -> str:
        value = None if item is None else got.get(item.instance)
        return "" if value is None or _absent(value) else _text(value).strip()
    values = {item.name: number for item in mib.scalars
              if not _absent(got.get(item.instance)) and (number := _number(got.get(item.instance))) is not None}
    manufacturer, model = text(mib.manufacturer), text(mib.model)
    if not values and not model and not manufacturer:
        return None  # a PDU or an environment monitor of the same vendor: no UPS behind this card
    return UpsStatus(values=values, model=_full_model(manufacturer, model), manufacturer=manufacturer,
                     ident_model=model, mib=mib.name)


def _full_model(manufacturer: str, model: str) -> str:
    """The model for people, with the manufacturer in front unless the model already starts with it."""
    if not manufacturer or model.lower().startswith(manufacturer.lower()):
        return model
    return f"{manufacturer} {model}".strip()


async def _read_module(session: _Session, label: str, what: str, read: Callable[[], Any]) -> Any:
    """Run one module's walks; a failure becomes a problem in words and the module None."""
    try:
        return await read()
    except _Failed as failed:
        if isinstance(failed.indication, errind.RequestTimedOut):
            session.problems.append(f"{label}: {session.where} stopped answering while {what} (no answer within "
                                    f"{_seconds(session.options.timeout)} and "
                                    f"{_retries(session.options.retries)}); not read this poll")
        else:
            session.problems.append(f"{label}: {session.where.failure(failed.indication)}")
    except _ModuleError as exc:
        session.problems.append(f"{label}: {exc}; not read this poll")
    except _OutOfTime:
        session.problems.append(f"{label}: not read, the poll's time ran out while {what}")
    return None


async def _poll(session: _Session) -> DeviceSnapshot:
    options = session.options
    modules = list(dict.fromkeys(["system", *options.modules]))
    scalars = _scalar_oids(modules)
    try:
        status, _, answer = await session.first_get([item.instance for item in scalars])
        if status:
            # An agent that refuses the whole GET for one object it lacks (v1 habits): ask for the system alone.
            scalars = list(oids.SYSTEM)
            status, _, answer = await session.request([item.instance for item in scalars])
            if status:
                raise SnmpError(f"{session.where} answered {_ERROR_STATUS.get(status, status)} to a GET of its "
                                "system group (sysDescr, sysUpTime…): not a usable SNMP agent for these "
                                "credentials (check the view the community/user may read)")
            session.problems.append(f"{session.where} refused a GET of ifNumber/hrSystemUptime/UPS-MIB scalars "
                                    "together with the system group; those were not read")
    except _Failed as failed:
        if session.credentials.version == "3" and session.engine_id_known_before and isinstance(
                failed.indication, errind.RequestTimedOut | errind.UnknownEngineID | errind.NotInTimeWindow):
            session.forget_engine_id()
        raise SnmpError(session.where.failure(failed.indication, session.discovered_now)) from None
    except _OutOfTime:
        raise SnmpError(session.where.no_answer("before the poll's deadline", session.discovered_now)) from None
    got = {tuple(name): value for name, value in answer}

    def scalar(item: MibObject) -> Any:
        value = got.get(item.instance)
        return None if _absent(value) else value

    uptime = _number(scalar(oids.SYS_UP_TIME))
    system = SystemInfo(descr=_text(scalar(oids.SYS_DESCR)), object_id=_dotted(scalar(oids.SYS_OBJECT_ID)),
                        name=_text(scalar(oids.SYS_NAME)), location=_text(scalar(oids.SYS_LOCATION)),
                        contact=_text(scalar(oids.SYS_CONTACT)),
                        uptime_ticks=None if uptime is None else int(uptime))

    interfaces: tuple[Interface, ...] | None = None
    if "if_mib" in modules:
        async def read_interfaces() -> tuple[Interface, ...] | None:
            table = await session.walk(oids.IF_TABLE)
            extended = await _read_module(session, "if_mib", "walking ifXTable (1.3.6.1.2.1.31.1.1)",
                                          lambda: session.walk(oids.IF_X_TABLE)) or {}
            found = _interfaces(table, extended)
            return found if found or scalar(oids.IF_NUMBER) is not None else None
        interfaces = await _read_module(session, "if_mib", "walking ifTable (1.3.6.1.2.1.2.2)", read_interfaces)

    ups: UpsStatus | None = None
    if "ups" in modules:
        ups = await _read_ups(session, scalar, system)

    host_resources: HostResources | None = None
    if "host_resources" in modules:
        async def read_host() -> HostResources | None:
            found = await session.walk(oids.HR_STORAGE_TABLE + (oids.HR_PROCESSOR_LOAD,))
            hr_uptime = _number(scalar(oids.HR_SYSTEM_UPTIME))
            storage = []
            for index in sorted({key for column in oids.HR_STORAGE_TABLE for key in found[column.name]
                                 if len(key) == 1}):
                def cell(item: MibObject, at: Oid = index) -> Any:
                    return found[item.name].get(at)
                storage.append(Storage(
                    index=index[0], descr=_text(cell(oids.HR_STORAGE_DESCR)),
                    type_oid=_dotted(cell(oids.HR_STORAGE_TYPE)),
                    allocation_units=int(_number(cell(oids.HR_STORAGE_ALLOCATION_UNITS)) or 0),
                    size=int(_number(cell(oids.HR_STORAGE_SIZE)) or 0),
                    used=int(_number(cell(oids.HR_STORAGE_USED)) or 0)))
            loads = tuple((key[0], int(load)) for key, value in sorted(found[oids.HR_PROCESSOR_LOAD.name].items())
                          if len(key) == 1 and (load := _number(value)) is not None)
            if hr_uptime is None and not storage and not loads:
                return None
            return HostResources(uptime_ticks=None if hr_uptime is None else int(hr_uptime),
                                 processor_load=loads, storage=tuple(storage))
        host_resources = await _read_module(session, "host_resources",
                                            "walking hrStorageTable/hrProcessorLoad (1.3.6.1.2.1.25)", read_host)

    if_number = _number(scalar(oids.IF_NUMBER)) if "if_mib" in modules else None
    return DeviceSnapshot(system=system, interfaces=interfaces, ups=ups, host_resources=host_resources,
                          problems=tuple(session.problems), requests=session.requests,
                          if_number=None if if_number is None else int(if_number))


async def poll_device(engine: SnmpEngine, address: str, options: SnmpOptions, credentials: Credentials, *,
                      deadline: float | None = None) -> DeviceSnapshot:
    """Poll one device: :class:`DeviceSnapshot`, or :class:`SnmpError` in words when it cannot be polled at all.

    ``address``: IPv4, IPv6 (``::1`` or ``[::1]``) or a host name; the port is ``options.port``.
    ``deadline``: :func:`time.monotonic` time by which the poll ends; a module still unread then is a problem
    of the snapshot (the system group already read is kept), the system GET unanswered by then an error.
    Run it on the loop that owns ``engine`` (see :class:`custode.agent.snmp.runner.SnmpRunner`).
    """
    session = _Session(engine, address, options, credentials, deadline)
    try:
        await session.setup()
        return await _poll(session)
    finally:
        session.release()
