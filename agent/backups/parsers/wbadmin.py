"""Windows Server Backup, as mailed by the scheduled scripts that run or query it.

There is no built-in e-mail in Windows Server Backup: administrators mail the
output of a PowerShell or batch script, and each script is different. What they
mail is one or more of:

* the console output of ``wbadmin start backup`` (or ``systemstatebackup``):
  progress lines, then "Summary of the backup operation:" with "The backup
  operation successfully completed." or "The backup operation stopped before
  completing." (Italian Windows: "Riepilogo dell'operazione di backup",
  "Operazione di backup completata" / "interrotta"), one line per volume, the
  "Detailed error:" and the log file names (``Backup-dd-mm-yyyy_hh-mm-ss.log``,
  named in UTC like the version identifier);
* events of the Microsoft-Windows-Backup log (``Get-WinEvent``, Event Viewer
  text): 4 success, 7 completed with errors, 5/8/9/17/18/19/20/22/49/50/517/
  521/544/545/546/561 failures, 1 started and 14 completed (no outcome);
* ``Get-WBSummary`` / ``Get-WBJob`` objects (``LastBackupResultHR``,
  ``JobState``, ``HResult``, ``ErrorDescription``);
* ``wbadmin get versions`` (the list of backups);
* the HTML report of the widely copied "Windows Backup Mail Report" script
  (Joakim, jocha.se, v4.x, ``WBJobReport.ps1``), sent by ``Send-MailMessage``
  as base64 UTF-8 HTML. Its title is ``<Company> Backup Report for
  <COMPUTERNAME>``, a summary table ("Todays date", "Last Successful Backup",
  "Start time last backup", "End time last backup", "Duration last backup",
  "Backup Result", "Error Message (if applicable)") and a ``ConvertTo-HTML``
  items table (Name | Status | Size). "Backup Result" is only ``Successful``
  (``LastBackupResultHR`` 0) or ``Failed`` (anything else), the subject
  ``<Result> Backup on <COMPUTERNAME>``; when the script itself breaks, its
  catch block sends "Failed Backup on <COMPUTERNAME>" with the body "The
  backup script failed to run!". None of it names wbadmin or the event log,
  so it is recognised by that layout; the job is the computer (one report per
  server, and the subject says nothing else).

The parser recognises that output in the body, never the product's name alone,
so a mail that only talks about a failed Windows backup is not taken for one.
The job is the subject's meaningful part (what the script's author wrote), or
the computer's name when the subject says nothing else.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from custode.agent.backups.parsers._common import (
    QUOTE_MARKS,
    head_tail,
    parse_datetime,
    parse_size,
    read_fields,
    status_in,
)
from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Windows Server Backup"
PRIORITY = 900  # last: plain wbadmin output is what other Windows tools' logs quote



# Cheap pre-check on the lower-cased head and tail of the body: fragments found only in wbadmin, event and
# cmdlet output (plain substring tests; the regular expressions run only when one is there).
_MARKERS = ("backup operation", "backup of volume", "backup del volume", "operazione di backup", "windows-backup",
            "lastbackupresult", "lastsuccessfulbackup", "wbadmin", "jobstate", "version identifier",
            "identificatore versione", "backup storage location")

_BANNER = re.compile(r"wbadmin \d+\.\d+ - ", re.IGNORECASE)
_SUMMARY = re.compile(r"^\s*(?:summary of the backup operation|riepilogo dell['’]operazione di backup|"
                      r"riepilogo (?:del )?backup)\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
# Outcome sentences of wbadmin and of the Microsoft-Windows-Backup events, English and Italian, on lower-cased
# text. Each is tried only where its anchor occurs (a plain substring search): an alternation with wildcards
# tried at every position of a long body is what makes a parser slow.
_ANY = r"[^\n]{0,100}?"
_SENTENCES: dict[str, list[tuple[Status, re.Pattern[str]]]] = {
    "the backup operation": [
        ("failure", re.compile(r"the backup operation (?:stopped before completing|(?:that started|attempted) at "
                               + _ANY + r"(?:has failed|was cancell?ed)|has failed|failed|was cancell?ed|"
                               r"has been cancell?ed)")),
        ("warning", re.compile(r"the backup operation " + _ANY + r"completed with (?:errors|warnings)")),
        ("success", re.compile(r"the backup operation (?:successfully completed|has finished successfully|"
                               r"completed successfully)")),
    ],
    "operazione di backup": [
        ("failure", re.compile(r"operazione di backup (?:(?:è|e') stata )?(?:interrotta|annullata)|"
                               r"operazione di backup " + _ANY + r"(?:non (?:(?:è|e') )?(?:riuscita|stata completata)|"
                               r"ha avuto esito negativo|(?:è|e') stata annullata)")),
        ("warning", re.compile(r"operazione di backup " + _ANY + r"completata con (?:errori|avvisi|avvertenze)")),
        ("success", re.compile(r"operazione di backup (?:(?:è|e') stata )?(?:completata|terminata)"
                               r"(?! con (?:errori|avvisi|avvertenze))")),
    ],
    "backup storage location": [
        ("failure", re.compile(r"backup storage location " + _ANY + r"(?:could not|cannot) be (?:found|accessed)")),
    ],
    "running low on free space": [("warning", re.compile(r"running low on free space"))],
    "volume included for backup is missing": [("warning", re.compile(r"volume included for backup is missing"))],
    "however, some files": [("warning", re.compile(r"however, some files"))],
    "tuttavia": [("warning", re.compile(r"tuttavia,? alcuni file"))],
}
_RANK = {"success": 0, "warning": 1, "failure": 2}
_VOLUME = re.compile(
    r"^(?:the backup of volume|il backup del volume)\s+(?P<volume>.+?)\s+(?P<outcome>(?:has )?(?:successfully )?"
    r"completed(?: successfully)?(?:\.\s*however.*)?|stopped before.*|failed.*|did not complete.*|"
    r"(?:è stato |e' stato )?(?:completato|eseguito)(?: correttamente| con successo)?(?:\.\s*tuttavia.*)?|"
    r"(?:è stato |e' stato )?interrotto.*|non (?:è |e' )?(?:stato )?(?:riuscito|completato).*)\.?\s*$",
    re.IGNORECASE | re.MULTILINE)
_DETAIL = re.compile(r"^\s*(?:detailed error|errore dettagliato|dettagli errore|error description|errordescription|"
                     r"detailedmessage)\s*:\s*(?P<text>\S.*)$|^\s*(?:error|errore)\s+-\s+(?P<text2>\S.*)$",
                     re.IGNORECASE | re.MULTILINE)
_ERROR_LINE = re.compile(r"^\s*(?:ERROR|ERRORE)\s+-\s+\S", re.MULTILINE)
_LOG_FILE = re.compile(r"\\Backup(?:_Error)?-(?P<d>\d{2})-(?P<m>\d{2})-(?P<y>\d{4})_"
                       r"(?P<H>\d{2})-(?P<M>\d{2})-(?P<S>\d{2})\.log", re.IGNORECASE)
_VERSION_ID = re.compile(r"^\s*(?:version identifier|identificatore (?:di )?versione)\s*:\s*(?P<m>\d{2})/(?P<d>\d{2})/"
                         r"(?P<y>\d{4})-(?P<H>\d{2}):(?P<M>\d{2})", re.IGNORECASE | re.MULTILINE)
_FIELD = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z ]{1,40}?)\s*(?::|\|)\s*(?P<value>.*?)\s*\|?\s*$", re.MULTILINE)
_EVENT_ROW = re.compile(r"^(?P<time>\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}[ T]\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s*[AP]M)?)"
                        r"\s*\|?\s*(?P<id>\d{1,4})\s*(?:\|\s*|\s+)(?P<rest>.*)$", re.IGNORECASE | re.MULTILINE)
_EVENT_ID = re.compile(r"^\s*(?:event ?id|id evento|id)\s*[:|]\s*(?P<id>\d{1,4})\s*$", re.IGNORECASE | re.MULTILINE)
_EVENT_CONTEXT = re.compile(r"timecreated|leveldisplayname|event ?id|id evento|microsoft-windows-backup",
                            re.IGNORECASE)
_RECORD_START = re.compile(r"^\s*(?:timecreated|log name|nome registro)\s*[:|]", re.IGNORECASE | re.MULTILINE)

_EVENT_STATUS: dict[int, Status | None] = {
    4: "success", 7: "warning", 51: "warning", 146: "warning", 1: None, 14: None, 100: None,
    **{event: "failure" for event in (5, 8, 9, 17, 18, 19, 20, 22, 49, 50, 517, 521, 544, 545, 546, 561, 564)},
}

_HOST_LABEL = re.compile(r"^\s*(?:computer(?: ?name)?|nome computer|machinename|pscomputername|server|host(?:name)?|"
                         r"nome server)\s*[:|]\s*(?P<host>[A-Za-z0-9][A-Za-z0-9._-]{0,62})\s*$",
                         re.IGNORECASE | re.MULTILINE)
_HOST_TOKEN = re.compile(r"(?<![\w.-])(?=[A-Z0-9_-]*[A-Z])(?=[A-Z0-9_-]*[\d_-])[A-Z0-9][A-Z0-9_-]{2,14}(?![\w.-])")
_NOT_HOSTS = {"WBADMIN", "WSB", "OK", "KO", "ERROR", "ERRORE", "FAILED", "SUCCESS", "VSS", "BMR", "UTC", "CET", "CEST",
              "HTML", "PS", "WINDOWS", "BACKUP", "SERVER", "NAS", "USB"}
_SUBJECT_WORDS = re.compile(
    r"\b(?:wbadmin|windows(?: server)? backup|backup di windows(?: server)?|wsb|windows|server|backup|backups|report|"
    r"log|esito|risultato|result|status|stato|notifica|notification|job|"
    r"script|check|controllo|get versions|start backup|systemstatebackup|system state|on|su|del|di|of|for|per|il|"
    r"the|is|è|ok|ko|success(?:ful(?:ly)?)?|successo|succeeded|riuscito|completed?|completato|completata|eseguito|"
    r"failed|failure|fallito|fallita|error|errors|errore|errori|warning|warnings|avviso|avvisi|interrotto|"
    r"interrotta|stopped|with|con)\b|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}[:.]\d{2}(?:[:.]\d{2})?|[\[\]():!.,]",
    re.IGNORECASE)


# "Windows Backup Mail Report" (jocha.se): labels of its summary table, its title and its subjects.
_MR_LABELS = frozenset({"todays date", "last successful backup", "start time last backup", "end time last backup",
                        "duration last backup", "backup result", "error message (if applicable)"})
_MR_TITLE = re.compile(r"^\s*(?:.{0,80}?\s)?backup report for\s+(?P<host>[A-Za-z0-9][A-Za-z0-9._-]{0,62})\s*$",
                       re.IGNORECASE | re.MULTILINE)
_MR_SUBJECT = re.compile(r"^\s*(?P<result>successful|failed)\s+backup\s+on\s+"
                         r"(?P<host>[A-Za-z0-9][A-Za-z0-9._-]{0,62})\s*$", re.IGNORECASE)
_MR_SCRIPT_FAILED = re.compile(r"^\s*the backup script failed to run!?\s*$", re.IGNORECASE | re.MULTILINE)
_MR_ITEM_HEADER = re.compile(r"^\s*name\s*[|\t ]\s*status\s*[|\t ]\s*size\s*$", re.IGNORECASE)
# ConvertTo-HTML rows of the items table as rendered: "C: | Completed | 58.41 GB" (or tab-separated).
_MR_ITEM = re.compile(r"^\s*(?P<name>[^|\t\n]{1,120}?)\s*[|\t]\s*(?P<status>[A-Za-z][A-Za-z ]{1,30}?)\s*[|\t]\s*"
                      r"(?P<size>\d[\d.,]*\s*(?:bytes|[KMGTP]B))\s*\|?\s*$", re.IGNORECASE | re.MULTILINE)


NEEDLES = (*_MARKERS, "backup result", "backup on")  # the command's markers, the Mail Report's title and subject


def parse(message: MailMessage) -> BackupReport | None:
    if _REPLY.match(message.subject):
        return None  # a human answering a report, not the report
    report = _mail_report(message)
    if report is not None:
        return report
    if not _has_marker("\n".join((head_tail(message.text), head_tail(message.attachment_text))).lower()):
        return None
    text = message.text
    if message.attachment_text:
        text = f"{text}\n{message.attachment_text}"
    evidence: list[tuple[Status | None, str]] = []  # (status, what said it)
    errors: list[str] = []
    items: dict[str, ItemResult] = {}
    started: datetime | None = None
    finished: datetime | None = None
    details: dict[str, object] = {}

    banner = bool(_BANNER.search(text))
    summary = _SUMMARY.search(text)
    events = _events(message, text)
    wb_fields = _cmdlet_fields(text)
    versions = list(_VERSION_ID.finditer(text))
    sentences = _sentences(text)
    volumes = list(_VOLUME.finditer(text))
    # Output, not talk: a sentence counts alone only as a line of its own, as wbadmin and the event log write it
    # ("the backup operation failed last night" in a human mail is not a report).
    own_line = any(at_start for _, _, at_start in sentences)
    if not (banner or summary or events or wb_fields or versions or own_line or volumes):
        return None
    bulk = bool(message.header("list-unsubscribe") or message.header("list-id")
                or message.header("precedence").lower() in ("bulk", "list", "junk"))
    if bulk and not (banner or summary or wb_fields):
        return None  # a newsletter quoting an error message is not this server's backup

    # 1. wbadmin start backup: the summary section decides; the per-volume lines are the items.
    if summary:
        tail = text[summary.end():]
        verdict = _sentence_status(tail)
        if verdict:
            evidence.append((verdict, "summary"))
    elif sentences and not events:
        verdict = _sentence_status(text)
        if verdict:
            evidence.append((verdict, "output"))
    for match in volumes:
        name = match.group("volume").strip()
        outcome = match.group("outcome")
        status = _volume_status(outcome)
        items.pop(name, None)  # the summary repeats the progress lines: keep the last word on each volume
        items[name] = ItemResult(name=name, status=status, error=outcome.strip() if status != "success" else None)
    if _ERROR_LINE.search(text):
        evidence.append(("failure", "ERROR line"))
    log_file = _LOG_FILE.search(text)
    if log_file:
        started = _utc(log_file)

    # 2. Microsoft-Windows-Backup events.
    for when, event_id, status, message_text in events:
        if status is not None:
            evidence.append((status, f"event {event_id}" if event_id is not None else "event"))
            if when and (finished is None or when > finished):
                finished = when
            if status != "success" and message_text:
                errors.append(message_text)
        elif event_id == 1 and when and (started is None or when < started):
            started = when
    if events and not any(status for _, _, status, _ in events):
        details["note"] = "the events state no outcome (only started/completed)"

    # 3. Get-WBSummary / Get-WBJob.
    if wb_fields:
        status, when_started, when_finished, error = _cmdlet_status(wb_fields)
        if status:
            evidence.append((status, "cmdlet"))
        started = started or when_started
        finished = finished or when_finished
        if error:
            errors.append(error)

    # 4. wbadmin get versions, alone: the backups exist; the latest one is the finish time.
    if versions:
        latest = max(_utc(match) for match in versions)
        details["versions"] = len(versions)
        if not evidence:
            evidence.append(("success", "versions"))
            finished = latest

    for match in _DETAIL.finditer(text):
        errors.append((match.group("text") or match.group("text2")).strip())
    statuses = [status for status, _ in evidence if status]
    if statuses:
        status = worst(statuses)
    elif items:
        status = worst([item.status for item in items.values()])
    else:
        status = status_in(message.clean_subject) or "warning"
        details.setdefault("note", "the output states no outcome")
    if status == "success" and items and worst([item.status for item in items.values()]) != "success":
        status = worst([item.status for item in items.values()])
    if evidence:
        details["evidence"] = sorted({source for _, source in evidence})[:10]

    host = _host(message, text)
    error = "\n".join(dict.fromkeys(errors))[:2000] if status != "success" else ""
    return BackupReport(
        software=SOFTWARE,
        job=_job(message.clean_subject, host),
        status=status,
        host=host,
        started_at=started,
        finished_at=finished,
        error=error or None,
        items=list(items.values())[:100],
        details=details,
    )


def _has_marker(low: str) -> bool:
    return any(marker in low for marker in _MARKERS)


_LINE_PREFIX = re.compile(r"(?:(?:message|messaggio|description|descrizione)\s*[:|]\s*)?(?:l['’])?")


def _sentences(text: str) -> list[tuple[int, Status, bool]]:
    """(position, status, at a line's start) of every outcome sentence, in order."""
    low = text.lower()
    found: list[tuple[int, Status, bool]] = []
    for anchor, candidates in _SENTENCES.items():
        index = low.find(anchor)
        while index >= 0:
            for status, regex in candidates:
                if regex.match(low, index):
                    line_start = low.rfind("\n", 0, index) + 1
                    own_line = bool(_LINE_PREFIX.fullmatch(low[line_start:index].strip()))
                    found.append((index, status, own_line))
                    break
            index = low.find(anchor, index + len(anchor))
    return sorted(found)


def _sentence_status(text: str) -> Status | None:
    """The outcome of a stretch of output: its first sentence, unless a later one is worse ("...completed.
    However, some files..." or a later stop)."""
    found = _sentences(text)
    if not found:
        return None
    first = found[0][1]
    return worst([first] + [status for _, status, _ in found if status != "success"])


def _volume_status(outcome: str) -> Status:
    low = outcome.lower()
    if re.search(r"however|tuttavia", low):
        return "warning"
    if re.search(r"stopped|failed|did not|interrott|non (?:è |e' )?(?:stato )?(?:riuscito|completato)", low):
        return "failure"
    return "success"


def _utc(match: re.Match[str]) -> datetime:
    """A UTC time from named groups y, m, d, H, M (and S): log file names and version identifiers are UTC."""
    return datetime(int(match.group("y")), int(match.group("m")), int(match.group("d")), int(match.group("H")),
                    int(match.group("M")), int(match.groupdict().get("S") or 0), tzinfo=timezone.utc)


def _events(message: MailMessage, text: str) -> list[tuple[datetime | None, int | None, Status | None, str]]:
    """(time, event id, status, message) of each Microsoft-Windows-Backup event the mail lists."""
    events: list[tuple[datetime | None, int | None, Status | None, str]] = []
    # Format-Table rows and HTML tables rendered as "time | id | level | message". A bare number after a date is
    # an event id only in an event listing.
    listing = bool(_EVENT_CONTEXT.search(text))
    for row in _EVENT_ROW.finditer(text):
        event_id = int(row.group("id"))
        rest = row.group("rest")
        status = _message_status(rest)
        if status is None:
            if not listing or event_id not in _EVENT_STATUS:
                continue
            status = _EVENT_STATUS[event_id]
        events.append((parse_datetime(row.group("time")), event_id, status, _message_only(rest)))
    if events:
        return events
    # Format-List records and Event Viewer text: "TimeCreated : ...", "Id : 4", "Message : ...".
    starts = [match.start() for match in _RECORD_START.finditer(text)]
    for index, start in enumerate(starts):
        record = text[start:starts[index + 1] if index + 1 < len(starts) else len(text)]
        id_match = _EVENT_ID.search(record)
        event_id = int(id_match.group("id")) if id_match else None
        status = _message_status(record)
        if status is None and event_id is not None:
            status = _EVENT_STATUS.get(event_id)
        if event_id is None and status is None:
            continue
        when = None
        for field in _FIELD.finditer(record):
            if field.group("key").strip().lower() in ("timecreated", "date", "data", "time created"):
                when = parse_datetime(field.group("value"))
                break
        events.append((when, event_id, status, _record_message(record)))
    if not events and "Microsoft-Windows-Backup" in text:
        # A bare event message pasted by a script ("The backup operation that started at ... has failed ...").
        own = [status for _, status, at_start in _sentences(text) if at_start]
        if own:
            events.append((None, None, max(own, key=_RANK.__getitem__), _record_message(text)))
    return events


def _message_status(text: str) -> Status | None:
    """The worst outcome an event message states."""
    found = _sentences(text)
    return max((status for _, status, _ in found), key=_RANK.__getitem__) if found else None


def _message_only(rest: str) -> str:
    """The message of a table row: after the level column."""
    parts = [part.strip() for part in rest.split("|")]
    if len(parts) > 1:
        return parts[-1]
    return re.sub(r"^\s*(?:information|informazioni|error|errore|warning|avviso|avvertenza|critical|critico)\s+", "",
                  rest, flags=re.IGNORECASE).strip()


def _record_message(record: str) -> str:
    """The line of an event record that states the failure or warning, without its ``Message :`` label."""
    lines = record.splitlines()
    for line in lines:
        if any(status != "success" for _, status, _ in _sentences(line)):
            return re.sub(r"^\s*(?:message|description|descrizione|messaggio)\s*[:|]\s*", "", line,
                          flags=re.IGNORECASE).strip()[:500]
    return ""


def _cmdlet_fields(text: str) -> dict[str, str]:
    """Get-WBSummary / Get-WBJob properties (``Name : value`` lines) when the mail has them."""
    if "LastBackupResult" not in text and "JobState" not in text and "LastSuccessfulBackup" not in text:
        return {}
    fields: dict[str, str] = {}
    for match in _FIELD.finditer(text):
        key = match.group("key").replace(" ", "").lower()
        if key in ("lastbackupresulthr", "lastbackupresultdetailedhr", "lastbackuptime", "lastsuccessfulbackuptime",
                   "detailedmessage", "jobstate", "jobtype", "hresult", "detailedhresult", "errordescription",
                   "starttime", "endtime", "currentoperationstatus"):
            fields.setdefault(key, match.group("value").strip())
    return fields


def _hresult(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def _cmdlet_status(fields: dict[str, str]) -> tuple[Status | None, datetime | None, datetime | None, str | None]:
    status: Status | None = None
    error = fields.get("detailedmessage") or fields.get("errordescription") or None
    summary_hr = _hresult(fields.get("lastbackupresulthr"))
    job_hr = _hresult(fields.get("hresult"))
    if summary_hr is not None:
        status = "success" if summary_hr == 0 else "failure"
    if job_hr is not None:
        job_status: Status = "success" if job_hr == 0 else "failure"
        state = fields.get("jobstate", "").lower()
        if job_status == "success" and state and state not in ("completed", "completato"):
            job_status = "warning"  # queued or still running: no outcome yet
        status = worst([status, job_status]) if status else job_status
    started = parse_datetime(fields.get("starttime"))
    finished = parse_datetime(fields.get("endtime")) or parse_datetime(fields.get("lastbackuptime"))
    if status == "success":
        error = None
    elif error is None and summary_hr:
        error = f"LastBackupResultHR 0x{summary_hr & 0xFFFFFFFF:08X}"
    return status, started, finished, error


def _host(message: MailMessage, text: str) -> str | None:
    """The computer: a ``Computer:``/``MachineName`` field, else ``[NAME]`` or a host-like name in the subject."""
    label = _HOST_LABEL.search(text)
    if label:
        return label.group("host").split(".")[0]
    subject = message.clean_subject
    bracket = re.search(r"\[\s*([A-Za-z0-9][A-Za-z0-9._-]{1,62})\s*\]", subject)
    if bracket and bracket.group(1).upper() not in _NOT_HOSTS and not status_in(bracket.group(1)):
        return bracket.group(1).split(".")[0]
    for token in _HOST_TOKEN.findall(subject):
        if token.upper() not in _NOT_HOSTS:
            return token
    return None


def _job(subject: str, host: str | None) -> str | None:
    """The subject's meaningful part: the segments that say more than product, outcome, date and computer."""
    segments = [segment.strip(" -–|:") for segment in re.split(r"\s+[-–|]\s+|:\s+|\s*[\[\]]\s*|\s*\|\s*", subject)]
    kept = []
    for segment in segments:
        if not segment:
            continue
        rest = segment
        if host:
            rest = re.sub(r"(?<![\w-])" + re.escape(host) + r"(?:\.[\w.-]+)?(?![\w-])", " ", rest,
                          flags=re.IGNORECASE)
        rest = _SUBJECT_WORDS.sub(" ", rest)
        if re.search(r"\w", rest):
            cleaned = segment
            if host:
                cleaned = re.sub(r"\s*\(\s*" + re.escape(host) + r"\s*\)", "", cleaned, flags=re.IGNORECASE)
            kept.append(cleaned.strip(" -–|:"))
    job = " - ".join(part for part in kept if part)
    return job or host


def _mail_report(message: MailMessage) -> BackupReport | None:
    """The "Windows Backup Mail Report" script's HTML report (or its "script failed" note), else None."""
    text = message.text
    low = head_tail(text).lower()
    subject = _MR_SUBJECT.match(message.clean_subject)
    if "backup result" not in low:
        if subject and subject.group("result").lower() == "failed" and _MR_SCRIPT_FAILED.search(text[:2000]):
            host = subject.group("host").split(".")[0]
            return BackupReport(software=SOFTWARE, job=host, status="failure", host=host,
                                error="The backup script failed to run!",
                                details={"sender_tool": "Windows Backup Mail Report", "note": "the script failed"})
        return None
    if ">" in text and QUOTE_MARKS.search(text):
        text = QUOTE_MARKS.sub("", text)  # forwarded "as quote"
    title = _MR_TITLE.search(text)
    fields = read_fields(text.splitlines()[:400], _MR_LABELS, only_known=True)
    value = fields.get("backup result")
    if value is None or len(fields) < 4 or not (title or subject):
        return None  # another script's "Backup result": not this layout
    status: Status | None = {"successful": "success", "failed": "failure"}.get(value.strip().lower()) \
        or status_in(value)
    items: dict[str, ItemResult] = {}
    for match in _MR_ITEM.finditer(text):
        name = match.group("name").strip()
        item_status = status_in(match.group("status")) or "warning"
        items[name] = ItemResult(name=name, status=item_status,
                                 error=match.group("status").strip() if item_status != "success" else None,
                                 size_bytes=parse_size(match.group("size")))
    if status is None:
        status = worst([item.status for item in items.values()]) if items else (
            status_in(message.clean_subject) or "warning")
    elif status == "success" and items:
        status = worst([status] + [item.status for item in items.values()])
    host = (title.group("host") if title else subject.group("host")).split(".")[0]  # type: ignore[union-attr]
    error = fields.get("error message (if applicable)") or None
    if error and _MR_ITEM_HEADER.match(error):
        error = None  # an empty error cell, and the items table's header on the next line
    if status == "success":
        error = None
    elif error is None:
        error = next((item.error for item in items.values() if item.error), None)
    sizes = [item.size_bytes for item in items.values() if item.size_bytes is not None]
    details: dict[str, object] = {"sender_tool": "Windows Backup Mail Report"}
    if fields.get("last successful backup"):
        details["last_successful_backup"] = fields["last successful backup"]
    return BackupReport(
        software=SOFTWARE,
        job=host,
        status=status,
        host=host,
        started_at=parse_datetime(fields.get("start time last backup")),
        finished_at=parse_datetime(fields.get("end time last backup")),
        size_bytes=sum(sizes) if sizes else None,
        error=error[:2000] if error else None,
        items=list(items.values())[:100],
        details=details,
    )
