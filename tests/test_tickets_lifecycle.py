"""The ticket lifecycle end to end: incidents → planner → outbox → a real HTTP receiver.

The backend is the webhook one against tests/webhook_receiver.py (a real
HTTP server on 127.0.0.1), so every step crosses the wire; the clock is the
test's, so follow-up intervals, flap windows and backoff are checked exactly.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import WEBHOOK_SECRET, ManualClock

from custode.agent.calendar import ROME
from custode.agent.config_loader import load_text
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.state import State
from custode.agent.tickets.service import TicketService

# Monday 2026-11-23 09:00 Europe/Rome: inside office hours.
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=ROME).timestamp()




def make(tmp_path, receiver, extra: str = ""):
    config = load_text(f"""
agent: {{tenant: provider}}
tenants:
  crema:
    name: Comune di Crema
    calendar: {{patron: {{day: "01-25", name: San Pantaleone}}}}
  provider:
    name: Provider
    tickets: {{backend: none}}
tickets:
  default_backend: hook
  backends:
    hook: {{type: webhook, url: "{receiver.url}", secret: {{env: CUSTODE_TEST_WEBHOOK}}, timeout: 2s}}
  followup_interval: 1h
  flap_window: 30m
  retry: {{first: 10s, max: 5m}}
  check_priorities: {{backup_missing: high}}
{extra}
""").model
    clock = ManualClock(T0)
    state = State(tmp_path / "state.db")
    incidents = Incidents(state, clock=clock)
    service = TicketService(config, state, clock=clock, publish=lambda families: None)
    return clock, incidents, service, state


def fail(incidents, clock, severity="critical", check="backup_missing", target="srv1:job/nightly",
         tenant="crema", summary="backup report missing"):
    incidents.observe(CheckResult(tenant, check, target, severity, summary), occurrence=True, now=clock.now)


def recover(incidents, clock, check="backup_missing", target="srv1:job/nightly", tenant="crema"):
    incidents.observe(CheckResult(tenant, check, target, "ok", "backup succeeded"), now=clock.now)


def events(receiver, kind=None):
    return [e.payload for e in receiver.events if kind is None or e.payload["event"] == kind]


def test_first_failure_opens_one_italian_ticket_with_priority_and_due_time(tmp_path, receiver):
    clock, incidents, service, _ = make(tmp_path, receiver)
    fail(incidents, clock)
    service.step()
    [create] = events(receiver)
    assert create["event"] == "create" and create["key"] == "crema/backup_missing/srv1:job/nightly"
    assert create["priority"] == "high"  # check_priorities wins over the severity
    # 8 working hours from Monday 09:00: 3.5 h to 12:30, 4 h to 18:00, 0.5 h Tuesday → 09:00.
    assert create["due_at"].startswith("2026-11-24T09:00:00")
    assert "Comune di Crema" in create["text"] and "srv1" in create["text"]
    assert "priorità" in create["text"].lower()


def test_repeats_are_rate_limited_and_counted(tmp_path, receiver):
    clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock)
    service.step()
    for minutes in (10, 20, 30):
        clock.now = T0 + minutes * 60
        fail(incidents, clock)
        service.step()
    assert len(events(receiver, "comment")) == 0, "repeats inside the interval wait"
    assert state.query("SELECT repeats_pending FROM tickets")[0][0] == 3
    clock.now = T0 + 3600 + 60
    fail(incidents, clock)
    service.step()
    [comment] = events(receiver, "comment")
    assert "4" in comment["text"], "the follow-up counts the repeats in between"
    clock.now = T0 + 3600 + 120
    fail(incidents, clock)
    service.step()
    assert len(events(receiver, "comment")) == 1


def test_held_back_repeats_are_flushed_when_the_interval_passes(tmp_path, receiver):
    clock, incidents, service, _ = make(tmp_path, receiver)
    fail(incidents, clock)
    service.step()
    clock.now = T0 + 600
    fail(incidents, clock)
    service.step()
    clock.now = T0 + 3700  # no new repeat, but the one held back is due
    service.step()
    assert len(events(receiver, "comment")) == 1


def test_severity_change_updates_priority_and_due_time(tmp_path, receiver):
    clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock, severity="warning", check="disk_space", target="srv1:/srv")
    service.step()
    assert events(receiver, "create")[0]["priority"] == "medium"
    clock.now = T0 + 300
    fail(incidents, clock, severity="critical", check="disk_space", target="srv1:/srv")
    service.step()
    [change] = events(receiver, "priority")
    assert change["priority"] == "high"
    due = state.query("SELECT due_at FROM tickets")[0][0]
    assert datetime.fromtimestamp(due, ROME).isoformat().startswith("2026-11-24T09:00")


def test_recovery_writes_a_note_then_solves_after_the_flap_window(tmp_path, receiver):
    clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock)
    service.step()
    clock.now = T0 + 600
    recover(incidents, clock)
    service.step()
    assert len(events(receiver, "comment")) == 1 and not events(receiver, "solve")
    clock.now = T0 + 600 + 1801
    service.step()
    assert len(events(receiver, "solve")) == 1
    assert state.query("SELECT state FROM tickets")[0][0] == "done"


def test_flapping_check_keeps_one_ticket(tmp_path, receiver):
    clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock)
    service.step()
    for _cycle in range(3):  # recover and fail again within the flap window, three times
        clock.now += 300
        recover(incidents, clock)
        service.step()
        clock.now += 300
        fail(incidents, clock)
        service.step()
    assert len(events(receiver, "create")) == 1
    assert not events(receiver, "solve"), "each return withdrew the pending solve"
    assert state.query("SELECT flaps, state FROM tickets")[0][:] == (3, "open")
    clock.now += 300
    recover(incidents, clock)
    service.step()
    clock.now += 1801
    service.step()
    assert len(events(receiver, "solve")) == 1
    clock.now += 60  # after the window, a new failure is a new ticket
    fail(incidents, clock)
    service.step()
    assert len(events(receiver, "create")) == 2


def test_ticket_closed_by_a_person_while_failing_gets_a_new_ticket_naming_it(tmp_path, receiver):
    clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock)
    service.step()
    first_ref = events(receiver, "create")[0]["delivery_id"]
    ref = state.query("SELECT ref FROM tickets")[0][0]
    receiver.gone.add(ref)
    clock.now = T0 + 3700
    fail(incidents, clock)
    service.step()
    creates = events(receiver, "create")
    assert len(creates) == 2 and creates[1]["delivery_id"] != first_ref
    assert creates[1]["previous_ref"] == ref
    assert ref in creates[1]["text"]
    rows = state.query("SELECT state, previous_id FROM tickets ORDER BY id")
    assert [r["state"] for r in rows] == ["closed_remote", "open"] and rows[1]["previous_id"] == 1


def test_transient_failures_back_off_and_honour_retry_after(tmp_path, receiver):
    clock, incidents, service, state = make(tmp_path, receiver)
    receiver.fail_next(1, status=429, retry_after="120")
    fail(incidents, clock)
    service.step()
    op = state.query("SELECT * FROM ticket_outbox")[0]
    assert op["state"] == "pending" and op["attempts"] == 1 and op["next_attempt_at"] == pytest.approx(T0 + 120)
    receiver.fail_next(1, status=503)
    clock.now = T0 + 121
    service.step()
    op = state.query("SELECT * FROM ticket_outbox")[0]
    assert op["attempts"] == 2 and 16 <= op["next_attempt_at"] - clock.now <= 24  # 20 s ± 20 %
    clock.now = op["next_attempt_at"] + 1
    service.step()
    assert len(events(receiver, "create")) == 1
    assert state.query("SELECT state FROM ticket_outbox")[0][0] == "done"


def test_refused_operation_is_kept_visible_and_can_be_retried(tmp_path, receiver, monkeypatch, capsys):
    from custode.agent.cli import main

    clock, incidents, service, state = make(tmp_path, receiver)
    monkeypatch.setenv("CUSTODE_TEST_WEBHOOK", "wrong-secret")
    fail(incidents, clock)
    service.step()
    op = state.query("SELECT * FROM ticket_outbox")[0]
    assert op["state"] == "dead" and "401" in op["last_error"]
    from custode.agent.tickets.metrics import ticket_families

    families = {f.name: f for f in ticket_families(state, ["hook"], clock.now)}
    assert families["custode_ticket_outbox_undeliverable"].samples[0].value == 1
    config = tmp_path / "c.yaml"
    config.write_text(f"state: {{path: {tmp_path / 'state.db'}}}\n")
    assert main(["tickets", "outbox", "--config", str(config)]) == 1
    shown = capsys.readouterr()
    assert "UNDELIVERABLE" in shown.out and "401" in shown.out and "tickets retry" in shown.err
    monkeypatch.setenv("CUSTODE_TEST_WEBHOOK", WEBHOOK_SECRET)
    service.deliverers["hook"].backend.close()  # a rotated secret is read again
    assert main(["tickets", "retry", "--undeliverable", "--config", str(config)]) == 0
    service.step()
    assert len(events(receiver, "create")) == 1
    assert main(["tickets", "outbox", "--config", str(config)]) == 0


def test_tenant_without_tickets_gets_none_and_first_run_adopts_open_incidents(tmp_path, receiver):
    clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock, tenant="provider")  # backend: none
    fail(incidents, clock, check="disk_space", target="srv2:/")  # before the planner's first run
    service.step()
    creates = events(receiver, "create")
    assert [c["key"] for c in creates] == ["crema/disk_space/srv2:/"]


def test_metrics_export_due_time_and_breaches(tmp_path, receiver):
    from custode.agent.tickets.metrics import ticket_families

    clock, incidents, service, state = make(tmp_path, receiver)
    fail(incidents, clock)
    service.step()
    families = {f.name: f for f in ticket_families(state, ["hook"], clock.now)}
    [due] = families["custode_ticket_sla_due_timestamp_seconds"].samples
    assert due.value == datetime(2026, 11, 24, 9, 0, tzinfo=ROME).timestamp()
    assert due.labels["tenant"] == "crema" and due.labels["priority"] == "high"
    clock.now = due.value + 1  # never taken in charge (a webhook cannot tell): breached
    service.step()
    families = {f.name: f for f in ticket_families(state, ["hook"], clock.now)}
    breaches = {(s.labels["priority"], s.labels["target"]): s.value
                for s in families["custode_ticket_sla_breaches"].samples if s.name.endswith("_total")}
    assert breaches[("high", "take_charge")] == 1 and breaches[("high", "resolve")] == 0
