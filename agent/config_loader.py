"""Load the YAML config, validate it, and explain every error in plain words.

A sysadmin reading an error at 18:00 on a Friday needs the file, the line, the
key path, what was expected and how to fix it, for every problem at once, not
a pydantic traceback. So the YAML is composed into nodes first (to keep line
numbers), then validated, then each pydantic error is rewritten.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml
from pydantic import BaseModel, ValidationError, create_model

from custode.agent.config import DEFAULT_TENANT, TENANT_ID, Config
from custode.agent.config_refs import HOST, PROFILE, TENANT, TICKET_BACKEND, references
from custode.agent.durations import DURATION_HINT, Duration
from custode.agent.redact import redact_text, redact_url, url_secrets, urls_in
from custode.agent.secrets import SecretError, SecretRef, secret_refs
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
    lines: dict[Path_, int] = field(default_factory=dict, repr=False)  # the line of every key path

    @property
    def enabled_collectors(self) -> list[CollectorPlan]:
        return [c for c in self.collectors if c.enabled]


# --- YAML with line numbers, within bounds ------------------------------------

MAX_DEPTH = 100
"""Deepest nesting of sections and lists (also reached through aliases); far beyond any real config."""
ALIAS_BUDGET = 10_000
"""Values an alias or a merge key may add beyond the document's own, or a few times its own size if more."""
ALIAS_FACTOR = 4
MAX_INT_DIGITS = 100
"""Longer integers are refused: no setting needs one, and Python stops converting at 4,300 digits anyway."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"


class _Refused(Exception):
    """A YAML document Custode will not build: where it is and what to do."""

    def __init__(self, mark: Any, path: Path_, message: str, column: bool = False) -> None:
        super().__init__(message)
        self.mark = mark
        self.path = path
        self.column = column  # worth saying where a line holds many values (flow style: [[[ … ]]])


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with nesting bounded while composing and its own nodes counted.

    PyYAML composes recursively (a few Python frames per level), so a file of
    ten thousand ``[`` would end in RecursionError; the depth is checked
    before each level, far below Python's limit.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0
        self.own_nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark, (), _too_deep(), column=True)
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        self.own_nodes += 1
        return node


def _too_deep() -> str:
    return (f"nested more than {MAX_DEPTH} levels deep; no Custode setting goes this deep: check the "
            "indentation and the brackets (a generated or damaged file?)")


_BOOL_TAG = "tag:yaml.org,2002:bool"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")


class KeyLines(dict[Path_, int]):
    """The line of every key path, plus the text of unquoted scalars YAML turned into booleans or numbers.

    YAML 1.1 (PyYAML's) reads ``off``, ``no``, ``on``, ``yes`` as booleans and
    ``17:30`` as the base-60 number 1050; a field that wants text then sees
    False or 1050, and the error must show what was written and say "quote it".
    """

    def __init__(self) -> None:
        super().__init__()
        self.plain: dict[Path_, str] = {}


def yaml11_hint(written: str | None, given: Any) -> str:
    """"Quote it" when an unquoted word or time became a boolean or a number behind the user's back."""
    if written is None:
        return ""
    if isinstance(given, bool) and written.lower() not in ("true", "false"):
        return (f"; YAML reads an unquoted {written} as {str(given).lower()}: write it in quotes, "
                f"'{written}', to mean the word")
    if isinstance(given, (int, float)) and not isinstance(given, bool) and _SEXAGESIMAL.match(written):
        return (f"; YAML reads an unquoted {written} as the base-60 number {given}: write it in quotes, "
                f"'{written}'")
    return ""


class _Builder:
    """Python data from composed nodes, with the line of every key path, expanding aliases within a budget.

    An alias is a reference: ``[*a, *a]`` builds ``a`` twice, so nine aliases
    of nine aliases of … (a "billion laughs" file of 600 bytes) would build a
    billion values. Like Go's yaml.v3 ("excessive aliasing"), the values built
    through aliases and merge keys are counted, and the document is refused
    once they pass the budget: at least :data:`ALIAS_BUDGET`, or
    :data:`ALIAS_FACTOR` times the document's own size.
    """

    def __init__(self, loader: _BoundedLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.lines: KeyLines = KeyLines()
        self.limit = loader.own_nodes + max(ALIAS_BUDGET, ALIAS_FACTOR * loader.own_nodes)
        self.built = 0
        self.open: set[int] = set()  # the nodes being built now: meeting one again is an alias to itself
        self.merged: dict[int, list[tuple[str, yaml.Node, yaml.Node]]] = {}  # entries of each mapping, once

    def count(self, node: yaml.Node, path: Path_) -> None:
        self.built += 1
        if self.built > self.limit:  # named at the top-level key being built: the alias inside is in its text
            raise _Refused(None, path[:1],
                           f"aliases (*name) and merge keys (<<) expand to more than "
                           f"{self.limit - self.loader.own_nodes:,} values beyond the document's own: refused as "
                           "an alias bomb; write the repeated parts out, or reuse fewer and smaller anchors")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        self.count(node, path)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if len(path) >= MAX_DEPTH:
            raise _Refused(node.start_mark, path, _too_deep(), column=True)
        if id(node) in self.open:
            raise _Refused(node.start_mark, path, "an alias refers to the section it is inside of (like "
                           "'a: &a [*a]'), which would never end; point it at another anchor")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                out: dict[str, Any] = {}
                for key, key_node, value_node in self.entries(node, path, ()):
                    key_path = path + (key,)
                    self.lines[key_path] = key_node.start_mark.line + 1
                    out[key] = self.build(value_node, key_path)
                return out
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def entries(self, node: yaml.MappingNode, path: Path_,
                merging: tuple[int, ...]) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping, merge keys (``<<: *defaults``) resolved.

        The mapping's own keys win over merged ones, and an earlier mapping of
        ``<<: [*a, *b]`` over a later one (the YAML merge-key rules); a key
        written twice in the mapping itself is an error. Computed once per
        mapping, however many aliases and merges reach it.
        """
        if id(node) in self.merged:
            return self.merged[id(node)]
        own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self.key(key_node, path)
            if key in own:
                first = own[key][0].start_mark.line + 1
                raise _Refused(key_node.start_mark, path + (key,),
                               f"duplicate key {key!r}: it is already set on line {first}; keep only one")
            own[key] = (key_node, value_node)
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for value_node in merges:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise _Refused(source.start_mark, path, "a merge key (<<) takes an alias of a section "
                                   "(<<: *defaults) or a list of them (<<: [*a, *b])")
                if id(source) in merging or id(source) == id(node) or len(merging) >= MAX_DEPTH:
                    raise _Refused(source.start_mark, path, "a merge key (<<) merges a section into itself; "
                                   "point it at another anchor")
                for key, key_node, item in self.entries(source, path, merging + (id(node),)):
                    merged.setdefault(key, (key_node, item))
        for key in own:
            merged.pop(key, None)
        result = ([(key, k, v) for key, (k, v) in merged.items()] +
                  [(key, k, v) for key, (k, v) in own.items()])
        self.merged[id(node)] = result
        return result

    def key(self, key_node: yaml.Node, path: Path_) -> str:
        key = self.scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, (str, int, float, bool)):
            raise _Refused(key_node.start_mark, path, "a key must be a plain word")
        return str(key)

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        if node.style is None and node.tag in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG):
            self.lines.plain[path] = node.value  # what was written, for the YAML 1.1 hints in _describe
        if node.tag == _INT_TAG:
            digits = sum(ch.isalnum() for ch in node.value)
            if digits > MAX_INT_DIGITS:
                raise _Refused(node.start_mark, path, f"a number of {digits:,} digits: no setting takes one "
                               f"longer than {MAX_INT_DIGITS}; quote it if it is text, else shorten it")
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # a date like 2026-13-45, a number Python will not convert
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "…"
            raise _Refused(node.start_mark, path, f"cannot read {shown!r}: {exc}; quote it to keep it as text, "
                           "or correct it") from None


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of ``text[index]``."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _unreadable(text: str, source: str, exc: yaml.reader.ReaderError) -> ConfigError:
    """A character YAML does not allow (NUL, other control characters), with its line and column.

    PyYAML's reader names only an offset in the text ("position 4711").
    """
    line, column = _position(text, exc.position) if isinstance(exc.position, int) else (None, None)
    where = f" at line {line}, column {column}" if line else ""
    character = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
    if character == 0:
        message = (f"the file contains a NUL byte{where}: it is damaged or not text (saved as UTF-16?); "
                   "save it as UTF-8 text, or remove the NUL characters")
    else:
        message = (f"the file contains the control character U+{character:04X}{where}, which YAML does not "
                   "allow; remove it (or write it escaped inside double quotes, e.g. \"\\t\")")
    return ConfigError([Problem(source, line, "", message)])


def _compose(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Python data for ``text`` plus the line of every key path; ConfigError for what cannot be built.

    Every refusal (syntax, nesting, aliases, characters, numbers) is a
    Problem with the line and the fix, never a traceback.
    """
    loader: _BoundedLoader | None = None
    builder: _Builder | None = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses control characters here, before composing
        root = loader.get_single_node()
        if root is None:
            return {}, {}
        builder = _Builder(loader, source)
        return builder.build(root, ()), builder.lines
    except _Refused as exc:
        column = f" (column {exc.mark.column + 1})" if exc.mark is not None and exc.column else ""
        line = exc.mark.line + 1 if exc.mark is not None else (
            _line_for(builder.lines, exc.path) if builder is not None else None)
        raise ConfigError([Problem(source, line, _dotted(exc.path), f"{exc}{column}")]) from None
    except RecursionError:  # a bound above was missed: still an answer, never a traceback
        raise ConfigError([Problem(source, None, "", _too_deep())]) from None
    except yaml.reader.ReaderError as exc:
        raise _unreadable(text, source, exc) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = f" (column {mark.column + 1})" if mark else ""
        raise ConfigError([Problem(source, line, "", f"YAML syntax error: {exc.problem}{column}; "
                                   "check the indentation and quote values that contain ':' or '#'")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(source, None, "", f"YAML error: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


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
    got = f"; got {redact_text(repr(given))}" if not isinstance(given, (dict, list)) else ""
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
    plain = getattr(lines, "plain", {})
    for error in exc.errors():
        loc = _without_union_tags(prefix + tuple(error["loc"]), lines)
        rel = loc[len(prefix):]
        message = _describe(error, model, rel)
        if error["type"] not in ("extra_forbidden", "missing"):
            message += yaml11_hint(plain.get(loc), error.get("input"))
        problem = Problem(source, _line_for(lines, loc), _dotted(loc), message)
        if problem not in out:
            out.append(problem)
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


def _unknown_tenant_references(config: Config, source: str, lines: dict[Path_, int],
                               written: dict[Any, list[str]] | None = None) -> list[Problem]:
    """Every field that names a tenant, host or ticket backend (custode.agent.config_refs) names a defined one.

    ``written``: the names as written in the file, for a config whose sections did not all validate
    (references are then checked in the sections that did, against every name the file defines)."""
    defined = written or {TENANT: config.tenant_ids(), HOST: list(config.hosts),
                          TICKET_BACKEND: list(config.tickets.backends), PROFILE: list(config.profiles)}
    allowed = {TICKET_BACKEND: ("none",)}  # a comune that wants no tickets
    problems = []
    for path, reference, value in references(config):
        known = defined.get(reference)
        if known is None or value in known or value in allowed.get(reference, ()):
            continue
        if path[0] == "hosts":
            path = _host_path(lines, str(path[1])) + path[2:]
        problems.append(_undefined(source, lines, path, reference.kind, value, reference.section, known))
    problems += _device_used_for_commands(config, source, lines)
    problems += [Problem(source, _line_for(lines, ("tickets", "backends", name)), f"tickets.backends.{name}",
                         "an e-mail ticket backend needs an SMTP server: add the top-level smtp: section or "
                         "give this backend its own smtp:")
                 for name, backend in config.tickets.backends.items()
                 if backend.type == "email" and backend.smtp is None and config.smtp is None]
    return problems


def _device_used_for_commands(config: Config, source: str, lines: dict[Path_, int]) -> list[Problem]:
    """An SNMP device named where commands run (an update window, a restore test): it has no shell."""
    problems = []
    for path, reference, value in references(config):
        host = config.hosts.get(value) if reference is HOST else None
        if host is None or host.transport != "snmp" or path[0] in ("hosts", "probes"):
            continue
        problems.append(Problem(source, _line_for(lines, path), _dotted(path),
                                f"host {value!r} is an SNMP device (transport: snmp): it runs no commands, so "
                                "playbooks and restore tests cannot use it; name a host with transport ssh, winrm "
                                "or local"))
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


# --- secrets: never in URLs, present when needed ---------------------------------

SecretFix = Callable[[Path_], str]
_BACKEND_SECRET_FIELDS = {"zendesk": "token", "glpi": "user_token (and app_token)"}
_STORES = "{env: VAR}, {file: PATH} or {keyring: service/user}"


def _strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    """Every string value in composed YAML data, with its key path (the data is already depth-bounded)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + (index,))


def url_secret_problems(data: Any, source: str, lines: dict[Path_, int], fix: SecretFix) -> list[Problem]:
    """A Problem for every credential inside a URL anywhere in the file (userinfo, token=… and the like).

    Every string is looked at, not only fields called ``url``: a restic
    repository, a probe URL or a command template leak a credential just as
    well, and a section added tomorrow is covered too.
    """
    problems = []
    for path, text in _strings(data, ()):
        for url in urls_in(text):
            found = url_secrets(url)
            if found:
                problems.append(Problem(source, _line_for(lines, path), _dotted(path),
                                        f"{' and '.join(found)} in the URL {redact_url(url)!r}: a secret in a URL "
                                        "ends up in logs, error messages and every copy of this file; remove it "
                                        f"from the URL and {fix(path)}"))
    return problems


def _config_secret_fix(data: Any) -> SecretFix:
    """The fix for a credential in a URL of the main config: the secret field of that section."""
    def fix(path: Path_) -> str:
        if len(path) >= 3 and path[:2] == ("tickets", "backends"):
            backends = data.get("tickets", {}).get("backends", {}) if isinstance(data.get("tickets"), dict) else {}
            entry = backends.get(path[2]) if isinstance(backends, dict) else None
            kind = entry.get("type") if isinstance(entry, dict) else None
            if kind == "webhook":
                return ("let the receiver check Custode by the X-Custode-Signature made with the backend's secret "
                        f"field ({_STORES})")
            field_name = _BACKEND_SECRET_FIELDS.get(str(kind), "token")
            return f"use the backend's {field_name} field with {_STORES}"
        if path[:1] == ("restore_tests",) and path[-1:] == ("repository",):
            return ("give the server's login in the service's environment, where restic and borg read it "
                    "(restic: RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD, AWS_* for S3); the repository's "
                    f"own password goes in password: with {_STORES}")
        return f"give the credential in the section's token or password field with {_STORES}"
    return fix


def _secret_path(loaded: LoadedConfig, path: Path_) -> Path_:
    """The path as written: a host under the older ``updates.hosts:`` is named there."""
    if len(path) >= 2 and path[0] == "hosts":
        return _host_path(loaded.lines, str(path[1])) + path[2:]
    return path


def env_secret_problems(loaded: LoadedConfig) -> list[Problem]:
    """A Problem for every ``{env: VAR}`` secret the config uses whose variable is unset or empty here.

    For ``custode config check``: the agent reads most secrets only when it
    first needs them (a helpdesk token at the first ticket), so a missing
    variable would otherwise show days later. Sections switched off
    (``enabled: false``) need none; playbooks' own ``secrets:`` are read when
    their window runs and are not required here.
    """
    problems = []
    for path, ref in secret_refs(loaded.model, in_use=True):
        if ref.env and not os.environ.get(ref.env):
            where = _secret_path(loaded, path)
            problems.append(Problem(loaded.source, _line_for(loaded.lines, where), _dotted(where),
                                    f"environment variable {ref.env} is not set (or is empty); set it in the "
                                    "service's environment (systemd: Environment= or EnvironmentFile=), and in "
                                    "the shell that runs 'custode config check'"))
    return problems


def require_env_secrets(loaded: LoadedConfig) -> None:
    """ConfigError listing every env secret the config needs and this environment lacks."""
    problems = env_secret_problems(loaded)
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: (p.line or 0, p.path)))


def describe_secret_error(loaded: LoadedConfig, exc: SecretError) -> str:
    """``exc`` on one line, led by the config key (and file:line) of the secret when it is one of the config's."""
    if isinstance(exc.ref, SecretRef):
        for path, ref in secret_refs(loaded.model):
            if ref is exc.ref:
                where = _secret_path(loaded, path)
                line = _line_for(loaded.lines, where)
                place = f"{loaded.source}:{line}" if line else loaded.source
                return f"{_dotted(where)} ({place}): {exc}"
    return str(exc)


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
    problems.extend(url_secret_problems(data, source, lines, _config_secret_fix(data)))
    raw_collectors = data.get("collectors") if isinstance(data.get("collectors"), dict) else {}
    plans, collector_problems = _plan_collectors(raw_collectors or {}, source, lines)
    problems.extend(collector_problems)
    if model is not None:
        problems.extend(_cross_checks(model, source, lines))
    elif problems:
        problems.extend(_references_beside_schema_errors(data, source, lines, problems))
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(problems)
    assert model is not None
    return LoadedConfig(model=model, source=source, collectors=plans,
                        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), lines=lines)


def _references_beside_schema_errors(data: dict[str, Any], source: str, lines: dict[Path_, int],
                                      problems: list[Problem]) -> list[Problem]:
    """Wrong tenant, host and backend names in the sections that are valid, reported with the schema errors.

    So one run of ``config check`` lists every mistake, as the README promises, instead of revealing the
    references only once the schema errors are fixed. The sections with schema errors are left out; the
    names they define still count, as written.
    """
    failed = {p.path.split(".")[0].split("[")[0] for p in problems if p.path}
    try:
        partial = Config.model_validate({k: v for k, v in data.items() if k not in failed})
    except ValidationError:
        return []
    def names(section: Any) -> list[str]:
        return [str(k) for k in section] if isinstance(section, dict) else []

    tickets: dict[str, Any] = data["tickets"] if isinstance(data.get("tickets"), dict) else {}
    tenants = names(data.get("tenants")) or list(partial.tenant_ids())
    hosts = names(data.get("hosts")) + names((data.get("updates") or {}).get("hosts")
                                             if isinstance(data.get("updates"), dict) else None)
    written = {TENANT: tenants, HOST: hosts, TICKET_BACKEND: names(tickets.get("backends")),
               PROFILE: names(data.get("profiles"))}
    found = _unknown_tenant_references(partial, source, lines, written)
    return [p for p in found if p not in problems and not p.message.startswith("an e-mail ticket backend")]


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
    """Load ``path``; with None, ``$CUSTODE_CONFIG``, else the default location if it exists, else the
    embedded default.

    ``CUSTODE_CONFIG`` lets a shell (or the service's environment file) say once which config every
    command reads, so ``custode status`` in that shell reads the same state DB as the agent."""
    if path is None and os.environ.get("CUSTODE_CONFIG"):
        path = os.environ["CUSTODE_CONFIG"]
        text = _read(path, "file not found; CUSTODE_CONFIG names it: fix the variable or unset it")
        return load_text(text, str(path))
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
    problems = url_secret_problems(data, source, lines, lambda path: "reference it instead (a playbook: "
                                   "{{ secret.NAME }}, defined under its secrets: with " + _STORES + ")")
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, model, source, lines))
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: (p.line or 0, p.path)))
    return validated, lines


__all__ = ["ConfigError", "CollectorPlan", "LoadedConfig", "Problem", "load", "load_text", "load_model_file",
           "default_config_path", "describe_secret_error", "env_secret_problems", "require_env_secrets",
           "url_secret_problems", "DURATION_HINT"]
