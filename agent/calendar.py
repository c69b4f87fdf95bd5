"""The business calendar: which days are working days, and the office hours in them.

One module for update windows (no update on a holiday or a closure day) and
ticket SLA clocks (only office time counts). Italian national holidays and the
provincial capitals' patron saints come from python-holidays rather than a
hand-typed list that would silently go stale (Italy restored 4 October as a
national holiday in 2026; a typed list would not know). A comune that is not a
provincial capital (Crema, Capannori) gives its own patron day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator, model_validator

from custode.agent.clock import ROME
from custode.agent.schema import Strict

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SHORT = {name[:3]: i for i, name in enumerate(WEEKDAYS)}
_ITALIAN = {"lunedi": 0, "lunedì": 0, "martedi": 1, "martedì": 1, "mercoledi": 2, "mercoledì": 2,
            "giovedi": 3, "giovedì": 3, "venerdi": 4, "venerdì": 4, "sabato": 5, "domenica": 6}
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def weekday_number(name: str) -> int:
    """0 for Monday; accepts English names, three-letter forms and Italian names."""
    key = name.strip().lower()
    if key in WEEKDAYS:
        return WEEKDAYS.index(key)
    if key in _SHORT:
        return _SHORT[key]
    if key in _ITALIAN:
        return _ITALIAN[key]
    raise ValueError(f"{name!r} is not a weekday; write monday … sunday (or lunedì … domenica)")


def parse_span(text: str) -> tuple[time, time]:
    match = _SPAN.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an office-hours span; write it as HH:MM-HH:MM, e.g. 08:30-12:30")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start, end = time(h1, m1), time(h2, m2)
    except ValueError:
        raise ValueError(f"{text!r}: hours go from 00:00 to 23:59") from None
    if end <= start:
        raise ValueError(f"{text!r}: the end must come after the start")
    return start, end


class Closure(Strict):
    """A company closure: one day or a range of days, with the reason shown to people."""

    start: date = Field(alias="from")
    end: date | None = Field(default=None, alias="to")
    reason: str = "chiusura aziendale"

    @model_validator(mode="before")
    @classmethod
    def _single_day(cls, value: object) -> object:
        if isinstance(value, (str, date)):
            return {"from": value}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "Closure":
        if self.end is not None and self.end < self.start:
            raise ValueError(f"closure ends ({self.end}) before it starts ({self.start})")
        return self

    def covers(self, day: date) -> bool:
        return self.start <= day <= (self.end or self.start)


DEFAULT_OFFICE_HOURS = {day: ["08:30-12:30", "14:00-18:00"] for day in WEEKDAYS[:5]}


class CalendarSection(Strict):
    """The provider's calendar, the default of every tenant."""

    language: Literal["it", "en"] = Field(default="it", description="language of holiday names")
    closures: list[Closure] = Field(default_factory=list, description="company closure days")
    office_hours: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_OFFICE_HOURS),
        description="per weekday, spans HH:MM-HH:MM; a day not listed is closed")
    blocking_hours: dict[str, list[str]] = Field(
        default_factory=dict, description="extra spans that count only for service levels marked blocking "
                                          "(e.g. saturday: [08:30-12:30] on call for blocking problems)")

    @field_validator("office_hours", "blocking_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, spans in value.items():
            weekday_number(day)
            parsed = sorted(parse_span(s) for s in spans)
            for (_, end), (start, _) in pairwise(parsed):
                if start < end:
                    raise ValueError(f"{day}: office-hours spans overlap ({', '.join(spans)})")
        return value


class Patron(Strict):
    day: str = Field(description="MM-DD, e.g. 06-10")
    name: str = "festa del santo patrono"

    @field_validator("day")
    @classmethod
    def _month_day(cls, value: str) -> str:
        try:
            datetime.strptime(f"2024-{value}", "%Y-%m-%d")
        except ValueError:
            raise ValueError(f"{value!r} is not a month and day; write MM-DD, e.g. 06-10") from None
        return value


class TenantCalendar(Strict):
    """What a comune's calendar adds to the provider's: its patron saint and its own closures."""

    province: str | None = Field(
        default=None, description="province code (CR, LU…): adds the patron of the provincial capital")
    patron: Patron | None = Field(default=None, description="the comune's own patron day; replaces the capital's")
    closures: list[Closure] = Field(default_factory=list)
    office_hours: dict[str, list[str]] | None = Field(
        default=None, description="the comune's own office hours; default: the provider's")
    blocking_hours: dict[str, list[str]] | None = Field(
        default=None, description="extra spans for blocking levels only; default: the provider's")

    @field_validator("province")
    @classmethod
    def _known_province(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import holidays

        code = value.strip().upper()
        if code not in holidays.Italy.subdivisions:
            raise ValueError(f"{value!r} is not an Italian province code known to python-holidays "
                             "(two letters, e.g. CR for Cremona, LU for Lucca)")
        return code

    @field_validator("office_hours", "blocking_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        return None if value is None else CalendarSection._valid_hours(value)


@lru_cache(maxsize=256)
def _holidays(year: int, province: str | None, language: str) -> dict[date, str]:
    import holidays

    lang = "it_IT" if language == "it" else "en_US"
    national = holidays.Italy(years=year, language=lang)
    days = dict(national.items())
    if province:
        for day, name in holidays.Italy(years=year, subdiv=province, language=lang).items():
            days.setdefault(day, name)
    return days


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and office hours for one tenant (or the provider, with ``tenant=None``)."""

    language: str = "it"
    closures: tuple[Closure, ...] = ()
    province: str | None = None
    patron: Patron | None = None
    office_hours: tuple[tuple[tuple[time, time], ...], ...] = ()
    """Per weekday (0 = Monday) the office spans, sorted."""

    @classmethod
    def build(cls, section: CalendarSection, tenant: TenantCalendar | None = None, *, blocking: bool = False,
              office_hours: dict[str, list[str]] | None = None) -> "BusinessCalendar":
        """The tenant's calendar; ``blocking`` adds the blocking-only spans, ``office_hours`` replaces the hours.

        Blocking-only spans (Saturday on call) may touch the ordinary ones but not overlap them.
        """
        hours = office_hours if office_hours is not None else (
            tenant.office_hours if tenant and tenant.office_hours is not None else section.office_hours)
        per_day: list[list[tuple[time, time]]] = [[] for _ in WEEKDAYS]
        for day, spans in hours.items():
            per_day[weekday_number(day)] = sorted(parse_span(s) for s in spans)
        if blocking:
            extra = tenant.blocking_hours if tenant and tenant.blocking_hours is not None else section.blocking_hours
            for day, spans in extra.items():
                number = weekday_number(day)
                per_day[number] = _merge(per_day[number] + [parse_span(s) for s in spans], day)
        return cls(language=section.language,
                   closures=tuple(section.closures) + tuple(tenant.closures if tenant else ()),
                   province=tenant.province if tenant and not tenant.patron else None,
                   patron=tenant.patron if tenant else None,
                   office_hours=tuple(tuple(spans) for spans in per_day))

    def closed_reason(self, day: date) -> str | None:
        """Why ``day`` is not a working day (holiday, patron, closure), or None. Weekends are not reasons."""
        for closure in self.closures:
            if closure.covers(day):
                return closure.reason
        if self.patron and day.strftime("%m-%d") == self.patron.day:
            return self.patron.name
        return _holidays(day.year, self.province, self.language).get(day)

    def is_working_day(self, day: date) -> bool:
        return bool(self.office_hours[day.weekday()]) and self.closed_reason(day) is None

    def spans_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's office spans as aware UTC instants ([] on a closed day), so lengths are real elapsed time."""
        if not self.is_working_day(day):
            return []
        return [(_instant(day, a), _instant(day, b)) for a, b in self.office_hours[day.weekday()]]

    def add_working_time(self, start: datetime, seconds: float, limit_days: int = 3660) -> datetime:
        """The moment when ``seconds`` of office time have passed since ``start`` (an SLA due time).

        Lengths are measured between UTC instants: subtracting two Europe/Rome
        wall times with the same tzinfo ignores the offset change, so a span
        across a DST change (an office open through the night) would count an
        hour too many or too few.
        """
        moment = start.astimezone(timezone.utc)
        remaining = timedelta(seconds=seconds)
        day = start.astimezone(ROME).date()
        for _ in range(limit_days):
            for begin, finish in self.spans_on(day):
                begin = max(begin, moment)
                if begin >= finish:
                    continue
                if finish - begin >= remaining:
                    return (begin + remaining).astimezone(ROME)
                remaining -= finish - begin
            day += timedelta(days=1)
        raise ValueError(f"no office time in {limit_days} days after {start}: check the office hours")

    def next_office_moment(self, start: datetime, limit_days: int = 3660) -> datetime:
        """``start`` if it is in office hours, else the opening of the next span (the clock starts there)."""
        moment = start.astimezone(timezone.utc)
        day = start.astimezone(ROME).date()
        for _ in range(limit_days):
            for begin, finish in self.spans_on(day):
                if moment < finish:
                    return max(begin, moment).astimezone(ROME)
            day += timedelta(days=1)
        raise ValueError(f"no office time in {limit_days} days after {start}: check the office hours")

    def add_working_days(self, start: datetime, days: int, limit_days: int = 3660) -> datetime:
        """N working days after ``start``: the same wall-clock time on the Nth working day after it.

        The count starts at the first office moment at or after ``start`` (a
        ticket opened on Saturday night starts on Monday morning). When that
        wall time is not within the target day's hours (a shorter Saturday), the
        due time is the last office moment of that day at or before it, else
        the day's opening.
        """
        begin = self.next_office_moment(start, limit_days)
        wall = begin.time().replace(tzinfo=None)
        day = begin.date()
        counted = 0
        for _ in range(limit_days):
            day += timedelta(days=1)
            if not self.is_working_day(day):
                continue
            counted += 1
            if counted < days:
                continue
            spans = self.office_hours[day.weekday()]
            if any(a <= wall <= b for a, b in spans):
                return datetime.combine(day, wall, ROME)
            earlier = [b for a, b in spans if b < wall]
            return datetime.combine(day, earlier[-1] if earlier else spans[0][0], ROME)
        raise ValueError(f"fewer than {days} working days in {limit_days} days after {start}: "
                         "check the office hours")


def _instant(day: date, moment: time) -> datetime:
    """A Europe/Rome wall time as a UTC instant (a wall time in the spring gap moves forward an hour)."""
    local = datetime.combine(day, moment, ROME)
    return local.astimezone(timezone.utc)


def _merge(spans: list[tuple[time, time]], day: str) -> list[tuple[time, time]]:
    """Ordinary and blocking-only spans of one day, sorted; touching spans are joined, overlapping refused."""
    out: list[tuple[time, time]] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:
            raise ValueError(f"{day}: blocking_hours overlap the office hours; give only the extra spans")
        if out and start == out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out
