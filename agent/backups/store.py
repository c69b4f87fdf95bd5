"""Processed mail, backup reports, folder cursors and job states in the state DB.

A batch of messages and the folder cursor that covers it are written in one
transaction: after a crash either both are there or neither, so the batch is
fetched again and de-duplicated (Message-ID, then content hash), never lost
and never counted twice.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from custode.agent.backups.report import Classification
from custode.agent.clock import current_time
from custode.agent.mail.message import MailMessage
from custode.agent.state import State

CLOCK_SKEW_LIMIT = 2 * 86400.0  # a Date header further than this from the server's arrival time is not trusted


@dataclass(frozen=True)
class Cursor:
    folder: str
    uidvalidity: int
    last_uid: int


@dataclass
class ProcessedMail:
    """One message and its verdict, ready to be stored."""

    mailbox: str
    folder: str
    uid: int | None
    source_key: str | None
    message: MailMessage
    received_at: float | None
    verdict: Classification | None  # None: classification crashed (kind 'error')
    error: str = ""


@dataclass(frozen=True)
class StoredReport:
    id: int
    mailbox: str
    software: str
    job: str | None
    host: str | None
    sender: str
    status: str
    reported_at: float
    error: str | None
    subject: str


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def report_time(mail: ProcessedMail) -> float:
    """When the report was sent: the Date header, else the time the report states, else arrival.

    A comune's server with a wrong clock writes a wrong Date; when the server
    we read from says the mail arrived days apart from it, arrival wins.
    """
    sent = _timestamp(mail.message.date)
    if sent is None and mail.verdict and mail.verdict.report:
        sent = _timestamp(mail.verdict.report.finished_at)
    if sent is None:
        return mail.received_at if mail.received_at is not None else current_time()
    if mail.received_at is not None and abs(sent - mail.received_at) > CLOCK_SKEW_LIMIT:
        return mail.received_at
    return sent


class MailStore:
    def __init__(self, state: State) -> None:
        self.state = state

    # --- cursors and de-duplication -------------------------------------------

    def cursor(self, mailbox: str, folder: str) -> Cursor | None:
        rows = self.state.query("SELECT uidvalidity, last_uid FROM mail_cursors WHERE mailbox = ? AND folder = ?",
                                (mailbox, folder))
        return Cursor(folder, rows[0]["uidvalidity"], rows[0]["last_uid"]) if rows else None

    def known_keys(self, mailbox: str) -> set[str]:
        rows = self.state.query("SELECT source_key FROM mail_messages WHERE mailbox = ? AND source_key IS NOT NULL",
                                (mailbox,))
        return {row["source_key"] for row in rows}

    @staticmethod
    def _duplicate(db: sqlite3.Connection, message: MailMessage) -> bool:
        if message.message_id and db.execute("SELECT 1 FROM mail_messages WHERE message_id = ? LIMIT 1",
                                             (message.message_id,)).fetchone():
            return True
        return db.execute("SELECT 1 FROM mail_messages WHERE content_hash = ?",
                          (message.content_hash,)).fetchone() is not None

    def record(self, mailbox: str, mails: list[ProcessedMail], cursor: Cursor | None,
               now: float | None = None) -> tuple[list[ProcessedMail], int]:
        """Store a batch and advance the cursor atomically; return (new mails, duplicates skipped)."""
        now = current_time() if now is None else now
        fresh: list[ProcessedMail] = []
        duplicates = 0
        with self.state.transaction() as db:
            seen_in_batch: set[str] = set()
            for mail in mails:
                message = mail.message
                identity = message.message_id or message.content_hash
                if identity in seen_in_batch or self._duplicate(db, message):
                    duplicates += 1
                    continue
                seen_in_batch.add(identity)
                self._insert(db, mail, now)
                fresh.append(mail)
            if cursor is not None:
                db.execute("""INSERT INTO mail_cursors (mailbox, folder, uidvalidity, last_uid, updated_at)
                              VALUES (?, ?, ?, ?, ?)
                              ON CONFLICT(mailbox, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
                                  last_uid = excluded.last_uid, updated_at = excluded.updated_at""",
                           (mailbox, cursor.folder, cursor.uidvalidity, cursor.last_uid, now))
        return fresh, duplicates

    def _insert(self, db: sqlite3.Connection, mail: ProcessedMail, now: float) -> None:
        message, verdict = mail.message, mail.verdict
        kind = "error" if verdict is None else verdict.kind
        reason = mail.error if verdict is None else verdict.reason
        cursor = db.execute(
            """INSERT INTO mail_messages (mailbox, folder, uid, source_key, message_id, content_hash, sender,
                                          subject, sent_at, received_at, kind, parser, reason, processed_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (mail.mailbox, mail.folder, mail.uid, mail.source_key, message.message_id, message.content_hash,
             message.sender, message.subject[:500], _timestamp(message.date),
             mail.received_at if mail.received_at is not None else now, kind,
             verdict.parser if verdict else None, reason[:1000], now))
        report = verdict.report if verdict else None
        if report is None:
            return
        db.execute(
            """INSERT INTO backup_reports (message, mailbox, software, job, host, sender, status, reported_at,
                                           started_at, finished_at, size_bytes, error, details)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (cursor.lastrowid, mail.mailbox, report.software, report.job, report.host, message.original_sender,
             report.status, report_time(mail), _timestamp(report.started_at), _timestamp(report.finished_at),
             report.size_bytes, (report.error or "")[:2000] or None,
             json.dumps({"items": [vars(i) for i in report.items][:100], **report.details}, default=str)[:20000]))

    # --- reading ----------------------------------------------------------------

    def reports_since(self, since: float) -> list[StoredReport]:
        rows = self.state.query(
            """SELECT r.id, r.mailbox, r.software, r.job, r.host, r.sender, r.status, r.reported_at, r.error,
                      m.subject
               FROM backup_reports r JOIN mail_messages m ON m.id = r.message
               WHERE r.reported_at >= ? ORDER BY r.reported_at, r.id""", (since,))
        return [StoredReport(**dict(row)) for row in rows]

    def reports_between(self, start: float, end: float) -> list[StoredReport]:
        """Reports with ``start <= reported_at < end``, oldest first: a report reads its period at once."""
        rows = self.state.query(
            """SELECT r.id, r.mailbox, r.software, r.job, r.host, r.sender, r.status, r.reported_at, r.error,
                      m.subject
               FROM backup_reports r JOIN mail_messages m ON m.id = r.message
               WHERE r.reported_at >= ? AND r.reported_at < ? ORDER BY r.reported_at, r.id""", (start, end))
        return [StoredReport(**dict(row)) for row in rows]

    def message_counts(self) -> dict[tuple[str, str], int]:
        rows = self.state.query("SELECT mailbox, kind, COUNT(*) AS n FROM mail_messages GROUP BY mailbox, kind")
        return {(row["mailbox"], row["kind"]): row["n"] for row in rows}

    # --- job states ---------------------------------------------------------------

    def job_states(self) -> dict[tuple[str, str], sqlite3.Row]:
        return {(row["tenant"], row["job"]): row for row in self.state.query("SELECT * FROM backup_job_states")}

    def save_job_states(self, states: list[tuple[str, str, str, float]], now: float) -> None:
        """(tenant, job, state, since) rows; jobs no longer configured are forgotten."""
        with self.state.transaction() as db:
            db.execute("DELETE FROM backup_job_states")
            db.executemany("INSERT INTO backup_job_states (tenant, job, state, since, updated_at) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(tenant, job, state, since, now) for tenant, job, state, since in states])

    def prune(self, before: float) -> int:
        """Forget processed mail older than the retention (reports go with their message)."""
        with self.state.transaction() as db:
            db.execute("DELETE FROM backup_reports "
                       "WHERE message IN (SELECT id FROM mail_messages WHERE processed_at < ?)",
                       (before,))
            return db.execute("DELETE FROM mail_messages WHERE processed_at < ?", (before,)).rowcount
