"""A real, private Dovecot IMAP server for integration tests.

Tests of the mail collector must talk to a genuine IMAP server (UIDVALIDITY,
STARTTLS, reconnects after an outage), not to a mock.  ``DovecotServer`` runs
Debian's ``dovecot`` as a child process with its own configuration file under
a test's base directory, so it never touches /etc/dovecot or the system service.

Layout under the base directory::

    dovecot.conf    generated configuration (``dovecot -n -c dovecot.conf`` checks it)
    dovecot.log     everything the server logs
    users           passwd-file with the single test user (passdb and userdb)
    mail/<user>/    the user's Maildir (survives stop/start)
    state/          state_dir
    tls/            self-signed certificate and key (``tls=True`` only)

The runtime sockets (``base_dir``) live in a short private directory under
/tmp instead, because Unix socket paths are limited to 108 bytes and pytest's
``tmp_path`` names can be longer.
"""

from __future__ import annotations

import base64
import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from conftest import free_port, wait_until
from server_base import DaemonServer

DOVECOT = Path("/usr/sbin/dovecot")
IMAP_BINARY = Path("/usr/lib/dovecot/imap")
SEPARATOR = "/"
"""Hierarchy separator of the test server, as on most real servers (``Backups/Veeam``)."""

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0
_IO_TIMEOUT = 10.0
_APPEND_BATCH = 500
_APPEND_BATCH_BYTES = 8 * 1024 * 1024
_BARE_NEWLINE = re.compile(rb"\r\n|\r(?!\n)|\n")  # imaplib.MapCRLF: IMAP wants CRLF


def require_dovecot() -> None:
    """Fail loudly (never skip) when Debian's Dovecot IMAP server is not installed."""
    missing = [str(path) for path in (DOVECOT, IMAP_BINARY) if not os.access(path, os.X_OK)]
    if missing:
        raise RuntimeError(
            f"Dovecot is not installed ({', '.join(missing)} missing): "
            "install the Debian package dovecot-imapd "
            "(apt-get install --no-install-recommends dovecot-imapd)"
        )


class DovecotServer(DaemonServer):
    config_name = "dovecot.conf"
    log_name = "dovecot.log"

    """One Dovecot instance on 127.0.0.1 with one user and a Maildir under ``base``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.  Stopping
    keeps the mail, the ports and the credentials, so ``stop(); start()`` is a
    server outage followed by the same server coming back.
    """

    def __init__(
        self,
        base: Path | str,
        *,
        tls: bool = False,
        user: str = "backup@example.test",
        password: str | None = None,
    ) -> None:
        require_dovecot()
        self._base = Path(base).resolve()
        self._tls = tls
        self._user = user
        self._password = password if password is not None else secrets.token_urlsafe(16)
        for field, value in (("user", user), ("password", self._password)):
            if not value or any(ch in value for ch in ":\r\n"):
                raise ValueError(f"{field} must be non-empty without ':' or line breaks")
        self._port = free_port()
        self._imaps_port = free_port() if tls else None
        self._process: subprocess.Popen[bytes] | None = None
        self._run_dir: Path | None = None
        self._tag = 0
        self._prepare()

    # -- public properties -------------------------------------------------



    @property
    def imaps_port(self) -> int:
        """Implicit-TLS (IMAPS) port; only exists with ``tls=True``."""
        if self._imaps_port is None:
            raise RuntimeError("imaps_port exists only for DovecotServer(..., tls=True)")
        return self._imaps_port

    @property
    def user(self) -> str:
        return self._user

    @property
    def password(self) -> str:
        return self._password

    @property
    def ca_file(self) -> Path:
        """The self-signed server certificate, to verify the server against."""
        if not self._tls:
            raise RuntimeError("ca_file exists only for DovecotServer(..., tls=True)")
        return self._base / "tls" / "cert.pem"




    @property
    def maildir(self) -> Path:
        """The test user's Maildir on disk (the INBOX; other folders are ``.Name`` below it)."""
        return self._base / "mail" / self._user



    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start dovecot in the foreground and wait until it sends its IMAP greeting."""
        if self.running:
            raise RuntimeError("DovecotServer is already running")
        # Sockets need a short path; the login processes (dovenull) and the mail
        # processes must be able to reach them, hence 0755.
        self._run_dir = Path(tempfile.mkdtemp(prefix="custode-dovecot-"))
        try:
            self._run_dir.chmod(0o755)
            self._write_config()
            with (self._base / "dovecot.stderr").open("ab") as stderr:
                self._process = subprocess.Popen(
                    [str(DOVECOT), "-F", "-c", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                    start_new_session=True,  # own process group: stop() can reap every child
                )
            if not wait_until(self._greets, _START_TIMEOUT, step=0.05):
                self._fail(f"dovecot did not send an IMAP greeting on {self.host}:{self.port} "
                           f"within {_START_TIMEOUT:.0f}s")
        except BaseException:
            self.stop()  # no half-started server or stray run directory
            raise

    def stop(self) -> None:
        """Terminate the master and every child process, and wait for them to exit.

        Takes about a second: Dovecot's master sleeps 1 s while shutting down.
        """
        process, self._process = self._process, None
        if process is not None:
            pgid = process.pid  # start_new_session: the master leads its own group
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(_STOP_TIMEOUT)
            # The master stops its children itself; make sure none outlives it.
            if not wait_until(lambda: not _group_alive(pgid), _STOP_TIMEOUT):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                wait_until(lambda: not _group_alive(pgid), _STOP_TIMEOUT)
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    # -- IMAP helpers --------------------------------------------------------

    def connect(self) -> imaplib.IMAP4:
        """A logged-in plain IMAP connection (the caller logs out)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=_IO_TIMEOUT)
        try:
            _check(client.login(self._user, self._password), "LOGIN")
        except BaseException:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise
        return client

    def create_folder(self, name: str) -> None:
        """Create (and subscribe) ``name``; an existing folder is fine."""
        client = self.connect()
        try:
            self._ensure_folder(client, name)
        finally:
            client.logout()

    def append(self, folder: str, raw: bytes, date: datetime | None = None) -> None:
        """APPEND one message to ``folder`` (created if missing).

        ``date`` becomes the INTERNALDATE (naive values are local time); by
        default the server uses the time of arrival.
        """
        client = self.connect()
        try:
            self._ensure_folder(client, folder)
            _check(client.append(_quote(folder), None, _internal_date(date), raw), f"APPEND to {folder!r}")
        finally:
            client.logout()

    def append_many(self, folder: str, messages: Iterable[bytes], date: datetime | None = None) -> int:
        """APPEND many messages over one connection; returns how many were stored.

        One APPEND per message costs a round trip and a Dovecot save transaction
        each (seconds for a few thousand).  Instead this sends batches as a single
        MULTIAPPEND (RFC 3502) with non-synchronising literals (LITERAL+, RFC 7888),
        both of which Dovecot supports.
        """
        client = self.connect()
        count = 0
        try:
            self._ensure_folder(client, folder)
            internal_date = _internal_date(date)
            head = b" " + internal_date.encode("ascii") if internal_date else b""
            batch: list[bytes] = []
            size = 0
            for raw in messages:
                body = _BARE_NEWLINE.sub(b"\r\n", raw)
                batch.append(b"%s {%d+}\r\n%s" % (head, len(body), body))
                size += len(body)
                if len(batch) >= _APPEND_BATCH or size >= _APPEND_BATCH_BYTES:
                    count += self._multiappend(client, folder, batch)
                    batch, size = [], 0
            if batch:
                count += self._multiappend(client, folder, batch)
        finally:
            client.logout()
        return count

    def folder_uids(self, folder: str) -> list[int]:
        """UIDs of all messages in ``folder``, ascending."""
        client = self.connect()
        try:
            _check(client.select(_quote(folder), readonly=True), f"EXAMINE {folder!r}")
            data = _check(client.uid("SEARCH", "ALL"), f"UID SEARCH in {folder!r}")
        finally:
            client.logout()
        return sorted(int(uid) for uid in b" ".join(part for part in data if part).split())

    def uidvalidity(self, folder: str) -> int:
        """The folder's current UIDVALIDITY as the server reports it (STATUS)."""
        client = self.connect()
        try:
            data = _check(client.status(_quote(folder), "(UIDVALIDITY)"), f"STATUS {folder!r}")
        finally:
            client.logout()
        match = re.search(rb"UIDVALIDITY (\d+)", b" ".join(part for part in data if isinstance(part, bytes)))
        if match is None:
            raise RuntimeError(f"no UIDVALIDITY in STATUS answer {data!r}")
        return int(match.group(1))

    def reset_uidvalidity(self, folder: str) -> int:
        """Make the server assign ``folder`` a new UIDVALIDITY, keeping its messages.

        This is what a mailbox rebuild or server migration looks like to a client:
        the server is stopped (clients are disconnected), the folder's UID list
        and indexes are deleted, and on restart Dovecot rescans the Maildir and
        renumbers the messages under a fresh UIDVALIDITY (``dovecot-uidvalidity``
        in the Maildir root guarantees it differs from the old one).
        Returns the new value.
        """
        if not self.running:
            raise RuntimeError("reset_uidvalidity needs a running server")
        before = self.uidvalidity(folder)
        folder_dir = self._folder_dir(folder)
        if not folder_dir.is_dir():
            raise RuntimeError(f"folder {folder!r} has no Maildir at {folder_dir}")
        self.stop()
        stale = [folder_dir / "dovecot-uidlist", *folder_dir.glob("dovecot.index*"),
                 # the mailbox list index caches every folder's UIDVALIDITY
                 *self.maildir.glob("dovecot.list.index*")]
        for path in stale:
            path.unlink(missing_ok=True)
        self.start()
        after = self.uidvalidity(folder)
        if after == before:
            raise RuntimeError(f"UIDVALIDITY of {folder!r} stayed {before} after the reset")
        return after

    # -- internals -----------------------------------------------------------

    def _prepare(self) -> None:
        """Create the directories, the user database and (with TLS) the certificate."""
        mail_user = self._mail_account()
        self._base.mkdir(parents=True, exist_ok=True)
        (self._base / "state").mkdir(exist_ok=True)
        (self._base / "mail").mkdir(mode=0o755, exist_ok=True)
        self.maildir.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.maildir, mail_user.pw_uid, mail_user.pw_gid)
        if _as_root():
            # Dovecot chroots the mail process into mail/ (as root, before dropping
            # to the unprivileged mail user), so pytest's 0700 tmp directories
            # above it need not be traversable by that user.
            home = f"{self._base / 'mail'}/./{self._user}"
        else:
            home = str(self.maildir)
        users = self._base / "users"
        users.write_text(
            f"{self._user}:{{PLAIN}}{self._password}:{mail_user.pw_uid}:{mail_user.pw_gid}::{home}::\n",
            encoding="utf-8",
        )
        users.chmod(0o600)
        if self._tls and not self.ca_file.exists():
            self._make_certificate()

    @staticmethod
    def _mail_account() -> pwd.struct_passwd:
        """Dovecot refuses mail access as root: use ``nobody`` as root, else ourselves."""
        return pwd.getpwnam("nobody") if _as_root() else pwd.getpwuid(os.getuid())

    def _make_certificate(self) -> None:
        """Self-signed certificate for localhost and 127.0.0.1, verifiable by Python's ssl."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("openssl is not installed: install the Debian package openssl")
        tls_dir = self.ca_file.parent
        tls_dir.mkdir(mode=0o700, exist_ok=True)
        key = tls_dir / "key.pem"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "7", "-subj", "/CN=localhost",
             "-keyout", str(key), "-out", str(self.ca_file),
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
             "-addext", "extendedKeyUsage=serverAuth"],
            check=True, capture_output=True, timeout=30,
        )
        key.chmod(0o600)

    def _write_config(self) -> None:
        assert self._run_dir is not None
        base = self._base
        root = _as_root()
        me = pwd.getpwuid(os.getuid()).pw_name
        mail_user = self._mail_account()
        lines = [
            "# Written by tests/dovecot_server.py: a private test server, not the system one.",
            "protocols = imap",
            "listen = 127.0.0.1",
            f"base_dir = {self._run_dir}",
            f"state_dir = {base / 'state'}",
            f"log_path = {self.log_path}",
            f"instance_name = custode-test-{self._port}",
            f"default_login_user = {'dovenull' if root else me}",
            f"default_internal_user = {'dovecot' if root else me}",
            f"default_internal_group = {'dovecot' if root else grp.getgrgid(os.getgid()).gr_name}",
            f"first_valid_uid = {mail_user.pw_uid}",
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            "auth_failure_delay = 0",  # wrong-password tests should not wait 2 s
            "mail_location = maildir:~",
            "mail_fsync = never",  # a throw-away test server: speed over durability
            f"valid_chroot_dirs = {base / 'mail'}",
            "namespace inbox {",
            "  inbox = yes",
            f"  separator = {SEPARATOR}",
            "}",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {base / 'users'}",
            "}",
            "userdb {",
            "  driver = passwd-file",
            f"  args = username_format=%u {base / 'users'}",
            "}",
            "protocol imap {",
            "  mail_max_userip_connections = 50",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            "    address = 127.0.0.1",
            f"    port = {self._port}",
            "  }",
            "  inet_listener imaps {",
            "    address = 127.0.0.1",
            f"    port = {self._imaps_port or 0}",
            "    ssl = yes",
            "  }",
        ]
        if not root:
            lines.append("  chroot =")
        lines.append("}")
        if root:
            # auth reads the users file under pytest's 0700 tmp directory
            lines += ["service auth {", "  user = root", "}"]
        else:
            lines += ["service anvil {", "  chroot =", "}"]
        if self._tls:
            lines += [
                "ssl = yes",
                f"ssl_cert = <{self.ca_file}",
                f"ssl_key = <{self.ca_file.parent / 'key.pem'}",
                "ssl_min_protocol = TLSv1.2",
            ]
        else:
            lines.append("ssl = no")
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _greets(self) -> bool:
        """True once the plain port answers with ``* OK``; raises if dovecot died."""
        assert self._process is not None
        if self._process.poll() is not None:
            self._fail(f"dovecot exited with status {self._process.returncode} during startup")
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(1024).startswith(b"* OK")
        except OSError:
            return False

    def _fail(self, reason: str) -> None:
        """Stop what is left of the server and raise with the end of its logs."""
        self.stop()
        tails = []
        for path in (self._base / "dovecot.stderr", self.log_path):
            if path.exists() and path.stat().st_size:
                tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
                tails.append(f"--- last lines of {path}:\n" + "\n".join(tail))
        raise RuntimeError("\n".join([reason, *tails]))

    def _folder_dir(self, folder: str) -> Path:
        """Maildir++ directory of ``folder``: the root for INBOX, ``.A.B`` for ``A/B``."""
        if folder.upper() == "INBOX":
            return self.maildir
        return self.maildir / ("." + _imap_utf7(folder).replace(SEPARATOR, "."))

    def _multiappend(self, client: imaplib.IMAP4, folder: str, parts: list[bytes]) -> int:
        """Send one MULTIAPPEND command through imaplib's raw send/readline."""
        self._tag += 1
        tag = b"CUSTODE%d" % self._tag  # imaplib's own tags look different
        client.send(b"%s APPEND %s%s\r\n" % (tag, _quote(folder).encode("ascii"), b"".join(parts)))
        while True:
            line = client.readline()
            if not line:
                raise RuntimeError(f"server closed the connection during APPEND to {folder!r}")
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].upper().startswith(b"OK"):
                    raise RuntimeError(f"APPEND of {len(parts)} messages to {folder!r} failed: {line!r}")
                return len(parts)

    @staticmethod
    def _ensure_folder(client: imaplib.IMAP4, folder: str) -> None:
        if folder.upper() == "INBOX":
            return
        mailbox = _quote(folder)
        typ, data = client.create(mailbox)
        if typ != "OK" and b"[ALREADYEXISTS]" not in b" ".join(data):
            raise RuntimeError(f"CREATE {folder!r} failed: {data!r}")
        _check(client.subscribe(mailbox), f"SUBSCRIBE {folder!r}")


def _as_root() -> bool:
    return os.geteuid() == 0


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs; zombies do not count.

    Children orphaned by the master are reaped by PID 1, which may take a
    while (or never happen in a minimal container); they hold no ports or files.
    """
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # exited while we looked
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _check(response: tuple[str, list], what: str) -> list:
    """imaplib reports NO as a return value; turn it into an exception."""
    typ, data = response
    if typ != "OK":
        raise RuntimeError(f"{what} failed: {typ} {data!r}")
    return data


def _internal_date(date: datetime | None) -> str | None:
    if date is None:
        return None
    return imaplib.Time2Internaldate(date if date.tzinfo else date.astimezone())


def _quote(mailbox: str) -> str:
    """imaplib sends mailbox names verbatim: quote them and encode non-ASCII (RFC 3501 5.1.3)."""
    escaped = _imap_utf7(mailbox).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _imap_utf7(name: str) -> str:
    """IMAP's modified UTF-7 for mailbox names."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=")
            out.append("&" + encoded.decode("ascii").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)
