"""PowerShell on a Windows host over WinRM (WS-Management), with pywinrm.

pywinrm's ``Session.run_ps`` waits for ever and re-opens a shell per command,
so this module drives pywinrm's low-level ``Protocol`` itself: one remote shell
kept open across runs (farm mode runs many small probes per host), and a
receive loop that checks the command's timeout between WS-Management Receive
calls, each of which the host may hold open for at most one OperationTimeout.

Scripts travel on stdin, not on the command line
------------------------------------------------
WinRS starts every command through ``cmd /c``, whose line Windows cuts at
8,191 characters; as ``-EncodedCommand`` (base64 of UTF-16) that is about 3,000
characters of script, less than the farm probe or a restore test's file list
needs. So the command line carries only :func:`stdin_stager`, a short fixed
PowerShell 2.0 script, and the script itself goes to the command's stdin with
WS-Management ``Send`` (``rsp:Stream Name="stdin"``, base64, ``End="true"`` on
the last chunk), as Ansible does (``executor/powershell/bootstrap_wrapper.ps1``
and ``plugins/connection/winrm.py``; pywinrm issue 184, where its maintainer
advises stdin: "there's a max limit to CreateProcess but not for stdin").

What powershell.exe does with stdin, and why the stager looks like this:

* ``-Command -`` would read the script from stdin itself, but as if typed at
  a prompt, statement by statement: a multi-line block needs a blank line after
  it or never runs, a statement that does not parse is skipped, and the exit
  code is that of the last statement only (about_PowerShell_exe; PowerShell
  issues 3223, 2068, 15331, 21808). A script must run as one script block.
* With ``-Command``/``-EncodedCommand`` and a redirected stdin, the console
  host reads stdin into the command's ``$input`` only when the command text
  uses ``$input`` (ConsoleHost.DoRunspaceInitialization:
  ``AstSearcher.IsUsingDollarInput`` sets ``ReadInputObjects``, and
  Executor.ExecuteCommandAsyncHelper feeds each line, read with a
  StreamReader in the console's input code page, to the pipeline). The stager
  therefore reads ``@($input)``: the one route where the host itself consumes
  stdin to its end, on a host that reads it only for ``$input`` (3.0 and
  later, from the source) and on one that would read it anyway. Reading
  ``[Console]::In`` beside the host's own reader could split the lines
  between the two.
* The host decodes those lines in the console's input code page (437, 850,
  65001…), so everything on stdin is printable ASCII: the script's own lines,
  with ``~XXXX`` for each UTF-16 unit outside printable ASCII (``è``, CR, a
  tab) and for ``~``, each line after a ``:`` (so none is empty); before them
  a line per secret, and a last line ``.``, so a cut input is told from a
  whole one. Not base64: ``FromBase64String`` is on the list of words for
  which PowerShell 5 logs a script block as suspicious (CompiledScriptBlock.cs),
  and a script that is readable on the wire is readable in any capture.
* WinRS gives the command a pipe for stdin only with
  ``WINRS_CONSOLEMODE_STDIN=FALSE``; with a console there is nothing for
  ``$input`` to read.

The stager then sets the secrets in ``$env:``, compiles the script with
``[ScriptBlock]::Create`` and dot-sources it, so it runs in the scope it had as
the whole ``-EncodedCommand``. PowerShell's rule for the exit code of a
command string (about_PowerShell_exe: 0 when ``$?`` of its last statement is
true, else 1) would now see the stager's last statement, so a line appended to
the script (after a blank one, so a trailing backtick cannot join them) exits
with 1 when the script's last statement failed, and the stager ends with a
statement that succeeds. Only that failing case ends with ``exit``, which
stops the pipeline as any ``exit`` does. A parse error is reported as such,
with exit code 1.
Secrets therefore stay out of the powershell.exe command line (``secret_env``),
and so does the script.

Every pywinrm, requests and TLS exception is turned into a ``TransportError``
that names the host, what went wrong in plain words, and the fix.
"""

from __future__ import annotations

import base64
import html
import math
import re
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import requests
import winrm.transport as winrm_transport
from winrm.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from custode.agent.secrets import SecretError
from custode.agent.transports import secret_env
from custode.agent.transports.base import DEFAULT_MAX_OUTPUT, BoundedBuffer, CommandResult, Transport, TransportError
from custode.agent.transports.config import WinrmOptions

T = TypeVar("T")

_SESSION_BUILD = threading.Lock()

UTF8_CODEPAGE = 65001
"""The shell's console code page: UTF-8, so accented names (Perù, Forlì) survive; the default 437 mangles them."""

MAX_COMMAND_LINE = 8191
"""cmd.exe's limit: WinRS starts the command through ``cmd /c``, so a longer line is cut by Windows (the stager's)."""

MAX_SCRIPT = 1_000_000
"""Characters of one script on stdin: far above any script Custode writes, low enough to refuse a runaway one."""

SEND_CHUNK = 48 * 1024
"""Bytes of stdin per Send: base64 in the envelope makes 64 KiB, under WinRM 2.0's 150 KiB MaxEnvelopeSizekb."""

STDIN_END = "."
"""The last line of the input: the stager runs nothing unless it arrived."""

MISSING_SCRIPT = "custode: the script of this command did not arrive whole on its standard input"

CONTROL_WAIT = 20
"""Seconds the host may take for Create, Command, Signal and Delete (pywinrm's default OperationTimeout)."""

READ_MARGIN = 5
"""Seconds of network slack on top of an OperationTimeout before the HTTP read gives up."""

CLIXML_OVERHEAD = 4
"""Raw stderr kept per byte of ``max_output``: CLIXML wraps every error line in XML and escapes."""

_CLIXML_HEADER = "#< CLIXML"
_CLIXML_STRING = re.compile(r'<S S="(Error|Warning|Verbose|Debug|Information)">(.*?)(?:</S>|\Z)', re.S)
_CLIXML_PARTIAL = re.compile(r"(_x[0-9A-Fa-f]{0,4}|&#?\w*|<[^>]*)\Z")
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def encode_powershell(script: str) -> str:
    """The ``-EncodedCommand`` argument: base64 of UTF-16LE, so no quoting rule of cmd or PowerShell applies."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def stdin_stager(names: Sequence[str] = ()) -> str:
    """The script on the command line: reads the secrets ``names`` and the script from stdin, runs the script.

    PowerShell 2.0 syntax, and none of the words PowerShell itself logs as
    suspicious (``FromBase64String`` and the rest of CompiledScriptBlock's
    list): the input is decoded by splitting at ``~``. ``names`` are
    environment variable names (``secret_env.check_secrets``), so they are safe
    in single quotes; a value never is in this text. The decoding runs in a
    child scope (``& {...}``), so none of its variables is left for the script
    but ``$__custodeBlock``; the module docstring says why each part is there.
    """
    listed = ", ".join(f"'{name}'" for name in names)
    return "\n".join([
        "# Custode (agent/transports/winrm.py): the script comes on standard input, not on this command line.",
        "# Input: a line per secret (into $env:), then the script's lines, each ':' and the text with ~XXXX",
        "# for each UTF-16 unit outside printable ASCII and for ~ itself; then a line '.'.",
        "$__custodeIn = @($input)",
        "$__custodeBlock = & {",
        "    param($In, $Names)",
        f"    if ($In.Count -lt $Names.Count + 2 -or $In[-1] -ne '{STDIN_END}') {{",
        f"        [Console]::Error.WriteLine('{MISSING_SCRIPT}'); exit {secret_env.MISSING_INPUT_EXIT}",
        "    }",
        "    $lines = @(foreach ($line in $In[0..($In.Count - 2)]) {",
        "        if ($line.IndexOf('~') -lt 0) { $line.Substring(1) } else {",
        "            $parts = $line.Substring(1).Split('~')",
        "            $text = New-Object Text.StringBuilder",
        "            [void]$text.Append($parts[0])",
        "            for ($i = 1; $i -lt $parts.Count; $i++) {",
        "                [void]$text.Append([char][Convert]::ToInt32($parts[$i].Substring(0, 4), 16))",
        "                [void]$text.Append($parts[$i].Substring(4))",
        "            }",
        "            $text.ToString()",
        "        }",
        "    })",
        "    for ($i = 0; $i -lt $Names.Count; $i++) {",
        "        [Environment]::SetEnvironmentVariable($Names[$i], $lines[$i], 'Process')",
        "    }",
        "    $script = $lines[$Names.Count..($lines.Count - 1)] -join \"`n\"",
        "    try { [ScriptBlock]::Create($script + \"`n`n\" + 'if (-not $?) { exit 1 }') }",
        "    catch { [Console]::Error.WriteLine('custode: the script does not parse: ' + $_.Exception.Message)",
        "            exit 1 }",
        f"}} $__custodeIn @({listed})",
        "Remove-Variable '__custodeIn'",
        ". $__custodeBlock",
        "Remove-Variable '__custodeBlock'",
    ])


_UNSAFE = re.compile(r"[^ -}]")
"""Everything but printable ASCII, and ``~`` (0x7E, the escape character) itself."""


def _escape(text: str) -> str:
    """``text`` in printable ASCII: each UTF-16 unit outside it, and ``~``, written ``~XXXX`` (hex)."""
    def units(match: re.Match[str]) -> str:
        raw = match.group().encode("utf-16-le", "surrogatepass")
        return "".join(f"~{int.from_bytes(raw[i:i + 2], 'little'):04X}" for i in range(0, len(raw), 2))

    return _UNSAFE.sub(units, text)


def stdin_input(script: str, values: Sequence[str] = ()) -> bytes:
    """What :func:`stdin_stager` reads: a line per secret value, the script's lines, then the end line.

    Printable ASCII only, because the host decodes stdin in its console code
    page; each line starts with ``:`` so none is empty, and ends with CR LF,
    Windows' line end. The script is split at LF and its CRs are escaped, so
    it arrives with exactly its own line ends.
    """
    lines = [":" + _escape(text) for text in (*values, *script.split("\n"))]
    return ("\r\n".join([*lines, STDIN_END]) + "\r\n").encode("ascii")


def clixml_to_text(text: str) -> str:
    """Readable text of PowerShell's CLIXML error stream.

    PowerShell started with ``-EncodedCommand`` and redirected output writes
    its error, warning and progress records to stderr as serialized XML. Only
    the strings matter to an operator: errors as they are, other streams
    prefixed with their name, progress records dropped. A regular expression
    instead of an XML parser keeps this working on output cut by the size
    limit (the cut record is kept as far as it goes) or on several XML
    documents written one after another.
    """
    if not text.startswith(_CLIXML_HEADER):
        return text
    lines: list[str] = []
    for match in _CLIXML_STRING.finditer(text):
        stream, body = match.group(1), match.group(2)
        if not match.group(0).endswith("</S>"):  # the last record, cut: drop a half escape or entity
            body = _CLIXML_PARTIAL.sub("", body)
        value = _CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), html.unescape(body))
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", errors="replace")
        lines.append(value if stream == "Error" else f"{stream.upper()}: {value}")
    return "".join(lines).replace("\r\n", "\n")


def _readable_stderr(raw: BoundedBuffer, limit: int) -> tuple[str, bool]:
    """stderr as text bounded to ``limit`` bytes, and whether anything was cut."""
    data = bytes(raw.data).decode("utf-8", errors="replace")
    if not data.startswith(_CLIXML_HEADER):
        plain = BoundedBuffer(limit)
        plain.feed(bytes(raw.data))
        plain.dropped += raw.dropped
        return plain.text(), bool(plain.dropped)
    readable = BoundedBuffer(limit)
    readable.feed(clixml_to_text(data).encode("utf-8"))
    text = readable.text()
    if raw.dropped:
        text += f"\n[… {raw.dropped} more bytes of PowerShell error output not kept]"
    return text, bool(readable.dropped or raw.dropped)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: requests → urllib3 → ssl/socket errors."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])


def _find(exc: BaseException, kind: type[T]) -> T | None:
    return next((cause for cause in _causes(exc) if isinstance(cause, kind)), None)  # type: ignore[misc]


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _HostUnreachable(TransportError):
    """The network failed: cleaning up on the host would only wait for another timeout."""


class WinrmTransport(Transport):
    """PowerShell scripts on one Windows host; not thread-safe (one command at a time, like a console)."""

    kind = "winrm"
    shell = "powershell"

    receive_slice: float = 20.0
    """Longest single Receive, in seconds: the command's timeout is checked at least this often."""

    sealed_idle: float = 60.0
    """Seconds after which an HTTP session with message encryption (NTLM over http) is renewed before use.

    NTLM authenticates the TCP connection, and the host closes an idle one
    (http.sys' IdleConnectionTimeout, 120 s by default; farm polls are minutes
    apart). pywinrm seals the next message with the old context, requests_ntlm
    authenticates a new connection on the 401 and sends that same sealed body
    again, and the host cannot decrypt it: the run would fail once per idle
    gap. A new session (a new handshake, a new context) avoids it; the shell
    is kept, it belongs to the account, not to the connection. Over https
    nothing is sealed and the 401 simply authenticates the new connection.
    """

    def __init__(self, name: str, address: str, options: WinrmOptions) -> None:
        super().__init__(name)
        self.address = address
        self.options = options
        host = f"[{address}]" if ":" in address and not address.startswith("[") else address
        self._where = f"{host}:{options.endpoint_port}"
        self.endpoint = f"{options.scheme}://{self._where}/{options.path.lstrip('/')}"
        self._protocol: Protocol | None = None
        self._shell_id: str | None = None
        self._last_used = 0.0

    # -- the contract -------------------------------------------------------------------------------

    def run(self, command: str, timeout: float, *, max_output: int = DEFAULT_MAX_OUTPUT,
            secrets: Mapping[str, str] | None = None) -> CommandResult:
        names, values = secret_env.split(secrets)
        if len(command) > MAX_SCRIPT:
            raise TransportError(self.name, f"the PowerShell script is {len(command)} characters, over Custode's "
                                            f"limit of {MAX_SCRIPT} for one command: split it into several steps")
        arguments = ["-NoProfile", "-NonInteractive", "-EncodedCommand", encode_powershell(stdin_stager(names))]
        length = len(" ".join(["powershell", *arguments]))
        if length > MAX_COMMAND_LINE:
            raise TransportError(self.name, f"the command reads {len(names)} secrets, which makes a {length}-character "
                                            f"command line, over Windows' limit of {MAX_COMMAND_LINE}: give it fewer "
                                            "secrets (join them in one value)")
        started = time.monotonic()
        protocol, shell_id, command_id = self._start(arguments)
        out, err = BoundedBuffer(max_output), BoundedBuffer(max_output * CLIXML_OVERHEAD)
        try:
            self._send_input(protocol, shell_id, command_id, stdin_input(command, values))
            exit_code = self._receive(protocol, shell_id, command_id, started + timeout, out, err)
        except _HostUnreachable:
            self._forget()
            raise
        except TransportError:
            self._discard()
            raise
        self._finish(protocol, shell_id, command_id, timed_out=exit_code is None)
        stderr, stderr_cut = _readable_stderr(err, max_output)
        return CommandResult(exit_code=exit_code, stdout=out.text(), stderr=stderr,
                             duration=time.monotonic() - started, timed_out=exit_code is None,
                             truncated=bool(out.dropped) or stderr_cut)

    def close(self) -> None:
        """Delete the remote shell (ending anything still running in it) and drop the HTTP session."""
        self._discard()

    # -- steps of a run -----------------------------------------------------------------------------

    def _start(self, arguments: list[str]) -> tuple[Protocol, str, str]:
        """Start powershell.exe in the kept shell; a shell the host has dropped is replaced once.

        Its stdin is a pipe Custode writes to (``WINRS_CONSOLEMODE_STDIN=FALSE``),
        not WinRS' console, so the stager's ``$input`` reads what is sent.
        """
        retry = self._shell_id is not None
        while True:
            try:
                protocol, shell_id = self._open()
                command_id = self._call("start the command", protocol.run_command, shell_id, "powershell",
                                        arguments, console_mode_stdin=False)
                return protocol, shell_id, command_id
            except _HostUnreachable:
                self._forget()
                raise
            except TransportError as exc:
                # The host forgets idle shells (IdleTimeout) and all of them when WinRM restarts; the
                # Command was refused, so nothing ran and starting it again in a new shell is safe.
                if not (retry and isinstance(exc.__cause__, WSManFaultError)):
                    self._discard()
                    raise
            retry = False
            self._forget()

    def _send_input(self, protocol: Protocol, shell_id: str, command_id: str, data: bytes) -> None:
        """Write ``data`` to the command's stdin and close it (WS-Management Send, End=true on the last chunk).

        Bytes, so pywinrm does not re-encode them (it would use code page 437);
        in chunks of :data:`SEND_CHUNK`, so no envelope exceeds the host's
        MaxEnvelopeSizekb.
        """
        chunks = [data[start:start + SEND_CHUNK] for start in range(0, len(data), SEND_CHUNK)] or [b""]
        for number, chunk in enumerate(chunks, 1):
            self._wait(protocol, CONTROL_WAIT)
            self._call("send the script to the command's input", protocol.send_command_input, shell_id,
                       command_id, chunk, end=number == len(chunks))

    def _receive(self, protocol: Protocol, shell_id: str, command_id: str, deadline: float,
                 out: BoundedBuffer, err: BoundedBuffer) -> int | None:
        """Collect output until the command is done (its exit code) or the deadline passes (None)."""
        receive = getattr(protocol, "get_command_output_raw", None) or protocol._raw_get_command_output
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._wait(protocol, min(self.receive_slice, remaining))
            try:
                stdout, stderr, exit_code, done = self._call("read the command's output", receive, shell_id,
                                                             command_id, operation_timeout_ok=True)
            except WinRMOperationTimeoutError:
                continue  # no output within one OperationTimeout: normal for a long command
            out.feed(stdout)
            err.feed(stderr)
            if done:
                return int(exit_code)

    def _finish(self, protocol: Protocol, shell_id: str, command_id: str, *, timed_out: bool) -> None:
        """Signal terminate (MS-WSMV wants it even after Done); after a timeout also delete the shell.

        Deleting the shell is what ends the processes a stopped script had
        started, so the next run gets a fresh one.
        """
        self._wait(protocol, CONTROL_WAIT)
        try:
            self._call("stop the command", protocol.cleanup_command, shell_id, command_id)
        except _HostUnreachable:
            self._forget()
            return
        except TransportError:
            self._discard()
            return
        if timed_out:
            self._discard()

    # -- connection and shell -----------------------------------------------------------------------

    def _open(self) -> tuple[Protocol, str]:
        protocol = self._protocol or self._connect()
        transport = protocol.transport
        if (getattr(transport, "encryption", None) is not None and transport.session is not None
                and time.monotonic() - self._last_used > self.sealed_idle):
            transport.close_session()  # see sealed_idle: the next request builds a session and a context anew
        if self._shell_id is None:
            self._wait(protocol, CONTROL_WAIT)
            self._shell_id = self._call("open a shell", protocol.open_shell, codepage=UTF8_CODEPAGE)
        return protocol, self._shell_id

    def _connect(self) -> Protocol:
        """A pywinrm Protocol (no network yet): resolves the password and checks the auth library."""
        options = self.options
        password: str | None = None
        if options.password is not None:
            try:
                password = options.password.resolve()
            except SecretError as exc:
                raise TransportError(self.name, f"the WinRM password of {options.user} "
                                                f"({options.password.describe()}) cannot be read: {exc}") from exc
        elif options.auth != "kerberos":
            raise TransportError(self.name, f"auth {options.auth} needs a password: add "
                                            "'password: {env: VARIABLE}' (or file/keyring) to the host's winrm "
                                            "block, or use auth: kerberos with a ticket")
        self._check_auth_library()
        if options.tls_verify and options.ca_file is not None and not options.ca_file.is_file():
            raise TransportError(self.name, f"ca_file {options.ca_file} does not exist: put the PEM of the CA "
                                            f"that issued {self.address}'s WinRM certificate there")
        try:
            protocol = Protocol(
                self.endpoint, transport=options.auth, username=options.user, password=password,
                server_cert_validation="validate" if options.tls_verify else "ignore",
                ca_trust_path=str(options.ca_file) if options.ca_file else None,
                operation_timeout_sec=CONTROL_WAIT, read_timeout_sec=CONTROL_WAIT + READ_MARGIN,
                proxy=None,  # WinRM goes to LAN hosts; an HTTP(S)_PROXY in the service's environment must not
            )
        except WinRMError as exc:
            raise TransportError(self.name, f"cannot set up WinRM to {self.endpoint}: {exc}") from exc
        _sessions_ignore_environment(protocol.transport)
        self._protocol = protocol
        return protocol

    def _check_auth_library(self) -> None:
        """pywinrm only says 'not installed' on first use; name the package to install instead."""
        auth = self.options.auth
        needs = {
            "kerberos": ("HAVE_KERBEROS", "pykerberos (pip install 'pywinrm[kerberos]'; it needs Debian's "
                                          "libkrb5-dev to build), plus a ticket from kinit or a keytab"),
            "credssp": ("HAVE_CREDSSP", "requests-credssp (pip install 'pywinrm[credssp]')"),
            "ntlm": ("HAVE_NTLM", "requests_ntlm (pip install requests_ntlm)"),
        }
        if auth in needs and not getattr(winrm_transport, needs[auth][0], True):
            raise TransportError(self.name, f"auth {auth} needs the Python package {needs[auth][1]}; "
                                            "or choose another auth for this host")

    def _wait(self, protocol: Protocol, seconds: float) -> None:
        """How long the host may hold the next request (OperationTimeout) and how long we wait for it.

        A (connect, read) pair lets ``connect_timeout`` bound the TCP connect
        on its own; pywinrm hands the value to requests unchanged.
        """
        operation = max(1, math.ceil(seconds))
        protocol.operation_timeout_sec = operation
        protocol.transport.read_timeout_sec = (self.options.connect_timeout,  # type: ignore[assignment]
                                               operation + READ_MARGIN)

    def _forget(self) -> None:
        """Drop shell and session without talking to the host (it is unreachable, or already gone)."""
        protocol, self._protocol, self._shell_id = self._protocol, None, None
        if protocol is not None:
            protocol.transport.close_session()

    def _discard(self) -> None:
        """Delete the shell if there is one (best effort), then forget it."""
        protocol, shell_id = self._protocol, self._shell_id
        if protocol is not None and shell_id is not None:
            self._wait(protocol, min(CONTROL_WAIT, self.options.connect_timeout))
            try:
                self._call("close the shell", protocol.close_shell, shell_id, close_session=True)
            except TransportError:
                pass  # the host ends an abandoned shell itself after its IdleTimeout
        self._forget()

    # -- errors in plain words ----------------------------------------------------------------------

    def _call(self, action: str, function: Callable[..., T], *args: Any,
              operation_timeout_ok: bool = False, **kwargs: Any) -> T:
        """Call pywinrm; anything but an expected Receive timeout becomes a TransportError."""
        try:
            result = function(*args, **kwargs)
            self._last_used = time.monotonic()
            return result
        except WinRMOperationTimeoutError:
            self._last_used = time.monotonic()  # the host answered: the connection is alive
            if operation_timeout_ok:
                raise
            raise TransportError(self.name, f"WinRM on {self.address} did not finish to {action} within its "
                                            "OperationTimeout; the host is overloaded") from None
        except Exception as exc:
            raise self._translate(action, exc) from exc

    def _translate(self, action: str, exc: Exception) -> TransportError:
        options, port, where = self.options, self.options.endpoint_port, self._where
        if isinstance(exc, AuthenticationError):
            hint = (f"check the password in {options.password.describe()}" if options.password
                    else "check the Kerberos ticket (klist)")
            extra = ""
            if options.auth == "basic":
                extra = ("; basic auth must also be enabled on the host (winrm set winrm/config/service/auth "
                         "@{Basic=\"true\"}) and works only for local accounts")
            elif options.auth == "ntlm" and "\\" not in options.user and "@" not in options.user:
                # NTLM sends the domain with the name: a domain account given bare is looked up on the host
                extra = "; a domain account is written DOMAIN\\user or user@domain, a bare name is one of the host"
            return TransportError(self.name, f"WinRM refused the credentials of {options.user} (auth "
                                             f"{options.auth}): {hint}, and that {options.user} may use WinRM "
                                             f"on {self.address} (local Administrators or Remote Management "
                                             f"Users){extra}")
        if isinstance(exc, WSManFaultError):
            code = f" (WSManFault {exc.wsman_fault_code})" if exc.wsman_fault_code is not None else ""
            return TransportError(self.name, f"WinRM on {self.address} refused to {action}: "
                                             f"{_one_line(exc.reason)}{code}")
        if isinstance(exc, WinRMTransportError):
            if exc.code == 404:
                fix = ("something other than WinRM listens there" if options.path.strip("/") == "wsman"
                       else "the usual path is wsman")
                return TransportError(self.name, f"{self.endpoint} answered HTTP 404: no WinRM endpoint at "
                                                 f"path /{options.path.lstrip('/')}; {fix}")
            body = _one_line(re.sub(r"<[^>]+>", " ", exc.response_text or ""), 200)
            return TransportError(self.name, f"{self.endpoint} answered HTTP {exc.code} when asked to {action}"
                                             + (f": {body}" if body else ""))
        if isinstance(exc, WinRMError):
            return TransportError(self.name, f"pywinrm cannot {action} on {self.address}: {exc}")
        if isinstance(exc, requests.exceptions.SSLError):
            return self._tls_error(exc)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return _HostUnreachable(self.name, f"no answer from {where} within {options.connect_timeout:g} s: "
                                               "the host is down or a firewall drops WinRM traffic")
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return _HostUnreachable(self.name, f"WinRM on {where} accepted the connection but did not answer "
                                               f"in time when asked to {action}; the host may be overloaded")
        if isinstance(exc, requests.exceptions.ConnectionError):
            if _find(exc, ConnectionRefusedError) is not None:
                return _HostUnreachable(self.name, f"connection refused by {where}: WinRM is not listening "
                                                   f"on port {port} (on the host: Enable-PSRemoting, and a "
                                                   f"{options.scheme.upper()} listener: winrm quickconfig"
                                                   f"{' -transport:https' if options.scheme == 'https' else ''}"
                                                   ") or a firewall rejects it")
            gai = _find(exc, socket.gaierror)
            if gai is not None:
                return _HostUnreachable(self.name, f"cannot resolve {self.address}: {gai.strerror or gai}; "
                                                   "check the host's address in the config, or DNS")
            reason = next((cause for cause in _causes(exc)  # the socket's own error, not requests' wrapper
                           if isinstance(cause, OSError) and type(cause).__module__ == "builtins"), None)
            hint = ""
            if action == "open a shell":  # the first request: most likely the wrong kind of listener
                hint = (f"; check that port {port} is the WinRM {options.scheme.upper()} listener "
                        "(5986 is https, 5985 http)")
            why = _one_line(getattr(reason, "strerror", None) or str(reason or exc), 200)
            return _HostUnreachable(self.name, f"the connection to {where} failed when asked to {action}: "
                                               f"{why}{hint}")
        if isinstance(exc, requests.RequestException):
            return TransportError(self.name, f"HTTP to {self.endpoint} failed when asked to {action}: "
                                             f"{_one_line(str(exc), 200)}")
        if isinstance(exc, (ET.ParseError, StopIteration, AssertionError, KeyError, ValueError)):
            return TransportError(self.name, f"the answer of {self.endpoint} to '{action}' is not WS-Management "
                                             f"({type(exc).__name__}); is that the WinRM listener?")
        return TransportError(self.name, f"cannot {action} on {self.address}: {type(exc).__name__}: {exc}")

    def _tls_error(self, exc: Exception) -> TransportError:
        options = self.options
        verify = _find(exc, ssl.SSLCertVerificationError)
        if verify is not None:
            why = verify.verify_message or str(verify)
            if options.ca_file:
                return TransportError(self.name, f"the certificate of {self.address} is not trusted: {why}; "
                                                 f"ca_file {options.ca_file} must hold the CA that issued the "
                                                 "host's WinRM certificate, and the address must be a name "
                                                 "the certificate was issued for")
            return TransportError(self.name, f"the certificate of {self.address} is not trusted: {why}; give "
                                             "ca_file or, for this host only, tls_verify: false")
        reason = _find(exc, ssl.SSLError)
        return _HostUnreachable(self.name, f"TLS with {self._where} failed: "
                                           f"{_one_line(str(reason or exc), 200)}; is that port the WinRM "
                                           "HTTPS listener (5986 https, 5985 http)?")


def _sessions_ignore_environment(transport: winrm_transport.Transport) -> None:
    """Build the transport's HTTP session one at a time, and let it never read the process environment again.

    With ``proxy=None`` pywinrm gives requests ``no_proxy: *``, and requests
    then *writes* ``os.environ['no_proxy']`` for the length of every proxy
    look-up (``requests.utils.set_environ``) while other threads iterate
    ``os.environ`` for theirs. Farm mode polls many Windows hosts in parallel
    threads, and one poll's write broke another's read (``KeyError:
    'no_proxy'``, reported as "not WS-Management"). A session built under a
    lock and then marked ``trust_env = False`` sends with no look-up at all.
    """
    build = transport.build_session

    def build_session() -> requests.Session:
        if transport.session is not None:
            return transport.session
        with _SESSION_BUILD:
            session = build()
        session.trust_env = False
        return session

    transport.build_session = build_session  # type: ignore[method-assign]
