"""SMTP settings, apart from :mod:`custode.agent.mailer` so loading a config does not import smtplib.

The settings refuse unsafe combinations up front (a password sent in clear to a
remote server) instead of at 3 a.m. during a maintenance window.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from custode.agent.durations import Duration
from custode.agent.schema import Strict
from custode.agent.secrets import SecretRef

if TYPE_CHECKING:
    from email.headerregistry import Address

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
"""Submission with STARTTLS (RFC 6409), implicit TLS (RFC 8314), plain relay."""

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


# --- addresses ---------------------------------------------------------------------------------

def parse_address(value: str) -> Address:
    """One mailbox (``user@example.it`` or ``Name <user@example.it>``); ValueError otherwise.

    Uses the e-mail package's own header parser, so what passes here is exactly
    what will be written in From/To; a line break (header injection) or a list
    of several addresses where one is expected is refused.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("an e-mail address is required, e.g. custode@comune.example.it")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{value!r} contains a line break; give a single e-mail address")
    from email.headerregistry import HeaderRegistry  # only when mail is configured: keeps the agent small

    try:
        header = HeaderRegistry()("To", value)
    except Exception:  # noqa: BLE001 - the header parser raises IndexError & co. on some malformed input
        raise ValueError(f"{value!r} is not an e-mail address") from None
    if len(header.addresses) != 1:
        raise ValueError(f"{value!r} is not one e-mail address; give exactly one, e.g. user@example.it")
    address = header.addresses[0]
    if header.defects or not address.username or "." not in address.domain.strip("[]."):
        raise ValueError(f"{value!r} is not an e-mail address (expected user@domain.tld)")
    return address


def check_addresses(value: list[str]) -> list[str]:
    """Each entry one mailbox, parsed the way the To: header will be written, so what passes can be sent."""
    for address in value:
        parse_address(address)
    return value


# --- settings ----------------------------------------------------------------------------------

class SmtpSettings(Strict):
    """How Custode sends mail: which server, how it is protected, as whom."""

    host: str = Field(description="SMTP server (submission service of the provider or the comune)")
    port: int | None = Field(default=None, ge=1, le=65535,
                             description="default 587 (starttls), 465 (tls) or 25 (none)")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls: upgrade a plain connection; tls: TLS from the first byte")
    user: str | None = Field(default=None, description="login name; no login when unset")
    password: SecretRef | None = None
    sender: str = Field(description="the From address, e.g. 'Custode <custode@provider.example.it>'")
    tls_verify: bool = Field(default=True, description="check the server's certificate and name")
    ca_file: Path | None = Field(default=None, description="CA certificate(s) of a private CA; then only "
                                                           "these are trusted")
    timeout: Duration = Field(default=30.0, description="for connecting and for each server answer")

    @property
    def endpoint_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]

    @property
    def sender_address(self) -> Address:
        return parse_address(self.sender)

    def where(self) -> str:
        """``host:port`` as it appears in every error message."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.endpoint_port}"

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        if not value or any(ch.isspace() for ch in value) or "/" in value:
            raise ValueError("host must be a DNS name or an IP address, e.g. smtp.example.it")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        parse_address(value)
        return value.strip()

    @model_validator(mode="after")
    def _safe(self) -> "SmtpSettings":
        if self.password is not None and self.user is None:
            raise ValueError("password is set but user is not; set user to the SMTP login name")
        if self.user is not None and self.password is None:
            raise ValueError(f"user {self.user!r} is set but password is not; set password "
                             "(e.g. {env: CUSTODE_SMTP_PASSWORD}), or remove user to send without login")
        if self.security == "none" and self.password is not None and not _is_loopback(self.host):
            raise ValueError(f"security: none would send the SMTP password to {self.host} in clear; "
                             "use security: starttls (port 587) or tls (port 465)")
        return self


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
