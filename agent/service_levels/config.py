"""``tenants.X.service_levels``: one comune's contract as a table of levels, targets, mapping and penalties.

Each contract names its own levels ("bloccante", "livello4", "alta"), gives
each a helpdesk priority and targets for taking in charge, resolving and
restoring service, and counts them in its own hours. A tenant without this
section gets the default table built from ``tickets.sla`` (``low``, ``medium``,
``high``), so a config written before contracts existed reads as it did.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from custode.agent.schema import Strict
from custode.agent.service_levels.targets import TargetField, Unit

Priority = Literal["low", "medium", "high"]
TargetKind = Literal["take_charge", "resolve", "restore"]
TARGET_KINDS: tuple[TargetKind, ...] = ("take_charge", "resolve", "restore")


class PenaltyRule(Strict):
    """What a missed target costs, as the contract writes it (e.g. €15 per day late, €22 per slot)."""

    missed: TargetKind = Field(description="the target whose miss costs: take_charge, resolve or restore")
    amount: float | None = Field(default=None, gt=0, description="euros per unit of lateness (or per missed "
                                                                 "ticket); omit it when the contract gives the rule "
                                                                 "but not the figure: the report counts the misses")
    amount_max: float | None = Field(default=None, gt=0, description="upper end when the contract gives a range "
                                                                    "(€500–1,000): exposure is shown as a range")
    per: Literal["ticket", "day", "working_day", "hour", "working_hour", "slot"] = Field(
        default="ticket", description="ticket: once per missed target; day / working_day / hour / working_hour: per "
                                      "started unit of lateness; slot: per started slot of lateness")
    slot: TargetField | None = Field(default=None, description="with per: slot, the slot's length, e.g. "
                                                               "'4 working hours'")
    max_total: float | None = Field(default=None, gt=0, description="cap per ticket, in euros")
    note: str | None = Field(default=None, description="the contract's wording, for the report")

    @model_validator(mode="after")
    def _slot_given(self) -> "PenaltyRule":
        if (self.per == "slot") != (self.slot is not None):
            raise ValueError("per: slot needs slot: (its length, e.g. '4 working hours'), and slot: needs per: slot")
        if self.amount_max is not None and (self.amount is None or self.amount_max < self.amount):
            raise ValueError(f"amount_max ({self.amount_max:g}) needs an amount below it (the range's lower end)")
        return self


class ServiceLevel(Strict):
    """One level of a contract."""

    label: str | None = Field(default=None, description="the level's name as the contract prints it, "
                                                        "e.g. 'Bloccante'; default: its key")
    description: str | None = Field(default=None, description="what the contract means by it")
    priority: Priority = Field(description="the helpdesk priority its tickets get: low, medium or high")
    blocking: bool = Field(default=False, description="counts the tenant's calendar.blocking_hours too "
                                                      "(Saturday on call for blocking problems only)")
    take_charge: TargetField | None = Field(default=None, description="from opening to taking in charge, e.g. "
                                                                      "'8 working hours'")
    resolve: TargetField | None = Field(default=None, description="from opening to resolution, e.g. "
                                                                  "'2 working days'")
    restore: TargetField | None = Field(default=None, description="from opening to service back, e.g. "
                                                                  "'4 working hours'")
    threshold: float | None = Field(default=None, gt=0, le=100, description="percent of tickets that must meet the "
                                                                            "targets; default: the table's")
    penalties: list[PenaltyRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_target(self) -> "ServiceLevel":
        if self.take_charge is None and self.resolve is None and self.restore is None:
            raise ValueError("a level needs at least one target: take_charge, resolve or restore")
        for rule in self.penalties:
            if getattr(self, rule.missed) is None:
                raise ValueError(f"a penalty for a missed {rule.missed} needs a {rule.missed} target on this level")
        return self

    def target(self, kind: TargetKind):
        return getattr(self, kind)


class LevelMapping(Strict):
    """Which level an incident gets; the most specific entry wins: job or host, then check, then severity."""

    severity: dict[Literal["warning", "critical"], str] = Field(
        default_factory=dict, description="level by the incident's severity")
    checks: dict[str, str] = Field(default_factory=dict, description="level by check name (backup, os_updates, "
                                                                     "filesystem, reachability …)")
    jobs: dict[str, str] = Field(default_factory=dict, description="level of a backup job's or restore test's "
                                                                   "incidents, by its name")
    hosts: dict[str, str] = Field(default_factory=dict, description="level of a host's incidents, by host name")


class ContractPenalty(Strict):
    """A penalty not tied to a ticket: a release (update window run) not announced in advance."""

    event: Literal["unannounced_release"] = Field(description="unannounced_release: an update window run without "
                                                              "the advance notice (tenants.X.notice)")
    amount: float = Field(gt=0, description="euros per release")
    amount_max: float | None = Field(default=None, gt=0, description="upper end of a range")
    note: str | None = None


class ServiceLevels(Strict):
    """A tenant's service-level table."""

    contract: str | None = Field(default=None, description="the contract's title, shown in reports")
    levels: dict[str, ServiceLevel] = Field(min_length=1, description="level key -> its priority and targets")
    default_level: str | None = Field(default=None, description="level of incidents the mapping does not place; "
                                                                "default: the first level with priority medium, "
                                                                "else the first")
    map: LevelMapping = Field(default_factory=LevelMapping)
    threshold: float | None = Field(default=None, gt=0, le=100, description="percent of tickets within target the "
                                                                            "contract requires (e.g. 90)")
    warranty: TargetField | None = Field(default=None, description="the same failure back within this time of "
                                                                   "its resolution reopens the ticket, e.g. "
                                                                   "'10 working days'")
    penalties: list[ContractPenalty] = Field(default_factory=list)

    @field_validator("levels")
    @classmethod
    def _level_keys(cls, value: dict[str, ServiceLevel]) -> dict[str, ServiceLevel]:
        from custode.agent.schema import check_names

        return check_names(value, "level names")

    @model_validator(mode="after")
    def _names_known(self) -> "ServiceLevels":
        known = ", ".join(self.levels)
        named = [("default_level", self.default_level)] if self.default_level else []
        for section in ("severity", "checks", "jobs", "hosts"):
            named += [(f"map.{section}.{key}", level) for key, level in getattr(self.map, section).items()]
        for where, level in named:
            if level not in self.levels:
                raise ValueError(f"{where}: {level!r} is not a level of this table; levels: {known}")
        if self.warranty is not None and self.warranty.unit is Unit.CLOCK_TIME and self.warranty.amount < 3600:
            raise ValueError("warranty shorter than an hour: write it as e.g. '10 working days'")
        return self

    def fallback_level(self) -> str:
        if self.default_level:
            return self.default_level
        return next((k for k, v in self.levels.items() if v.priority == "medium"), next(iter(self.levels)))
