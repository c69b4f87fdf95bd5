"""QNAP Hybrid Backup Sync (HBS 3) notifications, as QTS Notification Center mails them.

Notification Center sends one mail per event. Observed (Italian QTS): subject
``[Info][Hybrid Backup Sync] Notifica dal dispositivo: NASQNAP``; body lines
``Nome NAS`` / ``Gravità`` / ``Data/Ora`` (``2026/09/18 21:00:36``) / ``Nome App``
/ ``Categoria`` / ``Messaggio``. English QTS uses ``NAS Name`` / ``Severity`` /
``Date/Time`` / ``App Name`` / ``Category`` / ``Message``; older QTS alert mails
``Server Name`` / ``Level``. The message is the system-log line, e.g.
``[Hybrid Backup Sync] Started Sync job: "QNAP Dropbox".`` (category "Job
Status"), and the finished / failed / warning variants for backup and sync
jobs.

``job`` is the HBS job name (quoted in the message), ``host`` the NAS name.
"Started" events and restore jobs are not backup results and are left alone.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import first_field, parse_datetime, read_fields, status_in
from custode.agent.backups.parsers._common import low_top as _low_top
from custode.agent.backups.report import BackupReport, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "QNAP Hybrid Backup Sync"
PRIORITY = 70

_SCAN = 30_000
_SUBJECT_TAG = re.compile(r"\[\s*(?P<severity>info|information|informazioni|informazione|warning|warn|avviso|"
                          r"avvertenza|attenzione|error|errore|critical|critico|errore critico)\s*\]", re.IGNORECASE)
_SUBJECT_HOST = re.compile(r"(?:device|dispositivo|nas|server|from)\s*:\s*(?P<host>[^\s:]{1,63})\s*$", re.IGNORECASE)

_LABELS = {
    "host": ("nas name", "server name", "device name", "nome nas", "nome server", "nome dispositivo", "nas",
             "hostname", "nome host"),
    "severity": ("severity", "severity level", "level", "gravità", "livello", "livello di gravità", "gravita"),
    "when": ("date/time", "date / time", "date and time", "time", "data/ora", "data / ora", "data e ora", "ora"),
    "app": ("app name", "application", "application name", "app", "nome app", "applicazione", "nome applicazione"),
    "category": ("category", "categoria"),
    "message": ("message", "content", "event", "messaggio", "contenuto", "evento", "description", "descrizione"),
    "ip": ("ip address", "indirizzo ip", "ip"),
}
_ALL_LABELS = {label for labels in _LABELS.values() for label in labels}

_JOB = re.compile(
    r"(?P<type>backup|sync(?:hroni[sz]ation)?|restore|replication|sincronizzazione|ripristino|replica)?\s*"
    r"(?:job|processo|attività|attivita|lavoro|task)\s*(?:di\s+(?P<type_it>backup|sincronizzazione|ripristino|"
    r"replica)\s*)?:?\s*(?:[\"“«'\[](?P<quoted>[^\"”»'\]\n]{1,120})[\"”»'\]]"
    r"|(?P<bare>[^\s\".,;:][^\".,;\n]{0,80}?)"
    r"(?=\s*(?:[.,;]|$|\s+(?:has|was|is|finished|completed|failed|ha|è|e'|non|completat|terminat|fallit|"
    r"with|con|successfully)\b)))",
    re.IGNORECASE)
_QUOTED = re.compile(r"[\"“«](?P<name>[^\"”»\n]{1,120})[\"”»]")
_STARTED = re.compile(r"\b(?:started|starting|start(?:ed)?\s+to|avviat[oa]|avvio|iniziat[oa]|inizio|in\s+corso|"
                      r"running|queued|in\s+coda)\b", re.IGNORECASE)
_OUTCOME = re.compile(r"\b(?:finish|finished|complete|completed|succeeded|success|successfully|failed|failure|fail|"
                      r"error|errors|unable|could\s+not|aborted|stopped|cancell?ed|skipped|warnings?|completat[oa]|"
                      r"terminat[oa]|riuscit[oa]|fallit[oa]|errore|errori|impossibile|interrott[oa]|annullat[oa]|"
                      r"ignorat[io]|saltat[io]|avvis[oi])\b", re.IGNORECASE)
_FINISHED = re.compile(r"\b(?:finished|completed|complete|succeeded|completat[oa]|terminat[oa]|concluso)\b",
                       re.IGNORECASE)
_SKIPPED = re.compile(r"\b(?:skipped|with\s+exceptions?|partially|ignorat[io]|saltat[io]|parzialmente)\b",
                      re.IGNORECASE)


NEEDLES = ("hybrid backup sync", "hbs")


def parse(message: MailMessage) -> BackupReport | None:
    subject = message.clean_subject
    if _REPLY.match(message.subject):
        return None
    low_subject = subject.lower()
    head = message.text[:_SCAN]
    if "hybrid backup sync" not in low_subject and "hbs" not in low_subject \
            and "hybrid backup sync" not in _low_top(message):
        return None
    if message.header("list-unsubscribe") or message.header("list-id"):
        return None
    lines = head.splitlines()
    fields = _fields(lines)
    app = _get(fields, "app") or ""
    severity_text = _get(fields, "severity")
    tag = _SUBJECT_TAG.search(subject)
    text_message = _get(fields, "message") or _hbs_line(lines)
    if not text_message:
        return None
    hbs = "hybrid backup sync" in (app + " " + text_message + " " + subject).lower() or \
        re.search(r"\bHBS\s*3?\b", app + " " + subject) is not None
    structured = bool(severity_text or (tag and _get(fields, "host")) or (app and _get(fields, "when")))
    if not hbs or not structured:
        return None  # prose about HBS, or a mail without Notification Center's fields
    message_status = _message_status(text_message)
    if _STARTED.search(text_message) and not _FINISHED.search(text_message) and message_status != "failure":
        return None  # "Started Backup job" notices, however phrased
    job_match = _JOB.search(text_message)
    job = None
    job_type = None
    if job_match:
        job = (job_match.group("quoted") or job_match.group("bare") or "").strip() or None
        job_type = (job_match.group("type") or job_match.group("type_it") or "").lower() or None
    if job is None:
        quoted = _QUOTED.search(text_message)
        job = quoted.group("name").strip() if quoted else None
    if job_type in ("restore", "ripristino") or (re.search(r"\b(?:restore|ripristin)", text_message, re.I)
                                                  and not re.search(r"\bbackup\b", text_message, re.I)):
        return None
    severity_status = _severity_status(severity_text or (tag.group("severity") if tag else ""))
    if message_status is None and job is None:
        return None  # not about a job (license, update, connection test)
    candidates = [s for s in (message_status, severity_status) if s is not None]
    if not candidates:
        return None
    if message_status is None and severity_status == "success":
        return None  # an informational notice that states no outcome
    status = worst(candidates)
    report = BackupReport(software=SOFTWARE, job=_clean(job), status=status, host=_host(fields, subject))
    report.finished_at = _when(_get(fields, "when"))
    if status != "success":
        report.error = re.sub(r"^\s*\[hybrid backup sync\]\s*", "", text_message, flags=re.IGNORECASE)[:2000]
    if job_type:
        report.details["job_type"] = {"sincronizzazione": "sync", "replica": "replication"}.get(job_type, job_type)
    category = _get(fields, "category")
    if category:
        report.details["category"] = category[:100]
    if severity_text or tag:
        report.details["severity"] = (severity_text or tag.group("severity"))[:40]  # type: ignore[union-attr]
    return report


def _fields(lines: list[str]) -> dict[str, str]:
    return read_fields(lines, _ALL_LABELS, only_known=True)


def _get(fields: dict[str, str], kind: str) -> str | None:
    return first_field(fields, _LABELS[kind])


def _hbs_line(lines: list[str]) -> str | None:
    for line in lines[:200]:
        if "[hybrid backup sync]" in line.lower():
            return line.strip(" |")
    return None


def _message_status(text: str) -> Status | None:
    if re.search(r"\b(?:fail|failed|failure|error|errors|unable|could\s+not|aborted|cancell?ed|not\s+completed|"
                 r"fallit[oa]|non\s+(?:è\s+)?riuscit[oa]|non\s+(?:è\s+stat[oa]\s+)?completat[oa]|errore|errori|"
                 r"impossibile|interrott[oa]|annullat[oa])\b", text, re.IGNORECASE) \
            and not re.search(r"\b(?:0|no|nessun)\s+(?:errors?|errori)\b", text, re.IGNORECASE):
        return "failure"
    if _SKIPPED.search(text) or re.search(r"\bwarnings?\b|\bavvis[oi]\b", text, re.IGNORECASE):
        return "warning"
    return status_in(text) if _OUTCOME.search(text) else None


def _severity_status(text: str) -> Status | None:
    text = text.strip().lower()
    if not text:
        return None
    if re.match(r"(?:error|errore|critical|critico|errore critico|grave)", text):
        return "failure"
    if re.match(r"(?:warn|avviso|avvertenza|attenzione)", text):
        return "warning"
    if re.match(r"info", text):
        return "success"
    return None


def _host(fields: dict[str, str], subject: str) -> str | None:
    value = _get(fields, "host")
    if value:
        return value.split()[0][:63]
    match = _SUBJECT_HOST.search(subject)
    return match.group("host") if match else None


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().strip("'\"“”«»[]").strip()
    return value[:200] or None


_when = parse_datetime
