"""Load the YAML config, validate it, and explain every error in plain words.

A sysadmin reading an error at 18:00 on a Friday needs the file, the line, the
key path, what was expected and how to fix it, for every problem at once, not
a pydantic traceback. So the YAML is composed into nodes first (to keep line
numbers), then validated, then each pydantic error is rewritten.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, create_model

from custode.agent.config import DEFAULT_TENANT, TENANT_ID, Config
from custode.agent.config_refs import HOST, TENANT, TICKET_BACKEND, references
from custode.agent.durations import DURATION_HINT, Duration
from custode.agent.suggest import did_you_mean
from custode.collectors.base import Collector
from custode.collectors.registry import available, broken

Path_ = tuple[str | int, ...]
EMBEDDED = "<embedded default>"


def default_config_path() -> Path:
    """Where a service install keeps its config on this OS."""
    if sys.platform == "win32":
        return Path(os.environ.get("ProgramData", r"C:\ProgramData")) / "Custode" / "custode.yaml"
    return Path("/etc/custode/custode.yaml")


@dataclass(frozen=True)
class Problem:
    source: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """All problems found in one config file."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class CollectorPlan:
    """A collector as configured: what to run, how often, with what budget."""

    name: str
    cls: type[Collector]
    enabled: bool
    interval: float
    timeout: float
    settings: Any

    def build(self) -> Collector:
        return self.cls(self.settings)


@dataclass
class LoadedConfig:
    model: Config
    source: str
    collectors: list[CollectorPlan] = field(default_factory=list)
    sha256: str = ""  # of the text as loaded, for the audit log: which config was running

    @property
    def enabled_collectors(self) -> list[CollectorPlan]:
        return [c for c in self.collectors if c.enabled]


# --- YAML with line numbers -------------------------------------------------

def _compose(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Python data for ``text`` plus the line of every key path."""
    loader = yaml.SafeLoader(text)
    lines: dict[Path_, int] = {}
    try:
        root = loader.get_single_node()

        def build(node: yaml.Node, path: Path_) -> Any:
            lines.setdefault(path, node.start_mark.line + 1)
            if isinstance(node, yaml.MappingNode):
                loader.flatten_mapping(node)
                out: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = loader.construct_object(key_node, deep=True)
                    if not isinstance(key, (str, int, float, bool)) or key is None:
                        raise ConfigError([Problem(source, key_node.start_mark.line + 1, _dotted(path),
                                                   "a key must be a plain word")])
                    key_path = path + (str(key),)
                    if key in out:
                        raise ConfigError([Problem(source, key_node.start_mark.line + 1, _dotted(key_path),
                                                   f"duplicate key {key!r}: it is already set on line "
                                                   f"{lines[key_path]}; keep only one")])
                    lines[key_path] = key_node.start_mark.line + 1
                    out[str(key)] = build(value_node, key_path)
                return out
            if isinstance(node, yaml.SequenceNode):
                return [build(item, path + (i,)) for i, item in enumerate(node.value)]
            return loader.construct_object(node, deep=True)

        data = build(root, ()) if root is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = f" (column {mark.column + 1})" if mark else ""
        raise ConfigError([Problem(source, line, "", f"YAML syntax error: {exc.problem}{column}; "
                                   "check the indentation and quote values that contain ':' or '#'")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(source, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    return data, lines


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_for(lines: dict[Path_, int], path: Path_) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


# --- pydantic errors in plain words ------------------------------------------

def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation can hold (through Optional, lists, dicts, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    inner = (annotation.__origin__,) if hasattr(annotation, "__metadata__") else getattr(annotation, "__args__", ())
    for arg in inner or ():
        found.extend(m for m in _models_in(arg) if m not in found)
    return found


def _fields_of(model: type[BaseModel], path: Path_) -> list[str]:
    """The keys accepted at ``path`` inside ``model`` (for suggestions); a union offers all its members' keys."""
    current: list[type[BaseModel]] = [model]
    for part in path:
        if isinstance(part, int):
            continue
        following: list[type[BaseModel]] = []
        for candidate in current:
            info = candidate.model_fields.get(str(part)) or next(
                (f for f in candidate.model_fields.values() if f.alias == part), None)
            if info is not None:
                following.extend(_models_in(info.annotation))
        if following:
            current = following
        # else: a dict key (a tenant id) between a dict field and its value models
    names: list[str] = []
    for candidate in current:
        names.extend(f.alias or name for name, f in candidate.model_fields.items() if (f.alias or name) not in names)
    return names


def _describe(error: dict[str, Any], model: type[BaseModel], loc: Path_) -> str:
    kind = error["type"]
    given = error.get("input")
    got = f"; got {given!r}" if not isinstance(given, (dict, list)) else ""
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _fields_of(model, loc[:-1])
        hint = did_you_mean(key, known)
        if hint:
            return f"unknown key {key!r}; did you mean {hint!r}?"
        return f"unknown key {key!r}; valid keys here: {', '.join(sorted(known))}"
    if kind == "missing":
        return f"required key {str(loc[-1])!r} is missing; add it"
    if kind == "bool_parsing" or kind == "bool_type":
        return f"expected true or false{got}"
    if kind in ("float_parsing", "int_parsing", "float_type", "int_type", "int_from_float"):
        return f"expected a number{got}"
    if kind == "literal_error":
        return f"expected one of {error['ctx']['expected']}{got}"
    if kind in ("string_type",):
        return f"expected text{got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a section of keys (a YAML mapping){got}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(error["ctx"].values()))
        bound = f"{bound:g}" if isinstance(bound, float) else bound
        words = {"greater_than": "greater than", "greater_than_equal": "at least",
                 "less_than": "less than", "less_than_equal": "at most"}[kind]
        return f"expected a value {words} {bound}{got}"
    if kind == "value_error":
        message = str(error["ctx"]["error"])
        return f"{message}{got}" if message.startswith("expected") else message
    return f"{error['msg']}{got}"


def _without_union_tags(loc: Path_, lines: dict[Path_, int]) -> Path_:
    """Drop the union-member names pydantic puts in error paths ("mailboxes[0].imap.host")."""
    kept: Path_ = ()
    for index, part in enumerate(loc):
        following = loc[index + 1] if index + 1 < len(loc) else None
        if kept + (part,) not in lines and following is not None and kept + (following,) in lines:
            continue
        kept += (part,)
    return kept


def _problems(exc: ValidationError, model: type[BaseModel], source: str,
              lines: dict[Path_, int], prefix: Path_ = ()) -> list[Problem]:
    out = []
    for error in exc.errors():
        loc = _without_union_tags(prefix + tuple(error["loc"]), lines)
        rel = loc[len(prefix):]
        out.append(Problem(source, _line_for(lines, loc), _dotted(loc), _describe(error, model, rel)))
    return out


# --- collectors ---------------------------------------------------------------

_COMMON = {"enabled": (bool | None, None), "interval": (Duration | None, None), "timeout": (Duration | None, None)}
_entry_models: dict[str, type[BaseModel]] = {}


def _entry_model(cls: type[Collector]) -> type[BaseModel]:
    """The collector's own settings plus enabled/interval/timeout."""
    if cls.name not in _entry_models:
        _entry_models[cls.name] = create_model(f"{cls.name}_collector_config", __base__=cls.Settings, **_COMMON)
    return _entry_models[cls.name]


def _plan_collectors(raw: dict[str, Any], source: str,
                     lines: dict[Path_, int]) -> tuple[list[CollectorPlan], list[Problem]]:
    known = available()
    unloadable = broken()
    plans, problems = [], []
    for name in raw:
        if name in unloadable:
            continue  # its code is broken, not the config: the agent starts and reports it (collectors.registry)
        if name not in known:
            hint = did_you_mean(name, known)
            text = (f"unknown collector {name!r}; did you mean {hint!r}?" if hint else
                    f"unknown collector {name!r}; known collectors: {', '.join(known)}")
            problems.append(Problem(source, _line_for(lines, ("collectors", name)), f"collectors.{name}", text))
    for name, cls in known.items():
        entry = raw.get(name, {})
        if entry is None:
            entry = {}
        if isinstance(entry, bool):
            entry = {"enabled": entry}
        model = _entry_model(cls)
        try:
            values = model.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_problems(exc, model, source, lines, ("collectors", name)))
            continue
        data = values.model_dump(exclude=set(_COMMON))
        interval = values.interval or cls.default_interval
        timeout = values.timeout or min(cls.default_timeout, interval)
        if timeout > interval:
            problems.append(Problem(source, _line_for(lines, ("collectors", name, "timeout")),
                                    f"collectors.{name}.timeout",
                                    f"timeout ({timeout:g}s) must not exceed interval ({interval:g}s): "
                                    "lower the timeout or raise the interval"))
            continue
        enabled = cls.default_enabled if values.enabled is None else values.enabled
        plans.append(CollectorPlan(name, cls, enabled, interval, timeout, cls.Settings.model_validate(data)))
    return plans, problems


def _cross_checks(config: Config, source: str, lines: dict[Path_, int]) -> list[Problem]:
    """Rules that span sections, reported at the key a person must edit."""
    problems = []
    for tenant_id in config.tenants:
        if not TENANT_ID.match(tenant_id):
            problems.append(Problem(source, _line_for(lines, ("tenants", tenant_id)), f"tenants.{tenant_id}",
                                    f"tenant id {tenant_id!r} must be lower-case letters, digits, '-' or '_' "
                                    "(e.g. 'crema', 'comune-di-capannori')"))
    if config.tenants and "tenant" not in config.agent.model_fields_set:
        if len(config.tenants) == 1:
            config.agent.tenant = next(iter(config.tenants))  # the only tenant is obviously this host's
        else:
            problems.append(Problem(source, _line_for(lines, ("agent",)), "agent.tenant",
                                    "not set: say which tenant this host belongs to, one of "
                                    f"{', '.join(sorted(config.tenants))}"))
            return problems
    problems.extend(_unknown_tenant_references(config, source, lines))
    problems.extend(_command_template_problems(config, source, lines))
    tenant = config.agent.tenant
    if config.tenants and tenant not in config.tenants:
        hint = did_you_mean(tenant, config.tenants)
        text = (f"tenant {tenant!r} is not defined under tenants; did you mean {hint!r}?" if hint else
                f"tenant {tenant!r} is not defined under tenants; defined: {', '.join(sorted(config.tenants))}")
        problems.append(Problem(source, _line_for(lines, ("agent", "tenant")), "agent.tenant", text))
    elif not config.tenants and tenant != DEFAULT_TENANT:
        problems.append(Problem(source, _line_for(lines, ("agent", "tenant")), "agent.tenant",
                                f"tenant {tenant!r} is not defined; add it under tenants: with a name"))
    return problems


def _unknown_tenant_references(config: Config, source: str, lines: dict[Path_, int]) -> list[Problem]:
    """Every field that names a tenant, host or ticket backend (custode.agent.config_refs) names a defined one."""
    defined = {TENANT: config.tenant_ids(), HOST: list(config.hosts),
               TICKET_BACKEND: list(config.tickets.backends)}
    allowed = {TICKET_BACKEND: ("none",)}  # a comune that wants no tickets
    problems = []
    for path, reference, value in references(config):
        known = defined.get(reference)
        if known is None or value in known or value in allowed.get(reference, ()):
            continue
        if path[0] == "hosts":
            path = _host_path(lines, str(path[1])) + path[2:]
        problems.append(_undefined(source, lines, path, reference.kind, value, reference.section, known))
    problems += [Problem(source, _line_for(lines, ("tickets", "backends", name)), f"tickets.backends.{name}",
                         "an e-mail ticket backend needs an SMTP server: add the top-level smtp: section or "
                         "give this backend its own smtp:")
                 for name, backend in config.tickets.backends.items()
                 if backend.type == "email" and backend.smtp is None and config.smtp is None]
    return problems


def _host_path(lines: dict[Path_, int], name: str) -> Path_:
    """Where host ``name`` was written: under ``hosts:``, or under the older ``updates.hosts:``."""
    return ("updates", "hosts", name) if ("updates", "hosts", name) in lines else ("hosts", name)


def _command_template_problems(config: Config, source: str, lines: dict[Path_, int]) -> list[Problem]:
    """Restore-test command templates: known placeholders, each inside the host shell's single quotes."""
    sets = {name: s for name, s in config.restore_tests.sets.items() if s.backend == "command" and s.command}
    if not sets:
        return []
    from custode.agent.restore.backends.command import TEMPLATE_PLACEHOLDERS, template_problem

    problems = []
    for name, test_set in sets.items():
        host = config.hosts.get(test_set.host) if test_set.host else None
        shell = "powershell" if host is not None and host.transport == "winrm" else "posix"
        for template_name, allowed in TEMPLATE_PLACEHOLDERS.items():
            template = getattr(test_set.command, template_name)
            problem = template and template_problem(template, allowed,
                                                    None if template_name == "restored_path" else shell)
            if problem:
                path = ("restore_tests", "sets", name, "command", template_name)
                problems.append(Problem(source, _line_for(lines, path), _dotted(path), problem))
    return problems


def _undefined(source: str, lines: dict[Path_, int], path: Path_, what: str, name: str, section: str,
               known: list[str]) -> Problem:
    hint = did_you_mean(name, known)
    text = (f"{what} {name!r} is not defined under {section}; " +
            (f"did you mean {hint!r}?" if hint else f"defined: {', '.join(known) or 'none'}"))
    return Problem(source, _line_for(lines, path), _dotted(path), text)


# --- entry points ---------------------------------------------------------------

def load_text(text: str, source: str = EMBEDDED) -> LoadedConfig:
    """Validate ``text``; raise ConfigError listing every problem."""
    data, lines = _compose(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(source, 1, "", "the file must be a mapping of sections "
                                   "(agent:, tenants:, collectors:, checks: ...)")])
    # A section whose keys are all commented out is YAML null: it means "defaults".
    data = {key: value for key, value in data.items() if value is not None}
    problems: list[Problem] = []
    try:
        model = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, Config, source, lines))
        model = None
    raw_collectors = data.get("collectors") if isinstance(data.get("collectors"), dict) else {}
    plans, collector_problems = _plan_collectors(raw_collectors or {}, source, lines)
    problems.extend(collector_problems)
    if model is not None:
        problems.extend(_cross_checks(model, source, lines))
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(problems)
    assert model is not None
    return LoadedConfig(model=model, source=source, collectors=plans,
                        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())


def _read(path: str | os.PathLike[str], not_found: str) -> str:
    source = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(source, None, "", not_found)]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(source, None, "",
                                   f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]) from None
    except OSError as exc:
        raise ConfigError([Problem(source, None, "", f"cannot read: {exc.strerror}")]) from None


def load(path: str | os.PathLike[str] | None = None) -> LoadedConfig:
    """Load ``path``; with None, the default location if it exists, else the embedded default."""
    if path is None:
        candidate = default_config_path()
        if not candidate.exists():
            return load_text("", EMBEDDED)
        path = candidate
    text = _read(path, "file not found; check the path, or omit --config to run on the embedded default")
    return load_text(text, str(path))


def load_model_file(path: str | os.PathLike[str], model: type[BaseModel], what: str) -> tuple[Any, dict[Path_, int]]:
    """Another YAML file validated like the config (playbooks): the model and its key lines, or ConfigError."""
    source = str(path)
    data, lines = _compose(_read(path, f"{what} not found; check the file name and the folder"), source)
    if not isinstance(data, dict):
        raise ConfigError([Problem(source, 1, "", f"a {what} must be a mapping (name:, steps:, …)")])
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        raise ConfigError(_problems(exc, model, source, lines)) from None


__all__ = ["ConfigError", "CollectorPlan", "LoadedConfig", "Problem", "load", "load_text", "load_model_file",
           "default_config_path", "DURATION_HINT"]
