"""The source tree and scratch folder of a restore test on another host, reached through a Transport.

A restore test samples, hashes and checks hundreds of files. Over WinRM every
command costs several HTTP round trips, so each operation here is *one*
command for all its paths (a ``find`` or ``Get-ChildItem`` listing, one
``sha256sum`` / ``Get-FileHash`` loop), split into a few commands only when
a limit of the host forces it (Linux: 128 KiB for one ``sh -c`` argument;
Windows: 30,000 characters of script, see :data:`WINRM_SCRIPT_LIMIT`).

Quoting: every path goes into the script as a single-quoted literal of the
host's shell (``sh``: ``'…'`` with ``'\\''``; PowerShell: ``'…'`` with every
single-quote character doubled, including the typographic ones PowerShell also
accepts as quotes, common in Italian names such as ``l’anagrafe.docx``).
Nothing a file's name contains can escape the literal.

Output formats are line or NUL separated records tagged with a letter and the
index of the path they answer, so names are never parsed back out of the
output (non-ASCII names are never compared after a round trip through a code
page). PowerShell output is forced to UTF-8.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import TypeVar

from custode.agent.restore.files import FileSystem
from custode.agent.restore.model import FileEntry, RestoreError
from custode.agent.transports.base import CommandResult, Transport, TransportError
from custode.agent.transports.quoting import quote_for, quote_posix, quote_powershell

T = TypeVar("T")

LISTING_MAX_OUTPUT = 16 * 1024 * 1024
"""Bytes of listing output kept (about 150 000 files); more means the test would sample a partial tree."""

POSIX_SCRIPT_LIMIT = 120_000
"""Bytes of one ``sh -c`` script: Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN)."""
LOCAL_POWERSHELL_LIMIT = 30_000
"""Characters of a ``powershell -Command`` script on this machine: CreateProcess allows 32767 in all."""
WINRM_SCRIPT_LIMIT = 30_000
"""Characters of one script over WinRM. It travels on stdin, which has no such limit (the transport's own is
far higher), but a restore command starts a tool with the items on that tool's command line, which CreateProcess
cuts at 32,767 characters; and a batch stays one timeout's worth of work. It was about 3,000 when scripts went
on WinRS' 8,191-character command line as ``-EncodedCommand``."""

TICKS_AT_EPOCH = 621_355_968_000_000_000
""".NET DateTime ticks (100 ns since 0001-01-01 UTC) at 1970-01-01 UTC."""

_PS_PROLOG = ("$ProgressPreference='SilentlyContinue'\n"
              "try{[Console]::OutputEncoding=New-Object Text.UTF8Encoding $false}catch{}\n")
"""UTF-8 without BOM on stdout (the transport's code page 65001 is the first guard, this the second);
no progress records on stderr."""

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def ticks_to_epoch(ticks: int) -> float:
    return (ticks - TICKS_AT_EPOCH) / 1e7


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lines(text: str) -> list[str]:
    """Output lines without CR and a BOM some PowerShell hosts put before UTF-8 output."""
    return [line.rstrip("\r") for line in text.lstrip("\ufeff").split("\n")]


class RemoteFileSystem(FileSystem):
    """A :class:`FileSystem` on the host behind ``transport`` (``sh`` on Linux, PowerShell on Windows)."""

    def __init__(self, transport: Transport, timeout: float = 600.0, *,
                 max_listing: int = LISTING_MAX_OUTPUT) -> None:
        self.transport = transport
        self.timeout = timeout
        self.max_listing = max_listing
        self.walk_errors: list[str] = []

    # -- what the shell looks like ------------------------------------------------------------------

    @property
    def windows(self) -> bool:
        return self.transport.shell == "powershell"

    @property
    def sep(self) -> str:
        return "\\" if self.windows else "/"

    @property
    def host(self) -> str:
        return self.transport.name

    def quote(self, value: str) -> str:
        """``value`` as a literal of the host's shell."""
        return quote_for(self.transport.shell, value)

    def fits(self, script: str) -> bool:
        """Whether ``script`` is short enough for one command on the host (see the module docstring)."""
        if not self.windows:
            return len(script.encode("utf-8")) <= POSIX_SCRIPT_LIMIT
        if self.transport.kind == "winrm":
            return len(script) <= WINRM_SCRIPT_LIMIT
        return len(script) <= LOCAL_POWERSHELL_LIMIT

    def run(self, script: str, what: str, *, timeout: float | None = None,
            max_output: int | None = None) -> CommandResult:
        """Run ``script``; a host that cannot be reached ends the whole test (RestoreError)."""
        try:
            if max_output is None:
                return self.transport.run(script, timeout or self.timeout)
            return self.transport.run(script, timeout or self.timeout, max_output=max_output)
        except TransportError as exc:
            raise RestoreError(f"{exc} (while trying to {what}); check that the host is up and reachable, "
                               "then run the restore test again") from None

    def _failed(self, what: str, result: CommandResult) -> RestoreError:
        detail = _one_line(result.stderr or result.stdout, 500)
        return RestoreError(f"{self.host}: could not {what}: {result.describe()}"
                            + (f" ({detail})" if detail and detail not in result.describe() else ""))

    # -- FileSystem ---------------------------------------------------------------------------------

    def walk(self, root: str) -> Iterator[FileEntry]:
        what = f"list the files of {root}"
        script = self._walk_script(root)
        result = self.run(script, what, max_output=self.max_listing)
        if result.timed_out:
            raise RestoreError(f"{self.host}: listing {root} did not finish within {self.timeout:g} s; "
                               "narrow 'source' to a smaller folder or raise the set's 'timeout'")
        if result.truncated:
            raise RestoreError(f"{self.host}: the list of files under {root} is longer than "
                               f"{self.max_listing // (1024 * 1024)} MiB and was cut; a sample from part of "
                               "the tree would not be honest: narrow 'source' to a smaller folder (one set "
                               "per data folder)")
        if result.exit_code == 3 and result.stdout.lstrip("\ufeff").startswith("custode:not-a-folder"):
            raise RestoreError(f"{self.host}: source folder {root} does not exist or is not a folder; fix "
                               "'source' in the restore set")
        yield from (self._walk_windows(result) if self.windows else self._walk_posix(result))

    def _walk_script(self, root: str) -> str:
        if self.windows:
            return (
                "# custode:walk\n" + _PS_PROLOG +
                f"$r={quote_powershell(root)}\n"
                "if(-not(Test-Path -LiteralPath $r -PathType Container)){'custode:not-a-folder';exit 3}\n"
                "$r=(Get-Item -LiteralPath $r -Force).FullName.TrimEnd('\\');$n=$r.Length+1;$e=@()\n"
                "Get-ChildItem -LiteralPath $r -Recurse -File -Force -ErrorAction SilentlyContinue "
                "-ErrorVariable e|ForEach-Object{\"F`t$($_.Length)`t$($_.LastWriteTimeUtc.Ticks)`t"
                "$($_.FullName.Substring($n))\"}\n"
                "foreach($x in $e){\"E`t$($x.TargetObject): $($x.Exception.Message -replace '\\s+',' ')\"}\n")
        # cd follows a symlinked root; find -P (the default) then never follows links below it.
        return ("# custode:walk\n"
                f"cd -- {quote_posix(root)} 2>/dev/null || {{ echo 'custode:not-a-folder'; exit 3; }}\n"
                "find . -type f -printf '%s\\t%T@\\t%P\\0'\n")

    def _walk_posix(self, result: CommandResult) -> Iterator[FileEntry]:
        records = result.stdout.split("\0")
        found = False
        for record in records[:-1]:  # after the last NUL: nothing, or a "[… more bytes]" note
            parts = record.split("\t", 2)
            try:
                entry = FileEntry(parts[2], int(parts[0]), float(parts[1]))
            except (IndexError, ValueError):
                self.walk_errors.append(f"unreadable listing record {record[:120]!r}")
                continue
            found = True
            yield entry
        errors = [line for line in _lines(result.stderr) if line.strip()]
        if not result.ok and not found:
            hint = (" (GNU find is needed: its -printf is used)" if "printf" in result.stderr else "")
            raise self._failed("list the source files" + hint, result)
        self.walk_errors.extend(errors)

    def _walk_windows(self, result: CommandResult) -> Iterator[FileEntry]:
        found = False
        for line in _lines(result.stdout):
            if line.startswith("F\t"):
                parts = line.split("\t", 3)
                try:
                    entry = FileEntry(parts[3].replace("\\", "/"), int(parts[1]), ticks_to_epoch(int(parts[2])))
                except (IndexError, ValueError):
                    self.walk_errors.append(f"unreadable listing line {line[:120]!r}")
                    continue
                found = True
                yield entry
            elif line.startswith("E\t"):
                self.walk_errors.append(line[2:])
        if not result.ok and not found:
            raise self._failed("list the source files", result)

    def sha256(self, paths: list[str]) -> dict[str, str]:
        return self._batched(paths, self._sha256_script, self._parse_sha256, "hash files")

    def _sha256_script(self, paths: list[str]) -> str:
        if self.windows:
            base, names = self._common_base(paths)
            return ("# custode:sha256\n" + _PS_PROLOG +
                    f"$b={quote_powershell(base)};$i=0\n"
                    f"foreach($p in @({','.join(quote_powershell(n) for n in names)})){{"
                    "try{$h=(Get-FileHash -LiteralPath ($b+$p) -Algorithm SHA256 -ErrorAction Stop).Hash;"
                    "\"H`t$i`t$h\"}catch{\"X`t$i`t$($_.Exception.Message -replace '\\s+',' ')\"};$i++}\n")
        # 2>&1 first, so the shell's own "cannot open" message is captured too.
        return ("# custode:sha256\nn=0\n"
                f"for f in {' '.join(quote_posix(p) for p in paths)}; do\n"
                "  if h=$(sha256sum 2>&1 < \"$f\"); then printf 'H\\t%s\\t%s\\n' \"$n\" \"${h%% *}\"\n"
                "  else printf 'X\\t%s\\t%s\\n' \"$n\" \"$(printf '%s' \"$h\" | tr '\\t\\n' '  ')\"; fi\n"
                "  n=$((n+1))\ndone\n")

    def _parse_sha256(self, paths: list[str], result: CommandResult) -> dict[str, str]:
        answers: dict[str, str] = {}
        for line in _lines(result.stdout):
            parts = line.split("\t", 2)
            if len(parts) != 3 or parts[0] not in ("H", "X") or not parts[1].isdigit():
                continue
            index = int(parts[1])
            if index >= len(paths):
                continue
            if parts[0] == "H" and _HEX64.match(parts[2].strip()):
                answers[paths[index]] = parts[2].strip().lower()
            elif parts[0] == "H":
                answers[paths[index]] = "error: not a regular file"
            else:
                answers[paths[index]] = "error: " + _clean_message(parts[2])
        why = "error: not hashed: " + (f"the hashing command {result.describe()}" if not result.ok
                                       else "no answer for this file")
        return {path: answers.get(path, why) for path in paths}

    def stat(self, paths: list[str]) -> dict[str, FileEntry]:
        """Absolute path -> its size and mtime, for those of ``paths`` that are regular files (not links).

        One command for all paths: the command backend's existence check after a restore and its
        stand-in manifest.
        """
        return self._batched(paths, self._stat_script, self._parse_stat, "look up files")

    def _stat_script(self, paths: list[str]) -> str:
        if self.windows:
            base, names = self._common_base(paths)
            return ("# custode:stat\n" + _PS_PROLOG +
                    f"$b={quote_powershell(base)};$i=0\n"
                    f"foreach($p in @({','.join(quote_powershell(n) for n in names)})){{"
                    "$f=Get-Item -LiteralPath ($b+$p) -Force -ErrorAction SilentlyContinue;"
                    "if($f -is [IO.FileInfo]){\"F`t$i`t$($f.Length)`t$($f.LastWriteTimeUtc.Ticks)\"};$i++}\n")
        safe = [p if p.startswith("/") else "./" + p for p in paths]  # find must not read a name as an option
        return ("# custode:stat\nn=0\n"
                f"for f in {' '.join(quote_posix(p) for p in safe)}; do\n"
                "  find \"$f\" -maxdepth 0 -type f -printf \"F\\t$n\\t%s\\t%T@\\n\" 2>/dev/null\n"
                "  n=$((n+1))\ndone\nexit 0\n")

    def _parse_stat(self, paths: list[str], result: CommandResult) -> dict[str, FileEntry]:
        if not result.ok:
            raise self._failed("look up files", result)
        found: dict[str, FileEntry] = {}
        for line in _lines(result.stdout):
            parts = line.split("\t")
            if len(parts) != 4 or parts[0] != "F" or not parts[1].isdigit() or int(parts[1]) >= len(paths):
                continue
            try:
                size = int(parts[2])
                mtime = ticks_to_epoch(int(parts[3])) if self.windows else float(parts[3])
            except ValueError:
                continue
            path = paths[int(parts[1])]
            found[path] = FileEntry(path, size, mtime)
        return found

    def make_scratch(self, parent: str | None) -> str:
        if self.windows:
            where = quote_powershell(parent) if parent else "$env:TEMP"
            script = ("# custode:mkscratch\n" + _PS_PROLOG + "$ErrorActionPreference='Stop'\n"
                      f"$p={where}\n$null=New-Item -ItemType Directory -Force -Path $p\n"
                      "$d=New-Item -ItemType Directory -Path ($p.TrimEnd('\\')+'\\custode-restore-'+"
                      "[guid]::NewGuid().ToString('N').Substring(0,12))\n\"D`t$($d.FullName)\"\n")
        elif parent:
            template = parent.rstrip("/") + "/custode-restore-XXXXXXXXXX"
            script = (f"# custode:mkscratch\numask 077\nmkdir -p -- {quote_posix(parent)} && "
                      f"printf 'D\\t%s\\n' \"$(mktemp -d {quote_posix(template)})\"\n")
        else:
            script = ("# custode:mkscratch\numask 077\n"
                      "printf 'D\\t%s\\n' \"$(mktemp -d \"${TMPDIR:-/tmp}/custode-restore-XXXXXXXXXX\")\"\n")
        what = f"create a scratch folder{f' under {parent}' if parent else ''}"
        result = self.run(script, what, timeout=min(self.timeout, 120.0))
        made = [line[2:] for line in _lines(result.stdout) if line.startswith("D\t") and len(line) > 2]
        if not result.ok or not made or not self._absolute(made[-1]):
            raise RestoreError(f"{self.host}: could not {what}: {result.describe()} "
                               f"{_one_line(result.stderr, 300)}".rstrip()
                               + "; check free space and permissions, or set a writable scratch folder")
        return made[-1]

    def remove_tree(self, path: str) -> None:
        if not self._absolute(path) or self._is_root(path):
            raise RestoreError(f"{self.host}: refusing to delete {path!r}: not a scratch folder")
        if self.windows:
            script = ("# custode:rmtree\n" + _PS_PROLOG + "$ErrorActionPreference='Stop'\n"
                      f"$d={quote_powershell(path)}\n"
                      "if(Test-Path -LiteralPath $d){Remove-Item -LiteralPath $d -Recurse -Force}\n"
                      "if(Test-Path -LiteralPath $d){throw \"$d is still there\"}\n")
        else:
            script = f"# custode:rmtree\nrm -rf -- {quote_posix(path)} && [ ! -e {quote_posix(path)} ]\n"
        result = self.run(script, f"delete {path}")
        if not result.ok:
            raise self._failed(f"delete {path}", result)

    def join(self, root: str, relative: str) -> str:
        parts = [part for part in relative.split("/") if part]
        if self.windows:
            return root.rstrip("\\/") + "\\" + "\\".join(parts)
        return root.rstrip("/") + "/" + "/".join(parts)

    # -- helpers ------------------------------------------------------------------------------------

    def _absolute(self, path: str) -> bool:
        if self.windows:
            return bool(re.match(r"^[A-Za-z]:[\\/]", path)) or path.startswith("\\\\")
        return path.startswith("/")

    def _is_root(self, path: str) -> bool:
        stripped = path.rstrip("\\/")
        return stripped == "" or bool(re.fullmatch(r"[A-Za-z]:", stripped)) or stripped in ("\\", "/")

    def _common_base(self, paths: list[str]) -> tuple[str, list[str]]:
        """A shared folder prefix and the rest of each path: more paths fit in one script."""
        prefix = os.path.commonprefix(paths)
        cut = max(prefix.rfind("\\"), prefix.rfind("/")) + 1
        base = prefix[:cut]
        return base, [path[cut:] for path in paths]

    def _batched(self, paths: list[str], script_for: Callable[[list[str]], str],
                 parse: Callable[[list[str], CommandResult], dict[str, T]], what: str) -> dict[str, T]:
        """One command for all ``paths`` when it fits the command line, else as few as needed."""
        unique = list(dict.fromkeys(paths))
        answers: dict[str, T] = {}
        for batch in split_to_fit(unique, lambda chunk: self.fits(script_for(chunk))):
            if not self.fits(script_for(batch)):  # one path alone too long for the command line
                raise RestoreError(f"{self.host}: the path {batch[0][:200]} is too long to {what} with one "
                                   "command; choose a source folder with shorter paths")
            result = self.run(script_for(batch), what, max_output=max(1024 * 1024, 300 * len(batch)))
            if result.timed_out:
                raise RestoreError(f"{self.host}: could not {what} within {self.timeout:g} s; lower the "
                                   "sample's max_bytes or raise the set's 'timeout'")
            answers.update(parse(batch, result))
        return answers


def split_to_fit(items: list[str], fits: Callable[[list[str]], bool]) -> list[list[str]]:
    """``items`` in consecutive groups, each as large as ``fits`` allows (a single item always forms a group).

    Grows each group by doubling, then bisects, so a thousand paths cost about
    twenty script renderings rather than a thousand.
    """
    groups: list[list[str]] = []
    start = 0
    while start < len(items):
        left = len(items) - start
        if fits(items[start:]):
            groups.append(items[start:])
            break
        low, high = 1, 2  # fits(items[start:start + low]) holds (or low is 1); fits(... + high) is unknown
        while high < left and fits(items[start:start + high]):
            low, high = high, high * 2
        high = min(high, left)  # now known not to fit
        while high - low > 1:
            middle = (low + high) // 2
            if fits(items[start:start + middle]):
                low = middle
            else:
                high = middle
        groups.append(items[start:start + low])
        start += low
    return groups


def _clean_message(text: str) -> str:
    text = _one_line(text, 300)
    return re.sub(r"^(sh|bash|dash): \d+: ", "", text) or "unreadable"
