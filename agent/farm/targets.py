"""The hosts farm mode polls, with their effective settings, resolved once from the config."""

from __future__ import annotations

from dataclasses import dataclass, field

from custode.agent.transports.config import HostConfig


@dataclass(frozen=True)
class Target:
    name: str
    tenant: str
    host: HostConfig
    interval: float
    timeout: float
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def transport(self) -> str:
        return self.host.transport

    def metric_labels(self) -> dict[str, str]:
        """``tenant`` and ``host`` first, then the host's own labels (role, application, site…)."""
        return {"tenant": self.tenant, "host": self.name, **self.labels}


def targets_of(config) -> list[Target]:
    """Every host farm mode polls, sorted by name; its tenant defaults to the agent's."""
    farm = config.farm
    return [Target(name, host.tenant or config.agent.tenant, host,
                   float(host.poll_interval or farm.interval), float(host.poll_timeout or farm.timeout),
                   dict(host.labels))
            for name, host in sorted(config.polled_hosts().items())]
