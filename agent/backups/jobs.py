"""Expected jobs against the reports that arrived: ok, warning, failed, late or missing.

Like healthchecks.io's cron checks: the latest scheduled time at or before
now (Europe/Rome, so a 22:00 job stays at 22:00 across DST) opens a run;
reports from ``early`` before it onwards belong to that run and the latest of
them decides; with none, the run is ``late`` until the grace period ends and
``missing`` after. Matching happens at evaluation time, so a job added to the
config today also sees the reports that arrived yesterday.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Literal

from croniter import croniter

from custode.agent.backups.config import BackupsSection, ExpectedJob
from custode.agent.backups.store import StoredReport
from custode.agent.clock import ROME

JobState = Literal["ok", "warning", "failed", "late", "missing"]
JOB_STATES: tuple[JobState, ...] = ("ok", "warning", "failed", "late", "missing")
_FROM_STATUS: dict[str, JobState] = {"success": "ok", "warning": "warning", "failure": "failed"}


def _fold(value: str | None) -> str:
    return " ".join((value or "").split()).casefold()


@dataclass
class JobMatcher:
    """An expected job's match criteria, compiled once per evaluation."""

    job: ExpectedJob

    def __post_init__(self) -> None:
        self.name = _fold(self.job.job)
        self.pattern = re.compile(self.job.job_pattern, re.IGNORECASE) if self.job.job_pattern else None
        self.software = _fold(self.job.software)
        self.host = _fold(self.job.host)
        self.sender = re.compile(self.job.sender, re.IGNORECASE) if self.job.sender else None

    def matches(self, report: StoredReport) -> bool:
        if self.software and self.software not in _fold(report.software):
            return False
        if self.host and _fold(report.host) != self.host:
            return False
        if self.sender and not self.sender.search(report.sender):
            return False
        if self.pattern is not None:
            return bool(self.pattern.fullmatch((report.job or "").strip()))
        return _fold(report.job) == self.name


@dataclass
class JobStatus:
    tenant: str
    job: ExpectedJob
    state: JobState
    since: float  # when this state began, as far as the reports tell
    due: float  # the scheduled time of the run being judged
    deadline: float  # due + grace
    run_key: str  # identifies the run (and the report) behind the state
    last_report: StoredReport | None = None
    last_success_at: float | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def software(self) -> str:
        """The product as the latest report names it (for people), else as the config does."""
        if self.last_report is not None:
            return self.last_report.software
        return self.job.software or ""

    @property
    def software_label(self) -> str:
        """The ``software`` metric label: the config's word only, so one job stays one series.

        Taken from the reports, it changed when the first report arrived
        ("Veeam" from the config, then "Veeam Backup & Replication"), and every
        graph and alert of the job broke in two at that moment.
        """
        return self.job.software or ""


def previous_run(schedule: str, now: float) -> float:
    """The latest scheduled time at or before ``now`` (Unix seconds), in Europe/Rome time."""
    local_now = datetime.fromtimestamp(now, ROME)
    if local_now.second == 0 and local_now.microsecond == 0 and croniter.match(schedule, local_now):
        return now  # exactly on time: this run, not the one before
    return croniter(schedule, local_now).get_prev(datetime).timestamp()


def judge(tenant: str, job: ExpectedJob, reports: list[StoredReport], now: float, grace: float,
          early: float) -> JobStatus:
    """The state of one job from its reports (sorted by time, oldest first)."""
    due = previous_run(job.schedule, now)
    deadline = due + grace
    in_run = [r for r in reports if due - early <= r.reported_at <= now]
    successes = [r.reported_at for r in reports if r.status == "success" and r.reported_at <= now]
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.status] = counts.get(report.status, 0) + 1
    last = next((r for r in reversed(reports) if r.reported_at <= now), None)
    base = dict(tenant=tenant, job=job, due=due, deadline=deadline, last_report=last,
                last_success_at=successes[-1] if successes else None, counts=counts)
    if in_run:
        latest = in_run[-1]
        return JobStatus(state=_FROM_STATUS[latest.status], since=latest.reported_at,
                         run_key=f"report:{latest.id}", **base)  # type: ignore[arg-type]
    if now <= deadline:
        return JobStatus(state="late", since=due, run_key=f"due:{int(due)}", **base)  # type: ignore[arg-type]
    return JobStatus(state="missing", since=deadline, run_key=f"due:{int(due)}", **base)  # type: ignore[arg-type]


@dataclass
class Evaluation:
    jobs: list[JobStatus]
    unexpected: list[StoredReport]


def evaluate(section: BackupsSection, reports: Iterable[StoredReport], now: float) -> Evaluation:
    """Every expected job's state, and the recent reports no job expects."""
    reports = list(reports)
    matched: set[int] = set()
    statuses = []
    for tenant in sorted(section.expected):
        for job in section.expected[tenant]:
            matcher = JobMatcher(job)
            mine = [r for r in reports if matcher.matches(r)]
            matched.update(r.id for r in mine)
            statuses.append(judge(tenant, job, mine, now, section.grace_of(job), section.early))
    window_start = now - section.unexpected_window
    unexpected = [r for r in reports if r.id not in matched and r.reported_at >= window_start]
    return Evaluation(statuses, unexpected)


def carry_since(jobs: list[JobStatus], stored: dict) -> None:
    """A state that did not change keeps the start the state DB remembers (``backup_job_states``)."""
    for job in jobs:
        previous = stored.get((job.tenant, job.job.name))
        if previous is not None and previous["state"] == job.state:
            job.since = min(job.since, previous["since"])


def lookback(section: BackupsSection) -> float:
    """How far back reports are read for an evaluation: the longest gap a schedule may have, and more."""
    longest_grace = max([section.grace_of(j) for jobs in section.expected.values() for j in jobs] or [0.0])
    return max(35 * 86400.0, section.unexpected_window, longest_grace + 32 * 86400.0)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)
