"""When each update window opens, and which ones a holiday or a closure skips.

Occurrences are computed, not stored: the config and the calendar are the
truth, so a closure added today moves next week's plan at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from custode.agent.calendar import ROME, BusinessCalendar
from custode.agent.config import Config


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
        weekdays = set(window.weekdays)
        for offset in range(days):
            day = start + timedelta(days=offset)
            if day.weekday() not in weekdays:
                continue
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
