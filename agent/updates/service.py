"""Wiring an update runner (state DB, audit log, incidents, mailer) for the CLI and the agent."""

from __future__ import annotations

import contextlib
from typing import Iterator

from agent.audit import AuditLog, tolerant_writer
from agent.incidents import Incidents
from agent.paths import audit_path, state_path
from agent.state import State
from agent.updates.runner import UpdateRunner
from agent.updates.store import UpdateStore


def build_mailer(config):
    """The SMTP mailer when the config has an ``smtp`` section, else None (notices are then warnings)."""
    if config.smtp is None:
        return None
    from agent.mailer import Mailer

    return Mailer(config.smtp)


@contextlib.contextmanager
def open_runner(loaded, actor: str = "cli") -> Iterator[UpdateRunner]:
    config = loaded.model
    path = state_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = State(path)
    try:
        audit = AuditLog(audit_path(config), actor=actor, on_append=state.set_audit_anchor)
        write = tolerant_writer(audit)

        incidents = Incidents(state, on_change=lambda change: write(*change.audit_record()))
        yield UpdateRunner(config, loaded.source, state, incidents, audit=write, mailer=build_mailer(config))
    finally:
        state.close()


@contextlib.contextmanager
def open_store(loaded) -> Iterator[UpdateStore]:
    path = state_path(loaded.model)
    if not path.exists():
        raise SystemExit(f"custode: no state yet at {path}; no update has run")
    state = State(path)
    try:
        yield UpdateStore(state)
    finally:
        state.close()
