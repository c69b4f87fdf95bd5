"""Threshold checks: read the facts the collectors cached, judge them.

Checks never collect; they read the metric cache, so a check costs no I/O and
sees exactly what Prometheus sees. A check whose source collector has no
fresh data is skipped (not judged OK), so a dead collector cannot silently
resolve incidents; the ``collectors`` check reports the dead collector itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from custode.agent.config import ChecksSection, CpuCheck, FilesystemCheck, MemoryCheck
from custode.agent.incidents import CheckResult, IncidentChange, Incidents, Severity
from custode.agent.metric_cache import MetricCache, by_label, samples
from custode.agent.table import human_bytes


@dataclass
class Evaluation:
    """All results of one check over its targets; ``complete`` allows reconciling."""

    check: str
    results: list[CheckResult] = field(default_factory=list)
    hold_for: float | None = None
    complete: bool = True
    scope: str = ""
    """Target prefix this evaluation speaks for (``host:``); reconciling stays inside it."""


def judge_filesystem(cfg: FilesystemCheck, host: str, mount: str, avail: float,
                     total: float) -> tuple[Severity, str, dict[str, object]]:
    """Free space of one filesystem against the levels: the same words for local and farm hosts."""
    percent = 100.0 * avail / total
    severity = cfg.severity_of(percent)
    summary = (f"filesystem {mount} on {host} has {percent:.1f}% free "
               f"({human_bytes(avail)} of {human_bytes(total)})")
    if severity != "ok":
        summary += f", below the {severity} threshold of {cfg.limit_for(severity):g}%"
    return severity, summary, {"mountpoint": mount, "avail_bytes": avail, "size_bytes": total,
                               "avail_percent": round(percent, 2)}


def judge_memory(cfg: MemoryCheck, host: str, available: float, total: float) -> tuple[Severity, str, dict]:
    percent = 100.0 * available / total
    summary = (f"memory on {host}: {percent:.1f}% available "
               f"({human_bytes(available)} of {human_bytes(total)})")
    return cfg.severity_of(percent), summary, {"available_percent": round(percent, 2)}


def judge_cpu(cfg: CpuCheck, host: str, busy_ratio: float) -> tuple[Severity, str, dict]:
    percent = 100.0 * busy_ratio
    return cfg.severity_of(percent), f"CPU on {host} is {percent:.0f}% busy", {"busy_percent": round(percent, 1)}


def service_summary(host: str, name: str, manager: str) -> str:
    return (f"service {name} on {host} has failed" if manager == "systemd" else
            f"service {name} on {host} is set to start automatically but is not running")


class HostChecks:
    """The checks of the host Custode runs on."""

    def __init__(self, config: ChecksSection, tenant: str, host: str) -> None:
        self.config = config
        self.tenant = tenant
        self.host = host
        self.scope = f"{host}:"

    def _result(self, check: str, thing: str, severity: Severity, summary: str, **details: object) -> CheckResult:
        return CheckResult(self.tenant, check, f"{self.host}:{thing}", severity, summary,
                           {"host": self.host, **details})

    def evaluate(self, cache: MetricCache) -> list[Evaluation]:
        evaluations = []
        checks: list[tuple[bool, str, Callable[[MetricCache], Evaluation | None]]] = [
            (self.config.filesystem.enabled, "filesystem", self._filesystem),
            (self.config.memory.enabled, "memory", self._memory),
            (self.config.cpu.enabled, "cpu", self._cpu),
            (self.config.services.enabled, "services", self._services),
            (self.config.collectors.enabled, "collectors", self._collectors),
        ]
        for enabled, _name, function in checks:
            if enabled:
                evaluation = function(cache)
                if evaluation is not None:
                    evaluations.append(evaluation)
        return evaluations

    def _filesystem(self, cache: MetricCache) -> Evaluation | None:
        families = cache.families("filesystem")
        if families is None:
            return None
        cfg = self.config.filesystem
        only = re.compile(cfg.mount_points) if cfg.mount_points else None
        size = by_label(families, "node_filesystem_size_bytes", "mountpoint")
        evaluation = Evaluation("filesystem", hold_for=cfg.for_, scope=self.scope)
        for labels, avail in samples(families, "node_filesystem_avail_bytes"):
            mount = labels["mountpoint"]
            total = size.get(mount, 0.0)
            if total <= 0 or (only and not only.search(mount)):
                continue
            severity, summary, details = judge_filesystem(cfg, self.host, mount, avail, total)
            evaluation.results.append(self._result("filesystem", mount, severity, summary, **details))
        for labels, error in samples(families, "node_filesystem_device_error"):
            if error >= 1 and labels["mountpoint"] not in size:
                mount = labels["mountpoint"]
                evaluation.results.append(self._result(
                    "filesystem", mount, "warning",
                    f"filesystem {mount} on {self.host} does not answer (stuck or failed mount)", mountpoint=mount))
        return evaluation

    def _memory(self, cache: MetricCache) -> Evaluation | None:
        families = cache.families("memory")
        total = samples(families, "node_memory_MemTotal_bytes")
        avail = samples(families, "node_memory_MemAvailable_bytes")
        if not total or not avail or total[0][1] <= 0:
            return None
        cfg = self.config.memory
        severity, summary, details = judge_memory(cfg, self.host, avail[0][1], total[0][1])
        result = self._result("memory", "memory", severity, summary, **details)
        return Evaluation("memory", [result], hold_for=cfg.for_, scope=self.scope)

    def _cpu(self, cache: MetricCache) -> Evaluation | None:
        busy = samples(cache.families("cpu"), "custode_cpu_utilisation_ratio")
        if not busy:
            return None
        cfg = self.config.cpu
        severity, summary, details = judge_cpu(cfg, self.host, busy[0][1])
        result = self._result("cpu", "cpu", severity, summary, **details)
        return Evaluation("cpu", [result], hold_for=cfg.for_, scope=self.scope)

    def _services(self, cache: MetricCache) -> Evaluation | None:
        families = cache.families("services")
        if families is None:
            return None
        cfg = self.config.services
        ignore = re.compile(cfg.ignore) if cfg.ignore else None
        evaluation = Evaluation("services", hold_for=cfg.for_, scope=self.scope)
        for labels, failed in samples(families, "custode_service_failed"):
            name = labels.get("name", "?")
            if failed < 1 or (ignore and ignore.search(name)):
                continue
            manager = labels.get("manager", "")
            evaluation.results.append(self._result("services", name, cfg.severity,
                                                   service_summary(self.host, name, manager),
                                                   service=name, manager=manager))
        return evaluation

    def _collectors(self, cache: MetricCache) -> Evaluation:
        cfg = self.config.collectors
        evaluation = Evaluation("collectors", hold_for=cfg.for_, scope=self.scope)
        for name, outcome in sorted(cache.outcomes().items()):
            failures = outcome.consecutive_failures
            severity: Severity = cfg.severity if failures >= cfg.failures else "ok"
            summary = (f"collector {name} on {self.host} failed {failures} times in a row: {outcome.error}"
                       if severity != "ok" else f"collector {name} on {self.host} works")
            evaluation.results.append(self._result("collectors", f"collector/{name}", severity, summary,
                                                   collector=name, error=outcome.error))
        return evaluation


def apply(incidents: Incidents, evaluations: Iterable[Evaluation], now: float | None = None) -> list[IncidentChange]:
    """Feed evaluations into the incident model; reconcile complete ones."""
    changes: list[IncidentChange] = []
    for evaluation in evaluations:
        targets = set()
        tenants = set()
        for result in evaluation.results:
            change = incidents.observe(result, hold_for=evaluation.hold_for, now=now)
            targets.add(result.target)
            tenants.add(result.tenant)
            if change:
                changes.append(change)
        if evaluation.complete:
            for tenant in tenants or _tenants_of(incidents, evaluation.check):
                changes += incidents.reconcile(tenant, evaluation.check, targets, now=now, scope=evaluation.scope)
    return changes


def _tenants_of(incidents: Incidents, check: str) -> set[str]:
    rows = incidents.state.query("SELECT DISTINCT tenant FROM check_states WHERE check_name = ?", (check,))
    return {r["tenant"] for r in rows}
