"""The values that pass between the ticket planner, the outbox and the backends.

Backends see only these small frozen records, never the state DB, so each
backend can be tested against its HTTP fake alone.

The states and kinds below are ``StrEnum``: each member *is* the string stored
in the state DB (``tickets.state``, ``tickets.remote_status``,
``ticket_outbox.state``, ``ticket_outbox.op``), so rows written before these
names existed read the same and no migration is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

Priority = Literal["low", "medium", "high"]
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high")


class RemoteStatus(StrEnum):
    """What the helpdesk says of a ticket (``tickets.remote_status``)."""

    NEW = "new"
    """Nobody has taken it in charge yet."""
    OPEN = "open"
    """Taken in charge (assigned, in progress, pending)."""
    SOLVED = "solved"
    """Done, by Custode or by a person (so are ``closed`` ones)."""
    CLOSED = "closed"
    UNKNOWN = "unknown"
    """The backend cannot tell (e-mail, webhook)."""


class TicketState(StrEnum):
    """Where a ticket stands in Custode's own lifecycle (``tickets.state``)."""

    OPEN = "open"
    """The failure persists."""
    RECOVERED = "recovered"
    """It stopped, within the flap window: a return reuses the ticket."""
    DONE = "done"
    """Over: the flap window passed, or the helpdesk has it solved or closed after the recovery."""
    CLOSED_REMOTE = "closed_remote"
    """A person closed it on the helpdesk while the failure persisted; a new ticket references it."""


LIVE_STATES: tuple[TicketState, ...] = (TicketState.OPEN, TicketState.RECOVERED)
"""At most one ticket per incident key is in one of these (the ``tickets_one_live_per_key`` index)."""


class OpKind(StrEnum):
    """What one outbox operation does on the helpdesk (``ticket_outbox.op``)."""

    CREATE = "create"
    COMMENT = "comment"
    PRIORITY = "priority"
    SOLVE = "solve"
    REOPEN = "reopen"
    """The same failure back within the warranty after the ticket was solved: the helpdesk reopens it."""


class OpState(StrEnum):
    """Where one outbox operation stands (``ticket_outbox.state``)."""

    PENDING = "pending"
    """Waiting for its (next) try."""
    DONE = "done"
    """Delivered, or superseded because the helpdesk had closed the ticket."""
    DEAD = "dead"
    """Refused for good: shown by ``custode tickets outbox``, queued again by ``custode tickets retry``."""
    CANCELLED = "cancelled"
    """Withdrawn before delivery (a flap, the ticket closed on the helpdesk)."""


UNDELIVERED_STATES: tuple[OpState, ...] = (OpState.PENDING, OpState.DEAD)
"""Operations not delivered yet: they hold back the later operations of their ticket."""


@dataclass(frozen=True)
class TenantTicketing:
    """Per-comune options a backend may use when it opens a ticket."""

    tenant: str
    tenant_name: str
    language: str = "it"
    recipients: tuple[str, ...] = ()
    """E-mail backend: where the ticket mail goes (else the backend's own ``to``)."""
    requester: str | None = None
    """Zendesk: requester e-mail (the comune's referent); else the API user."""
    organization_id: int | None = None
    """Zendesk organization of the comune."""
    entity_id: int | None = None
    """GLPI entity (``entities_id``) of the comune."""


@dataclass(frozen=True)
class TicketDraft:
    """Everything needed to open one ticket."""

    key: str
    """The incident key (``tenant/check/target``); stored in the ticket so a retry finds it."""
    tenant: TenantTicketing
    subject: str
    """Without any marker: each backend adds its own (GLPI ``[custode:KEY]``)."""
    body: str
    priority: Priority
    due_at: datetime | None
    op_id: str
    """Stable across retries of this create: Idempotency-Key, Message-ID, webhook delivery id."""
    tags: tuple[str, ...] = ()
    previous_ref: str | None = None
    """The ticket a person closed while the failure persisted; the new one references it."""


@dataclass(frozen=True)
class TicketRef:
    """A ticket as the helpdesk knows it."""

    ref: str
    """Zendesk/GLPI ticket id, the first mail's Message-ID, or the webhook receiver's id."""
    url: str | None = None
    status: RemoteStatus = RemoteStatus.UNKNOWN


@dataclass(frozen=True)
class TicketThread:
    """An existing ticket that a follow-up, priority change or solve goes to."""

    key: str
    ref: str
    tenant: TenantTicketing
    subject: str
    references: tuple[str, ...] = field(default_factory=tuple)
    """E-mail: the Message-IDs sent so far for this ticket, oldest first (for References)."""
