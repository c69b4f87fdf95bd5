"""The secrets of a ``snmp:`` block, read once per poll: a v2c community or a v3 user's keys.

:class:`Credentials` holds the resolved strings for :func:`custode.agent.snmp.client.poll_device`;
its ``repr`` (and so any log line or traceback that prints it) shows the user
and protocols, never the community or the keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from custode.agent.secrets import SecretError, SecretRef
from custode.agent.snmp.device import SnmpError
from custode.agent.snmp.options import SnmpOptions

MIN_V3_KEY_LENGTH = 8
"""RFC 3414 (2.6): a USM passphrase has at least 8 characters; agents refuse shorter ones."""


@dataclass(frozen=True, repr=False)
class Credentials:
    """What the SNMP engine needs to talk to one device (secrets resolved)."""

    version: str
    """``"2c"`` or ``"3"``."""
    community: str = ""
    user: str = ""
    auth_protocol: str = ""
    """MD5, SHA, SHA224, SHA256, SHA384, SHA512; empty: no authentication (noAuthNoPriv)."""
    auth_key: str = ""
    priv_protocol: str = ""
    """DES, AES, AES192, AES256; empty: no privacy."""
    priv_key: str = ""
    context: str = ""

    @property
    def level(self) -> str:
        """The v3 security level as net-snmp's ``-l`` names it (v2c: noAuthNoPriv)."""
        if self.version != "3" or not self.auth_protocol:
            return "noAuthNoPriv"
        return "authPriv" if self.priv_protocol else "authNoPriv"

    @property
    def fingerprint(self) -> str:
        """A digest of everything secret: tells two key sets apart without keeping them side by side."""
        material = "\0".join((self.version, self.community, self.user, self.auth_protocol, self.auth_key,
                              self.priv_protocol, self.priv_key))
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """For messages: ``SNMP v2c`` or ``SNMP v3 user 'monitor' (authPriv, SHA/AES)``."""
        if self.version != "3":
            return "SNMP v2c"
        protocols = "/".join(part for part in (self.auth_protocol, self.priv_protocol) if part)
        return f"SNMP v3 user '{self.user}' ({self.level}{', ' + protocols if protocols else ''})"

    def __repr__(self) -> str:
        if self.version != "3":
            return "Credentials(version='2c', community=<hidden>)"
        return (f"Credentials(version='3', user={self.user!r}, level={self.level!r}, "
                f"auth_protocol={self.auth_protocol!r}, priv_protocol={self.priv_protocol!r}, "
                f"context={self.context!r}, keys=<hidden>)")


def _resolve(ref: SecretRef, place: str, what: str) -> str:
    try:
        value = ref.resolve()
    except SecretError as exc:
        raise SnmpError(f"the SNMP {what} ({place}) cannot be read: {exc}") from None
    if not value:
        raise SnmpError(f"the SNMP {what} ({place}, {ref.describe()}) is empty; put the {what} there")
    return value


def _key(ref: SecretRef, place: str, what: str) -> str:
    value = _resolve(ref, place, what)
    if len(value) < MIN_V3_KEY_LENGTH:
        raise SnmpError(f"the SNMPv3 {what} ({place}, {ref.describe()}) has {len(value)} characters; SNMPv3 "
                        f"passphrases have at least {MIN_V3_KEY_LENGTH} (RFC 3414) and devices refuse shorter "
                        "ones: use the passphrase configured on the device")
    return value


def credentials_of(options: SnmpOptions) -> Credentials:
    """Resolve the block's secrets; :class:`SnmpError` naming the key and the fix when one is missing."""
    if options.version != "3":
        if options.community is None:
            raise SnmpError("SNMP v2c needs 'community: {env: VARIABLE}' (or file/keyring) in the snmp: block")
        return Credentials("2c", community=_resolve(options.community, "snmp.community", "community"))
    v3 = options.v3
    if v3 is None:
        raise SnmpError("SNMP v3 needs a 'v3:' block with at least 'user' in the snmp: block")
    auth_key = priv_key = ""
    if v3.auth_key is not None:
        auth_key = _key(v3.auth_key, "snmp.v3.auth_key", "authentication key")
    if v3.priv_key is not None:
        priv_key = _key(v3.priv_key, "snmp.v3.priv_key", "privacy key")
    return Credentials(
        "3", user=v3.user,
        auth_protocol=v3.auth_protocol if auth_key else "", auth_key=auth_key,
        priv_protocol=v3.priv_protocol if priv_key else "", priv_key=priv_key,
        context=v3.context)
