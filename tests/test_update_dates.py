"""One-off update windows on dates: agreed case by case (Cremona) or the twice-yearly OS patches.

A window on ``dates:`` is planned, listed, published, scheduled and run like a
weekly one, and a holiday or closure on its date skips it with the reason.
Times are the fixtures' own: the clock is pinned wherever "now" matters.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from toyapp import ToyApp
from update_helpers import runner_for, toy_config

from custode.agent.audit import export
from custode.agent.calendar import ROME
from custode.agent.cli import main
from custode.agent.config_loader import ConfigError, load, load_text
from custode.agent.paths import audit_path
from custode.agent.updates.windows import next_occurrence, occurrence_at, occurrences

CREMONA = """
tenants:
  cremona: {name: Comune di Cremona, calendar: {province: CR}}
agent: {tenant: cremona}
calendar:
  closures: [{from: 2027-03-19, reason: chiusura per inventario}]
updates:
  windows:
    weekly:
      application: Sicr@web (Maggioli)
      days: [thursday]
      start: "17:30"
      playbook: x.yaml
    agreed:
      application: Sicr@web (Maggioli)
      tenant: cremona
      dates: [2026-12-10, 2026-11-13, 2026-12-25, 2027-03-19, 2026-12-10]
      start: "18:00"
      duration: 3h
      playbook: x.yaml
"""


@pytest.fixture
def cremona():
    return load_text(CREMONA, "cremona.yaml").model


def test_dates_are_occurrences_and_holidays_skip_them_with_the_reason(cremona):
    found = [o for o in occurrences(cremona, date(2026, 11, 1), 200) if o.window == "agreed"]
    assert [(o.start.isoformat(), o.skipped, o.reason) for o in found] == [
        ("2026-11-13T18:00:00+01:00", True, "Sant'Omobono"),  # Cremona's patron, from python-holidays
        ("2026-12-10T18:00:00+01:00", False, None),            # written twice, one occurrence
        ("2026-12-25T18:00:00+01:00", True, "Natale"),
        ("2027-03-19T18:00:00+01:00", True, "chiusura per inventario"),
    ]
    assert found[1].end.isoformat() == "2026-12-10T21:00:00+01:00"
    week = occurrences(cremona, date(2026, 12, 7), 7)
    assert [(o.window, f"{o.start:%a %H:%M}") for o in week] == [("weekly", "Thu 17:30"), ("agreed", "Thu 18:00")]


def test_next_and_current_occurrence_of_a_date_window(cremona):
    after = datetime(2026, 11, 1, tzinfo=ROME)
    assert next_occurrence(cremona, "agreed", after).start.isoformat() == "2026-12-10T18:00:00+01:00"
    assert next_occurrence(cremona, "agreed", datetime(2026, 12, 10, 19, 0, tzinfo=ROME)) is None, \
        "the later dates are a holiday and a closure"
    inside = occurrence_at(cremona, "agreed", datetime(2026, 12, 10, 20, 59, tzinfo=ROME))
    assert inside is not None and not inside.skipped
    assert occurrence_at(cremona, "agreed", datetime(2026, 12, 17, 18, 30, tzinfo=ROME)) is None
    christmas = occurrence_at(cremona, "agreed", datetime(2026, 12, 25, 18, 30, tzinfo=ROME))
    assert christmas is not None and christmas.skipped and christmas.reason == "Natale"


def test_windows_list_and_its_json_show_date_windows(write_config, capsys):
    path = write_config(CREMONA)
    assert main(["windows", "list", "--from", "2026-12-07", "--weeks", "3", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Thu 2026-12-10" in out and "18:00-21:00" in out and "agreed" in out
    assert "SKIPPED: Natale" in out
    assert main(["windows", "list", "--from", "2026-11-01", "--weeks", "30", "--format", "json",
                 "--config", str(path)]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out)["windows"] if r["window"] == "agreed"]
    assert [(r["start"], r["skipped"], r["reason"]) for r in rows] == [
        ("2026-11-13T18:00:00+01:00", True, "Sant'Omobono"), ("2026-12-10T18:00:00+01:00", False, None),
        ("2026-12-25T18:00:00+01:00", True, "Natale"), ("2027-03-19T18:00:00+01:00", True, "chiusura per inventario")]
    assert all(r["tenant"] == "cremona" for r in rows)


def test_the_icalendar_file_has_one_event_per_date(write_config, tmp_path):
    import vobject

    out = tmp_path / "cremona.ics"
    assert main(["windows", "ics", "--from", "2026-12-01", "--weeks", "4", "--tenant", "cremona",
                 "--config", str(write_config(CREMONA)), "--output", str(out)]) == 0
    events = [e for e in vobject.readOne(out.read_text(encoding="utf-8")).vevent_list
              if e.uid.value.startswith("agreed-")]
    assert sorted((e.dtstart.value.isoformat(), e.status.value) for e in events) == [
        ("2026-12-10T18:00:00+01:00", "CONFIRMED"), ("2026-12-25T18:00:00+01:00", "CANCELLED")]


@pytest.mark.parametrize("fragment, message", [
    ("days: [thursday]\n      dates: [2026-12-10]", "give days (a weekly window) or dates (one-off windows on "
                                                    "those days), not both"),
    ("start: \"17:30\"", "a window needs days: [thursday] (every week) or dates: [2026-12-10]"),
    ("dates: [20261210]", "20261210 is not a date; write each day as YYYY-MM-DD"),
    ("dates: [2026-12-10T18:00:00]", "2026-12-10T18:00:00 is not a date; write each day as YYYY-MM-DD"),
    ("dates: [10/12/2026]", "'10/12/2026' is not a date; write each day as YYYY-MM-DD"),
    ("dates: []", "dates is empty: list the days the window opens"),
    ("dates: [2026-02-30]", "cannot read '2026-02-30'"),
])
def test_date_window_errors_name_the_place_and_the_fix(fragment, message):
    text = f"""updates:
  windows:
    w1:
      application: X
      playbook: x.yaml
      {fragment}
"""
    if "start" not in fragment:
        text += '      start: "17:30"\n'
    with pytest.raises(ConfigError) as info:
        load_text(text, "farm.yaml")
    assert message in str(info.value), str(info.value)
    assert "farm.yaml:" in str(info.value) and "updates.windows.w1" in str(info.value)


def test_the_agent_schedules_one_job_per_coming_date(write_config, tmp_path):
    from apscheduler.triggers.date import DateTrigger

    from custode.agent.runtime import Agent

    (tmp_path / "noop.yaml").write_text("name: noop\nsteps:\n  - run: 'true'\n")
    text = CREMONA.replace("agent: {tenant: cremona}", f"agent: {{tenant: cremona, data_dir: {tmp_path / 'd'}}}")
    agent = Agent(load(write_config(text.replace("playbook: x.yaml", "playbook: noop.yaml")
                                    + f"  playbooks_dir: {tmp_path}\n")), listen="127.0.0.1:10191")
    try:
        jobs = {job.id: job for job in agent.service("updates").jobs(datetime(2026, 12, 1, 12, 0, tzinfo=ROME))}
    finally:
        agent.state.close()
    dated = {name: job for name, job in jobs.items() if name.startswith("update:agreed@")}
    assert sorted(dated) == ["update:agreed@2026-12-10", "update:agreed@2026-12-25", "update:agreed@2027-03-19"], \
        "13 November has passed; a skipped date still gets its job, which records the skip"
    trigger = dated["update:agreed@2026-12-10"].trigger
    assert isinstance(trigger, DateTrigger) and trigger.run_date.isoformat() == "2026-12-10T18:00:00+01:00"
    assert dated["update:agreed@2026-12-10"].args == ("agreed",) and "update:weekly" in jobs


@pytest.fixture
def app(tmp_path):
    with ToyApp(tmp_path, {"1.0": True, "2.0": True}, current="1.0") as toy:
        toy.start()
        yield toy


def _dated(app, dates: str) -> str:
    return toy_config(app, days="[monday]", start="18:00").replace("days: [monday]", f"dates: {dates}")


def test_the_scheduled_start_on_a_date_runs_the_playbook(app, write_config, pin_clock):
    from custode.agent.runtime import Agent

    pin_clock(datetime(2026, 12, 10, 18, 0, 5, tzinfo=ROME))
    agent = Agent(load(write_config(_dated(app, "[2026-12-10, 2026-12-25]"))), listen="127.0.0.1:10191")
    try:
        agent.service("updates").run_window("toy", now=datetime(2026, 12, 10, 18, 0, 5, tzinfo=ROME))
        agent.service("updates").run_window("toy", now=datetime(2026, 12, 25, 18, 0, 5, tzinfo=ROME))
        from custode.agent.updates.store import UpdateStore

        runs = UpdateStore(agent.state).history("toy")
    finally:
        agent.state.close()
    assert [(r["trigger"], r["status"]) for r in runs] == [("scheduled", "succeeded")]
    assert datetime.fromtimestamp(runs[0]["window_start"], ROME).isoformat() == "2026-12-10T18:00:00+01:00"
    assert app.version() == "2.0"
    skipped = [json.loads(line) for line in export(audit_path(load(write_config(_dated(app, "[2026-12-10]"),
                                                                                name="x.yaml")).model))
               if json.loads(line)["action"] == "update.skipped"]
    assert [(s["details"]["reason"]) for s in skipped] == ["Natale"]


def test_a_manual_run_outside_the_dates_is_refused_naming_the_next_one(app, write_config, pin_clock):
    pin_clock(datetime(2026, 12, 9, 18, 30, tzinfo=ROME))
    config = write_config(_dated(app, "[2026-12-10]"))
    from custode.agent.updates.runner import RunRefused

    with runner_for(config) as runner, pytest.raises(RunRefused, match="the next window opens Thursday 2026-12-10 "
                                                                          "18:00"):
        runner.run("toy", "manual")
    assert main(["update", "run", "toy", "--dry-run", "--date", "2026-12-10", "--config", str(config)]) == 0
    assert app.version() == "1.0"
