"""Incident history → ticket operations in the outbox: the ticket lifecycle rules live here.

The planner reads ``incident_events`` after its cursor and, in the same
transaction that advances the cursor, writes the ticket rows and outbox
operations those events call for. It never talks to a helpdesk, so it is fast,
deterministic and safe to kill at any instant: a half-planned batch is rolled
back and planned again.

Rules: one live ticket per incident key; repeats become follow-ups,
at most one per ``followup_interval``, counting the repeats in between; a
severity change that changes the priority updates it; recovery writes a
resolution note and (``solve_on_recovery``) a solve that waits out the flap
window, so a failure that comes back within it reopens the same ticket instead
of opening a new one; a ticket a person closed while the failure persisted is
followed by a new one that references it.

Service levels: each ticket is planned on a level of its tenant's table
(:func:`custode.agent.tickets.sla.level_for`), which gives the helpdesk
priority and the due times; a severity change that moves the incident to
another level updates both. Warranty: a failure back within the table's
``warranty`` of a done ticket's resolution reopens that ticket. A tenant whose
service profile lacks the check's feature gets no ticket for it. An event whose
planning raises is set aside with its reason (``ticket_set_aside``) and an
incident ``ticket_planning`` of its own; the events after it are planned.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Callable

from custode.agent.calendar import ROME
from custode.agent.clock import Clock, current_time
from custode.agent.incidents import CheckResult, Incident, Incidents
from custode.agent.profiles import tickets_for_check
from custode.agent.redact import redact_text
from custode.agent.service_levels.clock import add_target
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
    last_done_ticket,
    live_ticket,
    open_tickets_with_held_repeats,
    planned_through,
    reopen_ticket,
    set_aside_event,
    start_cursor,
    update_ticket,
)

if TYPE_CHECKING:
    from custode.agent.config import Config

log = logging.getLogger(__name__)
BATCH = 500
PLANNING_CHECK = "ticket_planning"
"""The incident of an event whose planning failed (its target is the incident key it was about)."""


class TicketPlanner:
    def __init__(self, config: "Config", state: State, clock: Clock = current_time) -> None:
        self.config = config
        self.settings = config.tickets
        self.state = state
        self.clock = clock
        self._pending_reports: list[tuple[sqlite3.Row, str]] = []
        """Events set aside inside a transaction, reported (as incidents) once it is committed."""

    # --- configuration lookups --------------------------------------------------------

    def backend_for(self, tenant: str) -> str | None:
        """The backend that files ``tenant``'s tickets, or None (no tickets for it)."""
        if not self.settings.enabled:
            return None
        own = self.config.tenants.get(tenant)
        name = own.tickets.backend if own is not None and own.tickets.backend else self.settings.default_backend
        return None if name in (None, "none") or name not in self.settings.backends else name

    def _wants_ticket(self, incident: Incident) -> bool:
        """A backend files the tenant's tickets, and its service profile includes the check's service."""
        return (self.backend_for(incident.tenant) is not None
                and tickets_for_check(self.config, incident.tenant, incident.check))

    def level_for(self, incident: Incident, severity: str) -> str:
        """The service level of ``incident``'s ticket at ``severity`` (its tenant's table, else the default)."""
        return sla.level_for(self.config, incident.tenant, incident.check, incident.target, severity,
                             incident.details)

    def priority_for(self, tenant: str, level: str) -> str:
        return sla.priority_of(self.config, tenant, level)

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
                set_aside: list[tuple[sqlite3.Row, str]] = []
                for row in rows:
                    queued += self._guarded(db, row, row["event_id"], partial(self._plan_event, db, row),
                                            set_aside)
                if rows:
                    advance_cursor(db, rows[-1]["event_id"])
            set_aside += self._pending_reports
            self._pending_reports.clear()
            for row, reason in set_aside:
                self._report_set_aside(row, reason)
            if len(rows) < BATCH:
                return queued

    def _guarded(self, db: sqlite3.Connection, row: sqlite3.Row, event_id: int, plan: Callable[[], int],
                 set_aside: list[tuple[sqlite3.Row, str]]) -> int:
        """Plan one event inside a savepoint; if planning raises, undo it and set the event aside with the reason."""
        db.execute("SAVEPOINT plan_event")
        try:
            return plan()
        except Exception as exc:  # noqa: BLE001 - one bad event must not hold every other ticket
            db.execute("ROLLBACK TO plan_event")
            reason = redact_text(f"{type(exc).__name__}: {exc}")
            set_aside_event(db, event_id, row["key"], row["tenant"], reason, self.clock())
            set_aside.append((row, reason))
            return 0
        finally:
            db.execute("RELEASE plan_event")

    def _report_set_aside(self, row: sqlite3.Row, reason: str) -> None:
        """An incident of its own for an event that could not be planned, so a person looks at it."""
        log.error("an incident event could not be planned into a ticket; set aside, the others go on",
                  extra={"incident": row["key"], "event": row["event_id"], "reason": reason})
        if row["check_name"] == PLANNING_CHECK:
            return  # never an incident about the incident about planning: the log line and the row suffice
        summary = (f"the ticket for {row['key']} could not be planned ({reason}); the event is set aside in "
                   "ticket_set_aside; fix the cause (often the tenant's service_levels or tenants) and run "
                   "custode tickets set-aside --retry")
        # the provider's incident (agent.tenant), not the comune's: the fix is in the provider's config
        Incidents(self.state, clock=self.clock).observe(
            CheckResult(self.config.agent.tenant, PLANNING_CHECK, row["key"], "warning", summary,
                        {"event_id": row["event_id"], "reason": reason, "tenant": row["tenant"]}))

    def _cursor(self, db: sqlite3.Connection) -> int:
        """The last planned event; on the first run, start now and open tickets for incidents already open."""
        planned = planned_through(db)
        if planned is not None:
            return planned
        last = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM incident_events").fetchone()[0])
        now = self.clock()
        set_aside: list[tuple[sqlite3.Row, str]] = []
        for incident_row in db.execute(
                """SELECT i.*, (SELECT MAX(e.id) FROM incident_events e WHERE e.incident_id = i.id) AS event_id
                   FROM incidents i WHERE i.status = 'open' ORDER BY i.id""").fetchall():
            incident = Incident.from_row(incident_row)
            if self._wants_ticket(incident):
                self._guarded(db, incident_row, incident_row["event_id"] or -incident.id,
                              partial(self._open_new, db, incident, self.facts(incident), now), set_aside)
        start_cursor(db, last)
        self._pending_reports.extend(set_aside)
        return last

    def _plan_event(self, db: sqlite3.Connection, row: sqlite3.Row) -> int:
        incident = Incident.from_row(row)
        kind, now = row["event_kind"], float(row["event_at"])
        live = live_ticket(db, incident.key)
        if live is None and not self._wants_ticket(incident):
            return 0
        facts = self.facts(incident, row["event_message"], row["event_severity"])
        if kind == "resolved":
            if live is None or live.state != TicketState.OPEN:
                return 0
            return self._recovered(db, live, facts, now)
        if live is None:
            warranted = self._under_warranty(db, incident, now)
            if warranted is not None:
                return self._reopen(db, warranted, incident, facts, now)
            return self._open_new(db, incident, facts, now)
        queued = 0
        if live.state == TicketState.RECOVERED:
            queued += self._flapped(db, live, incident, facts, now)
            live = get_ticket(db, live.id)
            assert live is not None
        elif kind == "opened":
            update_ticket(db, live.id, incident_id=incident.id)
        level = self.level_for(incident, facts.severity)
        if level != live.level_key and self._reprioritise(db, live, facts, level, now):
            return queued + 1
        if kind in ("repeated", "severity_changed") or (kind == "opened" and not queued):
            queued += self._follow_up(db, live, facts, now, extra=1)
        return queued

    def _open_new(self, db: sqlite3.Connection, incident: Incident, facts: text.IncidentFacts, now: float,
                  previous: Ticket | None = None) -> int:
        backend = self.backend_for(incident.tenant) if previous is None else previous.backend
        assert backend is not None
        tenant = incident.tenant
        level = self.level_for(incident, facts.severity)
        priority = self.priority_for(tenant, level)
        opened = datetime.fromtimestamp(now, ROME)
        dues = self._dues(tenant, level, opened)
        due = dues["take_charge"]
        language = self.language(tenant)
        subject = text.ticket_subject(facts, language)
        body = text.opening_text(facts, language, priority, due, previous_ref=previous.ref if previous else None,
                                 sla=self._sla_words(tenant, level, language, dues))
        ticket_id = insert_ticket(db, key=incident.key, tenant=tenant, backend=backend,
                                  check=incident.check, incident_id=incident.id, priority=priority, subject=subject,
                                  opened_at=now, due_at=_ts(due), resolve_due_at=_ts(dues["resolve"]),
                                  restore_due_at=_ts(dues["restore"]), level=level,
                                  previous_id=previous.id if previous else None)
        enqueue(db, ticket_id, OpKind.CREATE, {"subject": subject, "body": body, "priority": priority,
                                               "due_at": due.isoformat() if due else None,
                                               "tags": [incident.check], "level": level}, now)
        return 1

    def _dues(self, tenant: str, level: str, opened: datetime) -> dict[str, datetime | None]:
        return {kind: sla.due(self.config, tenant, level, kind, opened)
                for kind in ("take_charge", "resolve", "restore")}

    def _sla_words(self, tenant: str, level: str, language: str,
                   dues: dict[str, datetime | None]) -> text.SlaWords:
        spec = sla.level_of(self.config, tenant, level)
        own = self.config.tenants.get(tenant)
        named = own is not None and own.service_levels is not None
        later = [(kind, target) for kind in ("resolve", "restore") if (target := spec.target(kind)) is not None]
        return text.SlaWords(
            level=(spec.label or level) if named else None,
            take_charge=spec.take_charge.describe(language) if spec.take_charge else None,
            take_charge_unit=spec.take_charge.unit.value if spec.take_charge else None,
            targets=tuple((kind, target.describe(language), target.unit.value, dues[kind]) for kind, target in later))

    def _under_warranty(self, db: sqlite3.Connection, incident: Incident, now: float) -> Ticket | None:
        """The done ticket of the same failure whose warranty (counted from its resolution) still runs."""
        warranty = sla.service_levels(self.config, incident.tenant).warranty
        if warranty is None:
            return None
        done = last_done_ticket(db, incident.key)
        if done is None or done.recovered_at is None or done.remote_status == RemoteStatus.CLOSED:
            return None
        calendar = sla.level_calendar(self.config, incident.tenant, self._known_level(done))
        ends = add_target(calendar, datetime.fromtimestamp(done.recovered_at, ROME), warranty)
        return done if now <= ends.timestamp() else None

    def _known_level(self, ticket: Ticket) -> str:
        """The ticket's level if its tenant's table still has it (a level renamed since), else the fallback."""
        table = sla.service_levels(self.config, ticket.tenant)
        return ticket.level_key if ticket.level_key in table.levels else table.fallback_level()

    def _reopen(self, db: sqlite3.Connection, ticket: Ticket, incident: Incident, facts: text.IncidentFacts,
                now: float) -> int:
        """The same failure within the warranty: the done ticket is open again, on the helpdesk too."""
        warranty = sla.service_levels(self.config, incident.tenant).warranty
        assert warranty is not None and ticket.recovered_at is not None
        language = self.language(ticket.tenant)
        body = text.reopen_text(facts, language, datetime.fromtimestamp(ticket.recovered_at, ROME),
                                warranty.describe(language))
        # a solve not delivered yet need not be undone on the helpdesk: withdraw it and comment instead
        withdrawn = cancel_pending(db, ticket.id, (OpKind.SOLVE,), "the failure came back within the warranty", now)
        reopen_ticket(db, ticket.id, incident.id, now)
        enqueue(db, ticket.id, OpKind.COMMENT if withdrawn else OpKind.REOPEN, {"text": body}, now)
        level = self.level_for(incident, facts.severity)
        queued = 1
        if level != ticket.level_key:
            reopened = get_ticket(db, ticket.id)
            assert reopened is not None
            queued += self._reprioritise(db, reopened, facts, level, now)
        return queued

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

    def _reprioritise(self, db: sqlite3.Connection, ticket: Ticket, facts: text.IncidentFacts, level: str,
                      now: float) -> int:
        """New level (so priority), and the due times recomputed from the opening with the new targets."""
        opened = datetime.fromtimestamp(ticket.opened_at, ROME)
        priority = self.priority_for(ticket.tenant, level)
        dues = self._dues(ticket.tenant, level, opened)
        due = dues["take_charge"]
        update_ticket(db, ticket.id, priority=priority, level=level, due_at=_ts(due),
                      resolve_due_at=_ts(dues["resolve"]), restore_due_at=_ts(dues["restore"]))
        if priority == ticket.priority:
            return 0  # another level with the same helpdesk priority: only the due times move
        update_ticket(db, ticket.id, repeats_pending=0, last_followup_at=now)
        body = text.priority_text(facts, self.language(ticket.tenant), ticket.priority, priority, due)
        enqueue(db, ticket.id, OpKind.PRIORITY, {"priority": priority, "text": body,
                                                 "due_at": due.isoformat() if due else None}, now)
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

    def retry_set_aside(self) -> tuple[int, int]:
        """Plan the events set aside again (after the config was fixed); return (planned, still set aside).

        An event whose incident has ended since is dropped: opening a ticket now for a failure that is over
        would be noise, and its recovery was seen by nobody.
        """
        from custode.agent.tickets.store import forget_set_aside, set_aside_rows

        planned = still = 0
        with self.state.transaction() as db:
            for aside in set_aside_rows(db):
                row = db.execute(
                    """SELECT e.id AS event_id, e.at AS event_at, e.kind AS event_kind, e.severity AS event_severity,
                              e.message AS event_message, i.*
                       FROM incident_events e JOIN incidents i ON i.id = e.incident_id WHERE e.id = ?""",
                    (aside["event_id"],)).fetchone()
                forget_set_aside(db, aside["event_id"])
                if row is None or (row["status"] != "open" and row["event_kind"] != "resolved"):
                    continue
                again: list[tuple[sqlite3.Row, str]] = []
                self._guarded(db, row, row["event_id"], partial(self._plan_event, db, row), again)
                if again:
                    still += 1
                else:
                    planned += 1
        return planned, still

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


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None
