"""Farm mode over WinRM: four Windows servers (WS-Management doubles answering with captured probe output)
polled by the real poller, judged and published like any host.

The doubles stand for: a Server 2019 with a full C: drive, a Server 2022 with
Microsoft Defender turned off, a Server 2016 with 37 pending updates and the
last install months ago, and a Windows Server 2008 R2 (PowerShell 2.0).
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from winrm_server import WinrmServer

from custode.agent.config_loader import load_text
from custode.agent.farm.probes.windows import COMMAND_HEADER
from custode.agent.farm.service import FarmService, new_poller
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache, samples
from custode.agent.state import State

# Under Debian 12's libfaketime this module's WinRM polls crash the interpreter
# (SIGSEGV inside xmltodict, in a poller thread) in the full shifted-clock run,
# not alone; its dates come from the double, so the real clock loses nothing.
pytestmark = pytest.mark.real_clock

FIXTURES = Path(__file__).parent / "data" / "farm" / "windows"
HOSTS = {"fs-crema": "server2019-c-full.json", "dc-cremona": "server2022-defender-off.json",
         "app-capannori": "server2016-37-updates.json", "old-forli": "server2008r2.json"}


PROBED_AT = datetime(2026, 11, 20, 9, 15, 6, tzinfo=timezone.utc)  # the probe outputs' own "time"


@pytest.fixture
def farm(tmp_path, monkeypatch, pin_clock):
    pin_clock(PROBED_AT)  # signature and update ages are judged when the outputs were captured
    with contextlib.ExitStack() as stack:
        doubles = {}
        lines = ["agent: {tenant: provider}", "tenants:", "  provider: {name: Consorzio}",
                 "  crema: {name: Crema}", "  cremona: {name: Cremona}", "  capannori: {name: Capannori}",
                 "  forli: {name: Forlì}", "hosts:"]
        for name, fixture in HOSTS.items():
            double = doubles[name] = stack.enter_context(WinrmServer(tls=True, chunk_size=2048))
            output = (FIXTURES / fixture).read_text(encoding="utf-8").replace("\n", "\r\n")
            double.on(re.escape(COMMAND_HEADER), (0, output, ""))
            variable = f"CUSTODE_TEST_WINRM_{name.upper().replace('-', '_')}"
            monkeypatch.setenv(variable, double.password)
            tenant = name.split("-")[1]
            lines.append(f"  {name}: {{address: 127.0.0.1, transport: winrm, tenant: {tenant}, "
                         f"labels: {{role: server}}, winrm: {{user: {double.user}, password: {{env: {variable}}}, "
                         f"port: {double.port}, auth: basic, ca_file: '{double.ca_file}', connect_timeout: 5s}}}}")
        loaded = load_text("\n".join(lines) + "\n")
        state = State(tmp_path / "state.db")
        service = FarmService(loaded.model, state, Incidents(state), MetricCache(), poller=new_poller(loaded.model))
        try:
            yield service, doubles
        finally:
            service.close()
            state.close()


def test_windows_servers_are_judged_and_published(farm) -> None:
    farm, _ = farm
    results = farm.poller.poll()
    assert {r.target.name: r.up for r in results} == dict.fromkeys(HOSTS, True), [r.error for r in results]
    farm.handle(results)
    opened = {(i.tenant, i.check, i.target): i for i in farm.incidents.open_incidents()}
    assert opened[("crema", "filesystem", "fs-crema:C:")].severity == "critical"
    assert opened[("cremona", "antivirus", "dc-cremona:antivirus")].severity == "critical"
    assert "Microsoft Defender is disabled" in opened[("cremona", "antivirus", "dc-cremona:antivirus")].summary
    updates = opened[("capannori", "os_updates", "app-capannori:updates")]
    assert updates.severity == "critical" and "37 pending (5 security)" in updates.summary
    support = opened[("forli", "os_support", "old-forli:os")]
    assert "2008 R2" in support.summary and support.severity == "warning"
    assert ("crema", "antivirus", "fs-crema:antivirus") not in opened  # Defender on there

    families = farm.families()
    free = {labels["host"]: value for labels, value in samples(families, "windows_logical_disk_free_bytes")
            if labels["volume"] == "C:"}
    size = {labels["host"]: value for labels, value in samples(families, "windows_logical_disk_size_bytes")
            if labels["volume"] == "C:"}
    assert free["fs-crema"] / size["fs-crema"] < 0.01
    pending = {labels["host"]: value for labels, value in samples(families, "custode_os_updates_pending")}
    assert pending["app-capannori"] == 37
    enabled = {labels["host"]: value for labels, value in samples(families, "custode_antivirus_enabled")}
    assert enabled["dc-cremona"] == 0.0 and enabled["fs-crema"] == 1.0
    excluded = {labels["host"]: value for labels, value in samples(families, "custode_os_contract_excluded")}
    assert excluded == {"fs-crema": 0.0, "dc-cremona": 0.0, "app-capannori": 0.0, "old-forli": 1.0}
    info = [labels for labels, _ in samples(families, "windows_os_info") if labels["host"] == "old-forli"]
    assert info[0]["product"].startswith("Microsoft Windows Server 2008 R2") and info[0]["role"] == "server"


def test_the_shell_is_kept_between_polls_and_windows_update_is_asked_once(farm) -> None:
    farm, doubles = farm
    first = farm.poller.poll()
    second = farm.poller.poll()
    assert all(r.up for r in first + second), [r.error for r in first + second]
    assert [r.included_updates for r in first] == [True] * 4 and [r.included_updates for r in second] == [False] * 4
    for double in doubles.values():
        assert double.actions.count("Create") == 1, double.actions  # one remote shell for both polls
        assert "$U=1" in double.scripts[0] and "$U=0" in double.scripts[1]
    # the quick poll carries the Windows Update figures of the full one
    assert {r.target.name: r.snapshot.updates for r in second} == {r.target.name: r.snapshot.updates for r in first}
