"""One e-mail, normalised for parsers, from whatever bytes a mailbox holds.

Mailboxes contain broken MIME, wrong or unknown charsets, HTML-only bodies,
huge attachments and RFC 2047 headers in any encoding. :func:`parse_message`
never raises on content: it decodes what it can, replaces what it cannot and
caps what it keeps, so one hostile message can never stop the poller.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.header import Header, decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime

from custode.agent.mail.html import Table, html_text, normalise_lines, read_html
from custode.agent.mail.mime import NotSimple, SimplePart, read_simple

MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a source passes at most this much of a message
MAX_TEXT_CHARS = 256 * 1024  # text kept per body
MAX_PARTS = 200  # MIME parts walked per message
MAX_DEPTH = 3  # nested message/rfc822 (forward of a forward of a report)
MAX_TEXT_ATTACHMENT = 512 * 1024  # text attachments (logs) read when smaller than this

_FORWARD_PREFIX = re.compile(
    r"^\s*(?:(?:fwd?|fw|tr|wg|i|r|re|rif|aw|sv|vs|rv|inoltro|inoltra|antw|odp|enc)\s*(?:\[\d+\])?\s*:\s*"
    r"|\[(?:external|esterno|ext|spam\??|suspected spam)\]\s*)+",
    re.IGNORECASE)
# Spam-filter tags: SpamAssassin's ***SPAM***, gateways' [SPAM] / {Spam?} / SPAM:.
_SPAM_TAG = re.compile(r"^\s*(?:\*+\s*(?:possible\s+|suspected\s+)?spam\??\s*\*+|"
                       r"[\[{(]\s*(?:possible\s+|suspected\s+|probable\s+)?spam\??\s*[\]})]|spam\s*:)\s*",
                       re.IGNORECASE)
_FORWARD_ONLY = re.compile(r"^\s*(?:(?:fwd?|fw|tr|wg|i|inoltro|inoltra|enc|rv)\s*:)", re.IGNORECASE)
_FORWARD_MARKERS = re.compile(
    r"-{2,}\s*(?:forwarded message|original message|messaggio inoltrato|messaggio originale|"
    r"weitergeleitete nachricht|ursprüngliche nachricht|message transféré|mensaje reenviado)\s*-{2,}"
    r"|^\s*(?:begin forwarded message|inizio messaggio inoltrato)\s*:",
    re.IGNORECASE | re.MULTILINE)
_QUOTED_FROM = re.compile(r"^\s*\*?(?:from|da|von|de|mittente)\s*:\*?\s*(?P<value>.+)$", re.IGNORECASE | re.MULTILINE)
_SURROGATES = re.compile("[\udc80-\udcff]")
_CHARSET_FALLBACKS = ("utf-8", "cp1252", "latin-1")
Part = email.message.Message | SimplePart  # the standard library's reading of a part, or the fast reader's
_PARTS = (email.message.Message, SimplePart)


@dataclass
class MailMessage:
    """What parsers see of a message. Every field is already decoded text."""

    subject: str = ""
    sender: str = ""  # address, lower case
    sender_name: str = ""
    to: list[str] = field(default_factory=list)
    date: datetime | None = None  # aware; None when missing or unparseable
    message_id: str | None = None
    text: str = ""  # the plain body, or the HTML body rendered as text
    html: str = ""  # the HTML body, when there is one (capped)
    attachments: list[str] = field(default_factory=list)
    attachment_text: str = ""  # small text/log attachments, concatenated
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> first value, decoded
    inner: "MailMessage | None" = None  # a message forwarded as an attachment
    size: int = 0
    truncated: bool = False
    content_hash: str = ""
    defects: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[Table]:
        """The HTML body's tables (rows of cell texts), read in the same pass as its text."""
        cached = self.__dict__.get("_tables")
        if cached is None:
            cached = read_html(self.html, MAX_TEXT_CHARS)[1] if self.html else []
            self.__dict__["_tables"] = cached
        return cached

    @property
    def clean_subject(self) -> str:
        """The subject without Fwd:/I:/R:/[EXTERNAL] prefixes and spam-filter tags, as the software wrote it."""
        cached = self.__dict__.get("_clean_subject")
        if cached is None or cached[0] != self.subject:
            cached = (self.subject, _strip_subject_prefixes(self.subject))
            self.__dict__["_clean_subject"] = cached
        return cached[1]

    @property
    def forwarded(self) -> bool:
        return bool(_FORWARD_ONLY.match(self.subject) or _FORWARD_MARKERS.search(self.text) or self.inner)

    @property
    def original_sender(self) -> str:
        """For an inline forward, the From: line of the forwarded block; else the sender."""
        marker = _FORWARD_MARKERS.search(self.text)
        if marker:
            quoted = _QUOTED_FROM.search(self.text, marker.end())
            if quoted:
                addresses = getaddresses([quoted.group("value")])
                if addresses and addresses[0][1]:
                    return addresses[0][1].lower()
                return quoted.group("value").strip().lower()
        return self.sender

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def all_text(self) -> str:
        """Subject, body and text attachments: what keyword rules search."""
        return "\n".join(part for part in (self.clean_subject, self.text, self.attachment_text) if part)


def decode_header_value(value: object) -> str:
    """RFC 2047 decoding that survives unknown charsets and malformed encoded words."""
    if value is None:
        return ""
    if isinstance(value, Header):  # raw 8-bit bytes in a header: compat32 wraps them as unknown-8bit
        try:
            value = "".join(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk
                            for chunk, charset in decode_header(value))
        except Exception:
            value = str(value)
    raw = str(value)
    if raw.isascii():
        if "=?" not in raw:  # the common case: plain ASCII, nothing to decode
            return " ".join(raw.split())
    elif _SURROGATES.search(raw):  # bytes smuggled in as surrogate escapes
        raw = decode_bytes(raw.encode("utf-8", "surrogateescape"), None)
    if "=?" not in raw:  # the common case: plain ASCII or raw 8-bit, nothing to decode
        return " ".join(raw.split())
    try:
        decoded = str(make_header(decode_header(raw)))
    except Exception:
        try:
            pieces = []
            for chunk, charset in decode_header(raw):
                pieces.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
            decoded = "".join(pieces)
        except Exception:
            decoded = raw
    return re.sub(r"\s+", " ", decoded).strip()


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Declared charset first, then the charsets Italian mail really uses; never raises."""
    candidates = [charset.strip().strip('"').lower()] if charset else []
    if candidates and candidates[0] in ("unknown-8bit", "x-unknown", "us-ascii", "ascii", "default", "_autodetect_all"):
        candidates = []
    for name in (*candidates, *_CHARSET_FALLBACKS):
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1", errors="replace")


def _payload_text(part: Part) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        raw = part.get_payload()
        if not isinstance(raw, str):
            return ""
        return decode_bytes(raw.encode("utf-8", "surrogateescape"), None) if _SURROGATES.search(raw) else raw
    if not isinstance(payload, bytes):
        return str(payload)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(payload, charset)


def _is_attachment(part: Part) -> bool:
    try:
        disposition = (part.get("Content-Disposition") or "").lower()
    except Exception:
        disposition = ""
    if disposition.startswith("attachment"):
        return True
    return bool(_NAME_PARAM.search(str(part.get("Content-Type") or "")))


def _filename(part: Part) -> str:
    if "name" not in str(part.get("Content-Disposition") or "") + str(part.get("Content-Type") or ""):
        return ""
    try:
        return decode_header_value(part.get_filename() or "")
    except Exception:
        return ""


def parse_message(raw: bytes, *, truncated: bool = False, _depth: int = 0) -> MailMessage:
    """Normalise raw message bytes; never raises on bad content."""
    message = MailMessage(size=len(raw), truncated=truncated or len(raw) > MAX_MESSAGE_BYTES,
                          content_hash=hashlib.sha256(raw).hexdigest())
    raw = raw[:MAX_MESSAGE_BYTES]
    parsed: Part | None
    try:
        parsed = read_simple(raw)  # well-formed MIME, read fast; the standard library reads the rest
    except NotSimple:
        parsed = _read_standard(raw, message)
        if parsed is None:
            return message
    _read_headers(parsed, message)
    _read_body(parsed, message, _depth)
    return message


def _read_standard(raw: bytes, message: MailMessage) -> email.message.Message | None:
    """The standard library's reading of a message :func:`read_simple` declined."""
    try:
        return email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as exc:  # the stdlib parser is lenient; this is belt and braces
        message.defects.append(f"unparseable message: {exc}")
        message.text = normalise_lines(decode_bytes(raw[:MAX_TEXT_CHARS], None))
        return None


def _read_headers(parsed: Part, message: MailMessage) -> None:
    for name, value in parsed.items()[:200]:
        key = name.lower()
        if key not in message.headers:
            message.headers[key] = decode_header_value(value)
    message.subject = message.headers.get("subject", "")
    try:
        message.sender_name, message.sender = _address(message.headers.get("from", ""))
        to = message.headers.get("to", "")
        if '"' in to or "(" in to:
            message.to = [a.lower() for _, a in getaddresses([to]) if a]
        else:
            message.to = [address for _, address in map(_address, to.split(",")) if address]
    except Exception:
        message.defects.append("unreadable From/To header")
    message.message_id = (message.headers.get("message-id") or "").strip() or None
    date = message.headers.get("date")
    if date:
        message.date = _date(date)
        if message.date is None:
            message.defects.append(f"unreadable Date header: {date[:80]}")


# The RFC 5322 date nearly every generator writes: "Mon, 7 Dec 2026 02:41:07 +0100" (day name optional).
_RFC5322_DATE = re.compile(r"(?:[A-Za-z]{3},\s*)?(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) "
                           r"([+-])(\d{2})(\d{2})(?:\s+\([^()]*\))?")
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


def _date(value: str) -> datetime | None:
    """The Date header as an aware datetime: the common shape read directly, any other by the email package."""
    common = _RFC5322_DATE.fullmatch(value.strip())
    if common is not None and common[2].lower() in _MONTHS:
        try:
            offset = timedelta(hours=int(common[8]), minutes=int(common[9]))
            return datetime(int(common[3]), _MONTHS[common[2].lower()], int(common[1]), int(common[4]),
                            int(common[5]), int(common[6]),
                            tzinfo=timezone(-offset if common[7] == "-" else offset))
        except ValueError:
            pass  # 31 Feb, hour 25, offset +9960: let the email package judge
    try:
        parsed_date = parsedate_to_datetime(value)
    except Exception:
        return None
    return parsed_date if parsed_date.tzinfo else parsed_date.replace(tzinfo=timezone.utc)


_NAME_PARAM = re.compile(r"(?<![\w-])name\*?=", re.IGNORECASE)  # a named part is an attachment
_SIMPLE_ADDRESS = re.compile(r'\s*(?:"?(?P<name>[^"<>,;@]*?)"?\s*<(?P<angle>[^<>@\s]+@[^<>\s]+)>'
                             r'|(?P<bare>[^<>"\s,;]+@[^<>"\s,;]+))\s*')


def _address(value: str) -> tuple[str, str]:
    """(display name, lower-case address) of a From header; the common shapes without the full RFC parser."""
    simple = _SIMPLE_ADDRESS.fullmatch(value)
    if simple:
        return (simple["name"] or "").strip(), (simple["angle"] or simple["bare"]).lower()
    addresses = getaddresses([value])
    return (addresses[0][0], addresses[0][1].lower()) if addresses else ("", "")


def _read_body(parsed: Part, message: MailMessage, depth: int) -> None:
    plain: str | None = None
    html: str | None = None
    attachment_texts: list[str] = []
    try:
        for index, part in enumerate(_walk(parsed)):
            if index >= MAX_PARTS:
                message.defects.append(f"more than {MAX_PARTS} MIME parts; the rest were not read")
                break
            try:
                content_type = part.get_content_type()
            except Exception:
                content_type = "text/plain"
            if content_type == "message/rfc822" or (content_type == "application/octet-stream"
                                                    and _filename(part).lower().endswith(".eml")):
                _read_inner(part, message, depth)
                continue
            name = _filename(part)
            attached = _is_attachment(part)
            if name:
                message.attachments.append(name)
            if not content_type.startswith("text/"):
                continue
            if attached:
                if len(attachment_texts) < 5:
                    text = _payload_text(part)
                    if len(text) <= MAX_TEXT_ATTACHMENT:
                        attachment_texts.append(_as_text(text, content_type))
                continue
            if content_type == "text/html" and html is None:
                html = _payload_text(part)[:MAX_TEXT_CHARS * 4]
            elif content_type != "text/html" and plain is None:
                plain = _payload_text(part)[:MAX_TEXT_CHARS]
    except Exception as exc:
        message.defects.append(f"broken MIME structure: {exc}")
    rendered = ""
    if html is not None:
        message.html = html
        rendered, message.__dict__["_tables"] = read_html(html, MAX_TEXT_CHARS)
    has_table = html is not None and _TABLE_TAG.search(html) is not None
    if plain is not None and plain.strip() and not (has_table and rendered):
        message.text = normalise_lines(plain)
        if rendered and len(rendered) > 2 * len(message.text):
            message.text = rendered  # a stub "view this mail in HTML" text part
    else:
        # No text part, or an HTML report with tables: its text alternative is a lossy rendering
        # (Outlook writes every cell on a line of its own), the rendered HTML keeps a row a row.
        message.text = rendered
    message.attachment_text = "\n".join(attachment_texts)[:MAX_TEXT_CHARS]


_TABLE_TAG = re.compile(r"<table\b", re.IGNORECASE)


def _strip_subject_prefixes(subject: str) -> str:
    """Forward/reply prefixes, gateway and spam-filter tags, in any order ("***SPAM*** Fwd: [EXTERNAL] ...")."""
    for _ in range(4):
        stripped = _SPAM_TAG.sub("", _FORWARD_PREFIX.sub("", subject))
        if stripped == subject:
            break
        subject = stripped
    return subject.strip()


def _walk(root: Part):
    """Parts in order, not descending into forwarded messages (they are parsed on their own)."""
    stack = [root]
    while stack:
        part = stack.pop()
        try:
            content_type = part.get_content_type()
        except Exception:
            content_type = "text/plain"
        payload = part.get_payload()
        if isinstance(payload, list) and content_type != "message/rfc822":
            stack.extend(reversed([p for p in payload if isinstance(p, _PARTS)]))
            continue
        yield part


def _read_inner(part: Part, message: MailMessage, depth: int) -> None:
    if message.inner is not None or depth >= MAX_DEPTH:
        return
    try:
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            inner_bytes = payload[0].as_bytes() if isinstance(payload[0], _PARTS) else b""
        else:
            inner_bytes = part.get_payload(decode=True) or b""
        if inner_bytes:
            message.inner = parse_message(inner_bytes, _depth=depth + 1)
    except Exception as exc:
        message.defects.append(f"unreadable forwarded message: {exc}")


def _as_text(text: str, content_type: str) -> str:
    return html_text(text, MAX_TEXT_CHARS) if content_type == "text/html" else normalise_lines(text)
