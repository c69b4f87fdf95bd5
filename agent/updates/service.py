"""Wiring an update runner (state DB, audit log, incidents, mailer) for the CLI and the agent."""

from __future__ import annotations

import contextlib
from typing import Iterator

from custode.agent.paths import state_path
from custode.agent.state import State
from custode.agent.updates.runner import UpdateRunner
from custode.agent.updates.store import UpdateStore


def build_mailer(config):
    """The SMTP mailer when the config has an ``smtp`` section, else None (notices are then warnings)."""
    if config.smtp is None:
        return None
    from custode.agent.mailer import Mailer

    return Mailer(config.smtp)


@contextlib.contextmanager
def open_runner(loaded, actor: str = "cli") -> Iterator[UpdateRunner]:
    from custode.agent.recording import open_recording

    config = loaded.model
    with open_recording(config, actor) as recording:
        yield UpdateRunner(config, loaded.source, recording.state, recording.incidents, audit=recording.audit,
                           mailer=build_mailer(config))


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
