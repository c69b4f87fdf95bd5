"""Tickets and their outbox in the state DB: the rows, and the few statements every part shares.

The planner writes a ticket row and its first operation in the same
transaction as it advances its cursor over ``incident_events``; the delivery
loop marks an operation done in the same transaction as it records what the
helpdesk answered. So after a kill -9 at any instant, either both happened
or neither did, and the outbox resumes where it stood.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any, Literal

OpKind = Literal["create", "comment", "priority", "solve"]
LIVE_STATES = ("open", "recovered")
"""``open``: the failure persists; ``recovered``: it stopped, within the flap window (a return reuses the ticket).
After that a ticket is ``done``, or ``closed_remote`` when a person closed it while the failure persisted."""


@dataclass(frozen=True)
class Ticket:
    id: int
    key: str
    tenant: str
    backend: str
    check: str
    incident_id: int | None
    state: str
    priority: str
    subject: str
    ref: str | None
    url: str | None
    remote_status: str
    previous_id: int | None
    opened_at: float
    due_at: float | None
    resolve_due_at: float | None
    taken_at: float | None
    recovered_at: float | None
    finished_at: float | None
    last_followup_at: float
    repeats_pending: int
    flaps: int
    take_charge_breached: bool
    resolve_breached: bool
    message_ids: tuple[str, ...]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Ticket":
        return cls(id=row["id"], key=row["key"], tenant=row["tenant"], backend=row["backend"],
                   check=row["check_name"], incident_id=row["incident_id"], state=row["state"],
                   priority=row["priority"], subject=row["subject"], ref=row["ref"], url=row["url"],
                   remote_status=row["remote_status"], previous_id=row["previous_id"], opened_at=row["opened_at"],
                   due_at=row["due_at"], resolve_due_at=row["resolve_due_at"], taken_at=row["taken_at"],
                   recovered_at=row["recovered_at"], finished_at=row["finished_at"],
                   last_followup_at=row["last_followup_at"], repeats_pending=row["repeats_pending"],
                   flaps=row["flaps"], take_charge_breached=bool(row["take_charge_breached"]),
                   resolve_breached=bool(row["resolve_breached"]),
                   message_ids=tuple(json.loads(row["message_ids"])))


@dataclass(frozen=True)
class OutboxOp:
    id: int
    ticket_id: int
    op: str
    op_id: str
    payload: dict[str, Any]
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    last_attempt_at: float | None
    last_error: str | None
    done_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "OutboxOp":
        return cls(id=row["id"], ticket_id=row["ticket_id"], op=row["op"], op_id=row["op_id"],
                   payload=json.loads(row["payload"]), state=row["state"], attempts=row["attempts"],
                   created_at=row["created_at"], next_attempt_at=row["next_attempt_at"],
                   last_attempt_at=row["last_attempt_at"], last_error=row["last_error"], done_at=row["done_at"])


def live_ticket(db: sqlite3.Connection, key: str) -> Ticket | None:
    row = db.execute("SELECT * FROM tickets WHERE key = ? AND state IN ('open', 'recovered')", (key,)).fetchone()
    return Ticket.from_row(row) if row else None


def get_ticket(db: sqlite3.Connection, ticket_id: int) -> Ticket | None:
    row = db.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
    return Ticket.from_row(row) if row else None


def insert_ticket(db: sqlite3.Connection, *, key: str, tenant: str, backend: str, check: str,
                  incident_id: int | None, priority: str, subject: str, opened_at: float, due_at: float | None,
                  resolve_due_at: float | None, previous_id: int | None = None) -> int:
    cursor = db.execute(
        """INSERT INTO tickets (key, tenant, backend, check_name, incident_id, state, priority, subject, previous_id,
                                opened_at, due_at, resolve_due_at, last_followup_at)
           VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?)""",
        (key, tenant, backend, check, incident_id, priority, subject, previous_id, opened_at, due_at,
         resolve_due_at, opened_at))
    return int(cursor.lastrowid or 0)


def enqueue(db: sqlite3.Connection, ticket_id: int, op: OpKind, payload: dict[str, Any], now: float,
            not_before: float | None = None) -> str:
    """Add one operation; its ``op_id`` is the idempotency key the backend sends with every try."""
    op_id = uuid.uuid4().hex
    db.execute("""INSERT INTO ticket_outbox (ticket_id, op, op_id, payload, created_at, next_attempt_at)
                  VALUES (?, ?, ?, ?, ?, ?)""",
               (ticket_id, op, op_id, json.dumps(payload, ensure_ascii=False, sort_keys=True), now,
                now if not_before is None else not_before))
    return op_id


def cancel_pending(db: sqlite3.Connection, ticket_id: int, ops: tuple[str, ...], why: str, now: float) -> int:
    placeholders = ",".join("?" * len(ops))
    cursor = db.execute(
        f"""UPDATE ticket_outbox SET state = 'cancelled', last_error = ?, done_at = ?
            WHERE ticket_id = ? AND state = 'pending' AND op IN ({placeholders})""",
        (why, now, ticket_id, *ops))
    return cursor.rowcount


def update_ticket(db: sqlite3.Connection, ticket_id: int, **fields: Any) -> None:
    if "message_ids" in fields:
        fields["message_ids"] = json.dumps(list(fields["message_ids"]))
    assignments = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE tickets SET {assignments} WHERE id = ?", (*fields.values(), ticket_id))
