"""Referents are told of maintenance by e-mail (real SMTP server on loopback): start, outcome, urgent first."""

import time
from datetime import datetime

import pytest
from smtp_server import SmtpServer
from toyapp import ToyApp
from update_helpers import runner_for, toy_config


@pytest.fixture
def app(tmp_path):
    with ToyApp(tmp_path, {"1.0": True, "2.0": True, "2.1": False}, current="1.0") as toy:
        toy.start()
        yield toy


def _smtp(server: SmtpServer) -> str:
    return f"""smtp:
  host: 127.0.0.1
  port: {server.port}
  security: none
  sender: "Custode <custode@provider.example.it>"
"""


def _clock_at(moment: str):
    base = datetime.fromisoformat(moment).timestamp()
    started = time.time()
    return lambda: base + (time.time() - started)


def _body(mail) -> str:
    return mail.message.get_body(("plain",)).get_content()


def test_scheduled_window_announces_start_and_outcome_in_italian(app, write_config):
    with SmtpServer() as server:
        config = write_config(toy_config(app, days="[thursday]", start="17:30",
                                         referents="[ced@comune.crema.cr.it, sindaco@comune.crema.cr.it]",
                                         extra=_smtp(server)))
        with runner_for(config, clock=_clock_at("2026-12-03T17:30:30+01:00")) as runner:
            result = runner.run("toy", "manual")
        start, outcome = server.wait_for(2)
    assert result.status == "succeeded"
    assert start.rcpt_tos == ["ced@comune.crema.cr.it", "sindaco@comune.crema.cr.it"]
    assert start.message["Subject"] == "Intervento programmato: aggiornamento Toy App – 03/12/2026"
    assert "giovedì 3 dicembre 2026 alle 17:30" in _body(start) and "alle 19:30" in _body(start)
    assert start.message["X-Custode-Window"] == "toy"
    assert outcome.message["Subject"] == "Aggiornamento Toy App completato"
    assert "collaudo" in _body(outcome)


def test_urgent_update_is_announced_before_anything_is_touched(app, write_config):
    with SmtpServer() as server:
        config = write_config(toy_config(app, version="2.1", referents="[ced@comune.crema.cr.it]",
                                         extra=_smtp(server)))
        with runner_for(config) as runner:
            result = runner.run("toy", "now", reason="vulnerabilità critica segnalata dal fornitore")
            steps = runner.store.steps(result.run_id)
        urgent, outcome = server.wait_for(2)
    assert steps[0]["kind"] == "notify" and steps[0]["name"] == "notify urgent" and steps[0]["status"] == "ok"
    assert "fuori dalla finestra" in urgent.message["Subject"]
    assert "Motivo: vulnerabilità critica segnalata dal fornitore" in _body(urgent)
    assert "Ripristino previsto del servizio entro" in _body(urgent)
    assert result.status == "rolled_back"
    assert "ripristinata" in outcome.message["Subject"] and "HTTP 500" in _body(outcome)


def test_urgent_update_does_not_start_when_the_referents_cannot_be_told(app, write_config):
    with SmtpServer(fail_with=(451, "4.3.0 mailbox temporarily unavailable")) as server:
        config = write_config(toy_config(app, referents="[ced@comune.crema.cr.it]", extra=_smtp(server)))
        with runner_for(config) as runner:
            result = runner.run("toy", "now", reason="urgent")
            steps = runner.store.steps(result.run_id)
    assert result.status == "failed" and "urgent update was not started" in result.summary
    assert [s["kind"] for s in steps] == ["notify", "notify"], "nothing but the failed notices"
    assert app.version() == "1.0"


def test_scheduled_window_goes_on_when_the_notice_fails(app, write_config):
    config = write_config(toy_config(app, days="[thursday]", start="17:30", referents="[ced@comune.crema.cr.it]",
                                     extra="smtp: {host: 127.0.0.1, port: 9, security: none, "
                                           "sender: custode@provider.example.it, timeout: 2s}\n"))
    with runner_for(config, clock=_clock_at("2026-12-03T17:30:30+01:00")) as runner:
        result = runner.run("toy", "manual")
        notices = [s for s in runner.store.steps(result.run_id) if s["kind"] == "notify"]
    assert result.status == "succeeded" and app.version() == "2.0"
    assert [n["status"] for n in notices] == ["warning", "warning"]
    assert "127.0.0.1:9" in notices[0]["detail"]
