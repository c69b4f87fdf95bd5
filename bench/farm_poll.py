#!/usr/bin/env python3
"""Farm poll benchmark: one cycle over 500 SSH targets, Custode's poller vs OpenSSH fanned out by xargs.

Usage::

    /work/main/.venv/bin/python bench/farm_poll.py [--targets 500] [--workers 32] [--blackholed 0.1] [--json]

Every target is the same private sshd on 127.0.0.1 (Debian's openssh-server,
started by the test helper ``tests/ssh_server.py`` with its own keys), under a
different host name, so the run measures Custode's side: connection set-up,
the one-round-trip probe, parsing, and what hundreds of targets cost in
memory. Because the host side also runs here, on the same two cores, wall
times are an upper bound for a real farm where each host runs its own probe.

Runs, all in one process so they share the machine's state:

1. **cold**: all targets, fresh connections (the first cycle after start).
2. **warm**: the same poller again, connections kept from the cold cycle
   (``farm.keep_connections``), which is every later cycle.
3. **blackholed**: a new poller where ``--blackholed`` of the targets point at
   a listener that accepts TCP and never answers (a firewall that eats
   packets after the handshake, a hung sshd); their connect timeout is
   ``--connect-timeout``.
4. **peer**: OpenSSH's ``ssh`` client run by ``xargs -P WORKERS``, each
   running the same probe script on every target (no parsing), which is what a
   sysadmin's shell loop would do.

Figures: wall time, CPU seconds of this process (user+system) and of the
whole machine (/proc/stat), peak RSS of this process (VmHWM), and how many
targets were up. The slow sections (package manager, SMART) are left out
(``include_updates=False``) as in every poll but one per ``updates_interval``;
``--updates N`` additionally times N targets with them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from custode.agent.farm.poller import FarmPoller  # noqa: E402
from custode.agent.farm.probes import linux as linux_probe  # noqa: E402
from custode.agent.farm.targets import Target  # noqa: E402
from custode.agent.transports.config import HostConfig, SshOptions  # noqa: E402


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (every core) from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    busy = sum(values) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM, so each run's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def measure(label: str, action) -> dict:
    reset_peak_rss()
    cpu0, machine0, wall0 = own_cpu(), machine_cpu(), time.monotonic()
    outcome = action()
    wall = time.monotonic() - wall0
    figures = {"run": label, "wall_s": round(wall, 2), "cpu_s": round(own_cpu() - cpu0, 2),
               "machine_cpu_s": round(machine_cpu() - machine0, 2), "peak_rss_mib": round(rss_mib("VmHWM"), 1),
               "rss_after_mib": round(rss_mib(), 1), **outcome}
    print(f"{label:<12} wall {figures['wall_s']:7.2f} s   cpu {figures['cpu_s']:6.2f} s   machine cpu "
          f"{figures['machine_cpu_s']:6.2f} s   peak RSS {figures['peak_rss_mib']:6.1f} MiB   "
          + "   ".join(f"{k} {v}" for k, v in outcome.items()), flush=True)
    return figures


def targets_for(count: int, port: int, blackhole_port: int | None, blackholed: int, server, timeout: float,
                connect_timeout: float) -> list[Target]:
    targets = []
    for i in range(count):
        dead = i < blackholed
        options = SshOptions(user=server.user, port=blackhole_port if dead else port,
                             identity_file=server.client_key, known_hosts=server.known_hosts, use_agent=False,
                             connect_timeout=connect_timeout)
        targets.append(Target(f"h{i:03d}", f"t{i % 20:02d}", HostConfig(address="127.0.0.1", ssh=options),
                              300.0, timeout))
    return targets


def poll_cycle(poller: FarmPoller) -> dict:
    results = poller.poll()
    up = sum(1 for r in results if r.up)
    durations = sorted(r.duration for r in results if r.up)
    p50 = durations[len(durations) // 2] if durations else float("nan")
    return {"up": up, "down": len(results) - up, "p50_poll_s": round(p50, 3)}


def peer_cycle(server, count: int, workers: int, port: int) -> dict:
    """OpenSSH's client fanned out by xargs: the shell-loop way of doing the same poll."""
    command = linux_probe.probe_command(include_updates=False)
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "one.sh"
        script.write_text(
            "#!/bin/sh\nexec ssh -q -o BatchMode=yes -o StrictHostKeyChecking=yes "
            f"-o UserKnownHostsFile={server.known_hosts} -o IdentitiesOnly=yes -i {server.client_key} "
            f"-o ConnectTimeout=10 -p {port} {server.user}@127.0.0.1 \"$(cat {work}/cmd)\" "
            f"> {work}/out.$1 2>/dev/null\n")
        (Path(work) / "cmd").write_text(command)
        script.chmod(0o755)
        names = "\n".join(str(i) for i in range(count)) + "\n"
        subprocess.run(["xargs", "-P", str(workers), "-n", "1", str(script)], input=names, text=True,
                       timeout=600, check=False)
        ok = sum(1 for i in range(count)
                 if (Path(work) / f"out.{i}").exists() and "@@custode:end" in (Path(work) / f"out.{i}").read_text())
    return {"up": ok, "down": count - ok}


def service_account(name: str) -> str | None:
    """A system account with /bin/sh as login shell, as the farm's hosts give Custode.

    Logging in as root here would measure root's ~/.bashrc: bash sources it for
    every command sshd runs, and on this machine it starts pyenv, about 170
    processes and 0.12 s of CPU per command, which no probe should be charged for.
    """
    if not name or os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--shell", "/bin/sh", "--no-create-home", name], check=True)
        subprocess.run(["usermod", "-p", "*", name], check=True)
    return name


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--blackholed", type=float, default=0.1, help="share of targets blackholed (default 0.1)")
    parser.add_argument("--connect-timeout", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--updates", type=int, default=10, help="targets polled once with the slow sections")
    parser.add_argument("--no-peer", action="store_true", help="skip the OpenSSH/xargs run")
    parser.add_argument("--account", default="custode-bench",
                        help="login account for the targets, created with /bin/sh as shell when missing (needs "
                             "root; '' = the current user)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from ssh_server import Blackhole, SshServer

    if not shutil.which("ssh") and not args.no_peer:
        print("the peer run needs OpenSSH's client: apt-get install openssh-client (or --no-peer)", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    print(f"{args.targets} targets on one loopback sshd, {args.workers} workers, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}", flush=True)
    figures = []
    account = service_account(args.account)
    with SshServer(user=account) as server, Blackhole() as hole:
        port = server.port
        dead = int(args.targets * args.blackholed)
        print(f"baseline RSS before polling {rss_mib():.1f} MiB (Python, paramiko, the test helpers)", flush=True)
        live = targets_for(args.targets, port, None, 0, server, args.timeout, args.connect_timeout)
        poller = FarmPoller(live, workers=args.workers, keep_connections=True, updates_interval=None)
        figures.append(measure("cold", lambda: poll_cycle(poller)))
        figures.append(measure("warm", lambda: poll_cycle(poller)))
        poller.close()
        mixed = targets_for(args.targets, port, hole.port, dead, server, args.timeout, args.connect_timeout)
        poller = FarmPoller(mixed, workers=args.workers, keep_connections=True, updates_interval=None)
        figures.append(measure(f"blackholed{int(args.blackholed * 100)}%", lambda: poll_cycle(poller)))
        poller.close()
        if args.updates:
            few = targets_for(args.updates, port, None, 0, server, 120.0, args.connect_timeout)
            poller = FarmPoller(few, workers=min(args.workers, args.updates), keep_connections=False,
                                updates_interval=0.0)
            figures.append(measure(f"updates x{args.updates}", lambda: poll_cycle(poller)))
            poller.close()
        if not args.no_peer:
            before = children_cpu()
            peer = measure("openssh+xargs", lambda: peer_cycle(server, args.targets, args.workers, port))
            peer["client_cpu_s"] = round(children_cpu() - before, 2)
            print(f"{'':<12} ssh clients' own CPU {peer['client_cpu_s']} s", flush=True)
            figures.append(peer)
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
