"""The state DB, audit writer and incident model a command opens when it acts outside the agent.

A restore test or an update run started by hand must leave the same record as
a scheduled one: incident changes audited, the audit anchor kept in the state
DB. One place wires that for every CLI command that changes state.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

from custode.agent.audit_keeper import AuditKeeper
from custode.agent.incidents import Incidents
from custode.agent.paths import audit_path, state_path
from custode.agent.state import State


@dataclass(frozen=True)
class Recording:
    state: State
    audit: Callable[[str, str | None, dict], None]
    incidents: Incidents


@contextlib.contextmanager
def open_recording(config, actor: str = "cli") -> Iterator[Recording]:
    path = state_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = State(path)
    try:
        write = AuditKeeper(state, audit_path(config), actor=actor).write  # held to the anchor, like the agent's
        incidents = Incidents(state, on_change=lambda change: write(*change.audit_record()))
        yield Recording(state, write, incidents)
    finally:
        state.close()
