"""Test helpers for restore tests: a realistic source tree, real restic/borg repositories, and damage.

Not a test module: the restic/borg backend tests and the end-to-end restore
tests import these, so every function takes plain paths and returns plain
values, and nothing here depends on pytest fixtures.

* :func:`make_tree` writes a deterministic tree like a comune's file share:
  nested folders, names with spaces, accents and glob characters, sizes from
  0 B to about 2 MB, some files with old modification times.
* :func:`restic_repo` / :func:`borg_repo` initialise a repository and back the
  tree up with the real Debian tools (and say so clearly when they are missing).
* :func:`corrupt_restic_pack` / :func:`corrupt_borg_segment` flip bytes in the
  middle of the largest data file of a repository, as a failing disk would,
  and return what they changed.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

EMPTY = "vuoto.txt"
"""A 0-byte file."""
SPACED = "Protocollo 2023/lettera però più urgente.odt"
"""Spaces and accented letters in the folder and file names."""
NESTED = "Anagrafe/2019/certificati/nascita/atto 0042.txt"
"""A file four folders deep."""
GLOBBY = "Verbali/verbale [bozza] *n.1*?.txt"
"""Characters that are wildcards to restic's --include and to shell-style patterns."""
BIG = "Archivio/backup gestionale.bin"
"""The largest file (~2 MB of incompressible data): most of a repository's data pack/segment."""
OLD = "Ragioneria/mandati 2015.csv"
"""A file last modified in 2015."""
OLD_MTIME = 1_425_380_767.123456789
"""2015-03-03, with sub-second digits: restic keeps nanoseconds, borg prints microseconds."""

FIXED: dict[str, int] = {EMPTY: 0, SPACED: 23_456, NESTED: 1_234, GLOBBY: 777, BIG: 2 * 1024 * 1024 - 4321,
                         OLD: 48_000}
_FOLDERS = ["Tributi", "Tributi/IMU 2022", "Ufficio Tecnico/pratiche edilizie/2021", "Segreteria",
            "Servizi Sociali/àèìòù", "Polizia Locale/verbali", "Anagrafe/2019/certificati", ""]
_STEMS = ["documento", "nota è urgente", "delibera n.", "determina", "ordinanza sindacale", "fattura Ñ"]
_EXTENSIONS = [".pdf", ".odt", ".txt", ".xlsx", ".p7m", ""]
_TOOL_TIMEOUT = 120.0


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _content(rng: random.Random, size: int, text: bool) -> bytes:
    if not text:
        return rng.randbytes(size)
    words = ["comune", "delibera", "città", "protocollo", "perché", "anagrafe", "tributi", "€", "\n"]
    out = bytearray()
    while len(out) < size:
        out += (rng.choice(words) + " ").encode("utf-8")
    return bytes(out[:size])


def make_tree(root: str | os.PathLike, files: int = 40, *, seed: int = 5) -> dict[str, str]:
    """Write a varied tree of at least ``files`` regular files under ``root``; returns ``{relative: sha256}``.

    The constants above (``SPACED``, ``NESTED``, ``GLOBBY``, ``BIG``, ``OLD``,
    ``EMPTY``) are always present; the rest are random (but reproducible for a
    ``seed``): mostly small files, some of a few hundred KB, about one in six
    with an mtime between 2012 and 2020. Relative paths use ``/``.
    """
    base = Path(root)
    rng = random.Random(seed)
    plan: dict[str, int] = dict(FIXED)
    index = 0
    while len(plan) < files:
        index += 1
        roll = rng.random()
        size = (rng.randint(0, 16 * 1024) if roll < 0.7 else rng.randint(16 * 1024, 300 * 1024) if roll < 0.95
                else rng.randint(300 * 1024, 1_500_000))
        folder = rng.choice(_FOLDERS)
        name = f"{rng.choice(_STEMS)} {index:03d}{rng.choice(_EXTENSIONS)}"
        plan[f"{folder}/{name}" if folder else name] = size
    hashes: dict[str, str] = {}
    for number, (relative, size) in enumerate(plan.items()):
        path = base.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _content(rng, size, text=relative.endswith((".txt", ".csv")))
        path.write_bytes(data)
        hashes[relative] = hashlib.sha256(data).hexdigest()
        if relative == OLD:
            os.utime(path, ns=(int(OLD_MTIME * 1e9), int(OLD_MTIME * 1e9)))
        elif relative not in FIXED and number % 6 == 0:
            when = rng.uniform(1_330_000_000, 1_600_000_000)  # 2012..2020
            os.utime(path, (when, when))
    return hashes


def _require(binary: str, package: str) -> str:
    from conftest import require_binary  # fails loudly, and asks for the real_clock mark for restic

    return require_binary(os.path.basename(binary), package) if os.sep not in binary else binary


def _run(argv: list[str], env: dict[str, str], what: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=_TOOL_TIMEOUT)
    if result.returncode not in (0,):
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


def restic_env(password: str) -> dict[str, str]:
    """Environment for running restic by hand against a test repository (no cache, password by env)."""
    return dict(os.environ, RESTIC_PASSWORD=password, RESTIC_PROGRESS_FPS="0.2")


def restic_repo(tmp: str | os.PathLike, source: str | os.PathLike, password: str, *, binary: str = "restic",
                name: str = "restic-repo") -> str:
    """``restic init`` a repository at ``tmp/name`` and back up ``source`` (absolute) once; returns its path."""
    exe = _require(binary, "restic")
    repo = str(Path(tmp, name))
    env = restic_env(password)
    _run([exe, "init", "--repo", repo], env, "restic init")
    _run([exe, "--repo", repo, "--no-cache", "backup", os.path.abspath(source)], env, "restic backup")
    return repo


def borg_env(tmp: str | os.PathLike, password: str | None) -> dict[str, str]:
    """Environment for running borg by hand against a test repository.

    ``BORG_BASE_DIR`` is ``tmp/borg-base`` so tests never write into the real
    ``~/.config/borg``; pass the same value to ``BorgBackend(extra_env=...)``.
    """
    env = dict(os.environ, BORG_BASE_DIR=str(Path(tmp, "borg-base")), BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
               BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes")
    env["BORG_PASSPHRASE"] = password or ""
    return env


def borg_repo(tmp: str | os.PathLike, source: str | os.PathLike, password: str | None, *, binary: str = "borg",
              name: str = "borg-repo", archive: str = "custode-test-{now}", encryption: str = "repokey") -> str:
    """``borg init`` a repository at ``tmp/name`` (``encryption="none"`` when ``password`` is None) and
    ``borg create`` one archive of ``source`` (absolute, so it is stored without the leading ``/``)."""
    exe = _require(binary, "borgbackup")
    repo = str(Path(tmp, name))
    env = borg_env(tmp, password)
    _run([exe, "init", "--encryption", encryption if password is not None else "none", repo], env, "borg init")
    _run([exe, "create", "--compression", "lz4", f"{repo}::{archive}", os.path.abspath(source)], env,
         "borg create")
    return repo


@dataclass(frozen=True)
class Corruption:
    """Which bytes a corrupt_* helper flipped."""

    path: Path
    offset: int
    length: int


def flip_bytes(path: str | os.PathLike, offset: int, length: int = 16) -> Corruption:
    """Invert ``length`` bytes at ``offset`` in place (the file may be read-only, as restic packs are)."""
    target = Path(path)
    os.chmod(target, target.stat().st_mode | 0o200)
    with open(target, "r+b") as handle:
        handle.seek(offset)
        data = handle.read(length)
        handle.seek(offset)
        handle.write(bytes(b ^ 0xFF for b in data))
    return Corruption(target, offset, len(data))


def _largest(files: list[Path], what: str) -> Path:
    if not files:
        raise RuntimeError(f"no {what} found")
    return max(files, key=lambda p: p.stat().st_size)


def corrupt_restic_pack(repo: str | os.PathLike, length: int = 16) -> Corruption:
    """Flip ``length`` bytes in the middle of the largest pack under ``repo/data`` (file contents live there)."""
    pack = _largest([p for p in Path(repo, "data").rglob("*") if p.is_file()], f"restic pack in {repo}/data")
    return flip_bytes(pack, pack.stat().st_size // 2, length)


def corrupt_borg_segment(repo: str | os.PathLike, length: int = 16) -> Corruption:
    """Flip ``length`` bytes in the middle of the largest segment under ``repo/data/<n>/``."""
    segments = [p for p in Path(repo, "data").glob("*/*") if p.is_file() and p.name.isdigit()]
    segment = _largest(segments, f"borg segment in {repo}/data")
    return flip_bytes(segment, segment.stat().st_size // 2, length)
