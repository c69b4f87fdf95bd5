"""The report builder against the scenario: every figure of the document, the empty tenant, a year, the build time.

The scenario (tests/report_scenario.py) writes a quarter of Vaiano's history
through each feature's own path and returns the figures counted while
writing; these tests build the report from the state DB alone and compare.
The light rules and the fill-date arithmetic are also tested on hand-made
records, so each colour is seen, not only the scenario's.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from report_scenario import CERTIFICATE_ID, NOW, fill_quarter, load_scenario_config, scenario_config

from custode.agent.backups.report import BackupReport, Classification
from custode.agent.backups.store import MailStore, ProcessedMail
from custode.agent.calendar import ROME
from custode.agent.config_loader import load_text
from custode.agent.farm.windows_eos import server_build_from_name
from custode.agent.history.model import FilesystemSeen, Observation
from custode.agent.history.service import record_poll
from custode.agent.mail.message import MailMessage
from custode.agent.reports import data
from custode.agent.reports.data import build_report
from custode.agent.reports.document import (
    BackupDay,
    BackupJobHistory,
    DiskTrend,
    LevelFigures,
    Light,
    Outage,
    Report,
    ServerRecord,
    WindowRecord,
)
from custode.agent.reports.servers import full_by
from custode.agent.state import State
from custode.agent.tickets import sla, store
from custode.agent.updates.announce import announcement_for
from custode.agent.updates.states import RunStatus, RunTrigger
from custode.agent.updates.store import NewRun, UpdateStore


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, State, dict[str, Any]]:
    """One filled state DB for the module: the reports only read it."""
    config = load_scenario_config()
    state = State(tmp_path_factory.mktemp("report") / "state.db")
    expected = fill_quarter(state, config)
    yield config, state, expected
    state.close()


@pytest.fixture(scope="module")
def report(scenario: tuple[Any, State, dict[str, Any]]) -> Report:
    config, state, _ = scenario
    return build_report(config, state, "vaiano", "quarterly", "2026Q4", NOW)


@pytest.fixture
def expected(scenario: tuple[Any, State, dict[str, Any]]) -> dict[str, Any]:
    return scenario[2]


# --- the quarter -------------------------------------------------------------------------------------

def test_the_header_names_the_period_the_comune_and_what_it_bought(report: Report, expected: dict) -> None:
    assert (report.kind, report.period, report.period_start, report.period_end) == \
           ("quarterly", "2026Q4", date(2026, 10, 1), date(2026, 12, 31))
    assert (report.tenant, report.tenant_name, report.provider_name, report.language) == \
           ("vaiano", "Comune di Vaiano Cremasco", "Consorzio.IT", "it")
    assert report.generated_at == NOW and report.generated_at.tzinfo is not None
    assert report.features == ("monitoring", "backup_control", "restore_tests", "updates", "os_patches",
                               "saturday_on_call", "alerts")
    assert report.empty is False


def test_the_summary_lights_and_their_figures(report: Report, expected: dict) -> None:
    lights = {light.area: light for light in report.summary}
    assert [light.area for light in report.summary] == ["backups", "availability", "security", "service_levels",
                                                        "updates", "capacity"]
    assert {area: str(light.light) for area, light in lights.items()} == expected["lights"]
    assert lights["backups"].values == expected["backups"]["light"]
    windows, linux = "vaiano-srv01", "vaiano-lnx01"
    availability = lights["availability"].values
    assert availability["lowest_host"] == windows and availability["outages"] == 2
    assert availability["lowest_percent"] == pytest.approx(expected["servers"][windows]["availability_percent"],
                                                           abs=1e-3)
    assert availability["outage_seconds"] == sum(o["seconds"] for o in expected["servers"]["outages"])
    security = lights["security"].values
    assert security["os_unsupported"] == [windows] and security["antivirus_off"] == []
    assert security["security_updates_pending"] == [windows] and security["antivirus_off_some_day"] == [windows]
    assert linux not in security["signatures_old"]
    levels = lights["service_levels"].values
    assert (levels["opened"], levels["not_met"], levels["late"]) == (10, ["alta"], 1)
    assert lights["updates"].values == {"windows": len(expected["updates"]["windows"]),
                                        **expected["updates"]["counts"]}
    capacity = lights["capacity"].values
    assert (capacity["first_full_by"], capacity["first_full"]) == (date(2027, 4, 19), f"{windows} C:")
    assert capacity["highest_used_percent"] == pytest.approx(78.2)


def test_every_backup_night_of_every_job(report: Report, expected: dict) -> None:
    backups = expected["backups"]
    assert [job.job for job in report.backups.jobs] == ["Backup Server Comune", "nas_dati", "sql_tributi"]
    for job in report.backups.jobs:
        assert {d.day: d.outcome for d in job.days} == backups["grid"][job.job], job.job
        assert job.software == backups["software"][job.job] and job.schedule == backups["schedules"][job.job]
        assert [d.day for d in job.days] == sorted(d.day for d in job.days)
    by_night = {(job.job, d.day): d for job in report.backups.jobs for d in job.days}
    for night, moment in backups["reported_at"].items():
        assert by_night[night].reported_at == moment, night
    for night in backups["failed_with_error"]:
        assert by_night[night].outcome == "failure" and "not reachable" in (by_night[night].error or ""), night
    assert all(d.error is None for d in by_night.values() if d.outcome in ("success", "missing"))
    assert all(d.reported_at is not None for d in by_night.values() if d.outcome != "missing")
    missing = [d for d in by_night.values() if d.outcome == "missing"]
    assert [(d.day, d.reported_at, d.error) for d in missing] == [(date(2026, 11, 17), None, None)]
    veeam = report.backups.jobs[0]
    assert (veeam.count("success"), veeam.count("missing"), len(veeam.days)) == (91, 1, 92)
    assert len(report.backups.jobs[2].days) == 66, "sql_tributi runs on weekdays only: 66 in 2026Q4"


def test_the_restore_test_certificate_and_the_paths(report: Report, expected: dict) -> None:
    [test] = report.backups.restore_tests
    [wanted] = expected["restore"]["tests"]
    assert test.certificate_id == CERTIFICATE_ID
    for name, value in wanted.items():
        assert getattr(test, name) == value, name
    assert [(p.set_name, p.path, p.protected, p.reason, p.size_bytes) for p in report.backups.paths] == \
           expected["restore"]["paths"]


def test_every_server_figure(report: Report, expected: dict) -> None:
    servers = {s.host: s for s in report.servers.servers}
    assert list(servers) == ["vaiano-lnx01", "vaiano-srv01"]
    for host, record in servers.items():
        want = expected["servers"][host]
        assert (record.source, record.os, record.days_with_data) == (want["source"], want["os"],
                                                                     want["days_with_data"]), host
        assert record.availability_percent == pytest.approx(want["availability_percent"], abs=1e-3), host
        assert record.cpu_avg_percent == pytest.approx(want["cpu_avg"], abs=0.01), host
        assert record.cpu_max_percent == pytest.approx(want["cpu_max"]), host
        assert record.memory_avg_percent == pytest.approx(want["memory_avg"], abs=0.01), host
        assert record.memory_max_percent == pytest.approx(want["memory_max"]), host
        assert len(record.daily_cpu) == len(record.daily_memory) == want["days_with_data"], host
        assert max(peak for _, _, peak in record.daily_memory) == pytest.approx(want["memory_max"]), host
        for name in ("antivirus_active", "antivirus_days_inactive", "updates_pending", "updates_security_pending",
                     "last_update_installed", "os_supported", "os_end_of_support", "event_errors",
                     "hardware_problems", "unhealthy_disk_days"):
            assert getattr(record, name) == want[name], (host, name)
        assert record.antivirus_signature_age_days == want["signature_age_days"], host
    windows = servers["vaiano-srv01"]
    assert windows.antivirus == "active" and servers["vaiano-lnx01"].antivirus is None
    busy_day = windows.daily_cpu[0]
    assert busy_day[0] == date(2026, 10, 1) and busy_day[2] == pytest.approx(90.0)
    assert busy_day[1] == pytest.approx((23 * 25 + 90) / 24, abs=0.01)


def test_disk_trends_and_the_fill_date(report: Report, expected: dict) -> None:
    for server in report.servers.servers:
        disks = {d.mount: d for d in server.disks}
        want = expected["servers"][server.host]["disks"]
        assert sorted(disks) == sorted(want), server.host
        for mount, disk in disks.items():
            figures = want[mount]
            assert disk.size_bytes == figures["size_bytes"], mount
            assert (disk.used_percent_start, disk.used_percent_end, disk.used_percent_max) == pytest.approx(
                (figures["start"], figures["end"], figures["max"])), mount
            assert disk.full_by == figures["full_by"], mount
            assert len(disk.daily_used_percent) == 92, mount
    c_drive = next(d for s in report.servers.servers for d in s.disks if d.mount == "C:")
    assert [(day, pytest.approx(value)) for day, value in c_drive.daily_used_percent] == \
           expected["servers"]["vaiano-srv01"]["disks"]["C:"]["daily"]
    assert c_drive.full_by == date(2027, 4, 19), "60 % + 0.2 % a day from 1 October: full on the 200th day"


def test_outages_from_the_reachability_incidents(report: Report, expected: dict) -> None:
    assert [(o.host, o.start, o.end, o.seconds) for o in report.servers.outages] == \
           [(o["host"], o["start"], o["end"], o["seconds"]) for o in expected["servers"]["outages"]]
    assert report.servers.outages[1].end is None, "still down at midnight of 31 December"
    assert all("could not be polled" in o.summary for o in report.servers.outages)


def test_every_update_window_occurrence(report: Report, expected: dict) -> None:
    found = [(w.window, w.application, w.start, w.outcome, w.reason, w.announced_at, w.trigger)
             for w in report.updates.windows]
    assert found == [(w["window"], w["application"], w["start"], w["outcome"], w["reason"], w["announced_at"],
                      w["trigger"]) for w in expected["updates"]["windows"]]
    assert all((w.run_id is None) == (w.outcome in ("skipped", "not_run")) for w in report.updates.windows)
    skipped = {(w.window, w.start.date()): w.reason for w in report.updates.windows if w.outcome == "skipped"}
    assert skipped == {("os-patch", date(2026, 12, 8)): "Immacolata Concezione",
                       ("halley", date(2026, 12, 25)): "Natale"}
    outcomes = {w.start.date(): w.outcome for w in report.updates.windows if w.window == "halley"}
    assert (outcomes[date(2026, 11, 13)], outcomes[date(2026, 11, 20)], outcomes[date(2026, 12, 11)]) == \
           ("failed", "rolled_back", "not_run")
    urgent = [w for w in report.updates.windows if w.trigger == "now"]
    assert len(urgent) == 1 and urgent[0].run_id is not None and urgent[0].announced_at is None
    unannounced = [w for w in report.updates.windows if w.outcome == "rolled_back"]
    assert unannounced[0].announced_at is None, "its notice was refused until the window opened"


def test_announcements_read_in_bulk_answer_as_announcement_for(scenario, report: Report) -> None:
    _, state, _ = scenario
    for window in report.updates.windows:
        single = announcement_for(state, window.window, window.start.timestamp(), "vaiano")
        assert window.announced_at == (None if single is None else datetime.fromtimestamp(single, ROME)), window


def test_tickets_from_the_sla_report(report: Report, expected: dict) -> None:
    tickets = expected["tickets"]
    assert report.tickets.contract == tickets["contract"]
    levels = {level.level: level for level in report.tickets.levels}
    assert list(levels) == ["alta", "media", "bassa"]
    for key, want in tickets["levels"].items():
        level = levels[key]
        for name, value in want.items():
            assert getattr(level, name) == value, (key, name)
        assert (level.resolved_within, level.resolved_late, level.penalty_euros_min,
                level.penalty_euros_max) == (0, 0, 0.0, 0.0), "Vaiano's levels have no resolve target, no penalty"
    assert levels["alta"].label == "Alta (bloccante)"
    assert [(t.ref, t.level, t.subject, t.opened_at, t.taken_at, t.resolved_at, t.within_target)
            for t in report.tickets.tickets] == \
           [(t["ref"], t["level"], t["subject"], t["opened_at"], t["taken_at"], t["resolved_at"], t["within_target"])
            for t in tickets["tickets"]]


def test_the_json_form_is_plain_data(report: Report) -> None:
    document = report.as_json()
    text = json.dumps(document)
    assert json.loads(text)["summary"][0] == {"area": "backups", "light": "red",
                                               "values": report.summary[0].values}
    assert document["servers"]["servers"][1]["disks"][0]["full_by"] == "2027-04-19"


# --- other tenants, profiles, periods -----------------------------------------------------------

def test_a_tenant_with_nothing_recorded_gets_an_empty_report(scenario) -> None:
    config, state, _ = scenario
    for tenant in ("vuoto", "nessuno"):
        report = build_report(config, state, tenant, "quarterly", "2026Q4", NOW)
        assert report.empty is True, tenant
        assert {light.light for light in report.summary} == {Light.NONE}, tenant
        assert report.backups.jobs == () and report.backups.restore_tests == () and report.backups.paths == ()
        assert report.servers.servers == () and report.servers.outages == () and report.updates.windows == ()
        assert report.tickets.tickets == () and all(level.opened == 0 for level in report.tickets.levels)
        json.dumps(report.as_json())
    assert build_report(config, state, "vuoto", "quarterly", "2026Q4", NOW).tenant_name == "Comune senza dati"


def test_a_configured_comune_with_an_empty_state_db_is_empty_but_shows_what_never_came(tmp_path) -> None:
    config = load_scenario_config()
    state = State(tmp_path / "state.db")
    report = build_report(config, state, "vaiano", "quarterly", "2026Q4", NOW)
    assert report.empty is True
    assert all(d.outcome == "missing" for job in report.backups.jobs for d in job.days)
    assert sum(len(job.days) for job in report.backups.jobs) == 92 + 92 + 66
    assert {w.outcome for w in report.updates.windows} == {"not_run", "skipped"}
    assert report.summary[0].light is Light.RED and report.summary[4].light is Light.YELLOW
    state.close()


def test_a_service_the_comune_did_not_buy_leaves_its_section_empty(scenario) -> None:
    _, state, _ = scenario
    config = load_text(scenario_config().replace("    profile: ENTERPRISE\n", "    profile: MINIMAL\n")).model
    report = build_report(config, state, "vaiano", "quarterly", "2026Q4", NOW)
    assert report.features == ("monitoring",)
    assert report.backups.jobs == () and report.backups.restore_tests == () and report.updates.windows == ()
    assert len(report.servers.servers) == 2 and report.tickets.levels
    lights = {light.area: light.light for light in report.summary}
    assert (lights["backups"], lights["updates"]) == (Light.NONE, Light.NONE)
    assert lights["availability"] is Light.YELLOW
    assert report.empty is False


def test_the_year_report(scenario, expected: dict) -> None:
    config, state, _ = scenario
    report = build_report(config, state, "vaiano", "yearly", "2026", NOW)
    assert (report.kind, report.period, report.period_start, report.period_end) == \
           ("yearly", "2026", date(2026, 1, 1), date(2026, 12, 31))
    veeam, nas, sql = report.backups.jobs
    assert len(veeam.days) == len(nas.days) == 365
    assert veeam.count("missing") == 365 - 92 - 1 + 1, "nothing reported before October but on 30 September"
    weekdays = sum(1 for i in range(365) if (date(2026, 1, 1) + timedelta(days=i)).weekday() < 5)
    assert len(sql.days) == weekdays and sql.count("failure") == 1
    assert {d.day: d.outcome for d in veeam.days if d.day >= date(2026, 10, 1)} == \
           expected["backups"]["grid"]["Backup Server Comune"]
    assert [t.certificate_id for t in report.backups.restore_tests][1] == CERTIFICATE_ID
    assert report.backups.restore_tests[0].passed is False, "the September test is in the year"
    quarter = build_report(config, state, "vaiano", "quarterly", "2026Q4", NOW)
    assert [s.availability_percent for s in report.servers.servers] == \
           [s.availability_percent for s in quarter.servers.servers], "only the quarter has daily rows"
    assert report.servers.outages == quarter.servers.outages
    levels = {level.level: level for level in report.tickets.levels}
    assert (levels["alta"].opened, levels["alta"].take_charge_late) == (6, 2), "with the late one of September"
    assert levels["media"].opened == 4, "the January ticket is next year's"
    halley = [w for w in report.updates.windows if w.window == "halley" and w.trigger != "now"]
    fridays = sum(1 for i in range(365) if (date(2026, 1, 1) + timedelta(days=i)).weekday() == 4)
    assert len(halley) == fridays
    assert {w.outcome for w in halley if w.start.month < 10} <= {"not_run", "skipped"}
    assert report.summary[0].light is Light.RED and report.summary[0].values["bad_percent"] > 5


def test_a_period_still_running_is_judged_up_to_now(scenario) -> None:
    config, state, _ = scenario
    now = datetime(2026, 11, 20, 12, 0, tzinfo=ROME)
    report = build_report(config, state, "vaiano", "quarterly", "2026Q4", now)
    days = [d.day for job in report.backups.jobs for d in job.days]
    assert max(days) == date(2026, 11, 20), "the 01:30 job has run today; the 22:00 and 23:00 ones not yet"
    assert all(w.start <= now for w in report.updates.windows)
    assert report.updates.windows[-1].start.date() == date(2026, 11, 13)
    assert max(s.days_with_data for s in report.servers.servers) == 51
    assert [t.finished_at.date() for t in report.backups.restore_tests] == [date(2026, 11, 15)]
    assert report.servers.outages[0].end is not None and len(report.servers.outages) == 1


def test_a_period_of_the_wrong_kind_is_refused(scenario) -> None:
    config, state, _ = scenario
    with pytest.raises(ValueError, match="quarterly report is for a quarter"):
        build_report(config, state, "vaiano", "quarterly", "2026", NOW)
    with pytest.raises(ValueError, match="not a period"):
        build_report(config, state, "vaiano", "yearly", "last year", NOW)


# --- the rules on hand-made records -------------------------------------------------------------

def _job(outcomes: dict[date, str]) -> BackupJobHistory:
    return BackupJobHistory("job", None, "0 22 * * *", tuple(BackupDay(d, o) for d, o in outcomes.items()))  # type: ignore[arg-type]


def test_backup_light_rules() -> None:
    last = date(2026, 12, 31)
    nights = [last - timedelta(days=i) for i in range(100)]
    good = dict.fromkeys(nights, "success")
    assert data.backups_light((_job(good),), last).light is Light.GREEN
    assert data.backups_light((_job({**good, nights[50]: "warning"}),), last).light is Light.YELLOW
    assert data.backups_light((_job({**good, nights[50]: "failure"}),), last).light is Light.YELLOW
    assert data.backups_light((_job({**good, nights[6]: "missing"}),), last).light is Light.RED, "in the last 7 days"
    assert data.backups_light((_job({**good, nights[7]: "missing"}),), last).light is Light.YELLOW
    old_failures = {**good, **dict.fromkeys(nights[40:46], "failure")}
    assert data.backups_light((_job(old_failures),), last).values["bad_percent"] == 6.0
    assert data.backups_light((_job(old_failures),), last).light is Light.RED, "more than 5 % of the nights"
    assert data.backups_light((), last).light is Light.NONE
    assert data.backups_light((_job(good),), last, bought=False).light is Light.NONE


def _server(**fields: Any) -> ServerRecord:
    base = ServerRecord(host="h", os=None, source="farm", availability_percent=100.0, days_with_data=1,
                        cpu_avg_percent=None, cpu_max_percent=None, memory_avg_percent=None, memory_max_percent=None)
    return replace(base, **fields)


def test_availability_security_and_capacity_light_rules() -> None:
    outage = Outage("h", NOW, None, 60.0, "down")
    assert data.availability_light((_server(),), ()).light is Light.GREEN
    assert data.availability_light((_server(),), (outage,)).light is Light.YELLOW
    assert data.availability_light((_server(availability_percent=99.0),), ()).light is Light.YELLOW
    assert data.availability_light((_server(availability_percent=97.9),), ()).light is Light.RED
    assert data.availability_light((), ()).light is Light.NONE
    ok = dict(antivirus_active=True, os_supported=True, updates_security_pending=0, antivirus_signature_age_days=1)
    assert data.security_light((_server(**ok),), 7).light is Light.GREEN
    assert data.security_light((_server(**{**ok, "antivirus_signature_age_days": 8}),), 7).light is Light.YELLOW
    assert data.security_light((_server(**{**ok, "updates_security_pending": 1}),), 7).light is Light.YELLOW
    assert data.security_light((_server(**{**ok, "antivirus_active": False}),), 7).light is Light.RED
    assert data.security_light((_server(),), 7).light is Light.NONE, "nothing reported"
    last = date(2026, 12, 31)

    def disk(end: float, fill: date | None) -> ServerRecord:
        return _server(disks=(DiskTrend("/", 1, 10.0, end, end, fill),))

    assert data.capacity_light((disk(50, None),), last, 90, 95).light is Light.GREEN
    assert data.capacity_light((disk(91, None),), last, 90, 95).light is Light.YELLOW
    assert data.capacity_light((disk(96, None),), last, 90, 95).light is Light.RED
    assert data.capacity_light((disk(50, last + timedelta(days=30)),), last, 90, 95).light is Light.RED
    assert data.capacity_light((disk(50, last + timedelta(days=180)),), last, 90, 95).light is Light.YELLOW
    assert data.capacity_light((disk(50, last + timedelta(days=181)),), last, 90, 95).light is Light.GREEN


def test_service_level_and_update_light_rules() -> None:
    def level(met: bool | None, late: int = 0) -> LevelFigures:
        return LevelFigures("l", "L", 10, 10 - late, late, 0, 0, 0, 90.0, met, 0.0, 0.0)

    assert data.service_levels_light((level(True),)).light is Light.GREEN
    assert data.service_levels_light((level(True, late=1),)).light is Light.YELLOW
    assert data.service_levels_light((level(True), level(False, late=3))).light is Light.RED
    assert data.service_levels_light((level(None),)).light is Light.NONE

    def window(outcome: str) -> WindowRecord:
        return WindowRecord("w", "App", NOW, outcome)  # type: ignore[arg-type]

    assert data.updates_light((window("succeeded"), window("skipped"))).light is Light.GREEN
    assert data.updates_light((window("succeeded"), window("not_run"))).light is Light.YELLOW
    assert data.updates_light((window("rolled_back"),)).light is Light.YELLOW
    assert data.updates_light((window("interrupted"),)).light is Light.RED
    assert data.updates_light(()).light is Light.NONE


def test_the_fill_date_by_least_squares() -> None:
    first = date(2026, 10, 1)

    def series(values: list[float]) -> list[tuple[date, float]]:
        return [(first + timedelta(days=i), v) for i, v in enumerate(values)]

    assert full_by(series([50.0, 51.0, 52.0, 53.0])) == first + timedelta(days=50)
    assert full_by(series([50.0, 49.0, 48.0])) is None, "falling"
    assert full_by(series([50.0, 50.0])) is None, "flat"
    assert full_by(series([50.0])) is None, "one day says nothing"
    assert full_by(series([10.0, 10.001, 10.002])) is None, "full in more than ten years"
    assert full_by(series([98.0, 99.0, 99.9])) == first + timedelta(days=3), "the line's 2.09th day: the 3rd"
    assert full_by(series([80.0] + [100.0] * 5)) == first + timedelta(days=5), "past 100 % already: the last day"
    assert full_by(series([60.0, 70.0, 61.0, 71.0])) == first + timedelta(days=16), "noisy: 1.5 + 34.5 / 2.4"


def test_windows_server_releases_are_read_from_the_name() -> None:
    assert server_build_from_name("Microsoft Windows Server 2012 R2 Standard") == 9600
    assert server_build_from_name("Microsoft Windows Server 2012 Datacenter") == 9200
    assert server_build_from_name("Microsoft Windows Server 2022 Standard") == 20348
    assert server_build_from_name("Debian GNU/Linux 12 (bookworm)") is None


# --- the build time ------------------------------------------------------------------------------

BIG = """
agent: {tenant: provider}
tenants:
  provider: {name: Consorzio.IT}
  grande:
    name: Comune Grande
    tickets: {backend: zd}
    service_levels:
      threshold: 90
      levels: {alta: {priority: high, take_charge: 8 working hours}, media: {priority: medium,
               take_charge: 12 working hours, resolve: 5 working days}}
hosts:
HOSTS
backups:
  expected:
    grande:
JOBS
updates:
  windows:
    halley: {application: Halley, tenant: grande, days: [friday], start: "16:00", hosts: [srv00],
             playbook: windows-vendor-update.yaml}
tickets:
  backends:
    zd: {type: zendesk, url: "https://helpdesk.example.it", email: custode@example.it, token: {env: T_ZD}}
"""


def _big_config() -> Any:
    hosts = "\n".join(f"  srv{i:02d}: {{address: 10.0.0.{i + 1}, transport: winrm, winrm: {{user: c}}, "
                      "tenant: grande}" for i in range(50))
    jobs = "\n".join(f"      - {{name: job{i}, software: Veeam, schedule: \"0 22 * * *\"}}" for i in range(10))
    return load_text(BIG.replace("HOSTS", hosts).replace("JOBS", jobs)).model


def _fill_big_year(state: State, config: Any, year: int) -> int:
    """50 servers × every day of ``year`` (one poll a day), 10 nightly jobs, weekly runs, 300 tickets."""
    first = date(year, 1, 1)
    days = [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]
    with state.transaction() as db:
        for i in range(50):
            for n, day in enumerate(days):
                moment = datetime.combine(day, datetime.min.time(), ROME).timestamp() + 12 * 3600
                free = 60.0 - 0.05 * n
                record_poll(db, f"srv{i:02d}", "grande", Observation(
                    at=moment, os="Microsoft Windows Server 2019 Standard", cpu_percent=20.0 + i % 7,
                    memory_used_percent=60.0, memory_total_bytes=16e9, antivirus_active=True,
                    signature_age_days=0.5, updates_pending=1, security_pending=0, last_update_installed=moment,
                    events_error=1, filesystems=(FilesystemSeen("C:", free * 1e9, 100e9),
                                                 FilesystemSeen("D:", 300e9, 500e9))))
    mails = []
    for n, day in enumerate(days):
        finished = datetime.combine(day, datetime.min.time(), ROME) + timedelta(hours=22, minutes=40)
        for job in range(10):
            status = "failure" if (n + job) % 53 == 0 else "success"
            message = MailMessage(subject=f"[{status}] job{job}", sender="veeam@grande.example.it", date=finished,
                                  message_id=f"<{n}.{job}@big>", content_hash=f"{n}-{job}")
            mails.append(ProcessedMail("backup", "INBOX", None, None, message, finished.timestamp(),
                                       Classification("report", BackupReport("Veeam Backup & Replication",
                                                                             f"job{job}", status))))
    MailStore(state).record("backup", mails, None, NOW.timestamp())
    runs = UpdateStore(state)
    for day in (d for d in days if d.weekday() == 4):
        start = datetime.combine(day, datetime.min.time(), ROME) + timedelta(hours=16)
        run_id = runs.begin(NewRun("halley", "Halley", "grande", RunTrigger.SCHEDULED, None, "p.yaml",
                                   start.timestamp(), start.timestamp() + 7200, [], start.timestamp() + 7200),
                            start.timestamp())
        runs.finish(run_id, RunStatus.SUCCEEDED, "ok", start.timestamp() + 3600)
    with state.transaction() as db:
        for n in range(300):
            opened = datetime.combine(days[n % len(days)], datetime.min.time(), ROME) + timedelta(hours=10)
            level = "alta" if n % 3 else "media"
            due = sla.due(config, "grande", level, "take_charge", opened)
            ticket_id = store.insert_ticket(db, key=f"grande/c/{n}", tenant="grande", backend="zd", check="c",
                                            incident_id=None, priority="high", subject=f"t{n}",
                                            opened_at=opened.timestamp(), due_at=due.timestamp() if due else None,
                                            resolve_due_at=None, level=level)
            store.update_ticket(db, ticket_id, ref=str(n), taken_at=opened.timestamp() + 600)
    return len(days)


def test_a_year_of_50_servers_builds_in_well_under_ten_seconds(tmp_path) -> None:
    config = _big_config()
    state = State(tmp_path / "state.db")
    days = _fill_big_year(state, config, 2028)
    assert days == 366
    started = time.perf_counter()
    report = build_report(config, state, "grande", "yearly", "2028", datetime(2029, 1, 12, 7, 0, tzinfo=ROME))
    seconds = time.perf_counter() - started
    print(f"\nyearly report of 50 servers × {days} days, 10 jobs, 300 tickets: built in {seconds:.2f} s")
    assert len(report.servers.servers) == 50 and all(s.days_with_data == 366 for s in report.servers.servers)
    assert all(len(job.days) == 366 for job in report.backups.jobs) and len(report.backups.jobs) == 10
    assert len(report.tickets.tickets) == 300
    assert seconds < 10.0
    state.close()
