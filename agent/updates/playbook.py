"""Playbooks: the steps of an update, validated like the config, with ``{{ variables }}``.

A playbook is data, not code: an ordered list of typed steps, each with a
timeout, and a ``rollback`` list. Everything is checked and every variable
resolved before the first step runs, so a typo fails the plan (``--dry-run``
shows it), never the middle of an update.

A ``{{ secret.NAME }}`` is never pasted into a command: the command is written
to read it from an environment variable, whose value the transport hands over
beside it (:func:`bind_step`), because a command line is readable by every
user of the host while the command runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field, model_validator

from custode.agent.config_loader import Problem, load_model_file
from custode.agent.durations import Duration
from custode.agent.schema import Strict
from custode.agent.secrets import SecretRef
from custode.agent.transports.secret_env import SecretPlacementError, env_name, mark, reference
from custode.collectors.base import Regex

ACTIONS = ("notify", "run", "backup", "service", "wait_for", "check")


class Command(Strict):
    command: str = Field(description="a shell command (Linux) or a PowerShell script (Windows)")
    expect: list[int] = Field(default_factory=lambda: [0], description="exit codes that mean success")
    warn: list[int] = Field(default_factory=list,
                            description="exit codes that mean done, with something for a person to look at "
                                        "(3010: a reboot is required): the step is a warning and the run goes on")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"command": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _warn_is_not_success(self) -> "Command":
        both = sorted(set(self.expect) & set(self.warn))
        if both:
            raise ValueError(f"exit code {both[0]} is in both expect and warn; keep it in one: expect for plain "
                             "success, warn for success that needs a look")
        return self


class ServiceAction(Strict):
    name: str = Field(description="systemd unit / init script (Linux) or Windows service name")
    action: Literal["stop", "start", "restart"]


class Probe(Strict):
    """What ``wait_for`` waits for and ``check`` verifies: exactly one of http, tcp, service, process."""

    http: str | None = Field(default=None, description="URL fetched from the Custode node")
    status: int = Field(default=200, ge=100, le=599)
    body: Regex = Field(default=None, description="regex the response body must contain")
    tls_verify: bool = True
    tcp: str | None = Field(default=None, description="HOST:PORT connected to from the Custode node")
    service: str | None = Field(default=None, description="a service on the host")
    state: Literal["running", "stopped"] = "running"
    process: str | None = Field(default=None, description="a process name that must be running on the host")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Probe":
        given = [k for k in ("http", "tcp", "service", "process") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of http, tcp, service or process"
                             + (f" (found {', '.join(given)})" if given else ""))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("http", "tcp", "service", "process") if getattr(self, k))


class Step(Strict):
    """One step: a name, a timeout, optionally a subset of the window's hosts, and exactly one action."""

    name: str | None = None
    timeout: Duration = Field(default=600.0, gt=0)
    hosts: list[str] | None = Field(default=None, description="only these of the window's hosts")
    interval: Duration = Field(default=5.0, gt=0, description="wait_for: time between attempts")
    notify: Literal["start", "outcome"] | None = None
    run: Command | None = None
    backup: Command | None = None
    service: ServiceAction | None = None
    wait_for: Probe | None = None
    check: Probe | None = None

    @model_validator(mode="after")
    def _one_action(self) -> "Step":
        given = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError(f"a step has exactly one of {', '.join(ACTIONS)}"
                             + (f"; this one has {', '.join(given)}" if given else "; this one has none"))
        return self

    @property
    def action(self) -> str:
        return next(a for a in ACTIONS if getattr(self, a) is not None)

    def title(self, position: int) -> str:
        return self.name or f"{self.action} #{position + 1}"


class Playbook(Strict):
    name: str
    description: str = ""
    vars: dict[str, str] = Field(default_factory=dict, description="defaults; window and host vars override")
    secrets: dict[str, SecretRef] = Field(default_factory=dict,
                                          description="{{ secret.NAME }} values, from env, file or keyring")
    steps: list[Step] = Field(min_length=1)
    rollback: list[Step] = Field(default_factory=list, description="run when a step fails or the window ends")


def load_playbook(path: Path) -> tuple[Playbook, dict]:
    """The playbook and the line of every key, so later problems can name the line too."""
    return load_model_file(path, Playbook, "playbook")


def step_problem(path: Path, lines: dict, phase: str, position: int, step: Step, message: str) -> Problem:
    """A problem at a step: file, line, ``steps[N] (title)``, in the config loader's own form."""
    return Problem(str(path), lines.get((phase, position)), f"{phase}[{position}] ({step.title(position)})", message)


# --- variables -------------------------------------------------------------------

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


class Secret(str):
    """A resolved secret: referenced by commands (never pasted into them), shown as a placeholder in plans and logs."""

    label: str

    def __new__(cls, value: str, label: str) -> "Secret":
        obj = super().__new__(cls, value)
        obj.label = label
        return obj


@dataclass
class Variables:
    """The names a playbook may use: its vars (overridden by window, then host), built-ins, secrets."""

    values: dict[str, Any]
    resolve_secrets: bool = True
    used_secrets: set[str] = field(default_factory=set)
    secret_values: set[str] = field(default_factory=set, repr=False)
    env_names: dict[str, str] = field(default_factory=dict)
    """``secret.NAME`` → the environment variable a command reads it from, the same in every step."""

    def lookup(self, dotted: str) -> Any:
        node: Any = self.values
        for part in dotted.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise KeyError(dotted)
        if isinstance(node, SecretRef):
            self.used_secrets.add(dotted)
            value = node.resolve() if self.resolve_secrets else ""
            if value:
                self.secret_values.add(value)
            return Secret(value, f"«{dotted}: {node.describe()}»")
        if isinstance(node, dict):
            raise KeyError(dotted)
        return node

    def render(self, text: str, *, shown: bool = False) -> str:
        """Substitute every ``{{ name }}``; ``shown`` puts placeholders where secrets go (plans, logs)."""
        def one(match: re.Match[str]) -> str:
            value = self.lookup(match[1])
            if isinstance(value, Secret) and (shown or not self.resolve_secrets):
                return value.label
            return str(value)
        return _VARIABLE.sub(one, text)

    def render_command(self, text: str, shell: str) -> BoundCommand:
        """``text`` rendered for ``shell``, each secret a reference to a variable whose value travels beside it.

        A value pasted into the text would be on the command line of the
        shell that runs it, which every user of the host can read while it
        runs; the transport gives the variables to the command instead
        (``custode.agent.transports.secret_env``). The reference is written
        for the place the placeholder stands in, so ``'Bearer {{ secret.t }}'``
        still means the value inside those quotes.
        """
        names: list[str] = []
        secrets: dict[str, str] = {}

        def one(match: re.Match[str]) -> str:
            value = self.lookup(match[1])
            if not isinstance(value, Secret):
                return str(value)
            if "\0" in value:
                raise SecretPlacementError(f"secret {match[1]} holds a NUL character, which no environment "
                                           "variable can hold")
            name = self._env_name(match[1])
            secrets[name] = str(value)
            names.append(name)
            return mark(len(names) - 1)

        marked = _VARIABLE.sub(one, text)
        if marked.count("\ue000") != len(names):
            raise SecretPlacementError("the command holds the private-use character U+E000, which Custode uses "
                                       "to place secrets; remove it")
        return BoundCommand(reference(marked, names, shell) if names else marked, secrets)

    def _env_name(self, dotted: str) -> str:
        if dotted not in self.env_names:
            self.env_names[dotted] = env_name(dotted.removeprefix("secret."), set(self.env_names.values()))
        return self.env_names[dotted]

    def secrets_in(self, text: str) -> list[str]:
        """The ``{{ secret.NAME }}`` placeholders of ``text``, without resolving them."""
        out = []
        for match in _VARIABLE.finditer(text):
            node: Any = self.values
            for part in match[1].split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, SecretRef):
                out.append(match[1])
        return out

    def scrub(self, text: str) -> str:
        """``text`` with every resolved secret replaced: output stored and audited never holds one."""
        for value in self.secret_values:
            text = text.replace(value, "«secret»")
        return text

    def missing(self, text: str) -> list[str]:
        out = []
        for match in _VARIABLE.finditer(text):
            try:
                node: Any = self.values
                for part in match[1].split("."):
                    node = node[part]
                if isinstance(node, dict):
                    out.append(match[1])
            except (KeyError, TypeError):
                out.append(match[1])
        return out


def strings_of(step: Step) -> list[str]:
    """Every string of a step that may hold variables."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(step.model_dump(exclude={"hosts"}))
    return out


COMMAND_FIELDS = frozenset({("run", "command"), ("backup", "command")})
"""Where a step's shell command is: secrets there become references to environment variables."""
HOST_NAME_FIELDS = frozenset({("service", "name"), ("wait_for", "service"), ("wait_for", "process"),
                              ("check", "service"), ("check", "process")})
"""Names Custode itself puts on the host's command line: no secret may stand there."""


@dataclass(frozen=True)
class BoundCommand:
    text: str
    """What the shell runs: secrets only as references to ``secrets``' names."""
    secrets: dict[str, str] = field(repr=False)
    """Environment variable name → value, for the transport to hand over beside the command."""


@dataclass(frozen=True)
class BoundStep:
    step: Step
    """Rendered: what runs."""
    secrets: dict[str, str] = field(repr=False)
    """What its command refers to (empty for a step without one)."""


def _render_fields(step: Step, one: Callable[[tuple[str, ...], str], str]) -> Step:
    """A copy of ``step`` with ``one(path, text)`` for every string (regexes included: a body may use a version)."""
    def walk(value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, str):
            return one(path, value)
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, path) for v in value]
        return value
    data = step.model_dump(by_alias=True)
    rendered = {k: (walk(v, (k,)) if k not in ("hosts", "timeout", "interval") else v) for k, v in data.items()}
    return Step.model_validate({k: v for k, v in rendered.items() if v is not None})


def render_step(step: Step, variables: Variables, *, shown: bool = False) -> Step:
    """A copy of ``step`` with every string rendered as text: with ``shown``, what plans and logs print.

    Without ``shown`` secrets are pasted in, which is right only where no
    process sees them (an http check made from the Custode node); a command
    with a secret is refused: it runs through :func:`bind_step`.
    """
    def one(path: tuple[str, ...], text: str) -> str:
        if not shown and path in COMMAND_FIELDS and variables.secrets_in(text):
            raise SecretPlacementError("a command with a secret is bound with bind_step, never pasted")
        return variables.render(text, shown=shown)
    return _render_fields(step, one)


def bind_step(step: Step, variables: Variables, shell: str | None) -> BoundStep:
    """The step that runs: its command written for ``shell`` with secrets as references, and their values.

    Raises :class:`SecretPlacementError` for a secret in a service or process
    name (Custode puts those on the host's command line) or where ``shell``
    cannot read a variable, so the plan fails instead of the update.
    """
    secrets: dict[str, str] = {}

    def one(path: tuple[str, ...], text: str) -> str:
        if path in COMMAND_FIELDS:
            bound = variables.render_command(text, shell or "posix")
            secrets.update(bound.secrets)
            return bound.text
        used = variables.secrets_in(text) if path in HOST_NAME_FIELDS else []
        if used:
            raise SecretPlacementError(
                f"{{{{ {used[0]} }}}} stands in {'.'.join(path)}, which Custode puts on the host's command "
                "line for every user there to read; secrets can be used in run and backup commands (read "
                "from the environment) and in http/tcp checks made from the Custode node")
        return variables.render(text)
    return BoundStep(_render_fields(step, one), secrets)


def unknown_variables(step: Step, variables: Variables) -> list[str]:
    """An explanation for every ``{{ name }}`` of ``step`` that does not exist."""
    known = ", ".join(sorted(_names(variables.values)))
    return [f"unknown variable {{{{ {name} }}}}; known: {known}"
            for text in strings_of(step) for name in variables.missing(text)]


def _names(values: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        if isinstance(value, dict):
            out += _names(value, f"{prefix}{key}.")
        else:
            out.append(prefix + key)
    return out
