"""Ticket rows as the compliance report reads them: one *case* per failure, and whether its helpdesk tells.

A case is a ticket and the tickets that replaced it after a person closed it
on the helpdesk while the failure went on (``previous_id``): for the contract
that is one problem, opened once, with one take charge and one resolution, so
counting each replacement again would count the same failure twice and reset
its clock. Warranty reopens stay one row (the planner reopens the same ticket).

Whether a ticket's ``taken_at`` can be trusted depends on its helpdesk: Zendesk
and GLPI are read back (status ``open`` means taken in charge), e-mail and
webhooks cannot answer. This is asked of the backend classes themselves (does
the class override ``status``?), so a new backend is judged by what it does.
"""

from __future__ import annotations

import importlib
import inspect
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from custode.agent.tickets.model import TicketState

if TYPE_CHECKING:
    from custode.agent.config import Config


@dataclass(frozen=True)
class SlaTicket:
    """The columns of one ``tickets`` row that service levels are judged on."""

    id: int
    key: str
    tenant: str
    backend: str
    ref: str | None
    state: str
    priority: str
    level: str | None
    previous_id: int | None
    opened_at: float
    due_at: float | None
    resolve_due_at: float | None
    restore_due_at: float | None
    taken_at: float | None
    recovered_at: float | None
    finished_at: float | None
    reopened: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "SlaTicket":
        return cls(id=row["id"], key=row["key"], tenant=row["tenant"], backend=row["backend"], ref=row["ref"],
                   state=row["state"], priority=row["priority"], level=row["level"], previous_id=row["previous_id"],
                   opened_at=row["opened_at"], due_at=row["due_at"], resolve_due_at=row["resolve_due_at"],
                   restore_due_at=row["restore_due_at"], taken_at=row["taken_at"],
                   recovered_at=row["recovered_at"], finished_at=row["finished_at"], reopened=row["reopened"] or 0)


@dataclass(frozen=True)
class Case:
    """One failure: the ticket that opened it and, in order, the tickets that replaced it."""

    tickets: tuple[SlaTicket, ...]
    reads_status: bool
    """The first ticket's helpdesk tells when a ticket is taken in charge, and the ticket reached it."""

    @property
    def first(self) -> SlaTicket:
        return self.tickets[0]

    @property
    def last(self) -> SlaTicket:
        return self.tickets[-1]

    @property
    def opened_at(self) -> float:
        return self.first.opened_at

    @property
    def refs(self) -> list[str]:
        return [t.ref for t in self.tickets if t.ref]

    def taken_at(self) -> float | None:
        """When the case was first seen taken in charge on the helpdesk.

        The earliest ``taken_at`` of its tickets; a ticket a person closed on the
        helpdesk (``closed_remote``) was in someone's hands, so it counts as taken
        at the latest when it was closed.
        """
        moments = [t.taken_at for t in self.tickets if t.taken_at is not None]
        moments += [t.finished_at for t in self.tickets[:-1] if t.state == TicketState.CLOSED_REMOTE
                    and t.finished_at is not None]
        return min(moments) if moments else None

    def recovered_at(self) -> float | None:
        """When the failure stopped for good: the last ticket's recovery, None while it persists.

        A ticket open again (a flap, a warranty reopen) has no recovery: the
        planner clears ``recovered_at`` then, and an earlier recovery that did
        not hold is not a resolution. A ticket that ended without a recorded
        recovery (closed on the helpdesk after the incident was gone) ends at
        ``finished_at``.
        """
        last = self.last
        if last.state == TicketState.OPEN:
            return None
        return last.recovered_at if last.recovered_at is not None else last.finished_at


def cases_of(rows: Iterable[sqlite3.Row | SlaTicket], reads_status: "StatusReading") -> list[Case]:
    """Rows from :func:`custode.agent.tickets.store.compliance_rows` grouped into cases, by first ticket id."""
    tickets = [row if isinstance(row, SlaTicket) else SlaTicket.from_row(row) for row in rows]
    by_previous = {t.previous_id: t for t in tickets if t.previous_id is not None}
    ids = {t.id for t in tickets}
    cases = []
    for ticket in sorted(tickets, key=lambda t: t.id):
        if ticket.previous_id is not None and ticket.previous_id in ids:
            continue  # a replacement: part of its predecessor's case
        chain = [ticket]
        while chain[-1].id in by_previous and len(chain) <= len(tickets):
            chain.append(by_previous[chain[-1].id])
        cases.append(Case(tuple(chain), reads_status(ticket)))
    return cases


class StatusReading:
    """Whether a ticket's helpdesk reports taking in charge: by its backend's type in the config."""

    def __init__(self, config: "Config") -> None:
        self.types = {name: settings.type for name, settings in config.tickets.backends.items()}

    def __call__(self, ticket: SlaTicket) -> bool:
        if ticket.ref is None:
            return False  # never reached the helpdesk: nobody there could take it in charge
        kind = self.types.get(ticket.backend)
        if kind is None:  # a backend removed from the config since: trust what was read back, if anything
            return ticket.taken_at is not None
        return backend_reads_status(kind)


@lru_cache(maxsize=16)
def backend_reads_status(kind: str) -> bool:
    """Whether the backend of type ``kind`` answers ``status`` (its class overrides the base's "unknown")."""
    from custode.agent.tickets.backends.base import TicketBackend

    try:
        module = importlib.import_module(f"custode.agent.tickets.backends.{kind}")
    except ImportError:
        return False
    classes = [value for value in vars(module).values() if inspect.isclass(value) and issubclass(value, TicketBackend)
               and value is not TicketBackend and value.__module__ == module.__name__]
    return any(cls.status is not TicketBackend.status for cls in classes)
