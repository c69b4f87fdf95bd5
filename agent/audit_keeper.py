"""The audit log as the agent and the CLI write it: held to the head the state database keeps.

:class:`custode.agent.audit.AuditLog` writes the chain; this keeps it honest
from outside the file, which is the only place a cut end can be seen from:

* before every append the file's last record must be the head kept in the
  state database (seq, hash and where its line ends), or continue it; a
  shorter, rewritten or replaced log is not appended to, so records written
  on top cannot grow it back past the kept head and make the cut invisible;
* a record the log cannot take (cut, garbage, read-only, full disk) is held
  in the state database's ``audit_held`` table, or in memory when the
  database cannot take it either (the log line then carries a copy), and
  goes into the log, in order and with its own time, as soon as the log is
  whole again (after a restore, or ``custode audit new-log``);
* start-up verifies the chain from the last verified record (the
  checkpoint: seq, hash and byte offset), so its cost is what was written
  since, not years of log; ``custode audit verify`` still reads it all.

:meth:`AuditKeeper.status` is an in-memory answer, for the health gauges.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from custode.agent.audit import NEW_LOG_ACTION, AuditError, AuditLog, Entry, Head, Held, make_entry, verify
from custode.agent.clock import Clock, current_time, now_utc
from custode.agent.state import State
from custode.agent.storage_errors import MIN_FREE_BYTES, explain_file, explain_state, free_bytes
from custode.agent.table import human_bytes

__all__ = ["AuditKeeper", "AuditStatus", "MEMORY_LIMIT", "RELEASE_BATCH"]

log = logging.getLogger(__name__)

RELEASE_BATCH = 5000
"""Held records written per append: a long outage is caught up over a few appends, not in one huge write."""
MEMORY_LIMIT = 10_000
"""Records held in memory when the state database cannot take them either; each log line keeps a copy too."""


@dataclass(frozen=True)
class AuditStatus:
    """What the last append, probe and verification found: ``reason`` names the file and the fix."""

    ok: bool
    reason: str | None
    held: int
    """Records waiting outside the log (state database and memory)."""


class AuditKeeper:
    """An :class:`AuditLog` with the state database as its keeper (the ``Keeper`` protocol), and its status.

    ``write`` is the ``AuditWriter`` features are handed: it never raises."""

    def __init__(self, state: State, path: str | Path, actor: str = "agent", clock: Clock = current_time) -> None:
        self.state = state
        self.path = Path(path)
        self.clock = clock
        self.log = AuditLog(self.path, actor=actor, keeper=self)
        self._lock = threading.Lock()
        self._known: Head | None = None      # the last head this process wrote or verified
        self._unsaved: Head | None = None    # one it wrote but could not store in the state database
        self._memory: list[Held] = []
        self._released: set[int] = set()     # held rows written but not yet deleted (a failed delete)
        self._write_problem: str | None = None
        self._verify_problem: str | None = None
        self._held_in_db = 0
        self._quiet: set[str] = set()        # state-database complaints already logged once

    # --- the Keeper protocol (AuditLog calls these under its locks) ------------------------------

    def expected_head(self) -> Head | None:
        try:
            row = self.state.audit_head()
        except sqlite3.Error as exc:
            self._complain("anchor", exc, "cannot read the audit log's head from the state database; "
                                          "checking the log against the head this process knows")
            return self._known
        head = Head(*row) if row else None
        if self._unsaved is not None and (head is None or self._unsaved.seq > head.seq):
            return self._unsaved
        return head

    def held(self) -> Sequence[Held]:
        rows: list[Held] = []
        try:
            for row in self.state.held_audit_records(RELEASE_BATCH):
                if row["id"] in self._released:
                    continue
                entry = Entry(row["ts"], row["actor"], row["action"], row["subject"], json.loads(row["details"]))
                rows.append(Held(entry, row["reason"], self._db_place(), int(row["id"])))
        except (sqlite3.Error, ValueError) as exc:
            self._complain("held", exc, "cannot read the audit records held in the state database")
        with self._lock:
            rows += self._memory[:max(0, RELEASE_BATCH - len(rows))]
        return rows

    def written(self, head: Head, released: Sequence[Held]) -> None:
        self._known = head
        try:
            self.state.set_audit_anchor(head.seq, head.hash, head.end)
            self._unsaved = None
        except sqlite3.Error as exc:
            self._unsaved = head
            self._complain("anchor-write", exc, "cannot store the audit log's head in the state database; "
                                                "this process keeps checking against it in memory")
        ids = [h.key for h in released if isinstance(h.key, int)]
        if ids:
            self._released.update(ids)
            try:
                self.state.release_audit_records(ids)
                self._released.difference_update(ids)
                self._held_in_db = max(0, self._held_in_db - len(ids))
            except sqlite3.Error as exc:
                self._complain("release", exc, "held audit records are in the log but still in the state "
                                               "database; they are not written twice by this process")
        gone = {id(h) for h in released}
        with self._lock:
            self._memory = [h for h in self._memory if id(h) not in gone]
        if released:
            log.warning("held audit records written to the log", extra={
                "audit_log": str(self.path), "records": len(released), "head": head.seq})

    # --- writing ------------------------------------------------------------------------------------

    def write(self, action: str, subject: str | None, details: dict) -> None:
        """Append, or hold the record and say where: a damaged audit log must not stop monitoring."""
        try:
            entry = self.log.entry(action, subject, details)
        except ValueError as exc:
            log.error("audit record refused", extra={"action": action, "error": str(exc)})
            return
        try:
            self.log.append_entry(entry)
        except Exception as exc:  # noqa: BLE001 - every failure holds the record; none is fatal
            reason = self._reason(exc)
            self._write_problem = reason
            held_in = self._hold(entry, reason)
            extra: dict[str, object] = {"audit_log": str(self.path), "action": action, "subject": subject,
                                        "reason": reason, "held_in": held_in}
            if not held_in.startswith("state database"):
                extra["record"] = {"ts": entry.ts, "actor": entry.actor, "action": entry.action,
                                   "subject": entry.subject, "details": entry.details}
            log.error("audit record not written to the log; it is held until the log can take it", extra=extra)
        else:
            self._write_problem = None

    def _hold(self, entry: Entry, reason: str) -> str:
        try:
            self.state.hold_audit_record(entry.ts, entry.actor, entry.action, entry.subject,
                                         json.dumps(entry.details, ensure_ascii=False), reason)
            self._held_in_db += 1
            return self._db_place()
        except sqlite3.Error as exc:
            self._complain("hold", exc, "cannot hold audit records in the state database either; "
                                        "holding them in memory")
        with self._lock:
            if len(self._memory) >= MEMORY_LIMIT:
                return "this log line only (the in-memory hold is full)"
            self._memory.append(Held(entry, reason, "memory"))
        return "memory, until the log or the state database can take it (this log line keeps a copy)"

    def _db_place(self) -> str:
        return f"state database table audit_held ({self.state.path})"

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, AuditError):
            return str(exc)
        if isinstance(exc, OSError):
            return explain_file(exc, self.path)
        return f"cannot write audit log {self.path}: {exc}"

    # --- checks ----------------------------------------------------------------------------------------

    def check(self) -> AuditStatus:
        """The periodic probe: write what is held (or check an append would work) and look at free space."""
        try:
            self.log.release()
        except Exception as exc:  # noqa: BLE001 - the reason is the status
            self._write_problem = self._reason(exc)
        else:
            free = free_bytes(self.path)
            self._write_problem = None if free is None or free >= MIN_FREE_BYTES else (
                explain_file(OSError(28, "No space left on device"), self.path)
                + f" (less than {human_bytes(MIN_FREE_BYTES)} free)")
        try:
            self._held_in_db = self.state.held_audit_summary()[0]
        except sqlite3.Error:
            pass
        return self.status()

    def verify_from_checkpoint(self) -> AuditStatus:
        """Verify what was written since the last verified record, and move the checkpoint to the new end.

        At start-up and then periodically; the first run (no checkpoint yet)
        reads the whole log once."""
        try:
            checkpoint = self.state.audit_checkpoint()
            anchor = self.expected_head()
        except sqlite3.Error as exc:
            self._complain("checkpoint", exc, "cannot read the audit checkpoint; the log is not verified now")
            return self.status()
        if not self.path.exists():
            self._verify_problem = None if anchor is None or anchor.seq == 0 else (
                f"audit log {self.path} is missing, but the state database says {anchor.seq} records were written "
                "to it: it was deleted or moved. Restore it from backup, or start a new log with "
                "'custode audit new-log --reason ...'")
            return self._verified(None)
        start = Head(*checkpoint) if checkpoint else None
        result = verify(self.path, expected_head=anchor, start=start)
        good = result.ok or result.torn  # an unfinished last line is recovered by the next append
        if not good:
            self._verify_problem = f"audit log {self.path} is damaged: {result.reason}"
            return self._verified(result.reason)
        self._verify_problem = None
        if result.head is not None:
            try:
                self.state.set_audit_checkpoint(result.head.seq, result.head.hash, result.head.end or 0,
                                                self.clock())
                if anchor is not None and anchor.end is None and result.expected_end is not None:
                    self.state.set_audit_anchor(anchor.seq, anchor.hash, result.expected_end)
                if anchor is None:
                    log.warning("no head of the audit log is kept in the state database (a new state "
                                "database?); the chain was verified and its last record is taken as the head",
                                extra={"audit_log": str(self.path), "records": result.records})
                    self.state.set_audit_anchor(result.head.seq, result.head.hash, result.head.end)
            except sqlite3.Error as exc:
                self._complain("checkpoint-write", exc, "cannot store the audit checkpoint")
            self._known = self._known or result.head
        verified = result.records - (start.seq if start else 0)
        log.info("audit log verified", extra={"audit_log": str(self.path), "records": result.records,
                                              "verified": verified, "from_seq": start.seq if start else 0})
        return self._verified(None)

    def _verified(self, problem: str | None) -> AuditStatus:
        if problem is not None:
            log.error("audit log verification failed", extra={"audit_log": str(self.path), "reason": problem})
        return self.status()

    @property
    def verify_problem(self) -> str | None:
        """What the last verification of the chain found wrong (None: nothing, or not verified yet)."""
        return self._verify_problem

    def status(self) -> AuditStatus:
        """In memory: what the last append, probe and verification found."""
        with self._lock:
            held = self._held_in_db + len(self._memory)
        problem = self._verify_problem or self._write_problem
        return AuditStatus(problem is None, problem, held)

    def _complain(self, what: str, exc: Exception, message: str) -> None:
        """Say once per kind of trouble what the state database stops the audit keeper from doing."""
        if what in self._quiet:
            return
        self._quiet.add(what)
        log.error(message, extra={"audit_log": str(self.path), "state_db": str(self.state.path),
                                  "error": explain_state(exc, self.state.path)})

    # --- a new log, after damage -----------------------------------------------------------------------

    def start_new_log(self, reason: str, actor: str) -> tuple[dict, Path | None]:
        """Keep the damaged file beside it, forget its head, and start a new chain whose record 1 says why.

        Refused (AuditError) while the log is intact: a new log is the way out
        of damage, not a way to drop records."""
        anchor = self.expected_head()
        damage: str | None
        if self.path.exists():
            result = verify(self.path, expected_head=anchor)
            damage = None if result.ok or result.torn else result.reason
            if damage is None:
                raise AuditError(f"audit log {self.path} is intact ({result.records} records, matching the head "
                                 "kept in the state database): there is no damage to start a new log for")
        elif anchor is None or anchor.seq == 0:
            raise AuditError(f"audit log {self.path} does not exist yet and nothing was written to it: "
                             "Custode creates it with the first record")
        else:
            damage = f"the file is missing; {anchor.seq} records had been written to it"
        stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
        keep_as = self.path.with_name(f"{self.path.name}.broken-{stamp}") if self.path.exists() else None
        previous = {"seq": anchor.seq, "hash": anchor.hash} if anchor else None

        def first_record(kept: Path | None) -> Entry:
            details: dict[str, object] = {"reason": reason, "damage": damage, "previous_head": previous}
            if kept is not None:
                details.update({"previous_file": str(kept), **_file_digest(kept)})
            return make_entry(NEW_LOG_ACTION, str(self.path), details, actor)

        def reset() -> None:
            self.state.reset_audit_chain()
            self._known = self._unsaved = None

        record = self.log.start_new_log(first_record, keep_as, reset)
        self._write_problem = self._verify_problem = None
        return record, keep_as


def _file_digest(path: Path) -> dict[str, object]:
    """SHA-256 and size of the old file, so the new log pins exactly what was kept as evidence."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return {"previous_sha256": digest.hexdigest(), "previous_bytes": size}
