"""Iperius Backup: the notification e-mail sent at the end of a backup job.

Iperius (Italian, very common in municipalities) mails one message per job:
the job name, the computer, start and end, the result sentence ("Backup
completato con successo" / "completato con avvisi" / "completato con errori" /
"Backup failed"...), counters, and the list of operations with their outcome.
The subject is set by the administrator with variables (computer, job, result),
so the body's labelled lines are trusted first and the subject is a fallback.
Italian and English localisations, plain text or HTML, forwarded or not.

The reading of such a "labelled summary" (``Label: value`` lines or a two-column
table, a result sentence, an operations list) is :class:`LabelledReportParser`;
Uranium Backup, whose reports have the same shape, reuses it with its own
signature and labels.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import head_tail, parse_datetime, parse_size, status_in
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Iperius Backup"
PRIORITY = 80

_WINDOW = 6000  # the product's name is in a report's header or footer: look there first, cheaply


def names(*alternatives: str) -> str:
    """One regex alternation of label spellings."""
    return "(?:" + "|".join(alternatives) + ")"


def _label(alternation: str) -> re.Pattern[str]:
    """A ``Label: value`` / ``Label | value`` line (HTML cells are joined by `` | ``)."""
    return re.compile(r"^[ \t*•-]*" + alternation + r"[ \t]*(?:[:|\t=][ \t]*)+(?P<value>[^\n]*?)[ \t|]*$",
                      re.IGNORECASE | re.MULTILINE)


# Label vocabulary, Italian and English; within a field the first alternation found wins over the later ones.
LABELS: dict[str, list[str]] = {
    "job": [names(r"job di backup", r"nome(?: del)? job", r"backup job", r"job name", r"job",
                  r"nome attivit[àa]", r"attivit[àa]", r"operazione pianificata")],
    "host": [names(r"computer", r"nome(?: del)? computer", r"computer name", r"nome(?: del)? pc", r"pc",
                   r"macchina", r"workstation", r"hostname"),
             names(r"server", r"host", r"nome server", r"server name")],
    "result": [names(r"esito(?: (?:del )?backup)?", r"risultato(?: (?:del )?backup)?", r"(?:backup )?result",
                     r"outcome"),
               names(r"stato(?: (?:del )?backup)?", r"(?:backup )?status")],
    "start": [names(r"(?:data(?:\s*/\s*ora)? |ora |orario )?(?:di )?inizio(?: backup)?", r"avvio", r"avviato(?: il)?",
                    r"(?:backup )?start(?:ed)?(?: (?:time|date|at|on))?", r"inizio backup")],
    "end": [names(r"(?:data(?:\s*/\s*ora)? |ora |orario )?(?:di )?fine(?: backup)?", r"termine", r"terminato(?: il)?",
                  r"completato il", r"(?:backup )?end(?:ed)?(?: (?:time|date|at|on))?",
                  r"finish(?:ed)?(?: (?:time|at|on))?", r"completed (?:at|on)")],
}
_SIZE = _label(names(r"dimensione(?: totale)?(?: (?:dei )?(?:file|dati))?(?: (?:copiat[ie]|elaborat[ie]))?",
                     r"dati (?:copiati|elaborati|salvati)", r"(?:total )?size", r"(?:total )?(?:copied|processed|"
                     r"backed up) (?:data|size|bytes)", r"byte copiati",
                     r"(?:total )?size of (?:the )?(?:copied|processed|backed up) (?:files|data)"))
_TRANSFERRED = _label(names(r"dati trasferiti", r"trasferit[io]", r"(?:data |bytes )?transferred"))
_ERRORS = _label(names(r"errori", r"errors?", r"numero (?:di )?errori", r"file con errori"))
_WARNINGS = _label(names(r"avvisi", r"avvertimenti", r"warnings?", r"numero (?:di )?avvisi"))
_FILES = _label(names(r"(?:totale )?file copiati(?: totali)?", r"(?:total )?files? copied", r"(?:total )?copied files",
                      r"file elaborati", r"processed files"))
_DURATION = _label(names(r"durata", r"duration", r"tempo impiegato", r"tempo totale", r"elapsed time"))

# The result sentence as these programs write it, on a line of its own or in the subject.
RESULT_SENTENCE = re.compile(
    r"\b(?:il\s+)?backup\s+(?:è\s+stato\s+)?(?:(?:completato|terminato|eseguito)(?:\s+(?:con\s+successo|"
    r"correttamente|con\s+avvisi|con\s+avvertimenti|con\s+errori|con\s+eccezioni))?|fallito|non\s+(?:riuscito|"
    r"completato|eseguito)|interrotto|annullato|riuscito|"
    r"completed(?:\s+(?:successfully|with\s+warnings?|with\s+errors?))?|(?:successfully\s+)?completed|failed|"
    r"aborted|cancell?ed|not\s+completed|succeeded|successful)\b",
    re.IGNORECASE)
# "Backup job "X" completed successfully on computer PC01", "Il backup "X" è stato completato sul computer PC01".
_QUOTED_JOB = re.compile(r"\b(?:backup\s+job|job(?:\s+di\s+backup)?|backup|attivit[àa]|task)\s+"
                         r"[\"“«'](?P<job>[^\"”»'\n]{1,100})[\"”»']", re.IGNORECASE)
_INLINE_HOST = re.compile(r"\b(?:on|sul|del|dal|from|for)\s+(?:(?:the\s+)?computer|pc|server|macchina)\s+[\"'“]?"
                          r"(?P<host>[A-Za-z0-9][A-Za-z0-9._-]{0,62}?)[\"'”]?(?=[\s.,;:)]|$)", re.IGNORECASE)
_STATUS_ONLY = re.compile(r"(?:completat[oa]|completed|terminat[oa]|riuscit[oa]|fallit[oa]|failed|errore|error|"
                          r"successo|success(?:ful)?|ok|avvis[oi]|warnings?|annullat[oa]|cancell?ed)"
                          r"(?:\s+(?:con\s+\w+|with\s+\w+|successfully|correttamente))?[.!]?", re.IGNORECASE)
_SENTENCE_TAIL = re.compile(r"[\s.!]*(?:\([^()]{0,40}\))?[\s.!]*$")
_NAME_HEADER = re.compile(r"operazion|operation|destinazion|destination|elemento|elementi|item|attivit|task|"
                          r"descrizione|description|origine|source|sorgente", re.IGNORECASE)
_STATUS_HEADER = re.compile(r"esito|risultato|result|stato|status", re.IGNORECASE)
_PROBLEM = re.compile(r"(?<!\w)(?:error|errore|failed|fallit|non riuscit|impossibile|unable|cannot|could not|denied|"
                      r"negato|exception|eccezione|warning|avviso|attenzione|avvertiment|non trovat|not found)",
                      re.IGNORECASE)
_COUNT_LINE = re.compile(r"^[ \t*•-]*(?:errori|errors?|avvisi|avvertimenti|warnings?)[ \t]*[:|=][ \t|]*\d+[ \t]*$",
                         re.IGNORECASE)
# Header lines of an inline-forwarded message: they repeat the subject, they are not the report's error text.
_QUOTED_HEADER = re.compile(r"^\*?(?:subject|oggetto|from|da|to|a|cc|sent|inviato|date|data)\*?\s*:", re.IGNORECASE)
_GENERIC_SUBJECT_WORDS = {"backup", "job", "computer", "il", "the", "di", "del", "per", "for", "su", "on", "report"}


class LabelledReportParser:
    """A product whose report is a labelled summary: job, computer, times, result, operations."""

    def __init__(self, software: str, product: str, needles: tuple[str, ...],
                 extra_labels: dict[str, list[str]] | None = None, operations_heading: str = "",
                 subject_noise: str = "") -> None:
        self.software = software
        self.product = re.compile(product, re.IGNORECASE)
        self.needles = needles  # lower-case fragments of the product's name, the cheap first test
        labels = {field: list(alternatives) for field, alternatives in LABELS.items()}
        for field, alternatives in (extra_labels or {}).items():
            labels[field] = alternatives + labels[field]
        self.lines = {field: [_label(alternation) for alternation in alternatives]
                      for field, alternatives in labels.items()}
        self.cells = {field: re.compile(r"^\s*(?:" + "|".join(alternatives) + r")\s*:?\s*$", re.IGNORECASE)
                      for field, alternatives in labels.items()}
        self.result_lines = self.lines["result"]
        self.operations = re.compile(
            r"^\s*(?:operazioni(?: eseguite)?|elenco operazioni|operations(?: performed)?|destinazioni|destinations"
            + (r"|" + operations_heading if operations_heading else "") + r")\s*:?\s*$", re.IGNORECASE)
        self.subject_noise = re.compile(
            (subject_noise + r"|" if subject_noise else "") + r"\[[^\]]*\]|" + RESULT_SENTENCE.pattern + r"|"
            r"\b(?:esito|risultato|result|report|notifica|notification|rapporto)\b\s*:?|"
            r"\b(?:successo|success(?:ful)?|ok|errore|errori|error|errors|failed|fallito|warning|warnings|avvisi|"
            r"avviso)\b|\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:\s+\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)?",
            re.IGNORECASE)

    # -- recognition --------------------------------------------------------------------------------------------

    def mentions_product(self, message: MailMessage) -> bool:
        """The product's name in the subject, sender, attachment names or the body's head and tail."""
        places = "\n".join((message.subject, message.sender_name, message.sender, *message.attachments,
                            head_tail(message.text), head_tail(message.attachment_text))).lower()
        return any(needle in places for needle in self.needles) and bool(self.product.search(places))

    def from_product(self, message: MailMessage) -> bool:
        sender = f"{message.sender_name} {message.sender}".lower()
        return any(needle in sender for needle in self.needles)

    def parse(self, message: MailMessage) -> BackupReport | None:
        if _REPLY.match(message.subject):
            return None  # a human answering a report, not the report
        if not self.mentions_product(message):
            return None
        text = message.text
        if message.attachment_text and self.product.search(message.attachment_text):
            text = f"{text}\n{message.attachment_text}"
        fields = self._fields(message, text)
        labelled = sum(1 for value in fields.values() if value)
        subject = message.clean_subject
        sentence_line = _result_sentence_line(text)
        if not fields["job"]:
            # 'Backup job "X" completed successfully on computer PC01': the job and the result in one sentence.
            job, sentence = _quoted_job_sentence(text)
            fields["job"] = job
            sentence_line = sentence_line or sentence
        if not fields["host"]:
            inline = _INLINE_HOST.search(text)
            fields["host"] = inline.group("host") if inline else None
        subject_sentence = bool(RESULT_SENTENCE.search(subject))
        from_product = self.from_product(message)
        bulk = bool(message.header("list-unsubscribe") or message.header("list-id")
                    or message.header("precedence").lower() in ("bulk", "list", "junk"))
        # A report has labelled fields (job, computer, result, times), or the result sentence written by the
        # software itself; a newsletter or a human mail that merely mentions the product and a failed backup
        # has neither.
        if labelled < 2 and not (labelled and (sentence_line or subject_sentence)) \
                and not (from_product and (sentence_line or subject_sentence)):
            return None
        if bulk and labelled < 3:
            return None
        return self._report(message, text, fields, subject, sentence_line)

    # -- reading ------------------------------------------------------------------------------------------------

    def _report(self, message: MailMessage, text: str, fields: dict[str, str | None], subject: str,
                sentence_line: str | None) -> BackupReport:
        host = _clean_value(fields["host"])
        job = self._clean_job(fields["job"]) or self._job_from_subject(subject, host)
        status = _status(fields["result"], sentence_line, subject, text)
        items = self._items(message, text)
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
        for name, regex in (("errors", _ERRORS), ("warnings", _WARNINGS)):
            count = _count(regex, text)
            if count is not None:
                details[name] = count
        for name, regex in (("files", _FILES), ("duration", _DURATION)):
            value = self._first(regex, text)
            if value:
                details[name] = value[:80]
        return BackupReport(
            software=self.software,
            job=job,
            status=status,
            host=host,
            started_at=parse_datetime(fields["start"]),
            finished_at=parse_datetime(fields["end"]),
            size_bytes=parse_size(self._first(_SIZE, text)),
            transferred_bytes=parse_size(self._first(_TRANSFERRED, text)),
            error=self._problems(text) if status != "success" else None,
            items=items,
            details=details,
        )

    def _fields(self, message: MailMessage, text: str) -> dict[str, str | None]:
        """Job, host, result, start and end: from ``Label: value`` lines, else a table with a header row."""
        fields: dict[str, str | None] = {}
        for field, regexes in self.lines.items():
            fields[field] = None
            for regex in regexes:
                value = self._first(regex, text)
                if value:
                    fields[field] = value
                    break
        for table in message.tables:
            if len(table) < 2:
                continue
            columns = {field: index for index, cell in enumerate(table[0])
                       for field, regex in self.cells.items() if regex.match(cell)}
            if len(columns) < 2:
                continue
            row = table[1]
            for field, index in columns.items():
                if index < len(row) and row[index].strip() and not fields[field]:
                    fields[field] = row[index].strip()
            break
        return fields

    def _first(self, regex: re.Pattern[str], text: str) -> str | None:
        for match in regex.finditer(text):
            value = match.group("value").strip(" |\t")
            # "Job | Computer | Result" is a header row, not a job called "Computer"
            if value and not any(cells.match(value.split("|")[0]) for cells in self.cells.values()):
                return value
        return None

    def _clean_job(self, value: str | None) -> str | None:
        value = _clean_value(value)
        if value and (RESULT_SENTENCE.match(value) or _STATUS_ONLY.fullmatch(value)):
            return None  # "Backup: completato con successo" is a result, not a name
        return value

    def _job_from_subject(self, subject: str, host: str | None) -> str | None:
        """The job from an administrator's subject: what is left without product, result, computer and date."""
        quoted = re.search(r"[\"“«']([^\"”»']{2,80})[\"”»']", subject)
        if quoted:
            return quoted.group(1).strip()
        rest = self.subject_noise.sub(" ", subject)
        if host:
            rest = re.sub(r"(?<![\w-])" + re.escape(host) + r"(?![\w-])", " ", rest, flags=re.IGNORECASE)
        rest = re.sub(r"\(\s*[A-Z0-9][A-Z0-9._-]*\s*\)|\(\s*\)", " ", rest)  # "(SRV01)": a computer, not the job
        parts = [part.strip(" ()") for part in re.split(r"\s+[-–|:]\s+|\s*[|–]\s*|^\s*[-:]|[-:]\s*$", rest)]
        parts = [part for part in parts if part and re.search(r"\w", part)
                 and part.lower() not in _GENERIC_SUBJECT_WORDS]
        if not parts:
            return None
        return re.sub(r"\s+", " ", parts[0]).strip(" -:") or None

    def _problems(self, text: str) -> str | None:
        """The lines that state an error or warning, without the result, counter and quoted-header lines."""
        found: list[str] = []
        for line in text.splitlines():
            stripped = line.strip(" |\t")
            if len(stripped) < 6 or _COUNT_LINE.match(stripped) or _QUOTED_HEADER.match(stripped) \
                    or any(regex.match(stripped) for regex in self.result_lines) \
                    or RESULT_SENTENCE.fullmatch(stripped.rstrip(".")):
                continue
            if _PROBLEM.search(stripped) and stripped not in found:
                found.append(stripped)
                if len(found) == 3:
                    break
        return "\n".join(found)[:2000] or None

    def _items(self, message: MailMessage, text: str) -> list[ItemResult]:
        items: list[ItemResult] = []
        for table in message.tables:
            items.extend(_table_items(table))
        if not items:
            items = self._text_items(text)
        return items[:200]

    def _text_items(self, text: str) -> list[ItemResult]:
        items: list[ItemResult] = []
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if not self.operations.match(line):
                continue
            for candidate in lines[index + 1:index + 200]:
                item = _item_line(candidate)
                if item is None:
                    if items:
                        break
                    continue
                items.append(item)
            if items:
                break
        return items


def _clean_value(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip(" \t|\"'“”«»")
    return value or None


def _quoted_job_sentence(text: str) -> tuple[str | None, str | None]:
    """The job named in quotes and the line that states its result, when that line states one."""
    for match in _QUOTED_JOB.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        line = text[start:end if end >= 0 else len(text)]
        rest = (line[:match.start() - start] + " " + line[match.end() - start:]).strip()
        if len(line) <= 300 and status_in(rest):
            return match.group("job").strip(), re.sub(r"\s+", " ", rest)
    return None, None


def _result_sentence_line(text: str) -> str | None:
    """A line that is only the result sentence ("Backup completato con successo.", "Backup failed (2 errors)")."""
    for line in text.splitlines():
        stripped = line.strip(" \t|*-")
        if len(stripped) > 90:
            continue
        match = RESULT_SENTENCE.match(stripped)
        if match and _SENTENCE_TAIL.match(stripped, match.end()):
            return stripped
    return None


def _status(result: str | None, sentence: str | None, subject: str, text: str) -> Status | None:
    """The stated result first, then the result sentence (body, then subject), then the error/warning counters."""
    status = status_in(result) if result else None
    if status is None and sentence:
        status = status_in(sentence)
    if status is None:
        match = RESULT_SENTENCE.search(subject)
        if match:
            status = status_in(match.group(0))
    if status is None:
        errors = _count(_ERRORS, text)
        warnings = _count(_WARNINGS, text)
        if errors:
            status = "failure"
        elif warnings:
            status = "warning"
        elif errors == 0:
            status = "success"
    return status


def _count(regex: re.Pattern[str], text: str) -> int | None:
    """The first ``Errors: N``-style counter (``Error: <text>`` lines are not counters)."""
    for match in regex.finditer(text):
        number = re.match(r"[ \t|]*(\d+)[ \t]*$", match.group("value"))
        if number:
            return int(number.group(1))
    return None


_ITEM_SEPARATOR = re.compile(r"[ \t]*(?::|\||\s[-–]\s)[ \t]*")


def _item_line(line: str) -> ItemResult | None:
    """``<operation>: <outcome>`` (or `` - ``, `` | ``): the outcome is the short status phrase after the last
    separator, so paths with drive letters ("C:\\Dati -> E:\\Backup: Completato") keep their colons."""
    line = line.strip(" \t*•-|")
    for separator in reversed(list(_ITEM_SEPARATOR.finditer(line))):
        name, outcome = line[:separator.start()].strip(), line[separator.end():].strip(" \t|.")
        if not name or not outcome:
            continue
        if len(outcome) > 40 or len(outcome.split()) > 5:
            return None
        status = status_in(outcome)
        if status is None:
            return None
        return ItemResult(name=name, status=status, error=outcome if status != "success" else None)
    return None


def _table_items(table: list[list[str]]) -> list[ItemResult]:
    """Rows of a table whose header names an operation/element column and a result column; a second naming
    column (the destination) is added to the name so that one element saved twice stays two items."""
    for index, row in enumerate(table[:3]):
        status_col = next((i for i, cell in enumerate(row) if _STATUS_HEADER.search(cell) and len(cell) < 30), None)
        name_cols = [i for i, cell in enumerate(row) if _NAME_HEADER.search(cell) and len(cell) < 40
                     and i != status_col]
        if status_col is None or not name_cols:
            continue
        items = []
        for data in table[index + 1:]:
            if len(data) <= max(status_col, *name_cols):
                continue
            status = status_in(data[status_col])
            name = data[name_cols[0]].strip()
            if len(name_cols) > 1 and data[name_cols[1]].strip():
                name = f"{name} -> {data[name_cols[1]].strip()}"
            if status and name:
                items.append(ItemResult(name=name, status=status,
                                        error=data[status_col].strip() if status != "success" else None))
        return items
    return []


_IPERIUS = LabelledReportParser(SOFTWARE, r"iperius", ("iperius",),
                                subject_noise=r"iperius(?:\s+backup)?(?:\s+(?:pro|full|advanced|essential|desktop|"
                                              r"server|free|console))?")


NEEDLES = _IPERIUS.needles


def parse(message: MailMessage) -> BackupReport | None:
    return _IPERIUS.parse(message)
