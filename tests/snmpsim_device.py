"""A real device's SNMP recording served by snmpsim on 127.0.0.1, as the device the tests poll.

The recordings (tests/data/snmprec/*.snmprec, provenance in PROVENANCE.md there)
were captured from real switches, firewalls and UPSes by the people who
contributed them to public projects; snmpsim's command responder (the
``snmpsim`` package, a test dependency) answers GET, GETNEXT and GETBULK from
them like the device would, with its types, gaps and odd values. It answers the
community that names the data file, so each device gets its own data directory
holding ``custodetest.snmprec``: the same community as tests/snmpd.py's snmpd,
which lets one snmp_exporter configuration read both.

``changes`` derive a variant of a recording (the same UPS on battery): OID to
``TYPE|VALUE``; an OID not in the recording is refused, so a typo cannot make
a test read a value the device never had.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conftest import host_env, stop_process
from snmpd import COMMUNITY, free_udp_port

RECORDINGS = Path(__file__).parent / "data" / "snmprec"
RESPONDER = Path(sys.executable).with_name("snmpsim-command-responder")


def recording(name: str) -> Path:
    path = RECORDINGS / f"{name}.snmprec"
    assert path.exists(), f"no recording {path}"
    return path


def derive(text: str, changes: dict[str, str]) -> str:
    """The recording with ``changes`` (OID -> ``TYPE|VALUE``) applied; every OID must be in it."""
    lines = text.splitlines()
    seen = set()
    for number, line in enumerate(lines):
        oid = line.split("|", 1)[0]
        if oid in changes:
            lines[number] = f"{oid}|{changes[oid]}"
            seen.add(oid)
    missing = set(changes) - seen
    assert not missing, f"not in the recording: {sorted(missing)}"
    return "\n".join(lines) + "\n"


class RecordedDevice:
    """``with RecordedDevice(tmp_path, "apc_smart_ups") as device:`` then poll 127.0.0.1:``device.port``."""

    def __init__(self, directory: Path, name: str, changes: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.name = name
        self.source = recording(name)
        self.changes = changes or {}
        self.port = free_udp_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "snmpsim.log"

    def start(self, timeout: float = 30.0) -> None:
        assert RESPONDER.exists(), "snmpsim is not installed: run 'bash scripts/test.sh' (pip install -e '.[test]')"
        data = self.directory / "data"
        cache = self.directory / "cache"
        data.mkdir(parents=True, exist_ok=True)
        cache.mkdir(exist_ok=True)
        text = self.source.read_text(encoding="utf-8")
        (data / f"{COMMUNITY}.snmprec").write_text(derive(text, self.changes) if self.changes else text,
                                                    encoding="utf-8")
        # snmpsim refuses to run as root unless told which user to become: it stays the user the tests run as.
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(RESPONDER), f"--data-dir={data}", f"--cache-dir={cache}",
                 f"--agent-udpv4-endpoint=127.0.0.1:{self.port}", f"--process-user={user}",
                 f"--process-group={group}", "--log-level=error"],
                env=host_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"snmpsim exited with {self.proc.returncode}: {self.log()}")
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"snmpsim did not answer on port {self.port} within {timeout}s: {self.log()}")

    def _answers(self) -> bool:
        snmpget = shutil.which("snmpget") or "/usr/bin/snmpget"
        done = subprocess.run([snmpget, "-v2c", "-c", COMMUNITY, "-On", "-t", "0.5", "-r", "0",
                               f"127.0.0.1:{self.port}", "1.3.6.1.2.1.1.2.0"],
                              capture_output=True, text=True, env={**host_env(), "MIBS": ""}, timeout=10,
                              check=False)
        return done.returncode == 0 and "1.3.6.1.2.1.1.2.0" in done.stdout

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> RecordedDevice:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
