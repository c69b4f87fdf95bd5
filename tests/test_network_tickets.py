"""Network incidents on each comune's own contract: a probe and a device take the same ticket path as a server.

Sassuolo's contract wants its platform up over HTTPS 24 hours a day, and its
example maps the ``probe`` check to the ``bloccante`` level; Ponte San
Pietro's core switch losing its uplink is critical, so ``bloccante`` there
too. The tenants are the shipped config/examples/contracts.yaml ones; the
platform is a real HTTPS server on 127.0.0.1 answering 500, the helpdesk the
webhook double, the clock the test's.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from conftest import ManualClock
from probe_servers import PortalServer

from custode.agent.blackbox.service import ProbeService, probe_now
from custode.agent.calendar import ROME
from custode.agent.config_loader import load_text
from custode.agent.farm.poller import PollResult
from custode.agent.farm.service import FarmService
from custode.agent.incidents import Incidents
from custode.agent.snmp.device import DeviceSnapshot, Interface, SystemInfo
from custode.agent.state import State
from custode.agent.tickets.service import TicketService

CONTRACTS = Path(__file__).resolve().parent.parent / "config" / "examples" / "contracts.yaml"
T0 = datetime(2026, 12, 4, 16, 0, tzinfo=ROME).timestamp()  # Friday 16:00


def _config(receiver, portal: PortalServer):
    data = yaml.safe_load(CONTRACTS.read_text(encoding="utf-8"))
    data["tickets"] = {"default_backend": "hook", "backends": {"hook": {
        "type": "webhook", "url": receiver.url, "secret": {"env": "CUSTODE_TEST_WEBHOOK"}, "timeout": "2s"}}}
    data["probes"] = {"failures": 2, "targets": {"piattaforma-sanzioni": {
        "tenant": "sassuolo", "url": portal.url("/error"), "http": {"ca_file": str(portal.ca_file)}}}}
    data["hosts"] = {"sw-core": {"address": "10.30.0.2", "transport": "snmp", "tenant": "pontesanpietro",
                                 "snmp": {"community": {"env": "CUSTODE_TEST_COMMUNITY"},
                                          "watch_interfaces": ["uplink0"]}}}
    return load_text(yaml.safe_dump(data, allow_unicode=True)).model


def test_a_platform_down_and_an_uplink_down_become_tickets_on_their_contract_levels(tmp_path, receiver) -> None:
    with PortalServer(tmp_path / "portal", days=90) as portal:
        config = _config(receiver, portal)
        clock = ManualClock(T0)
        state = State(tmp_path / "state.db")
        incidents = Incidents(state, clock=clock)
        probes = ProbeService(config, state, incidents, clock=clock)
        farm = FarmService(config, state, incidents, clock=clock)
        tickets = TicketService(config, state, clock=clock, publish=lambda f: None)
        try:
            for _ in range(2):  # down after 2 failed probes in a row
                probes.handle(probe_now(probes.targets, workers=1, clock=clock))
                clock.now += 60
            [switch] = farm.targets
            uplink = Interface(48, name="uplink0", descr="GigabitEthernet1/0/48",
                               values={"ifAdminStatus": 1, "ifOperStatus": 2})
            farm.handle([PollResult(switch, clock.now, 0.05, None, device=DeviceSnapshot(
                SystemInfo(descr="Cisco IOS", uptime_ticks=8_640_000), interfaces=(uplink,)))])
            tickets.step()
        finally:
            state.close()
    created = {e.payload["key"]: e.payload for e in receiver.events if e.payload["event"] == "create"}
    platform = created["sassuolo/probe/piattaforma-sanzioni"]
    assert platform["priority"] == "high"
    assert "status 500 not in 200-299" in platform["text"]
    assert "Bloccante (sistemi critici)" in platform["text"]
    switch_ticket = created["pontesanpietro/interface/sw-core:if/uplink0"]
    assert switch_ticket["priority"] == "high"
    assert "interface uplink0 (GigabitEthernet1/0/48)" not in switch_ticket["text"]  # alias only when given
    assert "interface uplink0 on sw-core is down while enabled" in switch_ticket["text"]
    rows = {r["tenant"]: r["level"] for r in State(tmp_path / "state.db").query("SELECT tenant, level FROM tickets")}
    assert rows == {"sassuolo": "bloccante", "pontesanpietro": "bloccante"}
