"""The Linux farm probe: its parser on captured-format outputs, and the real script on this machine.

The fixtures under tests/data/farm/linux are outputs in the script's exact
format for hosts this Debian test machine cannot be (Rocky 9 with dnf,
CentOS 7 with yum and a MegaRAID controller, a host with failed units and a
full /var, an old Ubuntu polled as an ordinary user). The live tests run the
real script under dash and bash, and over Debian's OpenSSH server on
loopback, and compare what it reports with this machine's own /proc and
statvfs, so the script and the parser are checked against each other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import host_clock, require_binary
from ssh_server import SshServer

from custode.agent.farm.probes.linux import SCRIPT, SCRIPT_PATH, parse, probe_command
from custode.agent.farm.snapshot import DiskHealth, FailedService, Filesystem, HostSnapshot, OsInfo, ProbeOutputError
from custode.agent.transports import HostConfig, open_transport
from custode.agent.transports.config import SshOptions

DATA = Path(__file__).parent / "data" / "farm" / "linux"
KIB = 1024.0
MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def fixture(name: str) -> str:
    return (DATA / f"{name}.txt").read_text(encoding="utf-8")


def parsed(name: str, **replacements: str) -> HostSnapshot:
    text = fixture(name)
    for old, new in replacements.items():
        assert old in text, f"{old!r} not in fixture {name}"
        text = text.replace(old, new)
    return parse(text, now=1.0)


def replace_section(text: str, name: str, body: str, status: int, stderr: str = "") -> str:
    """``text`` with section ``name``'s content, stderr and exit status replaced."""
    start = text.index(f"@@custode:section {name}\n")
    end = text.index(f"@@custode:exit {name} ", start)
    end = text.index("\n", end) + 1
    block = f"@@custode:section {name}\n{body}\n" + (f"\n@@custode:stderr {name}\n{stderr}\n" if stderr else "")
    return text[:start] + block + f"\n@@custode:exit {name} {status}\n" + text[end:]


# -- fixtures: one per kind of host --------------------------------------------------------


def test_debian12_with_security_updates_and_reboot_required() -> None:
    snap = parsed("debian12_security_reboot")
    assert snap.os == OsInfo(family="linux", name="Debian GNU/Linux 12 (bookworm)", version="12",
                             kernel="6.1.0-18-amd64")
    assert snap.time == 1718000000.25
    assert snap.boot_time == pytest.approx(1718000000.25 - 3898112.47)
    assert snap.cpu_count == 4
    assert len(snap.cpu_seconds) == 4 * 8  # the aggregate "cpu" line is not a CPU
    assert snap.cpu_seconds[("0", "user")] == pytest.approx(120532.73)
    assert snap.cpu_seconds[("1", "idle")] == pytest.approx(3324802.51)
    assert snap.cpu_seconds[("3", "softirq")] == pytest.approx(1003.06)
    assert snap.cpu_seconds[("2", "steal")] == 0.0
    assert {mode for _, mode in snap.cpu_seconds} == set(MODES)
    assert snap.cpu_busy_ratio is None
    assert snap.memory_total_bytes == 16365528 * KIB
    assert snap.memory_available_bytes == 10233812 * KIB
    assert (snap.swap_total_bytes, snap.swap_free_bytes) == (1003516 * KIB, 998908 * KIB)
    assert snap.load == (0.42, 0.35, 0.30)
    assert snap.filesystems == (
        Filesystem("/", "/dev/mapper/vg0-root", "ext4", 30627688 * KIB, 17242848 * KIB,
                   (30627688 - 11805460) * KIB),
        Filesystem("/boot", "/dev/sda1", "ext2", 482922 * KIB, 359677 * KIB, (482922 - 98311) * KIB),
        # /srv/www/htdocs is a bind mount of the same volume: one filesystem, reported once.
        Filesystem("/srv", "/dev/mapper/vg0-srv", "xfs", 209612800 * KIB, 129489344 * KIB,
                   (209612800 - 80123456) * KIB),
    )
    assert snap.failed_services == ()
    updates = snap.updates
    assert updates is not None
    assert (updates.pending, updates.security, updates.reboot_required) == (5, 3, True)
    assert updates.last_installed == 1717590612.0  # dpkg.log's last upgrade, not the status file's mtime
    assert updates.titles == ("libssl3 3.0.11-1~deb12u2", "openssl 3.0.11-1~deb12u2",
                              "linux-image-6.1.0-21-amd64 6.1.90-1", "base-files 12.4+deb12u5",
                              "tzdata 2024a-1~deb12u1")
    assert snap.disks == (DiskHealth("/dev/sda", True, "PASSED", "Samsung SSD 860 EVO 500GB"),
                          DiskHealth("/dev/nvme0", True, "PASSED", "Samsung SSD 970 EVO Plus 1TB"))
    assert snap.antivirus is None and snap.events is None
    assert snap.problems == ()


def test_rocky9_with_dnf() -> None:
    snap = parsed("rocky9_dnf")
    assert snap.os == OsInfo(family="linux", name="Rocky Linux 9.3 (Blue Onyx)", version="9.3",
                             kernel="5.14.0-362.24.1.el9_3.x86_64")
    assert snap.boot_time == 1716900000.0 - 86400.0
    assert snap.cpu_count == 2
    assert snap.cpu_seconds[("1", "irq")] == 0.2 and snap.cpu_seconds[("0", "steal")] == 0.05
    assert snap.memory_available_bytes == 2713056 * KIB
    assert [fs.mountpoint for fs in snap.filesystems] == ["/", "/boot"]
    assert snap.filesystems[0].fstype == "xfs" and snap.filesystems[0].size_bytes == 17811456 * KIB
    updates = snap.updates
    assert updates is not None
    # 5 packages (one with its version wrapped onto the next line); the Obsoleting block is not counted.
    assert updates.pending == 5
    # Advisories name kernel twice, and curl which has no pending update: 3 of the pending are security.
    assert updates.security == 3
    assert updates.reboot_required is True  # needs-restarting -r: exit 1 with "Reboot is required"
    assert updates.last_installed == 1716800000.0
    assert updates.titles == ("kernel.x86_64 5.14.0-362.24.1.el9_3", "openssl-libs.x86_64 1:3.0.7-25.el9_3",
                              "python3-perf.x86_64 5.14.0-362.24.1.el9_3",
                              "NetworkManager-cloud-setup-extra-long-name.x86_64 1:1.44.0-5.el9_3",
                              "tzdata.noarch 2024a-1.el9")
    assert snap.disks is None  # no smartmontools on a VM: not reported, and not a problem
    assert snap.failed_services == ()
    assert snap.problems == ()


def test_centos7_with_yum_and_a_failing_disk_behind_megaraid() -> None:
    snap = parsed("centos7_yum")
    assert snap.os == OsInfo(family="linux", name="CentOS Linux 7 (Core)", version="7",
                             kernel="3.10.0-1160.108.1.el7.x86_64")
    assert snap.boot_time == 1700000000.5 - 1000.5
    assert snap.cpu_count == 1 and snap.cpu_seconds[("0", "system")] == 1.0
    updates = snap.updates
    assert updates is not None
    assert (updates.pending, updates.reboot_required, updates.last_installed) == (3, False, 1699000000.0)
    # CentOS publishes no advisories: an empty updateinfo list must not read as "no security updates".
    assert updates.security is None
    assert updates.titles[2] == "kernel.x86_64 3.10.0-1160.119.1.el7"
    # /dev/sda is the controller's virtual drive (smartctl says to use -d megaraid,N): skipped, no problem.
    assert snap.disks == (
        DiskHealth("/dev/bus/0 (megaraid,0)", True, "OK", "SEAGATE ST600MM0088"),
        DiskHealth("/dev/bus/0 (megaraid,1)", False, "FAILED!", "WDC WD1003FBYX-01Y7B1"),
    )
    assert len(snap.problems) == 1 and "CentOS" in snap.problems[0] and "security" in snap.problems[0]


def test_failed_units_and_a_nearly_full_var_on_a_fast_poll() -> None:
    snap = parsed("debian11_failed_unit_full_var")
    assert snap.failed_services == (
        FailedService("nginx.service", "systemd",
                      "A high performance web server and a reverse proxy server", "failed"),
        FailedService("logrotate.service", "systemd", "Rotate log files", "failed"),
    )
    var = {fs.mountpoint: fs for fs in snap.filesystems}["/var"]
    assert var == Filesystem("/var", "/dev/sda3", "ext4", 10255636 * KIB, 50000 * KIB, 574236 * KIB)
    assert var.avail_bytes / var.size_bytes < 0.01 < var.free_bytes / var.size_bytes  # root's reserve
    share = snap.filesystems[-1]
    assert (share.mountpoint, share.device, share.fstype) == ("/srv/dati comuni", "/dev/sdb1", "ext4")
    assert snap.cpu_seconds[("0", "steal")] == 0.8 and snap.cpu_seconds[("0", "nice")] == 0.2
    assert snap.swap_total_bytes == 0.0 and snap.load == (3.5, 2.1, 1.75)
    # Run without the slow sections: updates and disks were not asked for, so not reported.
    assert snap.updates is None and snap.disks is None
    assert snap.problems == ()


def test_old_ubuntu_polled_as_an_ordinary_user() -> None:
    snap = parsed("ubuntu1404_nonroot")
    assert snap.os.name == "Ubuntu 14.04.6 LTS" and snap.os.version == "14.04"
    # Kernel 3.13 has no MemAvailable: free + buffers + page cache.
    assert snap.memory_available_bytes == (512000 + 128000 + 256000) * KIB
    assert snap.failed_services is None  # upstart, not systemd: not reported
    # df could not stat one mount point: the others are still there, and the problem says which.
    assert [fs.mountpoint for fs in snap.filesystems] == ["/"]
    assert snap.filesystems[0].device == "/dev/disk/by-uuid/0b9a1f5c-8e51-4d8e-9b1f-0123456789ab"
    updates = snap.updates
    assert updates is not None
    assert (updates.pending, updates.security, updates.reboot_required) == (2, 1, False)
    assert updates.last_installed == 1590000000.0  # dpkg.log rotated away: the status file's mtime
    assert snap.disks is None
    assert len(snap.problems) == 2
    df_problem, smart_problem = snap.problems
    assert "/mnt/private" in df_problem and "Permission denied" in df_problem
    assert "smartctl needs root" in smart_problem and "custode ALL=(root) NOPASSWD" in smart_problem


def test_clock_ticks_come_from_the_host() -> None:
    snap = parsed("debian11_failed_unit_full_var", **{"clk_tck=100": "clk_tck=1000"})
    assert snap.cpu_seconds[("0", "user")] == 0.01


# -- what is not a snapshot ----------------------------------------------------------------


def test_login_banner_before_the_first_marker_is_ignored() -> None:
    banner = ("Benvenuto sul server del Comune\r\nAccesso riservato al personale autorizzato.\n"
              "@@custode: not a marker line of ours\n")
    assert parse(banner + fixture("rocky9_dnf"), now=1.0) == parsed("rocky9_dnf")


@pytest.mark.parametrize("output, expected", [
    ("", "received no output at all"),
    ("This account is currently not available.\n", "not available"),
    ("Last login: Mon Jun 10 08:00:00 2024\nWelcome!\n", "Welcome"),
    ('{"os": "windows"}', "windows"),
])
def test_output_that_is_not_the_probe_raises(output: str, expected: str) -> None:
    with pytest.raises(ProbeOutputError) as caught:
        parse(output, now=1.0)
    assert "no begin marker" in str(caught.value) and expected in str(caught.value)
    assert "login shell" in str(caught.value)


def test_truncated_output_raises() -> None:
    text = fixture("debian12_security_reboot")
    cut = text[: text.index("@@custode:section apt-upgrade")] + "Inst base-files [12.4"
    with pytest.raises(ProbeOutputError) as caught:
        parse(cut, now=1.0)
    assert "truncated" in str(caught.value) and "max_output" in str(caught.value)
    assert "last line 'Inst base-files [12.4'" in str(caught.value)
    # What SshTransport hands over when it cut the output: the end marker never arrives.
    with pytest.raises(ProbeOutputError, match="truncated"):
        parse(text[:4000] + "\n[… 60000 more bytes not kept]", now=1.0)


def test_other_probe_version_is_a_problem_not_a_failure() -> None:
    snap = parsed("rocky9_dnf", **{"@@custode:begin linux 1": "@@custode:begin linux 2"})
    assert snap.updates is not None and snap.updates.pending == 5
    assert len(snap.problems) == 1 and "version 2" in snap.problems[0]


# -- sections that failed on the host --------------------------------------------------------


def test_failed_apt_simulation_is_a_problem_and_the_rest_is_kept() -> None:
    text = replace_section(fixture("debian12_security_reboot"), "apt-upgrade", "", 100,
                           "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct "
                           "the problem.")
    snap = parse(text, now=1.0)
    assert snap.updates is not None
    assert (snap.updates.pending, snap.updates.security, snap.updates.titles) == (None, None, ())
    assert snap.updates.reboot_required is True and snap.updates.last_installed == 1717590612.0
    assert len(snap.problems) == 1
    assert "dpkg was interrupted" in snap.problems[0] and "dpkg --configure -a" in snap.problems[0]
    assert snap.memory_total_bytes == 16365528 * KIB and len(snap.disks or ()) == 2


def test_no_updates_is_zero_not_unknown() -> None:
    text = replace_section(fixture("rocky9_dnf"), "check-update", "", 0)
    text = replace_section(text, "security", "", 0)
    updates = parse(text, now=1.0).updates
    assert updates is not None and (updates.pending, updates.security, updates.titles) == (0, 0, ())


def test_df_stopped_by_the_timeout_points_at_a_hung_mount() -> None:
    text = replace_section(fixture("debian11_failed_unit_full_var"), "df", "", 124)
    snap = parse(text, now=1.0)
    assert snap.filesystems == ()
    assert len(snap.problems) == 1
    assert "20 s" in snap.problems[0] and "hung or stale mount" in snap.problems[0]
    assert snap.failed_services is not None and len(snap.failed_services) == 2


def test_missing_needs_restarting_names_the_package() -> None:
    text = replace_section(fixture("rocky9_dnf"), "reboot", "", 127, "sh: 1: needs-restarting: not found")
    snap = parse(text, now=1.0)
    assert snap.updates is not None and snap.updates.reboot_required is None
    assert snap.problems == ("whether a reboot is required is unknown: needs-restarting is not installed; "
                             "install dnf-utils on the host",)


def test_dnf_error_exit_1_is_not_read_as_reboot_required() -> None:
    text = replace_section(fixture("rocky9_dnf"), "reboot", "", 1,
                           "Error: This command has to be run with superuser privileges")
    snap = parse(text, now=1.0)
    assert snap.updates is not None and snap.updates.reboot_required is None
    assert "superuser" in snap.problems[0]


def test_dnf_without_metadata_cache() -> None:
    text = replace_section(fixture("rocky9_dnf"), "check-update", "", 1,
                           "Error: Cache-only enabled but no cache for 'baseos'")
    snap = parse(text, now=1.0)
    assert snap.updates is not None and snap.updates.pending is None
    assert snap.updates.security == 4  # distinct packages with advisories, unchecked against pending
    assert "no cache for 'baseos'" in snap.problems[0] and "dnf makecache" in snap.problems[0]


def test_failed_systemctl_and_an_unreadable_disk() -> None:
    text = replace_section(fixture("debian12_security_reboot"), "failed-units", "", 1,
                           "Failed to connect to bus: Connection refused")
    text = replace_section(text, "smart /dev/sda sat",
                           "Smartctl open device: /dev/sda [SAT] failed: No such device", 2)
    snap = parse(text, now=1.0)
    assert snap.failed_services is None
    assert snap.disks is not None and snap.disks[0] == DiskHealth("/dev/sda", None, "unreadable", "")
    assert len(snap.problems) == 2
    assert "Failed to connect to bus" in snap.problems[0]
    assert "/dev/sda" in snap.problems[1] and "No such device" in snap.problems[1]


def test_sleeping_disk_is_not_woken_and_not_judged() -> None:
    text = replace_section(fixture("debian12_security_reboot"), "smart /dev/sda sat",
                           "smartctl 7.3 2022-02-28 r5338\nDevice is in STANDBY mode, exit(2)", 2)
    snap = parse(text, now=1.0)
    assert snap.disks is not None and snap.disks[0] == DiskHealth("/dev/sda", None, "standby", "")
    assert snap.problems == ()


def test_missing_proc_section_is_a_problem() -> None:
    text = replace_section(fixture("rocky9_dnf"), "stat", "", 2, "grep: /proc/stat: No such file or directory")
    snap = parse(text, now=1.0)
    assert snap.cpu_seconds == {} and snap.cpu_count is None
    assert snap.problems == ("CPU times (/proc/stat) could not be read (exit status 2: grep: /proc/stat: No such "
                             "file or directory); check that /proc is mounted and readable by Custode's account",)


def test_date_without_nanoseconds() -> None:
    text = replace_section(fixture("rocky9_dnf"), "clock", "uptime=86400.00\ntime=1716900000.%N", 0)
    snap = parse(text, now=1.0)  # busybox date prints %N as it is: whole seconds are enough
    assert snap.time == 1716900000.0 and snap.boot_time == 1716900000.0 - 86400.0


def test_unreadable_host_clock_falls_back_to_ours() -> None:
    text = replace_section(fixture("rocky9_dnf"), "clock", "uptime=86400.00\ntime=", 0)
    snap = parse(text, now=1234.5)
    assert snap.time == 1234.5 and snap.boot_time is None


# -- the command text -----------------------------------------------------------------------------


def test_probe_command_is_one_quoted_script_with_the_mode_as_argument() -> None:
    fast, full = probe_command(include_updates=False), probe_command()
    assert fast.startswith("LC_ALL=C exec /bin/sh -c '") and fast.endswith("' custode-probe noupdates")
    assert full.endswith("' custode-probe updates")
    assert "\n#" not in fast and "\n\n" not in fast  # comments and blank lines stay home
    assert len(fast) < len(SCRIPT) and SCRIPT == SCRIPT_PATH.read_text(encoding="utf-8")


# -- the real script on this machine ----------------------------------------------------------------


def proc_value(path: str, key: str) -> float:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) * 1024
    raise AssertionError(f"{key} not in {path}")


def excluded_root() -> bool:
    """True when / is a filesystem the probe leaves out on purpose (a container's overlay)."""
    root_type = [line.split()[2] for line in Path("/proc/self/mounts").read_text().splitlines()
                 if line.split()[1] == "/"][-1]
    return root_type in ("overlay", "tmpfs", "aufs", "rootfs", "squashfs")


def assert_matches_this_machine(snap: HostSnapshot, *, elapsed_bound: float = 2.0) -> None:
    uptime, now = float(Path("/proc/uptime").read_text().split()[0]), host_clock()
    assert snap.problems == ()
    assert snap.os.family == "linux" and snap.os.kernel == os.uname().release
    assert abs(snap.time - now) < elapsed_bound + 1
    assert snap.boot_time is not None and abs(snap.boot_time - (now - uptime)) < 2
    assert snap.cpu_count == os.cpu_count()
    assert {cpu for cpu, _ in snap.cpu_seconds} == {str(n) for n in range(os.cpu_count() or 0)}
    assert snap.cpu_seconds[("0", "user")] > 0
    assert snap.memory_total_bytes == proc_value("/proc/meminfo", "MemTotal")
    assert snap.memory_available_bytes is not None and 0 < snap.memory_available_bytes <= snap.memory_total_bytes
    assert snap.swap_total_bytes == proc_value("/proc/meminfo", "SwapTotal")
    assert snap.load is not None and all(value >= 0 for value in snap.load)
    by_mount = {fs.mountpoint: fs for fs in snap.filesystems}
    if not excluded_root():
        assert "/" in by_mount, snap.filesystems
    for fs in snap.filesystems:
        stat = os.statvfs(fs.mountpoint)
        assert abs(fs.size_bytes - stat.f_blocks * stat.f_frsize) < 1024, fs
        assert fs.avail_bytes <= fs.free_bytes <= fs.size_bytes
    assert not any(fs.fstype in ("tmpfs", "devtmpfs", "proc", "sysfs", "overlay") for fs in snap.filesystems)
    if Path("/run/systemd/system").is_dir():
        assert snap.failed_services is not None
    else:
        assert snap.failed_services is None


@pytest.mark.parametrize("shell, package", [("dash", "dash"), ("bash", "bash")])
def test_script_under_dash_and_bash(shell: str, package: str) -> None:
    path = require_binary(shell, package)
    env = {"PATH": "/usr/bin:/bin", "LANG": "it_IT.UTF-8", "LC_ALL": "it_IT.UTF-8", "HOME": "/"}
    # As a file, and as the command text sshd hands to a login shell that is this shell.
    for argv in ([path, str(SCRIPT_PATH), "noupdates"], [path, "-c", probe_command(include_updates=False)]):
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
        elapsed = time.monotonic() - started
        # bash warns on startup when the caller's locale is not installed: that is the caller's, not ours.
        noise = [line for line in done.stderr.splitlines() if "setlocale" not in line]
        assert done.returncode == 0 and noise == [], done.stderr
        snap = parse(done.stdout, now=time.time())
        assert_matches_this_machine(snap)
        assert snap.updates is None and snap.disks is None
        assert elapsed < 5


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def ssh_host(server: SshServer) -> HostConfig:
    return HostConfig(address=server.host, transport="ssh", ssh=SshOptions(
        user=server.user, port=server.port, identity_file=server.client_key, known_hosts=server.known_hosts,
        use_agent=False, connect_timeout=5))


@pytest.mark.integration
def test_probe_over_ssh_fast_poll(sshd: SshServer) -> None:
    with open_transport("farm1", ssh_host(sshd)) as transport:
        transport.run("true", timeout=10)  # connect first: the poll itself is what is measured
        result = transport.run(probe_command(include_updates=False), timeout=30)
    assert result.ok and not result.truncated, result.describe()
    snap = parse(result.stdout, now=time.time())
    assert_matches_this_machine(snap)
    assert snap.updates is None and snap.disks is None
    assert result.duration < 5, f"the fast probe took {result.duration:.2f} s"  # sanity bound; ~0.05 s here


@pytest.mark.integration
def test_probe_over_ssh_with_updates(sshd: SshServer) -> None:
    require_binary("apt-get", "apt")
    with open_transport("farm1", ssh_host(sshd)) as transport:
        result = transport.run(probe_command(), timeout=60)
    assert result.ok and not result.truncated, result.describe()
    snap = parse(result.stdout, now=time.time())
    assert_matches_this_machine(snap, elapsed_bound=result.duration)
    updates = snap.updates
    assert updates is not None and updates.pending is not None and updates.security is not None
    assert 0 <= updates.security <= updates.pending
    # Examples: up to 20 security and 20 other upgrades printed, 20 kept, security ones first.
    others = updates.pending - updates.security
    assert len(updates.titles) == min(20, min(updates.security, 20) + min(others, 20))
    assert updates.reboot_required == Path("/var/run/reboot-required").exists()
    assert updates.last_installed is not None and 0 < updates.last_installed <= host_clock() + 1
    if os.geteuid() == 0 and shutil.which("smartctl", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        assert snap.disks is not None  # () on a VM whose disks smartctl does not list
    elif not shutil.which("smartctl", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        assert snap.disks is None
