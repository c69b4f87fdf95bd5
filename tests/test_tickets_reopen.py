"""The same failure back within the warranty: the solved ticket is reopened on the helpdesk, not duplicated.

Every backend runs against its test double on 127.0.0.1 (tests/zendesk_fake.py, tests/glpi_fake.py,
tests/smtp_server.py, tests/webhook_receiver.py), each answering as the real service does for a reopen. The
ticket rows and outbox operations are written with the ticket store's own functions, as the planner writes
them, and the Deliverer delivers them: create, solve, then the REOPEN the planner queues for a failure back
within the warranty. So these tests hold the delivery side to its contract whatever the planner's rules.
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass
from datetime import datetime

import pytest
from conftest import WEBHOOK_SECRET, ManualClock, wait_until
from glpi_fake import API_USER, ASSIGNED, CLOSED, NEW, SOLVED, FakeGlpi
from smtp_server import SmtpServer
from webhook_receiver import WebhookReceiver
from zendesk_fake import DEFAULT_EMAIL, DEFAULT_TOKEN, ZendeskFake

from custode.agent.calendar import ROME
from custode.agent.config_loader import load_text
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.state import State
from custode.agent.tickets import store, text
from custode.agent.tickets.backends import build_backend
from custode.agent.tickets.backends.base import op_marker
from custode.agent.tickets.backends.email import message_id_for
from custode.agent.tickets.backends.webhook import verify_signature
from custode.agent.tickets.delivery import Deliverer
from custode.agent.tickets.model import OpKind, OpState, RemoteStatus, TicketState
from custode.agent.tickets.planner import TicketPlanner

TENANT, CHECK, TARGET = "crema", "backup_missing", "srv1:job/nightly"
KEY = f"{TENANT}/{CHECK}/{TARGET}"
SUBJECT = "Comune di Crema – srv1: il backup «job/nightly» non ha inviato il report atteso"
BODY = "Custode ha rilevato un problema per Comune di Crema: il backup «job/nightly» non ha inviato il report."
NOTE = "Il problema è rientrato: il backup è tornato regolare."
SENDER = "custode@provider.example.it"
HELPDESK = "helpdesk@provider.example.it"
DAY = 86400.0
# Monday 2026-11-23 09:00 Europe/Rome, inside office hours.
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=ROME).timestamp()


@dataclass
class Desk:
    """One backend's whole delivery side on the test's clock."""

    state: State
    clock: ManualClock
    incidents: Incidents
    planner: TicketPlanner
    deliverer: Deliverer

    def ticket(self, ticket_id: int) -> store.Ticket:
        found = store.get_ticket(self.state, ticket_id)
        assert found is not None
        return found

    def op(self, op_id: str) -> dict:
        [row] = [dict(r) for r in store.outbox_rows(self.state, include_finished=True) if r["op_id"] == op_id]
        return row

    def run(self, after: float = 0.0) -> int:
        """Move the clock on (retries wait their backoff), then deliver what is due."""
        self.clock.now += after
        return self.deliverer.run_once()


def make_desk(tmp_path, backend_yaml: str) -> Desk:
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
  default_backend: desk
  backends:
    desk: {backend_yaml}
  retry: {{first: 10s, max: 5m}}
""").model
    clock = ManualClock(T0)
    state = State(tmp_path / "state.db")
    planner = TicketPlanner(config, state, clock=clock)
    backend = build_backend("desk", config.tickets.backends["desk"], config.smtp)
    deliverer = Deliverer(config, state, planner, backend, clock=clock, jitter=lambda: 0.5)
    return Desk(state, clock, Incidents(state, clock=clock), planner, deliverer)


def fail(desk: Desk) -> int:
    """The backup report is missing: the incident opens (again); returns its id."""
    change = desk.incidents.observe(CheckResult(TENANT, CHECK, TARGET, "critical", "backup report missing"),
                                    occurrence=True, now=desk.clock.now)
    assert change is not None and change.kind == "opened"
    return change.incident_id


def file_and_solve(desk: Desk) -> int:
    """A ticket opened for the failure, then resolved and solved on the helpdesk (Custode's solve)."""
    incident_id = fail(desk)
    now = desk.clock.now
    with desk.state.transaction() as db:
        ticket_id = store.insert_ticket(db, key=KEY, tenant=TENANT, backend="desk", check=CHECK,
                                        incident_id=incident_id, priority="high", subject=SUBJECT, opened_at=now,
                                        due_at=None, resolve_due_at=None)
        store.enqueue(db, ticket_id, OpKind.CREATE, {"subject": SUBJECT, "body": BODY, "priority": "high",
                                                     "due_at": None, "tags": [CHECK]}, now)
    assert desk.run() == 1
    assert desk.ticket(ticket_id).ref is not None, "created on the helpdesk"
    desk.clock.now += 3600
    desk.incidents.observe(CheckResult(TENANT, CHECK, TARGET, "ok", "backup succeeded"), now=desk.clock.now)
    with desk.state.transaction() as db:
        store.update_ticket(db, ticket_id, state=TicketState.RECOVERED, recovered_at=desk.clock.now)
        store.enqueue(db, ticket_id, OpKind.SOLVE, {"text": NOTE}, desk.clock.now)
    assert desk.run() == 1
    solved = desk.ticket(ticket_id)
    assert (solved.state, solved.remote_status) == (TicketState.DONE, RemoteStatus.SOLVED)
    return ticket_id


def back_within_warranty(desk: Desk, ticket_id: int, days: float = 3) -> tuple[str, str]:
    """The same failure days later: the planner's reopen, written with the store's functions.

    Returns the REOPEN's op id and its text.
    """
    desk.clock.now += days * DAY
    incident_id = fail(desk)
    ticket = desk.ticket(ticket_id)
    assert ticket.recovered_at is not None
    incident = desk.incidents.get(incident_id)
    assert incident is not None
    body = text.reopen_text(desk.planner.facts(incident), "it", datetime.fromtimestamp(ticket.recovered_at, ROME), 10)
    with desk.state.transaction() as db:
        store.reopen_ticket(db, ticket_id, incident_id, desk.clock.now)
        op_id = store.enqueue(db, ticket_id, OpKind.REOPEN, {"text": body}, desk.clock.now)
    return op_id, body


def assert_reopened_row(desk: Desk, ticket_id: int, op_id: str, remote_status: RemoteStatus) -> None:
    ticket = desk.ticket(ticket_id)
    assert ticket.state == TicketState.OPEN
    assert ticket.remote_status == remote_status
    op = desk.op(op_id)
    assert op["state"] == OpState.DONE and not (op["last_error"] or "").startswith("superseded"), "delivered"


def assert_replaced(desk: Desk, old_id: int, op_id: str) -> store.Ticket:
    """The reopen was superseded and a new live ticket, referencing the old one, was queued and created."""
    old = desk.ticket(old_id)
    assert old.state == TicketState.CLOSED_REMOTE and old.remote_status == RemoteStatus.CLOSED
    op = desk.op(op_id)
    assert op["state"] == OpState.DONE and op["last_error"].startswith("superseded: ")
    new = store.live_ticket(desk.state, KEY)
    assert new is not None and new.id != old_id and new.previous_id == old_id
    assert desk.run() == 1, "the new ticket's create"
    new = desk.ticket(new.id)
    assert new.ref is not None and new.ref != old.ref
    return new


# --- the reopen text -----------------------------------------------------------------------------

def _facts() -> text.IncidentFacts:
    return text.IncidentFacts(key=KEY, tenant=TENANT, tenant_name="Comune di Crema", check=CHECK, target=TARGET,
                              severity="critical", summary="backup report missing",
                              details={}, opened_at=datetime(2026, 12, 1, 8, 15, tzinfo=ROME))


def test_reopen_text_names_the_warranty_the_resolution_and_what_is_back():
    resolved = datetime(2026, 11, 23, 9, 0, tzinfo=ROME)
    italian = text.reopen_text(_facts(), "it", resolved, 10)
    assert italian.splitlines()[0] == ("Il problema si è ripresentato entro la garanzia di 10 giorni lavorativi "
                                       "dalla risoluzione del 23 novembre 2026 alle 9:00: il ticket viene riaperto.")
    assert italian.splitlines()[1].startswith("Di nuovo presente da martedì 1º dicembre 2026 alle 8:15: ")
    assert "«job/nightly»" in italian
    english = text.reopen_text(_facts(), "en", resolved, 10)
    assert english.splitlines()[0] == ("The problem came back within the warranty of 10 working days from its "
                                       "resolution on Monday 23 November 2026 at 09:00: the ticket is reopened.")


def test_reopen_text_takes_the_warranty_in_words_and_elides_before_a_vowel():
    """The planner passes the table's warranty as words (it may be hours); 'dell'8', 'dell'11', 'del 1º'."""
    lines = [text.reopen_text(_facts(), "it", datetime(2026, 12, day, 17, 0, tzinfo=ROME), "16 ore lavorative")
             for day in (8, 11, 1)]
    assert [line.split(":", 1)[0] for line in lines] == [
        "Il problema si è ripresentato entro la garanzia di 16 ore lavorative dalla risoluzione dell'8 dicembre "
        "2026 alle 17",
        "Il problema si è ripresentato entro la garanzia di 16 ore lavorative dalla risoluzione dell'11 dicembre "
        "2026 alle 17",
        "Il problema si è ripresentato entro la garanzia di 16 ore lavorative dalla risoluzione del 1º dicembre "
        "2026 alle 17"]
    assert "1 giorno lavorativo" in text.reopen_text(_facts(), "it", datetime(2026, 12, 2, tzinfo=ROME), 1)


# --- Zendesk ------------------------------------------------------------------------------------

@pytest.fixture
def zendesk(monkeypatch):
    monkeypatch.setenv("T_ZD_TOKEN", DEFAULT_TOKEN)
    with ZendeskFake(email=DEFAULT_EMAIL) as fake:
        yield fake


def zendesk_desk(tmp_path, fake: ZendeskFake) -> Desk:
    return make_desk(tmp_path, f'{{type: zendesk, url: "{fake.url}", email: {DEFAULT_EMAIL}, '
                               f'token: {{env: T_ZD_TOKEN}}, timeout: 2s}}')


def test_zendesk_solved_ticket_is_reopened_with_a_public_comment(tmp_path, zendesk):
    desk = zendesk_desk(tmp_path, zendesk)
    ticket_id = file_and_solve(desk)
    ref = desk.ticket(ticket_id).ref
    op_id, body = back_within_warranty(desk, ticket_id)

    assert desk.run() == 1

    assert zendesk.ticket(ref)["status"] == "open"
    comment = zendesk.comments(ref)[-1]
    assert comment["public"] is True and comment["author_id"] == zendesk.agent_id
    assert comment["body"] == f"{body}\n\n{op_marker(op_id)}"
    [put] = zendesk.calls_to("PUT", f"/api/v2/tickets/{ref}.json")[-1:]
    assert put.json()["ticket"]["status"] == "open"
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)
    assert len(zendesk.tickets()) == 1


def test_zendesk_reopen_whose_answer_was_lost_is_not_written_twice(tmp_path, zendesk):
    desk = zendesk_desk(tmp_path, zendesk)
    ticket_id = file_and_solve(desk)
    ref = desk.ticket(ticket_id).ref
    op_id, _ = back_within_warranty(desk, ticket_id)
    zendesk.fail_after_apply(1, 500, match="PUT")  # Zendesk reopened it; Custode never heard

    desk.run()
    assert desk.op(op_id)["state"] == OpState.PENDING and desk.op(op_id)["attempts"] == 1
    assert zendesk.ticket(ref)["status"] == "open"
    desk.run(after=60)

    reopen_comments = [c for c in zendesk.comments(ref) if op_marker(op_id) in c["body"]]
    assert len(reopen_comments) == 1
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)


def test_zendesk_reopen_retried_after_an_outage(tmp_path, zendesk):
    desk = zendesk_desk(tmp_path, zendesk)
    ticket_id = file_and_solve(desk)
    ref = desk.ticket(ticket_id).ref
    op_id, _ = back_within_warranty(desk, ticket_id)
    zendesk.fail_next(2, 503, retry_after=30, match="GET")

    desk.run()
    assert zendesk.ticket(ref)["status"] == "solved", "nothing written while Zendesk is down"
    desk.run(after=31)
    desk.run(after=31)

    assert [c["body"].count(op_marker(op_id)) for c in zendesk.comments(ref)].count(1) == 1
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)


def test_zendesk_closed_ticket_becomes_a_follow_up_ticket_that_references_it(tmp_path, zendesk):
    desk = zendesk_desk(tmp_path, zendesk)
    ticket_id = file_and_solve(desk)
    old_ref = desk.ticket(ticket_id).ref
    zendesk.close_ticket(old_ref)  # the automation closes a solved ticket after 4 days
    op_id, _ = back_within_warranty(desk, ticket_id, days=6)
    comments_before = len(zendesk.comments(old_ref))

    assert desk.run() == 1

    new = assert_replaced(desk, ticket_id, op_id)
    assert len(zendesk.comments(old_ref)) == comments_before, "a closed ticket takes nothing"
    assert zendesk.ticket(old_ref)["status"] == "closed"
    created = zendesk.ticket(new.ref)
    assert f"#{old_ref}" in zendesk.comments(new.ref)[0]["body"]
    assert "custode_reopened" in created["tags"] and created["external_id"] == KEY
    assert zendesk.ticket(old_ref)["followup_ids"] == [int(new.ref)], "Zendesk's own follow-up link"
    [create] = zendesk.calls_to("POST", "/api/v2/tickets.json")[-1:]
    assert create.json()["ticket"]["via_followup_source_id"] == int(old_ref)


def test_zendesk_closed_between_read_and_write_is_the_same_fallback(tmp_path, zendesk):
    """Zendesk's 422 "closed prevents ticket update" on the PUT itself: closed after Custode looked."""
    desk = zendesk_desk(tmp_path, zendesk)
    ticket_id = file_and_solve(desk)
    ref = desk.ticket(ticket_id).ref
    op_id, _ = back_within_warranty(desk, ticket_id)
    zendesk.hang_next(1, seconds=0.5, match="PUT")  # the PUT reaches Zendesk late
    worker = threading.Thread(target=desk.run)
    worker.start()
    assert wait_until(lambda: zendesk.calls_to("PUT", f"/api/v2/tickets/{ref}.json")[-1:] and
                      "open" in zendesk.calls_to("PUT")[-1].body.decode(), timeout=3)
    zendesk.close_ticket(ref)
    worker.join(5)
    assert not worker.is_alive()

    assert zendesk.ticket(ref)["status"] == "closed"
    assert not [c for c in zendesk.comments(ref) if op_marker(op_id) in c["body"]]
    assert_replaced(desk, ticket_id, op_id)


def test_zendesk_refusal_that_is_not_about_closing_is_kept_for_a_person(tmp_path, zendesk):
    desk = zendesk_desk(tmp_path, zendesk)
    ticket_id = file_and_solve(desk)
    op_id, _ = back_within_warranty(desk, ticket_id)
    zendesk.fail_next(1, 422, match="PUT")

    desk.run()

    op = desk.op(op_id)
    assert op["state"] == OpState.DEAD and "422" in op["last_error"]
    assert store.live_ticket(desk.state, KEY).id == ticket_id, "no new ticket for a refused field"


def test_zendesk_ticket_a_person_reopened_only_gets_the_comment(tmp_path, zendesk):
    desk = zendesk_desk(tmp_path, zendesk)
    ticket_id = file_and_solve(desk)
    ref = desk.ticket(ticket_id).ref
    zendesk.set_status(ref, "pending")
    op_id, _ = back_within_warranty(desk, ticket_id)

    desk.run()

    assert zendesk.ticket(ref)["status"] == "pending", "a person's decision stands"
    assert "status" not in zendesk.calls_to("PUT", f"/api/v2/tickets/{ref}.json")[-1].json()["ticket"]
    assert op_marker(op_id) in zendesk.comments(ref)[-1]["body"]
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)


def test_sync_does_not_replace_a_ticket_whose_reopen_is_on_its_way(tmp_path, zendesk):
    """The helpdesk still says solved until the REOPEN lands: that is no person's doing."""
    desk = zendesk_desk(tmp_path, zendesk)
    ticket_id = file_and_solve(desk)
    op_id, _ = back_within_warranty(desk, ticket_id)

    assert desk.deliverer.sync() == 0
    assert store.live_ticket(desk.state, KEY).id == ticket_id

    desk.run()
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)
    desk.deliverer.sync()
    assert desk.ticket(ticket_id).state == TicketState.OPEN and len(zendesk.tickets()) == 1


# --- GLPI ---------------------------------------------------------------------------------------

@pytest.fixture
def glpi_env(monkeypatch):
    monkeypatch.setenv("T_GLPI_USER", "user-token-1")
    monkeypatch.setenv("T_GLPI_APP", "app-token-1")


def glpi_desk(tmp_path, fake: FakeGlpi) -> Desk:
    return make_desk(tmp_path, f'{{type: glpi, url: "{fake.url}", user_token: {{env: T_GLPI_USER}}, '
                               f'app_token: {{env: T_GLPI_APP}}, timeout: 2s}}')


def glpi_fake(**options) -> FakeGlpi:
    return FakeGlpi(user_token="user-token-1", app_token="app-token-1", hang_seconds=3.0, **options)


def followups_with(fake: FakeGlpi, ticket_id: int, op_id: str) -> list[str]:
    return [html.unescape(f["content"]) for f in fake.followups(ticket_id) if op_marker(op_id) in
            html.unescape(f["content"])]


def test_glpi_unassigned_ticket_is_reopened_as_new_by_a_followup(tmp_path, glpi_env):
    with glpi_fake() as glpi:
        desk = glpi_desk(tmp_path, glpi)
        ticket_id = file_and_solve(desk)
        number = int(desk.ticket(ticket_id).ref)
        assert glpi.ticket(number)["status"] == SOLVED
        op_id, body = back_within_warranty(desk, ticket_id)

        assert desk.run() == 1

        assert glpi.ticket(number)["status"] == NEW, "nobody assigned: GLPI reopens it as new"
        [followup] = followups_with(glpi, number, op_id)
        assert followup == f"{body}\n\n{op_marker(op_id)}"
        assert glpi.followups(number)[-1]["is_private"] == 0
        assert not glpi.requests("PUT", f"Ticket/{number}"), "GLPI's own follow-up rule reopened it"
        assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.NEW)


@pytest.mark.parametrize("assignee", [{"group": 4}, {"user": API_USER}], ids=["group", "custode-itself"])
def test_glpi_assigned_ticket_goes_back_to_processing_assigned(tmp_path, glpi_env, assignee):
    """Assigned to Custode's own API user, GLPI reopens only on ``add_reopen`` (needReopen wants a requester)."""
    with glpi_fake() as glpi:
        desk = glpi_desk(tmp_path, glpi)
        ticket_id = file_and_solve(desk)
        number = int(desk.ticket(ticket_id).ref)
        glpi.assign(number, **assignee)
        op_id, _ = back_within_warranty(desk, ticket_id)

        desk.run()

        assert glpi.ticket(number)["status"] == ASSIGNED
        assert not glpi.requests("PUT", f"Ticket/{number}")
        assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)


@pytest.mark.parametrize(("assignee", "status", "remote"), [(None, NEW, RemoteStatus.NEW),
                                                             ({"user": 7}, ASSIGNED, RemoteStatus.OPEN),
                                                             ({"supplier": 3}, ASSIGNED, RemoteStatus.OPEN)])
def test_glpi_that_leaves_the_status_gets_it_set_as_glpi_would(tmp_path, glpi_env, assignee, status, remote):
    """A GLPI (or a plugin) that does not reopen on a follow-up: the backend PUTs 2 or 1 itself."""
    with glpi_fake(reopen_on_followup=False) as glpi:
        desk = glpi_desk(tmp_path, glpi)
        ticket_id = file_and_solve(desk)
        number = int(desk.ticket(ticket_id).ref)
        if assignee:
            glpi.assign(number, **assignee)
        op_id, _ = back_within_warranty(desk, ticket_id)

        desk.run()

        assert glpi.ticket(number)["status"] == status
        assert glpi.requests("PUT", f"Ticket/{number}") == [("PUT", f"Ticket/{number}")]
        assert len(followups_with(glpi, number, op_id)) == 1
        assert_reopened_row(desk, ticket_id, op_id, remote)


def test_glpi_followup_whose_answer_was_lost_is_not_written_twice(tmp_path, glpi_env):
    with glpi_fake() as glpi:
        desk = glpi_desk(tmp_path, glpi)
        ticket_id = file_and_solve(desk)
        number = int(desk.ticket(ticket_id).ref)
        op_id, _ = back_within_warranty(desk, ticket_id)
        glpi.fail_next(1, 502, after=True, method="POST", path="^ITILFollowup$")

        desk.run()
        assert desk.op(op_id)["state"] == OpState.PENDING
        assert glpi.ticket(number)["status"] == NEW, "GLPI did reopen it"
        desk.run(after=60)

        assert len(followups_with(glpi, number, op_id)) == 1
        assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.NEW)


def test_glpi_status_refused_is_kept_then_retried_without_a_second_followup(tmp_path, glpi_env):
    with glpi_fake(reopen_on_followup=False, refuse_status=True) as glpi:
        desk = glpi_desk(tmp_path, glpi)
        ticket_id = file_and_solve(desk)
        number = int(desk.ticket(ticket_id).ref)
        op_id, _ = back_within_warranty(desk, ticket_id)

        desk.run()
        op = desk.op(op_id)
        assert op["state"] == OpState.DEAD and "refused the update" in op["last_error"]
        assert glpi.ticket(number)["status"] == SOLVED

        glpi.refuse_status = False  # a person gave the API user the right
        with desk.state.transaction() as db:
            store.requeue_undeliverable(db, desk.clock.now)  # custode tickets retry --undeliverable
        desk.run()

        assert glpi.ticket(number)["status"] == NEW
        assert len(followups_with(glpi, number, op_id)) == 1
        assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.NEW)


@pytest.mark.parametrize("closed_reopenable", [False, True], ids=["lifecycle-default", "lifecycle-allows"])
def test_glpi_closed_ticket_is_followed_by_a_linked_new_one(tmp_path, glpi_env, closed_reopenable):
    """Closed is final for Custode even where the profile's lifecycle would let a follow-up reopen it."""
    with glpi_fake(closed_reopenable=closed_reopenable) as glpi:
        desk = glpi_desk(tmp_path, glpi)
        ticket_id = file_and_solve(desk)
        old = int(desk.ticket(ticket_id).ref)
        glpi.close_ticket(old)
        op_id, _ = back_within_warranty(desk, ticket_id)

        desk.run()

        new = assert_replaced(desk, ticket_id, op_id)
        assert glpi.ticket(old)["status"] == CLOSED and not followups_with(glpi, old, op_id)
        assert glpi.links == [{"tickets_id_1": int(new.ref), "tickets_id_2": old, "link": 1}]


# --- e-mail -------------------------------------------------------------------------------------

def email_desk(tmp_path, server: SmtpServer) -> Desk:
    return make_desk(tmp_path, f'{{type: email, to: [{HELPDESK}], smtp: {{host: 127.0.0.1, port: {server.port}, '
                               f'sender: {SENDER}, security: none, timeout: 5s}}}}')


def test_email_reopen_is_a_threaded_reply_saying_so(tmp_path):
    with SmtpServer() as server:
        desk = email_desk(tmp_path, server)
        ticket_id = file_and_solve(desk)
        first = desk.ticket(ticket_id).ref
        op_id, body = back_within_warranty(desk, ticket_id)

        desk.run()
        create, solve, reopen = [received.message for received in server.wait_for(3)]

    assert " ".join(str(reopen["Message-ID"]).split()) == message_id_for(op_id, SENDER)
    assert str(reopen["In-Reply-To"]).strip() == first
    assert first in str(reopen["References"])
    assert " ".join(str(reopen["Subject"]).split()) == f"Re: {SUBJECT} [custode:{KEY}]"
    assert reopen["X-Custode-Event"] == "reopen" and reopen["X-Custode-Incident"] == KEY
    content = reopen.get_content()
    assert "il ticket viene riaperto" in content and content.rstrip().endswith(op_marker(op_id))
    assert solve["X-Custode-Event"] == "solve"
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)


def test_email_reopen_resent_after_a_refusal_keeps_its_message_id(tmp_path):
    """The helpdesk drops a repeated Message-ID, so a resend after a lost answer cannot duplicate."""
    with SmtpServer() as server:
        desk = email_desk(tmp_path, server)
        ticket_id = file_and_solve(desk)
        op_id, _ = back_within_warranty(desk, ticket_id)
        server.fail_with = (451, "4.3.0 Mailbox temporarily unavailable")
        desk.run()
        assert desk.op(op_id)["state"] == OpState.PENDING and desk.op(op_id)["attempts"] == 1
        server.fail_with = None
        desk.run(after=60)
        mails = server.wait_for(3)

    assert [m.message["X-Custode-Event"] for m in mails] == ["create", "solve", "reopen"]
    assert " ".join(str(mails[-1].message["Message-ID"]).split()) == message_id_for(op_id, SENDER)
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)


# --- webhook ------------------------------------------------------------------------------------

def webhook_desk(tmp_path, receiver: WebhookReceiver) -> Desk:
    return make_desk(tmp_path, f'{{type: webhook, url: "{receiver.url}", secret: {{env: CUSTODE_TEST_WEBHOOK}}, '
                               'timeout: 2s}')


def test_webhook_reopen_is_a_signed_reopen_event_on_the_ref(tmp_path, receiver):
    desk = webhook_desk(tmp_path, receiver)
    ticket_id = file_and_solve(desk)
    ref = desk.ticket(ticket_id).ref
    assert receiver.statuses[ref] == "solved"
    op_id, body = back_within_warranty(desk, ticket_id)

    desk.run()

    event = receiver.events[-1]
    assert event.payload["event"] == "reopen" and event.payload["ref"] == ref and event.payload["key"] == KEY
    assert event.payload["text"] == f"{body}\n\n{op_marker(op_id)}"
    assert event.headers["x-custode-delivery"] == event.headers["idempotency-key"] == op_id
    assert verify_signature(WEBHOOK_SECRET.encode(), event.body, event.headers["x-custode-signature"])
    assert receiver.statuses[ref] == "open"
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)


def test_webhook_reopen_retried_and_repeated_is_received_once(tmp_path, receiver):
    desk = webhook_desk(tmp_path, receiver)
    ticket_id = file_and_solve(desk)
    op_id, body = back_within_warranty(desk, ticket_id)
    receiver.fail_next(1, status=503, retry_after="20")

    desk.run()
    assert desk.op(op_id)["state"] == OpState.PENDING
    desk.run(after=21)
    # as after a crash between the receiver's answer and the outbox's record: the same delivery again
    thread = desk.deliverer._thread_of(desk.ticket(ticket_id))
    desk.deliverer.backend.reopen(thread, body, op_id=op_id, retry=True)

    assert [e.payload["event"] for e in receiver.events] == ["create", "solve", "reopen"]
    assert receiver.duplicates == [op_id]
    assert_reopened_row(desk, ticket_id, op_id, RemoteStatus.OPEN)


def test_webhook_gone_ticket_is_followed_by_a_new_one(tmp_path, receiver):
    desk = webhook_desk(tmp_path, receiver)
    ticket_id = file_and_solve(desk)
    old_ref = desk.ticket(ticket_id).ref
    receiver.gone.add(old_ref)
    op_id, _ = back_within_warranty(desk, ticket_id)

    desk.run()

    new = assert_replaced(desk, ticket_id, op_id)
    create = receiver.events[-1].payload
    assert create["event"] == "create" and create["previous_ref"] == old_ref and new.ref == f"WH-{len(receiver.events)}"
    assert receiver.statuses[old_ref] == "solved"
