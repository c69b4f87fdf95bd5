"""Small source trees and mirror copies for restore-test tests (not a test module)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

SPECIAL_NAMES = ["Protocollo/2026/délibera n. 12 <bozza>.txt", "Anagrafe/archivio & note.csv", "vuoto.txt"]


def make_source(root: Path, files: int = 24, age_days: float = 3.0) -> Path:
    """A tree of varied sizes with a few awkward names; every mtime ``age_days`` or more in the past."""
    root.mkdir(parents=True, exist_ok=True)
    past = time.time() - age_days * 86400
    for i in range(files):
        path = root / f"cartella{i % 4}" / f"file{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(37 * i * i + i))
        os.utime(path, (past - i * 3600, past - i * 3600))
    for i, name in enumerate(SPECIAL_NAMES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"" if name == "vuoto.txt" else f"contenuto {i}\n".encode() * 50)
        os.utime(path, (past, past))
    return root


def write_now(path: Path, data: bytes, clock: Callable[[], float] = time.time) -> None:
    """Write ``data`` as a program would now: its mtime is ``clock``'s (the test's clock), not the kernel's.

    Restore tests judge mtimes against the backup's time. The kernel stamps a
    write with the real day even where .ci/run moves the test's clock 400
    days ahead; stamping it explicitly keeps "written after the backup" true
    on every clock. Files on a "remote" host (this machine over sshd, whose
    programs see the real day) take ``clock=conftest.host_clock``.
    """
    path.write_bytes(data)
    now = clock()
    os.utime(path, (now, now))


def mirror(source: Path, copy: Path) -> Path:
    """What robocopy /MIR or rsync -a leaves: same bytes, same mtimes."""
    shutil.copytree(source, copy, copy_function=shutil.copy2, dirs_exist_ok=True)
    return copy


def damage_silently(path: Path, keep: int = 10) -> None:
    """Truncate a copy but keep its mtime, as bit rot or a broken sync would."""
    info = path.stat()
    with open(path, "r+b") as handle:
        handle.truncate(keep)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
