"""``custode once``: run every enabled collector once and show what it found.

The first thing a sysadmin runs after installing: does Custode see this host
the way I do? So the table leads with CPU, memory and filesystems in human
units, then says which collectors worked and why the others did not.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from prometheus_client.core import Metric

from custode.agent import __version__
from custode.agent.calendar import ROME
from custode.agent.clock import now_rome
from custode.agent.collection import CollectorRunner, RunOutcome
from custode.agent.config_loader import LoadedConfig
from custode.agent.metric_cache import MetricCache, by_label, samples
from custode.agent.runtime import build_runners
from custode.agent.table import human_age, human_bytes, table


def collect_once(loaded: LoadedConfig) -> tuple[MetricCache, list[CollectorRunner]]:
    """Run all enabled collectors in parallel, each within its own timeout."""
    cache = MetricCache()
    runners = build_runners(loaded, cache)
    threads = [threading.Thread(target=r.run, daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return cache, runners


def _one(families: list[Metric] | None, name: str) -> float | None:
    found = samples(families, name)
    return found[0][1] if found else None


def _cpu_line(cache: MetricCache) -> str:
    cpu = cache.families("cpu")
    cores = len({labels["cpu"] for labels, _ in samples(cpu, "node_cpu_seconds_total")})
    busy = _one(cpu, "custode_cpu_utilisation_ratio")
    parts = [f"{cores} logical CPUs" if cores else "no data"]
    if busy is not None:
        parts.append(f"{busy * 100:.0f}% busy")
    load = [_one(cache.families("loadavg"), f"node_load{n}") for n in (1, 5, 15)]
    if all(v is not None for v in load):
        parts.append("load " + " ".join(f"{v:.2f}" for v in load))  # type: ignore[union-attr]
    return ", ".join(parts)


def _memory_line(cache: MetricCache) -> str:
    mem = cache.families("memory")
    total = _one(mem, "node_memory_MemTotal_bytes")
    avail = _one(mem, "node_memory_MemAvailable_bytes")
    if not total or avail is None:
        return "no data"
    line = f"{human_bytes(avail)} available of {human_bytes(total)} ({100 * avail / total:.1f}%)"
    swap_total = _one(mem, "node_memory_SwapTotal_bytes")
    swap_free = _one(mem, "node_memory_SwapFree_bytes")
    if swap_total:
        line += f"; swap {human_bytes(swap_total - (swap_free or 0))} used of {human_bytes(swap_total)}"
    return line


def _uptime_line(cache: MetricCache) -> str:
    boot = _one(cache.families("boottime"), "node_boot_time_seconds")
    if boot is None:
        return "no data"
    return f"up {human_age(time.time() - boot)} (since {datetime.fromtimestamp(boot, ROME):%Y-%m-%d %H:%M %Z})"


def _filesystems(cache: MetricCache) -> str:
    fs = cache.families("filesystem")
    size = by_label(fs, "node_filesystem_size_bytes", "mountpoint")
    avail = by_label(fs, "node_filesystem_avail_bytes", "mountpoint")
    free = by_label(fs, "node_filesystem_free_bytes", "mountpoint")
    rows = []
    for labels, error in samples(fs, "node_filesystem_device_error"):  # one sample per mount
        mount = labels["mountpoint"]
        if error and mount not in size:
            rows.append([mount, labels["device"], labels["fstype"], "-", "-", "-", "not answering"])
            continue
        total = size.get(mount, 0.0)
        used = total - free.get(mount, 0.0)
        pct = f"{100 * used / total:.0f}%" if total else "-"
        rows.append([mount, labels["device"], labels["fstype"], human_bytes(total), human_bytes(used),
                     human_bytes(avail.get(mount, 0.0)), pct])
    if not rows:
        return "  no data"
    return table(["MOUNTPOINT", "DEVICE", "TYPE", "SIZE", "USED", "AVAIL", "USE%"], sorted(rows), indent="  ")


def _status_word(outcome: RunOutcome | None) -> str:
    if outcome is None:
        return "not run"
    if outcome.unavailable:
        return "n/a"
    return "ok" if outcome.success else "FAILED"


def render_table(loaded: LoadedConfig, cache: MetricCache, runners: list[CollectorRunner]) -> str:
    agent = loaded.model.agent
    out = [f"Custode {__version__} on {agent.hostname} (tenant {agent.tenant}), "
           f"{now_rome():%Y-%m-%d %H:%M:%S %Z}, config: {loaded.source}",
        "",
        f"CPU     {_cpu_line(cache)}",
        f"Memory  {_memory_line(cache)}",
        f"Uptime  {_uptime_line(cache)}",
        "",
        "Filesystems",
        _filesystems(cache),
        "",
        "Collectors",
    ]
    rows = []
    for runner in sorted(runners, key=lambda r: r.name):
        outcome = runner.last_outcome
        detail = (outcome.error or "") if outcome else ""
        took = f"{outcome.duration * 1000:.0f} ms" if outcome else ""
        series = sum(len(f.samples) for f in cache.families(runner.name) or ())
        rows.append([runner.name, _status_word(outcome), took, series, detail])
    out.append(table(["COLLECTOR", "STATUS", "TOOK", "SERIES", "DETAIL"], rows, indent="  "))
    return "\n".join(out) + "\n"


def render_json(loaded: LoadedConfig, cache: MetricCache, runners: list[CollectorRunner]) -> str:
    """One document: each collector's outcome and the series it produced (names, labels, values)."""
    from custode.agent.cli_output import document

    collectors = []
    for runner in sorted(runners, key=lambda r: r.name):
        outcome = runner.last_outcome
        collectors.append({
            "name": runner.name, "status": _status_word(outcome),
            "duration_seconds": round(outcome.duration, 4) if outcome else None,
            "finished_at": outcome.finished_at if outcome else None,
            "error": outcome.error if outcome else None,
            "series": [{"name": sample.name, "labels": dict(sample.labels), "value": sample.value}
                       for family in cache.families(runner.name) or () for sample in family.samples]})
    agent = loaded.model.agent
    return document("collectors", collectors, loaded, state=False, version=__version__, hostname=agent.hostname,
                    tenant=agent.tenant)


def all_succeeded(runners: list[CollectorRunner]) -> bool:
    return all(r.last_outcome is not None and r.last_outcome.success for r in runners)
