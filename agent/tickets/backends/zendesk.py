"""Zendesk Support (REST API v2): tickets opened, followed up and solved by Custode.

How the at-least-once delivery becomes exactly-once here:

* the incident key is the ticket's ``external_id``, so :meth:`ZendeskBackend.find_open`
  can adopt a ticket whose create succeeded but whose answer was lost. Zendesk
  does not keep ``external_id`` unique, so when several tickets carry the key
  the open one with the lowest id wins (the first one ever created);
* the create carries ``Idempotency-Key: op_id``: a retry within Zendesk's
  idempotency window gets the same ticket back instead of a second one;
* every text ends with :func:`op_marker`; a retried follow-up first reads the
  ticket's comments and writes nothing if its marker is already there.

A ticket a person closed cannot take a follow-up (Zendesk answers 422
"closed prevents ticket update"); one a person solved would be reopened by our
comment, which would undo their decision. Both raise :class:`TicketClosed` so
the planner opens a new ticket that references the old one. Solving a ticket
that is already solved or closed is a success: the goal is reached.

Reopening (the same failure back within the warranty of a ticket Custode
solved) is one ``PUT /api/v2/tickets/{id}.json`` with ``status: open`` and the
public comment: an agent's comment alone leaves a solved ticket solved (only an
end user's comment reopens it), and ``new`` is refused once a ticket has left
it. A ``closed`` ticket cannot be reopened at all ("Once a ticket is closed (as
distinct from solved), it can't be reopened", developer.zendesk.com, Creating
and updating tickets; the standard automation closes solved tickets after 4
days, at most 28): that raises :class:`TicketClosed`, and the new ticket that
follows carries ``via_followup_source_id`` so Zendesk links it to the closed
one as its follow-up.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from custode.agent.secrets import SecretError
from custode.agent.smtp_settings import SmtpSettings
from custode.agent.tickets.backends.base import DeliveryError, TicketBackend, TicketClosed, op_marker, with_marker
from custode.agent.tickets.backends.http import HttpClient
from custode.agent.tickets.config import ZendeskConfig
from custode.agent.tickets.model import Priority, RemoteStatus, TenantTicketing, TicketDraft, TicketRef, TicketThread

OPEN_STATUSES = frozenset({"new", "open", "pending", "hold"})
STATUS_MAP: dict[str, RemoteStatus] = {"new": RemoteStatus.NEW, "open": RemoteStatus.OPEN,
                                       "pending": RemoteStatus.OPEN, "hold": RemoteStatus.OPEN,
                                       "solved": RemoteStatus.SOLVED, "closed": RemoteStatus.CLOSED}
"""Zendesk's ticket statuses (the keys, its API's words) as the planner's."""
DEFAULT_PRIORITIES: dict[str, str] = {"low": "low", "medium": "normal", "high": "high"}
REOPENED_TAG = "custode_reopened"
MAX_PAGES = 50
"""Pages of 100 read at most when listing; a key with more than 5,000 tickets is a loop, not a history."""


class ZendeskBackend(TicketBackend):
    """One Zendesk Support account, reached with an agent's API token."""

    kind = "zendesk"

    def __init__(self, name: str, config: ZendeskConfig) -> None:
        super().__init__(name)
        self.config = config
        self.site = _site_url(config.url)
        self._http: HttpClient | None = None

    # -- the contract -------------------------------------------------------------------------------

    def find_open(self, key: str, tenant: TenantTicketing) -> TicketRef | None:
        what = f"Zendesk: look for the open ticket of {key}"
        tickets = self._list("/api/v2/tickets.json", "tickets", what, params={"external_id": key})
        # Compare the key ourselves: a proxy or an API version that ignored the filter
        # must not make us adopt somebody else's ticket.
        candidates = [t for t in tickets
                      if t.get("external_id") == key and t.get("status") in OPEN_STATUSES and _int_id(t) is not None]
        if not candidates:
            return None
        return self._ref(min(candidates, key=lambda t: _int_id(t) or 0))

    def create(self, draft: TicketDraft) -> TicketRef:
        what = f"Zendesk: create the ticket of {draft.key}"
        payload = self._create_payload(draft)
        response = self._client().request("POST", "/api/v2/tickets.json", what=what, ok=(200, 201),
                                          json=payload, headers={"Idempotency-Key": draft.op_id})
        return self._ref(self._ticket_of(response, what))

    def comment(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        self._update(thread, text, op_id=op_id, retry=retry, op="comment", changes={})

    def set_priority(self, thread: TicketThread, priority: Priority, text: str, *, op_id: str,
                     retry: bool) -> None:
        self._update(thread, text, op_id=op_id, retry=retry, op="priority change",
                     changes={"priority": self._priority(priority)})

    def solve(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        self._update(thread, text, op_id=op_id, retry=retry, op="solve", changes={"status": "solved"})

    def reopen(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        """``status: open`` with the comment; closed (or deleted) raises TicketClosed: Zendesk reopens neither."""
        self._update(thread, text, op_id=op_id, retry=retry, op="reopen", changes={"status": "open"})

    def status(self, thread: TicketThread) -> RemoteStatus:
        what = f"Zendesk: read the status of ticket #{thread.ref} ({thread.key})"
        ticket = self._get_ticket(thread.ref, what)
        if ticket is None:  # deleted by a person: as good as closed for the planner
            return RemoteStatus.CLOSED
        return STATUS_MAP.get(str(ticket.get("status")), RemoteStatus.UNKNOWN)

    def close(self) -> None:
        """Drop the HTTP session; the next call opens a new one (and re-reads the token)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- building blocks ----------------------------------------------------------------------------

    def _client(self) -> HttpClient:
        """The session, made at the first call so a missing token fails a delivery, not the start-up."""
        if self._http is None:
            config = self.config
            try:
                token = config.token.resolve()
            except SecretError as exc:
                raise DeliveryError(f"ticket backend {self.name!r}: cannot read the Zendesk API token: {exc}",
                                    retryable=False) from None
            self._http = HttpClient(
                self.name, self.site, tls_verify=config.tls_verify,
                ca_file=str(config.ca_file) if config.ca_file else None, timeout=float(config.timeout),
                auth=(f"{config.email}/token", token),
                credential_hint=(f"the API token of {config.email} ({config.token.describe()}); check the "
                                 "email and the token (Admin Center > Apps and integrations > Zendesk API) "
                                 "and that token access is enabled"))
        return self._http

    def _create_payload(self, draft: TicketDraft) -> dict[str, Any]:
        """The create body; deterministic for one draft, as Zendesk refuses a reused Idempotency-Key
        whose body differs."""
        body = draft.body
        tags = [*self.config.tags, *draft.tags]
        if draft.previous_ref:
            tags.append(REOPENED_TAG)
            if f"#{draft.previous_ref}" not in body:
                body = _previous_line(draft.previous_ref, draft.tenant.language) + "\n\n" + body
        ticket: dict[str, Any] = {
            "subject": draft.subject,
            "comment": {"body": with_marker(body, draft.op_id), "public": True},
            "priority": self._priority(draft.priority),
            "type": "incident",
            "external_id": draft.key,
            "tags": _tags(tags),
        }
        if self.config.group_id is not None:
            ticket["group_id"] = self.config.group_id
        if draft.tenant.requester:
            ticket["requester"] = {"email": draft.tenant.requester, "name": draft.tenant.tenant_name}
        if draft.tenant.organization_id is not None:
            ticket["organization_id"] = draft.tenant.organization_id
        previous = _int_id({"id": draft.previous_ref}) if draft.previous_ref else None
        if previous is not None:
            # Zendesk's own link to a closed ticket ("follow-up"); it has no effect on a ticket not closed.
            ticket["via_followup_source_id"] = previous
        return {"ticket": ticket}

    def _update(self, thread: TicketThread, text: str, *, op_id: str, retry: bool, op: str,
                changes: dict[str, Any]) -> None:
        """One PUT with a public comment, guarded against repeats and against closed tickets."""
        what = f"Zendesk: {op} of ticket #{thread.ref} ({thread.key})"
        marker = op_marker(op_id)
        if retry and self._has_marker(thread, marker, what):
            return
        ticket = self._get_ticket(thread.ref, what)
        if ticket is None:
            raise TicketClosed(f"ticket backend {self.name!r}: {what}: the ticket no longer exists on Zendesk "
                               "(deleted by a person); a new ticket will reference it", thread.ref)
        status = str(ticket.get("status"))
        if op == "solve" and status in ("solved", "closed"):
            return
        if op == "reopen":
            if status == "closed":
                raise TicketClosed(f"ticket backend {self.name!r}: {what}: the ticket is closed on Zendesk, which "
                                   "cannot reopen a closed ticket; a new ticket will reference it", thread.ref)
            if status != "solved":
                changes = {}  # open again already (a person, or the requester's reply): only the comment
        elif status in ("solved", "closed"):
            raise TicketClosed(f"ticket backend {self.name!r}: {what}: a person marked the ticket {status} on "
                               "Zendesk, so it cannot take this update; a new ticket will reference it", thread.ref)
        update: dict[str, Any] = {"comment": {"body": with_marker(text, op_id), "public": True}, **changes}
        if op == "solve" and ticket.get("assignee_id") is None:
            # Zendesk refuses to solve an unassigned ticket; the API agent takes it, as the UI would.
            update["assignee_email"] = self.config.email
        client = self._client()
        path = f"/api/v2/tickets/{_quote(thread.ref)}.json"
        response = client.request("PUT", path, what=what, ok=(200, 201, 422), json={"ticket": update})
        if response.status_code == 422:
            if "closed" in response.text.lower():
                raise TicketClosed(f"ticket backend {self.name!r}: {what}: Zendesk says the ticket is closed "
                                   "and cannot take this update; a new ticket will reference it", thread.ref)
            raise client.error(response, f"ticket backend {self.name!r}: {what} (PUT {client.url(path)})")

    def _has_marker(self, thread: TicketThread, marker: str, what: str) -> bool:
        """Whether a comment carrying ``marker`` is on the ticket already (the retried call got through)."""
        path = f"/api/v2/tickets/{_quote(thread.ref)}/comments.json"
        try:
            comments = self._list(path, "comments", f"{what}: read the comments", params={"per_page": 100})
        except DeliveryError as exc:
            if exc.status == 404:
                raise TicketClosed(f"ticket backend {self.name!r}: {what}: the ticket no longer exists on "
                                   "Zendesk (deleted by a person); a new ticket will reference it",
                                   thread.ref) from None
            raise
        return any(marker in str(comment.get(field) or "")
                   for comment in comments for field in ("body", "plain_body", "html_body"))

    def _get_ticket(self, ref: str, what: str) -> dict[str, Any] | None:
        """The ticket, or None when Zendesk no longer has it (404)."""
        client = self._client()
        response = client.request("GET", f"/api/v2/tickets/{_quote(ref)}.json", what=what, ok=(200, 404))
        if response.status_code == 404:
            return None
        return self._ticket_of(response, what)

    def _list(self, path: str, field: str, what: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every record of an offset-paginated list, following ``next_page`` on our own base URL.

        Only the path and query of ``next_page`` are kept, so the API token is never
        sent to another host than the configured one.
        """
        client = self._client()
        records: list[dict[str, Any]] = []
        request_params: dict[str, Any] | None = params
        for _ in range(MAX_PAGES):
            response = client.request("GET", path, what=what, ok=(200,), params=request_params)
            data = client.json(response, what)
            page = data.get(field) if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise DeliveryError(f"ticket backend {self.name!r}: {what}: the answer has no {field!r} list; "
                                    "is the url the Zendesk account's (https://SUBDOMAIN.zendesk.com)?",
                                    retryable=True, status=response.status_code)
            records.extend(item for item in page if isinstance(item, dict))
            next_page = data.get("next_page")
            if not next_page or not page:
                return records
            parts = urllib.parse.urlsplit(str(next_page))
            prefix = urllib.parse.urlsplit(self.site).path.rstrip("/")
            page_path = parts.path[len(prefix):] if prefix and parts.path.startswith(prefix + "/") else parts.path
            path = page_path + (f"?{parts.query}" if parts.query else "")
            request_params = None
        return records

    def _ticket_of(self, response: Any, what: str) -> dict[str, Any]:
        data = self._client().json(response, what)
        ticket = data.get("ticket") if isinstance(data, dict) else None
        if not isinstance(ticket, dict) or _int_id(ticket) is None:
            raise DeliveryError(f"ticket backend {self.name!r}: {what}: the answer has no ticket with an id; "
                                "is the url the Zendesk account's (https://SUBDOMAIN.zendesk.com)?",
                                retryable=True, status=response.status_code)
        return ticket

    def _ref(self, ticket: dict[str, Any]) -> TicketRef:
        number = _int_id(ticket)
        return TicketRef(ref=str(number), url=f"{self.site}/agent/tickets/{number}",
                         status=STATUS_MAP.get(str(ticket.get("status")), RemoteStatus.UNKNOWN))

    def _priority(self, priority: Priority) -> str:
        """Zendesk's priority for ours; a partial ``priorities`` map falls back to the defaults."""
        return self.config.priorities.get(priority) or DEFAULT_PRIORITIES[priority]


def _site_url(url: str) -> str:
    """The account's base URL; tolerate a url given with the API prefix (``…/api/v2``)."""
    url = url.rstrip("/")
    for suffix in ("/api/v2", "/api"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url




def _previous_line(previous_ref: str, language: str) -> str:
    if language == "it":
        return f"Questo ticket segue il ticket #{previous_ref}, chiuso mentre il problema era ancora presente."
    return f"This ticket follows ticket #{previous_ref}, which was closed while the problem persisted."


def _tags(tags: list[str]) -> list[str]:
    """Zendesk tags are lower case without spaces (a space would split one tag in two); no duplicates."""
    seen: list[str] = []
    for tag in tags:
        clean = "_".join(tag.strip().lower().split())
        if clean and clean not in seen:
            seen.append(clean)
    return seen


def _int_id(ticket: dict[str, Any]) -> int | None:
    value = ticket.get("id")
    if isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _quote(ref: str) -> str:
    """A ticket ref in a URL path: an id from the outbox, quoted so it can never change the path."""
    return urllib.parse.quote(str(ref), safe="")


def build(name: str, config: ZendeskConfig, smtp: SmtpSettings | None = None) -> ZendeskBackend:
    """The ``tickets.backends`` entry of ``type: zendesk`` (this module's name) as its backend."""
    return ZendeskBackend(name, config)
