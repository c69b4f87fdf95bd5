"""Where a restore test reads the source and writes its scratch copy: this machine or a remote host.

The engine hashes source and restored files through this interface, so the same
comparison runs for a local restic repository and for a Windows server reached
over WinRM (where ``RemoteFileSystem`` does the walking and hashing with one
PowerShell script per call instead of one round trip per file).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from custode.agent.restore.model import FileEntry, RestoreError

HASH_CHUNK = 1024 * 1024


class FileSystem(ABC):
    @abstractmethod
    def walk(self, root: str) -> Iterator[FileEntry]:
        """Regular files below ``root`` (paths relative to it); unreadable folders are skipped and counted
        in ``self.walk_errors``. Symlinks are not followed."""

    @abstractmethod
    def sha256(self, paths: list[str]) -> dict[str, str]:
        """Absolute path -> hex digest; a file that cannot be read maps to ``"error: <why>"``."""

    @abstractmethod
    def make_scratch(self, parent: str | None) -> str:
        """A new empty private directory for one restore (under ``parent`` when given)."""

    @abstractmethod
    def remove_tree(self, path: str) -> None:
        """Delete a scratch directory; errors are raised, the engine reports them."""

    @abstractmethod
    def join(self, root: str, relative: str) -> str:
        """The absolute path of ``relative`` (``/``-separated) below ``root``, in this file system's syntax."""

    walk_errors: list[str]


def is_hash_error(value: str) -> bool:
    return value.startswith("error:")


class LocalFileSystem(FileSystem):
    """The machine Custode runs on."""

    def __init__(self) -> None:
        self.walk_errors = []

    def walk(self, root: str) -> Iterator[FileEntry]:
        base = Path(root)
        if not base.is_dir():
            raise RestoreError(f"source folder {root} does not exist or is not a folder; fix 'source' in the "
                               "restore set")
        stack = [base]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError as exc:
                            self.walk_errors.append(f"{entry.path}: {exc.strerror or exc}")
                            continue
                        if stat.S_ISDIR(info.st_mode):
                            stack.append(Path(entry.path))
                        elif stat.S_ISREG(info.st_mode):
                            relative = PurePosixPath(*Path(entry.path).relative_to(base).parts).as_posix()
                            yield FileEntry(relative, info.st_size, info.st_mtime_ns / 1e9)
            except OSError as exc:
                self.walk_errors.append(f"{folder}: {exc.strerror or exc}")

    def sha256(self, paths: list[str]) -> dict[str, str]:
        result: dict[str, str] = {}
        for path in paths:
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as handle:
                    while chunk := handle.read(HASH_CHUNK):
                        digest.update(chunk)
                result[path] = digest.hexdigest()
            except OSError as exc:
                result[path] = f"error: {exc.strerror or exc}"
        return result

    def make_scratch(self, parent: str | None) -> str:
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        return tempfile.mkdtemp(prefix="custode-restore-", dir=parent)

    def remove_tree(self, path: str) -> None:
        shutil.rmtree(path)

    def join(self, root: str, relative: str) -> str:
        return str(Path(root, *PurePosixPath(relative).parts))
