"""Loaded by every Python process of the suite's shifted-clock run (``.ci/run`` puts this folder on PYTHONPATH).

Debian 12's libfaketime (0.9.10) is run with FAKETIME_DONT_FAKE_MONOTONIC=1,
because with a faked monotonic clock Python's timed lock waits (sem_clockwait,
which 0.9.10 does not intercept) never return. In that mode 0.9.10 converts an
absolute CLOCK_MONOTONIC deadline of clock_nanosleep() as if it were a faked
wall-clock time, so Python 3.11's ``time.sleep()`` (which sleeps to an
absolute monotonic deadline) fails with EINVAL. Upstream fixed it after 0.9.10
(#426). Here ``time.sleep`` waits with select(), whose timeout is relative and
passes through libfaketime untouched. Only the run under faketime loads this.
"""

import os
import select
import time

if "faketime" in os.environ.get("LD_PRELOAD", ""):
    _monotonic = time.monotonic

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = _monotonic() + seconds
        while True:
            left = deadline - _monotonic()
            if left <= 0:
                return
            select.select([], [], [], left)

    time.sleep = _sleep
