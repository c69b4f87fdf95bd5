"""Macrium Reflect notifications (and the DailyBackup.ps1 wrapper's mail) on the real-world corpus.

The files under tests/data/mail/realworld/macrium were rebuilt from public
quotes (provenance and uncertainties in its index.json): no captured Macrium
mail exists in public, so the subject/body shapes are those two public
monitors quote from a real fleet, and the wrapper script's HTML is built from
its source. The variations below (forwards with a retyped subject, gateway
tags, replies, Macrium's own non-report mails, an HTML table with each cell on
its own line, aborted and cancelled runs) are what the corpus does not contain
but mailboxes do; messages built here are marked as such.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mailfactory import one_part_mail

from custode.agent.backups.parsers import macrium
from custode.agent.mail.message import MailMessage, parse_message

FOLDER = Path(__file__).parent / "data" / "mail" / "realworld" / "macrium"
INDEX = json.loads((FOLDER / "index.json").read_text(encoding="utf-8"))


def _load(name: str) -> MailMessage:
    return parse_message((FOLDER / name).read_bytes())


def _mail(subject: str, body: str, *, html: bool = False, headers: str = "",
          sender: str = "backup@comune.crema.cr.it") -> MailMessage:
    """A message built here (not a corpus sample), as a mail server would hand it over."""
    return parse_message(one_part_mail(subject, body, sender=sender, to="ced@comune.crema.cr.it",
                                       date="Tue, 04 Mar 2025 02:05:44 +0100", html=html, headers=headers))


def _with_subject(name: str, subject: str) -> MailMessage:
    """A corpus file with its Subject header replaced (raw header text, as a gateway rewrites it)."""
    raw = (FOLDER / name).read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    kept, skipping = [], False
    for line in head.split(b"\n"):
        if line.lower().startswith(b"subject:"):
            skipping = True
            continue
        if skipping and line[:1] in (b" ", b"\t"):
            continue  # the folded rest of the old Subject
        skipping = False
        kept.append(line)
    kept.append(b"Subject: " + subject.encode())
    return parse_message(b"\n".join(kept) + sep + body)


# ------------------------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("name", sorted(INDEX))
def test_corpus_labels(name: str) -> None:
    labels = INDEX[name]
    report = macrium.parse(_load(name))
    if labels["status"] == "not_a_report":
        assert report is None
        return
    assert report is not None
    assert report.software == labels["software"] == macrium.SOFTWARE
    assert report.status == labels["status"]
    assert report.job == labels["job"]


def test_every_corpus_file_is_indexed() -> None:
    assert {path.name for path in FOLDER.glob("*.eml")} == set(INDEX)


@pytest.mark.parametrize("name,host", [
    ("reflect_backup_success.eml", "SRV-ANAGRAFE"),
    ("reflect_backup_failed_definition.eml", "SRV-TRIBUTI"),
    ("reflect_backup_failed_fwd_outlook_it.eml", "SRV-TRIBUTI"),
    ("reflect_backup_with_warnings_folded.eml", "SRV-PROTOCOLLO"),
])
def test_the_computer_before_the_product_name_is_the_host(name: str, host: str) -> None:
    report = macrium.parse(_load(name))
    assert report is not None and report.host == host


def test_a_bracketed_definition_is_the_job_and_the_computer_stays_the_host() -> None:
    report = macrium.parse(_load("reflect_backup_failed_definition.eml"))
    assert report is not None
    assert (report.job, report.host, report.details["definition"]) == ("Immagine", "SRV-TRIBUTI", "Immagine")
    assert report.error is None and "no cause" in report.details["note"]  # "Failed :(" is a verdict, not a cause


def test_failure_count_zero_does_not_make_a_success_fail() -> None:
    report = macrium.parse(_load("reflect_backup_success.eml"))
    assert report is not None and report.status == "success" and report.error is None
    assert report.details["operation"] == "backup" and report.details["verdict"] == "Success"


def test_a_folded_subject_still_reads_with_warnings() -> None:
    report = macrium.parse(_load("reflect_backup_with_warnings_folded.eml"))
    assert report is not None and report.status == "warning" and report.details["verdict"] == "with Warnings"


def test_dailybackup_script_success_reads_exit_code_image_and_size() -> None:
    report = macrium.parse(_load("dailybackup_ps1_succeeded.eml"))
    assert report is not None
    assert (report.status, report.job, report.host) == ("success", "BackupNotturno", None)
    assert report.details["exit_code"] == 0
    assert report.details["image"] == "4A1F3C2B9D8E7F60-05-05.mrimg"
    assert report.details["definition_file"] == "C:\\Users\\ced\\Documents\\Reflect\\BackupNotturno.xml"
    assert report.details["duration"] == "23 minutes 41 seconds"
    assert report.size_bytes == int(48.27 * 1024 ** 3)


def test_dailybackup_script_failure_keeps_the_error_line_and_not_the_stale_image() -> None:
    report = macrium.parse(_load("dailybackup_ps1_failed.eml"))
    assert report is not None
    assert report.status == "failure" and report.details["exit_code"] == 1
    assert report.error == "[ERROR] Backup failed - See log for error"
    assert "image" not in report.details and report.size_bytes is None


# ------------------------------------------------------------------------------------ variations (built here)


@pytest.mark.parametrize("prefix", ["[EXTERNAL] ", "***SPAM*** ", "Fwd: ", "I: ", "[EXTERNAL] I: ", "{Spam?} "])
def test_gateway_tags_and_forward_prefixes_change_nothing(prefix: str) -> None:
    for name in ("reflect_backup_success.eml", "reflect_backup_failed_definition.eml"):
        plain = macrium.parse(_load(name))
        tagged = macrium.parse(_with_subject(name, prefix + _load(name).subject))
        assert plain is not None and tagged is not None
        assert (tagged.status, tagged.job, tagged.host) == (plain.status, plain.job, plain.host)


def test_an_inline_forward_with_a_retyped_subject_is_read_from_its_quoted_header() -> None:
    body = ("Guarda questo, stanotte non ha funzionato.\n\n"
            "-----Messaggio originale-----\n"
            "Da: backup@comune.crema.cr.it\n"
            "Inviato: martedì 4 marzo 2025 02:05\n"
            "A: ced@comune.crema.cr.it\n"
            "Oggetto: SRV-TRIBUTI(Immagine) Macrium Reflect - Backup Failed\n\n"
            "Failed :(\n")
    report = macrium.parse(_mail("I: backup di stanotte", body, sender="ced@comune.crema.cr.it"))
    assert report is not None and (report.status, report.job, report.host) == ("failure", "Immagine", "SRV-TRIBUTI")


def test_a_forward_quoted_with_marks_is_read_through_them() -> None:
    body = ("Da girare al fornitore.\n\n---------- Forwarded message ---------\n"
            "> From: backup@comune.crema.cr.it\n> Subject: SRV-PROTOCOLLO Macrium Reflect - Backup with Warnings\n>\n"
            "> Warning :|\n")
    report = macrium.parse(_mail("Fwd: SRV-PROTOCOLLO Macrium Reflect - Backup with Warnings", body))
    assert report is not None and report.status == "warning" and report.job == "SRV-PROTOCOLLO"


@pytest.mark.parametrize("subject", [
    "R: SRV-TRIBUTI(Immagine) Macrium Reflect - Backup Failed",
    "RE: SRV-TRIBUTI(Immagine) Macrium Reflect - Backup Failed",
    "[EXTERNAL] Re: SRV-TRIBUTI(Immagine) Macrium Reflect - Backup Failed",
])
def test_a_reply_quoting_a_report_is_not_a_report(subject: str) -> None:
    body = "Ho riavviato il NAS, stanotte riprovo.\n\n> Failed :(\n"
    assert macrium.parse(_mail(subject, body, sender="ced@comune.crema.cr.it")) is None


@pytest.mark.parametrize("subject,body", [
    ("Macrium Reflect update available", "A new version of Macrium Reflect is available. Success :)"),
    ("Your Macrium support expires in 30 days", "Renew now to keep receiving updates.\nWarning :|"),
    ("Macrium Reflect X: licence renewal", "Your licence key ends soon."),
    ("Macrium Reflect - Backup Success stories from our customers", "Read how they recovered."),
    ("Macrium Image Guardian - Event - SRV-ANAGRAFE", "Blocked file operation"),
    ("SRV-BACKUP: Site Manager Notification Email", "Backup Successful Success :)"),
])
def test_macrium_mail_that_is_no_backup_report_is_left_alone(subject: str, body: str) -> None:
    """Newsletter, licence and update wording built here (no public Macrium sample of them was found)."""
    assert macrium.parse(_mail(subject, body, sender="news@macrium.com",
                               headers="List-Unsubscribe: <https://www.macrium.com/unsubscribe>\n")) is None
    assert macrium.parse(_mail(subject, body, sender="news@macrium.com")) is None


def test_an_aborted_run_is_a_failure_whose_reason_is_kept() -> None:
    body = "Failure :(\nBackup aborted! - Write operation failed - Impossibile trovare il percorso di rete."
    report = macrium.parse(_mail("SRV-ANAGRAFE Macrium Reflect - Backup Failure", body))
    assert report is not None and report.status == "failure"
    assert report.error == "Backup aborted! - Write operation failed - Impossibile trovare il percorso di rete."


@pytest.mark.parametrize("verdict", ["Aborted", "Cancelled", "Canceled", "Completed with Errors", "Fail"])
def test_aborted_and_cancelled_verdicts_are_failures(verdict: str) -> None:
    report = macrium.parse(_mail(f"SRV-ANAGRAFE Macrium Reflect - Backup {verdict}", ""))
    assert report is not None and report.status == "failure"


def test_an_aborted_line_outweighs_a_success_subject() -> None:
    body = "Backup aborted! None of the specified backup locations could be written to"
    report = macrium.parse(_mail("SRV-ANAGRAFE Macrium Reflect - Backup Success", body))
    assert report is not None and report.status == "failure" and "None of the specified" in (report.error or "")


def test_a_clone_notification_is_read_as_a_clone() -> None:
    report = macrium.parse(_mail("PC-SINDACO Macrium Reflect - Clone Failure", "Failure :("))
    assert report is not None and report.status == "failure" and report.details["operation"] == "clone"


def test_html_with_each_cell_on_its_own_line_gives_computer_and_definition() -> None:
    html = ("<html><body>\n<table>\n<tr>\n<td>\nComputer Name:\n</td>\n<td>\nSRV-ANAGRAFE\n</td>\n</tr>\n"
            "<tr>\n<td>\nBackup definition:\n</td>\n<td>\n'Anagrafe completo'\n</td>\n</tr>\n</table>\n"
            "<p>Success :)</p>\n</body></html>")
    report = macrium.parse(_mail("Macrium Reflect - Backup Success", html, html=True))
    assert report is not None
    assert (report.status, report.job, report.host) == ("success", "Anagrafe completo", "SRV-ANAGRAFE")


def test_a_definition_file_path_becomes_its_name() -> None:
    body = "Warning :|\nComputer: SRV-TRIBUTI\nBackup definition: C:\\Users\\ced\\Documents\\Reflect\\Tributi F&F.xml"
    report = macrium.parse(_mail("Macrium Reflect - Backup with Warnings", body))
    assert report is not None and (report.job, report.host) == ("Tributi F&F", "SRV-TRIBUTI")


def test_a_rewritten_subject_naming_macrium_is_read_from_the_verdict_line() -> None:
    report = macrium.parse(_mail("Backup notturno SRV-TRIBUTI (Macrium)", "Échoué :(\nComputer Name: SRV-TRIBUTI"))
    assert report is not None and (report.status, report.job) == ("failure", "SRV-TRIBUTI")


def test_a_verdict_emoticon_alone_is_no_signature() -> None:
    assert macrium.parse(_mail("Backup notturno SRV-TRIBUTI", "Failed :(\nvia Macrium")) is None
    assert macrium.parse(_mail("Esito backup", "Success :)")) is None


@pytest.mark.parametrize("line,status", [
    ("[ERROR] XML invalid - See log for error", "failure"),
    ("[ERROR] Could not remove enough files to free up space for new backup image. Quitting Script.", "failure"),
    ("", "warning"),
])
def test_dailybackup_script_other_outcomes(line: str, status: str) -> None:
    html = ("<table>\n<tr><td><center>:::&nbsp;&nbsp;&nbsp;Macrium Backup Routine&nbsp;&nbsp;&nbsp;:::</center>"
            "</td></tr>\n"
            "<tr><td>Macrium Reflect Backup Definition File:</td></tr>\n"
            "<tr><td>D:\\Reflect\\Settimanale.xml</td></tr>\n"
            f"<tr><td>{line}</td></tr>\n</table>")
    report = macrium.parse(_mail("Macrium Nightly Backup", html, html=True, sender="notify@comune.crema.cr.it"))
    assert report is not None and report.status == status and report.job == "Settimanale"
    if status == "failure":
        assert report.error == line


def test_never_raises_on_odd_input() -> None:
    odd = [MailMessage(subject="Macrium Reflect - Backup", text="Macrium\x00" * 1000),
           MailMessage(subject="() Macrium Reflect - Backup Success", text=""),
           MailMessage(subject="x" * 5000 + " Macrium Reflect - Backup Failed", text="Failed :(" * 5000),
           MailMessage(subject="", text="Macrium Backup Routine\nMacrium Reflect Backup Definition File:\n.xml")]
    for message in odd:
        macrium.parse(message)  # a report or None, never an exception
