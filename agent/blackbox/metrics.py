"""Prometheus families of the probes, with blackbox_exporter's names.

A dashboard or alert rule written for blackbox_exporter (``probe_success``,
``probe_http_duration_seconds{phase}``, ``probe_ssl_earliest_cert_expiry -
time()``) works on Custode's probes unchanged. blackbox_exporter's own page
(``/probe?target=…``) has no labels: Prometheus adds the target's; Custode
probes many targets in one exposition, so each series carries ``tenant``,
``probe`` (the name in the config), ``target`` (the URL), ``kind`` and the
target's own labels. Facts blackbox_exporter does not have are
``custode_probe_*``. Families are built when a probe finishes and published
to the metric cache (one source per probe); a scrape only serialises them.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from custode.agent.blackbox.base import ProbeResult, Series, ip_hash

ERROR_LABEL_LIMIT = 200
"""Characters of the last failure reason kept in a label: enough to read, bounded for Prometheus."""


class _Families:
    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def add(self, name: str, documentation: str, labels: dict[str, str], value: float) -> None:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = Metric(name, documentation, "gauge")
        family.add_sample(name, labels, float(value))

    def result(self) -> list[Metric]:
        return list(self._families.values())


def blackbox_series(result: ProbeResult) -> list[Series]:
    """Every series blackbox_exporter shows for this probe (without the target's labels)."""
    common = [Series("probe_success", "Displays whether or not the probe was a success",
                     1.0 if result.success else 0.0),
              Series("probe_duration_seconds", "Returns how long the probe took to complete in seconds",
                     result.duration),
              Series("probe_timeout_seconds", "Returns how long the probe timeout is in seconds",
                     float(result.target.timeout))]
    if result.lookup_seconds is not None:
        common.append(Series("probe_dns_lookup_time_seconds",
                             "Returns the time taken for probe dns lookup in seconds", result.lookup_seconds))
    if result.ip_protocol is not None:
        common.append(Series("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6",
                             float(result.ip_protocol)))
    if result.ip_address is not None:
        common.append(Series("probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if "
                                                   "the IP address changes.", ip_hash(result.ip_address)))
    return common + [s for s in result.series if not s.name.startswith("custode_")]


def probe_families(result: ProbeResult, labels: dict[str, str], *, consecutive_failures: int | None = None,
                   last_success_at: float | None = None, custode: bool = True) -> list[Metric]:
    """One probe's families: blackbox_exporter's series with ``labels``, then Custode's own.

    ``consecutive_failures`` None leaves out the series that need the probe's
    history (an ad hoc ``custode probe URL`` has none); ``custode`` false
    leaves out every ``custode_*`` series (exactly blackbox_exporter's page)."""
    out = _Families()
    for series in blackbox_series(result):
        out.add(series.name, series.help, {**labels, **series.labels}, series.value)
    if not custode:
        return out.result()
    for series in result.series:
        if series.name.startswith("custode_"):
            out.add(series.name, series.help, {**labels, **series.labels}, series.value)
    if result.error:
        out.add("custode_probe_last_error_info", "Why the probe's last run failed (in the error label).",
                {**labels, "error": result.error[:ERROR_LABEL_LIMIT]}, 1.0)
    if consecutive_failures is not None:
        out.add("custode_probe_consecutive_failures", "Probes in a row that failed (the down incident opens at "
                                                      "probes.failures).", labels, consecutive_failures)
        out.add("custode_probe_last_probe_timestamp_seconds", "Unix time the probe's last run started.", labels,
                result.started_at)
    if last_success_at is not None:
        out.add("custode_probe_last_success_timestamp_seconds", "Unix time of the probe's last successful run.",
                labels, last_success_at)
    return out.result()


def merged(groups: Iterable[list[Metric]]) -> list[Metric]:
    """Several probes' families as one list (the command line renders them together)."""
    from custode.agent.metric_cache import merge_families

    return merge_families(groups)
