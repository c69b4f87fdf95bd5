#!/usr/bin/env python3
"""SNMP poll benchmark: 500 devices polled in one cycle, Custode's farm poll vs Debian's snmp_exporter 0.21.

Usage::

    /work/main/.venv/bin/python bench/snmp_poll.py [--devices 500 | --quick] [--rounds 3] [--concurrency 64]
                                                   [--snmpd 8] [--timeout 10] [--json]

The devices are net-snmp's ``snmpd`` (Debian's ``snmpd`` package), started here
as ``--snmpd`` processes that listen on 127.0.0.1 only, each on its share of
``--devices`` UDP ports (snmpd is single-threaded: several processes keep the
responder from being the bottleneck of either side). A port is a device:
SNMPv2c, community ``--community`` read-only from 127.0.0.1, answering this
machine's interfaces (IF-MIB ifTable + ifXTable) and the rest of net-snmp's
MIBs. Each snmpd gets ``-C -c CONF`` (no /etc/snmp file is read), a persistent
directory in the run's temporary folder, ``MIBS=:`` (no MIB files parsed: a
numeric agent needs none) and no ``LD_PRELOAD``. Before anything is timed every
port must answer one ``snmpget`` of sysUpTime, and one device is walked with
``snmpbulkwalk`` to show what a device holds.

The two peers (three runs) poll the same devices, one after the other, in every round:

1. **snmp_exporter**: Debian's ``prometheus-snmp-exporter`` 0.21 on a free
   loopback port with the ``if_mib`` module the tests use,
   ``tests/data/snmp_exporter/if_mib.yml`` (upstream's v0.21.0 module with the
   auth in the module, as 0.21 wants it), its community rewritten to
   ``--community`` and checked with ``--dry-run``. One cycle is one
   ``GET /snmp?target=127.0.0.1:PORT&module=if_mib`` per device from a pool of
   ``--concurrency`` threads (each a kept-alive HTTP/1.1 connection, with
   ``Accept-Encoding: gzip`` as Prometheus sends it). The exporter is a daemon:
   one untimed cycle warms it up, so its figures are **warm**. Measured: wall
   time of the cycle, the exporter's utime+stime from ``/proc/PID/stat``, its
   peak RSS (VmHWM, reset through ``/proc/PID/clear_refs`` before the cycle),
   the sample lines returned and the requests that did not give 200.
2. **custode CLI**: ``custode farm poll --snmp COMMUNITY@127.0.0.1:PORT`` x N
   ``--format prometheus --no-updates --workers CONCURRENCY --timeout T``, a new
   process each round (**cold**: interpreter start-up, imports and the poll).
   CPU and peak RSS from ``os.wait4``; series are the sample lines printed,
   failures the ``custode_target_up ... 0`` lines.
3. **custode in-process**: ``FarmPoller(targets, workers=CONCURRENCY).poll()``
   plus the CLI's rendering of the exposition, in a child Python that imports
   Custode (import time printed), polls once untimed (the cold poll, printed
   apart) and then times one poll per round (**warm**, like the exporter and
   like the agent's farm service): interpreter start-up and first-poll costs
   are out of its figures. Its targets read ``--modules`` (default
   ``system,if_mib``: what the exporter's ``if_mib`` module reads); the CLI
   reads its defaults (system, if_mib, ups, host_resources; snmpd has
   HOST-RESOURCES-MIB, no UPS-MIB), so it does more than (1) and (3).

Also per peer: the SNMP requests it sent (the exporter's
``snmp_scrape_packets_sent``, Custode's ``custode_snmp_requests``) and the CPU
the snmpd processes spent answering it. Everything runs on the same machine
(the snmpds too), so wall times are an upper bound, and the share of the
machine the responder takes is printed. Figures are the median of ``--rounds``.
Every child is stopped at the end (SIGTERM, then SIGKILL) and the temporary
folder removed. The three packages are installed with apt-get when missing.
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUSTODE = ROOT / ".venv" / "bin" / "custode"
PYTHON = ROOT / ".venv" / "bin" / "python"
SNMPD = "/usr/sbin/snmpd"
SNMPGET = "/usr/bin/snmpget"
SNMPBULKWALK = "/usr/bin/snmpbulkwalk"
EXPORTER = "/usr/bin/prometheus-snmp-exporter"
PACKAGES = {SNMPD: "snmpd", SNMPGET: "snmp", SNMPBULKWALK: "snmp", EXPORTER: "prometheus-snmp-exporter"}
MODULE_FILE = ROOT / "tests" / "data" / "snmp_exporter" / "if_mib.yml"
COMMUNITY_ENV = "CUSTODE_BENCH_SNMP_COMMUNITY"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHILD_TAG = "@@snmp-bench "

# -- processes and /proc -------------------------------------------------------------

_children: list[subprocess.Popen] = []


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except OSError:
        pass


def stop_children() -> None:
    while _children:
        _stop(_children.pop())


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, **kwargs)
    _children.append(proc)
    return proc


def proc_cpu(pid: int) -> float:
    """utime+stime of one process, seconds (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_kib(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int | str) -> None:
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS (own processes, or root)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (all cores) from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- set-up ----------------------------------------------------------------------------


def ensure_packages() -> None:
    """apt-get install what is missing (root, else sudo -n); the packages' own services are not used."""
    missing = sorted({pkg for path, pkg in PACKAGES.items() if not Path(path).exists()})
    if not missing:
        return
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {' '.join(missing)} with apt-get", flush=True)
    if subprocess.run(prefix + ["apt-get", "install", "-y", *missing], env=env).returncode != 0:
        subprocess.run(prefix + ["apt-get", "update"], env=env, check=True)
        subprocess.run(prefix + ["apt-get", "install", "-y", *missing], env=env, check=True)
    still = [path for path in PACKAGES if not Path(path).exists()]
    if still:
        raise SystemExit(f"still missing after apt-get: {', '.join(still)}")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))


def free_udp_ports(count: int) -> list[int]:
    """Ports the kernel hands out to ``count`` UDP sockets bound at once, then released for snmpd."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return sorted(s.getsockname()[1] for s in sockets)
    finally:
        for s in sockets:
            s.close()


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def net_snmp_env(work: Path, name: str) -> dict[str, str]:
    """net-snmp's tools and snmpd: no MIB files parsed, config and persistent files only under ``work``."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    persistent = work / "persistent" / name
    persistent.mkdir(parents=True, exist_ok=True)
    env.update(MIBS=":", SNMPCONFPATH=str(work / "snmpconf"), SNMP_PERSISTENT_DIR=str(persistent))
    return env


class Snmpd:
    """``processes`` snmpd, each listening on its share of ``ports`` (udp:127.0.0.1:P,...)."""

    def __init__(self, work: Path, ports: list[int], processes: int, community: str) -> None:
        self.ports = ports
        (work / "snmpconf").mkdir(exist_ok=True)
        conf = work / "snmpd.conf"
        conf.write_text(f"rocommunity {community} 127.0.0.1\n"
                        "dontLogTCPWrappersConnects yes\n")  # else one log line per request
        processes = max(1, min(processes, len(ports)))
        self.groups = [ports[i::processes] for i in range(processes)]
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        for i, group in enumerate(self.groups):
            log = work / f"snmpd{i}.log"
            self.logs.append(log)
            addresses = ",".join(f"udp:127.0.0.1:{p}" for p in group)
            # -I -smux: no SMUX listener on TCP 199 (the processes would fight over it).
            self.procs.append(spawn([SNMPD, "-f", "-C", "-c", str(conf), "-Lf", str(log), "-I", "-smux",
                                     addresses], env=net_snmp_env(work, f"snmpd{i}"),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL))

    def cpu(self) -> float:
        return sum(proc_cpu(p.pid) for p in self.procs)

    def rss_mib(self) -> float:
        return sum(proc_kib(p.pid, "VmRSS") for p in self.procs) / 1024

    def check(self, work: Path, community: str, deadline_s: float = 20.0) -> None:
        """Every port answers one snmpget of sysUpTime (retried until ``deadline_s``)."""
        env = net_snmp_env(work, "client")
        deadline = time.monotonic() + deadline_s

        def answers(port: int) -> bool:
            while True:
                done = subprocess.run([SNMPGET, "-v2c", "-c", community, "-t", "1", "-r", "0", "-On", "-Oqv",
                                       f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"],
                                      env=env, capture_output=True, text=True)
                if done.returncode == 0 and done.stdout.strip():
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)

        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise SystemExit(f"snmpd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with ThreadPoolExecutor(16) as pool:
            silent = [p for p, ok in zip(self.ports, pool.map(answers, self.ports), strict=True) if not ok]
        if silent:
            tails = "\n".join(log.read_text()[-500:] for log in self.logs)
            raise SystemExit(f"{len(silent)} of {len(self.ports)} snmpd ports do not answer (first "
                             f"{silent[:5]}); snmpd logs:\n{tails}")

    def describe_device(self, work: Path, community: str) -> dict:
        """One device walked: interfaces (ifName, else ifDescr) and the varbinds of snmp_exporter's walks."""
        env = net_snmp_env(work, "client")
        port = self.ports[0]

        def walk(oid: str, *extra: str) -> list[str]:
            done = subprocess.run([SNMPBULKWALK, "-v2c", "-c", community, "-Cr25", "-On", *extra,
                                   f"127.0.0.1:{port}", oid], env=env, capture_output=True, text=True, timeout=60)
            return [line for line in done.stdout.splitlines() if line.strip()]

        names = [line.split(None, 1)[1].strip('"') for line in walk("1.3.6.1.2.1.31.1.1.1.1", "-Oqv")
                 if len(line.split(None, 1)) == 2] or walk("1.3.6.1.2.1.2.2.1.2", "-Oqv")
        names = [n.strip().strip('"') for n in names]
        varbinds = len(walk("1.3.6.1.2.1.2")) + len(walk("1.3.6.1.2.1.31.1.1"))
        return {"interfaces": len(names), "interface_names": names, "if_mib_varbinds": varbinds}


# -- snmp_exporter -----------------------------------------------------------------------


def module_file(work: Path, community: str) -> Path:
    """The tests' if_mib module (0.21 format) with ``community`` written in, checked with ``--dry-run``."""
    if not MODULE_FILE.exists():
        raise SystemExit(f"{MODULE_FILE} is missing: it is snmp_exporter's if_mib module, shared with the tests")
    text, found = re.subn(r"^(\s*community:\s*).*$", lambda m: m.group(1) + json.dumps(community),
                          MODULE_FILE.read_text(), flags=re.M)
    if not found:  # no auth written: 0.21 takes v2c and "public" from its defaults
        text = re.sub(r"^if_mib:\s*$", "if_mib:\n  auth:\n    community: " + json.dumps(community), text,
                      count=1, flags=re.M)
    path = work / "snmp.yml"
    path.write_text(text)
    checked = subprocess.run([EXPORTER, f"--config.file={path}", "--dry-run"], capture_output=True, text=True,
                             timeout=60)
    if checked.returncode != 0:
        raise SystemExit(f"{MODULE_FILE} is not a valid snmp_exporter 0.21 config: {checked.stderr[-600:]}")
    return path


class Exporter:
    def __init__(self, work: Path, config: Path) -> None:
        self.port = free_tcp_port()
        self.log = work / "snmp_exporter.log"
        self.proc = spawn([EXPORTER, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{self.port}",
                           "--log.level=warn"], stdin=subprocess.DEVNULL, stdout=self.log.open("wb"),
                          stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"snmp_exporter did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def cycle(self, ports: list[int], concurrency: int, snmpd: Snmpd) -> dict:
        local = threading.local()
        path = "/snmp?module=if_mib&target=127.0.0.1:"
        headers = {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "gzip"}

        def scrape(port: int) -> tuple[bool, int, int, int, str]:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                conn.request("GET", f"{path}{port}", headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                local.conn = None
                return False, 0, 0, 0, f"port {port}: {type(exc).__name__}: {exc}"
            if response.getheader("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if response.status != 200:
                return False, 0, 0, 0, f"port {port}: HTTP {response.status}: {body.decode(errors='replace')[-200:]}"
            samples = [line for line in body.decode(errors="replace").splitlines() if line and line[0] != "#"]
            own = [line for line in samples if line.startswith("snmp_scrape_")]
            sent = sum(int(float(line.rsplit(None, 1)[1])) for line in own
                       if line.startswith("snmp_scrape_packets_sent"))
            return True, len(samples), len(samples) - len(own), sent, ""

        reset_peak(self.proc.pid)
        cpu0, snmpd0, machine0 = proc_cpu(self.proc.pid), snmpd.cpu(), machine_cpu()
        client0 = own_cpu()
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency or len(ports)) as pool:
            results = list(pool.map(scrape, ports))
        wall = time.perf_counter() - started
        return {"wall_s": wall, "cpu_s": proc_cpu(self.proc.pid) - cpu0,
                "peak_rss_mib": proc_kib(self.proc.pid, "VmHWM") / 1024,
                "rss_after_mib": proc_kib(self.proc.pid, "VmRSS") / 1024,
                "series": sum(r[1] for r in results), "device_series": sum(r[2] for r in results),
                "failures": sum(1 for r in results if not r[0]), "snmp_requests": sum(r[3] for r in results),
                "snmpd_cpu_s": snmpd.cpu() - snmpd0, "machine_cpu_s": machine_cpu() - machine0,
                "client_cpu_s": own_cpu() - client0, "errors": [r[4] for r in results if r[4]][:3]}


# -- Custode -----------------------------------------------------------------------------


def custode_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODE_")}
    data = work / "custode-data"
    data.mkdir(exist_ok=True)
    env["CUSTODE_DATA_DIR"] = str(data)
    return env


def count_custode(text: str) -> dict:
    samples = [line for line in text.splitlines() if line and line[0] != "#"]
    states = [float(line.rsplit(None, 1)[1]) for line in samples if line.startswith("custode_target_up")]
    down, up = states.count(0.0), sum(1 for s in states if s != 0.0)
    requests = sum(int(float(line.rsplit(None, 1)[1])) for line in samples
                   if line.startswith("custode_snmp_requests"))
    return {"series": len(samples), "device_series": sum(1 for line in samples if not line.startswith("custode_")),
            "failures": down, "up": up, "snmp_requests": requests}


def cli_supports_snmp() -> bool:
    done = subprocess.run([str(CUSTODE), "farm", "poll", "--help"], capture_output=True, text=True, timeout=120)
    return "--snmp" in done.stdout


def custode_cli_cycle(work: Path, ports: list[int], community: str, workers: int, timeout: float,
                      snmpd: Snmpd) -> dict:
    cmd = [str(CUSTODE), "farm", "poll"]
    for port in ports:
        cmd += ["--snmp", f"{community}@127.0.0.1:{port}"]
    cmd += ["--format", "prometheus", "--no-updates", "--workers", str(workers), "--timeout", f"{timeout:g}"]
    out, err = work / "custode-cli.out", work / "custode-cli.err"
    snmpd0, machine0 = snmpd.cpu(), machine_cpu()
    started = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = spawn(cmd, env=custode_env(work), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    _children.remove(proc)
    figures = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024,
               "snmpd_cpu_s": snmpd.cpu() - snmpd0, "machine_cpu_s": machine_cpu() - machine0,
               "exit": proc.returncode, **count_custode(out.read_text(errors="replace")),
               "errors": [err.read_text(errors="replace")[-300:]] if err.stat().st_size else []}
    if proc.returncode not in (0, 1) or figures["up"] + figures["failures"] == 0:
        raise SystemExit(f"custode farm poll failed (exit {proc.returncode}): "
                         f"{err.read_text(errors='replace')[-2000:]}")
    return figures


class InProcess:
    """A child Python that keeps one FarmPoller and polls when told (``poll`` on stdin, a JSON line back)."""

    def __init__(self, work: Path, ports: list[int], community: str, workers: int, timeout: float,
                 modules: str) -> None:
        spec = work / "inprocess.json"
        spec.write_text(json.dumps({"ports": ports, "workers": workers, "timeout": timeout,
                                    "modules": modules.split(",")}))
        env = {**custode_env(work), COMMUNITY_ENV: community}
        self.err = work / "inprocess.err"
        self.proc = spawn([str(PYTHON), str(Path(__file__).resolve()), "--child", str(spec)], env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err.open("wb"), text=True)
        self.started = self._reply()

    def _reply(self) -> dict:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(CHILD_TAG):
                return json.loads(line[len(CHILD_TAG):])
        raise SystemExit(f"the in-process child ended: {self.err.read_text(errors='replace')[-2000:]}")

    def cycle(self, snmpd: Snmpd) -> dict:
        assert self.proc.stdin is not None
        snmpd0, machine0 = snmpd.cpu(), machine_cpu()
        self.proc.stdin.write("poll\n")
        self.proc.stdin.flush()
        figures = self._reply()
        figures.update(snmpd_cpu_s=snmpd.cpu() - snmpd0, machine_cpu_s=machine_cpu() - machine0)
        return figures

    def close(self) -> dict:
        """Ends the child; its whole life (start-up, every poll) from wait4."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        _children.remove(self.proc)
        return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def child(spec_path: str) -> int:
    """The in-process variant's child: import, build the targets, poll on each ``poll`` line."""
    started, cpu0 = time.perf_counter(), own_cpu()
    sys.path.insert(0, str(ROOT))
    from custode.agent.config import DEFAULT_TENANT
    from custode.agent.farm.poller import FarmPoller
    from custode.agent.farm.targets import Target
    from custode.agent.secrets import SecretRef
    from custode.agent.snmp.options import SnmpOptions
    from custode.agent.transports.config import HostConfig

    spec = json.loads(Path(spec_path).read_text())
    timeout = float(spec["timeout"])
    targets = [Target(f"127.0.0.1:{port}", DEFAULT_TENANT,
                      HostConfig(address="127.0.0.1", transport="snmp",
                                 snmp=SnmpOptions(community=SecretRef(env=COMMUNITY_ENV), port=port,
                                                  modules=spec["modules"])),
                      timeout, timeout)
               for port in spec["ports"]]
    poller = FarmPoller(targets, workers=spec["workers"], keep_connections=True, updates_interval=None)
    imported = {"import_s": time.perf_counter() - started, "import_cpu_s": own_cpu() - cpu0,
                "rss_mib": proc_kib("self", "VmRSS") / 1024}

    def render(results) -> str:
        """The exposition ``custode farm poll --format prometheus`` prints (as agent/farm/cli.py makes it)."""
        from custode.agent.farm.metrics import TargetStatus, farm_families
        from custode.agent.metric_cache import MetricCache

        status = {r.target.name: TargetStatus(r.started_at if r.up else None, 0 if r.up else 1) for r in results}
        cache = MetricCache()
        cache.update("farm", farm_families(results, status))
        return cache.exposition.plain.decode()

    def poll() -> dict:
        reset_peak("self")
        wall0, cpu = time.perf_counter(), own_cpu()
        results = poller.poll()
        polled = time.perf_counter()
        text = render(results)
        wall, cpu = time.perf_counter() - wall0, own_cpu() - cpu
        return {"wall_s": wall, "render_s": time.perf_counter() - polled, "cpu_s": cpu,
                "peak_rss_mib": proc_kib("self", "VmHWM") / 1024, "rss_after_mib": proc_kib("self", "VmRSS") / 1024,
                **count_custode(text), "errors": sorted({r.error for r in results if r.error})[:3]}

    try:
        imported["cold"] = poll()
        print(CHILD_TAG + json.dumps(imported), flush=True)
        for line in sys.stdin:
            if line.strip() == "poll":
                print(CHILD_TAG + json.dumps(poll()), flush=True)
    finally:
        poller.close()
    return 0


# -- report --------------------------------------------------------------------------------

COLUMNS = (("wall s", "wall_s", "{:.2f}"), ("CPU s", "cpu_s", "{:.2f}"), ("CPU/dev ms", "cpu_per_device_ms", "{:.1f}"),
           ("peak RSS MiB", "peak_rss_mib", "{:.1f}"), ("series", "series", "{:,.0f}"),
           ("failures", "failures", "{:.0f}"), ("SNMP reqs", "snmp_requests", "{:,.0f}"),
           ("snmpd CPU s", "snmpd_cpu_s", "{:.2f}"), ("machine CPU s", "machine_cpu_s", "{:.2f}"))


def median(rounds: list[dict], devices: int) -> dict:
    out: dict = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool)]
        if values:
            out[key] = statistics.median(values)
    if "cpu_s" in out:
        out["cpu_per_device_ms"] = out["cpu_s"] / devices * 1000
    return out


def _widths() -> list[int]:
    return [max(len(title), 7) + 2 for title, _, _ in COLUMNS]


def print_table(rows: list[tuple[str, dict]], width: int) -> None:
    print("".ljust(width) + "".join(f"{title:>{w}}" for (title, _, _), w in zip(COLUMNS, _widths(), strict=True)))
    for name, figures in rows:
        cells = []
        for (_, key, fmt), w in zip(COLUMNS, _widths(), strict=True):
            value = figures.get(key)
            cells.append(f"{fmt.format(value) if isinstance(value, (int, float)) else '-':>{w}}")
        print(name.ljust(width) + "".join(cells))


def ratio_row(custode: dict, exporter: dict) -> dict:
    return {key: custode[key] / exporter[key] for key in ("wall_s", "cpu_s", "cpu_per_device_ms", "peak_rss_mib",
                                                          "series", "snmp_requests", "snmpd_cpu_s")
            if key in custode and exporter.get(key)}


def print_ratio(name: str, ratios: dict, width: int) -> None:
    cells = []
    for (_, key, _), w in zip(COLUMNS, _widths(), strict=True):
        value = ratios.get(key)
        cells.append(f"{f'x{value:.2f}' if value is not None else '':>{w}}")
    print(name.ljust(width) + "".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500, help="SNMP devices (snmpd ports), default 500")
    parser.add_argument("--quick", action="store_true", help="50 devices")
    parser.add_argument("--rounds", type=int, default=3, help="timed cycles per peer; the median is printed")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="devices in flight at once on both sides: the exporter's HTTP requests and "
                             "Custode's --workers (0: all at once)")
    parser.add_argument("--snmpd", type=int, default=8, help="snmpd processes sharing the ports (default 8)")
    parser.add_argument("--timeout", type=float, default=10.0, help="Custode's --timeout per device, seconds")
    parser.add_argument("--community", default="public")
    parser.add_argument("--modules", default="system,if_mib",
                        help="what the in-process Custode targets read (default system,if_mib, as the "
                             "exporter's if_mib module)")
    parser.add_argument("--no-custode", action="store_true", help="only snmpd and snmp_exporter")
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process Custode variant")
    parser.add_argument("--json", action="store_true", help="also print one JSON object with every figure")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    devices = 50 if args.quick else args.devices
    rounds = max(1, args.rounds)
    workers = args.concurrency or devices

    ensure_packages()
    raise_fd_limit()
    atexit.register(stop_children)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    work = Path(tempfile.mkdtemp(prefix="custode-snmp-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    figures: dict = {"devices": devices, "rounds": rounds, "concurrency": args.concurrency, "cpus": os.cpu_count()}
    try:
        ports = free_udp_ports(devices)
        snmpd = Snmpd(work, ports, args.snmpd, args.community)
        snmpd.check(work, args.community)
        device = snmpd.describe_device(work, args.community)
        groups = sorted({len(g) for g in snmpd.groups})
        figures["setup"] = {"snmpd_processes": len(snmpd.groups), "ports_per_process": groups, **device}
        print(f"{devices} devices: {len(snmpd.groups)} snmpd processes (net-snmp "
              f"{snmpd_version()}) x {'-'.join(map(str, groups))} UDP ports on 127.0.0.1, all answering; "
              f"{device['interfaces']} interfaces per device ({', '.join(device['interface_names'])}), "
              f"{device['if_mib_varbinds']} IF-MIB varbinds; snmpd RSS {snmpd.rss_mib():.0f} MiB in all", flush=True)
        print(f"{os.cpu_count()} CPUs shared by the snmpds, the peer and this driver (load average "
              f"{os.getloadavg()[0]:.2f} at start); rounds {rounds}, median; concurrency "
              f"{args.concurrency or 'all at once'}", flush=True)

        exporter = Exporter(work, module_file(work, args.community))
        print(f"snmp_exporter: {exporter_version()}, module if_mib from {MODULE_FILE.relative_to(ROOT)} "
              "(community rewritten)", flush=True)
        first = exporter.cycle(ports, args.concurrency, snmpd)
        figures["exporter_cold"] = first
        print(f"snmp_exporter cold first cycle (untimed warm-up): {first['wall_s']:.2f} s wall, "
              f"{first['cpu_s']:.2f} s CPU, peak RSS {first['peak_rss_mib']:.1f} MiB, {first['failures']} failures",
              flush=True)
        peers: dict[str, list[dict]] = {"exporter": [], "cli": [], "inproc": []}

        custode = not args.no_custode
        if custode and not cli_supports_snmp():
            print("custode farm poll has no --snmp yet: the CLI run is skipped", flush=True)
            cli = False
        else:
            cli = custode
        inproc = None
        if custode and not args.no_in_process:
            try:
                inproc = InProcess(work, ports, args.community, workers, args.timeout, args.modules)
            except SystemExit as exc:
                print(f"in-process variant skipped: {str(exc)[-600:]}", flush=True)
                inproc = None
            if inproc is not None:
                cold = inproc.started["cold"]
                print(f"custode in-process: import {inproc.started['import_s']:.2f} s "
                      f"({inproc.started['import_cpu_s']:.2f} s CPU), RSS {inproc.started['rss_mib']:.0f} MiB; "
                      f"cold poll {cold['wall_s']:.2f} s wall, {cold['cpu_s']:.2f} s CPU, "
                      f"{cold['failures']} failures{' ' + str(cold['errors']) if cold['errors'] else ''}; "
                      f"modules {args.modules}", flush=True)
                figures["inproc_start"] = inproc.started
        for i in range(rounds):
            peers["exporter"].append(exporter.cycle(ports, args.concurrency, snmpd))
            if cli:
                peers["cli"].append(custode_cli_cycle(work, ports, args.community, workers, args.timeout, snmpd))
            if inproc is not None:
                peers["inproc"].append(inproc.cycle(snmpd))
            done = "  ".join(f"{name} {runs[-1]['wall_s']:.2f} s" for name, runs in peers.items() if runs)
            print(f"round {i + 1}/{rounds}: {done}", flush=True)
        if inproc is not None:
            figures["inproc_life"] = inproc.close()

        for name, runs in peers.items():
            if runs and runs[-1]["failures"]:
                print(f"warning: {name}: {runs[-1]['failures']} of {devices} devices failed in the last round"
                      + (f": {runs[-1]['errors']}" if runs[-1].get("errors") else ""), flush=True)
        rows = [("snmp_exporter 0.21 (warm daemon)", median(peers["exporter"], devices))]
        if peers["cli"]:
            rows.append(("custode farm poll CLI (cold, default modules)", median(peers["cli"], devices)))
        if peers["inproc"]:
            rows.append((f"custode FarmPoller.poll() (warm, {args.modules})", median(peers["inproc"], devices)))
        print()
        width = max(len(name) for name, _ in rows) + 2
        print_table(rows, width)
        for name, row in rows[1:]:
            print_ratio("  ratio " + name.split(" (")[0].replace("custode ", "") + " / exporter",
                        ratio_row(row, rows[0][1]), width)
        print("series: sample lines returned in all (exporter: with its 5 snmp_scrape_* per device; Custode: "
              "with its custode_* lines); failures: non-200 scrapes / custode_target_up 0")
        exp = rows[0][1]
        print(f"exporter RSS after the cycle {exp.get('rss_after_mib', 0):.1f} MiB; device series "
              + ", ".join(f"{name.split(' (')[0]} {row.get('device_series', 0):,.0f}" for name, row in rows
                          if "device_series" in row)
              + f"; driver's own CPU for the exporter's HTTP requests {exp.get('client_cpu_s', 0):.2f} s")
        figures["peers"] = {key: runs for key, runs in peers.items() if runs}
        figures["median"] = {name: row for name, row in rows}
        if args.json:
            print(json.dumps(figures))
        return 0
    finally:
        stop_children()


def snmpd_version() -> str:
    done = subprocess.run([SNMPD, "-v"], capture_output=True, text=True)
    found = re.search(r"version:\s*(\S+)", done.stdout + done.stderr)
    return found.group(1) if found else "?"


def exporter_version() -> str:
    done = subprocess.run([EXPORTER, "--version"], capture_output=True, text=True)
    found = re.search(r"version (\S+)", done.stdout + done.stderr)
    return f"prometheus-snmp-exporter {found.group(1) if found else '?'}"


if __name__ == "__main__":
    sys.exit(main())
