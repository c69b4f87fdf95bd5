"""HTML bodies turned into text lines and tables, with the standard library only.

Backup software mails HTML-only reports (Veeam, Acronis, Synology) whose facts
sit in tables; parsers need both a readable text (for keywords) and the table
cells (for per-VM rows). A tolerant tokenizer is enough: reports are generated
HTML, and a broken page must still yield whatever text it has.
"""

from __future__ import annotations

import re
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
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and line != "|")
