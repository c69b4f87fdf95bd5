"""Small helpers shared by the built-in host collectors.

Kept out of ``base`` because they are conveniences of these modules, not part
of the collector interface; the leading underscore keeps discovery away.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from custode.collectors.base import gauge


def matches(pattern: re.Pattern[str] | None, value: str) -> bool:
    """Unanchored search, like node_exporter's ``MatchString``, so its defaults mean the same."""
    return pattern is not None and pattern.search(value) is not None


def nonempty(families: Iterable[Metric]) -> list[Metric]:
    """Drop families without samples: a HELP/TYPE pair with no data only adds noise."""
    return [family for family in families if family.samples]


def scalar(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    """A label-less gauge holding one value: most host facts are just that."""
    family = gauge(name, documentation)
    family.add_metric([], float(value))
    return family


def capability(collector: str, name: str, available: bool) -> GaugeMetricFamily:
    """``custode_capability_available``: says *why* a collector reports nothing."""
    family = gauge("custode_capability_available",
                   "Whether an optional host capability a collector relies on is available (1) or not (0).",
                   ["collector", "capability"])
    family.add_metric([collector, name], 1.0 if available else 0.0)
    return family


def unique(seen: set[tuple[str, ...]], key: tuple[str, ...]) -> tuple[str, ...]:
    """Return ``key`` or, if already used, ``key`` with ``#2``, ``#3``... on its last part.

    Hardware often repeats names (two CPU packages both have "Core 0"); a
    stable suffix keeps every sample while never emitting a duplicate series.
    """
    candidate, n = key, 1
    while candidate in seen:
        n += 1
        candidate = (*key[:-1], f"{key[-1]}#{n}")
    seen.add(candidate)
    return candidate


def run_command(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a helper program with captured text output and a hard timeout.

    The C locale keeps the output parseable whatever the host language is;
    on Windows no console window flashes up when the agent runs as a service.
    """
    extra: dict[str, int] = {}
    if sys.platform == "win32":
        extra["creationflags"] = subprocess.CREATE_NO_WINDOW
    return subprocess.run(
        list(argv), capture_output=True, text=True, encoding="utf-8", errors="replace",
        stdin=subprocess.DEVNULL, timeout=timeout, check=False,
        env={**os.environ, "LC_ALL": "C", "SYSTEMD_COLORS": "0"}, **extra,
    )
