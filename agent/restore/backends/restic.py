"""Restore tests against a restic repository, driven through restic's own CLI and JSON output.

restic is the judge of its own data: ``restore --verify`` re-reads every
restored file and checks it against the blob hashes in the snapshot, and a
damaged pack shows up as ``ignoring error for /path: ciphertext verification
failed``. This backend turns that output into per-file results; it never
decides on content itself (the engine compares hashes with the source).

The process helpers it shares with ``borg.py`` live in ``process.py``.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import socket
import time

from custode.agent.restore.backends.base import Backend
from custode.agent.restore.backends.process import (
    ToolRun,
    chunked,
    covers,
    find_named_path,
    parse_timestamp,
    redact,
    run_tool,
)
from custode.agent.restore.files import LocalFileSystem
from custode.agent.restore.model import ManifestEntry, RestoreError, RestoreOutcome, Snapshot

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- restic

PACKAGE = "restic"
_METADATA_ONLY = re.compile(r"(?i)\b(lchown|chown|chmod|setxattr|lsetxattr|xattr|utimes|utimesnano|lutimes|"
                            r"restoremetadata|extended attribute)\b")
"""Complaints about ownership, mode, times or xattrs: the content was written, the engine still hashes it."""
_RESTIC_SPECIAL = re.compile(r"([*?\[\]\\])")


def _include_pattern(path: str) -> str:
    """A restic ``--include`` pattern matching exactly ``path`` (glob characters escaped)."""
    return _RESTIC_SPECIAL.sub(r"\\\1", path)


def _normalise_root(path: str) -> str:
    root = posixpath.normpath("/" + path.replace("\\", "/").lstrip("/"))
    return "/" if root in ("/", "//") else root.rstrip("/")


class ResticBackend(Backend):
    """A restic repository on a local disk, a mounted share, or any remote restic can reach (sftp, rest, s3)."""

    kind = "restic"
    mtime_tolerance = 0.0  # restic stores and prints nanoseconds; parse_timestamp keeps them

    def __init__(self, repository: str, source: str, *, password: str | None = None,
                 password_file: str | None = None, binary: str = "restic", path_in_backup: str | None = None,
                 extra_env: dict[str, str] | None = None, timeout: float = 3600.0,
                 cache_dir: str | None = None) -> None:
        self.repository = repository
        self.source = source
        self.root = _normalise_root(path_in_backup or source)
        """Where the source root lies inside the snapshots (restic keeps absolute paths)."""
        self.password = password
        self.password_file = password_file
        self.binary = binary
        self.extra_env = dict(extra_env or {})
        self.timeout = timeout
        self.cache_dir = cache_dir
        self.fs = LocalFileSystem()

    # -- plumbing

    @property
    def where(self) -> str:
        return f"restic repository {redact(self.repository, [self.password])}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env.pop("RESTIC_REPOSITORY_FILE", None)
        env["RESTIC_REPOSITORY"] = self.repository  # env, not argv: URLs may carry credentials
        if self.password is not None or self.password_file is not None:
            for name in ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND"):
                env.pop(name, None)
            if self.password is not None:
                env["RESTIC_PASSWORD"] = self.password
            else:
                env["RESTIC_PASSWORD_FILE"] = str(self.password_file)
        env.setdefault("RESTIC_PROGRESS_FPS", "0.2")  # no progress redraws flooding stderr
        return env

    def _argv(self, *args: str) -> list[str]:
        cache = ["--cache-dir", self.cache_dir] if self.cache_dir else ["--no-cache"]
        return [self.binary, *cache, *args]

    def _run(self, *args: str, timeout: float | None = None, **kwargs) -> ToolRun:
        return run_tool(self._argv(*args), env=self._env(), timeout=self.timeout if timeout is None else timeout,
                        package=PACKAGE, **kwargs)

    def _failure(self, action: str, run: ToolRun) -> RestoreError:
        """The whole-test error for a failed restic command, with the fix in plain words."""
        text = run.stderr
        where = self.where
        if run.timed_out:
            why = f"restic did not finish within {run.seconds:.0f} s; check that the repository is reachable"
        elif "wrong password" in text:
            why = ("wrong repository password (or no key matches it): check the password or password file "
                   "configured for this restore set")
        elif "empty password" in text or "reading repository password from stdin" in text:
            why = "no repository password given: set the password (or password file) for this restore set"
        elif "Resolving password failed" in text:
            why = f"the password file could not be read ({self._quote(run)}): fix the password file path"
        elif "Is there a repository at the following location" in text or "unable to open config file" in text:
            why = ("there is no restic repository at this location: check the repository path, and that the "
                   "backup disk or share is mounted")
        elif "already locked" in text:
            why = (f"the repository is locked by another restic process ({self._quote(run)}); retry later, or run "
                   "'restic unlock' if no backup or prune is running")
        elif "unable to open repository" in text or "unable to start the sftp session" in text:
            why = f"the repository cannot be reached ({self._quote(run)}): check the network and the credentials"
        else:
            code = "timeout" if run.exit_code is None else f"exit code {run.exit_code}"
            why = f"restic failed ({code}): {self._quote(run)}"
        return RestoreError(f"{where}: cannot {action}: {why}")

    def _quote(self, run: ToolRun) -> str:
        return redact(run.tail(2), [self.password]) or "no message"

    def _in_backup(self, relative: str) -> str:
        return posixpath.join(self.root, relative) if self.root != "/" else "/" + relative

    # -- the Backend contract

    def tool_version(self) -> str:
        run = self._run("version", timeout=min(self.timeout, 60.0))
        if not run.ok:
            raise RestoreError(f"{self.binary} version failed ({self._quote(run)}): reinstall the Debian package "
                               f"{PACKAGE}")
        return run.stdout.strip().splitlines()[0] if run.stdout.strip() else "restic (unknown version)"

    def latest_snapshot(self) -> Snapshot:
        """The newest snapshot that includes the source root, preferring snapshots taken by this machine.

        A repository shared by several hosts may hold the same path for each of
        them; the source is on this machine, so its own snapshots come first,
        falling back to any host (backups run in a container or with ``--host``).
        """
        run = self._run("snapshots", "--json")
        if not run.ok:
            raise self._failure("list the snapshots", run)
        try:
            snapshots = json.loads(run.stdout or "[]") or []
        except json.JSONDecodeError as exc:
            raise RestoreError(f"{self.where}: 'restic snapshots --json' printed something that is not JSON "
                               f"({exc}); check the restic version") from None
        if not snapshots:
            raise RestoreError(f"{self.where}: the repository has no snapshots; run the backup first")
        matching = [s for s in snapshots if any(covers(_normalise_root(p), self.root) for p in s.get("paths") or [])]
        if not matching:
            seen = sorted({p for s in snapshots for p in s.get("paths") or []})
            raise RestoreError(f"{self.where}: none of its {len(snapshots)} snapshots includes {self.root} (they "
                               f"cover {', '.join(seen[:10]) or 'nothing'}); fix 'source', or set 'path_in_backup' "
                               "when the data was backed up under another path")
        host = socket.gethostname()
        own = [s for s in matching if s.get("hostname") == host] or matching
        newest = max(own, key=lambda s: parse_timestamp(s["time"]))
        return Snapshot(id=newest["id"], time=parse_timestamp(newest["time"]), paths=list(newest.get("paths") or []),
                        hostname=newest.get("hostname"))

    def manifest(self, snapshot: Snapshot, paths: list[str]) -> dict[str, ManifestEntry]:
        """Sizes and mtimes from ``restic ls --json`` of just the folders holding the sampled files.

        Listing only those folders (not ``--recursive`` from the root) keeps a
        1000-file sample of a million-file snapshot to a few tree reads; the
        output is streamed, so a folder with 100 000 files costs no memory.
        """
        wanted = {self._in_backup(rel): rel for rel in paths}
        found: dict[str, ManifestEntry] = {}
        bad_lines: list[str] = []

        def on_line(line: str) -> None:
            if not line.startswith("{"):
                return
            try:
                node = json.loads(line)
            except json.JSONDecodeError:
                if len(bad_lines) < 5:
                    bad_lines.append(line[:200])
                return
            rel = wanted.get(node.get("path", ""))
            if rel is not None and node.get("struct_type", "node") == "node" and node.get("type") == "file":
                found[rel] = ManifestEntry(size=int(node.get("size") or 0), mtime=parse_timestamp(node["mtime"]))

        folders = sorted({posixpath.dirname(p) for p in wanted})
        for batch in chunked(folders):
            run = self._run("ls", "--json", snapshot.id, *batch, on_stdout_line=on_line)
            if not run.ok:
                raise self._failure(f"list files of snapshot {snapshot.id[:8]}", run)
        if bad_lines and not found:
            raise RestoreError(f"{self.where}: 'restic ls --json' output not understood ({bad_lines[0]!r})")
        return found

    def restore(self, snapshot: Snapshot, paths: list[str], scratch: str) -> RestoreOutcome:
        """``restic restore --include … --verify`` into ``scratch``; complaints are attributed per file.

        restic prints ``ignoring error for /path: …`` and carries on, so a
        damaged pack costs only the files whose blobs live in it; ``--verify``
        then re-reads what was written (it is skipped by restic when the restore
        itself had errors, so ``tool_verified`` is only set when it ran).
        """
        outcome = RestoreOutcome()
        deadline = time.monotonic() + self.timeout
        targets = {rel: os.path.join(scratch, self._in_backup(rel).lstrip("/")) for rel in paths}
        verified = bool(paths)
        for batch in chunked(paths, cost=lambda rel: len(self._in_backup(rel)) + len("--include ")):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for rel in batch:
                    outcome.errors[rel] = f"not restored: the restore took longer than {self.timeout:.0f} s"
                verified = False
                continue
            verified &= self._restore_batch(snapshot, batch, scratch, targets, outcome, remaining)
        outcome.tool_verified = verified and not outcome.errors
        return outcome

    def _restore_batch(self, snapshot: Snapshot, batch: list[str], scratch: str, targets: dict[str, str],
                       outcome: RestoreOutcome, timeout: float) -> bool:
        names = {self._in_backup(rel): rel for rel in batch}
        names.update({targets[rel]: rel for rel in batch})  # --verify names the restored copy
        unattributed: list[str] = []
        metadata: list[str] = []
        attributed = [0]

        def on_error(line: str) -> None:
            text = redact(line.strip(), [self.password])
            if not text or text.startswith("Fatal: There were"):
                return
            if _METADATA_ONLY.search(text):
                metadata.append(text)
                return
            rel = find_named_path(text, names)
            if rel is not None:
                attributed[0] += 1
                outcome.errors.setdefault(rel, "restic: " + text.replace("ignoring error for ", "", 1))
            elif len(unattributed) < 20:
                unattributed.append(text)

        args = ["restore", snapshot.id, "--target", scratch, "--verify"]
        for rel in batch:
            args += ["--include", _include_pattern(self._in_backup(rel))]
        run = self._run(*args, timeout=timeout, on_stderr_line=on_error)
        outcome.seconds += run.seconds
        for text in metadata[:20]:
            log.warning("%s: restore test: restic could not restore metadata (content unaffected): %s",
                        self.where, text)
        failure = None
        if run.timed_out:
            failure = f"restic restore did not finish within {run.seconds:.0f} s"
        elif not run.ok and (attributed[0] or unattributed or not metadata):
            failure = f"restic restore exited with code {run.exit_code}: {self._quote(run)}"
        if failure:
            # messages become errors of the certificate: only when restic really failed
            outcome.messages.extend(f"restic: {line}" for line in unattributed)
            outcome.messages.append(failure)
        elif unattributed:
            log.warning("%s: restore test: restic said: %s", self.where, " | ".join(unattributed))
        for rel in batch:
            if rel in outcome.errors:
                continue
            target = targets[rel]
            if os.path.isfile(target) and not os.path.islink(target):
                outcome.restored[rel] = target
            elif failure:
                outcome.errors[rel] = "not restored: " + (unattributed[0] if unattributed else failure)
            else:
                outcome.errors[rel] = f"restic did not restore it: not found in snapshot {snapshot.id[:8]}"
        return run.ok and "finished verifying" in run.stdout
