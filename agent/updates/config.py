"""The ``updates:`` config section: hosts, weekly and one-off windows, and where playbooks live."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from custode.agent.calendar import weekday_number
from custode.agent.config_refs import HostRef, TenantRef
from custode.agent.durations import Duration
from custode.agent.schema import Strict, check_names

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class WindowConfig(Strict):
    """One update window of one application (optionally for one tenant only). Europe/Rome time.

    Weekly on ``days`` (the vendors' fixed windows), or once on each of
    ``dates`` (a window agreed case by case with the comune, as Cremona does,
    or the twice-yearly OS patching): exactly one of the two.
    """

    application: str = Field(description="the vendor application, as people name it")
    tenant: TenantRef | None = Field(default=None, description="only this comune; its patron day and closures apply")
    days: list[str] | None = Field(default=None, min_length=1,
                                   description="weekdays: thursday, friday… (or giovedì, venerdì…)")
    dates: list[date] | None = Field(default=None, min_length=1,
                                     description="one-off: the window opens on each of these days (YYYY-MM-DD)")
    start: str = Field(description="HH:MM, Europe/Rome")
    duration: Duration = Field(default=7200.0, gt=0, description="the window's length; a run never passes it")
    hosts: list[HostRef] = Field(default_factory=list, description="names under hosts:")
    playbook: str = Field(description="file in the playbooks folder, e.g. sicraweb.yaml")
    vars: dict[str, str] = Field(default_factory=dict, description="playbook variables for this window")
    enabled: bool = True
    notify: bool = Field(default=True, description="e-mail the tenant's referents at start and with the outcome")

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[str] | None) -> list[str] | None:
        for day in value or []:
            weekday_number(day)
        return value

    @field_validator("dates", mode="before")
    @classmethod
    def _iso_dates(cls, value: object) -> object:
        """Only calendar dates: pydantic would read 20261210 as seconds since 1970 and a timestamp as its day."""
        if not isinstance(value, list):
            return value
        if not value:
            raise ValueError("dates is empty: list the days the window opens, e.g. [2026-12-10], or remove the "
                             "window (or set enabled: false)")
        for item in value:
            if isinstance(item, datetime) or not isinstance(item, (date, str)) or (
                    isinstance(item, str) and not _ISO_DATE.match(item.strip())):
                shown = item.isoformat() if isinstance(item, datetime) else repr(item)
                raise ValueError(f"{shown} is not a date; write each day as YYYY-MM-DD, e.g. [2026-12-10, "
                                 "2027-03-13] (the window's time of day goes in start)")
        return value

    @field_validator("dates")
    @classmethod
    def _sorted_dates(cls, value: list[date] | None) -> list[date] | None:
        return None if value is None else sorted(set(value))

    @model_validator(mode="after")
    def _days_or_dates(self) -> "WindowConfig":
        if self.days is not None and self.dates is not None:
            raise ValueError("give days (a weekly window) or dates (one-off windows on those days), not both; "
                             "for a weekly window that also opens on an extra day, add a second window with dates")
        if self.days is None and self.dates is None:
            raise ValueError("a window needs days: [thursday] (every week) or dates: [2026-12-10] (once on "
                             "each day)")
        return self

    @field_validator("start")
    @classmethod
    def _clock(cls, value: str) -> str:
        match = _CLOCK.match(value.strip())
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError(f"{value!r} is not a time of day; write HH:MM, e.g. 17:30")
        return f"{int(match[1]):02d}:{match[2]}"

    @property
    def start_time(self) -> time:
        hours, minutes = self.start.split(":")
        return time(int(hours), int(minutes))

    @property
    def weekdays(self) -> list[int]:
        """The weekdays of a weekly window (0 = Monday); [] for a window on dates."""
        return sorted({weekday_number(d) for d in self.days or []})

    def opens_on(self, day: date) -> bool:
        """Whether the window opens on ``day`` (before any holiday or closure is considered)."""
        if self.dates is not None:
            return day in self.dates
        return day.weekday() in self.weekdays


class WindowNotice(Strict):
    """Advance notice of update windows to a tenant's referents (releases announced with due notice)."""

    enabled: bool = Field(default=True, description="e-mail the referents the coming windows ahead of time")
    working_days: int = Field(default=2, ge=0, le=30, description="how many working days before the window")


class UpdatesSection(Strict):
    enabled: bool = True
    playbooks_dir: Path | None = Field(
        default=None, description="where playbooks are; relative to the config file's folder. "
                                  "Default: the 'playbooks' folder next to the config file")
    windows: dict[str, WindowConfig] = Field(default_factory=dict)
    silence_margin: Duration = Field(
        default=900.0, description="a crashed run's silence of incidents ends this long after its window")

    @field_validator("windows")
    @classmethod
    def _names(cls, value: dict) -> dict:
        return check_names(value)
