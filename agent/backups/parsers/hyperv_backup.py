"""Hyper-V Backup Utility (Mike Galvin's ``Hyper-V-Backup.ps1``): the log file it mails.

The utility exports (or copies) Hyper-V VMs and, when ``-SendTo`` and ``-Smtp``
are given, mails its own log with ``Send-MailMessage``: the body is the log file
as ``Get-Content | Out-String`` reads it (plain text), the subject the
``-Subject`` of the operator or by default ``Hyper-V Backup Utility Log``,
followed since 2023 by ``<successes>/<VMs> VMs Successful``. The log has:

* a config block of unprefixed lines: ``--- Running with the following config
  ---``, ``Utility Version: 24.08.29``, ``Hostname: HV01.`` (``$Env:ComputerName``
  and a full stop), ``No. of VMs: 2.``, ``VMs to backup:`` and one VM name a
  line, ``Backup directory: ...``, ..., ``---``. Versions before 23.x wrote
  ``Hostname:................HV01.`` between rows of asterisks, and older
  ones no host at all;
* ``yyyy-MM-dd HH:mm:ss [INFO|SUCCESS|ERROR] <message>`` lines (the server's
  local time). Lines about one VM start ``(VM:<name>)``; an exception message
  may run over several lines. Per VM the outcome is ``[SUCCESS] (VM:x) Export
  Successful`` / ``Backup Successful`` or ``[ERROR] (VM:x) Export failed`` /
  ``Backup failed``; a missing VM is ``[ERROR] VM name: x was not found.
  Skipping backup.``; no VM at all ``[ERROR] There are no VMs running to
  backup``;
* the counters ``Process finished.``, ``Number of VMs to Backup:N``,
  ``Backups Successful:N``, ``Backups Failed:N`` (older versions end with
  ``Log finished`` and have no counters).

The utility itself knows only success and failure: a VM that failed makes the
run a failure, even when others were saved. It also counts a VM as saved when
an error was logged during its copy and the export still returned (issue #27:
"An unexpected network error occurred" followed by "Backup Successful"): a run
the utility calls successful while its log holds an ``[ERROR]`` line is a
warning here, so that it is looked at. The job is the Hyper-V host (one log per
host and run); when the log does not name it (old versions, a log cut short),
the operator's own subject is the job, else there is none.

The log is recognised by its own lines (time-stamped levels plus the
utility's VM vocabulary), not by the subject, which the operator may change.
"""

from __future__ import annotations

import re
from datetime import datetime

from custode.agent.backups.parsers._common import QUOTE_MARKS, is_bulk, is_reply, parse_datetime
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Hyper-V Backup Utility"
PRIORITY = 190

_LOG_LINE = re.compile(r"^[ \t]*(?P<time>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})[ \t]+\[(?P<level>INFO|SUCCESS|ERROR)\]"
                       r"[ \t]*(?P<msg>.*?)[ \t]*$", re.MULTILINE)
# The utility's own vocabulary: what another tool's log with the same line format would not say.
_VOCABULARY = re.compile(r"\[(?:INFO|SUCCESS|ERROR)\][ \t]*(?:\(VM:[^)\n]+\)|VM name: [^\n]+ was not found|"
                         r"Number of VMs to Backup\s*:|There are no VMs running to backup)", re.IGNORECASE)
_CONFIG_HEADER = re.compile(r"^[ \t]*[-*]{3,}\s*Running with the following config\s*[-*.]*\s*$",
                            re.IGNORECASE | re.MULTILINE)
_HOSTNAME = re.compile(r"^[ \t]*Hostname\s*:[.\s]*?(?P<host>[A-Za-z0-9][A-Za-z0-9._-]{0,62}?)\.?[ \t]*$",
                       re.IGNORECASE | re.MULTILINE)
_VMS_HEADER = re.compile(r"^[ \t]*VMs to backup\s*:[.\s]*$", re.IGNORECASE | re.MULTILINE)
_CONFIG_LABEL = re.compile(r"^[ \t]*(?:[-*]{3,}|[-A-Za-z0-9 ().]{2,40}:)")
_VM_LINE = re.compile(r"^\(VM:(?P<vm>[^)]+)\)\s*(?P<msg>.*)$", re.DOTALL)
_VM_DONE = re.compile(r"^(?:Export|Backup)\s+(?P<outcome>Successful|failed)\b", re.IGNORECASE)
_NOT_FOUND = re.compile(r"^VM name:\s*(?P<vm>.+?)\s+was not found", re.IGNORECASE)
_NO_VMS = re.compile(r"^There are no VMs running to backup", re.IGNORECASE)
_FINISHED = re.compile(r"^(?:Process finished|Log finished)\b", re.IGNORECASE)
_COUNTER = re.compile(r"^(?P<name>Number of VMs to Backup|Backups Successful|Backups Failed)\s*:\s*(?P<n>\d+)\s*$",
                      re.IGNORECASE)
_SUBJECT_COUNT = re.compile(r"(?P<ok>\d+)\s*/\s*(?P<total>\d+)\s+VMs?\s+Successful\b", re.IGNORECASE)
_SUBJECT_PRODUCT = re.compile(r"\bHyper-V Backup Utility(?:\s+Log)?\b", re.IGNORECASE)


class _Entry:
    """One log line with its continuation lines (a multi-line exception message)."""

    __slots__ = ("time", "level", "message")

    def __init__(self, time: str, level: str, message: str) -> None:
        self.time = time
        self.level = level.upper()
        self.message = message


def parse(message: MailMessage) -> BackupReport | None:
    if is_reply(message.subject):
        return None  # a human answering a report, not the report
    text = message.text
    if "[INFO]" not in text and "[ERROR]" not in text:
        return None  # cheap rejection: no log line at all
    if ">" in text[:20000] and QUOTE_MARKS.search(text):
        text = QUOTE_MARKS.sub("", text)  # forwarded "as quote"
    if not _VOCABULARY.search(text):
        return None
    entries = _entries(text)
    if not entries:
        return None
    config = _CONFIG_HEADER.search(text)
    if is_bulk(message) and not config:
        return None  # a newsletter quoting a few log lines is not this host's backup

    vms: dict[str, ItemResult] = {name: ItemResult(name=name, status="warning") for name in _configured_vms(text)}
    decided: set[str] = set()
    errors: list[str] = []
    counters: dict[str, int] = {}
    no_vms = finished = False
    for entry in entries:
        vm_line = _VM_LINE.match(entry.message)
        if vm_line:
            vm, body = vm_line.group("vm").strip(), vm_line.group("msg").strip()
            item = vms.setdefault(vm, ItemResult(name=vm, status="warning"))
            done = _VM_DONE.match(body)
            if done and entry.level in ("SUCCESS", "ERROR"):
                item.status = "success" if done.group("outcome").lower() == "successful" else "failure"
                decided.add(vm)
            if entry.level == "ERROR":
                if not done:
                    item.error = "\n".join(filter(None, (item.error, body)))[:1000]
                errors.append(f"{vm}: {body}")
            continue
        body = entry.message
        missing = _NOT_FOUND.match(body)
        counter = _COUNTER.match(body)
        if missing:
            vm = missing.group("vm").strip()
            vms[vm] = ItemResult(name=vm, status="failure", error=body)
            decided.add(vm)
        elif counter:
            counters[counter.group("name").lower()] = int(counter.group("n"))
        elif _NO_VMS.match(body):
            no_vms = True
        elif _FINISHED.match(body):
            finished = True
        if entry.level == "ERROR":
            errors.append(body)

    for name, item in vms.items():
        if name in decided and item.status == "success" and item.error:
            item.status = "warning"  # "Backup Successful" after an error during its copy (issue #27)
        elif name not in decided and item.error:
            item.status = "failure"
    status, note = _status(message, counters, vms, decided, errors, no_vms, finished)
    for name, item in vms.items():
        if name not in decided and not item.error and status == "success":
            item.status = "success"  # older logs state no per-VM outcome: the run's word covers them
    host = _host(text)
    times = [parse_datetime(entry.time) for entry in entries]
    known = [when for when in times if when is not None]
    details: dict[str, object] = {key.replace(" ", "_"): value for key, value in counters.items()}
    if note:
        details["note"] = note
    started: datetime | None = min(known) if known else None
    finished_at: datetime | None = max(known) if known and finished else None
    return BackupReport(
        software=SOFTWARE,
        job=host or _custom_subject(message),
        status=status,
        host=host,
        started_at=started,
        finished_at=finished_at,
        error="\n".join(dict.fromkeys(errors))[:2000] if status != "success" and errors else None,
        items=list(vms.values())[:200],
        details=details,
    )


def _entries(text: str) -> list[_Entry]:
    """The time-stamped lines, each with the untimed lines after it up to the next one (or the end of the log)."""
    matches = list(_LOG_LINE.finditer(text))
    entries: list[_Entry] = []
    for index, match in enumerate(matches):
        message = match.group("msg")
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        if match.group("level").upper() == "ERROR":  # an exception message may run over several lines
            tail = text[match.end():end].strip("\n")
            extra = []
            for line in tail.splitlines()[:20]:
                if not line.strip():
                    break
                extra.append(line.strip())
            if extra:
                message = " ".join([message, *extra])
        entries.append(_Entry(match.group("time"), match.group("level"), message))
    return entries


def _configured_vms(text: str) -> list[str]:
    """The names under ``VMs to backup:`` in the config block (``....name`` in older versions)."""
    header = _VMS_HEADER.search(text)
    if not header:
        return []
    names = []
    for line in text[header.end():header.end() + 20000].splitlines():
        if not line.strip():
            if names:
                break
            continue
        if _LOG_LINE.match(line) or (_CONFIG_LABEL.match(line) and not line.strip().startswith(".")):
            break
        name = line.strip().lstrip(".").strip()
        if name:
            names.append(name)
        if len(names) >= 200:
            break
    return names


def _status(message: MailMessage, counters: dict[str, int], vms: dict[str, ItemResult], decided: set[str],
            errors: list[str], no_vms: bool, finished: bool) -> tuple[Status, str | None]:
    """The run's outcome: the log's counters, else the subject's, else each VM's last word; an error line
    under a claimed success makes a warning."""
    verdicts: list[Status] = []
    note: str | None = None
    total = counters.get("number of vms to backup")
    failed = counters.get("backups failed")
    succeeded = counters.get("backups successful")
    subject = _SUBJECT_COUNT.search(message.clean_subject)
    if failed is not None or succeeded is not None:
        bad = (failed or 0) > 0 or (total is not None and succeeded is not None and succeeded < total)
        verdicts.append("failure" if bad else "success")
    elif subject:
        ok, all_vms = int(subject.group("ok")), int(subject.group("total"))
        verdicts.append("failure" if ok < all_vms else "success")
    if total == 0 or no_vms or (subject and int(subject.group("total")) == 0):
        verdicts.append("failure")  # nothing was backed up
    outcomes = [vms[name].status for name in decided]
    if outcomes:
        verdicts.append(worst(outcomes))
    if not verdicts:
        if errors:
            verdicts.append("failure")
        elif finished:
            verdicts.append("success")  # older versions: a run that finished without an error line
        else:
            note = "the log states no outcome (cut short?)"
            verdicts.append("warning")
    status = worst(verdicts)
    if status == "success" and errors:
        status = "warning"
        note = "the utility reports success, but its log holds error lines"
    return status, note


def _host(text: str) -> str | None:
    """The Hyper-V host, as the log's config block names it (``Hostname``).

    Not guessed from the Message-ID: System.Net.Mail writes none, and the one
    the SMTP server adds names the server, not the Hyper-V host.
    """
    match = _HOSTNAME.search(text)
    return match.group("host").rstrip(".") if match else None


def _custom_subject(message: MailMessage) -> str | None:
    """An operator's own ``-Subject`` (without the counter), when the log does not name the host."""
    subject = _SUBJECT_COUNT.sub("", message.clean_subject).strip(" -:")
    rest = _SUBJECT_PRODUCT.sub("", subject).strip(" -:")
    return rest or None
