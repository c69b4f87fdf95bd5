"""The outbox → helpdesk: one backend's due operations, in order per ticket, retried until they land.

Exactly once without a distributed transaction: the call is made outside any
DB transaction and recorded after it; if Custode dies in between, the next try
repeats the call and the backend makes the repeat harmless (``find_open``
adopts the ticket a lost create made; follow-ups carry an op marker or a
deterministic Message-ID/delivery id). So a create is retried as often as
needed and still never duplicates, unlike integrations that stop retrying
creates for fear of duplicates.

A reopen (the same failure back within the warranty of a ticket Custode
solved) that lands leaves the ticket's ``remote_status`` where the helpdesk
now has it, read back (GLPI: new or assigned; Zendesk: open), or ``open``
where the backend cannot tell; one the helpdesk refuses because the ticket is
closed for good takes the path of a comment on a closed ticket: a new ticket
that references the old one.

Every error text and ticket URL is redacted (:mod:`custode.agent.redact`)
before it is logged, stored in the outbox or written to the audit log: they
quote URLs, and a URL may carry a credential.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from custode.agent.clock import Clock, current_time
from custode.agent.redact import redact_text, redact_url, redact_values, safe_exc_info
from custode.agent.state import State
from custode.agent.tickets import store
from custode.agent.tickets.backends.base import DeliveryError, TicketBackend, TicketClosed
from custode.agent.tickets.model import (
    OpKind,
    RemoteStatus,
    TenantTicketing,
    TicketDraft,
    TicketRef,
    TicketState,
    TicketThread,
)
from custode.agent.tickets.store import OutboxOp, Ticket

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.tickets.planner import TicketPlanner

log = logging.getLogger(__name__)
Audit = Callable[[str, str, dict], None]

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
        from custode.agent.profiles import queue_priority

        ranks = {tenant: queue_priority(self.config, tenant) for tenant in self.config.tenants}
        return store.due_ops(self.state, self.name, self.clock(), limit, ranks)

    def next_attempt_at(self) -> float | None:
        return store.next_attempt_at(self.state, self.name)

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
            store.count_attempt(db, op.id, self.clock())
        try:
            if op.op == OpKind.CREATE:
                remote = self._create(op, ticket)
                self._done(op, ticket, ref=remote)
                self._audit("ticket.created", ticket.key, {"ticket": remote.ref, "backend": self.name,
                                                            "priority": ticket.priority,
                                                            "url": redact_url(remote.url) if remote.url else None})
            elif op.op == OpKind.REOPEN:
                self._update(op, ticket)
                status, read_back = self._reopened_status(ticket)
                self._done(op, ticket, remote_status=status, synced=read_back)
                self._audit("ticket.reopened", ticket.key, {"ticket": ticket.ref, "backend": self.name,
                                                             "status": status})
            else:
                self._update(op, ticket)
                self._done(op, ticket)
        except TicketClosed as exc:
            self._closed_on_helpdesk(op, ticket, str(exc))
        except DeliveryError as exc:
            self._failed(op, ticket, str(exc), exc.retryable, exc.retry_after)
        except Exception as exc:  # a bug or an unforeseen answer: keep the op, try again later
            log.error("ticket operation failed unexpectedly", exc_info=safe_exc_info(exc),
                      extra={"op": op.id, "backend": self.name})
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
        if op.op == OpKind.COMMENT:
            self.backend.comment(thread, op.payload["text"], op_id=op.op_id, retry=retry)
        elif op.op == OpKind.PRIORITY:
            self.backend.set_priority(thread, op.payload["priority"], op.payload["text"], op_id=op.op_id,
                                      retry=retry)
        elif op.op == OpKind.SOLVE:
            self.backend.solve(thread, op.payload["text"], op_id=op.op_id, retry=retry)
        elif op.op == OpKind.REOPEN:
            self.backend.reopen(thread, op.payload["text"], op_id=op.op_id, retry=retry)
        else:
            raise DeliveryError(f"unknown ticket operation {op.op!r} in the outbox (written by a newer Custode?)",
                                retryable=False)

    # --- recording the outcome ------------------------------------------------------------------

    def _done(self, op: OutboxOp, ticket: Ticket, ref: TicketRef | None = None,
              remote_status: RemoteStatus | None = None, synced: bool = False) -> None:
        """Mark the op delivered with what it changed on the helpdesk, in one transaction.

        ``remote_status``: where the ticket now stands (after a reopen), ``synced`` when read back from the helpdesk.
        """
        now = self.clock()
        with self.state.transaction() as db:
            store.mark_delivered(db, op.id, now)
            if ref is not None:
                store.update_ticket(db, ticket.id, ref=ref.ref, url=redact_url(ref.url) if ref.url else ref.url,
                                    remote_status=ref.status, message_ids=(ref.ref,))
            if remote_status is not None:
                fields: dict = {"remote_status": remote_status}
                if synced:
                    fields["synced_at"] = now
                store.update_ticket(db, ticket.id, **fields)
            if op.op == OpKind.SOLVE:
                store.finish_recovered(db, ticket.id, RemoteStatus.SOLVED, now)

    def _failed(self, op: OutboxOp, ticket: Ticket, error: str, retryable: bool, retry_after: float | None) -> None:
        error = redact_text(error)  # stored as last_error, shown by 'custode tickets outbox', logged, audited
        now = self.clock()
        attempts = op.attempts + 1
        if retryable:
            delay = retry_after if retry_after is not None else self.backoff(attempts)
            with self.state.transaction() as db:
                store.reschedule(db, op.id, error, now + max(delay, 0.0))
            log.warning("ticket operation failed; will retry", extra={
                "incident": ticket.key, "op": op.op, "attempts": attempts, "retry_in": round(delay, 1),
                "error": error})
            return
        with self.state.transaction() as db:
            store.mark_undeliverable(db, op.id, error)
        log.error("ticket operation undeliverable; kept in the outbox ('custode tickets outbox')",
                  extra={"incident": ticket.key, "op": op.op, "error": error})
        self._audit("ticket.undeliverable", ticket.key, {"op": op.op, "op_id": op.op_id, "backend": self.name,
                                                         "error": error})

    def _closed_on_helpdesk(self, op: OutboxOp, ticket: Ticket, why: str) -> None:
        why = redact_text(why)
        now = self.clock()
        with self.state.transaction() as db:
            store.mark_superseded(db, op.id, why, now)
        if op.op == OpKind.SOLVE:
            with self.state.transaction() as db:
                store.finish_recovered(db, ticket.id, RemoteStatus.CLOSED, now)
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
        tickets = store.live_tickets_on_helpdesk(self.state, self.name)
        changed = 0
        try:
            for ticket in tickets:
                try:
                    status = self.backend.status(self._thread_of(ticket))
                except DeliveryError as exc:
                    log.warning("cannot read a ticket's state back",
                                extra={"ticket": ticket.ref, "error": redact_text(str(exc))})
                    if exc.retryable:
                        break
                    continue
                if status == RemoteStatus.UNKNOWN:
                    break  # this backend cannot tell; no point asking for every ticket
                changed += self._apply_status(ticket, status)
        finally:
            if tickets:
                self._close_backend()
        return changed

    def _apply_status(self, ticket: Ticket, status: RemoteStatus) -> int:
        now = self.clock()
        if status in (RemoteStatus.SOLVED, RemoteStatus.CLOSED):
            if ticket.state == TicketState.RECOVERED:
                with self.state.transaction() as db:
                    store.cancel_pending(db, ticket.id, (OpKind.SOLVE,), f"the ticket was {status} on the helpdesk",
                                         now)
                    store.finish_recovered(db, ticket.id, status, now)
                return 1
            if (store.has_undelivered(self.state, ticket.id, OpKind.SOLVE)
                    or store.has_undelivered(self.state, ticket.id, OpKind.REOPEN)):
                return 0  # Custode's own solve, or the reopen that undoes it, is still on its way
            new_id = self.planner.replace_closed(ticket.id, f"the ticket was {status} on the helpdesk by a person")
            self._audit("ticket.closed_on_helpdesk", ticket.key, {"ticket": ticket.ref, "backend": self.name,
                                                                  "replaced_by": new_id})
            return 1
        fields: dict = {"remote_status": status, "synced_at": now}
        if status == RemoteStatus.OPEN and ticket.taken_at is None:
            fields["taken_at"] = now
        with self.state.transaction() as db:
            store.update_ticket(db, ticket.id, **fields)
        return int(status != ticket.remote_status)

    def _reopened_status(self, ticket: Ticket) -> tuple[RemoteStatus, bool]:
        """Where the ticket stands after a reopen, and whether the helpdesk said so.

        Read back rather than assumed because GLPI puts a reopened ticket back to new or to assigned
        depending on who is assigned; a backend that cannot tell (e-mail, webhook) or a failed read gives
        ``open``, as a delivered solve gives ``solved``: the reopen was sent, and a row still saying
        ``solved`` would misstate the ticket to ``custode tickets list`` and to whatever judges it later.
        A read that fails is not retried: the reopen itself landed, and repeating it would gain nothing.
        """
        try:
            status = RemoteStatus(self.backend.status(self._thread_of(ticket)))
        except Exception as exc:  # noqa: BLE001 - the reopen landed; a failed read must not make it repeat
            log.warning("reopened the ticket but cannot read its state back; recording it open",
                        extra={"ticket": ticket.ref, "backend": self.name, "error": redact_text(str(exc))})
            return RemoteStatus.OPEN, False
        if status == RemoteStatus.UNKNOWN:
            return RemoteStatus.OPEN, False
        return status, True

    # --- helpers -----------------------------------------------------------------------------

    def _thread_of(self, ticket: Ticket) -> TicketThread:
        return TicketThread(key=ticket.key, ref=ticket.ref or "", tenant=tenant_ticketing(self.config, ticket.tenant),
                            subject=ticket.subject, references=ticket.message_ids or (ticket.ref or "",))

    def _ticket(self, ticket_id: int) -> Ticket:
        ticket = store.get_ticket(self.state, ticket_id)
        if ticket is None:
            raise sqlite3.IntegrityError(f"outbox operation refers to missing ticket {ticket_id}")
        return ticket

    def _close_backend(self) -> None:
        try:
            self.backend.close()
        except Exception as exc:  # noqa: BLE001 - releasing a session must not fail a delivered batch
            log.warning("ticket backend did not close cleanly",
                        extra={"backend": self.name, "error": redact_text(str(exc))})

    def _audit(self, action: str, subject: str, details: dict) -> None:
        if self.audit is not None:
            self.audit(action, subject, redact_values(details))
