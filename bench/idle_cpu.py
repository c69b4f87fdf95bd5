"""Steady-state cost: Custode (embedded default config) and node_exporter side by side, scraped like Prometheus.

    .venv/bin/python bench/idle_cpu.py                    # 10 minutes, a scrape of each every 15 s
    .venv/bin/python bench/idle_cpu.py --minutes 30 --json

Target (issue 17): Custode's CPU per hour at most node_exporter's, its RSS at
most 40 MB. Both processes start on free loopback ports (Custode with its
state in a temporary folder), are left a warm-up minute (start-up is not
steady state), then each is scraped every ``--interval`` seconds on one
keep-alive connection with gzip, as Prometheus does, for ``--minutes``; the
CPU (utime+stime of the process tree, from /proc) used in that window is
given per hour, beside RSS and its peak.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scrape import (  # noqa: E402 - the sibling bench module, found through the path set just above
    INSTALL_HINT,
    NODE_EXPORTER,
    SCRAPE_HEADERS,
    BenchError,
    Target,
    cpu_seconds,
    memory_mb,
    pair,
    run_main,
    wait_ready,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="measured window (default 10; the target's)")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between scrapes (default 15)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds left out after start (default 60)")
    parser.add_argument("--node-exporter", default=NODE_EXPORTER)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def measure(targets: list[Target], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """CPU seconds over the window, per hour, and memory, for each target."""
    time.sleep(args.warmup)
    start = time.monotonic()
    cpu_before = {target.name: cpu_seconds(target.pid) for target in targets}
    scrapes = 0
    deadline = start + args.minutes * 60
    while time.monotonic() < deadline:
        for target in targets:
            status, _, _, _ = target.get("/metrics", SCRAPE_HEADERS)
            if status != 200:
                raise BenchError(f"{target.name}: /metrics answered {status}")
        scrapes += 1
        time.sleep(max(0.0, min(args.interval, deadline - time.monotonic())))
    elapsed = time.monotonic() - start
    results = {}
    for target in targets:
        used = cpu_seconds(target.pid) - cpu_before[target.name]
        results[target.name] = {"cpu_seconds": round(used, 2), "cpu_seconds_per_hour": round(used * 3600 / elapsed, 1),
                                "scrapes": scrapes, "window_seconds": round(elapsed, 1), **memory_mb(target.pid)}
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (os.path.isfile(args.node_exporter) and os.access(args.node_exporter, os.X_OK)):
        print(INSTALL_HINT.format(path=args.node_exporter), file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="custode-idle-"))
    custode, node = pair(workdir, args.node_exporter)
    try:
        for target in (custode, node):
            target.start(workdir)
        wait_ready([custode, node], 30)
        print(f"both ready; {args.warmup:.0f} s warm-up, then {args.minutes:g} min scraped every "
              f"{args.interval:g} s...", file=sys.stderr, flush=True)
        results = measure([custode, node], args)
    except BenchError as exc:
        print(f"bench/idle_cpu.py: {exc}", file=sys.stderr)
        return 1
    finally:
        for target in (custode, node):
            target.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    own, peer = results["custode"], results["node_exporter"]
    print(f"{'':16} {'CPU s':>8} {'CPU s/hour':>11} {'RSS MB':>8} {'peak RSS MB':>12}")
    for name, figures in results.items():
        print(f"{name:16} {figures['cpu_seconds']:8.2f} {figures['cpu_seconds_per_hour']:11.1f} "
              f"{figures['rss_mb']:8.1f} {figures['peak_rss_mb']:12.1f}")
    print(f"window {own['window_seconds']:.0f} s, {own['scrapes']} scrapes each")
    cpu_ok = own["cpu_seconds_per_hour"] <= peer["cpu_seconds_per_hour"]
    print(f"target CPU/hour <= node_exporter's: {'PASS' if cpu_ok else 'FAIL'} "
          f"({own['cpu_seconds_per_hour'] / max(peer['cpu_seconds_per_hour'], 0.01):.2f}x)")
    print(f"target RSS <= 40 MB: {'PASS' if own['rss_mb'] <= 40 else 'FAIL'} ({own['rss_mb']:.1f} MB)")
    if args.minutes < 10:
        print("(a window shorter than the target's 10 minutes: an indication, not the figure)")
    if args.json:
        print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    run_main(main)
