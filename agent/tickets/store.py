"""Tickets and their outbox in the state DB: the rows, and every statement on them.

This module owns all SQL on ``tickets``, ``ticket_outbox`` and
``ticket_cursor`` (their schema is migration 6 in :mod:`custode.agent.state`);
the planner, the delivery loop, the CLI, the metrics and ``custode status``
call these functions. ``tests/test_ticket_store_owns_sql.py`` keeps it so.

Transactions stay with the callers, who know which changes must land together:
a function taking a ``sqlite3.Connection`` (the ``db`` of ``State.transaction()``)
runs inside the caller's transaction; a function taking a :data:`Source` reads,
either inside one or on its own through ``State.query``.

The planner writes a ticket row and its first operation in the same
transaction as it advances its cursor over ``incident_events``; the delivery
loop counts a try in a transaction of its own before calling the helpdesk, and
marks an operation done in the same transaction as it records what the
helpdesk answered. So after a kill -9 at any instant, either both happened
or neither did, and the outbox resumes where it stood.

States and kinds are the ``StrEnum`` classes of :mod:`custode.agent.tickets.model`;
they are written into the SQL text as literals (not bound), so the statements
read as before and SQLite can use the partial index ``tickets_one_live_per_key``.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from custode.agent.state import State
from custode.agent.tickets.model import LIVE_STATES, UNDELIVERED_STATES, OpKind, OpState, RemoteStatus, TicketState

Source: TypeAlias = State | sqlite3.Connection
"""Where a read runs: a ``State`` (one statement of its own) or the connection of an open transaction."""


def _lit(value: StrEnum) -> str:
    """One state as an SQL string literal: ``'open'``."""
    return "'" + str(value).replace("'", "''") + "'"


def _in(*values: StrEnum) -> str:
    """States as an SQL list: ``('open', 'recovered')``."""
    return "(" + ", ".join(_lit(v) for v in values) + ")"


def _rows(source: Source, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    if isinstance(source, State):
        return source.query(sql, params)
    return source.execute(sql, params).fetchall()


_LIVE = _in(*LIVE_STATES)
_UNDELIVERED = _in(*UNDELIVERED_STATES)
_OPEN = _lit(TicketState.OPEN)
_RECOVERED = _lit(TicketState.RECOVERED)
_PENDING = _lit(OpState.PENDING)


@dataclass(frozen=True)
class Ticket:
    id: int
    key: str
    tenant: str
    backend: str
    check: str
    incident_id: int | None
    state: str
    """A :class:`TicketState` value (kept a plain ``str``: a row from a newer Custode must still load)."""
    priority: str
    subject: str
    ref: str | None
    url: str | None
    remote_status: str
    """A :class:`RemoteStatus` value."""
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
    level: str | None = None
    """The service level it was planned on (NULL in rows from before service levels: the priority is the level)."""
    restore_due_at: float | None = None
    reopened: int = 0
    """How many times the same failure came back within the warranty and reopened it."""

    @property
    def level_key(self) -> str:
        return self.level or self.priority

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
                   message_ids=tuple(json.loads(row["message_ids"])), level=row["level"],
                   restore_due_at=row["restore_due_at"], reopened=row["reopened"])


@dataclass(frozen=True)
class OutboxOp:
    id: int
    ticket_id: int
    op: str
    """An :class:`OpKind` value (a plain ``str``: delivery refuses kinds it does not know)."""
    op_id: str
    payload: dict[str, Any]
    state: str
    """An :class:`OpState` value."""
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


# --- tickets: reads ------------------------------------------------------------------------------

def live_ticket(source: Source, key: str) -> Ticket | None:
    """The one ticket of ``key`` that is open or recovered, if any."""
    rows = _rows(source, f"SELECT * FROM tickets WHERE key = ? AND state IN {_LIVE}", (key,))
    return Ticket.from_row(rows[0]) if rows else None


def get_ticket(source: Source, ticket_id: int) -> Ticket | None:
    rows = _rows(source, "SELECT * FROM tickets WHERE id = ?", (ticket_id,))
    return Ticket.from_row(rows[0]) if rows else None


def live_tickets_on_helpdesk(source: Source, backend: str) -> list[Ticket]:
    """``backend``'s live tickets that the helpdesk has (a ref): those whose state sync reads back."""
    rows = _rows(source, f"""SELECT * FROM tickets WHERE backend = ? AND state IN {_LIVE}
                             AND ref IS NOT NULL ORDER BY id""", (backend,))
    return [Ticket.from_row(row) for row in rows]


def ticket_rows(source: Source, *, include_finished: bool = False, tenant: str | None = None) -> list[sqlite3.Row]:
    """Whole ``tickets`` rows by id, live ones only unless ``include_finished`` (``custode tickets list``)."""
    sql = "SELECT * FROM tickets"
    clauses: list[str] = []
    params: list[Any] = []
    if not include_finished:
        clauses.append(f"state IN {_LIVE}")
    if tenant:
        clauses.append("tenant = ?")
        params.append(tenant)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return _rows(source, sql + " ORDER BY id", tuple(params))


def open_ticket_sla_rows(source: Source) -> list[sqlite3.Row]:
    """Open tickets' tenant, backend, key, ref, priority, due_at, resolve_due_at, by id."""
    return _rows(source, f"""SELECT tenant, backend, key, ref, priority, due_at, resolve_due_at FROM tickets
                             WHERE state = {_OPEN} ORDER BY id""")


def open_ticket_counts(source: Source) -> list[sqlite3.Row]:
    """Open tickets counted (``n``) by tenant, backend and priority."""
    return _rows(source, f"""SELECT tenant, backend, priority, COUNT(*) AS n FROM tickets WHERE state = {_OPEN}
                             GROUP BY tenant, backend, priority ORDER BY 1, 2, 3""")


def open_ticket_totals(source: Source) -> sqlite3.Row:
    """All open tickets: their count ``n`` and how many are ``late`` for taking in charge (NULL when none)."""
    return _rows(source, f"""SELECT COUNT(*) AS n, SUM(take_charge_breached) AS late FROM tickets
                             WHERE state = {_OPEN}""")[0]


def sla_breach_counts(source: Source) -> list[sqlite3.Row]:
    """Every ticket ever: breaches of the take-charge (``tc``) and resolution (``rs``) targets by tenant, priority."""
    return _rows(source, """SELECT tenant, priority, SUM(take_charge_breached) AS tc, SUM(resolve_breached) AS rs
                            FROM tickets GROUP BY tenant, priority ORDER BY 1, 2""")


def open_tickets_with_held_repeats(source: Source, followed_up_before: float) -> list[sqlite3.Row]:
    """Open tickets with repeats not told yet and no follow-up since then: ``ticket_id`` and their incident's row."""
    return _rows(source, f"""SELECT t.id AS ticket_id, i.* FROM tickets t JOIN incidents i ON i.id = t.incident_id
                             WHERE t.state = {_OPEN} AND t.repeats_pending > 0 AND t.last_followup_at <= ?""",
                 (followed_up_before,))


def compliance_rows(source: Source, tenant: str, opened_from: float, opened_before: float) -> list[sqlite3.Row]:
    """``tenant``'s tickets opened in ``[opened_from, opened_before)`` that start a case, with their successors.

    A case starts with a ticket that replaced none (``previous_id`` NULL); the
    tickets that replaced it after a person closed it on the helpdesk follow,
    whenever they were opened, so the service-level report can judge the
    failure as one case in the period it began (custode.agent.service_levels.compliance).
    """
    return _rows(source, """WITH RECURSIVE chain(id) AS (
                                SELECT id FROM tickets WHERE tenant = ? AND opened_at >= ? AND opened_at < ?
                                    AND previous_id IS NULL
                                UNION SELECT t.id FROM tickets t JOIN chain c ON t.previous_id = c.id)
                            SELECT * FROM tickets WHERE id IN (SELECT id FROM chain) ORDER BY id""",
                 (tenant, opened_from, opened_before))


# --- tickets: writes -----------------------------------------------------------------------------

def insert_ticket(db: sqlite3.Connection, *, key: str, tenant: str, backend: str, check: str,
                  incident_id: int | None, priority: str, subject: str, opened_at: float, due_at: float | None,
                  resolve_due_at: float | None, previous_id: int | None = None, level: str | None = None,
                  restore_due_at: float | None = None) -> int:
    """A new open ticket; returns its id."""
    cursor = db.execute(
        f"""INSERT INTO tickets (key, tenant, backend, check_name, incident_id, state, priority, subject, previous_id,
                                 opened_at, due_at, resolve_due_at, last_followup_at, level, restore_due_at)
            VALUES (?, ?, ?, ?, ?, {_OPEN}, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (key, tenant, backend, check, incident_id, priority, subject, previous_id, opened_at, due_at,
         resolve_due_at, opened_at, level, restore_due_at))
    return int(cursor.lastrowid or 0)


def last_done_ticket(source: Source, key: str) -> Ticket | None:
    """The newest ticket of ``key`` that ended after a recovery (``done``): the one a warranty reopens."""
    rows = _rows(source, f"""SELECT * FROM tickets WHERE key = ? AND state = {_lit(TicketState.DONE)}
                             AND recovered_at IS NOT NULL ORDER BY id DESC LIMIT 1""", (key,))
    return Ticket.from_row(rows[0]) if rows else None


def reopen_ticket(db: sqlite3.Connection, ticket_id: int, incident_id: int, now: float) -> None:
    """A done ticket is open again (the same failure within the warranty): its resolution no longer counts."""
    db.execute(f"""UPDATE tickets SET state = {_OPEN}, recovered_at = NULL, finished_at = NULL,
                   reopened = reopened + 1, incident_id = ?, repeats_pending = 0, last_followup_at = ?
                   WHERE id = ?""", (incident_id, now, ticket_id))


# --- events set aside: their planning failed -----------------------------------------------------

def set_aside_event(db: sqlite3.Connection, event_id: int, key: str, tenant: str, reason: str, now: float) -> None:
    """Keep an incident event whose planning raised, with the reason, so the events after it go on."""
    db.execute("""INSERT OR REPLACE INTO ticket_set_aside (event_id, incident_key, tenant, reason, at)
                  VALUES (?, ?, ?, ?, ?)""", (event_id, key, tenant, reason, now))


def set_aside_rows(source: Source) -> list[sqlite3.Row]:
    """Every event set aside: ``event_id``, ``incident_key``, ``tenant``, ``reason``, ``at``, oldest first."""
    return _rows(source, "SELECT * FROM ticket_set_aside ORDER BY event_id")


def forget_set_aside(db: sqlite3.Connection, event_id: int) -> None:
    db.execute("DELETE FROM ticket_set_aside WHERE event_id = ?", (event_id,))


def update_ticket(db: sqlite3.Connection, ticket_id: int, **fields: Any) -> None:
    """Set the named columns of one ticket (``message_ids``: a sequence, stored as JSON)."""
    if "message_ids" in fields:
        fields["message_ids"] = json.dumps(list(fields["message_ids"]))
    assignments = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE tickets SET {assignments} WHERE id = ?", (*fields.values(), ticket_id))


def finish_recovered(db: sqlite3.Connection, ticket_id: int, remote_status: RemoteStatus, now: float) -> None:
    """The helpdesk has the ticket solved or closed: a recovered ticket is done (an open one stays open)."""
    update_ticket(db, ticket_id, remote_status=remote_status)
    db.execute(f"""UPDATE tickets SET state = {_lit(TicketState.DONE)}, finished_at = ?
                   WHERE id = ? AND state = {_RECOVERED}""", (now, ticket_id))


def finish_flap_windows(db: sqlite3.Connection, now: float, recovered_before: float) -> None:
    """Recovered tickets whose flap window is over (recovered at or before ``recovered_before``) are done."""
    db.execute(f"""UPDATE tickets SET state = {_lit(TicketState.DONE)}, finished_at = ?
                   WHERE state = {_RECOVERED} AND recovered_at <= ?""", (now, recovered_before))


def flag_sla_breaches(db: sqlite3.Connection, now: float) -> None:
    """Mark open tickets not taken in charge, or not resolved, by their due time (flags never clear)."""
    db.execute(f"""UPDATE tickets SET take_charge_breached = 1 WHERE state = {_OPEN} AND take_charge_breached = 0
                   AND due_at < ? AND (taken_at IS NULL OR taken_at > due_at)""", (now,))
    db.execute(f"""UPDATE tickets SET resolve_breached = 1 WHERE state = {_OPEN} AND resolve_breached = 0
                   AND resolve_due_at < ?""", (now,))
    db.execute(f"""UPDATE tickets SET restore_breached = 1 WHERE state = {_OPEN} AND restore_breached = 0
                   AND restore_due_at < ?""", (now,))


# --- the outbox: reads ---------------------------------------------------------------------------

_DUE = f"""SELECT o.* FROM ticket_outbox o JOIN tickets t ON t.id = o.ticket_id
           WHERE o.state = {_PENDING} AND t.backend = ? AND o.next_attempt_at <= ?
             AND NOT EXISTS (SELECT 1 FROM ticket_outbox p WHERE p.ticket_id = o.ticket_id AND p.id < o.id
                             AND p.state IN {_UNDELIVERED})
           ORDER BY {{first}}o.next_attempt_at, o.id LIMIT ?"""


def due_ops(source: Source, backend: str, now: float, limit: int,
            queue_priorities: dict[str, int] | None = None) -> list[OutboxOp]:
    """``backend``'s pending operations due by ``now``, each only once every earlier one of its ticket landed.

    ``queue_priorities`` (tenant -> 0…9, from the service profiles): higher tenants' operations go first,
    so a backlog after a helpdesk outage reaches the comuni with the higher queue priority first.
    """
    ranked = {tenant: rank for tenant, rank in (queue_priorities or {}).items() if rank}
    if not ranked:
        return [OutboxOp.from_row(row) for row in _rows(source, _DUE.format(first=""), (backend, now, limit))]
    case = "CASE t.tenant " + " ".join("WHEN ? THEN ?" for _ in ranked) + " ELSE 0 END DESC, "
    params: list[Any] = [backend, now]
    sql = _DUE.format(first=case)
    order: list[Any] = [value for pair in ranked.items() for value in pair]
    # the CASE's placeholders come after the WHERE's and before LIMIT's, in the text's order
    return [OutboxOp.from_row(row) for row in _rows(source, sql, (*params, *order, limit))]


def next_attempt_at(source: Source, backend: str) -> float | None:
    """When ``backend``'s earliest pending operation is due, or None when it has none."""
    rows = _rows(source, f"""SELECT MIN(o.next_attempt_at) FROM ticket_outbox o JOIN tickets t
                             ON t.id = o.ticket_id WHERE o.state = {_PENDING} AND t.backend = ?""", (backend,))
    return rows[0][0] if rows and rows[0][0] is not None else None


def has_undelivered(source: Source, ticket_id: int, op: OpKind) -> bool:
    """Whether the ticket has an operation of kind ``op`` still pending or undeliverable."""
    return bool(_rows(source, f"SELECT 1 FROM ticket_outbox WHERE ticket_id = ? AND state IN {_UNDELIVERED} "
                              "AND op = ?", (ticket_id, op)))


def outbox_rows(source: Source, *, include_finished: bool = False) -> list[sqlite3.Row]:
    """Outbox rows with their ticket's key, backend and ref, by id; undelivered only unless ``include_finished``."""
    where = "" if include_finished else f"WHERE o.state IN {_UNDELIVERED}"
    return _rows(source, f"""SELECT o.*, t.key, t.backend, t.ref FROM ticket_outbox o JOIN tickets t
                             ON t.id = o.ticket_id {where} ORDER BY o.id""")


def undelivered_counts(source: Source) -> list[sqlite3.Row]:
    """Undelivered operations by ``state``: their count ``n`` and the oldest ``created_at`` (``first``)."""
    return _rows(source, f"""SELECT state, COUNT(*) AS n, MIN(created_at) AS first FROM ticket_outbox
                             WHERE state IN {_UNDELIVERED} GROUP BY state""")


def undelivered_counts_by_backend(source: Source) -> list[sqlite3.Row]:
    """Undelivered operations by ``backend`` and ``state``: their count ``n`` and the oldest ``created_at``."""
    return _rows(source, f"""SELECT t.backend, o.state, COUNT(*) AS n, MIN(o.created_at) AS first
                             FROM ticket_outbox o JOIN tickets t ON t.id = o.ticket_id
                             WHERE o.state IN {_UNDELIVERED} GROUP BY t.backend, o.state""")


def delivered_counts(source: Source) -> list[sqlite3.Row]:
    """Operations done (delivered or superseded), counted (``n``) by ``backend`` and ``op``."""
    return _rows(source, f"""SELECT t.backend, o.op, COUNT(*) AS n FROM ticket_outbox o JOIN tickets t
                             ON t.id = o.ticket_id WHERE o.state = {_lit(OpState.DONE)}
                             GROUP BY t.backend, o.op ORDER BY 1, 2""")


# --- the outbox: writes --------------------------------------------------------------------------

def enqueue(db: sqlite3.Connection, ticket_id: int, op: OpKind, payload: dict[str, Any], now: float,
            not_before: float | None = None) -> str:
    """Add one operation; its ``op_id`` is the idempotency key the backend sends with every try."""
    op_id = uuid.uuid4().hex
    db.execute("""INSERT INTO ticket_outbox (ticket_id, op, op_id, payload, created_at, next_attempt_at)
                  VALUES (?, ?, ?, ?, ?, ?)""",
               (ticket_id, op, op_id, json.dumps(payload, ensure_ascii=False, sort_keys=True), now,
                now if not_before is None else not_before))
    return op_id


def cancel_pending(db: sqlite3.Connection, ticket_id: int, ops: tuple[OpKind, ...], why: str, now: float) -> int:
    """Withdraw the ticket's pending operations of these kinds; returns how many."""
    placeholders = ",".join("?" * len(ops))
    cursor = db.execute(
        f"""UPDATE ticket_outbox SET state = {_lit(OpState.CANCELLED)}, last_error = ?, done_at = ?
            WHERE ticket_id = ? AND state = {_PENDING} AND op IN ({placeholders})""",
        (why, now, ticket_id, *ops))
    return cursor.rowcount


def count_attempt(db: sqlite3.Connection, op_id: int, at: float) -> None:
    """One more try of the operation (row id ``op_id``), counted before the call is made."""
    db.execute("UPDATE ticket_outbox SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ?", (at, op_id))


def mark_delivered(db: sqlite3.Connection, op_id: int, now: float) -> None:
    """The helpdesk took the operation; one cancelled while the call was under way stays cancelled."""
    db.execute(f"UPDATE ticket_outbox SET state = {_lit(OpState.DONE)}, done_at = ? "
               f"WHERE id = ? AND state = {_PENDING}", (now, op_id))


def reschedule(db: sqlite3.Connection, op_id: int, error: str, next_attempt_at: float) -> None:
    """A retryable failure: keep the operation pending, try again at ``next_attempt_at``."""
    db.execute(f"""UPDATE ticket_outbox SET last_error = ?, next_attempt_at = ?
                   WHERE id = ? AND state = {_PENDING}""", (error, next_attempt_at, op_id))


def mark_undeliverable(db: sqlite3.Connection, op_id: int, error: str) -> None:
    """The helpdesk refused the operation for good: it stays in the outbox for a person to retry."""
    db.execute(f"UPDATE ticket_outbox SET state = {_lit(OpState.DEAD)}, last_error = ? WHERE id = ? "
               f"AND state = {_PENDING}", (error, op_id))


def mark_superseded(db: sqlite3.Connection, op_id: int, why: str, now: float) -> None:
    """The ticket was closed on the helpdesk: the operation is over without being delivered."""
    db.execute(f"UPDATE ticket_outbox SET state = {_lit(OpState.DONE)}, done_at = ?, last_error = ? WHERE id = ?",
               (now, f"superseded: {why}", op_id))


def requeue_undeliverable(db: sqlite3.Connection, next_attempt_at: float) -> int:
    """Every undeliverable operation pending again, due at ``next_attempt_at``; returns how many."""
    cursor = db.execute(f"""UPDATE ticket_outbox SET state = {_PENDING}, next_attempt_at = ?
                            WHERE state = {_lit(OpState.DEAD)}""", (next_attempt_at,))
    return cursor.rowcount


def requeue_by_prefix(db: sqlite3.Connection, op_id_prefix: str, next_attempt_at: float) -> int:
    """Undelivered operations whose ``op_id`` starts with the prefix, pending and due at ``next_attempt_at``."""
    cursor = db.execute(f"""UPDATE ticket_outbox SET state = {_PENDING}, next_attempt_at = ?
                            WHERE state IN {_in(OpState.DEAD, OpState.PENDING)} AND op_id LIKE ?""",
                        (next_attempt_at, op_id_prefix + "%"))
    return cursor.rowcount


# --- the planner's cursor over incident_events -----------------------------------------------------

def planned_through(db: sqlite3.Connection) -> int | None:
    """The last incident event planned, or None before the planner's first run."""
    row = db.execute("SELECT last_event_id FROM ticket_cursor WHERE id = 1").fetchone()
    return int(row[0]) if row is not None else None


def start_cursor(db: sqlite3.Connection, last_event_id: int) -> None:
    db.execute("INSERT INTO ticket_cursor (id, last_event_id) VALUES (1, ?)", (last_event_id,))


def advance_cursor(db: sqlite3.Connection, last_event_id: int) -> None:
    db.execute("UPDATE ticket_cursor SET last_event_id = ? WHERE id = 1", (last_event_id,))
