"""Shared by the tests that hold each feature's SQL to its store: the state module without its schema."""

from __future__ import annotations

import ast
from pathlib import Path


def without_migrations(path: Path) -> str:
    """agent/state.py's source with the MIGRATIONS list blanked out (the schema names the tables)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "MIGRATIONS" for t in targets):
            assert node.end_lineno is not None
            lines[node.lineno - 1:node.end_lineno] = [""] * (node.end_lineno - node.lineno + 1)
            return "\n".join(lines)
    raise AssertionError("agent/state.py has no MIGRATIONS list any more: update this test")
