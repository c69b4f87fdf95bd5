"""Issue 5's acceptance: `custode restore-test run` against real restic and borg repositories.

A clean repository passes; a corrupted pack or segment fails loudly, names
files and, for a configured set, becomes a critical incident; a file changed at
the source after the backup is not called corruption when the backup's own
record matches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from restore_repos import BIG, borg_env, borg_repo, corrupt_borg_segment, corrupt_restic_pack, make_tree, restic_repo
from restore_trees import write_now

from custode.agent.config_loader import load
from custode.agent.incidents import Incidents
from custode.agent.paths import data_dir, state_path
from custode.agent.restore.service import RestoreService
from custode.agent.state import State

PASSWORD = "correct horse battery staple"


@pytest.fixture
def source(tmp_path) -> Path:
    root = tmp_path / "dati"
    make_tree(root, files=30)
    return root


def password_file(tmp_path) -> Path:
    path = tmp_path / "repo.pass"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def run_cli(tmp_path, backend: str, repo: str, source: Path, env: dict | None = None) -> tuple[int, dict]:
    command = [sys.executable, "-m", "custode.agent", "restore-test", "run", "--backend", backend, "--repo", repo,
               "--source", str(source), "--password-file", str(password_file(tmp_path)), "--sample", "100",
               "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                            env=env)
    certificate = json.loads(result.stdout)
    assert PASSWORD not in result.stdout + result.stderr
    return result.returncode, certificate


def assert_acceptance_shape(certificate: dict) -> None:
    assert isinstance(certificate["passed"], bool) and isinstance(certificate["files_checked"], int)
    assert isinstance(certificate["mismatches"], list) and isinstance(certificate["errors"], list)


@pytest.mark.parametrize("backend", [pytest.param("restic", marks=pytest.mark.real_clock), "borg"])
def test_a_clean_repository_passes_and_a_corrupted_one_fails_naming_files(tmp_path, source, backend):
    if backend == "restic":
        repo, env = restic_repo(tmp_path, source, PASSWORD), None
    else:
        repo, env = borg_repo(tmp_path, source, PASSWORD), borg_env(tmp_path, None)
        env.pop("BORG_PASSPHRASE")  # the CLI must take it from --password-file
    code, certificate = run_cli(tmp_path, backend, repo, source, env)
    assert_acceptance_shape(certificate)
    assert code == 0, certificate["errors"]
    assert certificate["passed"] and certificate["mismatches"] == []
    assert certificate["files_checked"] == certificate["sample"]["source_files"] == 30
    assert backend in certificate["tools"] and certificate["restore"]["throughput_bytes_per_second"] > 0
    (corrupt_restic_pack if backend == "restic" else corrupt_borg_segment)(repo)
    code, certificate = run_cli(tmp_path, backend, repo, source, env)
    assert_acceptance_shape(certificate)
    assert code == 1 and certificate["passed"] is False
    assert certificate["mismatches"], "the damaged files must be named"
    failed = {f["path"]: f for f in certificate["files"] if f["result"] in ("mismatch", "not_restored")}
    assert set(certificate["mismatches"]) <= {f["path"] for f in certificate["files"]}
    assert failed and all(f["detail"] for f in failed.values())


@pytest.mark.parametrize("backend", [pytest.param("restic", marks=pytest.mark.real_clock), "borg"])
def test_a_file_changed_at_the_source_after_the_backup_is_not_corruption(tmp_path, source, backend):
    if backend == "restic":
        repo, env = restic_repo(tmp_path, source, PASSWORD), None
    else:
        repo, env = borg_repo(tmp_path, source, PASSWORD), borg_env(tmp_path, None)
    write_now(source / BIG, b"rewritten by the application this morning")
    code, certificate = run_cli(tmp_path, backend, repo, source, env)
    assert code == 0, certificate
    changed = next(f for f in certificate["files"] if f["path"] == BIG)
    assert changed["result"] == "ok_manifest"
    assert changed["source_sha256"] != changed["restored_sha256"]
    if backend == "borg":
        assert changed["manifest_sha256"] == changed["restored_sha256"]  # borg's own hash vouches for the copy


@pytest.mark.real_clock
def test_a_configured_restic_set_that_is_corrupted_becomes_a_critical_incident(tmp_path, source, write_config,
                                                                               monkeypatch):
    repo = restic_repo(tmp_path, source, PASSWORD)
    monkeypatch.setenv("RESTIC_PASSWORD_CREMA", PASSWORD)
    path = write_config(f"""
agent: {{tenant: crema}}
tenants:
  crema: {{name: Comune di Crema}}
restore_tests:
  sets:
    crema-files:
      backend: restic
      repository: {repo}
      password: {{env: RESTIC_PASSWORD_CREMA}}
      source: {source}
      sample: {{count: 100}}
""")
    loaded = load(str(path))
    state = State(state_path(loaded.model))
    records = []
    try:
        service = RestoreService(loaded.model, state, Incidents(state),
                                 lambda *record: records.append(record), data_dir(loaded.model))
        assert service.run_test("crema-files")[0]["passed"]
        corrupt_restic_pack(repo)
        certificate, certificate_path = service.run_test("crema-files")
        incident = {i.key: i for i in service.incidents.open_incidents()}["crema/restore_test/crema-files"]
        assert incident.severity == "critical" and certificate["mismatches"][0] in incident.summary
        assert "NON SUPERATO" in certificate_path.with_suffix(".html").read_text(encoding="utf-8")
        assert [r[0] for r in records] == ["restore.test", "restore.test"]
        assert not any(PASSWORD in json.dumps(r[2]) for r in records)
        assert not os.listdir(data_dir(loaded.model) / "restore"), "scratch copies must be deleted"
    finally:
        state.close()
