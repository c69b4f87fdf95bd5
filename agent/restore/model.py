"""The values that flow between the sampler, the backends, the comparison and the certificate.

Paths inside a backup set are always *relative to the set's source root* and
use ``/`` as separator, whatever the host's OS: the certificate, the metrics
and the comparison speak one language; each backend and file system maps them
to its own (``/srv/data/a.txt``, ``srv/data/a.txt`` in borg, ``D:\\Dati\\a.txt``).

The results and kinds below are ``StrEnum``: each member is the string the
certificate and the state DB already hold (a file's ``result``,
``restore_tests.trigger``, ``coverage_items.kind``), so old certificates read the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FileResult(StrEnum):
    """What the test found for one sampled file (the certificate's ``files[].result``)."""

    OK = "ok"
    """The restored copy is identical to the source."""
    OK_MANIFEST = "ok_manifest"
    """The source changed (or is unreadable), but the restored copy matches the backup's own record."""
    MISMATCH = "mismatch"
    NOT_RESTORED = "not_restored"
    MISSING = "missing"
    """Older than the backup, yet not in it."""
    SKIPPED = "skipped"
    """Not comparable (newer than the backup, no hash to compare with): not a failure."""


VERIFIED_RESULTS: tuple[FileResult, ...] = (FileResult.OK, FileResult.OK_MANIFEST)
FAILED_RESULTS: tuple[FileResult, ...] = (FileResult.MISMATCH, FileResult.NOT_RESTORED, FileResult.MISSING)
CHECKED_RESULTS: tuple[FileResult, ...] = VERIFIED_RESULTS + FAILED_RESULTS
"""Files that count as checked: every result but ``skipped``."""


class RestoreTrigger(StrEnum):
    """What started a restore test (the certificate's ``run_by.trigger``, ``restore_tests.trigger``)."""

    SCHEDULED = "scheduled"
    """The set's own schedule."""
    MANUAL = "manual"
    """``custode restore-test run``."""


class CoverageKind(StrEnum):
    """What one coverage item is (``coverage_items.kind``, the CSV's ``kind`` column)."""

    FOLDER = "folder"
    """A data folder at the rules' ``depth``."""
    APPLICATION = "application"
    """A folder matching ``application_dirs``."""
    DATABASE = "database"
    """A database file (``database_patterns``) that no included path covers."""


class RestoreError(Exception):
    """A restore test could not run at all (tool missing, repository unreachable, wrong password).

    ``str()`` names the set, what failed and the fix; the test becomes a failed
    certificate with this text in ``errors``, never a silent skip.
    """


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One regular file of the source tree, as seen now."""

    path: str
    size: int
    mtime: float
    """Seconds since the epoch (float; nanosecond sources are rounded)."""


@dataclass(frozen=True)
class Snapshot:
    """The backup a test restores from (restic snapshot, borg archive, the mirror itself)."""

    id: str
    time: float
    """When the backup was taken, seconds since the epoch."""
    paths: list[str] = field(default_factory=list)
    """What the backup includes, as the tool records it (absolute paths on the backed-up host)."""
    hostname: str | None = None


@dataclass(frozen=True)
class ManifestEntry:
    """What the backup recorded about one file."""

    size: int
    mtime: float
    sha256: str | None = None
    """A content hash taken from the backup's own metadata, when the tool offers one (borg does)."""


@dataclass
class RestoreOutcome:
    """What a backend's restore produced."""

    restored: dict[str, str] = field(default_factory=dict)
    """Relative path -> where the restored copy is, on the backend's file system."""
    errors: dict[str, str] = field(default_factory=dict)
    """Relative path -> the tool's complaint about that file (could not restore, integrity error)."""
    messages: list[str] = field(default_factory=list)
    """Errors not tied to one file (the tool aborted, exit code), kept for the certificate."""
    tool_verified: bool = False
    """True when the tool itself checked restored content against its hashes (restic --verify, borg ids)."""
    seconds: float = 0.0
    """Wall time of the restore alone, for the throughput figure."""
