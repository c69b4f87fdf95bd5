"""Uranium Backup (Nanosystems S.r.l.): the e-mail report sent at the end of a backup.

Uranium mails one report per backup: the backup's name, the computer, start
and end, the outcome ("Backup completato con successo" / "con avvisi" /
"Backup fallito", "Backup completed successfully" / "with warnings" /
"Backup failed"), the amount of data and the elements and destinations with
their outcome. The subject is configurable. Its reports have the same shape as
Iperius's, so the reading is Iperius's :class:`LabelledReportParser`, with
Uranium's signature and its label words ("Backup: <name>", "Elementi").
"""

from __future__ import annotations

from custode.agent.backups.parsers.iperius import LabelledReportParser, names
from custode.agent.backups.report import BackupReport
from custode.agent.mail.message import MailMessage

SOFTWARE = "Uranium Backup"
PRIORITY = 90

_URANIUM = LabelledReportParser(
    SOFTWARE,
    r"uranium[\s-]*backup|uranium@|nanosystems",
    ("uranium", "nanosystems"),
    extra_labels={"job": [names(r"nome(?: del)? backup", r"backup name", r"backup", r"profilo(?: di backup)?",
                                r"backup profile")]},
    operations_heading=r"elementi(?: del backup)?|items|backup items|dettaglio(?: elementi)?|details",
    subject_noise=r"uranium(?:\s+backup)?(?:\s+(?:free|base|pro(?:\s+(?:tape|db|shadow|virtual))?|gold|silver|"
                  r"platinum))?",
)


NEEDLES = _URANIUM.needles


def parse(message: MailMessage) -> BackupReport | None:
    return _URANIUM.parse(message)
