"""The Zendesk backend against ZendeskFake: a real HTTP server on 127.0.0.1 speaking Zendesk's JSON."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import stop_process, wait_until
from zendesk_fake import DEFAULT_TOKEN, ZendeskFake, read_state

from custode.agent.tickets.backends import build_backend
from custode.agent.tickets.backends.base import DeliveryError, TicketClosed, op_marker
from custode.agent.tickets.backends.zendesk import ZendeskBackend
from custode.agent.tickets.config import ZendeskConfig
from custode.agent.tickets.model import TenantTicketing, TicketDraft, TicketThread

TOKEN_ENV = "CUSTODE_TEST_ZENDESK_TOKEN"
EMAIL = "custode@example.it"
TENANT = TenantTicketing(tenant="comune-a", tenant_name="Comune di A", requester="referente@comune-a.it",
                         organization_id=42)


@pytest.fixture
def fake():
    with ZendeskFake(email=EMAIL) as server:
        yield server


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, DEFAULT_TOKEN)
    return DEFAULT_TOKEN


def make_backend(url: str, **overrides) -> ZendeskBackend:
    config = ZendeskConfig.model_validate({"type": "zendesk", "url": url, "email": EMAIL,
                                           "token": {"env": TOKEN_ENV}, "timeout": 2, **overrides})
    backend = build_backend("zd", config)
    assert isinstance(backend, ZendeskBackend)
    return backend


@pytest.fixture
def backend(fake, token):
    backend = make_backend(fake.url, group_id=7)
    yield backend
    backend.close()


def draft(key: str = "comune-a/backup_missing/srv1", op_id: str = "op-create-1", **changes) -> TicketDraft:
    values = dict(key=key, tenant=TENANT, subject="Backup mancante su srv1", body="Il backup di srv1 manca.",
                  priority="high", due_at=None, op_id=op_id, tags=("backup",))
    values.update(changes)
    return TicketDraft(**values)


def thread_of(ref: str, key: str = "comune-a/backup_missing/srv1") -> TicketThread:
    return TicketThread(key=key, ref=ref, tenant=TENANT, subject="Backup mancante su srv1")


def bodies(fake: ZendeskFake, ticket_id: str | int) -> list[str]:
    return [comment["body"] for comment in fake.comments(ticket_id)]


# -- create / find_open ------------------------------------------------------------------------------


def test_create_files_an_incident_with_key_priority_tags_requester_and_marker(fake, backend):
    ref = backend.create(draft())

    [ticket] = fake.tickets()
    assert ref.ref == str(ticket["id"])
    assert ref.url == f"{fake.url}/agent/tickets/{ticket['id']}"
    assert ref.status == "new"
    assert ticket["external_id"] == "comune-a/backup_missing/srv1"
    assert ticket["type"] == "incident"
    assert ticket["priority"] == "high"
    assert ticket["tags"] == ["custode", "backup"]
    assert ticket["group_id"] == 7
    assert ticket["organization_id"] == 42
    assert ticket["requester_id"] != fake.agent_id  # the comune's referent, not the API user
    [body] = bodies(fake, ticket["id"])
    assert body.startswith("Il backup di srv1 manca.")
    assert body.splitlines()[-1] == op_marker("op-create-1")
    [post] = fake.calls_to("POST", "/api/v2/tickets.json")
    assert post.headers["idempotency-key"] == "op-create-1"
    assert post.json()["ticket"]["comment"]["public"] is True


def test_priorities_map_through_config_with_defaults_for_missing_ones(fake, token):
    backend = make_backend(fake.url, priorities={"high": "urgent"})
    backend.create(draft(op_id="a", priority="high"))
    backend.create(draft(key="comune-a/x/y", op_id="b", priority="medium"))
    assert [t["priority"] for t in fake.tickets()] == ["urgent", "normal"]


def test_reopened_ticket_names_the_previous_one_and_is_tagged(fake, backend):
    backend.create(draft(previous_ref="1234"))
    [ticket] = fake.tickets()
    assert "#1234" in bodies(fake, ticket["id"])[0]
    assert "custode_reopened" in ticket["tags"]


def test_find_open_picks_the_lowest_open_ticket_among_duplicates(fake, backend):
    key = "comune-a/disk_space/srv2"
    fake.add_ticket(external_id=key, status="solved")
    fake.add_ticket(external_id="comune-b/disk_space/srv2", status="open")
    second = fake.add_ticket(external_id=key, status="pending")
    fake.add_ticket(external_id=key, status="open")
    fake.add_ticket(external_id=key, status="closed")

    ref = backend.find_open(key, TENANT)

    assert ref is not None and ref.ref == str(second)
    assert ref.status == "open"
    assert ref.url == f"{fake.url}/agent/tickets/{second}"


def test_find_open_is_none_when_every_ticket_of_the_key_is_done(fake, backend):
    key = "comune-a/disk_space/srv2"
    fake.add_ticket(external_id=key, status="solved")
    fake.add_ticket(external_id=key, status="closed")
    fake.add_ticket(external_id="other/key/x", status="open")
    assert backend.find_open(key, TENANT) is None
    assert backend.find_open("never/seen/key", TENANT) is None


def test_find_open_follows_next_page(token):
    key = "comune-a/disk_space/srv3"
    with ZendeskFake(email=EMAIL, per_page=2) as fake:
        for _ in range(5):
            fake.add_ticket(external_id=key, status="closed")
        wanted = fake.add_ticket(external_id=key, status="hold")
        backend = make_backend(fake.url)
        ref = backend.find_open(key, TENANT)
        assert ref is not None and ref.ref == str(wanted)
        assert len(fake.calls_to("GET", "/api/v2/tickets.json")) == 3


def test_created_then_500_is_retryable_and_find_open_adopts_the_ticket(fake, backend):
    fake.fail_after_apply(1, 500, match="POST")
    with pytest.raises(DeliveryError) as failed:
        backend.create(draft())
    assert failed.value.retryable and failed.value.status == 500
    assert len(fake.tickets()) == 1  # Zendesk did create it

    adopted = backend.find_open(draft().key, TENANT)

    assert adopted is not None and adopted.ref == str(fake.tickets()[0]["id"])
    assert len(fake.tickets()) == 1


def test_idempotency_key_returns_the_same_ticket_on_a_repeated_create(fake, backend):
    first = backend.create(draft())
    again = backend.create(draft())
    assert again == first
    assert len(fake.tickets()) == 1


def test_lost_answer_then_repeated_create_gives_one_ticket(fake, token):
    backend = make_backend(fake.url, timeout=0.5)
    fake.hang_next(1, match="POST", apply=True)  # created at once, the answer never comes
    with pytest.raises(DeliveryError) as failed:
        backend.create(draft())
    assert failed.value.retryable
    ref = backend.create(draft())
    assert [str(t["id"]) for t in fake.tickets()] == [ref.ref]


def test_idempotency_key_reused_with_another_body_is_not_retried(fake, backend):
    backend.create(draft())
    with pytest.raises(DeliveryError) as failed:
        backend.create(draft(subject="Another subject"))
    assert not failed.value.retryable and failed.value.status == 400
    assert "POST" in str(failed.value) and "create" in str(failed.value)
    assert len(fake.tickets()) == 1


def test_random_failures_with_find_open_and_retries_never_duplicate(fake, backend):
    fake.fail_ratio(0.4, seed=3, statuses=(500, 503, 429), after_apply=0.5)
    keys = [f"comune-a/check_{n}/srv" for n in range(15)]
    for n, key in enumerate(keys):
        for _ in range(50):
            try:
                if backend.find_open(key, TENANT) is None:
                    backend.create(draft(key=key, op_id=f"op-{n}"))
                break
            except DeliveryError as exc:
                assert exc.retryable, exc
        else:
            pytest.fail(f"{key}: no success in 50 tries")
    fake.clear_faults()
    external_ids = sorted(t["external_id"] for t in fake.tickets())
    assert external_ids == sorted(keys)


# -- follow-ups ---------------------------------------------------------------------------------------


def test_comment_adds_a_public_follow_up_with_the_marker(fake, backend):
    ref = backend.create(draft())
    backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=False)
    comments = fake.comments(ref.ref)
    assert len(comments) == 2
    assert comments[1]["public"] is True
    assert comments[1]["body"] == f"Ancora in errore.\n\n{op_marker('op-c1')}"


def test_comment_retry_does_not_write_twice(fake, backend):
    ref = backend.create(draft())
    fake.fail_after_apply(1, 502, match="PUT")
    with pytest.raises(DeliveryError) as failed:
        backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=False)
    assert failed.value.retryable

    backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=True)
    backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=True)

    assert sum(op_marker("op-c1") in body for body in bodies(fake, ref.ref)) == 1
    assert len(fake.calls_to("PUT")) == 1


def test_comment_retry_writes_when_the_first_try_did_not_get_through(fake, backend):
    ref = backend.create(draft())
    fake.fail_next(1, 503, match="PUT")
    with pytest.raises(DeliveryError):
        backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=False)
    backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=True)
    assert sum(op_marker("op-c1") in body for body in bodies(fake, ref.ref)) == 1


def test_set_priority_changes_it_and_says_why(fake, backend):
    ref = backend.create(draft(priority="medium"))
    backend.set_priority(thread_of(ref.ref), "high", "Peggiorato.", op_id="op-p1", retry=False)
    assert fake.ticket(ref.ref)["priority"] == "high"
    assert bodies(fake, ref.ref)[-1].endswith(op_marker("op-p1"))
    backend.set_priority(thread_of(ref.ref), "high", "Peggiorato.", op_id="op-p1", retry=True)
    assert len(fake.comments(ref.ref)) == 2


def test_solve_marks_solved_with_the_note_and_twice_is_fine(fake, backend):
    ref = backend.create(draft())
    backend.solve(thread_of(ref.ref), "Risolto.", op_id="op-s1", retry=False)
    ticket = fake.ticket(ref.ref)
    assert ticket["status"] == "solved"
    assert ticket["assignee_id"] == fake.agent_id  # Zendesk refuses to solve an unassigned ticket
    assert bodies(fake, ref.ref)[-1] == f"Risolto.\n\n{op_marker('op-s1')}"

    backend.solve(thread_of(ref.ref), "Risolto.", op_id="op-s1", retry=False)
    backend.solve(thread_of(ref.ref), "Risolto.", op_id="op-s1", retry=True)

    assert len(fake.comments(ref.ref)) == 2
    assert len(fake.calls_to("PUT")) == 1


def test_closed_ticket_raises_ticket_closed_and_solve_is_a_success(fake, backend):
    ref = backend.create(draft())
    fake.close_ticket(ref.ref)
    with pytest.raises(TicketClosed) as closed:
        backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=False)
    assert closed.value.ref == ref.ref and not closed.value.retryable
    assert "closed" in str(closed.value)
    with pytest.raises(TicketClosed):
        backend.set_priority(thread_of(ref.ref), "high", "Peggiorato.", op_id="op-p1", retry=True)
    backend.solve(thread_of(ref.ref), "Risolto.", op_id="op-s1", retry=False)
    assert len(fake.comments(ref.ref)) == 1
    assert fake.calls_to("PUT") == []


def test_ticket_solved_by_a_person_refuses_follow_ups_but_not_solve(fake, backend):
    ref = backend.create(draft())
    fake.solve_ticket(ref.ref)
    with pytest.raises(TicketClosed) as closed:
        backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=False)
    assert "solved" in str(closed.value)
    backend.solve(thread_of(ref.ref), "Risolto.", op_id="op-s1", retry=False)
    assert fake.ticket(ref.ref)["status"] == "solved"
    assert fake.calls_to("PUT") == []


def test_ticket_closed_between_read_and_update_raises_ticket_closed(fake, backend):
    ref = backend.create(draft())
    fake.hang_next(1, seconds=0.5, match="PUT")  # the PUT takes effect late
    outcome: list[BaseException | None] = []

    def comment() -> None:
        try:
            backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=False)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            outcome.append(exc)

    worker = threading.Thread(target=comment)
    worker.start()
    assert wait_until(lambda: fake.calls_to("PUT"), timeout=2)
    fake.close_ticket(ref.ref)
    worker.join(5)
    assert not worker.is_alive()
    assert isinstance(outcome[0], TicketClosed) and outcome[0].ref == ref.ref


def test_deleted_ticket_is_closed(fake, backend):
    ref = backend.create(draft())
    fake.delete_ticket(ref.ref)
    assert backend.status(thread_of(ref.ref)) == "closed"
    with pytest.raises(TicketClosed):
        backend.comment(thread_of(ref.ref), "Ancora in errore.", op_id="op-c1", retry=True)


@pytest.mark.parametrize(("zendesk", "ours"), [("new", "new"), ("open", "open"), ("pending", "open"),
                                               ("hold", "open"), ("solved", "solved"), ("closed", "closed")])
def test_status_maps_zendesk_states(fake, backend, zendesk, ours):
    ticket_id = fake.add_ticket(external_id="k/e/y", status=zendesk)
    assert backend.status(thread_of(str(ticket_id), "k/e/y")) == ours


# -- errors -------------------------------------------------------------------------------------------


def test_wrong_token_is_not_retryable_and_says_so_without_the_secret(fake, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "not-the-token-s3cr3t")
    backend = make_backend(fake.url)
    with pytest.raises(DeliveryError) as refused:
        backend.create(draft())
    error = refused.value
    assert not error.retryable and error.status == 401
    assert "token" in str(error) and TOKEN_ENV in str(error) and EMAIL in str(error)
    assert "not-the-token-s3cr3t" not in str(error)
    assert fake.tickets() == []


def test_missing_token_fails_without_calling_zendesk(fake, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    backend = make_backend(fake.url)
    with pytest.raises(DeliveryError) as missing:
        backend.find_open("k/e/y", TENANT)
    assert not missing.value.retryable and TOKEN_ENV in str(missing.value)
    assert fake.calls == []


def test_429_is_retryable_after_the_time_zendesk_asks(fake, backend):
    fake.fail_next(1, 429, retry_after=7)
    with pytest.raises(DeliveryError) as throttled:
        backend.create(draft())
    assert throttled.value.retryable and throttled.value.retry_after == 7
    assert fake.tickets() == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(fake, backend, status):
    ref = backend.create(draft())
    fake.fail_next(1, status)
    with pytest.raises(DeliveryError) as failed:
        backend.status(thread_of(ref.ref))
    assert failed.value.retryable and failed.value.status == status
    assert backend.status(thread_of(ref.ref)) == "new"


def test_hanging_zendesk_is_a_retryable_error_within_the_timeout(fake, token):
    backend = make_backend(fake.url, timeout=1)
    fake.hang_next(1)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as hung:
        backend.find_open("k/e/y", TENANT)
    assert time.monotonic() - started < 3
    assert hung.value.retryable and "no answer" in str(hung.value)
    assert backend.find_open("k/e/y", TENANT) is None  # the next call gets through


def test_close_then_more_calls_reopen_the_session(fake, backend):
    ref = backend.create(draft())
    backend.close()
    backend.comment(thread_of(ref.ref), "Ancora.", op_id="op-c1", retry=False)
    backend.close()
    backend.close()
    assert backend.status(thread_of(ref.ref)) == "new"
    assert len(fake.comments(ref.ref)) == 2


def test_url_with_api_suffix_still_links_the_agent_page(fake, token):
    backend = make_backend(f"{fake.url}/api/v2/")
    ref = backend.create(draft())
    assert ref.url == f"{fake.url}/agent/tickets/{ref.ref}"


# -- the fake as a separate process -------------------------------------------------------------------


def test_fake_runs_as_a_process_and_persists_its_state(tmp_path, token):
    state = tmp_path / "zendesk.json"
    script = Path(__file__).with_name("zendesk_fake.py")
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--state", str(state)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = _read_line(proc, timeout=10)
        assert line.startswith("ZENDESK_FAKE_URL http://127.0.0.1:"), line
        backend = make_backend(line.split()[1])
        ref = backend.create(draft())
        backend.comment(thread_of(ref.ref), "Ancora.", op_id="op-c1", retry=False)
        saved = read_state(state)
        assert [t["external_id"] for t in saved["tickets"]] == [draft().key]
        assert len(saved["comments"][ref.ref]) == 2
    finally:
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()
    assert not list(tmp_path.glob(".*.tmp"))


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line, without waiting forever for a process that never prints."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        pytest.fail(f"zendesk_fake.py printed nothing in {timeout} s")
    return lines[0].strip()


def test_fake_state_file_is_reloaded_by_a_new_fake(tmp_path, token):
    state = tmp_path / "zendesk.json"
    with ZendeskFake(email=EMAIL, state_file=state) as first:
        ref = make_backend(first.url).create(draft())
    with ZendeskFake(email=EMAIL, state_file=state) as second:
        backend = make_backend(second.url)
        found = backend.find_open(draft().key, TENANT)
        assert found is not None and found.ref == ref.ref
        assert backend.create(draft()).ref == ref.ref  # the Idempotency-Key survived too
        second_ref = backend.create(draft(key="comune-a/other/srv", op_id="op-2"))
        assert int(second_ref.ref) == int(ref.ref) + 1
