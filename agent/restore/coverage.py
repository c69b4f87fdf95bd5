"""Coverage check: what lives on a host's data volumes that no backup set includes.

A backup job that runs green every night says nothing about the folder a new
application created last month: nobody added it to the set. The contracts ask
for a yearly list of what is backed up, so this module compares the paths a
backup set includes (from the tool's own snapshot paths, or from the config)
with what a bounded scan of the data volumes finds:

- the *data folders* (by default the top-level folders of each volume),
- *application directories* matched by glob patterns anywhere in the scan,
- *database files* (``*.mdf``, ``*.fdb``, ...) that no included path covers,
  listed one by one with their size, because those are what a comune misses most.

A folder of which only a sub-folder is backed up is reported as *not*
protected, naming the parts that are missing: "the backup has something of it"
is exactly the situation in which data gets lost unnoticed.

Path logic is pure and OS-independent (a Linux agent judges Windows paths that
a WinRM scanner returns): ``/srv/data`` never covers ``/srv/database``, Windows
paths compare case-insensitively with ``\\`` or ``/``, and restic's way of
recording ``D:\\Dati`` (``/D/Dati``) is understood.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import io
import itertools
import os
import re
import stat
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import IO

from custode.agent.clock import ROME
from custode.agent.restore.model import CoverageKind

DEFAULT_DATABASE_PATTERNS: list[str] = ["*.mdf", "*.ndf", "*.ldf", "*.bak", "*.fdb", "*.gdb", "*.ibd", "*.sqlite",
                                        "*.db", "*.accdb", "*.mdb"]
NOT_DATABASES = frozenset({"thumbs.db", "ehthumbs.db", "ehthumbs_vista.db"})
"""Windows Explorer thumbnail caches match ``*.db`` in every picture folder; listing them would drown real ones."""

CSV_COLUMNS = ["tenant", "set", "path", "kind", "protected", "covered_by", "size_bytes", "files", "newest_mtime",
               "reason"]
_MAX_NAMES = 5
"""How many missing parts a reason names before saying "and N more"."""
_REPARSE_POINT = 0x400
"""FILE_ATTRIBUTE_REPARSE_POINT: a junction or mounted folder on Windows; not followed, like a symlink."""


class CoverageError(Exception):
    """A volume could not be scanned at all; ``str()`` names the volume and the fix."""


# --------------------------------------------------------------------------- rules and results


@dataclass
class CoverageRules:
    volumes: list[str]
    """Data roots to scan: ``["/srv", "/var/lib/vendor"]`` or ``["D:\\\\", "E:\\\\"]`` (one OS per rule set)."""
    depth: int = 1
    """Which folder level counts as one data folder: 1 = the top-level folders of each volume."""
    application_dirs: list[str] = field(default_factory=list)
    """Globs of application directories below the volumes (``*/Sicraweb*``, ``opt/halley*``); matched against the
    path relative to its volume and against the absolute path."""
    database_patterns: list[str] = field(default_factory=lambda: list(DEFAULT_DATABASE_PATTERNS))
    """Globs of database file names (case-insensitive); a pattern with a separator is matched against the path."""
    exclude: list[str] = field(default_factory=list)
    """Globs of paths deliberately not backed up (``/srv/tmp``, ``*/cache``): neither scanned nor reported missing."""
    max_depth: int = 6
    """How many folder levels below each volume the scan lists."""
    max_entries: int = 200_000
    """How many entries the scan lists in total (shared among the volumes); the report says when it was hit."""


@dataclass
class CoverageItem:
    path: str
    """In the host's own syntax (``/srv/app``, ``D:\\\\Dati``)."""
    kind: CoverageKind
    protected: bool
    covered_by: str | None
    """The included path that covers it; for a partly covered folder, the included sub-paths joined by ``"; "``."""
    size_bytes: int | None
    """For a partly covered folder: the bytes that are *not* backed up. Counts only what the scan reached."""
    files: int | None
    newest_mtime: float | None
    """Newest file modification time (seconds since the epoch) among the files counted."""
    reason: str


@dataclass
class CoverageReport:
    """One backup set against one host; the caller adds the tenant and set names."""

    items: list[CoverageItem]
    included: list[str]
    """The included paths, normalised to the host's syntax."""
    excluded: list[str]
    """Existing paths skipped because an exclude rule matched them (outermost only)."""
    truncated: bool
    """True when ``max_entries`` stopped the scan: folders or files may be missing from the report."""
    errors: list[str]
    excluded_by: dict[str, str] = field(default_factory=dict)
    """Excluded path -> the exclude rule that matched it."""

    @property
    def protected(self) -> list[CoverageItem]:
        return [item for item in self.items if item.protected]

    @property
    def unprotected(self) -> list[CoverageItem]:
        return [item for item in self.items if not item.protected]


# --------------------------------------------------------------------------- path semantics

_DRIVE = re.compile(r"^([A-Za-z]):(?:[\\/]|$)")
_RESTIC_DRIVE = re.compile(r"^/([A-Za-z])(?:/|$)")
_UNC = re.compile(r"^[\\/]{2}(?![?.][\\/])([^\\/]+)[\\/]+([^\\/]+)")
_SEPARATORS = re.compile(r"[\\/]+")


@dataclass(frozen=True)
class HostPath:
    """An absolute path on the scanned host, compared component by component.

    ``root`` is ``""`` on POSIX, ``"D:"`` for a Windows drive or ``\\\\server\\share``
    for a UNC path. Comparing components (not string prefixes) is what keeps
    ``/srv/data`` from covering ``/srv/database``.
    """

    root: str
    parts: tuple[str, ...]
    windows: bool

    @functools.cached_property
    def key(self) -> tuple[str, ...]:
        """What equality and coverage compare (computed once: the check asks for it per node and include)."""
        if self.windows:
            return (self.root.casefold(), *(part.casefold() for part in self.parts))
        return (self.root, *self.parts)

    def is_within(self, other: HostPath) -> bool:
        """True when ``self`` equals ``other`` or lies below it."""
        mine, theirs = self.key, other.key
        return len(mine) >= len(theirs) and mine[:len(theirs)] == theirs

    def child(self, name: str) -> HostPath:
        return HostPath(self.root, (*self.parts, name), self.windows)

    def relative_to(self, other: HostPath) -> str:
        """``self`` below ``other`` in host syntax; ``"."`` for the same path."""
        rest = self.parts[len(other.parts):]
        return (("\\" if self.windows else "/").join(rest)) or "."

    def match_text(self) -> str:
        """The text globs are matched against: ``/`` separators, case-folded on Windows."""
        if not self.windows:
            return "/" + "/".join(self.parts)
        root = self.root.replace("\\", "/")
        return "/".join((root, *self.parts)).casefold() if self.parts else (root + "/").casefold()

    def __str__(self) -> str:
        if not self.windows:
            return "/" + "/".join(self.parts)
        if self.root.endswith(":"):
            return self.root + "\\" + "\\".join(self.parts)
        return "\\".join((self.root, *self.parts))


def looks_windows(path: str) -> bool:
    """A drive-letter or UNC path: the volumes of a Windows host."""
    return bool(_DRIVE.match(path) or _UNC.match(path) or path.startswith(("\\\\?\\", "//?/")))


def parse_path(text: str, windows: bool) -> HostPath:
    """Normalise an absolute path of a POSIX or Windows host.

    Windows accepts ``D:\\Dati``, ``d:/dati/``, restic's ``/D/Dati``, ``\\\\?\\D:\\Dati`` and UNC paths.
    On POSIX a path without a leading ``/`` is read from the root, because borg records ``srv/data``
    for ``/srv/data``. ``.`` and ``..`` are resolved lexically. Raises ``ValueError`` naming the path.
    """
    raw = text.strip()
    if not raw:
        raise ValueError("an empty path cannot be checked; remove it from the backup set's paths")
    if not windows:
        return HostPath("", _clean(raw.split("/"), raw), False)
    if raw.startswith(("\\\\?\\", "//?/")):
        raw = raw[4:]
        if raw[:4].upper() in ("UNC\\", "UNC/"):
            raw = "\\\\" + raw[4:]
    if match := _DRIVE.match(raw):
        root, rest = match.group(1).upper() + ":", raw[2:]
    elif match := _RESTIC_DRIVE.match(raw):
        root, rest = match.group(1).upper() + ":", raw[2:]
    elif match := _UNC.match(raw):
        root, rest = f"\\\\{match.group(1)}\\{match.group(2)}", raw[match.end():]
    else:
        raise ValueError(f"{text!r} is not an absolute Windows path (expected D:\\folder, /D/folder as restic writes "
                         "it, or \\\\server\\share)")
    return HostPath(root, _clean(_SEPARATORS.split(rest), text), True)


def _clean(parts: Iterable[str], original: str) -> tuple[str, ...]:
    result: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not result:
                raise ValueError(f"{original!r} climbs above the root with '..'; write the absolute path")
            result.pop()
        else:
            result.append(part)
    return tuple(result)


def path_covers(included: str, path: str, windows: bool | None = None) -> bool:
    """True when backing up ``included`` backs up ``path`` (equal to it or below it)."""
    if windows is None:
        windows = looks_windows(included) or looks_windows(path)
    return parse_path(path, windows).is_within(parse_path(included, windows))


class _Globs:
    """Exclude, application and database patterns with the host's case rules.

    Each list is compiled into one regular expression, because the check asks
    every scanned entry (up to ``max_entries``) and only the rare hit needs to
    know which rule matched.
    """

    def __init__(self, rules: CoverageRules, windows: bool) -> None:
        self.windows = windows
        self.exclude = [(rule, self._pattern(rule)) for rule in rules.exclude]
        self.applications = [(rule, self._pattern(rule)) for rule in rules.application_dirs]
        patterns = [(rule, rule.strip().replace("\\", "/").casefold()) for rule in rules.database_patterns]
        self.database_names = [(rule, pattern) for rule, pattern in patterns if "/" not in pattern]
        self.database_paths = [(rule, pattern) for rule, pattern in patterns if "/" in pattern]
        self._exclude = _compile(self.exclude)
        self._applications = _compile(self.applications)
        self._database_names = _compile(self.database_names)
        self._database_paths = _compile(self.database_paths)

    def _pattern(self, rule: str) -> str:
        pattern = rule.strip().replace("\\", "/") if self.windows else rule.strip()
        if self.windows and (match := _RESTIC_DRIVE.match(pattern)):
            pattern = match.group(1) + ":" + pattern[2:]
        if len(pattern) > 1:
            pattern = pattern.rstrip("/") or "/"
        return pattern.casefold() if self.windows else pattern

    def _texts(self, path: HostPath, volume: HostPath) -> tuple[str, str]:
        relative = "/".join(path.parts[len(volume.parts):])
        return path.match_text(), relative.casefold() if self.windows else relative

    @staticmethod
    def _first(rules: list[tuple[str, str]], *texts: str) -> str | None:
        return next((rule for rule, pattern in rules if any(fnmatchcase(text, pattern) for text in texts)), None)

    def excluded_by(self, path: HostPath, volume: HostPath) -> str | None:
        if self._exclude is None:
            return None
        texts = self._texts(path, volume)
        if not any(self._exclude.match(text) for text in texts):
            return None
        return self._first(self.exclude, *texts)

    def is_application(self, path: HostPath, volume: HostPath) -> bool:
        return self._applications is not None and any(
            self._applications.match(text) for text in self._texts(path, volume))

    def database_rule(self, path: HostPath, volume: HostPath) -> str | None:
        name = path.parts[-1].casefold() if path.parts else ""
        if name in NOT_DATABASES:
            return None
        if self._database_names is not None and self._database_names.match(name):
            return self._first(self.database_names, name)
        if self._database_paths is not None:
            texts = tuple(text.casefold() for text in self._texts(path, volume))
            if any(self._database_paths.match(text) for text in texts):
                return self._first(self.database_paths, *texts)
        return None


def _compile(rules: list[tuple[str, str]]) -> re.Pattern[str] | None:
    if not rules:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(pattern)})" for _, pattern in rules))


# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True, slots=True)
class ScanEntry:
    path: str
    """Relative to the scanned volume, ``/``-separated, whatever the host's OS."""
    is_dir: bool
    size: int = 0
    mtime: float = 0.0


@dataclass
class ScanResult:
    entries: list[ScanEntry] = field(default_factory=list)
    truncated: bool = False
    """The entry budget ran out; some folders were not (fully) listed."""
    unexplored: list[str] = field(default_factory=list)
    """Relative paths of non-empty folders whose content was not (fully) listed (depth or entry limit)."""
    errors: list[str] = field(default_factory=list)


class Scanner(ABC):
    """Lists a volume of the host being checked; a remote scanner (one PowerShell call per volume) fits here."""

    @abstractmethod
    def scan(self, volume: str, max_depth: int, max_entries: int,
             prune: Callable[[str], bool] | None = None) -> ScanResult:
        """List up to ``max_entries`` entries down to ``max_depth`` levels below ``volume``, breadth first
        (so a budget that runs out costs the deepest levels, not a whole top-level folder).

        ``prune(relative_path)`` true means: list this folder but do not look inside (an excluded path);
        a scanner may ignore it, the check filters again. Raises ``CoverageError`` when the volume itself
        cannot be read; unreadable sub-folders go to ``errors``. Symlinks and junctions are not followed.
        """


class LocalScanner(Scanner):
    """The machine Custode runs on, with ``os.scandir``."""

    def scan(self, volume: str, max_depth: int, max_entries: int,
             prune: Callable[[str], bool] | None = None) -> ScanResult:
        if not os.path.isdir(volume):
            raise CoverageError(f"volume {volume} does not exist or is not a folder on this host; fix 'volumes' in "
                                "the coverage rules or mount it")
        result = ScanResult()
        queue: deque[tuple[str, str, int]] = deque([(volume, "", 0)])
        while queue:
            folder, relative, depth = queue.popleft()
            try:
                with os.scandir(folder) as iterator:
                    # never hold more than the budget: a folder of a million files must not fill memory
                    room = max_entries - len(result.entries) + 1
                    children = sorted(itertools.islice(iterator, room), key=lambda entry: entry.name)
            except OSError as exc:
                if not relative:
                    raise CoverageError(f"volume {volume} cannot be read: {exc.strerror or exc}; give the Custode "
                                        "service account read access to it") from exc
                result.errors.append(f"{folder}: {exc.strerror or exc}")
                continue
            for entry in children:
                if len(result.entries) >= max_entries:
                    result.truncated = True
                    result.unexplored.append(relative)
                    result.unexplored.extend(rel for _, rel, _ in queue)
                    return result
                child = f"{relative}/{entry.name}" if relative else entry.name
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    result.errors.append(f"{entry.path}: {exc.strerror or exc}")
                    continue
                if stat.S_ISDIR(info.st_mode):
                    result.entries.append(ScanEntry(child, True, 0, info.st_mtime))
                    if getattr(info, "st_file_attributes", 0) & _REPARSE_POINT or (prune and prune(child)):
                        continue
                    if depth + 1 < max_depth:
                        queue.append((entry.path, child, depth + 1))
                    elif _has_entries(entry.path):
                        result.unexplored.append(child)
                elif stat.S_ISREG(info.st_mode):
                    result.entries.append(ScanEntry(child, False, info.st_size, info.st_mtime))
                # symlinks, sockets, devices: not data a backup set is expected to hold
        return result


def _has_entries(folder: str) -> bool:
    """Whether a folder at the depth limit holds anything (an unreadable one counts as holding something)."""
    try:
        with os.scandir(folder) as iterator:
            return next(iterator, None) is not None
    except OSError:
        return True


class StaticScanner(Scanner):
    """A listing fetched beforehand (one remote call per volume, or a test), served with the same bounds.

    ``listings`` is keyed by the volume as the check passes it: normalised (``/srv``, ``D:\\``).
    """

    def __init__(self, listings: dict[str, list[ScanEntry]]) -> None:
        self.listings = listings

    def scan(self, volume: str, max_depth: int, max_entries: int,
             prune: Callable[[str], bool] | None = None) -> ScanResult:
        if volume not in self.listings:
            raise CoverageError(f"volume {volume} was not listed on the host; fix 'volumes' in the coverage rules")
        result = ScanResult()
        ordered = sorted(self.listings[volume], key=lambda entry: (entry.path.count("/"), entry.path))
        pruned: list[str] = []
        unexplored: set[str] = set()
        for entry in ordered:
            parts = [part for part in entry.path.split("/") if part]
            if not parts or len(parts) > max_depth:
                if len(parts) > max_depth and (cut := "/".join(parts[:max_depth])) not in unexplored:
                    unexplored.add(cut)
                    result.unexplored.append(cut)
                continue
            if any(entry.path.startswith(prefix + "/") for prefix in pruned):
                continue
            if len(result.entries) >= max_entries:
                result.truncated = True
                result.unexplored.append("/".join(parts[:-1]))
                break
            result.entries.append(entry)
            if entry.is_dir and prune and prune(entry.path):
                pruned.append(entry.path)
        return result


# --------------------------------------------------------------------------- the check


@dataclass
class _Stats:
    files: int = 0
    size: int = 0
    newest: float | None = None
    incomplete: bool = False

    def add(self, other: _Stats) -> None:
        self.files += other.files
        self.size += other.size
        if other.newest is not None and (self.newest is None or other.newest > self.newest):
            self.newest = other.newest
        self.incomplete = self.incomplete or other.incomplete


@dataclass(eq=False)
class _Node:
    path: HostPath
    is_dir: bool
    size: int = 0
    mtime: float | None = None
    children: dict[str, _Node] = field(default_factory=dict)
    opened: bool = True
    excluded_by: str | None = None
    stats: _Stats | None = None

    def sorted_children(self) -> list[_Node]:
        return [self.children[key] for key in sorted(self.children)]


def _build_tree(volume: HostPath, result: ScanResult) -> _Node:
    root = _Node(volume, True)

    def locate(relative: str, create: bool) -> _Node | None:
        node = root
        for name in (part for part in relative.split("/") if part):
            key = name.casefold() if volume.windows else name
            child = node.children.get(key)
            if child is None:
                if not create:
                    return None
                child = node.children[key] = _Node(node.path.child(name), True)
            node = child
        return node

    for entry in result.entries:
        node = locate(entry.path, create=True)
        if node is root or node is None:
            continue
        node.is_dir, node.size, node.mtime = entry.is_dir, entry.size, entry.mtime
    for relative in result.unexplored:
        if (node := locate(relative, create=False)) is not None and node.is_dir:
            node.opened = False
    return root


def _stats(node: _Node) -> _Stats:
    """Files, bytes and newest mtime below ``node``, excluded parts left out (iterative: trees can be deep)."""
    pending = [(node, False)]
    while pending:
        current, children_done = pending.pop()
        if current.stats is not None:
            continue
        if not current.is_dir:
            current.stats = _Stats(1, current.size, current.mtime)
        elif children_done:
            current.stats = _Stats(incomplete=not current.opened)
            for child in current.children.values():
                if not child.excluded_by and child.stats is not None:
                    current.stats.add(child.stats)
        else:
            pending.append((current, True))
            pending.extend((child, False) for child in current.children.values() if not child.excluded_by)
    assert node.stats is not None
    return node.stats


class _Check:
    """One volume of one report: classifies the scanned tree against the included paths."""

    def __init__(self, root: _Node, included: list[HostPath], globs: _Globs, rules: CoverageRules,
                 truncated: bool) -> None:
        self.root = root
        self.volume = root.path
        self.included = included
        self.globs = globs
        self.rules = rules
        self.truncated = truncated
        self.excluded: list[_Node] = []
        self.included_keys = {path.key: path for path in included}
        self.ancestors = {path.key[:length] for path in included for length in range(1, len(path.key))}
        """Keys of every folder that has an included path strictly below it."""

    def mark_excluded(self) -> None:
        stack = list(self.root.children.values())
        while stack:
            node = stack.pop()
            if rule := self.globs.excluded_by(node.path, self.volume):
                node.excluded_by = rule
                self.excluded.append(node)
            else:
                stack.extend(node.children.values())

    def covering(self, path: HostPath) -> HostPath | None:
        """The outermost included path that covers ``path``."""
        key = path.key
        for length in range(1, len(key) + 1):
            if (found := self.included_keys.get(key[:length])) is not None:
                return found
        return None

    def inner(self, path: HostPath) -> list[HostPath]:
        """Included paths strictly below ``path``: it is backed up only in part."""
        return [inc for inc in self.included if inc.is_within(path) and inc.key != path.key]

    def missing(self, node: _Node) -> list[_Node]:
        """The outermost parts of ``node`` that no included path covers."""
        if node.excluded_by or self.covering(node.path):
            return []
        if node.path.key not in self.ancestors or not node.is_dir or not node.opened:
            return [node]  # an unopened folder: which part the include covers cannot be told, so it counts
        return [part for child in node.sorted_children() for part in self.missing(child)]

    def items(self) -> list[CoverageItem]:
        """One walk: application directories (outermost match), data folders at ``rules.depth``, and
        database files that no included path covers."""
        self.mark_excluded()
        items: list[CoverageItem] = []
        stack: list[tuple[_Node, int, bool]] = [(self.root, 0, False)]
        while stack:
            node, level, inside_application = stack.pop()
            if node.excluded_by:
                continue
            if not node.is_dir:
                rule = self.globs.database_rule(node.path, self.volume)
                if rule and not self.covering(node.path):
                    items.append(CoverageItem(
                        str(node.path), CoverageKind.DATABASE, False, None, node.size, 1, node.mtime,
                        f"database file (pattern {rule}) that no included path covers"))
                continue
            is_application = (level > 0 and not inside_application
                              and self.globs.is_application(node.path, self.volume))
            if is_application:
                items.append(self.judge(node, CoverageKind.APPLICATION))
            elif level == self.rules.depth:
                items.append(self.judge(node, CoverageKind.FOLDER))
            stack.extend((child, level + 1, inside_application or is_application)
                         for child in node.children.values())
        return items

    def judge(self, node: _Node, kind: CoverageKind) -> CoverageItem:
        stats = _stats(node)
        excluded = [part for part in self.excluded if part.path.is_within(node.path)]
        excluded_note = ("; deliberately excluded: " + _names(excluded, node.path)) if excluded else ""
        if cover := self.covering(node.path):
            reason = ("included in the backup set" if cover.key == node.path.key
                      else f"backed up as part of {cover}")
            return self._item(node, kind, True, str(cover), stats, reason + excluded_note)
        inner = self.inner(node.path)
        if not inner:
            reason = "not in the backup set: no included path covers it"
            if stats.files == 0 and not stats.incomplete:
                reason += " (it holds no files yet)"
            return self._item(node, kind, False, None, stats, reason + excluded_note)
        covered_by = "; ".join(str(inc) for inc in inner)
        inner_names = ", ".join(inc.relative_to(node.path) for inc in inner)
        missing = self.missing(node)
        if not missing:
            return self._item(node, kind, True, covered_by, stats,
                              f"backed up through its parts {inner_names}" + excluded_note)
        lost = _Stats()
        for part in missing:
            lost.add(_stats(part))
        reason = (f"only partly backed up: {inner_names} included, but not {_names(missing, node.path)}; "
                  "size and files count what is not backed up")
        return self._item(node, kind, False, covered_by, lost, reason + excluded_note)

    def _item(self, node: _Node, kind: CoverageKind, protected: bool, covered_by: str | None, stats: _Stats,
              reason: str) -> CoverageItem:
        if self.truncated:
            reason += (f"; the scan stopped at max_entries {self.rules.max_entries}, so figures are a lower bound "
                       "and folders may be missing from this list")
        elif stats.incomplete:
            reason += (f"; the scan lists {self.rules.max_depth} levels (max_depth), so figures count only the "
                       "files down to there")
        return CoverageItem(str(node.path), kind, protected, covered_by, stats.size, stats.files, stats.newest,
                            reason)


def _names(nodes: list[_Node], parent: HostPath) -> str:
    names = [node.path.relative_to(parent) for node in nodes[:_MAX_NAMES]]
    more = len(nodes) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _validate(rules: CoverageRules) -> bool:
    """Raise ``ValueError`` for rules that cannot work; return whether the volumes are Windows paths."""
    if not rules.volumes:
        raise ValueError("coverage rules list no volumes: add the data roots to scan, e.g. volumes: [/srv]")
    if rules.depth < 1:
        raise ValueError(f"coverage depth {rules.depth} must be 1 (top-level folders) or more")
    if rules.max_depth < rules.depth:
        raise ValueError(f"coverage max_depth {rules.max_depth} is smaller than depth {rules.depth}: the data "
                         "folders would never be reached; raise max_depth")
    if rules.max_entries < 1:
        raise ValueError(f"coverage max_entries {rules.max_entries} must be positive")
    kinds = {looks_windows(volume) for volume in rules.volumes}
    if len(kinds) > 1:
        raise ValueError(f"coverage volumes {rules.volumes} mix Windows and POSIX paths; one host has one kind")
    return kinds.pop()


def check_coverage(included: list[str], rules: CoverageRules, scanner: Scanner | None = None) -> CoverageReport:
    """Compare the absolute paths a backup set includes with what ``scanner`` finds on ``rules.volumes``.

    Raises ``ValueError`` for unusable rules; problems with single paths or volumes end up in
    ``report.errors`` so one unreadable volume does not hide the others.
    """
    windows = _validate(rules)
    scanner = scanner or LocalScanner()
    report = CoverageReport(items=[], included=[], excluded=[], truncated=False, errors=[])
    paths: dict[tuple[str, ...], HostPath] = {}
    for text in included:
        if not windows and looks_windows(text):
            report.errors.append(f"included path {text!r} is a Windows path but the volumes {rules.volumes} are "
                                 "POSIX paths; list the Windows host's drives (D:\\) as volumes")
            continue
        try:
            path = parse_path(text, windows)
        except ValueError as exc:
            report.errors.append(f"included path {exc}")
            continue
        paths.setdefault(path.key, path)
    report.included = [str(path) for path in paths.values()]
    globs = _Globs(rules, windows)
    budget = rules.max_entries
    ordered: list[tuple[int, CoverageItem]] = []
    for index, text in enumerate(rules.volumes):
        try:
            volume = parse_path(text, windows)
        except ValueError as exc:
            report.errors.append(f"volume {exc}; fix 'volumes' in the coverage rules")
            continue
        share = budget // (len(rules.volumes) - index)
        if share < 1:
            report.truncated = True
            report.errors.append(f"volume {text} not scanned: max_entries {rules.max_entries} used up; raise it")
            continue

        def prune(relative: str, volume: HostPath = volume) -> bool:
            return globs.excluded_by(_below(volume, relative), volume) is not None

        try:
            result = scanner.scan(str(volume), rules.max_depth, share, prune)
        except CoverageError as exc:
            report.errors.append(str(exc))
            continue
        budget -= len(result.entries)
        report.truncated = report.truncated or result.truncated
        report.errors.extend(result.errors)
        check = _Check(_build_tree(volume, result), list(paths.values()), globs, rules, result.truncated)
        ordered.extend((index, item) for item in check.items())
        for node in sorted(check.excluded, key=lambda node: node.path.key):
            report.excluded.append(str(node.path))
            report.excluded_by[str(node.path)] = node.excluded_by or ""
    kind_order = {CoverageKind.FOLDER: 0, CoverageKind.APPLICATION: 0, CoverageKind.DATABASE: 1}
    ordered.sort(key=lambda pair: (pair[0], _sort_key(pair[1].path), kind_order[pair[1].kind]))
    report.items = [item for _, item in ordered]
    return report


def _below(volume: HostPath, relative: str) -> HostPath:
    return HostPath(volume.root, (*volume.parts, *(part for part in relative.split("/") if part)), volume.windows)


def _sort_key(path: str) -> tuple[str, ...]:
    return tuple(part.casefold() for part in _SEPARATORS.split(path) if part)


# --------------------------------------------------------------------------- the yearly list


def _iso(timestamp: float | None) -> str:
    return "" if timestamp is None else datetime.fromtimestamp(timestamp, ROME).isoformat(timespec="seconds")


def _rows(tenant: str, set_name: str, report: CoverageReport) -> list[list[str]]:
    rows = [(item.path, [tenant, set_name, item.path, item.kind, "true" if item.protected else "false",
                         item.covered_by or "", "" if item.size_bytes is None else str(item.size_bytes),
                         "" if item.files is None else str(item.files), _iso(item.newest_mtime), item.reason])
            for item in report.items]
    rows += [(path, [tenant, set_name, path, "excluded", "false", "", "", "", "",
                     f"deliberately not backed up (exclude rule {report.excluded_by.get(path) or '?'})"])
             for path in report.excluded]
    rows.sort(key=lambda pair: _sort_key(pair[0]))
    return [row for _, row in rows]


def write_csv(reports: list[tuple[str, str, CoverageReport]], stream: IO[str] | IO[bytes]) -> None:
    """Write the yearly list: one row per item of each (tenant, set, report), with a header row.

    Deliberately excluded paths are listed too (kind ``excluded``), so the comune sees what is left out
    on purpose. A text stream should be opened with ``newline=""`` and UTF-8; a binary stream is written
    as UTF-8.
    """
    text: IO[str]
    wrapper: io.TextIOWrapper | None = None
    if isinstance(stream, io.TextIOBase):
        text = stream  # type: ignore[assignment]
    else:
        wrapper = io.TextIOWrapper(stream, encoding="utf-8", newline="")  # type: ignore[arg-type]
        text = wrapper
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    for tenant, set_name, report in reports:
        writer.writerows(_rows(tenant, set_name, report))
    if wrapper is not None:
        wrapper.flush()
        wrapper.detach()
