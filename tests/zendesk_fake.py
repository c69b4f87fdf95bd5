"""A Zendesk Support API v2 test double: the endpoints Custode's Zendesk backend uses, on 127.0.0.1.

No Zendesk account is available to the test suite, so ``ZendeskFake`` keeps
tickets and their comments in memory and answers with Zendesk's JSON shapes:

* ``GET  /api/v2/tickets.json?external_id=K`` — list (offset pagination: ``page``, ``per_page``, ``next_page``);
* ``POST /api/v2/tickets.json`` — create, honouring ``Idempotency-Key`` (same key and same body: the same
  ticket, ``x-idempotency-lookup: hit``; same key, other body: 400 ``IdempotentRequestError``);
* ``GET  /api/v2/tickets/{id}.json`` and ``PUT /api/v2/tickets/{id}.json`` (a closed ticket answers 422
  ``Status: closed prevents ticket update``; solving needs an assignee);
* ``GET  /api/v2/tickets/{id}/comments.json``.

Reopening follows Zendesk's documented rules (developer.zendesk.com "Tickets" API reference and "Creating
and updating tickets"; support.zendesk.com "About native system ticket rules" and "About the standard
automations"): an agent's ``PUT`` with ``status: open`` reopens a solved ticket, an agent's comment alone does
not change the status, a ticket that left ``new`` cannot be set back to it, and a ``closed`` ticket can never
be reopened or updated (422 above); ``POST /api/v2/tickets.json`` with ``via_followup_source_id`` naming a
closed ticket creates its follow-up, listed in the closed ticket's ``followup_ids`` (no effect for a ticket
that is not closed). Solved tickets are not closed by time here: a test calls :meth:`ZendeskFake.close_ticket`
for what Zendesk's automation does after 4 days (at most 28).

Basic auth ``{email}/token:{token}`` is checked (401 ``Couldn't authenticate you`` otherwise). Faults are
injected from the test: :meth:`ZendeskFake.fail_next`, :meth:`ZendeskFake.fail_after_apply` (the ticket is
created or updated, then the answer is an error), :meth:`ZendeskFake.fail_ratio` (seeded random transient
failures), :meth:`ZendeskFake.hang_next`; and people act on tickets with :meth:`ZendeskFake.close_ticket`,
:meth:`ZendeskFake.solve_ticket`, :meth:`ZendeskFake.add_ticket`…

Thread-safe (one lock around the state) and reusable: as a context manager in a test, or as a separate
process that outlives a killed agent::

    python tests/zendesk_fake.py --port 8089 --state /tmp/zd.json [--fail-ratio 0.1 --seed 1]

which prints ``ZENDESK_FAKE_URL http://127.0.0.1:PORT`` once it listens and rewrites ``--state`` (atomic
rename) after every change; :func:`read_state` loads it back. Never imported by product code.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import html
import json
import os
import random
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from server_base import ThreadedHttpServer

PRIORITIES = ("low", "normal", "high", "urgent")
TYPES = ("problem", "incident", "question", "task")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
DEFAULT_TOKEN = "zendesk-fake-token"
DEFAULT_EMAIL = "custode@example.it"


@dataclass(frozen=True)
class Call:
    """One request as the fake received it (Authorization left out)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Fault:
    kind: str  # "fail" (answer an error, change nothing), "after" (apply, then answer an error), "hang"
    remaining: int
    match: str | None
    status: int = 503
    retry_after: float | None = None
    seconds: float | None = None
    apply: bool = False
    remember_key: bool = False

    def matches(self, method: str, path: str) -> bool:
        return self.match is None or self.match in f"{method} {path}"


@dataclass
class _Ratio:
    probability: float
    rng: random.Random
    statuses: tuple[int, ...]
    retry_after: float | None
    after_apply: float


@dataclass
class _Decision:
    """What the fault plan says of one request."""

    kind: str = "none"  # none / fail / after / hang
    status: int = 0
    retry_after: float | None = None
    seconds: float | None = None
    apply: bool = False
    remember_key: bool = False


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


class ZendeskFake(ThreadedHttpServer):
    """A fake Zendesk account on 127.0.0.1; a context manager, or ``start()``/``stop()``."""

    def __init__(self, *, email: str = DEFAULT_EMAIL, token: str = DEFAULT_TOKEN, port: int = 0,
                 state_file: str | Path | None = None, per_page: int = 100,
                 idempotency_ttl: float = 2 * 3600.0) -> None:
        self.email = email
        self.token = token
        self._port = port
        self.per_page = per_page
        self.idempotency_ttl = idempotency_ttl
        self.state_file = Path(state_file) if state_file else None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._calls: list[Call] = []
        self._faults: list[_Fault] = []
        self._ratio: _Ratio | None = None
        self._tickets: dict[int, dict[str, Any]] = {}
        self._comments: dict[int, list[dict[str, Any]]] = {}
        self._by_external: dict[str, list[int]] = {}
        self._idempotency: dict[str, dict[str, Any]] = {}
        self._users: dict[str, int] = {email.lower(): 1000}
        self._next_ticket = 1
        self._next_comment = 1
        self._next_user = 1001
        self._json_cache: dict[int, tuple[str, str]] = {}
        if self.state_file is not None and self.state_file.exists():
            self._load(read_state(self.state_file))

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def agent_id(self) -> int:
        """The user id of the API agent (``email``): author of what Custode writes."""
        return self._users[self.email.lower()]

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._stopping.clear()
        self._serve(handler, "zendesk-fake", _HttpServer)

    def stop(self) -> None:
        """Stop serving; hanging requests are released and their connections dropped unanswered."""
        self._stopping.set()
        self._shutdown()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- fault injection ----------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 503, retry_after: float | None = None, *,
                  match: str | None = None) -> None:
        """Answer the next ``n`` requests (matching ``match``, a substring of ``"METHOD /path"``) with
        ``status``, changing nothing; 429/503 carry ``Retry-After`` when ``retry_after`` is given."""
        with self._lock:
            self._faults.append(_Fault("fail", n, match, status=status, retry_after=retry_after))

    def fail_after_apply(self, n: int = 1, status: int = 500, *, match: str | None = "POST",
                         remember_key: bool = False) -> None:
        """Create/update for real, then answer ``status``: the client cannot know it worked.

        ``remember_key=False`` (default) also forgets the Idempotency-Key, as after Zendesk's
        idempotency window: only ``find_open`` can then prevent a duplicate.
        """
        with self._lock:
            self._faults.append(_Fault("after", n, match, status=status, remember_key=remember_key))

    def hang_next(self, n: int = 1, seconds: float | None = None, *, match: str | None = None,
                  apply: bool = False) -> None:
        """Accept the next ``n`` requests and send nothing.

        ``seconds=None``: until the server stops, then drop the connection. Otherwise answer
        normally after ``seconds`` (a slow Zendesk: the request takes effect late). ``apply=True``:
        the request takes effect at once and its answer never comes.
        """
        with self._lock:
            self._faults.append(_Fault("hang", n, match, seconds=seconds, apply=apply))

    def fail_ratio(self, probability: float, seed: int = 0, *, statuses: tuple[int, ...] = (500, 503, 429),
                   retry_after: float | None = 0, after_apply: float = 0.0) -> None:
        """Fail each request with ``probability`` (seeded, reproducible), status picked from ``statuses``.

        ``after_apply``: share of the failed writes (POST/PUT) that take effect before the error.
        ``probability=0`` turns it off.
        """
        with self._lock:
            self._ratio = (_Ratio(probability, random.Random(seed), statuses, retry_after, after_apply)
                           if probability > 0 else None)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._ratio = None

    def _decide(self, method: str, path: str) -> _Decision:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.kind == "hang":
                        return _Decision("hang", seconds=fault.seconds, apply=fault.apply)
                    return _Decision(fault.kind, fault.status, fault.retry_after, remember_key=fault.remember_key)
            self._faults = [fault for fault in self._faults if fault.remaining > 0]
            ratio = self._ratio
            if ratio is None or ratio.rng.random() >= ratio.probability:
                return _Decision()
            status = ratio.rng.choice(ratio.statuses)
            write = method in ("POST", "PUT")
            kind = "after" if write and ratio.rng.random() < ratio.after_apply else "fail"
            return _Decision(kind, status, ratio.retry_after)

    # -- what tests inspect -------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, path_part: str = "") -> list[Call]:
        return [call for call in self.calls if call.method == method and path_part in call.path]

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket (copies, Zendesk's shape), by id."""
        with self._lock:
            return [self._render(ticket) for _, ticket in sorted(self._tickets.items())]

    def ticket(self, ticket_id: int | str) -> dict[str, Any]:
        with self._lock:
            return self._render(self._tickets[int(ticket_id)])

    def comments(self, ticket_id: int | str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._comments.get(int(ticket_id), []))

    def all_comments(self) -> dict[int, list[dict[str, Any]]]:
        with self._lock:
            return copy.deepcopy(self._comments)

    # -- what people do on the helpdesk -------------------------------------------------------------

    def add_ticket(self, *, subject: str = "Ticket", body: str = "Opened by a person", external_id: str | None = None,
                   status: str = "new", priority: str | None = "normal", tags: list[str] | None = None,
                   assignee_id: int | None = None) -> int:
        """A ticket that did not come from Custode (another integration, a person, an old duplicate)."""
        with self._lock:
            requester = self._user("person@example.it")
            ticket = self._new_ticket({"subject": subject, "external_id": external_id, "priority": priority,
                                       "tags": tags or [], "type": "incident"}, requester, body=body, public=True)
            ticket["status"] = status
            ticket["assignee_id"] = assignee_id if assignee_id is not None else (
                self.agent_id if status in ("solved", "closed") else None)
            self._save(ticket["id"])
            return int(ticket["id"])

    def set_status(self, ticket_id: int | str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"{status!r} is not a Zendesk status ({', '.join(STATUSES)})")
        with self._lock:
            ticket = self._tickets[int(ticket_id)]
            ticket["status"] = status
            if status in ("solved", "closed") and ticket.get("assignee_id") is None:
                ticket["assignee_id"] = self._user("agent.person@example.it")
            ticket["updated_at"] = _now()
            self._save(ticket_id)

    def solve_ticket(self, ticket_id: int | str) -> None:
        self.set_status(ticket_id, "solved")

    def close_ticket(self, ticket_id: int | str) -> None:
        """A person closes the ticket: from now on Zendesk refuses every update (422)."""
        self.set_status(ticket_id, "closed")

    def delete_ticket(self, ticket_id: int | str) -> None:
        with self._lock:
            ticket = self._tickets.pop(int(ticket_id))
            self._comments.pop(int(ticket_id), None)
            if ticket.get("external_id"):
                self._by_external[ticket["external_id"]].remove(int(ticket_id))
            self._save(ticket_id)

    def add_comment(self, ticket_id: int | str, body: str, *, public: bool = True) -> None:
        """A person's comment."""
        with self._lock:
            self._add_comment(int(ticket_id), body, public, self._user("agent.person@example.it"))
            self._save(ticket_id)

    # -- the API ------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes,
               remember_key: bool = True) -> Reply:
        """One authenticated API request → the reply (status, JSON, headers)."""
        if not self._authorized(headers.get("authorization", "")):
            return Reply(401, {"error": "Couldn't authenticate you"})
        parts = [part for part in path.split("/") if part]
        if parts[:2] != ["api", "v2"] or len(parts) < 3:
            return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})
        route = [part.removesuffix(".json") for part in parts[2:]]
        with self._lock:
            if route == ["tickets"] and method == "GET":
                return self._list_tickets(path, query)
            if route == ["tickets"] and method == "POST":
                return self._create(body, headers.get("idempotency-key"), remember_key)
            if len(route) == 2 and route[0] == "tickets" and route[1].isdigit():
                if method == "GET":
                    ticket = self._tickets.get(int(route[1]))
                    return Reply(200, {"ticket": self._render(ticket)}) if ticket else _not_found()
                if method == "PUT":
                    return self._update(int(route[1]), body)
            if len(route) == 3 and route[0] == "tickets" and route[1].isdigit() and route[2] == "comments":
                if method == "GET":
                    return self._list_comments(int(route[1]), path, query)
        return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (secrets.compare_digest(user.lower(), f"{self.email}/token".lower())
                and secrets.compare_digest(password, self.token))

    def _list_tickets(self, path: str, query: dict[str, str]) -> Reply:
        if "external_id" in query:
            ids = list(self._by_external.get(query["external_id"], []))
        else:
            ids = sorted(self._tickets)
        return self._page("tickets", [self._render(self._tickets[i]) for i in ids], path, query)

    def _list_comments(self, ticket_id: int, path: str, query: dict[str, str]) -> Reply:
        if ticket_id not in self._tickets:
            return _not_found()
        comments = copy.deepcopy(self._comments.get(ticket_id, []))
        if query.get("sort_order") == "desc":
            comments.reverse()
        return self._page("comments", comments, path, query)

    def _page(self, name: str, records: list[dict[str, Any]], path: str, query: dict[str, str]) -> Reply:
        try:
            page = max(int(query.get("page", "1")), 1)
            per_page = min(max(int(query.get("per_page", str(self.per_page))), 1), 100)
        except ValueError:
            return Reply(400, {"error": "InvalidPaginationParameter", "description": "page and per_page are numbers"})
        start = (page - 1) * per_page

        def link(number: int) -> str:
            return f"{self.url}{path}?{urllib.parse.urlencode({**query, 'page': number, 'per_page': per_page})}"

        return Reply(200, {name: records[start:start + per_page],
                           "next_page": link(page + 1) if start + per_page < len(records) else None,
                           "previous_page": link(page - 1) if page > 1 else None,
                           "count": len(records)})

    def _create(self, raw: bytes, key: str | None, remember_key: bool) -> Reply:
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            return Reply(400, {"error": "Unprocessable Entity", "description": "body is not JSON"})
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()
        now = time.time()
        if key:
            seen = self._idempotency.get(key)
            if seen is not None and now - seen["at"] < self.idempotency_ttl:
                if seen["digest"] != digest:
                    return Reply(400, {"error": "IdempotentRequestError",
                                       "description": "this Idempotency-Key was used with another request body"})
                if seen["ticket_id"] not in self._tickets:  # deleted since: Zendesk would replay its answer
                    return Reply(seen["status"], seen["answer"], {"x-idempotency-lookup": "hit"})
                return Reply(seen["status"], {"ticket": self._render(self._tickets[seen["ticket_id"]])},
                             {"x-idempotency-lookup": "hit"})
        fields = data.get("ticket") if isinstance(data, dict) else None
        if not isinstance(fields, dict):
            return Reply(400, {"error": "Unprocessable Entity", "description": "expected {\"ticket\": {...}}"})
        comment = fields.get("comment") or {}
        text = (comment.get("body") or comment.get("html_body") if isinstance(comment, dict) else None) \
            or fields.get("description")
        if not text:
            return _invalid("description", "Description: cannot be blank", "BlankValue")
        invalid = self._invalid_fields(fields)
        if invalid is not None:
            return invalid
        requester = self._requester(fields)
        if isinstance(requester, Reply):
            return requester
        assignee = self._assignee(fields)
        if isinstance(assignee, Reply):
            return assignee
        status = fields.get("status") or ("open" if assignee else "new")
        if status == "solved" and assignee is None:
            return _invalid("assignee", "Assignee: is required when solving", "InvalidValue")
        public = comment.get("public", True) if isinstance(comment, dict) else True
        ticket = self._new_ticket(fields, requester, body=str(text), public=bool(public))
        ticket.update(status=status, assignee_id=assignee)
        source = self._tickets.get(fields["via_followup_source_id"]) \
            if isinstance(fields.get("via_followup_source_id"), int) else None
        if source is not None and source["status"] == "closed":  # "only works with closed tickets"
            source["followup_ids"] = [*source.get("followup_ids", []), ticket["id"]]
            self._save(source["id"])
        reply = Reply(201, {"ticket": self._render(ticket), "audit": self._audit(ticket)},
                      {"Location": f"{self.url}/api/v2/tickets/{ticket['id']}.json"})
        if key:
            reply.headers["x-idempotency-lookup"] = "miss"
            if remember_key:
                self._idempotency[key] = {"digest": digest, "status": 201, "ticket_id": ticket["id"],
                                          "answer": {"ticket": {"id": ticket["id"], "status": status}}, "at": now}
        self._save(ticket["id"])
        return reply

    def _update(self, ticket_id: int, raw: bytes) -> Reply:
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return _not_found()
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            return Reply(400, {"error": "Unprocessable Entity", "description": "body is not JSON"})
        fields = data.get("ticket") if isinstance(data, dict) else None
        if not isinstance(fields, dict):
            return Reply(400, {"error": "Unprocessable Entity", "description": "expected {\"ticket\": {...}}"})
        if ticket["status"] == "closed":
            return _invalid("status", "Status: closed prevents ticket update", "ClosedTicket")
        invalid = self._invalid_fields(fields)
        if invalid is not None:
            return invalid
        assignee = self._assignee(fields)
        if isinstance(assignee, Reply):
            return assignee
        assignee = assignee if assignee is not None else ticket.get("assignee_id")
        status = fields.get("status") or ticket["status"]
        if status == "new" and ticket["status"] != "new":
            return _invalid("status", "Status: cannot be set back to new", "InvalidValue")
        if status == "new" and assignee is not None:
            status = "open"
        if status == "solved" and assignee is None:
            return _invalid("assignee", "Assignee: is required when solving", "InvalidValue")
        for name in ("priority", "subject", "type", "group_id", "organization_id", "external_id"):
            if name in fields:
                ticket[name] = fields[name]
        if "external_id" in fields:
            self._index()
        if "tags" in fields:
            ticket["tags"] = _tags(fields["tags"])
        ticket.update(status=status, assignee_id=assignee, updated_at=_now())
        comment = fields.get("comment")
        if isinstance(comment, dict) and (comment.get("body") or comment.get("html_body")):
            self._add_comment(ticket_id, str(comment.get("body") or comment.get("html_body")),
                              bool(comment.get("public", True)), self.agent_id)
        self._save(ticket_id)
        return Reply(200, {"ticket": self._render(ticket), "audit": self._audit(ticket)})

    def _invalid_fields(self, fields: dict[str, Any]) -> Reply | None:
        for name, allowed in (("priority", PRIORITIES), ("type", TYPES), ("status", STATUSES)):
            value = fields.get(name)
            if value is not None and value not in allowed:
                return _invalid(name, f"{name.capitalize()}: {value!r} is not one of {', '.join(allowed)}",
                                "InvalidValue")
        tags = fields.get("tags")
        if tags is not None and not (isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)):
            return _invalid("tags", "Tags: must be a list of strings", "InvalidValue")
        return None

    def _requester(self, fields: dict[str, Any]) -> int | Reply:
        requester = fields.get("requester")
        if isinstance(requester, dict):
            address = str(requester.get("email") or "")
            if "@" not in address:
                return _invalid("requester", "Requester: email is invalid", "InvalidValue")
            return self._user(address)
        if isinstance(fields.get("requester_id"), int):
            return int(fields["requester_id"])
        return self.agent_id

    def _assignee(self, fields: dict[str, Any]) -> int | None | Reply:
        address = fields.get("assignee_email")
        if address is not None:
            if str(address).lower() != self.email.lower():
                return _invalid("assignee", f"Assignee: {address} is not an agent", "InvalidValue")
            return self.agent_id
        if isinstance(fields.get("assignee_id"), int):
            return int(fields["assignee_id"])
        return None

    # -- state --------------------------------------------------------------------------------------

    def _user(self, address: str) -> int:
        address = address.lower()
        if address not in self._users:
            self._users[address] = self._next_user
            self._next_user += 1
        return self._users[address]

    def _new_ticket(self, fields: dict[str, Any], requester: int, *, body: str, public: bool) -> dict[str, Any]:
        ticket_id = self._next_ticket
        self._next_ticket += 1
        now = _now()
        ticket = {
            "id": ticket_id, "external_id": fields.get("external_id"),
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": now, "updated_at": now, "type": fields.get("type"), "subject": fields.get("subject"),
            "raw_subject": fields.get("subject"), "description": body, "priority": fields.get("priority"),
            "status": "new", "recipient": None, "requester_id": requester, "submitter_id": self.agent_id,
            "assignee_id": None, "organization_id": fields.get("organization_id"), "group_id": fields.get("group_id"),
            "collaborator_ids": [], "follower_ids": [], "email_cc_ids": [], "forum_topic_id": None,
            "problem_id": None, "has_incidents": False, "is_public": public, "due_at": fields.get("due_at"),
            "tags": _tags(fields.get("tags") or []), "custom_fields": [], "satisfaction_rating": None,
            "sharing_agreement_ids": [], "fields": [], "followup_ids": [], "ticket_form_id": None,
            "brand_id": None, "allow_channelback": False, "allow_attachments": True,
            "from_messaging_channel": False,
        }
        self._tickets[ticket_id] = ticket
        self._comments[ticket_id] = []
        if ticket["external_id"]:
            self._by_external.setdefault(ticket["external_id"], []).append(ticket_id)
        self._add_comment(ticket_id, body, public, requester)
        return ticket

    def _add_comment(self, ticket_id: int, body: str, public: bool, author: int) -> None:
        comment_id = self._next_comment
        self._next_comment += 1
        paragraphs = "".join(f"<p>{html.escape(part)}</p>" for part in body.split("\n\n"))
        self._comments[ticket_id].append({
            "id": comment_id, "type": "Comment", "author_id": author, "body": body,
            "html_body": f'<div class="zd-comment" dir="auto">{paragraphs}</div>', "plain_body": body,
            "public": public, "attachments": [], "audit_id": comment_id, "via": {"channel": "api"},
            "created_at": _now(), "metadata": {"system": {}, "custom": {}},
        })
        self._tickets[ticket_id]["updated_at"] = _now()

    def _render(self, ticket: dict[str, Any]) -> dict[str, Any]:
        rendered = copy.deepcopy(ticket)
        rendered["url"] = f"{self.url}/api/v2/tickets/{ticket['id']}.json"
        return rendered

    def _audit(self, ticket: dict[str, Any]) -> dict[str, Any]:
        return {"id": self._next_comment, "ticket_id": ticket["id"], "created_at": _now(),
                "author_id": self.agent_id, "events": []}

    def _index(self) -> None:
        self._by_external = {}
        for ticket_id, ticket in sorted(self._tickets.items()):
            if ticket.get("external_id"):
                self._by_external.setdefault(ticket["external_id"], []).append(ticket_id)

    def _save(self, ticket_id: int | str) -> None:
        """Rewrite the state file (atomic rename) before the answer goes out, so what a client was told
        is on disk even if the client is killed right after.

        Each ticket is serialized again only when it changed: a full dump per change would make a
        1,000-ticket run quadratic.
        """
        if self.state_file is None:
            return
        ticket_id = int(ticket_id)
        if ticket_id in self._tickets:
            self._json_cache[ticket_id] = (json.dumps(self._tickets[ticket_id]),
                                           json.dumps(self._comments.get(ticket_id, [])))
        else:
            self._json_cache.pop(ticket_id, None)
        ids = sorted(self._json_cache)
        text = "".join([
            '{"tickets": [', ", ".join(self._json_cache[i][0] for i in ids), '], "comments": {',
            ", ".join(f'"{i}": {self._json_cache[i][1]}' for i in ids), '}, "idempotency": ',
            json.dumps(self._idempotency), ', "users": ', json.dumps(self._users), ', "next": ',
            json.dumps({"ticket": self._next_ticket, "comment": self._next_comment, "user": self._next_user}), "}",
        ])
        temporary = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.state_file)

    def _load(self, state: dict[str, Any]) -> None:
        self._tickets = {int(t["id"]): t for t in state.get("tickets", [])}
        self._comments = {int(i): list(c) for i, c in state.get("comments", {}).items()}
        self._idempotency = dict(state.get("idempotency", {}))
        self._users.update(state.get("users", {}))
        counters = state.get("next", {})
        self._next_ticket = int(counters.get("ticket", max(self._tickets, default=0) + 1))
        self._next_comment = int(counters.get("comment", 1))
        self._next_user = int(counters.get("user", 1001))
        self._index()
        self._json_cache = {i: (json.dumps(t), json.dumps(self._comments.get(i, [])))
                            for i, t in self._tickets.items()}


def read_state(path: str | Path) -> dict[str, Any]:
    """The state file of a fake run as a process: ``{"tickets": [...], "comments": {"id": [...]}, ...}``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _tags(tags: list[str]) -> list[str]:
    """As Zendesk stores them: lower case, split on spaces, no duplicates."""
    result: list[str] = []
    for tag in tags:
        for word in str(tag).lower().split():
            if word not in result:
                result.append(word)
    return result


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _not_found() -> Reply:
    return Reply(404, {"error": "RecordNotFound", "description": "Not found"})


def _invalid(name: str, description: str, error: str) -> Reply:
    return Reply(422, {"error": "RecordInvalid", "description": "Record validation errors",
                       "details": {name: [{"description": description, "error": error}]}})


def _fault_reply(status: int, retry_after: float | None) -> Reply:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    if status == 429:
        return Reply(429, {"error": "APIRateLimitExceeded", "description": "Rate limit exceeded"}, headers)
    if status == 503:
        return Reply(503, {"error": "ServiceUnavailable", "description": "Zendesk is in maintenance"}, headers)
    return Reply(status, {"error": "InternalServerError", "description": "Something went wrong"}, headers)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet for clients that hang up (a timed-out request); loud for bugs in the fake."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as a requests session reuses its connection."""

    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    timeout = 30
    wbufsize = 64 * 1024
    fake: ZendeskFake

    def setup(self) -> None:
        with self.fake._lock:
            self.fake._connections.add(self.request)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            with self.fake._lock:
                self.fake._connections.discard(self.request)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake = self.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        with fake._lock:
            fake._calls.append(Call(method, split.path, query,
                                    {k: v for k, v in headers.items() if k != "authorization"}, body))
        decision = fake._decide(method, split.path)

        def run(remember_key: bool = True) -> Reply:
            return fake.handle(method, split.path, query, headers, body, remember_key)

        if decision.kind == "fail":
            self._reply(_fault_reply(decision.status, decision.retry_after))
        elif decision.kind == "after":
            run(decision.remember_key)
            self._reply(_fault_reply(decision.status, decision.retry_after))
        elif decision.kind == "hang":
            if decision.apply:
                run()
            released = fake._stopping.wait(decision.seconds)
            if decision.apply or released or decision.seconds is None:
                self.close_connection = True  # never answered
                return
            self._reply(run())
        else:
            self._reply(run())

    def _reply(self, reply: Reply) -> None:
        payload = json.dumps(reply.body).encode("utf-8") if reply.body is not None else b""
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            self.close_connection = True


def main(argv: list[str] | None = None) -> int:
    """Run the fake as a process until SIGTERM/SIGINT (it outlives an agent killed with -9)."""
    parser = argparse.ArgumentParser(description="Zendesk Support API v2 test double on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--state", type=Path, help="JSON file rewritten after every change (and loaded at start)")
    parser.add_argument("--email", default=DEFAULT_EMAIL)
    parser.add_argument("--token", default=os.environ.get("ZENDESK_FAKE_TOKEN", DEFAULT_TOKEN),
                        help="default: $ZENDESK_FAKE_TOKEN, else " + DEFAULT_TOKEN)
    parser.add_argument("--fail-ratio", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--after-apply", type=float, default=0.0,
                        help="share of failed writes that take effect before the error")
    args = parser.parse_args(argv)
    fake = ZendeskFake(email=args.email, token=args.token, port=args.port, state_file=args.state)
    fake.fail_ratio(args.fail_ratio, args.seed, after_apply=args.after_apply)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with fake:
        print(f"ZENDESK_FAKE_URL {fake.url}", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
