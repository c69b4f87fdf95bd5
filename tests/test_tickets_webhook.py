"""The webhook ticket backend against a real HTTP receiver on 127.0.0.1 that checks signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import pytest
from conftest import free_port
from webhook_receiver import WebhookReceiver

from custode.agent.tickets.backends import build_backend
from custode.agent.tickets.backends.base import DeliveryError, TicketClosed, op_marker
from custode.agent.tickets.backends.webhook import WebhookBackend, verify_signature
from custode.agent.tickets.config import WebhookConfig
from custode.agent.tickets.model import TenantTicketing, TicketDraft, TicketThread

SECRET = "chiave-condivisa-è-lunga"
SECRET_ENV = "CUSTODE_TEST_WEBHOOK_SECRET"
KEY = "comune-a/disk_space/srv-db01"
TENANT = TenantTicketing(tenant="comune-a", tenant_name="Comune di Àrea")
BODY = "Spazio disco al 97% su srv-db01 (volume /var/lib/postgresql) — intervenire entro oggi."


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, SECRET)


def config(url: str, **extra) -> WebhookConfig:
    return WebhookConfig.model_validate({"type": "webhook", "url": url, "secret": {"env": SECRET_ENV},
                                         "timeout": 5, **extra})


def draft(op_id: str = "op-create-1", **overrides) -> TicketDraft:
    values: dict = {"key": KEY, "tenant": TENANT, "subject": "Disco quasi pieno su srv-db01", "body": BODY,
                    "priority": "high", "due_at": datetime(2025, 3, 4, 9, 0, tzinfo=timezone.utc),
                    "op_id": op_id, "tags": ("custode", "disco")}
    values.update(overrides)
    return TicketDraft(**values)


def thread(ref: str = "WH-1") -> TicketThread:
    return TicketThread(key=KEY, ref=ref, tenant=TENANT, subject="Disco quasi pieno su srv-db01")


# --- signature ---------------------------------------------------------------------------------

def test_verify_signature_accepts_the_right_key_only():
    body = '{"event":"create","text":"perché"}'.encode()
    good = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert verify_signature(b"k", body, good)
    assert verify_signature(b"k", body, good.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(b"other", body, good)
    assert not verify_signature(b"k", body + b" ", good)
    assert not verify_signature(b"k", body, good.replace("sha256=", "sha1="))
    assert not verify_signature(b"k", body, hmac.new(b"k", body, hashlib.sha256).hexdigest())
    assert not verify_signature(b"k", body, "")
    assert not verify_signature(b"k", body, "sha256=zz")


# --- delivery ----------------------------------------------------------------------------------

def test_create_posts_the_documented_signed_document():
    with WebhookReceiver(SECRET.encode()) as receiver:
        backend = build_backend("hook", config(receiver.url, headers={
            "X-Tenant-Router": "ced", "x-custode-signature": "forged", "Idempotency-Key": "nope"}))
        assert isinstance(backend, WebhookBackend) and backend.kind == "webhook"
        assert backend.find_open(KEY, TENANT) is None
        ref = backend.create(draft())
        (event,) = receiver.events
    assert ref.ref == "WH-1"
    assert event.payload == {
        "version": "1", "event": "create", "delivery_id": "op-create-1", "key": KEY, "tenant": "comune-a",
        "tenant_name": "Comune di Àrea", "ref": None, "subject": "Disco quasi pieno su srv-db01",
        "text": f"{BODY}\n\n{op_marker('op-create-1')}", "priority": "high",
        "due_at": "2025-03-04T09:00:00+00:00", "previous_ref": None, "tags": ["custode", "disco"]}
    headers = event.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-custode-delivery"] == headers["idempotency-key"] == "op-create-1"
    assert headers["x-tenant-router"] == "ced"
    assert verify_signature(SECRET.encode(), event.body, headers["x-custode-signature"])
    assert not verify_signature(b"another-secret", event.body, headers["x-custode-signature"])
    assert "Comune di Àrea" in event.body.decode("utf-8")  # the signed bytes are the UTF-8 text as sent


def test_create_without_an_answer_uses_the_key_as_ref():
    with WebhookReceiver(SECRET.encode(), answer_id=False) as receiver:
        ref = WebhookBackend("hook", config(receiver.url)).create(draft(previous_ref="WH-0"))
        (event,) = receiver.events
    assert ref.ref == KEY
    assert event.payload["previous_ref"] == "WH-0"


def test_follow_ups_carry_ref_event_and_priority():
    with WebhookReceiver(SECRET.encode()) as receiver:
        backend = WebhookBackend("hook", config(receiver.url))
        backend.comment(thread(), "Ancora al 98%.", op_id="op-c1", retry=False)
        backend.set_priority(thread(), "medium", "Scende a media.", op_id="op-p1", retry=False)
        backend.solve(thread(), "Risolto.", op_id="op-s1", retry=False)
        assert backend.status(thread()) == "unknown"
        comment, priority, solve = (event.payload for event in receiver.events)
    assert [comment["event"], priority["event"], solve["event"]] == ["comment", "priority", "solve"]
    assert {comment["ref"], priority["ref"], solve["ref"]} == {"WH-1"}
    assert comment["priority"] is None and priority["priority"] == "medium"
    assert priority["text"] == f"Scende a media.\n\n{op_marker('op-p1')}"
    assert solve["delivery_id"] == "op-s1" and solve["due_at"] is None and solve["tags"] == []


def test_a_repeated_delivery_id_is_dropped_by_the_receiver():
    with WebhookReceiver(SECRET.encode()) as receiver:
        backend = WebhookBackend("hook", config(receiver.url))
        first, again = backend.create(draft()), backend.create(draft())
        backend.comment(thread(first.ref), "Nota", op_id="op-c", retry=False)
        backend.comment(thread(first.ref), "Nota", op_id="op-c", retry=True)
        assert receiver.requests == 4
        assert [event.payload["event"] for event in receiver.events] == ["create", "comment"]
        assert receiver.duplicates == ["op-create-1", "op-c"]
    assert first.ref == again.ref == "WH-1"


def test_close_then_more_calls_reopen_the_connection():
    with WebhookReceiver(SECRET.encode()) as receiver:
        backend = WebhookBackend("hook", config(receiver.url))
        backend.create(draft("op-1"))
        backend.close()
        backend.comment(thread(), "dopo close", op_id="op-2", retry=False)
        backend.close()
        backend.close()
        assert len(receiver.events) == 2


# --- failures ----------------------------------------------------------------------------------

def test_a_wrong_secret_is_refused_and_the_error_names_the_secret(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "chiave-sbagliata")
    with WebhookReceiver(SECRET.encode()) as receiver:
        with pytest.raises(DeliveryError) as caught:
            WebhookBackend("hook", config(receiver.url)).create(draft())
        assert receiver.events == [] and len(receiver.rejected) == 1
    error = caught.value
    assert not error.retryable and error.status == 401
    assert "tickets.backends.hook.secret" in str(error) and SECRET_ENV in str(error)
    assert "chiave-sbagliata" not in str(error) and SECRET not in str(error)


def test_a_missing_secret_is_a_permanent_error():
    with WebhookReceiver(SECRET.encode()) as receiver:
        backend = WebhookBackend("hook", config(receiver.url, secret={"env": "CUSTODE_TEST_NO_SUCH_SECRET"}))
        with pytest.raises(DeliveryError) as caught:
            backend.create(draft())
        assert receiver.requests == 0
    assert not caught.value.retryable and "CUSTODE_TEST_NO_SUCH_SECRET" in str(caught.value)


def test_429_is_retried_after_what_the_receiver_asked():
    with WebhookReceiver(SECRET.encode()) as receiver:
        backend = WebhookBackend("hook", config(receiver.url))
        receiver.fail_next(1, status=429, retry_after="17")
        with pytest.raises(DeliveryError) as caught:
            backend.create(draft())
        assert caught.value.retryable and caught.value.retry_after == 17 and caught.value.status == 429
        assert backend.create(draft()).ref == "WH-1"  # the fault is spent: the retry goes through
        assert len(receiver.events) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable(status):
    with WebhookReceiver(SECRET.encode()) as receiver:
        receiver.fail_next(1, status=status)
        with pytest.raises(DeliveryError) as caught:
            WebhookBackend("hook", config(receiver.url)).solve(thread(), "x", op_id="op-s", retry=False)
        assert receiver.events == []
    assert caught.value.retryable and caught.value.status == status and "'hook'" in str(caught.value)


def test_a_hanging_receiver_is_retryable_within_the_timeout():
    with WebhookReceiver(SECRET.encode()) as receiver:
        receiver.hang_next(1, seconds=5)
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            WebhookBackend("hook", config(receiver.url, timeout=0.5)).create(draft())
        elapsed = time.monotonic() - started
    assert caught.value.retryable and "no answer within 0.5 s" in str(caught.value)
    assert elapsed < 3


def test_nothing_listening_is_retryable():
    with pytest.raises(DeliveryError) as caught:
        WebhookBackend("hook", config(f"http://127.0.0.1:{free_port()}/hook")).create(draft())
    assert caught.value.retryable and "cannot connect" in str(caught.value)


def test_gone_means_closed_for_follow_ups_and_done_for_solve():
    with WebhookReceiver(SECRET.encode()) as receiver:
        receiver.gone.add("WH-9")
        backend = WebhookBackend("hook", config(receiver.url))
        with pytest.raises(TicketClosed) as caught:
            backend.comment(thread("WH-9"), "Ancora guasto", op_id="op-c", retry=False)
        assert caught.value.ref == "WH-9" and not caught.value.retryable
        with pytest.raises(TicketClosed):
            backend.set_priority(thread("WH-9"), "high", "Peggiora", op_id="op-p", retry=False)
        backend.solve(thread("WH-9"), "Risolto", op_id="op-s", retry=False)  # already closed: success
        assert receiver.requests == 3 and receiver.events == []


def test_a_client_error_is_permanent():
    with WebhookReceiver(SECRET.encode(), path="/hooks/custode") as receiver:
        wrong = receiver.url.replace("/hooks/custode", "/hooks/altro")
        with pytest.raises(DeliveryError) as caught:
            WebhookBackend("hook", config(wrong)).create(draft())
    assert not caught.value.retryable and caught.value.status == 404


def test_signature_covers_the_exact_bytes_sent():
    with WebhookReceiver(SECRET.encode()) as receiver:
        WebhookBackend("hook", config(receiver.url)).create(draft(body="Perché? «virgolette» e emoji ✓"))
        (event,) = receiver.events
    # re-serialising the parsed JSON differently gives other bytes, which must not verify
    reserialised = json.dumps(event.payload).encode()
    assert reserialised != event.body
    assert not verify_signature(SECRET.encode(), reserialised, event.headers["x-custode-signature"])
    assert verify_signature(SECRET.encode(), event.body, event.headers["x-custode-signature"])
    assert event.payload["text"].startswith("Perché? «virgolette» e emoji ✓")
