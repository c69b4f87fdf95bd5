"""The contract every helpdesk backend fulfils, and the one error type it raises.

Delivery is at-least-once by nature (a crash after the helpdesk answered but
before the outbox row was marked done means the call is made again), so every
operation must be safe to repeat:

* ``create``: the planner calls :meth:`TicketBackend.find_open` first and adopts
  the ticket it finds; the create itself carries ``draft.op_id`` (Idempotency-Key,
  deterministic Message-ID, webhook delivery id);
* ``comment``/``set_priority``/``solve``/``reopen``: every text ends with
  :func:`op_marker`; when ``retry`` is true the backend looks for that marker
  on the ticket before writing again (or relies on a deterministic Message-ID /
  delivery id where it cannot look).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from custode.agent.redact import redact_text
from custode.agent.tickets.model import Priority, RemoteStatus, TenantTicketing, TicketDraft, TicketRef, TicketThread


class DeliveryError(Exception):
    """A ticket operation failed; the message names the helpdesk, the call and the fix.

    ``retryable``: trying the same call later may succeed (outage, 5xx, 429,
    timeout); False for what only a person can fix (401, 403, 404, 422 on a
    field). ``retry_after``: seconds the helpdesk asked us to wait (Retry-After).

    The message is redacted here (:func:`custode.agent.redact.redact_text`):
    it quotes URLs and helpdesk answers, and goes on to the logs, the outbox
    and the audit log, so no credential in a URL can ride along.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(redact_text(message))
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class TicketClosed(DeliveryError):
    """The ticket was closed on the helpdesk (by a person) and cannot take this update.

    The planner answers with a new ticket that references the closed one.
    """

    def __init__(self, message: str, ref: str) -> None:
        super().__init__(message, retryable=False)
        self.ref = ref


def op_marker(op_id: str) -> str:
    """The line that ends every text Custode writes into a ticket, so a retry can see it was written."""
    return f"[custode-op:{op_id}]"


def with_marker(text: str, op_id: str) -> str:
    """``text`` ending with its op marker line, once (the planner may already have put it there)."""
    marker = op_marker(op_id)
    body = text.rstrip()
    if body.endswith(marker):
        return body
    return f"{body}\n\n{marker}" if body else marker


class TicketBackend(ABC):
    """One configured helpdesk. Instances are used by one delivery thread at a time."""

    kind: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def find_open(self, key: str, tenant: TenantTicketing) -> TicketRef | None:
        """The open (not solved, not closed) ticket that carries ``key``, or None.

        Backends that cannot search (e-mail, webhook) return None; their
        create is made idempotent another way.
        """

    @abstractmethod
    def create(self, draft: TicketDraft) -> TicketRef:
        """Open the ticket; safe to repeat with the same ``draft.op_id``."""

    @abstractmethod
    def comment(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        """Add a follow-up visible to the comune; raise TicketClosed if the ticket is closed."""

    @abstractmethod
    def set_priority(self, thread: TicketThread, priority: Priority, text: str, *, op_id: str,
                     retry: bool) -> None:
        """Change the priority and say why in a follow-up."""

    @abstractmethod
    def solve(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        """Write the resolution note and mark the ticket solved; a ticket already solved is fine."""

    @abstractmethod
    def reopen(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        """Put a ticket Custode solved back in work, with ``text`` saying why; raise TicketClosed when it can't be.

        The same failure back within the contract's warranty is the same intervention, so the helpdesk must
        show the old ticket open again rather than a new one. A ticket the helpdesk no longer lets anyone
        reopen (Zendesk ``closed``, GLPI ``closed``, deleted) raises TicketClosed, and the delivery opens a
        new ticket that references it, as for a comment on a closed ticket. A ticket already open again
        (a person reopened it) only gets the text.
        """

    def status(self, thread: TicketThread) -> RemoteStatus:
        """Where the ticket stands on the helpdesk; ``unknown`` when the backend cannot tell."""
        return RemoteStatus.UNKNOWN

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what a batch held; the default does nothing, as only session backends (GLPI) hold anything."""

