"""Per-tenant OS patch policy: when "no update installed for N days" is a fault and when it is the plan.

Vaiano's contract patches the server operating systems twice a year, about
March and October. Judged by the continuous age limits (``farm.checks.updates``:
warning after 45 days, critical after 90) every Vaiano server would be in
warning most of the year, and an incident that is always open is one nobody
reads. With a policy the check asks the contract's question instead: was the
last round installed?

The rule, as :func:`judge` applies it:

* A *round* is a patch month of a year (March 2026). It is *due* at the end of
  its month plus ``grace``: "about March" means the work may slip into April.
* An update installed from ``early`` before the month's first day on counts
  for the round: the work may also start in late February, and what a host
  gets then (February's cumulative update, released on the second Tuesday) is
  the patch level a March round installs anyway.
* The round judged is the latest one already due. A host with updates pending
  whose last install is older than that round (its start minus ``early``)
  missed it: warning. Older than the round before it too, it missed two
  rounds in a row: critical.
* Between rounds pending updates are the plan, not a fault; a host with none
  pending has nothing to install and is fine whatever its last install.

Everything here is pure: ``now`` is an argument, so tests put it anywhere in
the year. Months are calendar months in Europe/Rome, the contracts' time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from custode.agent.clock import ROME
from custode.agent.durations import Duration, format_duration
from custode.agent.schema import Strict

if TYPE_CHECKING:
    from prometheus_client.core import Metric

DAY = 86400.0
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
"""English month names for the summaries (``calendar.month_name`` follows the process locale)."""
_HOW_OFTEN = {1: "once a year", 2: "twice a year", 3: "three times a year", 4: "four times a year",
              12: "every month"}
_EXAMPLE = "e.g. months: [3, 10] for March and October"
Level = Literal["ok", "warning", "critical"]
DUE_METRIC = "custode_os_patch_round_due_timestamp_seconds"


def check_months(months: list[int]) -> list[int]:
    """Months 1-12, each once, returned sorted (the order they are written in does not matter)."""
    for month in months:
        if not 1 <= month <= 12:
            raise ValueError(f"{month} is not a month: write each patch month as a number from 1 (January) "
                             f"to 12 (December), {_EXAMPLE}")
    for month in months:
        if months.count(month) > 1:
            raise ValueError(f"month {month} ({MONTHS[month - 1]}) is listed twice: list each patch month once, "
                             f"{_EXAMPLE}")
    return sorted(months)


class PatchPolicy(Strict):
    """How often a comune's server operating systems are patched (Vaiano: twice a year, March and October)."""

    months: list[int] = Field(default_factory=list, description="the months OS patches are installed in, e.g. "
                                                                "[3, 10]; empty: continuous (the age limits apply)")
    grace: Duration = Field(default=30 * DAY, description="after the end of a patch month, how long the round may "
                                                          "slip before a host that missed it is a fault")
    early: Duration = Field(default=30 * DAY, description="updates installed this long before a patch month still "
                                                          "count for its round (the work may start the month before)")

    _months = field_validator("months")(lambda cls, value: check_months(value))

    @model_validator(mode="after")
    def _rounds_apart(self) -> "PatchPolicy":
        """One install must count for one round only, or a host could skip every other round unnoticed."""
        for this, following in pairwise(_rounds(self, range(2023, 2026))):
            if following.counts_from < this.due:
                raise ValueError(
                    f"the {MONTHS[this.month - 1]} and {MONTHS[following.month - 1]} rounds overlap: a round counts "
                    f"updates from {format_duration(self.early)} before its month (early) until "
                    f"{format_duration(self.grace)} after it (grace), so one install would count for both; "
                    "lower early or grace, or list fewer months (patching every month is continuous: leave months "
                    "empty and farm.checks.updates judges the age)")
        return self

    @property
    def continuous(self) -> bool:
        """No months: updates are expected all the time and the continuous age limits judge them."""
        return not self.months


@dataclass(frozen=True)
class Round:
    """One patch round: a patch month of one year, with the span its installs count in."""

    year: int
    month: int
    starts: datetime
    counts_from: datetime
    """``starts`` minus ``early``: the first moment an install counts for this round."""
    due: datetime
    """The end of the month plus ``grace``: from here a host that missed the round is a fault."""

    @property
    def name(self) -> str:
        return f"{MONTHS[self.month - 1]} {self.year}"

    @property
    def key(self) -> str:
        """``2026-03``: stable in incident details, whatever the language."""
        return f"{self.year}-{self.month:02d}"

    @property
    def due_day(self) -> str:
        """The last day of the round, as people write it: due 1 May 00:00 reads "by 30/04/2026"."""
        return _day(self.due - timedelta(seconds=1))


@dataclass(frozen=True)
class Verdict:
    """What :func:`judge` found, with what the summary and the incident details need."""

    severity: Level
    judged: Round
    """The latest round already due: the one the host is held to."""
    previous: Round
    missed: int
    """0, 1 (the judged round) or 2 (that one and the one before): counted whether or not anything is pending."""
    covered: Round | None
    """The latest round the last install counts for (None: older than any round considered)."""
    next: Round
    """The next round not yet due."""


def _round(policy: PatchPolicy, year: int, month: int) -> Round:
    starts = datetime(year, month, 1, tzinfo=ROME)
    ends = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=ROME)
    return Round(year, month, starts, starts - timedelta(seconds=policy.early), ends + timedelta(seconds=policy.grace))


def _rounds(policy: PatchPolicy, years: Iterable[int]) -> list[Round]:
    return [_round(policy, year, month) for year in years for month in policy.months]


def _rounds_around(policy: PatchPolicy, moment: datetime) -> list[Round]:
    """Rounds from three years before to one after: enough for the two last due ones and the next.

    A round is due at most about a year after it starts (validation keeps rounds apart), so three
    years back always hold two due rounds.
    """
    return _rounds(policy, range(moment.year - 3, moment.year + 2))


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, ROME)


def _day(moment: datetime) -> str:
    return moment.astimezone(ROME).strftime("%d/%m/%Y")


def due_rounds(policy: PatchPolicy, now: float) -> tuple[Round, Round]:
    """The latest round already due at ``now`` and the one before it."""
    moment = _moment(now)
    past = [r for r in _rounds_around(policy, moment) if r.due <= moment]
    return past[-1], past[-2]


def next_round(policy: PatchPolicy, now: float) -> Round:
    """The first round not yet due at ``now`` (the one running, or the next to start)."""
    moment = _moment(now)
    return next(r for r in _rounds_around(policy, moment) if r.due > moment)


def _covered(policy: PatchPolicy, last_installed: float) -> Round | None:
    """The latest round the install counts for: what the host "has", in the summary's words."""
    moment = _moment(last_installed)
    counted = [r for r in _rounds_around(policy, moment) if r.counts_from <= moment]
    return counted[-1] if counted else None


def judge(now: float, policy: PatchPolicy, last_installed: float, pending: int) -> Verdict:
    """The host's os_updates level under the tenant's patch policy (see the module's rule)."""
    judged, previous = due_rounds(policy, now)
    installed = _moment(last_installed)
    missed = 2 if installed < previous.counts_from else 1 if installed < judged.counts_from else 0
    severity: Level = "ok" if pending <= 0 or not missed else "critical" if missed == 2 else "warning"
    return Verdict(severity, judged, previous, missed, _covered(policy, last_installed), next_round(policy, now))


def cadence_words(policy: PatchPolicy) -> str:
    """"OS patches are due twice a year (March, October)": the contract's rule, as a clerk reads it."""
    count = len(policy.months)
    how_often = _HOW_OFTEN.get(count, f"{count} times a year")
    return f"OS patches are due {how_often} ({', '.join(MONTHS[m - 1] for m in policy.months)})"


def summary(host: str, policy: PatchPolicy, verdict: Verdict, last_installed: float, pending_words: str) -> str:
    """The incident's sentence: the rule, then what this host did about it, then what is pending.

    ``pending_words`` is the os_updates check's own "14 pending (3 security)", so both ways of
    judging end the same way.
    """
    last = f"last update {_day(_moment(last_installed))}"
    head = cadence_words(policy)
    if verdict.severity == "critical":
        return (f"{head}; neither the {verdict.previous.name} nor the {verdict.judged.name} round was installed "
                f"on {host} ({last}); {pending_words}")
    if verdict.severity == "warning":
        return f"{head}; the {verdict.judged.name} round was not installed on {host} ({last}); {pending_words}"
    coming = f"next round {verdict.next.name}, due by {verdict.next.due_day}"
    if verdict.missed:  # nothing pending: nothing to install, whatever the rounds
        return f"{head}; {host} is up to date ({last}); {pending_words}; {coming}"
    has = verdict.covered.name if verdict.covered else verdict.judged.name
    return f"{head}; {host} has the {has} round ({last}); {pending_words}; {coming}"


def details(policy: PatchPolicy, verdict: Verdict) -> dict[str, object]:
    """Facts for the incident beside the check's own (pending, security, last_installed), for tickets and reports."""
    return {"patch_months": list(policy.months), "patch_round": verdict.judged.key, "missed_rounds": verdict.missed,
            "next_round": verdict.next.key, "next_round_due": verdict.next.due.timestamp()}


def round_due_families(policies: Mapping[str, PatchPolicy | None], now: float) -> list[Metric]:
    """When each tenant's next round is due, for a Grafana countdown; tenants without months have none.

    No policy anywhere gives no family at all, so installs without one see no empty HELP/TYPE lines.
    """
    from prometheus_client.core import GaugeMetricFamily

    gauge = GaugeMetricFamily(DUE_METRIC, "Unix time the tenant's next OS patch round is due (end of its month "
                                          "plus the policy's grace).", labels=["tenant"])
    for tenant, policy in sorted(policies.items()):
        if policy is not None and not policy.continuous:
            gauge.add_metric([tenant], next_round(policy, now).due.timestamp())
    return [gauge] if gauge.samples else []
