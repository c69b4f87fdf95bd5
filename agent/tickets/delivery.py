"""The outbox → helpdesk: one backend's due operations, in order per ticket, retried until they land.

Exactly once without a distributed transaction: the call is made outside any
DB transaction and recorded after it; if Custode dies in between, the next try
repeats the call and the backend makes the repeat harmless (``find_open``
adopts the ticket a lost create made; follow-ups carry an op marker or a
deterministic Message-ID/delivery id). So a create is retried as often as
needed and still never duplicates, unlike integrations that stop retrying
creates for fear of duplicates.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from custode.agent.clock import Clock, current_time
from custode.agent.state import State
from custode.agent.tickets.backends.base import DeliveryError, TicketBackend, TicketClosed
from custode.agent.tickets.model import TenantTicketing, TicketDraft, TicketRef, TicketThread
from custode.agent.tickets.store import OutboxOp, Ticket, cancel_pending, update_ticket

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.tickets.planner import TicketPlanner

log = logging.getLogger(__name__)
Audit = Callable[[str, str, dict], None]

_DUE = """SELECT o.* FROM ticket_outbox o JOIN tickets t ON t.id = o.ticket_id
          WHERE o.state = 'pending' AND t.backend = ? AND o.next_attempt_at <= ?
            AND NOT EXISTS (SELECT 1 FROM ticket_outbox p WHERE p.ticket_id = o.ticket_id AND p.id < o.id
                            AND p.state IN ('pending', 'dead'))
          ORDER BY o.next_attempt_at, o.id LIMIT ?"""


def tenant_ticketing(config: "Config", tenant: str) -> TenantTicketing:
    own = config.tenants.get(tenant)
    if own is None:
        return TenantTicketing(tenant=tenant, tenant_name=tenant)
    options = own.tickets
    return TenantTicketing(tenant=tenant, tenant_name=own.name, language=own.language,
                           recipients=tuple(options.recipients), requester=options.requester,
                           organization_id=options.organization_id, entity_id=options.entity_id)


class Deliverer:
    """Delivers the operations of one backend; used by one thread."""

    def __init__(self, config: "Config", state: State, planner: "TicketPlanner", backend: TicketBackend,
                 clock: Clock = current_time, audit: Audit | None = None,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self.state = state
        self.planner = planner
        self.backend = backend
        self.clock = clock
        self.audit = audit
        self.jitter = jitter
        self.last_sync = 0.0

    @property
    def name(self) -> str:
        return self.backend.name

    def due(self, limit: int = 50) -> list[OutboxOp]:
        return [OutboxOp.from_row(r) for r in self.state.query(_DUE, (self.name, self.clock(), limit))]

    def next_attempt_at(self) -> float | None:
        rows = self.state.query("""SELECT MIN(o.next_attempt_at) FROM ticket_outbox o JOIN tickets t
                                   ON t.id = o.ticket_id WHERE o.state = 'pending' AND t.backend = ?""", (self.name,))
        return rows[0][0] if rows and rows[0][0] is not None else None

    def run_once(self, limit: int = 50) -> int:
        """Try every due operation once (up to ``limit``); return how many were tried."""
        ops = self.due(limit)
        try:
            for op in ops:
                self.deliver(op)
        finally:
            if ops:
                self._close_backend()
        return len(ops)

    def deliver(self, op: OutboxOp) -> None:
        ticket = self._ticket(op.ticket_id)
        # The try is counted before the call: if Custode dies before recording the answer, the next
        # run knows the call may have landed and has the backend look for it before writing again.
        with self.state.transaction() as db:
            db.execute("UPDATE ticket_outbox SET attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
                       (self.clock(), op.id))
        try:
            if op.op == "create":
                remote = self._create(op, ticket)
                self._done(op, ticket, ref=remote)
                self._audit("ticket.created", ticket.key, {"ticket": remote.ref, "backend": self.name,
                                                            "priority": ticket.priority, "url": remote.url})
            else:
                self._update(op, ticket)
                self._done(op, ticket)
        except TicketClosed as exc:
            self._closed_on_helpdesk(op, ticket, str(exc))
        except DeliveryError as exc:
            self._failed(op, ticket, str(exc), exc.retryable, exc.retry_after)
        except Exception as exc:  # a bug or an unforeseen answer: keep the op, try again later
            log.exception("ticket operation failed unexpectedly", extra={"op": op.id, "backend": self.name})
            self._failed(op, ticket, f"unexpected error: {exc!r}", True, None)

    # --- the calls ------------------------------------------------------------------------

    def _create(self, op: OutboxOp, ticket: Ticket) -> TicketRef:
        tenant = tenant_ticketing(self.config, ticket.tenant)
        found = self.backend.find_open(ticket.key, tenant)
        if found is not None:
            log.info("adopting the open ticket that carries the incident key",
                     extra={"incident": ticket.key, "ticket": found.ref, "backend": self.name})
            return found
        payload = op.payload
        previous = self._ticket(ticket.previous_id) if ticket.previous_id else None
        due = payload.get("due_at")
        draft = TicketDraft(key=ticket.key, tenant=tenant, subject=payload["subject"], body=payload["body"],
                            priority=payload["priority"], due_at=datetime.fromisoformat(due) if due else None,
                            op_id=op.op_id, tags=tuple(payload.get("tags", ())),
                            previous_ref=previous.ref if previous else None)
        return self.backend.create(draft)

    def _update(self, op: OutboxOp, ticket: Ticket) -> None:
        if ticket.ref is None:
            raise DeliveryError(f"ticket backend {self.name!r}: ticket {ticket.id} ({ticket.key}) was never "
                                "created on the helpdesk; its create operation must be delivered first",
                                retryable=False)
        thread = self._thread_of(ticket)
        retry = op.attempts > 0
        if op.op == "comment":
            self.backend.comment(thread, op.payload["text"], op_id=op.op_id, retry=retry)
        elif op.op == "priority":
            self.backend.set_priority(thread, op.payload["priority"], op.payload["text"], op_id=op.op_id,
                                      retry=retry)
        elif op.op == "solve":
            self.backend.solve(thread, op.payload["text"], op_id=op.op_id, retry=retry)
        else:
            raise DeliveryError(f"unknown ticket operation {op.op!r} in the outbox (written by a newer Custode?)",
                                retryable=False)

    # --- recording the outcome ------------------------------------------------------------------

    def _done(self, op: OutboxOp, ticket: Ticket, ref: TicketRef | None = None) -> None:
        now = self.clock()
        with self.state.transaction() as db:
            db.execute("UPDATE ticket_outbox SET state = 'done', done_at = ? WHERE id = ? AND state = 'pending'",
                       (now, op.id))
            if ref is not None:
                update_ticket(db, ticket.id, ref=ref.ref, url=ref.url, remote_status=ref.status,
                              message_ids=(ref.ref,))
            if op.op == "solve":
                _finish_recovered(db, ticket.id, "solved", now)

    def _failed(self, op: OutboxOp, ticket: Ticket, error: str, retryable: bool, retry_after: float | None) -> None:
        now = self.clock()
        attempts = op.attempts + 1
        if retryable:
            delay = retry_after if retry_after is not None else self.backoff(attempts)
            with self.state.transaction() as db:
                db.execute("""UPDATE ticket_outbox SET last_error = ?, next_attempt_at = ?
                              WHERE id = ? AND state = 'pending'""", (error, now + max(delay, 0.0), op.id))
            log.warning("ticket operation failed; will retry", extra={
                "incident": ticket.key, "op": op.op, "attempts": attempts, "retry_in": round(delay, 1),
                "error": error})
            return
        with self.state.transaction() as db:
            db.execute("UPDATE ticket_outbox SET state = 'dead', last_error = ? WHERE id = ? AND state = 'pending'",
                       (error, op.id))
        log.error("ticket operation undeliverable; kept in the outbox ('custode tickets outbox')",
                  extra={"incident": ticket.key, "op": op.op, "error": error})
        self._audit("ticket.undeliverable", ticket.key, {"op": op.op, "op_id": op.op_id, "backend": self.name,
                                                         "error": error})

    def _closed_on_helpdesk(self, op: OutboxOp, ticket: Ticket, why: str) -> None:
        now = self.clock()
        with self.state.transaction() as db:
            db.execute("UPDATE ticket_outbox SET state = 'done', done_at = ?, last_error = ? WHERE id = ?",
                       (now, f"superseded: {why}", op.id))
        if op.op == "solve":
            with self.state.transaction() as db:
                _finish_recovered(db, ticket.id, "closed", now)
            return
        new_id = self.planner.replace_closed(ticket.id, why)
        self._audit("ticket.closed_on_helpdesk", ticket.key, {"ticket": ticket.ref, "backend": self.name,
                                                              "replaced_by": new_id})

    def backoff(self, attempts: int) -> float:
        """Exponential from ``retry.first``, capped at ``retry.max``, with ±20% jitter so retries spread."""
        settings = self.config.tickets.retry
        base = min(settings.max, settings.first * 2 ** min(attempts - 1, 30))
        return base * (0.8 + 0.4 * self.jitter())

    # --- reading the helpdesk back --------------------------------------------------------------

    def sync(self) -> int:
        """Read the state of live tickets: taken in charge (SLA), or closed by a person while failing."""
        self.last_sync = self.clock()
        rows = self.state.query("""SELECT * FROM tickets WHERE backend = ? AND state IN ('open', 'recovered')
                                   AND ref IS NOT NULL ORDER BY id""", (self.name,))
        changed = 0
        try:
            for row in rows:
                ticket = Ticket.from_row(row)
                try:
                    status = self.backend.status(self._thread_of(ticket))
                except DeliveryError as exc:
                    log.warning("cannot read a ticket's state back", extra={"ticket": ticket.ref, "error": str(exc)})
                    if exc.retryable:
                        break
                    continue
                if status == "unknown":
                    break  # this backend cannot tell; no point asking for every ticket
                changed += self._apply_status(ticket, status)
        finally:
            if rows:
                self._close_backend()
        return changed

    def _apply_status(self, ticket: Ticket, status: str) -> int:
        now = self.clock()
        if status in ("solved", "closed"):
            if ticket.state == "recovered":
                with self.state.transaction() as db:
                    cancel_pending(db, ticket.id, ("solve",), f"the ticket was {status} on the helpdesk", now)
                    _finish_recovered(db, ticket.id, status, now)
                return 1
            pending = self.state.query("SELECT 1 FROM ticket_outbox WHERE ticket_id = ? AND state IN ('pending', "
                                       "'dead') AND op = 'solve'", (ticket.id,))
            if pending:
                return 0
            new_id = self.planner.replace_closed(ticket.id, f"the ticket was {status} on the helpdesk by a person")
            self._audit("ticket.closed_on_helpdesk", ticket.key, {"ticket": ticket.ref, "backend": self.name,
                                                                  "replaced_by": new_id})
            return 1
        fields: dict = {"remote_status": status, "synced_at": now}
        if status == "open" and ticket.taken_at is None:
            fields["taken_at"] = now
        with self.state.transaction() as db:
            update_ticket(db, ticket.id, **fields)
        return int(status != ticket.remote_status)

    # --- helpers -----------------------------------------------------------------------------

    def _thread_of(self, ticket: Ticket) -> TicketThread:
        return TicketThread(key=ticket.key, ref=ticket.ref or "", tenant=tenant_ticketing(self.config, ticket.tenant),
                            subject=ticket.subject, references=ticket.message_ids or (ticket.ref or "",))

    def _ticket(self, ticket_id: int) -> Ticket:
        rows = self.state.query("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        ticket = Ticket.from_row(rows[0]) if rows else None
        if ticket is None:
            raise sqlite3.IntegrityError(f"outbox operation refers to missing ticket {ticket_id}")
        return ticket

    def _close_backend(self) -> None:
        try:
            self.backend.close()
        except Exception as exc:  # noqa: BLE001 - releasing a session must not fail a delivered batch
            log.warning("ticket backend did not close cleanly", extra={"backend": self.name, "error": str(exc)})

    def _audit(self, action: str, subject: str, details: dict) -> None:
        if self.audit is not None:
            self.audit(action, subject, details)


def _finish_recovered(db: sqlite3.Connection, ticket_id: int, remote_status: str, now: float) -> None:
    """The helpdesk has the ticket solved or closed: a recovered ticket is done (an open one stays open)."""
    update_ticket(db, ticket_id, remote_status=remote_status)
    db.execute("UPDATE tickets SET state = 'done', finished_at = ? WHERE id = ? AND state = 'recovered'",
               (now, ticket_id))
