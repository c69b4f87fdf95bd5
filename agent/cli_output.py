"""What every command prints around its own content: where its data came from, and one JSON convention.

Two traps this closes. ``custode status`` without ``--config`` once read the
default state DB while the agent used another, and said "nothing is wrong":
so every command's first line of human output names the config and the state
DB it read, and its JSON carries both. And listing commands disagreed (JSON
lines here, an array there, ``--format json`` elsewhere, epoch floats for
times): ``--format json`` now prints one document everywhere, ``--json`` is
kept as its alias, and every time in it is ISO 8601 with its offset.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from custode.agent.calendar import ROME

TIME_KEYS_SUFFIXES = ("_at", "_since", "_until")
TIME_KEYS = frozenset({"since", "due", "deadline", "last_report", "last_success", "last_test", "start", "end",
                       "opened", "resolved", "started", "ended", "generated", "next_run"})


def add_format(parser: argparse.ArgumentParser, choices: Iterable[str] = ("table", "json"),
               default: str = "table") -> None:
    """``--format CHOICE`` and ``--json`` (the same as ``--format json``)."""
    options = list(choices)
    parser.add_argument("--format", choices=options, default=default,
                        help=f"{' | '.join(options)} (default {default}); json: one document, times ISO 8601")
    parser.add_argument("--json", dest="format", action="store_const", const="json",
                        help="the same as --format json")


def iso(value: float | datetime | None) -> str | None:
    """ISO 8601 in Europe/Rome with its offset (2026-12-07T17:30:00+01:00); None stays None."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(float(value), ROME)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ROME)
    return moment.astimezone(ROME).isoformat(timespec="seconds")


def is_time_key(key: str) -> bool:
    return key in TIME_KEYS or key.endswith(TIME_KEYS_SUFFIXES)


def with_iso_times(record: Mapping[str, Any]) -> dict[str, Any]:
    """A row with its epoch-second times (keys like ``*_at``, ``since``) turned into ISO 8601."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if is_time_key(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = iso(value)
        elif isinstance(value, datetime):
            out[key] = iso(value)
        else:
            out[key] = value
    return out


def sources(loaded: Any, state: bool = True) -> dict[str, str]:
    """Which config (and state DB) a command read: for its JSON and its first line."""
    found = {"config": str(loaded.source)}
    if state:
        from custode.agent.paths import state_path

        found["state_db"] = str(state_path(loaded.model))
    return found


def sources_line(loaded: Any, state: bool = True) -> str:
    """The first line of a command's human output."""
    found = sources(loaded, state)
    line = f"Config: {found['config']}"
    if "state_db" in found:
        line += f" · state DB: {found['state_db']}"
    return line


def document(kind: str, items: list[Any], loaded: Any = None, state: bool = True, **extra: Any) -> str:
    """One JSON document: where the data came from, when, and the items under ``kind``."""
    body: dict[str, Any] = {}
    if loaded is not None:
        body.update(sources(loaded, state))
    from custode.agent.clock import now_rome

    body["generated_at"] = iso(now_rome())
    body.update(extra)
    body[kind] = [with_iso_times(item) if isinstance(item, Mapping) else item for item in items]
    return json.dumps(body, ensure_ascii=False, indent=2, default=str) + "\n"


def print_document(kind: str, items: list[Any], loaded: Any = None, state: bool = True, **extra: Any) -> None:
    sys.stdout.write(document(kind, items, loaded, state, **extra))
