"""The ``tickets:`` section: helpdesk backends, lifecycle rules, SLA targets, the Alertmanager bridge.

A backend is defined once under ``tickets.backends`` and chosen per tenant
(``tenants.X.tickets.backend``, else ``tickets.default_backend``): one provider
often runs one Zendesk or GLPI for all its comuni, while a comune that wants
its tickets by e-mail gets its own.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from custode.agent.config_refs import TenantRef, TicketBackendRef
from custode.agent.durations import Duration
from custode.agent.redact import redact_url
from custode.agent.schema import Strict, check_names
from custode.agent.secrets import SecretRef
from custode.agent.smtp_settings import SmtpSettings, check_addresses, parse_address

Priority = Literal["low", "medium", "high"]

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1: traffic that never leaves this machine."""
    name = host.strip("[]").lower().rstrip(".")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HttpBackendConfig(Strict):
    # allow_insecure comes first so the url's validator can see it
    allow_insecure: bool = Field(default=False, description="allow an http:// url to a host other than this "
                                 "machine: the token and the tickets cross the network in clear")
    url: str = Field(description="the helpdesk's base URL (https://…)")
    tls_verify: bool = Field(default=True, description="verify the helpdesk's TLS certificate")
    ca_file: Path | None = Field(default=None, description="CA bundle for a helpdesk with a private CA")
    timeout: Duration = Field(default=30.0, description="per HTTP call; a hanging helpdesk is retried later")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        shown = redact_url(value)  # the message must not repeat a credential written in the url
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{shown!r} is not an http(s) URL; write it as https://helpdesk.example.it/…")
        try:
            host = urlsplit(value).hostname or ""
        except ValueError:
            raise ValueError(f"{shown!r} is not a valid URL; write it as https://helpdesk.example.it/…") from None
        if not host:
            raise ValueError(f"{shown!r} names no host; write it as https://helpdesk.example.it/…")
        if value.startswith("http://") and not is_loopback(host) and not info.data.get("allow_insecure"):
            raise ValueError(f"{shown!r} would send the helpdesk's token and every ticket to {host} in clear; "
                             "use https://, or set allow_insecure: true on this backend if the network path is "
                             "trusted (a loopback address or localhost needs neither)")
        return value.rstrip("/")


class ZendeskConfig(HttpBackendConfig):
    """Zendesk Support: API token auth (``email/token``)."""

    type: Literal["zendesk"]
    email: str = Field(description="the agent the API token belongs to")
    token: SecretRef = Field(description="Zendesk API token")
    priorities: dict[Priority, Literal["low", "normal", "high", "urgent"]] = Field(
        default_factory=lambda: {"low": "low", "medium": "normal", "high": "high"})
    tags: list[str] = Field(default_factory=lambda: ["custode"])
    group_id: int | None = Field(default=None, description="assign new tickets to this group")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        parse_address(value)
        return value


class GlpiConfig(HttpBackendConfig):
    """GLPI's legacy REST API (``…/apirest.php``), served by GLPI 10 and 11."""

    type: Literal["glpi"]
    app_token: SecretRef | None = Field(default=None, description="App-Token of the API client, if GLPI asks one")
    user_token: SecretRef = Field(description="the API user's personal token (user_token)")
    priorities: dict[Priority, int] = Field(
        default_factory=lambda: {"low": 2, "medium": 3, "high": 4},
        description="GLPI scale 1 (very low) … 5 (very high), 6 major; used for urgency, impact and priority")
    category_id: int | None = Field(default=None, description="itilcategories_id of new tickets")
    request_type_id: int | None = Field(default=None, description="requesttypes_id of new tickets")
    solution_type_id: int | None = Field(default=None, description="solutiontypes_id of the solution")

    @field_validator("url")
    @classmethod
    def _apirest(cls, value: str) -> str:
        if not value.endswith("apirest.php"):
            raise ValueError(f"{redact_url(value)!r} must end with apirest.php, e.g. "
                             "https://glpi.example.it/apirest.php")
        return value

    @field_validator("priorities")
    @classmethod
    def _scale(cls, value: dict[str, int]) -> dict[str, int]:
        for name, number in value.items():
            if not 1 <= number <= 6:
                raise ValueError(f"{name}: GLPI priorities go from 1 (very low) to 6 (major), not {number}")
        return value


class EmailConfig(Strict):
    """Tickets by e-mail to a helpdesk that ingests mail; follow-ups thread with In-Reply-To/References."""

    type: Literal["email"]
    to: list[str] = Field(default_factory=list, description="the helpdesk's address(es); a tenant may add its own")
    smtp: SmtpSettings | None = Field(default=None, description="default: the top-level smtp section")

    _addresses = field_validator("to")(lambda cls, value: check_addresses(value))


class WebhookConfig(HttpBackendConfig):
    """A JSON POST per operation, signed with HMAC-SHA256 of the body."""

    type: Literal["webhook"]
    secret: SecretRef = Field(description="HMAC key; the signature goes in X-Custode-Signature: sha256=<hex>")
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers (no secrets: they are plain)")


BackendConfig = Annotated[Union[ZendeskConfig, GlpiConfig, EmailConfig, WebhookConfig], Field(discriminator="type")]


class SlaTarget(Strict):
    take_charge: Duration = Field(description="working time from opening to taking in charge")
    resolve: Duration | None = Field(default=None, description="working time from opening to resolution")


def _default_sla() -> dict[str, SlaTarget]:
    return {"low": SlaTarget(take_charge=16 * 3600), "medium": SlaTarget(take_charge=12 * 3600),
            "high": SlaTarget(take_charge=8 * 3600)}


class RetrySettings(Strict):
    first: Duration = Field(default=30.0, description="wait after the first failure; doubles every time")
    max: Duration = Field(default=1800.0, description="longest wait between two tries")


class AlertmanagerBridge(Strict):
    """POST /alertmanager: Alertmanager webhook (version 4) payloads become incidents, then tickets."""

    enabled: bool = False
    path: str = "/alertmanager"
    token: SecretRef | None = Field(default=None, description="bearer token Alertmanager sends")
    username: str | None = Field(default=None, description="basic auth user (with password)")
    password: SecretRef | None = None
    max_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger payloads are refused with 413")
    tenant_label: str = Field(default="tenant", description="alert label naming the tenant")
    default_tenant: TenantRef | None = Field(default=None, description="tenant of alerts without that label")

    @model_validator(mode="after")
    def _authenticated(self) -> "AlertmanagerBridge":
        if not self.enabled:
            return self
        if not self.path.startswith("/") or self.path in ("/metrics", "/healthz", "/ready", "/"):
            raise ValueError(f"path {self.path!r} must start with '/' and not be one of Custode's own pages")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        if self.token is None and self.username is None:
            raise ValueError("the bridge must be authenticated: give token (bearer) or username and password, "
                             "and the same in Alertmanager's http_config")
        return self


class TicketsSection(Strict):
    enabled: bool = True
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    default_backend: TicketBackendRef | None = Field(default=None, description="backend of tenants that name none")
    priorities: dict[Literal["warning", "critical"], Priority] = Field(
        default_factory=lambda: {"warning": "medium", "critical": "high"},
        description="ticket priority from the incident's severity")
    check_priorities: dict[str, Priority] = Field(
        default_factory=dict, description="per check name (backup_missing, disk_space…): overrides the above")
    sla: dict[Priority, SlaTarget] = Field(default_factory=_default_sla)
    followup_interval: Duration = Field(default=4 * 3600.0,
                                        description="at most one follow-up per ticket per interval")
    flap_window: Duration = Field(default=3600.0, description="a failure back within this time after recovery "
                                                              "reopens the same ticket")
    solve_on_recovery: bool = Field(default=True, description="mark the ticket solved after the flap window")
    sync_interval: Duration = Field(default=900.0, description="how often open tickets' state is read back")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    alertmanager: AlertmanagerBridge = Field(default_factory=AlertmanagerBridge)

    @field_validator("backends")
    @classmethod
    def _names(cls, value: dict) -> dict:
        return check_names(value, "backend names")

    @field_validator("sla")
    @classmethod
    def _all_priorities(cls, value: dict) -> dict:
        merged = _default_sla()
        merged.update(value)
        return merged

    @model_validator(mode="after")
    def _default_exists(self) -> "TicketsSection":
        if self.default_backend is not None and self.default_backend not in self.backends:
            known = ", ".join(sorted(self.backends)) or "none defined"
            raise ValueError(f"default_backend {self.default_backend!r} is not under tickets.backends ({known})")
        return self


class TenantTickets(Strict):
    """A comune's ticketing: which backend, and what that backend needs to file for it."""

    backend: TicketBackendRef | None = Field(default=None, description="a tickets.backends name; 'none' for no tickets")
    recipients: list[str] = Field(default_factory=list, description="e-mail backend: addresses for this comune")
    requester: str | None = Field(default=None, description="Zendesk: requester e-mail (the referent)")
    organization_id: int | None = Field(default=None, description="Zendesk organization id")
    entity_id: int | None = Field(default=None, description="GLPI entities_id")

    _addresses = field_validator("recipients")(lambda cls, value: check_addresses(value))
