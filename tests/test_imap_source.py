"""Backup mail from a real Dovecot IMAP server on loopback: incremental, resumable, nothing lost or doubled."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from dovecot_server import DovecotServer
from mailfactory import SCRIPT_RULE, make_mail, script_report

from custode.agent.backups.config import BackupsSection
from custode.agent.backups.jobs import ROME
from custode.agent.backups.service import BackupMonitor
from custode.agent.backups.store import MailStore
from custode.agent.incidents import Incidents
from custode.agent.state import State

pytestmark = pytest.mark.integration
NIGHT = datetime(2026, 11, 20, 23, 0, tzinfo=ROME)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    with DovecotServer(tmp_path_factory.mktemp("dovecot"), tls=True) as server:
        yield server


@pytest.fixture
def password(dovecot, monkeypatch):
    monkeypatch.setenv("CUSTODE_TEST_IMAP_PASSWORD", dovecot.password)


_folder_counter = iter(range(1, 10_000))


@pytest.fixture
def folder(dovecot) -> str:
    name = f"Test{next(_folder_counter)}"
    dovecot.create_folder(name)
    return name


def section(dovecot, folder: str, **mailbox) -> BackupsSection:
    box = {"type": "imap", "name": "provider", "host": dovecot.host, "port": dovecot.port, "security": "none",
           "username": dovecot.user, "password": {"env": "CUSTODE_TEST_IMAP_PASSWORD"}, "folders": [folder],
           "timeout": "5s", **mailbox}
    return BackupsSection.model_validate({"rules": [SCRIPT_RULE], "mailboxes": [box],
                                          "expected": {"default": [{"name": "alpha", "schedule": "0 22 * * *"}]}})


def jobs_stored(state: State) -> list[str]:
    return sorted(row["job"] for row in state.query("SELECT job FROM backup_reports"))


def test_incremental_polls_and_restart_resume(dovecot, folder, password, tmp_path) -> None:
    for job in ("alpha", "beta", "gamma"):
        dovecot.append(folder, script_report(job, "success", NIGHT))
    dovecot.append(folder, make_mail("Riunione di giunta", "ordine del giorno"))
    state = State(tmp_path / "state.db")
    monitor = BackupMonitor(section(dovecot, folder), state)
    first = monitor.poll()
    assert (first.new, first.reports, first.errors) == (4, 3, {})
    assert monitor.poll().new == 0
    assert MailStore(state).cursor("provider", folder).last_uid == max(dovecot.folder_uids(folder))
    dovecot.append(folder, script_report("delta", "failed", NIGHT))
    assert monitor.poll().new == 1
    state.close()

    # the agent restarts: it resumes after the last UID and fetches only what is new
    dovecot.append(folder, script_report("epsilon", "success", NIGHT))
    state = State(tmp_path / "state.db")
    summary = BackupMonitor(section(dovecot, folder), state).poll()
    assert (summary.new, summary.duplicates) == (1, 0)
    assert jobs_stored(state) == ["alpha", "beta", "delta", "epsilon", "gamma"]
    # the poller never marks mail as read: people still see it as new
    assert dovecot.connect().select(folder)[0] == "OK"


def test_uidvalidity_change_rescans_without_duplicates(dovecot, folder, password, tmp_path) -> None:
    dovecot.append(folder, script_report("alpha", "failed", NIGHT))
    dovecot.append(folder, script_report("beta", "success", NIGHT))
    state = State(tmp_path / "state.db")
    incidents = Incidents(state)
    monitor = BackupMonitor(section(dovecot, folder), state, incidents,
                            clock=lambda: datetime(2026, 11, 21, 8, 0, tzinfo=ROME).timestamp())
    monitor.poll()
    opened = [i.id for i in incidents.open_incidents()]
    assert len(opened) == 1
    old = dovecot.uidvalidity(folder)
    assert dovecot.reset_uidvalidity(folder) != old
    summary = monitor.poll()
    assert (summary.new, summary.duplicates) == (0, 2)
    assert jobs_stored(state) == ["alpha", "beta"]
    assert [i.id for i in incidents.open_incidents()] == opened
    assert MailStore(state).cursor("provider", folder).uidvalidity == dovecot.uidvalidity(folder)


def test_server_down_then_back_loses_nothing(dovecot, folder, password, tmp_path) -> None:
    dovecot.append(folder, script_report("alpha", "success", NIGHT))
    state = State(tmp_path / "state.db")
    published: list = []
    monitor = BackupMonitor(section(dovecot, folder), state, publish=published.append)
    assert monitor.poll().new == 1
    dovecot.stop()
    try:
        down = monitor.poll()
        assert "cannot connect" in down.errors["provider"]
        assert f"{dovecot.host}:{dovecot.port}" in down.errors["provider"]
        up = {s.labels["mailbox"]: s.value for f in published[-1] if f.name == "custode_backup_mailbox_up"
              for s in f.samples}
        assert up == {"provider": 0.0}
    finally:
        dovecot.start()
    dovecot.append(folder, script_report("beta", "success", NIGHT))
    back = monitor.poll()
    assert (back.new, back.errors) == (1, {})
    assert jobs_stored(state) == ["alpha", "beta"]


def test_a_crash_before_the_batch_is_stored_loses_nothing(dovecot, folder, password, tmp_path,
                                                          monkeypatch) -> None:
    import custode.agent.mail.imap

    monkeypatch.setattr(custode.agent.mail.imap, "BATCH_SIZE", 2)
    for job in ("a1", "a2", "a3", "a4", "a5"):
        dovecot.append(folder, script_report(job, "success", NIGHT))
    state = State(tmp_path / "state.db")
    monitor = BackupMonitor(section(dovecot, folder), state)
    real_record = MailStore.record
    calls = {"n": 0}

    def crash_on_second_batch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("killed")
        return real_record(self, *args, **kwargs)

    monkeypatch.setattr(MailStore, "record", crash_on_second_batch)
    with pytest.raises(OSError):
        monitor.poll()
    assert jobs_stored(state) == ["a1", "a2"]
    monkeypatch.setattr(MailStore, "record", real_record)
    summary = monitor.poll()
    assert (summary.new, summary.duplicates) == (3, 0)
    assert jobs_stored(state) == ["a1", "a2", "a3", "a4", "a5"]


def test_processed_reports_are_moved_and_other_mail_stays(dovecot, folder, password, tmp_path) -> None:
    dovecot.append(folder, script_report("alpha", "success", NIGHT))
    dovecot.append(folder, make_mail("Newsletter", "novità"))
    state = State(tmp_path / "state.db")
    monitor = BackupMonitor(section(dovecot, folder, move_to=f"{folder}/Letti"), state)
    assert monitor.poll().reports == 1
    assert len(dovecot.folder_uids(folder)) == 1
    assert len(dovecot.folder_uids(f"{folder}/Letti")) == 1
    assert monitor.poll().new == 0


def test_empty_poll_is_one_status_round_trip(dovecot, folder, password, tmp_path) -> None:
    dovecot.append(folder, script_report("alpha", "success", NIGHT))
    monitor = BackupMonitor(section(dovecot, folder), State(tmp_path / "state.db"))
    monitor.poll()
    started = time.perf_counter()
    assert monitor.poll().new == 0
    assert time.perf_counter() - started < 2.0  # generous bound; bench/mail_sync.py measures it


def test_starttls_and_imaps_verify_the_certificate(dovecot, folder, password, tmp_path) -> None:
    dovecot.append(folder, script_report("alpha", "success", NIGHT))
    state = State(tmp_path / "state.db")
    for port, security in ((dovecot.port, "starttls"), (dovecot.imaps_port, "tls")):
        trusted = section(dovecot, folder, port=port, security=security, ca_file=str(dovecot.ca_file))
        assert BackupMonitor(trusted, state).poll().errors == {}
        untrusted = section(dovecot, folder, port=port, security=security)
        error = BackupMonitor(untrusted, state).poll().errors["provider"]
        assert "certificate" in error and "ca_file" in error
        unverified = section(dovecot, folder, port=port, security=security, tls_verify=False)
        assert BackupMonitor(unverified, state).poll().errors == {}


def test_wrong_password_and_missing_secret_are_explained(dovecot, folder, tmp_path, monkeypatch) -> None:
    state = State(tmp_path / "state.db")
    monkeypatch.delenv("CUSTODE_TEST_IMAP_PASSWORD", raising=False)
    error = BackupMonitor(section(dovecot, folder), state).poll().errors["provider"]
    assert "CUSTODE_TEST_IMAP_PASSWORD is not set" in error
    monkeypatch.setenv("CUSTODE_TEST_IMAP_PASSWORD", "wrong")
    error = BackupMonitor(section(dovecot, folder), state).poll().errors["provider"]
    assert f"login as {dovecot.user} refused" in error and "CUSTODE_TEST_IMAP_PASSWORD" in error


def test_missing_folder_is_explained(dovecot, password, tmp_path) -> None:
    error = BackupMonitor(section(dovecot, "Nope"), State(tmp_path / "state.db")).poll().errors["provider"]
    assert "'Nope'" in error and "folders" in error


def test_huge_message_is_fetched_capped(dovecot, folder, password, tmp_path) -> None:
    import base64

    payload = base64.encodebytes(b"\x01" * (6 * 1024 * 1024))
    raw = (b"From: nas-script@comune.example.it\r\nSubject: Backup alpha: success\r\nMessage-ID: <huge@t>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=Z\r\n\r\n--Z\r\nContent-Type: text/plain\r\n"
           b"\r\nall good\r\n--Z\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
           b"Content-Disposition: attachment; filename=dump.bin\r\n\r\n" + payload + b"--Z--\r\n")
    dovecot.append(folder, raw)
    state = State(tmp_path / "state.db")
    summary = BackupMonitor(section(dovecot, folder), state).poll()
    assert (summary.new, summary.reports) == (1, 1)


@pytest.fixture
def own_dovecot(tmp_path):
    """A Dovecot of this test's own: the module's has counted other tests' failed logins (auth penalty)."""
    with DovecotServer(tmp_path / "dovecot") as server:
        server.create_folder("Backup")
        yield server


def test_a_mailbox_unreadable_for_two_polls_is_an_incident_of_its_tenant(own_dovecot, write_config,
                                                                          monkeypatch, pin_clock, capsys) -> None:
    from custode.agent.cli import main

    dovecot, folder = own_dovecot, "Backup"
    monkeypatch.setenv("CUSTODE_TEST_IMAP_PASSWORD", "not-the-password")
    config = str(write_config(
        "tenants:\n  provider: {name: Consorzio}\n  crema: {name: Comune di Crema}\nagent: {tenant: provider}\n"
        f"backups:\n  poll_interval: 10m\n  mailboxes:\n    - {{type: imap, name: crema-mail, host: {dovecot.host}, "
        f"port: {dovecot.port}, security: none, username: {dovecot.user}, "
        f"password: {{env: CUSTODE_TEST_IMAP_PASSWORD}}, folders: [{folder}], tenant: crema, timeout: 10s}}\n"
        f"  rules: [{{name: s, software: NAS script, sender: '^nas-script@', subject: '^Backup', "
        "job: '^Backup (?P<job>\\w+):'}]\n"
        "  expected:\n    crema: [{name: alpha, software: NAS script, schedule: '0 22 * * *'}]\n"))
    first = datetime(2026, 11, 21, 7, 0, tzinfo=ROME)
    pin_clock(first)
    assert main(["backups", "poll", "--config", config]) == 1
    assert "crema-mail" in capsys.readouterr().err

    def mailbox_incidents() -> list:
        from custode.agent.config_loader import load
        from custode.agent.paths import state_path

        state = State(state_path(load(config).model))
        try:
            return [i for i in Incidents(state).open_incidents() if i.check == "backup_mailbox"]
        finally:
            state.close()

    assert mailbox_incidents() == []  # one failed poll may be a server restart
    pin_clock(first.timestamp() + 600)
    assert main(["backups", "poll", "--config", config]) == 1
    [incident] = mailbox_incidents()
    assert (incident.tenant, incident.target, incident.severity) == ("crema", "crema-mail", "critical")
    assert "cannot be read" in incident.summary and "login" in incident.summary.lower()
    capsys.readouterr()
    assert main(["backups", "status", "--config", config]) == 1
    assert "MAILBOX DOWN since 2026-11-21 07:10" in capsys.readouterr().out

    monkeypatch.setenv("CUSTODE_TEST_IMAP_PASSWORD", dovecot.password)
    pin_clock(first.timestamp() + 1200)
    assert main(["backups", "poll", "--config", config]) == 0
    assert mailbox_incidents() == []
