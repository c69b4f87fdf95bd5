"""An IMAP(S) mailbox as a mail source, incremental by UID.

imap-tools handles login, TLS variants, folder names (modified UTF-7), STATUS
and MOVE (with the COPY/EXPUNGE fallback); the fetch itself is a raw
``UID FETCH`` of at most ``MAX_MESSAGE_BYTES`` per message (``BODY.PEEK[]<0.N>``)
so a 200 MB attachment costs 4 MiB, and PEEK leaves the \\Seen flag to people.

The cursor is (UIDVALIDITY, last UID) per folder. A poll first asks STATUS:
when UIDNEXT shows nothing new it ends there, which keeps an empty poll to
one round trip after login.
"""

from __future__ import annotations

import imaplib
import logging
import re
import socket
import ssl
from email.utils import parsedate_to_datetime
from typing import Callable, Iterator

from custode.agent.backups.config import ImapMailbox
from custode.agent.mail.message import MAX_MESSAGE_BYTES
from custode.agent.mail.sources import BATCH_SIZE, Batch, MailSourceError, RawMail
from custode.agent.secrets import SecretError

log = logging.getLogger(__name__)

_FETCH_HEAD = re.compile(rb"UID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


def ssl_context(config: ImapMailbox) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if not config.tls_verify:  # an explicit, per-mailbox choice in config
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ImapSource:
    def __init__(self, config: ImapMailbox, password: Callable[[], str]) -> None:
        self.config = config
        self.name = config.name
        self._password = password
        self._box = None

    # --- connection --------------------------------------------------------------

    def _where(self) -> str:
        return f"mailbox {self.name} ({self.config.host}:{self.config.effective_port})"

    def connect(self):
        from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted

        config = self.config
        try:
            password = self._password()
        except SecretError as exc:
            raise MailSourceError(f"{self._where()}: {exc}") from None
        try:
            if config.security == "tls":
                box = MailBox(config.host, config.effective_port, timeout=config.timeout,
                              ssl_context=ssl_context(config))
            elif config.security == "starttls":
                box = MailBoxStartTls(config.host, config.effective_port, timeout=config.timeout,
                                      ssl_context=ssl_context(config))
            else:
                box = MailBoxUnencrypted(config.host, config.effective_port, timeout=config.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise MailSourceError(f"{self._where()}: the server's TLS certificate is not trusted "
                                  f"({exc.verify_message}); install its CA and set ca_file, or set "
                                  "tls_verify: false for this mailbox only") from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailSourceError(f"{self._where()}: cannot connect: {_cause(exc)}; check host, port and "
                                  "security (tls on 993, starttls on 143)") from None
        try:
            box.login(config.username, password, initial_folder=None)
        except Exception as exc:
            try:
                box.logout()
            except Exception:  # noqa: BLE001 - a logout on a broken connection may fail in any way; the first error is the one reported
                pass
            if isinstance(exc, MailSourceError):
                raise
            raise MailSourceError(f"{self._where()}: login as {config.username} refused: {_cause(exc)}; "
                                  "check the user and the password's source "
                                  f"({config.password.describe()})") from None
        return box

    def close(self) -> None:
        if self._box is not None:
            try:
                self._box.logout()
            except Exception:  # noqa: BLE001 - a logout on a broken connection may fail in any way; nothing is left to do
                pass
            self._box = None

    # --- polling -------------------------------------------------------------------

    def batches(self, known_keys: Callable[[], set[str]],
                cursor: Callable[[str], tuple[int, int] | None]) -> Iterator[Batch]:
        box = self.connect()
        self._box = box
        try:
            for folder in self.config.folders:
                yield from self._folder_batches(box, folder, cursor(folder))
        except MailSourceError:
            raise
        except (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort) as exc:
            raise MailSourceError(f"{self._where()}: connection lost: {_cause(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - imap-tools raises its own error types for server refusals
            raise MailSourceError(f"{self._where()}: the server refused a command: {_cause(exc)}") from None
        finally:
            self.close()

    def _folder_batches(self, box, folder: str, saved: tuple[int, int] | None) -> Iterator[Batch]:
        try:
            status = box.folder.status(folder, ["UIDVALIDITY", "UIDNEXT", "MESSAGES"])
        except Exception as exc:  # noqa: BLE001 - imap-tools raises its own error types; any of them means the folder cannot be read
            raise MailSourceError(f"{self._where()}: folder {folder!r} cannot be read ({_cause(exc)}); "
                                  "check backups.mailboxes[].folders") from None
        uidvalidity = int(status["UIDVALIDITY"])
        last_uid = 0
        if saved is not None:
            if saved[0] == uidvalidity:
                last_uid = saved[1]
            else:
                log.warning("IMAP UIDVALIDITY changed: rescanning the folder (already processed mail is "
                            "recognised and skipped)", extra={"mailbox": self.name, "folder": folder,
                                                              "old": saved[0], "new": uidvalidity})
        uidnext = int(status.get("UIDNEXT") or 0)
        if saved is not None and saved[0] == uidvalidity and uidnext and uidnext - 1 <= last_uid:
            return  # nothing new: one STATUS round trip
        box.folder.set(folder, readonly=self.config.move_to is None)
        typ, data = box.client.uid("SEARCH", None, f"UID {last_uid + 1}:*")
        if typ != "OK":
            raise MailSourceError(f"{self._where()}: UID SEARCH in {folder!r} failed: {data!r}")
        uids = sorted(u for u in (int(x) for x in (data[0] or b"").split()) if u > last_uid)
        if not uids:
            yield Batch([], cursor=(folder, uidvalidity, last_uid))
            return
        for start in range(0, len(uids), BATCH_SIZE):
            chunk = uids[start:start + BATCH_SIZE]
            mails = self._fetch(box, folder, chunk)
            yield Batch(mails, cursor=(folder, uidvalidity, chunk[-1]),
                        after_store=lambda stored, f=folder: self._move(box, f, stored))

    def _fetch(self, box, folder: str, uids: list[int]) -> list[RawMail]:
        typ, data = box.client.uid("FETCH", ",".join(map(str, uids)),
                                   f"(UID INTERNALDATE RFC822.SIZE BODY.PEEK[]<0.{MAX_MESSAGE_BYTES}>)")
        if typ != "OK":
            raise MailSourceError(f"{self._where()}: UID FETCH in {folder!r} failed: {data!r}")
        mails = []
        for item in data:
            if not isinstance(item, tuple) or len(item) < 2:
                continue
            head, body = item[0], item[1]
            uid = _FETCH_HEAD.search(head)
            if not uid:
                continue
            size = _SIZE.search(head)
            received = None
            date = _INTERNALDATE.search(head)
            if date:
                try:
                    received = parsedate_to_datetime(_imap_date(date.group(1).decode())).timestamp()
                except (TypeError, ValueError):
                    received = None
            truncated = bool(size and int(size.group(1)) > len(body))
            mails.append(RawMail(folder, body, uid=int(uid.group(1)), truncated=truncated, received_at=received))
        return mails

    def _move(self, box, folder: str, uids: list[int]) -> None:
        """Move stored reports to ``move_to``; a failure only logs (the cursor is already past them)."""
        target = self.config.move_to
        if not target or not uids:
            return
        try:
            if not box.folder.exists(target):
                box.folder.create(target)
            box.move([str(u) for u in uids], target)
        except Exception as exc:  # noqa: BLE001 - the move is a courtesy: whatever fails, the reports are kept and not read twice
            log.error("cannot move processed reports; they stay where they are and are not read twice",
                      extra={"mailbox": self.name, "folder": folder, "target": target, "error": _cause(exc)})


def _imap_date(value: str) -> str:
    # INTERNALDATE is "17-Jul-1996 02:44:25 -0700"; email.utils wants RFC 2822 ordering.
    match = re.match(r"\s*(\d{1,2})-(\w{3})-(\d{4}) (\d{2}:\d{2}:\d{2}) ([+-]\d{4})", value)
    if not match:
        raise ValueError(value)
    day, month, year, clock, zone = match.groups()
    return f"{day} {month} {year} {clock} {zone}"


def _cause(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running and the port right?)"
    text = str(exc) or exc.__class__.__name__
    return text[:300]
