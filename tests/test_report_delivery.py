"""Reports by e-mail: due on the Nth working day after the period, rendered once, sent once, never lost.

The SMTP server is real (aiosmtpd on loopback, tests/smtp_server.py); the
clock is injected (a ManualClock, or the pinned clock for the CLI), never the
wall clock; the report builder and renderer are the doubles of
tests/report_fakes.py, except in the one end-to-end test at the bottom, which
uses agent/reports/data.py and render.py (WeasyPrint) for real.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import signal
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
import report_fakes
from conftest import ManualClock
from smtp_server import SmtpServer

from custode.agent.audit import export
from custode.agent.cli import main
from custode.agent.config_loader import load
from custode.agent.incidents import Incidents
from custode.agent.mailer import Mailer
from custode.agent.paths import audit_path, data_dir, state_path
from custode.agent.recording import open_recording
from custode.agent.reports import delivery
from custode.agent.reports.delivery import REPORT_CHECK, ReportDeliverer
from custode.agent.reports.schedule import calendar_for, due_reports, due_time, parse_period
from custode.agent.reports.store import OutboxStatus, ReportStore
from custode.agent.state import State

TESTS = Path(__file__).resolve().parent
REAL_BUILDER, REAL_RENDERER = delivery.default_builder, delivery.default_renderer
"""The agent's own (data.build_report, render.render), kept before the ``fakes`` fixture swaps them."""

VAIANO = """  vaiano:
    name: Comune di Vaiano Cremasco
    referents: [ced@comune.vaianocremasco.cr.it, segreteria@comune.vaianocremasco.cr.it]
    reports: {enabled: true}
"""
CAPANNORI = """  capannori:
    name: Comune di Capannori
    referents: [ced@comune.capannori.lu.it]
    reports: {enabled: true, kinds: [quarterly]}
"""
SASSUOLO = """  sassuolo:
    name: Comune di Sassuolo
    language: en
    referents: [ced@comune.sassuolo.mo.it]
    reports:
      enabled: true
      kinds: [quarterly]
      recipients: [sistemi@comune.sassuolo.mo.it]
      extra_recipients: [archivio@consorzio.example.it]
      csv: zip
"""
QUIET = """  crema:
    name: Comune di Crema
    referents: [ced@comune.crema.cr.it]
"""


def config_text(data: Path, smtp_port: int | None = None, tenants: str = VAIANO, extra: str = "") -> str:
    smtp = ("" if smtp_port is None else
            f"smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none, timeout: 5s, "
            "sender: \"Custode <custode@consorzio.example.it>\"}\n")
    return f"""
agent: {{tenant: provider, data_dir: {data}}}
tenants:
  provider: {{name: Consorzio.IT}}
{tenants}{QUIET}reports: {{incident_after: 3{extra}}}
{smtp}"""


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


DUE = "2027-01-11T07:00:00+01:00"
"""The 5th working day after 31 December 2026: 1 January, the weekend and the Epiphany (6 January) do not count."""


@pytest.fixture
def data(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def fakes(monkeypatch):
    """Every deliverer here, also the CLI's and the agent's, builds and renders with the doubles."""
    report_fakes.reset()
    monkeypatch.setattr(delivery, "default_builder", report_fakes.build)
    monkeypatch.setattr(delivery, "default_renderer", report_fakes.render)
    return report_fakes.CALLS


def deliverer(config, recording, clock, **kwargs) -> ReportDeliverer:
    """What the agent's job runs: on ``recording``'s state DB, audit log and incidents, at ``clock``'s time."""
    mailer = Mailer(config.smtp) if config.smtp is not None else None
    return ReportDeliverer(config, recording.state, data_dir(config), kwargs.pop("mailer", mailer),
                           audit=recording.audit, incidents=recording.incidents, clock=clock,
                           jitter=lambda: 0.5, **kwargs)


def records(config, action: str) -> list[dict]:
    return [r for r in (json.loads(line) for line in export(audit_path(config))) if r["action"] == action]


def body(mail) -> str:
    """The text part as the reader sees it (SMTP carries CRLF line ends)."""
    return mail.message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def attachments(mail) -> list[tuple[str, str, bytes]]:
    return [(part.get_filename(), part.get_content_type(), part.get_content())
            for part in mail.message.iter_attachments()]


def subject(mail) -> str:
    return " ".join(str(mail.message["Subject"]).split())  # a long subject is folded


# --- when a report is due ----------------------------------------------------------------------------


def test_the_5th_working_day_after_q4_2026_is_monday_11_january_because_of_the_epiphany(write_config, data):
    """1 Jan holiday, 2-3 weekend, 4 Mon (1), 5 Tue (2), 6 Wed Epiphany, 7 Thu (3), 8 Fri (4), 11 Mon (5)."""
    config = load(write_config(config_text(data))).model
    calendar = calendar_for(config, "vaiano")
    settings = config.tenants["vaiano"].reports
    assert due_time(calendar, parse_period("quarterly", "2026Q4"), settings).isoformat() == DUE
    # the yearly report: the 10th working day of January 2027
    assert due_time(calendar, parse_period("yearly", "2026"), settings).isoformat() == "2027-01-18T07:00:00+01:00"
    # Q1 2026: Easter Monday (6 April) does not count, and 07:00 is summer time
    assert due_time(calendar, parse_period("quarterly", "2026Q1"), settings).isoformat() == \
        "2026-04-08T07:00:00+02:00"
    assert [(d.tenant, d.period.label, d.due.isoformat()) for d in due_reports(
        config, datetime.fromisoformat("2027-01-11T06:59:00+01:00"))] == []
    assert [(d.tenant, d.period.label, d.due.isoformat()) for d in due_reports(
        config, datetime.fromisoformat(DUE))] == [("vaiano", "2026Q4", DUE)], "crema sends no reports"
    assert [d.period.label for d in due_reports(config, datetime.fromisoformat("2027-01-18T07:00:00+01:00"))] == [
        "2026Q4", "2026"]


def test_the_tenants_closures_and_the_time_of_day_move_the_due_time(write_config, data):
    own = """    calendar: {closures: [{from: 2027-01-07, to: 2027-01-08}]}
    reports: {enabled: true, quarterly: {working_day: 5, at: "08:30"}}
"""
    text = config_text(data).replace("    reports: {enabled: true}\n", own)
    config = load(write_config(text)).model
    found = due_time(calendar_for(config, "vaiano"), parse_period("quarterly", "2026Q4"),
                     config.tenants["vaiano"].reports)
    assert found.isoformat() == "2027-01-13T08:30:00+01:00", "7 and 8 January are the comune's closure"


def test_a_due_time_longer_ago_than_catch_up_is_not_queued_by_itself(write_config, data):
    config = load(write_config(config_text(data))).model
    def due(moment: str) -> list[str]:
        return [d.period.label for d in due_reports(config, datetime.fromisoformat(moment))]

    assert due("2027-02-09T07:00:00+01:00") == ["2026Q4", "2026"], "29 days late: the agent was stopped, still sent"
    assert due("2027-02-11T07:00:00+01:00") == ["2026"], "31 days after the quarterly's due time"
    assert due("2027-02-17T07:00:00+01:00") == [], "30 days after the yearly's (18 January)"


# --- sending -----------------------------------------------------------------------------------------


def test_the_report_reaches_the_referents_with_the_pdf_and_the_csv_attached_once_and_audited(write_config, data,
                                                                                             fakes):
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port))).model
        clock = ManualClock(at("2027-01-11T06:55:00+01:00"))
        with open_recording(config) as recording:
            outbox = deliverer(config, recording, clock)
            assert outbox.cycle() == [], "not due before 07:00"
            clock.now = at("2027-01-11T07:00:30+01:00")
            [outcome] = outbox.cycle()
            clock.now = at("2027-01-11T07:05:30+01:00")
            assert outbox.cycle() == [], "never twice"
            [row] = ReportStore(recording.state).listing()
        [mail] = server.wait_for(1)
    assert outcome.status == "sent" and len(server.messages) == 1
    assert fakes["build"] == fakes["render"] == [("vaiano", "quarterly", "2026Q4")], "rendered once"
    assert mail.rcpt_tos == ["ced@comune.vaianocremasco.cr.it", "segreteria@comune.vaianocremasco.cr.it"]
    assert subject(mail) == "Rapporto trimestrale 2026Q4 – Comune di Vaiano Cremasco"
    assert mail.message.get_content_type() == "multipart/mixed"
    pdf = report_fakes.pdf_bytes(report_fakes.build(config, None, "vaiano", "quarterly", "2026Q4",
                                                    datetime.fromisoformat(DUE)))
    assert attachments(mail) == [
        ("rapporto-trimestrale-vaiano-2026Q4.pdf", "application/pdf", pdf),
        ("backup_days.csv", "text/csv", "job;day;outcome\nAnagrafe;2026-10-01;success\n"),
        ("servers.csv", "text/csv", "host;availability\nsrv01;99.5\n")]
    text = body(mail)
    assert text.startswith("Gentili referenti del Comune di Vaiano Cremasco,\n\nvi inviamo in allegato il rapporto "
                           "trimestrale sui servizi informatici del 4° trimestre 2026 (dal 1° ottobre al 31 dicembre "
                           "2026), a cura di Consorzio.IT.")
    assert "In sintesi:\n- Backup: regolare\n- Disponibilità dei server: da tenere sotto controllo\n" in text
    assert "- Sicurezza (antivirus, aggiornamenti di sistema): richiede attenzione\n" in text
    assert "- rapporto-trimestrale-vaiano-2026Q4.pdf: il rapporto completo, da leggere o stampare (PDF)" in text
    assert "- backup_days.csv, servers.csv: i dati delle tabelle del rapporto" in text
    assert "preparato l'11 gennaio 2027 alle 07:00 (UTC+01:00)" in text
    assert mail.message["X-Custode-Report"] == "report/vaiano/quarterly/2026Q4"
    # the PDF kept under the data dir is what was sent, and the row and the audit say so
    sha = hashlib.sha256(pdf).hexdigest()
    kept = data / row["folder"] / "rapporto-trimestrale-vaiano-2026Q4.pdf"
    assert kept.read_bytes() == pdf and row["sha256"] == sha and row["status"] == OutboxStatus.SENT
    assert row["message_id"] == mail.message["Message-ID"].strip() == \
        f"<custode.report.quarterly.vaiano.2026Q4.{row['id']}.{int(at('2027-01-11T07:00:30+01:00'))}" \
        "@consorzio.example.it>"
    [sent] = records(config, "report.sent")
    assert sent["subject"] == "report/vaiano/quarterly/2026Q4"
    details = sent["details"]
    assert (details["tenant"], details["kind"], details["period"]) == ("vaiano", "quarterly", "2026Q4")
    assert details["recipients"] == mail.rcpt_tos and details["sha256"] == sha
    assert details["message_id"] == row["message_id"] and details["file"] == f"{row['folder']}/{kept.name}"
    assert [a["name"] for a in details["attachments"]] == ["backup_days.csv", "servers.csv"]
    [queued] = records(config, "report.queued")
    assert queued["details"]["trigger"] == "scheduled" and queued["details"]["due"] == DUE


def test_an_empty_tenants_report_is_still_sent_and_says_so(write_config, data):
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port, tenants=CAPANNORI))).model
        with open_recording(config) as recording:
            [outcome] = deliverer(config, recording, ManualClock(at(DUE))).cycle()
        [mail] = server.wait_for(1)
    assert outcome.status == "sent" and mail.rcpt_tos == ["ced@comune.capannori.lu.it"]
    assert [(name, kind) for name, kind, _ in attachments(mail)] == [
        ("rapporto-trimestrale-capannori-2026Q4.pdf", "application/pdf")], "no data: no tables"
    text = body(mail)
    assert "Nel periodo non è stato registrato alcun dato per il Comune di Capannori" in text
    assert "In sintesi" not in text and ".csv" not in text


def test_in_english_to_the_reports_own_recipients_with_cc_and_the_tables_zipped(write_config, data):
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port, tenants=SASSUOLO))).model
        with open_recording(config) as recording:
            deliverer(config, recording, ManualClock(at(DUE))).cycle()
        [mail] = server.wait_for(1)
    assert subject(mail) == "Quarterly report 2026Q4 – Comune di Sassuolo"
    assert mail.message["To"] == "sistemi@comune.sassuolo.mo.it"
    assert mail.message["Cc"] == "archivio@consorzio.example.it"
    assert mail.rcpt_tos == ["sistemi@comune.sassuolo.mo.it", "archivio@consorzio.example.it"]
    found = attachments(mail)
    assert [(name, kind) for name, kind, _ in found] == [
        ("rapporto-trimestrale-sassuolo-2026Q4.pdf", "application/pdf"),
        ("rapporto-trimestrale-sassuolo-2026Q4-data.zip", "application/zip")]
    with zipfile.ZipFile(io.BytesIO(found[1][2])) as archive:
        assert archive.namelist() == ["README.txt", "backup_days.csv", "servers.csv"], "the zip report.cli writes too"
        assert archive.read("servers.csv") == b"host;availability\nsrv01;99.5\n"
    text = body(mail)
    assert text.startswith("Dear Comune di Sassuolo contacts,\n\nplease find attached the quarterly report on the IT "
                           "services for Q4 2026 (1 October to 31 December 2026), by Consorzio.IT.")
    assert "In short:\n- Backups: in order\n" in text and "a ZIP archive of the data" in text


# --- the SMTP server down, a restart, a kill -----------------------------------------------------------


def test_smtp_down_for_a_while_then_back_one_mail_arrives_and_the_incident_comes_and_goes(write_config, data, fakes):
    server = SmtpServer().start()
    try:
        config = load(write_config(config_text(data, server.port))).model
        server.stop()  # the sink goes away before the due time
        clock = ManualClock(at(DUE))
        key = f"provider/{REPORT_CHECK}/vaiano/quarterly/2026Q4"
        with open_recording(config) as recording:
            outbox = deliverer(config, recording, clock)
            [first] = outbox.cycle()
            assert first.status == "retry" and f"127.0.0.1:{server.port}" in first.detail
            assert "connection refused" in first.detail
            assert first.next_attempt_at == clock.now + 300, "5 minutes (retry.first), then doubling"
            clock.now += 299
            assert outbox.cycle() == [], "not before its next try"
            clock.now += 1
            [second] = outbox.cycle()
            assert second.next_attempt_at == clock.now + 600
        # the agent restarts while the server is still down: the row is in the state DB, not in memory
        with open_recording(config) as recording:
            outbox = deliverer(config, recording, clock)
            clock.now += 600
            [third] = outbox.cycle()
            assert third.status == "retry" and third.attempts == 3 and third.next_attempt_at == clock.now + 1200
            [incident] = Incidents(recording.state).open_incidents()
            assert incident.key == key and incident.severity == "warning"
            assert "could not be sent in 3 tries" in incident.summary
            server.start()  # back, on the same port
            clock.now += 1200
            [sent] = outbox.cycle()
            clock.now += 86400
            assert outbox.cycle() == []
            assert Incidents(recording.state).open_incidents() == [], "resolved once sent"
            row = ReportStore(recording.state).get(sent.row_id)
        server.wait_for(1)
        assert len(server.messages) == 1
    finally:
        server.stop()
    assert sent.status == "sent" and sent.attempts == 4
    assert row["attempts"] == 4 and row["error"] == "" and row["status"] == OutboxStatus.SENT
    assert fakes["render"] == [("vaiano", "quarterly", "2026Q4")], "rendered once, sent on the fourth try"
    assert len(records(config, "report.sent")) == 1


def test_files_gone_before_the_send_are_rendered_again(write_config, data, fakes):
    server = SmtpServer()  # its port is chosen now; nothing listens on it yet
    config = load(write_config(config_text(data, server.port))).model
    clock = ManualClock(at(DUE))
    with open_recording(config) as recording:
        outbox = deliverer(config, recording, clock)
        [failed] = outbox.cycle()
        row = ReportStore(recording.state).get(failed.row_id)
        pdf = data / row["folder"] / "rapporto-trimestrale-vaiano-2026Q4.pdf"
        pdf.write_bytes(b"%PDF-1.7 not what was rendered")
        with server:
            clock.now += 300
            [sent] = outbox.cycle()
            [mail] = server.wait_for(1)
    assert sent.status == "sent" and len(fakes["render"]) == 2
    assert attachments(mail)[0][2] == pdf.read_bytes() != b"%PDF-1.7 not what was rendered"


def test_a_report_that_cannot_be_rendered_is_retried_audited_and_raises_its_incident(write_config, data):
    attempts: list[int] = []

    def broken(config, state, tenant, kind, period, now):
        attempts.append(1)
        if len(attempts) <= 3:
            raise RuntimeError("the farm history of srv01 cannot be read")
        return report_fakes.build(config, state, tenant, kind, period, now)

    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port))).model
        clock = ManualClock(at(DUE))
        with open_recording(config) as recording:
            outbox = deliverer(config, recording, clock, builder=broken)
            for wait in (0, 300, 600):
                clock.now += wait
                [outcome] = outbox.cycle()
                assert outcome.status == "retry"
            row = ReportStore(recording.state).get(outcome.row_id)
            assert row["error_stage"] == "render" and row["sha256"] is None
            [incident] = Incidents(recording.state).open_incidents()
            clock.now += 1200
            [sent] = outbox.cycle()
            still_open = Incidents(recording.state).open_incidents()
        server.wait_for(1)
    assert row["error"] == "the report could not be built: RuntimeError: the farm history of srv01 cannot be read"
    assert incident.tenant == "provider" and incident.check == REPORT_CHECK
    assert incident.target == "vaiano/quarterly/2026Q4" and "could not be rendered in 3 tries" in incident.summary
    assert sent.status == "sent" and still_open == []
    failures = records(config, "report.render_failed")
    assert [r["details"]["attempts"] for r in failures] == [1, 2, 3]
    assert failures[0]["details"]["reason"] == row["error"] and failures[0]["subject"] == \
        "report/vaiano/quarterly/2026Q4"


CHILD = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import report_fakes
from custode.agent.config_loader import load
from custode.agent.mailer import Mailer
from custode.agent.paths import data_dir
from custode.agent.recording import open_recording
from custode.agent.reports.delivery import ReportDeliverer

config = load(sys.argv[2]).model
now, where = float(sys.argv[3]), sys.argv[4]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

class DiesOnSend:
    settings = config.smtp
    send = staticmethod(die)

with open_recording(config, actor="child") as recording:
    ReportDeliverer(config, recording.state, data_dir(config), DiesOnSend() if where == "send" else Mailer(config.smtp),
                    audit=recording.audit, incidents=recording.incidents,
                    builder=die if where == "render" else report_fakes.build, renderer=report_fakes.render,
                    clock=lambda: now, jitter=lambda: 0.5).cycle()
print("not killed")
"""


@pytest.mark.parametrize("where", ["render", "send"])
def test_a_kill_9_between_the_claim_and_the_send_loses_nothing(write_config, data, where):
    """A process claims the row and is killed while rendering it, or just before the SMTP call: the next takes over."""
    with SmtpServer() as server:
        path = write_config(config_text(data, server.port))
        config = load(path).model
        child = subprocess.run([sys.executable, "-c", CHILD, str(TESTS), str(path), str(at(DUE)), where],
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == -signal.SIGKILL, child.stderr
        clock = ManualClock(at(DUE) + 60)
        with open_recording(config) as recording:
            store = ReportStore(recording.state)
            [row] = store.listing()
            assert row["status"] == OutboxStatus.SENDING and row["attempts"] == 1, "claimed, then killed"
            assert (row["sha256"] is None) == (where == "render")
            outbox = deliverer(config, recording, clock)
            assert outbox.cycle() == [], "the dead claim waits for the next try it set"
            clock.now = at(DUE) + 300
            [outcome] = outbox.cycle()
            clock.now += 86400
            assert outbox.cycle() == []
            row = store.get(row["id"])
        [mail] = server.wait_for(1)
    assert server.messages == [mail] and outcome.status == "sent" and outcome.attempts == 2
    assert row["status"] == OutboxStatus.SENT and mail.message["Message-ID"].strip() == row["message_id"]
    assert attachments(mail)[0][1] == "application/pdf"


def test_two_processes_at_once_queue_and_send_one_report(write_config, data):
    """The agent's cycle and a second process (a CLI, a second agent by mistake) on the same state DB."""
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port))).model
        clock = ManualClock(at(DUE))
        other = State(state_path(config))
        try:
            with open_recording(config) as one:
                outcomes = deliverer(config, one, clock).cycle()
                outcomes += ReportDeliverer(config, other, data_dir(config), Mailer(config.smtp), clock=clock).cycle()
                rows = ReportStore(one.state).listing()
        finally:
            other.close()
        server.wait_for(1)
    assert [o.status for o in outcomes] == ["sent"] and len(server.messages) == 1 and len(rows) == 1


def test_no_smtp_section_is_a_reason_to_wait_not_a_crash(write_config, data):
    config = load(write_config(config_text(data))).model
    with open_recording(config) as recording:
        [outcome] = deliverer(config, recording, ManualClock(at(DUE))).cycle()
    assert outcome.status == "retry" and "the config has no smtp section" in outcome.detail


# --- the CLI and the agent -----------------------------------------------------------------------------


def test_cli_send_queues_and_sends_then_a_resend_needs_a_reason_and_replaces_the_first(write_config, data, capsys,
                                                                                        pin_clock):
    pin_clock(datetime.fromisoformat("2027-01-08T10:00:00+01:00"), running=False)  # before the due day
    with SmtpServer() as server:
        path = str(write_config(config_text(data, server.port)))
        assert main(["report", "send", "--tenant", "vaiano", "--kind", "quarterly", "--period", "2026q4",
                     "-c", path]) == 0
        out = capsys.readouterr().out
        assert out.startswith("Config: ") and "Row 1: sent to ced@comune.vaianocremasco.cr.it" in out
        assert main(["report", "send", "--tenant", "vaiano", "--kind", "quarterly", "--period", "2026Q4",
                     "-c", path]) == 1
        assert "already in the outbox (row 1, sent); to send it again give --reason" in capsys.readouterr().err
        assert main(["report", "send", "--tenant", "vaiano", "--kind", "quarterly", "--period", "2026Q4",
                     "--reason", "the comune lost the first mail", "-c", path, "--format", "json"]) == 0
        [resent] = json.loads(capsys.readouterr().out)["reports"]
        assert resent["trigger"] == "manual" and resent["status"] == "sent" and resent["id"] == 2
        first, second = server.wait_for(2)
        # on the due day the agent's cycle finds the period sent by hand: it queues nothing more
        config = load(path).model
        with open_recording(config) as recording:
            assert deliverer(config, recording, ManualClock(at(DUE))).cycle() == []
        assert main(["report", "outbox", "--format", "json", "-c", path]) == 0
        document = json.loads(capsys.readouterr().out)
    assert len(server.messages) == 2
    assert first.message["Message-ID"] != second.message["Message-ID"]
    assert "Questo invio sostituisce quello dell'8 gennaio 2027 alle 10:00 (UTC+01:00)." in body(second)
    assert [(r["id"], r["state"], r["stuck"]) for r in document["reports"]] == [(2, "sent", False), (1, "sent", False)]
    assert document["reports"][0]["sent_at"] == "2027-01-08T10:00:00+01:00" and document["stuck"] == 0
    queued = records(config, "report.queued")
    assert [r["details"]["reason"] for r in queued] == ["asked by hand", "the comune lost the first mail"]
    assert [r["actor"] for r in queued] == ["cli:" + queued[0]["actor"].split(":", 1)[1]] * 2


def test_cli_a_failed_try_stays_queued_the_outbox_says_stuck_and_cancel_drops_it(write_config, data, capsys,
                                                                                pin_clock):
    pin_clock(datetime.fromisoformat("2027-01-12T09:00:00+01:00"), running=False)
    path = str(write_config(config_text(data, 9)))  # port 9 (discard): refused on loopback
    assert main(["report", "send", "--tenant", "vaiano", "--kind", "quarterly", "--period", "2026Q4",
                 "-c", path]) == 1
    out = capsys.readouterr().out
    assert "Row 1: not sent: report not sent: SMTP server 127.0.0.1:9: connection refused" in out
    assert re.search(r"the agent tries again from 2027-01-12 09:0[4-6] CET", out), "5 minutes, ±20 % jitter"
    assert main(["report", "outbox", "-c", path]) == 0
    assert "retrying" in capsys.readouterr().out
    pin_clock(datetime.fromisoformat("2027-01-13T09:01:00+01:00"), running=False)
    assert main(["report", "outbox", "-c", path]) == 1, "unsent a day after it was due"
    out = capsys.readouterr().out
    assert "retrying (STUCK)" in out and "1 report(s) stuck" in out
    assert main(["report", "cancel", "1", "--reason", "the comune has left the consortium", "-c", path]) == 0
    capsys.readouterr()
    assert main(["report", "outbox", "--json", "-c", path]) == 0
    assert [(r["state"], r["note"]) for r in json.loads(capsys.readouterr().out)["reports"]] == [
        ("cancelled", "the comune has left the consortium")]
    assert main(["report", "cancel", "1", "--reason", "again", "-c", path]) == 1
    assert [r["details"]["reason"] for r in records(load(path).model, "report.cancelled")] == [
        "the comune has left the consortium"]


def test_cli_queue_only_leaves_the_sending_to_the_agent(write_config, data, capsys, pin_clock):
    pin_clock(datetime.fromisoformat("2027-04-02T09:00:00+02:00"), running=False)
    with SmtpServer() as server:
        path = str(write_config(config_text(data, server.port, tenants=CAPANNORI)))
        assert main(["report", "send", "--tenant", "capannori", "--kind", "yearly", "--period", "2026",
                     "--queue-only", "-c", path]) == 0
        assert "is queued; the agent renders and sends it" in capsys.readouterr().out
        assert server.messages == []
        config = load(path).model
        with open_recording(config) as recording:
            [outcome] = deliverer(config, recording, ManualClock(at("2027-04-02T09:05:00+02:00"))).cycle()
        [mail] = server.wait_for(1)
    assert outcome.status == "sent" and subject(mail) == "Rapporto annuale 2026 – Comune di Capannori"
    assert "il rapporto annuale sui servizi informatici e sui server dell'anno 2026 (dal 1° gennaio al 31 " \
           "dicembre 2026)" in body(mail), "sent by hand, although the tenant's schedule has no yearly report"


def test_cli_refuses_a_period_that_has_not_ended_and_an_unknown_tenant(write_config, data, capsys, pin_clock):
    pin_clock(datetime.fromisoformat("2027-01-12T09:00:00+01:00"), running=False)
    path = str(write_config(config_text(data)))
    assert main(["report", "send", "--tenant", "vaiano", "--kind", "quarterly", "--period", "2027Q1",
                 "-c", path]) == 2
    assert "has not ended yet" in capsys.readouterr().err
    assert main(["report", "send", "--tenant", "nowhere", "--kind", "yearly", "--period", "2026", "-c", path]) == 2
    assert "no tenant 'nowhere'" in capsys.readouterr().err
    assert main(["report", "send", "--tenant", "vaiano", "--kind", "yearly", "--period", "2026Q4", "-c", path]) == 2
    assert "is not a year" in capsys.readouterr().err
    assert main(["report", "outbox", "-c", path]) == 0
    assert "The outbox is empty" in capsys.readouterr().out


def test_the_agent_registers_the_reports_job_and_its_cycle_sends(write_config, data, pin_clock):
    from custode.agent.runtime import Agent

    pin_clock(datetime.fromisoformat("2027-01-11T07:02:00+01:00"), running=False)
    with SmtpServer() as server:
        agent = Agent(load(write_config(config_text(data, server.port))), listen="127.0.0.1:10191")
        try:
            service = agent.service("reports")
            [job] = service.jobs(datetime.fromisoformat("2027-01-11T07:02:00+01:00"))
            assert (job.id, job.trigger, job.trigger_args, job.run_now, job.executor) == (
                "reports", "interval", {"seconds": 300}, True, "reports")
            service.cycle()  # type: ignore[attr-defined]
            service.cycle()  # type: ignore[attr-defined]
        finally:
            agent.state.close()
        server.wait_for(1)
    assert len(server.messages) == 1


def test_no_tenant_sends_reports_no_service(write_config, data):
    from custode.agent.runtime import Agent

    agent = Agent(load(write_config(config_text(data, tenants=""))), listen="127.0.0.1:10191")
    try:
        with pytest.raises(KeyError):
            agent.service("reports")
    finally:
        agent.state.close()


# --- end to end with the real builder and renderer ---------------------------------------------------------

REAL = all(importlib.util.find_spec(f"custode.agent.reports.{name}") is not None for name in ("data", "render"))


@pytest.mark.skipif(not REAL, reason="agent/reports/data.py (build_report) and agent/reports/render.py (render) "
                                     "are not in the tree yet")
def test_end_to_end_the_real_builder_and_renderer_send_an_empty_tenants_pdf(write_config, data):
    """No double: the report built from an empty state DB, laid out by WeasyPrint, reaches the sink."""
    with SmtpServer() as server:
        config = load(write_config(config_text(data, server.port, tenants=CAPANNORI))).model
        with open_recording(config) as recording:
            [outcome] = ReportDeliverer(config, recording.state, data_dir(config), Mailer(config.smtp),
                                        audit=recording.audit, builder=REAL_BUILDER, renderer=REAL_RENDERER,
                                        clock=ManualClock(at(DUE))).cycle()
        [mail] = server.wait_for(1, timeout=30)
    assert outcome.status == "sent", outcome.detail
    [(name, kind, content)] = [a for a in attachments(mail) if a[1] == "application/pdf"]
    assert name.endswith(".pdf") and content.startswith(b"%PDF")
    assert subject(mail) == "Rapporto trimestrale 2026Q4 – Comune di Capannori"



def test_config_check_warns_of_reports_that_cannot_be_sent(tmp_path, capsys):
    from custode.agent.cli import main

    path = tmp_path / "custode.yaml"
    path.write_text("tenants:\n  vaiano:\n    name: Vaiano\n    reports: {enabled: true}\n", encoding="utf-8")
    assert main(["config", "check", str(path)]) == 0, "valid: the reports wait, an incident says why once due"
    err = capsys.readouterr().err
    assert "tenants.vaiano.reports: e-mailed, but there is no smtp: section" in err
    assert "nobody to send them to" in err
