"""The one wall clock every judgment reads, so a test can pin it.

Custode judges times against "now" all the time: a backup report older than its
deadline, a Defender signature older than a week, a restore test older than a
year, a ticket's due time, the next update window, a holiday year. When each
place read ``time.time()`` itself, a test could not put "now" where its
fixture is, and a test that judged a fixed fixture date against the real day
passed the day it was written and failed two weeks later.

So product code reads :func:`current_time` (or a ``clock`` callable that defaults to
it), and tests pin it with :func:`pinned`. Durations and timeouts are not
judgments: they keep using ``time.monotonic()``, which no test needs to move.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

Clock = Callable[[], float]
"""Seconds since the epoch, like ``time.time``."""

ROME = ZoneInfo("Europe/Rome")

_source: Clock = time.time


def current_time() -> float:
    """The current Unix time, from the pinned clock in a test and the system clock otherwise."""
    return _source()


def now_utc() -> datetime:
    return datetime.fromtimestamp(current_time(), timezone.utc)


def now_rome() -> datetime:
    """Now as the comuni read it: Europe/Rome, with its offset."""
    return datetime.fromtimestamp(current_time(), ROME)


def today_rome() -> date:
    """Today's date in Europe/Rome: the day reports, calendars and daily rows are keyed by."""
    return now_rome().date()


def _as_epoch(at: float | datetime) -> float:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("pin the clock to an aware datetime (say which zone the fixture's time is in)")
        return at.timestamp()
    return float(at)


@contextmanager
def pinned(at: float | datetime, running: bool = True) -> Iterator[Clock]:
    """Make :func:`current_time` start at ``at`` for the duration of the block.

    ``running`` (the default) lets the pinned clock advance with real time, so
    code that waits for a deadline still sees time pass; ``running=False``
    freezes it. Yields the clock, to inject where a ``clock`` parameter is taken.
    """
    global _source
    start = _as_epoch(at)
    if running:
        offset = start - time.time()

        def source() -> float:
            return time.time() + offset
    else:
        def source() -> float:
            return start
    previous, _source = _source, source
    try:
        yield current_time
    finally:
        _source = previous
