"""Tickets as signed JSON POSTs, for a helpdesk or a script Custode has no dedicated backend for.

Every operation is one POST of a small, versioned JSON document to one URL.
The receiver cannot be queried, so idempotency rests on the delivery id
(``X-Custode-Delivery``, also sent as ``Idempotency-Key``): it is the outbox's
``op_id``, identical on every retry, and the receiver drops what it has seen.
Authenticity rests on ``X-Custode-Signature: sha256=<hex>``, an HMAC-SHA256 of
the exact body bytes with the shared secret; :func:`verify_signature` is the
check a receiver makes.

``event`` is ``create``, ``comment``, ``priority``, ``solve`` or ``reopen`` (the
same failure back within the warranty of a ticket Custode solved: put ``ref``
back in work, ``text`` says why). A receiver answers 410 Gone to a follow-up of
a ticket it closed for good: a reopen then becomes a new ticket with
``previous_ref``, as a comment would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import requests

from custode.agent.secrets import SecretError
from custode.agent.smtp_settings import SmtpSettings
from custode.agent.tickets.backends.base import DeliveryError, TicketBackend, TicketClosed, with_marker
from custode.agent.tickets.backends.http import HttpClient
from custode.agent.tickets.config import WebhookConfig
from custode.agent.tickets.model import Priority, TenantTicketing, TicketDraft, TicketRef, TicketThread

log = logging.getLogger(__name__)

PAYLOAD_VERSION = "1"
SIGNATURE_HEADER = "X-Custode-Signature"
DELIVERY_HEADER = "X-Custode-Delivery"
RESERVED_HEADERS = frozenset({"content-type", SIGNATURE_HEADER.lower(), DELIVERY_HEADER.lower(), "idempotency-key"})
"""Headers every request sets itself; ``headers`` from the config may not replace them."""
OK_STATUS = (200, 201, 202, 204)


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Custode-Signature`` value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str) -> bool:
    """True when ``header`` (``sha256=<hex>``) is the HMAC-SHA256 of ``body`` with ``secret``.

    For receivers: pass the raw request body as received, before any JSON
    parsing (re-serialising changes the bytes). The comparison takes the same
    time wherever the digests differ, so it leaks nothing about the right one.
    """
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not header or not isinstance(header, str):
        return False
    scheme, _, digest = header.strip().partition("=")
    if scheme.strip().lower() != "sha256" or not digest:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), digest.strip().lower().encode("ascii", "replace"))




class WebhookBackend(TicketBackend):
    """One signed JSON POST to ``config.url`` per operation."""

    kind = "webhook"

    def __init__(self, name: str, config: WebhookConfig) -> None:
        super().__init__(name)
        self.config = config
        self.extra_headers: dict[str, str] = {}
        for header, value in config.headers.items():
            if header.lower() in RESERVED_HEADERS:
                log.warning("ticket backend %r: header %s in tickets.backends.%s.headers is ignored: Custode "
                            "sets it on every request", name, header, name)
                continue
            self.extra_headers[header] = value
        self._client: HttpClient | None = None
        self._secret: bytes | None = None

    # --- the contract ----------------------------------------------------------------------

    def find_open(self, key: str, tenant: TenantTicketing) -> TicketRef | None:
        """The receiver cannot be queried; it dedupes creates by delivery id instead."""
        return None

    def create(self, draft: TicketDraft) -> TicketRef:
        payload = self._payload("create", draft.op_id, key=draft.key, tenant=draft.tenant, ref=None,
                                subject=draft.subject, text=with_marker(draft.body, draft.op_id),
                                priority=draft.priority, due_at=draft.due_at.isoformat() if draft.due_at else None,
                                previous_ref=draft.previous_ref, tags=list(draft.tags))
        response = self._post(payload, "create")
        return TicketRef(ref=self._created_id(response) or draft.key)

    def comment(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        self._follow_up("comment", thread, text, op_id, None)

    def set_priority(self, thread: TicketThread, priority: Priority, text: str, *, op_id: str,
                     retry: bool) -> None:
        self._follow_up("priority", thread, text, op_id, priority)

    def solve(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        self._follow_up("solve", thread, text, op_id, None)

    def reopen(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        """``event: reopen``; 410 Gone (closed for good on the receiver) raises TicketClosed, as for a comment."""
        self._follow_up("reopen", thread, text, op_id, None)

    def close(self) -> None:
        """Drop the connection pool and the secret, so a rotated secret is read on the next batch."""
        if self._client is not None:
            self._client.close()
        self._client = None
        self._secret = None

    # --- internals -------------------------------------------------------------------------

    def _follow_up(self, event: str, thread: TicketThread, text: str, op_id: str,
                   priority: Priority | None) -> None:
        """``retry`` needs nothing more: the receiver dedupes the repeated delivery id."""
        payload = self._payload(event, op_id, key=thread.key, tenant=thread.tenant, ref=thread.ref,
                                subject=thread.subject, text=with_marker(text, op_id), priority=priority,
                                due_at=None, previous_ref=None, tags=[])
        ok = OK_STATUS + (410,)
        response = self._post(payload, event, ok=ok)
        if response.status_code != 410:
            return
        if event == "solve":  # closed by a person: the ticket is done, which is what solve wanted
            log.info("ticket backend %r: ticket %s is already closed on the receiver; solve is done",
                     self.name, thread.ref)
            return
        raise TicketClosed(f"ticket backend {self.name!r}: {event} ({thread.ref}): the receiver answered "
                           "410 Gone, the ticket was closed there; a new ticket will be opened", thread.ref)

    def _payload(self, event: str, op_id: str, *, key: str, tenant: TenantTicketing, ref: str | None,
                 subject: str, text: str, priority: Priority | None, due_at: str | None,
                 previous_ref: str | None, tags: list[str]) -> dict[str, Any]:
        return {"version": PAYLOAD_VERSION, "event": event, "delivery_id": op_id, "key": key,
                "tenant": tenant.tenant, "tenant_name": tenant.tenant_name, "ref": ref, "subject": subject,
                "text": text, "priority": priority, "due_at": due_at, "previous_ref": previous_ref, "tags": tags}

    def _post(self, payload: dict[str, Any], what: str, ok: tuple[int, ...] = OK_STATUS) -> requests.Response:
        """Serialise once, sign those very bytes, send them."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        op_id = payload["delivery_id"]
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._key(), body),
                   DELIVERY_HEADER: op_id, "Idempotency-Key": op_id}
        return self._http().request("POST", self.config.url, what=what, ok=ok, data=body, headers=headers)

    def _created_id(self, response: requests.Response) -> str | None:
        """The receiver's ``{"id": ...}``, or None when it answered nothing (or not JSON) and the key serves."""
        if not response.content.strip():
            return None
        try:
            data = response.json()
        except ValueError:
            log.debug("ticket backend %r: create answered non-JSON; using the incident key as ref", self.name)
            return None
        value = data.get("id") if isinstance(data, dict) else None
        if value is None or isinstance(value, bool) or str(value).strip() == "":
            return None
        return str(value)

    def _http(self) -> HttpClient:
        if self._client is None:
            secret = self.config.secret.describe()
            self._client = HttpClient(
                self.name, self.config.url, tls_verify=self.config.tls_verify,
                ca_file=str(self.config.ca_file) if self.config.ca_file else None,
                timeout=self.config.timeout, headers=self.extra_headers,
                credential_hint=(f"the signature: the receiver must verify with the same key as "
                                 f"tickets.backends.{self.name}.secret ({secret})"))
        return self._client

    def _key(self) -> bytes:
        if self._secret is None:
            try:
                self._secret = self.config.secret.resolve().encode("utf-8")
            except SecretError as exc:
                raise DeliveryError(f"ticket backend {self.name!r}: cannot read tickets.backends.{self.name}"
                                    f".secret: {exc}", retryable=False) from None
        return self._secret


def build(name: str, config: WebhookConfig, smtp: SmtpSettings | None = None) -> WebhookBackend:
    """The ``tickets.backends`` entry of ``type: webhook`` (this module's name) as its backend."""
    return WebhookBackend(name, config)
