"""UrBackup server mails: per-backup reports, "no recent backup" alerts, HTML client summaries.

The server's report (the default Lua report script, earlier the same text from
C++) is plain text::

    Subject: UrBackup: Incremental file backup of "PC-RAGIONERIA" - success

    UrBackup just did an incremental file backup of "PC-RAGIONERIA".

    Report:
    ( 14 infos, 1 warning, 0 errors)

    2025-03-03 21:00:05(info): Starting scheduled incremental file backup...
    2025-03-03 21:04:11(warning): ...

(1.x servers wrote the subject without the "UrBackup: " prefix; resumed runs
say "Resumed incremental"/"Resumed full"; image backups say "image".) The
alert script mails ``[UrBackup] CLIENT: No recent file backup`` and, when the
status recovers, ``[UrBackup] CLIENT: File backup status is OK``. Report
scripts are customisable, so translated texts and HTML tables with one row per
client are recognised too. UrBackup is per client: the job is the client name.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import forwarded_text, guarded, parse_datetime, parse_size, status_in
from custode.agent.backups.parsers._common import is_bulk as _bulk
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "UrBackup"
PRIORITY = 140

_CLIENT = re.compile(r"\bbackup\b[^\"\n]{0,60}?\b(?:of|di|del|della|dello|von|de|for|per)\s+(?:client\s+)?"
                     r"\"(?P<client>[^\"\n]+)\"", re.IGNORECASE)
_KIND = re.compile(
    r"(?P<resumed>resumed\s+|ripres[oa]\s+)?\b(?P<level>incremental|full)\s+(?P<kind>file|image)\b"
    r"|\bbackup\s+(?P<level_it>incrementale|complet[oa])\s+(?:di\s+|dei\s+|del(?:l')?\s*)?(?P<kind_it>file|immagine)\b",
    re.IGNORECASE)
_TRANSFERRED = re.compile(r"\bTransferred\s+(?P<size>\d[\d.,]*\s*[KMGTP]?i?B)\b", re.IGNORECASE)
_SUBJECT_STATUS = re.compile(
    r"[-–:]\s*(?P<status>success|successful|failed|failure|ok|riuscit[oa]|completat[oa]|fallit[oa]|"
    r"non riuscit[oa]|errore|con avvisi)\s*\)?\s*$", re.IGNORECASE)
_OLD_SUBJECT = re.compile(r"^\s*(?:resumed\s+)?(?:incremental|full)\s+(?:file|image)\s+backup\s+of\s+\"",
                          re.IGNORECASE)
_BODY_SIGNATURE = re.compile(r"\bUrBackup\s+(?:just did|ha appena (?:eseguito|fatto|completato))\b", re.IGNORECASE)
_COUNTS = re.compile(
    r"\(\s*(?P<infos>\d+)\s+(?:infos?|informazion[ei])\s*,\s*(?P<warnings>\d+)\s+(?:warnings?|avvis[oi])\s*,\s*"
    r"(?P<errors>\d+)\s+(?:errors?|error[ei])\s*\)", re.IGNORECASE)
_LOG = re.compile(r"^\s*(?P<time>\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?)\s*\((?P<level>info|warning|error|"
                  r"avviso|errore|informazione)\)\s*:\s*(?P<msg>.*)$", re.IGNORECASE | re.MULTILINE)
_ALERT = re.compile(
    r"\[UrBackup\]\s*(?:\[(?:Important|Importante)\]\s*)?(?P<client>.+?)\s*:\s*(?:"
    r"(?P<missing>No recent (?P<type>file|image) backup|Nessun backup (?P<type_it>file|immagine|di file|"
    r"immagine) recente)|(?P<ok>(?P<oktype>File|Image|Immagine) backup status is OK|Stato del backup "
    r"(?:file|immagine) OK))", re.IGNORECASE)
_HEADER_CLIENT = ("client", "computer", "host", "nome client", "pc", "macchina", "name", "nome")
_HEADER_STATUS = ("status", "stato", "esito", "result", "risultato")


NEEDLES = ("rbackup", 'backup of "')


def parse(message: MailMessage) -> BackupReport | None:
    """The UrBackup report in ``message``, or None when it is not one."""
    subject = message.subject
    if "rBackup" not in subject and "rbackup" not in subject.lower() and "rBackup" not in message.text \
            and "backup of \"" not in subject:
        return None
    return _parse(message)


@guarded
def _parse(message: MailMessage) -> BackupReport | None:
    if _REPLY.match(message.subject):
        return None
    text = forwarded_text(message)
    subject = message.clean_subject
    alert = _ALERT.search(subject)
    if alert:
        return _from_alert(alert, text)
    if _bulk(message) and not (_SUBJECT_STATUS.search(subject) and _CLIENT.search(subject)):
        return None  # forum and list mail quote reports to discuss them
    if _BODY_SIGNATURE.search(text) or (("urbackup" in subject.lower() or _OLD_SUBJECT.match(subject))
                                         and _CLIENT.search(subject) and (_COUNTS.search(text) or _LOG.search(text))):
        return _from_report(subject, text)
    if message.tables and ("urbackup" in subject.lower() or "UrBackup" in text):
        return _from_table(message)
    return None


def _from_report(subject: str, text: str) -> BackupReport | None:
    client_match = _CLIENT.search(subject) or _CLIENT.search(text)
    client = client_match.group("client").strip() if client_match else None
    counts = _COUNTS.search(text)
    infos, warnings, errors = (int(counts.group(name)) for name in ("infos", "warnings", "errors")) \
        if counts else (0, 0, 0)
    logs = list(_LOG.finditer(text))
    if counts is None and not logs and not _SUBJECT_STATUS.search(subject):
        return None
    if errors == 0 and warnings == 0 and logs:
        errors = sum(1 for m in logs if m.group("level").lower() in ("error", "errore"))
        warnings = sum(1 for m in logs if m.group("level").lower() in ("warning", "avviso"))
    said = _SUBJECT_STATUS.search(subject)
    status: Status
    if said:
        status = status_in(said.group("status")) or "failure"
        if status == "success" and (errors or warnings):
            status = "warning"  # the backup ended, but the log has problems in it
    else:
        status = "failure" if errors else "warning" if warnings else "success"
    report = BackupReport(software=SOFTWARE, job=client, status=status, host=client)
    if logs:
        report.started_at = parse_datetime(logs[0].group("time"))
        report.finished_at = parse_datetime(logs[-1].group("time"))
    if status != "success":
        problems = [m.group("msg").strip() for m in logs if m.group("level").lower() in ("error", "errore")]
        problems += [m.group("msg").strip() for m in logs if m.group("level").lower() in ("warning", "avviso")]
        report.error = "\n".join(problems[:3])[:2000] or None
    transferred = [parse_size(m.group("size")) for m in _TRANSFERRED.finditer(text)]
    if transferred and all(value is not None for value in transferred):
        report.transferred_bytes = sum(transferred)  # type: ignore[arg-type]
    details: dict[str, object] = {"infos": infos, "warnings": warnings, "errors": errors}
    kind = _KIND.search(subject) or _KIND.search(text)
    if kind:
        level = (kind.group("level") or kind.group("level_it") or "").lower()
        details["level"] = "incremental" if level.startswith("incremental") else "full"
        details["backup_type"] = "image" if (kind.group("kind") or kind.group("kind_it") or "").lower() in (
            "image", "immagine") else "file"
        if kind.group("resumed"):
            details["resumed"] = True
    report.details = details
    return report


def _from_alert(alert: re.Match[str], text: str) -> BackupReport:
    client = alert.group("client").strip().strip('"')
    kind = (alert.group("type") or alert.group("type_it") or alert.group("oktype") or "file").lower()
    backup_type = "image" if kind in ("image", "immagine") else "file"
    if alert.group("missing"):
        report = BackupReport(software=SOFTWARE, job=client, status="failure", host=client)
        sentence = next((line.strip() for line in text.splitlines() if line.strip()), "")
        report.error = (sentence or alert.group("missing"))[:2000]
    else:
        report = BackupReport(software=SOFTWARE, job=client, status="success", host=client)
    report.details = {"kind": "alert", "backup_type": backup_type}
    return report


def _from_table(message: MailMessage) -> BackupReport | None:
    """A customised report script's HTML summary: one row per client."""
    items: list[ItemResult] = []
    times: list[str] = []
    for table in message.tables:
        columns = _columns(table)
        if columns is None:
            continue
        header_index, client_col, status_col, extra = columns
        for row in table[header_index + 1:]:
            if len(row) <= max(client_col, status_col):
                continue
            name = row[client_col].strip()
            status = status_in(row[status_col])
            if not name or status is None:
                continue
            warnings = _count(row, extra.get("warnings"))
            errors = _count(row, extra.get("errors"))
            if status == "success" and (errors or warnings):
                status = "warning"
            error = None
            if status != "success":
                error = row[extra["message"]].strip() if "message" in extra and len(row) > extra["message"] \
                    else row[status_col].strip()
            items.append(ItemResult(name=name, status=status, error=error or None))
            if "time" in extra and len(row) > extra["time"]:
                times.append(row[extra["time"]])
    if not items:
        return None
    single = items[0].name if len({item.name for item in items}) == 1 else None
    report = BackupReport(software=SOFTWARE, job=single, status=worst([item.status for item in items]),
                          host=single, items=items)
    problems = [f"{item.name}: {item.error}" for item in items if item.status != "success" and item.error]
    report.error = "\n".join(problems[:5])[:2000] or None
    moments = [moment for moment in (parse_datetime(value) for value in times) if moment]
    if moments:
        report.started_at, report.finished_at = min(moments), max(moments)
    report.details = {"clients": len(items)}
    return report


def _columns(table: list[list[str]]) -> tuple[int, int, int, dict[str, int]] | None:
    for index, row in enumerate(table[:3]):
        cells = [cell.strip().lower() for cell in row]
        client_col = next((i for i, cell in enumerate(cells) if cell in _HEADER_CLIENT
                           or cell.startswith(("client", "computer"))), None)
        status_col = next((i for i, cell in enumerate(cells) if cell.startswith(_HEADER_STATUS)), None)
        if client_col is None or status_col is None or client_col == status_col:
            continue
        extra: dict[str, int] = {}
        for i, cell in enumerate(cells):
            if cell.startswith(("warning", "avvis", "avvertiment")):
                extra.setdefault("warnings", i)
            elif cell.startswith(("error", "errori")):
                extra.setdefault("errors", i)
            elif cell.startswith(("message", "messaggi", "dettagli", "details", "note")):
                extra.setdefault("message", i)
            elif cell.startswith(("time", "ora", "data", "date", "fine", "end", "ended", "completed")):
                extra.setdefault("time", i)
        return index, client_col, status_col, extra
    return None


def _count(row: list[str], column: int | None) -> int:
    if column is None or column >= len(row):
        return 0
    match = re.search(r"\d+", row[column])
    return int(match.group(0)) if match else 0

