"""Veeam Agent for Microsoft Windows / Linux: the agent's own job notification e-mails.

Veeam Agent for Microsoft Windows mails one report per backup session (Control
Panel > Settings > Email notifications). Its subject is built from
``%JobResult%``, ``%ComputerName%``, ``%JobName%`` and ``%CompletionTime%``,
e.g. ``[Success] PC-RAGIONERIA - Backup Job PC-RAGIONERIA - 12/03/2024 22:41:07``;
the body is the Veeam report layout (``Agent Backup job: <job>`` header, summary
grid, one row for the computer), parsed by :mod:`veeam_br`'s shared reader.

Veeam Agent for Linux (free) historically sent no mail; the widespread community
script *vee-mail* fills a copy of the Windows report from the agent's database
and sends ``[Success] HOSTNAME - <long date> (<job> - Incremental)``. Its header
always reads ``Backup Job <HOSTNAME>``, so for it the job is taken from the
subject. Backups of agents *managed by* Veeam Backup & Replication are reported
by the backup server and left to ``veeam_br``.

``job`` is the agent's job name; ``host`` is the computer.
"""

from __future__ import annotations

import re

from agent.backups.parsers.veeam_br import (
    has_object_count, is_reply, is_veeam_report, items_of, layout_details, overall_status, quick_check, read_layout,
    session_report, status_word, subject_parts,
)
from agent.backups.report import BackupReport
from agent.mail.message import MailMessage

SOFTWARE = "Veeam Agent for Microsoft Windows"

_PRODUCT = re.compile(
    r"Veeam\s+(?:Agent\s+for\s+(?P<os>(?:Microsoft\s+)?Windows|Linux|Mac(?:OS)?|IBM\s+AIX|AIX|Oracle\s+Solaris|"
    r"Solaris|Unix)|(?P<endpoint>Endpoint\s+Backup))", re.IGNORECASE)
_NAMES = {"windows": "Veeam Agent for Microsoft Windows", "microsoft windows": "Veeam Agent for Microsoft Windows",
          "linux": "Veeam Agent for Linux", "mac": "Veeam Agent for Mac", "macos": "Veeam Agent for Mac",
          "ibm aix": "Veeam Agent for IBM AIX", "aix": "Veeam Agent for IBM AIX",
          "oracle solaris": "Veeam Agent for Oracle Solaris", "solaris": "Veeam Agent for Oracle Solaris",
          "unix": "Veeam Agent for Unix"}
# [Result] COMPUTER - Job name - 12/03/2024 22:41:07  (the agent's default subject)
_AGENT_SUBJECT = re.compile(
    r"^\s*\[(?P<tag>[^\]]{1,30})\]\s*(?P<computer>[^\s\[\]]+)\s+-\s+(?P<job>.+?)"
    r"(?:\s+-\s+(?P<time>[^\s]*\d[\d/.\-]*\d[^\s]*\s+\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s*[AaPp]\.?[Mm]\.?)?))?\s*$")
# vee-mail: [Result] HOSTNAME - <long date> (<job>[ - Full|Incremental])
_VEEMAIL_SUBJECT = re.compile(
    r"^\s*\[(?P<tag>[^\]]{1,30})\]\s*(?P<computer>[^\s\[\]]+)\s+-\s+(?P<time>.+?)\s+"
    r"\((?P<job>.+?)(?:\s+-\s+(?P<type>Full|Incremental|Increment))?\)\s*$")
_BACKUP_JOB_OF = re.compile(r"^Backup Job\s+(?P<computer>[^\s]+)$", re.IGNORECASE)


def parse(message: MailMessage) -> BackupReport | None:
    if not quick_check(message) or is_reply(message):
        return None
    layout = read_layout(message)
    subject = message.clean_subject
    product = _PRODUCT.search(layout.body) or _PRODUCT.search(subject) or _PRODUCT.search(message.text[:5000])
    veemail = "Vee-Mail" in layout.body
    agent_subject = _AGENT_SUBJECT.match(subject)
    veemail_subject = _VEEMAIL_SUBJECT.match(subject) if veemail else None
    if product is None and not (agent_subject and agent_subject.group("time")):
        return None  # neither the product's name nor the agent's own subject (with its time stamp)
    if has_object_count(subject) and not veemail:
        return None  # "(5 machines)": sent by the Backup & Replication server (managed agents), not the agent
    if not is_veeam_report(layout, subject, min_labels=2 if product else 3):
        return None
    status = overall_status(layout, subject)
    if status is None:
        return None

    software = SOFTWARE
    if product is not None:
        software = "Veeam Agent for Microsoft Windows" if product.group("endpoint") \
            else _NAMES.get(re.sub(r"\s+", " ", product.group("os")).lower(), SOFTWARE)

    items = items_of(layout)
    job: str | None = None
    host: str | None = None
    details = layout_details(layout)
    if veemail_subject is not None:
        job = veemail_subject.group("job").strip()
        host = veemail_subject.group("computer")
        if veemail_subject.group("type"):
            details["session_type"] = veemail_subject.group("type")
        details["sender_tool"] = "vee-mail"
    elif agent_subject is not None and status_word(agent_subject.group("tag")) is not None:
        host = agent_subject.group("computer")
        job = layout.name or agent_subject.group("job").strip()
    if job is None:
        job = layout.name or subject_parts(subject)[1] or None
    if host is None and len(items) == 1:
        host = items[0].name
    if host is None and job:
        named = _BACKUP_JOB_OF.match(job)
        host = named.group("computer") if named else None

    return session_report(layout, message, software, job, status, host, details, items)
