"""HTML bodies turned into text lines and tables, with the standard library only.

Backup software mails HTML-only reports (Veeam, Acronis, Synology) whose facts
sit in tables; parsers need both a readable text (for keywords) and the table
cells (for per-VM rows). Regular expressions are enough and ten times cheaper
than html.parser on every HTML mail of a mailbox: reports are generated HTML,
and a broken page must still yield whatever text it has.
"""

from __future__ import annotations

import re
from html import unescape

_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre",
          "blockquote", "section", "article", "header", "footer", "ul", "ol", "dd", "dt", "title"}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")

Table = list[list[str]]


_DROP = re.compile(r"<(script|style|head|noscript|template)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<!\[CDATA\[.*?\]\]>",
                   re.IGNORECASE | re.DOTALL)
_ROW = re.compile(r"<tr\b[^>]*>", re.IGNORECASE)
_CELL = re.compile(r"<t[dh]\b[^>]*>", re.IGNORECASE)
_BREAK = re.compile(r"</?(?:" + "|".join(sorted(_BLOCK)) + r")\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def html_text(html: str, max_chars: int = 512 * 1024) -> str:
    """Readable text of an HTML body: one line per block, a table row's cells joined by `` | ``.

    Regular expressions rather than a parser: this runs on every HTML mail of a
    mailbox, and the tokenizer in :mod:`html.parser` costs ten times as much.
    Tables as structures are :func:`html_tables`, computed only when a parser asks.
    """
    text = _collapse_whitespace(_DROP.sub(" ", html[: max_chars * 4]))
    text = _ROW.sub("\x01", text)
    text = _CELL.sub("\x02", text)
    text = _BREAK.sub("\n", text)
    text = unescape(_TAG.sub("", text))
    rows = text.split("\x01")
    for index, row in enumerate(rows):
        if "\x02" in row:
            first, _, rest = row.partition("\x02")
            rows[index] = "\n" + first + rest.replace("\x02", " | ")
    return normalise_lines("".join(rows))[:max_chars]


_PRE = re.compile(r"(<pre\b[^>]*>.*?</pre\s*>)", re.IGNORECASE | re.DOTALL)
_PRE_START = re.compile(r"<pre\b", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def _collapse_whitespace(html: str) -> str:
    """Whitespace as a browser renders it: every run, newlines included, is one space, except inside <pre>.

    Generators write each <td> on its own source line, break lines inside
    cells and split attributes across quoted-printable soft breaks; none of
    that is a line of the report. Only block elements, <br> and table rows
    break lines (``_BREAK``, ``_ROW``), whatever the source layout.
    """
    if _PRE_START.search(html) is None:  # nearly every report: one pass
        return _WHITESPACE.sub(" ", html)
    parts = _PRE.split(html)
    for index in range(0, len(parts), 2):
        parts[index] = _WHITESPACE.sub(" ", parts[index])
    return "".join(parts)


_TABLE_TAG = re.compile(r"<(/?)(table|tr|td|th)\b[^>]*>", re.IGNORECASE)


def _cell_text(fragment: str) -> str:
    # a <br> or block inside a cell separates words; an inline tag (<b>, <span>) does not
    return _WHITESPACE.sub(" ", unescape(_TAG.sub("", _BREAK.sub(" ", fragment)))).strip()


def html_tables(html: str, max_chars: int = 512 * 1024) -> list[Table]:
    """Every table's rows of cell texts (nested tables are tables of their own), in document order of closing.

    Only table, tr, td and th tags are tokens; the text between them is a
    cell's when a cell is open. Unclosed cells, rows and tables (truncated
    mail) are closed at the end, as a browser would.
    """
    html = _DROP.sub(" ", html[: max_chars * 4])
    tables: list[Table] = []
    stack: list[tuple[Table, list[str], list[str] | None]] = []  # (rows, current row, open cell parts)

    def close_cell() -> None:
        rows, row, cell = stack[-1]
        if cell is not None:
            row.append(_cell_text("".join(cell)))
            stack[-1] = (rows, row, None)

    def close_row() -> None:
        close_cell()
        rows, row, _ = stack[-1]
        if any(row):
            rows.append(row)
        stack[-1] = (rows, [], None)

    position = 0
    for match in _TABLE_TAG.finditer(html):
        if stack and stack[-1][2] is not None:
            stack[-1][2].append(html[position:match.start()])  # type: ignore[union-attr]
        position = match.end()
        closing, tag = match.group(1), match.group(2).lower()
        if tag == "table":
            if not closing:
                stack.append(([], [], None))
            elif stack:
                close_row()
                rows = stack.pop()[0]
                if rows:
                    tables.append(rows)
        elif not stack:
            continue
        elif tag == "tr":
            close_row()
        elif closing:
            close_cell()
        else:
            close_cell()
            rows, row, _ = stack[-1]
            stack[-1] = (rows, row, [])
    while stack:
        if stack[-1][2] is not None:
            stack[-1][2].append(html[position:])  # type: ignore[union-attr]
            position = len(html)
        close_row()
        rows = stack.pop()[0]
        if rows:
            tables.append(rows)
    return tables


def normalise_lines(text: str) -> str:
    """Collapse runs of spaces, strip lines, drop empty ones: parsers then match line by line."""
    lines = (line.strip() for line in _SPACES.sub(" ", text).splitlines())
    return "\n".join(line for line in lines if line and line != "|")
