"""The SLA clock of Custode's tickets: which level a ticket is on, and when it must be taken in charge.

Each tenant has its service-level table (``tenants.X.service_levels``: the
contract's own levels, targets and hours), else the default table built from
``tickets.sla`` (levels ``low``, ``medium``, ``high``). Only office time counts
for working hours and working days; clock hours are plain hours. The calendar
(holidays, patron day, closures, office hours, blocking-only hours) lives in
:mod:`custode.agent.calendar`, the arithmetic of one target in
:mod:`custode.agent.service_levels.clock`; this module picks the tenant's
table, level and calendar, so the planner, the texts, the compliance report and
``custode sla due`` all compute the same due time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from custode.agent.calendar import ROME, BusinessCalendar
from custode.agent.config import DEFAULT_TENANT, Config
from custode.agent.profiles import has_feature
from custode.agent.service_levels.clock import add_target
from custode.agent.service_levels.config import LevelMapping, ServiceLevel, ServiceLevels, TargetKind
from custode.agent.service_levels.targets import Target, Unit
from custode.agent.tickets.model import PRIORITIES, Priority


def tenant_calendar(config: Config, tenant: str | None, *, blocking: bool = False,
                    office_hours: dict[str, list[str]] | None = None) -> BusinessCalendar:
    """The tenant's calendar on top of the provider's; the provider's alone for None or the implicit default.

    The implicit ``default`` tenant (a single-comune install, or an incident
    recorded before tenants were defined) gets the provider's calendar rather
    than an error: a ticket due time must not be lost to a naming detail.
    """
    if tenant is None or (tenant == DEFAULT_TENANT and tenant not in config.tenants):
        return BusinessCalendar.build(config.calendar, blocking=blocking, office_hours=office_hours)
    if tenant in config.tenants:
        return BusinessCalendar.build(config.calendar, config.tenants[tenant].calendar, blocking=blocking,
                                      office_hours=office_hours)
    defined = ", ".join(sorted(config.tenants)) or f"none (only the implicit {DEFAULT_TENANT!r})"
    raise ValueError(f"tenant {tenant!r} is not defined under tenants; defined: {defined}")


def default_levels(config: Config) -> ServiceLevels:
    """``tickets.sla`` as a table: levels ``low``, ``medium``, ``high``, mapped by severity and check name."""
    levels = {name: ServiceLevel.model_construct(
        label=None, description=None, priority=name, blocking=False,
        take_charge=Target(Unit.WORKING_TIME, target.take_charge),
        resolve=Target(Unit.WORKING_TIME, target.resolve) if target.resolve is not None else None,
        restore=None, threshold=None, penalties=[])
        for name, target in ((p, config.tickets.sla[p]) for p in PRIORITIES)}
    mapping = LevelMapping.model_construct(severity=dict(config.tickets.priorities),
                                           checks=dict(config.tickets.check_priorities), jobs={}, hosts={})
    return ServiceLevels.model_construct(contract=None, levels=levels, default_level="medium", map=mapping,
                                         threshold=None, warranty=None, penalties=[])


def service_levels(config: Config, tenant: str | None) -> ServiceLevels:
    """The tenant's own table, or the default one."""
    own = config.tenants.get(tenant) if tenant else None
    if own is not None and own.service_levels is not None:
        return own.service_levels
    return default_levels(config)


def level_of(config: Config, tenant: str | None, level: str) -> ServiceLevel:
    table = service_levels(config, tenant)
    if level not in table.levels:
        where = f"tenant {tenant}'s service levels" if tenant in config.tenants and \
            config.tenants[tenant].service_levels is not None else "the default table (tickets.sla)"
        raise ValueError(f"level {level!r} is not in {where}; levels: {', '.join(table.levels)}")
    return table.levels[level]


def level_calendar(config: Config, tenant: str | None, level: str) -> BusinessCalendar:
    """The calendar that counts for ``level``: blocking-only hours (Saturday on call) for blocking levels.

    A tenant whose service profile does not include ``saturday_on_call`` gets no blocking-only hours.
    """
    spec = level_of(config, tenant, level)
    blocking = spec.blocking and has_feature(config, tenant, "saturday_on_call")
    return tenant_calendar(config, tenant, blocking=blocking)


def due(config: Config, tenant: str | None, level: str, kind: TargetKind, opened: datetime) -> datetime | None:
    """When ``kind`` (take_charge, resolve, restore) is due for a ticket on ``level`` opened at ``opened``."""
    target = level_of(config, tenant, level).target(kind)
    if target is None:
        return None
    return add_target(level_calendar(config, tenant, level), _aware(opened), target)


def level_for(config: Config, tenant: str, check: str, target: str, severity: str,
              details: dict[str, Any] | None = None) -> str:
    """The level an incident's ticket gets: job or host entry, then check, then severity, then the default."""
    table = service_levels(config, tenant)
    mapping = table.map
    job = (details or {}).get("job") or (target if ":" not in target else None)
    if job and job in mapping.jobs:
        return mapping.jobs[job]
    host = (details or {}).get("host") or (target.split(":", 1)[0] if ":" in target else None)
    if host and host in mapping.hosts:
        return mapping.hosts[host]
    if check in mapping.checks:
        return mapping.checks[check]
    if severity in mapping.severity:
        return mapping.severity[severity]  # type: ignore[index]
    return table.fallback_level()


def priority_of(config: Config, tenant: str | None, level: str) -> Priority:
    return level_of(config, tenant, level).priority


def take_charge_due(config: Config, tenant: str | None, level: str, opened: datetime) -> datetime:
    """When a ticket on ``level`` (a priority, on the default table) must be taken in charge (Europe/Rome)."""
    moment = due(config, tenant, level, "take_charge", opened)
    if moment is None:
        raise ValueError(f"level {level!r} has no take_charge target")
    return moment


def resolve_due(config: Config, tenant: str | None, level: str, opened: datetime) -> datetime | None:
    """When it must be solved, or None when the level has no resolve target."""
    return due(config, tenant, level, "resolve", opened)


def target_words(config: Config, tenant: str | None, level: str, kind: TargetKind, language: str) -> str | None:
    """"8 ore lavorative" / "2 working days": the target as the ticket text states it."""
    target = level_of(config, tenant, level).target(kind)
    return target.describe(language) if target is not None else None


def sla_hours(config: Config, priority: Priority) -> float:
    """The default table's take-charge target in working hours (for the ticket text: "8 working hours")."""
    return config.tickets.sla[priority].take_charge / 3600.0


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
