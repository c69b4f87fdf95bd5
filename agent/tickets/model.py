"""The values that pass between the ticket planner, the outbox and the backends.

Backends see only these small frozen records, never the state DB, so each
backend can be tested against its HTTP fake alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Priority = Literal["low", "medium", "high"]
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high")

RemoteStatus = Literal["new", "open", "solved", "closed", "unknown"]
"""What the helpdesk says of a ticket.

``new``: nobody has taken it in charge yet; ``open``: taken in charge (assigned,
in progress, pending); ``solved``/``closed``: done, by Custode or by a person;
``unknown``: the backend cannot tell (e-mail, webhook).
"""


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
    status: RemoteStatus = "unknown"


@dataclass(frozen=True)
class TicketThread:
    """An existing ticket that a follow-up, priority change or solve goes to."""

    key: str
    ref: str
    tenant: TenantTicketing
    subject: str
    references: tuple[str, ...] = field(default_factory=tuple)
    """E-mail: the Message-IDs sent so far for this ticket, oldest first (for References)."""
