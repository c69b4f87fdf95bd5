"""Acronis Cyber Protect / Cyber Protect Cloud / Cyber Backup / Acronis Backup notifications.

Two shapes are recognised:

* The Cyber Protect Cloud (and partner-branded) per-run notification, whose
  subject carries the facts: ``BACKUP FAILED (group: G)(backup account: A)
  (machine: M)(plan: P)``, ``BACKUP SUCCEEDED (group: G)(resource: R)(plan: P)``,
  ``BACKUP SUCCEEDED WITH WARNINGS (...)``; the HTML body repeats the headline
  ("Backup failed"), the device, the error message and "Plan name" / "Group" /
  "Account" label/value pairs. Partners can re-brand these mails (no "Acronis"
  anywhere, custom sender), so the subject structure alone is a signature.
  Italian consoles say "Backup non riuscito" / "Backup riuscito" / "Backup
  riuscito con avvisi" with "gruppo" / "computer" / "piano" keys.
* Older and on-premises mails (Acronis Backup 12.5, Cyber Protect 15/16, Cyber
  Backup, True Image) that state the product name, a "Backup failed"-style
  headline and "Plan"/"Device"/"Machine" fields in the body.

``job`` is the protection (backup) plan; ``host`` the machine/resource backed up.
The "DAILY STATUS REPORT" recap and other alerts (machine offline, quota) are
not per-run results and are left to other rules.
"""

from __future__ import annotations

import re
from datetime import datetime

from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import (
    error_text,
    first_field,
    needle_window,
    parse_datetime,
    parse_size,
    read_fields,
    status_in,
)
from custode.agent.backups.parsers._common import low_top as _low_top
from custode.agent.backups.report import BackupReport, Status
from custode.agent.mail.message import MailMessage

SOFTWARE = "Acronis Cyber Protect"
PRIORITY = 40

_SCAN = 30_000  # the facts of a notification are at the top of its body

# BACKUP FAILED (group: X)(machine: M)(plan: P) — one level of nested brackets in values
_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]{1,40}\]\s*)?BACKUP\s+(?P<status>[^()]{2,60}?)\s*(?P<parts>\(\s*[^():]{1,40}:.*)$",
    re.IGNORECASE)
_PART = re.compile(r"\(\s*(?P<key>[^():]{1,40}?)\s*:\s*(?P<value>(?:[^()]|\([^()]*\))*?)\s*\)")
_KEYS = {
    "group": "group", "gruppo": "group", "unit": "group", "unità": "group",
    "resource": "resource", "risorsa": "resource", "workload": "resource", "carico di lavoro": "resource",
    "machine": "machine", "computer": "machine", "macchina": "machine", "device": "machine",
    "dispositivo": "machine", "server": "machine",
    "plan": "plan", "piano": "plan", "protection plan": "plan", "piano di protezione": "plan",
    "backup plan": "plan", "piano di backup": "plan",
    "backup account": "account", "account di backup": "account", "account": "account",
}

_RECAP_SUBJECT = re.compile(r"^\s*(?:daily status report|daily recap|report di stato giornaliero|riepilogo giornaliero|"
                            r"rapporto (?:di stato )?giornaliero)", re.IGNORECASE)

_PRODUCT = re.compile(
    r"\b(?P<name>Acronis\s+Cyber\s+Protect(?:\s+Cloud|\s+Home\s+Office)?(?:\s+1[56])?"
    r"|Acronis\s+Cyber\s+Backup(?:\s+Cloud)?|Acronis\s+Backup(?:\s+Cloud|\s+12\.5|\s+&\s+Recovery)?"
    r"|Acronis\s+True\s+Image|Acronis\s+Cyber\s+Cloud|Cyber\s+Protect\s+Home\s+Office)\b",
    re.IGNORECASE)

# A headline line of the body (or the subject) that states the outcome of a backup run.
_HEADLINE = re.compile(
    r"^\s*(?:the\s+)?backup\s+(?P<status>failed|succeeded(?:\s+with\s+warnings)?|completed(?:\s+with\s+warnings)?|"
    r"completed\s+successfully|finished(?:\s+with\s+warnings)?|non\s+riuscito|riuscito(?:\s+con\s+avvisi)?|"
    r"completato(?:\s+con\s+(?:avvisi|successo|errori))?|fallito|non\s+completato)\b",
    re.IGNORECASE | re.MULTILINE)

_LABELS = {
    "plan": ("plan name", "plan", "backup plan", "protection plan", "nome piano", "nome del piano", "piano",
             "piano di protezione", "piano di backup", "task", "task name", "backup task"),
    "machine": ("device", "device name", "machine", "machine name", "computer", "computer name", "workload",
                "resource", "dispositivo", "nome dispositivo", "macchina", "nome macchina", "carico di lavoro",
                "risorsa", "host", "hostname"),
    "group": ("group", "gruppo", "unit", "unità"),
    "account": ("account", "backup account", "account di backup"),
    "activity": ("activity", "attività"),
    "started": ("start time", "started", "started at", "start", "inizio", "ora di inizio", "avviato", "avviato alle",
                "data di inizio"),
    "finished": ("end time", "finished", "finished at", "completed", "completed at", "end", "fine", "ora di fine",
                 "completato alle", "terminato", "data di fine"),
    "size": ("backup size", "size", "data size", "dimensione", "dimensione backup", "dimensione del backup"),
    "transferred": ("transferred", "data transferred", "transferred data", "dati trasferiti", "trasferiti"),
    "error": ("error message", "error", "errore", "messaggio di errore", "reason", "motivo", "causa",
              "details", "dettagli", "warning", "avviso", "avvisi"),
    "status": ("status", "result", "stato", "risultato", "esito"),
}
_ALL_LABELS = {label for labels in _LABELS.values() for label in labels}
_NOISE = re.compile(r"^(?:show details|mostra dettagli|view in web console|visualizza nella console web|"
                    r"manage data protection|gestisci la protezione dei dati|view details|\.)$", re.IGNORECASE)
_WHEN = re.compile(r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}[/-]\d{1,2}[/-]\d{1,2}|"
                   r"[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}\s+[A-Za-z]{3,9}\.?\s+\d{4})"
                   r"[ ,T]+(?:alle\s+|at\s+)?\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s*[AP]M\b)?", re.IGNORECASE)


NEEDLES = ("acronis", "cyber protect home office", "backup")  # the name, or the structured "BACKUP ..." subject


def parse(message: MailMessage) -> BackupReport | None:
    subject = message.clean_subject
    window = needle_window(message)
    if not ("acronis" in window or "cyber protect home office" in window
            or ("(" in subject and ":" in subject and "backup" in subject.lower())):
        return None  # neither the product's name nor its structured subject: cheaply not Acronis
    if _REPLY.match(message.subject) or _RECAP_SUBJECT.match(subject):
        return None
    structured = _SUBJECT.match(subject)
    parts: dict[str, str] = {}
    status: Status | None = None
    if structured:
        status = _status_words(structured.group("status"))
        for part in _PART.finditer(structured.group("parts")):
            key = _KEYS.get(re.sub(r"\s+", " ", part.group("key").strip().lower()))
            if key and part.group("value").strip():
                parts.setdefault(key, part.group("value").strip())
        if status is None or not (parts.keys() & {"plan", "machine", "resource"}):
            structured = None
    head = message.text[:_SCAN]
    if not structured:
        if not _cheap_acronis(message, subject, _low_top(message)):
            return None
        if message.header("list-unsubscribe") or message.header("list-id"):
            return None  # a newsletter, even Acronis's own
    lines = head.splitlines()
    fields = _fields(lines)
    headline = _HEADLINE.search(subject) or _HEADLINE.search(head)
    if status is None and headline is not None:
        status = _status_words(headline.group("status"))
    if status is None and _get(fields, "status") and _PRODUCT.search(subject + "\n" + head[:2000]):
        status = _status_words(_get(fields, "status") or "")
    if status is None:
        return None
    plan = parts.get("plan") or _get(fields, "plan")
    machine = parts.get("resource") or parts.get("machine") or _get(fields, "machine")
    if not structured:
        plan = plan or _quoted_after(subject + "\n" + head, r"(?:plan|piano|task|attività|backup)")
        if not plan and not machine:
            return None  # a headline without the run's facts is prose, not a notification
    plan = _clean_name(plan)
    machine = _clean_name(machine)
    if machine is None and headline is not None:
        machine = _device_after_headline(lines)

    report = BackupReport(software=_software(message, head, structured is not None), job=plan or machine,
                          status=status, host=machine)
    report.started_at = _when(_get(fields, "started"))
    report.finished_at = _when(_get(fields, "finished"))
    if report.finished_at is None and report.started_at is None:
        report.finished_at = _headline_date(lines)
    report.size_bytes = parse_size(_get(fields, "size"))
    report.transferred_bytes = parse_size(_get(fields, "transferred"))
    if status != "success":
        report.error = _get(fields, "error") or _error_after_headline(lines, machine, plan) \
            or error_text(head)
    for key in ("group", "account"):
        value = parts.get(key) or _get(fields, key)
        if value:
            report.details[key] = value[:200]
    activity = _get(fields, "activity")
    if activity:
        report.details["activity"] = activity[:200]
    if "machine" in parts and "resource" in parts:
        report.details["machine"] = parts["machine"]
    return report


def _cheap_acronis(message: MailMessage, subject: str, low_top: str) -> bool:
    if "acronis" in message.sender or "acronis" in message.sender_name.lower() or "acronis" in subject.lower():
        return True
    return ("acronis" in low_top or "cyber protect home office" in low_top) and \
        (_PRODUCT.search(low_top) is not None or "acronis" in message.original_sender)


def _status_words(text: str) -> Status | None:
    text = text.strip().lower()
    if re.search(r"non\s+riuscit|fail|fallit|non\s+completat|error|errori", text):
        return "failure"
    if re.search(r"warning|avvis|avvertiment", text):
        return "warning"
    return status_in(text)


def _software(message: MailMessage, head: str, structured: bool) -> str:
    match = _PRODUCT.search(message.clean_subject) or _PRODUCT.search(head)
    if match:
        name = re.sub(r"\s+", " ", match.group("name")).strip()
        if not name.lower().startswith("acronis"):
            name = "Acronis " + name
        return " ".join(word[:1].upper() + word[1:] for word in name.split())
    if structured or "cloud.acronis.com" in message.sender or "cloud.acronis.com" in message.original_sender:
        return "Acronis Cyber Protect Cloud"
    return SOFTWARE


def _fields(lines: list[str]) -> dict[str, str]:
    return read_fields(lines, _ALL_LABELS)


def _get(fields: dict[str, str], kind: str) -> str | None:
    return first_field(fields, _LABELS[kind])


def _clean_name(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().strip("'\"“”‘’«»").strip()
    value = re.sub(r"^(?:plan|piano|backup plan|protection plan|machine|device|dispositivo)\s*[:=]\s*", "", value,
                   flags=re.IGNORECASE)
    return value[:200] or None


def _quoted_after(text: str, keyword: str) -> str | None:
    match = re.search(r"\b" + keyword + r"\s*:?\s*(?:name\s*:?\s*)?"
                      r"[\"'“‘«](?P<name>[^\"'”’»\n]{1,120})[\"'”’»]", text, re.IGNORECASE)
    return match.group("name") if match else None


def _headline_index(lines: list[str]) -> int | None:
    for index, line in enumerate(lines[:80]):
        if _HEADLINE.match(line):
            return index
    return None


def _device_after_headline(lines: list[str]) -> str | None:
    """Cloud mails put the device alone on the line after "Backup failed"."""
    index = _headline_index(lines)
    if index is None or index + 1 >= len(lines):
        return None
    candidate = lines[index + 1].strip()
    if (candidate and len(candidate) <= 80 and " " not in candidate and not _WHEN.search(candidate)
            and candidate.rstrip(":").lower() not in _ALL_LABELS and ":" not in candidate):
        return candidate
    return None


def _error_after_headline(lines: list[str], machine: str | None, plan: str | None) -> str | None:
    index = _headline_index(lines)
    if index is None:
        return None
    found = []
    for line in lines[index + 1: index + 8]:
        stripped = line.strip(" |")
        label = re.split(r"[:|]", stripped, maxsplit=1)[0].strip().lower()
        if label in _ALL_LABELS:
            break
        if not stripped or stripped in (machine, plan) or _NOISE.match(stripped) or _WHEN.fullmatch(stripped):
            continue
        if _WHEN.search(stripped) and len(stripped) < 40:
            continue
        found.append(stripped)
    return "\n".join(found)[:2000] or None


def _headline_date(lines: list[str]) -> datetime | None:
    index = _headline_index(lines)
    if index is None:
        return None
    for line in lines[index: index + 4]:
        match = _WHEN.search(line)
        if match:
            when = _when(match.group(0))
            if when:
                return when
    return None


_when = parse_datetime  # numeric and month-name layouts, Italian and English
