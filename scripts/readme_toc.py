#!/usr/bin/env python3
"""Rewrite the README's table of contents (between <!-- toc --> and <!-- /toc -->) from its ## headings.

Usage: python scripts/readme_toc.py [--check]   (--check: exit 1 if the table is out of date)
tests/test_readme.py runs the check, so a new section cannot be forgotten.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- toc -->", "<!-- /toc -->"


def anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def headings(text: str) -> list[str]:
    body, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("## "):
            body.append(line[3:].strip())
    return body


def table_of_contents(text: str) -> str:
    return "\n".join(f"- [{title}](#{anchor(title)})" for title in headings(text))


def rewritten(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} … {END} block to fill")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table_of_contents(text)}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    new = rewritten(text)
    if "--check" in argv:
        if new != text:
            print("README.md: the table of contents is out of date; run python scripts/readme_toc.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
