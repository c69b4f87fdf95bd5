"""The report builder: one comune's quarter or year, read from the state DB into :mod:`.document`'s records.

:func:`build_report` is the only entry point; the renderers never query.
Every feature's rows are read in one query per table for the whole period
(no query per day, host or window), and the figures other modules already
compute are taken from them: the service-level figures from
:mod:`custode.agent.service_levels.report`, the window occurrences and their
skip reasons from :mod:`custode.agent.updates.windows`, the job matching from
:mod:`custode.agent.backups.jobs`, the announcements from
:mod:`custode.agent.updates.announce`. Days are Europe/Rome days; the period
is ``2026Q4`` or ``2026`` (:mod:`custode.agent.service_levels.period`).
``now`` is injected: only what happened before it is judged.

Counting rules
--------------

* **Backup nights.** Each scheduled run of an expected job (its cron
  expression, Europe/Rome) in the period owns the reports from ``early``
  before its time until ``early`` before the next run; the latest of them
  decides (success, warning, failure), as in the morning evaluation. A run with
  none is ``missing`` once its grace has passed; one still inside its grace,
  or not yet due, is left out. A run belongs to the day it was due; a day with
  several runs shows the worst (failure > missing > warning > success).
  Days without a scheduled run are not listed (``not_due``). A *job-night* is
  one listed day of one job.
* **Restore tests**: those finished in the period. **Paths**: the set's
  coverage as its last check left it, for paths first seen before the end of
  the period.
* **Update windows**: every occurrence of the tenant's windows (its own, and
  farm-wide windows that update one of its hosts) that started before ``now``:
  the run of that occurrence (matched on window and start; the last run if
  several), else ``skipped`` with the holiday or closure, else ``not_run``
  once the window has closed. Runs that match no occurrence (urgent ``--now``
  runs) are listed too, with their trigger. ``announced_at`` is when the
  tenant's referents were sent the advance notice (None: not announced).
* **Tickets**: the SLA compliance report of the period, unchanged: its level
  buckets for the period, its cases, its penalty exposure.
* **Servers and network devices**: the tenant's daily host rows and
  reachability outages are read once and split: hosts with ``transport:
  snmp`` (switches, routers, firewalls, UPSes) go to the network section, every
  other host to the servers section and its lights (a device removed from
  the config since is counted as a server again).
* **Network** (:mod:`custode.agent.reports.network`): each device with daily
  rows or incidents in the period (availability, outages, reboots, watched
  interfaces down, UPS events), each probe with daily rows or down
  incidents (availability, mean and median latency, slow days, the
  certificate at the end of the period, downs). The section and its light
  exist only for a comune that has network devices or probes (polled or
  probed now, or recorded in the period).
* **empty** is true when the tenant has no backup report, restore test, daily
  host row, outage, update run, ticket or probe day in the period. Sections computed from
  the config alone (missing nights, windows not run) are still filled.
* A service the comune's profile does not include leaves its section empty
  and its light ``none``: ``backup_control`` (backup jobs), ``restore_tests``
  (tests and paths), ``monitoring`` (servers and network; availability,
  security, capacity and network lights), ``updates`` (windows). Tickets are
  always reported.

Summary lights
--------------

* **backups** — red: a failed or missing job-night in the last 7 days of the
  period (or of its judged part, for a period still running), or more than 5 %
  of the job-nights failed or missing; yellow: any failed, missing or warning
  job-night; green: every job-night succeeded; none: no expected job.
* **availability** — red: a server below 98 % of polls answered; yellow: a
  server below 99.5 %, or any outage; green otherwise; none: no server data.
* **security** — red: at the end of the period a server's antivirus is off or
  its operating system no longer supported (or older than the contracts
  cover); yellow: antivirus signatures older than the farm's
  ``checks.antivirus.signature_max_age`` (7 days), security updates pending,
  or the antivirus off on some day of the period; green otherwise; none: no
  server reported any of these.
* **service_levels** — red: a level did not meet its threshold; yellow: every
  decided level met it but some target was late; green: met, nothing late;
  none: no case decided (no tickets, or no threshold).
* **updates** — red: a run failed or was interrupted; yellow: a run rolled
  back, or a window that should have run did not; green: every run
  succeeded; none: no occurrence in the period.
* **capacity** — red: a disk at or above the critical level of
  ``checks.filesystem`` (95 % used by default) at the end of the period, or
  filling within 30 days of it; yellow: at or above the warning level (90 %),
  or filling within 180 days; green otherwise; none: no disk data.
* **network** (only for a comune with network devices or probes) — red: a
  device or probe below 98 % (polls answered, probes succeeded), or a
  certificate expired or ending within 7 days of the period's end; yellow: one
  below 99.5 %, any device outage, watched interface down, UPS event (on
  battery, battery low) or probe down, or a certificate ending within 21
  days; green otherwise; none: no device or probe recorded in the period, or
  ``monitoring`` not bought. Reboots are listed, not judged (a planned
  firmware upgrade reboots too).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from croniter import croniter

from custode.agent.backups.config import ExpectedJob
from custode.agent.backups.jobs import JobMatcher
from custode.agent.backups.store import MailStore, StoredReport
from custode.agent.calendar import ROME
from custode.agent.history import store as history
from custode.agent.history.store import HostDay
from custode.agent.profiles import FEATURES, tenant_profile
from custode.agent.reports import network
from custode.agent.reports.config import provider_name
from custode.agent.reports.document import (
    BackupDay,
    BackupJobHistory,
    BackupOutcome,
    BackupSection,
    CoveredPath,
    LevelFigures,
    Light,
    NetworkSection,
    Outage,
    Report,
    ReportKind,
    RestoreTestRecord,
    ServerRecord,
    ServersSection,
    SummaryLight,
    TicketRecord,
    TicketsSection,
    UpdatesSection,
    WindowRecord,
)
from custode.agent.reports.servers import outages, server_records
from custode.agent.restore.store import RestoreStore
from custode.agent.service_levels.compliance import CaseResult, Outcome
from custode.agent.service_levels.period import Span, parse_period
from custode.agent.service_levels.releases import tenant_windows
from custode.agent.service_levels.report import as_json, load_tenant_report
from custode.agent.tickets import store
from custode.agent.updates.announce import Announcements, announcements
from custode.agent.updates.notice_store import NoticeStore
from custode.agent.updates.states import RunStatus, RunTrigger
from custode.agent.updates.store import UpdateStore
from custode.agent.updates.windows import WindowOccurrence, occurrences

if TYPE_CHECKING:
    import sqlite3

    from custode.agent.config import Config
    from custode.agent.state import State

KINDS: dict[str, str] = {"quarterly": "quarter", "yearly": "year"}
"""Report kind -> the period kind it takes."""
RECENT_DAYS = 7
"""The last days of the period in which one failed or missing backup night is already red."""
BAD_SHARE_PERCENT = 5.0
AVAILABILITY_RED, AVAILABILITY_YELLOW = 98.0, 99.5
FILL_RED_DAYS, FILL_YELLOW_DAYS = 30, 180
NETWORK_RED, NETWORK_YELLOW = AVAILABILITY_RED, AVAILABILITY_YELLOW
CERT_RED_DAYS, CERT_YELLOW_DAYS = 7.0, 21.0
"""A certificate ending within this many days of the period's end is red / yellow (expired: red)."""
MAX_RUNS_PER_JOB = 50_000
"""Scheduled runs judged per job and period at most (an every-ten-minutes job over a year is 52,560)."""
_WORST: dict[str, int] = {"success": 0, "warning": 1, "missing": 2, "failure": 3}
_STATUS_OUTCOME: dict[str, BackupOutcome] = {"success": "success", "warning": "warning", "failure": "failure"}
RunOutcome = Literal["succeeded", "rolled_back", "failed", "interrupted"]
_RUN_OUTCOMES: dict[str, RunOutcome] = {RunStatus.SUCCEEDED: "succeeded", RunStatus.ROLLED_BACK: "rolled_back",
                                        RunStatus.FAILED: "failed", RunStatus.INTERRUPTED: "interrupted"}
_TRIGGERS: dict[str, Literal["scheduled", "manual", "now"]] = {
    RunTrigger.SCHEDULED: "scheduled", RunTrigger.MANUAL: "manual", RunTrigger.NOW: "now"}


@dataclass(frozen=True)
class _Context:
    """What every section reads: the config, the DB, the tenant, the period and the clock."""

    config: "Config"
    state: "State"
    tenant: str
    span: Span
    now: float
    features: frozenset[str]

    @property
    def first_day(self) -> date:
        return self.span.start.date()

    @property
    def period_end(self) -> date:
        return self.span.end.date() - timedelta(days=1)

    @property
    def judged_end(self) -> float:
        """Where judging stops: the period's end, or now while it runs."""
        return min(self.span.end_ts, self.now)

    @property
    def last_day(self) -> date:
        """The last day judged: the period's last day, or today while it runs."""
        return min(self.period_end, datetime.fromtimestamp(self.now, ROME).date())

    def has(self, feature: str) -> bool:
        return feature in self.features


def build_report(config: "Config", state: "State", tenant: str, kind: ReportKind, period: str,
                 now: datetime) -> Report:
    """The report of ``tenant`` for ``period`` (``2026Q4`` quarterly, ``2026`` yearly), as of ``now``.

    A tenant with nothing recorded gets a valid report with ``empty`` true.
    Raises ValueError for a period that does not parse or does not fit ``kind``.
    """
    span = _span(kind, period)
    moment = now if now.tzinfo is not None else now.replace(tzinfo=ROME)
    ctx = _Context(config, state, tenant, span, moment.timestamp(), _features(config, tenant))
    backups, backups_recorded = backups_section(ctx)
    hosts = host_history(ctx)
    servers, servers_recorded = servers_section(ctx, hosts)
    net, network_recorded = network_section(ctx, hosts)
    updates, updates_recorded = updates_section(ctx)
    tickets, tickets_recorded = tickets_section(ctx)
    own = config.tenants.get(tenant)
    return Report(
        kind=kind, period=span.key, period_start=ctx.first_day, period_end=ctx.period_end, tenant=tenant,
        tenant_name=own.name if own is not None else tenant,
        provider_name=provider_name(config),
        language=own.language if own is not None else "it", generated_at=moment.astimezone(ROME),
        features=tuple(f for f in FEATURES if f in ctx.features),
        summary=summary(ctx, backups, servers, updates, tickets, net), backups=backups, servers=servers,
        updates=updates, tickets=tickets, network=net,
        empty=not (backups_recorded or servers_recorded or updates_recorded or tickets_recorded
                   or network_recorded))


def _span(kind: ReportKind, period: str) -> Span:
    if kind not in KINDS:
        raise ValueError(f"report kind {kind!r}: use quarterly or yearly")
    span = parse_period(period)
    if span.kind != KINDS[kind]:
        example = "2026Q4" if kind == "quarterly" else "2026"
        raise ValueError(f"a {kind} report is for a {KINDS[kind]}, e.g. {example}; {period!r} is a {span.kind}")
    return span


def _features(config: "Config", tenant: str) -> frozenset[str]:
    """The services the tenant bought: its profile's, or every one without a profile."""
    profile = tenant_profile(config, tenant)
    return frozenset(profile.features if profile is not None else FEATURES)


def _rome(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, ROME)


# --- backups ---------------------------------------------------------------------------------------

def backups_section(ctx: _Context) -> tuple[BackupSection, bool]:
    """The job grid, restore tests and paths; and whether any report or test was recorded in the period."""
    jobs, reported = _job_histories(ctx) if ctx.has("backup_control") else ((), False)
    if not ctx.has("restore_tests"):
        return BackupSection(jobs=jobs), reported
    store = RestoreStore(ctx.state)
    tests = tuple(_restore_record(row) for row in store.tests_between(ctx.tenant, ctx.span.start_ts,
                                                                      ctx.judged_end))
    paths = tuple(CoveredPath(row["set_name"], row["path"], bool(row["protected"]), row["reason"], row["size_bytes"])
                  for row in store.coverage_of(ctx.tenant) if row["first_seen"] < ctx.span.end_ts)
    return BackupSection(jobs=jobs, restore_tests=tests, paths=paths), reported or bool(tests)


def _job_histories(ctx: _Context) -> tuple[tuple[BackupJobHistory, ...], bool]:
    """Every expected job of the tenant, from one read of the reports covering all their runs' windows."""
    section = ctx.config.backups
    expected = section.expected.get(ctx.tenant, [])
    schedules = {job.schedule: scheduled_runs(job.schedule, ctx.span) for job in expected}  # croniter is slow
    plans = [(job, schedules[job.schedule]) for job in expected]
    starts = [runs[0] - section.early for _, runs in plans if runs]
    if not starts:
        return tuple(_job_history(job, [], [], ctx) for job, _ in plans), False
    ends = [runs[-1] - section.early for _, runs in plans if runs]
    reports = MailStore(ctx.state).reports_between(min(starts), min(max(ends), ctx.now + 1))
    histories, recorded = [], False
    for job, runs in plans:
        matcher = JobMatcher(job)
        mine = [r for r in reports if matcher.matches(r)]
        history = _job_history(job, runs, mine, ctx)
        recorded = recorded or any(d.reported_at is not None for d in history.days)
        histories.append(history)
    return tuple(histories), recorded


def scheduled_runs(schedule: str, span: Span) -> list[float]:
    """The job's scheduled times in the period (Europe/Rome), then the first one after it (which ends the last
    run's window); at most :data:`MAX_RUNS_PER_JOB`."""
    it = croniter(schedule, span.start - timedelta(seconds=1))
    runs: list[float] = []
    while len(runs) < MAX_RUNS_PER_JOB:
        moment = it.get_next(datetime).timestamp()
        runs.append(moment)
        if moment >= span.end_ts:
            break
    return runs


def _job_history(job: ExpectedJob, runs: list[float], reports: list[StoredReport], ctx: _Context) -> BackupJobHistory:
    """One job's days: each run judged on the reports of its window, then the worst run of each day."""
    section = ctx.config.backups
    grace, early = section.grace_of(job), section.early
    times = [r.reported_at for r in reports]
    days: dict[date, BackupDay] = {}
    for due, following in zip(runs, runs[1:], strict=False):
        if due >= ctx.span.end_ts or due > ctx.now:
            break
        low = bisect.bisect_left(times, due - early)
        high = bisect.bisect_left(times, min(following - early, ctx.now + 1e-6))
        judged = _judge_run(due, reports[low:high], grace, ctx.now)
        if judged is not None and (judged.day not in days
                                   or _WORST[judged.outcome] > _WORST[days[judged.day].outcome]):
            days[judged.day] = judged
    software = reports[-1].software if reports else job.software
    return BackupJobHistory(job=job.name, software=software, schedule=job.schedule,
                            days=tuple(days[d] for d in sorted(days)))


def _judge_run(due: float, reports: list[StoredReport], grace: float, now: float) -> BackupDay | None:
    """The run due at ``due`` from its reports (oldest first); None while it may still report."""
    day = datetime.fromtimestamp(due, ROME).date()
    if reports:
        latest = reports[-1]
        return BackupDay(day, _STATUS_OUTCOME[latest.status], _rome(latest.reported_at), latest.error)
    if now <= due + grace:
        return None
    return BackupDay(day, "missing")


def _restore_record(row: "sqlite3.Row") -> RestoreTestRecord:
    return RestoreTestRecord(
        set_name=row["set_name"], finished_at=cast(datetime, _rome(row["finished_at"])), passed=bool(row["passed"]),
        files_checked=row["files_checked"], files_verified=row["files_verified"], mismatches=row["mismatches"],
        restored_bytes=row["restored_bytes"], snapshot_time=_rome(row["snapshot_time"]),
        certificate_id=row["certificate_id"], summary=row["summary"])


# --- servers ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostHistory:
    """The tenant's daily host rows and reachability outages of the period, read once for servers and devices."""

    days: tuple[HostDay, ...] = ()
    outages: tuple[Outage, ...] = ()
    devices: frozenset[str] = frozenset()
    """The config's network devices (``transport: snmp``): their rows and outages are the network section's."""

    def servers(self) -> tuple[list[HostDay], tuple[Outage, ...]]:
        return ([d for d in self.days if d.host not in self.devices],
                tuple(o for o in self.outages if o.host not in self.devices))


def host_history(ctx: _Context) -> HostHistory:
    """One read of ``host_daily`` and one of the reachability incidents; nothing without ``monitoring``."""
    if not ctx.has("monitoring") or ctx.last_day < ctx.first_day:
        return HostHistory()
    return HostHistory(tuple(history.host_days(ctx.state, ctx.tenant, ctx.first_day, ctx.last_day)),
                       outages(ctx.state, ctx.tenant, ctx.span.start_ts, ctx.judged_end),
                       frozenset(network.snmp_hosts(ctx.config)))


def servers_section(ctx: _Context, hosts: HostHistory | None = None) -> tuple[ServersSection, bool]:
    """Every server (not a network device) with daily rows in the period, and the servers' outages; and whether
    anything was recorded."""
    days, down = (hosts if hosts is not None else host_history(ctx)).servers()
    servers = server_records(days, ctx.judged_end)
    return ServersSection(servers=servers, outages=down), bool(servers or down)


# --- network ---------------------------------------------------------------------------------------

def network_section(ctx: _Context, hosts: HostHistory | None = None) -> tuple[NetworkSection, bool]:
    """The devices and probes of the period; and whether any was recorded."""
    watched = network.watched(ctx.config, ctx.tenant)
    if not ctx.has("monitoring") or ctx.last_day < ctx.first_day:
        return NetworkSection(watched=watched), False
    hosts = hosts if hosts is not None else host_history(ctx)
    devices = network.device_records(ctx.state, ctx.tenant, network.snmp_hosts(ctx.config), hosts.days,
                                     hosts.outages, ctx.span.start_ts, ctx.judged_end)
    probes = network.probe_records(ctx.state, ctx.tenant, ctx.first_day, ctx.last_day, ctx.span.start_ts,
                                   ctx.judged_end)
    recorded = bool(devices or probes)
    return NetworkSection(devices=devices, probes=probes, watched=watched or recorded), recorded


# --- updates ---------------------------------------------------------------------------------------

def updates_section(ctx: _Context) -> tuple[UpdatesSection, bool]:
    """Every occurrence of the tenant's windows up to now, with its run; and whether any run was recorded."""
    if not ctx.has("updates"):
        return UpdatesSection(), False
    names = tenant_windows(ctx.config, ctx.tenant)
    span_days = (ctx.span.end.date() - ctx.first_day).days
    occs = [o for o in occurrences(ctx.config, ctx.first_day, span_days)
            if o.window in names and o.start.timestamp() <= ctx.now]
    rows = [r for r in UpdateStore(ctx.state).runs_between(ctx.span.start_ts, ctx.span.end_ts)
            if (r["window"] in names or r["tenant"] == ctx.tenant) and r["started_at"] <= ctx.now]
    announced = announcements(NoticeStore(ctx.state), ctx.tenant, ctx.span.start_ts, ctx.span.end_ts)
    by_occurrence = {(r["window"], round(r["window_start"])): r for r in rows}  # rows by start: the last run wins
    found = [_window_record(occ, by_occurrence.pop((occ.window, round(occ.start.timestamp())), None), announced,
                            ctx.now) for occ in occs]
    unplanned = {id(r) for r in by_occurrence.values()}  # the runs no occurrence claimed
    found += [_unplanned_record(r, announced, ctx) for r in rows
              if id(r) in unplanned and ctx.span.contains(r["started_at"])]
    records = sorted((r for r in found if r is not None), key=lambda r: (r.start, r.window))
    return UpdatesSection(tuple(records)), bool(rows)


def _window_record(occ: WindowOccurrence, row: "sqlite3.Row | None", announced: Announcements,
                   now: float) -> WindowRecord | None:
    """One occurrence: its run, else skipped, else not run once it closed (None while it is still open)."""
    start_ts = occ.start.timestamp()
    base: dict[str, Any] = dict(window=occ.window, application=occ.application, start=occ.start,
                                announced_at=_rome(announced.at(occ.window, start_ts)))
    if row is not None:
        return _run_record(row, base, now)
    if occ.skipped:
        return WindowRecord(**base, outcome="skipped", reason=occ.reason)
    if occ.end.timestamp() > now:
        return None
    return WindowRecord(**base, outcome="not_run")


def _run_record(row: "sqlite3.Row", base: dict[str, Any], now: float) -> WindowRecord | None:
    """A run's outcome; a run still marked running after its window is one whose process died (interrupted)."""
    status = row["status"]
    if status == RunStatus.RUNNING:
        if row["window_end"] > now:
            return None
        status = RunStatus.INTERRUPTED
    lines = (row["summary"] or "").strip().splitlines()
    reason = lines[0][:300] if lines and status != RunStatus.SUCCEEDED else None
    return WindowRecord(**base, outcome=_RUN_OUTCOMES[status], reason=reason, trigger=_TRIGGERS.get(row["trigger"]),
                        run_id=row["id"])


def _unplanned_record(row: "sqlite3.Row", announced: Announcements, ctx: _Context) -> WindowRecord | None:
    """A run that belongs to no occurrence (an urgent ``--now`` run, a window since removed)."""
    window = ctx.config.updates.windows.get(row["window"])
    base: dict[str, Any] = dict(window=row["window"], application=row["application"] if window is None
                                else window.application, start=_rome(row["window_start"]),
                                announced_at=_rome(announced.at(row["window"], row["window_start"])))
    return _run_record(row, base, ctx.now)


# --- tickets ---------------------------------------------------------------------------------------

def tickets_section(ctx: _Context) -> tuple[TicketsSection, bool]:
    """The SLA compliance report of the period as the section's figures; and whether any ticket was opened."""
    report = load_tenant_report(ctx.config, ctx.state, ctx.tenant, ctx.span, ctx.now)
    document = as_json(report)
    levels = tuple(_level_figures(level, document["cases"], ctx.span.key) for level in document["levels"])
    subjects = {row["id"]: row["subject"]
                for row in store.compliance_rows(ctx.state, ctx.tenant, ctx.span.start_ts, ctx.span.end_ts)}
    tickets = tuple(_ticket_record(result, subjects) for result in report.compliance.cases)
    return TicketsSection(contract=document["contract"], levels=levels, tickets=tickets), not report.empty


def _level_figures(level: dict[str, Any], cases: list[dict[str, Any]], key: str) -> LevelFigures:
    """One level's bucket for the whole period (zeros before the period starts)."""
    bucket = next((b for b in level["buckets"] if b["period"] == key), None) or {}
    take = bucket.get("take_charge") or {}
    resolve = bucket.get("resolve") or bucket.get("restore") or {}
    exposure = bucket.get("exposure") or {}
    still_open = sum(1 for c in cases if (c["level"], c["table"]) == (level["level"], level["table"])
                     and c["recovered_at"] is None)
    return LevelFigures(level=level["level"], label=level["label"], opened=bucket.get("opened", 0),
                        take_charge_within=take.get("within", 0), take_charge_late=take.get("late", 0),
                        resolved_within=resolve.get("within", 0), resolved_late=resolve.get("late", 0),
                        still_open=still_open, threshold_percent=level["threshold"], met=bucket.get("met"),
                        penalty_euros_min=exposure.get("euros_min", 0.0),
                        penalty_euros_max=exposure.get("euros_max", 0.0))


def _ticket_record(result: CaseResult, subjects: dict[int, str]) -> TicketRecord:
    """One case: within target when every judged target was met in time, not when one was late."""
    case = result.case
    outcomes = {j.outcome for j in result.judgements.values()}
    within = False if Outcome.LATE in outcomes else True if outcomes == {Outcome.WITHIN} else None
    return TicketRecord(ref=case.refs[0] if case.refs else None, level=result.level.key,
                        subject=subjects.get(case.first.id, ""), opened_at=cast(datetime, _rome(case.opened_at)),
                        taken_at=_rome(case.taken_at()), resolved_at=_rome(case.recovered_at()),
                        within_target=within)


# --- summary lights --------------------------------------------------------------------------------

def summary(ctx: _Context, backups: BackupSection, servers: ServersSection, updates: UpdatesSection,
            tickets: TicketsSection, net: NetworkSection | None = None) -> tuple[SummaryLight, ...]:
    """The six lights, in the order the summary shows them, and the network's for a comune that has one."""
    monitoring = ctx.has("monitoring")
    checks = ctx.config.checks.filesystem
    extra = (network_light(net, monitoring),) if net is not None and net.watched else ()
    return (backups_light(backups.jobs, ctx.last_day, ctx.has("backup_control")),
            availability_light(servers.servers, servers.outages, monitoring),
            security_light(servers.servers, ctx.config.farm.checks.antivirus.signature_max_age / 86400, monitoring),
            service_levels_light(tickets.levels),
            updates_light(updates.windows, ctx.has("updates")),
            capacity_light(servers.servers, ctx.last_day, 100.0 - checks.warning_avail_percent,
                           100.0 - checks.critical_avail_percent, monitoring), *extra)


def backups_light(jobs: tuple[BackupJobHistory, ...], last_day: date, bought: bool = True) -> SummaryLight:
    counted = [d for job in jobs for d in job.days if d.outcome != "not_due"]
    if not bought or not jobs:
        return SummaryLight("backups", Light.NONE, {"jobs": len(jobs)})
    failed = sum(1 for d in counted if d.outcome == "failure")
    missing = sum(1 for d in counted if d.outcome == "missing")
    warnings = sum(1 for d in counted if d.outcome == "warning")
    recent_from = last_day - timedelta(days=RECENT_DAYS - 1)
    recent = sum(1 for d in counted if d.outcome in ("failure", "missing") and d.day >= recent_from)
    share = round(100 * (failed + missing) / len(counted), 2) if counted else 0.0
    values = {"jobs": len(jobs), "job_nights": len(counted), "failed": failed, "missing": missing,
              "warnings": warnings, "bad_in_last_7_days": recent, "bad_percent": share}
    if recent or share > BAD_SHARE_PERCENT:
        return SummaryLight("backups", Light.RED, values)
    if failed or missing or warnings:
        return SummaryLight("backups", Light.YELLOW, values)
    return SummaryLight("backups", Light.GREEN if counted else Light.NONE, values)


def availability_light(servers: tuple[ServerRecord, ...], down: tuple[Outage, ...],
                       bought: bool = True) -> SummaryLight:
    measured = [s for s in servers if s.availability_percent is not None]
    if not bought or not measured:
        return SummaryLight("availability", Light.NONE, {"servers": len(measured)})
    lowest = min(measured, key=lambda s: cast(float, s.availability_percent))
    percent = cast(float, lowest.availability_percent)
    values = {"servers": len(measured), "lowest_percent": percent, "lowest_host": lowest.host,
              "outages": len(down), "outage_seconds": round(sum(o.seconds for o in down), 3)}
    if percent < AVAILABILITY_RED:
        return SummaryLight("availability", Light.RED, values)
    if percent < AVAILABILITY_YELLOW or down:
        return SummaryLight("availability", Light.YELLOW, values)
    return SummaryLight("availability", Light.GREEN, values)


def security_light(servers: tuple[ServerRecord, ...], signature_limit_days: float,
                   bought: bool = True) -> SummaryLight:
    antivirus_off = [s.host for s in servers if s.antivirus_active is False]
    unsupported = [s.host for s in servers if s.os_supported is False]
    stale = [s.host for s in servers if (s.antivirus_signature_age_days or 0) > signature_limit_days]
    pending = [s.host for s in servers if (s.updates_security_pending or 0) > 0]
    off_some_day = [s.host for s in servers if s.antivirus_days_inactive]
    values = {"antivirus_off": antivirus_off, "os_unsupported": unsupported, "signatures_old": stale,
              "security_updates_pending": pending, "antivirus_off_some_day": off_some_day}
    reported = [s for s in servers if s.antivirus_active is not None or s.os_supported is not None
                or s.updates_security_pending is not None]
    if not bought or not reported:
        return SummaryLight("security", Light.NONE, values)
    if antivirus_off or unsupported:
        return SummaryLight("security", Light.RED, values)
    if stale or pending or off_some_day:
        return SummaryLight("security", Light.YELLOW, values)
    return SummaryLight("security", Light.GREEN, values)


def service_levels_light(levels: tuple[LevelFigures, ...]) -> SummaryLight:
    decided = [level for level in levels if level.met is not None]
    late = sum(level.take_charge_late + level.resolved_late for level in levels)
    values = {"opened": sum(level.opened for level in levels), "levels": len(decided),
              "not_met": [level.level for level in decided if not level.met], "late": late,
              "penalty_euros_min": round(sum(level.penalty_euros_min for level in levels), 2),
              "penalty_euros_max": round(sum(level.penalty_euros_max for level in levels), 2)}
    if not decided:
        return SummaryLight("service_levels", Light.NONE, values)
    if values["not_met"]:
        return SummaryLight("service_levels", Light.RED, values)
    return SummaryLight("service_levels", Light.YELLOW if late else Light.GREEN, values)


def updates_light(windows: tuple[WindowRecord, ...], bought: bool = True) -> SummaryLight:
    counts = {outcome: sum(1 for w in windows if w.outcome == outcome)
              for outcome in ("succeeded", "rolled_back", "failed", "interrupted", "skipped", "not_run")}
    values: dict[str, Any] = {"windows": len(windows), **counts}
    if not bought or not windows:
        return SummaryLight("updates", Light.NONE, values)
    if counts["failed"] or counts["interrupted"]:
        return SummaryLight("updates", Light.RED, values)
    if counts["rolled_back"] or counts["not_run"]:
        return SummaryLight("updates", Light.YELLOW, values)
    return SummaryLight("updates", Light.GREEN, values)


def capacity_light(servers: tuple[ServerRecord, ...], last_day: date, warning_used: float, critical_used: float,
                   bought: bool = True) -> SummaryLight:
    disks = [(s.host, d) for s in servers for d in s.disks if d.used_percent_end is not None]
    fills = sorted(((d.full_by, host, d.mount) for host, d in disks if d.full_by is not None))
    values: dict[str, Any] = {"disks": len(disks), "highest_used_percent": max(
        (cast(float, d.used_percent_end) for _, d in disks), default=None),
        "first_full_by": fills[0][0] if fills else None,
        "first_full": f"{fills[0][1]} {fills[0][2]}" if fills else None}
    if not bought or not disks:
        return SummaryLight("capacity", Light.NONE, values)
    highest = cast(float, values["highest_used_percent"])
    days_left = (fills[0][0] - last_day).days if fills else None
    if highest >= critical_used or (days_left is not None and days_left <= FILL_RED_DAYS):
        return SummaryLight("capacity", Light.RED, values)
    if highest >= warning_used or (days_left is not None and days_left <= FILL_YELLOW_DAYS):
        return SummaryLight("capacity", Light.YELLOW, values)
    return SummaryLight("capacity", Light.GREEN, values)


def network_light(section: NetworkSection, bought: bool = True) -> SummaryLight:
    devices, probes = section.devices, section.probes
    measured = [(d.host, d.availability_percent) for d in devices if d.availability_percent is not None] + \
               [(p.name, p.availability_percent) for p in probes if p.availability_percent is not None]
    certificates = sorted((p.cert_days_left, p.name) for p in probes if p.cert_days_left is not None)
    lowest = min(measured, key=lambda item: cast(float, item[1]), default=(None, None))
    values: dict[str, Any] = {
        "devices": len(devices), "probes": len(probes), "lowest": lowest[0], "lowest_percent": lowest[1],
        "outages": sum(len(d.outages) for d in devices), "reboots": sum(len(d.reboots) for d in devices),
        "interface_downs": sum(len(d.interface_downs) for d in devices),
        "ups_events": sum(len(d.ups_events) for d in devices), "probe_downs": sum(len(p.downs) for p in probes),
        "first_certificate": certificates[0][1] if certificates else None,
        "certificate_days_left": certificates[0][0] if certificates else None}
    if not bought or not (devices or probes):
        return SummaryLight("network", Light.NONE, values)
    percent, days_left = lowest[1], values["certificate_days_left"]
    if (percent is not None and percent < NETWORK_RED) or (days_left is not None and days_left < CERT_RED_DAYS):
        return SummaryLight("network", Light.RED, values)
    if ((percent is not None and percent < NETWORK_YELLOW) or (days_left is not None and days_left < CERT_YELLOW_DAYS)
            or any(values[k] for k in ("outages", "interface_downs", "ups_events", "probe_downs"))):
        return SummaryLight("network", Light.YELLOW, values)
    return SummaryLight("network", Light.GREEN, values)
