"""Macrium Reflect (v7/v8/X) backup notifications, and the DailyBackup.ps1 wrapper script's mail.

What Reflect sends. A backup definition's options have an "Email" page and
three notification tabs, "Email Success", "Email Warning" and "Email Failure"
(Macrium knowledge base, "Image Options",
kbx.macrium.com/macrium-reflect-ltsc/image-options): one mail per run, whose
subject and body the operator may edit per definition. Macrium's own pages as
stored in the public corpora stop before the tabs' default texts, so the layout
below is what two public GitHub monitors that parse these mails quote from a
real fleet (BoiesGrimardInformatique/BGBackupChecker, backup_monitor/parsers.py,
selftest.py and docs/gabarits-courriels.md; BGInformatique/BGCourriel,
bg_courriel/sauvegardes.py)::

    Subject: SRV-ANAGRAFE Macrium Reflect - Backup Success
    Subject: SRV-TRIBUTI(Immagine) Macrium Reflect - Backup Failed
    Subject: SRV-PROTOCOLLO Macrium Reflect - Backup with Warnings

    Success :)          Failed :(  (also "Failure :(")          Warning :|

that is ``<computer>[(<definition>)] Macrium Reflect - Backup <verdict>``
(the monitors read the name before "Macrium Reflect" as the computer and the
bracket as the backup definition; "Backup Failure" and "Clone Failure" occur
too), and a body that often holds nothing but the verdict and its emoticon.
Their notes cite Macrium's documentation for: the status variable evaluates
to the English literals Success / Warning / Failure whatever the UI language;
the warning status exists since 7.2; a cancelled backup is sent as the Failure
mail. They also saw a folded Subject header put a tab inside "Backup with
Warnings", bodies carrying "Computer Name: ..." and "Backup definition: ..."
lines, and the engine's "Backup aborted! - <reason>" line. All of this is UNCONFIRMED by a
captured mail: the MIME layout, the HTML and the sender are unknown, and no
Italian wording was found (the status literals are English by design; a French
"Échoué :(" was seen and is accepted). The job is the definition when the mail
names one, else the computer.

Also recognised: the mail of palinkas-jo-reggelt/Macrium-Backup's
``DailyBackup.ps1`` (GitHub), which runs ``reflect.exe -e -w <type> <def.xml>``
and mails an HTML table, one ``<tr><td>`` line per message: ``:::   Macrium
Backup Routine   :::``, ``Macrium Reflect Backup Definition File:`` and the
path of the .xml, ``[OK] Backup succeeded`` / ``[ERROR] Backup failed - See log
for error`` / ``[ERROR] XML invalid - See log for error`` (reflect.exe exit
codes 0 / 1 / 2), ``Created image <file> : <n> GB``, ``Script finished with
exit code N.``. Its subject is the operator's (default "Macrium Nightly
Backup"); the job is the definition file's name without path and extension.

Not reports, and left alone: replies, Macrium's newsletters and licence,
update or renewal notices, Macrium Image Guardian alerts ("Macrium Image
Guardian - Event - <computer>": a blocked write, no backup ran) and Site
Manager notices such as "Repository Uncontactable" or "Disk Space Low".
"""

from __future__ import annotations

import re
from pathlib import PureWindowsPath

from custode.agent.backups.parsers._common import (
    GATEWAY_TAGS,
    forwarded_text,
    guarded,
    is_bulk,
    is_reply,
    is_reply_behind_tags,
    parse_size,
    read_fields,
    report_subject,
)
from custode.agent.backups.report import BackupReport, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Macrium Reflect"
PRIORITY = 110

_VERDICT_WORDS = (
    r"completed\s+successfully|success(?:ful)?|succeeded|completed\s+with\s+warnings?|with\s+warnings?|warnings?"
    r"|completed\s+with\s+errors?|failed|failure|fail|aborted|cancell?ed|errors?")
# The notification's own subject: "<computer>[(<definition>)] Macrium Reflect - Backup <verdict>", the
# verdict last. Anchored at both ends, so a newsletter that merely names the product does not match.
_SUBJECT = re.compile(
    r"^\s*(?:(?P<host>[A-Za-z0-9][A-Za-z0-9._+-]{0,62})(?:\s*\((?P<definition>[^()\r\n]{1,120})\)\s*|\s+))?"
    r"Macrium\s+Reflect\s*[-\u2013:]\s*(?P<operation>(?:image\s+|file\s+and\s+folder\s+)?backup|clone|image)\s+"
    r"(?P<verdict>" + _VERDICT_WORDS + r")\s*[.!]?\s*$", re.IGNORECASE)
# The verdict line of the default body, with its emoticon; "Success/Failure/Warning Notification" headings too.
_BODY_VERDICT = re.compile(
    r"^[ \t|]*(?:(?P<word>success(?:ful)?|failed|failure|warnings?|[ée]chou[ée]e?)[ \t]*(?P<face>:\)|:\(|:\|)"
    r"|(?P<heading>success|warning|failure)[ \t]+notification)[ \t|]*$", re.IGNORECASE | re.MULTILINE)
_ABORTED = re.compile(r"^[ \t|]*(?P<line>(?:backup|clone|image)\s+(?:aborted!?|was\s+cancell?ed|cancell?ed)\b.*?)"
                      r"[ \t|]*$", re.IGNORECASE | re.MULTILINE)
_NOT_NOTIFICATIONS = re.compile(
    r"\bmacrium\s+image\s+guardian\b|\bsite\s+manager\s+notification\b"
    r"|\b(?:update|upgrade|new\s+version|release[sd]?|licen[cs]e|renew(?:al)?|subscription|support\b.*\bexpir"
    r"|expir(?:es|ed|ing|y)|newsletter|offer|discount|webinar|trial)\b", re.IGNORECASE)
_FIELD_LABELS = frozenset({"computer name", "computer", "backup definition", "definition",
                           "backup definition file", "definition file"})
_HOST_LABELS = ("computer name", "computer")
_DEFINITION_LABELS = ("backup definition", "definition", "backup definition file", "definition file")

# DailyBackup.ps1 (palinkas-jo-reggelt/Macrium-Backup)
_SCRIPT_BANNER = re.compile(r"Macrium\s+Backup\s+Routine", re.IGNORECASE)
_SCRIPT_DEFINITION = re.compile(
    r"Macrium\s+Reflect\s+Backup\s+Definition\s+File:\s*\|?\s*(?P<path>[^\n|]+?\.xml)\b", re.IGNORECASE)
_SCRIPT_LINE = re.compile(r"^[ \t|]*\[(?P<level>OK|ERROR|INFO)\][ \t]*(?P<msg>.*?)[ \t|]*$", re.MULTILINE)
_SCRIPT_EXIT = re.compile(r"Script\s+finished\s+with\s+exit\s+code\s+(?P<code>-?\d+)\.", re.IGNORECASE)
_SCRIPT_IMAGE = re.compile(r"Created\s+image\s+(?P<image>\S+)\s*:\s*(?P<size>[\d.,]+\s*GB)", re.IGNORECASE)
_SCRIPT_ELAPSED = re.compile(r"Macrium\s+Backup\s+routine\s+completed\s+in\s+(?P<elapsed>[^\n|]+?)\s*$",
                             re.IGNORECASE | re.MULTILINE)


NEEDLES = ("macrium",)  # the product's name, in the subject or the body


def parse(message: MailMessage) -> BackupReport | None:
    """The Macrium Reflect backup notification in ``message``, or None when it is not one."""
    if "macrium" not in message.subject.lower() and "macrium" not in message.text[:20_000].lower():
        return None  # cheap rejection: every shape recognised here names the product somewhere
    return _parse(message)


@guarded
def _parse(message: MailMessage) -> BackupReport | None:
    if is_reply(message.subject) or is_reply_behind_tags(message.subject):
        return None  # a person answering a report quotes its subject and verdict
    text = forwarded_text(message)
    script_definition = _SCRIPT_DEFINITION.search(text)
    if script_definition and _SCRIPT_BANNER.search(text):
        return _from_script(text, script_definition.group("path").strip())
    subject = report_subject(message, text, _SUBJECT)
    if subject is None:
        return _from_custom_subject(message, text)
    return _from_notification(subject, text)


def _from_notification(subject: re.Match[str], text: str) -> BackupReport:
    """Reflect's own notification, recognised by its subject; the body can only make it worse."""
    said = _status_of(subject.group("verdict"))
    return _report(said, text, host=subject.group("host"), definition=subject.group("definition"),
                   details={"operation": _operation(subject.group("operation")),
                            "verdict": " ".join(subject.group("verdict").split())})


def _from_custom_subject(message: MailMessage, text: str) -> BackupReport | None:
    """A definition whose subject the operator rewrote: only the default body's verdict line is trusted.

    The product must still be named (in the subject or sender) and the mail must not be one of
    Macrium's own non-report mails: a verdict emoticon alone is not a signature.
    """
    clean = GATEWAY_TAGS.sub("", message.clean_subject)
    if _NOT_NOTIFICATIONS.search(clean) or is_bulk(message):
        return None
    if "macrium" not in f"{clean} {message.sender} {message.sender_name}".lower():
        return None
    verdicts = _body_verdicts(text)
    if not verdicts:
        return None
    return _report(worst(verdicts), text, host=None, definition=None, details={"subject": clean[:200]})


def _report(said: Status, text: str, host: str | None, definition: str | None,
            details: dict[str, object]) -> BackupReport:
    fields = read_fields(text[:20_000].splitlines(), _FIELD_LABELS, only_known=True)
    host = host or _first(fields, _HOST_LABELS)
    definition = _definition_name(definition or _first(fields, _DEFINITION_LABELS))
    aborted = [m.group("line").strip() for m in _ABORTED.finditer(text[:50_000])]
    statuses: list[Status] = [said, *_body_verdicts(text)]
    if aborted:
        statuses.append("failure")  # "Backup aborted!": the engine stopped, whatever the subject says
    status = worst(statuses)
    report = BackupReport(software=SOFTWARE, job=definition or host, status=status, host=host)
    if status != "success":
        report.error = "\n".join(dict.fromkeys(aborted))[:2000] or None
        if report.error is None:
            details["note"] = "the notification states no cause (see the Reflect log on the computer)"
    if definition:
        details["definition"] = definition
    report.details = details
    return report


def _from_script(text: str, definition_path: str) -> BackupReport:
    """DailyBackup.ps1's HTML table: its [OK]/[ERROR] lines, else reflect.exe's exit code."""
    lines = [(m.group("level").upper(), m.group("msg").strip()) for m in _SCRIPT_LINE.finditer(text)]
    errors = [f"[ERROR] {msg}" for level, msg in lines if level == "ERROR"]
    succeeded = any(level == "OK" and msg.lower().startswith("backup succeeded") for level, msg in lines)
    exit_match = _SCRIPT_EXIT.search(text)
    exit_code = int(exit_match.group("code")) if exit_match else None
    details: dict[str, object] = {"source": "DailyBackup.ps1", "definition_file": definition_path}
    status: Status
    if errors or (exit_code not in (None, 0)):
        status = "failure"  # exit code 1: backup failed, 2: XML invalid; or the script quit before the backup
    elif succeeded or exit_code == 0:
        status = "success"
    else:
        status = "warning"
        details["note"] = "the script's mail states no outcome (cut short?)"
    report = BackupReport(software=SOFTWARE, job=_definition_name(definition_path), status=status)
    if exit_code is not None:
        details["exit_code"] = exit_code
    elapsed = _SCRIPT_ELAPSED.search(text)
    if elapsed:
        details["duration"] = elapsed.group("elapsed")
    image = _SCRIPT_IMAGE.search(text)
    if image and status == "success":  # after a failure the script names the newest file: an older image
        details["image"] = image.group("image")
        report.size_bytes = parse_size(image.group("size"))
    if status == "failure":
        report.error = "\n".join(errors)[:2000] or (f"reflect.exe exit code {exit_code}" if exit_code else None)
    report.details = details
    return report


def _body_verdicts(text: str) -> list[Status]:
    """The statuses the default body's verdict lines state ("Success :)", "Failed :(", "Warning :|")."""
    found: list[Status] = []
    for match in _BODY_VERDICT.finditer(text[:50_000]):
        face = match.group("face")
        if face:
            found.append({":)": "success", ":(": "failure", ":|": "warning"}[face])
        else:
            found.append(_status_of(match.group("heading")))
    return found


def _status_of(verdict: str) -> Status:
    """The status a subject's verdict words mean; an aborted or cancelled backup is a failure."""
    words = " ".join(verdict.lower().split())
    if re.search(r"fail|abort|cancel|error", words):
        return "failure"
    if "warning" in words:
        return "warning"
    return "success"


def _operation(word: str) -> str:
    lowered = " ".join(word.lower().split())
    if lowered == "clone":
        return "clone"
    if "file and folder" in lowered:
        return "file and folder backup"
    return "image backup" if "image" in lowered else "backup"


def _definition_name(value: str | None) -> str | None:
    """A definition as Macrium names it: the .xml file's name without folder and extension, quotes removed."""
    if not value:
        return None
    value = value.strip().strip("'\"").strip()
    if re.search(r"[\\/]|\.xml$", value, re.IGNORECASE):
        value = PureWindowsPath(value).name
        value = re.sub(r"\.xml$", "", value, flags=re.IGNORECASE)
    return value or None


def _first(fields: dict[str, str], labels: tuple[str, ...]) -> str | None:
    for label in labels:
        value = (fields.get(label) or "").strip().strip("'\"").strip()
        if value:
            return value.split()[0] if label in _HOST_LABELS else value  # a computer name has no spaces
    return None
