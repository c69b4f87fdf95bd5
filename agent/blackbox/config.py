"""The ``probes:`` config section: service probes like blackbox_exporter's, judged like everything else.

Defaults for every probe (how often, how long it may take, how many failures make an outage, what counts as
slow, when a certificate is close to its end) and ``targets:``, one entry per service a contract covers: the
Sassuolo portal over HTTPS, a Capannori platform reached from outside, the Ponte San Pietro Internet link. A
target is one URL (:func:`custode.agent.blackbox.urls.target_from_url`) or a ``kind`` with an ``address``, plus
the options of its kind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import dns.rcode
import dns.rdatatype
from pydantic import Field, field_validator, model_validator

from custode.agent.blackbox.urls import KINDS, Kind, ParsedUrl, bracketed, target_from_url
from custode.agent.config_refs import HostRef, TenantRef
from custode.agent.durations import Duration
from custode.agent.schema import Strict, check_label_names, check_names
from custode.agent.secrets import SecretRef
from custode.agent.sizes import ByteSize
from custode.collectors.base import Regex

RESERVED_LABELS = frozenset({"tenant", "probe", "target", "kind", "instance", "job", "le", "quantile", "phase",
                             "version", "rcode", "error", "method", "port", "fingerprint_sha256", "subject",
                             "issuer", "subjectalternative", "serialnumber"})
"""Label names the probe series already carry (or Prometheus sets): a target's own labels may not reuse them."""
_STATUS_CLASS = re.compile(r"^[1-5]xx$")


class BasicAuth(Strict):
    user: str = Field(description="the login name sent with every request of the probe")
    password: SecretRef = Field(description="where the password is (env, file, keyring): never in the config")


class HttpOptions(Strict):
    """An HTTP(S) probe: what is asked, and what a good answer is."""

    method: Literal["GET", "HEAD", "POST"] = Field(default="GET", description="HEAD reads no body (no body regex)")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra request headers, e.g. Accept-Language; credentials go in "
                                                "basic_auth or bearer_token, which keep them out of the config")
    status: list[int | str] = Field(default_factory=list,
                                    description="the status codes that count as up (200, 301, or a class such as "
                                                "3xx); empty: any 2xx")
    body: Regex = Field(default=None, description="a regex the body must match (the page really is the "
                                                  "comune's, not a parking or error page)")
    body_not: Regex = Field(default=None, description="a regex the body must not match (a maintenance page, an "
                                                      "error the application answers with status 200)")
    follow_redirects: bool = Field(default=True, description="follow 301/302/303/307/308 (counted in "
                                                             "probe_http_redirects)")
    max_redirects: int = Field(default=10, ge=0, le=30, description="more redirects than this fail the probe "
                                                                   "(a redirect loop)")
    verify: bool = Field(default=True, description="false: accept any certificate (still read for its expiry); "
                                                   "only for a test platform with a self-signed certificate")
    ca_file: Path | None = Field(default=None, description="CA certificates of a private CA; then only these are "
                                                           "trusted, else the system's")
    basic_auth: BasicAuth | None = Field(default=None, description="for a page behind HTTP basic authentication")
    bearer_token: SecretRef | None = Field(default=None, description="sent as Authorization: Bearer (an API's "
                                                                     "health endpoint)")
    body_limit: ByteSize = Field(default=1024 * 1024, ge=0,
                                 description="bytes of the body read at most; the regexes see only these")

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: list[int | str]) -> list[int | str]:
        out: list[int | str] = []
        for item in value:
            text = str(item).strip().lower()
            if text.isdigit() and 100 <= int(text) <= 599:
                out.append(int(text))
            elif _STATUS_CLASS.match(text):
                out.append(text)
            else:
                raise ValueError(f"status {item!r}: write a code from 100 to 599 (200, 301) or a class (2xx, 3xx)")
        return out

    @model_validator(mode="after")
    def _one_credential(self) -> "HttpOptions":
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give basic_auth or bearer_token, not both (both are an Authorization header)")
        return self

    @field_validator("headers")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.strip().lower() in ("authorization", "proxy-authorization", "cookie"):
                raise ValueError(f"header {name!r} would put a credential in the config; use basic_auth or "
                                 "bearer_token, which name a secret ({env: ...}, {file: ...})")
        return value


class TcpOptions(Strict):
    tls: bool = Field(default=False, description="true: a TLS handshake after the connect (its certificate is "
                                                 "judged like an HTTPS one: IMAPS, SMTPS, LDAPS)")
    verify: bool = Field(default=True, description="tls: false accepts any certificate (still read for its expiry)")
    ca_file: Path | None = Field(default=None, description="tls: CA certificates of a private CA")
    server_name: str | None = Field(default=None, description="tls: the name the certificate must carry, when the "
                                                              "address is an IP address (SNI)")


class IcmpOptions(Strict):
    fallback_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="when this process may not send ICMP (not root, group outside net.ipv4.ping_group_range), a "
                    "TCP connect to this port instead, said so in the result; none: the probe fails with the fix")


class DnsOptions(Strict):
    name: str | None = Field(default=None, description="the name asked for (default: the path of the url)")
    type: str | None = Field(default=None, description="the record type asked for: A, AAAA, MX, NS, SOA, TXT ... "
                                                       "(default: the url's ?type=, else A)")
    transport: Literal["udp", "tcp"] = Field(default="udp", description="udp (a truncated answer is asked again "
                                                                       "over tcp) | tcp")
    rcodes: list[str] = Field(default_factory=lambda: ["NOERROR"],
                              description="the answer codes that count as up (NOERROR, NXDOMAIN ...)")
    answer: Regex = Field(default=None, description="a regex one record of the answer must match, written as dig "
                                                    "prints it (name TTL IN A 192.0.2.1)")
    answer_not: Regex = Field(default=None, description="a regex no record of the answer may match")
    recursion: bool = Field(default=True, description="false: ask without recursion (an authoritative server)")

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            dns.rdatatype.from_text(value.upper())
        except dns.rdatatype.UnknownRdatatype:
            raise ValueError(f"unknown DNS record type {value!r}; e.g. A, AAAA, MX, NS, SOA, TXT, CNAME") from None
        return value.upper()

    @field_validator("rcodes")
    @classmethod
    def _rcodes(cls, value: list[str]) -> list[str]:
        out = []
        for code in value:
            try:
                dns.rcode.from_text(code.upper())
            except dns.rcode.UnknownRcode:
                raise ValueError(f"unknown DNS rcode {code!r}; e.g. NOERROR, NXDOMAIN, SERVFAIL, REFUSED") from None
            out.append(code.upper())
        if not out:
            raise ValueError("give at least one rcode (NOERROR)")
        return out


_OPTION_BLOCKS: tuple[Kind, ...] = KINDS


class ProbeTarget(Strict):
    """One service watched: where it is, what a good answer is, whose contract it is."""

    tenant: TenantRef | None = Field(default=None, description="the comune whose contract the service is in "
                                                               "(default agent.tenant)")
    url: str | None = Field(default=None, description="the target as one URL; it also says the kind")
    kind: Kind | None = Field(default=None, description="http | tcp | icmp | dns; without url, with address")
    address: str | None = Field(default=None, description="without url: host name or IP address (dns: the server "
                                                          "asked)")
    port: int | None = Field(default=None, ge=1, le=65535, description="without url: tcp's port (required), dns's "
                                                                      "(default 53)")
    ip_protocol: Literal["ip4", "ip6"] = Field(default="ip4", description="the address family tried first")
    ip_fallback: bool = Field(default=True, description="false: a name without an address of ip_protocol fails "
                                                        "instead of using the other family")
    enabled: bool = Field(default=True, description="false: not probed (its incidents are resolved)")
    runs_on: list[HostRef] = Field(default_factory=list,
                               description="hosts of the registry the service runs on: while one of them is in "
                                           "maintenance (its update window running), the probe opens no incident")
    labels: dict[str, str] = Field(default_factory=dict, description="added to its metrics, e.g. contract, "
                                                                     "service")
    interval: Duration | None = Field(default=None, ge=5, description="default probes.interval")
    timeout: Duration | None = Field(default=None, gt=0, description="default probes.timeout")
    failures: int | None = Field(default=None, ge=1, description="default probes.failures")
    slow: Duration | None = Field(default=None, gt=0, description="default probes.slow")
    slow_probes: int | None = Field(default=None, ge=1, description="default probes.slow_probes")
    http: HttpOptions | None = Field(default=None, description="kind http: status, body regexes, redirects, TLS, "
                                                               "credentials")
    tcp: TcpOptions | None = Field(default=None, description="kind tcp: an optional TLS handshake")
    icmp: IcmpOptions | None = Field(default=None, description="kind icmp: the TCP fallback")
    dns: DnsOptions | None = Field(default=None, description="kind dns: name, type, rcodes, answer regexes")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_label_names(value, RESERVED_LABELS, "'service' or 'contract'")

    @model_validator(mode="after")
    def _consistent(self) -> "ProbeTarget":
        parsed = self.parsed()
        given = [block for block in _OPTION_BLOCKS if getattr(self, block) is not None]
        wrong = [block for block in given if block != parsed.kind]
        if wrong:
            raise ValueError(f"'{wrong[0]}:' options given but the target is a {parsed.kind} probe")
        if parsed.kind == "dns" and self.dns is not None:
            for field, from_url in (("name", parsed.dns_name), ("type", parsed.dns_type)):
                mine = getattr(self.dns, field)
                if mine is not None and from_url is not None and self.url is not None and mine != from_url:
                    raise ValueError(f"dns.{field} {mine!r} and the url's {from_url!r} disagree; keep one")
        if parsed.kind == "dns" and not (parsed.dns_name or (self.dns and self.dns.name)):
            raise ValueError("a dns probe needs the name to ask for: dns.name, or the url's path "
                             "(dns://server/www.comune.example.it?type=A)")
        return self

    def parsed(self) -> ParsedUrl:
        """The target's kind, address and port, from ``url`` or from ``kind``/``address``/``port``."""
        if self.url is not None:
            if self.address is not None or self.port is not None:
                raise ValueError("give either url or address/port, not both")
            parsed = target_from_url(self.url)
            if self.kind is not None and self.kind != parsed.kind:
                raise ValueError(f"kind {self.kind} but the url {self.url!r} is a {parsed.kind} target")
            return parsed
        if self.kind is None:
            raise ValueError(f"give url (e.g. https://www.comune.example.it/), or kind ({', '.join(KINDS)}) and "
                             "address")
        if self.kind == "http":
            raise ValueError("an http probe is written as its url (https://host/path)")
        if not self.address:
            raise ValueError(f"a {self.kind} probe without url needs address (host name or IP address)")
        where = bracketed(self.address)
        if self.kind == "tcp":
            if self.port is None:
                raise ValueError("a tcp probe needs port")
            return target_from_url(f"tcp://{where}:{self.port}")
        if self.kind == "icmp":
            if self.port is not None:
                raise ValueError("an icmp probe has no port (for a TCP fallback, set icmp.fallback_port)")
            return target_from_url(f"icmp://{where}")
        if self.dns is None or not self.dns.name:
            raise ValueError("a dns probe needs the name to ask for: dns.name, or the url's path "
                             "(dns://server/www.comune.example.it?type=A)")
        name = self.dns.name
        rdtype = self.dns.type if self.dns and self.dns.type else "A"
        return target_from_url(f"dns://{where}:{self.port or 53}/{name}?type={rdtype}")


class ProbesSection(Strict):
    """Service probes: defaults for every target, and the targets."""

    enabled: bool = Field(default=True, description="false: nothing is probed")
    interval: Duration = Field(default=60.0, ge=5, description="how often each target is probed")
    timeout: Duration = Field(default=10.0, gt=0, description="a probe still going after this has failed (no "
                                                              "answer within N s); shorter than interval")
    failures: int = Field(default=3, ge=1, description="failed probes in a row before the down incident (one lost "
                                                       "packet is not an outage)")
    slow: Duration = Field(default=5.0, gt=0, description="a successful probe that took longer is slow")
    slow_probes: int = Field(default=3, ge=1, description="slow probes in a row before the slow warning")
    certificate_days: int = Field(default=21, ge=1, description="a certificate ending within this many days: "
                                                                "warning (time to renew it)")
    certificate_critical_days: int = Field(default=7, ge=0, description="…within this many days, or ended: "
                                                                        "critical")
    workers: int = Field(default=16, ge=1, le=256, description="probes running at the same time; a hanging target "
                                                               "holds one for at most its timeout")
    targets: dict[str, ProbeTarget] = Field(default_factory=dict, description="probe name -> target; the name is "
                                                                              "the incident's target")

    @field_validator("targets")
    @classmethod
    def _names(cls, value: dict[str, ProbeTarget]) -> dict[str, ProbeTarget]:
        return check_names(value, "probe names")

    @model_validator(mode="after")
    def _timings(self) -> "ProbesSection":
        if self.certificate_critical_days >= self.certificate_days:
            raise ValueError(f"certificate_critical_days ({self.certificate_critical_days}) must be less than "
                             f"certificate_days ({self.certificate_days})")
        for name, target in self.targets.items():
            interval = target.interval or self.interval
            timeout = target.timeout or self.timeout
            if timeout >= interval:
                raise ValueError(f"targets.{name}: timeout ({timeout:g} s) must be shorter than interval "
                                 f"({interval:g} s), or probes of it would overlap")
        return self
