"""One restore test: sample, restore with the backup tool, compare, certify, clean up.

The verdict rules, in the words the certificate uses:

* ``ok``: the restored copy is byte-identical (SHA-256) to the source file,
  which has not changed since the backup;
* ``ok_manifest``: the source changed after the backup, so it cannot be the
  reference; the restored copy matches what the backup itself recorded (size,
  plus borg's content hash or restic's own ``--verify``);
* ``mismatch``: the restored copy differs from an unchanged source, or from the
  backup's own record: the backup is damaged;
* ``not_restored``: the tool could not give the file back;
* ``missing``: the file is older than the backup but the backup does not have it
  (a folder left out, a backup that stopped picking up new data);
* ``skipped``: nothing to compare with (created after the backup, or changed
  after a plain copy that keeps no hashes); not a failure.

A test passes when at least one file was checked and none failed. Whatever
happens, the scratch copy is deleted: it holds a comune's personal data.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from custode.agent import __version__
from custode.agent.clock import Clock, current_time
from custode.agent.restore.backends.base import Backend
from custode.agent.restore.files import is_hash_error
from custode.agent.restore.model import (
    CHECKED_RESULTS,
    FAILED_RESULTS,
    VERIFIED_RESULTS,
    FileEntry,
    FileResult,
    ManifestEntry,
    RestoreError,
    RestoreOutcome,
    RestoreTrigger,
    Snapshot,
)
from custode.agent.restore.sampling import Sample, SamplePolicy, Sampler

log = logging.getLogger(__name__)

@dataclass
class RestoreRequest:
    """What to test and who asked; the backend is already built (and owns its connection)."""

    set_name: str
    backend: Backend
    source: str
    repository: str
    tenant: str | None = None
    host: str | None = None
    policy: SamplePolicy = field(default_factory=SamplePolicy)
    trigger: str = RestoreTrigger.MANUAL
    """A :class:`RestoreTrigger` value."""
    scratch_parent: str | None = None
    max_backup_age: float | None = None
    """Seconds; an older latest backup is an error (the backup has stopped), checked before restoring."""


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in a container is not worth failing a test for
        return "unknown"


def certificate_digest(certificate: dict) -> str:
    """SHA-256 of the canonical JSON without the ``sha256`` key: matches a page or a file to its audit record."""
    body = {k: v for k, v in certificate.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")).hexdigest()


def _verdict(entry: FileEntry, snapshot: Snapshot, item: ManifestEntry | None, outcome: RestoreOutcome,
             restored_hash: str | None, source_hash: str | None, tolerance: float) -> tuple[FileResult, str | None]:
    if item is None:
        if entry.mtime > snapshot.time + tolerance:
            return FileResult.SKIPPED, "created or changed after the backup; the next backup will include it"
        return FileResult.MISSING, (f"the file dates from {_iso(entry.mtime)}, before the backup of "
                                    f"{_iso(snapshot.time)}, but the backup does not contain it")
    if entry.path in outcome.errors:
        return FileResult.NOT_RESTORED, outcome.errors[entry.path]
    if restored_hash is None:
        return FileResult.NOT_RESTORED, "the backup tool did not restore it"
    if is_hash_error(restored_hash):
        return FileResult.NOT_RESTORED, "restored copy unreadable: " + restored_hash[len("error:"):].strip()
    changed = entry.mtime > item.mtime + tolerance
    readable = source_hash is not None and not is_hash_error(source_hash)
    if not changed and readable:
        if restored_hash == source_hash:
            return FileResult.OK, None
        return FileResult.MISMATCH, (f"restored copy differs from the source, which has not changed since the "
                                     f"backup (source {entry.size} bytes, backup recorded {item.size} bytes)")
    why = "changed at the source after the backup" if changed else f"source unreadable ({source_hash})"
    if item.sha256 is None and not outcome.tool_verified:
        return FileResult.SKIPPED, why + "; the backup keeps no content hash to compare with"
    if item.sha256 is None or restored_hash == item.sha256:  # restic: its --verify vouched for the content
        return FileResult.OK_MANIFEST, why + "; the restored copy matches the backup's own record"
    return FileResult.MISMATCH, why + "; the restored copy does not match the backup's own content hash"


class RestoreTest:
    def __init__(self, request: RestoreRequest, clock: Clock = current_time) -> None:
        self.request = request
        self.clock = clock
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def run(self) -> dict:
        request = self.request
        started = self.clock()
        certificate = self._skeleton(started)
        try:
            self._run(certificate)
        except RestoreError as exc:
            self.errors.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must still give a failed certificate, not no record
            log.exception("restore test crashed", extra={"set": request.set_name})
            self.errors.append(f"internal error in Custode ({type(exc).__name__}: {exc}); see the agent log")
        finally:
            try:
                request.backend.close()
            except Exception:  # noqa: BLE001
                log.warning("closing the backend failed", exc_info=True)
        finished = self.clock()
        files = certificate["files"]
        certificate.update(
            finished_at=_iso(finished), duration_seconds=round(finished - started, 3),
            files_checked=sum(1 for f in files if f["result"] in CHECKED_RESULTS),
            files_verified=sum(1 for f in files if f["result"] in VERIFIED_RESULTS),
            mismatches=[f["path"] for f in files if f["result"] in FAILED_RESULTS],
            errors=self.errors, warnings=self.warnings)
        if certificate["files_checked"] == 0 and not self.errors:
            self.errors.append("no file could be checked: the sample is empty (empty source folder, or every "
                               "file is newer than the backup or larger than the byte budget)")
        certificate["passed"] = not certificate["mismatches"] and not self.errors
        certificate["sha256"] = certificate_digest(certificate)
        return certificate

    def _skeleton(self, started: float) -> dict:
        request = self.request
        return {
            "kind": "custode.restore-test", "version": 1, "id": str(uuid.uuid4()),
            "set": request.set_name, "tenant": request.tenant, "backend": request.backend.kind,
            "repository": request.repository, "source": request.source, "host": request.host,
            "snapshot": None, "started_at": _iso(started), "finished_at": None, "duration_seconds": None,
            "run_by": {"trigger": request.trigger, "user": _user(), "hostname": socket.gethostname(),
                       "custode_version": __version__},
            "tools": {}, "sample": None, "files": [], "files_checked": 0, "files_verified": 0,
            "mismatches": [], "errors": [], "warnings": [],
            "restore": {"bytes": 0, "seconds": 0.0, "throughput_bytes_per_second": None}, "passed": False,
        }

    def _run(self, certificate: dict) -> None:
        request, backend = self.request, self.request.backend
        certificate["tools"][backend.kind] = backend.tool_version()
        snapshot = backend.latest_snapshot()
        certificate["snapshot"] = {"id": snapshot.id, "time": _iso(snapshot.time), "paths": snapshot.paths,
                                   "hostname": snapshot.hostname}
        age = self.clock() - snapshot.time
        if request.max_backup_age is not None and age > request.max_backup_age:
            self.errors.append(f"the latest backup is from {_iso(snapshot.time)}, {age / 86400:.1f} days ago "
                               f"(the set allows {request.max_backup_age / 86400:g}): the backup seems to have "
                               "stopped; check the backup job")
        sample = self._sample(snapshot)
        certificate["sample"] = {"requested": request.policy.count, "max_bytes": request.policy.max_bytes,
                                 "recent": request.policy.recent, "seed": sample.seed,
                                 "source_files": sample.source_files, "source_bytes": sample.source_bytes,
                                 "selected": len(sample.chosen), "selected_bytes": sample.selected_bytes,
                                 "strata": sample.strata}
        paths = [entry.path for entry, _ in sample.chosen]
        manifest = backend.manifest(snapshot, paths) if paths else {}
        to_restore = [p for p in paths if p in manifest]
        outcome = RestoreOutcome()
        restored_hashes: dict[str, str] = {}
        source_hashes: dict[str, str] = {}
        if to_restore:
            scratch = backend.fs.make_scratch(request.scratch_parent)
            try:
                outcome = backend.restore(snapshot, to_restore, scratch)
                restored_hashes = self._hash(outcome.restored)
                source_hashes = self._hash({p: backend.fs.join(request.source, p) for p in to_restore})
            finally:
                self._remove(scratch)
        self.errors.extend(outcome.messages)
        for entry, stratum in sample.chosen:
            item = manifest.get(entry.path)
            result, detail = _verdict(entry, snapshot, item, outcome, restored_hashes.get(entry.path),
                                      source_hashes.get(entry.path), backend.mtime_tolerance)
            certificate["files"].append({
                "path": entry.path, "size": entry.size, "mtime": _iso(entry.mtime), "stratum": stratum,
                "result": result, "source_sha256": _clean(source_hashes.get(entry.path)),
                "restored_sha256": _clean(restored_hashes.get(entry.path)),
                "manifest_sha256": item.sha256 if item else None, "detail": detail})
        restored_bytes = sum(entry.size for entry, _ in sample.chosen if entry.path in outcome.restored)
        certificate["restore"] = {
            "bytes": restored_bytes, "seconds": round(outcome.seconds, 3),
            "throughput_bytes_per_second": round(restored_bytes / outcome.seconds, 1) if outcome.seconds > 0 else None}

    def _sample(self, snapshot: Snapshot) -> Sample:
        request, fs = self.request, self.request.backend.fs
        fs.walk_errors = []
        sample = Sampler(request.policy, snapshot.time).feed(fs.walk(request.source)).sample()
        if fs.walk_errors:
            shown = fs.walk_errors[:20]
            self.warnings.append(f"{len(fs.walk_errors)} source entries could not be read and were not sampled: "
                                 + "; ".join(shown) + (" …" if len(fs.walk_errors) > len(shown) else ""))
        return sample

    def _hash(self, where: dict[str, str]) -> dict[str, str]:
        by_location = self.request.backend.fs.sha256(list(where.values()))
        return {path: by_location.get(location, "error: not hashed") for path, location in where.items()}

    def _remove(self, scratch: str) -> None:
        try:
            self.request.backend.fs.remove_tree(scratch)
        except Exception as exc:  # noqa: BLE001 - the verdict stands; the leftover is reported loudly
            self.warnings.append(f"the scratch copy {scratch} could not be deleted ({exc}); delete it by hand, "
                                 "it contains restored data")
            log.error("restore scratch directory left behind", extra={"path": scratch, "error": str(exc)})


def _clean(digest: str | None) -> str | None:
    return None if digest is None or is_hash_error(digest) else digest
