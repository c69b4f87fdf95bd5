"""Bacula/Bareos, Duplicati and UrBackup parsers: what the fixture mails cannot express."""

from __future__ import annotations

import time

import pytest

from custode.agent.backups.parsers import bacula, duplicati, urbackup
from custode.agent.mail.message import MailMessage, parse_message

MODULES = (bacula, duplicati, urbackup)

BACULA_SUMMARY = """\
10-Mar 08:00 bacula-dir JobId 2001: Bacula bacula-dir 15.0.2 (21Mar24):
Build OS: x86_64-pc-linux-gnu debian 12
JobId: 2001
Job: {job}
Backup Level: Full
Client: "srv-protocollo-fd" 15.0.2 (21Mar24) x86_64-pc-linux-gnu,debian,12
Start time: 10-Mar-2025 08:00:03
End time: 10-Mar-2025 08:41:19
SD Bytes Written: 728,636,818 (728.6 MB)
FD termination status: OK
SD termination status: OK
Termination: {termination}
"""


def _bacula(job: str = "Nightly.2025-03-10_08.00.00_03", termination: str = "Backup OK",
            subject: str = "Bacula: Backup OK of srv-protocollo-fd Full") -> MailMessage:
    return MailMessage(subject=subject, text=BACULA_SUMMARY.format(job=job, termination=termination))


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("message", [
    MailMessage(),
    MailMessage(subject="Termination", text="Termination:\nJob:\nJobId:\nClient:"),
    MailMessage(subject="UrBackup", text="UrBackup just did\n( a infos, b warnings, c errors)"),
    MailMessage(subject="Duplicati Backup report for", text="ParsedResult: \nBeginTime: (99999999999999999999)"),
    MailMessage(text='{"Data": {"ParsedResult": "Success", "BeginTime": 12}, "Extra": []} ParsedResult'),
    MailMessage(subject="[UrBackup] : No recent file backup", text=""),
    MailMessage(text="\x00\udcff" * 1000 + "Termination: Backup OK"),
])
def test_parsers_never_raise(module, message: MailMessage) -> None:
    module.parse(message)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_non_matching_mail_is_rejected_fast(module) -> None:
    plain = MailMessage(subject="Verbale giunta del 3 marzo", text=("Ordine del giorno, delibere e allegati.\n" * 2000))
    start = time.perf_counter()
    for _ in range(2000):
        assert module.parse(plain) is None
    assert (time.perf_counter() - start) / 2000 < 200e-6


@pytest.mark.parametrize("unique,job", [
    ("BackupClient1.2025-03-03_22.05.00_04", "BackupClient1"),
    ("Backup_Uffici_Comune.2025-03-03_22.05.00_04", "Backup_Uffici_Comune"),  # the Director's underscores stay
    ("OldJob.2009-01-06.22:05:00", "OldJob"),  # Bacula 1.x/2.x suffix
    ("Job.With.Dots.2025-03-03_22.05.00_17", "Job.With.Dots"),
])
def test_bacula_job_name_loses_only_the_timestamp(unique: str, job: str) -> None:
    report = bacula.parse(_bacula(job=unique))
    assert report is not None and report.job == job


@pytest.mark.parametrize("termination,status", [
    ("Backup OK", "success"),
    ("Backup OK -- with warnings", "warning"),
    ("*** Backup Error ***", "failure"),
    ("Backup Fatal Error", "failure"),
    ("Backup Canceled", "failure"),
    ("Backup failed -- incomplete", "failure"),
    ("Restore OK -- warning file count mismatch", "warning"),
    ("Verify Differences", "warning"),
    ("Copying OK", "success"),
    ("Inappropriate term code: X", "failure"),
])
def test_bacula_termination_words(termination: str, status: str) -> None:
    report = bacula.parse(_bacula(termination=termination))
    assert report is not None and report.status == status


def test_bacula_report_quoted_in_a_discussion_is_not_a_report_but_a_quoted_forward_is() -> None:
    quoted = "\n".join("> " + line for line in BACULA_SUMMARY.format(
        job="Nightly.2025-03-10_08.00.00_03", termination="*** Backup Error ***").splitlines())
    assert bacula.parse(MailMessage(subject="Problema backup", text="Vedi sotto\n" + quoted)) is None
    report = bacula.parse(MailMessage(subject="Fwd: Bacula: Backup Error of srv-protocollo-fd Full",
                                      text="Vedi sotto\n" + quoted))
    assert report is not None and report.status == "failure" and report.job == "Nightly"


def test_bacula_posts_to_the_users_list_are_not_reports() -> None:
    message = _bacula(subject="[Bacula-users] Backup Error on one client", termination="*** Backup Error ***")
    message.headers["list-id"] = "<bacula-users.lists.sourceforge.net>"
    assert bacula.parse(message) is None


def test_bacula_job_log_without_summary_falls_back_to_the_default_subject() -> None:
    message = MailMessage(subject="Bareos: Backup Fatal Error of pc-ragioneria-fd Incremental",
                          text="06-Mar 21:00 bareos-dir JobId 81: Start Backup JobId 81, "
                               "Job=backup-pc-ragioneria.2025-03-06_21.00.00_22\n"
                               "06-Mar 21:02 bareos-dir JobId 81: Fatal error: Failed to connect to client.")
    report = bacula.parse(message)
    assert report is not None
    assert (report.software, report.job, report.status, report.host) == (
        "Bareos", "backup-pc-ragioneria", "failure", "pc-ragioneria-fd")
    assert "Failed to connect" in (report.error or "")


DUPLICATI_NESTED = """\
ExaminedFiles: 10
SizeOfExaminedFiles: 2048
MainOperation: Backup
DeleteResults:
MainOperation: Delete
ParsedResult: Success
EndTime: 3/3/2025 10:09:41 PM (1741036181)
BeginTime: 3/3/2025 10:09:38 PM (1741036178)
BackendStatistics:
BytesUploaded: 512
ParsedResult: Success
EndTime: 1/1/0001 12:00:00 AM (-62135596800)
BeginTime: 3/3/2025 10:00:00 PM (1741035600)
TestResults:
ParsedResult: {test}
Interrupted: False
ParsedResult: {top}
Interrupted: {interrupted}
EndTime: 3/3/2025 10:09:45 PM (1741036185)
BeginTime: 3/3/2025 10:00:00 PM (1741035600)
"""


@pytest.mark.parametrize("test,top,interrupted,status", [
    ("Success", "Success", "False", "success"),
    ("Success", "Warning", "False", "warning"),
    ("Warning", "Warning", "False", "warning"),
    ("Success", "Error", "False", "failure"),
    ("Success", "Fatal", "False", "failure"),
    ("Success", "Success", "True", "warning"),
])
def test_duplicati_overall_result_is_the_worst_parsed_result(test: str, top: str, interrupted: str,
                                                             status: str) -> None:
    message = MailMessage(subject="Duplicati Backup report for Documenti",
                          text=DUPLICATI_NESTED.format(test=test, top=top, interrupted=interrupted))
    report = duplicati.parse(message)
    assert report is not None and report.status == status
    assert report.job == "Documenti"
    assert report.started_at is not None and report.started_at.isoformat() == "2025-03-03T22:00:00+01:00"
    assert report.finished_at is not None and report.finished_at.isoformat() == "2025-03-03T22:09:45+01:00"
    assert (report.size_bytes, report.transferred_bytes) == (2048, 512)


@pytest.mark.parametrize("subject,job", [
    ("Duplicati Backup report for Documenti", "Documenti"),
    ("[Warning] Duplicati Backup report for Server Anagrafe", "Server Anagrafe"),
    ("Duplicati Backup report for Server Anagrafe - Error", "Server Anagrafe"),
    ("Duplicati Backup report for Server Anagrafe (Success)", "Server Anagrafe"),
    ("Rapporto Duplicati per Paghe 2025", "Paghe 2025"),
    ("Backup notturno", None),
])
def test_duplicati_backup_name_from_the_subject(subject: str, job: str | None) -> None:
    report = duplicati.parse(MailMessage(subject=subject, text=DUPLICATI_NESTED.format(
        test="Success", top="Success", interrupted="False")))
    assert report is not None and report.job == job


def test_duplicati_reply_is_not_a_report() -> None:
    message = MailMessage(subject="Re: Duplicati Backup report for Documenti",
                          text="Tutto ok?\n" + DUPLICATI_NESTED.format(test="Success", top="Error",
                                                                         interrupted="False"))
    assert duplicati.parse(message) is None


def test_duplicati_custom_body_with_default_subject() -> None:
    message = MailMessage(subject="Duplicati Backup report for Documenti",
                          text="Il backup Documenti è terminato con esito: Error\nControllare il server.")
    report = duplicati.parse(message)
    assert report is not None and (report.job, report.status) == ("Documenti", "failure")


def test_urbackup_details_and_ok_alert() -> None:
    raw = (b'From: UrBackup <u@example.it>\nSubject: UrBackup: Resumed full image backup of "PC 1"\n - success\n'
           b"Date: Mon, 03 Mar 2025 12:41:09 +0100\nMessage-ID: <a@b>\nMIME-Version: 1.0\n"
           b"Content-Type: text/plain; charset=UTF-8\n\n"
           b'UrBackup just did a resumed full image backup of "PC 1".\n\nReport:\n( 3 infos, 0 warnings, 0 errors)\n\n'
           b"2025-03-03 12:30:02(info): Starting\n2025-03-03 12:41:02(info): Transferred 2 GB - Average speed\n")
    report = urbackup.parse(parse_message(raw))
    assert report is not None and (report.job, report.host, report.status) == ("PC 1", "PC 1", "success")
    assert report.details["level"] == "full" and report.details["backup_type"] == "image"
    assert report.details["resumed"] is True
    assert report.transferred_bytes == 2 * 1024 ** 3
    alert = urbackup.parse(MailMessage(subject="[UrBackup] PC-SINDACO: Image backup status is OK",
                                       text='Image backup status for client "PC-SINDACO" is back to ok.'))
    assert alert is not None and (alert.job, alert.status) == ("PC-SINDACO", "success")


def test_urbackup_success_subject_with_errors_in_the_log_is_a_warning() -> None:
    message = MailMessage(subject='UrBackup: Incremental file backup of "PC1" - success',
                          text='UrBackup just did an incremental file backup of "PC1".\nReport:\n'
                               "( 2 infos, 0 warnings, 1 error)\n2025-03-03 12:30:02(error): Cannot read x\n")
    report = urbackup.parse(message)
    assert report is not None and report.status == "warning" and report.error == "Cannot read x"
