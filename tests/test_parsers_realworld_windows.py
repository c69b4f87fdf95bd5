"""Hyper-V Backup Utility, the "Windows Backup Mail Report" script and vee-mail on the real-world corpus.

The files under tests/data/mail/realworld/{hyperv,wbadmin,veeam_agent} were
rebuilt from the generators' public sources (provenance in each index.json);
the labels there (software, status, job) are asserted here through the same
path as ``custode mail classify``. The variations below (old log formats,
quoted forwards, rewritten subjects, plain-text renderings) are what the
corpus does not contain but mailboxes do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custode.agent.backups.parsers import classify, hyperv_backup, veeam_agent, wbadmin
from custode.agent.mail.message import MailMessage, parse_message

REALWORLD = Path(__file__).parent / "data" / "mail" / "realworld"
FOLDERS = ("hyperv", "wbadmin", "veeam_agent")


def _cases() -> list[tuple[Path, dict]]:
    cases = []
    for folder in FOLDERS:
        index = json.loads((REALWORLD / folder / "index.json").read_text(encoding="utf-8"))
        cases.extend((REALWORLD / folder / name, labels) for name, labels in sorted(index.items()))
    return cases


def _classify(path: Path):  # noqa: ANN202 - a Classification
    return classify(parse_message(path.read_bytes()))


def _with_subject(path: Path, subject: str) -> MailMessage:
    """The file with its Subject header replaced (raw header text, as a gateway rewrites it)."""
    raw = path.read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.lower().startswith(b"subject:")]
    lines.append(b"Subject: " + subject.encode())
    return parse_message(b"\n".join(lines) + sep + body)


@pytest.mark.parametrize("path,labels", _cases(),
                         ids=lambda v: f"{v.parent.name}/{v.name}" if isinstance(v, Path) else "")
def test_realworld_labels(path: Path, labels: dict) -> None:
    verdict = _classify(path)
    assert verdict.kind == "report", verdict.reason
    report = verdict.report
    assert report is not None
    assert report.status == labels["status"]
    assert report.job == (None if path.name in NO_HOST_IN_LOG else labels["job"])
    assert report.software == labels["software"]


NO_HOST_IN_LOG = {"log_2of2_success_with_error_line.eml"}
"""Logs that name no host (no ``Hostname:`` line, default subject): the job is not guessed."""


# ---------------------------------------------------------------------------------------------- Hyper-V


def test_hyperv_items_errors_and_times() -> None:
    report = _classify(REALWORLD / "hyperv" / "log_1of2_one_failed.eml").report
    assert report is not None and report.host == "HV-CREMA02"
    assert {item.name: item.status for item in report.items} == {"SRV-TRIBUTI": "success", "SRV-SUAP": "failure"}
    assert "0x80070070" in (report.error or "")  # the multi-line exception is kept whole
    assert report.started_at is not None and report.started_at.isoformat() == "2026-12-07T01:00:02+01:00"
    assert report.finished_at is not None and report.finished_at.isoformat() == "2026-12-07T01:31:40+01:00"
    assert report.details["backups_failed"] == 1


def test_hyperv_success_has_no_error() -> None:
    report = _classify(REALWORLD / "hyperv" / "log_3of3_success.eml").report
    assert report is not None and report.status == "success" and report.error is None
    assert [item.status for item in report.items] == ["success"] * 3


def test_hyperv_claimed_success_with_error_line_is_a_warning() -> None:
    report = _classify(REALWORLD / "hyperv" / "log_2of2_success_with_error_line.eml").report
    assert report is not None and report.status == "warning"
    assert "network error" in (report.error or "")
    assert {item.name: item.status for item in report.items} == {"SRV-GIS": "warning", "SRV-PAGHE": "success"}


def test_hyperv_vms_not_found_are_failed_items() -> None:
    report = _classify(REALWORLD / "hyperv" / "log_0of2_vms_not_found.eml").report
    assert report is not None and report.status == "failure"
    assert {item.name: item.status for item in report.items} == {"SRV-BIBLIOTECA": "failure", "SRV-SCUOLE": "failure"}


_LEGACY_LOG = """************ Running with the following config *************.
Utility Version:.........22.03.26
Hostname:................HV01.
Windows Version:.........10.0.17763.
VMs to backup:...........
.........................VM1
.........................VM2
Backup directory:........\\\\nas\\hv.
************************************************************
2022-05-01 22:00:00 [INFO] Process started
2022-05-01 22:00:01 [INFO] (VM:VM1) Removing previous backups
2022-05-01 22:10:01 [INFO] (VM:VM2) Removing previous backups
2022-05-01 22:20:00 [INFO] Process finished.
2022-05-01 22:20:00 [INFO] Log finished
"""


def test_hyperv_legacy_log_without_counters() -> None:
    """Versions before 2023: dotted config, no counters, no per-VM outcome line."""
    report = hyperv_backup.parse(MailMessage(subject="Hyper-V Backup Utility Log", text=_LEGACY_LOG))
    assert report is not None and report.status == "success" and report.job == "HV01"
    assert [item.name for item in report.items] == ["VM1", "VM2"]
    failed = _LEGACY_LOG.replace("[INFO] (VM:VM2) Removing previous backups", "[ERROR] (VM:VM2) Access denied.")
    report = hyperv_backup.parse(MailMessage(subject="Hyper-V Backup Utility Log", text=failed))
    assert report is not None and report.status == "failure" and "Access denied" in (report.error or "")


def test_hyperv_quoted_forward_and_custom_subject() -> None:
    quoted = "Guarda qui sotto\n\n" + "\n".join("> " + line for line in _LEGACY_LOG.splitlines())
    report = hyperv_backup.parse(MailMessage(subject="Fwd: HV01 nightly", text=quoted))
    assert report is not None and report.status == "success" and report.host == "HV01"


def test_hyperv_no_vms_is_a_failure() -> None:
    text = ("2024-01-01 01:00:00 [INFO] Process started\r\n"
            "2024-01-01 01:00:00 [ERROR] There are no VMs running to backup\r\n"
            "2024-01-01 01:00:00 [INFO] Process finished.\r\n"
            "2024-01-01 01:00:00 [INFO] Number of VMs to Backup:0\r\n")
    report = hyperv_backup.parse(MailMessage(subject="Hyper-V Backup Utility Log 0/0 VMs Successful", text=text,
                                             message_id="<1@mx.example.com>"))
    assert report is not None and report.status == "failure"
    assert report.job is None  # no host in the log, and a mail server's Message-ID is not the host


def test_hyperv_lookalikes_are_not_reports() -> None:
    human = MailMessage(subject="Re: Hyper-V Backup Utility Log 0/2 VMs Successful",
                        text="Ho visto l'errore [ERROR] di stanotte, (VM:SRV-X) non salvata. Controllo io.")
    assert hyperv_backup.parse(human) is None
    talk = MailMessage(subject="Hyper-V Backup Utility Log 0/2 VMs Successful",
                       text="Ciao, stanotte il backup delle VM non è andato: guardate voi?")
    assert hyperv_backup.parse(talk) is None
    other_tool = MailMessage(subject="Image Backup Utility Log",
                             text="2024-01-01 01:00:00 [INFO] Process started\n"
                                  "2024-01-01 01:10:00 [SUCCESS] Backup Successful\n"
                                  "2024-01-01 01:10:00 [INFO] Process finished.\n")
    assert hyperv_backup.parse(other_tool) is None


# ------------------------------------------------------------------------------ Windows Backup Mail Report


def test_mail_report_fields() -> None:
    report = _classify(REALWORLD / "wbadmin" / "wbjobreport_failed.eml").report
    assert report is not None and report.host == "SRV-ANAGRAFE"
    assert "shadow copy" in (report.error or "")
    assert [(item.name, item.status) for item in report.items] == [("C:", "failure"), ("D:", "failure")]
    assert report.started_at is not None and report.started_at.isoformat() == "2025-03-06T21:00:02+01:00"
    report = _classify(REALWORLD / "wbadmin" / "wbjobreport_successful.eml").report
    assert report is not None and report.error is None and report.size_bytes is not None
    assert report.finished_at is not None and report.finished_at.isoformat() == "2025-03-05T21:38:13+01:00"


_PLAIN_REPORT = """ACME Backup Report for SRV01
Todays date:
2025-03-06 23:30
Last Successful Backup:
2025-03-04 21:36
Start time last backup:
3/6/2025 9:00:02 PM
End time last backup:\t3/6/2025 9:04:51 PM
Backup Result:
Successful
Error Message (if applicable):

Name\tStatus\tSize
C:\tCompleted\t58.41 GB
"""


def test_mail_report_as_plain_text_and_quoted() -> None:
    """A client's text rendering (label and value on separate lines or tab-separated), and a quoted forward."""
    report = wbadmin.parse(MailMessage(subject="Successful Backup on SRV01", text=_PLAIN_REPORT))
    assert report is not None and report.status == "success" and report.job == "SRV01"
    assert [item.name for item in report.items] == ["C:"]
    quoted = "\n".join("> " + line for line in _PLAIN_REPORT.replace("Successful\n", "Failed\n").splitlines())
    report = wbadmin.parse(MailMessage(subject="Fwd: guarda", text="Vedi sotto\n" + quoted))
    assert report is not None and report.status == "failure" and report.job == "SRV01"


def test_mail_report_script_failure_note() -> None:
    report = wbadmin.parse(MailMessage(subject="Failed Backup on SRV01", text="The backup script failed to run!"))
    assert report is not None and report.status == "failure" and report.job == "SRV01"
    assert wbadmin.parse(MailMessage(subject="Failed Backup on SRV01", text="Il backup non è partito, chiamate?")) \
        is None


def test_mail_report_needs_its_layout() -> None:
    chat = MailMessage(subject="Backup result", text="Backup Result: | Failed\nci pensi tu?")
    assert wbadmin.parse(chat) is None


# ---------------------------------------------------------------------------------------------- vee-mail


@pytest.mark.parametrize("tag", ["***SPAM*** ", "[SPAM] ", "{Spam?} ", "SPAM: ", "***SPAM*** Fwd: ",
                                 "[EXTERNAL] [SPAM] "])
def test_veemail_spam_tags(tag: str) -> None:
    message = _with_subject(REALWORLD / "veeam_agent" / "veemail_failed_it.eml",
                            tag + "[Failed] SRV-TRIBUTI - venerdi, 07 marzo 2025 22:00:03 (Backup-Tributi)")
    report = veeam_agent.parse(message)
    assert report is not None and report.status == "failure"
    assert report.job == "SRV-TRIBUTI" and report.host == "SRV-TRIBUTI"
    assert report.software == "Veeam Agent for Linux"
    assert report.details["job_name"] == "Backup-Tributi"


def test_veemail_old_subject_without_job_name() -> None:
    """vee-mail before 0.6: ``[$STAT] $HN - $START``, no job in the subject."""
    message = _with_subject(REALWORLD / "veeam_agent" / "veemail_success_en.eml",
                            "[Success] SRV-PROTOCOLLO - Wednesday, 05 March 2025 22:00:03")
    report = veeam_agent.parse(message)
    assert report is not None and report.status == "success" and report.job == "SRV-PROTOCOLLO"


def test_veemail_session_type_and_job_name_kept() -> None:
    report = _classify(REALWORLD / "veeam_agent" / "veemail_success_full_it.eml").report
    assert report is not None and report.job == "SRV-GIS"
    assert report.details["job_name"] == "BackupJob1" and report.details["session_type"] == "Full"
    assert report.details["sender_tool"] == "vee-mail"


# ---------------------------------------------------------------------------------------------- robustness

_FRAGMENTS = [
    "2024-01-01 01:00:00 ", "[INFO] ", "[ERROR] ", "[SUCCESS] ", "(VM:", ")", "VM name: ", " was not found",
    "Number of VMs to Backup:", "Backups Successful:", "Backups Failed:", "Export Successful", "Export failed",
    "Hostname: ", "VMs to backup:", "--- Running with the following config ---", "Process finished.", "\n", "> ",
    "Backup Report for ", "Backup Result: | ", "Successful", "Failed", "Last Successful Backup: | ",
    "Start time last backup: | ", "End time last backup:\t", "Error Message (if applicable):", "C: | Failed | 0 Bytes",
    "The backup script failed to run!", "0", "7", "HV-01", ".", ":", "|", "\t", "\u00e8",
]


def test_parsers_never_raise() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(subject=st.lists(st.sampled_from(["Hyper-V Backup Utility Log ", "1/2 VMs Successful", "Failed Backup on ",
                                             "SRV01", "[Failed] ", "***SPAM*** ", "Fwd: "]), max_size=5).map("".join),
           body=st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=10)), max_size=60).map("".join))
    def check(subject: str, body: str) -> None:
        message = MailMessage(subject=subject, text=body, message_id="<x@HV-01>")
        for parser in (hyperv_backup, wbadmin):
            report = parser.parse(message)
            assert report is None or report.status in ("success", "warning", "failure")

    check()
