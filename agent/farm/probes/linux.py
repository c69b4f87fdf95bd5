"""Farm mode on Linux: the one shell script a poll runs over SSH, and the parser of what it prints.

The host gets nothing installed: ``probe_command()`` is handed to
``Transport.run`` and runs ``linux.sh`` (next to this module) under the
host's ``/bin/sh``. The script prints raw text between marker lines and does
no interpretation, so every rule about what the numbers mean lives here, in
Python, under test. ``parse()`` turns that output into a ``HostSnapshot``:

* a source the host could not read (a command missing, denied, timed out)
  becomes a sentence in ``problems`` naming the cause and the fix, and the
  rest of the snapshot is still filled in;
* only output that is not this probe's at all (empty, a login banner without
  our markers, cut off before the end marker) raises ``ProbeOutputError``.

``include_updates=False`` leaves out the slow sections (package manager
simulation, reboot flag, last installed update, SMART), so polls every few
minutes stay in the tens of milliseconds on the host; ``updates`` and
``disks`` are then ``None`` ("not reported"), never empty.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from custode.agent.farm.snapshot import (
    DiskHealth,
    FailedService,
    Filesystem,
    HostSnapshot,
    OsInfo,
    ProbeOutputError,
    UpdateStatus,
)
from custode.agent.transports.quoting import quote_posix

SHELL = "posix"
"""The ``Transport.shell`` this probe is written for: SSH hands the command to the login shell."""

SCRIPT_PATH = Path(__file__).with_name("linux.sh")
SCRIPT: str = SCRIPT_PATH.read_text(encoding="utf-8")
"""The probe as written (with its comments), for reading and for running it directly in tests."""

PROBE_VERSION = "1"
"""Printed on the begin line; a parser meeting another version says so instead of misreading it."""

MARK = "@@custode:"
MAX_TITLES = 20
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
"""/proc/stat's columns in order, named like node_exporter's ``mode`` label (guest time is already in user)."""

TIMEOUT_EXITS = {124, 143}
"""GNU timeout exits 124; busybox's kills with SIGTERM, which the shell reports as 143."""


def _compact(script: str) -> str:
    """The script without comment lines and blank lines: it travels on every poll to every host.

    Safe because the script has no here-documents and no multi-line strings.
    """
    kept = [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return "\n".join(kept) + "\n"


def probe_command(*, include_updates: bool = True) -> str:
    """The command text for ``Transport.run``: the script as one quoted word for ``/bin/sh -c``.

    sshd hands the command to the account's login shell; ``exec /bin/sh -c '…'`` works the
    same whether that is bash, dash or zsh (not csh/tcsh: their quoting rules differ), and the
    script itself sets ``LC_ALL=C`` so no output depends on the account's locale.
    """
    mode = "updates" if include_updates else "noupdates"
    return f"LC_ALL=C exec /bin/sh -c {quote_posix(_compact(SCRIPT))} custode-probe {mode}"


# -- splitting the output into sections -------------------------------------------


@dataclass
class _Section:
    name: str
    lines: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def content(self) -> list[str]:
        """The non-blank lines of the command's output."""
        return [line for line in self.lines if line.strip()]

    def keys(self) -> dict[str, str]:
        """``key=value`` lines, as the script's own sections print them."""
        pairs = (line.partition("=") for line in self.content())
        return {key.strip(): value.strip() for key, sep, value in pairs if sep}


def _received(output: str) -> str:
    shown = output.strip()[:200]
    return f"received {len(output)} characters: {shown!r}" if shown else "received no output at all"


def _split(output: str) -> tuple[dict[str, _Section], list[str]]:
    """Sections by name, and the problems met while splitting; raises ``ProbeOutputError``."""
    lines = [line.rstrip("\r") for line in output.split("\n")]
    begin = next((i for i, line in enumerate(lines) if line.startswith(MARK + "begin ")), None)
    if begin is None:
        raise ProbeOutputError(
            "this is not the output of Custode's Linux probe (no begin marker); " + _received(output) + ". "
            "Likely causes: the account's login shell is not a POSIX-style shell (csh, a menu, nologin), "
            "a forced command in authorized_keys, or the host is not Linux")
    problems = []
    version = lines[begin].split()[-1]
    if version != PROBE_VERSION:
        problems.append(f"the probe reported format version {version}, this Custode reads version "
                        f"{PROBE_VERSION}: some values may be missing until both are the same release")
    sections: dict[str, _Section] = {}
    current: _Section | None = None
    target: list[str] | None = None
    for line in lines[begin + 1:]:
        if line.startswith(MARK):
            word, _, rest = line[len(MARK):].partition(" ")
            if target and target[-1] == "":
                target.pop()  # the newline the script adds before every marker
            if word == "end":
                return sections, problems
            if word == "section":
                current = sections[rest] = _Section(rest)
                target = current.lines
            elif word == "stderr" and current is not None:
                target = current.stderr
            elif word == "exit" and current is not None:
                status = rest.rpartition(" ")[2]
                current.exit_code = int(status) if status.isdigit() else None
                current, target = None, None
            continue
        if target is not None:
            target.append(line)
    last = next((line for line in reversed(lines) if line.strip()), "")[:200]
    raise ProbeOutputError(
        "the Linux probe's output stops before its end marker (truncated); " + _received(output)
        + f", last line {last!r}. "
        "Likely causes: the poll's timeout stopped the script (a hung mount or package manager on the "
        "host), the connection dropped, or the output was longer than the transport keeps (max_output)")


# -- describing failures ---------------------------------------------------------------


def _cause(section: _Section | None) -> str:
    """What went wrong with a section, in words, from its exit status and stderr."""
    if section is None:
        return "the probe did not report it"
    first = next((line.strip() for line in section.stderr if line.strip()), "")
    if section.exit_code in TIMEOUT_EXITS:
        return "it did not finish within 20 s and was stopped"
    if section.exit_code == 127:
        return "the command is not installed" + (f" ({first[:200]})" if first else "")
    if section.exit_code is None:
        return "its exit status is missing"
    return f"exit status {section.exit_code}" + (f": {first[:200]}" if first else "")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


# -- the sections ------------------------------------------------------------------------


def _cpu(section: _Section | None, clk_tck: float) -> dict[tuple[str, str], float]:
    seconds: dict[tuple[str, str], float] = {}
    for line in section.content() if section else []:
        fields = line.split()
        match = re.fullmatch(r"cpu(\d+)", fields[0])
        if not match:
            continue  # the "cpu" line is the sum of the others
        for mode, ticks in zip(CPU_MODES, fields[1:], strict=False):  # kernels differ in how many modes they list
            if ticks.isdigit():
                seconds[(match.group(1), mode)] = int(ticks) / clk_tck
    return seconds


def _cpu_count(section: _Section | None) -> int | None:
    count = sum(1 for line in section.content() if re.match(r"cpu\d+\s", line)) if section else 0
    return count or None


def _memory(section: _Section | None) -> dict[str, float]:
    """/proc/meminfo in bytes, by field name."""
    values: dict[str, float] = {}
    for line in section.content() if section else []:
        match = re.fullmatch(r"(\w+):\s+(\d+)(?:\s+kB)?\s*", line)
        if match:
            values[match.group(1)] = float(int(match.group(2)) * (1024 if line.rstrip().endswith("kB") else 1))
    return values


def _available(memory: dict[str, float]) -> float | None:
    """MemAvailable, or on kernels before 3.14 the estimate free + buffers + page cache."""
    if "MemAvailable" in memory:
        return memory["MemAvailable"]
    parts = [memory[name] for name in ("MemFree", "Buffers", "Cached") if name in memory]
    return sum(parts) if len(parts) == 3 else None


def _load(section: _Section | None) -> tuple[float, float, float] | None:
    fields = section.content()[0].split() if section and section.content() else []
    values = [_number(value) for value in fields[:3]]
    if len(values) == 3 and all(value is not None for value in values):
        return (values[0], values[1], values[2])  # type: ignore[return-value]
    return None


def _unquote(value: str) -> str:
    try:
        return " ".join(shlex.split(value))
    except ValueError:
        return value.strip("\"'")


def _os(section: _Section | None, kernel: str) -> OsInfo:
    release = {key: _unquote(value) for key, value in section.keys().items()} if section else {}
    name = release.get("PRETTY_NAME") or release.get("NAME") or "Linux"
    version = release.get("VERSION_ID", "")
    if not version:  # /etc/redhat-release only: "CentOS release 6.10 (Final)"
        match = re.search(r"release (\d+(?:\.\d+)*)", name)
        version = match.group(1) if match else ""
    return OsInfo(family="linux", name=name, version=version, kernel=kernel)


def _unescape_mount(text: str) -> str:
    r"""/proc/self/mounts writes space, tab, newline and backslash as ``\040`` ``\011`` ``\012`` ``\134``."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), text)


_DF_LINE = re.compile(r"(?P<device>.+?)\s+(?P<size>\d+)\s+(?P<used>\d+)\s+(?P<avail>\d+)\s+(?:\d+%|-)\s+"
                      r"(?P<mountpoint>/.*)")


def _filesystems(mounts: _Section | None, df: _Section | None) -> tuple[Filesystem, ...]:
    """df's numbers (1024-byte blocks) with the filesystem type from /proc/self/mounts.

    ``free`` is size minus used: it includes the blocks reserved for root, which ``avail`` does not.
    A block device mounted more than once (bind mounts, btrfs subvolumes) is one filesystem with one
    usage: it is reported once, at its first mount point, so a full disk is not several alerts.
    """
    types: dict[str, tuple[str, str]] = {}
    for line in mounts.content() if mounts else []:
        fields = line.split()
        if len(fields) >= 3:
            types[_unescape_mount(fields[1])] = (_unescape_mount(fields[0]), fields[2])
    found: dict[str, Filesystem] = {}
    devices: set[str] = set()
    for line in df.content() if df else []:
        match = _DF_LINE.fullmatch(line.strip())
        if not match or int(match["size"]) == 0 or match["mountpoint"] in found:
            continue
        device, fstype = types.get(match["mountpoint"], (match["device"], ""))
        if device.startswith("/"):
            if device in devices:
                continue
            devices.add(device)
        size, used, avail = (int(match[key]) * 1024 for key in ("size", "used", "avail"))
        found[match["mountpoint"]] = Filesystem(mountpoint=match["mountpoint"], device=device, fstype=fstype,
                                                size_bytes=float(size), avail_bytes=float(avail),
                                                free_bytes=float(max(size - used, 0)))
    return tuple(found.values())


def _failed_units(section: _Section) -> tuple[FailedService, ...]:
    """``UNIT LOAD ACTIVE SUB DESCRIPTION`` lines; old systemd marks each with a bullet."""
    services = []
    for line in section.content():
        fields = line.lstrip("●* ").split(None, 4)
        if len(fields) >= 4:
            services.append(FailedService(name=fields[0], manager="systemd",
                                          display_name=fields[4] if len(fields) > 4 else "", state=fields[2]))
    return tuple(services)


# -- pending updates ------------------------------------------------------------------------

_APT_INST = re.compile(r"Inst (?P<name>\S+)(?: \[[^\]]*\])? \((?P<version>\S+) (?P<origins>[^)]*)\)")


@dataclass
class _Updates:
    pending: int | None = None
    security: int | None = None
    reboot_required: bool | None = None
    last_installed: float | None = None
    titles: list[str] = field(default_factory=list)


def _apt(sections: dict[str, _Section], updates: _Updates, problems: list[str]) -> None:
    upgrade = sections.get("apt-upgrade")
    counts = upgrade.keys() if upgrade else {}
    if upgrade is None or not upgrade.ok or not counts.get("pending", "").isdigit():
        problems.append(f"pending updates are unknown: apt-get -s dist-upgrade failed ({_cause(upgrade)}); "
                        "repair the package state on the host (dpkg --configure -a; apt-get -f install)")
    else:
        # The script counts (the output keeps only a few examples, security ones first).
        updates.pending = int(counts["pending"])
        updates.security = int(counts["security"]) if counts.get("security", "").isdigit() else None
        matches = [match for match in map(_APT_INST.match, upgrade.content()) if match]
        updates.titles = [f"{match['name']} {match['version']}" for match in matches]
    reboot = sections.get("reboot")
    if reboot is not None and reboot.ok and "reboot-required" in reboot.keys():
        updates.reboot_required = reboot.keys()["reboot-required"] == "yes"
    else:
        problems.append(f"whether a reboot is required is unknown ({_cause(reboot)})")
    last = sections.get("last-install")
    stamps = last.keys() if last else {}
    updates.last_installed = _number(stamps.get("dpkg-log")) or _number(stamps.get("dpkg-status"))
    if updates.last_installed is None:
        problems.append(f"the time of the last installed update is unknown ({_cause(last)}): check that "
                        "/var/log/dpkg.log and /var/lib/dpkg/status are readable by Custode's account")


def _rpm_key(nevra: str) -> str:
    """``openssl-libs-1:3.0.7-25.el9_3.x86_64`` -> ``openssl-libs.x86_64``, the key check-update uses."""
    rest, _, arch = nevra.rpartition(".")
    name = rest.rsplit("-", 2)[0]
    return f"{name}.{arch}"


def _rpm(manager: str, os_id: str, sections: dict[str, _Section], updates: _Updates,
         problems: list[str]) -> None:
    check = sections.get("check-update")
    pending: dict[str, str] = {}
    """name.arch -> version, in check-update's order."""
    if check is not None and check.exit_code in (0, 100):
        previous = ""
        for line in check.lines:
            if line.startswith("Obsoleting Packages"):
                break  # what follows repeats the packages above with what they replace
            fields = line.split()
            if fields and line[0].isspace() and previous and not pending[previous]:
                pending[previous] = fields[0]  # a long name wraps: the version is on the next line
            elif fields and not line[0].isspace() and re.fullmatch(r"\S+\.\w+", fields[0]):
                previous = fields[0]
                pending[previous] = fields[1] if len(fields) > 1 else ""
        updates.pending = len(pending)
    else:
        problems.append(f"pending updates are unknown: {manager} check-update failed ({_cause(check)}); "
                        f"make sure the package metadata cache exists (run '{manager} makecache' on the host, "
                        f"or enable {manager}-makecache.timer)")
    security = sections.get("security")
    security_keys: set[str] = set()
    if os_id == "centos":
        if updates.pending:
            problems.append("CentOS repositories publish no security advisories (updateinfo), so which of "
                            "the pending updates fix security issues is unknown: treat them all as urgent")
        else:
            updates.security = updates.pending
    elif security is not None and security.ok:
        security_keys = {_rpm_key(fields[-1]) for fields in map(str.split, security.content()) if len(fields) >= 3}
        updates.security = (len(security_keys & pending.keys()) if updates.pending is not None
                            else len(security_keys))
    else:
        problems.append(f"pending security updates are unknown: {manager} updateinfo failed "
                        f"({_cause(security)})")
    # Security updates first: the incident text shows only a few names.
    ordered = sorted(pending.items(), key=lambda item: item[0] not in security_keys)
    updates.titles = [f"{key} {version}".strip() for key, version in ordered]
    reboot = sections.get("reboot")
    said = " ".join(reboot.content()).lower() if reboot else ""
    if reboot is not None and reboot.exit_code == 1 and "reboot is required" in said:
        updates.reboot_required = True
    elif reboot is not None and reboot.exit_code == 0:
        updates.reboot_required = False
    elif reboot is not None and reboot.exit_code == 127:
        problems.append("whether a reboot is required is unknown: needs-restarting is not installed; install "
                        + ("dnf-utils" if manager == "dnf" else "yum-utils") + " on the host")
    else:
        problems.append(f"whether a reboot is required is unknown: needs-restarting -r failed ({_cause(reboot)})")
    last = sections.get("last-install")
    stamps = [_number(line.strip()) for line in last.content()] if last and last.ok else []
    updates.last_installed = max((stamp for stamp in stamps if stamp), default=None)
    if updates.last_installed is None:
        problems.append(f"the time of the last installed update is unknown: rpm -qa failed ({_cause(last)})")


def _updates(sections: dict[str, _Section], os_id: str, problems: list[str]) -> UpdateStatus | None:
    packages = sections.get("packages")
    manager = packages.content()[0].strip() if packages and packages.content() else ""
    updates = _Updates()
    if manager == "apt":
        _apt(sections, updates, problems)
    elif manager in ("dnf", "yum"):
        _rpm(manager, os_id, sections, updates, problems)
    else:
        problems.append("pending updates are not checked: the host has none of apt-get, dnf or yum "
                        "(Custode reads the Debian/Ubuntu and Red Hat families' package managers)")
        return None
    return UpdateStatus(pending=updates.pending, security=updates.security,
                        reboot_required=updates.reboot_required, last_installed=updates.last_installed,
                        titles=tuple(updates.titles[:MAX_TITLES]))


# -- SMART ---------------------------------------------------------------------------------

_SMART_STATUS = re.compile(r"(?:SMART overall-health self-assessment test result|SMART Health Status):\s*(.+)")
_SMART_FAILING = 8 | 16
"""smartctl's exit bits 3 (disk failing) and 4 (pre-failure attribute at or below its threshold)."""


def _smart_disk(key: str, section: _Section, problems: list[str]) -> DiskHealth | None:
    _, device, kind = (key.split(" ", 2) + ["", ""])[:3]
    name = f"{device} ({kind})" if "," in kind else device  # megaraid,0 and megaraid,1 share /dev/bus/0
    text = "\n".join(section.lines)
    info = dict(line.split(":", 1) for line in section.lines if ":" in line)
    info = {key.strip(): value.strip() for key, value in info.items()}
    model = info.get("Device Model") or info.get("Model Number") or " ".join(
        part for part in (info.get("Vendor", ""), info.get("Product", "")) if part) or info.get("Model Family", "")
    code = section.exit_code or 0
    match = _SMART_STATUS.search(text)
    if re.search(r"Device is in (STANDBY|SLEEP|IDLE)", text):
        return DiskHealth(device=name, healthy=None, status="standby", model=model)
    if match:
        status = match.group(1).strip()
        healthy = False if "FAIL" in status.upper() or code & _SMART_FAILING else (
            True if status.upper() in ("PASSED", "OK") else None)
        return DiskHealth(device=name, healthy=healthy, status=status, model=model)
    if "try adding '-d megaraid" in text:
        return None  # the RAID controller's virtual drive; --scan lists its disks as megaraid,N
    if re.search(r"SMART support is:\s+Unavailable", text):
        return DiskHealth(device=name, healthy=None, status="no SMART support", model=model)
    if code & _SMART_FAILING:
        return DiskHealth(device=name, healthy=False, status="FAILING", model=model)
    said = next((line.strip() for line in section.content() if "open" in line.lower()), "")
    problems.append(f"SMART health of {name} is unknown: smartctl could not read it ({_cause(section)}"
                    + (f"; {said[:200]}" if said else "") + ")")
    return DiskHealth(device=name, healthy=None, status="unreadable", model=model)


def _disks(sections: dict[str, _Section], user: str, problems: list[str]) -> tuple[DiskHealth, ...] | None:
    access = sections.get("smart-access")
    how = access.content()[0].strip() if access and access.content() else ""
    if how in ("", "missing"):
        return None  # no smartmontools: a VM, or SMART is watched otherwise; not this probe's business
    if how in ("denied", "no-sudo"):
        account = user or "<account>"
        why = ("may not run it with sudo; poll as root, or allow it" if how == "denied" else
               "cannot use sudo (not installed); poll as root, or install sudo and allow it")
        problems.append(f"SMART health is not checked: smartctl needs root and Custode's account {account} "
                        f"{why} without a password, e.g. the line "
                        f"'{account} ALL=(root) NOPASSWD: /usr/sbin/smartctl' in /etc/sudoers.d/custode "
                        "(and no 'Defaults requiretty' for it)")
        return None
    scan = sections.get("smart-scan")
    if scan is None or not scan.ok:
        problems.append(f"SMART health is not checked: smartctl --scan failed ({_cause(scan)})")
        return None
    disks = (_smart_disk(key, section, problems) for key, section in sections.items() if key.startswith("smart /"))
    return tuple(disk for disk in disks if disk is not None)


# -- the snapshot ------------------------------------------------------------------------------

_REQUIRED = {
    "stat": ("CPU times (/proc/stat)", "check that /proc is mounted and readable by Custode's account"),
    "meminfo": ("memory (/proc/meminfo)", "check that /proc is mounted and readable by Custode's account"),
    "loadavg": ("load average (/proc/loadavg)", "check that /proc is mounted and readable by Custode's account"),
    "clock": ("uptime and the host's clock", "check /proc/uptime and the date command on the host"),
    "os": ("the distribution", "check that /etc/os-release exists and is readable on the host"),
}
"""Sections every run has, what they tell, and where to look when one fails."""


def parse(output: str, *, now: float) -> HostSnapshot:
    """The snapshot in ``output`` (the probe's stdout); ``now`` stands in when the host's clock is unreadable.

    Raises ``ProbeOutputError`` only when ``output`` is not a complete run of this probe.
    """
    sections, problems = _split(output)
    if "meta" not in sections:
        raise ProbeOutputError("the Linux probe's output has no meta section; " + _received(output)
                               + ". Likely cause: a different script printed Custode's markers")
    meta = sections["meta"].keys()
    for name, (what, fix) in _REQUIRED.items():
        if name not in sections or not sections[name].ok:
            problems.append(f"{what} could not be read ({_cause(sections.get(name))}); {fix}")

    clock = sections["clock"].keys() if "clock" in sections else {}
    match = re.match(r"\d+(?:\.\d+)?", clock.get("time", ""))
    host_time = float(match.group(0)) if match else now
    uptime = _number(clock.get("uptime"))
    memory = _memory(sections.get("meminfo"))
    clk_tck = _number(meta.get("clk_tck")) or 100.0

    df, mounts = sections.get("df"), sections.get("mounts")
    if df is None or not df.ok:
        hung = df is not None and df.exit_code in TIMEOUT_EXITS
        problems.append(f"filesystem usage may be incomplete: df failed ({_cause(df)}); " + (
            "look for a hung or stale mount on the host (mount; dmesg)" if hung else
            "check the mount points it names on the host (permissions, a disappeared device)"))

    failed: tuple[FailedService, ...] | None = None
    if meta.get("systemd") == "yes":
        units = sections.get("failed-units")
        if units is not None and units.ok:
            failed = _failed_units(units)
        else:
            problems.append(f"failed services are unknown: systemctl list-units failed ({_cause(units)}); "
                            "check systemd on the host (systemctl status)")

    os_section = sections.get("os")
    os_info = _os(os_section, meta.get("kernel", ""))
    os_id = _unquote(os_section.keys().get("ID", "")) if os_section else ""
    with_updates = meta.get("updates") == "yes"
    updates = _updates(sections, os_id, problems) if with_updates else None
    disks = _disks(sections, meta.get("user", ""), problems) if with_updates else None

    return HostSnapshot(
        os=os_info,
        time=host_time,
        boot_time=host_time - uptime if uptime is not None and match else None,
        cpu_count=_cpu_count(sections.get("stat")),
        cpu_seconds=_cpu(sections.get("stat"), clk_tck),
        memory_total_bytes=memory.get("MemTotal"),
        memory_available_bytes=_available(memory),
        swap_total_bytes=memory.get("SwapTotal"),
        swap_free_bytes=memory.get("SwapFree"),
        load=_load(sections.get("loadavg")),
        filesystems=_filesystems(mounts, df),
        failed_services=failed,
        updates=updates,
        disks=disks,
        problems=tuple(problems),
    )
