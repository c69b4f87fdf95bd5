"""The yearly analysis report of a comune's servers, from every host's daily rows (``host_daily``).

Per host over a period: availability, CPU and memory (average and peak),
the tightest moment of each disk, antivirus and Windows Update state, disk
health, failed services and System-log errors. By default the hosts farm mode
polls; ``sources`` adds the hosts that run their own agent (their availability
is the share of collection cycles that ran, and the time the agent was not
running is shown). The backup side of the report comes from ``custode backups
status`` and the restore certificates.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from custode.agent.calendar import ROME
from custode.agent.history.cycles import not_running
from custode.agent.history.model import HistorySource
from custode.agent.history.store import HostDay, days_between
from custode.agent.state import State
from custode.agent.table import table


@dataclass
class HostYear:
    host: str
    tenant: str
    first_day: str
    last_day: str
    days: int
    polls: int
    availability_percent: float
    os: str = ""
    cpu_avg_percent: float | None = None
    cpu_max_percent: float | None = None
    memory_avg_percent: float | None = None
    memory_max_percent: float | None = None
    filesystems: dict[str, float] = field(default_factory=dict)
    """Mount point -> lowest free percentage seen."""
    days_antivirus_inactive: int = 0
    signature_age_max_days: float | None = None
    updates_pending_max: int | None = None
    security_pending_max: int | None = None
    last_update_installed: str | None = None
    days_unhealthy_disks: int = 0
    failed_services_max: int | None = None
    events_error_max: int | None = None
    """Most System-log errors and criticals in one 24-h window."""
    top_errors: list[str] = field(default_factory=list)
    source: str = HistorySource.FARM.value
    """Who watched the host: ``farm`` (polled) or ``agent`` (its own Custode)."""
    agent_not_running_hours: float | None = None
    """Agent rows: hours of collection cycles that did not run (the agent, or its host, was not running)."""
    agent_longest_gap: str | None = None
    """Agent rows: the longest time without a cycle, ``3.5h from 2026-03-04 10:15``."""


def _average(stats: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    count = sum(s["n"] for s in stats)
    if not count:
        return None, None
    return round(sum(s["sum"] for s in stats) / count, 1), round(max(s["max"] for s in stats), 1)


def summarise(state: State, start: date, end: date, *, tenant: str | None = None, host: str | None = None,
              sources: Iterable[HistorySource] = (HistorySource.FARM,)) -> list[HostYear]:
    """One HostYear per host with data between ``start`` and ``end`` (both included), of the given sources."""
    rows: dict[str, list[HostDay]] = {}
    for day in days_between(state, start, end, tenant=tenant, host=host, sources=sources):
        rows.setdefault(day.host, []).append(day)
    return [_host_year(name, host_rows) for name, host_rows in rows.items()]


def _host_year(name: str, rows: list[HostDay]) -> HostYear:
    days = [r.data for r in rows]
    polls = sum(r.polls for r in rows)
    successes = sum(r.successes for r in rows)
    year = HostYear(host=name, tenant=rows[-1].tenant, first_day=rows[0].day.isoformat(),
                    last_day=rows[-1].day.isoformat(), days=len(rows), polls=polls,
                    availability_percent=round(100 * successes / polls, 2) if polls else 0, source=rows[-1].source)
    year.os = next((d["os"] for d in reversed(days) if d.get("os")), "")
    year.cpu_avg_percent, year.cpu_max_percent = _average([d["cpu"] for d in days if "cpu" in d])
    year.memory_avg_percent, year.memory_max_percent = _average([d["memory"] for d in days if "memory" in d])
    for day in days:
        for mount, slot in day.get("filesystems", {}).items():
            year.filesystems[mount] = min(year.filesystems.get(mount, 100.0), slot["min_free_percent"])
    year.days_antivirus_inactive = sum(1 for d in days if d.get("antivirus_inactive_polls"))
    year.days_unhealthy_disks = sum(1 for d in days if d.get("unhealthy_disks_max"))
    for attribute, key in (("signature_age_max_days", "signature_age_max_days"),
                           ("updates_pending_max", "updates_pending_max"),
                           ("security_pending_max", "security_pending_max"),
                           ("failed_services_max", "failed_services_max")):
        values = [d[key] for d in days if d.get(key) is not None]
        setattr(year, attribute, max(values) if values else None)
    errors = [max(d.get("events_error_max", 0), 0) + max(d.get("events_critical_max", 0), 0)
              for d in days if "events_error_max" in d or "events_critical_max" in d]
    year.events_error_max = max(errors) if errors else None
    installed = [d["last_update_installed"] for d in days if d.get("last_update_installed")]
    if installed:
        year.last_update_installed = datetime.fromtimestamp(max(installed), ROME).date().isoformat()
    counted: dict[str, int] = {}
    for day in days:
        for text, count in day.get("errors", {}).items():
            counted[text] = counted.get(text, 0) + count
    year.top_errors = [f"{count}× {text}" for text, count in sorted(counted.items(), key=lambda i: -i[1])[:3]]
    if year.source == HistorySource.AGENT:
        _agent_gaps(year, rows)
    return year


def _agent_gaps(year: HostYear, rows: list[HostDay]) -> None:
    """How long the agent was not running: the cycles missed, and the longest gap of the period."""
    missed = sum((r.polls - r.successes) * r.data.get("cycles", {}).get("interval", 0) for r in rows)
    year.agent_not_running_hours = round(missed / 3600, 1)
    gaps = [gap for gap in (not_running(r.data) for r in rows) if gap is not None]
    if gaps:
        longest = max(gaps, key=lambda gap: gap["seconds"])
        since = datetime.fromtimestamp(longest["from"], ROME).strftime("%Y-%m-%d %H:%M")
        year.agent_longest_gap = f"{longest['seconds'] / 3600:.1f}h from {since}"


COLUMNS = ("host", "tenant", "days", "availability_percent", "os", "cpu_avg_percent", "cpu_max_percent",
           "memory_avg_percent", "memory_max_percent", "filesystems", "days_antivirus_inactive",
           "signature_age_max_days", "updates_pending_max", "security_pending_max", "last_update_installed",
           "days_unhealthy_disks", "failed_services_max", "events_error_max", "top_errors", "source",
           "agent_not_running_hours", "agent_longest_gap")


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={v:g}%" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return " | ".join(value)
    return "" if value is None else str(value)


def render(years: list[HostYear], fmt: str) -> str:
    if fmt == "json":
        return "".join(json.dumps(asdict(y), ensure_ascii=False) + "\n" for y in years)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for year in years:
            writer.writerow([_cell(getattr(year, c)) for c in COLUMNS])
        return buffer.getvalue()
    if not years:
        return ("No farm history in this period (farm mode stores one row per polled host and day; "
                "--source agent or all: the hosts with their own agent).\n")
    agents = any(y.source == HistorySource.AGENT for y in years)
    rows = [(y.host, y.tenant, f"{y.first_day}..{y.last_day}", f"{y.availability_percent:g}%", y.os[:30],
             _pair(y.cpu_avg_percent, y.cpu_max_percent), _pair(y.memory_avg_percent, y.memory_max_percent),
             _cell(y.filesystems), y.days_antivirus_inactive, _cell(y.updates_pending_max),
             y.last_update_installed or "", y.days_unhealthy_disks) + ((_not_running(y),) if agents else ())
            for y in years]
    return table(("HOST", "TENANT", "PERIOD", "UP", "OS", "CPU AVG/MAX", "MEM AVG/MAX", "LOWEST FREE",
                  "AV OFF (DAYS)", "UPDATES MAX", "LAST UPDATE", "DISK ALARM (DAYS)")
                 + (("AGENT NOT RUNNING",) if agents else ()), rows) + "\n"


def _not_running(year: HostYear) -> str:
    """An agent host's time without collection cycles, with its longest stretch; empty for a polled host."""
    if year.source != HistorySource.AGENT or not year.agent_not_running_hours:
        return ""
    return f"{year.agent_not_running_hours:g}h" + (f" (longest {year.agent_longest_gap})"
                                                   if year.agent_longest_gap else "")


def _pair(average: float | None, peak: float | None) -> str:
    return "" if average is None else f"{average:g}/{peak:g}%"
