"""Issue 7's "done when": a missing backup at a comune → one Italian ticket with the right priority and
due time, follow-ups while it persists, a resolution note when the next backup succeeds.

The whole chain is real but for the helpdesk: the backup monitor judges the
expected job from the reports it is given, the incident model opens and
resolves the incident, the planner and the delivery loop file it through the
GLPI and Zendesk backends into their HTTP fakes (tests/glpi_fake.py,
tests/zendesk_fake.py).
"""

from __future__ import annotations

import html
from datetime import datetime

import pytest
from conftest import ManualClock
from glpi_fake import FakeGlpi
from mailfactory import SCRIPT_RULE, script_report
from test_backup_jobs import NIGHTLY, ListSource, at
from zendesk_fake import DEFAULT_EMAIL, DEFAULT_TOKEN, ZendeskFake

from custode.agent.backups.config import BackupsSection
from custode.agent.backups.jobs import ROME
from custode.agent.backups.service import BackupMonitor
from custode.agent.config_loader import load_text
from custode.agent.incidents import Incidents
from custode.agent.state import State
from custode.agent.tickets.service import TicketService


def _backend_yaml(kind: str, url: str) -> str:
    if kind == "glpi":
        return (f'{{type: glpi, url: "{url}", user_token: {{env: T_GLPI_USER}}, '
                f'app_token: {{env: T_GLPI_APP}}, timeout: 3s}}')
    return f'{{type: zendesk, url: "{url}", email: {DEFAULT_EMAIL}, token: {{env: T_ZD_TOKEN}}, timeout: 3s}}'


@pytest.fixture(params=["glpi", "zendesk"])
def helpdesk(request, monkeypatch):
    monkeypatch.setenv("T_GLPI_USER", "user-token-1")
    monkeypatch.setenv("T_GLPI_APP", "app-token-1")
    monkeypatch.setenv("T_ZD_TOKEN", DEFAULT_TOKEN)
    fake = FakeGlpi(user_token="user-token-1", app_token="app-token-1") if request.param == "glpi" else ZendeskFake()
    with fake:
        yield request.param, fake


def _texts(kind: str, fake) -> tuple[dict, list[str], list[str]]:
    """(the ticket, its follow-ups, its solutions) as plain text, whatever the helpdesk."""
    [ticket] = fake.tickets()
    if kind == "glpi":
        followups = [html.unescape(f["content"]) for f in fake.followups(ticket["id"])]
        solutions = [html.unescape(s["content"]) for s in fake.solutions(ticket["id"])]
        return ticket, [html.unescape(ticket["content"])] + followups, solutions
    comments = [c["body"] for c in fake.comments(ticket["id"])]
    return ticket, comments, comments[-1:] if ticket["status"] == "solved" else []


def test_missing_backup_files_one_italian_ticket_then_follow_ups_then_the_resolution(tmp_path, helpdesk):
    kind, fake = helpdesk
    config = load_text(f"""
agent: {{tenant: crema}}
tenants:
  crema: {{name: Comune di Crema, calendar: {{patron: {{day: "01-25", name: San Pantaleone}}}}}}
tickets:
  default_backend: desk
  backends: {{desk: {_backend_yaml(kind, fake.url)}}}
  check_priorities: {{backup: high}}
""").model
    clock = ManualClock(at("2026-11-20 04:01"))  # Friday: last night's 22:00 run never reported (grace 6 h)
    state = State(tmp_path / "state.db")
    incidents = Incidents(state, clock=clock)
    source = ListSource()
    monitor = BackupMonitor(BackupsSection.model_validate({"rules": [SCRIPT_RULE], "expected": {"crema": NIGHTLY}}),
                            state, incidents, clock=clock, sources=[source])
    tickets = TicketService(config, state, clock=clock)

    monitor.poll()
    tickets.step()
    ticket, texts, _ = _texts(kind, fake)
    opening = texts[0]
    if kind == "glpi":
        assert "[custode:crema/backup/nightly]" in ticket["name"]
        assert ticket["priority"] == ticket["urgency"] == 4  # high
    else:
        assert ticket["external_id"] == "crema/backup/nightly" and ticket["priority"] == "high"
        assert ticket["type"] == "incident"
    # Italian, for the referent: what, where, since when, the priority and the due time.
    assert "Comune di Crema" in opening and "nightly" in opening
    assert "venerdì 20 novembre 2026" in opening
    # 8 working hours from Friday 04:01: 08:30-12:30 and 14:00-18:00 → Friday 18:00.
    assert "2026-11-20T18:00:00+01:00" in opening and "alta" in opening.lower()
    assert tickets.state.query("SELECT due_at FROM tickets")[0][0] == datetime(2026, 11, 20, 18, 0,
                                                                                 tzinfo=ROME).timestamp()

    clock.now = at("2026-11-21 04:01")  # Saturday: the next night's run is missing too
    monitor.poll()
    tickets.step()
    _, texts, _ = _texts(kind, fake)
    assert len(texts) == 2, "the repeat became one follow-up"
    assert "ancora" in texts[1].lower()

    clock.now = at("2026-11-21 23:15")  # the 22:00 run succeeded
    source.pending.append(script_report("nightly", "success", datetime(2026, 11, 21, 23, 10, tzinfo=ROME)))
    monitor.poll()
    tickets.step()
    _, texts, solutions = _texts(kind, fake)
    assert len(texts) == 3 and "rientrato" in texts[2].lower(), "the resolution note, at once"
    assert not solutions, "solved only after the flap window"
    clock.now = at("2026-11-22 00:20")
    tickets.step()
    ticket, texts, solutions = _texts(kind, fake)
    assert len(solutions) == 1
    assert (ticket["status"] == 5) if kind == "glpi" else (ticket["status"] == "solved")
    assert len(fake.tickets()) == 1
    state.close()
