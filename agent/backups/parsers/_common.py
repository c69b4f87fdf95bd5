"""Shared vocabulary of backup reports: status words (Italian and English), sizes, dates.

Parsers are small because what they share lives here. The status vocabulary is
checked failure first, then warning, then success, and counts of zero ("0
errors", "Errori: 0", "nessun errore") are removed before looking, which is
where naive keyword filters go wrong.
"""

from __future__ import annotations

import functools
import logging
import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from custode.agent.backups.report import Status
from custode.agent.clock import ROME

log = logging.getLogger("custode.agent.backups.parsers")

FAILURE_WORDS = (
    r"failed", r"failure", r"fail", r"errors?", r"error\(s\)", r"fatal", r"aborted", r"unsuccessful", r"not completed",
    r"did not complete", r"could not", r"unable to", r"cancell?ed", r"terminated abnormally", r"critical",
    r"non riuscit[oa]", r"fallit[oa]", r"errori", r"errore", r"in errore", r"interrott[oa]", r"annullat[oa]",
    r"non completat[oa]", r"non è stat[oa] completat[oa]", r"impossibile", r"non eseguit[oa]", r"esito negativo",
    r"fehlgeschlagen", r"fehler",
)
WARNING_WORDS = (
    r"warnings?", r"warning\(s\)", r"completed with warnings?", r"partially (?:completed|succeeded|successful)",
    r"partial(?:ly)? success", r"con avvis[oi]", r"avvis[oi]", r"avvertiment[oi]", r"attenzione",
    r"parzialmente", r"completato con (?:avvisi|avvertimenti|eccezioni)", r"warnung(?:en)?",
)
SUCCESS_WORDS = (
    r"success(?:ful(?:ly)?)?", r"succeeded", r"completed", r"complete", r"finished", r"\bok\b", r"done",
    r"completat[oa](?: con successo| correttamente)?", r"riuscit[oa]", r"eseguit[oa] (?:con successo|correttamente)",
    r"terminat[oa] (?:con successo|correttamente)", r"successo", r"esito positivo", r"erfolgreich",
)

_ZERO_COUNTS = re.compile(
    r"\b(?:0|zero|no|none|nessun[oa]?|senza|without|keine?)\s+(?:errors?|warnings?|errori|errore|avvisi|avviso|"
    r"avvertimenti|failures?|failed|fehler|warnungen)\b"
    r"|\b(?:errors?|warnings?|errori|avvisi|avvertimenti|failures?|failed|fehler|warnungen|non riusciti|"
    r"falliti)\s*(?:[:=]|\|)?\s*(?:0|none|nessuno)\b(?![.,]\d)",
    re.IGNORECASE)


def _compile(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])(?:" + "|".join(words) + r")(?![\w-])", re.IGNORECASE)


_FAILURE = _compile(FAILURE_WORDS)
_WARNING = _compile(WARNING_WORDS)
_SUCCESS = _compile(SUCCESS_WORDS)


def neutralise_zero_counts(text: str) -> str:
    """Remove "0 errors"-style phrases so they do not read as failures."""
    return _ZERO_COUNTS.sub(" ", text)


def status_in(text: str) -> Status | None:
    """The worst status a short text (subject, status cell, result line) states, or None."""
    text = neutralise_zero_counts(text)
    if _FAILURE.search(text):
        return "failure"
    if _WARNING.search(text):
        return "warning"
    if _SUCCESS.search(text):
        return "success"
    return None


_TAG = re.compile(r"\[\s*(success|successo|ok|warning|warnings|avviso|avvisi|avvertenza|failed|failure|error|"
                  r"errore|fallito|non riuscito|riuscito|completato)\s*\]", re.IGNORECASE)


def subject_tag(subject: str) -> Status | None:
    """A bracketed status tag such as ``[Success]``, ``[Warning]``, ``[Failed]``, ``[Errore]``."""
    match = _TAG.search(subject)
    return status_in(match.group(1)) if match else None


def key_values(text: str) -> dict[str, str]:
    """``Label: value`` and ``Label | value`` lines as a dict with lower-case labels (first wins)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([^:|=]{1,60}?)\s*(?::|\|)\s*(.*?)\s*$", line)
        if match and match.group(2):
            values.setdefault(match.group(1).strip().lower(), match.group(2).strip(" |"))
    return values


def value_after(text: str, *labels: str) -> str | None:
    """The value on the line labelled with any of ``labels`` (case-insensitive, ``:`` or ``|`` or tab)."""
    for label in labels:
        match = re.search(r"^\s*" + label + r"\s*(?::|\||\t)\s*(.+?)\s*$", text, re.IGNORECASE | re.MULTILINE)
        if match:
            value = match.group(1).strip(" |")
            if value:
                return value
    return None


_UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2,
          "mb": 1024 ** 2, "mib": 1024 ** 2, "g": 1024 ** 3, "gb": 1024 ** 3, "gib": 1024 ** 3,
          "t": 1024 ** 4, "tb": 1024 ** 4, "tib": 1024 ** 4, "p": 1024 ** 5, "pb": 1024 ** 5, "pib": 1024 ** 5}
_SIZE = re.compile(r"(\d[\d.,' ]*)\s*(bytes?|[kmgtp]i?b|[kmgtp]|b)\b", re.IGNORECASE)


def parse_number(text: str) -> float | None:
    """``1.234,5`` (Italian), ``1,234.5`` (English), ``1 234,5`` and ``1234`` all read right."""
    text = text.strip().replace("'", "").replace(" ", "").replace("\u00a0", "")
    if not text:
        return None
    if "," in text and "." in text:
        text = text.replace(".", "").replace(",", ".") if text.rfind(",") > text.rfind(".") else text.replace(",", "")
    elif text.count(",") > 1:
        text = text.replace(",", "")  # 1,234,567: thousands
    elif "," in text:
        text = text.replace(",", ".")  # 1,5: Italian decimal comma
    elif text.count(".") > 1:
        text = text.replace(".", "")
    try:
        return float(text)
    except ValueError:
        return None


def parse_size(text: str | None) -> int | None:
    """Bytes from ``12.5 GB``, ``1,2 TB``, ``512 MiB``, ``1.024 bytes``; None when no size is there."""
    if not text:
        return None
    match = _SIZE.search(text)
    if not match:
        return None
    number = parse_number(match.group(1))
    unit = match.group(2).lower()
    if number is None:
        return None
    return int(number * _UNITS.get(unit, _UNITS.get(unit.rstrip("s"), 1)))


_IT_MONTHS = {"gennaio": "January", "febbraio": "February", "marzo": "March", "aprile": "April", "maggio": "May",
              "giugno": "June", "luglio": "July", "agosto": "August", "settembre": "September",
              "ottobre": "October", "novembre": "November", "dicembre": "December",
              "gen": "Jan", "feb": "Feb", "mar": "Mar", "apr": "Apr", "mag": "May", "giu": "Jun", "lug": "Jul",
              "ago": "Aug", "set": "Sep", "ott": "Oct", "nov": "Nov", "dic": "Dec"}
_IT_DAYS = re.compile(r"\b(?:luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica|"
                      r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun)\b,?",
                      re.IGNORECASE)
_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%d/%m/%Y %I:%M:%S %p",
    "%d %B %Y %H:%M:%S", "%d %B %Y %H:%M", "%B %d %Y %H:%M:%S", "%B %d %Y %I:%M:%S %p", "%d %b %Y %H:%M:%S",
    "%d %b %Y %H:%M", "%b %d %Y %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M", "%Y-%m-%d", "%d/%m/%Y",
)


_IT_MONTH = re.compile(r"\b(" + "|".join(sorted(_IT_MONTHS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
_FILLER = re.compile(r"\b(?:alle|ore|at|um)\b", re.IGNORECASE)
_ORDINAL = re.compile(r"(\d)(?:st|nd|rd|th)\b")
_OFFSET = re.compile(r"\s*(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT)$")
_FRACTION = re.compile(r"(\d+:\d+:\d+)\.\d+")
_EMBEDDED = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4}[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?", re.IGNORECASE)


_EN_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
              "october", "november", "december")
_MONTH_NUMBER = {name: index + 1 for index, name in enumerate(_EN_MONTHS)}
_MONTH_NUMBER.update({name[:3]: index + 1 for index, name in enumerate(_EN_MONTHS)})
_MONTH_NUMBER.update({"sept": 9})
_MONTH_NUMBER.update({italian: _MONTH_NUMBER[english.lower()] for italian, english in _IT_MONTHS.items()})
_CLOCK = (r"(?:(?:[ T]|,\s*)(?:(?:alle|ore|at)\s+)?(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2})(?:\.\d+)?)?"
          r"\s*(?P<p>[AaPp]\.?[Mm]\.?)?)?\s*(?P<tz>Z|[+-]\d{2}:?\d{2}|UTC|GMT)?\s*")
_NAMED = re.compile(
    r"\s*(?:[^\W\d_]+,?\s+)?"
    r"(?:(?P<d>\d{1,2})(?:st|nd|rd|th)?[\s-]+(?P<mon>[^\W\d_]{3,9})\.?,?[\s-]+(?P<y>\d{4})"
    r"|(?P<mon2>[^\W\d_]{3,9})\.?\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y2>\d{4}))" + _CLOCK)


_NUMERIC = re.compile(
    r"\s*(?:[^\W\d_]+,?\s+)?"
    r"(?:(?P<y>\d{4})[-/.](?P<ym>\d{1,2})[-/.](?P<yd>\d{1,2})|(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<ay>\d{4}))"
    + _CLOCK)


def _zone(token: str | None, default: ZoneInfo) -> tzinfo:
    if not token:
        return default
    if token in ("Z", "UTC", "GMT"):
        return timezone.utc
    digits = token[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(offset if token[0] == "+" else -offset)


def _numeric_datetime(text: str, tz: ZoneInfo) -> datetime | None | bool:
    """Fast path for all-numeric dates (most reports); False when the text is not of that shape."""
    match = _NUMERIC.fullmatch(text)
    named = None if match else _NAMED.fullmatch(text)
    if named:
        month = _MONTH_NUMBER.get((named["mon"] or named["mon2"]).lower())
        if month is None:
            return False
        match = named
    if not match:
        return False
    hour, minute, second = int(match["H"] or 0), int(match["M"] or 0), int(match["S"] or 0)
    if match["p"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match["p"].lower().startswith("p") else 0)
    if named:
        orders = [(int(named["y"] or named["y2"]), month, int(named["d"] or named["d2"]))]
    elif match["y"]:
        orders = [(int(match["y"]), int(match["ym"]), int(match["yd"]))]
    else:
        first, second_part, year = int(match["a"]), int(match["b"]), int(match["ay"])
        day_first, month_first = (year, second_part, first), (year, first, second_part)
        # Italian servers write day/month; a 12-hour clock means a US server (month/day)
        orders = [month_first, day_first] if match["p"] and match["sep"] == "/" else [day_first, month_first]
    for year, month, day in orders:
        try:
            return datetime(year, month, day, hour, minute, second, tzinfo=_zone(match["tz"], tz))
        except ValueError:
            continue
    return None


def parse_datetime(text: str | None, tz: ZoneInfo = ROME) -> datetime | None:
    """A report's date/time in the common layouts (Italian month names too); local time is Europe/Rome."""
    if not text:
        return None
    fast = _numeric_datetime(text, tz)
    if fast is not False:
        return fast  # type: ignore[return-value]
    cleaned = _IT_DAYS.sub(" ", text)
    cleaned = _IT_MONTH.sub(lambda m: _IT_MONTHS[m.group(1).lower()], cleaned)
    cleaned = _FILLER.sub(" ", cleaned)
    cleaned = _ORDINAL.sub(r"\1", cleaned)
    cleaned = " ".join(cleaned.replace(",", " ").split())
    offset = _OFFSET.search(cleaned)
    aware_tz: tzinfo | None = None
    if offset:
        aware_tz = _zone(offset.group(0).strip(), tz)
        cleaned = cleaned[: offset.start()].strip()
    cleaned = _FRACTION.sub(r"\1", cleaned)
    for fmt in _DATE_FORMATS:
        try:
            value = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        return value.replace(tzinfo=aware_tz or tz)
    match = _EMBEDDED.search(cleaned)
    if match and match.group(0) != cleaned:
        return parse_datetime(match.group(0), tz)
    return None


def lines_with(text: str, pattern: str, limit: int = 5) -> list[str]:
    """Up to ``limit`` lines matching ``pattern`` (case-insensitive): the error text of a report."""
    regex = re.compile(pattern, re.IGNORECASE)
    found = [line.strip() for line in text.splitlines() if regex.search(line)]
    return found[:limit]


def error_text(text: str, limit: int = 3) -> str | None:
    """The lines of a report that state an error, joined; None when there are none."""
    candidates = [line for line in lines_with(neutralise_zero_counts(text),
                                              r"(?<!\w)(?:error|errore|failed|fallit|non riuscit|fatal|"
                                              r"unable|impossibile|exception|denied|negato)", limit * 4)
                  if len(line) > 3]
    return "\n".join(candidates[:limit])[:2000] or None


def mentions(text: str, *needles: str) -> bool:
    lowered = text.lower()
    return any(needle.lower() in lowered for needle in needles)


REPLY = re.compile(r"^\s*(?:re|r|rif|aw|sv|antw|odp|ref|vs)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)

GATEWAY_TAGS = re.compile(r"^\s*(?:\[[^\]]{1,40}\]\s*)+")
"""Tags a mail gateway puts before a subject: ``[EXTERNAL] ``, ``[SPAM] ``."""
QUOTED_SUBJECT = re.compile(r"^\s*\*?(?:subject|oggetto|betreff|objet|asunto)\s*:\*?\s*(?P<value>.+)$",
                            re.IGNORECASE | re.MULTILINE)
"""The Subject line of an inline forward's header block (Outlook, Thunderbird, in their languages)."""


def is_reply_behind_tags(subject: str) -> bool:
    """``Re:``/``R:`` after any gateway tag (``[EXTERNAL] R: vzdump backup status ...``)."""
    return bool(REPLY.match(GATEWAY_TAGS.sub("", subject)))


def report_subject(message, text: str, subject: re.Pattern[str]) -> re.Match[str] | None:  # noqa: ANN001
    """``subject`` found in the mail's own subject (gateway tags removed), else in a forward's header block."""
    found = subject.search(GATEWAY_TAGS.sub("", message.clean_subject))
    if found is None and message.forwarded:
        found = forwarded_subject(text, subject)
    return found


def forwarded_subject(text: str, subject: re.Pattern[str]) -> re.Match[str] | None:
    """The first Subject line of an inline forward's header block that ``subject`` finds.

    For a forward whose own subject was changed by the person forwarding it:
    the original subject is still in the quoted header block.
    """
    for quoted in QUOTED_SUBJECT.finditer(text[:20_000]):
        match = subject.search(quoted.group("value"))
        if match:
            return match
    return None
"""A reply's subject prefix (Re:, R:, Rif:, AW:, SV:...): a person talking about a report, not a new one."""

QUOTE_MARKS = re.compile(r"^[ \t]*>[> \t]*", re.MULTILINE)
"""The ``>`` marks of a report forwarded "as quote"."""


def is_reply(subject: str) -> bool:
    return bool(REPLY.match(subject))


def head_tail(text: str, size: int = 6000) -> str:
    """The beginning and the end of a long text: where signatures are, without scanning file lists."""
    return text if len(text) <= 2 * size else f"{text[:size]}\n{text[-size:]}"


def per_message(message, key: str, compute):  # noqa: ANN001 - MailMessage, a callable
    """``compute(message)`` once per message, kept on the message: several parsers share the work
    (a lower-cased head, Veeam's layout) without module-level caches shared between threads."""
    cache = message.__dict__.setdefault("_parser_cache", {})
    if key not in cache:
        cache[key] = compute(message)
    return cache[key]


def needle_window(message) -> str:  # noqa: ANN001 - MailMessage
    """Subject, sender, attachment names, body and text attachments, lower-cased once per message:
    where the dispatcher looks for a parser's NEEDLES, and a parser for its own cheap signature."""
    return per_message(message, "needle_window", lambda m: "\n".join(
        (m.subject, m.sender_name, m.sender, *m.attachments, m.text, m.attachment_text)).lower())


def low_top(message) -> str:  # noqa: ANN001 - MailMessage
    """The first 10,000 body characters in lower case, for signature tests."""
    return per_message(message, "low_top", lambda m: m.text[:10_000].lower())


def is_bulk(message) -> bool:  # noqa: ANN001
    """Newsletters and mailing-list mail: only a product's own signature may make them a report."""
    return bool(message.header("list-unsubscribe") or message.header("list-id")
                or message.header("precedence").lower() in ("bulk", "list", "junk"))


_FIELD = re.compile(r"^\s*([^:|\t]{1,40}?)\s*(?::|\||\t)\s*(.*?)\s*$")


def read_fields(lines: list[str], known: set[str] | frozenset[str], only_known: bool = False) -> dict[str, str]:
    """``Label: value``, ``Label | value`` and a known label alone on a line followed by its value.

    Labels are lower-cased; the first value of a label wins. ``only_known``
    keeps only the labels in ``known`` (for bodies full of other colons).
    """
    fields: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = _FIELD.match(line)
        if match and (not only_known or match.group(1).strip().lower() in known):
            value = match.group(2).strip(" |")
            if value:
                fields.setdefault(match.group(1).strip().lower(), value)
                continue
        label = line.strip().rstrip(":").strip().lower()
        if label in known and index + 1 < len(lines):
            value = lines[index + 1].strip(" |")
            if value and value.rstrip(":").strip().lower() not in known:
                fields.setdefault(label, value)
    return fields


def first_field(fields: dict[str, str], labels) -> str | None:  # noqa: ANN001 - any iterable of labels
    """The value of the first of ``labels`` present (labels are synonyms, most specific first)."""
    for label in labels:
        value = fields.get(label)
        if value:
            return value
    return None


def forwarded_text(message) -> str:  # noqa: ANN001 - MailMessage
    """The body with the ``>`` marks of a report forwarded "as quote" removed (other mail unchanged)."""
    text = message.text
    if message.forwarded and "\n>" in text:
        return QUOTE_MARKS.sub("", text)
    return text


def guarded(parse_function):  # noqa: ANN001, ANN201 - decorator
    """A parser step that logs its own bug and answers "not my report" instead of raising.

    The registry guards every parser too; this is for parsers whose ``parse`` is
    also called directly (and tested to never raise on any input).
    """

    @functools.wraps(parse_function)
    def wrapper(message):  # noqa: ANN001, ANN202
        try:
            return parse_function(message)
        except Exception:
            log.exception("backup report parser failed", extra={"parser": parse_function.__module__,
                                                                "message_id": getattr(message, "message_id", None)})
            return None

    return wrapper
