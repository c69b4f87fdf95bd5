"""config/reference.yaml shows every key the config accepts, each with a comment, and no other key.

The reference is written by hand for the sysadmins who read it; this test holds it to the models: the
root model :class:`custode.agent.config.Config` and every model under it (nested sections, mappings and
lists of models, each member of a discriminated union: every ticket backend type, every mailbox type),
plus the options of every built-in collector as the loader validates them (the collector's own
settings and ``enabled``/``interval``/``timeout``, see ``config_loader._entry_model``). Playbooks and
their steps are files of their own, not keys of this file, and are not covered here.

How the reference is read (its conventions):

* ``key: value`` is a key with its default.
* A commented-out key counts as shown: it is an optional key, or an example entry of a section that is
  empty by default. ``#`` in column 0 followed by at least two spaces is YAML shifted right by the
  ``#`` (``#  crema:`` is ``crema:`` indented by two, a key of the section above); ``# key: value``
  indented under a section (``  # data_dir: ...``) is that key at the indentation of the ``#``. A ``#``
  in column 0 followed by a single space is prose (the header), and so is a comment after a key or on a
  line of its own indented below one (``#      # more words``). An indented ``# text`` is read as a key.
* A section that is empty by default shows its default (``tenants: {}``, ``mailboxes: []``,
  ``smtp: null``) with its example entries commented out and indented below it.
* A key's description is the comment after it on its line. The keys of a flow mapping written on one
  line (``retry: {first: 30s, max: 30m}  # ...``) share that line's comment, and a section's comment
  ``# each: enabled (true), interval, timeout ...`` describes those keys of every entry of the section.
  A ``description=`` in the model does not count: the sysadmin reads the file, not the code (the
  failure message quotes it, to help write the comment).

Paths are YAML keys joined by dots (aliases as written: ``for``, ``from``), with ``*`` for a key of a
mapping (a tenant id, a backend name), ``[]`` for a list item and ``(type)`` for the member of a
discriminated union: ``tickets.backends.*(glpi).url``, ``backups.mailboxes[](imap).host``,
``collectors.cpu.interval``. A model used in several places (SecretRef, SmtpSettings, Closure, the backup
priorities) has its keys shown, with comments, in at least one of them; every place shows the key that
holds it.

The rules: every path of the models is in the reference with a comment; every key of the reference is a
path of the models; and the reference with its commented-out keys uncommented still validates, so no
example shows a value the loader would refuse. ``tests/test_config.py`` loads the file as it is.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from custode.agent.config import Config
from custode.agent.config_loader import _entry_model
from custode.collectors.registry import available

REFERENCE = Path(__file__).parent.parent / "config" / "reference.yaml"
FIX = "add it to config/reference.yaml with a comment"

Segments = tuple[str, ...]


def dotted(path: Segments) -> str:
    out = ""
    for part in path:
        out += part if not out or part.startswith(("[", "(")) else f".{part}"
    return out


# --- the models -------------------------------------------------------------------------------------

class _Collectors:
    """Stands for ``Config.collectors`` (``dict[str, Any]``): the loader validates each entry with its model."""


def _collectors() -> dict[str, type[BaseModel]]:
    """Built-in collectors only: a plug-in installed in this environment documents its own options."""
    return {name: _entry_model(cls) for name, cls in available().items()
            if cls.__module__.startswith("custode.collectors.")}


def _annotation(model: type[BaseModel], name: str) -> Any:
    return _Collectors if model is Config and name == "collectors" else model.model_fields[name].annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tag(model: type[BaseModel], discriminator: str) -> str:
    info = model.model_fields.get(discriminator)
    if info is not None and typing.get_origin(info.annotation) is Literal:
        return "|".join(str(value) for value in typing.get_args(info.annotation))
    return model.__name__


def _discriminator(annotation: Any) -> str:
    """The key that picks a union's member: ``Field(discriminator=...)``, else ``type``."""
    if typing.get_origin(annotation) is Annotated:
        return next((extra.discriminator for extra in typing.get_args(annotation)[1:]
                     if isinstance(getattr(extra, "discriminator", None), str)), "type")
    return "type"


def _shape(annotation: Any) -> tuple[str, Any]:
    """What a value of ``annotation`` holds: ("model", [(tag, model)...]), ("list"|"dict", item), or leaf."""
    if annotation is _Collectors:
        return "collectors", None
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    discriminator = _discriminator(annotation)
    if origin is Annotated:
        annotation = arguments[0]
        origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        members = [argument for argument in arguments if argument is not type(None)]
        models = [member for member in members if _is_model(member)]
        if len(models) > 1:
            return "model", [(_tag(model, discriminator), model) for model in models]
        if models:
            return "model", [(None, models[0])]
        return _shape(members[0]) if len(members) == 1 else ("leaf", None)
    if origin in (list, set, frozenset, tuple):
        return "list", arguments[0] if arguments else Any
    if origin is dict:
        return "dict", arguments[1] if arguments else Any
    if _is_model(annotation):
        return "model", [(None, annotation)]
    return "leaf", None


@dataclass(frozen=True)
class Spot:
    """One field at one path. ``owner``+``key`` is the field itself, whatever path leads to it.

    ``needs_comment`` is false for a key that holds a section of keys (its keys are described) and for the
    ``type`` that picks a union member (its value says it all).
    """

    path: Segments
    owner: str
    key: str
    description: str
    needs_comment: bool = True


def model_spots(model: type[BaseModel], prefix: Segments = (), stack: tuple[type, ...] = (),
                discriminator: str | None = None) -> Iterator[Spot]:
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = (*prefix, key)
        annotation = _annotation(model, name)
        plain = key != discriminator and _shape(annotation)[0] != "model"
        yield Spot(path, model.__qualname__, key, info.description or "", plain)
        yield from _spots_in(annotation, path, (*stack, model))


def _spots_in(annotation: Any, path: Segments, stack: tuple[type, ...]) -> Iterator[Spot]:
    kind, detail = _shape(annotation)
    if kind == "collectors":
        for name, entry in _collectors().items():
            yield Spot((*path, name), "collectors", name, available()[name].description, False)
            yield from model_spots(entry, (*path, name), stack)
    elif kind == "model":
        discriminator = _discriminator(annotation)
        for tag, member in detail:
            if member not in stack:
                yield from model_spots(member, (*path, f"({tag})") if tag else path, stack,
                                       discriminator if tag else None)
    elif kind == "list":
        yield from _spots_in(detail, (*path, "[]"), stack)
    elif kind == "dict":
        yield from _spots_in(detail, (*path, "*"), stack)


# --- the reference ----------------------------------------------------------------------------------

_SHIFTED = re.compile(r"^#(?=  )")                 # "#  crema:"        -> "  crema:"
_INDENTED = re.compile(r"^(?P<indent>\s+)# (?=\S)")  # "  # data_dir: x"  -> "  data_dir: x"
_EMPTY = re.compile(r"^(?P<key>\s*(?:- )?[^\s#][^#]*?:)[ \t]+(?:\{\}|\[\]|null)(?P<rest>\s+#.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def uncomment(text: str) -> str:
    """The reference with its commented-out keys as keys, line for line (same line numbers)."""
    lines = [line[1:] if _SHIFTED.match(line) else _INDENTED.sub(r"\g<indent>", line, count=1)
             for line in text.splitlines()]
    for number, line in enumerate(lines):
        empty = _EMPTY.match(line)
        if not empty:
            continue
        below = next((later for later in lines[number + 1:]
                      if later.strip() and not later.lstrip().startswith("#")), "")
        if _indent(below) > _indent(line):  # its example entries follow: the placeholder is not YAML's value
            lines[number] = empty["key"] + (empty["rest"] or "")
    return "\n".join(lines) + "\n"


def line_comments(text: str) -> dict[int, str]:
    """Line number -> the comment after the last YAML token on that line."""
    ends: dict[int, int] = {}
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if token.start_mark.index != token.end_mark.index:  # block starts/ends and keys are zero-width
            ends[token.end_mark.line] = max(ends.get(token.end_mark.line, 0), token.end_mark.column)
    lines = text.splitlines()
    comments = {}
    for line, column in ends.items():
        rest = lines[line][column:].strip()
        if rest.startswith("#") and rest.lstrip("#").strip():
            comments[line + 1] = rest.lstrip("#").strip()
    return comments


@dataclass
class Reference:
    """What the reference shows: model path -> lines, each line's comment, and the keys no model has."""

    shown: dict[Segments, list[int]] = field(default_factory=dict)
    comments: dict[int, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    def read(self, node: yaml.Node, annotation: Any, path: Segments, where: str) -> None:
        kind, detail = _shape(annotation)
        if kind == "model" and isinstance(node, yaml.MappingNode):
            self._model(node, detail, path, where, _discriminator(annotation))
        elif kind == "list" and isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.read(item, detail, (*path, "[]"), f"{where}[{index}]")
        elif kind == "dict" and isinstance(node, yaml.MappingNode):
            for key, value in self._entries(node, where):
                self.read(value, detail, (*path, "*"), f"{where}.{key.value}")
        elif kind == "collectors" and isinstance(node, yaml.MappingNode):
            known = _collectors()
            for key, value in self._entries(node, where):
                if key.value not in known:
                    self._unknown(key, f"{where}.{key.value}", f"no built-in collector is called {key.value!r}")
                    continue
                self._show((*path, key.value), key)
                self._model(value, [(None, known[key.value])], (*path, key.value), f"{where}.{key.value}")

    def _model(self, node: yaml.Node, members: list[tuple[str | None, type[BaseModel]]], path: Segments,
               where: str, discriminator: str = "type") -> None:
        if not isinstance(node, yaml.MappingNode):
            return  # a scalar for a model: a closure day, a collector's true/false
        tag, model = members[0]
        if len(members) > 1:
            given = next((value.value for key, value in node.value if key.value == discriminator), None)
            chosen = [(tag, model) for tag, model in members if tag and str(given) in tag.split("|")]
            if not chosen:
                self._unknown(node, where, f"{discriminator} {given!r} is none of "
                                           f"{', '.join(t or '' for t, _ in members)}")
                return
            tag, model = chosen[0]
            path = (*path, f"({tag})")
        keys = {info.alias or name: name for name, info in model.model_fields.items()}
        for key, value in self._entries(node, where):
            if key.value not in keys:
                self._unknown(key, f"{where}.{key.value}", f"{model.__name__} has no field {key.value!r}")
                continue
            self._show((*path, key.value), key)
            self.read(value, _annotation(model, keys[key.value]), (*path, key.value), f"{where}.{key.value}")

    def _entries(self, node: yaml.MappingNode, where: str) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """The mapping's keys and values; a key written twice (once commented out, say) is reported."""
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                self._unknown(key, f"{where}.{key.value}", "shown twice in the same section; the loader refuses "
                                                          "a duplicate key")
                continue
            seen.add(key.value)
            yield key, value

    def _show(self, path: Segments, key: yaml.Node) -> None:
        self.shown.setdefault(path, []).append(key.start_mark.line + 1)

    def _unknown(self, node: yaml.Node, where: str, why: str) -> None:
        self.unknown.append(f"line {node.start_mark.line + 1}: {where.lstrip('.')} ({why})")

    def each(self, path: Segments) -> set[str]:
        """The keys an ``# each: a (default), b; more words`` comment at ``path`` names for every entry."""
        for line in self.shown.get(path, ()):
            comment = self.comments.get(line, "")
            if comment.startswith("each:"):
                listed = re.sub(r"\([^)]*\)", "", comment[len("each:"):].split(";")[0])
                return {word.strip() for word in listed.split(",") if word.strip()}
        return set()

    def shows(self, path: Segments) -> bool:
        """The key is written (perhaps commented out), or named by the ``each:`` comment of its section."""
        return path in self.shown or (len(path) > 2 and path[:-1] in self.shown and path[-1] in self.each(path[:-2]))

    def described(self, path: Segments) -> bool:
        """A comment on one of the key's lines, or the key is named by its section's ``each:`` comment."""
        if any(line in self.comments for line in self.shown.get(path, ())):
            return True
        return len(path) > 2 and path[:-1] in self.shown and path[-1] in self.each(path[:-2])


def read_reference(text: str) -> Reference:
    known = {spot.path for spot in model_spots(Config)}
    plain = uncomment(text)
    try:
        reference = Reference(comments=line_comments(plain))
        root = yaml.compose(plain, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        pytest.fail(f"config/reference.yaml with its commented-out keys uncommented is not YAML: {exc}; keep "
                    "commented-out keys indented as they would be in the file (see the conventions in "
                    "tests/test_reference_yaml.py)")
    if root is not None:
        reference.read(root, Config, (), "")
    for section in list(reference.shown):  # an each: comment names keys that every entry of the section has
        entries = [path for path in reference.shown if path[:-1] == section]
        for key in sorted(reference.each(section)):
            for entry in entries:
                if (*entry, key) not in known:
                    reference.unknown.append(f"line {reference.shown[section][0]}: {dotted(section)}: each: names "
                                             f"{key!r}, which {dotted(entry)} does not have")
    return reference


# --- the rules --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def spots() -> list[Spot]:
    return list(model_spots(Config))


@pytest.fixture(scope="module")
def reference() -> Reference:
    return read_reference(REFERENCE.read_text(encoding="utf-8"))


def _fields(spots: list[Spot]) -> dict[tuple[str, str], list[Spot]]:
    """Each field with every path it is reached by (several when its model is used in several places)."""
    fields: dict[tuple[str, str], list[Spot]] = {}
    for spot in spots:
        fields.setdefault((spot.owner, spot.key), []).append(spot)
    return fields


def test_the_walk_reaches_every_kind_of_field(spots: list[Spot]) -> None:
    paths = {dotted(spot.path) for spot in spots}
    for expected in ("agent.listen", "checks.cpu.for", "tenants.*.tickets.backend", "collectors.cpu.interval",
                     "collectors.filesystem.mount_timeout", "tickets.backends.*(glpi).url",
                     "tickets.backends.*(email).smtp.host", "tickets.sla.*.take_charge",
                     "backups.mailboxes[](imap).host", "backups.mailboxes[](maildir|mbox).path",
                     "backups.expected.*[].priority.missing", "calendar.closures[].from",
                     "hosts.*.ssh.password.env", "restore_tests.sets.*.command.restore"):
        assert expected in paths
    assert len(paths) == len(spots), "two fields reached by the same path"


def test_every_config_key_is_in_the_reference(spots: list[Spot], reference: Reference) -> None:
    missing = []
    for group in _fields(spots).values():
        if not any(reference.shows(spot.path) for spot in group):
            said = f" (the model says: {group[0].description})" if group[0].description else ""
            where = " or ".join(dotted(spot.path) for spot in group[:2]) + (" or …" if len(group) > 2 else "")
            missing.append(f"  {where}: {FIX}{said}")
    assert not missing, (f"config/reference.yaml does not show {len(missing)} config key(s); commented out if "
                         "optional or part of an example entry:\n" + "\n".join(missing))


def test_every_key_in_the_reference_has_a_comment(spots: list[Spot], reference: Reference) -> None:
    bare = []
    for group in _fields(spots).values():
        shown = [spot for spot in group if spot.path in reference.shown]
        if shown and shown[0].needs_comment and not any(reference.described(spot.path) for spot in shown):
            said = f" (the model says: {shown[0].description})" if shown[0].description else ""
            bare.append(f"  line {reference.shown[shown[0].path][0]}: {dotted(shown[0].path)} has no comment "
                        f"saying what it does: {FIX} after the key{said}")
    assert not bare, f"{len(bare)} key(s) of config/reference.yaml are not described:\n" + "\n".join(bare)


def test_every_key_in_the_reference_is_a_config_key(reference: Reference) -> None:
    unknown = reference.unknown
    assert not unknown, "config/reference.yaml shows keys the config loader rejects; fix or remove them:\n  " + \
        "\n  ".join(unknown)


def test_the_commented_out_examples_are_valid() -> None:
    data = yaml.safe_load(uncomment(REFERENCE.read_text(encoding="utf-8"))) or {}
    data = {key: value for key, value in data.items() if value is not None}  # as the loader does
    problems = []
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        problems.append(str(exc))
    for name, entry in (data.get("collectors") or {}).items():
        if name in _collectors() and isinstance(entry, dict):
            try:
                _collectors()[name].model_validate(entry)
            except ValidationError as exc:
                problems.append(f"collectors.{name}: {exc}")
    assert not problems, ("config/reference.yaml, its examples uncommented, is not a valid config; fix the "
                          "example values:\n" + "\n".join(problems))


def test_the_reader_follows_the_conventions() -> None:
    text = ("# prose: not a key\n"
            "agent:\n"
            "  listen: ':1'       # where\n"
            "  # data_dir: /x     # optional\n"
            "tenants: {}          # id -> tenant\n"
            "#  crema:\n"
            "#    name: Crema\n"
            "#    nickname: x     # no such field\n"
            "checks:              # each: enabled (true), for (how long)\n"
            "  cpu: {for: 5m, warning_percent: 90}\n"
            "tickets:\n"
            "  retry: {first: 30s, max: 30m}   # backoff\n")
    read = read_reference(text)
    assert {dotted(path) for path in read.shown} == {
        "agent", "agent.listen", "agent.data_dir", "tenants", "tenants.*.name", "checks", "checks.cpu",
        "checks.cpu.for", "checks.cpu.warning_percent", "tickets", "tickets.retry", "tickets.retry.first",
        "tickets.retry.max"}
    assert read.unknown == ["line 8: tenants.crema.nickname (Tenant has no field 'nickname')"]
    described = {dotted(path) for path in read.shown if read.described(path)}
    assert described == {"agent.listen", "agent.data_dir", "tenants", "checks",
                         "checks.cpu.for", "tickets.retry", "tickets.retry.first", "tickets.retry.max"}
