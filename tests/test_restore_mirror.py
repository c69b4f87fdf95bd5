"""Restore tests of a mirrored folder (plain copy on a share): the engine end to end, no backup tool."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from restore_trees import SPECIAL_NAMES, damage_silently, make_source, mirror, write_now

from custode.agent.restore.backends.mirror import MirrorBackend
from custode.agent.restore.engine import RestoreRequest, RestoreTest, certificate_digest
from custode.agent.restore.sampling import SamplePolicy


def run(source, copy, tmp_path, **policy):
    scratch = tmp_path / "scratch"
    request = RestoreRequest(set_name="nas", backend=MirrorBackend(str(copy), str(source)), source=str(source),
                          repository=str(copy), policy=SamplePolicy(**({"count": 500} | policy)),
                          scratch_parent=str(scratch))
    certificate = RestoreTest(request).run()
    assert not scratch.exists() or not list(scratch.iterdir()), "the scratch copy must be deleted"
    return certificate


def results(certificate):
    return {f["path"]: f["result"] for f in certificate["files"]}


def test_an_intact_copy_passes_and_every_file_is_verified(tmp_path):
    source = make_source(tmp_path / "src")
    copy = mirror(source, tmp_path / "copy")
    certificate = run(source, copy, tmp_path)
    assert certificate["passed"] is True
    assert certificate["files_checked"] == certificate["files_verified"] == 27
    assert set(results(certificate).values()) == {"ok"}
    assert set(SPECIAL_NAMES) <= set(results(certificate))
    assert certificate["restore"]["bytes"] == sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    assert certificate["sha256"] == certificate_digest(certificate)


def test_a_silently_truncated_copy_is_detected(tmp_path):
    source = make_source(tmp_path / "src")
    copy = mirror(source, tmp_path / "copy")
    damage_silently(copy / "cartella1" / "file005.bin")
    certificate = run(source, copy, tmp_path)
    assert certificate["passed"] is False
    assert certificate["mismatches"] == ["cartella1/file005.bin"]
    bad = next(f for f in certificate["files"] if f["path"] == "cartella1/file005.bin")
    assert bad["result"] == "mismatch" and bad["source_sha256"] != bad["restored_sha256"]


def test_a_copy_overwritten_after_the_sync_is_detected_even_with_a_new_mtime(tmp_path):
    source = make_source(tmp_path / "src")
    copy = mirror(source, tmp_path / "copy")
    write_now(copy / "Anagrafe" / "archivio & note.csv", b"garbage")
    certificate = run(source, copy, tmp_path)
    assert certificate["mismatches"] == ["Anagrafe/archivio & note.csv"]


def test_a_source_file_changed_after_the_copy_is_not_called_corruption(tmp_path):
    source = make_source(tmp_path / "src")
    copy = mirror(source, tmp_path / "copy")
    changed = source / "cartella2" / "file006.bin"
    write_now(changed, b"edited today")
    certificate = run(source, copy, tmp_path)
    assert certificate["passed"] is True
    entry = next(f for f in certificate["files"] if f["path"] == "cartella2/file006.bin")
    assert entry["result"] == "skipped" and "changed at the source after the backup" in entry["detail"]
    assert certificate["files_checked"] == 26


def test_a_file_older_than_the_copy_but_absent_from_it_is_missing(tmp_path):
    source = make_source(tmp_path / "src")
    copy = mirror(source, tmp_path / "copy")
    os.remove(copy / "cartella3" / "file007.bin")
    fresh = source / "nuovo.txt"
    write_now(fresh, b"created after the last sync")  # newer than anything in the copy: not expected there yet
    certificate = run(source, copy, tmp_path)
    assert certificate["passed"] is False
    assert certificate["mismatches"] == ["cartella3/file007.bin"]
    assert results(certificate)["cartella3/file007.bin"] == "missing"
    assert results(certificate)["nuovo.txt"] == "skipped"


def test_an_unmounted_share_fails_with_the_fix_in_words(tmp_path):
    source = make_source(tmp_path / "src", files=2)
    certificate = run(source, tmp_path / "not-mounted", tmp_path)
    assert certificate["passed"] is False and certificate["files_checked"] == 0
    assert "does not exist or is not mounted" in certificate["errors"][0]


def test_an_old_copy_fails_the_backup_age_policy(tmp_path):
    source = make_source(tmp_path / "src", files=3, age_days=30)
    copy = mirror(source, tmp_path / "copy")
    request = RestoreRequest(set_name="nas", backend=MirrorBackend(str(copy), str(source)), source=str(source),
                          repository=str(copy), max_backup_age=8 * 86400)
    certificate = RestoreTest(request).run()
    assert certificate["passed"] is False
    assert "the backup seems to have stopped" in certificate["errors"][0]
    assert certificate["files_verified"] == certificate["files_checked"] > 0  # the files themselves were fine


def test_cli_one_off_mirror_test_prints_the_certificate_and_sets_the_exit_code(tmp_path):
    source = make_source(tmp_path / "src", files=6)
    copy = mirror(source, tmp_path / "copy")
    command = [sys.executable, "-m", "custode.agent", "restore-test", "run", "--backend", "mirror", "--repo", str(copy),
               "--source", str(source), "--sample", "5", "--json"]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    certificate = json.loads(ok.stdout)
    assert ok.returncode == 0, ok.stderr
    assert certificate["passed"] is True and certificate["files_checked"] == 5
    assert certificate["mismatches"] == [] and certificate["errors"] == []
    damage_silently(copy / "cartella0" / "file000.bin", keep=0)
    for path in copy.rglob("*.bin"):
        damage_silently(path, keep=1)
    bad = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["mismatches"]
