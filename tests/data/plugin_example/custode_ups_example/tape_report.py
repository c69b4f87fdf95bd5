"""A backup-report parser plug-in: the nightly mail of a (fictional) tape library."""

from __future__ import annotations

from custode.agent.backups.report import BackupReport
from custode.agent.mail.message import MailMessage

SOFTWARE = "Example Tape Library"
PRIORITY = 5  # before the built-in parsers: its mails are its own
NEEDLES = ("tape library",)


def parse(message: MailMessage) -> BackupReport | None:
    if not message.subject.startswith("Tape library job "):
        return None
    job, _, outcome = message.subject.removeprefix("Tape library job ").partition(": ")
    status = {"completed": "success", "completed with warnings": "warning"}.get(outcome.strip().lower(), "failure")
    return BackupReport(software=SOFTWARE, job=job.strip(), status=status)
