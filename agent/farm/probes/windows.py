"""Farm mode's Windows probe: the PowerShell script sent each poll, and the parser of its JSON.

``probe_command()`` is the text to hand to ``Transport.run`` (WinRM, or this
machine's PowerShell); ``parse()`` turns what the script printed into a
``HostSnapshot``. The script itself is ``windows.ps1`` next to this file:
why it is written the way it is (PowerShell 2.0, no ConvertTo-Json, ASCII-only
JSON) is explained at its top.

The command
-----------
``probe_command()`` is ``windows.ps1`` exactly as written, comments and all,
after a two-line header: a comment saying what it is and where the source
lives, and ``$U`` (whether this poll searches Windows Update). The WinRM
transport sends it on the command's stdin, with only a short stager on the
command line (``agent/transports/winrm.py`` says why), so the 8,191-character
command line no longer bounds the probe; it used to be packed two characters
per UTF-16 unit to fit. Nothing is packed, compressed or encoded into the
script itself, so PowerShell's script block log (event 4104) shows the probe
as it is in this repository.

How stopped automatic services are judged
-----------------------------------------
Windows leaves some automatic services stopped by design, and reporting them
every poll teaches people to ignore the check. Skipped (see ``service_is_expected_stopped``):

* trigger-start and delayed-start services that exited normally (exit code 0)
  or were never needed since boot (1077): they start on an event, or start
  late and stop when their work is done;
* a fixed list that stops itself whatever its start type: Google and Edge
  updaters, Software Protection (sppsvc), Remote Registry, Downloaded Maps
  Manager, Connected Devices Platform, Tile Data model server, Windows
  Biometric, Shell Hardware Detection, Windows Modules Installer
  (TrustedInstaller), .NET's native image generators (clr_optimization_*), and
  the per-user service templates and instances (CDPUserSvc_1a2b3, ...).

Windows Update (wuauserv) is deliberately *not* on the list: from Windows 10 /
Server 2016 on it is a manual trigger-start service (never listed), before
that a delayed-start one that keeps running; an automatic wuauserv stopped
with an error means the host gets no patches.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any, Literal

from custode.agent.farm.snapshot import (
    Antivirus,
    DiskHealth,
    EventSummary,
    FailedService,
    Filesystem,
    HostSnapshot,
    LogEvent,
    OsInfo,
    ProbeOutputError,
    UpdateStatus,
)

SHELL = "powershell"
"""The ``Transport.shell`` this probe is written for: WinRM (or this machine's PowerShell)."""

SCRIPT: str = resources.files("custode.agent.farm.probes").joinpath("windows.ps1").read_text(encoding="utf-8")
"""The probe as written, with its comments."""

PROBE_ID = "custode-windows"
"""The ``probe`` field the script writes first: tells our output from anything else."""

COMMAND_HEADER = ("# Custode farm probe for Windows (agent/farm/probes/windows.ps1), as written; "
                  "$U=0 skips the Windows Update search")
"""The first line of every probe command: what it is and where its source lives, for whoever reads it on the host."""

STAGER_COMMENT = COMMAND_HEADER
"""The former name of :data:`COMMAND_HEADER` (the command was once a stager), kept for callers that match on it."""

EVENT_HOURS = 24
MAX_TITLES = 20
MAX_EVENTS = 10
MAX_MESSAGE = 300

SECTIONS = ("ps", "time", "os", "cpu", "disks", "services", "reboot", "defender", "securitycenter", "events",
            "pdisks", "history", "updates")
"""In the order the script writes them."""


# -- the command ----------------------------------------------------------------------------------


def probe_command(*, include_updates: bool = True) -> str:
    """The PowerShell text for ``Transport.run``: :data:`COMMAND_HEADER`, ``$U``, then the probe as written.

    ``include_updates=False`` skips the Windows Update search (seconds to
    minutes, and a load on WSUS), for polls between the hourly ones; pending
    updates are then ``None`` while reboot and last-install facts still come.
    """
    return f"{COMMAND_HEADER}\n$U={1 if include_updates else 0}\n{SCRIPT}"


# -- reading values liberally ---------------------------------------------------------------------


def _clean(text: str) -> str:
    """Text without lone surrogates (a message cut at 300 UTF-16 units may end in half a pair)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", errors="replace")


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_str(item) for item in value if item is not None)
    return _clean(str(value)).strip()


def _num(value: Any) -> float | None:
    """A number from a JSON number or a string ("1073741824", "1,5"); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "")
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _int(value: Any) -> int | None:
    number = _num(value)
    return int(number) if number is not None and number == number else None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
    return None


def _list(value: Any) -> list[Any]:
    """A list section; one object alone (as ConvertTo-Json writes a one-element array) is a list of one."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _dict(value: Any) -> dict[str, Any]:
    """A dict section; a one-element list of dicts (the WMI shape) is its element."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = value[0]
    return value if isinstance(value, dict) else {}


def _get(record: dict[str, Any], *names: str) -> Any:
    """The first of ``names`` present, ignoring case (WMI spells displayName, CIM DisplayName...)."""
    for name in names:
        if name in record:
            return record[name]
    lowered = {key.lower(): value for key, value in record.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


_DMTF = re.compile(r"^(\d{14})(?:\.(\d{1,6}))?([+-])(\d{3})$")
_MS_DATE = re.compile(r"^/?Date\((-?\d+)(?:[+-]\d{4})?\)/?$")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$")
_INVARIANT = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2})$")


def _time(value: Any) -> float | None:
    """Unix time of a date in any shape the probe may write; a date without a zone is UTC.

    ISO 8601 (``.ToString('o')``, 7-digit fractions), WMI's DMTF
    (``20261102031522.375199+060``, offset in minutes), .NET's ``/Date(ms)/``,
    PowerShell's invariant ``MM/dd/yyyy HH:mm:ss``, or Unix seconds. Dates
    before 1971 (unset values: year 1 or 1601) are None.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    stamp: dt.datetime | None = None
    if match := _DMTF.match(text):
        base = dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S")
        micro = int((match.group(2) or "0").ljust(6, "0"))
        minutes = int(match.group(4)) * (1 if match.group(3) == "+" else -1)
        stamp = base.replace(microsecond=micro, tzinfo=dt.timezone(dt.timedelta(minutes=minutes)))
    elif match := _MS_DATE.match(text):
        return int(match.group(1)) / 1000 if int(match.group(1)) > 0 else None
    elif match := _ISO.match(text):
        clock = match.group(2) if match.group(2).count(":") == 2 else match.group(2) + ":00"
        stamp = dt.datetime.fromisoformat(f"{match.group(1)}T{clock}")
        if match.group(3):
            stamp = stamp.replace(microsecond=int(match.group(3)[:6].ljust(6, "0")))
        zone = match.group(4)
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            stamp = stamp.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=int(digits[:2]),
                                                                         minutes=int(digits[2:]))))
    elif match := _INVARIANT.match(text):
        month, day, year, hour, minute, second = (int(part) for part in match.groups())
        try:
            stamp = dt.datetime(year, month, day, hour, minute, second)
        except ValueError:
            return None
    else:
        number = _num(text)
        return number if number and number > 0 else None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    if stamp.year < 1971:
        return None
    return stamp.timestamp()


# -- the document ---------------------------------------------------------------------------------


def _received(text: str) -> str:
    shown = text.strip()[:200]
    return repr(shown) + ("…" if len(text.strip()) > 200 else "")


def _document(output: str) -> dict[str, Any]:
    """The probe's JSON object, or ProbeOutputError saying what came instead and the likely cause."""
    text = output.lstrip("\ufeff")
    if not text.strip():
        raise ProbeOutputError("the Windows probe printed nothing: PowerShell did not run it or stopped before "
                               "the first line (its error output says why; powershell.exe missing, or an "
                               "execution policy or AppLocker rule blocking scripts)")
    start = text.find('{"probe":')
    if start < 0:
        raise ProbeOutputError(f"this is not the output of Custode's Windows probe: received {_received(text)}; "
                               "a logon script or profile printing text, a shell other than PowerShell, or "
                               "PowerShell older than 2.0 would explain it")
    body = text[start:].rstrip()
    if not body.endswith("}") or not re.search(r'"end"\s*:\s*true\s*}$', body):
        raise ProbeOutputError(_truncated(body))
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ProbeOutputError(f"the Windows probe's output is not valid JSON ({exc.msg} at character "
                               f"{exc.pos}): received {_received(body)}; the output may have been altered "
                               "on the way (a console width wrap, a code page conversion)") from None
    if not isinstance(document, dict) or document.get("probe") != PROBE_ID:
        raise ProbeOutputError(f"this JSON is not the output of Custode's Windows probe: received "
                               f"{_received(body)}")
    return document


def _truncated(body: str) -> str:
    written = re.findall(r'^,"(\w+)":', body, flags=re.M)
    finished = [name for name in written if name in SECTIONS]
    cut_by_limit = "more bytes not kept]" in body[-200:]
    if cut_by_limit:
        why = ("its output was longer than the transport keeps (max_output): raise the limit for this host's "
               "polls")
    elif finished:
        following = SECTIONS[SECTIONS.index(finished[-1]) + 1:]
        stuck = f" while reading '{following[0]}'" if following else ""
        hint = (" (the Windows Update search can take minutes: raise the poll timeout for this host or search "
                "for updates less often)" if following and following[0] in ("history", "updates") else "")
        why = f"the probe stopped after section '{finished[-1]}'{stuck}, most likely at the poll timeout{hint}"
    else:
        why = "the probe stopped before its first section: PowerShell failed at start (see its error output)"
    return f"the Windows probe's output is truncated (no end marker): {why}; received {_received(body)}"


# -- problems: what failed on the host, in words --------------------------------------------------

_ACCESS_DENIED = re.compile(r"0x80070005|E_ACCESSDENIED|access is denied|accesso negato|UnauthorizedAccess"
                            r"|unauthorized operation|operazione non autorizzata|0x80041003|access denied", re.I)
_HRESULT = re.compile(r"0x[0-9a-f]{8}", re.I)
_WU_NETWORK = {"0x8024402c", "0x80072ee2", "0x80072efd", "0x80072efe", "0x80072f8f", "0x8024401c",
               "0x80244022", "0x80244019", "0x8024402f", "0x80244017", "0x80244018", "0x80072ee7"}

_SECTION_NAMES = {
    "os": "the operating system facts (WMI Win32_OperatingSystem)",
    "cpu": "the processor load (WMI Win32_Processor)",
    "disks": "the disks (WMI Win32_LogicalDisk)",
    "services": "the automatic services (WMI Win32_Service)",
    "reboot": "the pending-reboot flags (registry)",
    "defender": "Microsoft Defender's state (Get-MpComputerStatus)",
    "securitycenter": "the Security Center antivirus products (WMI root\\SecurityCenter2)",
    "events": "the System event log",
    "pdisks": "the physical disks' health",
    "history": "the Windows Update history",
    "updates": "the pending Windows Updates",
    "ps": "the PowerShell version",
    "time": "the host's clock",
}


def _explain(section: str, message: str) -> str:
    """One sentence: what could not be read, the host-side cause, the fix."""
    what = _SECTION_NAMES.get(section, f"the probe section '{section}'")
    detail = " ".join(_clean(message).split())
    codes = {code.lower() for code in _HRESULT.findall(detail)}
    code = f" ({sorted(codes)[0]})" if codes else ""
    if _ACCESS_DENIED.search(detail):
        fixes = {
            "updates": "the account needs local admin rights to query Windows Update",
            "history": "the account needs local admin rights to query Windows Update",
            "events": "the account needs to be in Event Log Readers (or local Administrators) to read the "
                      "System log",
            "defender": "the account needs local admin rights to read Microsoft Defender's status",
            "reboot": "the account cannot read HKLM\\SOFTWARE: give it local admin rights",
        }
        fix = fixes.get(section, "WMI refused the account: make it a local administrator, or grant it Remote "
                                 "Enable on the WMI namespace (wmimgmt.msc) and Remote Management Users")
        return f"{what} could not be read: access denied{code}; {fix}"
    if section in ("updates", "history"):
        if codes & _WU_NETWORK:
            return (f"{what} could not be read: Windows Update cannot reach its update server{code}; check the "
                    "WSUS address (HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate), the proxy "
                    "(netsh winhttp show proxy) and the firewall")
        if "0x80070422" in codes:
            return (f"{what} could not be read: the Windows Update service (wuauserv) is disabled{code}; set it "
                    "to Manual so it can be started")
        if "0x8024002e" in codes:
            return (f"{what} could not be read: access to Windows Update is blocked by policy{code} "
                    "(DisableWindowsUpdateAccess)")
    if section == "defender" and ("0x800106ba" in codes or "0x80070422" in codes):
        return (f"{what} could not be read: the Microsoft Defender service is not running{code}; Defender is "
                "disabled or replaced by another antivirus (which a server cannot report to the probe)")
    if "0x8004100e" in codes or "invalid namespace" in detail.lower():
        return f"{what} could not be read: the WMI namespace does not exist on this host{code}"
    if codes & {"0x80041006", "0x80041010", "0x80041001"}:
        return (f"{what} could not be read: WMI failed{code}; check the repository with 'winmgmt "
                "/verifyrepository' and restart the Windows Management Instrumentation service")
    if "0x800706ba" in codes:
        return f"{what} could not be read: the RPC server is unavailable{code}; check that the service is running"
    if section == "events" and re.search(r"there is not an event log|EventLogNotFound", detail, re.I):
        return f"{what} could not be read: the System log is missing or corrupt; check it in Event Viewer"
    cut = detail if len(detail) <= 300 else detail[:299] + "…"
    return f"{what} could not be read: {cut}"


# -- sections -------------------------------------------------------------------------------------


def _os(value: Any) -> OsInfo:
    record = _dict(value)
    caption = _str(_get(record, "Caption")) or "Windows"
    version = _str(_get(record, "Version"))
    build = _str(_get(record, "BuildNumber")) or (version.split(".")[2] if version.count(".") >= 2 else "")
    product_type = _int(_get(record, "ProductType"))
    server = None if product_type is None else product_type in (2, 3)
    return OsInfo(family="windows", name=caption, version=version, build=build, server=server)


def _kb(value: Any) -> float | None:
    number = _num(value)
    return number * 1024 if number is not None else None


def _cpu(value: Any) -> tuple[int | None, float | None]:
    """Logical processors summed over sockets, and the load averaged over them (0..1)."""
    processors = [record for record in _list(value) if isinstance(record, dict)]
    counts = [count for record in processors if (count := _int(_get(record, "NumberOfLogicalProcessors")))]
    loads = [load for record in processors if (load := _num(_get(record, "LoadPercentage"))) is not None]
    busy = min(1.0, max(0.0, sum(loads) / len(loads) / 100)) if loads else None
    return (sum(counts) if counts else None), busy


def _filesystems(value: Any) -> tuple[Filesystem, ...]:
    found = []
    for record in _list(value):
        if not isinstance(record, dict):
            continue
        drive = _str(_get(record, "DeviceID"))
        size = _num(_get(record, "Size"))
        free = _num(_get(record, "FreeSpace"))
        if not drive or not size:
            continue  # a fixed volume without a size is not mounted (BitLocker-locked, offline)
        free = free if free is not None else 0.0
        found.append(Filesystem(mountpoint=drive, device=drive, fstype=_str(_get(record, "FileSystem")),
                                size_bytes=size, avail_bytes=free, free_bytes=free,
                                label=_str(_get(record, "VolumeName"))))
    return tuple(found)


EXPECTED_STOPPED = frozenset(name.lower() for name in (
    "gupdate", "gupdatem", "edgeupdate", "edgeupdatem", "sppsvc", "RemoteRegistry", "MapsBroker", "CDPSvc",
    "tiledatamodelsvc", "WbioSrvc", "ShellHWDetection", "TrustedInstaller",
))
"""Automatic services that stop by themselves whatever their start type (see the module docstring)."""

PER_USER_TEMPLATES = (
    "AarSvc", "BcastDVRUserService", "BluetoothUserService", "CaptureService", "cbdhsvc", "CDPUserSvc",
    "ConsentUxUserSvc", "CredentialEnrollmentManagerUserSvc", "DevicePickerUserSvc", "DevicesFlowUserSvc",
    "MessagingService", "NPSMSvc", "OneSyncSvc", "P9RdrService", "PenService", "PimIndexMaintenanceSvc",
    "PrintWorkflowUserSvc", "UdkUserSvc", "UnistoreSvc", "UserDataSvc", "webthreatdefusersvc", "WpnUserService",
)
"""Per-user services (Windows 10 / Server 2016 on): the template never runs, an instance
(``CDPUserSvc_1a2b3``) lives as long as its user's session."""

_EXPECTED_PATTERNS = (
    re.compile(r"^clr_optimization_", re.I),  # .NET native image generators: run after a .NET update, then stop
    re.compile(r"^(%s)(_[0-9a-f]+)?$" % "|".join(PER_USER_TEMPLATES), re.I),
)

_NORMAL_EXIT = (0, 1077)
"""0: stopped normally; 1077 (ERROR_SERVICE_NEVER_STARTED): not needed since boot."""


def service_is_expected_stopped(name: str, *, exit_code: int | None, trigger: bool | None,
                                delayed: bool | None) -> bool:
    """Whether Windows leaves this stopped automatic service stopped by design (not worth an alert)."""
    if name.lower() in EXPECTED_STOPPED or any(pattern.search(name) for pattern in _EXPECTED_PATTERNS):
        return True
    return bool(trigger or delayed) and exit_code in _NORMAL_EXIT


def _services(value: Any) -> tuple[FailedService, ...]:
    found = []
    for record in _list(value):
        if not isinstance(record, dict):
            continue
        name = _str(_get(record, "Name"))
        if not name or service_is_expected_stopped(name, exit_code=_int(_get(record, "ExitCode")),
                                                   trigger=_bool(_get(record, "Trigger")),
                                                   delayed=_bool(_get(record, "Delayed"))):
            continue
        found.append(FailedService(name=name, manager="windows", display_name=_str(_get(record, "DisplayName")),
                                   state=_str(_get(record, "State"))))
    return tuple(found)


def _reboot(value: Any) -> bool | None:
    flags = [flag for item in _list(value) if (flag := _bool(item)) is not None]
    return any(flags) if flags else None


def _updates(document: dict[str, Any], now: float) -> UpdateStatus | None:
    pending_section = _dict(document.get("updates")) if "updates" in document else {}
    history = _dict(document.get("history"))
    reboot = _reboot(document.get("reboot"))
    pending = _int(_get(pending_section, "Count"))
    security = _int(_get(pending_section, "Security"))
    titles = tuple(_str(title) for title in _list(_get(pending_section, "Titles")) if _str(title))[:MAX_TITLES]
    last = _time(_get(history, "Last"))
    if last is None or last > now + 86400:
        hotfix = _time(_get(history, "HotFix"))
        last = hotfix if hotfix is not None and hotfix <= now + 86400 else last
    if last is not None and last > now + 86400:
        last = None  # a date in the future is a misread one (Get-HotFix on PowerShell 2.0, another locale)
    if pending is None and reboot is None and last is None:
        return None
    return UpdateStatus(pending=pending, security=security, reboot_required=reboot, last_installed=last,
                        titles=titles)


def _defender(value: Any, now: float) -> tuple[Antivirus | None, list[str]]:
    record = _dict(value)
    if not record:
        return None, []
    service = _bool(_get(record, "AMServiceEnabled"))
    antivirus = _bool(_get(record, "AntivirusEnabled"))
    enabled = None if service is None and antivirus is None else bool(service is not False
                                                                       and antivirus is not False)
    updated = _time(_get(record, "AntivirusSignatureLastUpdated"))
    age = _num(_get(record, "AntivirusSignatureAge"))
    if updated is None and age is not None and 0 <= age < 10000:
        updated = now - age * 86400  # only the age in days was reported
    problems = []
    mode = _str(_get(record, "AMRunningMode"))
    if mode.lower().startswith("passive"):
        problems.append("Microsoft Defender runs in passive mode: another antivirus is registered as the primary "
                        "one, and a server cannot report that one to the probe")
    return Antivirus(product="Microsoft Defender", enabled=enabled,
                     realtime=_bool(_get(record, "RealTimeProtectionEnabled")), signature_updated=updated,
                     source="defender"), problems


def decode_product_state(state: int) -> tuple[str, bool]:
    """Security Center's ``productState``: (``on``/``off``/``snoozed``/``expired``, signatures up to date).

    Microsoft does not document the value; its layout is well established:
    bits 12-15 hold the scanner state (0 off, 1 on, 2 snoozed, 3 expired),
    bit 4 is set when the signatures are out of date (0x10), bits 8-11 tell a
    Microsoft product from a third party's. 266240 (0x041000) is on and up to
    date, 393472 (0x060100) off, 266256 (0x041010) on with old signatures.
    """
    scanner = {0: "off", 1: "on", 2: "snoozed", 3: "expired"}.get((state >> 12) & 0xF, "unknown")
    return scanner, not state & 0x10


_MICROSOFT_DEFENDER = re.compile(r"^(windows|microsoft) defender", re.I)


def _security_center(value: Any, have_defender: bool) -> tuple[list[Antivirus], list[str]]:
    found: list[Antivirus] = []
    problems: list[str] = []
    for record in _list(value):
        if not isinstance(record, dict):
            continue
        name = _str(_get(record, "displayName")) or "unnamed antivirus"
        if have_defender and _MICROSOFT_DEFENDER.match(name):
            continue  # already read in detail from Get-MpComputerStatus
        state = _int(_get(record, "productState"))
        if state is None:
            found.append(Antivirus(product=name, enabled=None, source="security_center"))
            continue
        scanner, up_to_date = decode_product_state(state)
        enabled = {"on": True, "off": False, "snoozed": False, "expired": False}.get(scanner)
        found.append(Antivirus(product=name, enabled=enabled, realtime=enabled, source="security_center"))
        if enabled and not up_to_date:
            problems.append(f"Security Center reports the signatures of {name} out of date: check its updates")
        if scanner == "snoozed":
            problems.append(f"Security Center reports {name} snoozed (protection paused)")
        if scanner == "expired":
            problems.append(f"Security Center reports the subscription of {name} expired: renew its licence")
    return found, problems


def _level(value: Any) -> Literal["critical", "error"] | None:
    text = _str(value).lower()
    if text in ("1", "critical", "critico"):
        return "critical"
    if text in ("2", "error", "errore"):
        return "error"
    return None


def _events(value: Any, hours: int) -> EventSummary:
    record = _dict(value)
    counts: dict[tuple[str, str], int] = {}
    raw_counts = _get(record, "Counts")
    if isinstance(raw_counts, dict):  # {"source|level": n}
        pairs: Iterable[tuple[str, Any]] = ((key.replace("|", ", "), count) for key, count in raw_counts.items())
    else:  # Group-Object: [{"Name": "source, level", "Count": n}]
        pairs = ((_str(_get(group, "Name")), _get(group, "Count")) for group in _list(raw_counts)
                 if isinstance(group, dict))
    for name, count in pairs:
        source, _, level_text = name.rpartition(", ")
        level, number = _level(level_text), _int(count)
        if source and level and number:
            counts[(source, level)] = counts.get((source, level), 0) + number
    latest = []
    for event in _list(_get(record, "Latest")):
        if not isinstance(event, dict):
            continue
        level = _level(_get(event, "Level", "EntryType"))
        when = _time(_get(event, "Time", "TimeCreated", "TimeGenerated"))
        if level is None or when is None:
            continue
        message = " ".join(_str(_get(event, "Message")).split())
        latest.append(LogEvent(time=when, source=_str(_get(event, "Source", "ProviderName")), level=level,
                               event_id=_int(_get(event, "Id", "EventID", "InstanceId")) or 0,
                               message=message[:MAX_MESSAGE]))
    latest.sort(key=lambda event: event.time, reverse=True)
    return EventSummary(hours=hours, counts=counts, latest=tuple(latest[:MAX_EVENTS]))


_HEALTH = {"healthy": True, "0": True, "warning": False, "1": False, "unhealthy": False, "2": False}
_DRIVE_STATUS = {"ok": True, "error": False, "degraded": False, "pred fail": False, "nonrecover": False,
                 "stressed": False}


def _disks(value: Any) -> tuple[DiskHealth, ...]:
    records = [record for record in _list(value) if isinstance(record, dict)]
    names = [_str(_get(record, "FriendlyName")) for record in records]
    found = []
    for record, friendly in zip(records, names, strict=True):
        health = _get(record, "HealthStatus")
        if health is not None or friendly:  # Get-PhysicalDisk
            status = _str(health) or "Unknown"
            healthy = _HEALTH.get(status.lower())
            status = {"0": "Healthy", "1": "Warning", "2": "Unhealthy", "5": "Unknown"}.get(status, status)
            operational = _str(_get(record, "OperationalStatus"))
            if operational and operational.lower() not in ("ok", "2"):
                status += f" ({operational})"
                if healthy is None and re.search(r"fail|lost|error|degraded", operational, re.I):
                    healthy = False
            device = friendly or f"PhysicalDisk{_str(_get(record, 'DeviceId'))}"
            if names.count(friendly) > 1:
                device = f"{friendly} (disk {_str(_get(record, 'DeviceId'))})"
            found.append(DiskHealth(device=device, healthy=healthy, status=status,
                                    model=_str(_get(record, "Model")) or friendly))
        else:  # Win32_DiskDrive
            status = _str(_get(record, "Status")) or "Unknown"
            found.append(DiskHealth(device=_str(_get(record, "DeviceID")) or _str(_get(record, "Model")),
                                    healthy=_DRIVE_STATUS.get(status.lower()), status=status,
                                    model=_str(_get(record, "Model"))))
    return tuple(found)


# -- the parser -----------------------------------------------------------------------------------


def parse(output: str, *, now: float) -> HostSnapshot:
    """The snapshot of one poll from the probe's stdout; ``now`` is our clock, for values given as an age.

    A section that failed on the host is a sentence in ``problems`` and its
    fields stay None; only output that is not the probe's at all, or is cut
    before its end marker, raises ``ProbeOutputError``.
    """
    document = _document(output)
    problems: list[str] = []
    errors = [error for error in _list(document.get("errors")) if isinstance(error, dict)]
    for error in errors:
        section = _str(_get(error, "section", "s")) or "unknown"
        if section == "securitycenter" and re.search(r"0x8004100e|invalid namespace", _str(_get(error, "message")),
                                                     re.I):
            continue  # no Security Center: a server, or a client without it; not a fault
        problems.append(_explain(section, _str(_get(error, "message", "m"))))

    os_record = _dict(document.get("os"))
    os_info = _os(os_record)
    cpu_count, busy = _cpu(document.get("cpu"))
    host_time = _time(document.get("time")) or now

    defender, defender_notes = _defender(document.get("defender"), now)
    centre, centre_notes = _security_center(document.get("securitycenter"), defender is not None)
    problems += defender_notes + centre_notes
    readable = defender is not None or isinstance(document.get("securitycenter"), list)
    antivirus = (tuple([defender] if defender else []) + tuple(centre)) if readable else None

    services = None if document.get("services") is None else _services(document.get("services"))
    disks = None if document.get("pdisks") is None else _disks(document.get("pdisks"))
    events = None if document.get("events") is None else _events(document.get("events"), EVENT_HOURS)

    return HostSnapshot(
        os=os_info,
        time=host_time,
        boot_time=_time(_get(os_record, "LastBootUpTime")),
        cpu_count=cpu_count,
        cpu_busy_ratio=busy,
        memory_total_bytes=_kb(_get(os_record, "TotalVisibleMemorySize")),
        memory_available_bytes=_kb(_get(os_record, "FreePhysicalMemory")),
        swap_total_bytes=_kb(_get(os_record, "SizeStoredInPagingFiles")),
        swap_free_bytes=_kb(_get(os_record, "FreeSpaceInPagingFiles")),
        filesystems=_filesystems(document.get("disks")),
        failed_services=services,
        updates=_updates(document, now),
        antivirus=antivirus,
        disks=disks,
        events=events,
        problems=tuple(dict.fromkeys(problems)),
    )


__all__ = ["COMMAND_HEADER", "SCRIPT", "SHELL", "ProbeOutputError", "decode_product_state", "parse", "probe_command",
           "service_is_expected_stopped"]
