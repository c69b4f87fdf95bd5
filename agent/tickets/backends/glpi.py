"""GLPI tickets through the legacy REST API (``…/apirest.php``), served by GLPI 10 and 11.

GLPI has no idempotency key, so exactly-once rests on two things: the ticket
name carries ``[custode:KEY]`` (the planner's ``find_open`` before ``create``
adopts a ticket whose create answer was lost), and every follow-up, priority
note and solution ends with :func:`op_marker`, looked up on a retry before
writing again.

A GLPI API session is server state: it is opened lazily on the first call of a
batch, re-opened once when GLPI says it expired, and killed in :meth:`close`
so a long-running agent does not pile up sessions on the helpdesk.

Reopening a ticket Custode solved (the same failure back within the warranty)
uses GLPI's own rule, so the ticket lands where a technician reopening it in
the timeline would put it: an ``ITILFollowup`` with ``add_reopen``, which GLPI
(``ITILFollowup::prepareInputForAdd`` → ``ParentStatus::updateParentStatus``)
turns into status 2 "processing (assigned)" when the ticket has an assigned
user, group or supplier and 1 "new" when it has none; not 3 "processing
(planned)", which GLPI keeps for a task with a planned date. Should the ticket
still be solved afterwards (a GLPI or plugin that does not reopen on a
follow-up), the backend sets that same status itself with a ``PUT``, reading
the assigned actors (``Ticket_User``/``Group_Ticket``/``Supplier_Ticket`` of
type 2, ``CommonITILActor::ASSIGN``). A closed ticket (6) takes a follow-up only
when the API user's profile lifecycle lets it reopen closed tickets
(``Ticket::canReopen``); Custode does not rely on that and treats closed as
final, like Zendesk: :class:`TicketClosed`, and a new ticket linked to it.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import requests

from custode.agent.secrets import SecretError, SecretRef
from custode.agent.smtp_settings import SmtpSettings
from custode.agent.tickets.backends.base import DeliveryError, TicketBackend, TicketClosed, op_marker, with_marker
from custode.agent.tickets.backends.http import HttpClient
from custode.agent.tickets.config import GlpiConfig
from custode.agent.tickets.model import Priority, RemoteStatus, TenantTicketing, TicketDraft, TicketRef, TicketThread

log = logging.getLogger(__name__)

# GLPI ticket statuses (CommonITILObject constants).
STATUS_NEW, STATUS_ASSIGNED, STATUS_PLANNED, STATUS_WAITING, STATUS_SOLVED, STATUS_CLOSED = 1, 2, 3, 4, 5, 6
DONE_STATUSES = frozenset({STATUS_SOLVED, STATUS_CLOSED})
ACTOR_ASSIGN = 2
"""``CommonITILActor::ASSIGN``: the ``type`` of a Ticket_User/Group_Ticket/Supplier_Ticket row that assigns."""
ACTOR_LINKS = ("Ticket_User", "Group_Ticket", "Supplier_Ticket")
TYPE_INCIDENT = 1
LINK_TO = 1
"""Ticket_Ticket link type "linked to": how the new ticket points at the one a person closed."""

# Search options of Ticket: 1 name, 2 id, 12 status.
FIELD_NAME, FIELD_ID, FIELD_STATUS = 1, 2, 12
SEARCH_RANGE = "0-999"
"""One page is plenty: the search is narrowed to one key's tickets that are not solved/closed."""
SUBITEMS_RANGE = "0-999"

_ANY_STATUS = tuple(range(100, 600))
"""Passed as ``ok`` to HttpClient so GLPI's error array (the 2nd word of the diagnosis) can be read here."""


def ticket_marker(key: str) -> str:
    """What the ticket name carries so that ``find_open`` finds it again after a lost answer."""
    return f"[custode:{key}]"


def map_status(value: object) -> RemoteStatus:
    """GLPI's numeric status as the planner's vocabulary."""
    number = _int(value)
    if number == STATUS_NEW:
        return RemoteStatus.NEW
    if number in (STATUS_ASSIGNED, STATUS_PLANNED, STATUS_WAITING):
        return RemoteStatus.OPEN
    if number == STATUS_SOLVED:
        return RemoteStatus.SOLVED
    if number == STATUS_CLOSED:
        return RemoteStatus.CLOSED
    return RemoteStatus.UNKNOWN




def unescape(text: str) -> str:
    """GLPI stores rich text HTML-encoded, sometimes twice (GLPI 9.5/10 sanitizer): decode until stable."""
    for _ in range(3):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


class GlpiBackend(TicketBackend):
    """One GLPI instance; secrets are read at the first call, not when the config is loaded."""

    kind = "glpi"

    def __init__(self, name: str, config: GlpiConfig) -> None:
        super().__init__(name)
        self.config = config
        self._client: HttpClient | None = None
        self._session_token: str | None = None
        self._user_token: str | None = None
        self._app_token: str | None = None
        base = config.url[: -len("apirest.php")]
        self._front = f"{base}front/ticket.form.php?id="

    # ----------------------------------------------------------------- the contract

    def find_open(self, key: str, tenant: TenantTicketing) -> TicketRef | None:
        marker = ticket_marker(key)
        params = {
            "criteria[0][field]": FIELD_NAME, "criteria[0][searchtype]": "contains", "criteria[0][value]": marker,
            "criteria[1][link]": "AND", "criteria[1][field]": FIELD_STATUS, "criteria[1][searchtype]": "equals",
            "criteria[1][value]": "notold",
            "forcedisplay[0]": FIELD_ID, "forcedisplay[1]": FIELD_STATUS,
            "sort": FIELD_ID, "order": "ASC", "range": SEARCH_RANGE,
        }
        response = self._exchange("GET", "search/Ticket", what=f"search the open ticket of {key!r}",
                                  params=params, expect=(200, 206), empty_ok=True)
        if response is None:
            return None
        body = self._json(response, "search/Ticket")
        best: tuple[int, RemoteStatus] | None = None
        for row in _rows(body):
            name = unescape(str(row.get(str(FIELD_NAME)) or ""))
            ticket_id = _int(row.get(str(FIELD_ID)))
            if marker not in name or ticket_id is None:
                continue  # "contains" also matches KEY2 when looking for KEY, and GLPI may add LIKE wildcards
            status = _int(row.get(str(FIELD_STATUS)))
            if status is None:  # a display preference turned the status into a label: ask the ticket itself
                ticket = self._ticket(ticket_id)
                status = _int(ticket.get("status")) if ticket else STATUS_CLOSED
            if status in DONE_STATUSES:
                continue
            if best is None or ticket_id < best[0]:
                best = (ticket_id, map_status(status))
        if best is None:
            return None
        return TicketRef(ref=str(best[0]), url=self.ticket_url(best[0]), status=best[1])

    def create(self, draft: TicketDraft) -> TicketRef:
        level = self.config.priorities[draft.priority]
        ticket: dict[str, Any] = {
            "name": f"{draft.subject} {ticket_marker(draft.key)}",
            "content": with_marker(draft.body, draft.op_id),
            # urgency and impact stop at 5 (very high); only priority has 6 (major)
            "urgency": min(level, 5), "impact": min(level, 5), "priority": level,
            "type": TYPE_INCIDENT,
        }
        if draft.tenant.entity_id is not None:
            ticket["entities_id"] = draft.tenant.entity_id
        if self.config.category_id is not None:
            ticket["itilcategories_id"] = self.config.category_id
        if self.config.request_type_id is not None:
            ticket["requesttypes_id"] = self.config.request_type_id
        previous = _int(draft.previous_ref)
        if previous is not None:
            ticket["_link"] = {"link": LINK_TO, "tickets_id_2": previous}
        what = f"open the ticket of {draft.key!r}"
        response = self._call("POST", "Ticket", what=what, json={"input": ticket}, expect=(200, 201))
        body = self._json(response, "Ticket")
        if isinstance(body, list) and body:
            body = body[0]
        ticket_id = _int(body.get("id")) if isinstance(body, dict) else None
        if not ticket_id:
            message = body.get("message") if isinstance(body, dict) else body
            raise DeliveryError(f"ticket backend {self.name!r}: {what}: GLPI did not create it ({message!r}); check "
                                "the API user's rights on tickets in that entity", retryable=False,
                                status=response.status_code)
        return TicketRef(ref=str(ticket_id), url=self.ticket_url(ticket_id), status=RemoteStatus.NEW)

    def comment(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        ticket_id = self._ticket_id(thread)
        if retry and self._written(ticket_id, "ITILFollowup", op_id):
            return  # written before the answer was lost, even if a person closed the ticket since
        self._writable(thread, ticket_id, "add a follow-up")
        self._followup(ticket_id, with_marker(text, op_id))

    def set_priority(self, thread: TicketThread, priority: Priority, text: str, *, op_id: str,
                     retry: bool) -> None:
        ticket_id = self._ticket_id(thread)
        if retry and self._written(ticket_id, "ITILFollowup", op_id):
            return  # the note is written after the update, so both are done
        self._writable(thread, ticket_id, "change the priority")
        level = self.config.priorities[priority]
        what = f"set priority {priority} on ticket {ticket_id}"
        response = self._call("PUT", f"Ticket/{ticket_id}", what=what, expect=(200,),
                              json={"input": {"urgency": min(level, 5), "impact": min(level, 5), "priority": level}})
        _check_update(self._json(response, f"Ticket/{ticket_id}"), f"ticket backend {self.name!r}: {what}")
        self._followup(ticket_id, with_marker(text, op_id))

    def solve(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        ticket_id = self._ticket_id(thread)
        ticket = self._ticket(ticket_id)
        if ticket is None or _is_done(ticket):
            return  # solved or closed (or deleted) already: what solve wanted
        if retry and self._written(ticket_id, "ITILSolution", op_id):
            return
        solution: dict[str, Any] = {"itemtype": "Ticket", "items_id": ticket_id,
                                    "content": with_marker(text, op_id)}
        if self.config.solution_type_id is not None:
            solution["solutiontypes_id"] = self.config.solution_type_id
        self._call("POST", "ITILSolution", what=f"solve ticket {ticket_id}", json={"input": solution},
                   expect=(200, 201))

    def reopen(self, thread: TicketThread, text: str, *, op_id: str, retry: bool) -> None:
        """A follow-up with ``add_reopen`` (GLPI picks 2 or 1), then the status set by hand if GLPI left it solved."""
        ticket_id = self._ticket_id(thread)
        ticket = self._ticket(ticket_id)
        if ticket is None or _int(ticket.get("is_deleted")):
            raise TicketClosed(f"ticket backend {self.name!r}: cannot reopen GLPI ticket {ticket_id}: it no longer "
                               "exists (purged or in the trash)", thread.ref)
        status = _int(ticket.get("status"))
        if not (retry and self._written(ticket_id, "ITILFollowup", op_id)):
            if status == STATUS_CLOSED:
                raise TicketClosed(f"ticket backend {self.name!r}: cannot reopen GLPI ticket {ticket_id}: it is "
                                   "closed, which Custode treats as final", thread.ref)
            self._followup(ticket_id, with_marker(text, op_id), reopen=status == STATUS_SOLVED)
            if status != STATUS_SOLVED:
                return  # in work already (a person reopened it): the follow-up says the failure is back
            ticket = self._ticket(ticket_id)
            status = _int(ticket.get("status")) if ticket else None
        if status == STATUS_SOLVED:
            self._set_reopened_status(ticket_id)

    def _set_reopened_status(self, ticket_id: int) -> None:
        """What GLPI's follow-up would have done: 2 with an assigned actor, else 1; an error if it does not stick."""
        wanted = STATUS_ASSIGNED if self._assigned(ticket_id) else STATUS_NEW
        what = f"reopen ticket {ticket_id} (status {wanted})"
        response = self._call("PUT", f"Ticket/{ticket_id}", what=what, expect=(200,),
                              json={"input": {"status": wanted}})
        _check_update(self._json(response, f"Ticket/{ticket_id}"), f"ticket backend {self.name!r}: {what}")
        ticket = self._ticket(ticket_id)
        if ticket is not None and _int(ticket.get("status")) == STATUS_SOLVED:
            raise DeliveryError(f"ticket backend {self.name!r}: {what}: GLPI kept the ticket solved; let the API "
                                "user's profile move tickets from Solved to New and Processing (assigned) "
                                "(Administration > Profiles > Assistance > Life cycles), then run 'custode "
                                "tickets retry'", retryable=False)

    def _assigned(self, ticket_id: int) -> bool:
        """Whether a user, group or supplier is assigned to the ticket (GLPI's own test when it reopens)."""
        for itemtype in ACTOR_LINKS:
            path = f"Ticket/{ticket_id}/{itemtype}"
            response = self._exchange("GET", path, what=f"read the {itemtype} actors of ticket {ticket_id}",
                                      expect=(200, 206), empty_ok=True,
                                      params={"range": SUBITEMS_RANGE, "get_hateoas": "false"})
            if response is None:
                continue
            items = self._json(response, path)
            if isinstance(items, dict):
                items = list(items.values())
            if any(isinstance(item, dict) and _int(item.get("type")) == ACTOR_ASSIGN for item in items or ()):
                return True
        return False

    def status(self, thread: TicketThread) -> RemoteStatus:
        ticket = self._ticket(self._ticket_id(thread))
        if ticket is None or _int(ticket.get("is_deleted")):
            return RemoteStatus.CLOSED  # deleted or in the trash: nobody will work on it
        return map_status(ticket.get("status"))

    def close(self) -> None:
        """Kill the API session (GLPI keeps it otherwise) and drop the connections; the next call re-inits."""
        token, self._session_token = self._session_token, None
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if token is not None:
                client.request("GET", "killSession", what="end the API session", ok=_ANY_STATUS,
                               headers=self._headers(token))
        except DeliveryError as exc:  # the session expires by itself on GLPI; nothing to retry
            log.info("ticket backend %r: could not end the GLPI session: %s", self.name, exc)
        finally:
            client.close()

    def ticket_url(self, ticket_id: int | str) -> str:
        """The page a person opens in GLPI's web interface."""
        return f"{self._front}{ticket_id}"

    # ------------------------------------------------------------- ticket helpers

    def _ticket_id(self, thread: TicketThread) -> int:
        number = _int(thread.ref)
        if number is None:
            raise DeliveryError(f"ticket backend {self.name!r}: {thread.ref!r} is not a GLPI ticket id; this ticket "
                                "was opened by another backend: solve it by hand", retryable=False)
        return number

    def _ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """The ticket's fields, or None when GLPI does not know it (purged)."""
        response = self._call("GET", f"Ticket/{ticket_id}", what=f"read ticket {ticket_id}", expect=(200, 404),
                              params={"get_hateoas": "false"})
        if response.status_code == 404:
            if _glpi_error(response)[0] != "ERROR_ITEM_NOT_FOUND":  # a proxy's 404 says nothing of the ticket
                raise self._error(response, "GET", f"Ticket/{ticket_id}", f"read ticket {ticket_id}")
            return None
        body = self._json(response, f"Ticket/{ticket_id}")
        if not isinstance(body, dict):
            raise DeliveryError(f"ticket backend {self.name!r}: read ticket {ticket_id}: unexpected answer "
                                f"{str(body)[:200]!r}; is the url GLPI's apirest.php?", retryable=True)
        return body

    def _writable(self, thread: TicketThread, ticket_id: int, action: str) -> None:
        """TicketClosed when a person solved, closed or purged the ticket: a new one must be opened.

        Checked before writing because GLPI would reopen a solved ticket on a new
        follow-up, and refuse one on a closed ticket.
        """
        ticket = self._ticket(ticket_id)
        if ticket is None:
            raise TicketClosed(f"ticket backend {self.name!r}: cannot {action}: GLPI ticket {ticket_id} no longer "
                               "exists", thread.ref)
        if _is_done(ticket):
            state = "solved" if _int(ticket.get("status")) == STATUS_SOLVED else "closed"
            raise TicketClosed(f"ticket backend {self.name!r}: cannot {action}: GLPI ticket {ticket_id} was "
                               f"{state} on the helpdesk", thread.ref)

    def _written(self, ticket_id: int, itemtype: str, op_id: str) -> bool:
        """Whether a follow-up/solution of this ticket already carries the op marker (retry after a lost answer)."""
        path = f"Ticket/{ticket_id}/{itemtype}"
        response = self._exchange("GET", path, what=f"read the {itemtype}s of ticket {ticket_id}",
                                  expect=(200, 206, 404), empty_ok=True,
                                  params={"range": SUBITEMS_RANGE, "get_hateoas": "false"})
        if response is None or response.status_code == 404:
            return False  # nothing written, or the ticket is gone (the caller then says TicketClosed)
        items = self._json(response, path)
        marker = op_marker(op_id)
        if isinstance(items, dict):
            items = list(items.values())
        return any(isinstance(item, dict) and marker in unescape(str(item.get("content") or ""))
                   for item in items or ())

    def _followup(self, ticket_id: int, content: str, *, reopen: bool = False) -> None:
        """A public follow-up; ``reopen`` asks GLPI to reopen the solved ticket, as the timeline's reopen does."""
        followup: dict[str, Any] = {"itemtype": "Ticket", "items_id": ticket_id, "content": content, "is_private": 0}
        if reopen:
            followup["add_reopen"] = 1
        self._call("POST", "ITILFollowup", what=f"add a follow-up to ticket {ticket_id}",
                   json={"input": followup}, expect=(200, 201))

    # ------------------------------------------------------------ session and HTTP

    def _http(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(self.name, self.config.url, tls_verify=self.config.tls_verify,
                                      ca_file=str(self.config.ca_file) if self.config.ca_file else None,
                                      timeout=self.config.timeout, credential_hint="the user_token")
            self._client.session.headers["Content-Type"] = "application/json"
        return self._client

    def _secret(self, ref: SecretRef, option: str) -> str:
        try:
            return ref.resolve()
        except SecretError as exc:
            raise DeliveryError(f"ticket backend {self.name!r}: cannot read {option}: {exc}; then run "
                                "'custode tickets retry'", retryable=False) from None

    def _headers(self, session_token: str | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.config.app_token is not None:
            if self._app_token is None:
                self._app_token = self._secret(self.config.app_token, "app_token")
            headers["App-Token"] = self._app_token
        if session_token is not None:
            headers["Session-Token"] = session_token
        return headers

    def _session(self) -> str:
        """The API session of this batch, opened with the user_token if there is none."""
        if self._session_token is not None:
            return self._session_token
        if self._user_token is None:
            self._user_token = self._secret(self.config.user_token, "user_token")
        headers = self._headers()
        headers["Authorization"] = f"user_token {self._user_token}"
        what = "open an API session (initSession)"
        response = self._http().request("GET", "initSession", what=what, ok=_ANY_STATUS, headers=headers)
        if response.status_code != 200:
            raise self._error(response, "GET", "initSession", what)
        body = self._json(response, "initSession")
        token = body.get("session_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise DeliveryError(f"ticket backend {self.name!r}: {what}: no session_token in GLPI's answer; is the "
                                "url GLPI's apirest.php?", retryable=True)
        self._session_token = token
        return token

    def _call(self, method: str, path: str, *, what: str, expect: tuple[int, ...],
              **kwargs: Any) -> requests.Response:
        """One API call in the session; DeliveryError unless GLPI answers a status in ``expect``."""
        response = self._exchange(method, path, what=what, expect=expect, empty_ok=False, **kwargs)
        if response is None:  # only with empty_ok
            raise AssertionError("unreachable")
        return response

    def _exchange(self, method: str, path: str, *, what: str, expect: tuple[int, ...], empty_ok: bool,
                  **kwargs: Any) -> requests.Response | None:
        """One API call in the session; re-inits once if GLPI forgot the session.

        ``empty_ok``: GLPI's 400 ERROR_RANGE_EXCEED_TOTAL (a list read past its
        end, i.e. nothing there) returns None instead of raising.
        """
        for attempt in (1, 2):
            token = self._session()
            response = self._http().request(method, path, what=what, ok=_ANY_STATUS,
                                            headers=self._headers(token), **kwargs)
            if response.status_code in expect:
                return response
            code, _ = _glpi_error(response)
            if code == "ERROR_SESSION_TOKEN_INVALID" and attempt == 1:
                self._session_token = None  # expired or killed on the server: open a new one, once
                continue
            if empty_ok and code == "ERROR_RANGE_EXCEED_TOTAL":
                return None
            raise self._error(response, method, path, what)
        raise AssertionError("unreachable")

    def _error(self, response: requests.Response, method: str, path: str, what: str) -> DeliveryError:
        """GLPI's error array (``["ERROR_…", "message"]``) turned into the fix a person must make."""
        status = response.status_code
        where = f"ticket backend {self.name!r}: {what} ({method} {self._http().url(path)})"
        code, message = _glpi_error(response)
        detail = self._scrub(f"{code}: {message}" if message else str(code))
        fixes = {
            "ERROR_GLPI_LOGIN_USER_TOKEN": "GLPI refused the user_token; copy the API token from the user's "
                                           f"Settings > Remote access keys into {self._describe('user_token')}",
            "ERROR_GLPI_LOGIN": "GLPI refused the login of the user_token's user (disabled or deleted?); fix the "
                                "user or the user_token",
            "ERROR_LOGIN_PARAMETERS_MISSING": "GLPI did not get the user_token; check that a proxy does not strip "
                                              "the Authorization header",
            "ERROR_WRONG_APP_TOKEN_PARAMETER": "GLPI refused the app_token; copy the API client's App-Token from "
                                               f"Setup > General > API into {self._describe('app_token')}",
            "ERROR_APP_TOKEN_PARAMETERS_MISSING": "GLPI asks an App-Token; set app_token to the API client's token "
                                                  "(Setup > General > API)",
            "ERROR_NOT_ALLOWED_IP": "GLPI has no active API client for Custode's address; allow it in Setup > "
                                    "General > API",
            "ERROR_RIGHT_MISSING": "the API user's profile lacks rights on tickets/follow-ups/solutions; give them",
            "ERROR_ITEM_NOT_FOUND": "the ticket does not exist (purged?) or the API user cannot see its entity",
            "ERROR_LOGIN_WITH_TOKEN_DISABLED": "enable 'login with external token' in Setup > General > API",
        }
        if code in fixes:
            return DeliveryError(f"{where}: HTTP {status} ({detail}); {fixes[code]}, then run 'custode tickets "
                                 "retry'", retryable=False, status=status)
        if status == 401 and code == "ERROR_SESSION_TOKEN_INVALID":
            return DeliveryError(f"{where}: HTTP 401 ({detail}) right after a new session; will retry",
                                 retryable=True, status=status)
        if status in (400, 207) and code:
            return DeliveryError(f"{where}: HTTP {status} ({detail}); GLPI refused the data: check the backend's "
                                 "ids (category_id, request_type_id, solution_type_id, entity_id) and the API "
                                 "user's rights, then run 'custode tickets retry'", retryable=False, status=status)
        return self._http().error(response, where)

    def _describe(self, option: str) -> str:
        ref = getattr(self.config, option)
        return f"{option} ({ref.describe()})" if ref is not None else option

    def _scrub(self, text: str) -> str:
        """GLPI's messages should not echo tokens, but an error text must never carry one."""
        for secret in (self._user_token, self._app_token, self._session_token):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _json(self, response: requests.Response, what: str) -> Any:
        return self._http().json(response, what)


# ------------------------------------------------------------------- parsing helpers

def _int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _is_done(ticket: dict[str, Any]) -> bool:
    return _int(ticket.get("status")) in DONE_STATUSES or bool(_int(ticket.get("is_deleted")))


def _rows(body: Any) -> list[dict[str, Any]]:
    """The rows of a search answer: a list (GLPI ≥ 9.2) or an object keyed by id (older, or withindexes)."""
    if not isinstance(body, dict):
        return []
    data = body.get("data")
    if isinstance(data, dict):
        rows = []
        for key, row in data.items():
            if isinstance(row, dict):
                rows.append({str(FIELD_ID): key, **row})
        return rows
    if isinstance(data, list):
        return [row for row in data if isinstance(row, dict)]
    return []  # no "data" at all: totalcount 0


def _glpi_error(response: requests.Response) -> tuple[str | None, str]:
    """(``ERROR_…`` code, message) from GLPI's ``["ERROR_…", "message"]`` body, or (None, excerpt)."""
    try:
        body = response.json()
    except ValueError:
        return None, " ".join(response.text[:200].split())
    if isinstance(body, list) and body and isinstance(body[0], str) and body[0].startswith("ERROR"):
        message = body[1] if len(body) > 1 and isinstance(body[1], str) else ""
        return body[0], " ".join(message[:300].split())
    return None, " ".join(str(body)[:200].split())


def _check_update(body: Any, where: str) -> None:
    """PUT answers ``[{"<id>": true, "message": ""}]``; a false there is a refusal despite HTTP 200."""
    entries = body if isinstance(body, list) else [body]
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            if key != "message" and value is False:
                raise DeliveryError(f"{where}: GLPI refused the update ({entry.get('message')!r}); check the API "
                                    "user's rights on the ticket, then run 'custode tickets retry'",
                                    retryable=False)


def build(name: str, config: GlpiConfig, smtp: SmtpSettings | None = None) -> GlpiBackend:
    """The ``tickets.backends`` entry of ``type: glpi`` (this module's name) as its backend."""
    return GlpiBackend(name, config)
