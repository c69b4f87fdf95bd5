"""A real SMTP server on 127.0.0.1 for mailer tests, built on aiosmtpd.

The mailer must be tested against a genuine SMTP dialogue (EHLO, STARTTLS,
AUTH, per-recipient refusals, 4xx/5xx answers) rather than a mocked
``smtplib``; aiosmtpd is an SMTP server library, so the tests control exactly
what the server offers and answers. ``SmtpServer`` runs it in a thread on a
free loopback port and keeps what it received in :attr:`SmtpServer.messages`.

TLS uses a throw-away CA made with ``cryptography``: the server certificate is
signed by it (names ``localhost``, ``127.0.0.1`` and ``::1``), and
:attr:`SmtpServer.ca_file` is what a client trusts to verify it.
"""

from __future__ import annotations

import datetime
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from conftest import free_port
from server_base import TestServer

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError as exc:  # fail loudly, never skip
    raise RuntimeError("aiosmtpd is not installed: .venv/bin/pip install aiosmtpd "
                       "(scripts/test.sh installs it)") from exc

_START_TIMEOUT = 5.0


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    login: str | None
    """The user the client authenticated as, or None."""
    tls: bool
    """Whether the message travelled over TLS (STARTTLS or implicit)."""


class _Handler:
    """aiosmtpd hooks: who may send, which recipients are refused, what DATA answers."""

    def __init__(self, server: "SmtpServer") -> None:
        self._server = server

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802 - aiosmtpd name
        # Checked here rather than with aiosmtpd's auth_required, which cannot
        # be combined with AUTH over implicit TLS without a security warning.
        if self._server.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self._server.refuse_recipients:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self._server.fail_with is not None:
            code, text = self._server.fail_with
            return f"{code} {text}"
        raw = bytes(envelope.original_content or envelope.content)
        auth = session.auth_data
        login = auth.login.decode("utf-8") if isinstance(auth, LoginPassword) else None
        received = ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            message=BytesParser(policy=policy.default).parsebytes(raw),
            raw=raw,
            login=login,
            tls=server.transport is not None and server.transport.get_extra_info("ssl_object") is not None,
        )
        self._server._received(received)
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer(TestServer):
    """An aiosmtpd server on 127.0.0.1 and a free port; use as a context manager.

    ``starttls``: offer (and require) STARTTLS with a certificate from a fresh CA.
    ``implicit_tls``: TLS from the first byte (port 465 style), same CA.
    ``auth=(user, password)``: offer AUTH PLAIN/LOGIN (after STARTTLS when
    ``starttls``) and refuse MAIL without it.
    ``refuse_recipients``: addresses answered with 550 at RCPT.
    ``fail_with=(451, "...")``: the answer to DATA instead of accepting.
    """

    def __init__(
        self,
        *,
        starttls: bool = False,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        refuse_recipients: Iterable[str] = (),
        fail_with: tuple[int, str] | None = None,
        base: Path | str | None = None,
    ) -> None:
        """``base``: where the TLS files go; by default a temporary directory removed on stop."""
        if starttls and implicit_tls:
            raise ValueError("choose starttls or implicit_tls, not both")
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.refuse_recipients = {address.lower() for address in refuse_recipients}
        self.fail_with = fail_with
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.messages: list[ReceivedMail] = []
        self.failed_logins: list[str] = []
        self._condition = threading.Condition()
        self._base = Path(base) if base is not None else None
        self._own_base = False
        self._ca_file: Path | None = None
        self._controller: Controller | None = None

    # -- public --------------------------------------------------------------------------------

    @property
    def tls(self) -> bool:
        return self.starttls or self.implicit_tls

    @property
    def ca_file(self) -> Path:
        """PEM certificate of the CA that signed the server's certificate."""
        if self._ca_file is None:
            raise RuntimeError("ca_file exists only for SmtpServer(starttls=True) or (implicit_tls=True)")
        return self._ca_file

    def start(self) -> "SmtpServer":
        server_context = self._tls_context() if self.tls else None
        kwargs: dict = {
            "server_hostname": "localhost",  # else aiosmtpd resolves our FQDN on every connection
            "ready_timeout": _START_TIMEOUT,
            "timeout": 30,
            "auth_require_tls": self.starttls,  # implicit TLS is TLS too, aiosmtpd just cannot tell
        }
        if self.auth is not None:
            kwargs["authenticator"] = self._authenticate
        if self.starttls:
            kwargs.update(tls_context=server_context, require_starttls=True)
        if self.implicit_tls:
            kwargs["ssl_context"] = server_context
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._own_base and self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base, self._own_base = None, False

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """The first ``count`` received messages; AssertionError when they do not arrive in time."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages within {timeout} s, "
                                         f"got {len(self.messages)}")
                self._condition.wait(left)
            return self.messages[:count]

    # -- internals -----------------------------------------------------------------------------

    def _received(self, mail: ReceivedMail) -> None:
        with self._condition:
            self.messages.append(mail)
            self._condition.notify_all()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert self.auth is not None
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode("utf-8"), auth_data.password.decode("utf-8")
            if (user, password) == self.auth:
                return AuthResult(success=True, auth_data=auth_data)
            self.failed_logins.append(user)
        return AuthResult(success=False, handled=False)

    def _tls_context(self) -> ssl.SSLContext:
        cert, key = self._make_certificates()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return context

    def _make_certificates(self) -> tuple[Path, Path]:
        """A CA and a server certificate signed by it; returns (server cert, server key)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Custode test CA")])
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1")),
                x509.IPAddress(IPv6Address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        if self._base is None:  # a private directory, removed by stop()
            self._base, self._own_base = Path(tempfile.mkdtemp(prefix="custode-smtp-")), True
        tls_dir = self._base / "tls"
        tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._ca_file = tls_dir / "ca.pem"
        self._ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert_file, key_file = tls_dir / "server.pem", tls_dir / "server.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)
        return cert_file, key_file
