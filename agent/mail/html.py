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

_STRUCTURE = frozenset({*_BLOCK, "td", "th"})  # the tags read_html acts on, in lower case
Table = list[list[str]]


_DROP = re.compile(r"<(script|style|head|noscript|template)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<!\[CDATA\[.*?\]\]>",
                   re.IGNORECASE | re.DOTALL)
# A tag (its name is the run of word characters after "<" or "</"), or any other "<...>", which is dropped.
_TOKEN = re.compile(r"<(/?)([A-Za-z]\w*)[^>]*>|<[^>]*>")
_ROW_MARK, _CELL_MARK, _LINE_MARK = "\x01", "\x02", "\x03"  # no whitespace to str.split


def html_text(html: str, max_chars: int = 512 * 1024) -> str:
    """Readable text of an HTML body: one line per block, a table row's cells joined by `` | ``."""
    return read_html(html, max_chars)[0]


def html_tables(html: str, max_chars: int = 512 * 1024) -> list[Table]:
    """Every table's rows of cell texts (nested tables are tables of their own), in document order of closing."""
    return read_html(html, max_chars)[1]


def read_html(html: str, max_chars: int = 512 * 1024) -> tuple[str, list[Table]]:
    """The text and the tables of an HTML body, from one pass over its tags.

    Each tag is looked at once: block elements and ``<br>`` break lines,
    ``<tr>`` starts a row whose cells (``<td>``, ``<th>``) are joined by
    `` | ``, other tags vanish. Whitespace is then rendered as a browser
    does: every run, newlines included, is one space, except inside
    ``<pre>``; generators write each ``<td>`` on its own source line, break
    lines inside cells and split attributes across quoted-printable soft
    breaks, and none of that is a line of the report. The same pass collects
    the tables: only table, tr, td and th structure them; text counts when a
    cell of the innermost open table is open; unclosed cells, rows and tables
    (truncated mail) are closed at the end, as a browser would. A tokenizer
    rather than a DOM: this runs on every HTML mail of a mailbox, and a broken
    page must still yield whatever text it has.
    """
    pieces = _TOKEN.split(_DROP.sub(" ", html[: max_chars * 4]))  # text, (closing, name, text)*
    text: list[str] = [pieces[0]]
    add = text.append
    tables: list[Table] = []
    outer: list[tuple[Table, list[str], list[str] | None]] = []  # the tables around the innermost open one
    rows: Table | None = None  # the innermost open table's rows (None: no table open), its row, its open cell
    row: list[str] = []
    cell: list[str] | None = None
    in_pre = False
    following = iter(pieces[1:])
    for closing, name, chunk in zip(following, following, following, strict=True):
        if name is not None:
            if name not in _STRUCTURE:
                name = name.lower()  # "TD", "Br", or an inline tag (most tags): those only vanish
                if name not in _STRUCTURE:
                    name = None
        if name is not None:
            if name == "td" or name == "th":
                if not closing:
                    add(_CELL_MARK)
                if rows is not None:
                    if cell is not None:
                        row.append(_cell_text(cell))
                    cell = None if closing else []
            elif name in _BLOCK:
                if name == "tr" and not closing:
                    add(_ROW_MARK)
                else:
                    add(_LINE_MARK)
                if name == "table":
                    if not closing:
                        if rows is not None:
                            outer.append((rows, row, cell))
                        rows, row, cell = [], [], None
                    elif rows is not None:
                        _close_table(tables, rows, row, cell)
                        rows, row, cell = outer.pop() if outer else (None, [], None)
                elif name == "tr":
                    if rows is not None:
                        _close_row(rows, row, cell)
                        row, cell = [], None
                elif name == "pre":
                    in_pre = not closing
                elif cell is not None:
                    cell.append(" ")  # a <br> or block inside a cell separates words; inline tags do not
        if chunk:
            add(chunk.replace("\n", _LINE_MARK) if in_pre else chunk)
            if cell is not None:
                cell.append(chunk)
    while rows is not None:  # a truncated mail: close what is open, as a browser would
        _close_table(tables, rows, row, cell)
        rows, row, cell = outer.pop() if outer else (None, [], None)
    rendered = unescape("".join(text))
    if "\u200b" in rendered:  # zero-width spaces are no whitespace to str.split, but are to a reader
        rendered = rendered.replace("\u200b", " ")
    rendered = " ".join(rendered.split()).replace(_LINE_MARK, "\n")
    return _rows_as_lines(rendered)[:max_chars], tables


def _rows_as_lines(text: str) -> str:
    rows = text.split(_ROW_MARK)
    for index, row in enumerate(rows):
        if _CELL_MARK in row:
            first, _, rest = row.partition(_CELL_MARK)
            rows[index] = "\n" + first + rest.replace(_CELL_MARK, " | ")
    # Whitespace is already one space everywhere but where " | " meets a cell's own edge space (at most
    # three in a row): two replacements collapse those, cheaper than normalise_lines on every line.
    joined = "".join(rows).replace("  ", " ").replace("  ", " ")
    return "\n".join(line for line in (line.strip() for line in joined.split("\n")) if line and line != "|")


def _cell_text(parts: list[str]) -> str:
    joined = "".join(parts)
    return " ".join((unescape(joined) if "&" in joined else joined).split())


def _close_row(rows: Table, row: list[str], cell: list[str] | None) -> None:
    if cell is not None:
        row.append(_cell_text(cell))
    if any(row):
        rows.append(row)


def _close_table(tables: list[Table], rows: Table, row: list[str], cell: list[str] | None) -> None:
    _close_row(rows, row, cell)
    if rows:
        tables.append(rows)


def normalise_lines(text: str) -> str:
    """Collapse runs of spaces, strip lines, drop empty ones: parsers then match line by line."""
    if "\u200b" in text:  # zero-width spaces are no whitespace to str.split, but are to a reader
        text = text.replace("\u200b", " ")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line and line != "|")
