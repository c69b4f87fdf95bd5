"""Advance notices of update windows in the state DB (``update_notices``, migration 10): every statement on it.

One row per tenant, window occurrence (its start) and kind, enforced by a
UNIQUE constraint, so a notice is recorded once whatever runs the cycle. A
notice is *claimed* in a transaction before it is sent: the agent's cycle and
``custode update notices`` started by hand at the same moment never both send
it. A claim whose process has died (killed between the SMTP server's "250 OK"
and the record) is taken over by the next cycle and sent again with the same
Message-ID, which mail clients and helpdesks fold into one: losing a notice
costs the provider a contract penalty, a duplicate with the same id costs
nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from custode.agent.state import State
from custode.agent.updates.states import OPEN_NOTICE_STATUSES, NoticeKind, NoticeStatus
from custode.agent.updates.store import Owner

START_TOLERANCE = 1.0
"""Seconds: a window start given as a float (from update_runs, from a datetime) matches the stored one."""


@dataclass(frozen=True)
class NoticeKey:
    """Which notice: one per tenant, window occurrence and kind."""

    tenant: str
    window: str
    start: float
    """The occurrence's start (Unix time)."""
    kind: NoticeKind


@dataclass(frozen=True)
class NewNotice:
    """What a claim records of a notice the first time it is due."""

    key: NoticeKey
    end: float
    application: str
    due: float


class NoticeStore:
    def __init__(self, state: State) -> None:
        self.state = state

    def claim(self, notice: NewNotice, now: float, owner: Owner | None = None) -> int | None:
        """The notice's row id, now owned by ``owner`` for sending; None when it is not to be sent.

        None: already sent or closed as not sent, or another living process is
        sending it right now.
        """
        owner = owner or Owner.me()
        key = notice.key
        with self.state.transaction() as db:
            row = db.execute("""SELECT * FROM update_notices WHERE tenant = ? AND window = ? AND kind = ?
                                AND window_start BETWEEN ? AND ?""",
                             (key.tenant, key.window, key.kind, key.start - START_TOLERANCE,
                              key.start + START_TOLERANCE)).fetchone()
            if row is None:
                return int(db.execute(
                    """INSERT INTO update_notices (tenant, window, window_start, window_end, application, kind,
                                                   due_at, status, owner_host, owner_pid, owner_started)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (key.tenant, key.window, key.start, notice.end, notice.application, key.kind, notice.due,
                     NoticeStatus.SENDING, owner.host, owner.pid, owner.started)).lastrowid or 0)
            if row["status"] not in OPEN_NOTICE_STATUSES or (row["status"] == NoticeStatus.SENDING
                                                              and _owner(row) != owner and _owner(row).alive()):
                return None
            db.execute("""UPDATE update_notices SET status = ?, owner_host = ?, owner_pid = ?, owner_started = ?
                          WHERE id = ?""", (NoticeStatus.SENDING, owner.host, owner.pid, owner.started, row["id"]))
            return int(row["id"])

    def sent(self, notice_id: int, now: float, message_id: str, recipients: list[str], note: str = "") -> None:
        """Record the notice as sent (``note``: recipients the server refused while accepting the others)."""
        with self.state.transaction() as db:
            db.execute("""UPDATE update_notices SET status = ?, sent_at = ?, closed_at = ?, message_id = ?,
                          recipients = ?, error = ?, attempts = attempts + 1, last_attempt_at = ?,
                          owner_host = NULL, owner_pid = NULL, owner_started = NULL WHERE id = ?""",
                       (NoticeStatus.SENT, now, now, message_id, json.dumps(recipients), note, now, notice_id))

    def failed(self, notice_id: int, now: float, error: str) -> None:
        """An attempt that did not send it: back to pending, for the next cycle."""
        with self.state.transaction() as db:
            db.execute("""UPDATE update_notices SET status = ?, error = ?, attempts = attempts + 1,
                          last_attempt_at = ?, owner_host = NULL, owner_pid = NULL, owner_started = NULL
                          WHERE id = ?""", (NoticeStatus.PENDING, error, now, notice_id))

    def started_unsent(self, now: float) -> list[sqlite3.Row]:
        """Notices still open whose window has started, except those a living process is sending now."""
        rows = self.state.query("""SELECT * FROM update_notices WHERE status IN (?, ?) AND window_start <= ?
                                   ORDER BY window_start, id""", (*OPEN_NOTICE_STATUSES, now))
        return [r for r in rows if r["status"] == NoticeStatus.PENDING or not _owner(r).alive()]

    def close_unsent(self, row: sqlite3.Row, now: float, reason: str) -> bool:
        """Close a notice of :meth:`started_unsent` as not sent with ``reason``; False if it moved meanwhile."""
        with self.state.transaction() as db:
            done = db.execute("""UPDATE update_notices SET status = ?, error = ?, closed_at = ?, owner_host = NULL,
                                 owner_pid = NULL, owner_started = NULL WHERE id = ? AND status = ?""",
                              (NoticeStatus.NOT_SENT, reason, now, row["id"], row["status"]))
            return done.rowcount == 1

    def find(self, key: NoticeKey) -> sqlite3.Row | None:
        rows = self.state.query("""SELECT * FROM update_notices WHERE tenant = ? AND window = ? AND kind = ?
                                   AND window_start BETWEEN ? AND ?""",
                                (key.tenant, key.window, key.kind, key.start - START_TOLERANCE,
                                 key.start + START_TOLERANCE))
        return rows[0] if rows else None

    def for_occurrence(self, window: str, start: float, kind: NoticeKind = NoticeKind.ADVANCE,
                       tenant: str | None = None) -> list[sqlite3.Row]:
        """Every tenant's notice of one occurrence (or only ``tenant``'s)."""
        sql = """SELECT * FROM update_notices WHERE window = ? AND kind = ? AND window_start BETWEEN ? AND ?"""
        params: tuple = (window, kind, start - START_TOLERANCE, start + START_TOLERANCE)
        if tenant is not None:
            sql += " AND tenant = ?"
            params += (tenant,)
        return self.state.query(sql + " ORDER BY tenant", params)

    def of_tenant_between(self, tenant: str, start: float, end: float,
                          kind: NoticeKind = NoticeKind.ADVANCE) -> list[sqlite3.Row]:
        """``tenant``'s notices of ``kind`` for occurrences starting in ``[start, end)``, by start (one query)."""
        return self.state.query("""SELECT * FROM update_notices WHERE tenant = ? AND kind = ? AND window_start >= ?
                                   AND window_start < ? ORDER BY window_start, window""",
                                (tenant, kind, start - START_TOLERANCE, end + START_TOLERANCE))

    def history(self, since: float, limit: int = 200) -> list[sqlite3.Row]:
        """Notices of windows starting from ``since``, latest first."""
        return self.state.query("""SELECT * FROM update_notices WHERE window_start >= ?
                                   ORDER BY window_start DESC, tenant LIMIT ?""", (since, limit))


def _owner(row: sqlite3.Row) -> Owner:
    return Owner(row["owner_host"] or "", int(row["owner_pid"] or 0), float(row["owner_started"] or 0.0))
