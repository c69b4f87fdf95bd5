"""Proxmox Backup Server job notifications: verify, sync, prune, garbage collection, tape backup.

PBS renders its job mails from the handlebars templates in
``templates/default/`` of proxmox-backup (earlier releases wrote the same
subjects from Rust format strings). The subject names the job type, the
datastore and the result::

    Verify Datastore 'store1' successful / failed
    Sync remote 'pbs2' datastore 'store2' successful     (local: Sync local datastore 'src' ...)
    Pruning datastore 'store1' failed                    (older: Prune datastore 'store1' ...)
    Garbage Collect Datastore 'store1' successful
    Tape Backup 'job-id' datastore 'store1' failed       (no job id: Tape Backup datastore 'store1' ...)

and the plain-text body (PBS sends text only) lists labelled fields and ends
with a result sentence and a link to the web interface::

    Job ID:    v-weekly
    Datastore: store1

    Verification failed on these snapshots/groups:

        vm/101/2026-12-04T23:06:54Z

    Please visit the web interface for further details:

    <https://pbs.example.com:8007/#pbsServerAdministration:tasks>

The job is the ``Job ID`` the body names; garbage collection has no job, so
there it is the datastore. PBS has only ok and error templates (no warnings).
The same sender mails tape-load requests, certificate-renewal failures,
package updates and test notifications; their subjects name no datastore job,
so they are not reports.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import (
    forwarded_text,
    guarded,
    is_reply_behind_tags,
    read_fields,
    report_subject,
)
from custode.agent.backups.report import BackupReport, ItemResult, Status
from custode.agent.mail.message import MailMessage

SOFTWARE = "Proxmox Backup Server"
PRIORITY = 160

_SUBJECT = re.compile(
    r"^\s*(?P<kind>Verify|Verification|Garbage Collect(?:ion)?|Sync|Synchroni[sz]ation|Pruning|Prune|Tape Backup)"
    r"\b(?P<middle>.*?\bdatastore\s+'(?P<store>[^']*)'.*?)\s+(?P<result>successful|succeeded|ok|failed|error)\s*$",
    re.IGNORECASE)
_QUOTED = re.compile(r"'([^']*)'")
# the body's result sentence: "Verification successful.", "Garbage collection failed: ENOSPC ..."
_RESULT = re.compile(
    r"^\s*(?P<kind>Verification|Garbage collection|Pruning|Prune|Synchronization|Sync|Tape Backup)\s+"
    r"(?P<result>successful|failed)\b[ \t]*(?:on these snapshots/groups[ \t]*)?[.:]?[ \t]*(?P<error>.*?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE)
_WEB_LINK = re.compile(r"Please visit the web interface for further details|https?://[^\s>]+:8007/", re.IGNORECASE)
_SNAPSHOT = re.compile(r"^\s*(?P<name>(?:ns/\S+/)?(?:vm|ct|host)/[^\s/]+(?:/\d{4}-\d{2}-\d{2}T[\d:]+Z)?)\s*$")
_FIELDS = frozenset({"job id", "datastore", "remote", "remote store", "local source store", "tape pool",
                     "tape drive", "task id", "removed garbage", "pending removals", "original data usage",
                     "on-disk usage", "index file count", "removed chunks", "removed bad chunks",
                     "leftover bad chunks", "on-disk chunks", "deduplication factor", "duration",
                     "namespace", "remote namespace", "local namespace"})
_KINDS = {"verify": "verify", "verification": "verify", "garbage": "garbage collection", "sync": "sync",
          "synchronization": "sync", "synchronisation": "sync", "prune": "prune", "pruning": "prune",
          "tape": "tape backup"}


def parse(message: MailMessage) -> BackupReport | None:
    """The PBS job report in ``message``, or None when it is not one."""
    if "datastore" not in message.subject.lower() and "datastore:" not in message.text[:20_000].lower():
        return None
    return _parse(message)


@guarded
def _parse(message: MailMessage) -> BackupReport | None:
    if is_reply_behind_tags(message.subject):
        return None
    text = forwarded_text(message)
    subject = report_subject(message, text, _SUBJECT)
    lines = text.splitlines()
    fields = read_fields(lines, _FIELDS, only_known=True)
    result = _result_line(text)
    if "datastore" not in fields or not _WEB_LINK.search(text):
        return None  # the subject alone (a human mail, a listing) is not the notification
    if subject is None and result is None:
        return None
    kind = _kind((subject or result).group("kind"))  # type: ignore[union-attr]
    status = _status(subject, result)
    store = fields.get("datastore") or (subject.group("store") if subject else None)
    report = BackupReport(software=SOFTWARE, job=fields.get("job id") or store, status=status,
                          host=_host(message, text))
    items = _failed_snapshots(lines) if kind == "verify" and status == "failure" else []
    report.items = items
    report.error = _error(result, items, status)
    details: dict[str, object] = {"job_type": kind, "datastore": store}
    if subject is not None:
        quoted = _QUOTED.findall(subject.group("middle"))
        if kind == "sync" and "remote" in subject.group("middle").lower() and quoted:
            details["remote"] = fields.get("remote") or quoted[0]
        if kind == "tape backup" and len(quoted) > 1:
            details["tape_job"] = quoted[0]
    for key, label in (("removed_garbage", "removed garbage"), ("remote_store", "remote store"),
                       ("source_store", "local source store"), ("tape_pool", "tape pool"),
                       ("tape_drive", "tape drive"), ("task_id", "task id"), ("duration", "duration"),
                       ("deduplication_factor", "deduplication factor"),
                       ("pending_removals", "pending removals"), ("on_disk_usage", "on-disk usage")):
        if fields.get(label):
            details[key] = fields[label][:200]
    report.details = details
    return report




def _result_line(text: str) -> re.Match[str] | None:
    found = None
    for match in _RESULT.finditer(text):
        found = match  # the last one: the template ends with it
    return found


def _kind(word: str) -> str:
    return _KINDS.get(word.split()[0].lower(), word.lower())


def _status(subject: re.Match[str] | None, result: re.Match[str] | None) -> Status:
    words = [match.group("result").lower() for match in (subject, result) if match is not None]
    return "failure" if any(word in ("failed", "error") for word in words) else "success"


def _failed_snapshots(lines: list[str]) -> list[ItemResult]:
    """The snapshots and groups a failed verification lists."""
    items: list[ItemResult] = []
    listing = False
    for line in lines:
        if re.search(r"failed on these snapshots", line, re.IGNORECASE):
            listing = True
            continue
        if listing:
            match = _SNAPSHOT.match(line)
            if match:
                items.append(ItemResult(name=match.group("name"), status="failure", error="verification failed"))
            elif line.strip():
                break
    return items


def _error(result: re.Match[str] | None, items: list[ItemResult], status: Status) -> str | None:
    if status == "success":
        return None
    if result is not None and result.group("error"):
        return result.group("error")[:2000]
    if items:
        return ("Verification failed on: " + ", ".join(item.name for item in items[:10]))[:2000]
    return None


def _host(message: MailMessage, text: str) -> str | None:
    link = re.search(r"https?://(?P<host>[^\s/:>]+):8007/", text)
    if link:
        return link.group("host")
    sender = message.original_sender
    return sender.split("@", 1)[1] if "@" in sender else None
