"""Iperius, Uranium, Cobian and Windows Server Backup parsers: what the fixture mails cannot express.

Robustness on hostile text, cheapness on mail that is not theirs, and the rules
that need two runs or an unusual layout to show (a later run replacing an
earlier one, an event log that states no outcome, a horizontal summary table).
"""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from custode.agent.backups.parsers import cobian, iperius, uranium, wbadmin
from custode.agent.mail.message import MailMessage

PARSERS = (iperius, uranium, cobian, wbadmin)

_FRAGMENTS = [
    "Iperius Backup", "Uranium Backup", "Cobian Reflector", "Cobian Backup 11", "wbadmin 1.0 - ",
    "Summary of the backup operation:", "Riepilogo dell'operazione di backup:", "The backup operation ",
    "successfully completed.", "stopped before completing.", "Operazione di backup ", "interrotta",
    "Job: ", "Computer: ", "Esito: ", "Result | ", "Backup completato con ", "errori", "avvisi", "successo",
    "** Backup done for the task \"", "\". Errors: ", "** Backup for task \"", "\" ended. Backup size: ",
    "Backing up the task \"", "ERR ", "WAR ", "2024-03-12 22:00 ", "13/03/2024 02:05:18", "LastBackupResultHR : ",
    "JobState : ", "HResult : ", "Version identifier: 03/16/2024-01:00", "TimeCreated : ", "Id : 517",
    "Event ID: 5", "Microsoft-Windows-Backup", "The backup of volume (C:) ", "Il backup del volume ",
    "\\Backup-13-03-2024_01-00-03.log", "\n", " | ", ":", "\"", "(", ")", "[", "]", "-", "0", "7", "99999999999",
    "\u00e8", "\u0130", "\x00",
]


def _message(subject: str = "", text: str = "", sender: str = "backup@comune.example.it", sender_name: str = "",
             html: str = "", attachment_text: str = "") -> MailMessage:
    return MailMessage(subject=subject, sender=sender, sender_name=sender_name, text=text, html=html,
                       attachment_text=attachment_text)


@settings(max_examples=300, deadline=None)
@given(subject=st.lists(st.sampled_from(_FRAGMENTS), max_size=6).map("".join),
       body=st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=12)), max_size=60).map("".join))
def test_parsers_never_raise(subject: str, body: str) -> None:
    cells = "".join(f"<td>{cell}</td>" for cell in body.split("|")[:6])
    message = _message(subject=subject, text=body, sender_name=subject[:20],
                       html=f"<table><tr>{cells}</tr><tr>{cells[::-1]}</tr></table>", attachment_text=body[::-1])
    for parser in PARSERS:
        report = parser.parse(message)
        assert report is None or report.status in ("success", "warning", "failure")


def test_non_matching_mail_is_rejected_cheaply() -> None:
    body = ("Verbale della riunione: il backup del server sarà discusso domani, insieme agli errori. " * 30
            + "\n") * 80  # ~200 KB, mentions "backup" and "errori" everywhere
    message = _message(subject="Verbale riunione giunta", text=body, sender="segreteria@comune.example.it")
    for parser in PARSERS:
        start = time.perf_counter()
        for _ in range(20):
            assert parser.parse(message) is None
        per_call = (time.perf_counter() - start) / 20
        assert per_call < 0.005, f"{parser.__name__} took {per_call * 1e6:.0f} µs on a mail that is not its own"


def test_iperius_report_with_only_the_result_sentence_takes_the_job_from_the_subject() -> None:
    report = iperius.parse(_message(
        subject="Iperius Backup - SRV01 - Backup Giornaliero - Backup completato con successo",
        sender_name="Iperius Backup", text="Backup completato con successo.\nComputer: SRV01"))
    assert report is not None
    assert (report.job, report.host, report.status) == ("Backup Giornaliero", "SRV01", "success")


def test_iperius_sentence_in_a_colleague_mail_is_not_a_report() -> None:
    message = _message(subject="Iperius backup failed", sender_name="Paolo Bianchi",
                       text="Ciao, vedi sotto\nBackup failed\nche facciamo?")
    assert iperius.parse(message) is None


def test_uranium_summary_as_a_horizontal_table() -> None:
    html = ("<table><tr><th>Backup</th><th>Computer</th><th>Avvio</th><th>Esito</th></tr>"
            "<tr><td>Dati Ufficio</td><td>PC-URP</td><td>20/03/2024 21:00</td><td>Backup fallito</td></tr></table>")
    report = uranium.parse(_message(subject="Uranium Backup report", sender_name="Uranium Backup", html=html,
                                    text="Uranium Backup\nBackup | Computer | Avvio | Esito\n"
                                         "Dati Ufficio | PC-URP | 20/03/2024 21:00 | Backup fallito"))
    assert report is not None
    assert (report.job, report.host, report.status) == ("Dati Ufficio", "PC-URP", "failure")
    assert report.started_at is not None and report.started_at.isoformat() == "2024-03-20T21:00:00+01:00"


def test_cobian_later_run_of_a_task_replaces_the_earlier_one() -> None:
    log = "\n".join((
        "2024-03-12 12:00 ** Backing up the task \"Docs\" **",
        "ERR 2024-03-12 12:01 Error copying the file \"C:\\Docs\\a.pst\": access denied",
        "2024-03-12 12:05 ** Backup done for the task \"Docs\". Errors: 1. Processed files: 10. Backed up files: 9. "
        "Total size: 1,00 MB **",
        "2024-03-12 22:00 ** Backing up the task \"Docs\" **",
        "2024-03-12 22:04 ** Backup done for the task \"Docs\". Errors: 0. Processed files: 10. Backed up files: 10. "
        "Total size: 1,10 MB **",
    ))
    report = cobian.parse(_message(subject="Cobian Backup 11 [PC01] (2024-03-12)", text=log))
    assert report is not None
    assert (report.job, report.host, report.status) == ("Docs", "PC01", "success")
    assert report.started_at is not None and report.started_at.isoformat() == "2024-03-12T22:00:00+01:00"


def test_cobian_task_that_never_ends_is_a_warning() -> None:
    log = "2024-03-12 22:00 ** Backing up the task \"Docs\" **\n2024-03-12 22:00 Backing up the directory \"C:\\Docs\""
    report = cobian.parse(_message(subject="Cobian Backup 11 [PC01] (2024-03-12)", text=log))
    assert report is not None and report.status == "warning"


def test_cobian_name_alone_is_not_a_report() -> None:
    message = _message(subject="Cobian Reflector: come si configura la mail?",
                       text="Ciao, come imposto Cobian Reflector perché mandi il log? Errors: 0 dovrebbe bastare.")
    assert cobian.parse(message) is None


def test_wbadmin_events_without_an_outcome_are_a_warning() -> None:
    text = "TimeCreated : 17/03/2024 02:24:51\nId : 14\nMessage : The backup operation has completed."
    report = wbadmin.parse(_message(subject="[SRV01] Windows Server Backup", text=text))
    assert report is not None
    assert (report.status, report.host, report.job) == ("warning", "SRV01", "SRV01")


def test_wbadmin_get_wbjob() -> None:
    ok = ("JobType : Backup\nStartTime : 16/03/2024 01:00:02\nEndTime : 16/03/2024 01:31:40\nJobState : Completed\n"
          "HResult : 0\nDetailedHResult : 0\nErrorDescription :\n")
    report = wbadmin.parse(_message(subject="Backup SRV-DC02", text=ok))
    assert report is not None and report.status == "success"
    assert report.finished_at is not None and report.finished_at.isoformat() == "2024-03-16T01:31:40+01:00"
    failed = ok.replace("HResult : 0\nDetailed", "HResult : -2147024784\nDetailed").replace(
        "ErrorDescription :", "ErrorDescription : There is not enough space on the disk.")
    report = wbadmin.parse(_message(subject="Backup SRV-DC02", text=failed))
    assert report is not None and report.status == "failure"
    assert report.error and "not enough space" in report.error


def test_wbadmin_sentence_inside_a_human_sentence_is_not_a_report() -> None:
    message = _message(subject="Backup SRV01",
                       text="Ciao, stanotte the backup operation failed di nuovo, e anche Windows Server Backup "
                            "sul DC. Ci guardi?")
    assert wbadmin.parse(message) is None


def test_wbadmin_warning_volume_and_error_lines() -> None:
    text = "\n".join((
        "wbadmin 1.0 - Backup command-line tool",
        "ERROR - The specified backup location could not be found or is not a supported backup storage location.",
    ))
    report = wbadmin.parse(_message(subject="SRV01 backup", text=text))
    assert report is not None and report.status == "failure"
    assert report.error and "could not be found" in report.error
