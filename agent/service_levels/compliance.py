"""Service-level compliance of one comune: each case judged per target, counted per level, month and quarter.

Pure functions over ticket rows, the config and an injected ``now``: the same
rows give the same report on any machine and any day, and a test sets the
clock instead of waiting for it. The rules, as the README's "Service-level
report" section says them:

* a case (:mod:`custode.agent.service_levels.cases`) counts in the month and
  quarter (Europe/Rome) in which its first ticket was opened;
* its level is the row's ``level`` in the tenant's table; a row without one
  (filed before service levels existed) is on the default table, at its
  priority; a level the table no longer has is reported under its key, with
  no threshold and no penalties;
* each target is judged against the due time stored in the row, the one the
  ticket announced; a row with no due time for a target is not judged on it;
* take charge: **within** when taken (or the failure was over) by the due
  time, **late** when taken after it, or when the helpdesk tells and it was
  still not taken at the due time; **not known** when the helpdesk cannot
  tell (e-mail, webhook, or the ticket never reached it) and the due time
  passed without a recovery; **open** while the due time has not come;
* resolve and restore: the failure's stop (``recovered_at`` of the last
  ticket of the case; none while it is open again after a flap or a warranty
  reopen) by the due time is **within**, after it **late**; not stopped and
  past due is **late** too, and stays so; not stopped and not yet due is **open**;
* the share within target is within / (within + late): open and not-known
  cases are not decided and are shown apart; the threshold is the level's,
  else the table's; ``met`` is share ≥ threshold, null with no threshold or no
  decided case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from custode.agent.service_levels.cases import Case
from custode.agent.service_levels.config import TARGET_KINDS, ServiceLevel, ServiceLevels, TargetKind
from custode.agent.service_levels.period import Span, months_of, quarters_of

if TYPE_CHECKING:
    from custode.agent.config import Config

TableKind = Literal["tenant", "default"]
ThresholdSource = Literal["level", "table"]


class Outcome(StrEnum):
    WITHIN = "within"
    LATE = "late"
    NOT_KNOWN = "not_known"
    OPEN = "open"


OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)


@dataclass(frozen=True)
class Judgement:
    """One target of one case: how it went, and the moments that decided it."""

    kind: TargetKind
    outcome: Outcome
    due_at: float
    met_at: float | None
    """When the target was met (taken in charge, the failure over); None when it was not (yet)."""
    late_until: float | None
    """For a late target: where its lateness ends (met, the failure over, or ``now`` while it runs)."""
    running: bool
    """Still late at ``now``: the lateness, and any penalty per unit of it, keeps growing."""
    why: str


@dataclass(frozen=True)
class LevelRef:
    """Which level of which table a case is on, and what that level asks."""

    key: str
    table: TableKind
    spec: ServiceLevel | None
    """None for a level the tenant's table no longer has."""
    threshold: float | None
    threshold_from: ThresholdSource | None

    @property
    def label(self) -> str:
        return (self.spec.label if self.spec is not None and self.spec.label else None) or self.key

    def kinds(self) -> tuple[TargetKind, ...]:
        return tuple(k for k in TARGET_KINDS if self.spec is not None and self.spec.target(k) is not None)


@dataclass(frozen=True)
class CaseResult:
    case: Case
    level: LevelRef
    judgements: dict[TargetKind, Judgement]


@dataclass
class KindFigures:
    """Counts of one target over one bucket."""

    within: int = 0
    late: int = 0
    not_known: int = 0
    open: int = 0
    no_due: int = 0
    """Cases on the level with no stored due time for this target (filed before the level had it)."""

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    @property
    def decided(self) -> int:
        return self.within + self.late

    @property
    def share(self) -> float | None:
        return self.within / self.decided if self.decided else None

    def met(self, threshold: float | None) -> bool | None:
        """share ≥ threshold %, in integers (29 of 100 against 29 % must not fail on 0.29 * 100 = 28.999…)."""
        if threshold is None or not self.decided:
            return None
        return self.within * 100 >= threshold * self.decided


@dataclass
class Bucket:
    """One month, quarter or year of one level."""

    span: Span
    complete: bool
    opened: int = 0
    kinds: dict[TargetKind, KindFigures] = field(default_factory=dict)

    def met(self, threshold: float | None) -> bool | None:
        """False if a target missed its threshold, True if every decided one met it, None if none was decided."""
        verdicts = [figures.met(threshold) for figures in self.kinds.values()]
        if any(v is False for v in verdicts):
            return False
        return True if any(v is True for v in verdicts) else None


@dataclass
class LevelCompliance:
    level: LevelRef
    kinds: tuple[TargetKind, ...]
    buckets: list[Bucket]
    cases: list[CaseResult]

    def bucket(self, key: str) -> Bucket:
        return next(b for b in self.buckets if b.span.key == key)


@dataclass
class TenantCompliance:
    tenant: str
    period: Span
    table: ServiceLevels
    table_kind: TableKind
    levels: list[LevelCompliance]
    cases: list[CaseResult]


def bucket_spans(period: Span) -> list[Span]:
    """The period's months, its whole quarters, and the year itself for a year: the rows of the report."""
    spans = months_of(period) + quarters_of(period)
    return spans + ([period] if period.kind == "year" else [])


# --- judging one case --------------------------------------------------------------------------------

def judge(case: Case, now: float) -> dict[TargetKind, Judgement]:
    """Each target of the case with a stored due time, judged at ``now``."""
    first = case.first
    recovered = case.recovered_at()
    out: dict[TargetKind, Judgement] = {}
    if first.due_at is not None:
        out["take_charge"] = _take_charge(case, first.due_at, recovered, now)
    stops: tuple[tuple[TargetKind, float | None], ...] = (("resolve", first.resolve_due_at),
                                                           ("restore", first.restore_due_at))
    for kind, due in stops:
        if due is not None:
            out[kind] = _stopped(kind, due, recovered, now, first.reopened)
    return out


def _take_charge(case: Case, due: float, recovered: float | None, now: float) -> Judgement:
    taken = case.taken_at()
    if taken is not None and taken <= due:
        return Judgement("take_charge", Outcome.WITHIN, due, taken, None, False, "taken in charge in time")
    if recovered is not None and recovered <= due:
        return Judgement("take_charge", Outcome.WITHIN, due, recovered, None, False,
                         "the failure was over before the take-charge time: nothing was left to take in charge")
    if taken is not None:  # late; the lateness ends when it was taken, or when the failure ended if that was first
        until = min(taken, recovered) if recovered is not None else taken
        return Judgement("take_charge", Outcome.LATE, due, taken, until, False, "taken in charge after the due time")
    if now <= due:
        return Judgement("take_charge", Outcome.OPEN, due, None, None, False, "not taken in charge yet; not due yet")
    if case.reads_status:
        until = recovered if recovered is not None else now
        why = ("never taken in charge on the helpdesk before the failure ended" if recovered is not None
               else "not taken in charge on the helpdesk, past the due time")
        return Judgement("take_charge", Outcome.LATE, due, None, until, recovered is None, why)
    why = ("the ticket never reached the helpdesk" if case.first.ref is None
           else f"the {case.first.backend!r} helpdesk cannot tell when a ticket is taken in charge")
    return Judgement("take_charge", Outcome.NOT_KNOWN, due, None, None, False, why)


def _stopped(kind: TargetKind, due: float, recovered: float | None, now: float, reopened: int) -> Judgement:
    word = "resolved" if kind == "resolve" else "service restored"
    again = f" (reopened {reopened}× within the warranty: the last recovery counts)" if reopened else ""
    if recovered is not None:
        if recovered <= due:
            return Judgement(kind, Outcome.WITHIN, due, recovered, None, False, f"{word} in time{again}")
        return Judgement(kind, Outcome.LATE, due, recovered, recovered, False, f"{word} after the due time{again}")
    if now <= due:
        return Judgement(kind, Outcome.OPEN, due, None, None, False, f"not {word} yet; not due yet{again}")
    return Judgement(kind, Outcome.LATE, due, None, now, True, f"not {word} yet, past the due time{again}")


# --- levels ------------------------------------------------------------------------------------------

def level_ref(table: ServiceLevels, table_kind: TableKind, default: ServiceLevels, case: Case) -> LevelRef:
    """The case's level: its row's ``level`` in the tenant's table, else its priority in the default table."""
    key = case.first.level
    if key is None:
        spec = default.levels.get(case.first.priority)
        return LevelRef(case.first.priority, "default", spec, *_threshold(default, spec))
    spec = table.levels.get(key)
    threshold, source = _threshold(table, spec) if spec is not None else (None, None)
    return LevelRef(key, table_kind, spec, threshold, source)


def _threshold(table: ServiceLevels, spec: ServiceLevel | None) -> tuple[float | None, ThresholdSource | None]:
    if spec is not None and spec.threshold is not None:
        return spec.threshold, "level"
    if table.threshold is not None:
        return table.threshold, "table"
    return None, None


def tables(config: "Config", tenant: str) -> tuple[ServiceLevels, TableKind, ServiceLevels]:
    """The tenant's table, whether it is its own or the default, and the default table (for old rows)."""
    from custode.agent.tickets import sla

    own = config.tenants.get(tenant)
    kind: TableKind = "tenant" if own is not None and own.service_levels is not None else "default"
    return sla.service_levels(config, tenant), kind, sla.default_levels(config)


# --- the whole tenant --------------------------------------------------------------------------------

def compliance(config: "Config", tenant: str, cases: list[Case], period: Span, now: float) -> TenantCompliance:
    """Every level of the tenant's table (with or without cases) and every other level its cases are on.

    ``cases`` are those whose first ticket was opened in ``period``
    (:func:`custode.agent.service_levels.cases.cases_of` over
    :func:`custode.agent.tickets.store.compliance_rows`); others are ignored.
    """
    table, table_kind, default = tables(config, tenant)
    results = []
    for case in sorted(cases, key=lambda c: c.opened_at):
        if period.contains(case.opened_at):
            results.append(CaseResult(case, level_ref(table, table_kind, default, case), judge(case, now)))
    refs: dict[tuple[str, str], LevelRef] = {}
    for key, spec in table.levels.items():
        threshold, source = _threshold(table, spec)
        refs[(table_kind, key)] = LevelRef(key, table_kind, spec, threshold, source)
    for result in results:
        refs.setdefault((result.level.table, result.level.key), result.level)
    spans = [span for span in bucket_spans(period) if span.start_ts <= now]  # no rows for months to come
    levels = []
    for (kind, key), ref in refs.items():
        mine = [r for r in results if (r.level.table, r.level.key) == (kind, key)]
        levels.append(_level(ref, mine, spans, now))
    return TenantCompliance(tenant, period, table, table_kind, levels, results)


def _level(ref: LevelRef, results: list[CaseResult], spans: list[Span], now: float) -> LevelCompliance:
    kinds = tuple(k for k in TARGET_KINDS if k in ref.kinds() or any(k in r.judgements for r in results))
    buckets = []
    for span in spans:
        bucket = Bucket(span, span.complete(now), kinds={k: KindFigures() for k in kinds})
        for result in results:
            if not span.contains(result.case.opened_at):
                continue
            bucket.opened += 1
            for kind in kinds:
                judgement = result.judgements.get(kind)
                if judgement is None:
                    bucket.kinds[kind].no_due += 1
                else:
                    bucket.kinds[kind].add(judgement.outcome)
        buckets.append(bucket)
    return LevelCompliance(ref, kinds, buckets, results)
