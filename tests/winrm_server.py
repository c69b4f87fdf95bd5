"""A WS-Management test double that answers pywinrm the way a Windows host does.

No Windows machine is available to the test suite, so ``WinrmServer`` speaks
the WinRS part of WS-Management (MS-WSMV) over HTTP(S) on 127.0.0.1:
Create/Command/Send/Receive/Signal/Delete on the ``windows/shell/cmd``
resource, SOAP faults with the WSManFault codes Windows uses, and Basic or
NTLM authentication. It never runs anything: it decodes
``powershell ... -EncodedCommand`` and hands the script to a Python handler the
test registered with :meth:`WinrmServer.on`.

What it imitates on purpose, because the transport must cope with it:

* output arrives over several Receive responses (``chunk_size`` bytes each);
* a command that has not finished makes each Receive wait for the request's
  OperationTimeout and then fail with WSManFault 2150858793, as Windows does;
* stdout is encoded in the shell's code page (``WINRS_CODEPAGE``, 437 unless
  the client asks for 65001) and str stderr is wrapped in PowerShell's CLIXML;
* an unknown ShellId gets WSManFault 2150858843;
* WinRS starts the command through ``cmd /c``: a command line over 8,191
  characters fails as cmd.exe fails it ("The command line is too long.");
* stdin, like powershell.exe's: a command whose text uses ``$input`` gets the
  bytes sent to its stdin (``Send``) as ``$input`` lines, decoded in the
  shell's code page, once the client closes stdin (``End="true"``); until then
  it is a running command, and Receive waits. With WinRS' console stdin
  (``WINRS_CONSOLEMODE_STDIN=TRUE``) ``$input`` is empty, as on Windows. The
  one such command it can "run" is Custode's stager
  (``agent/transports/winrm.py``), decoded here from its documented input
  format, independently of the product code: the script it would run is what
  the handlers see and :attr:`WinrmServer.scripts` lists, the secrets it
  would set are the request's ``environment``;
* NTLM (``auth="ntlm"``): 401 with ``WWW-Authenticate: Negotiate`` (and
  ``Kerberos``, as a domain member advertises), the three legs on one
  keep-alive connection with pyspnego as the acceptor (``spnego.server(
  protocol="ntlm")``, whose credentials come from the file named by the
  ``NTLM_USER_FILE`` environment variable, lines ``DOMAIN:user:password``:
  see :func:`ntlm_user_file`), channel binding to the TLS
  certificate over HTTPS, and over HTTP the message encryption of MS-WSMV
  2.2.9.1.1 (``multipart/encrypted``, ``application/HTTP-SPNEGO-session-
  encrypted``) that pywinrm applies there; an unencrypted SOAP message over
  HTTP is refused (Windows' AllowUnencrypted=false). Every Authorization
  header is recorded in :attr:`WinrmServer.auth_log`.

Never imported by product code.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import itertools
import os
import re
import secrets
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from conftest import free_port
from server_base import TestServer

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CMD_RESOURCE = f"{SHELL_URI}/cmd"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
ACTIONS = {
    f"{TRANSFER}/Create": "Create",
    f"{TRANSFER}/Delete": "Delete",
    f"{SHELL_URI}/Command": "Command",
    f"{SHELL_URI}/Receive": "Receive",
    f"{SHELL_URI}/Signal": "Signal",
    f"{SHELL_URI}/Send": "Send",
}
RESPONSE_ACTIONS = {
    "Create": f"{TRANSFER}/CreateResponse",
    "Delete": f"{TRANSFER}/DeleteResponse",
    "Command": f"{SHELL_URI}/CommandResponse",
    "Receive": f"{SHELL_URI}/ReceiveResponse",
    "Signal": f"{SHELL_URI}/SignalResponse",
    "Send": f"{SHELL_URI}/SendResponse",
}
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
SIGNAL_TERMINATE = f"{SHELL_URI}/signal/terminate"
STATE_RUNNING = f"{SHELL_URI}/CommandState/Running"
STATE_DONE = f"{SHELL_URI}/CommandState/Done"
OPERATION_TIMEOUT_CODE = 2150858793
SHELL_NOT_FOUND_CODE = 2150858843
CLIXML_NS = "http://schemas.microsoft.com/powershell/2004/04"
CMD_LINE_LIMIT = 8191
"""cmd.exe's limit on its command line; WinRS starts every command through ``cmd /c``."""
STAGER_MARK = "# Custode (agent/transports/winrm.py): the script comes on standard input"
"""The first line of Custode's stdin stager: the one ``$input`` reader the double knows how to run."""
MISSING_INPUT = "custode: the script of this command did not arrive whole on its standard input"
ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
MIME_BOUNDARY = b"--Encrypted Boundary"

Result = tuple[int, "str | bytes", "str | bytes"]


class _Hang:
    def __repr__(self) -> str:
        return "HANG"


HANG = _Hang()
"""Handler result for a command that never finishes (until a terminate Signal or Delete)."""


@dataclass(frozen=True)
class Delayed:
    """Handler result for a command that finishes ``seconds`` after it was started."""

    seconds: float
    result: Result


Handler = Callable[[str], "Result | _Hang | Delayed"]


def clixml(errors: str, *, progress: str | None = "Preparing modules for first use.") -> bytes:
    """stderr as PowerShell writes it for -EncodedCommand: a CLIXML document of error strings.

    A progress record comes first, as real hosts often send one; readers must drop it.
    """
    def escaped(text: str) -> str:
        text = text.replace("_x", "_x005F_x")  # a literal "_x" must not read as an escape
        text = re.sub(r"[\x00-\x1f]", lambda m: f"_x{ord(m.group()):04X}_", text)
        return escape(text)

    body = []
    if progress is not None:
        body.append(f'<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
                    f'</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>'
                    f'{escape(progress)}</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR>'
                    f'<SD> </SD></PR></MS></Obj>')
    for line in errors.splitlines():
        body.append(f'<S S="Error">{escaped(line + chr(13) + chr(10))}</S>')
    document = f'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="{CLIXML_NS}">{"".join(body)}</Objs>'
    return document.encode("utf-8")


def uses_dollar_input(script: str) -> bool:
    """Whether ``script`` uses ``$input``, outside comments: powershell.exe reads stdin for it only then.

    (ConsoleHost's ``AstSearcher.IsUsingDollarInput``; comments are dropped
    line by line, which is enough for the scripts the double sees.)
    """
    code = "\n".join(line.split("#", 1)[0] for line in script.splitlines())
    return re.search(r"\$input\b", code, re.I) is not None


def unescape_line(line: str) -> str:
    """One line of the stager's input format: ``:`` then text with ``~XXXX`` for UTF-16 units and ``~``."""
    parts = line[1:].split("~")
    units = [parts[0]]
    for part in parts[1:]:
        units += [chr(int(part[:4], 16)), part[4:]]
    return "".join(units).encode("utf-16", "surrogatepass").decode("utf-16")


def read_lines(data: str) -> list[str]:
    """Lines as .NET's TextReader.ReadLine splits them (CR LF, LF or CR), as PowerShell reads stdin."""
    lines = re.split(r"\r\n|\n|\r", data)
    if lines[-1] == "":  # the terminator of the last line, not a line
        lines.pop()
    return lines


def run_stager(stager: str, lines: list[str]) -> tuple[str, dict[str, str]] | tuple[int, bytes]:
    """What Custode's stager would do with ``lines`` of ``$input``: (script, environment), or (exit code, stderr).

    Follows the input format the stager documents (a line per secret, the
    script's lines, ``.``), not the product's Python code, so a change on one
    side that the other did not follow fails the tests.
    """
    found = re.search(r"\}\s*\$__custodeIn\s+@\(([^)]*)\)", stager)
    if not stager.startswith(STAGER_MARK) or found is None:
        return 1, b"the test double runs only Custode's stdin stager among the scripts that read $input\r\n"
    names = re.findall(r"'([A-Z0-9_]+)'", found.group(1))
    if len(lines) < len(names) + 2 or lines[-1] != ".":
        return 125, (MISSING_INPUT + "\r\n").encode()
    values = [unescape_line(line) for line in lines[:-1]]
    return "\n".join(values[len(names):]), dict(zip(names, values[:len(names)], strict=True))


def ntlm_user_file(path: Path | str, doubles: Iterable["WinrmServer"]) -> Path:
    """Write the pyspnego credential store (``DOMAIN:user:password`` lines) for ``doubles`` at ``path``.

    Point ``NTLM_USER_FILE`` at it (``monkeypatch.setenv``): pyspnego's acceptor
    reads that variable, process-wide, so several doubles share one file.
    """
    target = Path(path)
    target.write_text("".join(f"{d.domain}:{d.user}:{d.password}\n" for d in doubles), encoding="utf-8")
    return target


def encoded_script(command_line: str) -> str | None:
    """The script of ``powershell ... -EncodedCommand BASE64`` (any accepted prefix: -e, -enc, -ec)."""
    tokens = command_line.split()
    for index, token in enumerate(tokens[:-1]):
        if token.lower() in ("-e", "-ec", "-enc", "-encodedcommand") or (
                token.lower().startswith("-enc") and "-encodedcommand".startswith(token.lower())):
            return base64.b64decode(tokens[index + 1]).decode("utf-16-le")
    return None


@dataclass
class RecordedRequest:
    action: str
    """Short name: Create, Command, Receive, Signal, Delete (or the full URI if unknown)."""
    shell_id: str | None = None
    command_id: str | None = None
    signal: str | None = None
    script: str | None = None
    """Command: the script PowerShell runs: what the stager read from stdin (set when stdin closes), else the
    ``-EncodedCommand`` text."""
    stager: str | None = None
    """Command: the ``-EncodedCommand`` text when it reads stdin (``$input``), i.e. the stager."""
    environment: dict[str, str] = field(default_factory=dict)
    """Command: the variables the stager would set from stdin (the secrets)."""
    command_line: str | None = None
    """Command: the command line exactly as sent (``powershell -NoProfile ... -EncodedCommand BASE64``)."""
    stdin: bytes | None = None
    """Send: the bytes written to the command's stdin."""
    stdin_end: bool = False
    """Send: whether it closed the command's stdin (End="true")."""
    operation_timeout: float | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthRecord:
    """One request's ``Authorization`` header, as the double saw it, and how it answered."""

    connection: int
    """Which TCP connection (NTLM authenticates a connection, not a request)."""
    authorization: str | None
    scheme: str | None
    ntlm_message: int | None
    """1 NEGOTIATE, 3 AUTHENTICATE (from the NTLMSSP header of the token), else None."""
    status: int
    challenge: str | None = None
    """The ``WWW-Authenticate`` value of a 401 that carried the server's CHALLENGE (message 2)."""
    encrypted: bool = False
    """The request's body was an MS-WSMV encrypted message."""


_PENDING = object()
"""A command's outcome while its stdin is still open: it is reading ``$input``."""


@dataclass
class _Command:
    id: str
    script: str
    outcome: object
    started: float
    record: RecordedRequest | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0
    resolved: bool = False
    signalled: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False


@dataclass
class _Shell:
    id: str
    codepage: str
    commands: dict[str, _Command] = field(default_factory=dict)


class _Fault(Exception):
    def __init__(self, code: str, subcode: str, reason: str, wsman_code: int | None = None) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason, self.wsman_code = code, subcode, reason, wsman_code


class WinrmServer(TestServer):
    """A fake Windows host on 127.0.0.1 for pywinrm; a context manager, or ``start()``/``stop()``."""

    def __init__(self, *, user: str = "custode", password: str | None = None, tls: bool = False,
                 chunk_size: int = 4096, base: Path | str | None = None, auth: Literal["basic", "ntlm"] = "basic",
                 domain: str = "COMUNE", schemes: tuple[str, ...] = ("Negotiate", "Kerberos")) -> None:
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.tls = tls
        self.chunk_size = chunk_size
        self.auth = auth
        self.domain = domain
        self.schemes = schemes
        """What a 401 offers (one ``WWW-Authenticate`` header each); Windows' defaults are Negotiate and Kerberos."""
        self.auth_log: list[AuthRecord] = []
        self._connection_ids = itertools.count(1)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.requests: list[RecordedRequest] = []
        self.handlers: list[tuple[Callable[[str], bool], Handler]] = []
        self.shells: dict[str, _Shell] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.base = Path(tempfile.mkdtemp(prefix="custode-winrm-")) if base is None else Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        if base is None:  # kept across stop()/start(), so ca_file stays valid; removed with the object
            weakref.finalize(self, shutil.rmtree, self.base, ignore_errors=True)
        self._httpd: _HttpServer | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        self._context: ssl.SSLContext | None = self._make_tls() if tls else None

    # -- what tests use -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/wsman"

    @property
    def ca_file(self) -> Path:
        """PEM of the throwaway CA that signed the server certificate (``tls=True`` only)."""
        if not self.tls:
            raise RuntimeError("ca_file exists only for WinrmServer(tls=True)")
        return self.base / "ca.pem"

    @property
    def account(self) -> str:
        """The user name a client gives: ``DOMAIN\\user`` for NTLM (a domain account), the bare name for Basic."""
        return f"{self.domain}\\{self.user}" if self.auth == "ntlm" else self.user

    @property
    def channel_bindings(self) -> bytes | None:
        """RFC 5929 tls-server-end-point of the certificate (SHA-256: it is signed with ECDSA-SHA256), or None."""
        if not self.tls:
            return None
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        der = x509.load_pem_x509_certificate((self.base / "server.pem").read_bytes()).public_bytes(
            serialization.Encoding.DER)
        return b"tls-server-end-point:" + hashlib.sha256(der).digest()

    @property
    def actions(self) -> list[str]:
        with self._lock:
            return [request.action for request in self.requests]

    @property
    def scripts(self) -> list[str]:
        with self._lock:
            return [request.script for request in self.requests if request.script is not None]

    def on(self, match: str | re.Pattern[str] | Callable[[str], bool],
           handler: Handler | Result | _Hang | Delayed) -> None:
        """Answer scripts matching ``match`` (a regex searched in the script, or a predicate).

        ``handler`` is a fixed result — ``(exit_code, stdout, stderr)``, ``HANG``
        or ``Delayed`` — or a callable taking the script and returning one.
        The first registered match wins. str stderr is sent as CLIXML, bytes as they are.
        """
        if callable(match) and not isinstance(match, re.Pattern):
            predicate = match
        else:
            pattern = re.compile(match) if isinstance(match, str) else match
            predicate = lambda script: pattern.search(script) is not None  # noqa: E731
        fixed = handler
        answer: Handler = handler if callable(handler) else (lambda script: fixed)  # type: ignore[assignment]
        with self._lock:
            self.handlers.append((predicate, answer))

    def drop_shells(self) -> None:
        """Forget every shell, as Windows does after IdleTimeout or a WinRM service restart."""
        with self._lock:
            for shell in self.shells.values():
                for command in shell.commands.values():
                    command.signalled.set()
            self.shells.clear()

    # -- lifecycle ----------------------------------------------------------------------------------

    def close_connections(self) -> None:
        """Close every open keep-alive connection, as http.sys does after its idle timeout (120 s by default)."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def start(self) -> None:
        if self.auth == "ntlm":
            store = os.environ.get("NTLM_USER_FILE", "")
            line = f"{self.domain}:{self.user}:{self.password}"
            if not store or not Path(store).is_file() or line not in Path(store).read_text().splitlines():
                raise RuntimeError(f"WinrmServer(auth='ntlm') needs NTLM_USER_FILE naming a file with the line "
                                   f"{self.domain}:{self.user}:<password> (tests/winrm_server.ntlm_user_file)")
        handler = type("Handler", (_RequestHandler,), {"double": self})
        self._stopping.clear()
        self._httpd = _HttpServer((self.host, self.port), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"winrm-double-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop every shell and release waiting Receives; ``start()`` serves again."""
        self._stopping.set()
        self.drop_shells()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:  # idle keep-alive connections must not outlive the server
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- TLS ----------------------------------------------------------------------------------------

    def _make_tls(self) -> ssl.SSLContext:
        """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Custode test CA")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        (self.base / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
        (self.base / "server.pem").write_bytes(cert.public_bytes(pem))
        (self.base / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.base / "server.pem", self.base / "server.key")
        return context

    # -- WS-Management ------------------------------------------------------------------------------

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """One SOAP request → (HTTP status, SOAP response)."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return 400, b""
        header = root.find("s:Header", NS)
        message_id = _text(header, "a:MessageID") or f"uuid:{uuid.uuid4()}"
        action_uri = _text(header, "a:Action") or ""
        action = ACTIONS.get(action_uri, action_uri)
        shell_id = None
        for selector in root.iterfind("s:Header/w:SelectorSet/w:Selector", NS):
            if selector.get("Name") == "ShellId":
                shell_id = selector.text
        timeout = _duration(_text(header, "w:OperationTimeout")) or 60.0
        options = {option.get("Name", ""): option.text or ""
                   for option in root.iterfind("s:Header/w:OptionSet/w:Option", NS)}
        record = RecordedRequest(action=action, shell_id=shell_id, operation_timeout=timeout, options=options)
        with self._lock:
            self.requests.append(record)
        try:
            if (_text(header, "w:ResourceURI") or "") != CMD_RESOURCE:
                raise _Fault("s:Sender", "w:DestinationUnreachable",
                             "The test double knows only the windows/shell/cmd resource.", 2150858770)
            method = getattr(self, f"_do_{action.lower()}", None) if action in RESPONSE_ACTIONS else None
            if method is None:
                raise _Fault("s:Sender", "a:ActionNotSupported",
                             f"The test double does not implement the action {action_uri}.", 2150858753)
            body_xml = method(root, record, timeout)
            return 200, _envelope(RESPONSE_ACTIONS[action], message_id, body_xml)
        except _Fault as fault:
            return 500, _fault_envelope(fault, message_id)

    def _shell(self, record: RecordedRequest) -> _Shell:
        with self._lock:
            shell = self.shells.get(record.shell_id or "")
        if shell is None:
            raise _Fault("s:Sender", "w:InvalidSelectors",
                         f"No shell with ShellId {record.shell_id} exists on this host (closed or expired); "
                         "create a new shell.", SHELL_NOT_FOUND_CODE)
        return shell

    def _do_create(self, root: ET.Element, record: RecordedRequest, timeout: float) -> str:
        codepage = record.options.get("WINRS_CODEPAGE", "437")
        shell = _Shell(id=str(uuid.uuid4()).upper(), codepage="utf-8" if codepage == "65001" else f"cp{codepage}")
        with self._lock:
            self.shells[shell.id] = shell
        record.shell_id = shell.id
        return (f"<x:ResourceCreated><a:Address>{escape(self.url)}</a:Address><a:ReferenceParameters>"
                f"<w:ResourceURI>{CMD_RESOURCE}</w:ResourceURI><w:SelectorSet>"
                f'<w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
                f"</x:ResourceCreated>"
                f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId><rsp:ResourceUri>{CMD_RESOURCE}"
                f"</rsp:ResourceUri><rsp:Owner>{escape(self.user)}</rsp:Owner><rsp:InputStreams>stdin"
                f"</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>")

    def _do_command(self, root: ET.Element, record: RecordedRequest, timeout: float) -> str:
        shell = self._shell(record)
        line = root.find("s:Body/rsp:CommandLine", NS)
        command_line = " ".join(filter(None, [_text(line, "rsp:Command"), _text(line, "rsp:Arguments")]))
        script = encoded_script(command_line)
        command = _Command(id=str(uuid.uuid4()).upper(), script=script or command_line, outcome=None,
                           started=time.monotonic(), record=record)
        record.command_line = command_line
        console_stdin = record.options.get("WINRS_CONSOLEMODE_STDIN", "TRUE").upper() != "FALSE"
        if len(command_line) > CMD_LINE_LIMIT:  # cmd /c refuses it before powershell.exe starts
            command.outcome = (1, "", b"The command line is too long.\r\n")
        elif script is None:
            command.outcome = (1, "", f"the test double runs only powershell -EncodedCommand, got: {command_line}")
        elif uses_dollar_input(script):
            record.stager = script
            if console_stdin:  # stdin is WinRS' console, not redirected: powershell.exe reads nothing into $input
                command.outcome = self._run_stager(command, [])
            else:
                command.outcome = _PENDING  # reading $input until the client closes stdin
        else:
            record.script = script
            command.outcome = self._dispatch(script)
        with self._lock:
            shell.commands[command.id] = command
        record.command_id = command.id
        return f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId></rsp:CommandResponse>"

    def _run_stager(self, command: _Command, lines: list[str]) -> object:
        """Run Custode's stager on ``lines`` of ``$input``: the script's handler, or the stager's own failure."""
        ran = run_stager(command.script, lines)
        if isinstance(ran[0], int):
            return (ran[0], "", ran[1])
        script, environment = ran
        assert isinstance(script, str) and isinstance(environment, dict)
        if command.record is not None:
            command.record.script = script
            command.record.environment = environment
        command.started = time.monotonic()
        return self._dispatch(script)

    def _dispatch(self, script: str) -> object:
        with self._lock:
            handlers = list(self.handlers)
        for predicate, handler in handlers:
            if predicate(script):
                return handler(script)
        return (1, "", f"no handler in the WinRM test double matches the script: {script[:200]}")

    def _do_receive(self, root: ET.Element, record: RecordedRequest, timeout: float) -> str:
        shell = self._shell(record)
        stream = root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
        command_id = stream.get("CommandId") if stream is not None else None
        record.command_id = command_id
        command = shell.commands.get(command_id or "")
        if command is None:
            raise _Fault("s:Sender", "w:InvalidParameter",
                         f"No command with CommandId {command_id} in shell {shell.id}.", 2150858854)
        if not self._wait_until_finished(command, timeout):
            raise _Fault("s:Receiver", "w:TimedOut",
                         "The WS-Management service could not complete the operation within the "
                         "OperationTimeout of the request.", OPERATION_TIMEOUT_CODE)
        self._resolve(command, shell)
        out, command.stdout = command.stdout[:self.chunk_size], command.stdout[self.chunk_size:]
        err, command.stderr = command.stderr[:self.chunk_size], command.stderr[self.chunk_size:]
        done = not command.stdout and not command.stderr
        cid = command.id
        parts = [f'<rsp:Stream Name="stdout" CommandId="{cid}">{base64.b64encode(out).decode()}</rsp:Stream>'
                 if out else "",
                 f'<rsp:Stream Name="stderr" CommandId="{cid}">{base64.b64encode(err).decode()}</rsp:Stream>'
                 if err else ""]
        if done:
            parts += [f'<rsp:Stream Name="stdout" CommandId="{cid}" End="true"></rsp:Stream>',
                      f'<rsp:Stream Name="stderr" CommandId="{cid}" End="true"></rsp:Stream>',
                      f'<rsp:CommandState CommandId="{cid}" State="{STATE_DONE}">'
                      f"<rsp:ExitCode>{command.exit_code}</rsp:ExitCode></rsp:CommandState>"]
        else:
            parts.append(f'<rsp:CommandState CommandId="{cid}" State="{STATE_RUNNING}"/>')
        return f"<rsp:ReceiveResponse>{''.join(parts)}</rsp:ReceiveResponse>"

    def _wait_until_finished(self, command: _Command, timeout: float) -> bool:
        """Hold the Receive like Windows: until the command has output, or the OperationTimeout passes."""
        deadline = time.monotonic() + timeout
        while command.outcome is _PENDING:  # still reading its stdin: running, with nothing to say yet
            left = deadline - time.monotonic()
            if left <= 0 or command.signalled.is_set() or self._stopping.is_set():
                return False
            command.ready.wait(min(left, 0.05))
        timeout = max(0.0, deadline - time.monotonic())
        outcome = command.outcome
        if isinstance(outcome, _Hang):
            command.signalled.wait(timeout)
            return False
        if isinstance(outcome, Delayed):
            ready_in = command.started + outcome.seconds - time.monotonic()
            if ready_in > timeout:
                command.signalled.wait(timeout)
                return False
            if ready_in > 0 and command.signalled.wait(ready_in):
                return False
        return not self._stopping.is_set()

    def _resolve(self, command: _Command, shell: _Shell) -> None:
        if command.resolved:
            return
        outcome = command.outcome.result if isinstance(command.outcome, Delayed) else command.outcome
        exit_code, stdout, stderr = outcome  # type: ignore[misc]
        command.exit_code = exit_code
        command.stdout = stdout if isinstance(stdout, bytes) else stdout.encode(shell.codepage, errors="replace")
        command.stderr = (stderr if isinstance(stderr, bytes)
                          else clixml(stderr) if stderr else b"")
        command.resolved = True

    def _do_signal(self, root: ET.Element, record: RecordedRequest, timeout: float) -> str:
        shell = self._shell(record)
        signal = root.find("s:Body/rsp:Signal", NS)
        record.command_id = signal.get("CommandId") if signal is not None else None
        record.signal = _text(signal, "rsp:Code")
        with self._lock:
            command = shell.commands.pop(record.command_id or "", None)
        if command is None:
            raise _Fault("s:Sender", "w:InvalidParameter",
                         f"No command with CommandId {record.command_id} in shell {shell.id}.", 2150858854)
        command.signalled.set()
        return "<rsp:SignalResponse/>"

    def _do_send(self, root: ET.Element, record: RecordedRequest, timeout: float) -> str:
        """Input for a command's stdin: recorded, and when it ends, ``$input`` of a command that reads it."""
        shell = self._shell(record)
        stream = root.find("s:Body/rsp:Send/rsp:Stream", NS)
        record.command_id = stream.get("CommandId") if stream is not None else None
        command = shell.commands.get(record.command_id or "")
        if command is None or stream is None:
            raise _Fault("s:Sender", "w:InvalidParameter",
                         f"No command with CommandId {record.command_id} in shell {shell.id}.", 2150858854)
        if command.stdin_closed:
            raise _Fault("s:Receiver", "w:InternalError", "The pipe has been ended.", 2150859185)
        record.stdin = base64.b64decode(stream.text or "")
        record.stdin_end = stream.get("End", "false").lower() == "true"
        command.stdin += record.stdin
        command.stdin_closed = record.stdin_end
        if command.stdin_closed and command.outcome is _PENDING:
            text = bytes(command.stdin).decode(shell.codepage, errors="replace")  # the console's input code page
            command.outcome = self._run_stager(command, read_lines(text))
            command.ready.set()
        return "<rsp:SendResponse/>"

    def _do_delete(self, root: ET.Element, record: RecordedRequest, timeout: float) -> str:
        shell = self._shell(record)
        with self._lock:
            self.shells.pop(shell.id, None)
        for command in shell.commands.values():
            command.signalled.set()
        return ""


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet for clients that reject the certificate or hang up; loud for bugs in the double."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ssl.SSLError, ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as pywinrm's requests session reuses its connection."""

    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = 30
    wbufsize = 64 * 1024  # headers and body in one write: no Nagle/delayed-ACK stall per request
    double: WinrmServer

    def setup(self) -> None:
        if self.double._context is not None:
            self.request.settimeout(self.timeout)
            self.request = self.double._context.wrap_socket(self.request, server_side=True)
        with self.double._lock:
            self.double._connections.add(self.request)
        super().setup()
        # NTLM authenticates the TCP connection: its context lives as long as this handler (one per connection)
        self._connection = next(self.double._connection_ids)
        self._ntlm: Any = None
        self._authenticated = False

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.double._lock:
                self.double._connections.discard(self.request)
            if self.double._context is not None:
                self.request.close()  # socketserver only closes the plain socket it accepted

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass  # a client that rejects our certificate or hangs up; nothing to answer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.rstrip("/") != "/wsman":
            self._reply(404, b"", "text/html")
            return
        if self.double.auth == "ntlm":
            self._ntlm_post(body)
            return
        if not self._authorized():
            self._reply(401, b"", "text/html", [("WWW-Authenticate", 'Basic realm="WSMAN"')])
            return
        status, answer = self.double.handle(body)
        self._reply(status, answer, "application/soap+xml;charset=UTF-8")

    def _authorized(self) -> bool:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.double.user) and secrets.compare_digest(password,
                                                                                          self.double.password)

    # -- NTLM ---------------------------------------------------------------------------------------

    def _ntlm_post(self, body: bytes) -> None:
        """One request on an NTLM endpoint: a leg of the handshake, or a (decrypted) SOAP message."""
        import spnego
        from spnego.channel_bindings import GssChannelBindings
        from spnego.exceptions import SpnegoError

        header = self.headers.get("Authorization")
        scheme, _, token_text = (header or "").partition(" ")
        token = b""
        try:
            token = base64.b64decode(token_text) if token_text else b""
        except ValueError:
            pass
        message = int.from_bytes(token[8:12], "little") if token.startswith(b"NTLMSSP\0") else None
        encrypted = (self.headers.get("Content-Type") or "").startswith("multipart/encrypted")

        def log(status: int, challenge: str | None = None) -> None:
            with self.double._lock:
                self.double.auth_log.append(AuthRecord(self._connection, header, scheme or None, message, status,
                                                       challenge, encrypted))

        def refuse() -> None:  # a 401 offering the configured schemes, as Windows does
            self._ntlm, self._authenticated = None, False
            log(401)
            self._reply(401, b"", "text/html", [("WWW-Authenticate", name) for name in self.double.schemes])

        if header is not None:
            if scheme.lower() not in {name.lower() for name in self.double.schemes} | {"ntlm"} or message is None:
                refuse()
                return
            if message == 1:
                bindings = self.double.channel_bindings
                self._ntlm = spnego.server(protocol="ntlm", channel_bindings=GssChannelBindings(
                    application_data=bindings) if bindings else None)
                self._authenticated = False
                challenge = f"{scheme} {base64.b64encode(self._ntlm.step(token) or b'').decode()}"
                log(401, challenge)
                self._reply(401, b"", "text/html", [("WWW-Authenticate", challenge)])
                return
            if message != 3 or self._ntlm is None:
                refuse()
                return
            try:
                self._ntlm.step(token)
            except SpnegoError:  # wrong password, unknown user, bad channel binding
                refuse()
                return
            self._authenticated = True
        elif not self._authenticated:
            refuse()
            return
        log(200)
        if encrypted:
            try:
                body = self._unseal(body)
            except (ValueError, SpnegoError) as exc:
                self._reply(400, f"cannot decrypt the message: {exc}".encode(), "text/plain")
                return
        elif body and not self.double.tls:
            self._reply(400, b"unencrypted SOAP over HTTP is refused (AllowUnencrypted=false)", "text/plain")
            return
        if not body:  # pywinrm's empty request that sets up the encryption context
            self._reply(200, b"", "application/soap+xml;charset=UTF-8")
            return
        status, answer = self.double.handle(body)
        if encrypted:
            self._reply(status, self._seal(answer), f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";'
                                                   'boundary="Encrypted Boundary"')
        else:
            self._reply(status, answer, "application/soap+xml;charset=UTF-8")

    def _unseal(self, body: bytes) -> bytes:
        """The SOAP message inside an MS-WSMV 2.2.9.1.1 encrypted body, checked against its stated length."""
        parts = [part for part in body.split(MIME_BOUNDARY + b"\r\n") if part]
        if len(parts) != 2:
            raise ValueError("not one encrypted part")
        length = int(re.search(rb"Length=(\d+)", parts[0]).group(1))  # type: ignore[union-attr]
        payload = parts[1].removesuffix(MIME_BOUNDARY + b"--\r\n").removeprefix(
            b"\tContent-Type: application/octet-stream\r\n")
        size = struct.unpack("<I", payload[:4])[0]
        plain = self._ntlm.unwrap(payload[4:4 + size] + payload[4 + size:]).data
        if len(plain) != length:
            raise ValueError(f"{len(plain)} bytes decrypted, the header says {length}")
        return plain

    def _seal(self, plain: bytes) -> bytes:
        """``plain`` as an encrypted MS-WSMV body, signature and sealed message from the NTLM context."""
        wrapped = self._ntlm.wrap(plain, encrypt=True).data
        signature, sealed = wrapped[:16], wrapped[16:]
        return (MIME_BOUNDARY + b"\r\n\tContent-Type: " + ENCRYPTED_PROTOCOL.encode() + b"\r\n"
                b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(plain)).encode()
                + b"\r\n" + MIME_BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
                + struct.pack("<I", len(signature)) + signature + sealed + MIME_BOUNDARY + b"--\r\n")

    def _reply(self, status: int, body: bytes, content_type: str,
               headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _text(parent: ET.Element | None, path: str) -> str | None:
    node = parent.find(path, NS) if parent is not None else None
    return node.text.strip() if node is not None and node.text else None


def _duration(value: str | None) -> float | None:
    """Seconds of an xs:duration such as PT20S or PT1M30.500S."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", value or "")
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    xmlns = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items() if prefix != "f")
    return (f'<s:Envelope xml:lang="en-US" {xmlns}><s:Header><a:Action>{action}</a:Action>'
            f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
            f"<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
            f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
            f"<s:Body>{body}</s:Body></s:Envelope>").encode("utf-8")


def _fault_envelope(fault: _Fault, relates_to: str) -> bytes:
    detail = ""
    if fault.wsman_code is not None:
        detail = (f'<s:Detail><f:WSManFault xmlns:f="{NS["f"]}" Code={quoteattr(str(fault.wsman_code))} '
                  f'Machine="127.0.0.1"><f:Message>{escape(fault.reason)}</f:Message></f:WSManFault></s:Detail>')
    body = (f"<s:Fault><s:Code><s:Value>{fault.code}</s:Value><s:Subcode><s:Value>{fault.subcode}</s:Value>"
            f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
            f"{detail}</s:Fault>")
    return _envelope(FAULT_ACTION, relates_to, body)
