"""A fake GLPI legacy REST API (``apirest.php``) on 127.0.0.1, for the GLPI ticket backend's tests.

It implements the endpoints Custode uses, with GLPI's JSON shapes and error
arrays (``["ERROR_…", "message"]``): sessions (initSession/killSession with
user_token and App-Token checks), ``search/Ticket`` with criteria, tickets,
follow-ups and solutions in memory. Like GLPI 10 it stores texts
HTML-encoded, and it reopens a solved ticket that gets a follow-up.

Reopening follows GLPI's source (glpi-project/glpi: ``src/ITILFollowup.php``
``prepareInputForAdd``/``canCreateItem``, ``src/Glpi/Features/ParentStatus.php``
``updateParentStatus``, ``CommonITILObject::needReopen``/``getReopenableStatusArray``,
``Ticket::canReopen``; sub-items as in ``apirest.md`` "Get sub items"):

* a follow-up reopens a solved (or pending) ticket when it carries ``add_reopen`` or when its
  author is a requester of the ticket and not assigned to it (GLPI ≥ 10.0.1's
  ``needReopen``; the API user is the requester of the tickets it opens, GLPI's
  default). The new status is 2 "processing (assigned)" when a user, group or
  supplier is assigned (``CommonITILActor::ASSIGN`` = 2), else 1 "new";
* a closed ticket takes no follow-up unless the profile's lifecycle lets it be
  reopened (``closed_reopenable``), and then the same rule applies;
* actors are ``Ticket_User``/``Group_Ticket``/``Supplier_Ticket`` rows, read with
  ``GET Ticket/{id}/Ticket_User`` and so on; assigning one to a new ticket
  moves it to 2, as GLPI does;
* ``reopen_on_followup=False`` plays a GLPI (or a plugin) that leaves the
  status alone on a follow-up, so only an explicit ``PUT`` status reopens;
  ``refuse_status`` makes that ``PUT`` answer ``[{"<id>": false, ...}]``.

Faults are injected from the tests: errors before or *after* the request took
effect (the answer lost), random errors, hangs, and a person solving or
closing a ticket. Everything is guarded by one lock, so the delivery loop's
crash tests may hammer it from several threads.
"""

from __future__ import annotations

import html
import itertools
import json
import random
import re
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conftest import free_port
from server_base import ThreadedHttpServer

API = "/glpi/apirest.php"
NEW, ASSIGNED, WAITING, SOLVED, CLOSED = 1, 2, 4, 5, 6
REOPENABLE = (WAITING, SOLVED, CLOSED)
"""``CommonITILObject::getReopenableStatusArray``."""
REQUESTER, ASSIGN = 1, 2
"""``CommonITILActor`` types."""
API_USER = 2
"""The users_id of the API user (GLPI's "glpi" super-admin has id 2)."""
ACTOR_FIELDS = {"Ticket_User": "users_id", "Group_Ticket": "groups_id", "Supplier_Ticket": "suppliers_id"}
CONTENT_TYPE = "application/json; charset=UTF-8"


@dataclass
class _Fault:
    """``count`` requests matching ``method``/``path`` (a regex searched in the endpoint) fail."""

    count: int
    kind: str  # "error" or "hang"
    status: int = 503
    retry_after: str | None = None
    after: bool = False
    method: str | None = None
    path: str | None = None
    code: str = "ERROR"
    message: str = "injected by the fake"

    def matches(self, method: str, endpoint: str) -> bool:
        return ((self.method is None or self.method == method)
                and (self.path is None or re.search(self.path, endpoint) is not None))


class _Reply(Exception):
    """Raised by a route to answer with a GLPI error array."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.body = status, [code, message]


class FakeGlpi(ThreadedHttpServer):
    """``with FakeGlpi(user_token="u", app_token="a") as glpi:`` → ``glpi.url`` ends with /apirest.php."""

    def __init__(self, *, user_token: str = "user-token-1", app_token: str | None = None,
                 encode_html: bool = True, hang_seconds: float = 10.0, broad_search: bool = False,
                 reopen_on_followup: bool = True, closed_reopenable: bool = False,
                 refuse_status: bool = False) -> None:
        self.user_token = user_token
        self.reopen_on_followup = reopen_on_followup
        self.closed_reopenable = closed_reopenable
        self.refuse_status = refuse_status
        self._actors: list[dict[str, Any]] = []
        """Ticket_User/Group_Ticket/Supplier_Ticket rows: ``itemtype``, ``tickets_id``, the actor's id, ``type``."""
        self.broad_search = broad_search
        """Answer searches more broadly than asked (name criterion minus its last character, other criteria
        ignored), as a GLPI whose search engine differs may: proves the backend re-checks every row."""
        self.app_token = app_token
        self.encode_html = encode_html
        self.hang_seconds = hang_seconds
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._sessions: set[str] = set()
        self.sessions_started = 0
        self.sessions_killed = 0
        self._tickets: dict[int, dict[str, Any]] = {}
        self._followups: list[dict[str, Any]] = []
        self._solutions: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        """Ticket_Ticket rows made by ``_link`` on create."""
        self._faults: list[_Fault] = []
        self._ratio: tuple[float, random.Random, int, float] | None = None
        self.log: list[tuple[str, str]] = []
        """(method, endpoint) of every request, e.g. ("POST", "Ticket")."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._port = free_port()
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._serve(Handler, "fake-glpi")

    def stop(self) -> None:
        self._stopping.set()
        self._shutdown()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    # ------------------------------------------------------------- fault injection

    def fail_next(self, n: int = 1, status: int = 503, retry_after: float | str | None = None, *,
                  after: bool = False, method: str | None = None, path: str | None = None,
                  code: str = "ERROR", message: str = "injected by the fake") -> None:
        """The next ``n`` matching requests answer ``status``; with ``after`` they take effect first.

        A status below 500 answers GLPI's ``[code, message]``; 5xx answers a proxy's HTML page.
        """
        with self._lock:
            self._faults.append(_Fault(n, "error", status, None if retry_after is None else str(retry_after),
                                       after, method, path, code, message))

    def hang_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next ``n`` matching requests get no answer (until ``hang_seconds`` or stop) and no effect."""
        with self._lock:
            self._faults.append(_Fault(n, "hang", method=method, path=path))

    def fail_ratio(self, p: float, seed: int = 0, *, status: int = 503, after: float = 0.5) -> None:
        """From now on each request fails with probability ``p``; ``after`` of those fail after taking effect."""
        with self._lock:
            self._ratio = (p, random.Random(seed), status, after) if p > 0 else None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._ratio = None

    def _fault_for(self, method: str, endpoint: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and fault.matches(method, endpoint):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
            if self._ratio is not None:
                p, rng, status, after = self._ratio
                if rng.random() < p:
                    return _Fault(1, "error", status, None, rng.random() < after)
        return None

    # ------------------------------------------------------------ a person's hands

    def solve_ticket(self, ticket_id: int) -> None:
        self._set_status(ticket_id, SOLVED)

    def close_ticket(self, ticket_id: int) -> None:
        self._set_status(ticket_id, CLOSED)

    def set_status(self, ticket_id: int, status: int) -> None:
        self._set_status(ticket_id, status)

    def _set_status(self, ticket_id: int, status: int) -> None:
        with self._lock:
            self._tickets[ticket_id]["status"] = status

    def assign(self, ticket_id: int, *, user: int | None = None, group: int | None = None,
               supplier: int | None = None) -> None:
        """A person assigns a technician, a group or a supplier; a new ticket becomes "processing (assigned)"."""
        with self._lock:
            for itemtype, actor in (("Ticket_User", user), ("Group_Ticket", group), ("Supplier_Ticket", supplier)):
                if actor is not None:
                    self._add_actor(itemtype, ticket_id, actor, ASSIGN)
            if self._tickets[ticket_id]["status"] == NEW:
                self._tickets[ticket_id]["status"] = ASSIGNED

    def actors(self, ticket_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(a) for a in self._actors if a["tickets_id"] == ticket_id]

    def _add_actor(self, itemtype: str, ticket_id: int, actor: int, kind: int) -> None:
        self._actors.append({"id": next(self._ids), "itemtype": itemtype, "tickets_id": ticket_id,
                             ACTOR_FIELDS[itemtype]: actor, "type": kind, "use_notification": 1})

    def _assigned(self, ticket_id: int) -> bool:
        return any(a["tickets_id"] == ticket_id and a["type"] == ASSIGN for a in self._actors)

    def _reopened_status(self, ticket_id: int) -> int:
        """``ParentStatus::updateParentStatus``: assigned when someone is assigned, else new."""
        return ASSIGNED if self._assigned(ticket_id) else NEW

    def delete_ticket(self, ticket_id: int) -> None:
        """Purge: GET answers 404 ERROR_ITEM_NOT_FOUND afterwards."""
        with self._lock:
            del self._tickets[ticket_id]

    def add_ticket(self, name: str, status: int = 1, **fields: Any) -> int:
        """A ticket created by someone else (a person, or a previous Custode run)."""
        with self._lock:
            return self._insert_ticket({"name": name, "content": "", **fields}, status)

    def invalidate_sessions(self) -> None:
        """GLPI forgot every session (expiry, restart): the next call gets ERROR_SESSION_TOKEN_INVALID."""
        with self._lock:
            self._sessions.clear()

    # ---------------------------------------------------------------- inspection

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def tickets(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(t) for t in self._tickets.values()]

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        with self._lock:
            return dict(self._tickets[ticket_id])

    def followups(self, ticket_id: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self._followups if ticket_id is None or f["items_id"] == ticket_id]

    def solutions(self, ticket_id: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._solutions if ticket_id is None or s["items_id"] == ticket_id]

    def requests(self, method: str | None = None, endpoint: str | None = None) -> list[tuple[str, str]]:
        with self._lock:
            return [r for r in self.log if (method is None or r[0] == method)
                    and (endpoint is None or r[1] == endpoint)]

    # -------------------------------------------------------------------- routes

    def _encode(self, text: str) -> str:
        return html.escape(text, quote=False) if self.encode_html else text

    def _insert_ticket(self, fields: dict[str, Any], status: int = 1) -> int:
        ticket_id = next(self._ids)
        ticket = {"id": ticket_id, "entities_id": 0, "type": 1, "urgency": 3, "impact": 3, "priority": 3,
                  "itilcategories_id": 0, "requesttypes_id": 1, "is_deleted": 0, **fields, "status": status}
        ticket["name"] = self._encode(str(ticket["name"]))
        ticket["content"] = self._encode(str(ticket["content"]))
        self._tickets[ticket_id] = ticket
        return ticket_id

    def handle(self, method: str, endpoint: str, query: dict[str, list[str]], headers: Any,
               body: Any) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, extra headers) of one request; called with the lock held."""
        self._check_app_token(headers)
        if method == "GET" and endpoint == "initSession":
            return self._init_session(headers)
        self._check_session(headers)
        if method == "GET" and endpoint == "killSession":
            self._sessions.discard(headers.get("Session-Token"))
            self.sessions_killed += 1
            return 200, None, {}
        if method == "GET" and endpoint == "search/Ticket":
            return self._search(query)
        if method == "POST" and endpoint == "Ticket":
            return self._add_ticket(body)
        match = re.fullmatch(r"Ticket/(\d+)(?:/(ITILFollowup|ITILSolution|Ticket_User|Group_Ticket|Supplier_Ticket))?",
                             endpoint)
        if match and method == "GET":
            ticket = self._get_ticket(int(match.group(1)))
            if match.group(2) is None:
                return 200, ticket, {}
            if match.group(2) in ACTOR_FIELDS:
                rows = [{k: v for k, v in a.items() if k != "itemtype"} for a in self._actors
                        if a["itemtype"] == match.group(2) and a["tickets_id"] == ticket["id"]]
                return 200, rows, {}
            items = self._followups if match.group(2) == "ITILFollowup" else self._solutions
            return 200, [dict(i) for i in items if i["items_id"] == ticket["id"]], {}
        if match and method == "PUT" and match.group(2) is None:
            return self._update_ticket(int(match.group(1)), body)
        if method == "POST" and endpoint in ("ITILFollowup", "ITILSolution"):
            return self._add_child(endpoint, body)
        raise _Reply(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM",
                     "resource not found or not an instance of CommonDBTM")

    def _check_app_token(self, headers: Any) -> None:
        given = headers.get("App-Token")
        if self.app_token is None:
            return
        if not given:
            raise _Reply(400, "ERROR_APP_TOKEN_PARAMETERS_MISSING", "missing parameter app_token")
        if given != self.app_token:
            raise _Reply(400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "parameter app_token seems wrong")

    def _init_session(self, headers: Any) -> tuple[int, Any, dict[str, str]]:
        auth = headers.get("Authorization") or ""
        if not auth.startswith("user_token "):
            raise _Reply(400, "ERROR_LOGIN_PARAMETERS_MISSING", "parameter(s) login, password or user_token are "
                                                                 "missing")
        if auth[len("user_token "):].strip() != self.user_token:
            raise _Reply(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid")
        token = secrets.token_hex(16)
        self._sessions.add(token)
        self.sessions_started += 1
        return 200, {"session_token": token}, {}

    def _check_session(self, headers: Any) -> None:
        token = headers.get("Session-Token")
        if not token:
            raise _Reply(400, "ERROR_SESSION_TOKEN_MISSING", "parameter session_token is missing or empty")
        if token not in self._sessions:
            raise _Reply(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid")

    def _get_ticket(self, ticket_id: int) -> dict[str, Any]:
        if ticket_id not in self._tickets:
            raise _Reply(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
        return dict(self._tickets[ticket_id])

    @staticmethod
    def _input(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            raise _Reply(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects")
        return body["input"]

    def _add_ticket(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        fields = self._input(body)
        if not fields.get("name") and not fields.get("content"):
            raise _Reply(400, "ERROR_GLPI_ADD", "You cannot add a ticket without title nor description")
        unknown = set(fields) - {"name", "content", "urgency", "impact", "priority", "type", "entities_id",
                                 "itilcategories_id", "requesttypes_id", "_link"}
        if unknown:
            raise _Reply(400, "ERROR_GLPI_ADD", f"unexpected fields {sorted(unknown)}")
        fields = dict(fields)
        link = fields.pop("_link", None)
        ticket_id = self._insert_ticket(fields)
        self._add_actor("Ticket_User", ticket_id, API_USER, REQUESTER)  # GLPI's default requester: the author
        if isinstance(link, dict) and int(link.get("tickets_id_2") or 0) in self._tickets:
            # GLPI silently skips a link to an unknown ticket
            self.links.append({"tickets_id_1": ticket_id, "tickets_id_2": int(link["tickets_id_2"]),
                               "link": int(link.get("link") or 1)})
        return 201, {"id": ticket_id, "message": ""}, {"Location": f"{API}/Ticket/{ticket_id}"}

    def _update_ticket(self, ticket_id: int, body: Any) -> tuple[int, Any, dict[str, str]]:
        fields = self._input(body)
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            return 200, [{str(ticket_id): False, "message": "Item not found"}], {}
        if "status" in fields and self.refuse_status:
            return 200, [{str(ticket_id): False, "message": "You are not allowed to change the status"}], {}
        for name in ("urgency", "impact", "priority", "status"):
            if name in fields:
                ticket[name] = int(fields[name])
        return 200, [{str(ticket_id): True, "message": ""}], {}

    def _add_child(self, itemtype: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        fields = self._input(body)
        if fields.get("itemtype") != "Ticket":
            raise _Reply(400, "ERROR_GLPI_ADD", "itemtype must be Ticket")
        ticket = self._tickets.get(int(fields.get("items_id") or 0))
        if ticket is None:
            raise _Reply(400, "ERROR_GLPI_ADD", "You don't have permission to perform this action.")
        closed_shut = ticket["status"] == CLOSED and not (itemtype == "ITILFollowup" and self.closed_reopenable)
        if closed_shut or (itemtype == "ITILSolution" and ticket["status"] == SOLVED):
            raise _Reply(400, "ERROR_GLPI_ADD", "You don't have permission to perform this action.")
        item_id = next(self._ids)
        item = {"id": item_id, "itemtype": "Ticket", "items_id": ticket["id"],
                "content": self._encode(str(fields.get("content") or ""))}
        if itemtype == "ITILFollowup":
            item["is_private"] = int(fields.get("is_private") or 0)
            self._followups.append(item)
            if ticket["status"] in REOPENABLE and self.reopen_on_followup and (
                    "add_reopen" in fields or self._need_reopen(ticket["id"])):
                ticket["status"] = self._reopened_status(ticket["id"])
        else:
            item["solutiontypes_id"] = int(fields.get("solutiontypes_id") or 0)
            item["status"] = 2  # waiting for approval
            self._solutions.append(item)
            ticket["status"] = SOLVED
        return 201, {"id": item_id, "message": ""}, {"Location": f"{API}/{itemtype}/{item_id}"}

    def _need_reopen(self, ticket_id: int) -> bool:
        """``CommonITILObject::needReopen``: the author (the API user) is a requester and not assigned."""
        mine = [a for a in self._actors if a["tickets_id"] == ticket_id and a["itemtype"] == "Ticket_User"
                and a["users_id"] == API_USER]
        return any(a["type"] == REQUESTER for a in mine) and not any(a["type"] == ASSIGN for a in mine)

    def _search(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        criteria: dict[int, dict[str, str]] = {}
        display: list[int] = []
        for key, values in query.items():
            found = re.fullmatch(r"criteria\[(\d+)\]\[(\w+)\]", key)
            if found:
                criteria.setdefault(int(found.group(1)), {})[found.group(2)] = values[0]
            elif re.fullmatch(r"forcedisplay\[\d+\]", key):
                display.append(int(values[0]))
        rows = [t for t in self._tickets.values() if not t["is_deleted"]]
        columns = [1, 2]
        for _, criterion in sorted(criteria.items()):
            field = int(criterion.get("field", 0))
            value = criterion.get("value", "")
            columns.append(field)
            if self.broad_search:
                if field != 1:
                    continue
                value = value[:-1]
            rows = [t for t in rows if _criterion_matches(t, field, criterion.get("searchtype", ""), value)]
        columns += display
        sort = int(query.get("sort", ["1"])[0])
        rows.sort(key=lambda t: t["id"] if sort == 2 else html.unescape(t["name"]).lower(),
                  reverse=query.get("order", ["ASC"])[0] == "DESC")
        start, end = (int(x) for x in query.get("range", ["0-49"])[0].split("-"))
        total = len(rows)
        if start > total:
            raise _Reply(400, "ERROR_RANGE_EXCEED_TOTAL", f"Provided range exceed total count of data: {total}")
        page = rows[start:end + 1]
        content_range = f"{start}-{start + len(page) - 1}/{total}"
        answer: dict[str, Any] = {"totalcount": total, "count": len(page), "sort": [sort],
                                  "order": query.get("order", ["ASC"]), "content-range": content_range}
        if page:
            fields = {1: "name", 2: "id", 12: "status"}
            answer["data"] = [{str(c): t.get(fields.get(c, ""), None) for c in dict.fromkeys(columns)}
                              for t in page]
        status = 206 if len(page) < total else 200
        return status, answer, {"Content-Range": content_range, "Accept-Range": "Ticket 1000"}


def _criterion_matches(ticket: dict[str, Any], field: int, searchtype: str, value: str) -> bool:
    """The few criteria Custode sends: name contains (MySQL LIKE '%value%': case-insensitive, and ``_``/``%``
    are wildcards unless escaped), status equals (a number, or GLPI's "notold"/"notclosed"/"all")."""
    if field == 1 and searchtype == "contains":
        pattern = "".join("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in html.unescape(value))
        return re.search(pattern, html.unescape(ticket["name"]), re.IGNORECASE | re.DOTALL) is not None
    if field == 12 and searchtype == "equals":
        if value == "notold":
            return ticket["status"] not in (SOLVED, CLOSED)
        if value == "notclosed":
            return ticket["status"] != CLOSED
        if value == "all":
            return True
        return str(ticket["status"]) == value
    if field == 2 and searchtype == "equals":
        return str(ticket["id"]) == value
    raise _Reply(400, "ERROR", f"the fake does not implement criterion field {field} searchtype {searchtype}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # headers and body in one segment: no 40 ms delayed-ACK stall per keep-alive request
    server_fake: FakeGlpi

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        fake = self.server_fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not parts.path.startswith(API):
            return self._send(404, {"error": "not found"}, {})
        endpoint = parts.path[len(API):].strip("/")
        with fake._lock:
            fake.log.append((method, endpoint))
        fault = fake._fault_for(method, endpoint)
        if fault is not None and fault.kind == "hang":
            fake._stopping.wait(fake.hang_seconds)
            self.close_connection = True
            return None
        if fault is not None and not fault.after:
            return self._fail(fault)
        extra: dict[str, str] = {}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
            status, answer, extra = 400, ["ERROR_JSON_PAYLOAD_INVALID", "JSON payload seems not valid"], {}
        else:
            try:
                with fake._lock:
                    status, answer, extra = fake.handle(method, endpoint, parse_qs(parts.query), self.headers, body)
            except _Reply as reply:
                status, answer, extra = reply.status, reply.body, {}
        if fault is not None:  # the request took effect, but its answer is lost
            return self._fail(fault)
        return self._send(status, answer, extra)

    def _fail(self, fault: _Fault) -> None:
        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.status >= 500:
            # a proxy's page, not GLPI's JSON: the backend must cope with both
            payload = f"<html><body>{fault.status} injected by the fake</body></html>".encode()
            return self._write(fault.status, payload, "text/html", extra)
        return self._send(fault.status, [fault.code, fault.message], extra)

    def _send(self, status: int, answer: Any, extra: dict[str, str]) -> None:
        payload = b"" if answer is None else json.dumps(answer).encode()
        self._write(status, payload, CONTENT_TYPE, extra)

    def _write(self, status: int, payload: bytes, content_type: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
