"""Reading and rewriting an audit log's raw lines, for the tests that damage it on purpose."""

from __future__ import annotations

import json
from pathlib import Path


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in read_lines(path)]
