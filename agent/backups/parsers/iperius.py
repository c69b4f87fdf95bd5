"""Iperius Backup: the notification e-mail sent at the end of a backup job.

Iperius (Italian, very common in municipalities) mails one message per job:
the job name, the computer, start and end, the result sentence ("Backup
completato con successo" / "completato con avvisi" / "completato con errori" /
"Backup failed"...), counters, and the list of operations with their outcome.
The subject is set by the administrator with variables (computer, job, result),
so the body's labelled lines are trusted first and the subject is a fallback.
Italian and English localisations, plain text or HTML, forwarded or not.
"""

from __future__ import annotations

import re

from agent.backups.parsers._common import parse_datetime, parse_size, status_in
from agent.backups.report import BackupReport, ItemResult, Status, worst
from agent.mail.message import MailMessage

SOFTWARE = "Iperius Backup"

_PRODUCT = re.compile(r"iperius", re.IGNORECASE)
_REPLY = re.compile(r"^\s*(?:re|r|aw|sv|antw|rif|odp)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)


def _names(*names: str) -> str:
    return "(?:" + "|".join(names) + ")"


def _label(names: str) -> re.Pattern[str]:
    """A ``Label: value`` / ``Label | value`` line (HTML cells are joined by `` | ``)."""
    return re.compile(r"^[ \t*•-]*" + names + r"[ \t]*(?:[:|\t=][ \t]*)+(?P<value>[^\n]*?)[ \t|]*$",
                      re.IGNORECASE | re.MULTILINE)


# Label vocabulary, Italian and English, most specific first within each field.
_LABELS: dict[str, list[str]] = {
    "job": [_names(r"job di backup", r"nome(?: del)? job", r"nome(?: del)? backup", r"backup job", r"job name",
                   r"job", r"nome attivit[àa]", r"attivit[àa]", r"operazione pianificata")],
    "host": [_names(r"computer", r"nome(?: del)? computer", r"computer name", r"nome(?: del)? pc", r"pc",
                    r"macchina", r"workstation", r"hostname"),
             _names(r"server", r"host", r"nome server", r"server name")],
    "result": [_names(r"esito(?: (?:del )?backup)?", r"risultato(?: (?:del )?backup)?", r"(?:backup )?result",
                      r"outcome"),
               _names(r"stato(?: (?:del )?backup)?", r"(?:backup )?status")],
    "start": [_names(r"(?:data(?:\s*/\s*ora)? |ora |orario )?(?:di )?inizio(?: backup)?", r"avvio", r"avviato",
                     r"(?:backup )?start(?:ed)?(?: (?:time|date|at))?", r"inizio backup")],
    "end": [_names(r"(?:data(?:\s*/\s*ora)? |ora |orario )?(?:di )?fine(?: backup)?", r"termine", r"terminato",
                   r"(?:backup )?end(?:ed)?(?: (?:time|date|at))?", r"finish(?:ed)?(?: (?:time|at))?",
                   r"completed at")],
}
_FIELD_LINES = {field: [_label(names) for names in alternatives] for field, alternatives in _LABELS.items()}
_FIELD_CELLS = {field: re.compile(r"^\s*(?:" + "|".join(alternatives) + r")\s*:?\s*$", re.IGNORECASE)
                for field, alternatives in _LABELS.items()}
_SIZE = _label(_names(r"dimensione(?: totale)?(?: (?:dei )?(?:file|dati))?(?: copiat[ie])?",
                      r"dati (?:copiati|elaborati)", r"(?:total )?size", r"(?:copied|processed|backed up) (?:data|size)",
                      r"byte copiati"))
_TRANSFERRED = _label(_names(r"dati trasferiti", r"trasferit[io]", r"(?:data )?transferred"))
_ERRORS = _label(_names(r"errori", r"errors?", r"numero (?:di )?errori"))
_WARNINGS = _label(_names(r"avvisi", r"avvertimenti", r"warnings?", r"numero (?:di )?avvisi"))
_FILES = _label(_names(r"file copiati", r"files? copied", r"copied files"))
_DURATION = _label(_names(r"durata", r"duration", r"tempo impiegato", r"elapsed time"))
_RESULT = _FIELD_LINES["result"][0]

# The result sentence as Iperius writes it, on a line of its own or in the subject.
_RESULT_SENTENCE = re.compile(
    r"\bbackup\s+(?:(?:è\s+stato\s+)?(?:completato|terminato|eseguito)(?:\s+(?:con\s+successo|correttamente|"
    r"con\s+avvisi|con\s+avvertimenti|con\s+errori))?|fallito|non\s+(?:riuscito|completato|eseguito)|interrotto|"
    r"annullato|completed(?:\s+(?:successfully|with\s+warnings?|with\s+errors?))?|"
    r"(?:successfully\s+)?completed|failed|aborted|cancell?ed|not\s+completed)\b",
    re.IGNORECASE)
_OPERATIONS_HEADING = re.compile(r"^\s*(?:operazioni(?: eseguite)?|elenco operazioni|operations(?: performed)?|"
                                 r"destinazioni|destinations)\s*:?\s*$", re.IGNORECASE)
_ITEM_LINE = re.compile(r"^[ \t*•-]*(?P<name>.+?)[ \t]*(?::|\||\s[-–]\s)[ \t]*(?P<status>[^:|]{2,60}?)[ \t|]*$")
_NAME_HEADER = re.compile(r"operazion|operation|destinazion|destination|elemento|item|attivit|task|descrizione|"
                          r"description", re.IGNORECASE)
_STATUS_HEADER = re.compile(r"esito|risultato|result|stato|status", re.IGNORECASE)
_PROBLEM = re.compile(r"(?<!\w)(?:error|errore|failed|fallit|non riuscit|impossibile|unable|cannot|could not|denied|"
                      r"negato|exception|eccezione|warning|avviso|attenzione|avvertiment|non trovat|not found)",
                      re.IGNORECASE)
_COUNT_LINE = re.compile(r"^[ \t*•-]*(?:errori|errors?|avvisi|avvertimenti|warnings?)[ \t]*[:|=]", re.IGNORECASE)


def parse(message: MailMessage) -> BackupReport | None:
    if _REPLY.match(message.subject):
        return None  # a human answering a report, not the report
    if not _mentions_product(message):
        return None
    text = message.text
    if message.attachment_text and _PRODUCT.search(message.attachment_text):
        text = f"{text}\n{message.attachment_text}"
    fields = _fields(message, text)
    labelled = sum(1 for value in fields.values() if value)
    subject = message.clean_subject
    sentence_line = _result_sentence_line(text)
    from_product = bool(_PRODUCT.search(message.sender_name) or "iperius" in message.sender)
    subject_sentence = bool(_RESULT_SENTENCE.search(subject))
    bulk = bool(message.header("list-unsubscribe") or message.header("list-id"))
    # A report has labelled fields (job, computer, result, times), or the result sentence as the software writes
    # it sent by the software; a newsletter or a human mail merely mentioning Iperius and a failed backup has neither.
    if labelled < 2 and not (labelled and (sentence_line or subject_sentence)) \
            and not (from_product and (sentence_line or subject_sentence)):
        return None
    if bulk and labelled < 3:
        return None

    host = _clean_value(fields["host"])
    job = _clean_job(fields["job"]) or _job_from_subject(subject, host)
    status = _status(fields["result"], sentence_line, subject, text)
    items = _items(message, text)
    details: dict[str, object] = {}
    if fields["result"] or sentence_line:
        details["result"] = (fields["result"] or sentence_line or "")[:200]
    if status is None and items:
        status = worst([item.status for item in items])
    if status is None:
        status = "warning"
        details["note"] = "the report states no result"
    elif status == "success" and items and worst([item.status for item in items]) != "success":
        status = worst([item.status for item in items])  # a failed operation inside a job reported as good
    for name, regex in (("files", _FILES), ("errors", _ERRORS), ("warnings", _WARNINGS), ("duration", _DURATION)):
        value = _first(regex, text)
        if value:
            details[name] = value[:80]
    return BackupReport(
        software=SOFTWARE,
        job=job,
        status=status,
        host=host,
        started_at=parse_datetime(fields["start"]),
        finished_at=parse_datetime(fields["end"]),
        size_bytes=parse_size(_first(_SIZE, text)),
        transferred_bytes=parse_size(_first(_TRANSFERRED, text)),
        error=_problems(text) if status != "success" else None,
        items=items,
        details=details,
    )


def _fields(message: MailMessage, text: str) -> dict[str, str | None]:
    """Job, host, result, start and end: from ``Label: value`` lines, else from a table with a header row."""
    fields: dict[str, str | None] = {}
    for field, regexes in _FIELD_LINES.items():
        fields[field] = None
        for regex in regexes:
            value = _first(regex, text)
            if value:
                fields[field] = value
                break
    for table in message.tables:
        if len(table) < 2:
            continue
        header = table[0]
        columns = {field: index for index, cell in enumerate(header)
                   for field, regex in _FIELD_CELLS.items() if regex.match(cell)}
        if len(columns) < 2:
            continue
        row = table[1]
        for field, index in columns.items():
            if index < len(row) and row[index].strip():
                fields[field] = row[index].strip()
        break
    return fields


def _mentions_product(message: MailMessage) -> bool:
    return bool(_PRODUCT.search(message.subject) or "iperius" in message.sender
                or _PRODUCT.search(message.sender_name) or _PRODUCT.search(message.text)
                or any("iperius" in name.lower() for name in message.attachments)
                or (message.attachment_text and _PRODUCT.search(message.attachment_text)))


def _first(regex: re.Pattern[str], text: str) -> str | None:
    for match in regex.finditer(text):
        value = match.group("value").strip(" |\t")
        if value and not any(cells.match(value.split("|")[0]) for cells in _FIELD_CELLS.values()):
            return value
    return None


def _clean_value(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip(" \t|\"'“”«»")
    return value or None


def _clean_job(value: str | None) -> str | None:
    value = _clean_value(value)
    if value and status_in(value) and _RESULT_SENTENCE.search(value):
        return None  # "Job: Backup completato" is a result, not a name
    return value


def _result_sentence_line(text: str) -> str | None:
    """A short line that is the result sentence ("Backup completato con successo.")."""
    for line in text.splitlines():
        stripped = line.strip(" \t|*.-")
        if 8 <= len(stripped) <= 80 and _RESULT_SENTENCE.match(stripped) \
                and _RESULT_SENTENCE.match(stripped).end() >= len(stripped) - 25:
            return stripped
    return None


_SUBJECT_NOISE = re.compile(
    r"iperius(?:\s+backup)?(?:\s+(?:pro|full|advanced|essential|desktop|server|free))?|"
    r"\[[^\]]*\]|" + _RESULT_SENTENCE.pattern + r"|"
    r"\b(?:esito|risultato|result|report|notifica|notification|rapporto)\b\s*:?|"
    r"\b(?:successo|success(?:ful)?|ok|errore|errori|error|errors|failed|fallito|warning|warnings|avvisi|avviso)\b|"
    r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:\s+\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)?",
    re.IGNORECASE)


def _job_from_subject(subject: str, host: str | None) -> str | None:
    """The job from an administrator's subject: what is left without product, result, computer and date."""
    quoted = re.search(r"[\"“«']([^\"”»']{2,80})[\"”»']", subject)
    if quoted:
        return quoted.group(1).strip()
    rest = _SUBJECT_NOISE.sub(" ", subject)
    if host:
        rest = re.sub(r"(?<![\w-])" + re.escape(host) + r"(?![\w-])", " ", rest, flags=re.IGNORECASE)
    parts = [part.strip(" ()") for part in re.split(r"\s+[-–|:]\s+|\s*[|–]\s*|^\s*[-:]|[-:]\s*$", rest)]
    parts = [part for part in parts if part and re.search(r"\w", part)
             and part.lower() not in ("backup", "job", "computer", "il", "the", "di", "del")]
    if parts:
        return re.sub(r"\s+", " ", parts[0]).strip(" -:")
    return None


def _status(result: str | None, sentence: str | None, subject: str, text: str) -> Status | None:
    status = status_in(result) if result else None
    if status is None and sentence:
        status = status_in(sentence)
    if status is None:
        match = _RESULT_SENTENCE.search(subject)
        if match:
            status = status_in(match.group(0))
    if status is None:
        errors = _count(_first(_ERRORS, text))
        warnings = _count(_first(_WARNINGS, text))
        if errors:
            status = "failure"
        elif warnings:
            status = "warning"
        elif errors == 0:
            status = "success"
    return status


def _count(value: str | None) -> int | None:
    if not value:
        return None
    match = re.match(r"\s*(\d+)", value)
    return int(match.group(1)) if match else None


def _problems(text: str) -> str | None:
    """The lines that state an error or warning, without the result and counter lines."""
    found = []
    for line in text.splitlines():
        stripped = line.strip(" |\t")
        if len(stripped) < 6 or _COUNT_LINE.match(stripped) or _RESULT.match(stripped) \
                or _RESULT_SENTENCE.fullmatch(stripped.rstrip(".")):
            continue
        if _PROBLEM.search(stripped) and stripped not in found:
            found.append(stripped)
        if len(found) == 3:
            break
    return "\n".join(found)[:2000] or None


def _items(message: MailMessage, text: str) -> list[ItemResult]:
    items: list[ItemResult] = []
    for table in message.tables:
        items.extend(_table_items(table))
    if not items:
        items = _text_items(text)
    return items[:200]


def _table_items(table: list[list[str]]) -> list[ItemResult]:
    for index, row in enumerate(table[:3]):
        status_col = next((i for i, cell in enumerate(row) if _STATUS_HEADER.search(cell) and len(cell) < 30), None)
        name_col = next((i for i, cell in enumerate(row) if _NAME_HEADER.search(cell) and len(cell) < 40
                         and i != status_col), None)
        if status_col is None or name_col is None:
            continue
        items = []
        for data in table[index + 1:]:
            if len(data) <= max(status_col, name_col):
                continue
            status = status_in(data[status_col])
            if status and data[name_col].strip():
                items.append(ItemResult(name=data[name_col].strip(), status=status,
                                        error=data[status_col].strip() if status != "success" else None))
        return items
    return []


def _text_items(text: str) -> list[ItemResult]:
    items: list[ItemResult] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not _OPERATIONS_HEADING.match(line):
            continue
        for candidate in lines[index + 1:index + 60]:
            match = _ITEM_LINE.match(candidate)
            if not match:
                if items:
                    break
                continue
            status = status_in(match.group("status"))
            if status is None:
                if items:
                    break
                continue
            items.append(ItemResult(name=match.group("name").strip(), status=status,
                                    error=match.group("status").strip() if status != "success" else None))
        if items:
            break
    return items
