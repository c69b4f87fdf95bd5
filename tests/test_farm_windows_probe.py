"""The Windows farm probe: its command, its parser on captured output shapes, end of support, and WinRM end to end.

The fixtures under tests/data/farm/windows are what the probe prints on each
kind of host, written in the shapes the CIM classes and cmdlets document
(DMTF dates and Get-EventLog records on PowerShell 2.0, ISO dates and
Get-WinEvent records from 3.0 on) and escaped the way the script's JSON
writer escapes (\\uXXXX for everything outside printable ASCII).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from winrm_server import WinrmServer

from custode.agent.farm.probes.windows import (
    COMMAND_HEADER,
    SCRIPT,
    SECTIONS,
    STAGER_COMMENT,
    decode_product_state,
    parse,
    probe_command,
    service_is_expected_stopped,
)
from custode.agent.farm.snapshot import OsInfo, ProbeOutputError
from custode.agent.farm.windows_eos import support_status
from custode.agent.transports import open_transport
from custode.agent.transports.config import HostConfig, WinrmOptions
from custode.agent.transports.winrm import MAX_COMMAND_LINE, WinrmTransport, encode_powershell, stdin_stager

DATA = Path(__file__).parent / "data" / "farm" / "windows"
NOW = dt.datetime(2026, 11, 20, 9, 15, 10, tzinfo=dt.timezone.utc).timestamp()
DAY = 86400.0
PASSWORD_ENV = "CUSTODE_TEST_WINRM_PASSWORD"


def fixture(name: str) -> str:
    return (DATA / name).read_text(encoding="ascii")


def utc(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=dt.timezone.utc).timestamp()


def edited(name: str, **sections: object) -> str:
    """A fixture with some sections replaced (None writes null), re-serialised the probe's way."""
    document = json.loads(fixture(name))
    for key, value in sections.items():
        document[key] = value
    lines = ['{"probe":"custode-windows","format":1']
    lines += [f',"{key}":{json.dumps(value)}' for key, value in document.items()
              if key not in ("probe", "format", "end")]
    return "\r\n".join(lines + [',"end":true}']) + "\r\n"


def code_lines(script: str) -> list[str]:
    """The script without comment lines, blank lines and indentation: what the checks below look at."""
    lines = (line.strip() for line in script.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# -- the command ----------------------------------------------------------------------------------


@pytest.mark.parametrize("include_updates,flag", [(True, "$U=1"), (False, "$U=0")])
def test_command_is_the_script_as_written_after_its_header(include_updates, flag):
    command = probe_command(include_updates=include_updates)
    assert command == f"{COMMAND_HEADER}\n{flag}\n{SCRIPT}"
    assert STAGER_COMMENT == COMMAND_HEADER  # the old name still matches the command
    assert "if($U -ne 0){S updates" in command


def test_command_is_over_the_command_line_limit_and_reaches_the_host_on_stdin():
    """Why it goes on stdin: as -EncodedCommand it would be several times too long for WinRS' cmd /c."""
    line = " ".join(["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand",
                     encode_powershell(probe_command())])
    assert len(line) > 2 * MAX_COMMAND_LINE
    stager = " ".join(["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand",
                       encode_powershell(stdin_stager())])
    assert len(stager) < MAX_COMMAND_LINE - 3000


def test_script_keeps_to_powershell_2():
    code = "\n".join(code_lines(SCRIPT))
    for construct in ("ConvertTo-Json", "[ordered]", "[pscustomobject]", " -in ", "-notin", "::new(",
                      "Get-CimInstance -ClassName"):
        assert construct not in code, construct
    assert "$ErrorActionPreference='Stop'" in code
    assert "$ProgressPreference='SilentlyContinue'" in code
    assert code.endswith("',\"end\":true}'")
    # sections are written in the order the parser's truncation message assumes
    assert re.findall(r"\bS (\w+) \{", code) == list(SECTIONS)


# -- the fixtures ---------------------------------------------------------------------------------


def test_server2019_healthy():
    snapshot = parse(fixture("server2019-healthy.json"), now=NOW)
    assert snapshot.os == OsInfo(family="windows", name="Microsoft Windows Server 2019 Standard",
                                 version="10.0.17763", build="17763", server=True)
    assert snapshot.time == pytest.approx(utc(2026, 11, 20, 9, 15, 2) + 0.4471985)
    assert snapshot.boot_time == utc(2026, 11, 12, 2, 31, 47) + 0.5
    assert snapshot.cpu_count == 16 and snapshot.cpu_busy_ratio == pytest.approx(0.06)
    assert snapshot.cpu_seconds == {} and snapshot.load is None
    assert snapshot.memory_total_bytes == 16776692 * 1024
    assert snapshot.memory_available_bytes == 9123456 * 1024
    assert snapshot.swap_total_bytes == 2490368 * 1024 and snapshot.swap_free_bytes == 2401204 * 1024
    c_drive, d_drive = snapshot.filesystems
    assert (c_drive.mountpoint, c_drive.device, c_drive.fstype, c_drive.label) == ("C:", "C:", "NTFS", "")
    assert c_drive.avail_bytes == c_drive.free_bytes == 71508230144
    assert (d_drive.mountpoint, d_drive.label, d_drive.size_bytes) == ("D:", "Dati", 1099494809600)
    assert snapshot.failed_services == ()  # all stopped by design: sppsvc, MapsBroker, gupdate, per-user, NGEN...
    assert snapshot.updates is not None
    assert (snapshot.updates.pending, snapshot.updates.security, snapshot.updates.reboot_required) == (0, 0, False)
    assert snapshot.updates.last_installed == utc(2026, 11, 12, 1, 58, 31)
    (defender,) = snapshot.antivirus
    assert (defender.product, defender.source, defender.enabled, defender.realtime) == \
        ("Microsoft Defender", "defender", True, True)
    assert defender.signature_updated == utc(2026, 11, 20, 3, 12, 45)
    assert snapshot.events is not None and snapshot.events.counts == {} and snapshot.events.latest == ()
    assert [(disk.device, disk.healthy, disk.status) for disk in snapshot.disks] == [
        ("ATA INTEL SSDSC2KB48 (disk 0)", True, "Healthy"), ("ATA INTEL SSDSC2KB48 (disk 1)", True, "Healthy")]
    assert snapshot.problems == ()


def test_server2022_with_defender_off():
    snapshot = parse(fixture("server2022-defender-off.json"), now=NOW)
    (defender,) = snapshot.antivirus
    assert defender.enabled is False and defender.realtime is False
    assert defender.signature_updated == utc(2026, 9, 2, 6, 41, 17)
    # polled without the Windows Update search: pending unknown, the rest still known
    assert snapshot.updates is not None and snapshot.updates.pending is None and snapshot.updates.security is None
    assert snapshot.updates.reboot_required is False
    assert snapshot.updates.last_installed == utc(2026, 11, 13, 2, 20, 44)
    events = snapshot.events
    assert events.counts == {("Service Control Manager", "error"): 3, ("Microsoft-Windows-Kernel-Power", "critical"): 1}
    assert [event.event_id for event in events.latest] == [7034, 7034, 7034, 41]
    assert events.latest[0].time > events.latest[1].time  # newest first
    assert events.latest[0].message == ("Il servizio Spooler di stampa è stato terminato in modo imprevisto. "
                                        "Ciò si è verificato 3 volta/e.")
    assert events.latest[-1].level == "critical" and len(events.latest[-1].message) <= 300
    assert snapshot.problems == ()


def test_server2016_with_37_pending_updates():
    snapshot = parse(fixture("server2016-37-updates.json"), now=NOW)
    updates = snapshot.updates
    assert (updates.pending, updates.security, updates.reboot_required) == (37, 5, True)
    assert len(updates.titles) == 20
    assert updates.titles[0] == "2026-11 Cumulative Update for Windows Server 2016 for x64-based Systems (KB5070881)"
    assert updates.last_installed == utc(2026, 7, 20, 3, 14, 9)
    assert 120 <= (NOW - updates.last_installed) / DAY <= 124  # four months
    assert snapshot.events.counts[("Schannel", "error")] == 14
    assert snapshot.disks[0].device == "DELL PERC H730P Mini" and snapshot.disks[0].healthy is True
    assert snapshot.failed_services == ()


def test_server2019_with_c_full():
    snapshot = parse(fixture("server2019-c-full.json"), now=NOW)
    c_drive = next(fs for fs in snapshot.filesystems if fs.mountpoint == "C:")
    assert c_drive.avail_bytes / c_drive.size_bytes == pytest.approx(0.003, abs=1e-5)
    assert [(service.name, service.state, service.display_name) for service in snapshot.failed_services] == [
        ("MSSQLSERVER", "Stopped", "SQL Server (MSSQLSERVER)"),
        ("SQLSERVERAGENT", "Stopped", "SQL Server Agent (MSSQLSERVER)")]
    assert all(service.manager == "windows" for service in snapshot.failed_services)
    latest = snapshot.events.latest[0]
    assert "\r" not in latest.message and "\n" not in latest.message
    assert latest.message.endswith("service-specific error: There is not enough space on the disk.")
    assert "\\Device\\HarddiskVolume2" in snapshot.events.latest[1].message
    assert [disk.device for disk in snapshot.disks] == ["VMware Virtual disk (disk 0)", "VMware Virtual disk (disk 1)"]


def test_server2008r2_with_powershell_2_shapes():
    snapshot = parse(fixture("server2008r2.json"), now=NOW)
    assert snapshot.os.name == "Microsoft Windows Server 2008 R2 Standard"  # WMI's trailing space dropped
    assert (snapshot.os.version, snapshot.os.build, snapshot.os.server) == ("6.1.7601", "7601", True)
    # DMTF with an offset in minutes: 22:14:05.375199 at UTC+1
    assert snapshot.boot_time == pytest.approx(utc(2026, 10, 31, 21, 14, 5) + 0.375199)
    assert snapshot.antivirus is None  # no Defender cmdlet, no Security Center on a server: not reported
    assert [(disk.device, disk.healthy, disk.status, disk.model) for disk in snapshot.disks] == [
        ("\\\\.\\PHYSICALDRIVE0", True, "OK", "HP LOGICAL VOLUME SCSI Disk Device"),
        ("\\\\.\\PHYSICALDRIVE1", False, "Pred Fail", "HP LOGICAL VOLUME SCSI Disk Device")]
    # Get-EventLog records: Source/EntryType/TimeGenerated/EventID, level names
    assert snapshot.events.counts == {("Service Control Manager", "error"): 4,
                                      ("Microsoft-Windows-GroupPolicy", "error"): 1}
    first = snapshot.events.latest[0]
    assert (first.source, first.level, first.event_id, first.time) == (
        "Service Control Manager", "error", 7034, utc(2026, 11, 20, 7, 2, 11))
    # the display name with typographic quotes, a dash and an accent, and one with " and \
    halley, sicra = snapshot.failed_services
    assert halley.display_name == "Servizio di aggiornamento “Halley” – Comune di Forlì"
    assert first.message.startswith("Il servizio Servizio di aggiornamento “Halley” – Comune di Forlì è stato")
    assert sicra.display_name == 'Agente "Sicr@Web" (C:\\Halley\\bin)'
    # the update search failed on the host: a problem in words, the other update facts still there
    assert snapshot.updates.pending is None and snapshot.updates.reboot_required is False
    assert snapshot.updates.last_installed == utc(2020, 1, 16, 3, 5, 12)
    (problem,) = snapshot.problems
    assert problem.startswith("the pending Windows Updates could not be read: Windows Update cannot reach its "
                              "update server (0x8024402c)")
    assert "WSUS" in problem and "proxy" in problem


def test_windows10_with_an_outdated_third_party_antivirus():
    snapshot = parse(fixture("windows10-security-center.json"), now=NOW)
    assert snapshot.os.server is False
    defender, eset = snapshot.antivirus  # Defender first; Security Center's own Defender entry not repeated
    assert (defender.product, defender.enabled, defender.source) == ("Microsoft Defender", False, "defender")
    assert (eset.product, eset.enabled, eset.realtime, eset.source) == ("ESET Security", True, True, "security_center")
    assert eset.signature_updated is None
    assert snapshot.problems == ("Security Center reports the signatures of ESET Security out of date: check its "
                                 "updates",)
    assert snapshot.events.counts[("Microsoft-Windows-Kernel-Power", "critical")] == 1
    assert snapshot.failed_services == ()  # OneSyncSvc, a per-user instance, edgeupdate


def test_windows10_without_any_antivirus_reports_an_empty_tuple():
    text = edited("windows10-security-center.json", defender=None, securitycenter=[])
    assert parse(text, now=NOW).antivirus == ()


# -- failures on the host become problems ---------------------------------------------------------


def test_section_errors_become_problems_and_the_rest_is_kept():
    errors = [
        {"section": "updates", "message": 'Exception calling "Search" with "1" argument(s): "Accesso negato. '
                                          '(Eccezione da HRESULT: 0x80070005 (E_ACCESSDENIED))"'},
        {"section": "history", "message": "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"},
        {"section": "defender", "message": "Operation failed with the following error: 0x800106ba"},
        {"section": "events", "message": "Attempted to perform an unauthorized operation."},
        {"section": "pdisks", "message": "Quota violation (Exception from HRESULT: 0x80041006)"},
        {"section": "securitycenter", "message": "Invalid namespace \"root\\SecurityCenter2\""},
    ]
    text = edited("server2019-healthy.json", updates=None, history=None, defender=None, events=None, pdisks=None,
                  errors=errors)
    snapshot = parse(text, now=NOW)
    assert snapshot.problems == (
        "the pending Windows Updates could not be read: access denied (0x80070005); the account needs local admin "
        "rights to query Windows Update",
        "the Windows Update history could not be read: access denied (0x80070005); the account needs local admin "
        "rights to query Windows Update",
        "Microsoft Defender's state (Get-MpComputerStatus) could not be read: the Microsoft Defender service is not "
        "running (0x800106ba); Defender is disabled or replaced by another antivirus (which a server cannot report "
        "to the probe)",
        "the System event log could not be read: access denied; the account needs to be in Event Log Readers (or "
        "local Administrators) to read the System log",
        "the physical disks' health could not be read: WMI failed (0x80041006); check the repository with 'winmgmt "
        "/verifyrepository' and restart the Windows Management Instrumentation service",
    )  # a missing Security Center namespace is no fault
    assert snapshot.updates.pending is None and snapshot.updates.last_installed is None
    assert snapshot.updates.reboot_required is False
    assert snapshot.antivirus is None and snapshot.events is None and snapshot.disks is None
    assert snapshot.filesystems and snapshot.memory_total_bytes  # what worked is still there


def test_a_failed_os_section_still_gives_a_snapshot():
    text = edited("server2019-healthy.json", os=None,
                  errors=[{"section": "os", "message": "Invalid class \"Win32_OperatingSystem\" (0x80041010)"}])
    snapshot = parse(text, now=NOW)
    assert snapshot.os.family == "windows" and snapshot.os.server is None and snapshot.os.version == ""
    assert snapshot.boot_time is None and snapshot.memory_total_bytes is None
    assert snapshot.problems[0].startswith("the operating system facts (WMI Win32_OperatingSystem) could not be "
                                           "read: WMI failed (0x80041010)")
    assert support_status(snapshot.os, NOW).end_of_support is None


@pytest.mark.parametrize("output,expected", [
    ("", "printed nothing"),
    ("   \r\n", "printed nothing"),
    ("#< CLIXML\r\n<Objs Version=\"1.1.0.1\"></Objs>", "not the output of Custode's Windows probe"),
    ("<html><body>403 Forbidden</body></html>", "not the output of Custode's Windows probe"),
    ('{"probe":"custode-linux","format":1\n,"end":true}', "not the output of Custode's Windows probe"),
    ('{"probe":"custode-windows","format":1\n,"ps":"5.1"\n,"os":{"Caption":', "truncated"),
    ('{"probe":"custode-windows","format":1\n,"ps":"5.1"\n,"errors":[]\n', "truncated"),
    ('{"probe":"custode-windows","format":1\n,"os":{"Caption":"x",}\n,"end":true}', "not valid JSON"),
])
def test_output_that_is_not_the_probe_raises(output, expected):
    with pytest.raises(ProbeOutputError, match=expected) as caught:
        parse(output, now=NOW)
    if output.strip():
        assert "received " + repr(output.strip()[:12])[:-1] in str(caught.value)  # says what came instead


def test_truncated_output_names_the_section_that_did_not_finish():
    text = fixture("server2016-37-updates.json")
    cut = text[:text.index(',"updates"')]
    with pytest.raises(ProbeOutputError) as caught:
        parse(cut, now=NOW)
    message = str(caught.value)
    assert "stopped after section 'history' while reading 'updates'" in message
    assert "raise the poll timeout" in message
    with pytest.raises(ProbeOutputError, match=r"max_output"):
        parse(text[:1500] + "\n[… 48213 more bytes not kept]", now=NOW)


def test_text_before_the_document_is_skipped():
    banner = "Benvenuto sul server del Comune\r\nUltimo accesso: lunedì\r\n"
    snapshot = parse("\ufeff" + banner + fixture("server2019-healthy.json"), now=NOW)
    assert snapshot.os.name == "Microsoft Windows Server 2019 Standard"


# -- liberal reading ------------------------------------------------------------------------------


def test_numbers_as_strings_decimal_commas_and_single_objects():
    text = edited(
        "server2019-healthy.json",
        os={"Caption": "Microsoft Windows Server 2019 Standard", "Version": "10.0.17763", "ProductType": "3",
            "LastBootUpTime": "/Date(1794450707500)/", "TotalVisibleMemorySize": "16776692",
            "FreePhysicalMemory": "9123456,5", "SizeStoredInPagingFiles": None},
        cpu={"LoadPercentage": "7", "NumberOfLogicalProcessors": "8"},  # one object, not a list of one
        disks={"DeviceID": "C:", "Size": "136362713088", "FreeSpace": "1,5", "VolumeName": None,
               "FileSystem": "ReFS"},
        reboot=True,
        time=None,
    )
    snapshot = parse(text, now=NOW)
    assert snapshot.os.build == "17763" and snapshot.os.server is True  # build from the version
    assert snapshot.boot_time == 1794450707.5
    assert snapshot.memory_total_bytes == 16776692 * 1024
    assert snapshot.memory_available_bytes == 9123456.5 * 1024
    assert snapshot.swap_total_bytes is None  # not reported is None, never zero
    assert snapshot.cpu_count == 8 and snapshot.cpu_busy_ratio == pytest.approx(0.07)
    (c_drive,) = snapshot.filesystems
    assert c_drive.avail_bytes == 1.5 and c_drive.fstype == "ReFS" and c_drive.label == ""
    assert snapshot.updates.reboot_required is True
    assert snapshot.time == NOW  # no host clock reported: ours


def test_escapes_and_raw_unicode_both_read():
    services = [
        {"Name": "HalleyUpd", "DisplayName": "Servizio di aggiornamento \u201cHalley\u201d", "State": "Stopped",
         "ExitCode": 1067},
        {"Name": "Tab", "DisplayName": "a\tb\u0000c \ud83d", "State": "Start Pending", "ExitCode": "0"},
    ]
    escaped = edited("server2019-healthy.json", services=services)
    assert "\\u201cHalley\\u201d" in escaped
    raw = escaped.replace("\\u201c", "\u201c").replace("\\u201d", "\u201d")
    for text in (escaped, raw):
        halley, tab = parse(text, now=NOW).failed_services
        assert halley.display_name == "Servizio di aggiornamento “Halley”"
        assert tab.state == "Start Pending"
        assert tab.display_name.startswith("a\tb\x00c ") and tab.display_name.encode("utf-8")  # lone surrogate cleaned


@pytest.mark.parametrize("value,expected", [
    ("2026-11-12T02:31:47.5000000Z", utc(2026, 11, 12, 2, 31, 47) + 0.5),
    ("2026-11-12T03:31:47.5000000+01:00", utc(2026, 11, 12, 2, 31, 47) + 0.5),
    ("2026-11-12T02:31:47", utc(2026, 11, 12, 2, 31, 47)),
    ("20261112033147.500000+060", utc(2026, 11, 12, 2, 31, 47) + 0.5),
    ("20261111213147.000000-300", utc(2026, 11, 12, 2, 31, 47)),
    ("/Date(1794450707500)/", 1794450707.5),
    ("11/12/2026 02:31:47", utc(2026, 11, 12, 2, 31, 47)),
    (1794450707, 1794450707.0),
    ("0001-01-01T00:00:00", None),
    ("16010101000000.000000+000", None),
    ("********", None),
    ("", None),
])
def test_boot_time_in_every_date_shape(value, expected):
    os_record = json.loads(fixture("server2019-healthy.json"))["os"]
    snapshot = parse(edited("server2019-healthy.json", os={**os_record, "LastBootUpTime": value}), now=NOW)
    assert snapshot.boot_time == (pytest.approx(expected) if expected is not None else None)


def test_defender_signature_age_when_the_date_is_missing():
    record = json.loads(fixture("server2019-healthy.json"))["defender"]
    text = edited("server2019-healthy.json", defender={**record, "AntivirusSignatureLastUpdated": None,
                                                       "AntivirusSignatureAge": "3"})
    assert parse(text, now=NOW).antivirus[0].signature_updated == NOW - 3 * DAY
    passive = edited("server2019-healthy.json", defender={**record, "AMRunningMode": "Passive Mode"})
    assert "passive mode" in parse(passive, now=NOW).problems[0]


def test_physical_disk_health_codes():
    disks = [
        {"FriendlyName": "ST4000NM0035", "Model": "ST4000NM0035-1V4107", "DeviceId": "0", "HealthStatus": 1,
         "OperationalStatus": ["Predictive Failure", "OK"], "MediaType": 3},
        {"FriendlyName": "Samsung SSD 870", "DeviceId": "1", "HealthStatus": "Unknown",
         "OperationalStatus": "Lost Communication"},
        {"FriendlyName": "PhysicalDisk2", "DeviceId": "2", "HealthStatus": "5", "OperationalStatus": "OK"},
    ]
    warning, lost, unknown = parse(edited("server2019-healthy.json", pdisks=disks), now=NOW).disks
    assert (warning.healthy, warning.status, warning.model) == (False, "Warning (Predictive Failure OK)",
                                                                "ST4000NM0035-1V4107")
    assert (lost.healthy, lost.status) == (False, "Unknown (Lost Communication)")
    assert (unknown.healthy, unknown.status) == (None, "Unknown")


# -- rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,exit_code,trigger,delayed,expected", [
    ("sppsvc", 1, False, False, True),  # on the built-in list whatever happened
    ("clr_optimization_v4.0.30319_32", 0, False, False, True),
    ("CDPUserSvc_4a7b2", 0, False, False, True),
    ("OneSyncSvc", 0, False, True, True),
    ("wuauserv", 0, True, False, True),  # trigger-start, exited normally
    ("wuauserv", 1067, False, True, False),  # delayed-start that died: the host gets no patches
    ("WbioSrvc", 1077, True, None, True),
    ("BITS", 1077, False, True, True),  # delayed, not needed since boot
    ("Spooler", 0, False, False, False),  # an automatic service someone stopped
    ("MSSQLSERVER", 1066, False, None, False),
    ("Veeam_backup", 0, False, False, False),  # an underscore alone is not a per-user instance
])
def test_expected_stopped_services(name, exit_code, trigger, delayed, expected):
    assert service_is_expected_stopped(name, exit_code=exit_code, trigger=trigger, delayed=delayed) is expected


@pytest.mark.parametrize("state,expected", [
    (266240, ("on", True)),  # 0x041000
    (266256, ("on", False)),  # 0x041010
    (393472, ("off", True)),  # 0x060100 Windows Defender off
    (397568, ("on", True)),  # 0x061100 Windows Defender on
    (270336, ("snoozed", True)),  # 0x042000
    (274432, ("expired", True)),  # 0x043000
])
def test_security_center_product_state(state, expected):
    assert decode_product_state(state) == expected


# -- end of support -------------------------------------------------------------------------------


def windows(name: str, version: str, server: bool | None) -> OsInfo:
    return OsInfo(family="windows", name=name, version=version, build=version.split(".")[-1], server=server)


@pytest.mark.parametrize("os_info,release,end,unsupported,excluded", [
    (windows("Microsoft Windows Server 2008 Standard", "6.0.6003", True), "Windows Server 2008", "2020-01-14",
     True, True),
    (windows("Microsoft Windows Server 2008 R2 Standard", "6.1.7601", True), "Windows Server 2008 R2",
     "2020-01-14", True, True),
    (windows("Microsoft Windows Server 2012 Standard", "6.2.9200", True), "Windows Server 2012", "2023-10-10",
     True, False),
    (windows("Microsoft Windows Server 2012 R2 Datacenter", "6.3.9600", True), "Windows Server 2012 R2",
     "2023-10-10", True, False),
    (windows("Microsoft Windows Server 2016 Standard", "10.0.14393", True), "Windows Server 2016", "2027-01-12",
     False, False),
    (windows("Microsoft Windows Server 2019 Standard", "10.0.17763", True), "Windows Server 2019", "2029-01-09",
     False, False),
    (windows("Microsoft Windows Server 2022 Standard", "10.0.20348", True), "Windows Server 2022", "2031-10-14",
     False, False),
    (windows("Microsoft Windows Server 2025 Standard", "10.0.26100", True), "Windows Server 2025", "2034-10-10",
     False, False),
    (windows("Microsoft Windows 7 Professional", "6.1.7601", False), "Windows 7", "2020-01-14", True, True),
    (windows("Microsoft Windows 8 Pro", "6.2.9200", False), "Windows 8", "2016-01-12", True, False),
    (windows("Microsoft Windows 8.1 Pro", "6.3.9600", False), "Windows 8.1", "2023-01-10", True, False),
    (windows("Microsoft Windows 10 Pro", "10.0.19045", False), "Windows 10 22H2 (Home/Pro)", "2025-10-14", True,
     False),
    (windows("Microsoft Windows 10 Enterprise LTSC 2021", "10.0.19044", False), "Windows 10 Enterprise LTSC 2021",
     "2027-01-12", False, False),
    (windows("Microsoft Windows 11 Pro", "10.0.26100", False), "Windows 11 24H2 (Home/Pro)", "2026-10-13", True,
     False),
    (windows("Microsoft Windows 11 Enterprise", "10.0.26100", False), "Windows 11 24H2 (Enterprise/Education)",
     "2027-10-12", False, False),
    (windows("Microsoft Windows 11 Pro", "10.0.26200", False), "Windows 11 25H2 (Home/Pro)", "2027-10-12", False,
     False),
])
def test_support_status_of_each_release(os_info, release, end, unsupported, excluded):
    status = support_status(os_info, NOW)
    assert status.release == release
    assert dt.datetime.fromtimestamp(status.end_of_support, dt.timezone(dt.timedelta(hours=-8))).date() == \
        dt.date.fromisoformat(end)
    assert status.unsupported is unsupported and status.contract_excluded is excluded
    assert status.reason.startswith(release + ":")
    assert end in status.reason
    assert ("no guarantee" in status.reason) is excluded


def test_support_status_the_day_support_ends():
    server2016 = windows("Microsoft Windows Server 2016 Standard", "10.0.14393", True)
    last_day = utc(2027, 1, 12, 20, 0, 0)  # noon in Redmond
    assert support_status(server2016, last_day).unsupported is False
    assert support_status(server2016, last_day + DAY).unsupported is True
    assert "(1 days left)" in support_status(server2016, last_day - DAY).reason


def test_support_status_of_unknown_builds_and_missing_versions():
    insider = support_status(windows("Microsoft Windows 11 Pro Insider Preview", "10.0.27842", False), NOW)
    assert insider.end_of_support is None and insider.unsupported is False and "does not know" in insider.reason
    nt4 = support_status(OsInfo(family="windows", name="Windows NT 4.0", version="4.0.1381", build="1381"), NOW)
    assert nt4.contract_excluded is True and nt4.end_of_support is None
    blank = support_status(OsInfo(family="windows", name="Windows"), NOW)
    assert blank.end_of_support is None and "did not report" in blank.reason
    assert support_status(OsInfo(family="linux", name="Debian GNU/Linux 12"), NOW).unsupported is False


# -- the whole path through WinRM -----------------------------------------------------------------


@pytest.fixture
def winrm_double(monkeypatch):
    with WinrmServer(tls=True, chunk_size=4096) as double:
        monkeypatch.setenv(PASSWORD_ENV, double.password)
        yield double


def winrm_host(server: WinrmServer) -> HostConfig:
    options = WinrmOptions.model_validate({
        "user": server.user, "password": {"env": PASSWORD_ENV}, "scheme": "https", "port": server.port,
        "auth": "basic", "ca_file": str(server.ca_file), "connect_timeout": 5})
    return HostConfig(address="127.0.0.1", transport="winrm", winrm=options)


def test_probe_through_winrm_end_to_end(winrm_double):
    windows_output = fixture("server2016-37-updates.json").replace("\n", "\r\n")
    winrm_double.on(re.escape(COMMAND_HEADER), (0, windows_output, ""))
    with open_transport("srv-protocollo", winrm_host(winrm_double)) as transport:
        assert isinstance(transport, WinrmTransport)
        result = transport.run(probe_command(), timeout=60)
        quick = transport.run(probe_command(include_updates=False), timeout=60)
    assert result.ok and not result.truncated and quick.ok
    sent, sent_quick = winrm_double.scripts  # what the stager read from stdin: the probe, whole
    assert sent == probe_command() and sent_quick == probe_command(include_updates=False)
    commands = [request for request in winrm_double.requests if request.action == "Command"]
    assert all(COMMAND_HEADER not in (request.command_line or "") for request in commands)
    assert all(request.stager == stdin_stager() for request in commands)
    snapshot = parse(result.stdout, now=NOW)
    assert snapshot.updates.pending == 37 and snapshot.updates.security == 5
    assert snapshot.os.name == "Microsoft Windows Server 2016 Standard"
    assert snapshot == parse(fixture("server2016-37-updates.json"), now=NOW)
