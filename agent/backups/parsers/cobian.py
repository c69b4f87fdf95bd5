"""Cobian Backup 11 and Cobian Reflector: the log mailed after a backup.

Both programs mail their log, in the body or as an attached text file, under a
subject the administrator chooses (Cobian Backup 11's default carries the
computer in brackets and the date in parentheses). The log is what counts:

* Cobian Backup 11 writes ``** Backing up the task "X" **`` and, per task,
  ``** Backup done for the task "X". Errors: N. Processed files: N. Backed up
  files: N. Total size: 2,45 GB **``; error lines start with ``ERR``.
* Cobian Reflector writes ``Backing up the task "X"``, ``** Backup for task "X"
  ended. Number of backed up files: N. Created folders: N. Backup size: 41,6
  KB. **`` and at the end ``The backup has ended without errors.`` (or that
  there are errors); its mail starts "This is an automatic mail message from
  Cobian Reflector".

The log language follows the program's localisation (Italian, Spanish...), so
lines are recognised by their shape (timestamp, ``**``, a quoted task name, an
errors counter in any language) rather than by English sentences alone.
"""

from __future__ import annotations

import re
from datetime import datetime

from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import head_tail, parse_datetime, parse_size
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Cobian Backup"
PRIORITY = 100
REFLECTOR = "Cobian Reflector"



_VERBATIM_FRAGMENTS = ("Backup done for the task", "Backup for task", "Backing up the task")
# English log sentences specific enough to identify the program without its name (custom subject, bare log).
_VERBATIM = re.compile(r"\*\*\s*Backup done for the task \"|\*\*\s*Backup for task \"[^\"\n]+\" ended|"
                       r"Backing up the task \"")
_TIMESTAMP = re.compile(r"(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?|\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}"
                        r"(?::\d{2})?)")
_LOG_LINE = re.compile(r"^(?:(?P<level>ERR|WAR|WRN|INF|DBG)\b\s*)?" + _TIMESTAMP.pattern + r"\s+(?P<message>.*)$")
_QUOTED = re.compile(r"[\"“](?P<task>[^\"”\n]{1,200})[\"”]")
_ERRORS = re.compile(r"\b(?:errors?|errori|errores|fehler|erreurs|erros|fouten)\s*[:=]\s*(?P<n>\d+)", re.IGNORECASE)
_WARNINGS = re.compile(r"\b(?:warnings?|avvisi|avvertimenti|advertencias|warnungen|avertissements)\s*[:=]\s*(?P<n>\d+)",
                       re.IGNORECASE)
_SIZE = re.compile(r"(?:total size|backup size|dimensione(?: totale| del backup)?|tama[ñn]o(?: total| del respaldo)?|"
                   r"gesamtgr[öo]sse|taille(?: totale)?|size)\s*:\s*(?P<size>\d[\d.,]*\s*(?:bytes?|[KMGTP]i?B|byte))",
                   re.IGNORECASE)
_TASK_START = re.compile(r"(?:backing up the task|backup (?:del|of the) task|backup dell?[a' ]+(?:task|attivit[àa])|"
                         r"respaldando la tarea|sicherung der aufgabe|sauvegarde de la t[âa]che|copia del task)\b",
                         re.IGNORECASE)
_TASK_END = re.compile(r"\b(?:done|ended|finished|fatto|fatta|terminat[oa]|eseguit[oa]|completat[oa]|terminado|"
                       r"beendet|termin[ée]e?|concluso|conclus[oa])\b", re.IGNORECASE)
_RUN_END_OK = re.compile(r"(?:ended|is done|has finished|terminat[oa]|concluso|finito)\W{0,4}(?:without errors|"
                         r"senza errori|sin errores|ohne fehler|sans erreurs?)", re.IGNORECASE)
_RUN_END_ERRORS = re.compile(r"(?:ended|is done|has finished|terminat[oa]|concluso|finito)\W{0,4}(?:there (?:are|were)"
                             r"(?: \d+)? errors?|with errors|ci sono (?:stati )?(?:\d+ )?errori|con errori|"
                             r"hay errores|con errores|mit fehlern|avec (?:des )?erreurs)|,\s*had\s+[1-9]\d*\s+errors?",
                             re.IGNORECASE)
_REFLECTOR_LOG = re.compile(r"Backup for task \"|The backup has ended|Volume Shadow Copy image", re.IGNORECASE)
_SUBJECT_HOST = re.compile(r"\[\s*(?P<bracket>[A-Za-z0-9][A-Za-z0-9._-]{0,62})\s*\]"
                           r"|\(\s*(?P<paren>(?!\d{2,4}[-/.]\d{1,2}[-/.]\d{1,4}\s*\))[A-Za-z0-9._-]*[A-Za-z]"
                           r"[A-Za-z0-9._-]*)\s*\)")
_STATUS_TAGS = re.compile(r"^(?:ok|success|successo|warning|avviso|avvisi|error|errore|errori|errors|failed|"
                          r"fallito|info)$", re.IGNORECASE)
_SUBJECT_NOISE = re.compile(
    r"cobian(?:\s+(?:backup(?:\s+\d+(?:\s+\"?gravity\"?)?)?|reflector))?|\[[^\]]*\]|\([^)]*\)|"
    r"\b\d+\s+(?:errors?|errori|errores)\b|\b(?:errors?|errori)\s*[:=]\s*\d+|"
    r"\b(?:log|report|backup|esito|result|risultato|notifica|notification|ok|success|successo|failed|fallito|"
    r"errors?|errori|warnings?|avvisi)\b|\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b",
    re.IGNORECASE)


class _Task:
    def __init__(self, name: str) -> None:
        self.name = name
        self.errors: int | None = None  # the counter the log states for the task
        self.error_lines: list[str] = []
        self.warning_lines: list[str] = []
        self.size: int | None = None
        self.first: str | None = None
        self.last: str | None = None
        self.ended = False

    @property
    def status(self) -> Status:
        if (self.errors or 0) > 0 or self.error_lines:
            return "failure"
        if self.warning_lines:
            return "warning"
        if not self.ended:
            return "warning"  # started, never ended: the log was cut or the run is still going
        return "success"


NEEDLES = ("cobian", *(fragment.lower() for fragment in _VERBATIM_FRAGMENTS))


def parse(message: MailMessage) -> BackupReport | None:
    if _REPLY.match(message.subject):
        return None  # a human answering a report, not the report
    window = "\n".join((head_tail(message.text), head_tail(message.attachment_text)))
    named = "cobian" in "\n".join((message.subject, message.sender_name, message.sender, *message.attachments,
                                    window)).lower()
    verbatim = any(fragment in window for fragment in _VERBATIM_FRAGMENTS) and bool(_VERBATIM.search(window))
    if not (named or verbatim):
        return None
    body = message.text
    log = "\n".join(part for part in (body, message.attachment_text) if part)
    bulk = bool(message.header("list-unsubscribe") or message.header("list-id")
                or message.header("precedence").lower() in ("bulk", "list", "junk"))
    if bulk and not re.search(r"automatic mail message from cobian", log, re.IGNORECASE):
        return None  # a forum digest quoting someone's log is not this site's report
    tasks, loose_errors, loose_warnings, run_end, timestamps = _read_log(log)
    # A report is a Cobian log: timestamped lines naming a task, or the end-of-run verdict. A mail that only talks
    # about Cobian (a human, a newsletter) has no such lines.
    if not tasks and run_end is None and not (named and loose_errors and timestamps):
        return None

    items = [ItemResult(name=task.name, status=task.status, error=_first_lines(task.error_lines or task.warning_lines),
                        size_bytes=task.size) for task in tasks]
    statuses: list[Status] = [item.status for item in items]
    if loose_errors or run_end == "failure":
        statuses.append("failure")
    elif loose_warnings:
        statuses.append("warning")
    if run_end == "success" and not statuses:
        statuses.append("success")
    status = worst(statuses) if statuses else "warning"

    host = _host(message.clean_subject)
    names = list(dict.fromkeys(task.name for task in tasks))
    if len(names) == 1:
        job: str | None = names[0]
    else:
        job = host or _subject_job(message.clean_subject)
    software = REFLECTOR if (re.search(r"reflector", " ".join((message.subject, message.sender_name, log[:5000],
                                                              " ".join(message.attachments))), re.IGNORECASE)
                             or _REFLECTOR_LOG.search(log)) else SOFTWARE
    error_lines = [line for task in tasks for line in task.error_lines] + loose_errors
    warning_lines = [line for task in tasks for line in task.warning_lines] + loose_warnings
    sizes = [task.size for task in tasks if task.size is not None]
    details: dict[str, object] = {}
    if len(names) > 1:
        details["tasks"] = names[:50]
    errors_stated = [task.errors for task in tasks if task.errors is not None]
    if errors_stated:
        details["errors"] = sum(errors_stated)
    if not tasks and run_end is None:
        details["note"] = "no task found in the log"
    # The times of the runs reported (a daily log may also hold earlier runs of the same tasks).
    firsts = [task.first for task in tasks if task.first] or timestamps[:1]
    lasts = [task.last for task in tasks if task.last] or timestamps[-1:]
    if tasks and run_end is not None and timestamps:
        lasts.append(timestamps[-1])
    return BackupReport(
        software=software,
        job=job,
        status=status,
        host=host,
        started_at=_when(min(firsts)) if firsts else None,
        finished_at=_when(max(lasts)) if lasts else None,
        size_bytes=sum(sizes) if sizes else None,
        error=_first_lines(error_lines or warning_lines) if status != "success" else None,
        items=items,
        details=details,
    )


def _read_log(log: str) -> tuple[list[_Task], list[str], list[str], Status | None, list[str]]:
    """Tasks (the last run of each), error/warning lines outside any task, the end-of-run verdict, timestamps."""
    tasks: dict[str, _Task] = {}
    current: _Task | None = None
    loose_errors: list[str] = []
    loose_warnings: list[str] = []
    run_end: Status | None = None
    timestamps: list[str] = []
    for raw in log.splitlines():
        line = raw.strip()
        match = _LOG_LINE.match(line)
        if not match:
            continue
        level, stamp, text = match.group("level"), match.group("ts"), match.group("message").strip()
        timestamps.append(stamp)
        quoted = _QUOTED.search(text)
        if quoted and _is_task_end(text):
            name = quoted.group("task").strip()
            task = tasks.get(name) if current is None or current.name != name else current
            if task is None:
                task = _Task(name)
                task.first = stamp
                tasks[name] = task
            task.ended = True
            task.last = stamp
            errors = _ERRORS.search(text)
            if errors:
                task.errors = int(errors.group("n"))
            warnings = _WARNINGS.search(text)
            if warnings and int(warnings.group("n")) > 0:
                task.warning_lines.append(_clean(text))
            size = _SIZE.search(text)
            if size:
                task.size = parse_size(size.group("size"))
            if level == "ERR":
                task.error_lines.append(_clean(text))
            current = None
            continue
        if quoted and _is_task_start(text):
            name = quoted.group("task").strip()
            current = _Task(name)
            tasks.pop(name, None)  # a later run of the same task replaces the earlier one
            tasks[name] = current
            current.first = stamp
            continue
        if _RUN_END_ERRORS.search(text):
            run_end = "failure"
        elif _RUN_END_OK.search(text):
            run_end = run_end or "success"
        elif text.startswith("**"):
            overall = _ERRORS.search(text)
            if overall:
                run_end = "failure" if int(overall.group("n")) else (run_end or "success")
        if level == "ERR":
            (current.error_lines if current else loose_errors).append(_clean(text))
        elif level in ("WAR", "WRN"):
            (current.warning_lines if current else loose_warnings).append(_clean(text))
        if current is not None:
            current.last = stamp
    return list(tasks.values()), loose_errors, loose_warnings, run_end, timestamps


def _is_task_start(text: str) -> bool:
    if _TASK_START.search(text):
        return True
    # Cobian Backup 11 in any language: "** <words> "<task>" **" without counters is the start of a task.
    return text.startswith("**") and text.rstrip().endswith("**") and not _ERRORS.search(text) \
        and not _SIZE.search(text) and not _TASK_END.search(text)


def _is_task_end(text: str) -> bool:
    if not text.startswith("**"):
        return False
    return bool(_ERRORS.search(text) or _SIZE.search(text) or _TASK_END.search(text))


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip(" *"))[:500]


def _first_lines(lines: list[str], limit: int = 3) -> str | None:
    unique = list(dict.fromkeys(lines))
    return "\n".join(unique[:limit])[:2000] or None


def _when(stamp: str) -> datetime | None:
    return parse_datetime(stamp)


def _host(subject: str) -> str | None:
    """The computer from the subject: ``[SRV01]`` (Cobian Backup 11's default) or ``(SRV01)`` that is no date."""
    for match in _SUBJECT_HOST.finditer(subject):
        value = match.group("bracket") or match.group("paren")
        if value and not _STATUS_TAGS.match(value) and not re.fullmatch(r"[\d._-]+", value):
            return value
    return None


def _subject_job(subject: str) -> str | None:
    rest = _SUBJECT_NOISE.sub(" ", subject)
    parts = [part.strip() for part in re.split(r"\s+[-–|:]\s+|[|–]|^\s*[-:]|[-:]\s*$", rest)]
    parts = [part for part in parts if part and re.search(r"\w", part)]
    return re.sub(r"\s+", " ", parts[0]) if parts else None
