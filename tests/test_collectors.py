"""Host collectors: live behaviour on this machine, pure parsers on fixtures.

Fake ``systemctl``/``smartctl`` programs stand in for the real ones so the
whole command path (arguments, exit codes, fallbacks) is exercised without
root, disks or systemd.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
from collections import namedtuple
from pathlib import Path
from typing import Any, Iterable

import psutil
import pytest
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from pydantic import ValidationError

from custode.collectors import (
    boottime,
    cpu,
    diskstats,
    filesystem,
    hwmon,
    loadavg,
    memory,
    netdev,
    registry,
    selfmetrics,
    services,
    smart,
)
from custode.collectors.base import CollectorUnavailable

DATA = Path(__file__).parent / "data" / "collectors"
LINUX = sys.platform.startswith("linux")
POSIX = os.name == "posix"

OUR_COLLECTORS = {
    "boottime": boottime.BoottimeCollector, "cpu": cpu.CpuCollector, "diskstats": diskstats.DiskstatsCollector,
    "filesystem": filesystem.FilesystemCollector, "hwmon": hwmon.HwmonCollector,
    "loadavg": loadavg.LoadavgCollector, "memory": memory.MemoryCollector, "netdev": netdev.NetdevCollector,
    "self": selfmetrics.SelfCollector, "services": services.ServicesCollector, "smart": smart.SmartCollector,
}


# -- helpers -----------------------------------------------------------------

class _Families:
    """The smallest thing generate_latest accepts: an object with collect()."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> list[Metric]:
        return self.families


def render(families: Iterable[Metric]) -> str:
    return generate_latest(_Families(families)).decode()


def sample_lines(families: Iterable[Metric]) -> list[str]:
    return [line for line in render(families).splitlines() if line and not line.startswith("#")]


def by_name(families: list[Metric]) -> dict[str, Metric]:
    names = [f.name for f in families]
    assert len(names) == len(set(names)), f"a family is emitted twice: {names}"
    return {f.name: f for f in families}


def values(family: Metric, name: str | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted label items: value} of the samples named ``name`` (default: the family's own)."""
    wanted = name or (family.name + "_total" if family.type == "counter" else family.name)
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == wanted}


def write_program(directory: Path, name: str, body: str) -> str:
    """A fake command-line tool: a Python script run by this interpreter."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\nimport json, sys\nDATA = {str(DATA)!r}\n{body}")
    path.chmod(0o755)
    return str(path)


needs_posix_programs = pytest.mark.skipif(not POSIX, reason="fake programs are POSIX scripts")


# -- registry ----------------------------------------------------------------

def test_all_host_collectors_are_registered_with_their_defaults() -> None:
    available = registry.available()
    for name, cls in OUR_COLLECTORS.items():
        assert available[name] is cls
        assert cls.description
        # These keys belong to the runner (see custode.agent.config_loader); a setting so named would be shadowed.
        assert not {"enabled", "interval", "timeout"} & set(cls.Settings.model_fields), name
    assert smart.SmartCollector.default_interval == 300
    assert smart.SmartCollector.default_timeout == 60
    assert selfmetrics.SelfCollector.default_interval == 15


# -- cpu ---------------------------------------------------------------------

def test_cpu_has_one_idle_counter_per_logical_cpu() -> None:
    families = by_name(cpu.CpuCollector().collect())
    seconds = families["node_cpu_seconds"]
    assert seconds.type == "counter"
    idle = {dict(k)["cpu"]: v for k, v in values(seconds).items() if dict(k)["mode"] == "idle"}
    assert sorted(idle, key=int) == [str(i) for i in range(psutil.cpu_count())]
    assert all(v > 0 for v in idle.values())
    modes = {dict(k)["mode"] for k in values(seconds)}
    assert modes <= {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
    assert {"user", "system", "idle"} <= modes
    assert values(families["custode_cpu_logical_processors"]) == {(): float(psutil.cpu_count())}
    if LINUX:
        guest = values(families["node_cpu_guest_seconds"])
        assert {dict(k)["mode"] for k in guest} == {"user", "nice"}
    assert "node_cpu_seconds_total{" in render(families.values())


def test_cpu_utilisation_needs_a_baseline_then_stays_within_0_and_1() -> None:
    collector = cpu.CpuCollector()
    assert "custode_cpu_utilisation_ratio" not in by_name(collector.collect())
    end = time.monotonic() + 0.15
    while time.monotonic() < end:  # some busy time, so the ratio has something to measure
        sum(range(1000))
    ratio = values(by_name(collector.collect())["custode_cpu_utilisation_ratio"])[()]
    assert 0.0 < ratio <= 1.0


def test_cpu_busy_time_ignores_contained_guest_time_and_counts_iowait_as_idle() -> None:
    Times = namedtuple("Times", "user nice system idle iowait guest guest_nice")
    busy, total = cpu.busy_and_total([Times(10, 1, 4, 80, 5, 7, 1), Times(5, 0, 5, 90, 0, 0, 0)])
    assert (busy, total) == (25, 200)


def test_cpu_maps_windows_interrupt_and_dpc_to_node_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    Times = namedtuple("Times", "user system idle interrupt dpc")
    monkeypatch.setattr(cpu.psutil, "cpu_times", lambda percpu: [Times(1.0, 2.0, 3.0, 0.5, 0.25)])
    families = by_name(cpu.CpuCollector().collect())
    assert values(families["node_cpu_seconds"]) == {
        (("cpu", "0"), ("mode", mode)): value
        for mode, value in {"user": 1.0, "system": 2.0, "idle": 3.0, "irq": 0.5, "softirq": 0.25}.items()
    }
    assert "node_cpu_guest_seconds" not in families  # no guest time on Windows: no empty family


# -- memory ------------------------------------------------------------------

def test_parse_meminfo_names_and_units_like_node_exporter() -> None:
    text = (DATA / "meminfo.txt").read_text()
    parsed = memory.parse_meminfo(text)
    assert parsed["MemTotal_bytes"] == 16314592 * 1024
    assert parsed["Active_anon_bytes"] == 1398036 * 1024
    assert parsed["Inactive_file_bytes"] == 4947140 * 1024
    assert parsed["Committed_AS_bytes"] == 11874916 * 1024
    assert parsed["HugePages_Total"] == 16  # a page count: no unit, no scaling, no _bytes
    assert parsed["HugePages_Free"] == 12
    assert parsed["Hugepagesize_bytes"] == 2048 * 1024
    assert not any("(" in key or ")" in key for key in parsed)
    assert len(parsed) == len([line for line in text.splitlines() if line.strip()]) == 35


def test_parse_meminfo_rejects_a_malformed_line() -> None:
    with pytest.raises(ValueError, match="invalid line"):
        memory.parse_meminfo("MemTotal: 1 kB extra\n")


def test_memory_collector_reports_available_within_total() -> None:
    families = by_name(memory.MemoryCollector().collect())
    assert all(f.type == "gauge" and f.name.startswith("node_memory_") for f in families.values())
    total = values(families["node_memory_MemTotal_bytes"])[()]
    available = values(families["node_memory_MemAvailable_bytes"])[()]
    assert 0 < available <= total
    assert abs(total - psutil.virtual_memory().total) <= 0.01 * total
    if LINUX:
        assert "node_memory_Active_anon_bytes" in families


def test_memory_fallback_used_off_linux_has_the_common_fields() -> None:
    fields = memory.psutil_meminfo()
    assert set(fields) == {"MemTotal_bytes", "MemAvailable_bytes", "MemFree_bytes", "SwapTotal_bytes",
                           "SwapFree_bytes"}
    assert fields["MemAvailable_bytes"] <= fields["MemTotal_bytes"]
    assert fields["SwapFree_bytes"] <= fields["SwapTotal_bytes"]


# -- filesystem --------------------------------------------------------------

FS_LABELS = {"device", "mountpoint", "fstype"}


def test_filesystem_reports_real_mounts_with_avail_within_size() -> None:
    families = by_name(filesystem.FilesystemCollector().collect())
    size = values(families["node_filesystem_size_bytes"])
    avail = values(families["node_filesystem_avail_bytes"])
    assert size, "no filesystem reported at all"
    for labels, total in size.items():
        assert set(dict(labels)) == FS_LABELS
        assert 0 <= avail[labels] <= total
    for family in families.values():
        assert family.type == "gauge"
        for sample in family.samples:
            assert sample.labels["fstype"] not in {"tmpfs", "proc", "sysfs", "devtmpfs", "devpts", "cgroup"}
            assert not sample.labels["mountpoint"].startswith(("/proc", "/sys", "/dev/"))
    if POSIX:
        assert values(families["node_filesystem_files"]).keys() == size.keys()


def _mount(mountpoint: str, fstype: str = "ext4", device: str = "/dev/sda1", options: str = "rw") -> Any:
    return filesystem.Mount(device, mountpoint, fstype, options)


FAKE_USAGE = filesystem.Usage(size=1000.0, free=400.0, avail=300.0, files=50.0, files_free=20.0)


@pytest.fixture
def fake_mounts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    mounts = [
        _mount("/"),
        _mount("/proc", "proc", "proc"),
        _mount("/dev/shm", "tmpfs", "tmpfs"),
        _mount("/run/user/1000", "tmpfs", "tmpfs"),
        _mount("/var/lib/docker/overlay2/abc/merged", "overlay", "overlay"),
        _mount("/srv", device="/dev/sdb1"),
        _mount("/srv", device="/dev/sdc1"),  # mounted over the first: only this one is visible
        _mount("/mnt/dvd", "udf", "/dev/sr0", "ro,nosuid"),
    ]
    monkeypatch.setattr(filesystem, "list_mounts", lambda: list(mounts))
    monkeypatch.setattr(filesystem, "statfs", lambda path: FAKE_USAGE)
    return mounts


def _mountpoints(families: list[Metric], name: str = "node_filesystem_size_bytes") -> dict[str, dict[str, str]]:
    family = by_name(families)[name]
    result = {s.labels["mountpoint"]: s.labels for s in family.samples}
    assert len(result) == len(family.samples), "duplicate mount point"
    return result


def test_filesystem_default_excludes_and_duplicate_mountpoints(fake_mounts: list[Any]) -> None:
    families = filesystem.FilesystemCollector().collect()
    mounts = _mountpoints(families)
    assert set(mounts) == {"/", "/srv", "/mnt/dvd"}
    assert mounts["/srv"]["device"] == "/dev/sdc1"
    readonly = {s.labels["mountpoint"]: s.value for s in by_name(families)["node_filesystem_readonly"].samples}
    assert readonly == {"/": 0.0, "/srv": 0.0, "/mnt/dvd": 1.0}
    sizes = values(by_name(families)["node_filesystem_size_bytes"])
    assert set(sizes.values()) == {1000.0}
    assert len(set(sample_lines(families))) == len(sample_lines(families))


def test_filesystem_exclude_settings_are_applied(fake_mounts: list[Any]) -> None:
    settings = filesystem.FilesystemCollector.Settings(mount_points_exclude=r"^/srv$", fs_types_exclude=r"^udf$")
    assert set(_mountpoints(filesystem.FilesystemCollector(settings).collect())) == {
        "/", "/proc", "/dev/shm", "/run/user/1000", "/var/lib/docker/overlay2/abc/merged"}
    nothing_excluded = filesystem.FilesystemCollector.Settings(mount_points_exclude=None, fs_types_exclude=None)
    assert len(_mountpoints(filesystem.FilesystemCollector(nothing_excluded).collect())) == 7


def test_filesystem_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="invalid regular expression"):
        filesystem.FilesystemCollector.Settings(fs_types_exclude="^(tmpfs")
    with pytest.raises(ValidationError):
        filesystem.FilesystemCollector.Settings(mount_timeout=0)
    with pytest.raises(ValidationError):
        filesystem.FilesystemCollector.Settings(mount_point_exclude="^/x")  # typo: unknown key


def test_filesystem_statfs_error_is_a_device_error(
        fake_mounts: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def statfs(path: str) -> Any:
        if path == "/srv":
            raise PermissionError(13, "Permission denied")
        return FAKE_USAGE

    monkeypatch.setattr(filesystem, "statfs", statfs)
    families = filesystem.FilesystemCollector().collect()
    errors = _mountpoints(families, "node_filesystem_device_error")
    device_error = values(by_name(families)["node_filesystem_device_error"])
    assert device_error[tuple(sorted(errors["/srv"].items()))] == 1
    assert device_error[tuple(sorted(errors["/"].items()))] == 0
    assert "/srv" in _mountpoints(families, "node_filesystem_readonly")  # still known, like node_exporter
    assert "/srv" not in _mountpoints(families)


def test_filesystem_stuck_mount_times_out_and_is_not_probed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    calls: list[str] = []
    STUCK = ("/mnt/nfs", "/mnt/cifs")

    def statfs(path: str) -> Any:
        calls.append(path)
        if path in STUCK:
            release.wait(10)  # a dead NFS/CIFS server
        return FAKE_USAGE

    monkeypatch.setattr(filesystem, "list_mounts", lambda: [
        _mount("/"), _mount("/mnt/nfs", "nfs4", "nas:/export"), _mount("/mnt/cifs", "cifs", "//nas/share")])
    monkeypatch.setattr(filesystem, "statfs", statfs)
    timeout = 0.4
    collector = filesystem.FilesystemCollector(filesystem.FilesystemCollector.Settings(mount_timeout=timeout))

    def stuck_threads() -> int:
        return sum(t.name.startswith("custode-statfs /mnt/") and t.is_alive() for t in threading.enumerate())

    try:
        for attempt in range(2):
            start = time.monotonic()
            families = collector.collect()
            elapsed = time.monotonic() - start
            # Probes run in parallel: two stuck mounts cost one timeout, not two.
            assert elapsed < timeout + 0.3, f"collect {attempt} took {elapsed:.2f}s"
            errors = _mountpoints(families, "node_filesystem_device_error")
            device_error = values(by_name(families)["node_filesystem_device_error"])
            assert {device_error[tuple(sorted(errors[m].items()))] for m in STUCK} == {1.0}
            assert set(_mountpoints(families)) == {"/"}  # no size for the stuck ones
            assert [calls.count(m) for m in STUCK] == [1, 1], "a stuck mount was probed again"
            assert stuck_threads() == 2
        assert elapsed < 0.2  # the second collect does not wait for the stuck mounts again

        release.set()  # the server comes back: the next collect probes it again
        for thread in threading.enumerate():
            if thread.name.startswith("custode-statfs /mnt/"):
                thread.join(2)
        families = collector.collect()
        assert set(_mountpoints(families)) == {"/", *STUCK}
        assert [calls.count(m) for m in STUCK] == [2, 2]
    finally:
        release.set()


# -- diskstats ---------------------------------------------------------------

LinuxDisk = namedtuple("LinuxDisk", "read_count write_count read_bytes write_bytes read_time write_time "
                                    "read_merged_count write_merged_count busy_time")
WindowsDisk = namedtuple("WindowsDisk", "read_count write_count read_bytes write_bytes read_time write_time")


def test_diskstats_excludes_partitions_by_default_and_scales_times(monkeypatch: pytest.MonkeyPatch) -> None:
    disk = LinuxDisk(10, 20, 4096, 8192, 1500, 2500, 1, 2, 3000)
    devices = ["sda", "sda1", "nvme0n1", "nvme0n1p2", "loop0", "zram0", "dm-0", "md127"]
    monkeypatch.setattr(diskstats.psutil, "disk_io_counters",
                        lambda perdisk: {name: disk for name in devices})
    families = by_name(diskstats.DiskstatsCollector().collect())
    assert all(f.type == "counter" for f in families.values())
    reads = values(families["node_disk_reads_completed"])
    assert {dict(k)["device"] for k in reads} == {"sda", "nvme0n1", "dm-0", "md127"}
    sda = (("device", "sda"),)
    assert values(families["node_disk_read_time_seconds"])[sda] == 1.5
    assert values(families["node_disk_write_time_seconds"])[sda] == 2.5
    assert values(families["node_disk_io_time_seconds"])[sda] == 3.0
    assert values(families["node_disk_written_bytes"])[sda] == 8192
    text = render(families.values())
    assert 'node_disk_io_time_seconds_total{device="sda"} 3.0' in text
    assert "_total_total" not in text


def test_diskstats_device_exclude_setting_and_windows_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diskstats.psutil, "disk_io_counters", lambda perdisk: {
        "PhysicalDrive0": WindowsDisk(1, 2, 3, 4, 5, 6), "PhysicalDrive1": WindowsDisk(1, 2, 3, 4, 5, 6)})
    settings = diskstats.DiskstatsCollector.Settings(device_exclude="1$")
    families = by_name(diskstats.DiskstatsCollector(settings).collect())
    assert {dict(k)["device"] for k in values(families["node_disk_reads_completed"])} == {"PhysicalDrive0"}
    assert "node_disk_io_time_seconds" not in families  # busy time unknown: absent, not 0


def test_diskstats_without_disks_is_empty_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diskstats.psutil, "disk_io_counters", lambda perdisk: None)
    assert diskstats.DiskstatsCollector().collect() == []


def test_diskstats_live_devices_respect_the_default_exclude() -> None:
    families = diskstats.DiskstatsCollector().collect()
    pattern = diskstats.DEFAULT_DEVICE_EXCLUDE
    for family in families:
        for sample in family.samples:
            assert set(sample.labels) == {"device"}
            assert not re.search(pattern, sample.labels["device"])
            assert sample.value >= 0


# -- netdev ------------------------------------------------------------------

def test_netdev_reports_every_interface_including_loopback() -> None:
    families = by_name(netdev.NetdevCollector().collect())
    assert set(families) == {f"node_network_{d}_{what}" for d in ("receive", "transmit")
                             for what in ("bytes", "packets", "errs", "drop")}
    assert all(f.type == "counter" for f in families.values())
    devices = {dict(k)["device"] for k in values(families["node_network_receive_bytes"])}
    assert devices == set(psutil.net_io_counters(pernic=True))
    if LINUX:
        assert "lo" in devices
    assert all(v >= 0 for f in families.values() for v in values(f).values())


def test_netdev_device_exclude() -> None:
    settings = netdev.NetdevCollector.Settings(device_exclude="^lo$")
    families = by_name(netdev.NetdevCollector(settings).collect())
    assert "lo" not in {dict(k)["device"] for k in values(families["node_network_transmit_packets"])}


# -- loadavg / boottime ------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "getloadavg"), reason="no load average on this OS")
def test_loadavg_reports_three_gauges() -> None:
    families = by_name(loadavg.LoadavgCollector().collect())
    assert set(families) == {"node_load1", "node_load5", "node_load15"}
    assert all(values(f)[()] >= 0 for f in families.values())


def test_loadavg_is_unavailable_without_getloadavg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "getloadavg", raising=False)
    with pytest.raises(CollectorUnavailable, match="Windows"):
        loadavg.LoadavgCollector().collect()


def test_boottime_is_consistent_with_the_clock() -> None:
    before = time.time()
    families = by_name(boottime.BoottimeCollector().collect())
    boot = values(families["node_boot_time_seconds"])[()]
    now = values(families["node_time_seconds"])[()]
    uptime = values(families["custode_uptime_seconds"])[()]
    assert boot == psutil.boot_time()
    assert before <= now <= time.time()
    assert uptime > 0 and abs(uptime - (now - boot)) < 1e-6


# -- services ----------------------------------------------------------------

def test_parse_systemctl_json_fixture() -> None:
    text = (DATA / "systemctl_failed.json").read_text()
    assert services.parse_systemctl_json(text) == ["backup-nightly.service", "mnt-archivio.mount"]
    running = '[{"unit":"ssh.service","load":"loaded","active":"active","sub":"running","description":"x"}]'
    assert services.parse_systemctl_json(running) == []
    assert services.parse_systemctl_json("[]\n") == []
    with pytest.raises(ValueError):
        services.parse_systemctl_json('{"unit": "x"}')


def test_parse_systemctl_plain_fixture_with_and_without_bullets() -> None:
    text = (DATA / "systemctl_failed.txt").read_text()
    assert services.parse_systemctl_plain(text) == ["backup-nightly.service", "mnt-archivio.mount"]
    bulleted = "● backup-nightly.service loaded failed failed Nightly backup\n" \
               "  ssh.service loaded active running OpenBSD Secure Shell server\n"
    assert services.parse_systemctl_plain(bulleted) == ["backup-nightly.service"]
    assert services.parse_systemctl_plain("") == []


FAKE_SYSTEMCTL = """
args = sys.argv[1:]
assert args[:6] == ["list-units", "--state=failed", "--all", "--no-legend", "--plain", "--no-pager"], args
MODE = {mode!r}
if MODE == "broken":
    sys.stderr.write("Failed to connect to bus: No such file or directory\\n")
    sys.exit(1)
if "--output=json" in args and MODE == "json":
    sys.stdout.write(open(DATA + "/systemctl_failed.json").read())
elif "--output=json" in args and MODE == "rejects-json":
    sys.exit(1)
elif MODE == "none":
    sys.stdout.write("[]\\n" if "--output=json" in args else "")
else:  # old systemd: --output is ignored by list-units, the table comes out
    sys.stdout.write(open(DATA + "/systemctl_failed.txt").read())
"""


def _services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, **settings: Any) -> list[Metric]:
    monkeypatch.setattr(services.sys, "platform", "linux")
    monkeypatch.setattr(services, "systemd_booted", lambda: True)
    path = write_program(tmp_path, "systemctl", FAKE_SYSTEMCTL.format(mode=mode))
    collector = services.ServicesCollector(services.ServicesCollector.Settings(systemctl_path=path, **settings))
    return collector.collect()


@needs_posix_programs
@pytest.mark.parametrize("mode", ["json", "plain", "rejects-json"])
def test_services_reports_failed_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    families = by_name(_services(tmp_path, monkeypatch, mode))
    assert values(families["custode_service_failed"]) == {
        (("manager", "systemd"), ("name", "backup-nightly.service")): 1.0,
        (("manager", "systemd"), ("name", "mnt-archivio.mount")): 1.0,
    }
    assert values(families["custode_services_failed"]) == {(("manager", "systemd"),): 2.0}


@needs_posix_programs
def test_services_count_is_present_and_zero_when_nothing_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    families = by_name(_services(tmp_path, monkeypatch, "none"))
    assert set(families) == {"custode_services_failed"}
    assert values(families["custode_services_failed"]) == {(("manager", "systemd"),): 0.0}


@needs_posix_programs
def test_services_exclude_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    families = by_name(_services(tmp_path, monkeypatch, "json", exclude=r"\.mount$"))
    assert values(families["custode_services_failed"]) == {(("manager", "systemd"),): 1.0}


@needs_posix_programs
def test_services_systemctl_failure_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="Failed to connect to bus"):
        _services(tmp_path, monkeypatch, "broken")


def test_services_unavailable_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.sys, "platform", "linux")
    monkeypatch.setattr(services, "systemd_booted", lambda: False)
    with pytest.raises(CollectorUnavailable, match="systemd is not running"):
        services.ServicesCollector().collect()
    monkeypatch.setattr(services, "systemd_booted", lambda: True)
    missing = services.ServicesCollector.Settings(systemctl_path="/nonexistent/systemctl")
    with pytest.raises(CollectorUnavailable, match="not found"):
        services.ServicesCollector(missing).collect()


def test_services_live_matches_whether_systemd_runs() -> None:
    if not LINUX:
        pytest.skip("Linux behaviour")
    collector = services.ServicesCollector()
    if services.systemd_booted() and shutil.which("systemctl"):
        assert "custode_services_failed" in by_name(collector.collect())
    else:
        with pytest.raises(CollectorUnavailable):
            collector.collect()


# -- hwmon -------------------------------------------------------------------

Temp = namedtuple("Temp", "label current high critical")
Fan = namedtuple("Fan", "label current")


def test_hwmon_live_capability_matches_psutil() -> None:
    families = by_name(hwmon.HwmonCollector().collect())
    reader = getattr(psutil, "sensors_temperatures", None)
    has_sensors = bool((reader() if reader else {}) or getattr(psutil, "sensors_fans", dict)())
    assert values(families["custode_capability_available"]) == {
        (("capability", "sensors"), ("collector", "hwmon")): float(has_sensors)}
    assert has_sensors or set(families) == {"custode_capability_available"}


def test_hwmon_labels_temperatures_and_fans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hwmon.psutil, "sensors_temperatures", lambda: {
        "coretemp": [Temp("Package id 0", 45.0, 80.0, 100.0), Temp("Core 0", 44.0, 80.0, 100.0),
                     Temp("Core 0", 47.0, 80.0, 100.0)],  # second package: same label
        "acpitz": [Temp("", 27.8, None, None), Temp("", 29.8, None, 105.0)],
    }, raising=False)
    monkeypatch.setattr(hwmon.psutil, "sensors_fans", lambda: {"dell_smm": [Fan("Processor Fan", 2400)]},
                        raising=False)
    families = by_name(hwmon.HwmonCollector().collect())
    temps = {(dict(k)["chip"], dict(k)["sensor"]): v for k, v in values(families["node_hwmon_temp_celsius"]).items()}
    assert temps == {("coretemp", "Package id 0"): 45.0, ("coretemp", "Core 0"): 44.0,
                     ("coretemp", "Core 0#2"): 47.0, ("acpitz", "temp1"): 27.8, ("acpitz", "temp2"): 29.8}
    crit = {dict(k)["sensor"] for k in values(families["node_hwmon_temp_crit_celsius"])}
    assert "temp1" not in crit and "temp2" in crit
    assert len(values(families["node_hwmon_temp_max_celsius"])) == 3
    assert values(families["node_hwmon_fan_rpm"]) == {(("chip", "dell_smm"), ("sensor", "Processor Fan")): 2400}
    assert values(families["custode_capability_available"])[
        (("capability", "sensors"), ("collector", "hwmon"))] == 1.0


def test_hwmon_without_sensor_support_succeeds_with_capability_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(hwmon.psutil, "sensors_temperatures", raising=False)
    monkeypatch.delattr(hwmon.psutil, "sensors_fans", raising=False)
    families = hwmon.HwmonCollector().collect()
    assert sample_lines(families) == [
        'custode_capability_available{capability="sensors",collector="hwmon"} 0.0']


# -- smart -------------------------------------------------------------------

def test_parse_smartctl_json_passed_ata_disk() -> None:
    report = smart.parse_smartctl_json(json.loads((DATA / "smartctl_ata_passed.json").read_text()))
    assert report == smart.SmartReport(device="/dev/sda", type="sat", model="Samsung SSD 860 EVO 500GB",
                                       serial="S3Z1NB0K123456A", healthy=True, temperature_celsius=31.0,
                                       power_on_hours=21042.0, exit_status=0)


def test_parse_smartctl_json_failing_nvme_disk() -> None:
    report = smart.parse_smartctl_json(json.loads((DATA / "smartctl_nvme_failed.json").read_text()))
    assert report.healthy is False
    assert report.exit_status == 8 and report.exit_status & smart.EXIT_DISK_FAILING
    assert (report.device, report.model, report.temperature_celsius, report.power_on_hours) == (
        "/dev/nvme0", "WDC WDS100T2B0C-00PXH0", 47.0, 30112.0)


def test_parse_smartctl_json_without_smart_data() -> None:
    report = smart.parse_smartctl_json({"device": {"name": "/dev/sdz", "type": "scsi"},
                                        "scsi_model_name": "ACME USB", "smartctl": {"exit_status": 4}})
    assert (report.model, report.healthy, report.temperature_celsius, report.exit_status) == (
        "ACME USB", None, None, 4)


def test_smart_without_smartctl_only_reports_the_capability() -> None:
    settings = smart.SmartCollector.Settings(smartctl_path="/nonexistent/smartctl")
    assert sample_lines(smart.SmartCollector(settings).collect()) == [
        'custode_capability_available{capability="smartctl",collector="smart"} 0.0']


FAKE_SMARTCTL = """
args = sys.argv[1:]
if args == ["--scan-open", "--json"]:
    sys.stdout.write(open(DATA + "/smartctl_scan.json").read())
    sys.exit(0)
assert args[:4] == ["--json", "--info", "--health", "--attributes"] and args[4] == "-d", args
kind, name = args[5], args[6]
fixture = "smartctl_nvme_failed.json" if kind == "nvme" else "smartctl_ata_passed.json"
data = json.load(open(DATA + "/" + fixture))
data["device"].update(name=name, type=kind)
print(json.dumps(data))
sys.exit(data["smartctl"]["exit_status"])
"""


@needs_posix_programs
def test_smart_collects_every_scanned_device(tmp_path: Path) -> None:
    path = write_program(tmp_path, "smartctl", FAKE_SMARTCTL)
    families = by_name(smart.SmartCollector(smart.SmartCollector.Settings(smartctl_path=path)).collect())
    devices = {"/dev/sda", "/dev/nvme0", "/dev/bus/0 [megaraid,0]", "/dev/bus/0 [megaraid,1]"}
    exit_status = {dict(k)["device"]: v for k, v in values(families["custode_smart_exit_status"]).items()}
    assert exit_status == {d: (8.0 if d == "/dev/nvme0" else 0.0) for d in devices}
    healthy = {dict(k)["device"]: (dict(k)["serial"], v) for k, v in values(families["custode_smart_healthy"]).items()}
    assert healthy["/dev/nvme0"] == ("2108A1800123", 0.0)
    assert healthy["/dev/sda"] == ("S3Z1NB0K123456A", 1.0)
    assert {dict(k)["device"] for k in values(families["custode_smart_temperature_celsius"])} == devices
    assert values(families["custode_smart_power_on_hours"])[(("device", "/dev/nvme0"),)] == 30112.0
    assert values(families["custode_capability_available"]) == {
        (("capability", "smartctl"), ("collector", "smart")): 1.0}


@needs_posix_programs
def test_smart_too_old_for_json_is_an_error(tmp_path: Path) -> None:
    path = write_program(tmp_path, "smartctl", 'print("smartctl 6.6: unrecognized option --json"); sys.exit(1)\n')
    with pytest.raises(RuntimeError, match="smartmontools 7.0"):
        smart.SmartCollector(smart.SmartCollector.Settings(smartctl_path=path)).collect()


def test_smart_live_capability_matches_path() -> None:
    families = by_name(smart.SmartCollector().collect())
    has_smartctl = shutil.which("smartctl") is not None
    assert values(families["custode_capability_available"]) == {
        (("capability", "smartctl"), ("collector", "smart")): float(has_smartctl)}


# -- self --------------------------------------------------------------------

def test_self_metrics_describe_this_process() -> None:
    from custode import agent
    families = by_name(selfmetrics.SelfCollector().collect())
    assert values(families["process_resident_memory_bytes"])[()] > 1_000_000
    assert values(families["process_virtual_memory_bytes"])[()] >= values(families["process_resident_memory_bytes"])[()]
    assert families["process_cpu_seconds"].type == "counter"
    assert values(families["process_cpu_seconds"])[()] > 0
    start = values(families["process_start_time_seconds"])[()]
    assert psutil.boot_time() - 1 <= start <= time.time()
    assert values(families["custode_process_threads"])[()] >= 1
    assert values(families["custode_build_info"]) == {(("version", agent.__version__),): 1.0}
    if POSIX:
        assert values(families["process_open_fds"])[()] >= 3
        assert "process_cpu_seconds_total " in render(families.values())


def test_self_build_info_falls_back_to_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "custode.agent", None)  # makes "from custode.agent import ..." fail
    families = by_name(selfmetrics.SelfCollector().collect())
    assert values(families["custode_build_info"]) == {(("version", "unknown"),): 1.0}


# -- all together ------------------------------------------------------------

def test_all_collectors_render_without_duplicate_samples() -> None:
    everything: list[Metric] = []
    for name, cls in OUR_COLLECTORS.items():
        collector = cls()
        try:
            families = collector.collect()
            if name == "cpu":
                families = collector.collect()  # the second run adds the utilisation ratio
        except CollectorUnavailable:
            continue
        assert isinstance(families, list) and families, name
        by_name(families)  # no family twice within one collector
        everything.extend(families)
    lines = sample_lines(everything)
    series = [line.rsplit(" ", 1)[0] for line in lines]
    duplicates = {s for s in series if series.count(s) > 1}
    assert not duplicates, duplicates
    assert "_total_total" not in "\n".join(series)
