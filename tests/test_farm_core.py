"""Farm mode without hosts: config, checks and incidents, metrics, daily history, report, status."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest
from farm_helpers import GIB, down, linux_snapshot, linux_target, up, windows_snapshot

from custode.agent.calendar import ROME
from custode.agent.config_loader import ConfigError, load, load_text
from custode.agent.farm import history
from custode.agent.farm.report import render, summarise
from custode.agent.farm.service import FarmService
from custode.agent.history.model import fold
from custode.agent.history.service import prune
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache, samples
from custode.agent.state import State
from custode.agent.status import build_status

FARM_CONFIG = """
agent: {tenant: provider}
tenants:
  provider: {name: Consorzio}
  crema: {name: Comune di Crema}
  cremona: {name: Comune di Cremona}
hosts:
  web1: {address: web1.farm.lan, tenant: crema, labels: {role: web, site: farm}}
  web2: {address: web2.farm.lan, tenant: crema}
  db1: {address: db1.farm.lan, tenant: cremona}
  win1:
    address: win1.cremona.lan
    transport: winrm
    tenant: cremona
    winrm: {user: custode, password: {env: CUSTODE_WINRM_PASSWORD}}
  agent-host: {address: nas.farm.lan, monitor: agent}
  this-machine: {transport: local}
farm:
  checks:
    unreachable: {polls: 2}
"""


@pytest.fixture
def farm(tmp_path):
    loaded = load_text(FARM_CONFIG)
    state = State(tmp_path / "state.db")
    cache = MetricCache()
    service = FarmService(loaded.model, state, Incidents(state), cache)
    yield service
    state.close()


def _targets(service: FarmService) -> dict:
    return {t.name: t for t in service.targets}


def _open(service: FarmService) -> dict[str, str]:
    return {i.key: i.severity for i in service.incidents.open_incidents()}


# -- config ----------------------------------------------------------------------------------------------

def test_polled_hosts_default_to_farm_for_remote_transports(farm) -> None:
    assert sorted(_targets(farm)) == ["db1", "web1", "web2", "win1"]
    web1 = _targets(farm)["web1"]
    assert web1.metric_labels() == {"tenant": "crema", "host": "web1", "role": "web", "site": "farm"}
    assert (web1.interval, web1.timeout) == (300.0, 60.0)


def test_legacy_updates_hosts_are_the_same_registry(write_config) -> None:
    loaded = load(write_config("updates:\n  hosts:\n    app1: {address: app1.lan}\n"
                               "  windows:\n    w: {application: X, days: [thursday], start: '17:00', "
                               "hosts: [app1], playbook: p.yaml}\n"))
    assert list(loaded.model.hosts) == ["app1"] and list(loaded.model.polled_hosts()) == ["app1"]


def test_a_host_in_both_places_is_refused(write_config) -> None:
    with pytest.raises(ConfigError, match="defined both under hosts: and under updates.hosts"):
        load(write_config("hosts:\n  a: {address: x}\nupdates:\n  hosts:\n    a: {address: y}\n"))


@pytest.mark.parametrize("labels, message", [
    ("{tenant: x}", "set by Custode or Prometheus itself"),
    ("{2site: x}", "label names are letters"),
])
def test_host_labels_are_checked(write_config, labels, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write_config(f"hosts:\n  a: {{address: x, labels: {labels}}}\n"))


def test_history_shorter_than_the_yearly_report_is_refused(write_config) -> None:
    with pytest.raises(ConfigError, match="400"):
        load(write_config("farm: {history_days: 100}\n"))


def test_unknown_tenant_of_a_host_names_the_line(write_config) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write_config("tenants:\n  crema: {name: Crema}\nagent: {tenant: crema}\n"
                          "hosts:\n  a: {address: x, tenant: crem}\n"))
    assert ":5: hosts.a.tenant: tenant 'crem' is not defined under tenants; did you mean 'crema'?" in str(caught.value)


# -- checks and incidents ----------------------------------------------------------------------------------

def test_full_disk_opens_an_incident_on_that_host_only(farm) -> None:
    t = _targets(farm)
    farm.handle([up(t["web1"], linux_snapshot(root_avail=1 * GIB)), up(t["web2"], linux_snapshot())])
    assert _open(farm) == {"crema/filesystem/web1:/": "critical"}
    incident = farm.incidents.open_incidents()[0]
    assert incident.summary.startswith("filesystem / on web1 has 1.0% free")
    # web2's complete evaluation must not resolve web1's incident (reconcile is scoped per host)
    farm.handle([up(t["web2"], linux_snapshot())])
    assert _open(farm) == {"crema/filesystem/web1:/": "critical"}
    farm.handle([up(t["web1"], linux_snapshot())])
    assert _open(farm) == {}


def test_unreachable_after_n_polls_and_other_incidents_kept_meanwhile(farm) -> None:
    web1 = _targets(farm)["web1"]
    farm.handle([up(web1, linux_snapshot(root_avail=1 * GIB, failed=("backup.service",)))])
    assert set(_open(farm)) == {"crema/filesystem/web1:/", "crema/services/web1:backup.service"}
    farm.handle([down(web1)])
    assert "crema/reachability/web1:reachability" not in _open(farm)  # one failed poll is not yet an incident
    farm.handle([down(web1)])
    opened = _open(farm)
    assert opened["crema/reachability/web1:reachability"] == "critical"
    assert "crema/filesystem/web1:/" in opened and "crema/services/web1:backup.service" in opened
    summary = [i.summary for i in farm.incidents.open_incidents() if i.check == "reachability"][0]
    assert summary == ("host web1 could not be polled 2 times in a row: "
                       "no answer from x:22 within 10 s (connect_timeout)")
    farm.handle([up(web1, linux_snapshot())])
    assert _open(farm) == {}


def test_windows_defender_disabled_old_updates_and_full_c(farm) -> None:
    win1 = _targets(farm)["win1"]
    farm.handle([up(win1, windows_snapshot(defender_on=False, c_free=0.3 * GIB, pending=37, last_update_days=120))])
    opened = _open(farm)
    assert opened["cremona/antivirus/win1:antivirus"] == "critical"
    assert opened["cremona/filesystem/win1:C:"] == "critical"
    assert opened["cremona/os_updates/win1:updates"] == "critical"
    texts = {i.check: i.summary for i in farm.incidents.open_incidents()}
    assert texts["antivirus"] == "no active antivirus on win1: Microsoft Defender is disabled"
    assert texts["os_updates"].startswith("no update installed on win1 for 120 days")
    assert "37 pending (5 security)" in texts["os_updates"]


def test_updates_age_levels(farm) -> None:
    win1 = _targets(farm)["win1"]
    farm.handle([up(win1, windows_snapshot(pending=3, last_update_days=60))])
    assert _open(farm)["cremona/os_updates/win1:updates"] == "warning"
    farm.handle([up(win1, windows_snapshot(pending=0, last_update_days=200))])  # nothing to install: fine
    assert "cremona/os_updates/win1:updates" not in _open(farm)


def test_windows_2008_r2_is_flagged(farm) -> None:
    win1 = _targets(farm)["win1"]
    farm.handle([up(win1, windows_snapshot(build="7601", version="6.1.7601",
                                          name="Microsoft Windows Server 2008 R2 Standard"))])
    incident = [i for i in farm.incidents.open_incidents() if i.check == "os_support"][0]
    assert incident.severity == "warning" and "2008 R2" in incident.summary


def test_failing_smart_disk(farm) -> None:
    db1 = _targets(farm)["db1"]
    farm.handle([up(db1, linux_snapshot(disks_ok=False))])
    assert _open(farm) == {"cremona/disk_health/db1:disk//dev/sda": "critical"}


# -- metrics ------------------------------------------------------------------------------------------------

def test_metrics_carry_tenant_host_and_labels(farm) -> None:
    t = _targets(farm)
    farm.handle([up(t["web1"], linux_snapshot()), down(t["web2"], "nothing listens on web2:22 (connection refused)"),
                 up(t["win1"], windows_snapshot())])
    families = farm.families()
    up_samples = {s[0]["host"]: s[1] for s in samples(families, "custode_target_up")}
    assert up_samples == {"web1": 1.0, "web2": 0.0, "win1": 1.0}
    errors = samples(families, "custode_target_last_error_info")
    assert errors == [({"tenant": "crema", "host": "web2", "error": "nothing listens on web2:22 (connection refused)"},
                       1.0)]
    avail = samples(families, "node_filesystem_avail_bytes")
    assert avail == [({"tenant": "crema", "host": "web1", "role": "web", "site": "farm", "device": "/dev/sda1",
                       "fstype": "ext4", "mountpoint": "/"}, 40 * GIB)]
    assert samples(families, "windows_logical_disk_free_bytes")[0][0]["volume"] == "C:"
    assert samples(families, "custode_antivirus_enabled")[0][1] == 1.0
    text = farm.cache.exposition.plain.decode()
    assert text.count("# TYPE node_cpu_seconds_total counter") == 1
    assert 'node_cpu_seconds_total{cpu="0",host="web1",mode="user",role="web",site="farm",tenant="crema"} 100.0' in text


def test_local_and_farm_samples_share_one_family(farm) -> None:
    from prometheus_client.core import GaugeMetricFamily

    local = GaugeMetricFamily("node_filesystem_avail_bytes", "local", labels=["mountpoint"])
    local.add_metric(["/"], 1.0)
    farm.cache.update("filesystem", [local])
    farm.handle([up(_targets(farm)["web1"], linux_snapshot())])
    text = farm.cache.exposition.plain.decode()
    assert text.count("# HELP node_filesystem_avail_bytes") == 1
    assert 'node_filesystem_avail_bytes{mountpoint="/"} 1.0' in text
    assert 'host="web1"' in text


# -- history, report, status --------------------------------------------------------------------------------

def test_daily_aggregates_for_400_days_answer_the_yearly_report(farm) -> None:
    web1 = _targets(farm)["web1"]
    today = datetime.now(ROME).date()
    with farm.state.transaction() as db:
        for back in range(400, 0, -1):
            noon = datetime.combine(today - timedelta(days=back), datetime.min.time(), ROME).timestamp() + 43200
            history.record(db, up(web1, linux_snapshot(now=noon, root_avail=(5 + back % 30) * GIB), busy=0.1,
                                  at=noon))
            history.record(db, up(web1, linux_snapshot(now=noon), busy=0.5, at=noon + 60))
            if back % 50 == 0:
                history.record(db, down(web1, at=noon + 120))
    rows = farm.state.query("SELECT COUNT(*) AS n FROM host_daily WHERE host = 'web1' AND source = 'farm'")[0]["n"]
    assert rows == 400
    year = summarise(farm.state, today - timedelta(days=365), today, host="web1")[0]
    assert year.days == 365
    assert year.cpu_avg_percent == 30.0 and year.cpu_max_percent == 50.0
    assert year.filesystems == {"/": 5.0}
    assert 99.0 < year.availability_percent < 100.0
    assert year.top_errors == ["7× no answer from x:22 within 10 s (connect_timeout)"]
    csv_text = render([year], "csv")
    assert csv_text.splitlines()[0].startswith("host,tenant,days,availability_percent")
    prune(farm.state, farm.config.history.days, datetime.combine(today, datetime.min.time(), ROME).timestamp())
    remaining = farm.state.query("SELECT MIN(day) AS d FROM host_daily")[0]["d"]
    assert remaining >= (today - timedelta(days=400)).isoformat()


def test_merge_counts_errors_and_keeps_the_tightest_moment() -> None:
    target = linux_target("a")
    data = fold({}, history.observation_of(up(target, linux_snapshot(root_avail=30 * GIB))))
    data = fold(data, history.observation_of(up(target, linux_snapshot(root_avail=10 * GIB))))
    data = fold(data, history.observation_of(up(target, linux_snapshot(root_avail=20 * GIB))))
    data = fold(data, history.observation_of(down(target, "refused")))
    assert data["filesystems"]["/"]["min_free_percent"] == 10.0
    assert data["errors"] == {"refused": 1}
    assert json.loads(json.dumps(data)) == data


def test_status_names_down_hosts(farm, tmp_path, write_config, monkeypatch) -> None:
    path = write_config(FARM_CONFIG + f"state: {{path: {tmp_path / 'state.db'}}}\n")
    loaded = load(path)
    t = _targets(farm)
    farm.handle([up(t["web1"], linux_snapshot()), down(t["db1"], "nothing listens on db1:22 (connection refused)")])
    text = build_status(loaded).text
    assert "Farm: 1 of 4 hosts answered their last poll; 2 not polled yet." in text
    assert "db1 (cremona): down for 1 polls, never answered: nothing listens on db1:22 (connection refused)" in text
    assert "  crema: 2 hosts, 1 answering\n  cremona: 2 hosts, 0 answering\n" in text


def test_a_host_removed_from_the_config_has_its_incidents_resolved(tmp_path) -> None:
    state = State(tmp_path / "state.db")
    try:
        before = FarmService(load_text(FARM_CONFIG).model, state, Incidents(state))
        web1 = _targets(before)["web1"]
        before.handle([up(web1, linux_snapshot(root_avail=GIB)), up(_targets(before)["db1"],
                                                                 linux_snapshot(root_avail=GIB))])
        assert len(before.incidents.open_incidents()) == 2
        after = FarmService(load_text(FARM_CONFIG.replace("  web1: {address: web1.farm.lan, tenant: crema, "
                                                          "labels: {role: web, site: farm}}\n", "")).model,
                            state, Incidents(state))
        after.prune()
        assert [i.key for i in after.incidents.open_incidents()] == ["cremona/filesystem/db1:/"]
        assert [r["host"] for r in state.query("SELECT host FROM farm_targets")] == ["db1"]
    finally:
        state.close()


def _cli(*args: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from custode.agent.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
            err.write(str(exc.code))
    return code, out.getvalue(), err.getvalue()


def test_farm_list_and_report_from_the_command_line(tmp_path, write_config) -> None:
    path = write_config(FARM_CONFIG + f"state: {{path: '{tmp_path / 'cli.db'}'}}\n")
    code, out, _ = _cli("farm", "list", "--config", str(path))
    assert code == 0 and out.count("never polled") == 4
    state = State(tmp_path / "cli.db")
    try:
        service = FarmService(load(path).model, state, Incidents(state))
        t = _targets(service)
        service.handle([up(t["web1"], linux_snapshot()), down(t["win1"], "the WinRM service on win1 refused us")])
    finally:
        state.close()
    code, out, _ = _cli("farm", "list", "--config", str(path), "--tenant", "cremona")
    assert code == 1
    assert "DOWN (1 polls)" in out and "the WinRM service on win1 refused us" in out and "web1" not in out
    code, out, _ = _cli("farm", "report", "--config", str(path), "--format", "csv")
    rows = out.splitlines()
    assert code == 0 and len(rows) == 3 and rows[1].startswith("web1,crema,1,100.0,Debian GNU/Linux 12")
    code, out, _ = _cli("farm", "report", "--config", str(path), "--year", "2019")
    assert code == 0 and out.startswith("No farm history in this period")


def test_farm_poll_explains_bad_arguments(write_config) -> None:
    code, _, err = _cli("farm", "poll", "--ssh", "no-user-here")
    assert code == 2 and "expected USER@HOST[:PORT]" in err
    code, _, err = _cli("farm", "poll", "--config", str(write_config(FARM_CONFIG)), "--host", "web3")
    assert code != 0 and "no polled host 'web3' in the config; did you mean 'web" in err
    code, _, err = _cli("farm", "poll", "--config", str(write_config("agent: {tenant: default}\n")))
    assert code != 0 and "nothing to poll" in err


def test_results_that_cannot_be_recorded_are_kept_for_the_next_tick(tmp_path) -> None:
    from custode.agent.farm.poller import FarmPoller

    state = State(tmp_path / "state.db")
    config = load_text(FARM_CONFIG).model
    poller = FarmPoller([])
    service = FarmService(config, state, Incidents(state), poller=poller)
    web1 = _targets(service)["web1"]
    assert poller.give_back([up(web1, linux_snapshot())]) == 0  # as if it had just finished
    state.close()  # the state DB fails under the tick
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        service.tick()
    assert [r.target.name for r in poller.drain()] == ["web1"]
    poller.close()
