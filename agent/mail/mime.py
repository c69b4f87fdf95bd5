"""A fast reader for well-formed MIME; the standard library's parser stays the judge of everything else.

``email.message_from_bytes`` costs more than all the backup parsers together
on a report mailbox: its feed parser reads a message line by line in Python,
and every ``Message.get`` walks the header list again. Backup software writes
plain, well-formed MIME, so :func:`read_simple` splits such a message with a
handful of C-level string operations and hands back parts that answer the
same calls (``items``, ``get``, ``get_content_type``, ``get_payload`` ...) with
the same values as a ``compat32`` message would.

The rule is "same answer or no answer": anything this reader does not fully
understand (an mbox ``From`` line, a header line that is no header, bare CR
line ends, RFC 2231 parameters, a missing or duplicated boundary, base64 that
is not strictly valid, uuencode, message types other than rfc822) raises
:class:`NotSimple`, and the caller parses that message with the standard
library instead. ``tests/test_mail_mime.py`` holds the reader to that rule over
every fixture and real-world message and over generated MIME.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from email.charset import UNKNOWN8BIT
from email.header import Header
from email.utils import collapse_rfc2231_value, unquote
from itertools import pairwise


class NotSimple(Exception):
    """This message needs the standard library's full parser."""


# Every line a "Name: value" field or the continuation (leading space or tab) of the one before.
_FIELD = r"[\041-\071\073-\176]+:[^\n]*(?:\n[ \t][^\n]*)*"
_HEADER_BLOCK = re.compile(f"{_FIELD}(?:\n{_FIELD})*")
_FIELD_START = re.compile(r"\n(?![ \t])")
_SURROGATE = re.compile("[\udc80-\udcff]")
_LINE_END = re.compile(r"\r?\n\Z")
MAX_NESTING = 8  # multiparts within multiparts; deeper structures go to the full parser


class SimplePart:
    """One MIME part (or the whole message), read the way ``email.policy.compat32`` reads it."""

    __slots__ = ("_headers", "_index", "_payload", "_children", "_decoded")

    def __init__(self, headers: list[tuple[str, str]], payload: str,
                 children: list[SimplePart] | None) -> None:
        self._headers = headers
        self._index: dict[str, str] = {}
        for name, value in headers:
            self._index.setdefault(name.lower(), value)
        self._payload = payload  # text as message_from_bytes holds it (ASCII with surrogate escapes)
        self._children = children
        self._decoded: bytes | None = None  # base64 payloads, decoded (and so validated) while reading

    # -- headers --------------------------------------------------------------------------------------------

    def items(self) -> list[tuple[str, str | Header]]:
        return [(name, _fetch(name, value)) for name, value in self._headers]

    def get(self, name: str, failobj: object = None) -> object:
        value = self._index.get(name.lower())
        return failobj if value is None else _fetch(name, value)

    def get_content_type(self) -> str:
        value = self._index.get("content-type")
        if value is None:
            return "text/plain"
        ctype = value.partition(";")[0].strip().lower()
        return ctype if ctype.count("/") == 1 else "text/plain"

    def get_content_charset(self, failobj: object = None) -> object:
        charset = _param(self._index.get("content-type"), "charset")
        return failobj if charset is None else charset.lower()

    def get_filename(self, failobj: object = None) -> object:
        filename = _param(self._index.get("content-disposition"), "filename")
        if filename is None:
            filename = _param(self._index.get("content-type"), "name")
        return failobj if filename is None else collapse_rfc2231_value(filename).strip()

    # -- body -----------------------------------------------------------------------------------------------

    def is_multipart(self) -> bool:
        return self._children is not None

    def get_payload(self, decode: bool = False) -> object:
        if self._children is not None:
            return None if decode else self._children
        if not decode:
            return self._payload
        if self._decoded is not None:
            return self._decoded
        data = self._payload.encode("ascii", "surrogateescape")
        if self._index.get("content-transfer-encoding", "").lower() == "quoted-printable":
            return quopri.decodestring(data)
        return data

    def as_bytes(self) -> bytes:
        """The part's own bytes; for a forwarded message, the whole message as it came."""
        return self._payload.encode("ascii", "surrogateescape")


def read_simple(raw: bytes) -> SimplePart:
    """The message as parts, or :class:`NotSimple` when only the full parser would read it the same."""
    text = raw.decode("ascii", "surrogateescape")
    if text.count("\r") != text.count("\r\n"):
        raise NotSimple("bare CR line ends")
    if text.startswith("From "):
        raise NotSimple("mbox From_ line")
    try:
        return _read_part(text, 0)
    except NotSimple:
        raise
    except Exception as exc:  # whatever surprises this reader, the full parser copes with
        raise NotSimple(f"unexpected content: {exc}") from exc


def _read_part(text: str, depth: int) -> SimplePart:
    if depth > MAX_NESTING:
        raise NotSimple("nesting too deep")
    headers, body = _split_headers(text)
    part = SimplePart(headers, body, None)
    for name in ("content-type", "content-disposition"):
        _check_parameters(part._index.get(name))  # here, not when a parameter is asked for: the caller
        # of get_filename() and get_content_charset() must never meet NotSimple
    ctype = part.get_content_type()
    maintype, _, subtype = ctype.partition("/")
    encoding = part._index.get("content-transfer-encoding", "").lower()
    if encoding in ("x-uuencode", "uuencode", "uue", "x-uue"):
        raise NotSimple("uuencoded payload")
    if encoding == "base64" and maintype not in ("multipart", "message"):
        part._decoded = _strict_base64(body.encode("ascii", "surrogateescape"))
    if maintype == "multipart":
        if subtype == "digest":
            raise NotSimple("multipart/digest defaults its parts to message/rfc822")
        boundary = _param(part._index.get("content-type"), "boundary")
        boundary = collapse_rfc2231_value(boundary).rstrip() if boundary is not None else ""
        if not boundary:
            raise NotSimple("multipart without a boundary")
        part._children = [_read_part(piece, depth + 1) for piece in _split_multipart(body, boundary)]
        part._payload = ""
    elif maintype == "message":
        if subtype != "rfc822" or encoding not in ("", "7bit", "8bit", "binary"):
            raise NotSimple(f"{ctype} with transfer encoding {encoding or 'none'}")
        # Kept whole: parse_message reads the forwarded message again, on its own.
        part._children = [SimplePart([], body, [])]
        part._payload = ""
    return part


def _split_headers(text: str) -> tuple[list[tuple[str, str]], str]:
    """Header fields as compat32 keeps them (name, value with its folds) and the body after the blank line."""
    if text[:1] == "\n" or text[:2] == "\r\n":
        return [], text[text.index("\n") + 1:]  # no headers at all
    lf, crlf = text.find("\n\n"), text.find("\n\r\n")  # the blank line, after a LF or a CRLF line end
    if lf < 0 and crlf < 0:
        block, body = text, ""
    elif crlf < 0 or 0 <= lf < crlf:
        block, body = text[:lf], text[lf + 2:]
    else:
        block, body = text[:crlf], text[crlf + 3:]
    if block.endswith("\n"):
        block = block[:-1]  # headers only, ending in a line break
    if not _HEADER_BLOCK.fullmatch(block):
        raise NotSimple("a line of the header block is no header field")
    headers: list[tuple[str, str]] = []
    for field in _FIELD_START.split(block):
        # compat32's header_source_parse: the value keeps its folding line breaks, loses the final one.
        name, _, value = field.partition(":")
        headers.append((name, value.lstrip(" \t").rstrip("\r\n")))
    return headers, body


def _split_multipart(body: str, boundary: str) -> list[str]:
    """The parts between ``--boundary`` lines; the line end before each boundary belongs to the boundary."""
    delimiter = re.compile(r"^--" + re.escape(boundary) + r"(--)?[ \t]*\r?$", re.MULTILINE)
    marks = list(delimiter.finditer(body))
    if not marks or marks[0].group(1):
        raise NotSimple("no opening boundary")
    if not marks[-1].group(1) or any(mark.group(1) for mark in marks[:-1]):
        raise NotSimple("no closing boundary, or one before the last part")
    pieces = []
    for opening, closing in pairwise(marks):
        start = opening.end() + 1 if body.startswith("\n", opening.end()) else opening.end()
        if start >= closing.start():
            raise NotSimple("an empty part between two boundaries")
        piece = body[start:closing.start()]
        end = _LINE_END.search(piece)
        pieces.append(piece[:end.start()] if end else piece)
    return pieces


_PARAM_SPLIT = re.compile(r';(?=(?:[^"]*"[^"]*")*[^"]*\Z)')


def _check_parameters(value: str | None) -> None:
    if value is not None and ("*" in value or "\\" in value or value.count('"') % 2 or not value.isascii()):
        raise NotSimple("RFC 2231, escaped, unbalanced or 8-bit parameters")


def _param(value: str | None, wanted: str) -> str | None:
    """A Content-Type / Content-Disposition parameter, unquoted, as ``Message.get_param`` returns it."""
    if value is None or wanted not in value.lower():
        return None
    for item in _PARAM_SPLIT.split(value)[1:]:
        name, equals, content = item.partition("=")
        if equals and name.strip().lower() == wanted:
            return unquote(content.strip())
    return None


def _fetch(name: str, value: str) -> str | Header:
    """compat32's header_fetch_parse: raw 8-bit bytes make the value a Header of unknown charset."""
    if not value.isascii() and _SURROGATE.search(value):
        return Header(value, charset=UNKNOWN8BIT, header_name=name)
    return value


def _strict_base64(data: bytes) -> bytes:
    joined = b"".join(data.splitlines())
    if len(joined) % 4:
        raise NotSimple("base64 without its padding")
    try:
        return base64.b64decode(joined, validate=True)
    except binascii.Error as exc:
        raise NotSimple(f"invalid base64: {exc}") from exc
