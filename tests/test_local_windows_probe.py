"""The agent's own Windows probe (agent.windows_probe): the farm probe run through this machine's PowerShell.

Linux only, so powershell.exe is a fake: a small sh script put first on PATH
that checks its arguments as powershell.exe would receive them, keeps what it
read on stdin for the test, and prints a probe output fixture of the farm
tests (tests/data/farm/windows). The platform the service's selection sees is
passed in; sys.platform is left alone. The clock is the fixture's time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, http_get, wait_until

from custode.agent.checks import HostChecks, apply
from custode.agent.config_loader import ConfigError, load_text
from custode.agent.farm.local_probe import COLLECTOR
from custode.agent.farm.probes.windows import probe_command
from custode.agent.history import store
from custode.agent.history.service import AgentHistory
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache, samples
from custode.agent.runtime import Agent
from custode.agent.services import Context, build_services
from custode.agent.services.local_windows import EXECUTOR, WindowsProbeSection, build, probe_wanted
from custode.agent.state import State
from custode.agent.transports.local import LocalTransport, powershell_executable
from custode.agent.transports.winrm import stdin_input, stdin_stager

DATA = Path(__file__).parent / "data" / "farm" / "windows"
NOW = dt.datetime(2026, 11, 20, 9, 15, 10, tzinfo=dt.timezone.utc).timestamp()
TODAY = dt.date(2026, 11, 20)
HOST = "srv-crema"
CONFIG = f"""
agent:
  tenant: crema
  hostname: {HOST}
  windows_probe: {{timeout: 30s}}
tenants:
  crema: {{name: Comune di Crema}}
hosts:
  {HOST}: {{transport: local, labels: {{role: fileserver}}}}
"""

FAKE = r"""#!{python}
# powershell.exe for the test: refuses what powershell.exe would not take as Custode means it, keeps what it
# received, then plays the next of its answers.
import base64, json, pathlib, signal, sys

record = pathlib.Path({record!r})
args = sys.argv[1:]
if len(args) != 4 or args[:3] != ["-NoProfile", "-NonInteractive", "-EncodedCommand"]:
    sys.stderr.write("powershell.exe: unexpected arguments: %r\n" % args)
    sys.exit(64)
stager = base64.b64decode(args[3], validate=True).decode("utf-16-le")
# The console host reads stdin for a command only when its text uses $input, and decodes it in the console's
# code page: only printable ASCII lines arrive the same on every server.
data = sys.stdin.buffer.read() if "$input" in stager else b""
lines = data.split(b"\r\n")
if not data or lines[-1] != b"" or any(not all(32 <= byte < 127 for byte in line) for line in lines):
    sys.stderr.write("custode: the script of this command did not arrive whole on its standard input\n")
    sys.exit(125)
number = len(list(record.glob("run.*")))
(record / ("run.%d" % number)).write_text(json.dumps({{"args": args, "stager": stager, "stdin": data.decode()}}))
answers = {answers!r}
answer = answers[min(number, len(answers) - 1)]
if answer == "hang":
    signal.pause()
elif answer == "banner":
    print("Benvenuto su SRV-CREMA")
    sys.exit(1)
else:
    fixture, searched = answer
    text = pathlib.Path(fixture).read_text(encoding="ascii")
    if not searched:  # what the probe prints with $U=0: no updates section
        text = "".join(line for line in text.splitlines(True) if not line.startswith(',"updates":'))
    sys.stdout.write(text.replace("\n", "\r\n"))
"""
"""A fake powershell.exe: checks its arguments and stdin, keeps them (``runs``), then answers in turn."""


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def full(fixture: str) -> tuple[str, bool]:
    """The answer of a run that searched Windows Update: the whole fixture."""
    return str(DATA / fixture), True


def quick(fixture: str) -> tuple[str, bool]:
    """The answer of a run that skipped the search ($U=0): the fixture without its updates section."""
    return str(DATA / fixture), False


@pytest.fixture
def fake_powershell(tmp_path, monkeypatch):
    """``fake_powershell(*answers)``: a powershell.exe first on PATH answering its runs in turn (the last one
    again after the others: ``full(fixture)``, ``quick(fixture)``, ``"hang"``, ``"banner"``); returns the
    folder of its runs."""
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SystemRoot", raising=False)

    def install(*answers: object) -> Path:
        fake = bin_dir / "powershell.exe"
        fake.write_text(FAKE.format(python=sys.executable, record=str(record), answers=list(answers)),
                        encoding="utf-8")
        fake.chmod(0o755)
        return record
    return install


def runs(record: Path) -> list[dict]:
    """What the fake received, run by run: its arguments, the decoded stager and its stdin."""
    found = sorted(record.glob("run.*"), key=lambda path: int(path.suffix[1:]))
    return [json.loads(path.read_text()) for path in found]


def sent(command: str) -> str:
    """The stdin a polled host's powershell.exe gets for ``command`` over WinRM."""
    return stdin_input(command).decode("ascii")


def context(tmp_path, text: str = CONFIG) -> Context:
    state = State(tmp_path / "state.db")
    return Context(load_text(text), state, Incidents(state), MetricCache(), lambda *record: None)


def service_for(ctx: Context, clock: Clock):
    service = build(ctx, platform="win32", clock=clock)
    assert service is not None
    (job,) = service.jobs(dt.datetime.fromtimestamp(clock.now, dt.timezone.utc))
    return service, job


def value(families, name: str, **labels: str) -> float:
    found = [v for got, v in samples(families, name) if all(got.get(k) == want for k, want in labels.items())]
    assert len(found) == 1, (name, labels, samples(families, name))
    return found[0]


def exposition(ctx: Context) -> str:
    return ctx.cache.exposition.plain.decode()


# -- when it runs ---------------------------------------------------------------------------------


def test_auto_means_windows_only_and_true_or_false_force_it():
    auto = WindowsProbeSection()
    assert auto.enabled == "auto"
    assert probe_wanted(auto, "win32") and not probe_wanted(auto, "linux")
    assert probe_wanted(WindowsProbeSection(enabled=True), "linux")
    assert not probe_wanted(WindowsProbeSection(enabled=False), "win32")


def test_off_on_linux_by_default(tmp_path):
    ctx = context(tmp_path)
    assert build(ctx) is None  # this machine's platform: Linux, and enabled is auto
    assert "local_windows" not in [service.name for service in build_services(ctx)]
    assert build(ctx, platform="win32") is not None


def test_not_run_when_farm_mode_polls_this_very_host(tmp_path):
    text = CONFIG.replace("{transport: local, labels: {role: fileserver}}",
                          "{transport: winrm, address: 10.0.0.5, winrm: {user: custode}}")
    assert build(context(tmp_path, text), platform="win32") is None


def test_the_timeout_must_be_shorter_than_the_interval():
    with pytest.raises(ConfigError) as caught:
        load_text("agent:\n  windows_probe: {interval: 5m, timeout: 5m}\n", "c.yaml")
    assert "agent.windows_probe" in str(caught.value) and "must be shorter than interval" in str(caught.value)


def test_its_job_runs_on_a_thread_of_its_own(tmp_path):
    service, job = service_for(context(tmp_path), Clock(NOW))
    assert service.executors() == {EXECUTOR: 1}
    assert (job.executor, job.trigger, dict(job.trigger_args), job.run_now) == (EXECUTOR, "interval",
                                                                                  {"seconds": 900.0}, True)


# -- a run ----------------------------------------------------------------------------------------


def test_a_run_reports_this_host_like_a_polled_one(tmp_path, fake_powershell):
    record = fake_powershell(full("server2016-37-updates.json"))
    ctx = context(tmp_path)
    _, job = service_for(ctx, Clock(NOW))

    outcome = job.run()

    assert outcome.success, outcome.error
    # powershell.exe got the WinRM transport's stdin stager on its command line, and the farm's probe command,
    # whole, on stdin: what a polled host's powershell.exe gets
    (run,) = runs(record)
    assert run["stager"] == stdin_stager()
    assert run["stdin"] == sent(probe_command(include_updates=True))  # the first run searches Windows Update

    # incidents: the farm's checks, for agent.hostname in agent.tenant
    incidents = {incident.key: incident for incident in ctx.incidents.open_incidents()}
    assert set(incidents) == {f"crema/os_updates/{HOST}:updates"}
    updates = incidents[f"crema/os_updates/{HOST}:updates"]
    assert updates.severity == "critical" and updates.tenant == "crema"
    assert "37 pending (5 security)" in updates.summary and updates.details["host"] == HOST
    states = {row["key"]: row["severity"] for row in ctx.state.query("SELECT key, severity FROM check_states")}
    assert states[f"crema/antivirus/{HOST}:antivirus"] == "ok"
    assert states[f"crema/os_support/{HOST}:os"] == "ok"
    assert states[f"crema/disk_health/{HOST}:disk/DELL PERC H730P Mini"] == "ok"
    assert not any(key.split("/")[1] in ("reachability", "filesystem", "memory", "cpu", "services")
                   for key in states)  # the local checks judge those from the collectors

    # metrics: farm mode's names and labels for a Windows host, published under the probe's name
    families = ctx.cache.families(COLLECTOR)
    host = {"tenant": "crema", "host": HOST, "role": "fileserver"}
    assert value(families, "windows_logical_disk_free_bytes", volume="E:", **host) == 101335121920
    assert value(families, "windows_cs_physical_memory_bytes", **host) == 8388152 * 1024
    assert value(families, "custode_os_updates_pending", **host) == 37
    assert value(families, "custode_os_security_updates_pending", **host) == 5
    assert value(families, "custode_os_reboot_required", **host) == 1
    assert value(families, "custode_antivirus_enabled", product="Microsoft Defender", **host) == 1
    assert value(families, "custode_eventlog_events", source="Schannel", level="error", **host) == 14
    assert value(families, "custode_os_supported", **host) == 1
    assert value(families, "windows_os_info", product="Microsoft Windows Server 2016 Standard", **host) == 1
    names = {family.name for family in families}
    assert not names & {"custode_target_up", "custode_cpu_utilisation_ratio", "custode_service_failed",
                        "custode_uptime_seconds", "custode_host_clock_skew_seconds"}
    text = exposition(ctx)
    assert f'custode_collector_success{{collector="{COLLECTOR}"}} 1.0' in text
    assert ctx.cache.outcome(COLLECTOR).finished_at == NOW  # type: ignore[union-attr]  # the injected clock
    assert 'windows_logical_disk_free_bytes{host="srv-crema",role="fileserver",tenant="crema",volume="C:"}' in text

    # history: the facts only the probe reads, in the agent host's row of the day, not counted as a cycle
    row = store.day_row(ctx.state, HOST, TODAY)
    assert row is not None and (row.source, row.tenant, row.polls, row.successes) == ("agent", "crema", 0, 0)
    data = row.data
    assert (data["updates_pending_max"], data["security_pending_max"], data["reboot_required"]) == (37, 5, True)
    assert data["last_update_installed"] == dt.datetime(2026, 7, 20, 3, 14, 9, tzinfo=dt.timezone.utc).timestamp()
    assert data["antivirus_active_polls"] == 1 and "antivirus_inactive_polls" not in data
    assert data["signature_age_max_days"] == pytest.approx(0.5, abs=0.1)
    assert (data["events_error_max"], data["events_critical_max"], data["unhealthy_disks_max"]) == (16, 0, 0)
    assert "cpu" not in data and "memory" not in data and not data["filesystems"]

    (status,) = ctx.state.collector_statuses()
    assert (status["name"], status["success"], status["consecutive_failures"]) == (COLLECTOR, 1, 0)


def test_the_agent_history_keeps_the_probe_facts_and_counts_its_cycles(tmp_path, fake_powershell):
    fake_powershell(full("server2016-37-updates.json"))
    ctx = context(tmp_path)
    clock = Clock(NOW)
    _, job = service_for(ctx, clock)
    history = AgentHistory(ctx.state, ctx.cache, HOST, "crema", 15.0, keep=400, clock=clock)

    history.cycle_finished(NOW - 15, [], counted=True)
    assert job.run().success
    history.cycle_finished(NOW, [], counted=True)
    assert history.flush() == 2
    clock.now = NOW + 900
    assert job.run().success

    row = store.day_row(ctx.state, HOST, TODAY)
    assert row is not None and row.source == "agent"
    assert (row.polls, row.successes) == (2, 2)  # the two cycles; the probe's runs are not cycles
    assert row.data["antivirus_active_polls"] == 2 and row.data["updates_pending_max"] == 37
    assert row.data["cycles"]["first"] == NOW - 15 and row.data["cycles"]["last"] == NOW


def test_defender_off_is_an_antivirus_incident_and_a_day_without_antivirus(tmp_path, fake_powershell):
    fake_powershell(full("server2022-defender-off.json"))
    ctx = context(tmp_path)
    _, job = service_for(ctx, Clock(NOW))

    assert job.run().success

    (incident,) = ctx.incidents.open_incidents()
    assert (incident.key, incident.severity) == (f"crema/antivirus/{HOST}:antivirus", "critical")
    assert incident.summary.startswith(f"no active antivirus on {HOST}: Microsoft Defender is disabled")
    families = ctx.cache.families(COLLECTOR)
    assert value(families, "custode_antivirus_enabled", host=HOST) == 0
    assert value(families, "custode_eventlog_events", source="Microsoft-Windows-Kernel-Power", level="critical") == 1
    data = store.day_row(ctx.state, HOST, TODAY).data  # type: ignore[union-attr]
    assert data["antivirus_inactive_polls"] == 1 and data["signature_age_max_days"] == pytest.approx(79.1, abs=0.1)
    assert (data["events_critical_max"], data["events_error_max"]) == (1, 3)


def test_between_update_searches_the_last_counts_are_kept(tmp_path, fake_powershell):
    fixture = "server2016-37-updates.json"
    record = fake_powershell(full(fixture), quick(fixture), full(fixture))
    ctx = context(tmp_path)
    clock = Clock(NOW)
    _, job = service_for(ctx, clock)

    assert job.run().success
    clock.now = NOW + 900
    assert job.run().success
    clock.now = NOW + 6 * 3600
    assert job.run().success

    assert [run["stdin"] for run in runs(record)] == [sent(probe_command(include_updates=searched))
                                                      for searched in (True, False, True)]
    assert value(ctx.cache.families(COLLECTOR), "custode_os_updates_pending", host=HOST) == 37
    (incident,) = ctx.incidents.open_incidents()
    assert incident.check == "os_updates" and incident.severity == "critical"


# -- in the running agent -------------------------------------------------------------------------


def test_in_the_agent_the_probe_is_scheduled_and_published_on_metrics(tmp_path, fake_powershell, pin_clock):
    fake_powershell(full("server2022-defender-off.json"))
    pin_clock(NOW)
    forced = CONFIG.replace("{timeout: 30s}", "{enabled: true, timeout: 30s}")  # forced: this machine is Linux
    agent = Agent(load_text(forced, source="custode.yaml"), listen=f"127.0.0.1:{free_port()}")
    agent.start()
    try:
        assert agent.service("local_windows").executors() == {EXECUTOR: 1}
        assert wait_until(lambda: agent.cache.outcome(COLLECTOR) is not None, 30), "the probe ran at start"
        status, body = http_get(f"http://127.0.0.1:{agent.port}/metrics")
        opened = {incident.key for incident in agent.incidents.open_incidents()}
    finally:
        agent.stop()
    text = body.decode()
    assert status == 200 and f'custode_collector_success{{collector="{COLLECTOR}"}} 1.0' in text
    assert 'custode_antivirus_enabled{host="srv-crema",product="Microsoft Defender",role="fileserver",' in text
    assert f"crema/antivirus/{HOST}:antivirus" in opened  # (this machine's own disks may open others)


def test_in_the_agent_a_hanging_probe_holds_up_no_other_job(tmp_path, fake_powershell, pin_clock):
    fake_powershell("hang")
    pin_clock(NOW)
    forced = CONFIG.replace("{timeout: 30s}", "{enabled: true, timeout: 8s}")
    agent = Agent(load_text(forced, source="custode.yaml"), listen=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    agent.start()
    try:
        assert wait_until(lambda: agent.cache.outcome("cpu") is not None, 8), "the collectors ran meanwhile"
        if time.monotonic() - started < 7:  # a loaded machine may take longer: then only the end is checked
            assert agent.cache.outcome(COLLECTOR) is None, "the probe is still hanging"
        assert wait_until(lambda: agent.cache.outcome(COLLECTOR) is not None, 30)
        status, body = http_get(f"http://127.0.0.1:{agent.port}/metrics")
    finally:
        agent.stop()
    assert status == 200 and f'custode_collector_success{{collector="{COLLECTOR}"}} 0.0' in body.decode()
    assert 'custode_collector_success{collector="cpu"} 1.0' in body.decode()


# -- a run that fails -----------------------------------------------------------------------------


def test_a_hanging_probe_times_out_and_reports_collector_success_0(tmp_path, fake_powershell):
    record = fake_powershell("hang")
    ctx = context(tmp_path, CONFIG.replace("{timeout: 30s}", "{timeout: 0.5s}"))
    clock = Clock(NOW)
    _, job = service_for(ctx, clock)

    started = time.monotonic()
    outcome = job.run()
    assert time.monotonic() - started < 10  # the transport killed it at the timeout

    assert not outcome.success and outcome.consecutive_failures == 1
    assert outcome.error.startswith("the Windows probe did not finish within 0.5 s (agent.windows_probe.timeout)")
    assert "Windows Update search" in outcome.error
    assert f'custode_collector_success{{collector="{COLLECTOR}"}} 0.0' in exposition(ctx)
    assert ctx.cache.families(COLLECTOR) is None  # no series shown stale
    assert ctx.incidents.open_incidents() == []  # nothing was measured, so nothing judged
    row = store.day_row(ctx.state, HOST, TODAY)
    assert row is not None and row.polls == 0
    assert list(row.data["errors"].values()) == [1]
    assert next(iter(row.data["errors"])).startswith(f"{COLLECTOR}: the Windows probe did not finish")

    # the slow search is not tried again at once; three failures in a row are the collectors incident
    for step in (1, 2):
        clock.now = NOW + step * 900
        assert not job.run().success
    assert [run["stdin"] for run in runs(record)] == [sent(probe_command(include_updates=searched))
                                                      for searched in (True, False, False)]
    apply(ctx.incidents, HostChecks(ctx.loaded.model.checks, "crema", HOST).evaluate(ctx.cache), now=clock.now)
    (incident,) = ctx.incidents.open_incidents()
    assert incident.key == f"crema/collectors/{HOST}:collector/{COLLECTOR}"
    (status,) = ctx.state.collector_statuses()
    assert (status["success"], status["consecutive_failures"]) == (0, 3)


def test_output_that_is_not_the_probe_fails_the_run_with_the_parser_words(tmp_path, fake_powershell):
    fake_powershell("banner")
    ctx = context(tmp_path)
    _, job = service_for(ctx, Clock(NOW))

    outcome = job.run()

    assert not outcome.success
    assert outcome.error.startswith("this is not the output of Custode's Windows probe")
    assert outcome.error.endswith("(powershell.exe ended with exit code 1: Benvenuto su SRV-CREMA)")


def test_no_powershell_fails_the_run_saying_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("SystemRoot", raising=False)
    ctx = context(tmp_path)
    _, job = service_for(ctx, Clock(NOW))

    outcome = job.run()

    assert not outcome.success and outcome.error.startswith("cannot start powershell.exe")


def test_the_local_transport_runs_any_powershell_command_the_same_way(tmp_path, fake_powershell):
    record = fake_powershell("banner")
    transport = LocalTransport("srv-crema", shell="powershell")
    command = "Write-Output 'Perù è Forlì'\n$x = @'\nstill the script\n'@"

    result = transport.run(command, 10)

    assert (result.exit_code, result.stdout) == (1, "Benvenuto su SRV-CREMA\n")
    (run,) = runs(record)
    assert run["stdin"] == sent(command)  # as over WinRM: printable ASCII, whatever the code page
    assert powershell_executable() == "powershell.exe"  # no %SystemRoot% here: found on PATH, the fake
    assert LocalTransport("srv-crema").shell == "posix"  # this machine's own shell is untouched
