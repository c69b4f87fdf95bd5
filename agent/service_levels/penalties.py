"""Penalty exposure: what the missed targets and the unannounced releases of a period could cost, and why.

Exposure, not an invoice: the contract's wording decides, and the provider
may dispute a case (a failure that was the comune's own). So every euro comes
with the ticket, the target, the due time, the lateness and the arithmetic
that made it, and a range when the contract gives one (€500–1,000).

The rules, as implemented:

* a penalty rule of a level applies to each case on that level whose target
  (``missed``) is late (:mod:`custode.agent.service_levels.compliance`); a take
  charge that is "not known" is not charged, and listed as not evaluated;
* ``per: ticket`` costs ``amount`` once; ``day`` / ``hour`` per started 24 h /
  60 min of lateness from the due time; ``working_day`` / ``working_hour``
  per started unit counted on the level's calendar; ``slot`` per started slot
  of the given length (:mod:`custode.agent.service_levels.lateness`); the
  lateness ends when the target was met (or the failure ended), else at ``now``
  and the figure is marked running;
* ``amount_max`` gives the upper end (units × amount_max); ``max_total`` caps
  each case's figure for that rule, both ends; a rule without ``amount``
  counts its misses and says it has no figure;
* a release penalty (``event: unannounced_release``) costs its amount for each
  update run of one of the tenant's windows, started in the period, with no
  announcement sent before it started (``announcement_for`` of
  :mod:`custode.agent.updates.announce`); without that module the rule is
  reported as not evaluated, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from custode.agent.service_levels.compliance import CaseResult, Judgement, LevelRef, Outcome
from custode.agent.service_levels.config import ContractPenalty, PenaltyRule, ServiceLevels, TargetKind
from custode.agent.service_levels.lateness import started_units, unit_words

if TYPE_CHECKING:
    from custode.agent.calendar import BusinessCalendar
    from custode.agent.config import Config


@dataclass(frozen=True)
class Charge:
    """One rule applied to one late target of one case."""

    result: CaseResult
    kind: TargetKind
    rule: PenaltyRule
    judgement: Judgement
    units: int
    euros_min: float | None
    euros_max: float | None
    """None when the rule gives no figure (the contract names the penalty without the amount)."""
    capped: bool
    why: str

    @property
    def level(self) -> LevelRef:
        return self.result.level


@dataclass(frozen=True)
class NotEvaluated:
    """A rule that could not be applied to a case, and why (the take charge is not known)."""

    result: CaseResult
    kind: TargetKind
    rule: PenaltyRule
    why: str


@dataclass(frozen=True)
class Release:
    """One update run of one of the tenant's windows, and whether it was announced before it started."""

    run_id: int
    window: str
    application: str
    started_at: float
    window_start: float
    trigger: str
    status: str
    announced_at: float | None
    evaluated: bool
    """False when the announcement could not be looked up (see ``why``)."""
    why: str

    @property
    def unannounced(self) -> bool:
        return self.evaluated and (self.announced_at is None or self.announced_at >= self.started_at)


@dataclass(frozen=True)
class ReleaseFacts:
    """The tenant's releases in the period, as far as they could be judged."""

    releases: tuple[Release, ...]
    evaluated: bool
    reason: str | None = None
    """Why the releases were not (all) judged: the announcement module missing, a lookup that failed."""


@dataclass(frozen=True)
class ContractCharge:
    penalty: ContractPenalty
    release: Release
    euros_min: float
    euros_max: float
    why: str


# --- ticket penalties -------------------------------------------------------------------------------

def ticket_charges(config: "Config", tenant: str, results: list[CaseResult]) -> tuple[list[Charge], list[NotEvaluated]]:
    """Every charge of every late target under the levels' rules, and the rules that could not be applied."""
    from custode.agent.tickets import sla

    charges: list[Charge] = []
    skipped: list[NotEvaluated] = []
    calendars: dict[str, BusinessCalendar] = {}
    for result in results:
        spec = result.level.spec
        if spec is None or result.level.table != "tenant" or not spec.penalties:
            continue
        for rule in spec.penalties:
            judgement = result.judgements.get(rule.missed)
            if judgement is None:
                continue
            if judgement.outcome is Outcome.NOT_KNOWN:
                skipped.append(NotEvaluated(result, rule.missed, rule, f"not charged: {judgement.why}"))
                continue
            if judgement.outcome is not Outcome.LATE:
                continue
            key = result.level.key
            if key not in calendars:
                calendars[key] = sla.level_calendar(config, tenant, key)
            charges.append(charge(calendars[key], result, rule, judgement))
    return charges, skipped


def charge(calendar: "BusinessCalendar", result: CaseResult, rule: PenaltyRule, judgement: Judgement) -> Charge:
    """The rule applied to one late target: units of lateness on the level's calendar, euros, the cap."""
    assert judgement.late_until is not None, "a late target has an end of lateness"
    units = started_units(calendar, rule.per, rule.slot, judgement.due_at, judgement.late_until)
    if rule.amount is None:
        return Charge(result, rule.missed, rule, judgement, units, None, None, False,
                      f"{_missed(rule.missed)}; {unit_words(rule.per, rule.slot, units)}; the contract gives no "
                      "amount: counted, not priced")
    low = units * rule.amount
    high = units * (rule.amount_max if rule.amount_max is not None else rule.amount)
    price = _euros(rule.amount) + (f"–{_euros(rule.amount_max)}" if rule.amount_max is not None else "")
    arithmetic = f"€{price}" if rule.per == "ticket" else f"{unit_words(rule.per, rule.slot, units)} × €{price}"
    why = f"{_missed(rule.missed)}; {arithmetic} = {_range(low, high)}"
    capped = rule.max_total is not None and high > rule.max_total
    if rule.max_total is not None:
        low, high = min(low, rule.max_total), min(high, rule.max_total)
    if capped:
        why += f", capped at €{_euros(rule.max_total or 0)} per ticket: {_range(low, high)}"
    if judgement.running:
        why += "; still late: counted up to now"
    return Charge(result, rule.missed, rule, judgement, units, low, high, capped, why)


def _missed(kind: TargetKind) -> str:
    return {"take_charge": "take charge late", "resolve": "resolved late", "restore": "service restored late"}[kind]


def _range(low: float, high: float) -> str:
    return f"€{_euros(low)}" + (f"–{_euros(high)}" if high != low else "")


def _euros(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


# --- contract penalties -----------------------------------------------------------------------------

def release_charges(table: ServiceLevels, facts: ReleaseFacts) -> list[ContractCharge]:
    """Each unannounced release under each ``unannounced_release`` penalty of the table."""
    out = []
    for penalty in table.penalties:
        if penalty.event != "unannounced_release":
            continue
        for release in facts.releases:
            if not release.unannounced:
                continue
            high = penalty.amount_max if penalty.amount_max is not None else penalty.amount
            price = _euros(penalty.amount) + (f"–{_euros(high)}" if high != penalty.amount else "")
            why = release.why if release.announced_at is None else "announced only after the run had started"
            out.append(ContractCharge(penalty, release, penalty.amount, high,
                                      f"release of {release.application} (window {release.window}, run "
                                      f"{release.run_id}): {why}; €{price}"))
    return out


def wants_releases(table: ServiceLevels) -> bool:
    """Whether the table has a penalty on releases (else update runs are not looked at at all)."""
    return any(p.event == "unannounced_release" for p in table.penalties)


# --- sums -------------------------------------------------------------------------------------------

@dataclass
class Exposure:
    """Summed euros (both ends of the ranges) and the charges that have no figure."""

    euros_min: float = 0.0
    euros_max: float = 0.0
    charges: int = 0
    unpriced: int = 0

    def add(self, low: float | None, high: float | None) -> None:
        self.charges += 1
        if low is None or high is None:
            self.unpriced += 1
            return
        self.euros_min += low
        self.euros_max += high
