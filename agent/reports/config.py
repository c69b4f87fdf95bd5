"""The ``reports:`` config: ``tenants.<id>.reports`` (which, when, to whom) and the provider's ``reports:``.

The contracts ask for a quarterly activity report (Ponte San Pietro) and a
yearly analysis of the comune's servers (Vaiano), sent to the comune's IT
referent. When they are due is counted in *working days* on the tenant's own
calendar, as every date a comune reads is: the 5th working day after the
quarter, the 10th working day of January for the year, at 07:00 Europe/Rome,
so the mail is in the mailbox when the office opens and the figures of the
period's last days (a backup report of 31 December arriving on 1 January) are
in. Sending is opt-in per tenant (``enabled: false`` by default): an upgrade
must not start mailing PDFs to comuni nobody has told.

The provider-wide part (top-level ``reports:``) holds what is the same for
every comune: the provider's name in the reports' header and the mails'
signature, and how a report that could not be rendered or sent is retried.
"""

from __future__ import annotations

import re
from datetime import time
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from custode.agent.durations import Duration
from custode.agent.schema import Strict
from custode.agent.smtp_settings import check_addresses

if TYPE_CHECKING:
    from custode.agent.config import Config

ReportKindName = Literal["quarterly", "yearly"]
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


class _Timing(Strict):
    """When one kind of report is due: the Nth working day after its period ends, at a time of day."""

    working_day: int = Field(default=5, ge=1, le=40)
    at: str = Field(default="07:00", description="HH:MM, Europe/Rome")

    @field_validator("at")
    @classmethod
    def _clock(cls, value: str) -> str:
        match = _CLOCK.match(value.strip())
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError(f"{value!r} is not a time of day; write HH:MM, e.g. 07:00")
        return f"{int(match[1]):02d}:{match[2]}"

    @property
    def at_time(self) -> time:
        hours, minutes = self.at.split(":")
        return time(int(hours), int(minutes))


class QuarterlyTiming(_Timing):
    """Default: the 5th working day after the quarter's last day (the activity report of Ponte San Pietro)."""

    working_day: int = Field(default=5, ge=1, le=40, description="the Nth working day after the quarter ends")


class YearlyTiming(_Timing):
    """Default: the 10th working day of January (1 January is always a holiday: the 10th after the year ends)."""

    working_day: int = Field(default=10, ge=1, le=40, description="the Nth working day after the year ends")


def _both() -> list[ReportKindName]:
    return ["quarterly", "yearly"]


class TenantReports(Strict):
    """One comune's reports by e-mail: which, when, to whom, and how the data tables travel."""

    enabled: bool = Field(default=False, description="e-mail this comune's reports when they are due")
    kinds: list[ReportKindName] = Field(default_factory=_both, min_length=1,
                                        description="which reports: quarterly, yearly")
    quarterly: QuarterlyTiming = Field(default_factory=QuarterlyTiming)
    yearly: YearlyTiming = Field(default_factory=YearlyTiming)
    recipients: list[str] | None = Field(default=None, description="To: addresses; default: the tenant's referents")
    extra_recipients: list[str] = Field(default_factory=list, description="also these, in Cc")
    format: Literal["pdf"] = Field(default="pdf", description="the report's format")
    csv: Literal["separate", "zip", "none"] = Field(
        default="separate", description="the data tables: one CSV attachment each, all in one ZIP, or none")

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_addresses(value)

    @field_validator("extra_recipients")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        return check_addresses(value)

    @field_validator("kinds")
    @classmethod
    def _once_each(cls, value: list[ReportKindName]) -> list[ReportKindName]:
        return list(dict.fromkeys(value))

    def timing(self, kind: str) -> _Timing:
        return self.quarterly if kind == "quarterly" else self.yearly


class ReportRetry(Strict):
    first: Duration = Field(default=300.0, description="wait after the first failed try; doubles every time")
    max: Duration = Field(default=21600.0, description="longest wait between two tries")


class ReportsSection(Strict):
    """The provider's side of the reports: its name, and how failed tries are retried and raised."""

    provider_name: str | None = Field(
        default=None, description="the provider in the reports' header and the mails' signature; default: the "
                                  "name of agent.tenant's tenant, else the smtp sender's display name")
    retry: ReportRetry = Field(default_factory=ReportRetry)
    incident_after: int = Field(default=5, ge=1, description="failed tries of one report before an incident opens")
    catch_up: Duration = Field(
        default=30 * 86400.0, description="a report whose due time passed while Custode was stopped is still "
                                          "queued this long after it; older ones only by hand")


def provider_name(config: Config) -> str:
    """The provider's name as the reports print it.

    ``reports.provider_name``, else the name of the provider's own tenant
    (``agent.tenant``, which in a farm config is the provider; not when that
    tenant gets reports itself, as on a comune's own server, where it is the
    comune), else the display name of the SMTP sender, else "Custode": a
    report header is never empty.
    """
    if config.reports.provider_name:
        return config.reports.provider_name
    own = config.tenants.get(config.agent.tenant)
    if own is not None and own.name and not own.reports.enabled:
        return own.name
    if config.smtp is not None:
        from custode.agent.smtp_settings import parse_address

        display = parse_address(config.smtp.sender).display_name
        if display:
            return display
    return "Custode"


def delivery_warnings(config: "Config") -> list[str]:
    """Tenants whose reports are e-mailed but cannot be: no SMTP server, or nobody to send them to.

    ``custode config check`` prints these: the config is valid (the reports wait, and an
    incident says why once they are due), but a sysadmin should learn it today rather than
    when the first quarterly report is late.
    """
    lines = []
    for tenant_id, tenant in sorted(config.tenants.items()):
        reports = tenant.reports
        if not reports.enabled:
            continue
        if config.smtp is None:
            lines.append(f"  tenants.{tenant_id}.reports: e-mailed, but there is no smtp: section to send them")
        to = reports.recipients if reports.recipients is not None else tenant.referents
        if not to and not reports.extra_recipients:
            lines.append(f"  tenants.{tenant_id}.reports: nobody to send them to: give referents: or "
                         "reports.recipients:")
    return lines
