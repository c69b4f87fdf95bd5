"""Filesystem size, free space and inodes per mount point (node_exporter names).

``statvfs`` on a dead NFS/CIFS server blocks in the kernel and cannot be
interrupted, so every probe runs in its own daemon thread with a deadline. A
mount that misses it is reported as ``device_error`` and not probed again
until that thread returns: one stuck mount costs one thread, not one per
collection.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass

import psutil
from prometheus_client.core import Metric
from pydantic import Field

from custode.collectors._common import matches, nonempty
from custode.collectors.base import Collector, CollectorSettings, Regex, compile_pattern, gauge
from custode.collectors.registry import register

log = logging.getLogger(__name__)

# node_exporter's Linux defaults; the fs types additionally drop in-memory and
# container-plumbing filesystems, whose "fullness" nobody acts on.
DEFAULT_MOUNT_POINTS_EXCLUDE = (
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
DEFAULT_FS_TYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|fuse\.lxcfs|fuse\.portal"
    r"|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|ramfs|rpc_pipefs|securityfs|selinuxfs"
    r"|squashfs|erofs|sysfs|tmpfs|tracefs)$"
)
TIMEOUT_ERROR = "mountpoint timeout"
# The label set the issue and node_exporter up to 1.8 use; newer node_exporter adds a
# ``device_error`` label, but its value changes with the error and so splits series.
LABELS = ("device", "fstype", "mountpoint")


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: str


@dataclass(frozen=True)
class Usage:
    size: float
    free: float
    avail: float
    files: float | None  # inode counts do not exist on Windows
    files_free: float | None


def list_mounts() -> list[Mount]:
    """Every mount the OS reports (module-level so tests can substitute it)."""
    return [Mount(p.device, p.mountpoint, p.fstype, p.opts) for p in psutil.disk_partitions(all=True)]


def statfs(path: str) -> Usage:
    """Space and inodes of the filesystem at ``path``; may block on a dead server."""
    if hasattr(os, "statvfs"):
        st = os.statvfs(path)
        return Usage(size=float(st.f_blocks * st.f_frsize), free=float(st.f_bfree * st.f_frsize),
                     avail=float(st.f_bavail * st.f_frsize), files=float(st.f_files),
                     files_free=float(st.f_ffree))
    usage = psutil.disk_usage(path)
    return Usage(size=float(usage.total), free=float(usage.free), avail=float(usage.free),
                 files=None, files_free=None)


class _Probe(threading.Thread):
    """One ``statfs`` call whose result survives the caller giving up on it."""

    def __init__(self, mountpoint: str) -> None:
        super().__init__(name=f"custode-statfs {mountpoint}", daemon=True)
        self.mountpoint = mountpoint
        self.usage: Usage | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            self.usage = statfs(self.mountpoint)
        except OSError as exc:  # Go-style lowercase text, as node_exporter puts in the label
            self.error = (exc.strerror or str(exc)).lower()
        except Exception as exc:  # noqa: BLE001 - reported as a device error, never lost
            self.error = f"{type(exc).__name__}: {exc}"


class FilesystemSettings(CollectorSettings):
    mount_points_exclude: Regex = DEFAULT_MOUNT_POINTS_EXCLUDE
    fs_types_exclude: Regex = DEFAULT_FS_TYPES_EXCLUDE
    mount_timeout: float = Field(5.0, gt=0, description="Seconds a single statfs may take before "
                                                        "the mount is reported as stuck.")


@register
class FilesystemCollector(Collector):
    name = "filesystem"
    description = "Size, free space, inodes and read-only state per mount point (node_exporter names)."
    Settings = FilesystemSettings
    settings: FilesystemSettings

    def __init__(self, settings: CollectorSettings | None = None) -> None:
        super().__init__(settings)
        self._mount_points_exclude = compile_pattern(self.settings.mount_points_exclude)
        self._fs_types_exclude = compile_pattern(self.settings.fs_types_exclude)
        self._stuck: dict[str, _Probe] = {}  # mountpoint -> probe still blocked in the kernel

    def selected_mounts(self) -> list[Mount]:
        """Mounts to report, one per mount point.

        When a mount point appears twice (a bind or over-mount), the last
        entry wins: it is the one on top, the one statfs actually sees.
        """
        by_mountpoint: dict[str, Mount] = {}
        for mount in list_mounts():
            if sys.platform == "win32" and (not mount.fstype or "cdrom" in mount.options.split(",")):
                continue  # empty card readers and optical drives: nothing to fill
            if matches(self._mount_points_exclude, mount.mountpoint):
                continue
            if matches(self._fs_types_exclude, mount.fstype):
                continue
            by_mountpoint.pop(mount.mountpoint, None)
            by_mountpoint[mount.mountpoint] = mount
        return list(by_mountpoint.values())

    def collect(self) -> list[Metric]:
        mounts = self.selected_mounts()
        probes: dict[str, _Probe] = {}
        for mount in mounts:
            stuck = self._stuck.get(mount.mountpoint)
            if stuck is not None and stuck.is_alive():
                continue
            self._stuck.pop(mount.mountpoint, None)
            probes[mount.mountpoint] = probe = _Probe(mount.mountpoint)
            probe.start()

        # One shared deadline: all probes run in parallel, so the whole
        # collection takes at most mount_timeout however many mounts hang.
        deadline = time.monotonic() + self.settings.mount_timeout
        for probe in probes.values():
            probe.join(max(0.0, deadline - time.monotonic()))
            if probe.is_alive():
                self._stuck[probe.mountpoint] = probe

        families = {
            "device_error": gauge("node_filesystem_device_error",
                                  "Whether an error occurred while getting statistics for the given device.",
                                  LABELS),
            "readonly": gauge("node_filesystem_readonly", "Filesystem read-only status.", LABELS),
            "size": gauge("node_filesystem_size_bytes", "Filesystem size in bytes.", LABELS),
            "free": gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.", LABELS),
            "avail": gauge("node_filesystem_avail_bytes",
                           "Filesystem space available to non-root users in bytes.", LABELS),
            "files": gauge("node_filesystem_files", "Filesystem total file nodes.", LABELS),
            "files_free": gauge("node_filesystem_files_free", "Filesystem total free file nodes.", LABELS),
        }
        for mount in mounts:
            probe = probes.get(mount.mountpoint)
            if probe is None or probe.is_alive():  # stuck before, or just now
                usage, error = None, TIMEOUT_ERROR
            else:
                usage, error = probe.usage, "" if probe.usage is not None else (probe.error or "unknown error")
            labels = [mount.device, mount.fstype, mount.mountpoint]
            if error:
                log.debug("filesystem not readable", extra={"mountpoint": mount.mountpoint, "error": error})
            families["device_error"].add_metric(labels, 1.0 if usage is None else 0.0)
            families["readonly"].add_metric(labels, 1.0 if "ro" in mount.options.split(",") else 0.0)
            if usage is None:
                continue
            families["size"].add_metric(labels, usage.size)
            families["free"].add_metric(labels, usage.free)
            families["avail"].add_metric(labels, usage.avail)
            if usage.files is not None and usage.files_free is not None:
                families["files"].add_metric(labels, usage.files)
                families["files_free"].add_metric(labels, usage.files_free)
        return nonempty(families.values())
