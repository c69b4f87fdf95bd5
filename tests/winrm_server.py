"""A WS-Management test double that answers pywinrm the way a Windows host does.

No Windows machine is available to the test suite, so ``WinrmServer`` speaks
the WinRS part of WS-Management (MS-WSMV) over HTTP(S) on 127.0.0.1: Basic
auth, Create/Command/Receive/Signal/Delete on the ``windows/shell/cmd``
resource, SOAP faults with the WSManFault codes Windows uses. It never runs
anything: it decodes ``powershell ... -EncodedCommand`` and hands the script
to a Python handler the test registered with :meth:`WinrmServer.on`.

What it imitates on purpose, because the transport must cope with it:

* output arrives over several Receive responses (``chunk_size`` bytes each);
* a command that has not finished makes each Receive wait for the request's
  OperationTimeout and then fail with WSManFault 2150858793, as Windows does;
* stdout is encoded in the shell's code page (``WINRS_CODEPAGE``, 437 unless
  the client asks for 65001) and str stderr is wrapped in PowerShell's CLIXML;
* an unknown ShellId gets WSManFault 2150858843;
* input sent to a command's stdin (``Send``) is recorded, not read by anything.

Never imported by product code.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import secrets
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
    command_line: str | None = None
    """Command: the command line exactly as sent (``powershell -NoProfile ... -EncodedCommand BASE64``)."""
    stdin: bytes | None = None
    """Send: the bytes written to the command's stdin."""
    stdin_end: bool = False
    """Send: whether it closed the command's stdin (End="true")."""
    operation_timeout: float | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class _Command:
    id: str
    script: str
    outcome: object
    started: float
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0
    resolved: bool = False
    signalled: threading.Event = field(default_factory=threading.Event)
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
                 chunk_size: int = 4096, base: Path | str | None = None) -> None:
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.tls = tls
        self.chunk_size = chunk_size
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

    def start(self) -> None:
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
                           started=time.monotonic())
        record.script = command.script
        record.command_line = command_line
        if script is None:
            command.outcome = (1, "", f"the test double runs only powershell -EncodedCommand, got: {command_line}")
        else:
            command.outcome = self._dispatch(script)
        with self._lock:
            shell.commands[command.id] = command
        record.command_id = command.id
        return f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId></rsp:CommandResponse>"

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
        """Input for a command's stdin: recorded (the double runs nothing that would read it)."""
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
        if not self._authorized():
            self._reply(401, b"", "text/html", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
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

    def _reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
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
