"""Playbooks: the steps of an update, validated like the config, with ``{{ variables }}``.

A playbook is data, not code: an ordered list of typed steps, each with a
timeout, and a ``rollback`` list. Everything is checked and every variable
resolved before the first step runs, so a typo fails the plan (``--dry-run``
shows it), never the middle of an update.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from custode.agent.config_loader import Problem, load_model_file
from custode.agent.durations import Duration
from custode.agent.schema import Strict
from custode.agent.secrets import SecretRef
from custode.collectors.base import Regex

ACTIONS = ("notify", "run", "backup", "service", "wait_for", "check")


class Command(Strict):
    command: str = Field(description="a shell command (Linux) or a PowerShell script (Windows)")
    expect: list[int] = Field(default_factory=lambda: [0], description="exit codes that mean success")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"command": value} if isinstance(value, str) else value


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
    """A resolved secret: substituted into commands, shown as a placeholder in plans and logs."""

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
    secret_values: set[str] = field(default_factory=set)

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


def render_step(step: Step, variables: Variables, *, shown: bool = False) -> Step:
    """A copy of ``step`` with every string rendered (regexes included: a body pattern may use a version)."""
    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return variables.render(value, shown=shown)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value
    data = step.model_dump(by_alias=True)
    rendered = {k: (walk(v) if k not in ("hosts", "timeout", "interval") else v) for k, v in data.items()}
    return Step.model_validate({k: v for k, v in rendered.items() if v is not None})


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
