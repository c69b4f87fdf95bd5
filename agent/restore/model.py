"""The values that flow between the sampler, the backends, the comparison and the certificate.

Paths inside a backup set are always *relative to the set's source root* and
use ``/`` as separator, whatever the host's OS: the certificate, the metrics
and the comparison speak one language; each backend and file system maps them
to its own (``/srv/data/a.txt``, ``srv/data/a.txt`` in borg, ``D:\\Dati\\a.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
