"""The private Dovecot test server (tests/dovecot_server.py) really behaves like an IMAP server."""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import dovecot_server
import pytest
from dovecot_server import DovecotServer, _group_alive, _imap_utf7, require_dovecot

pytestmark = pytest.mark.integration


def _message(number: int) -> bytes:
    return (f"From: backup@nas.example.test\nTo: backup@example.test\n"
            f"Subject: Backup job {number} finished\n\nAll good.\n").encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DovecotServer]:
    with DovecotServer(tmp_path / "dovecot") as running:
        yield running


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[DovecotServer]:
    with DovecotServer(tmp_path / "dovecot", tls=True) as running:
        yield running


def test_append_and_list_uids(server: DovecotServer) -> None:
    for number in range(3):
        server.append("Backups/Veeam", _message(number))
    assert server.folder_uids("Backups/Veeam") == [1, 2, 3]
    assert server.folder_uids("INBOX") == []
    server.create_folder("Empty")
    assert server.folder_uids("Empty") == []

    client = imaplib.IMAP4(server.host, server.port, timeout=5)
    client.login(server.user, server.password)
    client.select('"Backups/Veeam"', readonly=True)
    typ, data = client.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    client.logout()
    assert typ == "OK" and b"Backup job 2 finished" in data[0][1]


def test_append_many_and_non_ascii_folder(server: DovecotServer) -> None:
    assert server.append_many("Backups/Überwachung", [_message(n) for n in range(1000)]) == 1000
    assert server.folder_uids("Backups/Überwachung") == list(range(1, 1001))


def test_stop_then_start_keeps_messages(server: DovecotServer) -> None:
    server.append_many("INBOX", [_message(n) for n in range(3)])
    uidvalidity, port = server.uidvalidity("INBOX"), server.port

    pid = server.pid
    server.stop()
    assert not server.running and pid is not None and not _group_alive(pid)
    with pytest.raises(OSError):
        socket.create_connection((server.host, port), timeout=2).close()

    server.start()
    assert server.port == port
    assert server.folder_uids("INBOX") == [1, 2, 3]
    assert server.uidvalidity("INBOX") == uidvalidity


def test_reset_uidvalidity_keeps_messages(server: DovecotServer) -> None:
    server.append_many("Backups/Veeam", [_message(n) for n in range(3)])
    before = server.uidvalidity("Backups/Veeam")

    after = server.reset_uidvalidity("Backups/Veeam")

    assert after != before
    assert server.uidvalidity("Backups/Veeam") == after
    assert len(server.folder_uids("Backups/Veeam")) == 3


def test_starttls_verifies_against_ca_file(tls_server: DovecotServer) -> None:
    for host in ("127.0.0.1", "localhost"):  # the certificate names both
        client = imaplib.IMAP4(host, tls_server.port, timeout=5)
        client.starttls(ssl.create_default_context(cafile=tls_server.ca_file))
        client.login(tls_server.user, tls_server.password)
        assert client.select()[0] == "OK"
        client.logout()

    # Verification is real: without the test CA the handshake is refused.
    client = imaplib.IMAP4(tls_server.host, tls_server.port, timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(ssl.create_default_context())
    with contextlib.suppress(OSError):  # the failed handshake closed the socket
        client.shutdown()


def test_imaps_verifies_against_ca_file(tls_server: DovecotServer) -> None:
    tls_server.append("INBOX", _message(1))
    context = ssl.create_default_context(cafile=tls_server.ca_file)
    client = imaplib.IMAP4_SSL(tls_server.host, tls_server.imaps_port, ssl_context=context, timeout=5)
    client.login(tls_server.user, tls_server.password)
    typ, data = client.select(readonly=True)
    client.logout()
    assert (typ, data) == ("OK", [b"1"])


def test_startup_failure_reports_the_dovecot_log(tmp_path: Path) -> None:
    server = DovecotServer(tmp_path / "dovecot")
    with socket.socket() as squatter:
        squatter.bind((server.host, server.port))
        squatter.listen()
        with pytest.raises(RuntimeError, match="(?s)exited.*Address already in use"):
            server.start()
    assert not server.running


def test_require_dovecot_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    require_dovecot()
    monkeypatch.setattr(dovecot_server, "DOVECOT", Path("/nonexistent/sbin/dovecot"))
    with pytest.raises(RuntimeError, match="dovecot-imapd"):
        require_dovecot()


def test_mailbox_names_use_modified_utf7() -> None:
    assert _imap_utf7("Entwürfe") == "Entw&APw-rfe"
    assert _imap_utf7("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"  # RFC 3501 5.1.3
    assert _imap_utf7("A&B") == "A&-B"
