"""Commands on the machine Custode runs on: ``sh -c`` on Linux, PowerShell on Windows.

Secrets reach the command in its environment (see ``secret_env``); its stdin is ``/dev/null``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

from custode.agent.transports.base import DEFAULT_MAX_OUTPUT, BoundedBuffer, CommandResult, Transport, TransportError
from custode.agent.transports.secret_env import check_secrets


def _environment(secrets: Mapping[str, str] | None) -> dict[str, str] | None:
    """The child's environment: ours plus the secrets (None: simply ours).

    The environment, not the command line: ``/proc/PID/environ`` is readable
    by the same user and root only, ``/proc/PID/cmdline`` by everyone.
    """
    return {**os.environ, **secrets} if secrets else None


def _drain(stream, buffer: BoundedBuffer) -> None:
    for chunk in iter(lambda: stream.read(8192), b""):
        buffer.feed(chunk)


class LocalTransport(Transport):
    kind = "local"
    shell = "powershell" if sys.platform == "win32" else "posix"

    def run(self, command: str, timeout: float, *, max_output: int = DEFAULT_MAX_OUTPUT,
            secrets: Mapping[str, str] | None = None) -> CommandResult:
        check_secrets(secrets or {})
        if self.shell == "powershell":
            argv = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", command]
        else:
            argv = ["/bin/sh", "-c", command]
        started = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=(os.name == "posix"),
                                    env=_environment(secrets))
        except OSError as exc:
            raise TransportError(self.name, f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
        out, err = BoundedBuffer(max_output), BoundedBuffer(max_output)
        readers = [threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
                   threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)]
        for reader in readers:
            reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill(proc)
        for reader in readers:
            reader.join(timeout=5)
        return CommandResult(exit_code=None if timed_out else proc.returncode, stdout=out.text(),
                             stderr=err.text(), duration=time.monotonic() - started, timed_out=timed_out,
                             truncated=bool(out.dropped or err.dropped))

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        """Kill the whole process group: a shell's children must not outlive the timeout."""
        try:
            if os.name == "posix":
                os.killpg(proc.pid, 9)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()
