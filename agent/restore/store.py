"""Restore-test results and backup coverage in the state DB.

The certificate itself is a file (JSON and a readable page) plus a full copy in
the audit log; the DB keeps the figures the metrics, ``restore-test list`` and
the overdue check need, and when each unprotected path was first seen (the
incident says "new" only for what was not there at the previous check).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from custode.agent.state import State


def _epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


@dataclass(frozen=True)
class CoverageRow:
    path: str
    kind: str
    protected: bool
    reason: str
    size_bytes: int | None
    first_seen: float


class RestoreStore:
    def __init__(self, state: State) -> None:
        self.state = state

    # --- restore tests --------------------------------------------------------------

    def record_test(self, tenant: str, certificate: dict, certificate_path: str | None) -> None:
        summary = "passed" if certificate["passed"] else "; ".join(
            (certificate["errors"] or [])[:3] + [f"{len(certificate['mismatches'])} files failed"]
            * bool(certificate["mismatches"]))
        snapshot = certificate.get("snapshot") or {}
        with self.state.transaction() as db:
            db.execute(
                "INSERT INTO restore_tests (certificate_id, set_name, tenant, backend, trigger, started_at, "
                "finished_at, passed, files_checked, files_verified, mismatches, restored_bytes, restore_seconds, "
                "snapshot_time, summary, certificate_path, sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (certificate["id"], certificate["set"], tenant, certificate["backend"],
                 certificate["run_by"]["trigger"], _epoch(certificate["started_at"]),
                 _epoch(certificate["finished_at"]), int(certificate["passed"]), certificate["files_checked"],
                 certificate["files_verified"], len(certificate["mismatches"]), certificate["restore"]["bytes"],
                 certificate["restore"]["seconds"], _epoch(snapshot.get("time")), summary[:2000], certificate_path,
                 certificate["sha256"]))

    def latest(self) -> dict[str, sqlite3.Row]:
        """The last test of every set that has one."""
        rows = self.state.query(
            "SELECT * FROM restore_tests t WHERE id = (SELECT MAX(id) FROM restore_tests WHERE set_name = t.set_name)")
        return {row["set_name"]: row for row in rows}

    def last_passed(self) -> dict[str, float]:
        rows = self.state.query("SELECT set_name, MAX(finished_at) AS at FROM restore_tests WHERE passed = 1 "
                                "GROUP BY set_name")
        return {row["set_name"]: row["at"] for row in rows}

    def history(self, set_name: str | None = None, limit: int = 50) -> list[sqlite3.Row]:
        where, params = ("WHERE set_name = ?", (set_name,)) if set_name else ("", ())
        return self.state.query(f"SELECT * FROM restore_tests {where} ORDER BY id DESC LIMIT ?", (*params, limit))

    def tests_between(self, tenant: str, start: float, end: float) -> list[sqlite3.Row]:
        """``tenant``'s tests finished in ``[start, end)``, oldest first (the quarterly and yearly reports)."""
        return self.state.query("SELECT * FROM restore_tests WHERE tenant = ? AND finished_at >= ? AND finished_at < ? "
                                "ORDER BY finished_at, id", (tenant, start, end))

    def find(self, certificate_id: str) -> sqlite3.Row | None:
        rows = self.state.query("SELECT * FROM restore_tests WHERE certificate_id = ? OR certificate_id LIKE ? "
                                "ORDER BY id DESC LIMIT 2", (certificate_id, certificate_id + "%"))
        return rows[0] if len(rows) == 1 or (rows and rows[0]["certificate_id"] == certificate_id) else None

    # --- coverage ---------------------------------------------------------------------

    def record_coverage(self, set_name: str, tenant: str, included: list[str], items: list, truncated: bool,
                        errors: list[str], now: float) -> list[CoverageRow]:
        """Replace the set's coverage with this check; return the unprotected paths not seen unprotected before.

        ``items`` are coverage items (path, kind, protected, reason, size_bytes). A path that became protected
        and then unprotected again counts as new again: someone should look at it.
        """
        with self.state.transaction() as db:
            before = {row["path"]: row for row in db.execute(
                "SELECT path, protected, first_seen FROM coverage_items WHERE set_name = ?", (set_name,))}
            db.execute("DELETE FROM coverage_items WHERE set_name = ?", (set_name,))
            new: list[CoverageRow] = []
            for item in items:
                old = before.get(item.path)
                first_seen = old["first_seen"] if old is not None and bool(old["protected"]) == item.protected \
                    else now
                db.execute("INSERT INTO coverage_items (set_name, path, tenant, kind, protected, reason, size_bytes, "
                           "first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)",
                           (set_name, item.path, tenant, item.kind, int(item.protected), item.reason,
                            item.size_bytes, first_seen, now))
                if not item.protected and first_seen == now:
                    new.append(CoverageRow(item.path, item.kind, False, item.reason, item.size_bytes, now))
            unprotected = sum(1 for item in items if not item.protected)
            db.execute("INSERT INTO coverage_runs (set_name, tenant, checked_at, included, unprotected, truncated, "
                       "errors) VALUES (?,?,?,?,?,?,?) ON CONFLICT(set_name) DO UPDATE SET tenant = excluded.tenant, "
                       "checked_at = excluded.checked_at, included = excluded.included, "
                       "unprotected = excluded.unprotected, truncated = excluded.truncated, errors = excluded.errors",
                       (set_name, tenant, now, json.dumps(included), unprotected, int(truncated), json.dumps(errors)))
        return new

    def coverage_runs(self) -> dict[str, sqlite3.Row]:
        return {row["set_name"]: row for row in self.state.query("SELECT * FROM coverage_runs")}

    def coverage_of(self, tenant: str) -> list[sqlite3.Row]:
        """Every path of ``tenant``'s sets as their last coverage check left it, by set and path."""
        return self.state.query("SELECT * FROM coverage_items WHERE tenant = ? ORDER BY set_name, path", (tenant,))

    def unprotected(self, set_name: str) -> list[CoverageRow]:
        rows = self.state.query("SELECT * FROM coverage_items WHERE set_name = ? AND protected = 0 ORDER BY path",
                                (set_name,))
        return [CoverageRow(r["path"], r["kind"], False, r["reason"], r["size_bytes"], r["first_seen"]) for r in rows]
