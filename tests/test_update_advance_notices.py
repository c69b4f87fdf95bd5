"""Advance notices of update windows: N working days ahead on the tenant's calendar, once, retried until the window.

The SMTP server is real (aiosmtpd on loopback, tests/smtp_server.py); the
clock is injected, never read from the wall: every date here is the
fixture's own.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from smtp_server import SmtpServer

from custode.agent.audit import export
from custode.agent.cli import main
from custode.agent.config_loader import load
from custode.agent.paths import audit_path, state_path
from custode.agent.recording import open_recording
from custode.agent.state import State
from custode.agent.updates.advance import due_time, notice_day, planned_notices
from custode.agent.updates.announce import Announcer, announcement_for
from custode.agent.updates.notice_store import NewNotice, NoticeKey, NoticeStore
from custode.agent.updates.service import build_mailer
from custode.agent.updates.states import NoticeKind, NoticeStatus
from custode.agent.updates.store import Owner
from custode.agent.updates.windows import calendar_for, occurrences

PLAYBOOKS = Path(__file__).resolve().parent / "data" / "playbooks"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def clock_at(text: str):
    """A frozen clock for the announcer: the fixture's moment, not the day the suite runs."""
    return lambda: at(text).timestamp()


def config_text(data: Path, smtp_port: int | None = None, *, crema: str = "", windows: str = "") -> str:
    smtp = ("" if smtp_port is None else
            f"smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none, timeout: 5s, "
            "sender: \"Custode <custode@consorzio.example.it>\"}\n")
    return f"""
agent: {{tenant: provider, data_dir: {data}}}
tenants:
  provider: {{name: Consorzio informatico}}
  crema:
    name: Comune di Crema
    referents: [ced@comune.crema.cr.it, segreteria@comune.crema.cr.it]
    calendar: {{patron: {{day: "06-10", name: San Pantaleone}}}}
{crema}
  sassuolo:
    name: Comune di Sassuolo
    language: en
    referents: [ced@comune.sassuolo.mo.it]
    notice: {{working_days: 0}}
  capannori:
    name: Comune di Capannori
    referents: [ced@comune.capannori.lu.it]
    notice: {{enabled: false}}
hosts:
  sicraweb-crema: {{address: 127.0.0.1, transport: local, tenant: crema}}
  farm-sassuolo: {{address: 127.0.0.1, transport: local, tenant: sassuolo}}
  farm-capannori: {{address: 127.0.0.1, transport: local, tenant: capannori}}
  farm-own: {{address: 127.0.0.1, transport: local}}
updates:
  playbooks_dir: {PLAYBOOKS}
  windows:
    sicraweb-crema:
      application: Sicr@web (Maggioli)
      tenant: crema
      days: [thursday]
      start: "17:30"
      hosts: [sicraweb-crema]
      playbook: noop.yaml
    halley:
      application: Halley
      days: [friday]
      start: "16:00"
      hosts: [farm-sassuolo, farm-capannori, farm-own]
      playbook: noop.yaml
{windows}{smtp}"""


@pytest.fixture
def data(tmp_path) -> Path:
    return tmp_path / "data"


def _planned(config, moment: str) -> list[tuple[str, str, str, str]]:
    return [(n.tenant, n.occurrence.window, str(n.kind), n.due.isoformat())
            for n in planned_notices(config, at(moment))]


def _records(config) -> list[dict]:
    return [json.loads(line) for line in export(audit_path(config))]


def _body(mail) -> str:
    return mail.message.get_body(("plain",)).get_content()


# --- when a notice is due ----------------------------------------------------------------------------


def test_two_working_days_before_a_thursday_skipping_the_immacolata(write_config, data):
    """Thursday 10 December 2026: Wednesday 9 is one working day, Tuesday 8 (Immacolata) is none, Monday 7 two."""
    config = load(write_config(config_text(data))).model
    assert _planned(config, "2026-12-07T06:59:00+01:00") == []
    assert _planned(config, "2026-12-07T07:00:00+01:00") == [
        ("crema", "sicraweb-crema", "advance", "2026-12-07T07:00:00+01:00")]
    # the next week: two working days before Thursday 17 is Tuesday 15
    assert _planned(config, "2026-12-14T12:00:00+01:00") == []
    assert ("crema", "sicraweb-crema", "advance", "2026-12-15T07:00:00+01:00") in _planned(
        config, "2026-12-15T07:00:00+01:00")


def test_the_tenants_own_calendar_counts_its_patron_day_and_closures(write_config, data):
    """Crema's patron (10 June) and a closure of Crema's offices are not working days for Crema's notices."""
    config = load(write_config(config_text(data, crema="    notice: {working_days: 3}\n"))).model
    calendar = calendar_for(config, "crema")
    # Thursday 11 June 2026: Wednesday 10 is San Pantaleone, so 3 working days back is Friday 5 June
    assert notice_day(calendar, at("2026-06-11T00:00:00+02:00").date(), 3).isoformat() == "2026-06-05"
    closed = config_text(data, crema="    notice: {working_days: 3}\n").replace(
        '{patron: {day: "06-10", name: San Pantaleone}}',
        '{patron: {day: "06-10", name: San Pantaleone}, closures: [{from: 2026-06-08, to: 2026-06-09}]}')
    config = load(write_config(closed, name="closed.yaml")).model
    assert notice_day(calendar_for(config, "crema"), at("2026-06-11T00:00:00+02:00").date(), 3).isoformat() == \
        "2026-06-03"


def test_zero_working_days_is_the_morning_of_the_day_and_before_an_early_window(write_config, data):
    extra = """    early:
      application: Halley
      dates: [2026-12-11]
      start: "06:00"
      hosts: [farm-sassuolo]
      playbook: noop.yaml
"""
    config = load(write_config(config_text(data, windows=extra))).model
    found = _planned(config, "2026-12-11T07:00:00+01:00")
    assert ("sassuolo", "halley", "advance", "2026-12-11T07:00:00+01:00") in found
    assert ("sassuolo", "early", "advance", "2026-12-11T00:00:00+01:00") not in found, "it has started: too late"
    assert ("sassuolo", "early", "advance", "2026-12-11T00:00:00+01:00") in _planned(
        config, "2026-12-11T00:00:00+01:00")
    assert _planned(config, "2026-12-10T23:59:00+01:00") == [], "the day itself, not the evening before"


def test_a_farm_wide_window_concerns_the_tenants_of_its_hosts(write_config, data):
    """halley has no tenant: Sassuolo's host is on it (notice), Capannori's too (notices off), the farm's own none."""
    config = load(write_config(config_text(data))).model
    friday = _planned(config, "2026-12-11T08:00:00+01:00")
    assert [n for n in friday if n[1] == "halley"] == [("sassuolo", "halley", "advance", "2026-12-11T07:00:00+01:00")]
    halley = "      hosts: [farm-sassuolo, farm-capannori, farm-own]\n"
    quiet = load(write_config(config_text(data).replace(halley, halley + "      notify: false\n"),
                              name="quiet.yaml")).model
    assert [n for n in _planned(quiet, "2026-12-11T08:00:00+01:00") if n[1] == "halley"] == []


def test_a_skipped_occurrence_is_announced_as_cancelled_with_its_reason(write_config, data):
    config = load(write_config(config_text(data))).model
    christmas = [n for n in planned_notices(config, at("2026-12-25T07:00:00+01:00")) if n.tenant == "sassuolo"]
    assert [(n.kind, n.occurrence.reason) for n in christmas] == [(NoticeKind.CANCELLED, "Natale")], \
        "holiday names are the provider's calendar's (calendar.language: it)"


def test_the_due_time_across_the_change_to_summer_time(write_config, data):
    """Tuesday 31 March 2026 07:00 is +02:00; the Thursday window after the change too."""
    config = load(write_config(config_text(data))).model
    [thursday] = [o for o in occurrences(config, at("2026-04-02T00:00:00+02:00").date(), 1)
                  if o.window == "sicraweb-crema"]
    due = due_time(calendar_for(config, "crema"), thursday, 2)
    assert due.isoformat() == "2026-03-31T07:00:00+02:00"


# --- sending -------------------------------------------------------------------------------------------


def _announcer(config, recording, moment: str) -> Announcer:
    """The announcer a cycle of the agent uses, on ``recording``'s state DB and audit log, at ``moment``."""
    return Announcer(config, NoticeStore(recording.state), build_mailer(config), audit=recording.audit,
                     clock=clock_at(moment))


def test_the_notice_is_sent_once_in_italian_with_the_offset_and_audited(write_config, data):
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port))).model
        with open_recording(config) as recording:
            first = _announcer(config, recording, "2026-12-07T07:00:30+01:00").cycle()
            again = _announcer(config, recording, "2026-12-07T07:05:30+01:00").cycle()
            later = _announcer(config, recording, "2026-12-09T12:00:00+01:00").cycle()
        [mail] = server.wait_for(1)
    assert [(o.tenant, o.window, o.status) for o in first] == [("crema", "sicraweb-crema", "sent")]
    assert again == [] and later == [], "never twice"
    assert len(server.messages) == 1
    assert mail.rcpt_tos == ["ced@comune.crema.cr.it", "segreteria@comune.crema.cr.it"]
    # whitespace normalised: Python's header folding leaves a space before the fold of a long subject
    assert " ".join(mail.message["Subject"].split()) == \
        "Avviso di intervento programmato: aggiornamento Sicr@web (Maggioli) – 10/12/2026"
    body = _body(mail)
    assert "Gentili referenti del Comune di Crema" in body
    assert "giovedì 10 dicembre 2026 alle 17:30 (UTC+01:00)" in body and "alle 19:30 (UTC+01:00)" in body
    assert "server: sicraweb-crema" in body
    assert mail.message["X-Custode-Notice"] == "advance" and mail.message["X-Custode-Window"] == "sicraweb-crema"
    assert mail.message["Message-ID"].endswith("@consorzio.example.it>")
    [sent] = [r for r in _records(config) if r["action"] == "update.notice.sent"]
    assert sent["subject"] == "update/sicraweb-crema"
    assert sent["details"]["tenant"] == "crema" and sent["details"]["window_start"] == "2026-12-10T17:30:00+01:00"
    assert sent["details"]["recipients"] == ["ced@comune.crema.cr.it", "segreteria@comune.crema.cr.it"]


def test_english_for_a_tenant_whose_language_is_en(write_config, data):
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port))).model
        with open_recording(config) as recording:
            outcomes = _announcer(config, recording, "2026-12-11T07:00:00+01:00").cycle()
        [mail] = server.wait_for(1)
    assert [(o.tenant, o.window) for o in outcomes] == [("sassuolo", "halley")]
    assert mail.message["Subject"] == "Scheduled maintenance notice: Halley update – 2026-12-11"
    assert "Dear Comune di Sassuolo contacts" in _body(mail)
    assert "Friday 11 December 2026 at 16:00 (UTC+01:00)" in _body(mail)


def test_smtp_down_loses_nothing_the_next_cycle_sends_it(write_config, data):
    server = SmtpServer()  # its port is chosen now; nothing listens on it yet
    config = load(write_config(config_text(data, server.port))).model
    with open_recording(config) as recording:
        store = NoticeStore(recording.state)
        down = _announcer(config, recording, "2026-12-07T07:00:00+01:00").cycle()
        assert [(o.status, o.tenant) for o in down] == [("retry", "crema")]
        assert f"127.0.0.1:{server.port}" in down[0].detail and "connection refused" in down[0].detail
        row = store.find(NoticeKey("crema", "sicraweb-crema", at("2026-12-10T17:30:00+01:00").timestamp(),
                                   NoticeKind.ADVANCE))
        assert row["status"] == NoticeStatus.PENDING and row["attempts"] == 1
        with server:
            up = _announcer(config, recording, "2026-12-07T07:05:00+01:00").cycle()
            server.wait_for(1)
        row = store.find(NoticeKey("crema", "sicraweb-crema", at("2026-12-10T17:30:00+01:00").timestamp(),
                                   NoticeKind.ADVANCE))
        announced = announcement_for(recording.state, "sicraweb-crema", at("2026-12-10T17:30:00+01:00").timestamp(),
                                     "crema")
    assert [o.status for o in up] == ["sent"] and len(server.messages) == 1
    assert row["status"] == NoticeStatus.SENT and row["attempts"] == 2 and row["error"] == ""
    assert announced == at("2026-12-07T07:05:00+01:00").timestamp()


def test_still_down_when_the_window_opens_it_is_recorded_not_sent_with_the_reason(write_config, data):
    config = load(write_config(config_text(data, 9))).model  # port 9 (discard): refused on loopback
    start = at("2026-12-10T17:30:00+01:00").timestamp()
    with open_recording(config) as recording:
        _announcer(config, recording, "2026-12-07T07:00:00+01:00").cycle()
        _announcer(config, recording, "2026-12-10T17:00:00+01:00").cycle()
        closed = _announcer(config, recording, "2026-12-10T17:31:00+01:00").cycle()
        row = NoticeStore(recording.state).find(NoticeKey("crema", "sicraweb-crema", start, NoticeKind.ADVANCE))
        assert announcement_for(recording.state, "sicraweb-crema", start, "crema") is None
        assert announcement_for(recording.state, "sicraweb-crema", start, None) is None
    assert [(o.status, o.tenant) for o in closed if o.window == "sicraweb-crema"] == [("not_sent", "crema")]
    assert row["status"] == NoticeStatus.NOT_SENT and row["attempts"] == 2
    assert row["error"].startswith("not sent before the window opened (2026-12-10 17:30 CET): notice not sent:")
    assert "127.0.0.1:9" in row["error"]
    [record] = [r for r in _records(config) if r["action"] == "update.notice.not_sent"]
    assert record["details"]["tenant"] == "crema" and record["details"]["attempts"] == 2


def test_no_smtp_section_and_no_referents_are_reasons_not_crashes(write_config, data):
    text = config_text(data).replace("    referents: [ced@comune.sassuolo.mo.it]\n", "")
    config = load(write_config(text)).model
    with open_recording(config) as recording:
        outcomes = _announcer(config, recording, "2026-12-11T07:00:00+01:00").cycle()
        crema = _announcer(config, recording, "2026-12-07T07:00:00+01:00").cycle()
    assert [(o.tenant, o.status, o.detail) for o in outcomes] == [
        ("sassuolo", "retry", "no referents to notify: add tenants.sassuolo.referents")]
    assert crema[0].status == "retry" and "no smtp section" in crema[0].detail


def test_a_recipient_refused_while_others_accept_is_sent_not_retried(write_config, data):
    with SmtpServer(refuse_recipients=["segreteria@comune.crema.cr.it"]) as server:
        config = load(write_config(config_text(data, server.port))).model
        with open_recording(config) as recording:
            [outcome] = _announcer(config, recording, "2026-12-07T07:00:00+01:00").cycle()
            again = _announcer(config, recording, "2026-12-07T07:05:00+01:00").cycle()
        server.wait_for(1)
    assert outcome.status == "sent" and outcome.recipients == ("ced@comune.crema.cr.it",)
    assert "refused for segreteria@comune.crema.cr.it" in outcome.detail
    assert again == [] and len(server.messages) == 1


def test_the_cancellation_of_a_holiday_window(write_config, data):
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port))).model
        with open_recording(config) as recording:
            outcomes = _announcer(config, recording, "2026-12-25T07:00:00+01:00").cycle()
            start = at("2026-12-25T16:00:00+01:00").timestamp()
            assert announcement_for(recording.state, "halley", start, "sassuolo") is None, \
                "a cancellation announces no release"
        [mail] = server.wait_for(1)
    assert [(o.tenant, o.kind) for o in outcomes] == [("sassuolo", "cancelled")]
    assert mail.message["Subject"] == "Maintenance cancelled: Halley update – 2026-12-25"
    assert "will not take place: Natale" in _body(mail)


# --- exactly one sender -------------------------------------------------------------------------------


def _new(start: str = "2026-12-10T17:30:00+01:00") -> NewNotice:
    key = NoticeKey("crema", "sicraweb-crema", at(start).timestamp(), NoticeKind.ADVANCE)
    return NewNotice(key, key.start + 7200, "Sicr@web", key.start - 3 * 86400)


def test_a_notice_claimed_by_a_living_process_is_not_sent_by_another(tmp_path):
    state = State(tmp_path / "state.db")
    try:
        store = NoticeStore(state)
        elsewhere = Owner("another-node", 4242, 1.0)  # not ours to judge: counted as alive
        assert store.claim(_new(), 0.0, elsewhere) is not None
        assert store.claim(_new(), 1.0) is None, "another process is sending it"
        dead = Owner(Owner.me().host, 4242, 1.0)  # this host, a start time no process has
        state_two = _new("2026-12-17T17:30:00+01:00")
        first = store.claim(state_two, 0.0, dead)
        assert store.claim(state_two, 1.0) == first, "the claim of a dead process is taken over"
        store.sent(first, 2.0, "<x@y>", ["ced@comune.crema.cr.it"])
        assert store.claim(state_two, 3.0) is None, "sent: never again"
    finally:
        state.close()


def test_two_announcers_at_once_send_one_mail(write_config, data):
    """The agent's cycle and `custode update notices` by hand, on the same state DB."""
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port))).model
        other = State(state_path(config))  # a second connection, as a second process has
        try:
            with open_recording(config) as one:
                outcomes = _announcer(config, one, "2026-12-07T07:00:00+01:00").cycle()
                outcomes += Announcer(config, NoticeStore(other), build_mailer(config),
                                      clock=clock_at("2026-12-07T07:00:01+01:00")).cycle()
        finally:
            other.close()
        server.wait_for(1)
    assert [o.status for o in outcomes] == ["sent"] and len(server.messages) == 1


# --- announcement_for ------------------------------------------------------------------------------------


def test_announcement_for_reads_a_state_db_a_path_or_a_config(write_config, data, tmp_path):
    config_path = write_config(config_text(data))
    loaded = load(config_path)
    start = at("2026-12-11T16:00:00+01:00").timestamp()
    assert announcement_for(tmp_path / "nowhere.db", "halley", start, "sassuolo") is None
    state = State(state_path(loaded.model))
    try:
        store = NoticeStore(state)
        key = NoticeKey("sassuolo", "halley", start, NoticeKind.ADVANCE)
        notice_id = store.claim(NewNotice(key, start + 7200, "Halley", start - 36000), start - 36000)
        store.sent(notice_id, start - 35000, "<a@b>", ["ced@comune.sassuolo.mo.it"])
        other = NoticeKey("capannori", "halley", start, NoticeKind.ADVANCE)
        store.claim(NewNotice(other, start + 7200, "Halley", start - 36000), start - 36000)
        assert announcement_for(state, "halley", start, "sassuolo") == start - 35000
        assert announcement_for(store, "halley", start + 0.5, "sassuolo") == start - 35000, "a second either way"
        assert announcement_for(state, "halley", start, None) is None, "Capannori's is not sent"
        assert announcement_for(state, "halley", start, "crema") is None
        assert announcement_for(state, "halley", start + 86400 * 7, "sassuolo") is None
    finally:
        state.close()
    assert announcement_for(state_path(loaded.model), "halley", start, "sassuolo") == start - 35000
    assert announcement_for(os.fspath(state_path(loaded.model)), "halley", start, "sassuolo") == start - 35000
    assert announcement_for(loaded, "halley", start, "sassuolo") == start - 35000
    assert announcement_for(loaded.model, "halley", start, "sassuolo") == start - 35000
    with pytest.raises(TypeError, match="cannot find a state DB"):
        announcement_for(42, "halley", start, "sassuolo")


# --- the CLI and the agent -----------------------------------------------------------------------------


def test_cli_dry_run_lists_and_sends_nothing_then_the_real_run_sends(write_config, data, capsys, pin_clock):
    pin_clock(at("2026-12-07T08:00:00+01:00"), running=False)
    with SmtpServer() as server:
        config = write_config(config_text(data, server.port))
        assert main(["update", "notices", "--dry-run", "--format", "json", "--config", str(config)]) == 0
        document = json.loads(capsys.readouterr().out)
        assert [(n["tenant"], n["window"], n["status"], n["start"], n["due"]) for n in document["notices"]] == [
            ("crema", "sicraweb-crema", "new", "2026-12-10T17:30:00+01:00", "2026-12-07T07:00:00+01:00")]
        assert document["state_db"].endswith("state.db") and server.messages == []
        assert main(["update", "notices", "--dry-run", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("Config: ") and "Dry run: 1 notice(s) would be sent now" in out
        assert main(["update", "notices", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "sicraweb-crema" in out and "sent" in out
        server.wait_for(1)
        assert main(["update", "notices", "--format", "json", "--config", str(config)]) == 0
        assert json.loads(capsys.readouterr().out)["notices"] == []
        assert main(["update", "notices", "--dry-run", "--config", str(config)]) == 0
        assert "No advance notice is due now." in capsys.readouterr().out
    assert len(server.messages) == 1
    actions = [r["action"] for r in _records(load(config).model)]
    assert actions.count("update.notice.sent") == 1


def test_cli_exit_1_when_a_notice_could_not_be_sent(write_config, data, capsys, pin_clock):
    pin_clock(at("2026-12-07T08:00:00+01:00"), running=False)
    config = write_config(config_text(data, 9))
    assert main(["update", "notices", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "retry" in out and "tried again at the next cycle" in out


def test_the_agent_registers_the_notice_cycle_with_the_update_windows(write_config, data, pin_clock):
    from custode.agent.runtime import Agent

    pin_clock(at("2026-12-07T08:00:00+01:00"), running=False)
    with SmtpServer() as server:
        agent = Agent(load(write_config(config_text(data, server.port))), listen="127.0.0.1:10191")
        try:
            service = agent.service("updates")
            jobs = {job.id: job for job in service.jobs(at("2026-12-07T08:00:00+01:00"))}
            assert jobs["update-notices"].trigger == "interval" and jobs["update-notices"].run_now
            service.send_notices()
            service.send_notices()
        finally:
            agent.state.close()
        server.wait_for(1)
    assert len(server.messages) == 1
    assert {"update:sicraweb-crema", "update:halley", "update-notices", "updates-metrics"} <= set(jobs)
