"""The state database: SQLite in WAL mode, versioned schema, one writer lock.

What must survive a restart (incidents, check states, collector health, the
audit anchor and checkpoint, audit records held while the log cannot take
them) lives here. WAL plus one transaction per logical change means a
``kill -9`` at any instant leaves either the change or nothing: SQLite's
journal guarantees the file opens consistent. Migrations are append-only SQL
scripts; ``PRAGMA user_version`` says which have run.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from custode.agent.storage_errors import Problem, classify, explain_file, explain_state

MIGRATIONS: list[str] = [
    # 1: incidents, their history, check states, collector health, audit anchor
    """
    CREATE TABLE incidents (
        id            INTEGER PRIMARY KEY,
        key           TEXT NOT NULL,
        tenant        TEXT NOT NULL,
        check_name    TEXT NOT NULL,
        target        TEXT NOT NULL,
        severity      TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
        max_severity  TEXT NOT NULL CHECK (max_severity IN ('warning', 'critical')),
        status        TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
        summary       TEXT NOT NULL,
        details       TEXT NOT NULL DEFAULT '{}',
        opened_at     REAL NOT NULL,
        last_seen_at  REAL NOT NULL,
        resolved_at   REAL,
        occurrences   INTEGER NOT NULL DEFAULT 1,
        CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
    );
    CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents(key) WHERE status = 'open';
    CREATE INDEX incidents_by_tenant ON incidents(tenant, status);

    CREATE TABLE incident_events (
        id           INTEGER PRIMARY KEY,
        incident_id  INTEGER NOT NULL REFERENCES incidents(id),
        at           REAL NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('opened', 'repeated', 'severity_changed', 'resolved')),
        severity     TEXT NOT NULL,
        message      TEXT NOT NULL
    );
    CREATE INDEX incident_events_by_incident ON incident_events(incident_id, id);

    CREATE TABLE check_states (
        key            TEXT PRIMARY KEY,
        tenant         TEXT NOT NULL,
        check_name     TEXT NOT NULL,
        target         TEXT NOT NULL,
        severity       TEXT NOT NULL CHECK (severity IN ('ok', 'warning', 'critical')),
        since          REAL NOT NULL,
        pending        TEXT CHECK (pending IN ('warning', 'critical')),
        pending_since  REAL,
        summary        TEXT NOT NULL,
        updated_at     REAL NOT NULL
    );

    CREATE TABLE collector_status (
        name                  TEXT PRIMARY KEY,
        last_run_at           REAL NOT NULL,
        success               INTEGER NOT NULL,
        duration_seconds      REAL NOT NULL,
        error                 TEXT,
        consecutive_failures  INTEGER NOT NULL DEFAULT 0,
        last_success_at       REAL
    );

    CREATE TABLE audit_anchor (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        seq   INTEGER NOT NULL,
        hash  TEXT NOT NULL
    );
    """,
    # 2: backup-report mail: per-folder cursors, every processed message, the reports, job states
    """
    CREATE TABLE mail_cursors (
        mailbox      TEXT NOT NULL,
        folder       TEXT NOT NULL,
        uidvalidity  INTEGER NOT NULL,
        last_uid     INTEGER NOT NULL,
        updated_at   REAL NOT NULL,
        PRIMARY KEY (mailbox, folder)
    );

    CREATE TABLE mail_messages (
        id            INTEGER PRIMARY KEY,
        mailbox       TEXT NOT NULL,
        folder        TEXT NOT NULL,
        uid           INTEGER,
        source_key    TEXT,
        message_id    TEXT,
        content_hash  TEXT NOT NULL,
        sender        TEXT NOT NULL,
        subject       TEXT NOT NULL,
        sent_at       REAL,
        received_at   REAL NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('report', 'not_a_report', 'error')),
        parser        TEXT,
        reason        TEXT NOT NULL DEFAULT '',
        processed_at  REAL NOT NULL
    );
    CREATE UNIQUE INDEX mail_messages_by_hash ON mail_messages(content_hash);
    CREATE INDEX mail_messages_by_message_id ON mail_messages(message_id);
    CREATE INDEX mail_messages_by_source_key ON mail_messages(mailbox, source_key);
    CREATE INDEX mail_messages_by_time ON mail_messages(processed_at);

    CREATE TABLE backup_reports (
        id           INTEGER PRIMARY KEY,
        message      INTEGER NOT NULL UNIQUE REFERENCES mail_messages(id) ON DELETE CASCADE,
        mailbox      TEXT NOT NULL,
        software     TEXT NOT NULL,
        job          TEXT,
        host         TEXT,
        sender       TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('success', 'warning', 'failure')),
        reported_at  REAL NOT NULL,
        started_at   REAL,
        finished_at  REAL,
        size_bytes   INTEGER,
        error        TEXT,
        details      TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX backup_reports_by_time ON backup_reports(reported_at);

    CREATE TABLE backup_job_states (
        tenant      TEXT NOT NULL,
        job         TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('ok', 'warning', 'failed', 'late', 'missing')),
        since       REAL NOT NULL,
        updated_at  REAL NOT NULL,
        PRIMARY KEY (tenant, job)
    );
    """,
    # 3: update runs and their steps, the per-window run lock, incident silences
    """
    CREATE TABLE update_runs (
        id           INTEGER PRIMARY KEY,
        window       TEXT NOT NULL,
        application  TEXT NOT NULL,
        tenant       TEXT,
        trigger      TEXT NOT NULL CHECK (trigger IN ('scheduled', 'manual', 'now')),
        reason       TEXT,
        playbook     TEXT NOT NULL,
        window_start REAL NOT NULL,
        window_end   REAL NOT NULL,
        started_at   REAL NOT NULL,
        ended_at     REAL,
        status       TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'rolled_back', 'failed',
                                                     'interrupted')),
        summary      TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX update_runs_by_window ON update_runs(window, started_at);

    CREATE TABLE update_steps (
        id           INTEGER PRIMARY KEY,
        run_id       INTEGER NOT NULL REFERENCES update_runs(id) ON DELETE CASCADE,
        phase        TEXT NOT NULL CHECK (phase IN ('steps', 'rollback')),
        position     INTEGER NOT NULL,
        name         TEXT NOT NULL,
        kind         TEXT NOT NULL,
        host         TEXT,
        started_at   REAL NOT NULL,
        ended_at     REAL,
        status       TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'warning', 'interrupted')),
        exit_code    INTEGER,
        detail       TEXT NOT NULL DEFAULT '',
        stdout       TEXT NOT NULL DEFAULT '',
        stderr       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX update_steps_by_run ON update_steps(run_id, id);

    CREATE TABLE update_locks (
        window       TEXT PRIMARY KEY,
        run_id       INTEGER NOT NULL REFERENCES update_runs(id),
        owner_host   TEXT NOT NULL,
        owner_pid    INTEGER NOT NULL,
        owner_started REAL NOT NULL,
        taken_at     REAL NOT NULL
    );

    CREATE TABLE silences (
        id           INTEGER PRIMARY KEY,
        tenant       TEXT,
        host         TEXT NOT NULL,
        reason       TEXT NOT NULL,
        run_id       INTEGER REFERENCES update_runs(id),
        created_at   REAL NOT NULL,
        ends_at      REAL NOT NULL,
        ended_at     REAL
    );
    CREATE INDEX silences_active ON silences(ended_at, ends_at);
    """,
    # 4: restore tests (one row per certificate) and the coverage of each backup set
    """
    CREATE TABLE restore_tests (
        id                 INTEGER PRIMARY KEY,
        certificate_id     TEXT NOT NULL UNIQUE,
        set_name           TEXT NOT NULL,
        tenant             TEXT NOT NULL,
        backend            TEXT NOT NULL,
        trigger            TEXT NOT NULL,
        started_at         REAL NOT NULL,
        finished_at        REAL NOT NULL,
        passed             INTEGER NOT NULL,
        files_checked      INTEGER NOT NULL,
        files_verified     INTEGER NOT NULL,
        mismatches         INTEGER NOT NULL,
        restored_bytes     INTEGER NOT NULL,
        restore_seconds    REAL NOT NULL,
        snapshot_time      REAL,
        summary            TEXT NOT NULL,
        certificate_path   TEXT,
        sha256             TEXT NOT NULL
    );
    CREATE INDEX restore_tests_by_set ON restore_tests(set_name, finished_at);

    CREATE TABLE coverage_items (
        set_name      TEXT NOT NULL,
        path          TEXT NOT NULL,
        tenant        TEXT NOT NULL,
        kind          TEXT NOT NULL,
        protected     INTEGER NOT NULL,
        reason        TEXT NOT NULL,
        size_bytes    INTEGER,
        first_seen    REAL NOT NULL,
        last_seen     REAL NOT NULL,
        PRIMARY KEY (set_name, path)
    );

    CREATE TABLE coverage_runs (
        set_name      TEXT PRIMARY KEY,
        tenant        TEXT NOT NULL,
        checked_at    REAL NOT NULL,
        included      TEXT NOT NULL,
        unprotected   INTEGER NOT NULL,
        truncated     INTEGER NOT NULL,
        errors        TEXT NOT NULL DEFAULT '[]'
    );
    """,
    # 5: farm mode: the latest state of each polled host, and one row per host and day for the yearly report.
    """
    CREATE TABLE farm_targets (
        host                  TEXT PRIMARY KEY,
        tenant                TEXT NOT NULL,
        transport             TEXT NOT NULL,
        address               TEXT NOT NULL,
        last_poll_at          REAL,
        last_success_at       REAL,
        up                    INTEGER NOT NULL DEFAULT 0,
        consecutive_failures  INTEGER NOT NULL DEFAULT 0,
        last_error            TEXT,
        poll_seconds          REAL,
        summary               TEXT NOT NULL DEFAULT '{}'
    );

    CREATE TABLE farm_daily (
        host       TEXT NOT NULL,
        day        TEXT NOT NULL,
        tenant     TEXT NOT NULL,
        polls      INTEGER NOT NULL,
        successes  INTEGER NOT NULL,
        data       TEXT NOT NULL,
        PRIMARY KEY (host, day)
    );
    CREATE INDEX farm_daily_by_tenant ON farm_daily(tenant, day);
    """,
    # 6: helpdesk tickets, one live per incident key, and the outbox of their operations (exactly once).
    """
    CREATE TABLE tickets (
        id                    INTEGER PRIMARY KEY,
        key                   TEXT NOT NULL,
        tenant                TEXT NOT NULL,
        backend               TEXT NOT NULL,
        check_name            TEXT NOT NULL,
        incident_id           INTEGER,
        state                 TEXT NOT NULL,
        priority              TEXT NOT NULL,
        subject               TEXT NOT NULL,
        ref                   TEXT,
        url                   TEXT,
        remote_status         TEXT NOT NULL DEFAULT 'unknown',
        previous_id           INTEGER REFERENCES tickets(id),
        opened_at             REAL NOT NULL,
        due_at                REAL,
        resolve_due_at        REAL,
        taken_at              REAL,
        recovered_at          REAL,
        finished_at           REAL,
        last_followup_at      REAL NOT NULL,
        repeats_pending       INTEGER NOT NULL DEFAULT 0,
        flaps                 INTEGER NOT NULL DEFAULT 0,
        take_charge_breached  INTEGER NOT NULL DEFAULT 0,
        resolve_breached      INTEGER NOT NULL DEFAULT 0,
        synced_at             REAL,
        message_ids           TEXT NOT NULL DEFAULT '[]'
    );
    CREATE UNIQUE INDEX tickets_one_live_per_key ON tickets(key) WHERE state IN ('open', 'recovered');
    CREATE INDEX tickets_by_state ON tickets(state, backend);

    CREATE TABLE ticket_outbox (
        id               INTEGER PRIMARY KEY,
        ticket_id        INTEGER NOT NULL REFERENCES tickets(id),
        op               TEXT NOT NULL,
        op_id            TEXT NOT NULL UNIQUE,
        payload          TEXT NOT NULL,
        state            TEXT NOT NULL DEFAULT 'pending',
        attempts         INTEGER NOT NULL DEFAULT 0,
        created_at       REAL NOT NULL,
        next_attempt_at  REAL NOT NULL,
        last_attempt_at  REAL,
        last_error       TEXT,
        done_at          REAL
    );
    CREATE INDEX ticket_outbox_due ON ticket_outbox(state, next_attempt_at);
    CREATE INDEX ticket_outbox_by_ticket ON ticket_outbox(ticket_id, id);

    CREATE TABLE ticket_cursor (
        id             INTEGER PRIMARY KEY CHECK (id = 1),
        last_event_id  INTEGER NOT NULL
    );
    """,
    # 7: audit tamper evidence: where the anchored head's line ends, the last verified record (start-up verifies
    #    from there), records held while the log cannot take them; the health probe's one row.
    """
    ALTER TABLE audit_anchor ADD COLUMN end_offset INTEGER;

    CREATE TABLE audit_checkpoint (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        seq          INTEGER NOT NULL,
        hash         TEXT NOT NULL,
        end_offset   INTEGER NOT NULL,
        verified_at  REAL NOT NULL
    );

    CREATE TABLE audit_held (
        id       INTEGER PRIMARY KEY,
        ts       TEXT NOT NULL,
        actor    TEXT NOT NULL,
        action   TEXT NOT NULL,
        subject  TEXT,
        details  TEXT NOT NULL,
        reason   TEXT NOT NULL
    );

    CREATE TABLE health_probe (
        id  INTEGER PRIMARY KEY CHECK (id = 1),
        at  REAL NOT NULL
    );
    """,
    # 8: the running agent's heartbeat: `custode status` tells a running agent from a stopped one, and which
    #    config it runs with, instead of reading an old state as "nothing is wrong".
    """
    CREATE TABLE agent_heartbeat (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        pid         INTEGER NOT NULL,
        hostname    TEXT NOT NULL,
        config      TEXT NOT NULL,
        listen      TEXT NOT NULL,
        version     TEXT NOT NULL,
        started_at  REAL NOT NULL,
        seen_at     REAL NOT NULL,
        stopped_at  REAL
    );
    """,
    # 9: each tenant's service levels: the level a ticket was planned on, its restore target, warranty reopens;
    #    incident events whose planning failed, set aside with the reason instead of stopping every ticket.
    """
    ALTER TABLE tickets ADD COLUMN level TEXT;
    ALTER TABLE tickets ADD COLUMN restore_due_at REAL;
    ALTER TABLE tickets ADD COLUMN restore_breached INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tickets ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE ticket_set_aside (
        event_id      INTEGER PRIMARY KEY,
        incident_key  TEXT NOT NULL,
        tenant        TEXT NOT NULL,
        reason        TEXT NOT NULL,
        at            REAL NOT NULL
    );
    """,
    # 10: advance notices of update windows to each tenant's referents: one row per occurrence, tenant and kind
    #     (never sent twice), claimed by the process sending it; sent, or not sent with the reason once the
    #     window has started. Read by SLA compliance (releases not announced in advance).
    """
    CREATE TABLE update_notices (
        id             INTEGER PRIMARY KEY,
        tenant         TEXT NOT NULL,
        window         TEXT NOT NULL,
        window_start   REAL NOT NULL,
        window_end     REAL NOT NULL,
        application    TEXT NOT NULL,
        kind           TEXT NOT NULL CHECK (kind IN ('advance', 'cancelled')),
        due_at         REAL NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'not_sent')),
        attempts       INTEGER NOT NULL DEFAULT 0,
        owner_host     TEXT,
        owner_pid      INTEGER,
        owner_started  REAL,
        last_attempt_at REAL,
        error          TEXT NOT NULL DEFAULT '',
        recipients     TEXT NOT NULL DEFAULT '[]',
        message_id     TEXT,
        sent_at        REAL,
        closed_at      REAL,
        UNIQUE (tenant, window, window_start, kind),
        CHECK ((status = 'sent') = (sent_at IS NOT NULL))
    );
    CREATE INDEX update_notices_open ON update_notices(status, window_start);
    CREATE INDEX update_notices_by_window ON update_notices(window, window_start);
    """,
    # 11: every host's day in one table: farm_daily becomes host_daily (its rows kept, all written by farm mode),
    #     with who wrote each row: farm mode's polls or the agent's own collection cycles for its host.
    """
    ALTER TABLE farm_daily RENAME TO host_daily;
    ALTER TABLE host_daily ADD COLUMN source TEXT NOT NULL DEFAULT 'farm' CHECK (source IN ('farm', 'agent'));
    DROP INDEX farm_daily_by_tenant;
    CREATE INDEX host_daily_by_tenant ON host_daily(tenant, day);
    """,
    # 12: the reports' outbox: one row per tenant, kind and period queued by the schedule (never twice), plus each
    #     re-send asked by hand with its reason; rendered once (the files under the data dir, the PDF's SHA-256 in
    #     the row), claimed by the process trying it, retried with backoff until sent.
    """
    CREATE TABLE report_outbox (
        id               INTEGER PRIMARY KEY,
        tenant           TEXT NOT NULL,
        kind             TEXT NOT NULL CHECK (kind IN ('quarterly', 'yearly')),
        period           TEXT NOT NULL,
        trigger          TEXT NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
        reason           TEXT NOT NULL DEFAULT '',
        status           TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'cancelled')),
        created_at       REAL NOT NULL,
        due_at           REAL NOT NULL,
        next_attempt_at  REAL NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_attempt_at  REAL,
        error            TEXT NOT NULL DEFAULT '',
        error_stage      TEXT CHECK (error_stage IN ('render', 'send')),
        owner_host       TEXT,
        owner_pid        INTEGER,
        owner_started    REAL,
        rendered_at      REAL,
        folder           TEXT,
        sha256           TEXT,
        files            TEXT NOT NULL DEFAULT '[]',
        subject          TEXT,
        body             TEXT,
        message_id       TEXT,
        recipients       TEXT NOT NULL DEFAULT '[]',
        note             TEXT NOT NULL DEFAULT '',
        sent_at          REAL,
        closed_at        REAL,
        CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
        CHECK (sent_at IS NULL OR sha256 IS NOT NULL)
    );
    CREATE UNIQUE INDEX report_outbox_one_scheduled ON report_outbox(tenant, kind, period) WHERE trigger = 'scheduled';
    CREATE INDEX report_outbox_due ON report_outbox(status, next_attempt_at);
    CREATE INDEX report_outbox_by_report ON report_outbox(tenant, kind, period, id);
    """,
    # 13: service probes (HTTP(S), TCP, ICMP, DNS, like blackbox_exporter): each probe's latest state (failures and
    #     slow answers in a row survive a restart) and one row per probe and Europe/Rome day for the reports.
    """
    CREATE TABLE probe_targets (
        probe                TEXT PRIMARY KEY,
        tenant               TEXT NOT NULL,
        kind                 TEXT NOT NULL,
        target               TEXT NOT NULL,
        last_probe_at        REAL,
        last_success_at      REAL,
        success              INTEGER,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        consecutive_slow     INTEGER NOT NULL DEFAULT 0,
        failing_since        REAL,
        slow_since           REAL,
        last_error           TEXT,
        duration_seconds     REAL,
        status_code          INTEGER,
        cert_expiry          REAL
    );
    CREATE TABLE probe_daily (
        day           TEXT NOT NULL,
        probe         TEXT NOT NULL,
        tenant        TEXT NOT NULL,
        kind          TEXT NOT NULL,
        target        TEXT NOT NULL,
        probes        INTEGER NOT NULL DEFAULT 0,
        successes     INTEGER NOT NULL DEFAULT 0,
        slow          INTEGER NOT NULL DEFAULT 0,
        duration_sum  REAL NOT NULL DEFAULT 0,
        duration_max  REAL,
        cert_expiry   REAL,
        first_at      REAL,
        last_at       REAL,
        errors        TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (day, probe)
    );
    CREATE INDEX probe_daily_by_tenant ON probe_daily(tenant, day);
    """,
    # 14: SNMP devices: the boot time each poll worked out from sysUpTime, so a reboot is seen across a restart of
    #     Custode too, and how many polls in a row saw each watched interface down.
    """
    CREATE TABLE snmp_devices (
        host         TEXT PRIMARY KEY,
        boot_time    REAL,
        uptime_seconds REAL,
        rebooted_at  REAL,
        sys_name     TEXT NOT NULL DEFAULT '',
        sys_descr    TEXT NOT NULL DEFAULT '',
        interfaces   TEXT NOT NULL DEFAULT '{}',
        updated_at   REAL NOT NULL
    );
    """,
]



@dataclass
class CollectorRuns:
    """A collector's runs since the last write: the latest one, and what the write adds to the counters."""

    at: float
    success: bool
    duration: float
    error: str | None
    failures: int  # consecutive failures at the end of the batch, counted from its last success
    reset: bool  # a success in the batch: the stored count restarts from ``failures``
    last_success_at: float | None

class StateError(Exception):
    """The state database cannot be used; the message says why and what to do.

    ``problem`` sorts it (corrupt, full, read-only, permission ...), for callers that report it as a metric."""

    def __init__(self, message: str, problem: Problem = Problem.OTHER) -> None:
        super().__init__(message)
        self.problem = problem


class State:
    """One connection shared by the agent's threads behind a lock.

    SQLite serialises writers anyway; one connection with a lock avoids
    'database is locked' between our own threads, while ``busy_timeout``
    covers other processes (a CLI command reading while the agent writes).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                if classify(exc, self.path.parent) is Problem.FULL:
                    raise StateError(explain_file(exc, self.path.parent, "state folder"), Problem.FULL) from None
                raise StateError(f"cannot create the state directory {self.path.parent}: {exc.strerror}; "
                                 "set agent.data_dir (or state.path) to a writable directory",
                                 classify(exc, self.path.parent)) from None
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StateError(explain_state(exc, self.path), classify(exc, self.path)) from None
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 10000")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous = NORMAL" if mode == "wal" else "PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            # Each failure has its own fix: moving the file aside is right for none of them.
            raise StateError(explain_state(exc, self.path), classify(exc, self.path)) from None
        except StateError:
            self._db.close()
            raise

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise StateError(f"state database {self.path} has schema version {version}, newer than this "
                                 f"Custode knows ({len(MIGRATIONS)}); upgrade Custode or use another state.path")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- small records that several modules share ---------------------------

    def record_collector_run(self, name: str, at: float, success: bool, duration: float, error: str | None) -> None:
        self.record_collector_runs({name: CollectorRuns(at, success, duration, error, 0 if success else 1, success,
                                                        at if success else None)})

    def record_collector_runs(self, runs: Mapping[str, CollectorRuns]) -> None:
        """Several collectors' buffered runs (custode.agent.collector_status) in one transaction."""
        with self.transaction() as db:
            db.executemany(
                """INSERT INTO collector_status (name, last_run_at, success, duration_seconds, error,
                                                 consecutive_failures, last_success_at)
                   VALUES (:name, :at, :ok, :duration, :error, :failures, :last_success_at)
                   ON CONFLICT(name) DO UPDATE SET
                       last_run_at = :at, success = :ok, duration_seconds = :duration, error = :error,
                       consecutive_failures = CASE WHEN :reset THEN :failures
                                                   ELSE consecutive_failures + :failures END,
                       last_success_at = COALESCE(:last_success_at, last_success_at)""",
                [{"name": name, "at": run.at, "ok": int(run.success), "duration": run.duration, "error": run.error,
                  "failures": run.failures, "reset": int(run.reset), "last_success_at": run.last_success_at}
                 for name, run in runs.items()])

    def collector_statuses(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM collector_status ORDER BY name")

    # --- the audit log's tamper evidence (see custode.agent.audit_keeper) -----------

    def set_audit_anchor(self, seq: int, digest: str, end: int | None = None) -> None:
        """Keep (seq, hash, end offset) of the audit log's last record; it only moves forward.

        The same head again may add its offset (an anchor stored before offsets were kept)."""
        with self.transaction() as db:
            db.execute("INSERT INTO audit_anchor (id, seq, hash, end_offset) VALUES (1, ?, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                       "end_offset = excluded.end_offset "
                       "WHERE excluded.seq > audit_anchor.seq OR (excluded.seq = audit_anchor.seq "
                       "AND excluded.hash = audit_anchor.hash AND audit_anchor.end_offset IS NULL)",
                       (seq, digest, end))

    def audit_anchor(self) -> tuple[int, str] | None:
        rows = self.query("SELECT seq, hash FROM audit_anchor WHERE id = 1")
        return (int(rows[0]["seq"]), str(rows[0]["hash"])) if rows else None

    def audit_head(self) -> tuple[int, str, int | None] | None:
        """The anchor with the offset just after its line (None for one stored before offsets were kept)."""
        rows = self.query("SELECT seq, hash, end_offset FROM audit_anchor WHERE id = 1")
        if not rows:
            return None
        end = rows[0]["end_offset"]
        return int(rows[0]["seq"]), str(rows[0]["hash"]), None if end is None else int(end)

    def audit_checkpoint(self) -> tuple[int, str, int] | None:
        """The last record a verification found good: the next one starts after it."""
        rows = self.query("SELECT seq, hash, end_offset FROM audit_checkpoint WHERE id = 1")
        return (int(rows[0]["seq"]), str(rows[0]["hash"]), int(rows[0]["end_offset"])) if rows else None

    def set_audit_checkpoint(self, seq: int, digest: str, end: int, at: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO audit_checkpoint (id, seq, hash, end_offset, verified_at) VALUES (1, ?, ?, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                       "end_offset = excluded.end_offset, verified_at = excluded.verified_at",
                       (seq, digest, end, at))

    def reset_audit_chain(self) -> None:
        """Forget the old log's head and checkpoint: a new log starts (``custode audit new-log``)."""
        with self.transaction() as db:
            db.execute("DELETE FROM audit_anchor")
            db.execute("DELETE FROM audit_checkpoint")

    def hold_audit_record(self, ts: str, actor: str, action: str, subject: str | None, details: str,
                          reason: str) -> int:
        """Keep a record the audit log could not take; ``details`` is its JSON. Returns its id."""
        with self.transaction() as db:
            cursor = db.execute("INSERT INTO audit_held (ts, actor, action, subject, details, reason) "
                                "VALUES (?, ?, ?, ?, ?, ?)", (ts, actor, action, subject, details, reason))
            return int(cursor.lastrowid or 0)

    def held_audit_records(self, limit: int) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM audit_held ORDER BY id LIMIT ?", (limit,))

    def held_audit_summary(self) -> tuple[int, str | None, str | None]:
        """(how many records are held, the oldest one's time, the newest one's reason)."""
        rows = self.query("SELECT COUNT(*) AS n, MIN(ts) AS first, "
                          "(SELECT reason FROM audit_held ORDER BY id DESC LIMIT 1) AS reason FROM audit_held")
        return int(rows[0]["n"]), rows[0]["first"], rows[0]["reason"]

    def release_audit_records(self, ids: Sequence[int]) -> None:
        """Drop held records that are in the log now."""
        with self.transaction() as db:
            db.executemany("DELETE FROM audit_held WHERE id = ?", [(i,) for i in ids])

    def touch_health_probe(self, at: float) -> None:
        """One small write, so the health probe sees a read-only or failing database before a feature does."""
        with self.transaction() as db:
            db.execute("INSERT INTO health_probe (id, at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET at = excluded.at",
                       (at,))

    def read_check(self, deep: bool = False) -> list[str]:
        """Read the file through a new read-only connection: the schema and each table's first row, or
        everything (``deep``: ``PRAGMA quick_check``). Returns what quick_check found; raises sqlite3.Error.

        A new connection because the agent's own answers from its page cache
        and would not see the file damaged underneath it; read-only because a
        check must not be what fills a full disk."""
        if str(self.path) == ":memory:":
            return []
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                db.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchall()
            if not deep:
                return []
            return [row[0] for row in db.execute("PRAGMA quick_check") if row[0] != "ok"]
        finally:
            db.close()

    def integrity_problems(self) -> list[str]:
        """Empty when SQLite's own checks and foreign keys are clean."""
        result = [r[0] for r in self.query("PRAGMA integrity_check") if r[0] != "ok"]
        result += [f"foreign key violation in {r[0]} row {r[1]}" for r in self.query("PRAGMA foreign_key_check")]
        return result


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    return [s.strip() for s in script.split(";") if s.strip()]
