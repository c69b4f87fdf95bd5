"""WinrmTransport against a WS-Management double that answers like a Windows host (tests/winrm_server.py).

The double speaks HTTPS with a certificate from a throwaway CA, as the product
default (https, verified) requires, with Basic auth here; NTLM is in
tests/test_winrm_ntlm.py. Every script reaches the double on the command's
stdin, behind the stager on the command line, as it reaches Windows.
"""

from __future__ import annotations

import time

import pytest
import winrm.transport
from conftest import free_port
from winrm.exceptions import WinRMOperationTimeoutError
from winrm.protocol import Protocol
from winrm_server import (
    CMD_LINE_LIMIT,
    HANG,
    MISSING_INPUT,
    SIGNAL_TERMINATE,
    Delayed,
    WinrmServer,
    clixml,
    encoded_script,
)

from custode.agent.transports import open_transport
from custode.agent.transports.base import TransportError
from custode.agent.transports.config import HostConfig, WinrmOptions
from custode.agent.transports.secret_env import MISSING_INPUT_EXIT
from custode.agent.transports.winrm import (
    MAX_COMMAND_LINE,
    MAX_SCRIPT,
    SEND_CHUNK,
    WinrmTransport,
    clixml_to_text,
    encode_powershell,
    stdin_input,
    stdin_stager,
)

PASSWORD_ENV = "CUSTODE_TEST_WINRM_PASSWORD"


@pytest.fixture
def server(monkeypatch):
    with WinrmServer(tls=True, chunk_size=4096) as double:
        monkeypatch.setenv(PASSWORD_ENV, double.password)
        yield double


def winrm_options(server: WinrmServer, **overrides) -> WinrmOptions:
    values = {"user": server.user, "password": {"env": PASSWORD_ENV}, "scheme": "https", "port": server.port,
              "auth": "basic", "ca_file": str(server.ca_file), "connect_timeout": 5}
    values.update(overrides)
    return WinrmOptions.model_validate(values)


def transport(server: WinrmServer, **overrides) -> WinrmTransport:
    return WinrmTransport("srv-anagrafe", "127.0.0.1", winrm_options(server, **overrides))


def test_command_succeeds_with_its_stdout_in_utf8(server):
    server.on(r"Get-Service", (0, "Comune di Forlì: servizio attivo, città ok\r\n", ""))
    script = "Get-Service -Name 'Spooler' | Select-Object -ExpandProperty Status"
    with transport(server) as winrm_transport:
        result = winrm_transport.run(script, timeout=10)
    assert result.ok and result.exit_code == 0 and not result.timed_out and not result.truncated
    assert result.stdout == "Comune di Forlì: servizio attivo, città ok\r\n"
    assert result.stderr == ""
    assert server.scripts == [script]  # what the stager read from stdin: the exact script
    create = next(request for request in server.requests if request.action == "Create")
    assert create.options["WINRS_CODEPAGE"] == "65001"
    command = next(request for request in server.requests if request.action == "Command")
    assert command.stager == stdin_stager() and "Spooler" not in (command.command_line or "")
    assert command.options["WINRS_CONSOLEMODE_STDIN"] == "FALSE"  # a pipe, so $input reads what is sent
    send = next(request for request in server.requests if request.action == "Send")
    assert send.command_id == command.command_id and send.stdin_end
    assert send.stdin == stdin_input(script)


def test_open_transport_builds_a_winrm_transport(server):
    host = HostConfig(address="127.0.0.1", transport="winrm", winrm=winrm_options(server))
    server.on("hostname", (0, "SRV-ANAGRAFE\r\n", ""))
    with open_transport("srv-anagrafe", host) as built:
        assert isinstance(built, WinrmTransport) and built.kind == "winrm" and built.shell == "powershell"
        assert built.run("hostname", timeout=10).stdout == "SRV-ANAGRAFE\r\n"


def test_failing_command_gives_exit_code_and_readable_stderr(server):
    server.on("Stop-Service", (1, "", "Stop-Service : Cannot find any service with service name 'Spool_x'.\n"
                                      "At line:1 char:1 <here> & more"))
    with transport(server) as winrm_transport:
        result = winrm_transport.run("Stop-Service -Name 'Spool_x'", timeout=10)
    assert result.exit_code == 1 and not result.ok and not result.timed_out
    assert result.stderr == ("Stop-Service : Cannot find any service with service name 'Spool_x'.\n"
                             "At line:1 char:1 <here> & more\n")
    assert "CLIXML" not in result.stderr and "Preparing modules" not in result.stderr
    assert result.describe() == "exit code 1: At line:1 char:1 <here> & more"


def test_hanging_command_times_out_and_is_terminated(server):
    server.on("Wait-Event", HANG)
    server.on("hostname", (0, "SRV\r\n", ""))
    winrm_transport = transport(server)
    winrm_transport.receive_slice = 1.0  # several Receives, each ending in WSManFault 2150858793
    started = time.monotonic()
    result = winrm_transport.run("Wait-Event -SourceIdentifier never", timeout=2.5)
    elapsed = time.monotonic() - started
    assert result.timed_out and result.exit_code is None and not result.ok
    assert 2.5 <= elapsed < 5.5
    assert result.describe().startswith("timed out after")
    actions = server.actions
    assert actions.count("Receive") >= 2
    assert actions[-2:] == ["Signal", "Delete"]  # terminate, then the shell goes with the script's children
    signal = next(request for request in server.requests if request.action == "Signal")
    assert signal.signal == SIGNAL_TERMINATE
    # the next run gets a fresh shell
    assert winrm_transport.run("hostname", timeout=10).stdout == "SRV\r\n"
    assert server.actions.count("Create") == 2
    winrm_transport.close()


def test_command_longer_than_one_receive_still_completes(server):
    server.on("Start-Sleep", Delayed(1.3, (0, "fatto\r\n", "")))
    winrm_transport = transport(server)
    winrm_transport.receive_slice = 1.0
    with winrm_transport:
        result = winrm_transport.run("Start-Sleep -Seconds 1; 'fatto'", timeout=10)
    assert result.ok and result.stdout == "fatto\r\n"
    assert server.actions.count("Receive") >= 2


def test_wrong_password_is_reported_plainly(server, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    with transport(server) as winrm_transport, pytest.raises(TransportError) as caught:
        winrm_transport.run("hostname", timeout=10)
    message = str(caught.value)
    assert message.startswith("srv-anagrafe: WinRM refused the credentials of custode (auth basic)")
    assert f"environment variable {PASSWORD_ENV}" in message
    assert server.actions == []  # refused before any WS-Management action was processed


def test_unreadable_password_names_the_secret(server, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(TransportError) as caught:
        transport(server).run("hostname", timeout=10)
    assert f"environment variable {PASSWORD_ENV}" in str(caught.value)
    assert "cannot be read" in str(caught.value)


def test_untrusted_certificate_is_refused_with_the_fix(server):
    server.on("hostname", (0, "SRV\r\n", ""))
    with transport(server, ca_file=None) as winrm_transport, pytest.raises(TransportError) as caught:
        winrm_transport.run("hostname", timeout=10)
    message = str(caught.value)
    assert "the certificate of 127.0.0.1 is not trusted" in message
    assert "give ca_file or, for this host only, tls_verify: false" in message
    assert server.actions == []
    with transport(server, ca_file=None, tls_verify=False) as insecure:
        assert insecure.run("hostname", timeout=10).stdout == "SRV\r\n"


def test_connection_refused(server):
    port = free_port()
    with transport(server, port=port) as winrm_transport, pytest.raises(TransportError) as caught:
        winrm_transport.run("hostname", timeout=10)
    assert f"connection refused by 127.0.0.1:{port}" in str(caught.value)
    assert "Enable-PSRemoting" in str(caught.value)


def test_wrong_path_is_named(server):
    with transport(server, path="wsman-nope") as winrm_transport, pytest.raises(TransportError) as caught:
        winrm_transport.run("hostname", timeout=10)
    assert "HTTP 404" in str(caught.value) and "/wsman-nope" in str(caught.value)


def test_shell_is_reused_and_replaced_when_the_host_dropped_it(server):
    server.on("hostname", (0, "SRV\r\n", ""))
    winrm_transport = transport(server)
    for _ in range(3):
        assert winrm_transport.run("hostname", timeout=10).ok
    assert server.actions.count("Create") == 1 and server.actions.count("Command") == 3
    server.drop_shells()  # IdleTimeout or a WinRM restart on the host
    assert winrm_transport.run("hostname", timeout=10).ok
    assert server.actions.count("Create") == 2
    assert server.actions.count("Command") == 5  # refused in the old shell (fault), then run in the new one
    winrm_transport.close()
    assert server.actions[-1] == "Delete" and server.shells == {}


def test_ws_management_sequence(server):
    server.on("hostname", (0, "SRV\r\n", ""))
    with transport(server) as winrm_transport:
        winrm_transport.run("hostname", timeout=10)
    assert server.actions == ["Create", "Command", "Send", "Receive", "Signal", "Delete"]
    command = server.requests[1]
    assert command.options == {"WINRS_CONSOLEMODE_STDIN": "FALSE", "WINRS_SKIP_CMD_SHELL": "FALSE"}
    assert command.shell_id == server.requests[0].shell_id == server.requests[-1].shell_id
    assert server.requests[2].command_id == server.requests[3].command_id == server.requests[4].command_id \
        == command.command_id


def test_soap_fault_is_quoted(server):
    def vanish(script: str):
        server.drop_shells()  # the shell disappears while the command runs
        return (0, "", "")

    server.on("hostname", vanish)
    with transport(server) as winrm_transport, pytest.raises(TransportError) as caught:
        winrm_transport.run("hostname", timeout=10)
    message = str(caught.value)
    assert "WinRM on 127.0.0.1 refused to read the command's output: No shell with ShellId" in message
    assert "(WSManFault 2150858843)" in message


def test_output_is_truncated(server):
    server.on("Get-Content", (0, "x" * 20_000, "boom " * 2_000))
    with transport(server) as winrm_transport:
        result = winrm_transport.run("Get-Content C:\\huge.log", timeout=10, max_output=1_000)
    assert result.truncated and result.exit_code == 0
    assert result.stdout.startswith("x" * 1_000) and "[… 19000 more bytes not kept]" in result.stdout
    assert result.stderr.startswith("boom boom") and "more bytes not kept" in result.stderr
    assert server.actions.count("Receive") == 5  # 20 000 bytes arrive in 4 096-byte Receives


def test_missing_auth_library_names_the_package(server, monkeypatch):
    monkeypatch.setattr(winrm.transport, "HAVE_CREDSSP", False)
    monkeypatch.setattr(winrm.transport, "HAVE_KERBEROS", False)
    with pytest.raises(TransportError, match="requests-credssp"):
        transport(server, auth="credssp").run("hostname", timeout=10)
    with pytest.raises(TransportError, match="pykerberos"):
        transport(server, auth="kerberos", password=None).run("hostname", timeout=10)
    assert server.actions == []


def test_a_script_far_over_the_command_line_limit_runs_whole(server):
    """The farm probe, a restore test's list of files: far more than -EncodedCommand's 8,191 characters."""
    script = "".join(f"Write-Output 'riga {n:05d} del Comune di Forlì'\r\n" for n in range(4000))  # ~190 KB
    assert len(encode_powershell(script)) > 20 * MAX_COMMAND_LINE
    server.on("riga 00000", (0, "fatto\r\n", ""))
    with transport(server) as winrm_transport:
        result = winrm_transport.run(script, timeout=30)
    assert result.ok and result.stdout == "fatto\r\n"
    assert server.scripts == [script]  # CR LF and ì arrive as they were
    sends = [request for request in server.requests if request.action == "Send"]
    assert len(sends) > 2 and all(len(send.stdin or b"") <= SEND_CHUNK for send in sends)
    assert [send.stdin_end for send in sends] == [False] * (len(sends) - 1) + [True]  # End only on the last
    command = next(request for request in server.requests if request.action == "Command")
    assert command.command_line == ("powershell -NoProfile -NonInteractive -EncodedCommand "
                                    + encode_powershell(stdin_stager()))  # the stager, whatever the script
    assert len(command.command_line) < MAX_COMMAND_LINE - 3000, "room for the names of many secrets"


def test_stdin_is_printable_ascii_whatever_the_script():
    """The host decodes stdin in its console code page (437, 850…): only printable ASCII survives every one."""
    script = "Write-Output \"Perù, Forlì, l’anagrafe ~ 😀\"\r\n\tGet-Date\n"
    data = stdin_input(script, ["pass\nword è"])
    assert all(0x20 <= byte < 0x7F or byte in b"\r\n" for byte in data)
    assert data.split(b"\r\n")[-2:] == [b".", b""]


SUSPICIOUS = """Add-Type DllImport DefineDynamicAssembly DefineDynamicModule DefineType DefineConstructor CreateType
DefineLiteral DefineEnum DefineField ILGenerator Emit UnverifiableCodeAttribute DefinePInvokeMethod GetTypes
GetAssemblies Methods Properties GetConstructor GetConstructors GetDefaultMembers GetEvent GetEvents GetField
GetFields GetInterface GetInterfaceMap GetInterfaces GetMember GetMembers GetMethod GetMethods GetNestedType
GetNestedTypes GetProperties GetProperty InvokeMember MakeArrayType MakeByRefType MakeGenericType MakePointerType
DeclaringMethod DeclaringType ReflectedType TypeHandle TypeInitializer UnderlyingSystemType InteropServices Marshal
AllocHGlobal PtrToStructure StructureToPtr FreeHGlobal IntPtr MemoryStream DeflateStream FromBase64String
EncodedCommand Bypass ToBase64String ExpandString GetPowerShell OpenProcess VirtualAlloc VirtualFree
WriteProcessMemory CreateUserThread CloseHandle GetDelegateForFunctionPointer kernel32 CreateThread memcpy
LoadLibrary GetModuleHandle GetProcAddress VirtualProtect FreeLibrary ReadProcessMemory CreateRemoteThread
AdjustTokenPrivileges WriteByte WriteInt32 OpenThreadToken PtrToString ZeroFreeGlobalAllocUnicode OpenProcessToken
GetTokenInformation SetThreadToken ImpersonateLoggedOnUser RevertToSelf GetLogonSessionData CreateProcessWithToken
DuplicateTokenEx OpenWindowStation OpenDesktop MiniDumpWriteDump AddSecurityPackage EnumerateSecurityPackages
GetProcessHandle DangerousGetHandle CryptoServiceProvider Cryptography RijndaelManaged SHA1Managed CryptoStream
CreateEncryptor CreateDecryptor TransformFinalBlock DeviceIoControl SetInformationProcess PasswordDeriveBytes
GetAsyncKeyState GetKeyboardState GetForegroundWindow BindingFlags NonPublic ScriptBlockLogging
LogPipelineExecutionDetails ProtectedEventLogging""".split()
"""The words for which Windows PowerShell 5 logs a script block as suspicious even with script block logging off
(event 4104, warning): PowerShell's CompiledScriptBlock.cs, as listed by Spacecow99/PSAlert."""


def test_the_stager_holds_no_word_powershell_logs_as_suspicious():
    """The stager is in every command's script block log: it must read as what it is, not as a malware stager."""
    for names in ([], ["CUSTODE_SECRET_TOKEN", "CUSTODE_SECRET_DB_PASS"]):
        text = stdin_stager(names).lower()
        assert [word for word in SUSPICIOUS if word.lower() in text] == []


def test_a_script_over_the_stdin_limit_is_refused_before_the_network(server):
    with pytest.raises(TransportError, match="over Custode's limit"):
        transport(server).run("#" * (MAX_SCRIPT + 1), timeout=10)
    assert server.actions == []


def test_a_stager_over_the_command_line_limit_is_refused_before_the_network(server):
    secrets = {f"CUSTODE_SECRET_VALUE_NUMBER_{n:03d}": "x" for n in range(100)}
    with pytest.raises(TransportError, match="over Windows' limit"):
        transport(server).run("hostname", timeout=10, secrets=secrets)
    assert server.actions == []


def test_secrets_reach_the_environment_never_the_command_line_or_the_script(server):
    server.on("Login", (0, "ok\r\n", ""))
    secrets = {"CUSTODE_SECRET_TOKEN": "t0k'en\"$x` è\nseconda riga", "CUSTODE_SECRET_EMPTY": ""}
    script = "& 'C:\\Vendor\\Login.exe' -Token \"${env:CUSTODE_SECRET_TOKEN}\""
    with transport(server) as winrm_transport:
        assert winrm_transport.run(script, timeout=10, secrets=secrets).ok
    command = next(request for request in server.requests if request.action == "Command")
    assert command.environment == secrets and command.script == script
    assert "t0k" not in (command.command_line or "") and "t0k" not in (command.stager or "")
    assert "'CUSTODE_SECRET_EMPTY', 'CUSTODE_SECRET_TOKEN'" in (command.stager or "")


# -- what the double imitates of Windows, checked through pywinrm alone -------------------------------------------


def protocol(server: WinrmServer) -> Protocol:
    return Protocol(server.url, transport="basic", username=server.user, password=server.password,
                    server_cert_validation="ignore", operation_timeout_sec=1, read_timeout_sec=6)


def stager_command(stager: str) -> str:
    return f"-NoProfile -NonInteractive -EncodedCommand {encode_powershell(stager)}"


def test_the_double_reads_stdin_only_from_a_pipe(server):
    """With WinRS' console as stdin (pywinrm's default) $input is empty: the stager says so and exits 125."""
    server.on("hostname", (0, "SRV\r\n", ""))
    winrm_protocol = protocol(server)
    shell = winrm_protocol.open_shell()
    command = winrm_protocol.run_command(shell, "powershell", [stager_command(stdin_stager())])
    stdout, stderr, code = winrm_protocol.get_command_output(shell, command)
    assert code == MISSING_INPUT_EXIT and stderr.decode().strip() == MISSING_INPUT and stdout == b""
    winrm_protocol.close_shell(shell)


def test_the_double_runs_a_stdin_command_only_once_stdin_is_closed(server):
    server.on("hostname", (0, "SRV\r\n", ""))
    winrm_protocol = protocol(server)
    shell = winrm_protocol.open_shell()
    command = winrm_protocol.run_command(shell, "powershell", [stager_command(stdin_stager())],
                                         console_mode_stdin=False)
    data = stdin_input("hostname")
    winrm_protocol.send_command_input(shell, command, data[:5])
    with pytest.raises(WinRMOperationTimeoutError):  # still reading $input: a running command
        winrm_protocol.get_command_output_raw(shell, command)
    assert server.scripts == []
    winrm_protocol.send_command_input(shell, command, data[5:], end=True)
    assert winrm_protocol.get_command_output(shell, command) == (b"SRV\r\n", b"", 0)
    assert server.scripts == ["hostname"]
    winrm_protocol.close_shell(shell)


def test_the_double_refuses_a_command_line_over_cmd_exe_limit(server):
    winrm_protocol = protocol(server)
    shell = winrm_protocol.open_shell()
    script = "Write-Output 'a'\n" * 300  # what -EncodedCommand could once carry, and no more
    line = stager_command(script)
    assert len("powershell " + line) > CMD_LINE_LIMIT
    command = winrm_protocol.run_command(shell, "powershell", [line])
    assert winrm_protocol.get_command_output(shell, command) == (b"", b"The command line is too long.\r\n", 1)
    winrm_protocol.close_shell(shell)


def test_clixml_decoding():
    raw = clixml("Errore: file non trovato _x000D_ in C:\\dati\nseconda riga 😀").decode()
    assert clixml_to_text(raw) == "Errore: file non trovato _x000D_ in C:\\dati\nseconda riga 😀\n"
    assert clixml_to_text("plain text\r\n") == "plain text\r\n"
    cut = raw[: raw.index("seconda") + 3]  # cut by the size limit in the middle of a record
    assert clixml_to_text(cut) == "Errore: file non trovato _x000D_ in C:\\dati\nsec"
    half_escape = raw[: raw.index("_x000A_") + 4]  # cut inside the first line's CR LF escapes
    assert clixml_to_text(half_escape) == "Errore: file non trovato _x000D_ in C:\\dati\r"
    warning = '#< CLIXML\r\n<Objs><S S="Warning">disco quasi pieno_x000D__x000A_</S></Objs>'
    assert clixml_to_text(warning) == "WARNING: disco quasi pieno\n"
    surrogates = '#< CLIXML\r\n<Objs><S S="Error">ok _xD83D__xDE00_ &lt;3</S></Objs>'
    assert clixml_to_text(surrogates) == "ok 😀 <3"


def test_encoded_command_round_trip():
    script = "Get-ChildItem 'C:\\Program Files' | Where-Object { $_.Name -like \"*è*\" }"
    assert encoded_script(f"powershell -NoProfile -EncodedCommand {encode_powershell(script)}") == script
