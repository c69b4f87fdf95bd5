"""A synthetic mailbox mix for the mail benchmarks: every fixture report, plus ordinary mail.

Each generated message gets a unique Message-ID and Date so that de-duplication
does not shortcut the work; the mix is roughly what a provider's report mailbox
holds (mostly reports of every product, some newsletters, replies and bounces).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "mail"

_ORDINARY = [
    (b"From: news@vendor.example.com\r\nTo: backup@provider.example.it\r\nSubject: Webinar: why backups fail\r\n"
     b"List-Unsubscribe: <mailto:unsubscribe@vendor.example.com>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
     b"<html><body><h1>Backup failed?</h1><p>Join our webinar on ransomware and backup failures.</p>"
     b"<table><tr><td>Tips</td><td>Success stories</td></tr></table></body></html>\r\n"),
    (b"From: Mario Rossi <m.rossi@comune.example.it>\r\nTo: helpdesk@provider.example.it\r\n"
     b"Subject: R: backup del server anagrafe\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
     b"Buongiorno, il backup di ieri sera non risulta completato? Grazie.\r\n"),
    (b"From: collega@provider.example.it\r\nTo: backup@provider.example.it\r\nSubject: Risposta automatica: "
     b"[Failed] Backup Crema\r\nAuto-Submitted: auto-replied\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
     b"Sono fuori sede fino a luned\xc3\xac.\r\n"),
    (b"From: MAILER-DAEMON@mx.provider.example.it\r\nTo: backup@provider.example.it\r\nSubject: Undelivered Mail "
     b"Returned to Sender\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.\r\n"),
]


def base_messages() -> list[bytes]:
    """Every fixture .eml (the products' reports and look-alikes) plus the ordinary mail above."""
    fixtures = [path.read_bytes() for path in sorted(FIXTURES.glob("*/*.eml"))]
    return fixtures + _ORDINARY * max(1, len(fixtures) // 10)


_MESSAGE_ID = re.compile(rb"^Message-ID:[^\r\n]*\r?\n", re.IGNORECASE | re.MULTILINE)


def corpus(count: int) -> list[bytes]:
    """``count`` distinct messages cycling through the base mix."""
    base = base_messages()
    out = []
    for index in range(count):
        raw = _MESSAGE_ID.sub(b"", base[index % len(base)], count=1)
        out.append(b"Message-ID: <bench-%d@custode.test>\r\n" % index + raw)
    return out
