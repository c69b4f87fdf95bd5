"""The GLPI ticket backend against a fake GLPI REST API on 127.0.0.1 (tests/glpi_fake.py)."""

from __future__ import annotations

import logging
import time

import pytest
from glpi_fake import CLOSED, SOLVED, FakeGlpi

from custode.agent.tickets.backends import build_backend
from custode.agent.tickets.backends.base import DeliveryError, TicketClosed, op_marker
from custode.agent.tickets.backends.glpi import GlpiBackend
from custode.agent.tickets.config import GlpiConfig
from custode.agent.tickets.model import TenantTicketing, TicketDraft, TicketThread

USER_TOKEN = "user-secret-123"
APP_TOKEN = "app-secret-456"
TENANT = TenantTicketing(tenant="crema", tenant_name="Comune di Crema", entity_id=7)


@pytest.fixture
def glpi():
    with FakeGlpi(user_token=USER_TOKEN, app_token=APP_TOKEN, hang_seconds=5.0) as server:
        yield server


@pytest.fixture
def tokens(monkeypatch):
    monkeypatch.setenv("GLPI_USER_TOKEN", USER_TOKEN)
    monkeypatch.setenv("GLPI_APP_TOKEN", APP_TOKEN)


def make_backend(glpi: FakeGlpi, **options) -> GlpiBackend:
    raw = {"type": "glpi", "url": glpi.url, "user_token": {"env": "GLPI_USER_TOKEN"},
           "app_token": {"env": "GLPI_APP_TOKEN"}, "timeout": 2.0, **options}
    return build_backend("glpi-main", GlpiConfig.model_validate(raw))  # type: ignore[return-value]


@pytest.fixture
def backend(glpi, tokens):
    instance = make_backend(glpi, category_id=12, request_type_id=8, solution_type_id=3)
    yield instance
    instance.close()


def draft(key: str = "crema/backup_missing/srv1", op_id: str = "op-create-1", priority: str = "medium",
          tenant: TenantTicketing = TENANT) -> TicketDraft:
    return TicketDraft(key=key, tenant=tenant, subject="Backup mancante su srv1", body="Nessun backup da 26 ore.",
                       priority=priority, due_at=None, op_id=op_id)  # type: ignore[arg-type]


def thread_of(ref: str, key: str = "crema/backup_missing/srv1") -> TicketThread:
    return TicketThread(key=key, ref=ref, tenant=TENANT, subject="Backup mancante su srv1")


# ------------------------------------------------------------------------------ create

def test_create_carries_marker_levels_entity_type_and_ids(glpi, backend) -> None:
    ref = backend.create(draft(priority="high"))

    assert isinstance(backend, GlpiBackend) and backend.kind == "glpi"
    [ticket] = glpi.tickets()
    assert ref.ref == str(ticket["id"])
    assert ref.url == glpi.url.replace("apirest.php", f"front/ticket.form.php?id={ticket['id']}")
    assert ref.status == "new"
    assert ticket["name"] == "Backup mancante su srv1 [custode:crema/backup_missing/srv1]"
    assert ticket["content"].splitlines()[-1] == op_marker("op-create-1")
    assert ticket["content"].startswith("Nessun backup da 26 ore.")
    assert (ticket["urgency"], ticket["impact"], ticket["priority"]) == (4, 4, 4)
    assert ticket["type"] == 1
    assert ticket["entities_id"] == 7
    assert ticket["itilcategories_id"] == 12 and ticket["requesttypes_id"] == 8


def test_create_without_entity_and_custom_scale(glpi, tokens) -> None:
    backend = make_backend(glpi, priorities={"low": 1, "medium": 2, "high": 6})
    tenant = TenantTicketing(tenant="lodi", tenant_name="Comune di Lodi")
    try:
        backend.create(draft(priority="high", tenant=tenant))
    finally:
        backend.close()
    [ticket] = glpi.tickets()
    assert ticket["entities_id"] == 0  # GLPI's default (the API user's active entity), not sent
    assert (ticket["urgency"], ticket["impact"], ticket["priority"]) == (5, 5, 6)  # urgency/impact stop at 5


def test_create_links_the_ticket_a_person_closed(glpi, backend) -> None:
    old = backend.create(draft())
    glpi.close_ticket(int(old.ref))
    new = backend.create(TicketDraft(key="crema/backup_missing/srv1", tenant=TENANT, subject="Backup mancante",
                                     body="Ancora nessun backup.", priority="high", due_at=None, op_id="op-create-2",
                                     previous_ref=old.ref))
    assert glpi.links == [{"tickets_id_1": int(new.ref), "tickets_id_2": int(old.ref), "link": 1}]


# ----------------------------------------------------------------------------- session

def test_session_is_killed_by_close_and_reopened_after(glpi, backend) -> None:
    backend.create(draft())
    assert glpi.open_sessions == 1
    backend.close()
    assert glpi.open_sessions == 0
    assert glpi.requests("GET", "killSession") == [("GET", "killSession")]

    assert backend.status(thread_of("1")) == "new"
    assert glpi.sessions_started == 2
    backend.close()
    backend.close()  # idempotent: nothing to kill
    assert glpi.open_sessions == 0 and glpi.sessions_killed == 2


def test_one_session_per_batch(glpi, backend) -> None:
    ref = backend.create(draft())
    backend.comment(thread_of(ref.ref), "ancora in errore", op_id="op-c1", retry=False)
    backend.status(thread_of(ref.ref))
    assert glpi.sessions_started == 1


def test_invalid_session_mid_batch_is_reopened_once(glpi, backend) -> None:
    ref = backend.create(draft())
    glpi.invalidate_sessions()  # GLPI expired it (or was restarted)

    backend.comment(thread_of(ref.ref), "ancora in errore", op_id="op-c1", retry=False)

    assert glpi.sessions_started == 2
    assert len(glpi.followups(int(ref.ref))) == 1


def test_secrets_are_read_lazily(glpi, monkeypatch) -> None:
    monkeypatch.delenv("GLPI_USER_TOKEN", raising=False)
    monkeypatch.setenv("GLPI_APP_TOKEN", APP_TOKEN)
    backend = make_backend(glpi)  # building it must not need the secret
    with pytest.raises(DeliveryError) as caught:
        backend.find_open("crema/x/y", TENANT)
    assert not caught.value.retryable
    assert "GLPI_USER_TOKEN" in str(caught.value) and "user_token" in str(caught.value)
    monkeypatch.setenv("GLPI_USER_TOKEN", USER_TOKEN)
    assert backend.find_open("crema/x/y", TENANT) is None
    backend.close()


# --------------------------------------------------------------------------- find_open

def test_find_open_ignores_solved_closed_and_longer_keys(glpi, backend) -> None:
    key = "crema/disk/srv1:/var"
    glpi.add_ticket(f"Disco pieno [custode:{key}]", status=SOLVED)      # 1
    glpi.add_ticket(f"Disco pieno [custode:{key}]", status=CLOSED)      # 2
    glpi.add_ticket(f"Disco pieno [custode:{key}2]", status=1)          # 3: another key, KEY as prefix
    glpi.add_ticket(f"Disco pieno [custode:{key}/home]", status=1)      # 4: another key again
    assert backend.find_open(key, TENANT) is None

    glpi.add_ticket(f"Disco pieno [custode:{key}]", status=3)           # 5: planned
    glpi.add_ticket(f"Disco pieno [custode:{key}]", status=2)           # 6: a duplicate, newer
    found = backend.find_open(key, TENANT)
    assert found is not None
    assert found.ref == "5" and found.status == "open"
    assert found.url is not None and found.url.endswith("front/ticket.form.php?id=5")


def test_find_open_rechecks_what_a_broad_search_returns(tokens) -> None:
    with FakeGlpi(user_token=USER_TOKEN, app_token=APP_TOKEN, broad_search=True) as glpi:
        backend = make_backend(glpi)
        key = "crema/backup_missing/srv1"
        glpi.add_ticket(f"Backup [custode:{key}]", status=SOLVED)           # 1
        glpi.add_ticket(f"Backup [custode:{key}]", status=CLOSED)           # 2
        glpi.add_ticket(f"Backup [custode:{key}2]", status=1)               # 3: KEY2 vs KEY
        glpi.add_ticket("Backup [custode:crema/backupXmissing/srv1]")       # 4: LIKE's '_' wildcard
        try:
            assert backend.find_open(key, TENANT) is None
            glpi.add_ticket(f"Backup [custode:{key}]", status=4)            # 5: waiting
            found = backend.find_open(key, TENANT)
            assert found is not None and found.ref == "5" and found.status == "open"
        finally:
            backend.close()


def test_find_open_with_no_ticket_at_all(glpi, backend) -> None:
    assert backend.find_open("crema/backup_missing/srv1", TENANT) is None
    assert glpi.requests("GET", "search/Ticket")


def test_find_open_matches_html_encoded_names(glpi, backend) -> None:
    key = "crema/web/https://a.example.it/?x=1&y=<2>"
    ref = backend.create(draft(key=key))
    assert "&amp;" in glpi.ticket(int(ref.ref))["name"]  # stored encoded, as GLPI 10 does
    found = backend.find_open(key, TENANT)
    assert found is not None and found.ref == ref.ref and found.status == "new"


def test_find_open_after_a_person_solved_it(glpi, backend) -> None:
    ref = backend.create(draft())
    glpi.solve_ticket(int(ref.ref))
    assert backend.find_open("crema/backup_missing/srv1", TENANT) is None


def test_create_answer_lost_then_find_open_adopts_it(glpi, backend) -> None:
    glpi.fail_next(1, status=500, after=True, method="POST", path="^Ticket$")
    with pytest.raises(DeliveryError) as caught:
        backend.create(draft())
    assert caught.value.retryable

    # what the delivery loop does on the retry: look first, create only if nothing is there
    found = backend.find_open("crema/backup_missing/srv1", TENANT)
    assert found is not None
    assert len(glpi.tickets()) == 1 and found.ref == str(glpi.tickets()[0]["id"])


# ------------------------------------------------------------------------- follow-ups

def test_comment_is_public_and_ends_with_marker(glpi, backend) -> None:
    ref = backend.create(draft())
    backend.comment(thread_of(ref.ref), "Ancora nessun backup.\n", op_id="op-c1", retry=False)
    [followup] = glpi.followups(int(ref.ref))
    assert followup["is_private"] == 0 and followup["itemtype"] == "Ticket"
    assert followup["content"] == f"Ancora nessun backup.\n\n{op_marker('op-c1')}"


def test_comment_retry_after_lost_answer_does_not_duplicate(glpi, backend) -> None:
    ref = backend.create(draft())
    op_id = "op-c<1>&2"  # encoded by GLPI: the marker must be found after unescaping
    glpi.fail_next(1, status=502, after=True, method="POST", path="ITILFollowup")
    with pytest.raises(DeliveryError) as caught:
        backend.comment(thread_of(ref.ref), "ancora in errore", op_id=op_id, retry=False)
    assert caught.value.retryable
    assert "&lt;" in glpi.followups()[0]["content"]

    backend.comment(thread_of(ref.ref), "ancora in errore", op_id=op_id, retry=True)
    backend.comment(thread_of(ref.ref), "ancora in errore", op_id=op_id, retry=True)
    assert len(glpi.followups(int(ref.ref))) == 1

    backend.comment(thread_of(ref.ref), "peggiorato", op_id="op-c2", retry=True)  # another op is written
    assert len(glpi.followups(int(ref.ref))) == 2


def test_comment_on_closed_ticket_raises_ticket_closed(glpi, backend) -> None:
    ref = backend.create(draft())
    glpi.close_ticket(int(ref.ref))
    with pytest.raises(TicketClosed) as caught:
        backend.comment(thread_of(ref.ref), "ancora in errore", op_id="op-c1", retry=False)
    assert caught.value.ref == ref.ref and not caught.value.retryable
    assert glpi.followups() == []


def test_comment_on_ticket_solved_by_a_person_raises_ticket_closed(glpi, backend) -> None:
    ref = backend.create(draft())
    glpi.solve_ticket(int(ref.ref))
    with pytest.raises(TicketClosed):
        backend.comment(thread_of(ref.ref), "ancora in errore", op_id="op-c1", retry=False)
    assert glpi.followups() == [] and glpi.ticket(int(ref.ref))["status"] == SOLVED  # not reopened


def test_comment_on_purged_ticket_raises_ticket_closed(glpi, backend) -> None:
    ref = backend.create(draft())
    glpi.delete_ticket(int(ref.ref))
    with pytest.raises(TicketClosed):
        backend.comment(thread_of(ref.ref), "ancora in errore", op_id="op-c1", retry=True)


def test_comment_retry_when_written_before_a_person_closed_it(glpi, backend) -> None:
    ref = backend.create(draft())
    backend.comment(thread_of(ref.ref), "ancora in errore", op_id="op-c1", retry=False)
    glpi.close_ticket(int(ref.ref))
    backend.comment(thread_of(ref.ref), "ancora in errore", op_id="op-c1", retry=True)  # done already: success
    assert len(glpi.followups()) == 1


# --------------------------------------------------------------------------- priority

def test_set_priority_updates_levels_and_explains(glpi, backend) -> None:
    ref = backend.create(draft(priority="medium"))
    backend.set_priority(thread_of(ref.ref), "high", "Ora critico: disco al 99%", op_id="op-p1", retry=False)
    ticket = glpi.ticket(int(ref.ref))
    assert (ticket["urgency"], ticket["impact"], ticket["priority"]) == (4, 4, 4)
    [followup] = glpi.followups(int(ref.ref))
    assert followup["content"].endswith(op_marker("op-p1")) and "disco al 99%" in followup["content"]
    assert glpi.requests("PUT", f"Ticket/{ref.ref}")

    backend.set_priority(thread_of(ref.ref), "high", "Ora critico: disco al 99%", op_id="op-p1", retry=True)
    assert len(glpi.followups(int(ref.ref))) == 1


def test_set_priority_on_closed_ticket_raises_ticket_closed(glpi, backend) -> None:
    ref = backend.create(draft(priority="medium"))
    glpi.close_ticket(int(ref.ref))
    with pytest.raises(TicketClosed):
        backend.set_priority(thread_of(ref.ref), "high", "Ora critico", op_id="op-p1", retry=False)
    assert glpi.ticket(int(ref.ref))["priority"] == 3 and glpi.followups() == []


# ------------------------------------------------------------------------------- solve

def test_solve_writes_one_solution_and_solve_twice_is_fine(glpi, backend) -> None:
    ref = backend.create(draft())
    backend.solve(thread_of(ref.ref), "Backup tornato regolare.", op_id="op-s1", retry=False)
    ticket_id = int(ref.ref)
    assert glpi.ticket(ticket_id)["status"] == SOLVED
    [solution] = glpi.solutions(ticket_id)
    assert solution["content"].endswith(op_marker("op-s1")) and solution["solutiontypes_id"] == 3
    assert backend.status(thread_of(ref.ref)) == "solved"

    backend.solve(thread_of(ref.ref), "Backup tornato regolare.", op_id="op-s1", retry=True)
    backend.solve(thread_of(ref.ref), "Di nuovo regolare.", op_id="op-s2", retry=False)
    assert len(glpi.solutions(ticket_id)) == 1


def test_solve_retry_after_lost_answer(glpi, backend) -> None:
    ref = backend.create(draft())
    glpi.fail_next(1, status=504, after=True, method="POST", path="ITILSolution")
    with pytest.raises(DeliveryError) as caught:
        backend.solve(thread_of(ref.ref), "Regolare.", op_id="op-s1", retry=False)
    assert caught.value.retryable
    glpi.set_status(int(ref.ref), 2)  # a person refused the solution: ticket back in progress
    backend.solve(thread_of(ref.ref), "Regolare.", op_id="op-s1", retry=True)
    assert len(glpi.solutions(int(ref.ref))) == 1


def test_solve_of_closed_or_purged_ticket_is_success(glpi, backend) -> None:
    first = backend.create(draft())
    glpi.close_ticket(int(first.ref))
    backend.solve(thread_of(first.ref), "Regolare.", op_id="op-s1", retry=False)
    second = backend.create(draft(key="crema/disk/srv2", op_id="op-create-2"))
    glpi.delete_ticket(int(second.ref))
    backend.solve(thread_of(second.ref, key="crema/disk/srv2"), "Regolare.", op_id="op-s2", retry=False)
    assert glpi.solutions() == []


# ------------------------------------------------------------------------------ status

@pytest.mark.parametrize(("glpi_status", "expected"), [
    (1, "new"), (2, "open"), (3, "open"), (4, "open"), (5, "solved"), (6, "closed")])
def test_status_mapping(glpi, backend, glpi_status, expected) -> None:
    ticket_id = glpi.add_ticket("Qualcosa [custode:k]", status=glpi_status)
    assert backend.status(thread_of(str(ticket_id), key="k")) == expected


def test_status_behind_a_proxy_404_is_an_error_not_closed(glpi, backend) -> None:
    ref = backend.create(draft())
    glpi.fail_next(1, status=404, path=r"^Ticket/\d+$", code="ERROR", message="not GLPI")
    with pytest.raises(DeliveryError) as caught:
        backend.status(thread_of(ref.ref))
    assert not isinstance(caught.value, TicketClosed) and caught.value.status == 404


def test_status_of_purged_ticket_is_closed(glpi, backend) -> None:
    ref = backend.create(draft())
    glpi.delete_ticket(int(ref.ref))
    assert backend.status(thread_of(ref.ref)) == "closed"


def test_foreign_ref_is_a_clear_non_retryable_error(backend) -> None:
    with pytest.raises(DeliveryError) as caught:
        backend.comment(thread_of("<abc@mail.example>"), "x", op_id="op", retry=False)
    assert not caught.value.retryable and "not a GLPI ticket id" in str(caught.value)


# ------------------------------------------------------------------------------ errors

def test_wrong_user_token_is_not_retryable_and_names_it(glpi, monkeypatch, caplog) -> None:
    monkeypatch.setenv("GLPI_USER_TOKEN", "wrong-user-secret")
    monkeypatch.setenv("GLPI_APP_TOKEN", APP_TOKEN)
    backend = make_backend(glpi)
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as caught:
        backend.create(draft())
    message = str(caught.value)
    assert not caught.value.retryable and caught.value.status == 401
    assert "user_token" in message and "GLPI_USER_TOKEN" in message
    assert "wrong-user-secret" not in message and APP_TOKEN not in message
    assert "wrong-user-secret" not in caplog.text
    assert glpi.tickets() == []
    backend.close()


@pytest.mark.parametrize("app_token", ["wrong-app-secret", None])
def test_wrong_or_missing_app_token_is_not_retryable_and_names_it(glpi, monkeypatch, app_token) -> None:
    monkeypatch.setenv("GLPI_USER_TOKEN", USER_TOKEN)
    if app_token is None:
        backend = make_backend(glpi, app_token=None)
    else:
        monkeypatch.setenv("GLPI_APP_TOKEN", app_token)
        backend = make_backend(glpi)
    with pytest.raises(DeliveryError) as caught:
        backend.find_open("crema/x/y", TENANT)
    message = str(caught.value)
    assert not caught.value.retryable and caught.value.status == 400
    assert "app_token" in message and "initSession" in message
    assert ("GLPI_APP_TOKEN" in message) if app_token else ("set app_token" in message)
    assert USER_TOKEN not in message and "wrong-app-secret" not in message
    backend.close()


def test_search_past_the_end_means_nothing_found(glpi, backend) -> None:
    glpi.fail_next(1, status=400, path="search/Ticket", code="ERROR_RANGE_EXCEED_TOTAL",
                   message="Provided range exceed total count of data: 0")
    assert backend.find_open("crema/x/y", TENANT) is None


def test_missing_rights_are_not_retryable(glpi, backend) -> None:
    glpi.fail_next(1, status=401, method="POST", path="ITILSolution", code="ERROR_RIGHT_MISSING",
                   message="You don't have permission to perform this action.")
    ref = backend.create(draft())
    with pytest.raises(DeliveryError) as caught:
        backend.solve(thread_of(ref.ref), "Regolare.", op_id="op-s1", retry=False)
    assert not caught.value.retryable and "rights" in str(caught.value)


def test_session_refused_twice_in_a_row_is_retryable(glpi, backend) -> None:
    glpi.fail_next(2, status=401, path="search/Ticket", code="ERROR_SESSION_TOKEN_INVALID",
                   message="session_token seems invalid")
    with pytest.raises(DeliveryError) as caught:
        backend.find_open("crema/x/y", TENANT)
    assert caught.value.retryable and glpi.sessions_started == 2  # re-init once, not in a loop


def test_429_is_retryable_with_retry_after(glpi, backend) -> None:
    glpi.fail_next(1, status=429, retry_after=7, method="POST", path="^Ticket$")
    with pytest.raises(DeliveryError) as caught:
        backend.create(draft())
    assert caught.value.retryable and caught.value.retry_after == 7 and caught.value.status == 429
    assert glpi.tickets() == []
    backend.create(draft())
    assert len(glpi.tickets()) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable(glpi, backend, status) -> None:
    glpi.fail_next(1, status=status)  # the very first request: initSession
    with pytest.raises(DeliveryError) as caught:
        backend.find_open("crema/x/y", TENANT)
    assert caught.value.retryable and caught.value.status == status
    assert "glpi-main" in str(caught.value)
    assert backend.find_open("crema/x/y", TENANT) is None


def test_hang_is_retryable_within_the_timeout(glpi, tokens) -> None:
    backend = make_backend(glpi, timeout=0.3)
    glpi.hang_next(1, method="POST", path="ITILFollowup")
    ref = backend.create(draft())
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        backend.comment(thread_of(ref.ref), "x", op_id="op-c1", retry=False)
    assert caught.value.retryable and "0.3 s" in str(caught.value)
    assert time.monotonic() - started < 2.0
    backend.comment(thread_of(ref.ref), "x", op_id="op-c1", retry=True)
    assert len(glpi.followups()) == 1
    backend.close()


def test_unreachable_helpdesk_is_retryable(tokens) -> None:
    with FakeGlpi(user_token=USER_TOKEN, app_token=APP_TOKEN) as stopped:
        url = stopped.url
    config = GlpiConfig.model_validate({"type": "glpi", "url": url, "user_token": {"env": "GLPI_USER_TOKEN"},
                                        "timeout": 1.0})
    backend = GlpiBackend("glpi-main", config)
    with pytest.raises(DeliveryError) as caught:
        backend.find_open("crema/x/y", TENANT)
    assert caught.value.retryable
    backend.close()


def test_unknown_ticket_id_raises_ticket_closed(glpi, backend) -> None:
    with pytest.raises(TicketClosed):  # 404 ERROR_ITEM_NOT_FOUND: purged, a new ticket is needed
        backend.comment(thread_of("999"), "x", op_id="op", retry=False)


def test_refused_data_is_not_retryable(glpi, backend) -> None:
    glpi.fail_next(1, status=400, method="POST", path="^Ticket$")
    with pytest.raises(DeliveryError) as caught:
        backend.create(draft())
    assert not caught.value.retryable and caught.value.status == 400
    assert "category_id" in str(caught.value) and "custode tickets retry" in str(caught.value)


# ---------------------------------------------------------- at-least-once under faults

def test_random_faults_end_in_exactly_one_ticket_and_one_followup(glpi, backend) -> None:
    """A miniature of the delivery loop: repeat each step until it succeeds, under 40 % failures."""
    key = "crema/backup_missing/srv1"
    glpi.fail_ratio(0.4, seed=11, after=0.5)

    def until_done(step, limit: int = 60):
        for attempt in range(limit):
            try:
                return step(attempt > 0)
            except DeliveryError as exc:
                assert exc.retryable, exc
                backend.close() if attempt % 3 == 0 else None
        raise AssertionError("never succeeded")

    def open_ticket(_retry: bool):
        return backend.find_open(key, TENANT) or backend.create(draft(key=key))

    ref = until_done(open_ticket)
    until_done(lambda retry: backend.comment(thread_of(ref.ref), "ancora", op_id="op-c1", retry=retry))
    until_done(lambda retry: backend.solve(thread_of(ref.ref), "risolto", op_id="op-s1", retry=retry))
    glpi.clear_faults()
    backend.close()

    assert len(glpi.tickets()) == 1
    assert len(glpi.followups()) == 1 and len(glpi.solutions()) == 1
    assert glpi.ticket(int(ref.ref))["status"] == SOLVED
