"""The metric cache: the only thing a scrape touches.

Collectors publish here when they finish; the exposition text is rendered at
that moment (in the collector's thread), so that serving ``/metrics`` is a
lock-free read of a byte string. That keeps a scrape's cost flat however many
collectors there are and however slow they are.

Farm mode publishes tens of thousands of series under the same names as the
local collectors (``node_filesystem_avail_bytes`` of 500 hosts), so rendering
is incremental: each source's samples are rendered once per update of that
source and kept as bytes; an update re-renders only its own source, and the
exposition is a join of the kept pieces, one HELP/TYPE header per name. The
gzipped copy is made on the first scrape that asks for it.
"""

from __future__ import annotations

import gzip
import threading
import time
from typing import TYPE_CHECKING, Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

if TYPE_CHECKING:
    from custode.agent.collection import RunOutcome


class Exposition:
    """One rendered exposition; immutable apart from the gzipped copy made on demand."""

    __slots__ = ("plain", "rendered_at", "series", "_gzipped")

    def __init__(self, plain: bytes, rendered_at: float, series: int) -> None:
        self.plain = plain
        self.rendered_at = rendered_at
        self.series = series
        self._gzipped: bytes | None = None

    @property
    def gzipped(self) -> bytes:
        # Two scrapes racing here both compress; either result is right, so no lock.
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.plain, compresslevel=5)
        return self._gzipped


class _Families:
    """Adapter: prometheus_client's renderer wants an object with collect()."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def samples(families: Iterable[Metric] | None, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called ``name``: how checks and reports read facts."""
    return [(s.labels, s.value) for family in families or () for s in family.samples if s.name == name]


def by_label(families: Iterable[Metric] | None, name: str, label: str) -> dict[str, float]:
    """Samples of ``name`` keyed by one label's value (e.g. sizes by mountpoint)."""
    return {labels[label]: value for labels, value in samples(families, name)}


def merge_families(groups: Iterable[Iterable[Metric]]) -> list[Metric]:
    """One family per metric name, samples of every source appended in order.

    Several collectors may emit the same family (e.g. the capability gauge);
    the text format allows each name only once.
    """
    merged: dict[str, Metric] = {}
    for families in groups:
        for family in families:
            existing = merged.get(family.name)
            if existing is None:
                copy = Metric(family.name, family.documentation, family.type, family.unit)
                copy.samples = list(family.samples)
                merged[family.name] = copy
            else:
                existing.samples.extend(family.samples)
    return list(merged.values())


def render_source(families: Iterable[Metric]) -> dict[str, tuple[bytes, bytes, int]]:
    """Family name -> (HELP/TYPE header, sample lines, sample count) for one source's families."""
    rendered: dict[str, tuple[bytes, bytes, int]] = {}
    for family in merge_families([families]):
        text = generate_latest(_Families([family]))  # type: ignore[arg-type]
        header_end = text.index(b"\n", text.index(b"\n") + 1) + 1  # HELP and TYPE lines
        rendered[family.name] = (text[:header_end], text[header_end:], len(family.samples))
    return rendered


class MetricCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, list[Metric]] = {}
        self._rendered: dict[str, dict[str, tuple[bytes, bytes, int]]] = {}
        self._outcomes: dict[str, "RunOutcome"] = {}
        self._exposition = Exposition(b"", time.time(), 0)

    def update(self, source: str, families: list[Metric] | None, outcome: "RunOutcome | None" = None) -> None:
        """Replace ``source``'s families (None drops them: a failed run shows no stale data)."""
        self.update_many({source: families}, {source: outcome} if outcome is not None else {})

    def update_many(self, updates: dict[str, list[Metric] | None],
                    outcomes: dict[str, "RunOutcome"] | None = None) -> None:
        """Replace several sources at once (farm mode: the hosts polled since the last tick), one render."""
        rendered = {source: render_source(families) if families else {}  # outside the lock: the slow part
                    for source, families in updates.items()}
        with self._lock:
            for source, families in updates.items():
                if families is None:
                    self._families.pop(source, None)
                else:
                    self._families[source] = families
                self._rendered[source] = rendered[source]
            self._outcomes.update(outcomes or {})
            self._render()

    def _render(self) -> None:
        pieces = dict(self._rendered)
        pieces["\x00meta"] = render_source(self._meta_families())  # sorts after no real source name matters
        by_name: dict[str, list[tuple[bytes, bytes, int]]] = {}
        for source in sorted(pieces):
            for name, piece in pieces[source].items():
                by_name.setdefault(name, []).append(piece)
        chunks: list[bytes] = []
        series = 0
        for name in sorted(by_name):
            parts = by_name[name]
            chunks.append(parts[0][0])
            for _, body, count in parts:
                chunks.append(body)
                series += count
        self._exposition = Exposition(b"".join(chunks), time.time(), series)
    def _meta_families(self) -> list[Metric]:
        success = GaugeMetricFamily("custode_collector_success",
                                    "1 if the collector's last run succeeded, 0 if it failed or timed out.",
                                    labels=["collector"])
        duration = GaugeMetricFamily("custode_collector_duration_seconds",
                                     "Wall time of the collector's last run.", labels=["collector"])
        last_run = GaugeMetricFamily("custode_collector_last_run_timestamp_seconds",
                                     "Unix time the collector's last run finished.", labels=["collector"])
        for name in sorted(self._outcomes):
            outcome = self._outcomes[name]
            success.add_metric([name], 1.0 if outcome.success else 0.0)
            duration.add_metric([name], outcome.duration)
            last_run.add_metric([name], outcome.finished_at)
        return [success, duration, last_run] if self._outcomes else []

    # --- readers ------------------------------------------------------------------

    @property
    def exposition(self) -> Exposition:
        return self._exposition  # an atomic reference read: no lock on the scrape path

    def families(self, source: str) -> list[Metric] | None:
        """The families a source last published, or None if it has none now."""
        with self._lock:
            families = self._families.get(source)
            return list(families) if families is not None else None

    def outcome(self, source: str) -> "RunOutcome | None":
        with self._lock:
            return self._outcomes.get(source)

    def outcomes(self) -> dict[str, "RunOutcome"]:
        with self._lock:
            return dict(self._outcomes)
