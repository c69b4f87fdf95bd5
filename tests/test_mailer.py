"""The mailer against a real SMTP dialogue (aiosmtpd on 127.0.0.1): TLS, login, refusals, outages."""

from __future__ import annotations

import re
import socket
from datetime import datetime

import pytest
from conftest import free_port
from pydantic import ValidationError
from smtp_server import SmtpServer

from custode.agent.mailer import (
    Mailer,
    MailerError,
    OutgoingMail,
    SmtpSettings,
    build_message,
    new_message_id,
    parse_address,
)

SENDER = "Custode <custode@provider.example.it>"
REFERENT = "referente@comune-esempio.it"
SUBJECT = "Intervento di manutenzione – aggiornamento Sicr@web"
USER, PASSWORD = "custode", "pàss-w0rd"


def settings(server: SmtpServer | None = None, **overrides) -> SmtpSettings:
    values: dict = {"host": "127.0.0.1", "sender": SENDER, "timeout": 5}
    if server is not None:
        values["port"] = server.port
        values["security"] = "starttls" if server.starttls else "tls" if server.implicit_tls else "none"
        if server.tls:
            values["ca_file"] = server.ca_file
        if server.auth is not None:
            values.update(user=server.auth[0], password={"env": "CUSTODE_TEST_SMTP_PASSWORD"})
    values.update(overrides)
    return SmtpSettings.model_validate(values)


def mail(**overrides) -> OutgoingMail:
    values: dict = {"to": [REFERENT], "subject": SUBJECT,
                    "text": "Gentile referente,\nl'intervento è iniziato alle 22:00.\n"}
    values.update(overrides)
    return OutgoingMail(**values)


@pytest.fixture(autouse=True)
def smtp_password(monkeypatch):
    monkeypatch.setenv("CUSTODE_TEST_SMTP_PASSWORD", PASSWORD)


# --- delivery --------------------------------------------------------------------------------

def test_starttls_with_private_ca_and_login_delivers_threaded_message():
    with SmtpServer(starttls=True, auth=(USER, PASSWORD)) as server:
        parent = "<ticket-41.abc@helpdesk.example.it>"
        message_id = Mailer(settings(server)).send(mail(
            to=[REFERENT, "Ufficio CED <ced@comune-esempio.it>"],
            cc=["tecnico@provider.example.it"],
            html="<p>L'intervento è <b>iniziato</b>.</p>",
            in_reply_to=parent,
            references=["<ticket-40.abc@helpdesk.example.it>"],
            headers={"X-Custode-Incident": "inc-2024-0042"},
        ))
        [received] = server.wait_for(1)

    assert received.tls and received.login == USER
    assert received.mail_from == "custode@provider.example.it"
    assert received.rcpt_tos == [REFERENT, "ced@comune-esempio.it", "tecnico@provider.example.it"]
    message = received.message
    assert message["Subject"] == SUBJECT
    assert message["From"] == SENDER
    assert message["To"].addresses[1].display_name == "Ufficio CED"
    assert message["Cc"] == "tecnico@provider.example.it"
    assert message["Message-ID"] == message_id
    assert re.fullmatch(r"<[^@<>\s]+@provider\.example\.it>", message_id)
    assert message["In-Reply-To"] == parent
    assert message["References"].split() == ["<ticket-40.abc@helpdesk.example.it>", parent]
    assert message["X-Custode-Incident"] == "inc-2024-0042"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # CRLF on the wire
    assert text.startswith("Gentile referente,\nl'intervento è")
    assert "<b>iniziato</b>" in message.get_body(("html",)).get_content()
    date = message["Date"].datetime
    assert date.tzinfo is not None and abs((datetime.now().astimezone() - date).total_seconds()) < 60
    assert b"=?utf-8?" in received.raw.split(b"\r\n\r\n")[0]  # the subject is encoded, not raw 8-bit


def test_implicit_tls_delivers_and_keeps_a_given_message_id(monkeypatch):
    monkeypatch.setenv("CUSTODE_TEST_SMTP_PASSWORD", "ascii-0nly")  # smtplib's own login path
    with SmtpServer(implicit_tls=True, auth=(USER, "ascii-0nly")) as server:
        assert settings(server).endpoint_port == server.port
        message_id = Mailer(settings(server)).send(mail(message_id="fixed.1@provider.example.it"))
        [received] = server.wait_for(1)
    assert message_id == "<fixed.1@provider.example.it>"
    assert received.tls and received.login == USER
    assert received.message["Message-ID"] == message_id
    assert received.message.get_content_type() == "text/plain"


def test_plain_relay_on_localhost_without_login():
    with SmtpServer() as server:
        Mailer(settings(server)).send(mail())
        [received] = server.wait_for(1)
    assert not received.tls and received.login is None


# --- TLS ---------------------------------------------------------------------------------------

def test_untrusted_certificate_is_refused_with_the_fix():
    with SmtpServer(starttls=True) as server:
        untrusted = settings(server, ca_file=None)
        with pytest.raises(MailerError) as caught:
            Mailer(untrusted).send(mail())
        assert server.messages == []
    error = caught.value
    assert not error.retryable
    assert f"127.0.0.1:{server.port}" in str(error)
    assert "certificate could not be verified" in str(error) and "ca_file" in str(error)


def test_unverified_tls_is_accepted_when_configured():
    with SmtpServer(starttls=True) as server:
        Mailer(settings(server, ca_file=None, tls_verify=False)).send(mail())
        assert server.wait_for(1)[0].tls


def test_server_without_starttls_is_refused_not_downgraded():
    with SmtpServer() as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server, security="starttls")).send(mail())
        assert server.messages == []
    assert "does not offer STARTTLS" in str(caught.value)
    assert not caught.value.retryable


def test_implicit_tls_against_a_starttls_port_names_the_fix():
    with SmtpServer(starttls=True) as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server, security="tls")).send(mail())
    assert "security: starttls" in str(caught.value)
    assert not caught.value.retryable


# --- refusals ----------------------------------------------------------------------------------

def test_wrong_password_is_permanent_and_says_so():
    with SmtpServer(starttls=True, auth=(USER, "another-password")) as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server)).send(mail())
        assert server.messages == [] and server.failed_logins
    error = caught.value
    assert not error.retryable and error.code == 535
    assert f"127.0.0.1:{server.port}" in str(error)
    assert f"login as {USER!r} refused" in str(error)
    assert "CUSTODE_TEST_SMTP_PASSWORD" in str(error)  # where the password came from
    assert PASSWORD not in str(error)


def test_server_requiring_login_says_so():
    with SmtpServer(starttls=True, auth=(USER, PASSWORD)) as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server, user=None, password=None)).send(mail())
    assert "requires login" in str(caught.value) and "set user and password" in str(caught.value)
    assert not caught.value.retryable


def test_refused_recipient_is_named():
    with SmtpServer(refuse_recipients={"nessuno@comune-esempio.it"}) as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server)).send(mail(to=["nessuno@comune-esempio.it"]))
    error = caught.value
    assert "nessuno@comune-esempio.it" in str(error) and "550" in str(error)
    assert not error.retryable
    assert set(error.refused) == {"nessuno@comune-esempio.it"} and error.accepted == []


def test_partly_refused_recipients_report_who_got_it():
    with SmtpServer(refuse_recipients={"nessuno@comune-esempio.it"}) as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server)).send(mail(to=[REFERENT, "nessuno@comune-esempio.it"]))
        [received] = server.wait_for(1)
    error = caught.value
    assert received.rcpt_tos == [REFERENT]
    assert error.accepted == [REFERENT] and list(error.refused) == ["nessuno@comune-esempio.it"]
    assert error.message_id == received.message["Message-ID"]
    assert not error.retryable


def test_temporary_failure_is_retryable():
    with SmtpServer(fail_with=(451, "4.3.0 Temporary local problem, try later")) as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server)).send(mail())
    error = caught.value
    assert error.retryable and error.code == 451
    assert "451 4.3.0 Temporary local problem" in str(error)


def test_permanent_data_refusal_is_not_retryable():
    with SmtpServer(fail_with=(554, "5.7.1 Message rejected as spam")) as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server)).send(mail())
    assert not caught.value.retryable and caught.value.code == 554


# --- unreachable servers -------------------------------------------------------------------------

def test_connection_refused_is_retryable_and_names_host_and_port():
    port = free_port()  # nothing listens there
    with pytest.raises(MailerError) as caught:
        Mailer(settings(port=port, security="none")).send(mail())
    error = caught.value
    assert error.retryable
    assert f"127.0.0.1:{port}" in str(error) and "connection refused" in str(error)


def test_silent_server_times_out_and_is_retryable():
    with socket.socket() as listener:  # accepts TCP (backlog) but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(MailerError) as caught:
            Mailer(settings(port=port, security="starttls", timeout="300ms")).send(mail())
    error = caught.value
    assert error.retryable
    assert "no answer within 0.3 s" in str(error) and f"127.0.0.1:{port}" in str(error)


def test_missing_password_secret_is_a_clear_permanent_error(monkeypatch):
    monkeypatch.delenv("CUSTODE_TEST_SMTP_PASSWORD")
    with SmtpServer(starttls=True, auth=(USER, PASSWORD)) as server:
        with pytest.raises(MailerError) as caught:
            Mailer(settings(server)).send(mail())
    assert not caught.value.retryable
    assert "CUSTODE_TEST_SMTP_PASSWORD is not set" in str(caught.value)


# --- settings and messages -------------------------------------------------------------------------

def test_password_in_clear_to_a_remote_host_is_refused():
    with pytest.raises(ValidationError, match="in clear"):
        SmtpSettings(host="smtp.example.it", security="none", user="u", sender=SENDER,
                     password={"env": "X"})
    for host in ("localhost", "127.0.0.1", "::1"):
        SmtpSettings(host=host, security="none", user="u", sender=SENDER, password={"env": "X"})


@pytest.mark.parametrize("values, message", [
    ({"sender": "not an address"}, "not an e-mail address"),
    ({"sender": "a@example.it, b@example.it"}, "exactly one"),
    ({"user": "u"}, "password is not"),
    ({"password": {"env": "X"}}, "user is not"),
    ({"password": "written-in-config"}, "must not be written"),
    ({"security": "ssl"}, "starttls"),
    ({"port": 0}, "greater than or equal to 1"),
])
def test_settings_validation(values, message):
    with pytest.raises(ValidationError, match=message):
        SmtpSettings.model_validate({"host": "smtp.example.it", "sender": SENDER, **values})


def test_default_ports_follow_security():
    assert SmtpSettings(host="h.example.it", sender=SENDER).endpoint_port == 587
    assert SmtpSettings(host="h.example.it", sender=SENDER, security="tls").endpoint_port == 465
    assert SmtpSettings(host="h.example.it", sender=SENDER, security="none").endpoint_port == 25
    assert SmtpSettings(host="h.example.it", sender=SENDER, timeout="1m").timeout == 60


def test_message_refuses_header_injection_and_overrides():
    config = settings()
    with pytest.raises(ValueError, match="line break"):
        build_message(config, mail(subject="Ciao\r\nBcc: x@evil.example"))
    with pytest.raises(ValueError, match="set by the mailer"):
        build_message(config, mail(headers={"From": "x@evil.example"}))
    with pytest.raises(ValueError, match="not an e-mail address"):
        build_message(config, mail(to=["referente"]))
    with pytest.raises(ValueError, match="at least one"):
        build_message(config, mail(to=[]))


def test_message_ids_are_unique_and_use_the_sender_domain():
    first, second = new_message_id(SENDER), new_message_id(SENDER)
    assert first != second and first.endswith("@provider.example.it>")
    assert parse_address(SENDER).addr_spec == "custode@provider.example.it"
