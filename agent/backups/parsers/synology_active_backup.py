"""Synology Active Backup for Business (ABB) notification e-mails.

ABB reports through DSM notifications, one per task run, in the DSM language:
"Backup task [PC-Uffici] of device [PC-RAGIONERIA] has completed", "Backup task
for SRV-FILE failed", "partially completed"; Italian "L'attività di backup
[PC-Uffici] del dispositivo [PC-RAGIONERIA] è stata completata" / "non è
riuscita" / "è stata parzialmente completata". Bodies may add "Task name",
"Device", "Start time", "End time", "Transferred" fields and, for hypervisor
tasks, a table of virtual machines with their status.

``job`` is the task name, ``host`` the device backed up (PC, physical server,
VM; the NAS goes to ``details["nas"]``). The mail must say "Active Backup", so
Hyper Backup and other DSM notifications are left to their parsers. Active
Backup for Microsoft 365 / Google Workspace mails are recognised too and named
as such.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import error_text, parse_size, status_in
from custode.agent.backups.parsers.synology_hyper_backup import (
    HOST,
    NAME,
    REPLY,
    SCAN,
    TOP,
    clean_name,
    dsm_structure,
    fill_times,
    find_sentence,
    get,
    low_top,
    nas_host,
    outcome_status,
    read_fields,
    sentence_context,
    sentence_name,
)
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Synology Active Backup for Business"
PRIORITY = 50

_DEVICE_WORD = (r"(?:(?:the\s+)?(?:device|pc|computer|physical\s+server|file\s+server|server|virtual\s+machine|vm|"
                r"workstation|host)\s+)?")
_DEVICE_WORD_IT = (r"(?:(?:il\s+|la\s+)?(?:dispositivo|computer|pc|server\s+fisico|file\s+server|server|"
                   r"macchina\s+virtuale|vm|host)\s+)?")
_DEVICE = r"(?:" + NAME.format("d") + r"|(?P<du>" + HOST + r"))"
_OUTCOME = (r"(?P<outcome>partially\s+completed|completed\s+with\s+warnings?|completed\s+successfully|completed|"
            r"complete|succeeded|finished(?:\s+with\s+warnings?)?|failed|been\s+cancell?ed|cancell?ed|"
            r"been\s+partially\s+completed|been\s+completed|been\s+interrupted|interrupted|not\s+completed|"
            r"did\s+not\s+complete)")
_VERB = r"(?:has\s+|have\s+|was\s+|is\s+now\s+|is\s+)?"
_OUTCOME_IT = (r"(?P<outcome>(?:(?:è|e')\s+stat[ao]\s+)?parzialmente\s+completat[ao]|"
               r"(?:(?:è|e')\s+stat[ao]\s+)?completat[ao](?:\s+con\s+(?:successo|avvisi|errori))?|"
               r"non\s+(?:(?:è|e')\s+)?riuscit[ao]|non\s+(?:(?:è|e')\s+stat[ao]\s+)?completat[ao]|"
               r"(?:(?:è|e')\s+)?riuscit[ao]|(?:(?:è|e')\s+)?fallit[ao]|(?:(?:è|e')\s+stat[ao]\s+)?annullat[ao]|"
               r"(?:(?:è|e')\s+stat[ao]\s+)?interrott[ao])")
_TASK = r"(?P<kind>backup\s+task)"
_TASK_IT = r"(?P<kind>(?:l['’])?attivit[àa]\s+di\s+backup)"
_SENTENCES = (
    # Backup task [T] of/for/on device [D] has completed
    re.compile(_TASK + r"\s+" + NAME.format("n") + r"(?:\s+(?P<prep>of|for|on|from)\s+" + _DEVICE_WORD + _DEVICE
               + r")?\s+" + _VERB + _OUTCOME + r"\b", re.IGNORECASE),
    # Backup task for/of device [D] failed (no task name)
    re.compile(_TASK + r"\s+(?P<prep>of|for|on)\s+" + _DEVICE_WORD + _DEVICE + r"\s+" + _VERB + _OUTCOME + r"\b",
               re.IGNORECASE),
    # Backup task T (on|of|for D) has completed, unquoted
    re.compile(_TASK + r"\s+(?!(?:of|for|on)\s)(?P<nu>[^\n\[\]\"]{1,80}?)(?:\s+(?P<prep>of|for|on|from)\s+"
               + _DEVICE_WORD + _DEVICE + r")?\s+" + _VERB + _OUTCOME + r"\b", re.IGNORECASE),
    # The backup of device D has failed
    re.compile(r"(?P<kind>backup)\s+(?P<prep>of)\s+" + _DEVICE_WORD + _DEVICE + r"\s+" + _VERB + _OUTCOME + r"\b",
               re.IGNORECASE),
    # L'attività di backup [T] del dispositivo [D] è stata completata
    re.compile(_TASK_IT + r"\s+" + NAME.format("n") + r"(?:\s+(?P<prep>del|della|dello|per\s+il|per\s+la|per|sul|"
               r"su|di)\s+" + _DEVICE_WORD_IT + _DEVICE + r")?\s+" + _OUTCOME_IT, re.IGNORECASE),
    re.compile(_TASK_IT + r"\s+(?P<prep>del|della|dello|per\s+il|per\s+la|per|sul|su|di)\s+" + _DEVICE_WORD_IT
               + _DEVICE + r"\s+" + _OUTCOME_IT, re.IGNORECASE),
    re.compile(_TASK_IT + r"\s+(?!(?:del|della|dello|per|sul|su|di|dei)\s)(?P<nu>[^\n\[\]\"]{1,80}?)"
               r"(?:\s+(?P<prep>del|della|dello|per\s+il|per\s+la|per|sul|su|di)\s+" + _DEVICE_WORD_IT + _DEVICE
               + r")?\s+" + _OUTCOME_IT, re.IGNORECASE),
    re.compile(r"(?P<kind>(?:il\s+)?backup)\s+(?P<prep>del|della|dello)\s+" + _DEVICE_WORD_IT + _DEVICE + r"\s+"
               + _OUTCOME_IT, re.IGNORECASE),
)
_KEYS = ("backup task", "attività di backup", "attivita di backup", "backup of", "backup del", "il backup")
_PRODUCT = re.compile(r"active\s*backup\s+for\s+(?P<what>business|microsoft\s+365|office\s+365|google\s+workspace|"
                      r"g\s+suite)", re.IGNORECASE)
_STATUS_LABELS = ("status", "result", "backup result", "stato", "risultato", "esito", "stato del backup")
_ITEM_NAME = re.compile(r"^(?:device|device name|vm|virtual machine|vm name|computer|server|name|nome|dispositivo|"
                        r"nome dispositivo|macchina virtuale|nome vm|workload)$", re.IGNORECASE)
_ITEM_STATUS = re.compile(r"^(?:status|result|stato|risultato|esito)$", re.IGNORECASE)


NEEDLES = ("active backup",)


def parse(message: MailMessage) -> BackupReport | None:
    subject = message.clean_subject
    if REPLY.match(message.subject):
        return None
    head = message.text[:SCAN]
    if "active backup" not in subject.lower() and "active backup" not in low_top(message):
        return None
    product = _PRODUCT.search(subject) or _PRODUCT.search(head, 0, TOP)
    if product is None:
        return None
    if message.header("list-unsubscribe") or message.header("list-id"):
        return None
    sentence, where = find_sentence(subject, head, _SENTENCES, _KEYS)
    lines = head.splitlines()
    fields = read_fields(lines)
    status: Status | None = None
    if sentence is not None:
        status = outcome_status(sentence.group("outcome"))
    labelled_status = next((fields[label] for label in _STATUS_LABELS if label in fields), None)
    if status is None and labelled_status and (get(fields, "task") or get(fields, "device")):
        status = status_in(labelled_status)
    if status is None or not dsm_structure(message, subject, head, fields, where or "subject"):
        return None
    job = clean_name(get(fields, "task")) or (clean_name(sentence_name(sentence)) if sentence else None)
    if job is None and sentence is not None and where == "text":
        other = find_sentence(subject, "", _SENTENCES, _KEYS)[0]
        job = clean_name(sentence_name(other)) if other else None
    nas = nas_host(message, subject, head, fields, None)
    device = clean_name(get(fields, "device")) or _sentence_device(sentence, nas)
    if device is None and where == "text":
        other = find_sentence(subject, "", _SENTENCES, _KEYS)[0]
        device = _sentence_device(other, nas)
    items = _items(message)
    if job is None and device is None and not items:
        return None
    if items:
        status = worst([status, *(item.status for item in items)]) if sentence is None else status
    report = BackupReport(software=_software(product), job=job or device, status=status,
                          host=device if len(items) <= 1 else None, items=items)
    fill_times(report, fields)
    report.transferred_bytes = parse_size(get(fields, "transferred"))
    report.size_bytes = parse_size(get(fields, "size"))
    item_errors = "\n".join(f"{item.name}: {item.error}" for item in items if item.error)
    if status != "success":
        report.error = get(fields, "error") or item_errors[:2000] \
            or (sentence_context(head if where == "text" else subject, sentence) if sentence else None) \
            or error_text(head) or (sentence.group(0).strip() if sentence else None)
    if nas and nas != device:
        report.details["nas"] = nas
    destination = get(fields, "destination")
    if destination:
        report.details["destination"] = destination[:200]
    return report


def _sentence_device(sentence: re.Match[str] | None, nas: str | None) -> str | None:
    if sentence is None:
        return None
    groups = sentence.groupdict()
    device = next((groups[key] for key in ("db", "dq", "dc", "dg", "ds", "du") if groups.get(key)), None)
    if not device:
        return None
    if (groups.get("prep") or "").lower() in ("on", "su", "sul") and nas and device.lower() == nas.lower():
        return None  # "on NAS01" names the NAS, not the device
    return clean_name(device)


def _software(product: re.Match[str] | None) -> str:
    if product is None:
        return SOFTWARE
    what = re.sub(r"\s+", " ", product.group("what")).lower()
    if "business" in what:
        return SOFTWARE
    if "google" in what or "suite" in what:
        return "Synology Active Backup for Google Workspace"
    return "Synology Active Backup for Microsoft 365"


def _items(message: MailMessage) -> list[ItemResult]:
    """Per-device rows of a hypervisor/multi-device task: a table with a name and a status column."""
    items: list[ItemResult] = []
    for table in message.tables[:10]:
        if len(table) < 2:
            continue
        header = [cell.strip().rstrip(":") for cell in table[0]]
        name_col = next((i for i, cell in enumerate(header) if _ITEM_NAME.match(cell)), None)
        status_col = next((i for i, cell in enumerate(header) if _ITEM_STATUS.match(cell)), None)
        if name_col is None or status_col is None:
            continue
        for row in table[1:200]:
            if len(row) <= max(name_col, status_col) or not row[name_col].strip():
                continue
            status = status_in(row[status_col])
            if status is None:
                continue
            error = next((cell for i, cell in enumerate(row) if i not in (name_col, status_col)
                          and status != "success" and len(cell) > 12), None)
            items.append(ItemResult(name=row[name_col].strip(), status=status, error=error))
        if items:
            break
    return items
