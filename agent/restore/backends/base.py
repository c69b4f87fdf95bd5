"""The contract of a backup backend: find the latest backup, describe files in it, restore a few.

Sampling, hashing, comparison and the certificate are the engine's job, so a
new backup product needs only these four methods. Backends never raise for a
single file that fails to restore (that goes into ``RestoreOutcome.errors``);
they raise :class:`RestoreError` only when the whole test cannot go on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from custode.agent.restore.files import FileSystem
from custode.agent.restore.model import ManifestEntry, RestoreOutcome, Snapshot


class Backend(ABC):
    kind: str
    """restic, borg, mirror, command."""

    mtime_tolerance: float = 0.0
    """Seconds by which the backup's mtime may differ from the source's for an unchanged file
    (2 s for copies on FAT/SMB shares; 0 for tools that store the mtime exactly)."""

    fs: FileSystem
    """Where the source tree and the scratch directory live (this machine, or a remote host)."""

    @abstractmethod
    def tool_version(self) -> str:
        """``restic 0.14.0 …``: goes into the certificate; RestoreError when the tool is missing."""

    @abstractmethod
    def latest_snapshot(self) -> Snapshot:
        """The most recent backup of the set; RestoreError when there is none."""

    @abstractmethod
    def manifest(self, snapshot: Snapshot, paths: list[str]) -> dict[str, ManifestEntry]:
        """Entries for those of ``paths`` (relative to the source root) present in the backup."""

    @abstractmethod
    def restore(self, snapshot: Snapshot, paths: list[str], scratch: str) -> RestoreOutcome:
        """Restore ``paths`` below ``scratch`` (an empty directory on ``fs``) with the tool itself."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once per test. The default does nothing: most backends hold none."""
