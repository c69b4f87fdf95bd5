#!/usr/bin/env python3
"""Idle-connection flood: Custode vs Debian's prometheus-node-exporter, same host, same run.

Usage::

    /work/main/.venv/bin/python bench/idle_flood.py [--connections 3000] [--seconds 20] [--tls] [--json]

For each exporter in turn (the other one idle, both started at the beginning
of the run): open ``--connections`` TCP connections that never send a byte,
keep them for ``--seconds`` while scraping ``/metrics`` on a fresh connection
twice a second, then close them and time the first scrape after. Printed side
by side: threads and RSS before, during and after, scrape latency during the
flood (p50 and worst), scrapes that failed, and how many flood connections
the server had closed by the end (its header timeout or its connection cap).

This is what issue 18 measured with the old thread-per-connection server
(3,014 threads, RSS 48 -> 132 MB, /metrics unanswered for 70-90 s after).
Exit code: 0 whenever the run produced figures, 1 if an exporter could not
be started, 2 for a missing node_exporter.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scrape  # noqa: E402 - bench scripts share helpers from their folder


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def one_scrape(target: scrape.Target, timeout: float = 5.0) -> float | None:
    """Seconds for one scrape on a new connection (as after a reconnect), or None when it failed."""
    conn: http.client.HTTPConnection
    if target.tls is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", target.port, timeout=timeout, context=target.tls)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request("GET", "/metrics", headers=target.auth)
        response = conn.getresponse()
        response.read()
        return time.perf_counter() - started if response.status == 200 else None
    except (OSError, http.client.HTTPException, ssl.SSLError):
        return None
    finally:
        conn.close()


def still_open(sock: socket.socket) -> bool:
    """Whether the server has not closed this connection (a non-blocking peek sees no EOF)."""
    try:
        sock.setblocking(False)
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def flood(target: scrape.Target, connections: int, seconds: float) -> dict[str, Any]:
    assert target.proc is not None
    pid = target.proc.pid
    before = {"threads": threads_of(pid), "rss_mb": scrape.memory_mb(pid)["rss_mb"]}
    socks: list[socket.socket] = []
    refused = 0
    for _ in range(connections):
        try:
            socks.append(socket.create_connection(("127.0.0.1", target.port), timeout=5))
        except OSError:
            refused += 1
    latencies: list[float] = []
    failed, peak_threads, peak_rss = 0, 0, 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        took = one_scrape(target)
        if took is None:
            failed += 1
        else:
            latencies.append(took)
        peak_threads = max(peak_threads, threads_of(pid))
        peak_rss = max(peak_rss, scrape.memory_mb(pid)["rss_mb"])
        time.sleep(0.5)
    closed_by_server = sum(1 for sock in socks if not still_open(sock))
    for sock in socks:
        sock.close()
    started = time.monotonic()
    while one_scrape(target, timeout=2) is None and time.monotonic() - started < 120:
        time.sleep(0.1)
    first_after = time.monotonic() - started
    time.sleep(2)
    return {
        "threads_before": before["threads"], "threads_peak": peak_threads, "threads_after": threads_of(pid),
        "rss_before_mb": before["rss_mb"], "rss_peak_mb": peak_rss, "rss_after_mb": scrape.memory_mb(pid)["rss_mb"],
        "connect_refused": refused, "closed_by_server": closed_by_server,
        "scrapes": len(latencies) + failed, "scrapes_failed": failed,
        "scrape_p50_ms": scrape.percentile(latencies, 50) * 1000 if latencies else None,
        "scrape_max_ms": max(latencies) * 1000 if latencies else None,
        "first_scrape_after_s": first_after,
    }


def render(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    rows = [("threads before / peak / after", "threads_before", "threads_peak", "threads_after", "{}"),
            ("RSS MB before / peak / after", "rss_before_mb", "rss_peak_mb", "rss_after_mb", "{:.1f}")]
    lines = [f"Idle flood: {args.connections} idle connections for {args.seconds:g} s, "
             f"{'TLS + basic auth' if args.tls else 'plain HTTP'}", ""]
    width = 34
    lines.append(f"{'':{width}}{'custode':>24}{'node_exporter':>24}")
    for label, *keys, fmt in rows:
        cells = [" / ".join(fmt.format(results[name][key]) for key in keys) for name in ("custode", "node_exporter")]
        lines.append(f"{label:{width}}{cells[0]:>24}{cells[1]:>24}")

    def cell(name: str, key: str, fmt: str) -> str:
        value = results[name][key]
        return "-" if value is None else fmt.format(value)

    for label, key, fmt in (("scrapes during the flood", "scrapes", "{}"), ("  failed", "scrapes_failed", "{}"),
                            ("scrape p50 during (ms)", "scrape_p50_ms", "{:.1f}"),
                            ("scrape worst during (ms)", "scrape_max_ms", "{:.1f}"),
                            ("flood connections closed by server", "closed_by_server", "{}"),
                            ("connects refused", "connect_refused", "{}"),
                            ("first scrape after closing (s)", "first_scrape_after_s", "{:.2f}")):
        lines.append(f"{label:{width}}{cell('custode', key, fmt):>24}{cell('node_exporter', key, fmt):>24}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tls", action="store_true", help="both on one web config with TLS and basic auth")
    parser.add_argument("--node-exporter", default=scrape.NODE_EXPORTER)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not (os.path.isfile(args.node_exporter) and os.access(args.node_exporter, os.X_OK)):
        print(scrape.INSTALL_HINT.format(path=args.node_exporter), file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the flood needs as many descriptors as connections
    workdir = Path(tempfile.mkdtemp(prefix="custode-flood-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        custode, node = scrape.pair(workdir, args.node_exporter, args.tls)
        for target in (custode, node):
            target.start(workdir)
        scrape.wait_ready([custode, node], 60)
        time.sleep(5)  # past the first collection cycles
        for target in (custode, node):
            print(f"flooding {target.name}...", file=sys.stderr, flush=True)
            results[target.name] = flood(target, args.connections, args.seconds)
    except scrape.BenchError as exc:
        print(f"bench/idle_flood.py: {exc}", file=sys.stderr)
        return 1
    finally:
        for target in locals().get("custode", None), locals().get("node", None):
            if target is not None:
                target.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(results, args))
    if args.json:
        print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    scrape.run_main(main)
