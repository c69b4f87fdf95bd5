"""How a host is reached: the config models shared by update windows and farm mode."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from custode.agent.config_refs import TenantRef
from custode.agent.durations import Duration
from custode.agent.schema import Strict, check_label_names
from custode.agent.secrets import SecretRef
from custode.agent.snmp.options import SnmpOptions


class SshOptions(Strict):
    """SSH with paramiko. Host keys are always checked against ``known_hosts``; never auto-accepted."""

    user: str = "root"
    port: int = Field(default=22, ge=1, le=65535)
    identity_file: Path | None = Field(default=None, description="private key; else the SSH agent")
    passphrase: SecretRef | None = Field(default=None, description="of the identity file, if it has one")
    password: SecretRef | None = Field(default=None, description="password auth, when keys are not allowed")
    use_agent: bool = True
    known_hosts: Path | None = Field(
        default=None, description="known_hosts file to verify host keys; default ~/.ssh/known_hosts "
                                  "of the user Custode runs as")
    connect_timeout: Duration = 10.0


class WinrmOptions(Strict):
    """WinRM with pywinrm: HTTPS with a verified certificate unless this host's config says otherwise."""

    user: str
    password: SecretRef | None = Field(default=None, description="not needed for kerberos with a ticket")
    scheme: Literal["https", "http"] = "https"
    port: int | None = Field(default=None, ge=1, le=65535, description="default 5986 (https) or 5985 (http)")
    path: str = "wsman"
    auth: Literal["ntlm", "kerberos", "credssp", "basic"] = "ntlm"
    tls_verify: bool = True
    ca_file: Path | None = Field(default=None, description="CA bundle for a private CA")
    connect_timeout: Duration = 10.0

    @property
    def endpoint_port(self) -> int:
        return self.port or (5986 if self.scheme == "https" else 5985)

    @model_validator(mode="after")
    def _no_basic_in_clear(self) -> "WinrmOptions":
        if self.auth == "basic" and self.scheme == "http":
            raise ValueError("basic auth over http sends the password in clear; use scheme: https, "
                             "or auth: ntlm/kerberos (which encrypt the messages)")
        return self


RESERVED_LABELS = frozenset({"tenant", "host", "transport", "instance", "job", "le", "quantile"})
"""Label names Custode or Prometheus set themselves; a host's own labels may not reuse them."""


class HostConfig(Strict):
    """A host Custode runs commands on or polls: its address, how to reach it, its labels and variables."""

    address: str = Field(default="localhost", description="DNS name or IP address")
    transport: Literal["ssh", "winrm", "local", "snmp"] = Field(
        default="ssh", description="snmp: a network device (switch, router, firewall, UPS) polled over SNMP; it "
                                   "runs no commands, so playbooks and restore tests cannot use it")
    ssh: SshOptions | None = None
    winrm: WinrmOptions | None = None
    snmp: SnmpOptions | None = Field(default=None, description="transport snmp: version, community or v3 user, "
                                                              "interfaces to watch")
    tenant: TenantRef | None = Field(default=None, description="the comune this host belongs to")
    vars: dict[str, str] = Field(default_factory=dict, description="playbook variables for this host")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="added to its farm metrics, e.g. role, application, site")
    monitor: Literal["farm", "agent", "off"] | None = Field(
        default=None, description="farm: polled by farm mode (default for ssh/winrm/snmp hosts); agent: runs its own "
                                  "Custode, which Prometheus scrapes; off: used only by playbooks/restore tests")
    poll_interval: Duration | None = Field(default=None, gt=0, description="default farm.interval")
    poll_timeout: Duration | None = Field(default=None, gt=0, description="default farm.timeout")

    @property
    def polled(self) -> bool:
        """Whether farm mode polls this host: this machine is already covered by the local collectors."""
        return (self.monitor or ("off" if self.transport == "local" else "farm")) == "farm"

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_label_names(value, RESERVED_LABELS, "'site' or 'role'")

    @model_validator(mode="after")
    def _options_match_transport(self) -> "HostConfig":
        if self.transport == "winrm" and self.winrm is None:
            raise ValueError("transport winrm needs a 'winrm:' block with at least 'user' and 'password'")
        if self.transport != "winrm" and self.winrm is not None:
            raise ValueError(f"'winrm:' options given but transport is {self.transport}")
        if self.transport != "ssh" and self.ssh is not None:
            raise ValueError(f"'ssh:' options given but transport is {self.transport}")
        if self.transport == "snmp" and self.snmp is None:
            raise ValueError("transport snmp needs an 'snmp:' block with at least 'community: {env: VARIABLE}' "
                             "(version 2c) or 'version: \"3\"' and a 'v3:' user")
        if self.transport != "snmp" and self.snmp is not None:
            raise ValueError(f"'snmp:' options given but transport is {self.transport}")
        return self
