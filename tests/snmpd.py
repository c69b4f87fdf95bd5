"""Debian's net-snmp ``snmpd`` on loopback as the SNMP device of the tests, with parts a test can flip.

``SnmpDaemon(tmp_path)`` runs ``/usr/sbin/snmpd -f -c CONF -I -smux -m ""
udp:127.0.0.1:PORT,udp6:[::1]:PORT`` (``-I -smux``: no SMUX listener on TCP
199, which another snmpd on the machine may hold; ``-m ""``: no MIB files,
Debian ships none of the standard ones and the log would fill with "Cannot
find module"). ``SNMPCONFPATH`` is an empty directory of the test plus
``SNMP_PERSISTENT_DIR`` (also the test's), so nothing of /etc/snmp or ~/.snmp
is read, ``createUser`` works (snmpd writes the localised usmUser there), and
a restart keeps the engine ID and counts snmpEngineBoots up, like a rebooted
switch. ``-C`` (no default config files) is not used: with it snmpd also skips
its persistent file, so every start got a new random engine ID and boots 1,
like a replaced device rather than a rebooted one. As root it simply stays
root (no ``-u``): the pass programs run as root too.

What it serves:

- community ``custodetest`` from 127.0.0.1 (``rocommunity``) and ::1
  (``rocommunity6``); SNMPv3 user ``custode`` (SHA "authpass123", AES
  "privpass123", ``rouser custode priv``) and ``custodeauth`` (SHA only,
  ``rouser custodeauth auth``);
- net-snmp's own MIBs: the real interfaces of this machine (lo, eth0…) in
  ifTable/ifXTable, HOST-RESOURCES-MIB (hrStorage, hrProcessorLoad);
- through ``pass_persist`` programs (tests/snmpd_pass.py, run with the venv's
  python, reading a JSON state file that :meth:`SnmpDaemon.set_state`
  rewrites): UPS-MIB (1.3.6.1.2.1.33, which net-snmp does not implement)
  whenever the state has a UPS; with ``override_uptime=True`` sysUpTime
  (``pass_persist -p 1 .1.3.6.1.2.1.1.3``: priority 1 beats the built-in
  registration of the same OID); with ``simulated_interfaces=True`` the whole
  interfaces group instead of the real one (ifNumber 1.3.6.1.2.1.2.1, ifTable
  1.3.6.1.2.1.2.2 and ifXTable 1.3.6.1.2.1.31.1.1, each at priority 1 on the
  very OID the built-in module registers: a pass on a shorter prefix such as
  1.3.6.1.2.1.2 loses to the built-in's longer one).

What did not work, and why the interfaces are all-real or all-simulated: a
``pass`` for one extra row inside the real ifTable (e.g. registering
1.3.6.1.2.1.2.2.1.8.1000 for ifIndex 1000). GET of that row works, but in a
GETNEXT snmpd hands the pass program the registration's own OID both when it
comes from the rows before ("the first at or after") and when the manager asks
for what follows that very row ("the next after"), and a pass program cannot
tell the two apart: answering it skips the row in walks, or returns it again
forever ("OID not increasing" in snmpwalk). So a test that needs an interface
to go down uses ``simulated_interfaces``; the real rows of net-snmp are
checked by the other tests.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import host_env, stop_process

SNMPD = "/usr/sbin/snmpd"
COMMUNITY = "custodetest"
V3_USER, V3_AUTH_KEY, V3_PRIV_KEY = "custode", "authpass123", "privpass123"
V3_AUTH_ONLY_USER, V3_AUTH_ONLY_KEY = "custodeauth", "authonly123"
PASS_PROGRAM = Path(__file__).with_name("snmpd_pass.py")

IF_TABLE = "1.3.6.1.2.1.2.2.1"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1.1"
UPS = "1.3.6.1.2.1.33.1"


def free_udp_port() -> int:
    """A UDP port free on both 127.0.0.1 and ::1 (snmpd listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as four:
            four.bind(("127.0.0.1", 0))
            port = int(four.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as six:
                    six.bind(("::1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no UDP port free on both 127.0.0.1 and ::1")


def interface(index: int, name: str, *, descr: str = "", alias: str = "", admin: int = 1, oper: int = 1,
              if_type: int = 6, mtu: int = 1500, speed_mbps: int = 1000, mac: str = "00:1a:2b:3c:4d:5e",
              in_octets: int = 0, out_octets: int = 0, in_errors: int = 0, out_errors: int = 0,
              last_change: int = 0) -> dict[str, Any]:
    """One simulated interface row (what :meth:`SnmpDaemon.set_state` takes in ``interfaces``)."""
    return {"index": index, "name": name, "descr": descr or name, "alias": alias, "admin": admin, "oper": oper,
            "type": if_type, "mtu": mtu, "speed_mbps": speed_mbps, "mac": mac, "in_octets": in_octets,
            "out_octets": out_octets, "in_errors": in_errors, "out_errors": out_errors,
            "last_change": last_change}


def _interface_objects(rows: list[dict[str, Any]]) -> list[list[str]]:
    out: list[list[str]] = [["1.3.6.1.2.1.2.1.0", "integer", str(len(rows))]]
    for row in rows:
        i = row["index"]
        speed = row["speed_mbps"] * 1_000_000
        mac = row["mac"].replace(":", " ")
        low32 = 2**32
        columns = {
            1: ("integer", i), 2: ("string", row["descr"]), 3: ("integer", row["type"]), 4: ("integer", row["mtu"]),
            5: ("gauge", min(speed, low32 - 1)), 6: ("octet", mac), 7: ("integer", row["admin"]),
            8: ("integer", row["oper"]), 9: ("timeticks", row["last_change"]),
            10: ("counter", row["in_octets"] % low32), 11: ("counter", 0), 12: ("counter", 0), 13: ("counter", 0),
            14: ("counter", row["in_errors"]), 15: ("counter", 0), 16: ("counter", row["out_octets"] % low32),
            17: ("counter", 0), 18: ("counter", 0), 19: ("counter", 0), 20: ("counter", row["out_errors"]),
            21: ("gauge", 0), 22: ("objectid", ".0.0"),
        }
        out += [[f"{IF_TABLE}.{column}.{i}", kind, str(value)] for column, (kind, value) in columns.items()]
        x_columns = {
            1: ("string", row["name"]), 2: ("counter", 0), 3: ("counter", 0), 4: ("counter", 0), 5: ("counter", 0),
            6: ("counter64", row["in_octets"]), 7: ("counter64", 0), 8: ("counter64", 0), 9: ("counter64", 0),
            10: ("counter64", row["out_octets"]), 11: ("counter64", 0), 12: ("counter64", 0),
            13: ("counter64", 0), 14: ("integer", 1), 15: ("gauge", row["speed_mbps"]), 16: ("integer", 2),
            17: ("integer", 1), 18: ("string", row["alias"]), 19: ("timeticks", 0),
        }
        out += [[f"{IF_X_TABLE}.{column}.{i}", kind, str(value)] for column, (kind, value) in x_columns.items()]
    return out


UPS_SCALAR_OIDS = {
    "upsIdentManufacturer": ("1.1", "string"), "upsIdentModel": ("1.2", "string"),
    "upsBatteryStatus": ("2.1", "integer"), "upsSecondsOnBattery": ("2.2", "integer"),
    "upsEstimatedMinutesRemaining": ("2.3", "integer"), "upsEstimatedChargeRemaining": ("2.4", "integer"),
    "upsBatteryVoltage": ("2.5", "integer"), "upsBatteryCurrent": ("2.6", "integer"),
    "upsBatteryTemperature": ("2.7", "integer"), "upsInputLineBads": ("3.1", "counter"),
    "upsInputNumLines": ("3.2", "integer"), "upsOutputSource": ("4.1", "integer"),
    "upsOutputFrequency": ("4.2", "integer"), "upsOutputNumLines": ("4.3", "integer"),
    "upsAlarmsPresent": ("6.1", "gauge"),
}
UPS_INPUT_COLUMNS = {"upsInputFrequency": 2, "upsInputVoltage": 3, "upsInputCurrent": 4, "upsInputTruePower": 5}
UPS_OUTPUT_COLUMNS = {"upsOutputVoltage": 2, "upsOutputCurrent": 3, "upsOutputPower": 4, "upsOutputPercentLoad": 5}


def ups_state(*, on_battery: bool = False, battery_status: int = 2, charge: int = 100, minutes: int = 42,
              load: int = 35) -> dict[str, Any]:
    """A UPS (RFC 1628 objects by name) on utility power or on battery."""
    return {
        "upsIdentManufacturer": "Riello UPS", "upsIdentModel": "Sentinel Pro 2200",
        "upsBatteryStatus": battery_status, "upsSecondsOnBattery": 120 if on_battery else 0,
        "upsEstimatedMinutesRemaining": minutes, "upsEstimatedChargeRemaining": charge,
        "upsBatteryVoltage": 545, "upsBatteryCurrent": 0, "upsBatteryTemperature": 27, "upsInputLineBads": 3,
        "upsInputNumLines": 1, "upsOutputSource": 5 if on_battery else 3, "upsOutputFrequency": 500,
        "upsOutputNumLines": 1, "upsAlarmsPresent": 1 if on_battery else 0,
        "inputs": [{"upsInputFrequency": 0 if on_battery else 500, "upsInputVoltage": 0 if on_battery else 229,
                    "upsInputCurrent": 0, "upsInputTruePower": 0}],
        "outputs": [{"upsOutputVoltage": 230, "upsOutputCurrent": 31, "upsOutputPower": 610,
                     "upsOutputPercentLoad": load}],
    }


def _ups_objects(ups: dict[str, Any]) -> list[list[str]]:
    out = [[f"{UPS}.{UPS_SCALAR_OIDS[name][0]}.0", UPS_SCALAR_OIDS[name][1], str(value)]
           for name, value in ups.items() if name in UPS_SCALAR_OIDS]
    for line, row in enumerate(ups.get("inputs", []), start=1):
        out.append([f"{UPS}.3.3.1.1.{line}", "integer", str(line)])
        out += [[f"{UPS}.3.3.1.{UPS_INPUT_COLUMNS[name]}.{line}", "integer", str(value)] for name, value in row.items()]
    for line, row in enumerate(ups.get("outputs", []), start=1):
        out.append([f"{UPS}.4.4.1.1.{line}", "integer", str(line)])
        out += [[f"{UPS}.4.4.1.{UPS_OUTPUT_COLUMNS[name]}.{line}", "integer", str(value)]
                for name, value in row.items()]
    return out


class SnmpDaemon:
    """One snmpd on 127.0.0.1 and ::1, a free UDP port; stopped by :meth:`stop` or the context manager."""

    def __init__(self, directory: Path, *, simulated_interfaces: bool = False, override_uptime: bool = False,
                 sys_name: str = "custode-test-device", v3_auth_key: str = V3_AUTH_KEY,
                 v3_priv_key: str = V3_PRIV_KEY) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        self.state_path = self.directory / "state.json"
        self.config_path = self.directory / "snmpd.conf"
        self.log_path = self.directory / "snmpd.log"
        self.persistent = self.directory / "persistent"
        self.persistent.mkdir(exist_ok=True)
        self.confpath = self.directory / "confpath"
        self.confpath.mkdir(exist_ok=True)
        self.simulated_interfaces = simulated_interfaces
        self.override_uptime = override_uptime
        self.sys_name = sys_name
        self.v3_auth_key, self.v3_priv_key = v3_auth_key, v3_priv_key
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {"ups": None, "interfaces": [], "uptime_ticks": 100, "delay": None}
        self._write_state()
        self._write_config()

    def _pass_line(self, oid: str, priority: int | None = None) -> str:
        option = f"-p {priority} " if priority is not None else ""
        return f"pass_persist {option}.{oid} {sys.executable} {PASS_PROGRAM} {self.state_path} .{oid}"

    def _write_config(self) -> None:
        lines = [
            f"rocommunity {COMMUNITY} 127.0.0.1",
            f"rocommunity6 {COMMUNITY} ::1",
            f'createUser {V3_USER} SHA "{self.v3_auth_key}" AES "{self.v3_priv_key}"',
            f"rouser {V3_USER} priv",
            f'createUser {V3_AUTH_ONLY_USER} SHA "{V3_AUTH_ONLY_KEY}"',
            f"rouser {V3_AUTH_ONLY_USER} auth",
            f"sysName {self.sys_name}",
            "sysLocation Sala server, Municipio di Prova",
            "sysContact ced@comune.example",
            "dontLogTCPWrappersConnects yes",
            self._pass_line("1.3.6.1.2.1.33"),
        ]
        if self.override_uptime:
            lines.append(self._pass_line("1.3.6.1.2.1.1.3", priority=1))
        if self.simulated_interfaces:
            lines += [self._pass_line("1.3.6.1.2.1.2.1", priority=1), self._pass_line("1.3.6.1.2.1.2.2", priority=1),
                      self._pass_line("1.3.6.1.2.1.31.1.1", priority=1)]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _write_state(self) -> None:
        objects: list[list[str]] = []
        if self.state.get("ups"):
            objects += _ups_objects(self.state["ups"])
        if self.simulated_interfaces:
            objects += _interface_objects(self.state.get("interfaces") or [])
        if self.override_uptime and self.state.get("uptime_ticks") is not None:
            objects.append(["1.3.6.1.2.1.1.3.0", "timeticks", str(self.state["uptime_ticks"])])
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"objects": objects, "delay": self.state.get("delay")}), encoding="utf-8")
        os.replace(temporary, self.state_path)

    def set_state(self, **changes: Any) -> None:
        """Change what the pass programs serve (``ups``, ``interfaces``, ``uptime_ticks``, ``delay``: [OID prefix,
        seconds] to stall answers under it); seen on the next request.

        The pass program notices a new file by mtime and size; a rewrite within the same nanosecond stamp and
        size would go unseen, so the write is nudged until the stamp differs.
        """
        before = self.state_path.stat()
        self.state.update(changes)
        self._write_state()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            after = self.state_path.stat()
            if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
                return
            time.sleep(0.01)
            self._write_state()

    def command_env(self) -> dict[str, str]:
        return {**host_env(), "SNMP_PERSISTENT_DIR": str(self.persistent),
                "SNMPCONFPATH": f"{self.confpath}:{self.persistent}", "MIBS": ""}

    def start(self, timeout: float = 15.0) -> None:
        assert self.proc is None, "snmpd already running"
        assert Path(SNMPD).exists(), "snmpd is not installed: run 'bash scripts/test.sh' (Debian's snmpd)"
        listen = f"udp:127.0.0.1:{self.port},udp6:[::1]:{self.port}"
        self.proc = subprocess.Popen(
            [SNMPD, "-f", "-Lf", str(self.log_path), "-c", str(self.config_path), "-I", "-smux", "-m", "",
             "-p", str(self.directory / "snmpd.pid"), listen],
            env=self.command_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"snmpd exited with {self.proc.returncode}: {self.log()}")
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"snmpd did not answer on port {self.port} within {timeout}s: {self.log()}")

    def _answers(self) -> bool:
        done = subprocess.run(self.snmp_command("snmpget", "1.3.6.1.2.1.1.5.0", timeout=0.5),
                              capture_output=True, text=True, env=self.command_env(), timeout=10, check=False)
        return done.returncode == 0 and self.sys_name in done.stdout

    def snmp_command(self, program: str, *args: str, timeout: float = 1.0, host: str = "127.0.0.1") -> list[str]:
        """A net-snmp command line (snmpget, snmpwalk…) against this daemon with the test community."""
        path = shutil.which(program) or f"/usr/bin/{program}"
        target = f"udp6:[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        return [path, "-v2c", "-c", COMMUNITY, "-On", "-t", str(timeout), "-r", "0", target, *args]

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port and persistent dir: sysUpTime starts over, boots count up."""
        self.stop()
        self.start()

    def __enter__(self) -> SnmpDaemon:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
