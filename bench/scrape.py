#!/usr/bin/env python3
"""Scrape benchmark: Custode vs Debian's prometheus-node-exporter, same host, same run.

Usage::

    /work/main/.venv/bin/python bench/scrape.py [--scrapes 1000] [--interval 0] [--tls] [--json]

With ``--tls`` both exporters read the same web config file (exporter-toolkit
format): TLS with a self-signed certificate made by ``openssl`` for the run,
and basic auth with a bcrypt user; every scrape sends the credentials on a
kept-alive TLS connection, as Prometheus does with ``scheme: https`` and
``basic_auth``.

Why it is built the way it is:

* Both exporters run side by side on loopback and are scraped *interleaved*
  (Custode, node_exporter, node_exporter, Custode, ...) so that whatever else
  the machine is doing (CPU frequency changes, other tenants, page cache)
  hits both peers equally; two separate runs would not be comparable.
* Scrapes look like Prometheus' own: one HTTP/1.1 keep-alive connection per
  target, ``Accept: text/plain;version=0.0.4`` and ``Accept-Encoding: gzip``,
  body read completely. Latency is wall time from sending the request to
  having the whole body.
* CPU comes from /proc/PID/stat (utime+stime of the server process tree,
  plus the children it has reaped). node_exporter collects on every scrape, so
  all of its CPU is scrape CPU. Custode collects on a schedule and a scrape only
  serialises a cache, so its CPU during the loop also holds background
  collection that would happen without any scrape. To separate the two, the
  measured window is padded with idle time to a whole multiple of Custode's
  background period (30 s by default: collectors every 15 s, checks every
  30 s), and the same-length idle window right after it is measured too. The
  background work is periodic, so any window of k periods holds the same
  background CPU whatever its phase; "scrape CPU = window CPU - idle CPU"
  is then a fair estimate. The raw loop figure is printed as well.
* Custode gets a throw-away CUSTODE_DATA_DIR so the run never touches the
  user's state database or audit log, and the embedded default config.

Exit code: 0 whenever the benchmark ran (whatever the targets say: this is a
measurement, not a test); 1 if an exporter could not be started or scraped;
2 for usage errors or a missing node_exporter.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
INSTALL_HINT = ("node_exporter not found at {path}.\n"
                "Install Debian's package first:  sudo apt-get install prometheus-node-exporter\n"
                "(or point --node-exporter at another binary). The package's systemd service is not "
                "needed; this benchmark starts its own instance on a free loopback port.")
SCRAPE_HEADERS = {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "gzip"}
MIN_SCRAPES = 500
IDLE_CAP_S = 60.0  # longest idle window; keeps the default run well under 3 minutes
RSS_TARGET_MB = 50.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchError(Exception):
    """Something could not be started or scraped: the run cannot produce figures."""


# --------------------------------------------------------------------------- /proc


def _children_map() -> dict[int, list[int]]:
    """ppid -> pids, from /proc. Needed because Custode may fork helpers (smartctl)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may itself hold spaces or ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """utime+stime+cutime+cstime summed over the live process tree, in seconds.

    Including cutime/cstime keeps the sum monotonic when a helper exits between
    two readings: its time moves from "live child" to "reaped by parent".
    """
    ticks = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        # fields[0] is field 3 (state); utime..cstime are fields 14..17.
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / CLK_TCK


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` plus RSS of any live descendants, in MB (10^6 B)."""
    result = {"rss_mb": 0.0, "peak_rss_mb": 0.0, "processes": 0.0}
    for member in process_tree(pid):
        try:
            text = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        values = {}
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024 / 1e6
        result["rss_mb"] += values.get("VmRSS", 0.0)
        result["peak_rss_mb"] += values.get("VmHWM", 0.0)
        result["processes"] += 1
    return result


# --------------------------------------------------------------------------- targets


def free_port() -> int:
    """A port the kernel just considered free on loopback (tiny race, fine for a bench)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def custode_command() -> list[str]:
    """The ``custode`` from the same venv as this interpreter, else ``python -m agent``."""
    script = Path(sys.executable).parent / "custode"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "custode.agent"]


@dataclass
class Target:
    """One exporter under test: its process, its keep-alive connection and its figures."""

    name: str
    argv: list[str]
    port: int
    ready_path: str
    env: dict[str, str] | None = None
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    conn: http.client.HTTPConnection | None = None
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    reconnects: int = 0
    version: str = ""
    tls: ssl.SSLContext | None = None
    auth: dict[str, str] = field(default_factory=dict)

    # --- process ---------------------------------------------------------------

    def start(self, workdir: Path) -> None:
        self.log_path = workdir / f"{self.name}.log"
        # Own session: a Ctrl-C in the terminal reaches only this script, which
        # then stops both exporters in order instead of racing them.
        with open(self.log_path, "wb") as log:
            try:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, env=self.env, cwd=workdir,
                                             start_new_session=True)
            except OSError as exc:
                raise BenchError(f"cannot start {self.name} ({' '.join(self.argv)}): {exc}") from None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s: never leave an exporter behind."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # --- HTTP --------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            if self.tls is not None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.tls)
            else:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        return self.conn

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes, float]:
        """One request on the keep-alive connection: (status, headers, body, seconds).

        If the server dropped the idle connection, reconnect once (counted) and
        retry, as Prometheus would; the retry's time is what is recorded.
        """
        for attempt in (1, 2):
            conn = self._connect()
            try:
                started = time.perf_counter()
                conn.request("GET", path, headers={**headers, **self.auth})
                response = conn.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
                return response.status, {k.lower(): v for k, v in response.getheaders()}, body, elapsed
            except (http.client.HTTPException, OSError):
                conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                self.reconnects += 1
        raise AssertionError("unreachable")

    def is_ready(self) -> bool:
        try:
            status, _, _, _ = self.get(self.ready_path, {})
        except (http.client.HTTPException, OSError):
            return False
        return status == 200

    def scrape(self, record: bool) -> None:
        try:
            status, _, _, elapsed = self.get("/metrics", SCRAPE_HEADERS)
        except (http.client.HTTPException, OSError):
            self.errors += 1
            return
        if status != 200:
            self.errors += 1
            return
        if record:
            self.latencies.append(elapsed)


def web_config(workdir: Path) -> tuple[Path, ssl.SSLContext, dict[str, str]]:
    """A web config file with TLS (a self-signed certificate for 127.0.0.1) and one bcrypt user."""
    import base64

    import bcrypt

    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(workdir / "web.key"), "-out", str(workdir / "web.crt")],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(f"cannot make a test certificate with openssl: {exc}") from None
    password = "bench-password"
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()
    path = workdir / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {workdir / 'web.crt'}\n  key_file: {workdir / 'web.key'}\n"
                    f"basic_auth_users:\n  prometheus: '{digest}'\n")
    context = ssl.create_default_context(cafile=str(workdir / "web.crt"))
    header = {"Authorization": "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()}
    return path, context, header


def pair(workdir: Path, node_exporter: str, tls: bool = False) -> tuple[Target, Target]:
    """Custode on its embedded default config (state in ``workdir``) and node_exporter, on free loopback ports."""
    custode_port = free_port()
    custode_argv = custode_command() + ["run", "--listen", f"127.0.0.1:{custode_port}"]
    node_port = free_port()
    node_argv = [node_exporter, f"--web.listen-address=127.0.0.1:{node_port}"]
    context, header = None, {}
    if tls:
        config, context, header = web_config(workdir)
        custode_argv += ["--web.config.file", str(config)]
        node_argv += [f"--web.config.file={config}"]
    # The embedded default is what ships; an /etc config on this machine would
    # silently change what is measured, and an empty file is exactly the default.
    etc_config = Path("/etc/custode/custode.yaml")
    if etc_config.exists():
        empty = workdir / "default.yaml"
        empty.write_text("")
        custode_argv += ["--config", str(empty)]
    custode = Target("custode", custode_argv, custode_port, "/ready",
                     env={**os.environ, "CUSTODE_DATA_DIR": str(workdir / "data")}, tls=context, auth=header)
    node = Target("node_exporter", node_argv, node_port, "/metrics", tls=context, auth=header)
    return custode, node


def wait_ready(targets: list[Target], timeout: float) -> None:
    """Bounded wait until every target answers its readiness path with 200."""
    deadline = time.monotonic() + timeout
    pending = list(targets)
    while pending:
        for target in list(pending):
            assert target.proc is not None
            if target.proc.poll() is not None:
                raise BenchError(f"{target.name} exited with code {target.proc.returncode} before it was ready; "
                                 f"its output:\n{target.log_tail()}")
            if target.is_ready():
                pending.remove(target)
        if pending and time.monotonic() > deadline:
            names = ", ".join(t.name for t in pending)
            raise BenchError(f"not ready after {timeout:.0f} s: {names}; output:\n"
                             + "\n".join(f"  {t.name}:\n{t.log_tail()}" for t in pending))
        if pending:
            time.sleep(0.1)


def body_figures(target: Target) -> dict[str, Any]:
    """Series count and body sizes, from one plain and one gzip scrape (not timed)."""
    status, _, plain, _ = target.get("/metrics", {"Accept": SCRAPE_HEADERS["Accept"]})
    if status != 200:
        raise BenchError(f"{target.name}: /metrics answered {status}")
    status, headers, compressed, _ = target.get("/metrics", SCRAPE_HEADERS)
    gzipped = headers.get("content-encoding", "") == "gzip"
    lines = plain.decode("utf-8", errors="replace").splitlines()
    return {
        "series": sum(1 for line in lines if line.strip() and not line.startswith("#")),
        "families": sum(1 for line in lines if line.startswith("# TYPE ")),
        "body_bytes": len(plain),
        "gzip_body_bytes": len(compressed) if gzipped else len(gzip.compress(plain)),
        "server_gzips": gzipped,
    }


def version_of(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv + ["--version"], capture_output=True, timeout=15, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    if not text:
        return "?"
    # "custode 0.1.0" / "node_exporter, version 1.5.0 (branch: ...)" -> the version number.
    match = re.search(r"(?:version\s+|^\S+\s+)v?(\d[\w.+~-]*)", text[0])
    return match.group(1) if match else text[0]


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default), values in any order."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50) * 1e3, "p90": percentile(values, 90) * 1e3,
            "p99": percentile(values, 99) * 1e3, "max": max(values) * 1e3,
            "mean": sum(values) / len(values) * 1e3}


# --------------------------------------------------------------------------- the run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Start Custode (default config) and prometheus-node-exporter on loopback and compare "
                    "series count, scrape latency, CPU per scrape and RSS in one interleaved run.")
    parser.add_argument("--scrapes", type=int, default=1000,
                        help=f"scrapes per exporter (min {MIN_SCRAPES}, default 1000)")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds to sleep between scrapes (default 0)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed scrapes per exporter first (default 20)")
    parser.add_argument("--period", type=float, default=30.0,
                        help="Custode's background period in seconds; CPU windows are padded to multiples of it "
                             "(default 30: collectors every 15 s, checks every 30 s)")
    parser.add_argument("--startup-timeout", type=float, default=30.0, help="seconds to wait for both to be ready")
    parser.add_argument("--node-exporter", default=NODE_EXPORTER,
                        help=f"node_exporter binary (default {NODE_EXPORTER})")
    parser.add_argument("--json", action="store_true", help="also print one JSON object with all figures")
    parser.add_argument("--tls", action="store_true",
                        help="both exporters on one web config: TLS and bcrypt basic auth on every scrape")
    args = parser.parse_args(argv)
    if args.scrapes < MIN_SCRAPES:
        parser.error(f"--scrapes must be at least {MIN_SCRAPES} so p99 rests on enough samples")
    if args.interval < 0 or args.warmup < 0 or args.period <= 0 or args.startup_timeout <= 0:
        parser.error("--interval/--warmup must be >= 0, --period/--startup-timeout > 0")
    return args


def measure(custode: Target, node: Target, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then the interleaved timed loop, then the equal idle window."""
    targets = (custode, node)
    for _ in range(args.warmup):
        for target in targets:
            target.scrape(record=False)
    bodies = {t.name: body_figures(t) for t in targets}
    for target in targets:  # count only what happens in the measured loop
        target.errors = target.reconnects = 0

    cpu_start = {t.name: cpu_seconds(t.pid) for t in targets}
    window_start = time.monotonic()
    for i in range(args.scrapes):
        # Alternate who goes first (ABBA) so neither always benefits from a warm cache.
        for target in (targets if i % 2 == 0 else targets[::-1]):
            target.scrape(record=True)
            if target.errors > max(20, args.scrapes // 20):
                # A dead or wedged exporter would otherwise cost a timeout per scrape.
                raise BenchError(f"{target.name}: {target.errors} failed scrapes, giving up; "
                                 f"its output:\n{target.log_tail()}")
            if args.interval:
                time.sleep(args.interval)
    loop_seconds = time.monotonic() - window_start
    cpu_loop_end = {t.name: cpu_seconds(t.pid) for t in targets}
    memory = {t.name: memory_mb(t.pid) for t in targets}

    # Pad the window to a whole number of background periods, then measure an
    # idle window right after it: the same length, or (to bound the run time)
    # a whole number of periods up to IDLE_CAP_S, scaled to the window length.
    # Both hold whole periods, so the scaling is exact for periodic work.
    periods = max(1, math.ceil(loop_seconds / args.period - 1e-9))
    window_seconds = periods * args.period
    idle_periods = min(periods, max(1, int(IDLE_CAP_S // args.period)))
    time.sleep(max(0.0, window_start + window_seconds - time.monotonic()))
    cpu_window_end = {t.name: cpu_seconds(t.pid) for t in targets}
    idle_start = time.monotonic()
    time.sleep(idle_periods * args.period)
    idle_seconds = time.monotonic() - idle_start
    cpu_idle_end = {t.name: cpu_seconds(t.pid) for t in targets}

    results: dict[str, Any] = {}
    for target in targets:
        name = target.name
        if target.proc is not None and target.proc.poll() is not None:
            raise BenchError(f"{name} exited during the run (code {target.proc.returncode}):\n{target.log_tail()}")
        measured = len(target.latencies)
        if measured == 0:
            raise BenchError(f"{name}: every scrape failed ({target.errors} errors)")
        loop_cpu = cpu_loop_end[name] - cpu_start[name]
        window_cpu = cpu_window_end[name] - cpu_start[name]
        idle_cpu = cpu_idle_end[name] - cpu_window_end[name]
        idle_cpu_scaled = idle_cpu * window_seconds / (idle_periods * args.period)
        scrape_cpu = window_cpu - idle_cpu_scaled
        results[name] = {
            "version": target.version,
            "pid": target.pid,
            **bodies[name],
            "scrapes": measured,
            "errors": target.errors,
            "reconnects": target.reconnects,
            "latency_ms": latency_ms(target.latencies),
            "cpu": {
                "loop_seconds": loop_seconds,
                "loop_cpu_s": loop_cpu,
                "loop_cpu_per_1000_s": loop_cpu / measured * 1000,
                "window_seconds": window_seconds,
                "window_cpu_s": window_cpu,
                "idle_window_seconds": idle_seconds,
                "idle_cpu_s": idle_cpu,
                "idle_cpu_over_window_s": idle_cpu_scaled,
                "scrape_cpu_s": scrape_cpu,
                "scrape_cpu_per_1000_s": scrape_cpu / measured * 1000,
                "clock_tick_s": 1 / CLK_TCK,
            },
            "memory": memory[name],
        }
    return results


def render(results: dict[str, Any], args: argparse.Namespace, meta: dict[str, Any]) -> str:
    c, n = results["custode"], results["node_exporter"]

    def row(label: str, key: Any, fmt: str = "{}") -> tuple[str, str, str]:
        get = key if callable(key) else (lambda r: r[key])
        return label, fmt.format(get(c)), fmt.format(get(n))

    lat = lambda p: (lambda r: r["latency_ms"][p])  # noqa: E731
    cpu = lambda k: (lambda r: r["cpu"][k])  # noqa: E731
    mem = lambda k: (lambda r: r["memory"][k])  # noqa: E731
    rows: list[tuple[str, str, str] | None] = [
        row("version", "version"),
        None,
        row("series (sample lines)", "series"),
        row("metric families (# TYPE)", "families"),
        row("body, uncompressed (bytes)", "body_bytes"),
        row("body, gzip (bytes)", "gzip_body_bytes"),
        row("server gzips on request", lambda r: "yes" if r["server_gzips"] else "NO"),
        None,
        row("scrapes measured", "scrapes"),
        row("failed scrapes / reconnects", lambda r: f'{r["errors"]} / {r["reconnects"]}'),
        *(row(f"latency {stat} (ms)", lat(stat), "{:.3f}") for stat in ("p50", "p90", "p99", "max", "mean")),
        None,
        row("CPU in scrape loop, raw (s)", cpu("loop_cpu_s"), "{:.2f}"),
        row("  per 1000 scrapes (s = ms/scrape)", cpu("loop_cpu_per_1000_s"), "{:.3f}"),
        row("CPU in padded window (s)", cpu("window_cpu_s"), "{:.2f}"),
        row("idle CPU, same-length window (s)", cpu("idle_cpu_over_window_s"), "{:.2f}"),
        row("scrape CPU = window - idle (s)", cpu("scrape_cpu_s"), "{:.2f}"),
        row("  per 1000 scrapes (s = ms/scrape)", cpu("scrape_cpu_per_1000_s"), "{:.3f}"),
        None,
        row("RSS after run (MB)", mem("rss_mb"), "{:.1f}"),
        row("peak RSS, VmHWM (MB)", mem("peak_rss_mb"), "{:.1f}"),
        row("processes in tree", lambda r: int(r["memory"]["processes"])),
    ]
    header = ("", "custode", "node_exporter")
    width0 = max(len(r[0]) for r in rows if r) + 2
    width1 = max(len(header[1]), *(len(r[1]) for r in rows if r)) + 2
    width2 = max(len(header[2]), *(len(r[2]) for r in rows if r))
    rule = "-" * (width0 + width1 + width2)
    lines = [
        f"Scrape benchmark  {meta['started']}  {meta['host']}  ({meta['cpus']} CPUs, kernel {meta['kernel']}, "
        f"Python {meta['python']}), {meta['transport']}",
        f"{args.scrapes} scrapes each, interleaved, interval {args.interval:g} s, {args.warmup} warm-up scrapes; "
        f"keep-alive HTTP/1.1, Accept-Encoding: gzip",
        f"scrape loop {c['cpu']['loop_seconds']:.1f} s; CPU window padded to {c['cpu']['window_seconds']:.0f} s "
        f"(multiple of {args.period:g} s) + idle window {c['cpu']['idle_window_seconds']:.1f} s after it; "
        f"CPU resolution {1 / CLK_TCK * 1000:.0f} ms",
        "",
        f"{header[0]:<{width0}}{header[1]:>{width1 - 2}}  {header[2]:>{width2}}",
        rule,
    ]
    for item in rows:
        lines.append(rule if item is None else f"{item[0]:<{width0}}{item[1]:>{width1 - 2}}  {item[2]:>{width2}}")
    lines.append(rule)
    lines += [
        "Raw CPU counts everything the process did during the loop (Custode's scheduled collection too).",
        "The padded window is the loop plus idle time up to a whole number of Custode background periods;",
        "scrape CPU subtracts the CPU of an idle window of the same length (measured right after, scaled",
        "by whole periods if the window is longer than the idle cap), so it is the cost of serving the",
        "scrapes alone. node_exporter collects on each scrape, so its raw and scrape figures should agree.",
        "",
        "Targets",
    ]
    for target in targets(results):
        lines.append(f"  {'PASS' if target['pass'] else 'FAIL'}  {target['text']}")
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    c, n = results["custode"], results["node_exporter"]
    p50_c, p50_n = c["latency_ms"]["p50"], n["latency_ms"]["p50"]
    cpu_c, cpu_n = c["cpu"]["scrape_cpu_per_1000_s"], n["cpu"]["scrape_cpu_per_1000_s"]
    rss, peak = c["memory"]["rss_mb"], c["memory"]["peak_rss_mb"]
    return [
        {"name": "p50_latency", "pass": p50_c <= p50_n,
         "text": f"p50 scrape latency: custode {p50_c:.3f} ms <= node_exporter {p50_n:.3f} ms"},
        {"name": "scrape_cpu", "pass": cpu_c <= cpu_n,
         "text": f"scrape CPU per 1000 scrapes: custode {cpu_c:.3f} s <= node_exporter {cpu_n:.3f} s"},
        {"name": "rss", "pass": rss <= RSS_TARGET_MB,
         "text": f"custode RSS {rss:.1f} MB <= {RSS_TARGET_MB:g} MB with the default config (peak {peak:.1f} MB)"},
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (os.path.isfile(args.node_exporter) and os.access(args.node_exporter, os.X_OK)):
        print(INSTALL_HINT.format(path=args.node_exporter), file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="custode-bench-"))
    try:
        custode, node = pair(workdir, args.node_exporter, args.tls)
    except BenchError as exc:
        print(f"bench/scrape.py: {exc}", file=sys.stderr)
        return 1
    custode.version = version_of(custode_command())
    node.version = version_of([args.node_exporter])
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(), "cpus": os.cpu_count(),
            "kernel": platform.release(), "python": platform.python_version(),
            "transport": "TLS + basic auth (one web config)" if args.tls else "plain HTTP"}

    try:
        for target in (custode, node):
            target.start(workdir)
        print(f"started custode (pid {custode.pid}, port {custode.port}) and node_exporter "
              f"(pid {node.pid}, port {node.port}); waiting for both...", file=sys.stderr, flush=True)
        wait_ready([custode, node], args.startup_timeout)
        print("both ready; measuring (about 1-2 minutes)...", file=sys.stderr, flush=True)
        results = measure(custode, node, args)
    except BenchError as exc:
        print(f"bench/scrape.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for target in (custode, node):
            target.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(render(results, args, meta))
    if args.json:
        print(json.dumps({"meta": {**meta, "scrapes": args.scrapes, "interval_s": args.interval,
                                   "warmup": args.warmup, "period_s": args.period},
                          "results": results, "targets": targets(results)}, sort_keys=True))
    return 0


def _terminate(signum: int, frame: object) -> None:
    """Treat SIGTERM like Ctrl-C so the finally block still stops both exporters."""
    raise KeyboardInterrupt


def run_main(entry: Callable[[], int]) -> None:
    """Run a bench's main with SIGTERM treated as Ctrl-C, so its finally block stops both exporters."""
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(entry())


if __name__ == "__main__":
    run_main(main)
