"""Proxmox VE vzdump backup job notifications, both the current and the pre-8.1 format.

Since PVE 8.1 the mail is rendered by the notification system from the
``vzdump-{subject,body}.{txt,html}.hbs`` templates of pve-manager::

    Subject: vzdump backup status (pve1.example.com): backup successful

    Details
    =======
    VMID    Name              Status    Time        Size       Filename
    100     srv-anagrafe      ok        6min 52s    32 GiB     vm/100/2026-12-05T23:00:02Z
    101     srv-protocollo    err       2h 2min     0 B        null
    Total running time: 28min 33s
    Total size: 134.1 GiB

    Logs
    ====
    vzdump 100 101 --mode snapshot --node pve1 --storage pbs ...
    100: 2026-12-06 00:00:02 INFO: Starting Backup of VM 100 (qemu)
    ...

(the HTML part has the same table). A job that fails before any guest runs
(storage unreachable) sends an empty table and puts the error in the subject:
``...: backup failed: could not get storage information for 'x': ...``.

Before 8.1 ``PVE/VZDump.pm`` built the mail itself: the subject has a space
before the colon (``vzdump backup status (pve1) : backup failed``), every text
line is indented by two spaces (against Outlook's line joining), sizes are
``870MB``/``27.00GB``, times ``00:01:11``, a failed guest is ``err`` with size
``0.00MB`` and filename ``-``, and the HTML table says ``OK``/``FAILED`` with
the error message in the failed row; the log follows "Detailed backup logs:".

The subject names the node by ``hostname -f``; the job is the node name (its
first label), the host the full name. Each guest is an item; the job fails if
any guest failed. The mail client collapses the padding (Custode normalises
runs of spaces), so table rows are read by the shape of their cells, not by
column positions. Package-update, replication and test notifications come
from the same sender but have other subjects and no guest table.
"""

from __future__ import annotations

import re
from datetime import datetime

from custode.agent.backups.parsers._common import (
    forwarded_text,
    guarded,
    is_reply_behind_tags,
    parse_datetime,
    parse_size,
    report_subject,
    status_in,
)
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Proxmox VE"
PRIORITY = 150

_SUBJECT = re.compile(
    r"vzdump backup status\s*\((?P<host>[^()\s]+)\)\s*:\s*backup\s+(?P<result>successful|failed|failure|\w+)"
    r"(?:\s*:\s*(?P<error>.+))?", re.IGNORECASE)
# "VMID Name Status Time Size Filename" (current) / "VMID NAME STATUS TIME SIZE FILENAME" (pre-8.1)
_TABLE_HEADER = re.compile(r"^\s*\|?\s*VMID(?:\s*\|\s*|\s+)Name(?:\s*\|\s*|\s+)Status(?:\s*\|\s*|\s+)Time"
                           r"(?:\s*\|\s*|\s+)Size(?:\s*\|\s*|\s+)Filename\s*\|?\s*$", re.IGNORECASE | re.MULTILINE)
_DURATION = r"(?:\d+(?::\d{2}){1,2}|(?:\d+(?:\.\d+)?\s?(?:y|w|d|h|min|m|s|ms)\b\s?)+)"
_SIZE = r"\d[\d.,]*\s?(?:[KMGTPE]i?B|B|bytes?)"
_ROW = re.compile(
    r"^\s*(?P<vmid>\d{1,9})\s+(?P<name>\S+)\s+(?P<status>[A-Za-z]+)\s+(?P<time>" + _DURATION + r")\s*"
    r"(?P<size>" + _SIZE + r")\s+(?P<file>\S+)\s*$")
_TOTAL_SIZE = re.compile(r"^\s*Total size\s*:\s*(?P<size>.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_TOTAL_TIME = re.compile(r"^\s*Total running time\s*:\s*(?P<time>.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_COMMAND = re.compile(r"^\s*vzdump\s+(?:\d|--|-)[^\n]*$", re.MULTILINE)
_LOG_LINE = re.compile(r"^\s*(?P<vmid>\d{1,9}):\s+(?P<when>\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2})\s+"
                       r"(?P<level>INFO|WARN|WARNING|ERROR|ERR)\s*:\s*(?P<msg>.*?)\s*$", re.MULTILINE)
_GUEST_FAILED = re.compile(r"^Backup of VM \d+ failed - (?P<msg>.+)$", re.IGNORECASE)
_OPTION = re.compile(r"--(?P<name>node|storage|mode)\s+(?P<value>\S+)")
# the Subject/Oggetto line of an inline forward's header block
_HEADER_LINE = re.compile(r"^\*?(?:from|to|cc|date|sent|subject|da|a|inviato|data|oggetto|von|an|betreff|"
                          r"gesendet)\s*:", re.IGNORECASE)
_IP = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$|:")


def parse(message: MailMessage) -> BackupReport | None:
    """The vzdump job report in ``message``, or None when it is not one."""
    if "vzdump" not in message.text[:20_000].lower() and "vzdump" not in message.subject.lower():
        return None
    return _parse(message)


@guarded
def _parse(message: MailMessage) -> BackupReport | None:
    if is_reply_behind_tags(message.subject):
        return None
    text = forwarded_text(message)
    subject = report_subject(message, text, _SUBJECT)  # a forwarder's own subject: the header block keeps it
    table = _TABLE_HEADER.search(text)
    if subject is None and (table is None or not _COMMAND.search(text)):
        return None  # the table alone (a quote in a discussion) is not a report
    if table is None and not _COMMAND.search(text) and "Detailed backup logs" not in text:
        return None  # the subject alone: a human mail about a backup, not the notification
    items = _items(text[table.start():] if table else "")
    if not items:
        items = _table_items(message)
    _add_errors(items, text)
    host = subject.group("host") if subject else _command_option(text, "node")
    report = BackupReport(software=SOFTWARE, job=_node(host, text), status=_status(subject, items), host=host,
                          items=items)
    report.started_at, report.finished_at = _times(text)
    report.size_bytes = _total_size(text, items)
    report.error = _error(subject, items)
    if report.status == "failure" and table is not None and _job_level(subject, items):
        report.error = _preamble(text[:table.start()]) or report.error
    report.details = _details(text, items, legacy=bool(subject and re.search(r"\)\s+:", subject.group(0))))
    return report




def _items(text: str) -> list[ItemResult]:
    """One item per guest row of the table under the header at the start of ``text``.

    The plain part pads cells with spaces; the HTML part rendered as text joins
    them with `` | `` (there the pre-8.1 failed row carries its error message
    in the size and filename cells).
    """
    lines = text.splitlines()
    if not lines:
        return []
    columns = _cells(lines[0]) if "|" in lines[0] else None
    items: list[ItemResult] = []
    for index, line in enumerate(lines[1:]):
        item = _cell_row(line, columns) if columns else _text_row(line)
        if item is None:
            if items or index >= 2 or _TOTAL_TIME.match(line) or _TOTAL_SIZE.match(line):
                break
            continue  # a separator line under the header
        items.append(item)
    return items


def _cells(line: str) -> list[str]:
    cells = [cell.strip() for cell in line.strip().split("|")]
    if cells and not cells[0] and line.strip().startswith("|"):
        cells = cells[1:]
    return [cell.lower() for cell in cells]


def _text_row(line: str) -> ItemResult | None:
    row = _ROW.match(line)
    if row is None:
        return None
    return ItemResult(name=_guest_name(row.group("vmid"), row.group("name")), status=_guest_status(row.group("status")),
                      size_bytes=parse_size(row.group("size")))


def _cell_row(line: str, columns: list[str]) -> ItemResult | None:
    cells = [cell.strip() for cell in line.strip().split("|")]
    if line.strip().startswith("|"):
        cells = cells[1:]
    named = dict(zip(columns, cells, strict=False))  # a short row names the columns it has
    vmid = named.get("vmid", "")
    if not vmid.isdigit() or "status" not in named:
        return None
    status = _guest_status(named["status"])
    size_cell = named.get("size", "")
    size = parse_size(size_cell) if re.fullmatch(_SIZE, size_cell) else None
    error = None
    if status != "success" and size is None and "size" in columns:
        rest = cells[columns.index("size"):]  # pre-8.1: the error message spans size and filename
        error = " ".join(cell for cell in rest if cell and cell != "null").strip() or None
    return ItemResult(name=_guest_name(vmid, named.get("name", "")), status=status, error=error, size_bytes=size)


def _table_items(message: MailMessage) -> list[ItemResult]:
    """Guests from the HTML table, when the text part was missing or unreadable."""
    for table in message.tables:
        if not table:
            continue
        header = [cell.strip().lower() for cell in table[0]]
        if "vmid" not in header or "status" not in header:
            continue
        vmid_col, status_col = header.index("vmid"), header.index("status")
        name_col = header.index("name") if "name" in header else None
        size_col = header.index("size") if "size" in header else None
        items: list[ItemResult] = []
        for row in table[1:]:
            if len(row) <= max(vmid_col, status_col) or not row[vmid_col].strip().isdigit():
                continue  # the TOTAL row of the pre-8.1 table
            name = row[name_col].strip() if name_col is not None and len(row) > name_col else ""
            status = _guest_status(row[status_col])
            error = None
            size = None
            if status == "success":
                size = parse_size(row[size_col]) if size_col is not None and len(row) > size_col else None
            elif size_col is not None and len(row) > size_col:
                error = row[size_col].strip() or None  # pre-8.1: the message spans size and filename
            items.append(ItemResult(name=_guest_name(row[vmid_col].strip(), name), status=status, error=error,
                                    size_bytes=size))
        if items:
            return items
    return []


def _guest_name(vmid: str, name: str) -> str:
    name = name.strip()
    return f"{vmid} {name}" if name and name != vmid else vmid


def _guest_status(value: str) -> Status:
    """``ok`` is success; ``err``/``FAILED`` and any other state (a guest never run) are failures."""
    value = value.strip().lower()
    if value in ("ok", "success", "successful"):
        return "success"
    return "warning" if status_in(value) == "warning" else "failure"


def _add_errors(items: list[ItemResult], text: str) -> None:
    """The failed guests' error messages, from their log lines."""
    failed = {item.name.split()[0]: item for item in items if item.status != "success" and not item.error}
    if not failed:
        return
    for line in _LOG_LINE.finditer(text):
        item = failed.get(line.group("vmid"))
        if item is None or not line.group("level").upper().startswith("ERR"):
            continue
        guest = _GUEST_FAILED.match(line.group("msg"))
        if guest:
            item.error = guest.group("msg")[:500]
        elif item.error is None:
            item.error = line.group("msg")[:500]


def _status(subject: re.Match[str] | None, items: list[ItemResult]) -> Status:
    statuses = [item.status for item in items]
    if subject is not None:
        result = subject.group("result").lower()
        statuses.append("success" if result.startswith("success") else status_in(result) or "failure")
    return worst(statuses) if statuses else "failure"


def _node(host: str | None, text: str) -> str | None:
    """The node name: the first label of the subject's ``hostname -f`` (an address stays whole)."""
    if not host:
        return None
    if _IP.search(host):
        return _command_option(text, "node") or host
    return host.split(".")[0]


def _command_option(text: str, name: str) -> str | None:
    command = _COMMAND.search(text)
    if command is None:
        return None
    for option in _OPTION.finditer(command.group(0)):
        if option.group("name") == name:
            return option.group("value").strip("'\"")
    return None


def _times(text: str) -> tuple[datetime | None, datetime | None]:
    moments = [moment for moment in (parse_datetime(line.group("when")) for line in _LOG_LINE.finditer(text))
               if moment]
    return (min(moments), max(moments)) if moments else (None, None)


def _total_size(text: str, items: list[ItemResult]) -> int | None:
    total = _TOTAL_SIZE.search(text)
    if total:
        size = parse_size(total.group("size"))
        if size is not None:
            return size
    sizes = [item.size_bytes for item in items if item.size_bytes is not None]
    return sum(sizes) if sizes else None


def _error(subject: re.Match[str] | None, items: list[ItemResult]) -> str | None:
    problems = [f"{item.name}: {item.error or 'backup failed'}" for item in items if item.status != "success"]
    if subject is not None and subject.group("error"):
        problems.insert(0, subject.group("error").strip())
    return "\n".join(problems[:5])[:2000] or None


def _job_level(subject: re.Match[str] | None, items: list[ItemResult]) -> bool:
    """A failure of the job rather than of a guest, whose errors the subject does not carry."""
    stated = (subject.group("error") or "").strip().lower() if subject else ""
    return not any(item.status == "failure" for item in items) and stated in ("", "multiple problems")


def _preamble(head: str) -> str | None:
    """The job-level errors printed above the guest table (``{{error}}`` of the template)."""
    found: list[str] = []
    for line in reversed(head.splitlines()):
        line = line.strip()
        if not line or set(line) <= {"=", "-", "_"} or line.lower() in ("details", "details:"):
            if found:
                break
            continue
        if _HEADER_LINE.match(line):
            break  # an inline forward's header block: the report starts below it
        found.insert(0, line)
        if len(found) >= 5:
            break
    return "\n".join(found)[:2000] or None


def _details(text: str, items: list[ItemResult], legacy: bool) -> dict[str, object]:
    details: dict[str, object] = {"format": "pre-8.1" if legacy or "Detailed backup logs" in text else "8.1+",
                                  "guests": len(items),
                                  "failed_guests": sum(1 for item in items if item.status != "success")}
    for name in ("storage", "mode", "node"):
        value = _command_option(text, name)
        if value:
            details[name] = value
    running = _TOTAL_TIME.search(text)
    if running:
        details["total_running_time"] = running.group("time")
    return details
