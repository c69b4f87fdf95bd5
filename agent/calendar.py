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
from datetime import date, datetime, time, timedelta
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

    @field_validator("office_hours")
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
    office_hours: dict[str, list[str]] | None = None

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

    @field_validator("office_hours")
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
    def build(cls, section: CalendarSection, tenant: TenantCalendar | None = None) -> "BusinessCalendar":
        hours = (tenant.office_hours if tenant and tenant.office_hours is not None else section.office_hours)
        per_day: list[list[tuple[time, time]]] = [[] for _ in WEEKDAYS]
        for day, spans in hours.items():
            per_day[weekday_number(day)] = sorted(parse_span(s) for s in spans)
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

    def add_working_time(self, start: datetime, seconds: float, limit_days: int = 3660) -> datetime:
        """The moment when ``seconds`` of office time have passed since ``start`` (an SLA due time)."""
        moment = start.astimezone(ROME)
        remaining = timedelta(seconds=seconds)
        day = moment.date()
        for _ in range(limit_days):
            if self.is_working_day(day):
                for span_start, span_end in self.office_hours[day.weekday()]:
                    begin = max(datetime.combine(day, span_start, ROME), moment)
                    finish = datetime.combine(day, span_end, ROME)
                    if begin >= finish:
                        continue
                    if finish - begin >= remaining:
                        return begin + remaining
                    remaining -= finish - begin
            day += timedelta(days=1)
        raise ValueError(f"no office time in {limit_days} days after {start}: check the office hours")
