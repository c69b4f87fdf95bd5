"""The servers section of a report: daily host rows turned into availability, trends, security state and outages.

The daily rows (:mod:`custode.agent.history.store`) are one per host and
Europe/Rome day: polls (farm) or collection cycles (agent), the successes, and
a JSON ``data`` of running sums, peaks and the day's last facts. The report
reads them in one query for the whole period, whatever its length, so a year
of 50 servers is 18,300 rows read once.

Figures, and why they are computed so:

* availability is successes / polls over the period: each row already counts
  the polls (farm) or collection cycles (agent) of its day;
* CPU and memory average are the period's sum over its sample count (a day
  with fewer polls weighs less, as it should); the peak is the highest daily peak;
* a disk's daily figure is its *peak* use (the tightest moment of the day):
  capacity is about the moment it fills, not the average; ``full_by`` is where
  the least-squares line through the daily peaks reaches 100 %, None when the
  line is flat or falling, or reaches 100 % more than ten years on;
* the security state is the last day that reported it (what is true at the end
  of the period); days with the antivirus off and days with an unhealthy disk
  are counted over the whole period;
* System-log errors: each day keeps the peak of its polls' 24-hour counts, so
  their sum over the days approximates the period's errors and criticals;
* outages are the tenant's ``reachability`` incidents, cut to the period.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from custode.agent.calendar import ROME
from custode.agent.farm.snapshot import OsInfo
from custode.agent.farm.windows_eos import WindowsSupport, support_from_name, support_status
from custode.agent.history.model import HistorySource
from custode.agent.history.store import HostDay
from custode.agent.incidents import Incidents
from custode.agent.reports.document import DiskTrend, Outage, ServerRecord

if TYPE_CHECKING:
    from custode.agent.state import State

REACHABILITY_CHECK = "reachability"
"""The check whose incidents are outages (custode.agent.farm.checks)."""
FULL_BY_HORIZON_DAYS = 3650
"""A disk that fills further away than this is not filling, for a report."""
_PACIFIC = timezone(timedelta(hours=-8))
"""Microsoft's support dates are days in Redmond (custode.agent.farm.windows_eos)."""
Source = Literal["farm", "agent"]


def _source(row: HostDay) -> Source:
    return "agent" if row.source == HistorySource.AGENT else "farm"


# --- one server ---------------------------------------------------------------------------------------

def server_records(days: Iterable[HostDay], moment: float) -> tuple[ServerRecord, ...]:
    """One record per host, by host name; ``moment`` is when the OS support is judged (the period's end)."""
    by_host: dict[str, list[HostDay]] = {}
    for row in days:
        by_host.setdefault(row.host, []).append(row)
    return tuple(server_record(host, sorted(rows, key=lambda r: r.day), moment)
                 for host, rows in sorted(by_host.items()))


def server_record(host: str, days: Sequence[HostDay], moment: float) -> ServerRecord:
    """The record of one host from its days (oldest first)."""
    polls = sum(d.polls for d in days)
    successes = sum(d.successes for d in days)
    cpu_avg, cpu_max, daily_cpu = usage(days, "cpu")
    memory_avg, memory_max, daily_memory = usage(days, "memory")
    os_name = _last(days, "os")
    support = os_support(days, moment)
    antivirus_active = _antivirus_active(days)
    return ServerRecord(
        host=host, os=os_name, source=_source(days[-1]),
        availability_percent=round(100 * successes / polls, 3) if polls else None,
        days_with_data=len(days), cpu_avg_percent=cpu_avg, cpu_max_percent=cpu_max,
        memory_avg_percent=memory_avg, memory_max_percent=memory_max, daily_cpu=daily_cpu,
        daily_memory=daily_memory, disks=disk_trends(days),
        antivirus=_antivirus_words(days, antivirus_active),
        antivirus_signature_age_days=_last(days, "signature_age_max_days"),
        updates_pending=_last(days, "updates_pending_max"),
        updates_security_pending=_last(days, "security_pending_max"),
        last_update_installed=_last_installed(days),
        os_supported=None if support is None else not (support.unsupported or support.contract_excluded),
        event_errors=_event_errors(days),
        hardware_problems=("unhealthy_disks",) if any(d.data.get("unhealthy_disks_max") for d in days) else (),
        antivirus_active=antivirus_active,
        antivirus_days_inactive=sum(1 for d in days if d.data.get("antivirus_inactive_polls")),
        os_end_of_support=None if support is None or support.end_of_support is None
        else datetime.fromtimestamp(support.end_of_support, _PACIFIC).date(),
        unhealthy_disk_days=sum(1 for d in days if d.data.get("unhealthy_disks_max")))


def _last(days: Sequence[HostDay], key: str) -> Any:
    """The value of ``key`` on the last day that has it: the state at the end of the period."""
    return next((d.data[key] for d in reversed(days) if d.data.get(key) is not None), None)


def usage(days: Sequence[HostDay], key: str) -> tuple[float | None, float | None,
                                                      tuple[tuple[date, float, float], ...]]:
    """(period average, period peak, (day, average, peak) per day) of a running ``{sum, n, max}`` statistic."""
    slots = [(d.day, d.data[key]) for d in days if d.data.get(key) and d.data[key].get("n")]
    if not slots:
        return None, None, ()
    total = sum(slot["sum"] for _, slot in slots)
    count = sum(slot["n"] for _, slot in slots)
    daily = tuple((day, round(slot["sum"] / slot["n"], 2), round(slot["max"], 2)) for day, slot in slots)
    return round(total / count, 2), round(max(slot["max"] for _, slot in slots), 2), daily


def disk_trends(days: Sequence[HostDay]) -> tuple[DiskTrend, ...]:
    """Each mount point's daily peak use, start, end, peak and fill date, by mount point."""
    peaks: dict[str, list[tuple[date, float]]] = {}
    sizes: dict[str, int] = {}
    for row in days:
        for mount, slot in (row.data.get("filesystems") or {}).items():
            peaks.setdefault(mount, []).append((row.day, round(100.0 - float(slot["min_free_percent"]), 2)))
            sizes[mount] = int(slot.get("size_bytes") or 0)
    return tuple(DiskTrend(mount=mount, size_bytes=sizes[mount], used_percent_start=series[0][1],
                           used_percent_end=series[-1][1], used_percent_max=max(v for _, v in series),
                           full_by=full_by(series), daily_used_percent=tuple(series))
                 for mount, series in sorted(peaks.items()))


def full_by(series: Sequence[tuple[date, float]]) -> date | None:
    """The day the least-squares line through (day, used %) reaches 100 %; None when it never does soon.

    Not before the last day measured (a line already past 100 % means "full now"), and None when the
    line is flat or falling, there are fewer than two days, or it reaches 100 % more than
    :data:`FULL_BY_HORIZON_DAYS` after the last day.
    """
    if len(series) < 2:
        return None
    origin = series[0][0]
    xs = [(day - origin).days for day, _ in series]
    ys = [value for _, value in series]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    if slope <= 1e-9:
        return None
    crossing = math.ceil(round(mean_x + (100.0 - mean_y) / slope, 6))
    last = series[-1][0]
    day = max(origin + timedelta(days=crossing), last)
    return None if (day - last).days > FULL_BY_HORIZON_DAYS else day


def os_support(days: Sequence[HostDay], moment: float) -> WindowsSupport | None:
    """The Windows lifecycle verdict at ``moment``; None for other systems or an unknown release.

    Rows that keep the version and build (``os_version``, ``os_build``) are judged on them; rows with
    the name alone (farm mode's daily rows) on the release the name states.
    """
    last = next((d.data for d in reversed(days) if d.data.get("os")), None)
    if last is None or "windows" not in str(last["os"]).lower():
        return None
    name = str(last["os"])
    if last.get("os_version") or last.get("os_build"):
        info = OsInfo("windows", name, str(last.get("os_version") or ""), build=str(last.get("os_build") or ""))
        verdict = support_status(info, moment)
        return verdict if verdict.end_of_support is not None else None
    return support_from_name(name, moment)


def _antivirus_active(days: Sequence[HostDay]) -> bool | None:
    """On the last day with antivirus data: False if any poll that day found no active product."""
    for row in reversed(days):
        active, inactive = row.data.get("antivirus_active_polls", 0), row.data.get("antivirus_inactive_polls", 0)
        if active or inactive:
            return not inactive
    return None


def _antivirus_words(days: Sequence[HostDay], active: bool | None) -> str | None:
    """"Microsoft Defender, active" when the rows name the product, else the state alone ("active", "inactive")."""
    if active is None:
        return None
    state = "active" if active else "inactive"
    products = _last(days, "antivirus_products")
    return f"{', '.join(products)}, {state}" if products else state


def _last_installed(days: Sequence[HostDay]) -> datetime | None:
    moments = [d.data["last_update_installed"] for d in days if d.data.get("last_update_installed")]
    return datetime.fromtimestamp(max(moments), ROME) if moments else None


def _event_errors(days: Sequence[HostDay]) -> int | None:
    counted = [int(d.data.get("events_error_max", 0)) + int(d.data.get("events_critical_max", 0))
               for d in days if "events_error_max" in d.data or "events_critical_max" in d.data]
    return sum(counted) if counted else None


# --- outages ------------------------------------------------------------------------------------------

def outages(state: "State", tenant: str, start: float, end: float) -> tuple[Outage, ...]:
    """The tenant's reachability incidents cut to ``[start, end)`` (``end``: the period's end, or now)."""
    out = []
    for incident in Incidents(state).overlapping(tenant, REACHABILITY_CHECK, start, end):
        begin = max(incident.opened_at, start)
        resolved = incident.resolved_at
        finish = resolved if resolved is not None and resolved < end else None
        host = str(incident.details.get("host") or incident.target.split(":", 1)[0])
        out.append(Outage(host=host, start=datetime.fromtimestamp(begin, ROME),
                          end=None if finish is None else datetime.fromtimestamp(finish, ROME),
                          seconds=round((finish if finish is not None else end) - begin, 3),
                          summary=incident.summary))
    return tuple(out)
