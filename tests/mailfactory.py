"""Build RFC 5322 messages for tests (the real email package, so they are real mail)."""

from __future__ import annotations

import itertools
import mailbox
import os
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

_counter = itertools.count(1)


def make_mail(subject: str, body: str = "", *, sender: str = "backup@comune.example.it",
              date: datetime | None = None, message_id: str | None = None, html: str | None = None,
              to: str = "monitor@provider.example.it", headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if date is not None:
        message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id or make_msgid(f"t{next(_counter)}", "test.example")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body or subject)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


def one_part_mail(subject: str, body: str, *, sender: str, to: str, date: str, html: bool = False,
                  headers: str = "") -> bytes:
    """One 8-bit text/plain or text/html part, written by hand the way a small generator or script writes it
    (not normalised by the email package): ``headers`` are extra raw header lines, each ending in a newline."""
    kind = "html" if html else "plain"
    return (f"From: {sender}\nTo: {to}\nSubject: {subject}\nDate: {date}\n{headers}MIME-Version: 1.0\n"
            f"Content-Type: text/{kind}; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}\n").encode("utf-8")


def script_report(job: str, outcome: str, when: datetime, **kwargs) -> bytes:
    """A report in the shape of the test rule in ``SCRIPT_RULE`` (a site's own backup script)."""
    return make_mail(f"Backup {job}: {outcome}", f"Job {job} finished: {outcome}\n", date=when,
                     sender="nas-script@comune.example.it", **kwargs)


def deliver(box: mailbox.Maildir, raw: bytes, arrived: datetime) -> str:
    """Put ``raw`` in a Maildir as the MDA would have ``arrived``: the file's mtime is the arrival time.

    Custode takes a Maildir file's mtime as the server's arrival time (and
    trusts it over a Date header days apart). A file written by the test
    carries the kernel's "now"; a report of last night must arrive last night,
    on whatever clock the test runs.
    """
    key = box.add(raw)
    path = os.path.join(box._path, box._lookup(key))  # mailbox has no public path of a message
    os.utime(path, (arrived.timestamp(), arrived.timestamp()))
    return key


SCRIPT_RULE = {"name": "nas-script", "software": "NAS script", "sender": "^nas-script@",
               "subject": r"^Backup \w+:", "job": r"^Backup (?P<job>\w+):"}
