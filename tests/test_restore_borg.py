"""BorgBackend against Debian's real borg: find the archive, describe files (with SHA-256), restore, notice damage."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from conftest import require_binary
from restore_repos import (
    BIG,
    EMPTY,
    GLOBBY,
    NESTED,
    OLD,
    SPACED,
    borg_env,
    borg_repo,
    corrupt_borg_segment,
    make_tree,
    sha256_file,
)

from custode.agent.restore.backends.borg import BorgBackend, create_paths, default_base_dir
from custode.agent.restore.model import RestoreError

PASSWORD = "passphrase-di-prova-è-lunga"
FEW = [SPACED, NESTED, GLOBBY, BIG, EMPTY, OLD]


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """A generated tree and an encrypted borg repository holding one archive of it (built once per module)."""
    require_binary("borg", "borgbackup")
    base = tmp_path_factory.mktemp("borg")
    source = base / "dati comune"
    hashes = make_tree(source, files=40)
    repo = borg_repo(base, source, PASSWORD, archive="dati-{now}")
    return base, source, repo, hashes


def backend(base: Path, repo: str, source: Path, **kwargs) -> BorgBackend:
    options = {"password": PASSWORD, "extra_env": {"BORG_BASE_DIR": str(base / "borg-base")}} | kwargs
    return BorgBackend(repo, str(source), **options)


def test_tool_version_and_missing_binary(backed_up) -> None:
    base, source, repo, _ = backed_up
    assert backend(base, repo, source).tool_version().startswith("borg 1.")
    with pytest.raises(RestoreError, match=r"apt-get install borgbackup"):
        backend(base, repo, source, binary="/nonexistent/borg").tool_version()


def test_latest_snapshot_finds_the_archive(backed_up) -> None:
    base, source, repo, _ = backed_up
    snapshot = backend(base, repo, source).latest_snapshot()
    assert snapshot.id.startswith("dati-")
    assert abs(snapshot.time - time.time()) < 600
    assert snapshot.paths == [str(source)]
    assert snapshot.hostname


def test_archive_glob_and_uncovered_source(backed_up, tmp_path) -> None:
    base, source, repo, _ = backed_up
    with pytest.raises(RestoreError, match=r"no archives matching 'altro-\*'"):
        backend(base, repo, source, archive_glob="altro-*").latest_snapshot()
    assert backend(base, repo, source, archive_glob="dati-*").latest_snapshot().id.startswith("dati-")
    with pytest.raises(RestoreError, match=r"none of the last 1 archives includes .*path_in_backup"):
        backend(base, repo, tmp_path / "altrove").latest_snapshot()


def test_manifest_has_sizes_mtimes_and_sha256(backed_up) -> None:
    base, source, repo, hashes = backed_up
    borg = backend(base, repo, source)
    manifest = borg.manifest(borg.latest_snapshot(), FEW + ["Tributi/non esiste.pdf"])
    assert set(manifest) == set(FEW)
    for relative in FEW:
        info = os.stat(source / relative)
        assert manifest[relative].size == info.st_size
        assert abs(manifest[relative].mtime - info.st_mtime_ns / 1e9) <= borg.mtime_tolerance
        assert manifest[relative].sha256 == hashes[relative]


def test_restore_gives_back_identical_bytes(backed_up, tmp_path) -> None:
    base, source, repo, hashes = backed_up
    borg = backend(base, repo, source)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outcome = borg.restore(borg.latest_snapshot(), FEW, str(scratch))
    assert outcome.errors == {} and set(outcome.restored) == set(FEW)
    for relative, where in outcome.restored.items():
        assert Path(where).is_file() and str(scratch) in where
        assert sha256_file(where) == hashes[relative]
    assert outcome.tool_verified and outcome.seconds > 0


def test_path_in_backup_and_a_path_not_in_the_archive(backed_up, tmp_path) -> None:
    base, source, repo, hashes = backed_up
    borg = backend(base, repo, tmp_path / "altrove", path_in_backup=str(source))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outcome = borg.restore(borg.latest_snapshot(), [NESTED, "Nuova cartella/creato dopo.txt"], str(scratch))
    assert sha256_file(outcome.restored[NESTED]) == hashes[NESTED]
    assert "not in archive" in outcome.errors["Nuova cartella/creato dopo.txt"]
    assert not outcome.tool_verified


def test_damaged_segment_is_reported_per_file(backed_up, tmp_path) -> None:
    base, source, repo, hashes = backed_up
    damaged = shutil.copytree(repo, tmp_path / "damaged")
    corruption = corrupt_borg_segment(damaged)
    assert corruption.path.is_relative_to(damaged) and corruption.path.name.isdigit()
    borg = backend(base, str(damaged), source)  # a copy: borg would ask "relocated repository?"; it must not
    snapshot = borg.latest_snapshot()
    everything = sorted(hashes)
    manifest = borg.manifest(snapshot, everything)  # must not raise although hashing hits the bad chunk
    assert set(manifest) == set(everything)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outcome = borg.restore(snapshot, everything, str(scratch))
    failed = set(outcome.errors) | (set(everything) - set(outcome.restored))
    assert failed, "a damaged segment went unnoticed"
    assert any("integrity" in why.lower() for why in outcome.errors.values())
    assert not outcome.tool_verified and outcome.messages
    # borg stops at the bad chunk: the files after it were extracted by a new run, not given up
    assert len(outcome.restored) >= len(everything) - 2
    for relative, where in outcome.restored.items():
        assert sha256_file(where) == hashes[relative]


def test_wrong_password(backed_up) -> None:
    base, source, repo, _ = backed_up
    with pytest.raises(RestoreError) as caught:
        backend(base, repo, source, password="not-the-passphrase-123").latest_snapshot()
    message = str(caught.value)
    assert "passphrase" in message and "password" in message and repo in message
    assert "not-the-passphrase-123" not in message and PASSWORD not in message


def test_no_password_for_an_encrypted_repository_never_prompts(backed_up, monkeypatch) -> None:
    base, source, repo, _ = backed_up
    for name in ("BORG_PASSPHRASE", "BORG_PASSCOMMAND", "BORG_PASSPHRASE_FD"):
        monkeypatch.delenv(name, raising=False)
    borg = BorgBackend(repo, str(source), extra_env={"BORG_BASE_DIR": str(base / "borg-base")}, timeout=30)
    with pytest.raises(RestoreError, match="no passphrase is configured"):
        borg.latest_snapshot()


def test_password_file_and_unencrypted_repository(backed_up, tmp_path) -> None:
    base, source, repo, _ = backed_up
    secret = tmp_path / "passphrase"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    extra = {"BORG_BASE_DIR": str(base / "borg-base")}
    assert BorgBackend(repo, str(source), password_file=str(secret), extra_env=extra).latest_snapshot().id
    plain = borg_repo(tmp_path, source, None, name="plain")
    # a never-seen unencrypted repository: borg would ask whether to trust it; the backend answers for it
    fresh = BorgBackend(plain, str(source), extra_env={"BORG_BASE_DIR": str(tmp_path / "other-base")})
    assert fresh.latest_snapshot().paths == [str(source)]


def test_missing_repository(backed_up, tmp_path) -> None:
    base, source, _, _ = backed_up
    missing = str(tmp_path / "nessun-repository")
    with pytest.raises(RestoreError, match="no borg repository at this location") as caught:
        backend(base, missing, source).latest_snapshot()
    assert missing in str(caught.value) and PASSWORD not in str(caught.value)


def test_relative_repository_path_survives_extract_cwd(backed_up, tmp_path, monkeypatch) -> None:
    base, source, repo, hashes = backed_up
    monkeypatch.chdir(Path(repo).parent)
    borg = backend(base, Path(repo).name, source)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outcome = borg.restore(borg.latest_snapshot(), [EMPTY], str(scratch))
    assert sha256_file(outcome.restored[EMPTY]) == hashes[EMPTY]


# -- helpers without borg


def test_create_paths_from_the_recorded_command_line() -> None:
    assert create_paths(["/usr/bin/borg", "create", "--compression", "lz4", "-e", "*.tmp", "--stats",
                         "/repo::{hostname}-{now}", "/srv/dati", "/etc", "--exclude-from", "x.txt"]) == \
        ["/srv/dati", "/etc"]
    assert create_paths("borg create -C zstd ssh://nas/./repo::a -- /srv/-strano") == ["/srv/-strano"]
    assert create_paths(["borg", "create", "--paths-from-stdin", "/repo::a"]) == []
    assert create_paths(None) == [] and create_paths(["borg", "list", "/repo"]) == []


def test_default_base_dir_when_home_is_not_writable(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    home_file = tmp_path / "not-a-folder"
    home_file.write_text("")
    base = default_base_dir({"HOME": str(home_file)})
    assert base is not None and Path(base).is_dir() and base.startswith(str(tmp_path))
    assert os.stat(base).st_mode & 0o077 == 0
    assert default_base_dir({"HOME": str(tmp_path)}) is None
    assert default_base_dir({"HOME": str(home_file), "BORG_BASE_DIR": str(tmp_path)}) is None


def test_borg_env_helper_points_to_a_private_base(tmp_path) -> None:
    env = borg_env(tmp_path, "x")
    assert env["BORG_BASE_DIR"] == str(tmp_path / "borg-base") and env["BORG_PASSPHRASE"] == "x"
