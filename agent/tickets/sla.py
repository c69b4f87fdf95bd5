"""The SLA clock of Custode's tickets: when a ticket must be taken in charge (and solved).

Only office time counts: a ticket opened on Christmas Eve at 17:00 with eight
working hours is due the Monday after, not the next morning. The calendar
(holidays, patron day, closures, office hours) lives in :mod:`custode.agent.calendar`;
this module only picks the tenant's calendar and the priority's target, so the
planner, the texts and ``custode sla due`` all compute the same due time.
"""

from __future__ import annotations

from datetime import datetime, timezone

from custode.agent.calendar import ROME, BusinessCalendar
from custode.agent.config import DEFAULT_TENANT, Config
from custode.agent.tickets.model import PRIORITIES, Priority


def tenant_calendar(config: Config, tenant: str | None) -> BusinessCalendar:
    """The tenant's calendar on top of the provider's; the provider's alone for None or the implicit default.

    The implicit ``default`` tenant (a single-comune install, or an incident
    recorded before tenants were defined) gets the provider's calendar rather
    than an error: a ticket due time must not be lost to a naming detail.
    """
    if tenant is None:
        return BusinessCalendar.build(config.calendar)
    if tenant in config.tenants:
        return BusinessCalendar.build(config.calendar, config.tenants[tenant].calendar)
    if tenant == DEFAULT_TENANT:
        return BusinessCalendar.build(config.calendar)
    defined = ", ".join(sorted(config.tenants)) or f"none (only the implicit {DEFAULT_TENANT!r})"
    raise ValueError(f"tenant {tenant!r} is not defined under tenants; defined: {defined}")


def _target(config: Config, priority: str):
    if priority not in PRIORITIES:
        raise ValueError(f"priority {priority!r} is not one of {', '.join(PRIORITIES)}")
    return config.tickets.sla[priority]  # type: ignore[index]


def take_charge_due(config: Config, tenant: str | None, priority: Priority, opened: datetime) -> datetime:
    """When a ticket of ``priority`` opened at ``opened`` must be taken in charge (Europe/Rome, aware)."""
    seconds = _target(config, priority).take_charge
    return tenant_calendar(config, tenant).add_working_time(_aware(opened), seconds).astimezone(ROME)


def resolve_due(config: Config, tenant: str | None, priority: Priority, opened: datetime) -> datetime | None:
    """When it must be solved, or None when ``tickets.sla.<priority>.resolve`` is not set."""
    seconds = _target(config, priority).resolve
    if seconds is None:
        return None
    return tenant_calendar(config, tenant).add_working_time(_aware(opened), seconds).astimezone(ROME)


def sla_hours(config: Config, priority: Priority) -> float:
    """The take-charge target in working hours (for the ticket text: "8 working hours")."""
    return _target(config, priority).take_charge / 3600.0


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; use parse_opened() or attach Europe/Rome")
    return moment


def parse_opened(text: str) -> datetime:
    """An ISO 8601 time from the command line; naive means Europe/Rome wall time, an offset is kept.

    A wall time that does not exist (the hour skipped when clocks go forward,
    e.g. 2026-03-29T02:30) is refused rather than silently moved; an ambiguous
    one (the repeated hour in October) is taken as the first, summer-time one.
    """
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time; write e.g. 2026-12-24T17:00 (Europe/Rome) "
                         "or 2026-12-24T17:00+01:00") from None
    if moment.tzinfo is not None:
        return moment
    local = moment.replace(tzinfo=ROME)
    round_trip = local.astimezone(timezone.utc).astimezone(ROME).replace(tzinfo=None)
    if round_trip != moment:
        raise ValueError(f"{text!r} does not exist in Europe/Rome (clocks skip that hour when summer time "
                         "starts); give a time outside the gap or add the offset, e.g. +01:00")
    return local
