"""Configured restore sets: certificate files, state, audit log, incidents, metrics, coverage, CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest
from restore_trees import damage_silently, make_source, mirror

from custode.agent.audit import AuditLog, export, verify
from custode.agent.config_loader import load
from custode.agent.incidents import Incidents
from custode.agent.paths import audit_path, data_dir, state_path
from custode.agent.restore.metrics import restore_families
from custode.agent.restore.service import RestoreService
from custode.agent.state import State

CONFIG = """
agent: {{tenant: provider}}
tenants:
  provider: {{name: Fornitore}}
  crema: {{name: Comune di Crema, language: it}}
restore_tests:
  sets:
    crema-nas:
      tenant: crema
      backend: mirror
      repository: {copy}
      source: {source}
      sample: {{count: 100, seed: 1}}
      coverage:
        volumes: [{volume}]
        include: [{volume}/dati, {volume}/app]
"""


@pytest.fixture
def site(tmp_path, write_config):
    volume = tmp_path / "srv"
    source = make_source(volume / "dati", files=8)
    (volume / "app" / "bin").mkdir(parents=True)
    (volume / "app" / "bin" / "server").write_text("binary")
    copy = mirror(source, tmp_path / "nas" / "dati")
    path = write_config(CONFIG.format(copy=copy, source=source, volume=volume))
    loaded = load(str(path))
    state = State(state_path(loaded.model))
    audit = AuditLog(audit_path(loaded.model), actor="test", on_append=state.set_audit_anchor)
    clock = [time.time()]
    service = RestoreService(loaded.model, state, Incidents(state, clock=lambda: clock[0]),
                             lambda action, subject, details: audit.append(action, subject, details),
                             data_dir(loaded.model))
    yield {"service": service, "state": state, "copy": copy, "source": source, "volume": volume, "config": path,
           "loaded": loaded, "clock": clock, "audit": audit}
    state.close()


def open_incidents(site):
    return {i.key: i for i in site["service"].incidents.open_incidents()}


def metric(site, name):
    for family in restore_families(site["service"]):
        if family.name == name:
            return {s.labels["set"]: s.value for s in family.samples}
    raise AssertionError(f"no family {name}")


def test_a_passed_test_leaves_a_certificate_on_disk_in_the_state_and_in_the_audit_log(site):
    certificate, path = site["service"].run_test("crema-nas", "manual")
    assert certificate["passed"] is True and certificate["tenant"] == "crema"
    assert path is not None and path.parent.name == "crema-nas" and path.parent.parent.name == "crema"
    assert json.loads(path.read_text(encoding="utf-8")) == certificate
    html = path.with_suffix(".html").read_text(encoding="utf-8")
    assert "SUPERATO" in html and "Comune di Crema" in html
    assert path.with_suffix(".txt").read_text(encoding="utf-8")
    records = [json.loads(line) for line in export(audit_path(site["loaded"].model))]
    audited = [r for r in records if r["action"] == "restore.test"]
    assert audited[-1]["details"]["sha256"] == certificate["sha256"]
    assert audited[-1]["details"]["files"] == certificate["files"]
    assert verify(audit_path(site["loaded"].model)).ok
    assert metric(site, "custode_restore_test_passed") == {"crema-nas": 1.0}
    assert metric(site, "custode_restore_test_files_verified") == {"crema-nas": 11.0}
    assert metric(site, "custode_restore_test_mismatches") == {"crema-nas": 0.0}
    assert metric(site, "custode_restore_test_overdue") == {"crema-nas": 0.0}
    assert metric(site, "custode_restore_test_throughput_bytes_per_second")["crema-nas"] > 0
    assert not open_incidents(site)


def test_a_failed_test_is_a_critical_incident_until_a_test_passes_again(site):
    damage_silently(site["copy"] / "cartella1" / "file001.bin", keep=0)
    certificate, _ = site["service"].run_test("crema-nas")
    assert certificate["passed"] is False
    incident = open_incidents(site)["crema/restore_test/crema-nas"]
    assert incident.severity == "critical"
    assert "cannot be trusted" in incident.summary and "cartella1/file001.bin" in incident.summary
    assert metric(site, "custode_restore_test_passed") == {"crema-nas": 0.0}
    assert metric(site, "custode_restore_test_mismatches") == {"crema-nas": 1.0}
    mirror(site["source"], site["copy"])  # the provider re-synchronises the copy
    assert site["service"].run_test("crema-nas")[0]["passed"] is True
    assert "crema/restore_test/crema-nas" not in open_incidents(site)


def test_a_set_never_tested_or_not_tested_for_a_year_is_overdue(site):
    service = site["service"]
    service.clock = lambda: site["clock"][0]
    service.check_overdue()
    overdue = open_incidents(site)["crema/restore_test_overdue/crema-nas"]
    assert overdue.severity == "warning" and "never passed" in overdue.summary
    assert "custode restore-test run crema-nas" in overdue.summary
    service.run_test("crema-nas")
    assert "crema/restore_test_overdue/crema-nas" not in open_incidents(site)
    site["clock"][0] += 366 * 86400
    service.check_overdue()
    assert "last passed 366 days ago" in open_incidents(site)["crema/restore_test_overdue/crema-nas"].summary
    assert metric(site, "custode_restore_test_overdue") == {"crema-nas": 1.0}


def test_a_new_top_level_folder_on_the_volume_is_reported_unprotected_once(site):
    service = site["service"]
    first = service.coverage("crema-nas")
    assert not first.unprotected
    assert metric(site, "custode_backup_unprotected_paths") == {"crema-nas": 0.0}
    (site["volume"] / "nuova-app" / "db").mkdir(parents=True)
    (site["volume"] / "nuova-app" / "db" / "archivio.mdf").write_bytes(b"x" * 4096)
    second = service.coverage("crema-nas")
    assert [i.path for i in second.unprotected if i.kind == "folder"] == [str(site["volume"] / "nuova-app")]
    incident = open_incidents(site)["crema/backup_coverage/crema-nas"]
    assert "nuova-app" in incident.summary and "new since the last check" in incident.summary
    assert metric(site, "custode_backup_unprotected_paths")["crema-nas"] >= 1
    third = service.coverage("crema-nas")
    assert "new since the last check" not in open_incidents(site)["crema/backup_coverage/crema-nas"].summary
    assert third.unprotected


def cli(site, *args):
    return subprocess.run([sys.executable, "-m", "custode.agent", *args, "--config", str(site["config"])],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_cli_runs_lists_shows_and_writes_the_coverage_csv(site):
    site["state"].close()
    run = cli(site, "restore-test", "run", "crema-nas")
    assert run.returncode == 0, run.stderr
    assert "SUPERATO" in run.stdout and "Certificate:" in run.stdout
    listing = cli(site, "restore-test", "list", "--json")
    [row] = json.loads(listing.stdout)["sets"]
    assert row["last_test"].endswith(("+01:00", "+02:00"))
    assert row["set"] == "crema-nas" and row["last_passed"] is True and row["overdue"] is False
    shown = cli(site, "restore-test", "show", "crema-nas", "--format", "json")
    assert json.loads(shown.stdout)["set"] == "crema-nas"
    html = cli(site, "restore-test", "show", "crema-nas", "--format", "html", "--language", "en")
    assert "PASSED" in html.stdout
    (site["volume"] / "scansioni").mkdir()
    (site["volume"] / "scansioni" / "a.pdf").write_text("pdf")
    coverage = cli(site, "backups", "coverage", "--format", "csv")
    assert coverage.returncode == 1  # something is unprotected
    rows = list(csv.DictReader(io.StringIO(coverage.stdout)))
    by_path = {r["path"]: r for r in rows}
    assert by_path[str(site["volume"] / "scansioni")]["protected"].lower() in ("false", "no", "0")
    assert by_path[str(site["volume"] / "dati")]["protected"].lower() in ("true", "yes", "1")
    assert {r["tenant"] for r in rows} == {"crema"} and {r["set"] for r in rows} == {"crema-nas"}
    as_json = json.loads(cli(site, "backups", "coverage", "--format", "json", "--no-record").stdout)
    assert {p["path"] for p in as_json["paths"]} == set(by_path) and as_json["config"]
    unknown = cli(site, "restore-test", "run", "crema-nsa")
    assert unknown.returncode == 1 and "did you mean 'crema-nas'" in unknown.stderr
