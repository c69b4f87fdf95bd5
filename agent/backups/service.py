"""The backup-mail job: poll the mailboxes, classify, store, judge the expected jobs, raise incidents.

Runs on the agent's scheduler. Each mailbox is independent: one that is down
is reported (``custode_backup_mailbox_up 0``) while the others are read, and
its cursor stays where it was, so nothing is skipped when it comes back. The
job evaluation runs after every poll, mail or not, because "missing" is a
matter of the clock.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from custode.agent.backups.config import BackupsSection, Priority
from custode.agent.backups.jobs import Evaluation, JobStatus, carry_since, evaluate, lookback
from custode.agent.backups.metrics import MailboxHealth, backup_families
from custode.agent.backups.parsers import classify
from custode.agent.backups.rules import compile_rules
from custode.agent.backups.store import Cursor, MailStore, ProcessedMail
from custode.agent.clock import Clock, current_time
from custode.agent.config import DEFAULT_TENANT
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.mail.message import parse_message
from custode.agent.mail.sources import MailSource, MailSourceError, RawMail, build_source
from custode.agent.state import State

log = logging.getLogger(__name__)

CHECK = "backup"
MAILBOX_CHECK = "backup_mailbox"
_SEVERITY: dict[Priority, str] = {"high": "critical", "normal": "warning", "none": "ok"}


@dataclass
class PollSummary:
    new: int = 0
    duplicates: int = 0
    reports: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # mailbox -> why it could not be read


class BackupMonitor:
    def __init__(self, section: BackupsSection, state: State, incidents: Incidents | None = None,
                 publish: Callable[[list], None] | None = None, audit: Callable[[str, str, dict], None] | None = None,
                 clock: Clock = current_time, sources: list[MailSource] | None = None,
                 default_tenant: str = DEFAULT_TENANT) -> None:
        self.section = section
        self.state = state
        self.store = MailStore(state)
        self.incidents = incidents
        self.publish = publish
        self.audit = audit
        self.clock = clock
        self.rules = compile_rules(section.rules)
        self.sources = sources if sources is not None else [build_source(m) for m in section.mailboxes]
        self.tenant_of_mailbox = {m.name: m.tenant for m in section.mailboxes}
        self.default_tenant = default_tenant
        self.health: dict[str, MailboxHealth] = {}

    # --- polling -------------------------------------------------------------------

    def poll(self) -> PollSummary:
        summary = PollSummary()
        for source in self.sources:
            started = time.monotonic()
            previous = self.health.get(source.name)
            try:
                self._poll_source(source, summary)
            except MailSourceError as exc:
                summary.errors[source.name] = str(exc)
                log.error("cannot read mailbox", extra={"mailbox": source.name, "error": str(exc)})
                self.health[source.name] = MailboxHealth(False, previous.last_success_at if previous else None,
                                                         time.monotonic() - started, str(exc))
                self._mailbox_incident(source.name, str(exc))
                continue
            self.health[source.name] = MailboxHealth(True, self.clock(), time.monotonic() - started)
            self._mailbox_incident(source.name, None)
        self.evaluate()
        return summary

    def _mailbox_incident(self, mailbox: str, error: str | None) -> None:
        """A mailbox that cannot be read blinds every backup check behind it: an incident from the second failed poll.

        One failed poll is often a passing fault (a server restart); the
        condition is held for half a poll interval, so the next failed poll
        opens it and the first good poll resolves it. The tenant is the
        mailbox's own, else the agent's (the provider's mailbox).
        """
        if self.incidents is None:
            return
        tenant = self.tenant_of_mailbox.get(mailbox) or self.default_tenant
        if error is None:
            result = CheckResult(tenant, MAILBOX_CHECK, mailbox, "ok", f"mailbox {mailbox} is read again")
        else:
            result = CheckResult(tenant, MAILBOX_CHECK, mailbox, "critical",
                                 f"backup mailbox {mailbox} cannot be read, so no backup report is seen: {error}",
                                 {"mailbox": mailbox, "error": error})
        self.incidents.observe(result, hold_for=self.section.poll_interval / 2, now=self.clock())

    def _poll_source(self, source: MailSource, summary: PollSummary) -> None:
        def cursor(folder: str) -> tuple[int, int] | None:
            saved = self.store.cursor(source.name, folder)
            return (saved.uidvalidity, saved.last_uid) if saved else None

        for batch in source.batches(lambda: self.store.known_keys(source.name), cursor):
            processed = [self._classify(source.name, mail) for mail in batch.mails]
            position = Cursor(*batch.cursor) if batch.cursor else None
            fresh, duplicates = self.store.record(source.name, processed, position, self.clock())
            summary.new += len(fresh)
            summary.duplicates += duplicates
            stored_reports = [m for m in fresh if m.verdict is not None and m.verdict.kind == "report"]
            summary.reports += len(stored_reports)
            if batch.after_store is not None:
                batch.after_store([m.uid for m in processed
                                   if m.uid is not None and m.verdict is not None and m.verdict.kind == "report"])

    def _classify(self, mailbox: str, mail: RawMail) -> ProcessedMail:
        message = parse_message(mail.raw, truncated=mail.truncated)
        try:
            verdict = classify(message, self.rules)
            error = ""
        except Exception as exc:  # kept as an 'error' row: visible, counted, never silently dropped
            log.exception("cannot classify a message", extra={"mailbox": mailbox, "uid": mail.uid,
                                                              "message_id": message.message_id})
            verdict, error = None, f"classification failed: {exc}"
        return ProcessedMail(mailbox, mail.folder, mail.uid, mail.key, message, mail.received_at, verdict, error)

    # --- evaluation ------------------------------------------------------------------

    def evaluate(self, now: float | None = None) -> Evaluation:
        now = self.clock() if now is None else now
        evaluation = evaluate(self.section, self.store.reports_since(now - lookback(self.section)), now)
        stored = self.store.job_states()
        carry_since(evaluation.jobs, stored)
        for job in evaluation.jobs:
            previous = stored.get((job.tenant, job.job.name))
            self._incident(job, previous["state"] if previous is not None else None, now)
        self.store.save_job_states([(j.tenant, j.job.name, j.state, j.since) for j in evaluation.jobs], now)
        if self.incidents is not None:
            for tenant in self.section.expected:
                self.incidents.reconcile(tenant, CHECK, [j.name for j in self.section.expected[tenant]], now=now)
        if self.publish is not None:
            self.publish(backup_families(evaluation, self.health, self.store.message_counts(),
                                         self.tenant_of_mailbox))
        return evaluation

    def _incident(self, job: JobStatus, previous_state: str | None, now: float) -> None:
        if self.incidents is None or job.state == "late":
            return  # late is not yet a failure, and must not resolve last night's failure either
        priorities = self.section.priorities(job.job)
        severity = {"failed": _SEVERITY[priorities.failed], "missing": _SEVERITY[priorities.missing],
                    "warning": _SEVERITY[priorities.warning]}.get(job.state, "ok")
        result = CheckResult(job.tenant, CHECK, job.job.name, severity, describe(job), _details(job))  # type: ignore[arg-type]
        occurrence = severity != "ok" and (previous_state != job.state or self._another_run(result, job))
        self.incidents.observe(result, occurrence=occurrence, now=now)

    def _another_run(self, result: CheckResult, job: JobStatus) -> bool:
        """The open incident was about an earlier run: tonight's run failed (or went missing) too.

        That is a repeat of the failure (a follow-up on the ticket), not the same failure seen again.
        """
        rows = self.state.query("SELECT details FROM incidents WHERE key = ? AND status = 'open'", (result.key,))
        if not rows:
            return False
        return json.loads(rows[0]["details"]).get("due") != job.due

    def prune(self) -> int:
        return self.store.prune(self.clock() - self.section.retention)


def describe(job: JobStatus) -> str:
    """One line for incidents and logs: what is wrong with which backup, since when (Rome time, with its zone)."""
    name = f"backup {job.job.name!r}"
    if job.state == "missing":
        return (f"{name}: no report for the run due {_rome(job.due)} "
                f"(deadline {_rome(job.deadline)} passed)")
    report = job.last_report
    if job.state in ("failed", "warning") and report is not None:
        what = "failed" if job.state == "failed" else "completed with warnings"
        error = f": {report.error.splitlines()[0][:200]}" if report.error else ""
        return f"{name} {what} ({report.software}, report of {_rome(report.reported_at)}){error}"
    return f"{name}: {job.state}"


def _rome(ts: float) -> str:
    from datetime import datetime

    from custode.agent.calendar import ROME

    return f"{datetime.fromtimestamp(ts, ROME):%Y-%m-%d %H:%M %Z}"


def _details(job: JobStatus) -> dict:
    """``began_at`` is the failure's own time (the report's, or the missed deadline): tickets say "since" from it."""
    report = job.last_report
    return {"state": job.state, "began_at": job.since, "due": job.due, "deadline": job.deadline,
            "schedule": job.job.schedule,
            "software": job.software, "last_success_at": job.last_success_at,
            "report": None if report is None else {"id": report.id, "subject": report.subject,
                                                   "status": report.status, "at": report.reported_at,
                                                   "host": report.host, "error": report.error}}
