"""The report's test scenario: a quarter of one comune's history, written through each feature's own path.

:func:`fill_quarter` writes into a state DB what a quarter of Custode at a
comune leaves there, each part the way the feature itself writes it:

* two servers: a Windows Server 2012 R2 polled by farm mode (each poll
  through ``custode.agent.farm.history.record``, as the farm job records it)
  and a Debian host with its own agent (its collection cycles through
  ``custode.agent.history.service.record_cycles``, as the agent's flush does),
  one observation an hour; two reachability incidents through ``Incidents``;
* three expected backup jobs whose report mails go through the backup
  monitor's ingestion (classification, store, evaluation): a Veeam job fed with
  the real Veeam B&R sample mail of ``tests/data`` (its Date and Message-ID
  rewritten each night) and two jobs of a site script rule, with failures, a
  warning, a failure retried the same night, and one night with no report;
* one restore test and a coverage check through ``RestoreStore``;
* tickets in and out of their take-charge target through the ticket store,
  each with the due time ``custode.agent.tickets.sla.due`` gives it;
* the tenant's update windows: a weekly Friday window (Christmas Day is a
  Friday in 2026: skipped) and a window on dates including Tuesday 8 December
  (Immacolata: skipped); runs through ``UpdateStore`` (one failed, one rolled
  back, one window that never ran, an urgent ``--now`` run) and advance notices
  through ``NoticeStore`` (one never sent).

Nothing reads the wall clock: every time is derived from the period and the
fixed :data:`NOW`. The returned dict holds every figure the report must show,
counted here from what was written (never by the builder's code), so
``tests/test_report_data.py`` compares the document with it. Only which
window occurrences exist, and which a holiday skips, is asked of
``custode.agent.updates.windows``, as the update scheduler itself asks it;
the test pins 2026Q4's two holidays by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from mailfactory import make_mail

from custode.agent.backups.service import BackupMonitor
from custode.agent.calendar import ROME
from custode.agent.config import Config
from custode.agent.config_loader import load, load_text
from custode.agent.farm import history as farm_history
from custode.agent.farm.poller import PollResult
from custode.agent.farm.snapshot import (
    Antivirus,
    DiskHealth,
    EventSummary,
    Filesystem,
    HostSnapshot,
    OsInfo,
    UpdateStatus,
)
from custode.agent.farm.targets import Target
from custode.agent.history.model import FilesystemSeen, Observation
from custode.agent.history.service import record_cycles
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.mail.sources import Batch, RawMail
from custode.agent.restore.coverage import CoverageItem
from custode.agent.restore.engine import certificate_digest
from custode.agent.restore.model import CoverageKind
from custode.agent.restore.store import RestoreStore
from custode.agent.service_levels.period import Span, parse_period
from custode.agent.state import State
from custode.agent.tickets import sla, store
from custode.agent.tickets.model import TicketState
from custode.agent.updates.notice_store import NewNotice, NoticeKey, NoticeStore
from custode.agent.updates.states import NoticeKind, RunStatus, RunTrigger
from custode.agent.updates.store import NewRun, UpdateStore
from custode.agent.updates.windows import occurrences

ROOT = Path(__file__).resolve().parent
VEEAM_SAMPLE = ROOT / "data" / "mail" / "veeam_br" / "br_success_backup_3vm.eml"
NOW = datetime(2027, 1, 5, 9, 0, tzinfo=ROME)
"""When the quarter's report is built: the 2nd working day after 2026Q4."""
GIB = 1024 ** 3
HOUR = 3600.0

SCENARIO_CONFIG = """
agent: {tenant: provider, hostname: custode-farm}
reports: {provider_name: Consorzio.IT}
profiles:
  ENTERPRISE:
    features: [monitoring, backup_control, restore_tests, updates, os_patches, saturday_on_call, alerts]
    queue_priority: 3
  MINIMAL: {features: [monitoring], queue_priority: 0}
tenants:
  provider: {name: Consorzio.IT (farm), tickets: {backend: none}}
  TENANT:
    name: Comune di Vaiano Cremasco
    profile: ENTERPRISE
    referents: [ced@comune.vaiano.example.it]
    tickets: {backend: zd}
    notice: {working_days: 2}
    calendar:
      office_hours:
        monday: ["08:30-12:30", "14:00-18:00"]
        tuesday: ["08:30-12:30", "14:00-18:00"]
        wednesday: ["08:30-12:30", "14:00-18:00"]
        thursday: ["08:30-12:30", "14:00-18:00"]
        friday: ["08:30-12:30", "14:00-18:00"]
      blocking_hours: {saturday: ["08:30-12:30"]}
    service_levels:
      contract: Consorzio.IT, gestione sistemi
      threshold: 90
      levels:
        alta: {label: "Alta (bloccante)", priority: high, blocking: true, take_charge: 8 working hours}
        media: {label: Media, priority: medium, take_charge: 12 working hours}
        bassa: {label: Bassa, priority: low, take_charge: 16 working hours}
  vuoto: {name: Comune senza dati, tickets: {backend: none}}
hosts:
  TENANT-srv01: {address: 10.20.0.10, transport: winrm, winrm: {user: custode}, tenant: TENANT}
  TENANT-lnx01: {address: 10.20.0.11, transport: ssh, tenant: TENANT, monitor: agent}
backups:
  rules:
    - {name: nas-script, software: NAS script, sender: "^nas-script@", subject: '^Backup \\w+:',
       job: '^Backup (?P<job>\\w+):'}
  expected:
    TENANT:
      - {name: Backup Server Comune, software: Veeam, schedule: "0 22 * * *"}
      - {name: nas_dati, software: NAS script, schedule: "30 1 * * *"}
      - {name: sql_tributi, software: NAS script, schedule: "0 23 * * 1-5"}
updates:
  windows:
    halley: {application: Halley, tenant: TENANT, days: [friday], start: "16:00", duration: 2h,
             hosts: [TENANT-srv01], playbook: windows-vendor-update.yaml}
    os-patch: {application: Windows Server patches, tenant: TENANT, dates: [2026-10-20, 2026-12-08],
               start: "18:00", duration: 3h, hosts: [TENANT-srv01], playbook: os-windows-update.yaml}
smtp: {host: smtp.example.it, sender: custode@consorzio.example.it}
tickets:
  backends:
    zd: {type: zendesk, url: "https://helpdesk.example.it", email: custode@example.it, token: {env: T_ZD}}
"""


def scenario_config(tenant: str = "vaiano") -> str:
    """The scenario's config for ``tenant`` (its hosts are ``TENANT-srv01`` and ``TENANT-lnx01``)."""
    return SCENARIO_CONFIG.replace("TENANT", tenant)


def load_scenario_config(tenant: str = "vaiano") -> Config:
    return load_text(scenario_config(tenant)).model


def _config(source: Config | str | Path | Any) -> Config:
    if isinstance(source, Config):
        return source
    if isinstance(source, (str, Path)):
        return load(Path(source)).model
    return source.model  # a LoadedConfig


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ROME)


@dataclass(frozen=True)
class Quarter:
    """The period, its days, and the hourly moments the hosts were observed."""

    span: Span

    @property
    def first(self) -> date:
        return self.span.start.date()

    @property
    def last(self) -> date:
        return self.span.end.date() - timedelta(days=1)

    def day(self, index: int) -> date:
        """The period's day ``index`` (0 = the first; negative from the end: -1 = the last)."""
        return self.first + timedelta(days=index) if index >= 0 else self.last + timedelta(days=index + 1)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def hours(self) -> list[float]:
        """Every real hour of the period (a day of 25 hours at the end of summer time has 25)."""
        count = round((self.span.end_ts - self.span.start_ts) / HOUR)
        return [self.span.start_ts + i * HOUR for i in range(count)]


def fill_quarter(state: State, config_path_or_model: Config | str | Path | Any, tenant: str = "vaiano",
                 period: str = "2026Q4") -> dict[str, Any]:
    """Write the quarter's history of ``tenant`` into ``state``; return the figures the report must show."""
    config = _config(config_path_or_model)
    quarter = Quarter(parse_period(period))
    return {"tenant": tenant, "period": quarter.span.key, "first": quarter.first, "last": quarter.last,
            "now": NOW,
            "servers": _fill_servers(state, config, tenant, quarter),
            "backups": _fill_backups(state, config, tenant, quarter),
            "restore": _fill_restore(state, tenant, quarter),
            "tickets": _fill_tickets(state, config, tenant, quarter),
            "updates": _fill_updates(state, config, tenant, quarter),
            "lights": {"backups": "red", "availability": "yellow", "security": "red", "service_levels": "red",
                       "updates": "red", "capacity": "yellow"}}


# --- servers ---------------------------------------------------------------------------------------

WINDOWS_OS = OsInfo("windows", "Microsoft Windows Server 2012 R2 Standard", "6.3.9600", build="9600", server=True)
LINUX_OS = "Debian GNU/Linux 12 (bookworm)"


def _hosts(config: Config, tenant: str) -> tuple[str, str]:
    """(the farm-polled Windows host, the agent-mode Linux host) of the tenant."""
    mine = {name: host for name, host in config.hosts.items() if host.tenant == tenant}
    windows = next(name for name, host in mine.items() if host.transport == "winrm")
    linux = next(name for name, host in mine.items() if host.monitor == "agent")
    return windows, linux


def _fill_servers(state: State, config: Config, tenant: str, quarter: Quarter) -> dict[str, Any]:
    windows, linux = _hosts(config, tenant)
    outages = [(at(quarter.day(35), 10), at(quarter.day(35), 13)),  # three polls fail: 10, 11, 12
               (at(quarter.last, 22), at(quarter.last + timedelta(days=1), 2))]  # still down when the period ends
    expected_windows = _fill_windows_host(state, config, tenant, windows, quarter, outages)
    expected_linux = _fill_linux_host(state, tenant, linux, quarter)
    incidents = Incidents(state)
    for start, end in outages:
        target = f"{windows}:reachability"
        incidents.observe(CheckResult(tenant, "reachability", target, "critical",
                                      f"host {windows} could not be polled 3 times in a row: timed out",
                                      {"host": windows}), now=start.timestamp())
        incidents.observe(CheckResult(tenant, "reachability", target, "ok", f"host {windows} answers",
                                      {"host": windows}), now=end.timestamp())
    period_end = quarter.span.end_ts
    return {windows: expected_windows, linux: expected_linux,
            "outages": [{"host": windows, "start": start, "end": end if end.timestamp() < period_end else None,
                         "seconds": min(end.timestamp(), period_end) - start.timestamp()}
                        for start, end in outages]}


def _windows_snapshot(moment: float, day_index: int, hour: int, last_installed: float) -> HostSnapshot:
    """What the Windows host reports at ``moment``: C: fills by 0.2 % a day, the 14:00 poll is the busy one,
    Defender is off from 09:00 to 11:00 on day 50, a disk warns on day 70, updates are pending from day 60."""
    c_free = (40.0 - 0.2 * day_index) / 100 * 100 * GIB
    antivirus_on = not (day_index == 50 and 9 <= hour <= 11)
    return HostSnapshot(
        os=WINDOWS_OS, time=moment, cpu_busy_ratio=0.9 if hour == 14 else 0.25,
        memory_total_bytes=16 * GIB, memory_available_bytes=(2 if hour == 14 else 4) * GIB,
        filesystems=(Filesystem("C:", "C:", "NTFS", 100 * GIB, c_free, c_free, "Sistema"),
                     Filesystem("D:", "D:", "NTFS", 500 * GIB, 250 * GIB, 250 * GIB, "Dati")),
        failed_services=(),
        updates=UpdateStatus(3 if day_index >= 60 else 0, 2 if day_index >= 60 else 0, False, last_installed),
        antivirus=(Antivirus("Microsoft Defender", antivirus_on, antivirus_on, moment - HOUR),),
        disks=(DiskHealth("PhysicalDisk0", True, "Healthy"),
               DiskHealth("PhysicalDisk1", day_index != 70, "Healthy" if day_index != 70 else "Warning")),
        events=EventSummary(counts={("disk", "error"): 2, ("Microsoft-Windows-Kernel-Power", "critical"): 1}))


PATCH_DAY = 19
"""The OS patch window of the period's 20th day (20 October in 2026Q4) installed its updates at 19:30."""


def _fill_windows_host(state: State, config: Config, tenant: str, host: str, quarter: Quarter,
                       outages: list[tuple[datetime, datetime]]) -> dict[str, Any]:
    patched = at(quarter.day(PATCH_DAY), 19, 30)
    unpatched = quarter.span.start_ts - 40 * 86400
    target = Target(host, tenant, config.hosts[host], 3600.0, 60.0)
    cpu: list[float] = []
    memory: list[float] = []
    polls = failures = 0
    with state.transaction() as db:
        for moment in quarter.hours:
            local = datetime.fromtimestamp(moment, ROME)
            index = (local.date() - quarter.first).days
            polls += 1
            if any(start.timestamp() <= moment < end.timestamp() for start, end in outages):
                failures += 1
                farm_history.record(db, PollResult(target, moment, 10.0, None, error="timed out"))
                continue
            snapshot = _windows_snapshot(moment, index, local.hour,
                                         patched.timestamp() if moment > patched.timestamp() else unpatched)
            busy = snapshot.cpu_busy_ratio or 0.0
            cpu.append(100 * busy)
            memory.append(100 * (1 - (snapshot.memory_available_bytes or 0) / (snapshot.memory_total_bytes or 1)))
            farm_history.record(db, PollResult(target, moment, 2.0, snapshot, cpu_busy_ratio=busy,
                                               included_updates=True))
    days = quarter.days
    c_used = [(day, round(60.0 + 0.2 * i, 2)) for i, day in enumerate(days)]
    return {"source": "farm", "os": WINDOWS_OS.name, "days_with_data": len(days),
            "availability_percent": 100 * (polls - failures) / polls, "polls": polls, "failures": failures,
            "cpu_avg": sum(cpu) / len(cpu), "cpu_max": 90.0, "memory_avg": sum(memory) / len(memory),
            "memory_max": 87.5,
            "disks": {"C:": {"size_bytes": 100 * GIB, "start": 60.0, "end": c_used[-1][1], "max": c_used[-1][1],
                             "daily": c_used, "full_by": quarter.first + timedelta(days=200)},
                      "D:": {"size_bytes": 500 * GIB, "start": 50.0, "end": 50.0, "max": 50.0, "full_by": None}},
            "antivirus_active": True, "antivirus_days_inactive": 1, "signature_age_days": 0.0,
            "updates_pending": 3, "updates_security_pending": 2,
            "last_update_installed": patched,
            "os_supported": False, "os_end_of_support": date(2023, 10, 10),
            "event_errors": 3 * len(days), "hardware_problems": ("unhealthy_disks",), "unhealthy_disk_days": 1}


def _fill_linux_host(state: State, tenant: str, host: str, quarter: Quarter) -> dict[str, Any]:
    """The agent's hourly cycles; it was stopped for two cycles on day 75 (03:00 and 04:00 never ran)."""
    stopped = {at(quarter.day(75), 3).timestamp(), at(quarter.day(75), 4).timestamp()}
    cycles = []
    cpu: list[float] = []
    for moment in quarter.hours:
        if moment in stopped:
            continue
        busy = 60.0 if datetime.fromtimestamp(moment, ROME).hour == 3 else 10.0
        cpu.append(busy)
        cycles.append(Observation(at=moment, os=LINUX_OS, cpu_percent=busy, memory_used_percent=25.0,
                                  memory_total_bytes=8 * GIB, failed_services=0, unhealthy_disks=0,
                                  filesystems=(FilesystemSeen("/", 35 * GIB, 50 * GIB),
                                               FilesystemSeen("/srv", 100 * GIB, 200 * GIB))))
    with state.transaction() as db:
        record_cycles(db, host, tenant, HOUR, cycles)
    due = len(quarter.hours)
    return {"source": "agent", "os": LINUX_OS, "days_with_data": len(quarter.days),
            "availability_percent": 100 * (due - len(stopped)) / due, "polls": due, "failures": len(stopped),
            "cpu_avg": sum(cpu) / len(cpu), "cpu_max": 60.0, "memory_avg": 25.0, "memory_max": 25.0,
            "disks": {"/": {"size_bytes": 50 * GIB, "start": 30.0, "end": 30.0, "max": 30.0, "full_by": None},
                      "/srv": {"size_bytes": 200 * GIB, "start": 50.0, "end": 50.0, "max": 50.0, "full_by": None}},
            "antivirus_active": None, "antivirus_days_inactive": 0, "signature_age_days": None,
            "updates_pending": None, "updates_security_pending": None, "last_update_installed": None,
            "os_supported": None, "os_end_of_support": None, "event_errors": None, "hardware_problems": (),
            "unhealthy_disk_days": 0}


# --- backups ---------------------------------------------------------------------------------------

class ListSource:
    """A mailbox holding the quarter's mail: the monitor reads it like any other source."""

    name = "backup"

    def __init__(self, mails: list[bytes]) -> None:
        self.pending = mails

    def batches(self, known_keys: Any, cursor: Any) -> Any:
        mails, self.pending = self.pending, []
        yield Batch([RawMail("INBOX", raw) for raw in mails])

    def close(self) -> None:
        pass


def veeam_mail(finished: datetime, number: int) -> bytes:
    """The real Veeam B&R success mail of tests/data, sent at ``finished`` (its Date and Message-ID rewritten)."""
    raw = VEEAM_SAMPLE.read_bytes()
    raw = re.sub(rb"(?m)^Date: .*$", b"Date: " + format_datetime(finished).encode(), raw, count=1)
    return re.sub(rb"(?m)^Message-ID: .*$", f"Message-ID: <scenario.veeam.{number}@vbr01.example.it>".encode(), raw,
                  count=1)


def script_mail(job: str, outcome: str, when: datetime) -> bytes:
    """A site backup script's mail, as the config's rule ``nas-script`` reads it."""
    body = f"Job {job} finished: {outcome}\n" + ("Error: destination share not reachable\n" if outcome == "failed"
                                                 else "")
    return make_mail(f"Backup {job}: {outcome}", body, date=when, sender="nas-script@comune.example.it")


def _fill_backups(state: State, config: Config, tenant: str, quarter: Quarter) -> dict[str, Any]:
    days = quarter.days
    mails: list[bytes] = []
    veeam_missing = quarter.day(47)
    veeam = {day: "success" for day in days if day != veeam_missing}
    for number, day in enumerate(days):
        if day != veeam_missing:
            mails.append(veeam_mail(at(day, 22, 48), number))
    mails.append(veeam_mail(at(quarter.first - timedelta(days=1), 22, 48), 9999))  # the night before the period
    nas_outcomes = {quarter.day(13): "failed", quarter.day(33): "warning", quarter.day(-4): "failed"}
    nas: dict[date, str] = {}
    for day in days:
        word = nas_outcomes.get(day, "success")
        nas[day] = {"failed": "failure", "warning": "warning"}.get(word, "success")
        mails.append(script_mail("nas_dati", word, at(day, 1, 50)))
    weekdays = [day for day in days if day.weekday() < 5]
    sql_failed, sql_retried = weekdays[28], weekdays[14]
    sql: dict[date, str] = {}
    for day in weekdays:
        if day == sql_retried:  # failed, then the operator's retry succeeded: the latest report decides
            mails.append(script_mail("sql_tributi", "failed", at(day, 23, 20)))
            mails.append(script_mail("sql_tributi", "success", at(day, 23, 55)))
            sql[day] = "success"
            continue
        sql[day] = "failure" if day == sql_failed else "success"
        mails.append(script_mail("sql_tributi", "failed" if day == sql_failed else "success", at(day, 23, 40)))
    mails.append(script_mail("altro_comune", "failed", at(quarter.day(5), 2, 0)))  # nobody expects this job
    monitor = BackupMonitor(config.backups, state, clock=lambda: NOW.timestamp(), sources=[ListSource(mails)])
    summary = monitor.poll()
    assert summary.reports == len(mails), "every scenario mail must be read as a report"
    grid = {"Backup Server Comune": {**veeam, veeam_missing: "missing"}, "nas_dati": nas, "sql_tributi": sql}
    nights = sum(len(g) for g in grid.values())
    failed = sum(1 for g in grid.values() for v in g.values() if v == "failure")
    missing = sum(1 for g in grid.values() for v in g.values() if v == "missing")
    return {"grid": grid, "software": {"Backup Server Comune": "Veeam Backup & Replication",
                                       "nas_dati": "NAS script", "sql_tributi": "NAS script"},
            "schedules": {"Backup Server Comune": "0 22 * * *", "nas_dati": "30 1 * * *",
                          "sql_tributi": "0 23 * * 1-5"},
            "reported_at": {("Backup Server Comune", quarter.day(0)): at(quarter.day(0), 22, 48),
                            ("nas_dati", quarter.day(13)): at(quarter.day(13), 1, 50),
                            ("sql_tributi", sql_retried): at(sql_retried, 23, 55)},
            "failed_with_error": [("nas_dati", quarter.day(13)), ("nas_dati", quarter.day(-4)),
                                  ("sql_tributi", sql_failed)],
            "light": {"jobs": 3, "job_nights": nights, "failed": failed, "missing": missing, "warnings": 1,
                      "bad_in_last_7_days": 1, "bad_percent": round(100 * (failed + missing) / nights, 2)}}


# --- restore tests -----------------------------------------------------------------------------------

CERTIFICATE_ID = "6f1c2a5e-7b9d-4c3e-9a51-0d2f8e4b7c10"


def _certificate(certificate_id: str, set_name: str, tenant: str, started: datetime, passed: bool,
                 snapshot: datetime) -> dict[str, Any]:
    """A certificate in the shape the restore engine writes (the fields the store records)."""
    certificate: dict[str, Any] = {
        "kind": "custode.restore-test", "version": 1, "id": certificate_id, "set": set_name, "tenant": tenant,
        "backend": "restic", "snapshot": {"id": "4f2a9c1d", "time": snapshot.isoformat()},
        "started_at": started.isoformat(), "finished_at": (started + timedelta(minutes=12)).isoformat(),
        "run_by": {"trigger": "scheduled", "user": "custode", "hostname": "custode-farm"},
        "files_checked": 50 if passed else 48, "files_verified": 50 if passed else 47,
        "mismatches": [] if passed else ["Protocollo/2026/reg.pdf"], "errors": [], "warnings": [],
        "restore": {"bytes": 734_003_200, "seconds": 95.0}, "passed": passed}
    certificate["sha256"] = certificate_digest(certificate)
    return certificate


def _fill_restore(state: State, tenant: str, quarter: Quarter) -> dict[str, Any]:
    restore = RestoreStore(state)
    started = at(quarter.day(45), 10)
    snapshot = at(quarter.day(44), 22, 48)
    restore.record_test(tenant, _certificate(CERTIFICATE_ID, f"{tenant}-dati", tenant, started, True, snapshot),
                        f"/var/lib/custode/certificates/{CERTIFICATE_ID}.json")
    before = at(quarter.first - timedelta(days=20), 10)
    restore.record_test(tenant, _certificate("0b7e1f22-0000-4000-8000-000000000001", f"{tenant}-dati", tenant, before,
                                             False, before - timedelta(hours=12)), None)
    items = [CoverageItem("D:\\Dati", CoverageKind.FOLDER, True, "D:\\Dati", 80 * GIB, 120_000, None,
                          "backed up"),
             CoverageItem("D:\\Halley", CoverageKind.APPLICATION, True, "D:\\Halley", 12 * GIB, 9_000, None,
                          "backed up"),
             CoverageItem("D:\\Scansioni", CoverageKind.FOLDER, False, None, 5 * GIB, 4_000, None,
                          "no included path covers it")]
    restore.record_coverage(f"{tenant}-dati", tenant, ["D:\\Dati", "D:\\Halley"], items, False, [],
                            at(quarter.day(45), 10, 15).timestamp())
    return {"tests": [{"set_name": f"{tenant}-dati", "certificate_id": CERTIFICATE_ID, "passed": True,
                       "finished_at": started + timedelta(minutes=12), "files_checked": 50, "files_verified": 50,
                       "mismatches": 0, "restored_bytes": 734_003_200, "snapshot_time": snapshot,
                       "summary": "passed"}],
            "paths": [(f"{tenant}-dati", "D:\\Dati", True, "backed up", 80 * GIB),
                      (f"{tenant}-dati", "D:\\Halley", True, "backed up", 12 * GIB),
                      (f"{tenant}-dati", "D:\\Scansioni", False, "no included path covers it", 5 * GIB)]}


# --- tickets -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TicketPlan:
    level: str
    day: int
    """Index of the day it was opened, in the period (negative: from its end; None below: outside it)."""
    late: bool = False
    recovered: bool = True


TICKETS = (TicketPlan("alta", 5), TicketPlan("alta", 26), TicketPlan("alta", 47, late=True), TicketPlan("alta", 62),
           TicketPlan("alta", -4, recovered=False),
           TicketPlan("media", 12), TicketPlan("media", 34), TicketPlan("media", 54), TicketPlan("media", 75),
           TicketPlan("bassa", 69))


def _opening(day: date) -> datetime:
    """10:00 of ``day``, moved to the next weekday: the office opens tickets on working days."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return at(day, 10)


def _insert_ticket(state: State, config: Config, tenant: str, level: str, opened: datetime, number: int,
                   late: bool, recovered: bool) -> dict[str, Any]:
    due = sla.due(config, tenant, level, "take_charge", opened)
    assert due is not None
    taken = due + timedelta(hours=2) if late else opened + timedelta(minutes=30)
    back = taken + timedelta(hours=1) if recovered else None
    subject = f"Ticket {number} ({level})"
    with state.transaction() as db:
        ticket_id = store.insert_ticket(db, key=f"{tenant}/check{number}/target", tenant=tenant, backend="zd",
                                        check="check", incident_id=None, priority=sla.priority_of(config, tenant,
                                                                                                  level),
                                        subject=subject, opened_at=opened.timestamp(), due_at=due.timestamp(),
                                        resolve_due_at=None, level=level)
        changes: dict[str, Any] = {"ref": str(5000 + number), "taken_at": taken.timestamp(),
                                   "remote_status": "open"}
        if back is not None:
            changes.update(state=TicketState.DONE, recovered_at=back.timestamp(),
                           finished_at=(back + timedelta(minutes=5)).timestamp())
        store.update_ticket(db, ticket_id, **changes)
    return {"ref": str(5000 + number), "level": level, "subject": subject, "opened_at": opened, "taken_at": taken,
            "resolved_at": back, "within_target": not late}


def _fill_tickets(state: State, config: Config, tenant: str, quarter: Quarter) -> dict[str, Any]:
    tickets = [_insert_ticket(state, config, tenant, plan.level, _opening(quarter.day(plan.day)), number,
                              plan.late, plan.recovered) for number, plan in enumerate(TICKETS, start=1)]
    _insert_ticket(state, config, tenant, "alta", at(quarter.first - timedelta(days=2), 10), 90, True, True)
    _insert_ticket(state, config, tenant, "media", _opening(quarter.last + timedelta(days=3)), 91, False, True)
    levels: dict[str, dict[str, Any]] = {}
    for key in ("alta", "media", "bassa"):
        mine = [t for t in tickets if t["level"] == key]
        late = sum(1 for t in mine if not t["within_target"])
        levels[key] = {"opened": len(mine), "take_charge_within": len(mine) - late, "take_charge_late": late,
                       "still_open": sum(1 for t in mine if t["resolved_at"] is None), "threshold_percent": 90.0,
                       "met": (len(mine) - late) * 100 >= 90 * len(mine) if mine else None}
    return {"contract": "Consorzio.IT, gestione sistemi", "levels": levels,
            "tickets": sorted(tickets, key=lambda t: t["opened_at"])}


# --- update windows --------------------------------------------------------------------------------

HALLEY_FAILED, HALLEY_ROLLED_BACK, HALLEY_NOT_RUN, HALLEY_UNANNOUNCED = 6, 7, 10, 7
"""Which of the weekly window's occurrences that open (0 = the first) failed, rolled back, never ran, and
was never announced."""


def _fill_updates(state: State, config: Config, tenant: str, quarter: Quarter) -> dict[str, Any]:
    runs, notices = UpdateStore(state), NoticeStore(state)
    span_days = (quarter.last - quarter.first).days + 1
    occs = [o for o in occurrences(config, quarter.first, span_days) if o.tenant == tenant]
    expected: list[dict[str, Any]] = []
    weekly = 0
    for occ in occs:
        record: dict[str, Any] = {"window": occ.window, "application": occ.application, "start": occ.start,
                                  "announced_at": None, "trigger": None}
        if occ.skipped:
            expected.append({**record, "outcome": "skipped", "reason": occ.reason})
            continue
        index = weekly if occ.window == "halley" else -1
        weekly += occ.window == "halley"
        if index != HALLEY_UNANNOUNCED:
            record["announced_at"] = _announce(notices, tenant, occ)
        else:
            _announce_failed(notices, tenant, occ)
        if index == HALLEY_NOT_RUN:
            expected.append({**record, "outcome": "not_run", "reason": None})
            continue
        status, summary = {HALLEY_FAILED: (RunStatus.FAILED, "step 'install' failed: exit code 1603"),
                           HALLEY_ROLLED_BACK: (RunStatus.ROLLED_BACK, "step 'migrate' failed; rolled back")}.get(
            index, (RunStatus.SUCCEEDED, "every step passed"))
        _run(runs, occ.window, occ.application, tenant, RunTrigger.SCHEDULED, None, occ.start, occ.end, status,
             summary)
        expected.append({**record, "outcome": str(status), "trigger": "scheduled",
                         "reason": None if status == RunStatus.SUCCEEDED else summary})
    urgent = at(quarter.day(55), 14)
    _run(runs, "halley", "Halley", tenant, RunTrigger.NOW, "correzione urgente del protocollo", urgent,
         urgent + timedelta(hours=1), RunStatus.SUCCEEDED, "every step passed")
    expected.append({"window": "halley", "application": "Halley", "start": urgent, "announced_at": None,
                     "trigger": "now",
                     "outcome": "succeeded", "reason": None})
    expected.sort(key=lambda r: (r["start"], r["window"]))
    counts = {outcome: sum(1 for r in expected if r["outcome"] == outcome)
              for outcome in ("succeeded", "rolled_back", "failed", "interrupted", "skipped", "not_run")}
    return {"windows": expected, "counts": counts}


def _announce(notices: NoticeStore, tenant: str, occ: Any) -> datetime:
    """The advance notice, sent at 09:00 two days before the window opens."""
    sent = at(occ.start.date() - timedelta(days=2), 9)
    key = NoticeKey(tenant, occ.window, occ.start.timestamp(), NoticeKind.ADVANCE)
    notice_id = notices.claim(NewNotice(key, occ.end.timestamp(), occ.application, sent.timestamp()),
                              sent.timestamp())
    assert notice_id is not None
    notices.sent(notice_id, sent.timestamp(), f"<notice.{occ.window}.{occ.start:%Y%m%d}@example.it>",
                 ["ced@comune.vaiano.example.it"])
    return sent


def _announce_failed(notices: NoticeStore, tenant: str, occ: Any) -> None:
    """A notice the SMTP server refused until the window opened: recorded, never sent."""
    due = at(occ.start.date() - timedelta(days=2), 9)
    key = NoticeKey(tenant, occ.window, occ.start.timestamp(), NoticeKind.ADVANCE)
    notice_id = notices.claim(NewNotice(key, occ.end.timestamp(), occ.application, due.timestamp()),
                              due.timestamp())
    assert notice_id is not None
    notices.failed(notice_id, due.timestamp(), "smtp.example.it refused the connection")


def _run(runs: UpdateStore, window: str, application: str, tenant: str, trigger: RunTrigger, reason: str | None,
         start: datetime, end: datetime, status: RunStatus, summary: str) -> None:
    run_id = runs.begin(NewRun(window, application, tenant, trigger, reason, f"playbooks/{window}.yaml",
                               start.timestamp(), end.timestamp(), [], end.timestamp()), start.timestamp() + 5)
    runs.finish(run_id, status, summary, start.timestamp() + 1800)
