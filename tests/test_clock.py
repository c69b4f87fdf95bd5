"""custode.agent.clock: one pinnable wall clock, read by the services through their default ``clock``."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from custode.agent import clock
from custode.agent.backups.service import BackupMonitor
from custode.agent.farm.service import new_poller
from custode.agent.incidents import Incidents

CHRISTMAS_EVE = datetime(2026, 12, 24, 17, 45, tzinfo=clock.ROME)


def test_pinned_clock_runs_on_from_the_pin_and_is_put_back() -> None:
    real_before = clock.current_time()
    with clock.pinned(CHRISTMAS_EVE) as pinned:
        first = pinned()
        assert abs(first - CHRISTMAS_EVE.timestamp()) < 1
        assert clock.now_rome().date() == CHRISTMAS_EVE.date() == clock.today_rome()
        assert clock.now_rome().utcoffset() == timedelta(hours=1)
        assert clock.now_utc().tzinfo is timezone.utc
        time.sleep(0.05)
        assert clock.current_time() > first  # running: code that waits for a deadline sees time pass
    assert abs(clock.current_time() - time.time()) < 1 and clock.current_time() >= real_before


def test_frozen_and_nested_pins() -> None:
    with clock.pinned(1_000_000.0, running=False):
        time.sleep(0.01)
        assert clock.current_time() == 1_000_000.0
        with clock.pinned(2_000_000.0, running=False):
            assert clock.current_time() == 2_000_000.0
        assert clock.current_time() == 1_000_000.0


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        with clock.pinned(datetime(2026, 12, 24, 17, 45)):
            pass


def test_services_built_before_the_pin_read_the_pinned_clock(tmp_path, pin_clock) -> None:
    from custode.agent.config_loader import load_text
    from custode.agent.state import State

    state = State(tmp_path / "state.db")
    try:
        loaded = load_text("backups:\n  mailboxes: []\n")
        incidents = Incidents(state)
        poller = new_poller(loaded.model)
        monitor = BackupMonitor(loaded.model.backups, state, incidents, sources=[])
        pin_clock(CHRISTMAS_EVE, running=False)
        assert monitor.clock() == poller._clock() == incidents.clock() == CHRISTMAS_EVE.timestamp()
    finally:
        state.close()
