"""The contract every transport keeps.

A transport runs one command and returns what happened; it never raises for a
command that ran and failed (that is a ``CommandResult`` with a non-zero exit
code), only for a host it could not reach, authenticate to or talk to
(``TransportError``). Output is bounded so a chatty installer cannot fill the
agent's memory or the state DB.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

DEFAULT_MAX_OUTPUT = 64 * 1024
"""Bytes kept of each of stdout and stderr; the rest is counted, not stored."""


class TransportError(Exception):
    """The host could not be reached or refused us; ``str()`` says which host, why, and the fix."""

    def __init__(self, host: str, cause: str) -> None:
        super().__init__(f"{host}: {cause}")
        self.host = host
        self.cause = cause


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None
    """None when the command was stopped by its timeout."""
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    truncated: bool = False
    """True when stdout or stderr was longer than the limit and was cut."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        """One line for logs, the audit log and tickets."""
        if self.timed_out:
            return f"timed out after {self.duration:.0f} s"
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-1:] or [""]
        return f"exit code {self.exit_code}" + (f": {tail[0][:200]}" if tail[0] and not self.ok else "")


class BoundedBuffer:
    """Keeps the first ``limit`` bytes of a stream, counts the rest."""

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        text = bytes(self.data).decode("utf-8", errors="replace")
        return text + (f"\n[… {self.dropped} more bytes not kept]" if self.dropped else "")


class Transport(ABC):
    """Runs commands on one host. Use as a context manager, or call ``close``."""

    kind: Literal["local", "ssh", "winrm"]
    shell: Literal["posix", "powershell"]
    """What ``run`` hands the command to: ``sh -c`` or PowerShell."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def run(self, command: str, timeout: float, *, max_output: int = DEFAULT_MAX_OUTPUT,
            secrets: Mapping[str, str] | None = None) -> CommandResult:
        """Run ``command`` in the host's shell; stop it after ``timeout`` seconds.

        ``secrets`` (environment variable name → value) are environment
        variables of the command, handed over beside it and never through its
        command line, which every user of the host can read while it runs
        (``agent/transports/secret_env.py`` says how each transport does it).
        The command refers to them by name (``reference`` there writes the
        references); its stdin is at end of file either way.

        Raises ``TransportError`` only when the host cannot be reached or
        refuses us; a failing command is a result, not an exception.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection (the next ``run`` reconnects); by default nothing: a local transport holds none."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
