"""Veeam Backup for Microsoft 365 (formerly Veeam Backup for Microsoft Office 365) job notifications.

The product mails a report after each backup or backup copy job session when
global email notifications are on (``Set-VBOEmailSettings``: notify on success,
warning, failure; optional detailed report attachment). The subject is the
admin's template around the job result and job name (``[Success] <job>``-like);
the HTML body follows Veeam's report style: the job and its result at the top,
the organization, start/end time, duration, transferred data and processing
rate, then one row per processed object (user, mailbox, site, team).

The exact body layout differs between versions and was not available as a
sample, so this parser is deliberately tolerant: it takes the job name from a
``... job: <name>`` header, a ``Job: <name>`` line or the subject; the status
from the header, the subject tag, a ``Status:`` line or the per-object rows; and
it requires the product's name in the mail (subject, body or footer) plus a
report shape, so that newsletters and people talking about the product are not
taken for reports.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import value_after
from custode.agent.backups.parsers.veeam_br import (
    is_reply,
    items_of,
    layout_details,
    read_layout,
    session_report,
    status_word,
    subject_parts,
)
from custode.agent.backups.report import BackupReport, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "Veeam Backup for Microsoft 365"
PRIORITY = 10  # Veeam's most specific product first: its mails also look like B&R's

# Only the full product name: abbreviations (VB365, VBO365) are also server and VM names that a
# Backup & Replication report lists.
_PRODUCT = re.compile(r"Veeam\s+Backup\s+for\s+(?:Microsoft\s+)?(?:Office\s+)?365", re.IGNORECASE)
_M365_WORDS = re.compile(r"\b(?:mailbox(?:es)?|onedrive|sharepoint|teams?|exchange online|archive mailbox|"
                         r"personal site|cassett[ae] postal[ei]|sito|siti)\b", re.IGNORECASE)


NEEDLES = ("365",)  # Microsoft 365, in the subject or the body


def parse(message: MailMessage) -> BackupReport | None:
    text = message.text
    if not ("365" in message.subject or "365" in text) or is_reply(message):
        return None
    subject = message.clean_subject
    product = _PRODUCT.search(subject) or _PRODUCT.search(text[:300000]) or _PRODUCT.search(message.sender_name)
    if product is None:
        return None
    layout = read_layout(message)
    job = layout.name or value_after(layout.body, "job", "job name", "nome job", "nome del job")
    # A stated result: the header's, the subject's [tag], a "Status:" line, the objects' or the counts.
    status = layout.status or subject_parts(subject)[0] \
        or status_word(value_after(layout.body, "status", "result", "job result", "stato", "esito"))
    if status is None and layout.items:
        status = worst([item.status for item in layout.items])
    if status is None:
        status = layout.count_status()
    if status is None:
        return None
    # A report shape: a job named in the body, plus Veeam's summary labels, per-object rows, or M365
    # objects with times. Newsletters have the product name and loose words, not this.
    shaped = layout.layout_labels >= 2 or len(layout.items) >= 1 \
        or (layout.layout_labels >= 1 and _M365_WORDS.search(layout.body) is not None)
    if not shaped or not (job or layout.items):
        return None

    if not job:
        job = subject_parts(subject)[1] or None
    if job:
        job = re.sub(r"^Veeam\s+Backup\s+for\s+(?:Microsoft\s+)?(?:Office\s+)?365\s*[-:]\s*", "", job,
                     flags=re.IGNORECASE).strip() or None
    details = layout_details(layout)
    organization = layout.pairs.get("organization") or value_after(layout.body, "organization", "organizzazione",
                                                                  "tenant")
    if organization:
        details["organization"] = organization[:200]
    if re.search(r"Office", product.group(0), re.IGNORECASE):  # the name before version 6
        details["product_name"] = re.sub(r"\s+", " ", product.group(0))

    return session_report(layout, message, SOFTWARE, job, status, layout.pairs.get("proxy"), details,
                          items_of(layout))
