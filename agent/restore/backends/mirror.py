"""A plain copy on a share or NAS (robocopy /MIR, rsync -a, a NAS replication job).

There is no tool to restore with and no manifest: the copy *is* the backup. So
"restore" copies the sampled files out of the mirror into the scratch folder
(what a sysadmin would do, and what gives the throughput figure), and the
mirror's own size and mtime stand in for a manifest. Mirror tools keep the
source's mtime, so a copy whose mtime equals the source's but whose bytes
differ is damaged; a copy *newer* than its source was written after the sync
(a truncated or overwritten copy) and is compared as well.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from custode.agent.restore.backends.base import Backend
from custode.agent.restore.files import LocalFileSystem
from custode.agent.restore.model import ManifestEntry, RestoreError, RestoreOutcome, Snapshot


class MirrorBackend(Backend):
    kind = "mirror"
    mtime_tolerance = 2.0  # FAT and some SMB servers store mtimes with 2 s granularity

    def __init__(self, copy_root: str, source: str) -> None:
        self.copy_root = copy_root
        self.source = source
        self.fs = LocalFileSystem()

    def tool_version(self) -> str:
        from custode.agent import __version__

        return f"Custode {__version__} direct comparison of source and copy"

    def latest_snapshot(self) -> Snapshot:
        """The copy's time is its newest file: the last sync copied at least that file."""
        if not Path(self.copy_root).is_dir():
            raise RestoreError(f"the mirror folder {self.copy_root} does not exist or is not mounted; check the "
                               "share (mount, credentials) or fix 'repository' in the restore set")
        walker = LocalFileSystem()
        newest = max((entry.mtime for entry in walker.walk(self.copy_root)), default=None)
        if newest is None:
            raise RestoreError(f"the mirror folder {self.copy_root} is empty: the copy job has never run or "
                               "writes elsewhere")
        return Snapshot(id=f"mirror:{self.copy_root}", time=newest, paths=[self.source])

    def _copy_of(self, relative: str) -> str:
        return self.fs.join(self.copy_root, relative)

    def manifest(self, snapshot: Snapshot, paths: list[str]) -> dict[str, ManifestEntry]:
        entries: dict[str, ManifestEntry] = {}
        for relative in paths:
            try:
                info = os.stat(self._copy_of(relative), follow_symlinks=False)
            except OSError:
                continue
            entries[relative] = ManifestEntry(size=info.st_size, mtime=info.st_mtime_ns / 1e9)
        return entries

    def restore(self, snapshot: Snapshot, paths: list[str], scratch: str) -> RestoreOutcome:
        outcome = RestoreOutcome()
        started = time.monotonic()
        for relative in paths:
            target = Path(self.fs.join(scratch, relative))
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self._copy_of(relative), target)
                outcome.restored[relative] = str(target)
            except OSError as exc:
                outcome.errors[relative] = f"cannot copy from the mirror: {exc.strerror or exc}"
        outcome.seconds = time.monotonic() - started
        return outcome
