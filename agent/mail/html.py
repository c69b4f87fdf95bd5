"""HTML bodies turned into text lines and tables, with the standard library only.

Backup software mails HTML-only reports (Veeam, Acronis, Synology) whose facts
sit in tables; parsers need both a readable text (for keywords) and the table
cells (for per-VM rows). A tolerant tokenizer is enough: reports are generated
HTML, and a broken page must still yield whatever text it has.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre",
          "blockquote", "section", "article", "header", "footer", "ul", "ol", "dd", "dt", "title"}
_SKIP = {"script", "style", "head", "noscript", "template"}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")

Table = list[list[str]]


class _Extractor(HTMLParser):
    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.max_chars = max_chars
        self.chunks: list[str] = []
        self.size = 0
        self.skip_depth = 0
        self.tables: list[Table] = []
        self._stack: list[Table] = []  # open tables (nested tables are separate tables)
        self._row: list[list[str]] = []  # per open table: the current row's cells
        self._cell: list[list[str] | None] = []  # per open table: text of the open cell

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
            return
        if tag == "table":
            self._stack.append([])
            self._row.append([])
            self._cell.append(None)
        elif tag == "tr" and self._stack:
            self._close_row()
        elif tag in ("td", "th") and self._stack:
            self._close_cell()
            self._cell[-1] = []
            self._emit(" | " if self._row[-1] else "")
        if tag in _BLOCK:
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag in ("td", "th") and self._stack:
            self._close_cell()
        elif tag == "tr" and self._stack:
            self._close_row()
        elif tag == "table" and self._stack:
            self._close_row()
            table = self._stack.pop()
            self._row.pop()
            self._cell.pop()
            if table:
                self.tables.append(table)
        if tag in _BLOCK:
            self._emit("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        self._emit(data)
        if self._stack and self._cell[-1] is not None:
            self._cell[-1].append(data)  # type: ignore[union-attr]

    def _emit(self, text: str) -> None:
        if self.size < self.max_chars:
            self.chunks.append(text)
            self.size += len(text)

    def _close_cell(self) -> None:
        cell = self._cell[-1]
        if cell is not None:
            self._row[-1].append(_SPACES.sub(" ", "".join(cell)).strip())
            self._cell[-1] = None

    def _close_row(self) -> None:
        self._close_cell()
        row = self._row[-1]
        if any(row):
            self._stack[-1].append(row)
        self._row[-1] = []


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
    text = _DROP.sub(" ", html[: max_chars * 4])
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


_TABLE_TAG = re.compile(r"<(/?)(table|tr|td|th)\b[^>]*>", re.IGNORECASE)


def _cell_text(fragment: str) -> str:
    return _SPACES.sub(" ", unescape(_TAG.sub("", fragment))).strip()


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


def html_to_text(html: str, max_chars: int = 512 * 1024) -> tuple[str, list[Table]]:
    """Readable text (one line per block, cells joined by `` | ``) and every table's rows."""
    parser = _Extractor(max_chars)
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is tolerant, but a report must never crash the poller
        pass
    while parser._stack:  # tables left open by truncated HTML still count
        parser.handle_endtag("table")
    return normalise_lines("".join(parser.chunks)), parser.tables


def normalise_lines(text: str) -> str:
    """Collapse runs of spaces, strip lines, drop empty ones: parsers then match line by line."""
    lines = (line.strip() for line in _SPACES.sub(" ", text).splitlines())
    return "\n".join(line for line in lines if line and line != "|")
