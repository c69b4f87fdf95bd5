"""Service-level compliance for Grafana: this month's and this quarter's figures per tenant and level.

The figures are those of ``custode sla report`` for the current month and
quarter (the same :func:`custode.agent.service_levels.report.as_json`), so a
dashboard and the quarterly report agree. Computing them walks every case of
the quarter through the calendars, which is too slow for a scrape: the ticket
service's publish step (its planner thread, off the scrape path) calls
:meth:`SlaMetrics.families`, which recomputes at most every ``refresh`` seconds
and otherwise hands back the last figures. A failure keeps the last good
figures and is logged: it must not take the ticket metrics down with it.

Labels: ``period`` is ``month`` or ``quarter`` (the current one; the
``custode_sla_period_start_timestamp_seconds`` family says which); ``level``
is the level key of the tenant's table, ``default:<priority>`` for old tickets
counted on the default table beside a tenant's own, ``bound`` is ``min`` or
``max`` (the two ends of a range such as €500–1,000).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric

from custode.agent.service_levels.compliance import OUTCOMES
from custode.agent.service_levels.period import SpanKind, current

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.state import State

log = logging.getLogger(__name__)
REFRESH = 300.0
"""Seconds between two computations: compliance moves with due times, not by the second."""
PERIODS: tuple[SpanKind, ...] = ("month", "quarter")


class SlaMetrics:
    """The service-level families of one config and state DB, recomputed at most every ``refresh`` seconds."""

    def __init__(self, config: "Config", state: "State", refresh: float = REFRESH) -> None:
        self.config = config
        self.state = state
        self.refresh = refresh
        self._lock = threading.Lock()
        self._families: list[Metric] | None = None
        self._at: float | None = None
        self._keys: tuple[str, ...] = ()

    def families(self, now: float) -> list[Metric]:
        """The families, recomputed when ``refresh`` passed or a new month began since the last time."""
        keys = tuple(current(kind, now).key for kind in PERIODS)
        with self._lock:
            fresh = self._at is not None and 0 <= now - self._at < self.refresh and keys == self._keys
            if fresh and self._families is not None:
                return self._families
            try:
                self._families = sla_families(self.config, self.state, now)
                self._at, self._keys = now, keys
            except Exception:  # noqa: BLE001 - keep the last figures; the ticket metrics must still be published
                log.exception("service-level metrics could not be computed; keeping the last figures")
            return self._families or []


def sla_families(config: "Config", state: "State", now: float) -> list[Metric]:
    """Compute the families now (the slow part; call it through :class:`SlaMetrics`)."""
    from custode.agent.service_levels.report import as_json, default_tenants, load_tenant_report

    tickets = GaugeMetricFamily("custode_sla_tickets", "Cases opened in the current month or quarter by how each "
                                "target went: within, late, not_known (the helpdesk cannot tell), open.",
                                labels=["tenant", "level", "kind", "outcome", "period"])
    opened = GaugeMetricFamily("custode_sla_cases_opened", "Cases (tickets, with their replacements) opened in the "
                               "current month or quarter.", labels=["tenant", "level", "period"])
    ratio = GaugeMetricFamily("custode_sla_within_target_ratio", "Share of the decided cases within target "
                              "(within / (within + late)); absent while none is decided.",
                              labels=["tenant", "level", "kind", "period"])
    met = GaugeMetricFamily("custode_sla_target_met", "1 when the share meets the contract's threshold, 0 when it "
                            "does not; absent with no threshold or no decided case.",
                            labels=["tenant", "level", "kind", "period"])
    threshold = GaugeMetricFamily("custode_sla_threshold_ratio", "The contract's threshold (0.9 for 90 %).",
                                  labels=["tenant", "level"])
    euros = GaugeMetricFamily("custode_sla_penalty_euros", "Penalty exposure for missed targets of the cases opened "
                              "in the period, in euros (bound: min/max of a range).",
                              labels=["tenant", "level", "bound", "period"])
    releases = GaugeMetricFamily("custode_sla_release_penalty_euros", "Penalty exposure for releases not announced "
                                 "in advance, in euros; absent while it cannot be evaluated.",
                                 labels=["tenant", "bound", "period"])
    evaluated = GaugeMetricFamily("custode_sla_release_penalty_evaluated", "1 when the tenant's releases could be "
                                  "checked for an announcement, 0 when not (see custode sla report).",
                                  labels=["tenant"])
    starts = GaugeMetricFamily("custode_sla_period_start_timestamp_seconds", "Start of the current month or quarter "
                               "(Europe/Rome) the figures are for.", labels=["period"])
    computed = GaugeMetricFamily("custode_sla_computed_timestamp_seconds", "When these figures were computed.")
    computed.add_metric([], now)
    spans = {kind: current(kind, now) for kind in PERIODS}
    for kind, span in spans.items():
        starts.add_metric([kind], span.start_ts)
    for tenant in default_tenants(config):
        for kind, span in spans.items():
            document = as_json(load_tenant_report(config, state, tenant, span, now))
            for level in document["levels"]:
                name = _level_label(document, level)
                if kind == "month" and level["threshold"] is not None:
                    threshold.add_metric([tenant, name], level["threshold"] / 100.0)
                bucket = _bucket(level, span.key)
                if bucket is None:
                    continue
                opened.add_metric([tenant, name, kind], bucket["opened"])
                _targets(bucket, level, [tenant, name], kind, tickets, ratio, met)
                euros.add_metric([tenant, name, "min", kind], bucket["exposure"]["euros_min"])
                euros.add_metric([tenant, name, "max", kind], bucket["exposure"]["euros_max"])
            _releases(document, tenant, kind, span.key, releases, evaluated if kind == "month" else None)
    return [tickets, opened, ratio, met, threshold, euros, releases, evaluated, starts, computed]


def _level_label(document: dict[str, Any], level: dict[str, Any]) -> str:
    """The level key; ``default:<key>`` for an old ticket's default-table level beside the tenant's own table."""
    if level["table"] == "default" and document["table"] == "tenant":
        return f"default:{level['level']}"
    return str(level["level"])


def _bucket(level: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((b for b in level["buckets"] if b["period"] == key), None)


def _targets(bucket: dict[str, Any], level: dict[str, Any], labels: list[str], period: str,
             tickets: GaugeMetricFamily, ratio: GaugeMetricFamily, met: GaugeMetricFamily) -> None:
    for target in level["kinds"]:
        figures = bucket.get(target)
        if figures is None:
            continue
        for outcome in OUTCOMES:
            tickets.add_metric([*labels, target, outcome.value, period], figures[outcome.value])
        if figures["share"] is not None:
            ratio.add_metric([*labels, target, period], figures["share"])
        if figures["met"] is not None:
            met.add_metric([*labels, target, period], 1.0 if figures["met"] else 0.0)


def _releases(document: dict[str, Any], tenant: str, period: str, key: str, releases: GaugeMetricFamily,
              evaluated: GaugeMetricFamily | None) -> None:
    facts = document["releases"]
    if facts is None:
        return
    if evaluated is not None:
        evaluated.add_metric([tenant], 1.0 if facts["evaluated"] else 0.0)
    bucket = next((b for b in facts["buckets"] if b["period"] == key), None)
    if bucket is None or bucket["exposure"] is None:
        return
    releases.add_metric([tenant, "min", period], bucket["exposure"]["euros_min"])
    releases.add_metric([tenant, "max", period], bucket["exposure"]["euros_max"])
