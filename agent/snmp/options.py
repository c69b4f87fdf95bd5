"""The ``snmp:`` block of a ``transport: snmp`` host: version, credentials, what to read and what to watch.

Communities and v3 keys are secrets like every other (environment, file or
keyring), never written in the config; SNMPv1 is not offered (no 64-bit
counters, and the contracts' devices all speak v2c or v3).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from custode.agent.durations import Duration
from custode.agent.schema import Strict
from custode.agent.secrets import SecretRef

Module = Literal["system", "if_mib", "ups", "host_resources"]
"""What a poll reads: ``system`` always; the others where the device has them (a missing MIB is not an error)."""
DEFAULT_MODULES: tuple[Module, ...] = ("system", "if_mib", "ups", "host_resources")


class SnmpV3(Strict):
    """User-based security (USM): authPriv unless ``auth_key`` / ``priv_key`` are left out."""

    user: str = Field(min_length=1)
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "SHA"
    auth_key: SecretRef | None = Field(default=None, description="authentication passphrase; none: noAuthNoPriv")
    priv_protocol: Literal["DES", "AES", "AES192", "AES256"] = "AES"
    priv_key: SecretRef | None = Field(default=None, description="privacy passphrase; none: authNoPriv")
    context: str = Field(default="", description="SNMPv3 context name, rarely needed")

    @model_validator(mode="after")
    def _priv_needs_auth(self) -> "SnmpV3":
        if self.priv_key is not None and self.auth_key is None:
            raise ValueError("priv_key without auth_key: SNMPv3 has no privacy without authentication; "
                             "give auth_key too")
        return self

    @property
    def level(self) -> str:
        """``noAuthNoPriv``, ``authNoPriv`` or ``authPriv``, as net-snmp's ``-l`` names them."""
        if self.auth_key is None:
            return "noAuthNoPriv"
        return "authPriv" if self.priv_key is not None else "authNoPriv"


class WatchedInterface(Strict):
    """An interface whose going down is an incident (an uplink, the Internet link, a firewall's WAN)."""

    name: str = Field(min_length=1, description="ifName, ifDescr or ifAlias as the device reports it, or "
                                                "/regex/ matched against all three")
    severity: Literal["warning", "critical"] = "critical"

    def matches(self, if_name: str, if_descr: str, if_alias: str) -> bool:
        if len(self.name) > 2 and self.name.startswith("/") and self.name.endswith("/"):
            pattern = re.compile(self.name[1:-1])
            return any(pattern.search(text) for text in (if_name, if_descr, if_alias) if text)
        return self.name in (if_name, if_descr, if_alias)


class SnmpOptions(Strict):
    """How a device is polled: SNMPv2c with a community, or SNMPv3 with a user."""

    version: Literal["2c", "3"] = "2c"
    community: SecretRef | None = Field(default=None, description="v2c: the read community")
    v3: SnmpV3 | None = Field(default=None, description="v3: the USM user")
    port: int = Field(default=161, ge=1, le=65535)
    timeout: Duration = Field(default=2.0, gt=0, le=60, description="for each request (a walk is many)")
    retries: int = Field(default=1, ge=0, le=5, description="resends of a request that got no answer")
    max_repetitions: int = Field(default=25, ge=1, le=100, description="rows per GETBULK request of a walk")
    modules: list[Module] = Field(default_factory=lambda: list(DEFAULT_MODULES),
                                  description="what to read: system, if_mib, ups, host_resources")
    watch_interfaces: list[WatchedInterface] = Field(
        default_factory=list, description="interfaces whose going down (oper down, admin up) is an incident")

    @field_validator("watch_interfaces", mode="before")
    @classmethod
    def _names_as_strings(cls, value: object) -> object:
        """``watch_interfaces: [Gi0/1, uplink]`` is the common case: a plain name means critical."""
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _credentials_match_version(self) -> "SnmpOptions":
        if self.version == "2c" and self.community is None:
            raise ValueError("version 2c needs 'community: {env: VARIABLE}' (or file/keyring): the read "
                             "community is a secret")
        if self.version == "3" and self.v3 is None:
            raise ValueError("version 3 needs a 'v3:' block with at least 'user' (and auth_key/priv_key)")
        if self.version == "2c" and self.v3 is not None:
            raise ValueError("'v3:' given but version is 2c; write version: \"3\"")
        return self
