"""Expected jobs: late, missing, ok, failed across schedules and DST, and their incidents."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import ManualClock
from mailfactory import SCRIPT_RULE, script_report

from custode.agent.backups.config import BackupsSection
from custode.agent.backups.jobs import ROME, previous_run
from custode.agent.backups.service import BackupMonitor
from custode.agent.incidents import Incidents
from custode.agent.mail.sources import Batch, RawMail
from custode.agent.state import State


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ROME).timestamp()


class ListSource:
    """A mail source fed by the test (the IMAP and Maildir sources have their own tests)."""

    name = "test"

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def batches(self, known_keys, cursor):
        mails, self.pending = self.pending, []
        yield Batch([RawMail("INBOX", raw) for raw in mails])

    def close(self) -> None:
        pass


def monitor(tmp_path, expected, clock, **section) -> tuple[BackupMonitor, ListSource, Incidents, list]:
    config = BackupsSection.model_validate({"rules": [SCRIPT_RULE], "expected": {"crema": expected}, **section})
    state = State(tmp_path / "state.db")
    incidents = Incidents(state, clock=clock)
    published: list = []
    source = ListSource()
    mon = BackupMonitor(config, state, incidents, publish=published.append, clock=clock, sources=[source])
    return mon, source, incidents, published



NIGHTLY = [{"name": "nightly", "software": "NAS script", "schedule": "0 22 * * *", "grace": "6h"}]


def state_of(mon: BackupMonitor, job: str = "nightly") -> str:
    return next(j.state for j in mon.evaluate().jobs if j.job.name == job)


def test_late_inside_the_grace_missing_after_it(tmp_path) -> None:
    clock = ManualClock(at("2026-11-20 03:00"))
    mon, _, incidents, _ = monitor(tmp_path, NIGHTLY, clock)
    assert state_of(mon) == "late"
    assert incidents.open_incidents() == []
    clock.now = at("2026-11-20 04:00")
    assert state_of(mon) == "late"
    clock.now = at("2026-11-20 04:01")
    assert state_of(mon) == "missing"
    [incident] = incidents.open_incidents()
    assert incident.key == "crema/backup/nightly" and incident.severity == "critical"
    assert "no report" in incident.summary


def test_a_success_at_23_10_makes_it_ok_and_resolves_missing(tmp_path) -> None:
    clock = ManualClock(at("2026-11-20 04:01"))
    mon, source, incidents, _ = monitor(tmp_path, NIGHTLY, clock)
    mon.poll()
    assert len(incidents.open_incidents()) == 1
    clock.now = at("2026-11-20 23:15")
    source.pending.append(script_report("nightly", "success", datetime(2026, 11, 20, 23, 10, tzinfo=ROME)))
    mon.poll()
    assert state_of(mon) == "ok"
    assert incidents.open_incidents() == []


def test_a_failure_report_is_failed_until_the_next_success(tmp_path) -> None:
    clock = ManualClock(at("2026-11-20 23:30"))
    mon, source, incidents, published = monitor(tmp_path, NIGHTLY, clock)
    source.pending.append(script_report("nightly", "failed: disk full", datetime(2026, 11, 20, 23, 5, tzinfo=ROME)))
    mon.poll()
    assert state_of(mon) == "failed"
    [incident] = incidents.open_incidents()
    assert "failed" in incident.summary
    # the next night: late must not resolve last night's failure
    clock.now = at("2026-11-21 22:30")
    mon.poll()
    assert state_of(mon) == "late"
    assert len(incidents.open_incidents()) == 1
    source.pending.append(script_report("nightly", "success", datetime(2026, 11, 21, 22, 40, tzinfo=ROME)))
    clock.now = at("2026-11-21 22:45")
    mon.poll()
    assert incidents.open_incidents() == []
    families = {f.name: f for f in published[-1]}
    states = {s.labels["state"]: s.value for s in families["custode_backup_state"].samples}
    assert states == {"ok": 1.0, "warning": 0.0, "failed": 0.0, "late": 0.0, "missing": 0.0}
    [success] = families["custode_backup_last_success_timestamp_seconds"].samples
    assert success.value == at("2026-11-21 22:40")
    counts = {s.labels["status"]: s.value for s in families["custode_backup_reports"].samples}
    assert counts == {"success": 1.0, "warning": 0.0, "failure": 1.0}


def test_priority_none_for_missing_opens_no_incident(tmp_path) -> None:
    jobs = [dict(NIGHTLY[0], priority={"missing": "none"})]
    clock = ManualClock(at("2026-11-20 05:00"))
    mon, _, incidents, _ = monitor(tmp_path, jobs, clock)
    assert state_of(mon) == "missing"
    assert incidents.open_incidents() == []


def test_weekday_schedule_skips_the_weekend(tmp_path) -> None:
    jobs = [{"name": "nightly", "software": "NAS script", "schedule": "0 22 * * 1-5", "grace": "6h"}]
    # Sunday 2026-11-22 12:00: the last due run was Friday 22:00, reported.
    clock = ManualClock(at("2026-11-22 12:00"))
    mon, source, _, _ = monitor(tmp_path, jobs, clock)
    source.pending.append(script_report("nightly", "success", datetime(2026, 11, 20, 23, 0, tzinfo=ROME)))
    mon.poll()
    assert state_of(mon) == "ok"


@pytest.mark.parametrize("day_before,day_after", [("2026-03-28", "2026-03-29"), ("2026-10-24", "2026-10-25")])
def test_dst_weekends_keep_22_00_local(tmp_path, day_before: str, day_after: str) -> None:
    # The night of the change: due Saturday 22:00 local; grace counts real hours.
    due = at(f"{day_before} 22:00")
    assert previous_run("0 22 * * *", due + 3600) == due
    clock = ManualClock(due + 6 * 3600 - 60)
    mon, _, _, _ = monitor(tmp_path, NIGHTLY, clock)
    assert state_of(mon) == "late"
    clock.now = due + 6 * 3600 + 60
    assert state_of(mon) == "missing"
    # Sunday 22:00 local is due at a different UTC hour than Saturday's, but still 22:00 in Rome.
    sunday_due = previous_run("0 22 * * *", at(f"{day_after} 23:00"))
    assert datetime.fromtimestamp(sunday_due, ROME).hour == 22
    assert sunday_due - due in (23 * 3600, 25 * 3600)


def test_reports_before_the_run_belong_to_the_previous_one(tmp_path) -> None:
    clock = ManualClock(at("2026-11-21 05:00"))
    mon, source, _, _ = monitor(tmp_path, NIGHTLY, clock)
    # Yesterday's report (23:00 on the 19th) does not cover the run due on the 20th at 22:00.
    source.pending.append(script_report("nightly", "success", datetime(2026, 11, 19, 23, 0, tzinfo=ROME)))
    mon.poll()
    assert state_of(mon) == "missing"


def test_unexpected_reports_are_listed_and_counted(tmp_path) -> None:
    clock = ManualClock(at("2026-11-21 09:00"))
    mon, source, _, published = monitor(tmp_path, NIGHTLY, clock)
    source.pending.append(script_report("nightly", "success", datetime(2026, 11, 20, 23, 0, tzinfo=ROME)))
    source.pending.append(script_report("newjob", "success", datetime(2026, 11, 20, 23, 30, tzinfo=ROME)))
    mon.poll()
    evaluation = mon.evaluate()
    assert [r.job for r in evaluation.unexpected] == ["newjob"]
    [gauge] = [f for f in published[-1] if f.name == "custode_backup_unexpected_jobs"]
    assert sum(s.value for s in gauge.samples) == 1


def test_a_job_added_later_sees_reports_that_arrived_before(tmp_path) -> None:
    clock = ManualClock(at("2026-11-21 09:00"))
    mon, source, _, _ = monitor(tmp_path, [], clock)
    source.pending.append(script_report("nightly", "success", datetime(2026, 11, 20, 23, 0, tzinfo=ROME)))
    mon.poll()
    assert len(mon.evaluate().unexpected) == 1
    later = BackupMonitor(BackupsSection.model_validate({"rules": [SCRIPT_RULE], "expected": {"crema": NIGHTLY}}),
                          mon.store.state, clock=clock, sources=[])
    [job] = later.evaluate().jobs
    assert job.state == "ok" and later.evaluate().unexpected == []


def test_since_survives_evaluations(tmp_path) -> None:
    clock = ManualClock(at("2026-11-20 04:30"))
    mon, _, _, _ = monitor(tmp_path, NIGHTLY, clock)
    first = mon.evaluate().jobs[0]
    clock.now += timedelta(hours=3).total_seconds()
    again = mon.evaluate().jobs[0]
    assert first.state == again.state == "missing"
    assert again.since == first.since == at("2026-11-20 04:00")


def test_one_job_one_series_before_and_after_its_first_report(tmp_path) -> None:
    """The software label is the config's: the report's product name must not fork the job's series."""
    clock = ManualClock(at("2026-11-20 21:00"))
    mon, source, _, published = monitor(tmp_path, [{**NIGHTLY[0], "software": "NAS"}], clock)
    mon.poll()

    def label_sets() -> set[tuple]:
        return {(s.labels["tenant"], s.labels["backup_job"], s.labels["software"])
                for family in published[-1] if family.name == "custode_backup_state" for s in family.samples}

    before = label_sets()
    clock.now = at("2026-11-20 23:15")
    source.pending.append(script_report("nightly", "success", datetime(2026, 11, 20, 23, 10, tzinfo=ROME)))
    mon.poll()
    assert state_of(mon) == "ok"
    assert label_sets() == before == {("crema", "nightly", "NAS")}
    assert next(j for j in mon.evaluate().jobs).software == "NAS script"  # people still read the product's name
