#!/usr/bin/env python3
"""Farm history benchmark: 400 days of daily aggregates for N hosts, its size and the yearly report's time.

Usage::

    /work/main/.venv/bin/python bench/farm_history.py [--hosts 500] [--days 400]

Each host gets one row per day built from two polls (a Linux snapshot with
two filesystems, or a Windows one with antivirus, updates and events, half
and half), written through ``custode.agent.farm.history.record`` in one transaction
per day, as the agent's farm job writes them. It prints the database size,
bytes per row, the time to write, and the time of ``custode farm report`` for
the last 365 days over all hosts (``custode.agent.farm.report.summarise``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from farm_helpers import linux_snapshot, linux_target, up, windows_snapshot, windows_target  # noqa: E402

from custode.agent.calendar import ROME  # noqa: E402
from custode.agent.farm import history  # noqa: E402
from custode.agent.farm.report import render, summarise  # noqa: E402
from custode.agent.state import State  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--days", type=int, default=400)
    args = parser.parse_args()
    targets = [(linux_target if i % 2 else windows_target)(f"h{i:03d}", f"t{i % 20:02d}") for i in range(args.hosts)]
    today = datetime.now(ROME).date()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "state.db"
        state = State(path)
        started = time.monotonic()
        for back in range(args.days, 0, -1):
            noon = datetime.combine(today - timedelta(days=back), datetime.min.time(), ROME).timestamp() + 43200
            with state.transaction() as db:
                for target in targets:
                    make = linux_snapshot if target.transport == "ssh" else windows_snapshot
                    for offset in (0, 3600):
                        history.record(db, up(target, make(now=noon + offset), at=noon + offset))
        written = time.monotonic() - started
        rows = state.query("SELECT COUNT(*) AS n FROM host_daily")[0]["n"]
        state.query("PRAGMA wal_checkpoint(TRUNCATE)")
        size = path.stat().st_size
        started = time.monotonic()
        years = summarise(state, today - timedelta(days=365), today)
        text = render(years, "csv")
        report = time.monotonic() - started
        state.close()
    print(f"{args.hosts} hosts x {args.days} days: {rows} rows, {size / 2**20:.1f} MiB "
          f"({size / rows:.0f} bytes per row), written in {written:.1f} s "
          f"({rows * 2 / written:.0f} polls folded per second)")
    print(f"yearly report over all hosts: {report:.2f} s for {len(years)} hosts, {len(text) / 1024:.0f} KiB of CSV")
    return 0


if __name__ == "__main__":
    sys.exit(main())
