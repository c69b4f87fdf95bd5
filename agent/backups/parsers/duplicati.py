"""Duplicati's send-mail reports (and the same result mailed in JSON or by the newer template).

The send-mail module's default subject is ``Duplicati %OPERATIONNAME% report
for %backup-name%`` ("Duplicati Backup report for Documenti") and its default
body ``%RESULT%``: the result object printed as ``Name: value`` lines, nested
results (DeleteResults, TestResults, BackendStatistics...) indented below
their parent, dates as ``<local date> (<unix time>)``::

    ExaminedFiles: 48211
    SizeOfExaminedFiles: 58012345678
    MainOperation: Backup
    TestResults:
        ParsedResult: Success
        ...
    ParsedResult: Warning
    EndTime: 3/3/2025 10:09:45 PM (1741036185)
    BeginTime: 3/3/2025 10:00:00 PM (1741035600)

    Log data:
    2025-03-03 22:03:12 +01 - [Warning-...]: ...

A run stopped by an exception starts with ``Failed: <message>`` and
``Details: <exception>``. The body text reaches parsers with its indentation
stripped, so the overall result is taken as the worst ``ParsedResult`` of the
report (a child's warnings and errors are also its parent's), the start as the
earliest ``BeginTime`` and the end as the latest ``EndTime``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import ROME, error_text, forwarded_text, guarded, parse_datetime, status_in
from custode.agent.backups.parsers._common import is_bulk as _bulk
from custode.agent.backups.report import BackupReport, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Duplicati"
PRIORITY = 130

_RESULTS = {"success": "success", "warning": "warning", "error": "failure", "fatal": "failure",
            "unknown": "warning"}
_PARSED_RESULT = re.compile(r"^\s*\"?ParsedResult\"?\s*[:=]\s*\"?(?P<value>\w+)", re.MULTILINE)
_LABELS = ("MainOperation", "ExaminedFiles", "SizeOfExaminedFiles", "BeginTime", "EndTime", "DeletedFiles",
           "AddedFiles", "Duration", "BackendStatistics", "WarningsActualLength", "ErrorsActualLength")
_INTERRUPTED = re.compile(r"^\s*Interrupted\s*:\s*True\b", re.IGNORECASE | re.MULTILINE)
_TIME = re.compile(r"^\s*(?P<label>BeginTime|EndTime)\s*:\s*(?P<value>.*?)\s*$", re.MULTILINE)
_EPOCH = re.compile(r"\((?P<epoch>-?\d{6,})\)\s*$")
_SUBJECT_NAME = re.compile(r"\bDuplicati\s+(?P<op>[\w-]+)\s+report\s+for\s+(?P<name>.+?)\s*$", re.IGNORECASE)
_SUBJECT_NAME_OTHER = re.compile(r"\b(?:per|for)\s+(?P<name>.+?)\s*$", re.IGNORECASE)  # "Rapporto Duplicati per X"
_STATUS_WORDS = (r"(?:success|successo|warning|warnings|avviso|avvisi|error|errore|errori|fatal|failed|fallito|"
                 r"unknown)")
# " - Success", ": Error", "(Warning)", "[Fatal]" after the name; a bare trailing word may be part of the name
_STATUS_DECORATION = re.compile(r"\s*(?:[-:–|]\s*[\[(]?\s*" + _STATUS_WORDS + r"\s*[\])]?|[\[(]\s*" + _STATUS_WORDS
                                + r"\s*[\])])\s*$", re.IGNORECASE)
_TEMPLATE = re.compile(r"^\s*Duplicati\s+Backup\s+Report\s*:\s*(?P<value>\w+)", re.IGNORECASE | re.MULTILINE)
_FAILED = re.compile(r"^\s*Failed\s*:\s*(?P<value>.+?)\s*$", re.MULTILINE)
_DETAILS = re.compile(r"^\s*Details\s*:\s*(?P<value>.+?)\s*$", re.MULTILINE)
_LOG_PROBLEM = re.compile(r"\[(?:Error|Warning)-[^\]]*\]\s*:?\s*(?P<msg>.*)$")
_QUOTED_SUBJECT = re.compile(r"^\s*\*?(?:subject|oggetto|betreff|objet|asunto)\s*:\*?\s*(?P<value>.*Duplicati.+)$",
                             re.IGNORECASE | re.MULTILINE)


NEEDLES = ("parsedresult", "duplicati")


def parse(message: MailMessage) -> BackupReport | None:
    """The Duplicati report in ``message``, or None when it is not one."""
    text = message.text
    # "duplicati" is also an Italian word ("file duplicati"): the product is spelt with a capital D
    if "ParsedResult" not in text and "Duplicati" not in text and "uplicati" not in message.subject:
        return None
    return _parse(message)


@guarded
def _parse(message: MailMessage) -> BackupReport | None:
    if _REPLY.match(message.subject):
        return None
    text = forwarded_text(message)
    if _bulk(message) and not _SUBJECT_NAME.search(message.clean_subject):
        return None  # forum digests and newsletters quote results to discuss them
    if "ParsedResult" in text:
        stripped = text.lstrip()
        if stripped.startswith("{"):
            report = _from_json(message, stripped)
            if report is not None:
                return report
        report = _from_result(message, text)
        if report is not None:
            return report
    if "Duplicati" in text or "Duplicati" in message.subject:
        return _from_template(message, text) or _from_exception(message, text) \
            or _from_custom_body(message, text)
    return None


# -- the default "Duplicati" result format -------------------------------------------------------------------


def _from_result(message: MailMessage, text: str) -> BackupReport | None:
    results = [_RESULTS.get(m.group("value").lower()) for m in _PARSED_RESULT.finditer(text)]
    results = [r for r in results if r]
    if not results:
        return None
    values = _top_values(text)
    if sum(1 for label in _LABELS if label.lower() in values) < 4:
        return None
    failed = _FAILED.search(text)
    status: Status = worst(results)  # type: ignore[arg-type]
    if failed:
        status = "failure"
    elif status == "success" and (_INTERRUPTED.search(text) or values.get("partialbackup", "").lower() == "true"):
        status = "warning"  # stopped before the end: not every file is in this version
    report = BackupReport(software=SOFTWARE, job=_job(message), status=status)
    report.started_at, report.finished_at = _times(text)
    report.size_bytes = _int(values.get("sizeofexaminedfiles"))
    report.transferred_bytes = _int(values.get("bytesuploaded"))
    report.error = _problems(text, status, failed.group("value") if failed else None)
    details: dict[str, object] = {}
    for key, label in (("operation", "mainoperation"), ("version", "version"), ("examined_files", "examinedfiles"),
                       ("added_files", "addedfiles"), ("modified_files", "modifiedfiles"),
                       ("deleted_files", "deletedfiles"), ("files_with_error", "fileswitherror"),
                       ("backup_versions", "backuplistcount")):
        if values.get(label):
            details[key] = values[label][:120]
    # counters every (nested) result repeats: the report's own is the largest
    for key, label in (("warnings", "WarningsActualLength"), ("errors", "ErrorsActualLength")):
        counts = [int(m.group(1)) for m in re.finditer(r"^\s*" + label + r"\s*:\s*(\d+)", text, re.MULTILINE)]
        if counts:
            details[key] = max(counts)
    durations = [m.group(1) for m in re.finditer(r"^\s*Duration\s*:\s*(\S+)", text, re.MULTILINE)]
    if durations:
        details["duration"] = max(durations, key=_seconds)
    report.details = details
    return report


def _seconds(duration: str) -> float:
    """``1.02:03:04.5`` / ``00:09:45.1234567`` -> seconds."""
    match = re.match(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$", duration)
    if not match:
        return 0.0
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _top_values(text: str) -> dict[str, str]:
    """``Name: value`` lines, first occurrence wins (the backup's own counters come first)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        colon = line.find(":")
        if 0 < colon < 40:
            label = line[:colon].strip()
            if label.isalpha():
                values.setdefault(label.lower(), line[colon + 1:].strip())
    return values


def _times(text: str) -> tuple[datetime | None, datetime | None]:
    begins: list[datetime] = []
    ends: list[datetime] = []
    for match in _TIME.finditer(text):
        moment = _moment(match.group("value"))
        if moment is None or moment.year < 2000:
            continue
        (begins if match.group("label") == "BeginTime" else ends).append(moment)
    return (min(begins) if begins else None), (max(ends) if ends else None)


def _moment(value: str) -> datetime | None:
    """``3/3/2025 10:09:45 PM (1741036185)``: the Unix time is unambiguous, the local text is not."""
    epoch = _EPOCH.search(value)
    if epoch:
        seconds = int(epoch.group("epoch"))
        if seconds <= 0:
            return None
        try:
            return datetime.fromtimestamp(seconds, ROME)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_datetime(value)


def _int(value: str | None) -> int | None:
    if not value:
        return None
    match = re.match(r"\s*\"?(\d+)", value)
    return int(match.group(1)) if match else None


def _problems(text: str, status: Status, failed: str | None) -> str | None:
    if status == "success":
        return None
    found: list[str] = []
    if failed:
        found.append(f"Failed: {failed}")
    for line in text.splitlines():
        if "[Error-" not in line and "[Warning-" not in line:
            continue
        match = _LOG_PROBLEM.search(line)
        if match:
            entry = match.group("msg").strip().rstrip(",")
            if entry and entry.lower() != "fatal error" and entry not in found:
                found.append(entry)
        if len(found) >= 3:
            break
    return "\n".join(found)[:2000] or None


def _job(message: MailMessage) -> str | None:
    """The backup name from the subject, or from the subject line quoted by an inline forward."""
    job = _job_from_subject(message.clean_subject)
    if job is None and message.forwarded:
        for match in _QUOTED_SUBJECT.finditer(message.text):
            job = _job_from_subject(match.group("value"))
            if job:
                break
    return job


def _job_from_subject(subject: str) -> str | None:
    match = _SUBJECT_NAME.search(subject)
    name = match.group("name") if match else None
    if name is None and "Duplicati" in subject:
        other = _SUBJECT_NAME_OTHER.search(subject)
        name = other.group("name") if other else None
    if not name:
        return None
    cleaned = _STATUS_DECORATION.sub("", name).strip().strip('"\'«»“”')
    return cleaned or None


# -- JSON result format (send-mail-result-output-format=Json) -------------------------------------------------


def _from_json(message: MailMessage, text: str) -> BackupReport | None:
    try:
        payload = json.loads(text[text.find("{"):text.rfind("}") + 1])
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    data = payload.get("Data") if isinstance(payload.get("Data"), dict) else payload
    extra = payload.get("Extra") if isinstance(payload.get("Extra"), dict) else {}
    result = _RESULTS.get(str(data.get("ParsedResult", "")).lower())
    if result is None:
        return None
    status: Status = result  # type: ignore[assignment]
    exception = payload.get("Exception")
    if exception:
        status = "failure"
    job = str(extra.get("backup-name") or "").strip() or _job(message)
    report = BackupReport(software=SOFTWARE, job=job, status=status,
                          host=str(extra.get("machine-name") or "").strip() or None)
    report.started_at = _json_time(data.get("BeginTime"))
    report.finished_at = _json_time(data.get("EndTime"))
    report.size_bytes = _json_int(data.get("SizeOfExaminedFiles"))
    backend = data.get("BackendStatistics") if isinstance(data.get("BackendStatistics"), dict) else {}
    report.transferred_bytes = _json_int(backend.get("BytesUploaded"))
    if status != "success":
        lines = [str(line) for line in payload.get("LogLines") or [] if isinstance(line, str)]
        if exception:
            lines.insert(0, str(exception).splitlines()[0] if str(exception) else "")
        report.error = _problems("\n".join(lines), status, None) or ("\n".join(lines[:3])[:2000] or None)
    report.details = {key: data[name] for key, name in (("operation", "MainOperation"), ("version", "Version"),
                                                        ("examined_files", "ExaminedFiles"),
                                                        ("warnings", "WarningsActualLength"),
                                                        ("errors", "ErrorsActualLength"))
                      if data.get(name) not in (None, "")}
    return report


def _json_time(value: object) -> datetime | None:
    if not isinstance(value, str) or value.startswith("0001"):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return parse_datetime(value)
    return moment.astimezone(ROME) if moment.tzinfo else moment.replace(tzinfo=ROME)


def _json_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return _int(value) if isinstance(value, str) else None


# -- newer text template ("Duplicati Backup Report: Warning") and bare exception reports ---------------------


def _from_template(message: MailMessage, text: str) -> BackupReport | None:
    match = _TEMPLATE.search(text)
    if not match:
        return None
    status = _RESULTS.get(match.group("value").lower())
    if status is None:
        return None
    values = _top_values(text)
    job = _label(text, "Backup Name") or _job(message)
    report = BackupReport(software=SOFTWARE, job=job, status=status,  # type: ignore[arg-type]
                          host=_label(text, "Machine"))
    if status != "success":
        report.error = _problems(text, status, None) or _section(text, ("Error Details", "Log Messages"))
    report.details = {key: values[label] for key, label in (("operation", "operation"),
                                                            ("examined_files", "files examined"))
                      if values.get(label)}
    return report


def _from_exception(message: MailMessage, text: str) -> BackupReport | None:
    failed = _FAILED.search(text)
    details = _DETAILS.search(text)
    if not failed or not details:
        return None
    subject_job = _job(message)
    if subject_job is None and "Duplicati." not in details.group("value"):
        return None
    report = BackupReport(software=SOFTWARE, job=subject_job, status="failure")
    report.error = _problems(text, "failure", failed.group("value"))
    report.details = {"exception": details.group("value")[:300]}
    return report


def _label(text: str, label: str) -> str | None:
    match = re.search(r"^\s*" + re.escape(label) + r"\s*:\s*(.+?)\s*$", text, re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else None


def _section(text: str, titles: tuple[str, ...]) -> str | None:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() in titles:
            body = [entry for entry in lines[index + 1:index + 6] if entry.strip("-= ")]
            if body:
                return "\n".join(body[:3])[:2000]
    return None


def _from_custom_body(message: MailMessage, text: str) -> BackupReport | None:
    """The default subject over a body the admin rewrote (``%PARSEDRESULT%`` in a sentence)."""
    match = _SUBJECT_NAME.search(message.clean_subject)
    if not match:
        return None
    head = "\n".join(text.splitlines()[:30])
    status = status_in(head) or _subject_status(message.clean_subject)
    if status is None:
        return None
    report = BackupReport(software=SOFTWARE, job=_job_from_subject(message.clean_subject), status=status)
    if status != "success":
        report.error = error_text(head)
    report.details = {"operation": match.group("op")}
    return report


def _subject_status(subject: str) -> Status | None:
    match = re.search(r"\b(Success|Warning|Error|Fatal)\b", subject)
    return _RESULTS.get(match.group(1).lower()) if match else None  # type: ignore[return-value]
