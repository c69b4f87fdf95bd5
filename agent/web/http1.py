"""HTTP/1.1 on the wire: a request head parsed from bytes, a response head written as bytes.

Kept apart from the server so the rules a client can break (RFC 9112: the
request line, header syntax, the versions we speak, the body framing we
accept) are pure functions with one answer each, tested without a socket.
The server answers every :class:`BadRequest` with its status and reason and
then closes the connection, because after a malformed head the framing of
whatever follows cannot be trusted.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD_BYTES = 32 * 1024
"""The request line and headers together; Prometheus sends about 300 bytes."""

MAX_HEADERS = 100

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")


class BadRequest(Exception):
    """A head the server cannot serve: ``status`` and a one-line ``reason`` for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Head:
    """A parsed request head."""

    method: str
    target: str
    version: tuple[int, int]
    headers: list[tuple[str, str]]

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def wants_close(self) -> bool:
        """Whether the client asked the connection to end after this request (HTTP/1.0 by default)."""
        tokens = {token.strip().lower() for token in (self.header("Connection") or "").split(",")}
        if self.version >= (1, 1):
            return "close" in tokens
        return "keep-alive" not in tokens


def parse_head(raw: bytes) -> Head:
    """The head of one request (``raw`` ends with the blank line), or BadRequest."""
    try:
        text = raw.decode("iso-8859-1")  # RFC 9110: field values are octets; latin-1 maps them 1:1
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "bad request: the head is not text") from None
    lines = text.lstrip("\r\n").split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise BadRequest(400, "bad request: empty request")
    method, target, version = _request_line(lines[0])
    headers = _headers(lines[1:])
    return Head(method, target, version, headers)


def _request_line(line: str) -> tuple[str, str, tuple[int, int]]:
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise BadRequest(400, "bad request: the request line must be 'METHOD /path HTTP/1.1'")
    method, target, version_text = parts
    if not _TOKEN.fullmatch(method):
        raise BadRequest(400, "bad request: the method is not a token")
    match = _VERSION.fullmatch(version_text)
    if match is None:
        raise BadRequest(400, "bad request: the request line must end with HTTP/1.0 or HTTP/1.1")
    version = (int(match.group(1)), int(match.group(2)))
    if version[0] != 1:
        raise BadRequest(505, f"HTTP version not supported: {version_text}; use HTTP/1.1")
    if not target.startswith("/") or any(ord(ch) <= 32 or ord(ch) == 127 for ch in target):
        raise BadRequest(400, "bad request: the target must be a path starting with '/'")
    return method, target, version


def _headers(lines: list[str]) -> list[tuple[str, str]]:
    if len(lines) > MAX_HEADERS:
        raise BadRequest(431, f"request header fields too large: more than {MAX_HEADERS} headers")
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            raise BadRequest(400, "bad request: folded header lines are obsolete (RFC 9112 section 5.2)")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest(400, "bad request: a header line is not 'Name: value'")
        value = value.strip(" \t")
        if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
            raise BadRequest(400, f"bad request: header {name} holds a control character")
        headers.append((name, value))
    return headers


def body_length(head: Head, limit: int) -> int:
    """The declared body length, within ``limit``; BadRequest (411/400/413) otherwise.

    Only ``Content-Length`` framing is accepted: Alertmanager and curl send
    it, and refusing chunked bodies keeps request smuggling off the table."""
    if head.header("Transfer-Encoding") is not None:
        raise BadRequest(411, "length required: send the body with a Content-Length header, not chunked")
    values = [value for key, value in head.headers if key.lower() == "content-length"]
    if not values:
        raise BadRequest(411, "length required: send the body with a Content-Length header")
    if len(set(values)) > 1:
        raise BadRequest(400, "bad request: two different Content-Length headers")
    raw = values[0]
    if not raw.isdigit():
        raise BadRequest(400, f"bad request: Content-Length {raw[:40]!r} is not a non-negative integer")
    length = int(raw)
    if length > limit:
        raise BadRequest(413, f"payload too large: {length} bytes, the limit is {limit}; "
                              "send fewer alerts per notification (webhook_configs max_alerts) or raise max_bytes")
    return length


def carries_body(head: Head) -> bool:
    """Whether a request we will not read a body from declared one (then the connection must close)."""
    length = head.header("Content-Length")
    return head.header("Transfer-Encoding") is not None or (length is not None and length.strip() not in ("", "0"))


def response_head(status: int, headers: Iterable[tuple[str, str]], length: int, close: bool) -> bytes:
    """Status line and headers, ending with the blank line."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    lines = [f"HTTP/1.1 {status} {phrase}", f"Date: {email.utils.formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def merged(*sources: Mapping[str, str]) -> list[tuple[str, str]]:
    """Headers from several sources, later ones winning, names compared case-insensitively."""
    out: dict[str, tuple[str, str]] = {}
    for source in sources:
        for name, value in source.items():
            if "\r" in value or "\n" in value:
                continue  # never let a value split the head
            out[name.lower()] = (name, value)
    return list(out.values())
