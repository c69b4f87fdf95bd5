"""The command line, called as a sysadmin would (console script in a subprocess) or via main()."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import psutil

from custode.agent import __version__
from custode.agent.audit import AuditLog
from custode.agent.cli import main
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.state import State


def custode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "custode.agent", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def test_version() -> None:
    result = custode("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"custode {__version__}"


def test_help_everywhere() -> None:
    for args in ([], ["run"], ["once"], ["status"], ["config", "check"], ["audit", "verify"], ["audit", "export"]):
        result = custode(*args, "--help")
        assert result.returncode == 0 and "usage: custode" in result.stdout, args


def test_once_prints_a_readable_table() -> None:
    result = custode("once")
    out = result.stdout
    assert re.search(rf"^CPU +{psutil.cpu_count()} logical CPUs", out, re.M), out
    total_gib = psutil.virtual_memory().total / 2**30
    assert re.search(rf"^Memory +[\d.]+ GiB available of {total_gib:.1f} GiB", out, re.M), out
    assert re.search(r"^  MOUNTPOINT +DEVICE +TYPE +SIZE +USED +AVAIL +USE%$", out, re.M), out
    assert re.search(r"^  / +\S+ +\S+ +[\d.]+ \w+", out, re.M), "the root filesystem row is missing"
    rows = dict(re.findall(r"^  (\w+) +(ok|n/a|FAILED) ", out, re.M))
    for name in ("cpu", "memory", "filesystem", "diskstats", "netdev", "loadavg", "boottime"):
        assert rows.get(name) == "ok", (name, out)
    assert result.returncode == (0 if "FAILED" not in rows.values() else 1)


def test_once_prometheus_format() -> None:
    result = custode("once", "--format", "prometheus")
    lines = result.stdout.splitlines()
    assert "# TYPE node_cpu_seconds_total counter" in lines
    assert any(line.startswith('node_filesystem_avail_bytes{device=') for line in lines)
    assert 'custode_collector_success{collector="memory"} 1.0' in lines


def test_status_explains_open_incidents(tmp_path, isolated_data_dir, capsys) -> None:
    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert "no state yet" in out and "Agent: NOT RUNNING" in out
    state = State(isolated_data_dir / "state.db")
    incidents = Incidents(state)
    incidents.observe(CheckResult("default", "filesystem", "srv:/var", "critical",
                                  "filesystem /var on srv has 2.0% free (1.0 GiB of 50.0 GiB)"))
    state.record_collector_run("smart", 1.0, False, 0.1, "timed out after 60s")
    state.close()
    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert "1 problem right now:" in out
    assert "CRITICAL  filesystem /var on srv has 2.0% free" in out
    assert "smart: has never worked (1 runs): timed out after 60s" in out


def _beat(state: State, **overrides) -> None:
    import os
    import socket

    from custode.agent.clock import current_time
    from custode.agent.heartbeat import beat

    values = {"pid": os.getpid(), "hostname": socket.gethostname(), "config": "<embedded default>",
              "listen": "127.0.0.1:10191", "version": "test", "started_at": current_time() - 60,
              "now": current_time()}
    beat(state, **{**values, **overrides})


def test_status_all_clear_only_while_an_agent_runs(isolated_data_dir, capsys) -> None:
    from custode.agent.clock import current_time

    state = State(isolated_data_dir / "state.db")
    state.record_collector_run("cpu", current_time(), True, 0.01, None)
    state.close()
    # A state DB no agent writes: never "nothing is wrong", and exit 1.
    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"Config: <embedded default> · state DB: {isolated_data_dir / 'state.db'}\n")
    assert "Agent: NOT RUNNING: no agent has ever run with this state DB" in out
    assert "nothing is wrong" not in out
    state = State(isolated_data_dir / "state.db")
    _beat(state)  # this process plays the running agent
    state.close()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Agent: running (pid" in out and "No open incidents: nothing is wrong right now." in out
    assert "1 of 1 worked" in out


def test_status_says_when_the_agent_stopped_or_vanished(isolated_data_dir, capsys) -> None:
    from custode.agent.clock import current_time

    state = State(isolated_data_dir / "state.db")
    _beat(state, stopped=True)
    state.close()
    assert main(["status"]) == 1
    assert "Agent: NOT RUNNING: stopped " in capsys.readouterr().out
    state = State(isolated_data_dir / "state.db")
    _beat(state, now=current_time() - 3600)  # killed an hour ago: no stop recorded
    state.close()
    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"Agent: NOT RUNNING: last seen .* ago\), without stopping", out), out
    state = State(isolated_data_dir / "state.db")
    _beat(state, pid=2**22 + 12345)  # a fresh beat from a pid that does not exist on this host
    state.close()
    assert main(["status"]) == 1


def test_audit_verify_and_export_commands(isolated_data_dir, capsys) -> None:
    state = State(isolated_data_dir / "state.db")
    log = AuditLog(isolated_data_dir / "audit.jsonl", on_append=state.set_audit_anchor)
    for n in range(5):
        log.append("test.event", f"thing-{n}", {"n": n})
    state.close()
    assert main(["audit", "verify"]) == 0
    assert "OK, 5 records" in capsys.readouterr().out
    assert main(["audit", "export", "--since", "2000-01-01"]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["subject"] for r in exported] == [f"thing-{n}" for n in range(5)]
    assert main(["audit", "export", "--since", "yesterday-ish"]) == 2
    # Cut the last two records: only the anchor in the state DB can tell.
    path = isolated_data_dir / "audit.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    assert main(["audit", "verify"]) == 1
    assert "truncated" in capsys.readouterr().err


def test_service_command_explains_linux() -> None:
    result = custode("service", "install")
    assert result.returncode == 2 and "packaging/linux/custode.service" in result.stderr


def test_invalid_config_exit_code_and_message(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("collectors:\n  cpu:\n    interval: often\n")
    result = custode("once", "--config", str(path))
    assert result.returncode == 1
    assert f"{path}:3: collectors.cpu.interval: expected a duration" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = custode("run", "--listen", f"127.0.0.1:{port}", env={"CUSTODE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert f"custode: cannot listen on 127.0.0.1:{port}: Address already in use; choose another address" \
        in result.stderr


def test_custode_config_is_read_by_every_command(tmp_path, monkeypatch, capsys) -> None:
    config = tmp_path / "agent.yaml"
    data = tmp_path / "agent-data"
    config.write_text(f"agent:\n  data_dir: {data}\n  tenant: crema\ntenants:\n  crema: {{name: Comune di Crema}}\n")
    monkeypatch.setenv("CUSTODE_CONFIG", str(config))
    assert main(["status"]) == 1
    assert capsys.readouterr().out.startswith(f"Config: {config} · state DB: {data / 'state.db'}\n")
    assert main(["windows", "list"]) == 0
    assert capsys.readouterr().out.startswith(f"Config: {config}\n")
    monkeypatch.setenv("CUSTODE_CONFIG", str(tmp_path / "missing.yaml"))
    assert main(["status"]) == 1
    assert "CUSTODE_CONFIG names it" in capsys.readouterr().err
