"""Bacula and Bareos job reports, as mailed by the Director's Messages resource.

The Director mails the job log of each job, ending with a summary block that
the Director writes itself (dird ``backup.c``, ``generate_backup_summary``)::

    03-Mar 22:05 bacula-dir JobId 123: Bacula bacula-dir 9.6.7 (10Dec20):
      Build OS:               x86_64-pc-linux-gnu ubuntu 20.04
      JobId:                  123
      Job:                    BackupClient1.2025-03-03_22.05.00_04
      Backup Level:           Full
      Client:                 "client1-fd" 9.6.7 (10Dec20) x86_64-pc-linux-gnu,ubuntu,20.04
      ...
      Start time:             03-Mar-2025 22:05:02
      End time:               03-Mar-2025 22:07:41
      SD Bytes Written:       728,636,818 (728.6 MB)
      Non-fatal FD errors:    0
      Termination:            Backup OK

The default subject is ``Bacula: %t %e of %c %l`` ("Bacula: Backup OK of
client1-fd Full"; Bareos writes "Bareos:"), but admins rewrite it freely, so
the summary block is the signature. The unique job name carries a start
timestamp suffix that is not part of the job's name; spaces in the job name
were turned into underscores by the Director and cannot be told apart.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import QUOTE_MARKS as _QUOTE_MARKS
from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import guarded, parse_datetime, status_in
from custode.agent.backups.report import BackupReport, Status
from custode.agent.mail.message import MailMessage

SOFTWARE = "Bacula"
PRIORITY = 120

_TERMINATION = re.compile(r"^\s*(?P<quote>>[> ]*)?Termination\s*:\s*\|?\s*(?P<value>.*?)\s*\|?\s*$", re.MULTILINE)
_SUMMARY_LABELS = ("JobId", "Job", "Backup Level", "Client", "FileSet", "Start time", "End time",
                   "FD termination status", "SD termination status", "Build OS", "Elapsed time",
                   "Scheduled time", "SD Bytes Written", "Volume name(s)", "Non-fatal FD errors",
                   "Prev Backup JobId", "New Backup JobId", "Current JobId", "Current Job", "Restore Client",
                   "Files Expected", "Files Restored", "Bytes Restored", "Verify Level", "Read Pool", "Write Pool")
_FIELD = re.compile(r"^\s*(?P<label>[A-Za-z][A-Za-z /()'.-]{0,40}?)\s*:\s*\|?\s*(?P<value>.*?)\s*\|?\s*$")
# "Bacula bacula-dir 9.6.7 (10Dec20):" -- the first line of the summary block
_HEADER = re.compile(r"\b(?P<product>Bacula|Bareos)\s+[\w.@-]+\s+[\w.~+-]+\s*\([^)]*\)\s*:\s*$", re.IGNORECASE)
_UNIQUE_SUFFIX = re.compile(r"\.\d{4}-\d{2}-\d{2}[_.]\d{2}[.:]\d{2}[.:]\d{2}(?:_\d+)?$")
_SUBJECT = re.compile(
    r"^\s*(?P<product>Bacula|Bareos)\s*:\s*(?P<type>Backup|Restore|Verify|Copy|Copying|Migrate|Migration|Admin|"
    r"Archive|Consolidate)\s+(?P<status>.+?)\s+of\s+(?P<client>\S+)(?:\s+(?P<level>[\w -]+?))?\s*$",
    re.IGNORECASE)
_JOBLOG = re.compile(r"\bJobId \d+:")
_START_JOB = re.compile(r"\bStart \w+ JobId \d+, Job=(?P<job>\S+)")
_LOG_PROBLEM = re.compile(r"(?:\bJobId \d+:\s*)(?P<msg>(?:Fatal error|Error|Warning)\s*:.*)$", re.IGNORECASE)
_JOB_TYPES = {"backup": "Backup", "restore": "Restore", "verify": "Verify", "copying": "Copy", "copy": "Copy",
              "migration": "Migration", "migrate": "Migration", "admin": "Admin", "archive": "Archive",
              "consolidate": "Consolidate"}


NEEDLES = ("termination", "jobid")


def parse(message: MailMessage) -> BackupReport | None:
    """The Bacula/Bareos job report in ``message``, or None when it is not one."""
    text = message.text
    if "Termination" not in text and "JobId" not in text:
        return None
    return _parse(message)


@guarded
def _parse(message: MailMessage) -> BackupReport | None:
    if _is_reply(message) or _from_product_list(message):
        return None
    text = message.text
    lines = text.splitlines()
    term_index = None
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if "Termination" in line:
            match = _TERMINATION.match(line)
            if match:
                if match.group("quote"):
                    if not message.forwarded:
                        return None  # a report quoted in a discussion, not a report
                    text = _unquote(text)  # forwarded "as quote": the report is below the ">" marks
                    lines = text.splitlines()
                term_index = index
                break
    if term_index is None:
        return _from_subject(message)
    block, header = _summary_block(lines, term_index)
    fields = _fields(block)
    known = sum(1 for label in _SUMMARY_LABELS if label.lower() in fields)
    if known < 3 or not any(label in fields for label in ("job", "jobid", "current job", "current jobid")):
        return None
    termination = _TERMINATION.match(lines[term_index]).group("value")  # type: ignore[union-attr]
    software = _software(message, header, text)
    status = _status(termination)
    if status == "success" and (_bytes(fields.get("non-fatal fd errors")) or _bytes(fields.get("sd errors"))):
        status = "warning"  # errors counted under an "OK" termination
    job_unique = fields.get("job") or fields.get("current job") or _start_job(lines[:term_index])
    job = _job_name(job_unique) if job_unique else None
    host = _client(fields.get("client") or fields.get("restore client"))
    subject = _SUBJECT.match(message.clean_subject)
    if host is None and subject:
        host = subject.group("client")
    report = BackupReport(software=software, job=job, status=status, host=host)
    report.started_at = parse_datetime(fields.get("start time"))
    report.finished_at = parse_datetime(fields.get("end time"))
    report.size_bytes = next((value for value in (_bytes(fields.get(label)) for label in (
        "sd bytes written", "fd bytes written", "bytes restored")) if value is not None), None)
    report.transferred_bytes = _bytes(fields.get("fd bytes written"))
    report.error = _problems(lines[:term_index], status, termination, fields)
    details: dict[str, object] = {"termination": termination}
    job_type = _job_type(termination) or (_JOB_TYPES.get(subject.group("type").lower()) if subject else None)
    if job_type:
        details["job_type"] = job_type
    for key, label in (("job_id", "jobid"), ("job_unique", "job"), ("job_unique", "current job"),
                       ("level", "backup level"), ("previous_job", "prev backup job"),
                       ("fileset", "fileset"), ("pool", "pool"), ("storage", "storage"),
                       ("volumes", "volume name(s)"), ("files", "sd files written"),
                       ("fd_errors", "non-fatal fd errors"), ("sd_errors", "sd errors"),
                       ("fd_status", "fd termination status"), ("sd_status", "sd termination status"),
                       ("elapsed", "elapsed time")):
        value = fields.get(label)
        if value and key not in details:
            details[key] = (_quoted(value) or value)[:200]
    report.details = details
    return report


def _unquote(text: str) -> str:
    return _QUOTE_MARKS.sub("", text)


def _is_reply(message: MailMessage) -> bool:
    return bool(_REPLY.match(message.subject))


def _from_product_list(message: MailMessage) -> bool:
    """Posts to the Bacula/Bareos user lists quote reports to discuss them."""
    list_id = (message.header("list-id") + " " + message.header("list-post")).lower()
    return any(name in list_id for name in ("bacula", "bareos"))


def _summary_block(lines: list[str], term_index: int) -> tuple[list[str], str | None]:
    """The lines of the summary that ends at ``term_index``, and its header line."""
    lower = max(0, term_index - 80)
    for index in range(term_index - 1, lower - 1, -1):
        line = lines[index]
        if "Termination" in line and _TERMINATION.match(line):
            return lines[index + 1:term_index + 1], None
        match = _HEADER.search(line)
        if match:
            return lines[index + 1:term_index + 1], match.group("product")
    return lines[lower:term_index + 1], None


def _fields(block: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block:
        match = _FIELD.match(line)
        if match:
            fields.setdefault(match.group("label").strip().lower(), match.group("value").strip())
    return fields


def _software(message: MailMessage, header: str | None, text: str) -> str:
    if header:
        return "Bareos" if header.lower() == "bareos" else "Bacula"
    subject = message.clean_subject.lower()
    if subject.startswith("bareos"):
        return "Bareos"
    if subject.startswith("bacula"):
        return "Bacula"
    lowered = text.lower()
    if "bareos" in lowered or "bareos" in message.sender_name.lower() or "bareos" in message.sender:
        return "Bareos"
    return "Bacula"


def _status(termination: str) -> Status:
    value = termination.lower()
    if any(word in value for word in ("error", "fatal", "fail", "incomplete", "cancel", "inappropriate",
                                      "errore", "fallit", "annullat", "interrott")):
        return "failure"
    if "warning" in value or "differences" in value or "avvis" in value or "mismatch" in value:
        return "warning"
    if re.search(r"\bok\b", value):
        return "success"
    return status_in(termination) or "failure"


def _job_type(termination: str) -> str | None:
    match = re.search(r"[A-Za-z]+", termination)
    return _JOB_TYPES.get(match.group(0).lower()) if match else None


def _job_name(unique: str) -> str:
    """``BackupClient1.2025-03-03_22.05.00_04`` -> ``BackupClient1``."""
    unique = unique.strip().strip('"')
    return _UNIQUE_SUFFIX.sub("", unique) or unique


def _start_job(lines: list[str]) -> str | None:
    for line in lines:
        if "Job=" in line:
            match = _START_JOB.search(line)
            if match:
                return match.group("job").rstrip(",")
    return None


def _quoted(value: str | None) -> str | None:
    if not value:
        return None
    match = re.match(r'\s*"([^"]*)"', value)
    return match.group(1) if match else None


def _client(value: str | None) -> str | None:
    """``"client1-fd" 9.6.7 (10Dec20) x86_64...`` -> ``client1-fd``."""
    if not value:
        return None
    quoted = _quoted(value)
    if quoted:
        return quoted
    return value.split()[0].strip('",') or None


def _bytes(value: str | None) -> int | None:
    """``728,636,818 (728.6 MB)`` -> 728636818."""
    if not value:
        return None
    match = re.match(r"\s*(\d[\d,.' ]*)", value)
    if not match:
        return None
    digits = re.sub(r"\D", "", match.group(1))
    return int(digits) if digits else None


def _problems(log: list[str], status: Status, termination: str, fields: dict[str, str]) -> str | None:
    if status == "success":
        return None
    found: list[str] = []
    for line in log:
        if "rror" not in line and "arning" not in line:
            continue
        match = _LOG_PROBLEM.search(line)
        if not match or _HEADER.search(line):
            continue
        text = match.group("msg").strip()
        if text not in found:
            found.append(text)
        if len(found) >= 3:
            break
    if found:
        return "\n".join(found)[:2000]
    parts = [f"Termination: {termination}"]
    for label, name in (("fd termination status", "FD termination status"),
                        ("sd termination status", "SD termination status")):
        if fields.get(label):
            parts.append(f"{name}: {fields[label]}")
    return "; ".join(parts)


def _from_subject(message: MailMessage) -> BackupReport | None:
    """A job log mailed without its summary block (a job killed before it ended): the subject tells."""
    subject = _SUBJECT.match(message.clean_subject)
    if not subject or not _JOBLOG.search(message.text):
        return None
    status = _status(subject.group("status"))
    lines = message.text.splitlines()
    unique = _start_job(lines)
    report = BackupReport(software="Bareos" if subject.group("product").lower() == "bareos" else "Bacula",
                          job=_job_name(unique) if unique else None, status=status,
                          host=subject.group("client"))
    report.error = _problems(lines, status, subject.group("status"), {})
    report.details = {"job_type": _JOB_TYPES.get(subject.group("type").lower(), subject.group("type")),
                      "termination": subject.group("status")}
    if subject.group("level"):
        report.details["level"] = subject.group("level")
    return report
