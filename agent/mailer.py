"""Outgoing e-mail over SMTP: maintenance notices to a comune's referents and helpdesk tickets.

Only the standard library talks SMTP (``smtplib``, ``ssl``, ``email``); this
module adds what an unattended agent needs on top:

* settings that refuse unsafe combinations up front (a password sent in clear
  to a remote server) instead of at 3 a.m. during a maintenance window;
* messages that thread correctly in the referents' mail clients and in
  helpdesks (stable ``Message-ID``, ``In-Reply-To``, ``References``);
* one exception, :class:`MailerError`, whose text names the server and the fix,
  and whose ``retryable`` flag tells the ticket outbox whether trying again
  later can help (a full mailbox or an outage) or not (a wrong password).
"""

from __future__ import annotations

import base64
import logging
import smtplib
import socket
import ssl
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime

from custode.agent.clock import now_rome
from custode.agent.redact import redact_text
from custode.agent.secrets import SecretError
from custode.agent.smtp_settings import DEFAULT_PORTS, SmtpSettings, parse_address

log = logging.getLogger(__name__)

MANAGED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to", "references",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
})
"""Headers :func:`build_message` writes itself; ``OutgoingMail.headers`` may not override them."""

# --- messages ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MailAttachment:
    """A file attached to a message (a report's PDF, its CSV data), as the reader's mail client saves it."""

    filename: str
    content: bytes
    media_type: str = "application/octet-stream"
    """``maintype/subtype``, e.g. ``application/pdf``; what the mail client opens the file with."""


@dataclass
class OutgoingMail:
    """One message to send. ``message_id`` is generated when None; set it to keep it across retries."""

    to: list[str]
    subject: str
    text: str
    html: str | None = None
    cc: list[str] = field(default_factory=list)
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers, e.g. ``{"X-Custode-Incident": "42"}``; may not replace the ones built here."""
    attachments: list[MailAttachment] = field(default_factory=list)
    """Files after the text (the message becomes multipart/mixed), in this order."""

    def recipients(self) -> list[str]:
        """Envelope recipients (To and Cc, bare addresses, each once)."""
        seen: dict[str, None] = {}
        for value in [*self.to, *self.cc]:
            seen.setdefault(parse_address(value).addr_spec, None)
        return list(seen)


def new_message_id(sender: str) -> str:
    """A globally unique ``<random@sender-domain>``.

    The domain is the sender's, not the host name: the agent runs on servers
    whose names are internal (or ``localhost``), and helpdesks use the
    Message-ID to thread follow-ups, so it must be unique across installations.
    """
    domain = parse_address(sender).domain.strip("[]")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return f"<custode.{uuid.uuid4().hex}@{domain}>"


def _msg_id(value: str, what: str) -> str:
    """``value`` as ``<id@domain>``; angle brackets are added when missing."""
    text = value.strip()
    if not text.startswith("<"):
        text = f"<{text}>"
    inner = text[1:-1]
    if (not text.endswith(">") or "@" not in inner or any(ch in inner for ch in "<> \t\r\n")
            or not inner.isascii()):
        raise ValueError(f"{what} {value!r} is not a message id like <1234.abc@example.it>")
    return text


def build_message(settings: SmtpSettings, mail: OutgoingMail) -> EmailMessage:
    """The message as it will be sent: UTF-8, local Date with offset, Message-ID, threading headers.

    With ``html`` the message is multipart/alternative: mail clients show the
    HTML, while the plain text stays readable in helpdesks and mobile previews.
    With ``attachments`` it is multipart/mixed: the text (or the alternative)
    first, then each file, base64, with its name and media type.
    Raises ValueError for an unusable address, id, header or attachment (nothing is sent).
    """
    if not mail.to:
        raise ValueError("a message needs at least one To address")
    for value in mail.subject, *mail.headers.values():
        if "\r" in value or "\n" in value:
            raise ValueError(f"header value {value!r} contains a line break")

    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(str(parse_address(value)) for value in mail.to)
    if mail.cc:
        message["Cc"] = ", ".join(str(parse_address(value)) for value in mail.cc)
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(now_rome())
    message["Message-ID"] = _msg_id(mail.message_id, "message_id") if mail.message_id \
        else new_message_id(settings.sender)
    references = [_msg_id(value, "reference") for value in mail.references]
    if mail.in_reply_to:
        parent = _msg_id(mail.in_reply_to, "in_reply_to")
        message["In-Reply-To"] = parent
        if parent not in references:  # clients that thread by References alone still find the parent
            references.append(parent)
    if references:
        message["References"] = " ".join(references)
    for name, value in mail.headers.items():
        if name.lower() in MANAGED_HEADERS:
            raise ValueError(f"header {name} is set by the mailer; use the OutgoingMail field instead")
        if not name or not all(33 <= ord(ch) <= 126 and ch != ":" for ch in name):
            raise ValueError(f"{name!r} is not a valid header name")
        message[name] = value

    message.set_content(mail.text, charset="utf-8")
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html", charset="utf-8")
    for attachment in mail.attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        name = attachment.filename
        if (not maintype or not subtype or "/" in subtype or not name or "/" in name or "\\" in name
                or any(ord(ch) < 32 for ch in name)):
            raise ValueError(f"attachment {name!r} ({attachment.media_type}): needs a plain file name and a media "
                             "type like application/pdf")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=name)
    return message


# --- errors ------------------------------------------------------------------------------------

class MailerError(Exception):
    """A message was not (fully) sent; ``str()`` names the server, the reason and the fix.

    ``retryable`` is True when sending the same message later may succeed
    (server unreachable, timeout, 4xx answers) and False when it will fail the
    same way until someone changes the config or the addresses (5xx, TLS, auth).
    When some recipients accepted the message, ``accepted`` lists them and a
    retry should go to the ``refused`` ones only.

    The cause is redacted (:func:`custode.agent.redact.redact_text`): it
    quotes the server's answers, which may hold a link with a token, and it
    travels on to the ticket outbox, the logs and the audit log.
    """

    def __init__(self, server: str, cause: str, *, retryable: bool, code: int | None = None,
                 refused: dict[str, tuple[int, str]] | None = None, accepted: list[str] | None = None,
                 message_id: str | None = None) -> None:
        cause = redact_text(cause)
        super().__init__(f"SMTP server {server}: {cause}")
        self.server = server
        self.cause = cause
        self.retryable = retryable
        self.code = code
        self.refused = refused or {}
        self.accepted = accepted or []
        self.message_id = message_id


def _is_temporary(code: int | None) -> bool:
    """4xx, or no code at all (the connection broke): worth another try."""
    return code is None or code < 0 or 400 <= code < 500


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return f"{code} {' '.join(text.split())}".strip()


# --- sending -----------------------------------------------------------------------------------

def ssl_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Verifies chain and host name unless the config explicitly says ``tls_verify: false``."""
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if not settings.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Mailer:
    """Sends :class:`OutgoingMail` through one SMTP server, one connection per message.

    A connection per message keeps the agent free of idle sessions the server
    would drop anyway; notifications are a handful per maintenance.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, mail: OutgoingMail) -> str:
        """Send ``mail``; return its Message-ID (with angle brackets) for threading follow-ups.

        Raises ValueError for a malformed message (nothing was sent) and
        :class:`MailerError` when the server could not be used or refused it.
        """
        settings = self.settings
        message = build_message(settings, mail)
        message_id = str(message["Message-ID"])
        recipients = mail.recipients()
        where = settings.where()
        password = self._password(where)
        step = _Step()
        try:
            context = ssl_context(settings) if settings.security != "none" else None
        except OSError as exc:
            raise MailerError(where, f"cannot load ca_file {settings.ca_file}: {exc.strerror or exc}; "
                                     "point ca_file to the PEM certificate of the CA that signed the "
                                     "server's certificate", retryable=False, message_id=message_id) from None
        try:
            refused = self._deliver(message, recipients, password, context, step)
        except MailerError as exc:
            exc.message_id = exc.message_id or message_id
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes one explained error
            raise self._explain(exc, step.name, message_id) from exc
        if refused:
            accepted = [address for address in recipients if address not in refused]
            raise MailerError(where, f"the message was delivered to {', '.join(accepted)} but refused for "
                                     f"{_describe_refused(refused)}; check these addresses",
                              retryable=all(_is_temporary(code) for code, _ in refused.values()),
                              refused=_decode_refused(refused), accepted=accepted, message_id=message_id)
        log.info("sent mail %s to %s via %s", message_id, ", ".join(recipients), where)
        return message_id

    # --- internals -----------------------------------------------------------------------------

    def _password(self, where: str) -> str | None:
        if self.settings.password is None:
            return None
        try:
            return self.settings.password.resolve()
        except SecretError as exc:
            raise MailerError(where, f"cannot read the SMTP password: {exc}", retryable=False) from None

    def _deliver(self, message: EmailMessage, recipients: list[str], password: str | None,
                 context: ssl.SSLContext | None, step: "_Step") -> dict[str, tuple[int, bytes]]:
        """One SMTP session; returns the recipients the server refused while accepting others."""
        settings = self.settings
        step.name = "connecting"
        if settings.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.endpoint_port,
                                                  timeout=settings.timeout, context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.endpoint_port, timeout=settings.timeout)
        try:
            if settings.security == "starttls":
                step.name = "STARTTLS"
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise MailerError(settings.where(), "the server does not offer STARTTLS; use the port "
                                      "for mail submission with STARTTLS (usually 587), or security: tls "
                                      "with port 465 if the server offers implicit TLS", retryable=False)
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.user is not None:
                step.name = "logging in"
                _login(smtp, settings.user, password or "")
            step.name = "sending the message"
            refused = smtp.send_message(message, from_addr=settings.sender_address.addr_spec,
                                        to_addrs=recipients)
        except BaseException:
            smtp.close()
            raise
        step.name = "closing"
        try:
            smtp.quit()  # the message is already accepted: a failing QUIT must not cause a resend
        except (smtplib.SMTPException, OSError):
            smtp.close()
        return refused

    def _explain(self, exc: Exception, step: str, message_id: str) -> MailerError:
        """Turn whatever smtplib, ssl or the socket raised into words an operator can act on."""
        settings = self.settings
        where = settings.where()

        def error(cause: str, retryable: bool, code: int | None = None, **extra) -> MailerError:
            return MailerError(where, cause, retryable=retryable, code=code, message_id=message_id, **extra)

        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            refused = exc.recipients
            return error(f"refused every recipient: {_describe_refused(refused)}; check these addresses "
                         "(or whether this server relays to them for the configured user)",
                         all(_is_temporary(code) for code, _ in refused.values()),
                         refused=_decode_refused(refused))
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            temporary = _is_temporary(exc.smtp_code)
            fix = ("the server could not check it right now; it will be retried" if temporary else
                   f"check user and the password in {settings.password.describe() if settings.password else '?'}"
                   " (some providers need an app password for SMTP)")
            return error(f"login as {settings.user!r} refused ({_reply(exc.smtp_code, exc.smtp_error)}); {fix}",
                         temporary, exc.smtp_code)
        if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 530:
            fix = ("check that user is the account the server expects" if settings.user else
                   "set user and password (the login of the SMTP account)")
            return error(f"the server requires login before sending ({_reply(530, exc.smtp_error)}); {fix}",
                         False, 530)
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return error(f"refused the sender {exc.sender} ({_reply(exc.smtp_code, exc.smtp_error)}); set "
                         "sender to an address the SMTP account may send as",
                         _is_temporary(exc.smtp_code), exc.smtp_code)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            if step == "logging in":
                return error("the server does not offer login (AUTH) on this connection; check security "
                             "and port (many servers offer AUTH only after STARTTLS), or remove user and "
                             "password if this relay needs no login", False)
            return error(f"{exc} ({step}); use addresses in plain ASCII or a server that supports SMTPUTF8",
                         False)
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
            exc = exc.__context__  # smtplib reports a read timeout as a disconnect
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return error(f"the server closed the connection while {step}; it will be retried", True)
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            what = "refused the message" if step == "sending the message" else f"answered while {step}"
            hint = ("temporary failure, it will be retried" if _is_temporary(code) else
                    "the server refuses it permanently; read its answer for the reason")
            return error(f"{what}: {_reply(code, exc.smtp_error)}; {hint}", _is_temporary(code), code)
        if isinstance(exc, smtplib.SMTPException):
            # what smtplib raises without a reply code: no common login method and the like
            return error(f"SMTP error while {step}: {exc}; check the settings against what the server offers",
                         False)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return error(f"the server's TLS certificate could not be verified ({exc.verify_message}); if it "
                         "is signed by a private CA set ca_file to that CA's certificate; if the name does "
                         "not match, use the name in the certificate as host; tls_verify: false only for tests",
                         False)
        if isinstance(exc, ssl.SSLError):
            hint = ("if this port speaks STARTTLS (usually 587 or 25) use security: starttls"
                    if settings.security == "tls" else "check that the server's TLS setup is sound")
            return error(f"TLS handshake failed while {step} ({exc.reason or exc}); {hint}", False)
        if isinstance(exc, ConnectionRefusedError):
            return error(f"connection refused: nothing listens on port {settings.endpoint_port}; check host "
                         "and port, and that the mail server is running and reachable through the firewall",
                         True)
        if isinstance(exc, TimeoutError):
            hint = (" (a server that waits for TLS from the first byte looks like this: for port 465 use "
                    "security: tls)" if step in ("connecting", "STARTTLS") and settings.security != "tls" else "")
            return error(f"no answer within {settings.timeout:g} s while {step}{hint}; check that the "
                         "server is reachable (firewall) and not overloaded; it will be retried", True)
        if isinstance(exc, socket.gaierror):
            return error(f"cannot resolve host name {settings.host} ({exc.strerror}); check host and DNS",
                         True)
        if isinstance(exc, OSError):
            return error(f"network error while {step}: {exc.strerror or exc}; check that the server is "
                         "reachable from this machine", True)
        return error(f"unexpected error while {step}: {exc!r}", False)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """``smtp.login``, except that non-ASCII credentials go as UTF-8 with AUTH PLAIN.

    smtplib encodes credentials as ASCII and fails before asking the server on
    a password such as "perché1"; RFC 4616 defines PLAIN over UTF-8.
    """
    if user.isascii() and password.isascii():
        smtp.login(user, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    if "PLAIN" not in smtp.esmtp_features["auth"].upper().split():
        raise smtplib.SMTPException("the user name or password contains non-ASCII characters, which "
                                    "need AUTH PLAIN, and the server does not offer it; use an ASCII password")
    token = base64.b64encode(f"\0{user}\0{password}".encode("utf-8")).decode("ascii")
    code, reply = smtp.docmd("AUTH", f"PLAIN {token}")
    if code == 334:  # a server that does not take the initial response asks for it
        code, reply = smtp.docmd(token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


class _Step:
    """What ``send`` was doing when it failed, for the error message."""

    name = "connecting"


def _describe_refused(refused: dict[str, tuple[int, bytes | str]]) -> str:
    return "; ".join(f"{address} ({_reply(code, text)})" for address, (code, text) in refused.items())


def _decode_refused(refused: dict[str, tuple[int, bytes | str]]) -> dict[str, tuple[int, str]]:
    return {address: (code, text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text)
            for address, (code, text) in refused.items()}


__all__ = ["DEFAULT_PORTS", "MailAttachment", "Mailer", "MailerError", "OutgoingMail", "SmtpSettings",
           "build_message", "new_message_id", "parse_address", "ssl_context"]
