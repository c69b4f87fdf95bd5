"""Incident history → ticket operations in the outbox: the ticket lifecycle rules live here.

The planner reads ``incident_events`` after its cursor and, in the same
transaction that advances the cursor, writes the ticket rows and outbox
operations those events call for. It never talks to a helpdesk, so it is fast,
deterministic and safe to kill at any instant: a half-planned batch is rolled
back and planned again.

Rules (issue 7): one live ticket per incident key; repeats become follow-ups,
at most one per ``followup_interval``, counting the repeats in between; a
severity change that changes the priority updates it; recovery writes a
resolution note and (``solve_on_recovery``) a solve that waits out the flap
window, so a failure that comes back within it reopens the same ticket instead
of opening a new one; a ticket a person closed while the failure persisted is
followed by a new one that references it.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING

from custode.agent.calendar import ROME
from custode.agent.clock import Clock, current_time
from custode.agent.incidents import Incident
from custode.agent.state import State
from custode.agent.tickets import sla, text
from custode.agent.tickets.model import LIVE_STATES, OpKind, RemoteStatus, TicketState
from custode.agent.tickets.store import (
    Ticket,
    advance_cursor,
    cancel_pending,
    enqueue,
    finish_flap_windows,
    flag_sla_breaches,
    get_ticket,
    insert_ticket,
    live_ticket,
    open_tickets_with_held_repeats,
    planned_through,
    start_cursor,
    update_ticket,
)

if TYPE_CHECKING:
    from custode.agent.config import Config

log = logging.getLogger(__name__)
BATCH = 500


class TicketPlanner:
    def __init__(self, config: "Config", state: State, clock: Clock = current_time) -> None:
        self.config = config
        self.settings = config.tickets
        self.state = state
        self.clock = clock

    # --- configuration lookups --------------------------------------------------------

    def backend_for(self, tenant: str) -> str | None:
        """The backend that files ``tenant``'s tickets, or None (no tickets for it)."""
        if not self.settings.enabled:
            return None
        own = self.config.tenants.get(tenant)
        name = own.tickets.backend if own is not None and own.tickets.backend else self.settings.default_backend
        return None if name in (None, "none") or name not in self.settings.backends else name

    def priority_for(self, check: str, severity: str) -> str:
        return self.settings.check_priorities.get(check) or self.settings.priorities.get(severity, "medium")

    def language(self, tenant: str) -> str:
        own = self.config.tenants.get(tenant)
        return own.language if own is not None else "it"

    def facts(self, incident: Incident, summary: str | None = None, severity: str | None = None) -> text.IncidentFacts:
        own = self.config.tenants.get(incident.tenant)
        facts = text.IncidentFacts.from_incident(incident, own.name if own is not None else incident.tenant)
        changes = {name: value for name, value in (("summary", summary), ("severity", severity)) if value}
        return dataclasses.replace(facts, **changes) if changes else facts

    # --- planning -----------------------------------------------------------------------

    def plan(self) -> int:
        """Plan every incident event not planned yet; return how many operations were queued."""
        queued = 0
        while True:
            with self.state.transaction() as db:
                cursor = self._cursor(db)
                rows = db.execute(
                    """SELECT e.id AS event_id, e.at AS event_at, e.kind AS event_kind, e.severity AS event_severity,
                              e.message AS event_message, i.*
                       FROM incident_events e JOIN incidents i ON i.id = e.incident_id
                       WHERE e.id > ? ORDER BY e.id LIMIT ?""", (cursor, BATCH)).fetchall()
                for row in rows:
                    queued += self._plan_event(db, row)
                if rows:
                    advance_cursor(db, rows[-1]["event_id"])
            if len(rows) < BATCH:
                return queued

    def _cursor(self, db: sqlite3.Connection) -> int:
        """The last planned event; on the first run, start now and open tickets for incidents already open."""
        planned = planned_through(db)
        if planned is not None:
            return planned
        last = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM incident_events").fetchone()[0])
        now = self.clock()
        for incident_row in db.execute("SELECT * FROM incidents WHERE status = 'open' ORDER BY id").fetchall():
            incident = Incident.from_row(incident_row)
            if self.backend_for(incident.tenant) is not None:
                self._open_new(db, incident, self.facts(incident), now)
        start_cursor(db, last)
        return last

    def _plan_event(self, db: sqlite3.Connection, row: sqlite3.Row) -> int:
        incident = Incident.from_row(row)
        kind, now = row["event_kind"], float(row["event_at"])
        live = live_ticket(db, incident.key)
        if live is None and self.backend_for(incident.tenant) is None:
            return 0
        facts = self.facts(incident, row["event_message"], row["event_severity"])
        if kind == "resolved":
            if live is None or live.state != TicketState.OPEN:
                return 0
            return self._recovered(db, live, facts, now)
        if live is None:
            return self._open_new(db, incident, facts, now)
        queued = 0
        if live.state == TicketState.RECOVERED:
            queued += self._flapped(db, live, incident, facts, now)
            live = get_ticket(db, live.id)
            assert live is not None
        elif kind == "opened":
            update_ticket(db, live.id, incident_id=incident.id)
        priority = self.priority_for(incident.check, facts.severity)
        if priority != live.priority:
            return queued + self._reprioritise(db, live, facts, priority, now)
        if kind in ("repeated", "severity_changed") or (kind == "opened" and not queued):
            queued += self._follow_up(db, live, facts, now, extra=1)
        return queued

    def _open_new(self, db: sqlite3.Connection, incident: Incident, facts: text.IncidentFacts, now: float,
                  previous: Ticket | None = None) -> int:
        backend = self.backend_for(incident.tenant) if previous is None else previous.backend
        assert backend is not None
        priority = self.priority_for(incident.check, facts.severity)
        opened = datetime.fromtimestamp(now, ROME)
        due = sla.take_charge_due(self.config, incident.tenant, priority, opened)
        resolve_due = sla.resolve_due(self.config, incident.tenant, priority, opened)
        language = self.language(incident.tenant)
        subject = text.ticket_subject(facts, language)
        body = text.opening_text(facts, language, priority, due, previous_ref=previous.ref if previous else None,
                                 sla_hours=sla.sla_hours(self.config, priority))
        ticket_id = insert_ticket(db, key=incident.key, tenant=incident.tenant, backend=backend,
                                  check=incident.check, incident_id=incident.id, priority=priority, subject=subject,
                                  opened_at=now, due_at=due.timestamp(),
                                  resolve_due_at=resolve_due.timestamp() if resolve_due else None,
                                  previous_id=previous.id if previous else None)
        enqueue(db, ticket_id, OpKind.CREATE, {"subject": subject, "body": body, "priority": priority,
                                               "due_at": due.isoformat(), "tags": [incident.check]}, now)
        return 1

    def _follow_up(self, db: sqlite3.Connection, ticket: Ticket, facts: text.IncidentFacts, now: float,
                   extra: int) -> int:
        """A follow-up if the interval has passed since the last one; else only count the repeat."""
        repeats = ticket.repeats_pending + extra
        if now - ticket.last_followup_at < self.settings.followup_interval:
            update_ticket(db, ticket.id, repeats_pending=repeats)
            return 0
        body = text.followup_text(facts, self.language(ticket.tenant), repeats, facts.summary,
                                  datetime.fromtimestamp(now, ROME))
        enqueue(db, ticket.id, OpKind.COMMENT, {"text": body}, now)
        update_ticket(db, ticket.id, repeats_pending=0, last_followup_at=now)
        return 1

    def _reprioritise(self, db: sqlite3.Connection, ticket: Ticket, facts: text.IncidentFacts, priority: str,
                      now: float) -> int:
        """New priority, and the take-charge due time recomputed from the opening with the new target."""
        opened = datetime.fromtimestamp(ticket.opened_at, ROME)
        due = sla.take_charge_due(self.config, ticket.tenant, priority, opened)
        resolve_due = sla.resolve_due(self.config, ticket.tenant, priority, opened)
        body = text.priority_text(facts, self.language(ticket.tenant), ticket.priority, priority, due)
        enqueue(db, ticket.id, OpKind.PRIORITY, {"priority": priority, "text": body, "due_at": due.isoformat()}, now)
        update_ticket(db, ticket.id, priority=priority, due_at=due.timestamp(),
                      resolve_due_at=resolve_due.timestamp() if resolve_due else None,
                      repeats_pending=0, last_followup_at=now)
        return 1

    def _recovered(self, db: sqlite3.Connection, ticket: Ticket, facts: text.IncidentFacts, now: float) -> int:
        solve_after = now + self.settings.flap_window if self.settings.solve_on_recovery else None
        language = self.language(ticket.tenant)
        note = text.recovery_text(facts, language, datetime.fromtimestamp(now, ROME),
                                  datetime.fromtimestamp(solve_after, ROME) if solve_after else None)
        enqueue(db, ticket.id, OpKind.COMMENT, {"text": note}, now)
        queued = 1
        if solve_after is not None:
            enqueue(db, ticket.id, OpKind.SOLVE, {"text": note}, now, not_before=solve_after)
            queued += 1
        update_ticket(db, ticket.id, state=TicketState.RECOVERED, recovered_at=now, repeats_pending=0,
                      last_followup_at=now)
        return queued

    def _flapped(self, db: sqlite3.Connection, ticket: Ticket, incident: Incident, facts: text.IncidentFacts,
                 now: float) -> int:
        """Back within the flap window: the same ticket goes on; its pending solve is withdrawn."""
        cancel_pending(db, ticket.id, (OpKind.SOLVE,), "the failure came back within the flap window", now)
        body = text.flap_text(facts, self.language(ticket.tenant),
                              datetime.fromtimestamp(ticket.recovered_at or now, ROME), ticket.flaps + 1)
        enqueue(db, ticket.id, OpKind.COMMENT, {"text": body}, now)
        update_ticket(db, ticket.id, state=TicketState.OPEN, recovered_at=None, flaps=ticket.flaps + 1,
                      incident_id=incident.id, repeats_pending=0, last_followup_at=now)
        return 1

    # --- after the helpdesk spoke -------------------------------------------------------------

    def replace_closed(self, ticket_id: int, why: str) -> int | None:
        """A person closed the ticket while the failure persists: a new ticket that references it.

        Returns the new ticket's id, or None when the incident is over (nothing to reopen).
        """
        now = self.clock()
        with self.state.transaction() as db:
            ticket = get_ticket(db, ticket_id)
            if ticket is None or ticket.state not in LIVE_STATES:
                return None
            cancel_pending(db, ticket.id, (OpKind.COMMENT, OpKind.PRIORITY, OpKind.SOLVE), why, now)
            update_ticket(db, ticket.id, state=TicketState.CLOSED_REMOTE, finished_at=now,
                          remote_status=RemoteStatus.CLOSED)
            if ticket.state == TicketState.RECOVERED:
                return None
            row = db.execute("SELECT * FROM incidents WHERE key = ? AND status = 'open'", (ticket.key,)).fetchone()
            if row is None:
                return None
            incident = Incident.from_row(row)
            self._open_new(db, incident, self.facts(incident), now, previous=ticket)
            new = live_ticket(db, ticket.key)
        log.warning("ticket closed on the helpdesk while the failure persists; opening a new one",
                    extra={"incident": ticket.key, "ticket": ticket.ref, "reason": why})
        return new.id if new else None

    def maintain(self) -> int:
        """Time-driven steps: flap windows that ended, held-back follow-ups now due, SLA breaches."""
        now = self.clock()
        queued = 0
        with self.state.transaction() as db:
            finish_flap_windows(db, now, now - self.settings.flap_window)
            flag_sla_breaches(db, now)
            rows = open_tickets_with_held_repeats(db, now - self.settings.followup_interval)
            for row in rows:
                ticket = get_ticket(db, row["ticket_id"])
                assert ticket is not None
                queued += self._follow_up(db, ticket, self.facts(Incident.from_row(row)), now, extra=0)
        return queued
