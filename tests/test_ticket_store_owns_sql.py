"""The ticket tables belong to agent/tickets/store.py, and their states are the StrEnums of the model.

Every statement on ``tickets``, ``ticket_outbox`` and ``ticket_cursor`` lives in
the store (their schema is a migration in agent/state.py), so the exactly-once
reasoning has one place to read; and the strings stored in their state columns
are exactly the values of ``TicketState``, ``OpState``, ``OpKind`` and
``RemoteStatus``, so a state cannot be misspelt in one module only.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from store_sql import without_migrations

from custode.agent.state import State
from custode.agent.tickets.model import LIVE_STATES, UNDELIVERED_STATES, OpKind, OpState, RemoteStatus, TicketState

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "agent" / "tickets" / "store.py"
STATE = ROOT / "agent" / "state.py"
TABLES = ("tickets", "ticket_outbox", "ticket_cursor")
TICKET_SQL = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+(?:" + "|".join(TABLES) + r")\b(?!\.)")
"""``DELETE FROM`` is covered by ``FROM``. SQL keywords are upper case in this code base, so prose
("rights on tickets", "read from the tickets") does not match; ``tickets.backends`` (a config path) neither."""
STATE_COLUMNS = {("tickets", "state"): TicketState, ("tickets", "remote_status"): RemoteStatus,
                 ("ticket_outbox", "state"): OpState, ("ticket_outbox", "op"): OpKind}



def _ticket_sql(source: str) -> list[tuple[int, str]]:
    return [(source.count("\n", 0, match.start()) + 1, match.group(0)) for match in TICKET_SQL.finditer(source)]


def test_only_the_ticket_store_has_sql_on_the_ticket_tables() -> None:
    offenders = []
    for path in sorted([*(ROOT / "agent").rglob("*.py"), *(ROOT / "collectors").rglob("*.py")]):
        if path == STORE:
            continue
        source = without_migrations(path) if path == STATE else path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}:{line}: {sql}" for line, sql in _ticket_sql(source)]
    assert not offenders, ("SQL on the ticket tables outside agent/tickets/store.py; give the store a function "
                           "for it (taking the caller's connection where it runs inside a transaction):\n"
                           + "\n".join(offenders))


def test_the_pattern_finds_the_store_own_statements() -> None:
    """Guards the test above against a pattern that matches nothing."""
    found = {sql.split()[-1] for _, sql in _ticket_sql(STORE.read_text(encoding="utf-8"))}
    assert found == set(TABLES)
    assert _ticket_sql("x = db.execute('DELETE FROM ticket_outbox WHERE id = ?')")
    assert not _ticket_sql("help='rights on tickets', see tickets.backends.hook, read from the tickets table")


def test_no_ticket_module_spells_a_state_as_an_sql_literal() -> None:
    """States reach the SQL through the StrEnums (the store interpolates them), never as quoted words."""
    literal = re.compile(r"\b(?:state|op|remote_status)\s*(?:=|!=|<>|IN)\s*\(?\s*'")
    paths = [*(ROOT / "agent" / "tickets").rglob("*.py"), ROOT / "agent" / "status.py"]
    offenders = [f"{path.relative_to(ROOT)}:{source.count(chr(10), 0, m.start()) + 1}"
                 for path in sorted(paths) for source in [path.read_text(encoding="utf-8")]
                 for m in literal.finditer(source)]
    assert not offenders, "use TicketState/OpState/OpKind/RemoteStatus: " + ", ".join(offenders)


def _values(enum: type[StrEnum]) -> set[str]:
    return {member.value for member in enum}


def _sql_list(text: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", text))


def test_the_schema_spells_the_same_states_as_the_enums(tmp_path) -> None:
    """Partial index, defaults, and any CHECK (col IN (...)) on a state column: exactly the StrEnum values."""
    state = State(tmp_path / "state.db")
    try:
        schema = {row["name"]: row["sql"] for row in state.query(
            "SELECT name, sql FROM sqlite_master WHERE tbl_name IN (?, ?, ?) AND sql IS NOT NULL", TABLES)}
        defaults = {(table, row["name"]): row["dflt_value"] for table in TABLES
                    for row in state.query(f"PRAGMA table_info({table})")}
    finally:
        state.close()

    live = re.search(r"WHERE\s+state\s+IN\s*\(([^)]*)\)", schema["tickets_one_live_per_key"])
    assert live is not None and _sql_list(live.group(1)) == set(LIVE_STATES)
    assert defaults[("ticket_outbox", "state")] == f"'{OpState.PENDING}'"
    assert defaults[("tickets", "remote_status")] == f"'{RemoteStatus.UNKNOWN}'"
    assert set(LIVE_STATES) <= _values(TicketState) and set(UNDELIVERED_STATES) <= _values(OpState)

    for (table, column), enum in STATE_COLUMNS.items():
        for check in re.finditer(rf"CHECK\s*\(\s*{column}\s+IN\s*\(([^)]*)\)\s*\)", schema[table]):
            assert _sql_list(check.group(1)) == _values(enum), f"{table}.{column}: CHECK and {enum.__name__} differ"


def test_the_enums_are_the_strings_stored_before_they_existed() -> None:
    """No migration: every value is the word the state DB already holds."""
    assert _values(TicketState) == {"open", "recovered", "done", "closed_remote"}
    assert _values(OpState) == {"pending", "done", "dead", "cancelled"}
    assert _values(OpKind) == {"create", "comment", "priority", "solve", "reopen"}  # reopen: a new kind, no old rows
    assert _values(RemoteStatus) == {"new", "open", "solved", "closed", "unknown"}
    assert LIVE_STATES == ("open", "recovered") and UNDELIVERED_STATES == ("pending", "dead")
