"""The ``updates:`` config section: hosts, weekly windows and where playbooks live."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

from pydantic import Field, field_validator

from custode.agent.calendar import weekday_number
from custode.agent.config_refs import HostRef, TenantRef
from custode.agent.durations import Duration
from custode.agent.schema import Strict, check_names

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


class WindowConfig(Strict):
    """One weekly update window of one application (optionally for one tenant only). Europe/Rome time."""

    application: str = Field(description="the vendor application, as people name it")
    tenant: TenantRef | None = Field(default=None, description="only this comune; its patron day and closures apply")
    days: list[str] = Field(min_length=1, description="weekdays: thursday, friday… (or giovedì, venerdì…)")
    start: str = Field(description="HH:MM, Europe/Rome")
    duration: Duration = Field(default=7200.0, gt=0, description="the window's length; a run never passes it")
    hosts: list[HostRef] = Field(default_factory=list, description="names under hosts:")
    playbook: str = Field(description="file in the playbooks folder, e.g. sicraweb.yaml")
    vars: dict[str, str] = Field(default_factory=dict, description="playbook variables for this window")
    enabled: bool = True
    notify: bool = Field(default=True, description="e-mail the tenant's referents at start and with the outcome")

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        for day in value:
            weekday_number(day)
        return value

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
        return sorted({weekday_number(d) for d in self.days})


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
