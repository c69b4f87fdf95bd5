"""An observation of the agent's own host, read from its metric cache after a collection cycle.

The local collectors publish node_exporter's names (``node_filesystem_*``,
``node_memory_*``) and Custode's (``custode_cpu_utilisation_ratio``,
``custode_services_failed``, ``custode_smart_healthy``); reading those from
the cache costs no I/O and sees exactly what Prometheus and the checks see.
They become the same :class:`Observation` a farm poll becomes, so a server
with its own agent has the same daily facts as a polled one. Facts no local
collector gathers (antivirus, pending updates, the Windows event log) stay
unmeasured (None) here, never zero; on Windows the agent's run of the farm's
probe on its own host folds them into the row itself
(:func:`custode.agent.history.service.record_agent_facts`).
"""

from __future__ import annotations

import platform
import sys

from custode.agent.history.model import FilesystemSeen, Observation
from custode.agent.metric_cache import MetricCache, by_label, samples


def local_observation(cache: MetricCache, at: float, os_name: str | None = None,
                      problems: tuple[str, ...] = ()) -> Observation:
    """What the cache holds now of this host's collectors, as one observation made at ``at``."""
    busy = samples(cache.families("cpu"), "custode_cpu_utilisation_ratio")
    memory = cache.families("memory")
    total = samples(memory, "node_memory_MemTotal_bytes")
    available = samples(memory, "node_memory_MemAvailable_bytes")
    used = None
    if total and available and total[0][1] > 0:
        used = 100 * (1 - available[0][1] / total[0][1])
    filesystem = cache.families("filesystem")
    sizes = by_label(filesystem, "node_filesystem_size_bytes", "mountpoint")
    filesystems = tuple(FilesystemSeen(labels["mountpoint"], avail, sizes[labels["mountpoint"]])
                        for labels, avail in samples(filesystem, "node_filesystem_avail_bytes")
                        if sizes.get(labels["mountpoint"], 0) > 0)
    failed = samples(cache.families("services"), "custode_services_failed")
    healthy = samples(cache.families("smart"), "custode_smart_healthy")
    return Observation(
        at=at, os=os_name,
        cpu_percent=100 * busy[0][1] if busy else None,
        memory_used_percent=used, memory_total_bytes=total[0][1] if used is not None else None,
        filesystems=filesystems,
        failed_services=int(sum(value for _, value in failed)) if failed else None,
        unhealthy_disks=sum(1 for _, value in healthy if value < 1) if healthy else None,
        problems=problems)


def local_os_name() -> str:
    """This host's OS as people read it (``Debian GNU/Linux 12 (bookworm)``), like a farm poll names it.

    Read once when the agent starts (a file or the registry), never per cycle."""
    if sys.platform.startswith("linux"):
        try:
            pretty = platform.freedesktop_os_release().get("PRETTY_NAME")
        except OSError:
            pretty = None
        return pretty or f"Linux {platform.release()}"
    if sys.platform == "win32":
        try:
            import winreg

            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Windows NT\CurrentVersion") as key:
                product = str(winreg.QueryValueEx(key, "ProductName")[0])
            return product if product.startswith("Microsoft") else f"Microsoft {product}"
        except OSError:
            return f"Microsoft Windows {platform.release()}"
    return platform.platform(terse=True)
