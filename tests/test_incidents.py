"""The incident lifecycle: open, update, severity change, hold-for, resolve, reconcile."""

from __future__ import annotations

import sqlite3

import pytest

from custode.agent.checks import Evaluation, HostChecks, apply
from custode.agent.config import ChecksSection
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.state import MIGRATIONS, State, StateError
from custode.collectors.base import gauge


@pytest.fixture
def state(tmp_path):
    db = State(tmp_path / "state.db")
    yield db
    db.close()


def result(severity: str, target: str = "srv:/var", summary: str = "disk") -> CheckResult:
    return CheckResult("crema", "filesystem", target, severity, summary)  # type: ignore[arg-type]


def test_open_update_escalate_resolve(state) -> None:
    seen = []
    incidents = Incidents(state, on_change=seen.append)
    assert incidents.observe(result("ok"), now=100) is None
    opened = incidents.observe(result("warning"), now=110)
    assert opened.kind == "opened" and opened.severity == "warning"
    assert incidents.observe(result("warning"), now=120) is None  # a persisting condition is not news
    changed = incidents.observe(result("critical"), now=130)
    assert changed.kind == "severity_changed" and changed.incident_id == opened.incident_id
    resolved = incidents.observe(result("ok"), now=140)
    assert resolved.kind == "resolved"
    incident = incidents.get(opened.incident_id)
    assert (incident.status, incident.occurrences, incident.max_severity) == ("resolved", 3, "critical")
    assert (incident.opened_at, incident.last_seen_at, incident.resolved_at) == (110, 140, 140)
    assert [e["kind"] for e in incidents.events(opened.incident_id)] == ["opened", "severity_changed", "resolved"]
    assert [c.kind for c in seen] == ["opened", "severity_changed", "resolved"]
    reopened = incidents.observe(result("warning"), now=150)
    assert reopened.kind == "opened" and reopened.incident_id != opened.incident_id


def test_discrete_occurrences_are_recorded(state) -> None:
    incidents = Incidents(state)
    first = incidents.observe(result("critical"), occurrence=True, now=1)
    again = incidents.observe(result("critical"), occurrence=True, now=2)
    assert again.kind == "repeated" and again.incident_id == first.incident_id
    assert incidents.get(first.incident_id).occurrences == 2


def test_one_open_incident_per_key_is_enforced_by_the_database(state) -> None:
    incidents = Incidents(state)
    incidents.observe(result("warning"), now=1)
    with pytest.raises(sqlite3.IntegrityError):
        with state.transaction() as db:
            db.execute("""INSERT INTO incidents (key, tenant, check_name, target, severity, max_severity,
                          status, summary, opened_at, last_seen_at) VALUES
                          ('crema/filesystem/srv:/var', 'crema', 'filesystem', 'srv:/var', 'warning',
                           'warning', 'open', 'x', 1, 1)""")


def test_hold_for_delays_opening_and_survives_restart(tmp_path) -> None:
    path = tmp_path / "state.db"
    state = State(path)
    incidents = Incidents(state)
    assert incidents.observe(result("warning"), hold_for=300, now=1000) is None
    assert incidents.observe(result("warning"), hold_for=300, now=1200) is None
    assert [r["key"] for r in incidents.pending()] == ["crema/filesystem/srv:/var"]
    state.close()
    state = State(path)  # the agent restarted: the pending clock must not reset
    incidents = Incidents(state)
    opened = incidents.observe(result("warning"), hold_for=300, now=1300)
    assert opened is not None and opened.kind == "opened"
    assert incidents.pending() == []
    state.close()


def test_hold_for_resets_when_condition_clears(state) -> None:
    incidents = Incidents(state)
    incidents.observe(result("warning"), hold_for=300, now=0)
    incidents.observe(result("ok"), hold_for=300, now=200)
    assert incidents.observe(result("warning"), hold_for=300, now=400) is None
    assert incidents.observe(result("warning"), hold_for=300, now=650) is None
    assert incidents.observe(result("warning"), hold_for=300, now=700).kind == "opened"


def test_reconcile_resolves_targets_that_disappeared(state) -> None:
    incidents = Incidents(state)
    incidents.observe(result("critical", "srv:/a"), now=1)
    incidents.observe(result("critical", "srv:/b"), now=1)
    changes = incidents.reconcile("crema", "filesystem", ["srv:/a"], now=5)
    assert [(c.kind, c.key) for c in changes] == [("resolved", "crema/filesystem/srv:/b")]
    assert [i.target for i in incidents.open_incidents()] == ["srv:/a"]


def _filesystem_cache(avail: float, size: float = 100e9, mount: str = "/var") -> MetricCache:
    cache = MetricCache()
    families = []
    for name, value in (("node_filesystem_size_bytes", size), ("node_filesystem_avail_bytes", avail),
                        ("node_filesystem_free_bytes", avail), ("node_filesystem_device_error", 0.0)):
        family = gauge(name, "test", ["device", "fstype", "mountpoint"])
        family.add_metric(["/dev/sda1", "ext4", mount], value)
        families.append(family)
    cache.update("filesystem", families)
    return cache


@pytest.mark.parametrize("avail,severity", [(50e9, "ok"), (9e9, "warning"), (4e9, "critical")])
def test_filesystem_thresholds(avail, severity) -> None:
    checks = HostChecks(ChecksSection(), "crema", "srv01")
    [evaluation] = [e for e in checks.evaluate(_filesystem_cache(avail)) if e.check == "filesystem"]
    [res] = evaluation.results
    assert res.severity == severity
    assert res.key == "crema/filesystem/srv01:/var"
    assert res.details["avail_percent"] == pytest.approx(avail / 1e9)
    if severity != "ok":
        assert f"below the {severity} threshold" in res.summary


def test_checks_skip_when_source_collector_has_no_data(state) -> None:
    incidents = Incidents(state)
    checks = HostChecks(ChecksSection(), "crema", "srv01")
    apply(incidents, checks.evaluate(_filesystem_cache(1e9)), now=1)
    assert len(incidents.open_incidents()) == 1
    empty = MetricCache()  # the filesystem collector failed: no data, no verdict
    apply(incidents, checks.evaluate(empty), now=2)
    assert len(incidents.open_incidents()) == 1, "a dead collector must not resolve incidents"
    apply(incidents, checks.evaluate(_filesystem_cache(60e9)), now=3)
    assert incidents.open_incidents() == []


def test_failed_service_check_and_recovery(state) -> None:
    incidents = Incidents(state)
    checks = HostChecks(ChecksSection(), "crema", "srv01")
    cache = MetricCache()
    failed = gauge("custode_service_failed", "t", ["name", "manager"])
    failed.add_metric(["postgresql.service", "systemd"], 1)
    cache.update("services", [failed])
    apply(incidents, checks.evaluate(cache), now=1)
    [incident] = incidents.open_incidents()
    assert incident.severity == "critical" and "postgresql.service" in incident.summary
    cache.update("services", [gauge("custode_service_failed", "t", ["name", "manager"])])
    changes = apply(incidents, checks.evaluate(cache), now=2)
    assert [c.kind for c in changes] == ["resolved"]


def test_apply_reconciles_only_complete_evaluations(state) -> None:
    incidents = Incidents(state)
    apply(incidents, [Evaluation("filesystem", [result("critical", "srv:/a")])], now=1)
    apply(incidents, [Evaluation("filesystem", [], complete=False)], now=2)
    assert len(incidents.open_incidents()) == 1


def test_schema_is_versioned_and_newer_schema_refused(tmp_path) -> None:
    path = tmp_path / "state.db"
    state = State(path)
    assert state.schema_version == len(MIGRATIONS)
    with state.transaction() as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    state.close()
    with pytest.raises(StateError, match="newer than this Custode knows"):
        State(path)


def test_wal_mode(state) -> None:
    assert state.query("PRAGMA journal_mode")[0][0] == "wal"


def test_garbage_database_gives_clear_error(tmp_path) -> None:
    """Corrupt: restore or .recover, naming the file; never "move it aside" (that loses what .recover saves)."""
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError) as caught:
        State(path)
    message = str(caught.value)
    assert f"state database {path} is corrupt (file is not a database)" in message
    assert f'sqlite3 {path} ".recover" | sqlite3 {tmp_path / "state-recovered.db"}' in message
    assert "restore state.db from the last backup" in message
    assert "move it aside" not in message and caught.value.problem == "corrupt"
