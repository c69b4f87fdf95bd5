"""Veeam Backup & Replication job reports, and the Veeam report layout the sibling parsers share.

Veeam's session report is an HTML page with a fixed shape, the same for backup,
backup copy, replication, file share, agent and tape jobs:

* a coloured header: ``<Type> job: <Job name>`` (the job description below it) and,
  on the right, the session result (``Success`` / ``Warning`` / ``Failed``) over
  ``N of M VMs processed``;
* the session start as a long date in the server's locale
  (``Tuesday, 12 March 2024 22:00:15``; ``martedì 12 marzo 2024 22:00:15`` on an
  Italian Windows);
* a summary grid of label/value pairs: ``Success n | Start time | Total size |
  Backup size``, ``Warning n | End time | Data read | Dedupe``, ``Error n |
  Duration | Transferred | Compression`` (times as ``hh:mm:ss``, the end time with
  ``(+1)`` when it falls on a later day), the session's own messages in the last
  cell of the first row;
* a ``Details`` table, one row per VM / machine / share: ``Name | Status | Start
  time | End time | Size | Read | Transferred | Duration | Details``.

The product itself is English-only here, but the subject is the admin's: the
default ``[%JobResult%] %JobName% (%ObjectCount% objects) %Issues%`` is often
rewritten (in Italian too), and mail is forwarded (``I:``/``Fwd:``). So the job
name is read from the body header first and from the subject only as a fallback,
and the status from the header, then the subject tag, then the per-object rows.

:func:`read_layout` and the helpers below are also used by ``veeam_agent`` and
``veeam_m365``, whose reports share this layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import (
    ROME,
    neutralise_zero_counts,
    parse_datetime,
    parse_size,
    per_message,
    status_in,
)
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Veeam Backup & Replication"
PRIORITY = 30

# --------------------------------------------------------------------------------------------
# Shared Veeam report layout
# --------------------------------------------------------------------------------------------

# Summary-grid labels (English as Veeam writes them, Italian in case a report or a
# hand-made template uses them) -> canonical keys.
_LABELS: dict[str, str] = {
    "success": "success", "successo": "success", "riuscito": "success", "riusciti": "success",
    "warning": "warning", "warnings": "warning", "avviso": "warning", "avvisi": "warning",
    "avvertenze": "warning",
    "error": "error", "errors": "error", "failed": "error", "errore": "error", "errori": "error",
    "start time": "start", "started": "start", "ora di inizio": "start", "ora inizio": "start",
    "inizio": "start", "avvio": "start",
    "end time": "end", "finished": "end", "ora di fine": "end", "ora fine": "end", "fine": "end",
    "duration": "duration", "durata": "duration",
    "total size": "total_size", "dimensione totale": "total_size",
    "backup size": "backup_size", "dimensione backup": "backup_size",
    "data read": "data_read", "dati letti": "data_read",
    "transferred": "transferred", "transferred data": "transferred", "data transferred": "transferred",
    "trasferiti": "transferred", "dati trasferiti": "transferred",
    "dedupe": "dedupe", "deduplication": "dedupe", "deduplicazione": "dedupe",
    "compression": "compression", "compressione": "compression",
    "bottleneck": "bottleneck", "collo di bottiglia": "bottleneck",
    "processing rate": "rate", "read rate": "rate", "velocità di elaborazione": "rate",
    "organization": "organization", "organisation": "organization", "organizzazione": "organization",
    "processed objects": "processed_objects", "objects processed": "processed_objects",
    "oggetti elaborati": "processed_objects",
    "backup proxy": "proxy", "proxy": "proxy",
    "computer": "computer", "computer name": "computer", "hostname": "computer",
}
# Labels whose presence makes a table a Veeam-style job summary.
_LAYOUT_KEYS = frozenset({"start", "end", "duration", "total_size", "backup_size", "data_read", "transferred",
                          "dedupe", "compression", "bottleneck", "rate", "processed_objects"})
# Labels no other product's report is likely to combine with the above.
_VEEAM_KEYS = frozenset({"dedupe", "data_read", "bottleneck"})

_PAIR = re.compile(
    r"(?:^|\||\t)[ \t]*(?P<label>" + "|".join(sorted((re.escape(k) for k in _LABELS), key=len, reverse=True))
    + r")[ \t]*:?[ \t]*(?:\||\t|:)[ \t]*(?P<value>[^|\t\n]*[^|\t\n ])",
    re.IGNORECASE | re.MULTILINE)

_HEADER = re.compile(
    r"^\s*(?P<kind>(?:[A-Za-z][\w&+/-]*\s+){0,4}?(?:job|policy|lavoro|criterio))\s*:\s*(?P<name>[^|\n]*[^|\s])"
    r"\s*(?:\|\s*(?P<rest>[^\n]*))?$",
    re.IGNORECASE | re.MULTILINE)
_PROCESSED = re.compile(
    r"\b(?P<done>\d+)\s+(?:of|di|su)\s+(?P<total>\d+)\s+(?P<unit>[A-Za-z][\w ]{0,30}?)\s+"
    r"(?:processed|elaborat[ie])\b", re.IGNORECASE)
_STATUS_WORD = re.compile(
    r"^\s*\|?\s*(?P<word>success|successful|succeeded|warning|warnings|failed|failure|error|errors|"
    r"completato(?: con avvisi)?|riuscito|successo|avviso|avvisi|non riuscito|fallito|errore|stopped|canceled|"
    r"cancelled|interrotto)\b",
    re.IGNORECASE)
# What Veeam counts in "N of M ... processed" (other products count files).
_VEEAM_UNITS = re.compile(r"(?:vms?|objects?|machines?|hosts?|computers?|shares?|instances?|workloads?|servers?|"
                          r"databases?|policies|resources?|oggetti|macchine)$", re.IGNORECASE)
_SESSION_SUFFIX = re.compile(
    r"\s*\((?:incremental|full|active full|synthetic full|retry\s*\d*|incrementale|completo|completa|"
    r"tentativo\s*\d*)\)\s*$", re.IGNORECASE)
_TIME = re.compile(r"(?P<h>\d{1,2})[:.](?P<m>\d{2})(?:[:.](?P<s>\d{2}))?\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?")
_PLUS_DAYS = re.compile(r"\(\s*\+\s*(\d+)\s*\)")
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")

_WORDS: dict[str, Status] = {
    "success": "success", "successful": "success", "succeeded": "success", "ok": "success",
    "completed": "success", "successo": "success", "riuscito": "success", "completato": "success",
    "warning": "warning", "warnings": "warning", "avviso": "warning", "avvisi": "warning",
    "avvertenza": "warning", "completato con avvisi": "warning", "pending": "warning",
    "failed": "failure", "failure": "failure", "error": "failure", "errors": "failure", "errore": "failure",
    "fallito": "failure", "non riuscito": "failure", "stopped": "failure", "canceled": "failure",
    "cancelled": "failure", "interrotto": "failure",
}

_NAME_COLS = ("name", "nome", "object", "oggetto", "vm", "vm name", "computer", "machine", "user", "utente",
              "mailbox", "account", "share", "file share", "server", "host", "workload", "item")
_STATUS_COLS = ("status", "stato", "result", "risultato", "esito")
_SIZE_COLS = ("size", "dimensione", "total size", "processed")
_TRANSFER_COLS = ("transferred", "trasferiti")
_DETAILS_COLS = ("details", "dettagli", "detail", "message", "messaggio", "messages")
_TYPE_COLS = ("type", "tipo", "object type")
# header cell -> the columns it can name, in the order _item_header assigns them
_COLUMNS_NAMED: dict[str, tuple[str, ...]] = {}
for _key, _names in (("name", _NAME_COLS), ("status", _STATUS_COLS), ("size", _SIZE_COLS),
                     ("transferred", _TRANSFER_COLS), ("details", _DETAILS_COLS), ("type", _TYPE_COLS)):
    for _name in _names:
        _COLUMNS_NAMED[_name] = (*_COLUMNS_NAMED.get(_name, ()), _key)


def status_word(text: str | None) -> Status | None:
    """A Veeam result word (``Success``, ``Warning``, ``Failed``, ``Error``; Italian too) -> status."""
    if not text:
        return None
    word = re.sub(r"\s+", " ", text).strip(" []:.-|").lower()
    if word in _WORDS:
        return _WORDS[word]
    match = _STATUS_WORD.match(word)
    if match:
        return _WORDS.get(match.group("word").lower())
    return None


@dataclass
class Item:
    name: str
    status: Status
    details: str = ""
    size: str = ""
    transferred: str = ""
    kind: str = ""


@dataclass
class Layout:
    """What a Veeam-style report page says, before any product decides what it means."""

    kind: str | None = None  # "Backup job", "Backup Copy job", "Agent Backup job" ...
    name: str | None = None  # the job name in the header (session suffix removed)
    session_type: str | None = None  # "Incremental", "Full", "Retry 1" when the header names it
    description: str | None = None
    status: Status | None = None  # the header's session result
    processed: tuple[int, int, str] | None = None  # (done, total, unit)
    session_date: datetime | None = None
    pairs: dict[str, str] = field(default_factory=dict)
    job_details: str = ""
    items: list[Item] = field(default_factory=list)
    body: str = ""  # the report's part of the text (from the header on)
    veeam_word: bool = False

    @property
    def layout_labels(self) -> int:
        return sum(1 for key in self.pairs if key in _LAYOUT_KEYS)

    @property
    def veeam_specific(self) -> bool:
        return self.veeam_word or any(key in self.pairs for key in _VEEAM_KEYS) \
            or (self.processed is not None and _VEEAM_UNITS.match(self.processed[2]) is not None)

    def counts(self) -> dict[str, int]:
        found = {}
        for key in ("success", "warning", "error"):
            match = re.match(r"\s*(\d+)\s*$", self.pairs.get(key, ""))
            if match:
                found[key] = int(match.group(1))
        return found

    def count_status(self) -> Status | None:
        counts = self.counts()
        if not counts:
            return None
        if counts.get("error"):
            return "failure"
        if counts.get("warning"):
            return "warning"
        if counts.get("success"):
            return "success"
        return None


_HEAD = 40000  # Veeam's markers sit in the first screens of a report, even behind a forwarding note


def quick_check(message: MailMessage) -> bool:
    """Cheap test: could this be a Veeam-style report at all? Substring scans of the head, done
    once per message for the three Veeam parsers."""
    return per_message(message, "veeam_quick", _quick_check)


def _quick_check(message: MailMessage) -> bool:
    head = message.text[:_HEAD]
    subject = message.subject
    return ("Dedupe" in head or " processed" in head or "eeam" in head
            or "eeam" in subject or "EEAM" in subject or "eeam" in message.sender)


def read_layout(message: MailMessage) -> Layout:
    """The Veeam layout of ``message`` (computed once per message for all three Veeam parsers)."""
    return per_message(message, "veeam_layout", _read_layout)


_VEEAM_WORD = re.compile(r"\bveeam\b", re.IGNORECASE)


def _read_layout(message: MailMessage) -> Layout:
    layout = Layout()
    text = message.text
    lines = text.splitlines()
    layout.veeam_word = bool(_VEEAM_WORD.search(text[:200000])) \
        or "veeam" in message.subject.lower() or "veeam" in message.sender

    header_index = _read_header(lines, layout)
    report_lines = lines[header_index:] if header_index is not None else lines
    layout.body = "\n".join(report_lines)

    for match in _PAIR.finditer(_without_item_rows(report_lines)):
        key = _LABELS[match.group("label").lower()]
        value = match.group("value").strip()
        if value.lower().rstrip(":") in _LABELS or not value:
            continue
        layout.pairs.setdefault(key, value)

    if layout.layout_labels < 3:
        _read_spaced_pairs(layout.body, layout)
    _read_tables(message, layout)
    if not layout.items and not message.tables:
        _read_spaced_items(report_lines, layout)
    layout.session_date = _session_date(report_lines)
    return layout


# A report forwarded as plain text loses its cells: "Success 0 Start time 22:00:03 Total size 60 GB".
_CLOCK = r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s*[AaPp]\.?[Mm]\.?)?(?:\s*\(\s*\+\s*\d+\s*\))?"
_SIZE_VALUE = r"\d[\d.,]*\s*(?:[KMGTP]i?B|B|bytes?)\b"
_SPACED = re.compile(
    r"\b(?P<label>start time|end time|duration|total size|backup size|data read|transferred|dedupe|compression|"
    r"success|warning|error)\s*:?\s+(?P<value>" + _CLOCK + "|" + _SIZE_VALUE + r"|\d[\d.,]*\s*x\b|\d+\b)",
    re.IGNORECASE)
_SPACED_ITEM = re.compile(
    r"^(?P<name>\S.*?)\s+(?P<status>success|warning|error|failed|pending)\s+" + _CLOCK
    + r"\s+" + _CLOCK + r"(?:\s+(?P<size>" + _SIZE_VALUE + r"))?(?P<rest>.*)$", re.IGNORECASE)
_SPACED_ITEM_HEADER = re.compile(r"^\s*(?:name|nome)\s+(?:status|stato)\s+start time\b", re.IGNORECASE)


def _read_spaced_pairs(body: str, layout: Layout) -> None:
    for match in _SPACED.finditer(body[:100000]):
        layout.pairs.setdefault(_LABELS[match.group("label").lower()], match.group("value").strip())


def _read_spaced_items(lines: list[str], layout: Layout) -> None:
    for index, line in enumerate(lines[:2000]):
        if not _SPACED_ITEM_HEADER.match(line):
            continue
        for row in lines[index + 1: index + 500]:
            match = _SPACED_ITEM.match(row)
            if not match:
                break
            status = status_word(match.group("status")) or "warning"
            rest = re.sub(r"^(?:\s+" + _SIZE_VALUE + r")*(?:\s+\d+:\d{2}:\d{2})?", "", match.group("rest")).strip()
            layout.items.append(Item(name=match.group("name").strip(), status=status, details=rest,
                                     size=match.group("size") or ""))
        return


def _without_item_rows(lines: list[str]) -> str:
    """The report text minus ``Name | Status | ...`` headers and the per-object rows under them."""
    kept: list[str] = []
    width = 0
    for line in lines:
        if " | " not in line:  # one cell: neither a header (three cells or more) nor an item row under one
            width = 0
            kept.append(line)
            continue
        cells = [_norm(cell) for cell in line.split(" | ")]
        if _item_header(cells) is not None:
            width = len(cells)
            continue
        if width and width - 1 <= len(cells) <= width:
            continue
        width = 0
        kept.append(line)
    return "\n".join(kept)


def split_source_job(name: str) -> tuple[str, str | None]:
    """``Copia Offsite\\Backup Server`` -> (``Copia Offsite``, ``Backup Server``): the v12 backup copy
    ``%JobName%``. Job names cannot hold a backslash (they name repository folders); UNC paths can."""
    if "\\" in name and not name.startswith("\\\\"):
        job, _, source = name.partition("\\")
        if job.strip():
            return job.strip(), source.strip() or None
    return name, None


def _take_header(layout: Layout, found: Layout) -> None:
    layout.kind, layout.name, layout.session_type = found.kind, found.name, found.session_type
    layout.status, layout.processed, layout.description = found.status, found.processed, found.description


def _read_header(lines: list[str], layout: Layout) -> int | None:
    """Find ``<Type> job: <name>`` and the result and ``N of M ... processed`` under it."""
    fallback: tuple[int, Layout] | None = None
    for index, line in enumerate(lines[:400]):
        match = _HEADER.match(line)
        if not match:
            continue
        kind = match.group("kind").strip()
        if kind.lower().split()[0] in ("re", "fw", "fwd", "i", "r", "subject", "oggetto"):
            continue
        name = match.group("name").strip().strip("\"'“”«»")
        suffix = _SESSION_SUFFIX.search(name)
        if suffix:
            layout.session_type = suffix.group(0).strip(" ()")
            name = name[: suffix.start()].rstrip()
        if not name:
            continue
        found = Layout(kind=kind, name=name, session_type=layout.session_type)
        following = [match.group("rest") or ""] + lines[index + 1: index + 6]
        for offset, candidate in enumerate(following):
            if not candidate:
                continue
            if offset and _HEADER.match(candidate):
                break  # the next header: what follows is its result, not this one's
            processed = _PROCESSED.search(candidate)
            if processed and found.processed is None:
                found.processed = (int(processed.group("done")), int(processed.group("total")),
                                   processed.group("unit").strip())
            word = _STATUS_WORD.match(candidate)
            if word and found.status is None and len(candidate.strip(" |")) <= len(word.group(0).strip(" |")) + 40:
                found.status = status_word(word.group("word"))
            elif offset == 1 and found.description is None and not processed and not word \
                    and not _looks_like_date(candidate):
                found.description = candidate.strip(" |")[:300]
        if found.status is None and found.processed is None:
            # "Controlla questo job: ..." in a forwarding note: remember it, look for the real header.
            if fallback is None:
                fallback = (index, found)
            layout.session_type = None
            continue
        _take_header(layout, found)
        return index
    if fallback is not None:
        _take_header(layout, fallback[1])
        return fallback[0]
    # No header: still recognise "N of M VMs processed" anywhere near the top.
    for line in lines[:200]:
        processed = _PROCESSED.search(line)
        if processed:
            layout.processed = (int(processed.group("done")), int(processed.group("total")),
                                processed.group("unit").strip())
            break
    return None


def _looks_like_date(line: str) -> bool:
    return bool(_YEAR.search(line) and _TIME.search(line) and len(line) < 80)


def _session_date(lines: list[str]) -> datetime | None:
    """The long date/time line above the summary grid."""
    for index, line in enumerate(lines[:60]):
        if _PAIR.search(line):
            for previous in reversed(lines[max(0, index - 4):index]):
                candidate = previous.strip(" |")
                if _looks_like_date(candidate) and not re.match(r"(?i)\s*(created|creato|modified)", candidate):
                    value = parse_datetime(candidate)
                    if value is not None:
                        return value
            return None
    return None


def _norm(cell: str) -> str:
    return " ".join(cell.split()).rstrip(":").lower()


def _read_tables(message: MailMessage, layout: Layout) -> None:
    """Per-object rows under a ``Name | Status | ...`` header, and the session messages cell."""
    for table in message.tables[:40]:
        columns: dict[str, int] | None = None
        width = 0
        after_details_heading = False
        for row in table[:500]:
            normalised = [_norm(cell) for cell in row]
            if len(row) == 1:
                if after_details_heading and row[0].strip() and not layout.job_details:
                    layout.job_details = row[0].strip()[:2000]
                after_details_heading = normalised[0] in ("details", "dettagli")
                columns = None
                continue
            after_details_heading = False
            header = _item_header(normalised)
            if header is not None:
                columns, width = header, len(row)
                continue
            if columns is not None:
                item = _item_row(row, columns, width)
                if item is None:
                    columns = None
                else:
                    layout.items.append(item)
                    continue
            # A summary row: label/value pairs, the session's messages in the odd last cell.
            if len(row) >= 5 and len(row) % 2 == 1 and normalised[0] in _LABELS and normalised[2] in _LABELS:
                last = row[-1].strip()
                if last and _norm(last) not in _LABELS and not layout.job_details:
                    layout.job_details = last[:2000]


def _item_header(cells: list[str]) -> dict[str, int] | None:
    if len(cells) < 3:
        return None
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        for key in _COLUMNS_NAMED.get(cell, ()):
            if key not in columns:
                columns[key] = index
    if "name" in columns and "status" in columns and columns["name"] < columns["status"]:
        return columns
    return None


def _item_row(row: list[str], columns: dict[str, int], width: int) -> Item | None:
    if len(row) < max(columns.values()) + 1 or len(row) < width - 1:
        return None
    name = row[columns["name"]].strip()
    status_cell = row[columns["status"]].strip()
    if not name or _norm(name) in _LABELS:
        return None
    status = status_word(status_cell) or status_in(status_cell)
    if status is None:
        if status_cell and len(status_cell) < 30:
            status = "warning"  # Pending, In progress, None: not a success
        else:
            return None

    def cell(key: str) -> str:
        return row[columns[key]].strip() if key in columns and columns[key] < len(row) else ""

    return Item(name=name, status=status, details=cell("details"), size=cell("size"),
                transferred=cell("transferred"), kind=cell("type"))


def clock(value: str | None, base: datetime | None, after: datetime | None = None) -> datetime | None:
    """A summary time (``22:00:15``, ``10:00:15 PM``, ``0:05:10 (+1)``, or a full date) on ``base``'s day."""
    if not value:
        return None
    if _YEAR.search(value):
        full = parse_datetime(_PLUS_DAYS.sub("", value).strip())
        if full is not None:
            return full
    match = _TIME.search(value)
    if not match or base is None:
        return None
    hour, minute, second = int(match.group("h")), int(match.group("m")), int(match.group("s") or 0)
    ampm = (match.group("ampm") or "").replace(".", "").lower()
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    result = base.replace(hour=hour, minute=minute, second=second, microsecond=0)
    plus = _PLUS_DAYS.search(value)
    if plus:
        result += timedelta(days=int(plus.group(1)))
    elif after is not None and result < after:
        result += timedelta(days=1)
    return result


def session_times(layout: Layout, message: MailMessage) -> tuple[datetime | None, datetime | None]:
    """Start and end of the session, from the long date line and the summary's clock times."""
    base = layout.session_date
    if base is None and message.date is not None:
        sent = message.date.astimezone(ROME)
        base = sent
        start_guess = clock(layout.pairs.get("start"), sent)
        if start_guess is not None and start_guess > sent:
            base = sent - timedelta(days=1)  # started before midnight, mailed after
    started = clock(layout.pairs.get("start"), base) or layout.session_date
    finished = clock(layout.pairs.get("end"), started or base, after=started)
    return started, finished


_SUBJECT_TAG = re.compile(r"^\s*\[\s*(?P<tag>[^\]]{1,40}?)\s*\]\s*(?P<rest>.*)$")
_SUBJECT_COUNT = re.compile(
    r"\s*\(\s*\d+\s+(?:of\s+\d+\s+)?(?:vms?|objects?|machines?|instances?|hosts?|computers?|shares?|servers?|"
    r"workloads?|items?|oggetti|macchine|resources?|databases?|policies|files?|tapes?)\s*\).*$", re.IGNORECASE)
_SUBJECT_ISSUES = re.compile(
    r"(?:\s*[,;]?\s*\d+\s+(?:warnings?|failed|errors?|failures?|issues?|avvisi|errori))+\s*$", re.IGNORECASE)
_JOB_PREFIX = re.compile(r"^(?:(?:[A-Za-z]+\s+){0,3}job|job name|nome job|lavoro)\s*:\s*", re.IGNORECASE)


def has_object_count(subject: str) -> bool:
    """``(3 VMs)``, ``(5 objects)``: the Backup & Replication server's subject, not an agent's."""
    return _SUBJECT_COUNT.search(subject) is not None


def subject_parts(subject: str) -> tuple[Status | None, str]:
    """``[Failed] Daily Backup (3 VMs) 1 failed`` -> (``failure``, ``Daily Backup``)."""
    match = _SUBJECT_TAG.match(subject)
    status: Status | None = None
    rest = subject.strip()
    if match:
        status = status_word(match.group("tag")) or status_in(match.group("tag"))
        rest = match.group("rest")
    rest = _SUBJECT_COUNT.sub("", rest)
    rest = _SUBJECT_ISSUES.sub("", rest)
    rest = _JOB_PREFIX.sub("", rest.strip())
    rest = _SESSION_SUFFIX.sub("", rest)
    return status, split_source_job(rest.strip().strip("\"'“”«»").strip())[0]


def subject_status(subject: str) -> Status | None:
    """The tag's status, or a result word anywhere in a customised subject."""
    status, _ = subject_parts(subject)
    if status is not None:
        return status
    found = re.search(r"\b(success|warning|failed|error)\b", subject, re.IGNORECASE)
    return status_word(found.group(1)) if found else None


def overall_status(layout: Layout, subject: str) -> Status | None:
    if layout.status is not None:
        return layout.status
    tagged = subject_status(subject)
    if tagged is not None:
        return tagged
    if layout.items:
        return worst([item.status for item in layout.items])
    return layout.count_status()


def error_of(layout: Layout, status: Status) -> str | None:
    """The session's own messages, then the failing objects' details; None on success."""
    if status == "success":
        return None
    parts: list[str] = []
    if layout.job_details:
        parts.append(layout.job_details)
    for item in layout.items:
        if item.status != "success" and item.details:
            parts.append(f"{item.name}: {item.details}")
        if len(parts) >= 4:
            break
    if not parts:
        lines = [line.strip(" |") for line in neutralise_zero_counts(layout.body).splitlines()
                 if re.search(r"(?i)(?<!\w)(error|errore|failed|fallit|unable|impossibile|exception|"
                              r"warning|avviso|cannot|could not)", line)]
        names = tuple(item.name + " " for item in layout.items)
        lines = [line for line in lines if status_word(line) is None and len(line) > 12
                 and not _PAIR.match(line) and not (names and line.startswith(names))]
        parts.extend(lines[:3])
    return "\n".join(parts)[:2000] or None


def layout_details(layout: Layout) -> dict[str, object]:
    details: dict[str, object] = {}
    if layout.kind:
        details["job_type"] = layout.kind
    if layout.session_type:
        details["session_type"] = layout.session_type
    if layout.description:
        details["description"] = layout.description
    if layout.processed:
        details["processed"] = f"{layout.processed[0]} of {layout.processed[1]} {layout.processed[2]}"
    for key in ("duration", "backup_size", "data_read", "dedupe", "compression", "bottleneck", "rate",
                "organization", "proxy", "processed_objects"):
        if key in layout.pairs:
            details[key] = layout.pairs[key][:200]
    counts = layout.counts()
    if counts:
        details["counts"] = counts
    return details


def items_of(layout: Layout) -> list[ItemResult]:
    return [ItemResult(name=item.name, status=item.status,
                       error=(item.details or None) if item.status != "success" else None,
                       size_bytes=parse_size(item.size or item.transferred) if (item.size or item.transferred)
                       else None)
            for item in layout.items]


def sizes(layout: Layout) -> tuple[int | None, int | None]:
    size = None
    for key in ("total_size", "data_read", "backup_size"):
        size = parse_size(layout.pairs.get(key))
        if size is not None:
            break
    return size, parse_size(layout.pairs.get("transferred"))




def session_report(layout: Layout, message: MailMessage, software: str, job: str | None, status: Status,
                   host: str | None, details: dict[str, object], items: list[ItemResult]) -> BackupReport:
    """The report of one Veeam session: what every Veeam product's mail states the same way."""
    started, finished = session_times(layout, message)
    size, transferred = sizes(layout)
    return BackupReport(software=software, job=job, status=status, host=host, started_at=started,
                        finished_at=finished, size_bytes=size, transferred_bytes=transferred,
                        error=error_of(layout, status), items=items, details=details)


def is_reply(message: MailMessage) -> bool:
    """A reply quoting a report is a person talking about it, not a new report."""
    return bool(_REPLY.match(message.subject))


def is_veeam_report(layout: Layout, subject: str, *, min_labels: int = 3) -> bool:
    """Layout, Veeam-specific evidence and a stated status: what a real report has and chat lacks."""
    if layout.layout_labels < min_labels or not layout.veeam_specific:
        return False
    return overall_status(layout, subject) is not None


# --------------------------------------------------------------------------------------------
# Veeam Backup & Replication
# --------------------------------------------------------------------------------------------

NEEDLES = ("dedupe", " processed", "eeam")  # quick_check: Veeam's markers


def parse(message: MailMessage) -> BackupReport | None:
    if not quick_check(message) or is_reply(message):
        return None
    layout = read_layout(message)
    subject = message.clean_subject
    if not is_veeam_report(layout, subject):
        return None
    status = overall_status(layout, subject)
    if status is None:
        return None
    job = layout.name or subject_parts(subject)[1] or None
    details = layout_details(layout)
    if job:
        job, source = split_source_job(job)
        if source:
            details["source_job"] = source
    items = items_of(layout)
    host = items[0].name if len(items) == 1 and "configuration" not in (layout.kind or "").lower() else None
    return session_report(layout, message, SOFTWARE, job, status, host, details, items)
