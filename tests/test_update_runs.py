"""Running update playbooks end to end on this machine (local transport) against the toy application."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import wait_until
from toyapp import ToyApp
from update_helpers import runner_for, toy_config

from custode.agent.audit import export, verify
from custode.agent.calendar import ROME
from custode.agent.cli import main
from custode.agent.config_loader import ConfigError
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.paths import audit_path, state_path
from custode.agent.state import State
from custode.agent.updates.runner import RunRefused
from custode.agent.updates.store import NewRun, UpdateStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path):
    with ToyApp(tmp_path, {"1.0": True, "2.0": True, "2.1": False}, current="1.0") as toy:
        toy.start()
        assert toy.version() == "1.0"
        yield toy


def _events(path):
    return [json.loads(line) for line in export(path)]


def test_update_installs_the_new_release_and_proves_it(app, write_config):
    config = write_config(toy_config(app))
    with runner_for(config) as runner:
        result = runner.run("toy", "now", reason="security fix")
        steps = runner.store.steps(result.run_id)
        assert runner.incidents.open_incidents() == []
    assert result.status == "succeeded", result.summary
    assert app.version() == "2.0"
    ran = [(s["phase"], s["name"], s["status"]) for s in steps if s["kind"] != "notify"]
    assert ran == [("steps", "keep the current release pointer", "ok"), ("steps", f"stop {app.name}", "ok"),
                   ("steps", "install 2.0", "ok"), ("steps", f"start {app.name}", "ok"),
                   ("steps", "the port answers", "ok"), ("steps", "collaudo", "ok")]
    install = next(s for s in steps if s["name"] == "install 2.0")
    assert install["exit_code"] == 0 and "installed 2.0" in install["stdout"] and install["host"] == "app1"
    actions = [e["action"] for e in _events(audit_path(_loaded(config)))]
    assert actions[0] == "update.started" and actions[-1] == "update.finished"
    assert actions.count("update.step.started") == actions.count("update.step.finished") >= 6
    assert verify(audit_path(_loaded(config))).ok


def _loaded(path):
    from custode.agent.config_loader import load

    return load(path).model


def test_failing_collaudo_rolls_back_and_opens_an_incident(app, write_config):
    config = write_config(toy_config(app, version="2.1"))
    with runner_for(config) as runner:
        result = runner.run("toy", "now", reason="vendor hotfix")
        steps = runner.store.steps(result.run_id)
        incidents = runner.incidents.open_incidents()
    assert result.status == "rolled_back"
    assert "collaudo" in result.summary and "HTTP 500" in result.summary
    assert app.version() == "1.0", "the old version answers again"
    assert [s["name"] for s in steps if s["phase"] == "rollback"] == [
        f"stop {app.name}", "back to the previous release", f"start {app.name}", "the previous release answers"]
    assert all(s["status"] == "ok" for s in steps if s["phase"] == "rollback")
    assert len(incidents) == 1 and incidents[0].key == "crema/update/toy" and incidents[0].severity == "warning"
    assert "rolled back" in incidents[0].summary


def test_next_successful_run_resolves_the_incident(app, write_config):
    with runner_for(write_config(toy_config(app, version="2.1"))) as runner:
        assert runner.run("toy", "now", reason="try").status == "rolled_back"
    with runner_for(write_config(toy_config(app, version="2.0"))) as runner:
        assert runner.run("toy", "now", reason="retry").status == "succeeded"
        assert runner.incidents.open_incidents() == []


def test_a_step_that_would_pass_the_window_end_is_not_started(app, write_config):
    config = write_config(toy_config(app, duration="12s"))
    with runner_for(config) as runner:
        result = runner.run("toy", "now", reason="short window")
        steps = runner.store.steps(result.run_id)
    assert result.status == "rolled_back"
    assert f"stopped before step 'stop {app.name}'" in result.summary and "window closes" in result.summary
    assert [s["name"] for s in steps if s["phase"] == "steps" and s["kind"] != "notify"] == [
        "keep the current release pointer"]
    assert app.version() == "1.0"


def _clock_at(moment: str):
    base = datetime.fromisoformat(moment).timestamp()
    started = time.time()
    return lambda: base + (time.time() - started)


def test_manual_run_only_inside_the_window(app, write_config):
    config = write_config(toy_config(app, days="[thursday]", start="17:30"))
    with runner_for(config, clock=_clock_at("2026-12-03T16:00:00+01:00")) as runner:
        with pytest.raises(RunRefused, match="outside the window.*next window opens Thursday 2026-12-03 17:30"):
            runner.run("toy", "manual")
        with pytest.raises(RunRefused, match="needs --reason"):
            runner.run("toy", "now")
    with runner_for(config, clock=_clock_at("2026-12-03T17:31:00+01:00")) as runner:
        result = runner.run("toy", "manual")
        assert result.status == "succeeded" and app.version() == "2.0"
        row = runner.store.run(result.run_id)
        assert datetime.fromtimestamp(row["window_end"], ROME).strftime("%H:%M") == "19:30"


def test_no_manual_run_on_a_holiday(app, write_config):
    config = write_config(toy_config(app, days="[friday]", start="15:30"))
    with runner_for(config, clock=_clock_at("2026-12-25T15:40:00+01:00")) as runner:
        with pytest.raises(RunRefused, match=r"skipped \(Natale\)"):
            runner.run("toy", "manual")
    assert app.version() == "1.0"


def test_second_run_of_the_same_window_is_refused_while_one_runs(app, write_config):
    config = write_config(toy_config(app))
    with runner_for(config) as runner:
        now = time.time()
        runner.store.begin(NewRun("toy", "Toy App", "crema", "manual", None, "x", now, now + 60, [], now + 60), now)
        with pytest.raises(RunRefused, match="already being updated"):
            runner.run("toy", "now", reason="second")
    assert app.version() == "1.0"


def test_incidents_on_the_touched_hosts_are_silenced_during_the_run(tmp_path):
    state = State(tmp_path / "s.db")
    incidents = Incidents(state)
    store = UpdateStore(state)
    now = time.time()
    run_id = store.begin(NewRun("toy", "Toy App", "crema", "manual", None, "x", now, now + 600,
                                [("crema", "app1"), ("crema", "127.0.0.1")], now + 900), now)
    down = CheckResult("crema", "services", "app1:toyapp", "critical", "toyapp is not running")
    assert incidents.observe(down, now=now + 1) is None, "a service stopped on purpose opens no incident"
    elsewhere = CheckResult("crema", "services", "app2:toyapp", "critical", "down")
    assert incidents.observe(elsewhere, now=now + 1).kind == "opened", "other hosts are not silenced"
    store.finish(run_id, "succeeded", "ok", now + 2)
    assert incidents.observe(down, now=now + 3).kind == "opened", "the silence ends with the run"
    state.close()


def _with_secret_playbook(app, write_config, monkeypatch, command: str) -> Path:
    """A one-step playbook whose command uses {{ secret.token }} (TOY_TOKEN=s3cret-value)."""
    monkeypatch.setenv("TOY_TOKEN", "s3cret-value")
    folder = Path(app.root) / "playbooks"
    folder.mkdir()
    (folder / "toy.yaml").write_text(f"name: uses a secret\nsecrets:\n  token: {{env: TOY_TOKEN}}\n"
                                     f"steps:\n  - run: \"{command}\"\n")
    return write_config(toy_config(app, playbook="toy.yaml", playbooks=folder))


def test_dry_run_resolves_every_variable_and_touches_nothing(app, write_config, capsys, monkeypatch):
    config = _with_secret_playbook(
        app, write_config, monkeypatch,
        "curl -H 'Authorization: {{ secret.token }}' http://{{ host.address }}:{{ app_port }}/deploy/{{ version }}")
    assert main(["update", "run", "toy", "--now", "--reason", "test", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{app.port}/deploy/2.0" in out, "window vars override the playbook's"
    assert "«secret.token: environment variable TOY_TOKEN»" in out and "s3cret-value" not in out
    assert "Dry run: nothing was touched." in out
    assert not state_path(_loaded(config)).exists() and app.version() == "1.0"


def test_secrets_never_reach_the_state_db_or_the_audit_log(app, write_config, monkeypatch):
    config = _with_secret_playbook(app, write_config, monkeypatch, "echo token={{ secret.token }}; exit 1")
    with runner_for(config) as runner:
        result = runner.run("toy", "now", reason="test")
        steps = runner.store.steps(result.run_id)
    assert result.status == "failed" and "no rollback" in result.summary
    assert [s["stdout"].strip() for s in steps if s["kind"] == "run"] == ["token=«secret»"]
    assert b"s3cret-value" not in audit_path(_loaded(config)).read_bytes()
    assert b"s3cret-value" not in state_path(_loaded(config)).read_bytes()


@pytest.mark.parametrize("playbook, message", [
    ("name: x\nsteps:\n  - run: echo {{ nope }}\n", "bad.yaml:3: steps[0] (run #1): unknown variable {{ nope }}"),
    ("name: x\nsteps:\n  - run: echo\n    check: {tcp: 'a:1'}\n", "exactly one of"),
    ("name: x\nsteps:\n  - name: s\n    run: echo\n    hosts: [other]\n", "steps[0] (s): host 'other'"),
    ("name: x\nsteps:\n  - check: {http: 'http://x', tcp: 'a:1'}\n", "exactly one of http, tcp"),
    ("name: x\nsteps:\n  - service: {name: a, action: reboot}\n",
     "bad.yaml:3: steps[0].service.action: expected one of"),
])
def test_playbook_errors_name_the_file_and_the_step(app, write_config, tmp_path, playbook, message):
    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "bad.yaml").write_text(playbook)
    config = write_config(toy_config(app, playbook="bad.yaml", playbooks=folder))
    with runner_for(config) as runner:
        with pytest.raises(ConfigError) as info:
            runner.run("toy", "now", reason="test")
    assert str(folder / "bad.yaml") in str(info.value) and message in str(info.value)
    assert app.version() == "1.0"


def test_crash_in_the_middle_of_a_run_is_recovered_on_restart(app, write_config, tmp_path):
    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "slow.yaml").write_text("name: slow\nsteps:\n  - run: 'touch {{ app_root }}/started; sleep 60'\n"
                                      "    timeout: 2m\n")
    config = write_config(toy_config(app, playbook="slow.yaml", playbooks=folder))
    proc = subprocess.Popen([sys.executable, "-m", "custode.agent", "update", "run", "toy", "--now",
                             "--reason", "crash", "--config", str(config)], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        assert wait_until(lambda: (Path(app.root) / "started").exists(), 20), "the run did not start"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with runner_for(config) as runner:
        assert runner.store.running() == {"toy"}, "the dead run still holds the lock"
        recovered = runner.recover()
        assert len(recovered) == 1 and runner.store.running() == set()
        run = runner.store.run(recovered[0])
        assert run["status"] == "interrupted" and "crash, kill or reboot" in run["summary"]
        incidents = runner.incidents.open_incidents()
        assert [i.key for i in incidents] == ["crema/update/toy"] and incidents[0].severity == "critical"
        silences = runner.store.state.query("SELECT * FROM silences WHERE ended_at IS NULL")
        assert silences == [], "the crashed run's silence ended too"
    assert main(["update", "history", "--config", str(config)]) == 0


def test_history_lists_runs_and_steps(app, write_config, capsys):
    config = write_config(toy_config(app))
    with runner_for(config) as runner:
        run_id = runner.run("toy", "now", reason="history").run_id
    capsys.readouterr()
    assert main(["update", "history", "--config", str(config)]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert main(["update", "history", "--run", str(run_id), "--json", "--config", str(config)]) == 0
    [record] = json.loads(capsys.readouterr().out)["runs"]
    assert datetime.fromisoformat(record["started_at"]).utcoffset() is not None
    assert record["status"] == "succeeded" and record["trigger"] == "now" and record["reason"] == "history"
    assert len([s for s in record["steps"] if s["kind"] != "notify"]) == 6


def test_metrics_tell_the_last_outcome_and_the_next_window(app, write_config):
    from custode.agent.updates.metrics import update_families

    config = write_config(toy_config(app, version="2.1", days="[friday]", start="16:00"))
    with runner_for(config) as runner:
        runner.run("toy", "now", reason="metrics")
        now = datetime.fromisoformat("2026-12-24T12:00:00+01:00").timestamp()
        families = {f.name: f for f in update_families(runner.config, runner.store, now)}
    status = {s.labels["status"]: s.value for s in families["custode_update_last_run_status"].samples}
    assert status == {"succeeded": 0.0, "rolled_back": 1.0, "failed": 0.0, "interrupted": 0.0}
    assert families["custode_update_last_success_timestamp_seconds"].samples == []
    [upcoming] = families["custode_update_window_next_start_timestamp_seconds"].samples
    assert upcoming.labels == {"window": "toy", "application": "Toy App", "tenant": "crema"}
    assert datetime.fromtimestamp(upcoming.value, ROME).isoformat() == "2027-01-08T16:00:00+01:00", \
        "Christmas and New Year's Day Fridays are skipped"


def test_the_agent_skips_a_holiday_window_and_records_why(app, write_config, caplog):
    from custode.agent.config_loader import load
    from custode.agent.runtime import Agent

    caplog.set_level("INFO", logger="custode.agent.services.updates")
    config = write_config(toy_config(app, days="[friday]", start="16:00"))
    agent = Agent(load(config), listen="127.0.0.1:10191")  # never started: nothing listens
    try:
        agent.service("updates").run_window("toy", now=datetime.fromisoformat("2026-12-25T16:00:05+01:00"))
    finally:
        agent.state.close()
    skipped = [e for e in _events(audit_path(_loaded(config))) if e["action"] == "update.skipped"]
    assert len(skipped) == 1 and skipped[0]["details"]["reason"] == "Natale"
    assert any(r.getMessage() == "update window skipped" and r.reason == "Natale" for r in caplog.records)
    assert app.version() == "1.0"


def test_variables_precedence_playbook_tenant_window_host(app, write_config, capsys, tmp_path):
    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "vars.yaml").write_text("name: vars\nvars: {a: playbook, b: playbook, c: playbook, d: playbook}\n"
                                      "steps:\n  - run: 'echo {{ a }} {{ b }} {{ c }} {{ d }} {{ tenant.name }}'\n")
    text = toy_config(app, playbook="vars.yaml", playbooks=folder)
    text = text.replace("    referents: []", "    referents: []\n    vars: {b: tenant, c: tenant, d: tenant}")
    text = text.replace('vars: {version: "2.0"}', "vars: {c: window, d: window}")
    text = text.replace("vars: {app_root:", "vars: {d: host, app_root:")
    assert main(["update", "run", "toy", "--now", "--reason", "x", "--dry-run", "--config",
                 str(write_config(text))]) == 0
    assert "run: echo playbook tenant window host Comune di Crema" in capsys.readouterr().out


def test_a_dry_run_outside_the_window_shows_the_next_occurrence(app, write_config, capsys, pin_clock):
    # Tuesday 2026-12-08 10:00 Rome; the window is Thursdays at 17:30.
    pin_clock(datetime(2026, 12, 8, 10, 0, tzinfo=ROME))
    config = write_config(toy_config(app, days="[thursday]", start="17:30"))
    assert main(["update", "run", "toy", "--config", str(config)]) == 1  # a real run is refused
    capsys.readouterr()
    assert main(["update", "run", "toy", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Plan for the window of Thursday 2026-12-10 17:30–19:30 CET (+0100):")
    assert "install 2.0" in out and "Dry run: nothing was touched." in out
    assert app.version() == "1.0"


def test_a_dry_run_for_a_named_day_and_the_refusals_that_say_why(app, write_config, capsys, pin_clock):
    pin_clock(datetime(2026, 12, 8, 10, 0, tzinfo=ROME))
    config = write_config(toy_config(app, days="[thursday]", start="17:30"))
    assert main(["update", "run", "toy", "--dry-run", "--date", "2026-12-17", "--config", str(config)]) == 0
    assert "Thursday 2026-12-17 17:30" in capsys.readouterr().out
    assert main(["update", "run", "toy", "--dry-run", "--date", "2026-12-16", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "no occurrence on Wednesday 2026-12-16" in err and "the next one is Thursday 2026-12-17 17:30" in err
    # A Thursday the provider is closed: the occurrence exists but is skipped, and the dry run says so.
    closed = write_config(toy_config(app, days="[thursday]", start="17:30",
                                     extra="calendar:\n  closures: ['2026-12-24']\n"), name="closed.yaml")
    assert main(["update", "run", "toy", "--dry-run", "--date", "2026-12-24", "--config", str(closed)]) == 1
    assert "is skipped" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--date goes with --dry-run"):
        main(["update", "run", "toy", "--date", "2026-12-17", "--config", str(config)])
