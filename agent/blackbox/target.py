"""The probe targets with their effective settings, resolved once from the config (or from a command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, Union

from custode.agent.blackbox.config import DnsOptions, HttpOptions, IcmpOptions, ProbesSection, ProbeTarget, TcpOptions
from custode.agent.blackbox.urls import Kind, ParsedUrl, target_from_url

if TYPE_CHECKING:
    from custode.agent.config import Config

Options = Union[HttpOptions, TcpOptions, IcmpOptions, DnsOptions]
KindOptions = TypeVar("KindOptions", HttpOptions, TcpOptions, IcmpOptions, DnsOptions)
_OPTION_TYPES: dict[str, type[Options]] = {"http": HttpOptions, "tcp": TcpOptions, "icmp": IcmpOptions,
                                           "dns": DnsOptions}


@dataclass(frozen=True)
class Thresholds:
    """When results become incidents: the section's defaults with the target's overrides."""

    failures: int = 3
    slow: float = 5.0
    slow_probes: int = 3
    certificate_days: int = 21
    certificate_critical_days: int = 7


@dataclass(frozen=True)
class Target:
    name: str
    tenant: str
    where: ParsedUrl
    options: Options
    interval: float = 60.0
    timeout: float = 10.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    ip_protocol: str = "ip4"
    ip_fallback: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    runs_on: tuple[str, ...] = ()
    """Registry hosts whose maintenance silences the probe's incidents (``CheckResult.covered_by``)."""

    def options_as(self, kind: type[KindOptions]) -> KindOptions:
        """The options of the target's kind, typed (a prober asks for its own)."""
        if not isinstance(self.options, kind):
            raise TypeError(f"probe {self.name}: {kind.__name__} asked, the target has {type(self.options).__name__}")
        return self.options

    @property
    def port(self) -> int:
        """The port to connect to (tcp, http, dns; ICMP has none and never asks)."""
        if self.where.port is None:
            raise TypeError(f"probe {self.name}: a {self.kind} target has no port")
        return self.where.port

    @property
    def kind(self) -> Kind:
        return self.where.kind

    @property
    def url(self) -> str:
        """The ``target`` label and the words of the incidents: the URL (or ``icmp://host``…)."""
        return self.where.url

    def metric_labels(self) -> dict[str, str]:
        """``tenant``, ``probe``, ``target``, ``kind`` first, then the target's own labels (contract, service…)."""
        return {"tenant": self.tenant, "probe": self.name, "target": self.url, "kind": self.kind, **self.labels}


def _thresholds(section: ProbesSection, entry: ProbeTarget | None = None) -> Thresholds:
    return Thresholds(failures=(entry.failures if entry and entry.failures else section.failures),
                      slow=float(entry.slow if entry and entry.slow else section.slow),
                      slow_probes=(entry.slow_probes if entry and entry.slow_probes else section.slow_probes),
                      certificate_days=section.certificate_days,
                      certificate_critical_days=section.certificate_critical_days)


def target_of(name: str, entry: ProbeTarget, section: ProbesSection, default_tenant: str) -> Target:
    where = entry.parsed()
    options = getattr(entry, where.kind) or _OPTION_TYPES[where.kind]()
    if isinstance(options, DnsOptions):  # the url's name and type fill what the block leaves out
        options = options.model_copy(update={"name": options.name or where.dns_name,
                                             "type": options.type or where.dns_type or "A"})
    return Target(name, entry.tenant or default_tenant, where, options,
                  interval=float(entry.interval or section.interval), timeout=float(entry.timeout or section.timeout),
                  thresholds=_thresholds(section, entry), ip_protocol=entry.ip_protocol, ip_fallback=entry.ip_fallback,
                  labels=dict(entry.labels), runs_on=tuple(entry.runs_on))


def targets_of(config: Config) -> list[Target]:
    """Every enabled target, sorted by name; none when ``probes.enabled`` is false. Tenant default: agent.tenant."""
    section = config.probes
    if not section.enabled:
        return []
    return [target_of(name, entry, section, config.agent.tenant)
            for name, entry in sorted(section.targets.items()) if entry.enabled]


def adhoc_target(url: str, tenant: str, *, timeout: float = 10.0, options: Options | None = None,
                 section: ProbesSection | None = None) -> Target:
    """A target from the command line: the URL, named after itself, with the defaults of ``section``."""
    where = target_from_url(url)
    section = section or ProbesSection()
    chosen = options if options is not None and isinstance(options, _OPTION_TYPES[where.kind]) else None
    if chosen is None:
        chosen = _OPTION_TYPES[where.kind]()
    if isinstance(chosen, DnsOptions):
        chosen = chosen.model_copy(update={"name": chosen.name or where.dns_name,
                                           "type": chosen.type or where.dns_type or "A"})
    return Target(where.url, tenant, where, chosen, interval=max(float(section.interval), timeout + 1),
                  timeout=timeout, thresholds=_thresholds(section))
