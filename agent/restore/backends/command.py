"""Restore tests for tools Custode does not know: the config gives the commands, Custode does the rest.

Windows Server Backup (``wbadmin``), Veeam's PowerShell module, or a shell
script on a Linux host: the set's ``command:`` templates find the latest backup
and restore a list of files into a scratch folder, on the host itself (over
WinRM, SSH, or this machine). Sampling, hashing, comparison and the
certificate stay Custode's, so they are the same as for restic or borg.

Templates
---------
Placeholders are written ``{{ name }}``. In the *commands* (snapshot, restore,
list, version) every placeholder must sit **inside a single-quoted string** of
the host's shell, e.g. PowerShell ``-recoveryTarget:'{{ target }}'`` or sh
``tar -C '{{ target }}'``: values are escaped for exactly that position
(PowerShell: quote characters doubled; sh: ``'\\''``), so a file called
``l'anagrafe; Remove-Item *.docx`` stays a file name. A placeholder outside
single quotes is refused when the backend is built, because a user who can
create files on the share could otherwise inject commands.

``restore``:
    ``{{ version }}``  the snapshot id printed by ``snapshot``;
    ``{{ items }}``    the absolute source paths, joined by ``items_separator`` (default ``,``);
    ``{{ items_json }}`` the same as a JSON array, pure ASCII with every quote escaped as ``\\uXXXX``:
                       safe in single quotes; in PowerShell ``'{{ items_json }}' | ConvertFrom-Json``;
    ``{{ target }}``   the scratch folder to restore into;
    ``{{ source }}``   the set's source folder.
``snapshot``: ``{{ source }}``. Prints JSON ``{"id": ..., "time": ..., "paths": [...]}`` (paths optional);
    time is ISO 8601, epoch seconds or milliseconds, or PowerShell's ``\\/Date(ms)\\/`` (also the
    ``{"value": "\\/Date(ms)\\/", "DateTime": ...}`` object ConvertTo-Json makes of a DateTime).
``list`` (optional): ``{{ version }}``, ``{{ source }}``, ``{{ items }}``, ``{{ items_json }}``. Prints a JSON
    list of ``{"path": absolute, "size": int, "mtime": time[, "sha256": hex]}``: the backup's own record.
    Without it the manifest is *assumed*: a source file is taken to be in the backup iff its mtime is
    not newer than the snapshot, with the source's own size and mtime as the entry. That is weaker: a
    folder the backup skips shows up as a restore failure instead of a "missing" verdict, and a file
    changed after the backup cannot be checked against the backup's record.
``version`` (optional): the first line it prints is the tool's version, for the certificate.
``restored_path`` is not a command but a path, rendered as is: ``{{ target }}``, ``{{ relative }}`` (the
    file's path below the source, with the host's separator), ``{{ name }}`` (its file name) and
    ``{{ path }}`` (its absolute source path without the drive colon or leading slash, ``D\\Dati\\a.txt``
    or ``srv/dati/a.txt``, which is what some tools recreate under the target). On Windows ``/`` in it
    is read as ``\\``.

Restore runs the command once for all sampled files. Only when they are too
many for one command (a tool's command line on Windows: 32,767 characters,
see ``remote_files.WINRM_SCRIPT_LIMIT``) are they split into as few runs as
fit; and when ``restored_path`` would put two sampled files at the same place
(``{{ name }}`` with two ``report.pdf``), the second goes to a run with its own
sub-folder of the scratch folder.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from custode.agent.restore.backends.base import Backend
from custode.agent.restore.model import ManifestEntry, RestoreError, RestoreOutcome, Snapshot
from custode.agent.restore.remote_files import RemoteFileSystem, split_to_fit
from custode.agent.transports.base import CommandResult, Transport
from custode.agent.transports.quoting import PS_QUOTES, escape_posix, escape_powershell

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

SNAPSHOT_PLACEHOLDERS = ("source",)
RESTORE_PLACEHOLDERS = ("version", "items", "items_json", "target", "source")
RESTORED_PATH_PLACEHOLDERS = ("target", "relative", "name", "path")
LIST_PLACEHOLDERS = ("version", "source", "items", "items_json")
VERSION_PLACEHOLDERS: tuple[str, ...] = ()
TEMPLATE_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "snapshot": SNAPSHOT_PLACEHOLDERS, "restore": RESTORE_PLACEHOLDERS,
    "restored_path": RESTORED_PATH_PLACEHOLDERS, "list": LIST_PLACEHOLDERS, "version": VERSION_PLACEHOLDERS,
}
"""Allowed placeholders per template, keyed like the config's ``command:`` fields."""

LIST_MAX_OUTPUT = 16 * 1024 * 1024
_PS_DOUBLE_QUOTES = '"\u201c\u201d\u201e'
_DATE = re.compile(r"^\\?/Date\((-?\d+)(?:[+-]\d{4})?\)\\?/$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_TIME_KEYS = ("time", "backuptime", "creationtime")


class TemplateError(RestoreError, ValueError):
    """A template that cannot be used: a ValueError for config validation, a RestoreError for a test run."""


# -- templates -------------------------------------------------------------------------------------


def template_problem(template: str, allowed: Iterable[str], shell: str | None = None) -> str | None:
    """What is wrong with ``template`` (unknown placeholder, or one outside single quotes), or None.

    ``shell`` ("posix" or "powershell") enables the quoting check for command
    templates; leave it None for ``restored_path`` or when the host is unknown.
    """
    known = tuple(allowed)
    for match in PLACEHOLDER.finditer(template):
        if match.group(1) not in known:
            names = ", ".join("{{ %s }}" % name for name in known) or "none"
            return f"unknown placeholder {match.group(0)}; known here: {names}"
    if shell is not None:
        for name in unquoted_placeholders(template, shell):
            example = ("-Path '{{ %s }}'" if shell == "powershell" else "-C '{{ %s }}'") % name
            return (f"placeholder {{{{ {name} }}}} must be inside single quotes (e.g. {example}): values are "
                    "escaped for single-quoted strings only, and a file name could otherwise inject commands")
    return None


def unquoted_placeholders(template: str, shell: str) -> list[str]:
    """Names of placeholders that are not inside a single-quoted string of ``shell``.

    A small tokenizer of just the quoting rules: sh (``'…'``, ``"…"`` with
    backslash escapes, ``\\x``, ``#`` comments, bash's ``$'…'`` which is *not*
    plain single quotes) and PowerShell (single and double quotes including
    typographic ones, doubled quotes, backtick escapes, ``#`` and ``<# #>``
    comments, here-strings, where doubled quotes are not unescaped).
    """
    powershell = shell == "powershell"
    single = PS_QUOTES if powershell else "'"
    double = _PS_DOUBLE_QUOTES if powershell else '"'
    escape = "`" if powershell else "\\"
    found: list[str] = []
    state = ""  # "", "single", "double", "comment", "block", "ansi" ($'…'), "here" (@'…'@)
    index = 0
    while index < len(template):
        match = PLACEHOLDER.match(template, index)
        if match:
            if state != "single":
                found.append(match.group(1))
            index = match.end()
            continue
        char = template[index]
        following = template[index + 1] if index + 1 < len(template) else ""
        if state == "":
            if char == escape:
                index += 1
            elif not powershell and char == "$" and following == "'":
                state = "ansi"
                index += 1
            elif powershell and char == "@" and following and following in single + double:
                state = "here"
                index += 1
            elif char in single:
                state = "single"
            elif char in double:
                state = "double"
            elif powershell and char == "<" and following == "#":
                state = "block"
            elif char == "#" and (index == 0 or template[index - 1] in " \t\r\n;&|({"):
                state = "comment"
        elif state == "single":
            if char in single:
                if powershell and following in single and following:
                    index += 1  # a doubled quote is a literal quote
                else:
                    state = ""
        elif state == "double":
            if char == escape:
                index += 1
            elif char in double:
                if powershell and following in double and following:
                    index += 1
                else:
                    state = ""
        elif state == "comment":
            if char == "\n":
                state = ""
        elif state == "block" and char == "#" and following == ">":
            index += 1
            state = ""
        elif state == "ansi":
            if char == "\\":
                index += 1
            elif char == "'":
                state = ""
        elif state == "here" and char == "\n" and template[index + 1:index + 2] in tuple(single + double) \
                and template[index + 2:index + 3] == "@":
            index += 2
            state = ""
        index += 1
    return found


def render(template: str, values: dict[str, str], shell: str | None = None) -> str:
    """``template`` with its placeholders replaced; ``shell`` escapes each value for a single-quoted string.

    Raises TemplateError (a ValueError) for a placeholder without a value.
    """
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            known = ", ".join("{{ %s }}" % known_name for known_name in values) or "none"
            raise TemplateError(f"unknown placeholder {match.group(0)}; known here: {known}")
        text = values[name]
        if shell == "powershell":
            return escape_powershell(text)
        if shell == "posix":
            return escape_posix(text)
        return text

    return PLACEHOLDER.sub(value, template)


def items_json(paths: list[str]) -> str:
    """A JSON array that contains no quote of any shell: safe inside single quotes everywhere."""
    text = json.dumps(paths, ensure_ascii=True)  # typographic quotes become \u2019 and the like
    return text.replace("'", "\\u0027")


# -- parsing what the tools print ------------------------------------------------------------------


def parse_time(value: Any) -> float:
    """Seconds since the epoch from what a tool or ConvertTo-Json prints for a point in time.

    Accepts epoch seconds or milliseconds (number or digits), ISO 8601 (a time
    without offset is read as this machine's local time: Custode runs in the
    same time zone as the comune's servers), PowerShell's ``/Date(ms)/`` and
    the ``{"value": "/Date(ms)/", ...}`` object Windows PowerShell 5.1 makes
    of a DateTime.
    """
    if isinstance(value, dict):
        lowered = {str(key).lower(): item for key, item in value.items()}
        for key in ("value", "datetime", "utc"):
            if key in lowered:
                try:
                    return parse_time(lowered[key])
                except ValueError:
                    continue
        raise ValueError(f"no time in {json.dumps(value)[:100]}")
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
        return number / 1000 if abs(number) > 1e11 else number  # 1e11 s is year 5138; 1e11 ms is 1973
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    text = value.strip()
    match = _DATE.match(text)
    if match:
        return int(match.group(1)) / 1000
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return parse_time(float(text))
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text[:60]!r} is not ISO 8601, epoch seconds or /Date(ms)/") from None
    return moment.timestamp()  # naive: local time


def find_json(text: str) -> Any:
    """The JSON value a command printed, even after a banner or progress lines; ValueError if none."""
    text = text.lstrip("\ufeff").strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for tries, match in enumerate(re.finditer(r"[\[{]", text)):
        if tries >= 200:
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, (dict, list)):
            return value
    if text in ("null", ""):
        return None
    raise ValueError("no JSON object or list in the output")


def _lower_keys(item: dict) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in item.items()}


def _first(item: dict[str, Any], *keys: str) -> Any:
    return next((item[key] for key in keys if item.get(key) is not None), None)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the backend -----------------------------------------------------------------------------------


class CommandBackend(Backend):
    """A backup tool driven by command templates on the set's host (see the module docstring)."""

    kind = "command"
    mtime_tolerance = 2.0  # NTFS keeps 100 ns, but copies through SMB or FAT round to 2 s

    def __init__(self, transport: Transport, source: str, *, snapshot_command: str, restore_command: str,
                 restored_path: str = "{{ target }}/{{ relative }}", list_command: str | None = None,
                 version_command: str | None = None, items_separator: str = ",", timeout: float = 3600.0,
                 tool: str = "command") -> None:
        self.transport = transport
        self.source = source
        self.snapshot_command = snapshot_command
        self.restore_command = restore_command
        self.restored_path = restored_path
        self.list_command = list_command
        self.version_command = version_command
        self.items_separator = items_separator
        self.timeout = timeout
        self.tool = tool
        self.fs = RemoteFileSystem(transport, timeout=timeout)
        shell = transport.shell
        for field, template, placeholders, quoted in (
                ("snapshot", snapshot_command, SNAPSHOT_PLACEHOLDERS, True),
                ("restore", restore_command, RESTORE_PLACEHOLDERS, True),
                ("restored_path", restored_path, RESTORED_PATH_PLACEHOLDERS, False),
                ("list", list_command, LIST_PLACEHOLDERS, True),
                ("version", version_command, VERSION_PLACEHOLDERS, True)):
            if template is None:
                continue
            problem = template_problem(template, placeholders, shell if quoted else None)
            if problem:
                raise TemplateError(f"{transport.name}: command template '{field}': {problem}")

    @property
    def host(self) -> str:
        return self.transport.name

    # -- Backend ------------------------------------------------------------------------------------

    def tool_version(self) -> str:
        if self.version_command is None:
            from custode.agent import __version__

            return f"{self.tool} (command templates on {self.host}, run by Custode {__version__})"
        result = self._run(render(self.version_command, {}, self.transport.shell), "ask the tool's version",
                           timeout=min(self.timeout, 300.0))
        line = next((line.strip() for line in result.stdout.lstrip("\ufeff").splitlines() if line.strip()), "")
        if not result.ok or not line:
            raise RestoreError(f"{self.host}: the version command of {self.tool} failed ({self._why(result)}); "
                               "is the tool installed on the host, and does the 'version' template work there?")
        return line[:200]

    def latest_snapshot(self) -> Snapshot:
        command = render(self.snapshot_command, {"source": self.source}, self.transport.shell)
        data = self._json_of(command, "snapshot", "find the latest backup",
                             '{"id": ..., "time": ...}, e.g. with ConvertTo-Json -Compress')
        if isinstance(data, list):  # several backups: the newest
            candidates = [item for item in data if isinstance(item, dict)]
            data = max(candidates, key=self._time_or_zero, default=None)
        if not data:
            raise RestoreError(f"{self.host}: {self.tool} reports no backup (the snapshot command printed "
                               "nothing); has the backup job ever run?")
        if not isinstance(data, dict):
            raise RestoreError(f"{self.host}: the snapshot command printed {json.dumps(data)[:100]}, not an "
                               'object {"id": ..., "time": ...}')
        item = _lower_keys(data)
        ident, moment = _first(item, "id", "versionid"), _first(item, *_TIME_KEYS)
        if ident is None or moment is None:
            raise RestoreError(f"{self.host}: the snapshot command's JSON lacks 'id' or 'time' "
                               f"({json.dumps(data)[:200]}); print both")
        try:
            when = parse_time(moment)
        except ValueError as exc:
            raise RestoreError(f"{self.host}: the snapshot's time cannot be read: {exc}") from None
        paths = item.get("paths") or []
        paths = [paths] if isinstance(paths, str) else [str(path) for path in paths if path]
        hostname = item.get("hostname")
        return Snapshot(id=str(ident), time=when, paths=paths, hostname=str(hostname) if hostname else None)

    def manifest(self, snapshot: Snapshot, paths: list[str]) -> dict[str, ManifestEntry]:
        if self.list_command is not None:
            return self._listed(snapshot, paths)
        absolute = {relative: self.fs.join(self.source, relative) for relative in paths}
        found = self.fs.stat(list(absolute.values()))
        entries: dict[str, ManifestEntry] = {}
        for relative, location in absolute.items():
            entry = found.get(location)
            if entry is not None and entry.mtime <= snapshot.time + self.mtime_tolerance:
                entries[relative] = ManifestEntry(size=entry.size, mtime=entry.mtime)
        return entries

    def restore(self, snapshot: Snapshot, paths: list[str], scratch: str) -> RestoreOutcome:
        outcome = RestoreOutcome()
        uses_items = any(match.group(1) == "items" for match in PLACEHOLDER.finditer(self.restore_command))
        wanted: list[str] = []
        for relative in paths:
            absolute = self.fs.join(self.source, relative)
            if uses_items and self.items_separator and self.items_separator in absolute:
                outcome.errors[relative] = (f"not restored: its path contains the items separator "
                                            f"{self.items_separator!r}, so {{{{ items }}}} cannot pass it to the "
                                            "tool; use {{ items_json }} or another items_separator")
            else:
                wanted.append(relative)
        expected: dict[str, str] = {}
        failures: dict[str, str] = {}
        started = time.monotonic()
        for number, group in enumerate(self._rounds(wanted, scratch)):
            target = scratch if number == 0 else self.fs.make_scratch(scratch)
            locations = {relative: self._restored_location(target, relative) for relative in group}
            expected.update(locations)

            def fits(chunk: list[str], target: str = target) -> bool:
                return self.fs.fits(self._restore_script(snapshot, chunk, target))

            for batch in split_to_fit(group, fits):
                script = self._restore_script(snapshot, batch, target)
                if not self.fs.fits(script):
                    for relative in batch:
                        outcome.errors[relative] = "not restored: its path is too long for one command on the host"
                    continue
                result = self._run(script, f"restore {len(batch)} files with {self.tool}")
                if not result.ok:
                    why = self._why(result)
                    outcome.messages.append(f"{self.host}: the restore command of {self.tool} failed for "
                                            f"{len(batch)} files ({why})")
                    failures.update({relative: why for relative in batch})
        outcome.seconds = time.monotonic() - started
        present = self.fs.stat(list(expected.values())) if expected else {}
        for relative, location in expected.items():
            if location in present:
                outcome.restored[relative] = location
            elif relative in failures:
                outcome.errors[relative] = f"not restored: the restore command failed ({failures[relative]})"
            else:
                outcome.errors[relative] = (f"not restored: the restore command reported success but left no "
                                            f"file at {location}; check 'restored_path' "
                                            f"({self.restored_path!r}) against where {self.tool} puts files")
        return outcome

    def close(self) -> None:
        self.transport.close()

    # -- helpers ------------------------------------------------------------------------------------

    def _run(self, command: str, what: str, *, timeout: float | None = None,
             max_output: int | None = None) -> CommandResult:
        return self.fs.run(command, what, timeout=timeout or self.timeout, max_output=max_output)

    def _json_of(self, command: str, template: str, what: str, shape: str, max_output: int | None = None) -> Any:
        """Run one of the templates that must print JSON; RestoreError naming the template and the shape."""
        result = self._run(command, what, max_output=max_output)
        if result.truncated:
            raise RestoreError(f"{self.host}: the {template} command's output is over "
                               f"{(max_output or 0) // 2**20} MiB and was cut; let it print only {{{{ items }}}} "
                               "or narrow 'source'")
        if not result.ok:
            raise RestoreError(f"{self.host}: the {template} command of {self.tool} failed ({self._why(result)}); "
                               f"check that the backup tool works on the host and the '{template}' template")
        try:
            return find_json(result.stdout)
        except ValueError as exc:
            raise RestoreError(f"{self.host}: the {template} command of {self.tool} printed no usable JSON ({exc}: "
                               f"{_one_line(result.stdout, 200)!r}); it must print {shape}") from None

    def _why(self, result: CommandResult) -> str:
        """describe() plus the end of stderr: what the tool said, bounded for the certificate."""
        said = _one_line(result.stderr.strip()[-600:] or result.stdout.strip()[-300:], 400)
        described = result.describe()
        return described if not said or said in described else f"{described}; {said}"

    def _time_or_zero(self, item: dict) -> float:
        try:
            return parse_time(_first(_lower_keys(item), *_TIME_KEYS))
        except ValueError:
            return 0.0

    def _restore_script(self, snapshot: Snapshot, relatives: list[str], target: str) -> str:
        absolute = [self.fs.join(self.source, relative) for relative in relatives]
        return render(self.restore_command, {
            "version": snapshot.id, "items": self.items_separator.join(absolute), "items_json": items_json(absolute),
            "target": target, "source": self.source}, self.transport.shell)

    def _restored_location(self, target: str, relative: str) -> str:
        sep = self.fs.sep
        absolute = self.fs.join(self.source, relative)
        if self.fs.windows:
            bare = re.sub(r"^([A-Za-z]):", r"\1", absolute).lstrip("\\")
        else:
            bare = absolute.lstrip("/")
        text = render(self.restored_path, {"target": target, "relative": relative.replace("/", sep),
                                           "name": relative.rsplit("/", 1)[-1], "path": bare})
        if self.fs.windows:
            text = text.replace("/", "\\")
            head = "\\\\" if text.startswith("\\\\") else ""
            return head + re.sub(r"\\{2,}", r"\\", text[len(head):])
        return re.sub(r"/{2,}", "/", text)

    def _rounds(self, relatives: list[str], scratch: str) -> list[list[str]]:
        """Groups in which ``restored_path`` gives every file its own place (usually just one group)."""
        rounds: list[tuple[set[str], list[str]]] = []
        for relative in relatives:
            key = self._restored_location(scratch, relative)
            key = key.casefold() if self.fs.windows else key
            for taken, group in rounds:
                if key not in taken:
                    taken.add(key)
                    group.append(relative)
                    break
            else:
                rounds.append(({key}, [relative]))
        return [group for _, group in rounds]

    def _listed(self, snapshot: Snapshot, paths: list[str]) -> dict[str, ManifestEntry]:
        """The backup's own record of ``paths``, from the list command."""
        assert self.list_command is not None
        absolute = [self.fs.join(self.source, relative) for relative in paths]
        command = render(self.list_command, {"version": snapshot.id, "source": self.source,
                                             "items": self.items_separator.join(absolute),
                                             "items_json": items_json(absolute)}, self.transport.shell)
        data = self._json_of(command, "list", f"list the files in backup {snapshot.id}",
                             '[{"path": ..., "size": ..., "mtime": ...}]', max_output=LIST_MAX_OUTPUT)
        items = [data] if isinstance(data, dict) else (data or [])
        wanted = {self._key(relative): relative for relative in paths}
        entries: dict[str, ManifestEntry] = {}
        for raw in items:
            if not isinstance(raw, dict):
                continue
            item = _lower_keys(raw)
            path = _first(item, "path", "fullname", "name")
            relative = self._relative(str(path)) if path is not None else None
            if relative is None or self._key(relative) not in wanted:
                continue
            try:
                size = int(_first(item, "size", "length"))
                mtime = parse_time(_first(item, "mtime", "lastwritetimeutc", "lastwritetime", "time"))
            except (TypeError, ValueError):
                continue
            digest = _first(item, "sha256", "hash")
            digest = str(digest).lower() if digest is not None and _HEX64.match(str(digest)) else None
            entries[wanted[self._key(relative)]] = ManifestEntry(size=size, mtime=mtime, sha256=digest)
        return entries

    def _key(self, relative: str) -> str:
        return relative.casefold() if self.fs.windows else relative

    def _relative(self, path: str) -> str | None:
        """``path`` from the list command as a ``/``-separated path below the source, or None."""
        if self.fs.windows:
            path, root = path.replace("/", "\\"), self.source.replace("/", "\\").rstrip("\\") + "\\"
            if path.casefold().startswith(root.casefold()):
                return path[len(root):].replace("\\", "/")
            if re.match(r"^[A-Za-z]:\\|^\\\\", path):
                return None
            return path.lstrip("\\").replace("\\", "/") or None
        root = self.source.rstrip("/") + "/"
        if path.startswith(root):
            return path[len(root):]
        return None if path.startswith("/") else (path.removeprefix("./") or None)


__all__ = ["CommandBackend", "TEMPLATE_PLACEHOLDERS", "TemplateError", "find_json", "items_json", "parse_time",
           "render", "template_problem", "unquoted_placeholders"]
