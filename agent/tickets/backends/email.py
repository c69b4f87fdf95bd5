"""Tickets as e-mail to a helpdesk that ingests mail (osTicket, OTRS/Znuny, Zammad, a shared mailbox).

Mail cannot be searched nor read back, so this backend makes every operation
idempotent through the one thing a mail-ingesting helpdesk dedupes on: the
``Message-ID``. It is derived from the outbox's ``op_id``, so the resend after
a crash carries the same id as the first attempt and the helpdesk drops it.
Follow-ups thread on the first mail with ``In-Reply-To``/``References`` and
carry ``[custode:KEY]`` in the subject for helpdesks that thread by subject.

A reopen is such a reply too (``X-Custode-Event: reopen``, the text saying the
ticket is reopened): a mail-ingesting helpdesk reopens a ticket on a reply in
its thread when its queue or group allows follow-ups, which is all mail can
ask; whether it did, Custode cannot read back.
"""

from __future__ import annotations

import hashlib
import re

from custode.agent.mailer import Mailer, MailerError, OutgoingMail
from custode.agent.smtp_settings import SmtpSettings, parse_address
from custode.agent.tickets.backends.base import DeliveryError, TicketBackend, with_marker
from custode.agent.tickets.config import EmailConfig
from custode.agent.tickets.model import Priority, TenantTicketing, TicketDraft, TicketRef, TicketThread

X_PRIORITY: dict[Priority, str] = {"high": "1", "medium": "3", "low": "5"}
"""The de-facto ``X-Priority`` scale (1 highest, 5 lowest) most helpdesks map to their own."""
IMPORTANCE: dict[Priority, str] = {"high": "high", "medium": "normal", "low": "low"}
"""``Importance`` (RFC 2156), the header Outlook/Exchange-based helpdesks read."""

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,48}")


def ticket_subject(subject: str, key: str) -> str:
    """``subject [custode:KEY]`` on one line (a header cannot hold a line break)."""
    text = " ".join(subject.split())
    marker = f"[custode:{key}]"
    return text if marker in text else f"{text} {marker}".strip()


def reply_subject(subject: str, key: str) -> str:
    """``Re: subject [custode:KEY]``, without stacking ``Re:`` on a subject that has one."""
    text = ticket_subject(subject, key)
    return text if text[:3].lower() == "re:" else f"Re: {text}"




def message_id_for(op_id: str, sender: str) -> str:
    """``<custode.OP@sender-domain>``: the same op always gets the same Message-ID.

    An op id with characters a Message-ID cannot hold is replaced by its hash,
    which is just as deterministic.
    """
    local = op_id if _SAFE_ID.fullmatch(op_id) else "h" + hashlib.sha256(op_id.encode("utf-8")).hexdigest()[:32]
    domain = parse_address(sender).domain.strip("[]")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return f"<custode.{local}@{domain}>"


class EmailBackend(TicketBackend):
    """One mail per operation, through the configured SMTP server."""

    kind = "email"

    def __init__(self, name: str, config: EmailConfig, smtp: SmtpSettings | None) -> None:
        super().__init__(name)
        self.config = config
        self.smtp = config.smtp or smtp

    # --- the contract ----------------------------------------------------------------------

    def find_open(self, key: str, tenant: TenantTicketing) -> TicketRef | None:
        """Mail cannot be searched; the deterministic Message-ID makes the create idempotent instead."""
        return None

    def create(self, draft: TicketDraft) -> TicketRef:
        settings = self._settings("create")
        message_id = message_id_for(draft.op_id, settings.sender)
        headers = self._headers(draft.key, draft.tenant, "create", draft.priority)
        if draft.due_at is not None:
            headers["X-Custode-Due"] = draft.due_at.isoformat()
        if draft.previous_ref:
            # A header, not References: threading on the closed ticket would reopen it on some helpdesks.
            headers["X-Custode-Previous-Ticket"] = draft.previous_ref
        mail = OutgoingMail(to=self._recipients(draft.tenant), subject=ticket_subject(draft.subject, draft.key),
                            text=with_marker(draft.body, draft.op_id), message_id=message_id, headers=headers)
        self._send(settings, mail, "create")
        return TicketRef(ref=message_id)

    def comment(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        self._reply(thread, text, op_id, "comment", None)

    def set_priority(self, thread: TicketThread, priority: Priority, text: str, *, op_id: str,
                     retry: bool) -> None:
        self._reply(thread, text, op_id, "priority", priority)

    def solve(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        self._reply(thread, text, op_id, "solve", None)

    def reopen(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        """A reply in the ticket's thread: what makes a mail-ingesting helpdesk reopen a solved ticket."""
        self._reply(thread, text, op_id, "reopen", None)

    # --- internals -------------------------------------------------------------------------

    def _reply(self, thread: TicketThread, text: str, op_id: str, event: str, priority: Priority | None) -> None:
        """A follow-up mail threaded on the ticket; ``retry`` needs nothing: the Message-ID is the same."""
        settings = self._settings(event)
        references = list(thread.references) or [thread.ref]
        headers = self._headers(thread.key, thread.tenant, event, priority)
        mail = OutgoingMail(to=self._recipients(thread.tenant), subject=reply_subject(thread.subject, thread.key),
                            text=with_marker(text, op_id), message_id=message_id_for(op_id, settings.sender),
                            in_reply_to=thread.ref, references=references, headers=headers)
        self._send(settings, mail, event)

    def _headers(self, key: str, tenant: TenantTicketing, event: str, priority: Priority | None) -> dict[str, str]:
        """Headers a helpdesk's mail rules can route on without parsing the body."""
        headers = {"X-Custode-Incident": key, "X-Custode-Tenant": tenant.tenant, "X-Custode-Event": event}
        if priority is not None:
            headers["X-Priority"] = X_PRIORITY[priority]
            headers["Importance"] = IMPORTANCE[priority]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                headers[name] = " ".join(value.split())
        return headers

    def _settings(self, what: str) -> SmtpSettings:
        if self.smtp is None:
            raise DeliveryError(f"ticket backend {self.name!r} (email): {what}: no SMTP server configured; add "
                                f"an smtp section at the top of the config or under tickets.backends.{self.name}"
                                ".smtp, then run 'custode tickets retry'", retryable=False)
        return self.smtp

    def _recipients(self, tenant: TenantTicketing) -> list[str]:
        recipients = list(tenant.recipients) or list(self.config.to)
        if not recipients:
            raise DeliveryError(f"ticket backend {self.name!r} (email): nobody to send the ticket of comune "
                                f"{tenant.tenant!r} to; set tenants.{tenant.tenant}.tickets.recipients or "
                                f"tickets.backends.{self.name}.to, then run 'custode tickets retry'",
                                retryable=False)
        return recipients

    def _send(self, settings: SmtpSettings, mail: OutgoingMail, what: str) -> None:
        where = f"ticket backend {self.name!r} (email): {what}"
        try:
            Mailer(settings).send(mail)
        except MailerError as exc:
            # A partial delivery is resent to everyone: the same Message-ID lets the helpdesk drop the copy.
            then = "" if exc.retryable else "; once fixed, run 'custode tickets retry'"
            raise DeliveryError(f"{where}: {exc}{then}", retryable=exc.retryable) from None
        except ValueError as exc:
            raise DeliveryError(f"{where}: the mail cannot be built ({exc}); check the addresses in "
                                f"tickets.backends.{self.name} and the tenant's tickets.recipients",
                                retryable=False) from None


def build(name: str, config: EmailConfig, smtp: SmtpSettings | None = None) -> EmailBackend:
    """The ``tickets.backends`` entry of ``type: email`` (this module's name) as its backend."""
    return EmailBackend(name, config, smtp)
