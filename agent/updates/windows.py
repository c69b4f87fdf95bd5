"""When each update window opens, and which ones a holiday or a closure skips.

Occurrences are computed, not stored: the config and the calendar are the
truth, so a closure added today moves next week's plan at once. A weekly
window opens on its weekdays, a one-off window on each of its dates; either
is skipped, with the reason, on a holiday or closure day (no update on those
days, says the contract), whichever way it was planned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from custode.agent.calendar import ROME, BusinessCalendar
from custode.agent.config import Config
from custode.agent.transports import HostConfig
from custode.agent.updates.config import WindowConfig


@dataclass(frozen=True)
class WindowOccurrence:
    window: str
    application: str
    tenant: str | None
    start: datetime
    end: datetime
    skipped: bool
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {"window": self.window, "application": self.application, "tenant": self.tenant,
                "start": self.start.isoformat(), "end": self.end.isoformat(),
                "skipped": self.skipped, "reason": self.reason}

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def calendar_for(config: Config, tenant: str | None) -> BusinessCalendar:
    """The tenant's calendar (patron day, closures) or, for a farm-wide window, the provider's."""
    spec = config.tenants[tenant].calendar if tenant and tenant in config.tenants else None
    return BusinessCalendar.build(config.calendar, spec)


def tenants_concerned(tenant: str | None, hosts: Iterable[HostConfig]) -> list[str]:
    """The tenants a window is about: its own, else those of its hosts (a farm-wide window).

    The one rule for every e-mail to referents (start, outcome, urgent and
    advance notices), so a comune is never told of one and not of the other.
    Hosts without a tenant are the provider's and concern no comune.
    """
    if tenant:
        return [tenant]
    return sorted({host.tenant for host in hosts if host.tenant})


def window_tenants(config: Config, name: str) -> list[str]:
    """:func:`tenants_concerned` for the window called ``name`` in ``config``."""
    window = config.updates.windows[name]
    return tenants_concerned(window.tenant, [config.hosts[h] for h in window.hosts if h in config.hosts])


def _days(window: WindowConfig, start: date, days: int) -> list[date]:
    """The days in ``start`` … ``start + days - 1`` a window opens on (its dates, or its weekdays)."""
    if window.dates is not None:  # a handful of days: no need to walk the range
        end = start + timedelta(days=days)
        return [day for day in window.dates if start <= day < end]
    return [day for day in (start + timedelta(days=offset) for offset in range(days)) if window.opens_on(day)]


def occurrences(config: Config, start: date, days: int, names: list[str] | None = None,
                tenant: str | None = None) -> list[WindowOccurrence]:
    """Every occurrence starting on ``start`` … ``start + days - 1``, skipped ones included, sorted."""
    out = []
    for name, window in config.updates.windows.items():
        if not window.enabled or (names and name not in names):
            continue
        if tenant and window.tenant not in (None, tenant):
            continue
        calendar = calendar_for(config, window.tenant)
        for day in _days(window, start, days):
            begin = datetime.combine(day, window.start_time, ROME)
            reason = calendar.closed_reason(day)
            out.append(WindowOccurrence(window=name, application=window.application, tenant=window.tenant,
                                        start=begin, end=begin + timedelta(seconds=window.duration),
                                        skipped=reason is not None, reason=reason))
    out.sort(key=lambda o: (o.start, o.window))
    return out


def occurrence_at(config: Config, name: str, moment: datetime) -> WindowOccurrence | None:
    """The occurrence of window ``name`` that contains ``moment`` (skipped or not), if any."""
    window = config.updates.windows[name]
    back = int(window.duration // 86400) + 1
    for occ in occurrences(config, moment.astimezone(ROME).date() - timedelta(days=back), back + 1, [name]):
        if occ.contains(moment):
            return occ
    return None


def next_occurrence(config: Config, name: str, moment: datetime, horizon_days: int = 400) -> WindowOccurrence | None:
    """The first occurrence of ``name`` that is not skipped and starts after ``moment``."""
    for occ in occurrences(config, moment.astimezone(ROME).date(), horizon_days, [name]):
        if occ.start > moment and not occ.skipped:
            return occ
    return None
