"""A webhook receiver on 127.0.0.1 for the webhook backend's tests: what a real integration would do.

It checks ``X-Custode-Signature`` with :func:`verify_signature` on the raw body
(401 when wrong), drops a delivery id it has already accepted (answering as
the first time, so the sender sees success), records every accepted event,
and can be told to fail (status and Retry-After) or hang for the next calls.

It also keeps each ticket's state as a receiver that files tickets would
(``statuses``, by ref): ``create`` opens it, ``solve`` solves it, ``reopen``
opens it again; a ref in ``gone`` (closed for good) answers 410 to every
follow-up, a reopen included, which the backend's docstring asks of receivers.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from conftest import free_port
from server_base import ThreadedHttpServer

from custode.agent.tickets.backends.webhook import verify_signature

_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class ReceivedEvent:
    """One accepted (signed, not duplicate) delivery."""

    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    """Header names lower-cased."""


@dataclass
class _Fault:
    remaining: int
    status: int = 0
    retry_after: str | None = None
    hang: float = 0.0


class WebhookReceiver(ThreadedHttpServer):
    """``with WebhookReceiver(b"secret") as receiver: ... receiver.url``.

    ``answer_id``: answer a create with ``{"id": "WH-<n>"}``; else an empty 204.
    ``gone``: ticket refs (or keys) whose follow-ups answer 410 Gone.
    """

    def __init__(self, secret: bytes, *, answer_id: bool = True, path: str = "/hooks/custode") -> None:
        self.secret = secret
        self.answer_id = answer_id
        self.path = path
        self._port = free_port(self.host)
        self.events: list[ReceivedEvent] = []
        self.duplicates: list[str] = []
        self.rejected: list[bytes] = []
        """Bodies refused for a bad signature."""
        self.requests = 0
        self.gone: set[str] = set()
        self.statuses: dict[str, str] = {}
        """Each ticket's state by ref: ``open`` (created or reopened) or ``solved``."""
        self._answers: dict[str, tuple[int, bytes]] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    # --- fault injection -------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 503, retry_after: str | None = None) -> None:
        """The next ``count`` requests answer ``status`` (with Retry-After) and record nothing."""
        with self._lock:
            self._faults.append(_Fault(count, status=status, retry_after=retry_after))

    def hang_next(self, count: int = 1, *, seconds: float = 5.0) -> None:
        """The next ``count`` requests get no answer for ``seconds`` (bounded; stop() releases them)."""
        with self._lock:
            self._faults.append(_Fault(count, hang=seconds))

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> "WebhookReceiver":
        self._release.clear()
        self._serve(self._handler_class(), "webhook-receiver")
        return self

    def stop(self) -> None:
        self._release.set()
        self._shutdown()

    # --- request handling ------------------------------------------------------------------

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            while self._faults and self._faults[0].remaining <= 0:
                self._faults.pop(0)
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            return fault

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Status, extra headers and body of the answer to one POST."""
        with self._lock:
            self.requests += 1
        fault = self._next_fault()
        if fault is not None and fault.hang:
            self._release.wait(fault.hang)
            return 503, {}, b"hung"
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return fault.status, extra, b'{"error": "injected failure"}'
        if path != self.path:
            return 404, {}, b'{"error": "no such hook"}'
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return 415, {}, b'{"error": "expected application/json"}'
        if not verify_signature(self.secret, body, headers.get("x-custode-signature", "")):
            with self._lock:
                self.rejected.append(body)
            return 401, {}, b'{"error": "bad signature"}'
        delivery = headers.get("x-custode-delivery", "")
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 400, {}, b'{"error": "body is not JSON"}'
        if not delivery or delivery != payload.get("delivery_id"):
            return 400, {}, b'{"error": "X-Custode-Delivery must equal delivery_id"}'
        with self._lock:
            if delivery in self._answers:
                self.duplicates.append(delivery)
                status, answer = self._answers[delivery]
                return status, {}, answer
            if payload.get("event") != "create" and (payload.get("ref") in self.gone
                                                     or payload.get("key") in self.gone):
                return 410, {}, b'{"error": "ticket closed"}'
            self.events.append(ReceivedEvent(payload, body, dict(headers)))
            event = payload.get("event")
            if event == "create" and self.answer_id:
                status, answer = 201, json.dumps({"id": f"WH-{len(self.events)}"}).encode()
            else:
                status, answer = 204, b""
            if event == "create":
                self.statuses[f"WH-{len(self.events)}" if self.answer_id else str(payload.get("key"))] = "open"
            elif event in ("solve", "reopen"):
                self.statuses[str(payload.get("ref"))] = "solved" if event == "solve" else "open"
            self._answers[delivery] = (status, answer)
            return status, {}, answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server name
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY:
                    self._answer(413, {}, b"")
                    return
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                self._answer(*receiver._handle(self.path, headers, body))

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if body:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout test): nothing to answer
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        return Handler
