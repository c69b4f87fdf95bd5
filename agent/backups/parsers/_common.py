"""Shared vocabulary of backup reports: status words (Italian and English), sizes, dates.

Parsers are small because what they share lives here. The status vocabulary is
checked failure first, then warning, then success, and counts of zero ("0
errors", "Errori: 0", "nessun errore") are removed before looking, which is
where naive keyword filters go wrong.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.backups.report import Status

ROME = ZoneInfo("Europe/Rome")

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


def parse_datetime(text: str | None, tz: ZoneInfo = ROME) -> datetime | None:
    """A report's date/time in the common layouts (Italian month names too); local time is Europe/Rome."""
    if not text:
        return None
    cleaned = _IT_DAYS.sub(" ", text)
    for italian, english in _IT_MONTHS.items():
        cleaned = re.sub(rf"\b{italian}\b", english, cleaned, flags=re.IGNORECASE)
    cleaned = re.sub(r"\b(?:alle|ore|at|um)\b", " ", cleaned, flags=re.IGNORECASE)
    cleaned = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", cleaned)
    cleaned = re.sub(r"[,]", " ", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    offset = re.search(r"\s*(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT)$", cleaned)
    aware_tz = None
    if offset:
        token = offset.group(0).strip()
        cleaned = cleaned[: offset.start()].strip()
        if token in ("Z", "UTC", "GMT"):
            aware_tz = ZoneInfo("UTC")
        else:
            sign = 1 if token[0] == "+" else -1
            digits = token[1:].replace(":", "")
            from datetime import timezone as _tz
            aware_tz = _tz(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))  # type: ignore[assignment]
    cleaned = re.sub(r"(\d+:\d+:\d+)\.\d+", r"\1", cleaned)
    for fmt in _DATE_FORMATS:
        try:
            value = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        return value.replace(tzinfo=aware_tz or tz)
    match = re.search(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4}[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?", cleaned, re.IGNORECASE)
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
