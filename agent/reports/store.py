"""The reports' outbox in the state DB (``report_outbox``, migration 12): every statement on it.

One row per report to send: tenant × kind × period, once for the schedule (a
partial UNIQUE index on the scheduled rows, so the agent's cycle and a second
process never queue the same period twice), plus one row per re-send asked by
hand, each with its reason. A row is rendered once (the files under the data
dir, the PDF's SHA-256 in the row) and then sent; until then it waits for
its next try.

Before a try a row is *claimed* in a transaction, as the advance notices are
(:mod:`custode.agent.updates.notice_store`): the claim counts the try and sets
when the next one is due, so a process killed mid-try leaves a row that the
next cycle takes over once that time has come, and never a row that nobody
will send. A process killed between the SMTP server's "250 OK" and the
record sends it again on the next try with the same Message-ID, which mail
clients fold into one: a lost report is a breach of contract, a duplicate
with the same id costs nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from custode.agent.state import State
from custode.agent.updates.store import Owner


class OutboxStatus(StrEnum):
    """Where a row stands (``report_outbox.status``)."""

    PENDING = "pending"
    """Waiting for its next try: not rendered yet, or rendered and not sent (SMTP down, no recipients)."""
    SENDING = "sending"
    """Claimed by one process, which is rendering or sending it now."""
    SENT = "sent"
    CANCELLED = "cancelled"
    """Dropped by hand (``custode report cancel``), with the reason; final."""


UNSENT_STATUSES: tuple[OutboxStatus, ...] = (OutboxStatus.PENDING, OutboxStatus.SENDING)


class ReportTrigger(StrEnum):
    """What queued a row (``report_outbox.trigger``)."""

    SCHEDULED = "scheduled"
    """Its due time came (the agent's cycle): one per tenant, kind and period."""
    MANUAL = "manual"
    """``custode report send``: the first one of a period, or a re-send with its reason."""


class ReportKind(StrEnum):
    """``report_outbox.kind``: the kinds of :data:`custode.agent.reports.document.ReportKind`."""

    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class ErrorStage(StrEnum):
    """Which step of the last try failed (``report_outbox.error_stage``)."""

    RENDER = "render"
    SEND = "send"


@dataclass(frozen=True)
class RenderedFile:
    """One file of a rendered report, as kept under the data dir and attached to the mail."""

    name: str
    sha256: str
    media_type: str
    size: int

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "sha256": self.sha256, "media_type": self.media_type, "size": self.size}


def files_of(row: sqlite3.Row) -> list[RenderedFile]:
    """The files a row was rendered into, the PDF first."""
    return [RenderedFile(str(item["name"]), str(item["sha256"]), str(item["media_type"]), int(item["size"]))
            for item in json.loads(row["files"] or "[]")]


class ReportStore:
    def __init__(self, state: State) -> None:
        self.state = state

    # --- queueing ------------------------------------------------------------------------------

    def queue_scheduled(self, tenant: str, kind: str, period: str, due: float, now: float) -> int | None:
        """Queue the period's report for its due time; None when it has a row already (scheduled or by hand).

        A period sent by hand before its due time (or queued by hand) is not
        queued again by the schedule: the comune has it.
        """
        with self.state.transaction() as db:
            exists = db.execute("SELECT 1 FROM report_outbox WHERE tenant = ? AND kind = ? AND period = ? LIMIT 1",
                                (tenant, kind, period)).fetchone()
            if exists is not None:
                return None
            return int(db.execute(
                """INSERT INTO report_outbox (tenant, kind, period, trigger, reason, status, created_at, due_at,
                                              next_attempt_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (tenant, kind, period, ReportTrigger.SCHEDULED, "", OutboxStatus.PENDING, now, due, now)
            ).lastrowid or 0)

    def queue_manual(self, tenant: str, kind: str, period: str, reason: str, now: float) -> int:
        """A new row, due now, whatever rows the period has: ``custode report send``."""
        with self.state.transaction() as db:
            return int(db.execute(
                """INSERT INTO report_outbox (tenant, kind, period, trigger, reason, status, created_at, due_at,
                                              next_attempt_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (tenant, kind, period, ReportTrigger.MANUAL, reason, OutboxStatus.PENDING, now, now, now)
            ).lastrowid or 0)

    # --- trying ------------------------------------------------------------------------------------

    def due(self, now: float) -> list[sqlite3.Row]:
        """Rows whose next try has come: waiting ones, and claims whose process has died. Oldest first."""
        rows = self.state.query("""SELECT * FROM report_outbox WHERE status IN (?, ?) AND next_attempt_at <= ?
                                   ORDER BY due_at, id""", (*UNSENT_STATUSES, now))
        return [row for row in rows if row["status"] == OutboxStatus.PENDING or not _owner(row).alive()]

    def claim(self, row_id: int, now: float, next_attempt_at: float, owner: Owner | None = None) -> sqlite3.Row | None:
        """The row, now owned by ``owner`` for one try, counted; None when it is not to be tried now.

        None: sent or cancelled, not due yet, or claimed by a process that is
        still alive. The try is counted here, before any work, with the time of
        the next one: if this process dies, the row waits for that time and is
        then taken over.
        """
        owner = owner or Owner.me()
        with self.state.transaction() as db:
            row = db.execute("SELECT * FROM report_outbox WHERE id = ?", (row_id,)).fetchone()
            if row is None or row["status"] not in UNSENT_STATUSES or row["next_attempt_at"] > now:
                return None
            if row["status"] == OutboxStatus.SENDING and _owner(row) != owner and _owner(row).alive():
                return None
            db.execute("""UPDATE report_outbox SET status = ?, owner_host = ?, owner_pid = ?, owner_started = ?,
                          attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ? WHERE id = ?""",
                       (OutboxStatus.SENDING, owner.host, owner.pid, owner.started, now, next_attempt_at, row_id))
            return db.execute("SELECT * FROM report_outbox WHERE id = ?", (row_id,)).fetchone()

    def rendered(self, row_id: int, now: float, folder: str, files: list[RenderedFile], subject: str,
                 body: str) -> None:
        """Record what the report was rendered into (``folder`` relative to the data dir, the PDF first)."""
        with self.state.transaction() as db:
            db.execute("""UPDATE report_outbox SET rendered_at = ?, folder = ?, sha256 = ?, files = ?, subject = ?,
                          body = ? WHERE id = ?""",
                       (now, folder, files[0].sha256, json.dumps([f.as_json() for f in files]), subject, body,
                        row_id))

    def forget_render(self, row_id: int) -> None:
        """The rendered files are gone or changed: the row is rendered again before it is sent."""
        with self.state.transaction() as db:
            db.execute("""UPDATE report_outbox SET rendered_at = NULL, folder = NULL, sha256 = NULL, files = ?,
                          subject = NULL, body = NULL WHERE id = ? AND sent_at IS NULL""", ("[]", row_id))

    def failed(self, row_id: int, stage: ErrorStage, error: str) -> None:
        """A try that did not send it: back to waiting (its next try was set by the claim)."""
        with self.state.transaction() as db:
            db.execute("""UPDATE report_outbox SET status = ?, error = ?, error_stage = ?, owner_host = NULL,
                          owner_pid = NULL, owner_started = NULL WHERE id = ? AND status = ?""",
                       (OutboxStatus.PENDING, error, stage, row_id, OutboxStatus.SENDING))

    def sent(self, row_id: int, now: float, message_id: str, recipients: list[str], note: str = "") -> None:
        """Record the row as sent (``note``: recipients the server refused while accepting the others)."""
        with self.state.transaction() as db:
            db.execute("""UPDATE report_outbox SET status = ?, sent_at = ?, closed_at = ?, message_id = ?,
                          recipients = ?, note = ?, error = ?, error_stage = NULL, owner_host = NULL,
                          owner_pid = NULL, owner_started = NULL WHERE id = ?""",
                       (OutboxStatus.SENT, now, now, message_id, json.dumps(recipients), note, "", row_id))

    def cancel(self, row_id: int, now: float, reason: str) -> sqlite3.Row | None:
        """Drop an unsent row with ``reason``; the row as it was, or None if it is sent, cancelled or being sent."""
        with self.state.transaction() as db:
            row = db.execute("SELECT * FROM report_outbox WHERE id = ?", (row_id,)).fetchone()
            if row is None or row["status"] not in UNSENT_STATUSES:
                return None
            if row["status"] == OutboxStatus.SENDING and _owner(row).alive():
                return None
            db.execute("""UPDATE report_outbox SET status = ?, closed_at = ?, note = ?, owner_host = NULL,
                          owner_pid = NULL, owner_started = NULL WHERE id = ?""",
                       (OutboxStatus.CANCELLED, now, reason, row_id))
            return row

    # --- reading -----------------------------------------------------------------------------------

    def get(self, row_id: int) -> sqlite3.Row | None:
        rows = self.state.query("SELECT * FROM report_outbox WHERE id = ?", (row_id,))
        return rows[0] if rows else None

    def of_report(self, tenant: str, kind: str, period: str) -> list[sqlite3.Row]:
        """Every row of one tenant's report of one period, oldest first (the schedule's, then re-sends)."""
        return self.state.query("""SELECT * FROM report_outbox WHERE tenant = ? AND kind = ? AND period = ?
                                   ORDER BY id""", (tenant, kind, period))

    def listing(self, limit: int = 50) -> list[sqlite3.Row]:
        """Every unsent row, and the latest ``limit`` others; newest first."""
        return self.state.query("""SELECT * FROM report_outbox WHERE status IN (?, ?) OR id IN (
                                       SELECT id FROM report_outbox ORDER BY id DESC LIMIT ?)
                                   ORDER BY id DESC""", (*UNSENT_STATUSES, limit))

    def has_unsent(self) -> bool:
        rows = self.state.query("SELECT 1 FROM report_outbox WHERE status IN (?, ?) LIMIT 1", UNSENT_STATUSES)
        return bool(rows)


def owner_of(row: sqlite3.Row) -> Owner | None:
    """The process that claimed the row, or None when nobody holds it."""
    return _owner(row) if row["status"] == OutboxStatus.SENDING else None


def _owner(row: sqlite3.Row) -> Owner:
    return Owner(row["owner_host"] or "", int(row["owner_pid"] or 0), float(row["owner_started"] or 0.0))
