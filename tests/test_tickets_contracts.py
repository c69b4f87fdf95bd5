"""Tickets on each comune's own contract: level, priority and due times; profiles; events set aside.

The backend is the webhook one against tests/webhook_receiver.py (a real HTTP
server on 127.0.0.1); the clock is the test's. The tenants' service levels are
the shipped config/examples/contracts.yaml ones, so the example and the
behaviour cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml
from conftest import ManualClock

from custode.agent.calendar import ROME
from custode.agent.config_loader import load_text
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.state import State
from custode.agent.tickets import sla
from custode.agent.tickets.planner import PLANNING_CHECK
from custode.agent.tickets.service import TicketService
from custode.agent.tickets.store import set_aside_rows

CONTRACTS = Path(__file__).resolve().parent.parent / "config" / "examples" / "contracts.yaml"
# Friday 2026-12-04 16:00 Europe/Rome.
T0 = datetime(2026, 12, 4, 16, 0, tzinfo=ROME).timestamp()




def make(tmp_path, receiver, change=None):
    data = yaml.safe_load(CONTRACTS.read_text(encoding="utf-8"))
    data["tickets"] = {"default_backend": "hook", "followup_interval": "1h", "flap_window": "30m",
                       "backends": {"hook": {"type": "webhook", "url": receiver.url,
                                             "secret": {"env": "CUSTODE_TEST_WEBHOOK"}, "timeout": "2s"}}}
    if change:
        change(data)
    config = load_text(yaml.safe_dump(data, allow_unicode=True)).model
    clock = ManualClock(T0)
    state = State(tmp_path / "state.db")
    incidents = Incidents(state, clock=clock)
    return config, clock, incidents, TicketService(config, state, clock=clock, publish=lambda f: None), state


def fail(incidents, clock, tenant, check="filesystem", target="srv1:/srv", severity="critical"):
    incidents.observe(CheckResult(tenant, check, target, severity, f"{check} failed on {target}"),
                      occurrence=True, now=clock.now)


def created(receiver):
    return [e.payload for e in receiver.events if e.payload["event"] == "create"]


def test_a_ticket_gets_its_contract_level_priority_and_due_times(tmp_path, receiver):
    config, clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock, "pontesanpietro")          # critical -> bloccante (Saturday counts)
    fail(incidents, clock, "vaiano", severity="warning")  # warning -> media (Saturday does not count)
    service.step()
    by_tenant = {c["tenant"]["id"] if isinstance(c["tenant"], dict) else c["tenant"]: c for c in created(receiver)}
    bloccante = by_tenant["pontesanpietro"]
    # Fri 16:00-17:30 (1.5 h of 4); Sat 5 08:30 + 2.5 h
    assert bloccante["priority"] == "high" and bloccante["due_at"].startswith("2026-12-05T11:00:00")
    assert "Livello: Bloccante (almeno metà degli utenti) (priorità alta)" in bloccante["text"]
    assert "4 ore lavorative" in bloccante["text"]
    media = by_tenant["vaiano"]
    # 12 wh: Fri 16:00-18:00 2 h (10); Mon 7 8 h (2); Tue 8 Immacolata; Wed 9 08:30 + 2 h
    assert media["priority"] == "medium" and media["due_at"].startswith("2026-12-09T10:30:00")
    rows = {r["tenant"]: r for r in state.query("SELECT tenant, level, due_at FROM tickets")}
    assert rows["vaiano"]["level"] == "media" and rows["pontesanpietro"]["level"] == "bloccante"


def test_restore_and_resolve_targets_are_kept_with_the_ticket(tmp_path, receiver):
    config, clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock, "capannori", check="reachability", target="srv1:host")   # -> livello4
    fail(incidents, clock, "sassuolo")                                               # critical -> bloccante
    service.step()
    rows = {r["tenant"]: r for r in state.query("SELECT * FROM tickets")}
    capannori, sassuolo = rows["capannori"], rows["sassuolo"]
    assert capannori["level"] == "livello4" and capannori["due_at"] is None
    # restore 2 wh: Fri 16:00-18:00 -> 18:00 the same day
    assert datetime.fromtimestamp(capannori["restore_due_at"], ROME).isoformat() == "2026-12-04T18:00:00+01:00"
    # resolve 1 working day: Sat 5 (Sassuolo's Saturday counts) at 16:00 is after 12:30: due 12:30
    assert datetime.fromtimestamp(sassuolo["resolve_due_at"], ROME).isoformat() == "2026-12-05T12:30:00+01:00"
    texts = {c["key"].split("/")[0]: c["text"] for c in created(receiver)}
    assert "Servizio da ripristinare entro" in texts["capannori"] and "Nessuna scadenza di presa in carico" in \
        texts["capannori"]
    assert "Da risolvere entro" in texts["sassuolo"] and "1 giorno lavorativo" in texts["sassuolo"]


def test_a_severity_change_moves_the_ticket_to_another_level(tmp_path, receiver):
    config, clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock, "vaiano", severity="warning")
    service.step()
    clock.now = T0 + 600
    fail(incidents, clock, "vaiano", severity="critical")
    service.step()
    [change] = [e.payload for e in receiver.events if e.payload["event"] == "priority"]
    assert change["priority"] == "high"
    [row] = state.query("SELECT level, due_at FROM tickets")
    expected = sla.due(config, "vaiano", "alta", "take_charge", datetime.fromtimestamp(T0, ROME))
    assert row["level"] == "alta" and row["due_at"] == expected.timestamp()


def test_a_comune_without_the_service_gets_no_ticket_for_it(tmp_path, receiver):
    def basic(data):
        data["tenants"]["vaiano"]["profile"] = "BASIC"   # monitoring, backup control, alerts: no restore tests

    config, clock, incidents, service, state = make(tmp_path, receiver, basic)
    fail(incidents, clock, "vaiano", check="restore_test", target="sql-nightly")
    fail(incidents, clock, "vaiano", check="backup", target="sql-nightly")
    service.step()
    assert [c["key"] for c in created(receiver)] == ["vaiano/backup/sql-nightly"]


def test_an_event_that_cannot_be_planned_is_set_aside_and_the_others_go_on(tmp_path, receiver):
    config, clock, incidents, service, state = make(tmp_path, receiver)
    # an incident recorded for a comune that has since been removed from the config: its calendar is unknown
    fail(incidents, clock, "milano")
    fail(incidents, clock, "cremona")
    service.step()
    keys = [c["key"] for c in created(receiver)]
    assert "cremona/filesystem/srv1:/srv" in keys and not any(k.startswith("milano/") for k in keys)
    [aside] = set_aside_rows(state)
    assert aside["incident_key"] == "milano/filesystem/srv1:/srv" and "'milano' is not defined" in aside["reason"]
    [planning] = [i for i in incidents.open_incidents() if i.check == PLANNING_CHECK]
    assert planning.tenant == "provider", "the provider's incident: the fix is in its config"
    assert planning.target == "milano/filesystem/srv1:/srv" and "set aside" in planning.summary
    service.step()
    assert len(set_aside_rows(state)) == 1, "the planning incident itself is planned (the provider files none)"


def test_set_aside_events_are_listed_and_planned_again_once_the_config_is_fixed(tmp_path, receiver, capsys):
    from custode.agent.tickets.planner import TicketPlanner

    config, clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock, "milano")
    service.step()
    assert len(set_aside_rows(state)) == 1

    def add_milano(data):
        data["tenants"]["milano"] = {"name": "Comune di Milano"}

    fixed, *_ = make(tmp_path / "fixed", receiver, add_milano)
    assert TicketPlanner(fixed, state, clock).retry_set_aside() == (1, 0)
    assert set_aside_rows(state) == []
    fixed_service = TicketService(fixed, state, clock=clock, publish=lambda f: None)
    fixed_service.step()
    assert "milano/filesystem/srv1:/srv" in [c["key"] for c in created(receiver)]


def _solved_vaiano_ticket(tmp_path, receiver):
    """Vaiano (warranty 10 working days): a failure Fri 4 Dec 16:00, recovered 16:10, solved after the flap window."""
    config, clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock, "vaiano")
    service.step()
    clock.now = T0 + 600
    incidents.observe(CheckResult("vaiano", "filesystem", "srv1:/srv", "ok", "space freed"), now=clock.now)
    service.step()
    clock.now = T0 + 600 + 1801
    service.step()
    assert [e.payload["event"] for e in receiver.events] == ["create", "comment", "solve"]
    assert state.query("SELECT state FROM tickets")[0][0] == "done"
    return clock, incidents, service, state


@pytest.mark.parametrize("back_at, reopened", [
    # 10 working days from Fri 4 Dec 16:10 on the blocking level's calendar (Saturdays count, ENTERPRISE has
    # Saturday on call; Tue 8 Dec Immacolata does not): Sat 5, Mon 7, Wed 9, Thu 10, Fri 11, Sat 12, Mon 14,
    # Tue 15, Wed 16, Thu 17 -> Thu 17 Dec 16:10
    pytest.param(datetime(2026, 12, 17, 16, 0, tzinfo=ROME), True, id="within-warranty"),
    pytest.param(datetime(2026, 12, 17, 16, 20, tzinfo=ROME), False, id="after-warranty"),
])
def test_the_same_failure_within_the_warranty_reopens_the_ticket(tmp_path, receiver, back_at, reopened):
    clock, incidents, service, state = _solved_vaiano_ticket(tmp_path, receiver)
    clock.now = back_at.timestamp()
    fail(incidents, clock, "vaiano")
    service.step()
    kinds = [e.payload["event"] for e in receiver.events][3:]
    rows = state.query("SELECT id, state, reopened FROM tickets ORDER BY id")
    if reopened:
        assert kinds == ["reopen"]
        reopen = receiver.events[3].payload
        assert "garanzia di 10 giorni lavorativi" in reopen["text"] and "riaperto" in reopen["text"]
        assert [(r["state"], r["reopened"]) for r in rows] == [("open", 1)]
    else:
        assert kinds == ["create"]
        assert [r["state"] for r in rows] == ["done", "open"]


def test_a_reopened_ticket_recovers_and_is_solved_again(tmp_path, receiver):
    clock, incidents, service, state = _solved_vaiano_ticket(tmp_path, receiver)
    clock.now = datetime(2026, 12, 9, 10, 0, tzinfo=ROME).timestamp()
    fail(incidents, clock, "vaiano")
    service.step()
    clock.now += 600
    incidents.observe(CheckResult("vaiano", "filesystem", "srv1:/srv", "ok", "space freed"), now=clock.now)
    service.step()
    clock.now += 1801
    service.step()
    assert [e.payload["event"] for e in receiver.events][3:] == ["reopen", "comment", "solve"]
    assert len({e.payload["key"] for e in receiver.events}) == 1


def test_the_outbox_serves_the_higher_queue_priority_first(tmp_path, receiver):
    """After an outage the backlog reaches Vaiano (ENTERPRISE, queue priority 3) before Cremona (no profile: 0)."""
    config, clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock, "cremona")
    clock.now += 60
    fail(incidents, clock, "vaiano")
    service.plan()
    deliverer = service.deliverers["hook"]
    order = [state.query("SELECT tenant FROM tickets WHERE id = ?", (op.ticket_id,))[0][0] for op in deliverer.due()]
    assert order == ["vaiano", "cremona"]
