"""Farm probes: one module per remote shell, found as the modules of this package.

A poll hands a host's transport one command and reads back what it printed.
Which command, and how to read it, depends on the shell the transport hands
commands to (``Transport.shell``): ``posix`` (SSH: the Linux probe, a shell
script) or ``powershell`` (WinRM, or this machine's PowerShell: the Windows
probe). A probe is a module here with

* ``SHELL``: the ``Transport.shell`` it is written for; one probe per shell;
* ``probe_command(*, include_updates=True) -> str``: the text for
  ``Transport.run`` (without the slow update and disk sections when False);
* ``parse(output, *, now) -> HostSnapshot``: the snapshot from its stdout,
  raising ``ProbeOutputError`` only for output that is not the probe's.

Every module of this package not starting with ``_`` is one, found by
:func:`probes` (the data files it runs, ``linux.sh`` and ``windows.ps1``, sit
next to it); the poller asks :func:`probe_for` for the probe of a host's shell.
A shell no probe claims is an error naming the host and the shells there are,
never a silent fall-back to another probe; two modules claiming one shell stop
discovery naming both. A module that cannot be imported or lacks the contract
is logged and listed by :func:`broken_probes`, and named in the error of the
hosts that would have needed it.

There is no entry-point group for outside probes: a shell is only reachable
through a transport, and the transports (and so the shells) are Custode's
own; an outside probe could only claim a shell already claimed.
``tests/test_farm_probe_registry.py`` holds this package, its probes and the
transports' shells to each other.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from types import ModuleType
from typing import Protocol, cast

from custode.agent.farm.snapshot import HostSnapshot
from custode.agent.plugins import Found, package_modules

log = logging.getLogger(__name__)


class FarmProbe(Protocol):
    """What the poller uses of a probe module."""

    __name__: str
    SHELL: str

    def probe_command(self, *, include_updates: bool = True) -> str: ...

    def parse(self, output: str, *, now: float) -> HostSnapshot: ...


class ProbeRegistryError(Exception):
    """The farm probes cannot answer: no probe for a shell, or two for one."""


class UnknownShellError(ProbeRegistryError, LookupError):
    """No probe claims the shell a host's transport speaks."""


class DuplicateShellError(ProbeRegistryError):
    """Two probe modules claim the same shell."""


_lock = threading.Lock()
_loaded: dict[str, FarmProbe] | None = None
_broken: dict[str, str] = {}


def probes() -> dict[str, FarmProbe]:
    """The probe of each shell, found once: shell -> module, in shell order.

    Raises ``DuplicateShellError`` when two modules claim one shell (every call, until fixed).
    """
    global _loaded, _broken
    with _lock:
        if _loaded is None:
            found, broken = find_probes(sys.modules[__name__])
            for name, why in broken.items():
                log.error("farm probe not loaded; fix or remove it", extra={"probe": name, "error": why})
            _loaded, _broken = found, broken
        return dict(_loaded)


def broken_probes() -> dict[str, str]:
    """Probe modules that could not be loaded: name -> why, naming the module."""
    probes()
    return dict(sorted(_broken.items()))


def probe_for(shell: str, *, host: str | None = None) -> FarmProbe:
    """The probe for ``shell``; ``UnknownShellError`` (naming ``host`` and the known shells) when none claims it."""
    known = probes()
    probe = known.get(shell)
    if probe is not None:
        return probe
    whose = f"host {host}: its transport" if host else "the transport"
    message = (f"{whose} runs commands in the shell {shell!r}, and no farm probe is written for it; "
               f"the probes know the shells {', '.join(map(repr, known)) or '(none)'}")
    broken = broken_probes()
    if broken:
        message += "; not loaded: " + "; ".join(broken.values())
    raise UnknownShellError(message)


def find_probes(package: ModuleType) -> tuple[dict[str, FarmProbe], dict[str, str]]:
    """The probe modules of ``package`` by shell, and those that are none (name -> why).

    Raises ``DuplicateShellError`` naming both modules when two claim one shell.
    """
    found: dict[str, FarmProbe] = {}
    broken: dict[str, str] = {}
    for candidate in package_modules(package):
        probe, why = _checked(candidate)
        if probe is None:
            broken[candidate.name] = why
            continue
        other = found.get(probe.SHELL)
        if other is not None:
            raise DuplicateShellError(f"two farm probes claim the shell {probe.SHELL!r}: module {other.__name__} "
                                      f"and module {probe.__name__}; one shell has one probe, remove or rename "
                                      "the SHELL of one of them")
        found[probe.SHELL] = probe
    return dict(sorted(found.items())), broken


def contract_problems(module: object) -> list[str]:
    """What a probe module lacks of the contract (empty when it is one)."""
    problems = []
    shell = getattr(module, "SHELL", None)
    if not isinstance(shell, str) or not shell:
        problems.append("no SHELL string")
    if not _takes(getattr(module, "probe_command", None), keywords=("include_updates",), positional=0):
        problems.append("no probe_command(*, include_updates) function")
    if not _takes(getattr(module, "parse", None), keywords=("now",), positional=1):
        problems.append("no parse(output, *, now) function")
    return problems


def _takes(function: object, *, keywords: tuple[str, ...], positional: int) -> bool:
    """True when ``function`` can be called with ``positional`` arguments and ``keywords`` by name."""
    if not callable(function):
        return False
    try:
        inspect.signature(function).bind(*range(positional), **dict.fromkeys(keywords))
    except (TypeError, ValueError):
        return False
    return True


def _checked(found: Found) -> tuple[FarmProbe | None, str]:
    if found.error is not None:
        return None, f"{found.source} cannot be loaded: {type(found.error).__name__}: {found.error}"
    problems = contract_problems(found.loaded)
    if problems:
        return None, f"{found.source} is no farm probe: " + "; ".join(problems)
    return cast(FarmProbe, found.loaded), ""
