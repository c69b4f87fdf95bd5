"""Storage failures in the words a sysadmin acts on: corrupt, full, read-only, no permission, failing disk.

A raw ``sqlite3.DatabaseError`` traceback names neither the file nor the fix,
and the one piece of advice Custode used to give for every failure ("move the
state database aside") is wrong for all of them but one: on a full disk it
throws away incidents, ticket links and the audit anchor for nothing, and on
a corrupt database it throws away what ``.recover`` could still save. So
every failure is sorted first (:func:`classify`), then explained for the
file it hit (:func:`explain_state`, :func:`explain_file`), naming the
filesystem when it is full or read-only.
"""

from __future__ import annotations

import errno
import getpass
import os
import sqlite3
from enum import StrEnum
from pathlib import Path

from custode.agent.table import human_bytes

__all__ = ["MIN_FREE_BYTES", "Problem", "classify", "explain_file", "explain_state", "free_bytes",
           "is_storage_error", "mount_point", "read_only_filesystem", "recover_command"]

MIN_FREE_BYTES = 1024 * 1024
"""Below this much space free for an unprivileged user, a filesystem counts as full: SQLite may still
fit a transaction in its WAL, but the next checkpoint, audit record or incident will not fit."""


class Problem(StrEnum):
    CORRUPT = "corrupt"
    FULL = "full"
    READ_ONLY = "read-only"
    PERMISSION = "permission"
    IO = "io"
    LOCKED = "locked"
    MISSING = "missing"
    OTHER = "other"


# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_CODES = {
    3: Problem.PERMISSION,   # SQLITE_PERM
    5: Problem.LOCKED,       # SQLITE_BUSY
    6: Problem.LOCKED,       # SQLITE_LOCKED
    8: Problem.READ_ONLY,    # SQLITE_READONLY
    10: Problem.IO,          # SQLITE_IOERR
    11: Problem.CORRUPT,     # SQLITE_CORRUPT
    13: Problem.FULL,        # SQLITE_FULL
    14: Problem.PERMISSION,  # SQLITE_CANTOPEN: refined below (a missing folder, a read-only mount)
    26: Problem.CORRUPT,     # SQLITE_NOTADB
}
_SQLITE_TEXTS = (
    ("malformed", Problem.CORRUPT), ("not a database", Problem.CORRUPT), ("disk is full", Problem.FULL),
    ("readonly", Problem.READ_ONLY), ("read-only", Problem.READ_ONLY), ("unable to open", Problem.PERMISSION),
    ("disk i/o error", Problem.IO), ("is locked", Problem.LOCKED),
)
_ERRNOS = {
    errno.ENOSPC: Problem.FULL, errno.EDQUOT: Problem.FULL, errno.EROFS: Problem.READ_ONLY,
    errno.EACCES: Problem.PERMISSION, errno.EPERM: Problem.PERMISSION, errno.EIO: Problem.IO,
    errno.ENOENT: Problem.MISSING,
}


def classify(exc: BaseException, path: str | os.PathLike[str] | None = None) -> Problem:
    """What kind of storage failure ``exc`` is; ``path`` lets an ambiguous one be refined from the disk.

    An I/O error or "unable to open" on a filesystem with no room left is a
    full disk, and one on a read-only mount is read-only: SQLite reports those
    through the generic codes, and the advice differs."""
    problem = Problem.OTHER
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in _SQLITE_CODES:
            problem = _SQLITE_CODES[code & 0xFF]
        else:
            text = str(exc).lower()
            problem = next((kind for needle, kind in _SQLITE_TEXTS if needle in text), Problem.OTHER)
    elif isinstance(exc, OSError):
        problem = _ERRNOS.get(exc.errno or 0, Problem.IO if exc.errno else Problem.OTHER)
    if path is not None and problem in (Problem.IO, Problem.PERMISSION, Problem.OTHER):
        if not Path(os.path.abspath(path)).parent.exists():
            return Problem.MISSING
        if read_only_filesystem(path):
            return Problem.READ_ONLY
        free = free_bytes(path)
        if free is not None and free < MIN_FREE_BYTES:
            return Problem.FULL
    return problem


def is_storage_error(exc: BaseException) -> bool:
    """A failure of the disk or the file, as opposed to a bug (a constraint, a wrong statement)."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError,
                        sqlite3.NotSupportedError, sqlite3.DataError)):
        return False
    return isinstance(exc, sqlite3.DatabaseError) and classify(exc) is not Problem.OTHER


def _existing(path: str | os.PathLike[str]) -> Path:
    """``path`` or its nearest existing parent: a missing file's filesystem is its folder's."""
    here = Path(os.path.abspath(path))
    while not here.exists() and here.parent != here:
        here = here.parent
    return here


def mount_point(path: str | os.PathLike[str]) -> Path:
    """The mount point of the filesystem holding ``path`` (``/`` when nothing nearer is mounted)."""
    here = _existing(path).resolve()
    if here.is_file():
        here = here.parent
    mounted = _mount_table()
    if mounted:  # a bind mount is not seen by ismount (same device as its parent); the table has it
        return max((m for m in mounted if here == m or m in here.parents), key=lambda m: len(m.parts),
                   default=Path(here.anchor))
    while not os.path.ismount(here) and here.parent != here:
        here = here.parent
    return here


def _mount_table() -> list[Path]:
    """Mount points from /proc/self/mounts (Linux), octal escapes decoded; empty elsewhere."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            points = [line.split()[1] for line in fh if len(line.split()) > 1]
    except OSError:
        return []
    return [Path(point.encode("latin-1", "replace").decode("unicode_escape")) for point in points]


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged user may still write on ``path``'s filesystem (None where statvfs is missing)."""
    if not hasattr(os, "statvfs"):  # pragma: no cover - Windows
        return None
    try:
        stats = os.statvfs(_existing(path))
    except OSError:
        return None
    return int(stats.f_bavail * stats.f_frsize)


def read_only_filesystem(path: str | os.PathLike[str]) -> bool:
    if not hasattr(os, "statvfs"):  # pragma: no cover - Windows
        return False
    try:
        return bool(os.statvfs(_existing(path)).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - a uid with no passwd entry
        return f"uid {os.geteuid()}" if hasattr(os, "geteuid") else "this user"


def _detail(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _full(path: Path, what: str) -> str:
    mount = mount_point(path)
    free = free_bytes(path)
    left = f", {human_bytes(free)} free" if free is not None else ""
    return (f"cannot write {what} {path}: the disk is full (filesystem {mount}{left}). "
            f"Free space on {mount} (old logs, old backups, core dumps); Custode goes on by itself once there "
            f"is room. Do not move or delete {path.name}: it is not damaged")


def _read_only(path: Path, what: str, extra: str = "") -> str:
    if read_only_filesystem(path):
        return (f"cannot write {what} {path}: filesystem {mount_point(path)} is mounted read-only "
                "(the kernel does this after a disk error: see dmesg). Fix the disk, remount it read-write "
                "and restart Custode")
    return (f"cannot write {what} {path}: the file or its folder {path.parent} is read-only for user {_user()}. "
            f"Give {_user()} write access to both{extra}")


def _permission(path: Path, what: str, extra: str = "") -> str:
    return (f"cannot open {what} {path}: permission denied for user {_user()}. Give the user the service runs "
            f"as read and write access to {path} and its folder {path.parent}{extra} (chown, or run Custode as "
            "the file's owner)")


def recover_command(path: str | os.PathLike[str]) -> str:
    """The shell line that copies what SQLite can still read into a new database beside ``path``."""
    source = Path(path)
    target = source.with_name(f"{source.stem}-recovered{source.suffix or '.db'}")
    return f'sqlite3 {source} ".recover" | sqlite3 {target}'


def explain_state(exc: BaseException, path: str | os.PathLike[str]) -> str:
    """One paragraph on why the state database at ``path`` failed and what to do; never a traceback."""
    db = Path(path)
    problem = classify(exc, db)
    wal = f" (SQLite also writes {db.name}-wal and {db.name}-shm there)"
    if problem is Problem.CORRUPT:
        return (f"state database {db} is corrupt ({_detail(exc)}). Stop Custode, then restore {db.name} from "
                f"the last backup, or save what is still readable with: {recover_command(db)} and put the "
                f"recovered file in place of {db.name}; then start Custode. (.recover needs a sqlite3 shell "
                "built with it; where it says \"no such table: sqlite_dbpage\", as Debian 12's does, use the "
                "sqlite3 of sqlite.org's tools.) Open incidents, ticket links and the audit anchor live in it: "
                "deleting it loses them")
    if problem is Problem.FULL:
        return _full(db, "state database")
    if problem is Problem.READ_ONLY:
        return _read_only(db, "state database", wal)
    if problem is Problem.PERMISSION:
        return _permission(db, "state database", wal)
    if problem is Problem.IO:
        return (f"disk I/O error on state database {db} ({_detail(exc)}): the disk may be failing. Check "
                f"dmesg and smartctl; if the error stays, restore {db.name} from backup onto a sound disk")
    if problem is Problem.LOCKED:
        return (f"state database {db} stayed locked by another process for more than 10 s ({_detail(exc)}): "
                "another custode command may be in the middle of a long job; try again")
    if problem is Problem.MISSING:
        return f"state database {db} or its folder does not exist ({_detail(exc)}); check state.path in the config"
    return f"state database {db} cannot be used: {_detail(exc)}"


def explain_file(exc: BaseException, path: str | os.PathLike[str], what: str = "audit log") -> str:
    """The same for a plain file Custode writes (the audit log): full, read-only, permission, I/O."""
    file = Path(path)
    problem = classify(exc, file)
    if problem is Problem.FULL:
        return _full(file, what)
    if problem is Problem.READ_ONLY:
        return _read_only(file, what)
    if problem is Problem.PERMISSION:
        return _permission(file, what)
    if problem is Problem.IO:
        return (f"disk I/O error on {what} {file} ({_detail(exc)}): the disk may be failing; "
                "check dmesg and smartctl")
    if problem is Problem.MISSING:
        return f"{what} {file} cannot be created: its folder {file.parent} does not exist ({_detail(exc)})"
    return f"cannot write {what} {file}: {_detail(exc)}"
