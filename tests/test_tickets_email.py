"""The e-mail ticket backend against a real SMTP dialogue (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from conftest import free_port
from smtp_server import SmtpServer

from custode.agent.smtp_settings import SmtpSettings
from custode.agent.tickets.backends import build_backend
from custode.agent.tickets.backends.base import DeliveryError, op_marker
from custode.agent.tickets.backends.email import EmailBackend, message_id_for
from custode.agent.tickets.config import EmailConfig
from custode.agent.tickets.model import TenantTicketing, TicketDraft, TicketThread

SENDER = "Custode <custode@provider.example.it>"
HELPDESK = "helpdesk@provider.example.it"
KEY = "comune-a/backup_missing/srv-fs01"
SUBJECT = "Backup mancante su srv-fs01"
BODY = ("Il backup notturno di srv-fs01 non è stato eseguito.\n"
        "Ultimo backup riuscito: lunedì alle 23:00 — verificare.")
USER, PASSWORD = "custode", "giusta-123"


def smtp(server: SmtpServer | None = None, **overrides) -> SmtpSettings:
    values: dict = {"host": "127.0.0.1", "sender": SENDER, "timeout": 5, "security": "none",
                    "port": server.port if server else free_port()}
    if server is not None and server.starttls:
        values.update(security="starttls", ca_file=server.ca_file)
    values.update(overrides)
    return SmtpSettings.model_validate(values)


def config(to: list[str] | None = None, **extra) -> EmailConfig:
    return EmailConfig.model_validate({"type": "email", "to": [HELPDESK] if to is None else to, **extra})


def tenant(recipients: tuple[str, ...] = ()) -> TenantTicketing:
    return TenantTicketing(tenant="comune-a", tenant_name="Comune di Àrea", recipients=recipients)


def draft(op_id: str = "op-create-1", **overrides) -> TicketDraft:
    values: dict = {"key": KEY, "tenant": tenant(), "subject": SUBJECT, "body": BODY, "priority": "high",
                    "due_at": datetime(2025, 3, 4, 9, 0, tzinfo=timezone.utc), "op_id": op_id}
    values.update(overrides)
    return TicketDraft(**values)


def header(message, name: str) -> str | None:
    """A header unfolded, as a helpdesk reads it (long ones are folded onto a continuation line)."""
    value = message[name]
    return None if value is None else " ".join(str(value).split())


def thread(ref: str, references: tuple[str, ...] = (), recipients: tuple[str, ...] = ()) -> TicketThread:
    return TicketThread(key=KEY, ref=ref, tenant=tenant(recipients), subject=SUBJECT, references=references)


# --- threading ---------------------------------------------------------------------------------

def test_create_follow_ups_and_solve_form_one_thread():
    with SmtpServer() as server:
        backend = EmailBackend("posta", config(), smtp(server))
        assert backend.find_open(KEY, tenant()) is None
        first = backend.create(draft())
        references = (first.ref,)
        backend.comment(thread(first.ref, references), "Il problema persiste.", op_id="op-c1", retry=False)
        references += (message_id_for("op-c1", SENDER),)
        backend.set_priority(thread(first.ref, references), "low", "Priorità abbassata: il disco è in pulizia.",
                             op_id="op-p1", retry=False)
        references += (message_id_for("op-p1", SENDER),)
        backend.solve(thread(first.ref, references), "Risolto: il backup è tornato regolare.", op_id="op-s1",
                      retry=False)
        create, comment, priority, solve = [received.message for received in server.wait_for(4)]

    assert first.ref == "<custode.op-create-1@provider.example.it>"
    assert header(create, "Message-ID") == first.ref
    assert header(create, "Subject") == f"{SUBJECT} [custode:{KEY}]"
    assert header(create, "In-Reply-To") is None and header(create, "References") is None
    assert header(create, "X-Custode-Incident") == KEY
    assert header(create, "X-Priority") == "1" and header(create, "Importance") == "high"
    text = create.get_content().replace("\r\n", "\n")  # the wire's CRLF
    assert text.startswith(BODY)  # accents and the dash survive UTF-8 untouched
    assert text.rstrip("\n").splitlines()[-1] == op_marker("op-create-1")
    assert create.get_content_charset() == "utf-8"

    expected_ids = ["<custode.op-c1@provider.example.it>", "<custode.op-p1@provider.example.it>",
                    "<custode.op-s1@provider.example.it>"]
    for number, (reply, message_id) in enumerate(zip((comment, priority, solve), expected_ids, strict=True), start=1):
        assert header(reply, "Message-ID") == message_id
        assert header(reply, "Subject") == f"Re: {SUBJECT} [custode:{KEY}]"
        assert header(reply, "In-Reply-To") == first.ref
        assert header(reply, "References").split() == [first.ref, *expected_ids[:number - 1]]
        assert header(reply, "X-Custode-Incident") == KEY
    assert header(comment, "X-Priority") is None
    assert header(priority, "X-Priority") == "5" and header(priority, "Importance") == "low"
    assert priority.get_content().startswith("Priorità abbassata")
    assert solve.get_content().rstrip("\n").splitlines()[-1] == op_marker("op-s1")
    assert [header(m, "X-Custode-Event") for m in (comment, priority, solve)] == ["comment", "priority", "solve"]


def test_reply_without_references_threads_on_the_first_message():
    with SmtpServer() as server:
        EmailBackend("posta", config(), smtp(server)).comment(
            thread("<custode.op-create-1@provider.example.it>"), "Ancora guasto.", op_id="op-c2", retry=True)
        (received,) = server.wait_for(1)
    assert header(received.message, "In-Reply-To") == "<custode.op-create-1@provider.example.it>"
    assert header(received.message, "References") == "<custode.op-create-1@provider.example.it>"


def test_a_retry_carries_the_same_message_id():
    with SmtpServer() as server:
        backend = EmailBackend("posta", config(), smtp(server))
        refs = [backend.create(draft("op-x")), backend.create(draft("op-x")), backend.create(draft("op-y"))]
        parent = thread(refs[0].ref)
        backend.comment(parent, "Nota", op_id="op-c", retry=False)
        backend.comment(parent, "Nota", op_id="op-c", retry=True)
        messages = [received.message for received in server.wait_for(5)]
    assert refs[0].ref == refs[1].ref != refs[2].ref
    assert [header(m, "Message-ID") for m in messages[:3]] == [refs[0].ref, refs[0].ref, refs[2].ref]
    assert header(messages[3], "Message-ID") == header(messages[4], "Message-ID") \
        == "<custode.op-c@provider.example.it>"


def test_an_op_id_unfit_for_a_message_id_is_hashed_deterministically():
    odd = "create comune-a/backup <x>@y"
    first, second = message_id_for(odd, SENDER), message_id_for(odd, SENDER)
    assert first == second and first != message_id_for(odd + "!", SENDER)
    assert first.startswith("<custode.h") and first.endswith("@provider.example.it>")
    assert " " not in first and first.count("@") == 1 and first.count("<") == 1
    with SmtpServer() as server:
        ref = EmailBackend("posta", config(), smtp(server)).create(draft(odd))
        (received,) = server.wait_for(1)
    assert header(received.message, "Message-ID") == ref.ref == first


# --- recipients and settings -------------------------------------------------------------------

def test_tenant_recipients_replace_the_default_address():
    with SmtpServer() as server:
        backend = EmailBackend("posta", config(), smtp(server))
        backend.create(draft("op-1", tenant=tenant(("ced@comune-a.example.it", "Sindaco <sindaco@comune-a.it>"))))
        backend.create(draft("op-2"))
        backend.solve(thread("<a@b.it>", recipients=("ced@comune-a.example.it",)), "Fatto", op_id="op-3",
                      retry=False)
        own, default, reply = server.wait_for(3)
    assert own.rcpt_tos == ["ced@comune-a.example.it", "sindaco@comune-a.it"]
    assert "sindaco@comune-a.it" in header(own.message, "To")
    assert default.rcpt_tos == [HELPDESK]
    assert reply.rcpt_tos == ["ced@comune-a.example.it"]


def test_no_recipients_is_a_clear_permanent_error():
    backend = EmailBackend("posta", config(to=[]), smtp())
    with pytest.raises(DeliveryError) as caught:
        backend.create(draft())
    assert not caught.value.retryable
    assert "tenants.comune-a.tickets.recipients" in str(caught.value)
    assert "tickets.backends.posta.to" in str(caught.value)


def test_no_smtp_settings_is_a_clear_permanent_error():
    backend = build_backend("posta", config(), None)
    assert isinstance(backend, EmailBackend) and backend.kind == "email"
    with pytest.raises(DeliveryError) as caught:
        backend.create(draft())
    assert not caught.value.retryable
    assert "smtp section" in str(caught.value) and "posta" in str(caught.value)


def test_the_backends_own_smtp_wins_over_the_top_level_one():
    with SmtpServer() as server:
        own = smtp(server).model_dump(mode="json", exclude_none=True)
        backend = build_backend("posta", config(smtp=own), smtp())  # top level: nothing listens there
        backend.create(draft())
        assert len(server.wait_for(1)) == 1


def test_status_is_unknown_and_close_is_harmless():
    with SmtpServer() as server:
        backend = EmailBackend("posta", config(), smtp(server))
        assert backend.status(thread("<a@b.it>")) == "unknown"
        backend.close()
        backend.create(draft())
        assert len(server.wait_for(1)) == 1


# --- failures ----------------------------------------------------------------------------------

def test_smtp_4xx_is_retryable():
    with SmtpServer(fail_with=(451, "4.3.0 Mailbox temporarily unavailable")) as server:
        with pytest.raises(DeliveryError) as caught:
            EmailBackend("posta", config(), smtp(server)).create(draft())
    assert caught.value.retryable
    assert "'posta'" in str(caught.value) and "451" in str(caught.value)


def test_smtp_5xx_is_permanent():
    with SmtpServer(fail_with=(554, "5.7.1 Message rejected as spam")) as server:
        with pytest.raises(DeliveryError) as caught:
            EmailBackend("posta", config(), smtp(server)).comment(thread("<a@b.it>"), "x", op_id="o", retry=False)
    assert not caught.value.retryable
    assert "554" in str(caught.value) and "custode tickets retry" in str(caught.value)


def test_refused_login_is_permanent_and_keeps_the_password_out(monkeypatch):
    monkeypatch.setenv("CUSTODE_TEST_TICKET_SMTP", "sbagliata-999")
    with SmtpServer(starttls=True, auth=(USER, PASSWORD)) as server:
        settings = smtp(server, user=USER, password={"env": "CUSTODE_TEST_TICKET_SMTP"})
        with pytest.raises(DeliveryError) as caught:
            EmailBackend("posta", config(), settings).create(draft())
        assert set(server.failed_logins) == {USER}  # smtplib tries each mechanism
        assert server.messages == []
    assert not caught.value.retryable
    assert "CUSTODE_TEST_TICKET_SMTP" in str(caught.value)
    assert "sbagliata-999" not in str(caught.value)


def test_login_with_the_right_password_over_starttls_delivers(monkeypatch):
    monkeypatch.setenv("CUSTODE_TEST_TICKET_SMTP", PASSWORD)
    with SmtpServer(starttls=True, auth=(USER, PASSWORD)) as server:
        settings = smtp(server, user=USER, password={"env": "CUSTODE_TEST_TICKET_SMTP"})
        EmailBackend("posta", config(), settings).create(draft())
        (received,) = server.wait_for(1)
    assert received.login == USER and received.tls


def test_unreachable_server_is_retryable():
    with pytest.raises(DeliveryError) as caught:
        EmailBackend("posta", config(), smtp()).create(draft())
    assert caught.value.retryable
    assert "connection refused" in str(caught.value)
