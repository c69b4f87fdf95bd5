"""Acronis, Synology (Hyper Backup, Active Backup for Business) and QNAP HBS parsers: what fixtures cannot say."""

from __future__ import annotations

import pytest
from mailfactory import one_part_mail

from custode.agent.backups.parsers import acronis, qnap_hbs, synology_active_backup, synology_hyper_backup
from custode.agent.mail.message import MailMessage, parse_message

MODULES = (acronis, synology_hyper_backup, synology_active_backup, qnap_hbs)


def mail(subject: str, body: str, sender: str = "NAS01 <nas01@comune.example.it>", html: bool = False,
         extra: str = "") -> MailMessage:
    return parse_message(one_part_mail(subject, body, sender=sender, to="ced@comune.example.it",
                                       date="Tue, 04 Mar 2025 01:42:20 +0100", html=html, headers=extra))


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("message", [
    MailMessage(),
    mail("", ""),
    mail("BACKUP FAILED (", "(((("),
    mail("BACKUP FAILED (plan: )(machine: )", "Backup failed\n\n"),
    mail("[X] Backup task [", "Backup task [" * 500),
    mail("[Error][Hybrid Backup Sync]", "Message:\nSeverity:\n[Hybrid Backup Sync] job \""),
    mail("Active Backup for Business", "Active Backup for Business\nbackup task \u0130\u0130\u0130 " * 300),
    mail("Verbale riunione", "backup task completato errore job " * 2000),
], ids=["empty", "blank", "open-paren", "empty-parts", "unclosed", "qnap-fields", "unicode", "long-noise"])
def test_never_raises_and_ignores_junk(module, message: MailMessage) -> None:
    assert module.parse(message) is None


def test_dsm_title_without_task_name_still_reports_the_nas() -> None:
    # DSM's own event title, as a webhook capture shows it: the task name is not in it.
    message = mail("Data backup task on host01 partially completed",
                   "A new system event occurred on your host01 on 11-02-2026 at 21:28.\n"
                   "Data backup task on host01 partially completed",
                   sender="Synology DiskStation <noreply@comune.example.it>")
    report = synology_hyper_backup.parse(message)
    assert report is not None
    assert (report.job, report.host, report.status) == (None, "host01", "warning")


def test_hyper_backup_unquoted_task_name_from_subject() -> None:
    report = synology_hyper_backup.parse(mail("[NAS01] Backup task Daily Office has completed",
                                              "Dear user,\n\nBackup task Daily Office on NAS01 has completed.\n\n"
                                              "Sincerely,\nSynology DiskStation"))
    assert report is not None
    assert (report.job, report.host, report.status) == ("Daily Office", "NAS01", "success")


def test_hyper_backup_integrity_check_is_marked() -> None:
    report = synology_hyper_backup.parse(mail("[NAS01] Backup integrity check [Cloud] on NAS01 failed",
                                              "Dear user,\nBackup integrity check [Cloud] on NAS01 failed. "
                                              "Some backup data is corrupted.\nSincerely,\nSynology"))
    assert report is not None and report.status == "failure" and report.job == "Cloud"
    assert report.details["operation"] == "integrity_check"


def test_hyper_backup_needs_dsm_evidence_not_just_a_sentence() -> None:
    prose = mail("Backup", "Hi,\nthe backup task 'Daily' on NAS01 has failed again. Synology support is slow.\nBye",
                 sender="Luca Rossi <luca.rossi@comune.example.it>")
    assert synology_hyper_backup.parse(prose) is None


def test_other_products_are_not_taken_for_dsm() -> None:
    other = mail("[SRV01] Iperius: L'attività di backup Giornaliero su SRV01 non è riuscita",
                 "Gentile utente,\nL'attività di backup Giornaliero su SRV01 non è riuscita.\nIperius Backup",
                 sender="Iperius <backup@comune.example.it>")
    assert synology_hyper_backup.parse(other) is None


def test_replies_are_not_reports() -> None:
    reply = mail("R: [NAS01] Backup task [Daily] on NAS01 failed",
                 "Ci guardo io.\n> Dear user,\n> Backup task [Daily] on NAS01 failed.",
                 sender="Luca Rossi <luca.rossi@comune.example.it>")
    for module in MODULES:
        assert module.parse(reply) is None


def test_active_backup_status_from_fields_and_nas_detail() -> None:
    report = synology_active_backup.parse(mail("[NAS-BK] Active Backup for Business notification",
                                               "Dear user,\nTask name: PC-Tecnici\nDevice: PC-TEC-03\n"
                                               "Status: Failed\nError: Insufficient space\n"
                                               "Sincerely,\nSynology NAS-BK"))
    assert report is not None
    assert (report.job, report.host, report.status) == ("PC-Tecnici", "PC-TEC-03", "failure")
    assert report.error == "Insufficient space"
    assert report.details["nas"] == "NAS-BK"


def test_active_backup_for_microsoft_365_is_named_as_such() -> None:
    report = synology_active_backup.parse(mail("[NAS-BK] Active Backup for Microsoft 365 - Backup task "
                                               "[M365-Comune] has partially completed",
                                               "Dear user,\nBackup task [M365-Comune] has partially completed.\n"
                                               "Sincerely,\nSynology NAS-BK"))
    assert report is not None and report.status == "warning"
    assert report.software == "Synology Active Backup for Microsoft 365"


def test_active_backup_item_errors_become_the_report_error() -> None:
    html = ("<p>Dear user,</p><p>Backup task [Hyper-V] on NAS-BK was partially completed.</p>"
            "<table><tr><th>VM name</th><th>Status</th><th>Details</th></tr>"
            "<tr><td>VM1</td><td>Successful</td><td></td></tr>"
            "<tr><td>VM2</td><td>Failed</td><td>The virtual machine snapshot could not be created</td></tr></table>"
            "<p>Active Backup for Business</p>")
    report = synology_active_backup.parse(mail("[NAS-BK] Active Backup for Business - Backup task Hyper-V", html,
                                               html=True))
    assert report is not None
    assert [(item.name, item.status) for item in report.items] == [("VM1", "success"), ("VM2", "failure")]
    assert report.status == "warning"  # the mail states the overall outcome
    assert report.host is None
    assert report.error and "snapshot could not be created" in report.error


@pytest.mark.parametrize("text", [
    '[Hybrid Backup Sync] Started Backup job: "Nightly".',
    '[Hybrid Backup Sync] Finished Restore job: "Recover files".',
    "[Hybrid Backup Sync] The license will expire in 7 days.",
])
def test_qnap_events_that_are_not_job_results(text: str) -> None:
    message = mail("[Info][Hybrid Backup Sync] Notification from your device: Q1",
                   f"NAS Name: Q1\nSeverity: Information\nDate/Time: 2025/03/05 22:00:00\n"
                   f"App Name: Hybrid Backup Sync\nCategory: Job Status\nMessage: {text}")
    assert qnap_hbs.parse(message) is None


def test_qnap_severity_wins_when_it_is_worse_than_the_message() -> None:
    message = mail("[Warning][Hybrid Backup Sync] Notification from your device: Q1",
                   "NAS Name: Q1\nSeverity: Warning\nApp Name: Hybrid Backup Sync\nCategory: Job Status\n"
                   'Message: [Hybrid Backup Sync] Finished Sync job: "Dropbox".')
    report = qnap_hbs.parse(message)
    assert report is not None
    assert (report.job, report.status, report.details["job_type"]) == ("Dropbox", "warning", "sync")


def test_acronis_recap_and_unstructured_subjects() -> None:
    recap = mail("DAILY STATUS REPORT ON May 19, 2026, 4:40:25 PM (group: X) "
                 "(Critical: 0, Error: 1, Warning: 0, Information: 0)",
                 "Error\nBackup failed\nDevice\nSRV01\nPlan name\nP1", sender="noreply-abc@cloud.acronis.com")
    assert acronis.parse(recap) is None
    branded = mail("BACKUP SUCCEEDED (group: Foo)(resource: bar.local)(plan: Nightly (2))", "",
                   sender="Online Backup <noreply@partner.example>")
    report = acronis.parse(branded)
    assert report is not None
    assert (report.software, report.job, report.host, report.status) == (
        "Acronis Cyber Protect Cloud", "Nightly (2)", "bar.local", "success")


def test_signature_cache_does_not_leak_into_the_report() -> None:
    message = mail("[NAS01] Backup task [Daily] on NAS01 has completed",
                   "Dear user,\nBackup task [Daily] on NAS01 has completed.\nSincerely,\nSynology")
    for module in MODULES:
        module.parse(message)
    report = synology_hyper_backup.parse(message)
    assert report is not None and "_low_top_10k" not in report.as_dict()
