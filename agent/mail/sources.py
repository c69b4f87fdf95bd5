"""Where mail comes from: the common shape of a source, and the local ones (Maildir, mbox, .eml).

A source yields batches; the poller stores each batch (and the cursor that
covers it) in one transaction before asking for the next, so a crash costs at
most a re-read of one batch, which de-duplication absorbs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

from custode.agent.mail.message import MAX_MESSAGE_BYTES

BATCH_SIZE = 200


class MailSourceError(Exception):
    """The source cannot be read now; the message names the mailbox and the cause."""


@dataclass
class RawMail:
    folder: str
    raw: bytes
    uid: int | None = None  # IMAP UID
    key: str | None = None  # Maildir/mbox identity, for sources without UIDs
    path: str | None = None  # a local file, for messages that name it
    truncated: bool = False
    received_at: float | None = None  # the server's arrival time, when it has one


@dataclass
class Batch:
    mails: list[RawMail]
    cursor: tuple[str, int, int] | None = None  # (folder, uidvalidity, last uid) once the batch is stored
    after_store: Callable[[list[int]], None] | None = None  # given the stored reports' UIDs (to move them)


class MailSource(Protocol):
    name: str

    def batches(self, known_keys: Callable[[], set[str]],
                cursor: Callable[[str], tuple[int, int] | None]) -> Iterator[Batch]: ...

    def close(self) -> None: ...


def read_capped(path: Path, limit: int = MAX_MESSAGE_BYTES) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a file, and whether it was longer (a huge attachment)."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    return data[:limit], len(data) > limit


def is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def maildir_files(path: Path) -> Iterator[tuple[str, Path]]:
    """(unique key, file) of every message in a Maildir's new/ and cur/, oldest first.

    The key is the file name before the ``:2,`` flags, so a message moving from
    new/ to cur/ (read by a person) keeps its identity.
    """
    entries = []
    for sub in ("new", "cur"):
        try:
            with os.scandir(path / sub) as scan:
                for entry in scan:
                    if entry.is_file() and not entry.name.startswith("."):
                        entries.append((entry.name.split(":", 1)[0], Path(entry.path)))
        except FileNotFoundError:
            continue
    entries.sort(key=lambda item: item[0])
    return iter(entries)


_FROM_LINE = re.compile(rb"^From ")


def mbox_messages(path: Path, limit: int = MAX_MESSAGE_BYTES) -> Iterator[tuple[int, bytes, bool]]:
    """(byte offset, message, truncated) of each message in an mbox file, reading it as a stream."""
    offset = 0
    start: int | None = None
    chunks: list[bytes] = []
    size = 0
    truncated = False
    previous_blank = True
    with open(path, "rb") as handle:
        for line in handle:
            if previous_blank and _FROM_LINE.match(line):
                if start is not None:
                    yield start, b"".join(chunks), truncated
                start, chunks, size, truncated = offset, [], 0, False
            elif start is not None:
                if size < limit:
                    if line.startswith(b">From ") or re.match(rb"^>+From ", line):
                        line = line[1:]  # mboxrd un-escaping
                    chunks.append(line)
                    size += len(line)
                else:
                    truncated = True
            previous_blank = line in (b"\n", b"\r\n")
            offset += len(line)
    if start is not None:
        yield start, b"".join(chunks), truncated


class MaildirSource:
    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path

    def batches(self, known_keys: Callable[[], set[str]],
                cursor: Callable[[str], tuple[int, int] | None]) -> Iterator[Batch]:
        if not is_maildir(self.path):
            raise MailSourceError(f"mailbox {self.name}: {self.path} is not a Maildir (no cur/ and new/ "
                                  "folders); check backups.mailboxes[].path")
        known = known_keys()
        batch: list[RawMail] = []
        for key, file in maildir_files(self.path):
            if key in known:
                continue
            try:
                raw, truncated = read_capped(file)
                received = file.stat().st_mtime
            except FileNotFoundError:
                continue  # moved by a mail client between listing and reading; next poll finds it
            except OSError as exc:
                raise MailSourceError(f"mailbox {self.name}: cannot read {file}: {exc.strerror}") from None
            batch.append(RawMail("", raw, key=key, path=str(file), truncated=truncated, received_at=received))
            if len(batch) >= BATCH_SIZE:
                yield Batch(batch)
                batch = []
        if batch:
            yield Batch(batch)

    def close(self) -> None:
        pass


class MboxSource:
    """An mbox file (local delivery, or an archive to import); messages keyed by byte offset."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path

    def batches(self, known_keys: Callable[[], set[str]],
                cursor: Callable[[str], tuple[int, int] | None]) -> Iterator[Batch]:
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise MailSourceError(f"mailbox {self.name}: cannot read {self.path}: {exc.strerror}; "
                                  "check backups.mailboxes[].path") from None
        # The cursor remembers the file (inode) and how far it was read; a rotated
        # or rewritten file is read again from the start (de-duplication absorbs it).
        saved = cursor("")
        resume = saved[1] if saved and saved[0] == stat.st_ino and saved[1] <= stat.st_size else 0
        batch: list[RawMail] = []
        last_end = resume
        try:
            for offset, raw, truncated in mbox_messages(self.path):
                if offset < resume:
                    continue
                batch.append(RawMail("", raw, key=f"{stat.st_ino}:{offset}", truncated=truncated))
                last_end = offset + 1
                if len(batch) >= BATCH_SIZE:
                    yield Batch(batch, cursor=("", stat.st_ino, last_end))
                    batch = []
        except OSError as exc:
            raise MailSourceError(f"mailbox {self.name}: cannot read {self.path}: {exc.strerror}") from None
        yield Batch(batch, cursor=("", stat.st_ino, last_end))

    def close(self) -> None:
        pass


def local_messages(paths: list[str]) -> Iterator[tuple[str, bytes, bool]]:
    """(name, bytes, truncated) of every message under ``paths``: .eml files, Maildirs, mbox files, folders."""
    for text in paths:
        path = Path(text)
        if is_maildir(path):
            for _, file in maildir_files(path):
                yield (str(file), *read_capped(file))
        elif path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                yield (str(file), *read_capped(file))
        elif path.is_file() and _looks_like_mbox(path):
            for offset, raw, truncated in mbox_messages(path):
                yield f"{path}:{offset}", raw, truncated
        else:
            yield (str(path), *read_capped(path))


def _looks_like_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(5) == b"From " and not path.name.lower().endswith(".eml")
    except OSError:
        return False


def build_source(config) -> MailSource:
    """The source for one ``backups.mailboxes`` entry."""
    from custode.agent.backups.config import ImapMailbox

    if isinstance(config, ImapMailbox):
        from custode.agent.mail.imap import ImapSource

        return ImapSource(config, config.password.resolve)
    if config.type == "maildir":
        return MaildirSource(config.name, config.path)
    return MboxSource(config.name, config.path)
