"""Veeam Agent for Microsoft Windows / Linux: the agent's own job notification e-mails.

Veeam Agent for Microsoft Windows mails one report per backup session (Control
Panel > Settings > Email notifications). Its subject is built from
``%JobResult%``, ``%ComputerName%``, ``%JobName%`` and ``%CompletionTime%``,
e.g. ``[Success] PC-RAGIONERIA - Backup Job PC-RAGIONERIA - 12/03/2024 22:41:07``;
the body is the Veeam report layout (``Agent Backup job: <job>`` header, summary
grid, one row for the computer), parsed by :mod:`veeam_br`'s shared reader.

Veeam Agent for Linux (free) historically sent no mail; the widespread community
script *vee-mail* (``vee-mail.sh``, footer "Veeam Agent for Linux <version>,
Vee-Mail Version <version>") fills a copy of the Windows report from the agent's
database and pipes it to ``sendmail``. Its subject is
``[$STAT] $HN - $START ($JOBNAME - $BACKUPTYPE)`` since 0.6 and only
``[$STAT] $HN - $START`` before, where ``$HN`` is the upper-cased hostname; the
type is empty for some sessions (``(Backup-Tributi)``, ``Backup-Tributi ()`` in
the header). One vee-mail install reports one machine, and the job name may be
missing (old versions) or renamed by the operator at will, so for vee-mail the
job is the host (the job name, when the subject has it, is kept in
``details["job_name"]``). vee-mail runs only on Linux: its mails are always
"Veeam Agent for Linux", whatever the body says of the product.

Subjects reach us rewritten (Fwd:/[EXTERNAL] prefixes, spam filters'
``***SPAM***``, ``[SPAM]``, ``{Spam?}`` or ``SPAM:``):
:attr:`MailMessage.clean_subject` removes them all before the subject's shape
is read.

Backups of agents *managed by* Veeam Backup & Replication are reported by the
backup server and left to ``veeam_br``.

``job`` is the agent's job name (the host for vee-mail); ``host`` is the computer.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers.veeam_br import (
    has_object_count,
    is_reply,
    is_veeam_report,
    items_of,
    layout_details,
    overall_status,
    quick_check,
    read_layout,
    session_report,
    status_word,
    subject_parts,
)
from custode.agent.backups.report import BackupReport
from custode.agent.mail.message import MailMessage

SOFTWARE = "Veeam Agent for Microsoft Windows"
PRIORITY = 20  # before B&R, whose layout the agent's reports share
LINUX = "Veeam Agent for Linux"

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
# vee-mail before 0.6: [Result] HOSTNAME - <long date>
_VEEMAIL_OLD_SUBJECT = re.compile(
    r"^\s*\[(?P<tag>[^\]]{1,30})\]\s*(?P<computer>[^\s\[\]]+)\s+-\s+(?P<time>.*\d.*?)\s*$")
_VEEMAIL = re.compile(r"\bvee-mail\b", re.IGNORECASE)  # the footer: "Vee-Mail Version 0.6.4"


NEEDLES = ("dedupe", " processed", "eeam")  # quick_check: Veeam's markers


def parse(message: MailMessage) -> BackupReport | None:
    if not quick_check(message) or is_reply(message):
        return None
    layout = read_layout(message)
    subject = message.clean_subject
    product = _PRODUCT.search(layout.body) or _PRODUCT.search(subject) or _PRODUCT.search(message.text[:5000])
    veemail = bool(_VEEMAIL.search(layout.body))
    agent_subject = _AGENT_SUBJECT.match(subject)
    veemail_subject = (_VEEMAIL_SUBJECT.match(subject) or _VEEMAIL_OLD_SUBJECT.match(subject)) if veemail else None
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
    if veemail:
        software = LINUX  # vee-mail is a Linux shell script, whatever its template (a Windows mail's copy) says
    elif product is not None:
        software = "Veeam Agent for Microsoft Windows" if product.group("endpoint") \
            else _NAMES.get(re.sub(r"\s+", " ", product.group("os")).lower(), SOFTWARE)

    items = items_of(layout)
    job: str | None = None
    host: str | None = None
    details = layout_details(layout)
    if veemail:
        details["sender_tool"] = "vee-mail"
        named = veemail_subject.groupdict().get("job") if veemail_subject else None
        if named and named.strip():
            details["job_name"] = named.strip()
        elif layout.name and not _BACKUP_JOB_OF.match(layout.name):
            details["job_name"] = re.sub(r"\s*\(\s*\)\s*$", "", layout.name)
        if veemail_subject is not None and veemail_subject.groupdict().get("type"):
            details["session_type"] = veemail_subject.group("type")
        host = veemail_subject.group("computer") if veemail_subject else None
        if host is None and len(items) == 1:
            host = items[0].name
        if host is None and layout.name:
            named_host = _BACKUP_JOB_OF.match(layout.name)
            host = named_host.group("computer") if named_host else None
        job = host  # one vee-mail install, one machine: the host is the job
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


