"""The one interface every collector implements.

A collector gathers facts about one concern (CPU, filesystems, ...) and never
decides anything: thresholds and incidents live in ``custode.agent.checks``. It returns
Prometheus metric families, which are typed (gauge/counter, label names) and are
exactly what the exposition needs, so the scrape path only serialises them.

Collectors are found through :mod:`custode.collectors.registry`; adding one means
adding a module with a ``@register`` class and touches no core code.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import AfterValidator, BaseModel, ConfigDict


def _valid_regex(pattern: str | None) -> str | None:
    # Fails at config load with the regex error, not at the first use.
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
    return pattern


Regex = Annotated[str | None, AfterValidator(_valid_regex)]
"""Config field type for an optional regular expression, checked when the config loads."""


class CollectorSettings(BaseModel):
    """Options specific to one collector (besides enabled/interval/timeout).

    Subclasses add fields; unknown keys are rejected so that a typo in the
    config is an error with a suggestion, not a silently ignored option.
    """

    model_config = ConfigDict(extra="forbid")


class CollectorUnavailable(Exception):
    """Raised by ``collect()`` when the concern does not exist on this host.

    Not an error of the collector: e.g. no systemd in a container. The runner
    reports it as a capability, not as a failed collection.
    """


class Collector:
    """Base class: subclasses set the class attributes and implement collect().

    ``collect()`` runs in a worker thread under a timeout enforced by the
    runner; it may block (a stuck NFS mount) without harming anything else.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    default_interval: ClassVar[float] = 15.0
    default_timeout: ClassVar[float] = 10.0
    default_enabled: ClassVar[bool] = True
    Settings: ClassVar[type[CollectorSettings]] = CollectorSettings

    def __init__(self, settings: CollectorSettings | None = None) -> None:
        self.settings = settings if settings is not None else self.Settings()

    def collect(self) -> list[Metric]:  # pragma: no cover - interface
        raise NotImplementedError


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """A gauge family with the given label names (shorthand used by collectors)."""
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def counter(name: str, documentation: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    """A counter family; ``name`` may end in ``_total`` as node_exporter's do."""
    return CounterMetricFamily(name, documentation, labels=list(labels))


def compile_pattern(pattern: str | None) -> re.Pattern[str] | None:
    """Compile an exclude/include regex from the config, or None when unset."""
    return re.compile(pattern) if pattern else None
