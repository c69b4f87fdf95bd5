"""Restore tests against a BorgBackup (1.x) repository, driven through borg's CLI and JSON output.

borg gives us two things restic does not: a per-file content hash in the
archive listing (``{sha256}``, computed by borg from the stored chunks, so the
certificate can vouch for files that changed at the source since the backup),
and an integrity check of every chunk it reads. It also has one weakness: on a
damaged segment ``borg extract`` stops at the first bad chunk instead of
skipping the file. So extraction runs with ``--list --log-json``; the last
file borg announced before an integrity error is the damaged one, and the
files not reached yet are extracted again in a new run (a bounded number of
times), so one bad chunk costs one file, not the whole sample.

Needs borg 1.2 (Debian 12's ``borgbackup``): ``--noflags``, ``--glob-archives``
and the ``command_line`` archive key; borg 2 has a different command line.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import shlex
import tempfile
import time
from dataclasses import dataclass, field

from custode.agent.restore.backends.base import Backend
from custode.agent.restore.backends.process import ToolRun, chunked, covers, parse_timestamp, redact, run_tool
from custode.agent.restore.files import LocalFileSystem
from custode.agent.restore.model import ManifestEntry, RestoreError, RestoreOutcome, Snapshot

log = logging.getLogger(__name__)

PACKAGE = "borgbackup"
MAX_ABORTS = 10
"""Extraction restarts after integrity errors before the remaining files are given up (each restart re-reads the
archive's item list, so a badly damaged repository must not turn into hours of retries)."""
RECENT_ARCHIVES = 20
"""Archives examined for one that includes the source root (each costs one metadata read)."""
LOCK_WAIT = "60"
"""Seconds borg waits for a lock held by a running backup before giving up (borg's default is 1 s)."""
_NEVER_MATCHED = re.compile(r"^Include pattern '.*' never matched\.$")
"""borg does not count exact-path (``pf:``) matches, so it warns about every one of them: pure noise here."""

# borg create options that take a value, for reading the backed-up paths out of an archive's command line.
_CREATE_VALUE_OPTIONS = {
    "-e", "--exclude", "--exclude-from", "--pattern", "--patterns-from", "--exclude-if-present", "--comment",
    "--timestamp", "-c", "--checkpoint-interval", "--chunker-params", "-C", "--compression", "--lock-wait",
    "--remote-path", "--rsh", "--umask", "--remote-ratelimit", "--upload-ratelimit", "--remote-buffer",
    "--upload-buffer", "--debug-topic", "--debug-profile", "--files-cache", "--stdin-name", "--stdin-user",
    "--stdin-group", "--stdin-mode", "--paths-delimiter", "--filter", "-P", "--prefix", "-a", "--glob-archives",
}
_PATHS_ELSEWHERE = {"--paths-from-stdin", "--paths-from-command", "--content-from-command"}


def create_paths(command_line: list[str] | str | None) -> list[str]:
    """The PATH arguments of the ``borg create`` that made an archive (empty when they cannot be known).

    borg records its own argv; the paths are the positionals after the
    ``REPO::ARCHIVE`` argument. Paths given on stdin or by a command are not
    in the argv, so the answer is "unknown" (empty), not a wrong list.
    """
    if isinstance(command_line, str):
        try:
            command_line = shlex.split(command_line)
        except ValueError:
            return []
    if not command_line or "create" not in command_line:
        return []
    args = command_line[command_line.index("create") + 1:]
    positionals: list[str] = []
    skip = False
    only_positionals = False
    for arg in args:
        if skip:
            skip = False
        elif only_positionals or not arg.startswith("-") or arg == "-":
            positionals.append(arg)
        elif arg == "--":
            only_positionals = True
        elif arg in _PATHS_ELSEWHERE:
            return []
        elif arg in _CREATE_VALUE_OPTIONS:
            skip = True
    return positionals[1:]


def _is_local(repository: str) -> bool:
    """A plain filesystem path (as opposed to ssh://…, user@host:path or file://…)."""
    if "://" in repository:
        return False
    head = repository.split("/", 1)[0]
    return ":" not in head


def _writable_dir(path: str) -> bool:
    """Whether ``path`` exists as a writable folder, or could be created under its nearest existing ancestor."""
    probe = os.path.abspath(path)
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return False
        probe = parent
    return os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK)


def default_base_dir(env: dict[str, str]) -> str | None:
    """A private BORG_BASE_DIR when borg's usual folders cannot be written, else None.

    borg writes a per-repository security record (and, for some commands, a
    cache) under ``~/.config/borg`` and ``~/.cache/borg``; a systemd service
    may run with a read-only or missing HOME, and borg then fails before
    reading anything. Explicit BORG_* folder variables (from ``extra_env``)
    always win. Note: keyfile-mode keys live in the config folder, so such
    repositories then need BORG_KEY_FILE in ``extra_env``.
    """
    explicit = ("BORG_BASE_DIR", "BORG_CONFIG_DIR", "BORG_CACHE_DIR", "BORG_SECURITY_DIR")
    if any(env.get(name) for name in explicit):
        return None
    home = env.get("HOME") or ""
    config = env.get("XDG_CONFIG_HOME") or (os.path.join(home, ".config") if home else "")
    cache = env.get("XDG_CACHE_HOME") or (os.path.join(home, ".cache") if home else "")
    if config and cache and _writable_dir(os.path.join(config, "borg")) and _writable_dir(os.path.join(cache, "borg")):
        return None
    base = os.path.join(tempfile.gettempdir(), f"custode-borg-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    os.makedirs(base, mode=0o700, exist_ok=True)
    info = os.lstat(base)
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or not os.path.isdir(base) or os.path.islink(base)):
        raise RestoreError(f"{base} exists but is not a private folder of this user; remove it, or set "
                           "BORG_BASE_DIR in the restore set's env")
    return base


def _named_file(message: str, names: set[str]) -> str | None:
    """The archive path a ``path: complaint`` warning is about (paths may themselves contain ``": "``)."""
    start = message.find(": ")
    while start >= 0:
        if message[:start] in names:
            return message[:start]
        start = message.find(": ", start + 1)
    return None


@dataclass
class _ExtractRun:
    """What one ``borg extract --list --log-json`` said."""

    listed: list[str] = field(default_factory=list)
    """Archive paths in the order borg started extracting them."""
    file_warnings: dict[str, str] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """ERROR/CRITICAL messages (the reason borg stopped)."""


class BorgBackend(Backend):
    """A borg 1.x repository: a local path, a mounted share, or ``ssh://`` / ``user@host:path``."""

    kind = "borg"
    mtime_tolerance = 1e-5
    """borg stores nanoseconds but prints microseconds (``isomtime``): allow for that rounding."""

    def __init__(self, repository: str, source: str, *, password: str | None = None,
                 password_file: str | None = None, binary: str = "borg", path_in_backup: str | None = None,
                 extra_env: dict[str, str] | None = None, timeout: float = 3600.0,
                 archive_glob: str | None = None) -> None:
        # extract runs with cwd=scratch, so a relative local repository path must be made absolute now
        self.repository = os.path.abspath(repository) if _is_local(repository) else repository
        self.source = source
        inside = (path_in_backup if path_in_backup is not None else source).replace("\\", "/")
        inside = posixpath.normpath("/" + inside.lstrip("/")).lstrip("/")
        self.root = inside
        """Where the source root lies inside the archives: borg drops the leading ``/`` ("" = everything)."""
        self.password = password
        self.password_file = password_file
        self.binary = binary
        self.extra_env = dict(extra_env or {})
        self.timeout = timeout
        self.archive_glob = archive_glob
        self.fs = LocalFileSystem()
        self._passphrase: str | None = None
        self._base_dir_checked = False
        self._base_dir: str | None = None

    # -- plumbing

    @property
    def where(self) -> str:
        return f"borg repository {redact(self.repository, [self.password])}"

    def _secret(self) -> str | None:
        """The passphrase, read from ``password_file`` once (trailing newline dropped, as borg's own tools do)."""
        if self.password is not None:
            return self.password
        if self.password_file is None:
            return None
        if self._passphrase is None:
            try:
                with open(self.password_file, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise RestoreError(f"{self.where}: cannot read the password file {self.password_file} "
                                   f"({exc.strerror or exc}): fix its path or permissions") from None
            self._passphrase = text[:-1] if text.endswith("\n") else text
            self._passphrase = self._passphrase[:-1] if self._passphrase.endswith("\r") else self._passphrase
        return self._passphrase

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env.pop("BORG_REPO", None)
        secret = self._secret()
        if secret is not None:
            for name in ("BORG_PASSCOMMAND", "BORG_PASSPHRASE_FD"):
                env.pop(name, None)
            env["BORG_PASSPHRASE"] = secret
        elif not any(env.get(name) for name in ("BORG_PASSPHRASE", "BORG_PASSCOMMAND", "BORG_PASSPHRASE_FD")):
            env["BORG_PASSPHRASE"] = ""  # an unencrypted repository needs none; an encrypted one fails, never prompts
        # A repository found at another path than last time (a NAS mounted elsewhere, a copy, or simply another
        # user running the test) is a normal situation for a read-only restore test, and an unencrypted
        # repository this user has never seen is what a first test of an unencrypted set looks like. Both
        # checks guard writers against a swapped repository; we only read, and every restored byte is checked
        # against the source or borg's own hash. Questions that could delete or repair data are NOT answered.
        env["BORG_RELOCATED_REPO_ACCESS_IS_OK"] = "yes"
        env["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] = "yes"
        for name in ("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING"):
            env[name] = "NO"
        env["TZ"] = "UTC"  # borg 1.x prints naive local timestamps; in UTC they parse without guessing
        if not self._base_dir_checked:
            self._base_dir = default_base_dir(env)
            self._base_dir_checked = True
        if self._base_dir:
            env["BORG_BASE_DIR"] = self._base_dir
        return env

    def _run(self, *args: str, timeout: float | None = None, **kwargs) -> ToolRun:
        return run_tool([self.binary, *args], env=self._env(), timeout=self.timeout if timeout is None else timeout,
                        package=PACKAGE, **kwargs)

    def _archive(self, snapshot: Snapshot) -> str:
        return f"{self.repository}::{snapshot.id}"

    def _in_archive(self, relative: str) -> str:
        return posixpath.join(self.root, relative) if self.root else relative

    @staticmethod
    def _log_message(line: str) -> tuple[str, str, str, str] | None:
        """(name, level, msgid, message) of a ``--log-json`` line; None for other output."""
        if not line.startswith("{"):
            return None
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            return None
        if data.get("type") != "log_message":
            return None
        return (data.get("name", ""), data.get("levelname", ""), data.get("msgid") or "", data.get("message", ""))

    def _messages(self, run: ToolRun) -> list[str]:
        """Error and warning texts from a run's stderr (JSON log lines or plain text), redacted."""
        texts: list[str] = []
        for line in run.stderr.splitlines():
            parsed = self._log_message(line)
            if parsed is not None:
                name, level, _, message = parsed
                if level in ("ERROR", "CRITICAL", "WARNING") and name != "borg.output.list" \
                        and not message.startswith("Traceback") and not _NEVER_MATCHED.match(message):
                    texts.append(message.strip())
            elif line.strip() and not line.startswith("{"):
                texts.append(line.strip())
        return [redact(text, [self._secret_or_none()]) for text in texts if text]

    def _secret_or_none(self) -> str | None:
        try:
            return self._secret()
        except RestoreError:
            return None

    def _failure(self, action: str, run: ToolRun) -> RestoreError:
        """The whole-test error for a failed borg command, with the fix in plain words."""
        ids = set()
        for line in run.stderr.splitlines():
            parsed = self._log_message(line)
            if parsed:
                ids.add(parsed[2])
        texts = self._messages(run)
        said = " | ".join(texts[-2:]) or f"exit code {run.exit_code}"
        if run.timed_out:
            why = f"borg did not finish within {run.seconds:.0f} s; check that the repository is reachable"
        elif "PassphraseWrong" in ids or "is incorrect" in said:
            if self.password is None and self.password_file is None:
                why = "the repository is encrypted and no passphrase is configured: set the password (or password file)"
            else:
                why = "wrong passphrase: check the password or password file configured for this restore set"
        elif "Repository.DoesNotExist" in ids or "does not exist" in said and "Archive" not in said:
            why = ("there is no borg repository at this location: check the repository path, and that the backup "
                   "disk or share is mounted")
        elif "Repository.InvalidRepository" in ids or "is not a valid repository" in said:
            why = "this folder is not a borg repository: check the repository path"
        elif "LockTimeout" in ids or "Failed to create/acquire the lock" in said:
            why = (f"the repository is locked by a running borg ({said}); retry when the backup has finished, or "
                   "run 'borg break-lock' if no borg process is running")
        elif any("KeyfileNotFound" in i or "NoKeyFile" in i for i in ids) or "key file" in said.lower():
            why = f"the key file is missing ({said}): set BORG_KEY_FILE in the restore set's env"
        elif "ConnectionClosed" in " ".join(ids) or "Remote:" in said:
            why = f"the repository cannot be reached ({said}): check the network, ssh keys and borg on the server"
        elif "IntegrityError" in ids or "integrity" in said.lower():
            why = f"the repository is damaged ({said}): run 'borg check' on it"
        else:
            why = f"borg failed: {said}"
        return RestoreError(f"{self.where}: cannot {action}: {why}")

    # -- the Backend contract

    def tool_version(self) -> str:
        run = run_tool([self.binary, "--version"], env=dict(os.environ, **self.extra_env),
                       timeout=min(self.timeout, 60.0), package=PACKAGE)
        if not run.ok:
            raise RestoreError(f"{self.binary} --version failed ({run.tail(2) or run.exit_code}): reinstall the "
                               f"Debian package {PACKAGE}")
        return run.stdout.strip().splitlines()[0] if run.stdout.strip() else "borg (unknown version)"

    def latest_snapshot(self) -> Snapshot:
        """The newest archive (matching ``archive_glob``) whose ``borg create`` paths include the source root.

        The paths come from the command line borg recorded in the archive; when
        they cannot be known (paths from stdin, very old archives) the archive
        is accepted, and the restore itself will say whether the files are there.
        """
        args = ["list", "--log-json", "--lock-wait", LOCK_WAIT, "--json", "--format", "{hostname}{command_line}",
                "--last", str(RECENT_ARCHIVES)]
        if self.archive_glob:
            args += ["--glob-archives", self.archive_glob]
        run = self._run(*args, self.repository)
        if not run.ok:
            raise self._failure("list the archives", run)
        try:
            archives = json.loads(run.stdout or "{}").get("archives") or []
        except (json.JSONDecodeError, AttributeError) as exc:
            raise RestoreError(f"{self.where}: 'borg list --json' printed something that is not JSON ({exc}); "
                               "check the borg version") from None
        if not archives:
            which = f" matching {self.archive_glob!r}" if self.archive_glob else ""
            raise RestoreError(f"{self.where}: the repository has no archives{which}; run the backup first"
                               + (", or fix 'archive_glob'" if which else ""))
        for archive in archives:
            archive["_paths"] = create_paths(archive.get("command_line"))
        usable = [a for a in archives
                  if not a["_paths"] or any(covers(posixpath.normpath(p).lstrip("/"), self.root)
                                            or posixpath.normpath(p) in (".", "/") for p in a["_paths"])]
        if not usable:
            seen = sorted({p for a in archives for p in a["_paths"]})
            raise RestoreError(f"{self.where}: none of the last {len(archives)} archives includes /{self.root} "
                               f"(they cover {', '.join(seen[:10])}); fix 'source', set 'path_in_backup' when the "
                               "data was backed up under another path, or set 'archive_glob'")
        newest = max(usable, key=lambda a: parse_timestamp(a.get("start") or a["time"]))
        return Snapshot(id=newest["name"], time=parse_timestamp(newest.get("start") or newest["time"]),
                        paths=list(newest["_paths"]), hostname=newest.get("hostname"))

    def manifest(self, snapshot: Snapshot, paths: list[str]) -> dict[str, ManifestEntry]:
        """Size, mtime and SHA-256 of the sampled files, from ``borg list --json-lines``.

        Exact-path patterns (``pf:``) are looked up in a dict by borg, so a
        1000-file sample costs one pass over the archive's item list. The
        ``{sha256}`` key makes borg read the files' chunks; if a chunk is
        damaged borg stops, and the files not listed yet are listed again
        without hashes (the restore then reports the damage per file).
        """
        wanted = {self._in_archive(rel): rel for rel in paths}
        found: dict[str, ManifestEntry] = {}

        def on_line(line: str) -> None:
            if not line.startswith("{"):
                return
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                return
            rel = wanted.get(item.get("path", ""))
            if rel is None or item.get("type") not in ("-", "h"):
                return
            digest = item.get("sha256") if item.get("type") == "-" else None  # hardlink copies: size only
            found[rel] = ManifestEntry(size=int(item.get("size") or 0), mtime=parse_timestamp(item["isomtime"]),
                                       sha256=digest or None)

        with_hash = True
        for batch in chunked(sorted(wanted), cost=lambda p: len(p) + 3):
            fmt = "{size}{isomtime}{sha256}" if with_hash else "{size}{isomtime}"
            run = self._list_items(snapshot, fmt, batch, on_line)
            if not run.ok and with_hash:
                with_hash = False
                rest = [p for p in batch if wanted[p] not in found]
                if rest:
                    run = self._list_items(snapshot, "{size}{isomtime}", rest, on_line)
            if not run.ok:
                raise self._failure(f"list files of archive {snapshot.id}", run)
        return found

    def _list_items(self, snapshot: Snapshot, fmt: str, batch: list[str], on_line) -> ToolRun:
        return self._run("list", "--log-json", "--lock-wait", LOCK_WAIT, "--json-lines", "--format", fmt,
                         self._archive(snapshot), *[f"pf:{p}" for p in batch], on_stdout_line=on_line)

    def restore(self, snapshot: Snapshot, paths: list[str], scratch: str) -> RestoreOutcome:
        """``borg extract`` of exactly these files with ``cwd=scratch``, restarting after integrity errors.

        borg checks every chunk it reads against its id (a keyed hash of the
        plain data), so a file extracted without complaint is verified by borg
        (``tool_verified``); metadata (owner, ACLs, xattrs, flags) is not
        restored: the test is about content, and a scratch folder on another
        file system would only add noise.
        """
        outcome = RestoreOutcome()
        deadline = time.monotonic() + self.timeout
        targets = {rel: os.path.join(scratch, *self._in_archive(rel).split("/")) for rel in paths}
        by_name = {self._in_archive(rel): rel for rel in paths}
        clean = True
        aborts = 0
        for batch in chunked(list(by_name), cost=lambda p: len(p) + 3):
            pending = batch
            while pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    late = f"not restored: the restore took longer than {self.timeout:.0f} s"
                    for name in pending:
                        outcome.errors[by_name[name]] = late
                    clean = False
                    break
                run, said = self._extract(snapshot, pending, scratch, remaining)
                outcome.seconds += run.seconds
                listed = [name for name in said.listed if name in by_name]
                for name, warning in said.file_warnings.items():
                    if name in by_name:
                        outcome.errors.setdefault(by_name[name], f"borg: {warning}")
                stopped = run.timed_out or run.exit_code not in (0, 1)
                reason = (f"borg extract did not finish within {run.seconds:.0f} s" if run.timed_out else
                          " | ".join(said.errors[-2:]) or f"borg extract exited with code {run.exit_code}")
                if stopped:  # messages become errors of the certificate: only when borg really failed
                    clean = False
                    outcome.messages.extend(f"borg: {text}" for text in said.other)
                    outcome.messages.append(f"borg: {reason}")
                elif said.other:  # e.g. "Remote: Warning: Permanently added … to the list of known hosts"
                    log.warning("%s: restore test: borg said: %s", self.where, " | ".join(said.other))
                done = listed[:-1] if stopped and listed else listed
                for name in done:
                    self._collect(by_name[name], targets, outcome)
                if not stopped:
                    seen = set(listed)
                    for name in pending:
                        if name not in seen and by_name[name] not in outcome.errors:
                            outcome.errors[by_name[name]] = f"not in archive {snapshot.id}"
                    break
                if listed:
                    culprit = listed[-1]
                    outcome.errors.setdefault(by_name[culprit], f"borg stopped while restoring this file: {reason}")
                attempted = set(listed)
                pending = [name for name in pending if name not in attempted]
                aborts += 1
                if run.timed_out or not listed or aborts >= MAX_ABORTS:
                    why = ("borg stopped before reaching this file" if not listed or run.timed_out
                           else f"not attempted after {aborts} interrupted extractions")
                    for name in pending:
                        outcome.errors.setdefault(by_name[name], f"not restored ({why}): {reason}")
                    break
        outcome.tool_verified = clean and not outcome.errors and bool(paths)
        return outcome

    def _collect(self, rel: str, targets: dict[str, str], outcome: RestoreOutcome) -> None:
        if rel in outcome.errors:
            return
        target = targets[rel]
        if os.path.isfile(target) and not os.path.islink(target):
            outcome.restored[rel] = target
        else:
            outcome.errors[rel] = "borg listed it but no restored file was found"

    def _extract(self, snapshot: Snapshot, names: list[str], scratch: str,
                 timeout: float) -> tuple[ToolRun, _ExtractRun]:
        said = _ExtractRun()
        secret = self._secret_or_none()
        wanted = set(names)

        def on_line(line: str) -> None:
            parsed = self._log_message(line)
            if parsed is None:
                if line.strip() and not line.startswith("{") and len(said.other) < 20:
                    said.other.append(redact(line.strip(), [secret]))
                return
            name, level, _, message = parsed
            if name == "borg.output.list":
                said.listed.append(message)
            elif level in ("ERROR", "CRITICAL") and not message.startswith("Traceback"):
                said.errors.append(redact(message.strip(), [secret]))
            elif level == "WARNING" and not _NEVER_MATCHED.match(message):
                named = _named_file(message, wanted)
                if named is not None:
                    said.file_warnings[named] = redact(message[len(named) + 2:].strip(), [secret])
                elif len(said.other) < 20:
                    said.other.append(redact(message.strip(), [secret]))

        run = self._run("extract", "--log-json", "--list", "--lock-wait", LOCK_WAIT, "--noacls", "--noxattrs",
                        "--noflags", self._archive(snapshot), *[f"pf:{name}" for name in names],
                        timeout=timeout, cwd=scratch, on_stderr_line=on_line)
        return run, said
