"""ResticBackend against Debian's real restic: find the snapshot, describe files, restore them, notice damage."""

from __future__ import annotations

import os
import shutil
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
    corrupt_restic_pack,
    make_tree,
    restic_repo,
    sha256_file,
)

from custode.agent.restore.backends.process import chunked, find_named_path, parse_timestamp, redact, run_tool
from custode.agent.restore.backends.restic import ResticBackend, _include_pattern
from custode.agent.restore.model import RestoreError, Snapshot

pytestmark = pytest.mark.real_clock  # starts a Go program (conftest.GO_PROGRAMS)

PASSWORD = "s3greto-di-prova-Ω"
FEW = [SPACED, NESTED, GLOBBY, BIG, EMPTY, OLD]


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """A generated tree and a restic repository holding one snapshot of it (built once per module)."""
    require_binary("restic", "restic")
    base = tmp_path_factory.mktemp("restic")
    source = base / "dati comune"
    hashes = make_tree(source, files=40)
    repo = restic_repo(base, source, PASSWORD)
    return base, source, repo, hashes


def backend(repo: str, source: Path, **kwargs) -> ResticBackend:
    return ResticBackend(repo, str(source), **({"password": PASSWORD} | kwargs))


def test_tool_version_and_missing_binary(backed_up) -> None:
    _, source, repo, _ = backed_up
    assert backend(repo, source).tool_version().startswith("restic 0.")
    with pytest.raises(RestoreError, match=r"apt-get install restic"):
        backend(repo, source, binary="/nonexistent/restic").tool_version()


def test_latest_snapshot_finds_the_backup(backed_up) -> None:
    _, source, repo, _ = backed_up
    snapshot = backend(repo, source).latest_snapshot()
    assert abs(snapshot.time - time.time()) < 600
    assert str(source) in snapshot.paths
    assert len(snapshot.id) == 64 and snapshot.hostname


def test_manifest_matches_the_files(backed_up) -> None:
    _, source, repo, _ = backed_up
    restic = backend(repo, source)
    manifest = restic.manifest(restic.latest_snapshot(), FEW + ["Tributi/non esiste.pdf"])
    assert set(manifest) == set(FEW)
    for relative in FEW:
        info = os.stat(source / relative)
        assert manifest[relative].size == info.st_size
        assert manifest[relative].mtime == info.st_mtime_ns / 1e9  # nanoseconds survive: no tolerance needed
        assert manifest[relative].sha256 is None


def test_restore_gives_back_identical_bytes(backed_up, tmp_path) -> None:
    _, source, repo, hashes = backed_up
    restic = backend(repo, source, cache_dir=str(tmp_path / "cache"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outcome = restic.restore(restic.latest_snapshot(), FEW, str(scratch))
    assert outcome.errors == {} and set(outcome.restored) == set(FEW)
    for relative, where in outcome.restored.items():
        assert Path(where).is_file() and str(scratch) in where
        assert sha256_file(where) == hashes[relative]
    assert outcome.tool_verified and outcome.seconds > 0


def test_path_in_backup_and_a_path_not_in_the_snapshot(backed_up, tmp_path) -> None:
    """The tree now lives elsewhere (a restored server): path_in_backup maps it; an unknown file is an error."""
    _, source, repo, hashes = backed_up
    restic = backend(repo, tmp_path / "altrove", path_in_backup=str(source))
    snapshot = restic.latest_snapshot()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outcome = restic.restore(snapshot, [NESTED, "Nuova cartella/creato dopo.txt"], str(scratch))
    assert sha256_file(outcome.restored[NESTED]) == hashes[NESTED]
    assert "not found in snapshot" in outcome.errors["Nuova cartella/creato dopo.txt"]
    assert not outcome.tool_verified


def test_source_not_in_any_snapshot(backed_up, tmp_path) -> None:
    _, _, repo, _ = backed_up
    with pytest.raises(RestoreError, match=r"none of its 1 snapshots includes .*path_in_backup"):
        backend(repo, tmp_path / "altro").latest_snapshot()


def test_damaged_pack_is_reported_per_file(backed_up, tmp_path) -> None:
    base, source, repo, hashes = backed_up
    damaged = shutil.copytree(repo, tmp_path / "damaged")
    corruption = corrupt_restic_pack(damaged)
    assert corruption.length == 16 and corruption.path.is_relative_to(damaged)
    restic = backend(str(damaged), source)
    snapshot = restic.latest_snapshot()  # index and trees are intact: only file contents are hit
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    everything = sorted(hashes)
    outcome = restic.restore(snapshot, everything, str(scratch))
    failed = set(outcome.errors) | (set(everything) - set(outcome.restored))
    assert failed, "a damaged pack went unnoticed"
    assert set(outcome.errors) <= set(everything)
    assert any("ciphertext verification failed" in why or "restic" in why for why in outcome.errors.values())
    assert not outcome.tool_verified
    assert not set(outcome.restored) & set(outcome.errors)


def test_wrong_password(backed_up) -> None:
    _, source, repo, _ = backed_up
    with pytest.raises(RestoreError) as caught:
        backend(repo, source, password="not-the-password-123").latest_snapshot()
    message = str(caught.value)
    assert "password" in message and repo in message
    assert "not-the-password-123" not in message and PASSWORD not in message


def test_password_file(backed_up, tmp_path) -> None:
    _, source, repo, _ = backed_up
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    assert ResticBackend(repo, str(source), password_file=str(secret)).latest_snapshot().id
    with pytest.raises(RestoreError, match="password file"):
        ResticBackend(repo, str(source), password_file=str(tmp_path / "missing")).latest_snapshot()


def test_missing_repository(tmp_path) -> None:
    require_binary("restic", "restic")
    missing = str(tmp_path / "nessun-repository")
    with pytest.raises(RestoreError, match="no restic repository at this location") as caught:
        ResticBackend(missing, str(tmp_path), password=PASSWORD).latest_snapshot()
    assert missing in str(caught.value) and PASSWORD not in str(caught.value)


# -- helpers without restic


def test_parse_timestamp_keeps_nanoseconds() -> None:
    assert parse_timestamp("2015-03-03T11:06:07.123456789Z") == 1_425_380_767_123_456_789 / 1e9
    assert parse_timestamp("2015-03-03T12:06:07.5+01:00") == 1_425_380_767.5
    assert parse_timestamp("2015-03-03T11:06:07") == 1_425_380_767.0


def test_include_patterns_escape_wildcards() -> None:
    assert _include_pattern("/d/verbale [bozza] *n.1*?.txt") == r"/d/verbale \[bozza\] \*n.1\*\?.txt"


def test_chunked_respects_budget() -> None:
    items = [f"/srv/{n:04d}" for n in range(100)]
    batches = list(chunked(items, budget=100))
    assert [i for batch in batches for i in batch] == items and all(len(b) <= 10 for b in batches)
    assert list(chunked(["x" * 500], budget=10)) == [["x" * 500]]


def test_find_named_path_prefers_whole_names() -> None:
    names = {"/a/b.txt": "b", "/a/b.txt.bak": "bak"}
    assert find_named_path("ignoring error for /a/b.txt.bak: boom", names) == "bak"
    assert find_named_path("ignoring error for /a/b.txt: boom", names) == "b"
    assert find_named_path("ignoring error for /a/b.txtx: boom", names) is None


def test_redact_hides_passwords_and_url_credentials() -> None:
    text = redact("rest:https://user:hunter22@backup.example/repo failed with hunter22", ["hunter22"])
    assert "hunter22" not in text and "user:***@" in text


def test_run_tool_is_bounded_and_names_the_package(tmp_path) -> None:
    started = time.monotonic()
    run = run_tool(["sh", "-c", "sleep 30 & sleep 30"], env=dict(os.environ), timeout=0.5, package="x")
    assert run.timed_out and run.exit_code is None and not run.ok
    assert time.monotonic() - started < 10
    run = run_tool(["sh", "-c", "echo out; echo err >&2; read x; echo \"got:$x\"; exit 3"],
                   env=dict(os.environ), timeout=10, package="x")  # stdin is /dev/null: read gets EOF at once
    assert run.exit_code == 3 and run.stdout == "out\ngot:" and run.stderr == "err" and run.tail() == "err"
    with pytest.raises(RestoreError, match="apt-get install some-package"):
        run_tool([str(tmp_path / "nope")], env=dict(os.environ), timeout=1, package="some-package")


FAKE_RESTIC = """#!/bin/sh
# stands in for 'restic restore': writes two files, then complains the way restic 0.14 does
while [ $# -gt 0 ]; do [ "$1" = "--target" ] && target="$2"; shift; done
mkdir -p "$target/src" && echo a > "$target/src/a.txt" && echo b > "$target/src/b.txt"
echo "ignoring error for /src/a.txt: Lchown: operation not permitted" >&2
[ "$FAKE_MODE" = "damaged" ] && echo "ignoring error for /src/b.txt: ciphertext verification failed" >&2
echo "Fatal: There were 2 errors" >&2
exit 1
"""


@pytest.mark.parametrize("mode", ["damaged", "metadata-only"])
def test_restore_output_is_attributed_per_file(tmp_path, mode) -> None:
    """Content errors fail their file; a metadata complaint (ownership, xattrs) alone does not fail the test."""
    fake = tmp_path / "restic"
    fake.write_text(FAKE_RESTIC)
    fake.chmod(0o755)
    restic = ResticBackend("/unused", "/src", password="pw", binary=str(fake), extra_env={"FAKE_MODE": mode})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outcome = restic.restore(Snapshot(id="f" * 64, time=0.0), ["a.txt", "b.txt"], str(scratch))
    assert outcome.restored["a.txt"] == str(scratch / "src" / "a.txt")
    if mode == "damaged":
        assert outcome.errors == {"b.txt": "restic: /src/b.txt: ciphertext verification failed"}
        assert any("exited with code 1" in m for m in outcome.messages)
    else:
        assert outcome.errors == {} and set(outcome.restored) == {"a.txt", "b.txt"} and outcome.messages == []
    assert not outcome.tool_verified
