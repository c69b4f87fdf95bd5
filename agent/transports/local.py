"""Commands on the machine Custode runs on: ``sh -c`` on Linux, PowerShell on Windows.

Secrets reach the command in its environment (see ``secret_env``).

On ``sh`` the command is ``sh -c``'s argument and its stdin is ``/dev/null``.
On PowerShell the command is started exactly as the WinRM transport starts
one on a remote host: powershell.exe's command line carries only the WinRM
transport's fixed stdin stager (``-EncodedCommand``), and the command itself
goes on stdin in that stager's format (``winrm.stdin_stager`` and
``winrm.stdin_input``; the WinRM module's docstring says why each part is
there). So the farm probe the agent runs on its own host
(:mod:`custode.agent.farm.local_probe`) reaches powershell.exe in the same
shape as on a polled host, no command line carries a whole script into every
process-creation log (event 4688, EDR products), and ``-Command -``'s
statement-by-statement reading (PowerShell issue 3223) never applies. The stager reads
stdin to its end before the command runs, so the command finds its stdin at
end of file, as a command's stdin always is in Custode.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Literal

from custode.agent.transports.base import DEFAULT_MAX_OUTPUT, BoundedBuffer, CommandResult, Transport, TransportError
from custode.agent.transports.secret_env import check_secrets

Shell = Literal["posix", "powershell"]

POWERSHELL_OPTIONS = ("-NoProfile", "-NonInteractive", "-EncodedCommand")
"""What precedes the encoded stager on powershell.exe's command line (as over WinRM)."""


def powershell_executable() -> str:
    """Windows PowerShell by its full path when it is there, else ``powershell.exe`` as found on PATH.

    The agent runs as a service (LocalSystem): a bare name would be looked up in
    the program's own folder and the current folder before System32, so a
    ``powershell.exe`` dropped in either would run with the service's rights.
    """
    root = os.environ.get("SystemRoot")
    if root:
        path = os.path.join(root, "System32", "WindowsPowerShell", "v1.0", "powershell.exe")
        if os.path.isfile(path):
            return path
    return "powershell.exe"


def powershell_invocation(command: str) -> tuple[list[str], bytes]:
    """powershell.exe's arguments and the stdin that carries ``command``: the WinRM transport's stager and format.

    Imported here, not at the top: pywinrm, which that module loads, is not
    needed by a Linux agent's ``sh`` commands."""
    from custode.agent.transports.winrm import encode_powershell, stdin_input, stdin_stager

    return [powershell_executable(), *POWERSHELL_OPTIONS, encode_powershell(stdin_stager())], stdin_input(command)


def _readable(stderr: str) -> str:
    """PowerShell's error output as text: started with ``-EncodedCommand`` it writes CLIXML."""
    if not stderr.startswith("#< CLIXML"):
        return stderr
    from custode.agent.transports.winrm import clixml_to_text

    return clixml_to_text(stderr)


def _environment(secrets: Mapping[str, str] | None) -> dict[str, str] | None:
    """The child's environment: ours plus the secrets (None: simply ours).

    The environment, not the command line: ``/proc/PID/environ`` is readable
    by the same user and root only, ``/proc/PID/cmdline`` by everyone.
    """
    return {**os.environ, **secrets} if secrets else None


def _drain(stream: IO[bytes], buffer: BoundedBuffer) -> None:
    for chunk in iter(lambda: stream.read(8192), b""):
        buffer.feed(chunk)


def _feed(stream: IO[bytes], data: bytes) -> None:
    """Write stdin and close it; on a thread, so a child that never reads (Windows pipes hold 4 KiB) cannot hold
    up the timeout."""
    try:
        stream.write(data)
    except OSError:
        pass  # the child exited (or was killed) without reading: its result says why
    finally:
        try:
            stream.close()
        except OSError:
            pass


class LocalTransport(Transport):
    kind = "local"
    shell: Shell = "powershell" if sys.platform == "win32" else "posix"
    """This machine's shell; an instance may be given another (the Windows probe always needs PowerShell)."""

    def __init__(self, name: str, *, shell: Shell | None = None) -> None:
        super().__init__(name)
        if shell is not None:
            self.shell = shell

    def run(self, command: str, timeout: float, *, max_output: int = DEFAULT_MAX_OUTPUT,
            secrets: Mapping[str, str] | None = None) -> CommandResult:
        check_secrets(secrets or {})
        stdin: bytes | None = None
        if self.shell == "powershell":
            argv, stdin = powershell_invocation(command)
        else:
            argv = ["/bin/sh", "-c", command]
        started = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=(os.name == "posix"), env=_environment(secrets))
        except OSError as exc:
            raise TransportError(self.name, f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
        assert proc.stdout is not None and proc.stderr is not None
        out, err = BoundedBuffer(max_output), BoundedBuffer(max_output)
        threads = [threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
                   threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)]
        if stdin is not None:
            assert proc.stdin is not None
            threads.append(threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True))
        for thread in threads:
            thread.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill(proc)
        for thread in threads:
            thread.join(timeout=5)
        stderr = err.text()
        return CommandResult(exit_code=None if timed_out else proc.returncode, stdout=out.text(),
                             stderr=_readable(stderr) if stdin is not None else stderr,
                             duration=time.monotonic() - started, timed_out=timed_out,
                             truncated=bool(out.dropped or err.dropped))

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        """Kill the whole process group: a shell's children must not outlive the timeout."""
        try:
            if os.name == "posix":
                os.killpg(proc.pid, 9)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()
