"""The reports' outbox → the comune's referents: queue what is due, render each report once, send it until it is sent.

A report is evidence under a contract (Ponte San Pietro's quarterly report,
Vaiano's yearly analysis): it must arrive even when the SMTP server is down on
its due day, and it must be the *same* report on every try, however late the
try is. So a cycle (the agent runs one every few minutes; ``custode report
send`` runs one try by hand):

1. queues the reports whose due time has come (:mod:`custode.agent.reports.schedule`),
   one row per tenant, kind and period;
2. for every row whose next try has come, claims it, renders it if it has
   not been rendered yet (the builder reads the state DB, the renderer makes the
   PDF and the CSV tables; the files are written under the data dir, the PDF's
   SHA-256 kept in the row, the mail's text composed and kept with them), then
   sends those very files;
3. records the outcome: sent (audited with the recipients, the SHA-256 and the
   Message-ID), or back to waiting with the reason, tried again with backoff
   (exponential, capped, for days if need be). After ``reports.incident_after``
   failed tries the provider gets an incident of its own for that report,
   resolved when it is sent.

The builder and the renderer are injected (tests use their own; the agent uses
:func:`custode.agent.reports.data.build_report` and
:func:`custode.agent.reports.render.render`): this module only moves files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
import random
import shutil
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from custode.agent.calendar import ROME
from custode.agent.clock import Clock, current_time
from custode.agent.config import TENANT_ID, Config
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.redact import redact_text
from custode.agent.reports.document import Report, ReportKind
from custode.agent.reports.mail import Attached, Role, compose
from custode.agent.reports.schedule import PeriodError, due_reports, parse_period
from custode.agent.reports.store import ErrorStage, OutboxStatus, RenderedFile, ReportStore, ReportTrigger, files_of
from custode.agent.state import State

if TYPE_CHECKING:
    from custode.agent.mailer import MailAttachment, OutgoingMail

log = logging.getLogger(__name__)

REPORT_CHECK = "report_delivery"
"""The provider's incident of a report not sent after ``reports.incident_after`` tries (target TENANT/KIND/PERIOD)."""
REPORTS_DIR = "reports"
"""Under the data dir: one folder per rendered row, kept (it is what was sent)."""

Audit = Callable[[str, str, dict[str, Any]], None]


class RenderedLike(Protocol):
    """What :func:`custode.agent.reports.render.render` returns (``RenderedReport``)."""

    @property
    def filename(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def media_type(self) -> str: ...
    @property
    def attachments(self) -> Mapping[str, bytes]: ...


Builder = Callable[[Config, State, str, str, str, datetime], Report]
"""``build_report(config, state, tenant, kind, period, now)``."""
Renderer = Callable[[Report, str], RenderedLike]
"""``render(report, fmt)``."""


class MailerLike(Protocol):
    def send(self, mail: OutgoingMail) -> str: ...


class Unsent(Exception):
    """This try did not send the report; the message says why and what to fix."""

    def __init__(self, stage: ErrorStage, message: str) -> None:
        super().__init__(redact_text(message))
        self.stage = stage


@dataclass(frozen=True)
class Outcome:
    """What one try did with one row: ``sent``, or ``retry`` (its next try at ``next_attempt_at``)."""

    row_id: int
    tenant: str
    kind: str
    period: str
    status: str
    detail: str
    attempts: int
    next_attempt_at: float | None = None
    recipients: tuple[str, ...] = ()
    message_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.row_id, "tenant": self.tenant, "kind": self.kind, "period": self.period,
                "status": self.status, "detail": self.detail, "attempts": self.attempts,
                "next_attempt_at": self.next_attempt_at, "recipients": list(self.recipients),
                "message_id": self.message_id}


def default_builder(config: Config, state: State, tenant: str, kind: str, period: str, now: datetime) -> Report:
    """:func:`custode.agent.reports.data.build_report`, imported when first needed."""
    try:
        from custode.agent.reports.data import build_report
    except ImportError as exc:
        raise Unsent(ErrorStage.RENDER, f"this Custode cannot build reports yet ({exc})") from None
    report: Report = build_report(config, state, tenant, cast(ReportKind, kind), period, now)
    return report


def default_renderer(report: Report, fmt: str) -> RenderedLike:
    """:func:`custode.agent.reports.render.render`, imported when first needed (WeasyPrint is heavy)."""
    try:
        from custode.agent.reports.render import render
    except ImportError as exc:
        raise Unsent(ErrorStage.RENDER, f"this Custode cannot render reports yet ({exc})") from None
    rendered: RenderedLike = render(report, cast(Literal["pdf"], fmt))
    return rendered


def recipients_of(config: Config, tenant: str) -> tuple[list[str], list[str]]:
    """(To, Cc) of a tenant's reports: ``reports.recipients`` or the referents, then ``extra_recipients``."""
    spec = config.tenants.get(tenant)
    if spec is None:
        return [], []
    settings = spec.reports
    to = list(settings.recipients if settings.recipients is not None else spec.referents)
    cc = [address for address in settings.extra_recipients if address not in to]
    return (to, cc) if to else (cc, [])


class ReportDeliverer:
    """Queues, renders and sends the reports; ``mailer`` None (no smtp section) leaves them waiting, with the reason."""

    def __init__(self, config: Config, state: State, data_dir: Path, mailer: MailerLike | None, *,
                 audit: Audit | None = None, incidents: Incidents | None = None, builder: Builder | None = None,
                 renderer: Renderer | None = None, clock: Clock = current_time,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self.state = state
        self.store = ReportStore(state)
        self.data_dir = Path(data_dir)
        self.mailer = mailer
        self.audit: Audit = audit or (lambda action, subject, details: None)
        self.incidents = incidents
        self.builder: Builder = builder or default_builder
        self.renderer: Renderer = renderer or default_renderer
        self.clock = clock
        self.jitter = jitter

    # --- the cycle ---------------------------------------------------------------------------

    def cycle(self) -> list[Outcome]:
        """Queue the reports due now, then try every row whose time has come."""
        self.queue_due()
        return self.deliver_due()

    def queue_due(self) -> list[int]:
        """Rows queued for reports whose due time has come (none for a period that has a row already)."""
        now = self.clock()
        queued = []
        for due in due_reports(self.config, datetime.fromtimestamp(now, ROME)):
            row_id = self.store.queue_scheduled(due.tenant, due.period.kind, due.period.label, due.due.timestamp(),
                                                now)
            if row_id is None:
                continue
            queued.append(row_id)
            self.audit("report.queued", _subject(due.tenant, due.period.kind, due.period.label), {
                "row": row_id, "tenant": due.tenant, "kind": due.period.kind, "period": due.period.label,
                "trigger": ReportTrigger.SCHEDULED.value, "due": due.due.isoformat()})
            log.info("report queued", extra={"tenant": due.tenant, "kind": due.period.kind,
                                             "period": due.period.label, "row": row_id})
        return queued

    def queue_by_hand(self, tenant: str, kind: str, period: str, reason: str) -> int:
        """A row due now (``custode report send``), audited with its reason. ValueError for what cannot be sent."""
        if tenant not in self.config.tenants:
            known = ", ".join(sorted(self.config.tenants)) or "none"
            raise ValueError(f"no tenant {tenant!r} in the config (tenants: {known})")
        try:
            found = parse_period(kind, period)
        except PeriodError as exc:
            raise ValueError(str(exc)) from None
        now = self.clock()
        if found.end >= datetime.fromtimestamp(now, ROME).date():
            raise ValueError(f"the period {found.label} has not ended yet (it ends on {found.end:%Y-%m-%d}); a report "
                             "covers a whole period")
        row_id = self.store.queue_manual(tenant, kind, found.label, reason, now)
        self.audit("report.queued", _subject(tenant, kind, found.label), {
            "row": row_id, "tenant": tenant, "kind": kind, "period": found.label,
            "trigger": ReportTrigger.MANUAL.value, "reason": reason})
        return row_id

    def deliver_due(self) -> list[Outcome]:
        outcomes = []
        for row in self.store.due(self.clock()):
            outcome = self.deliver(int(row["id"]))
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def deliver(self, row_id: int) -> Outcome | None:
        """One try of one row: render it if needed, send it, record how it went. None: not to be tried now."""
        now = self.clock()
        before = self.store.get(row_id)
        if before is None:
            return None
        attempts = int(before["attempts"]) + 1
        row = self.store.claim(row_id, now, now + self.backoff(attempts))
        if row is None:
            return None  # sent, cancelled, not due, or another living process is trying it this moment
        try:
            row, files = self._rendered(row)
            message_id, recipients, note = self._send(row, files)
        except Unsent as exc:
            return self._failed(row, exc)
        except BaseException:
            self.store.failed(row_id, ErrorStage.RENDER if row["sha256"] is None else ErrorStage.SEND,
                              "internal error while trying the report; see the agent's log")
            raise
        return self._sent(row, message_id, recipients, note)

    def backoff(self, attempts: int) -> float:
        """Exponential from ``reports.retry.first``, capped at ``retry.max``, ±20 % jitter so retries spread."""
        settings = self.config.reports.retry
        base = min(settings.max, settings.first * 2 ** min(attempts - 1, 30))
        return float(base * (0.8 + 0.4 * self.jitter()))

    # --- rendering ---------------------------------------------------------------------------

    def _rendered(self, row: sqlite3.Row) -> tuple[sqlite3.Row, list[tuple[RenderedFile, bytes]]]:
        """The row's files as rendered (the PDF first), rendering them now if they are not, or no longer, there."""
        tenant = str(row["tenant"])
        if tenant not in self.config.tenants or not TENANT_ID.match(tenant):
            raise Unsent(ErrorStage.RENDER, f"tenant {tenant!r} is not in the config any more; put it back, or drop "
                                            f"this report with: custode report cancel {row['id']} --reason ...")
        if row["sha256"] is not None:
            kept = self._read(row)
            if kept is not None:
                return row, kept
            log.warning("the rendered report's files are missing or changed; rendering it again",
                        extra={"row": row["id"], "folder": row["folder"]})
            self.store.forget_render(int(row["id"]))
        report = self._build(row)
        if report.empty:  # sent all the same (the comune is owed it), but the provider should look at why
            log.warning("the report has no data at all for the period: is anything collected for this tenant?",
                        extra={"row": row["id"], "tenant": tenant, "kind": row["kind"], "period": row["period"]})
        rendered = self._render(report)
        settings = self.config.tenants[tenant].reports
        files = self._files(report, rendered, settings.csv)
        attached = [Attached(item.name, role) for item, _, role in files]
        subject, body = compose(report, attached, replaces=self._replaces(row))
        folder = f"{REPORTS_DIR}/{tenant}/{row['period']}-{row['kind']}-{row['id']}"
        self._write(folder, [(item, content) for item, content, _ in files])
        self.store.rendered(int(row["id"]), self.clock(), folder, [item for item, _, _ in files], subject, body)
        fresh = self.store.get(int(row["id"]))
        assert fresh is not None
        log.info("report rendered", extra={"row": row["id"], "tenant": tenant, "period": row["period"],
                                           "sha256": files[0][0].sha256})
        return fresh, [(item, content) for item, content, _ in files]

    def _build(self, row: sqlite3.Row) -> Report:
        now = datetime.fromtimestamp(self.clock(), ROME)
        try:
            return self.builder(self.config, self.state, str(row["tenant"]), str(row["kind"]), str(row["period"]),
                                now)
        except Unsent:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the builder is this try's reason, retried later
            log.exception("report could not be built", extra={"row": row["id"], "tenant": row["tenant"]})
            raise Unsent(ErrorStage.RENDER, f"the report could not be built: {type(exc).__name__}: {exc}") from None

    def _render(self, report: Report) -> RenderedLike:
        fmt = self.config.tenants[report.tenant].reports.format if report.tenant in self.config.tenants else "pdf"
        try:
            rendered = self.renderer(report, fmt)
        except Unsent:
            raise
        except Exception as exc:  # noqa: BLE001 - WeasyPrint's failure or timeout: this try's reason
            raise Unsent(ErrorStage.RENDER, f"the report could not be rendered as {fmt}: "
                                            f"{type(exc).__name__}: {exc}") from None
        if not rendered.content or (fmt == "pdf" and not rendered.content.startswith(b"%PDF")):
            raise Unsent(ErrorStage.RENDER, f"the renderer gave no {fmt} document ({len(rendered.content)} bytes)")
        return rendered

    def _files(self, report: Report, rendered: RenderedLike,
               csv: str) -> list[tuple[RenderedFile, bytes, Role]]:
        """The files the mail carries: the document, then the data tables (each, zipped, or none)."""
        main_name = _safe_name(rendered.filename) or f"report-{report.tenant}-{report.period}.pdf"
        out: list[tuple[RenderedFile, bytes, Role]] = [
            (_file(main_name, rendered.content, rendered.media_type), rendered.content, "report")]
        tables = {(_safe_name(name) or "data.csv"): content for name, content in rendered.attachments.items()}
        if len(tables) != len(rendered.attachments) or main_name in tables:
            raise Unsent(ErrorStage.RENDER, "the renderer gave two attachments with the same name: "
                                            f"{main_name}, {', '.join(rendered.attachments)}")
        if csv == "separate":
            out += [(_file(name, content, _media_type(name)), content, "csv") for name, content in tables.items()]
        elif csv == "zip" and tables:  # the very zip `custode report quarterly|yearly` writes beside the PDF
            from custode.agent.reports.csvfiles import zip_files
            from custode.agent.reports.render import data_zip_name

            name = data_zip_name(main_name, report)
            try:
                content = zip_files(tables, report)
            except Exception as exc:  # noqa: BLE001 - a table the zip's README cannot describe: this try's reason
                raise Unsent(ErrorStage.RENDER, f"the CSV tables could not be zipped: {type(exc).__name__}: "
                                                f"{exc}") from None
            out.append((_file(name, content, "application/zip"), content, "zip"))
        return out

    def _replaces(self, row: sqlite3.Row) -> datetime | None:
        """When an earlier row of the same report was sent: this one is a re-send that replaces it."""
        earlier = [r for r in self.store.of_report(str(row["tenant"]), str(row["kind"]), str(row["period"]))
                   if r["id"] < row["id"] and r["status"] == OutboxStatus.SENT]
        return datetime.fromtimestamp(float(earlier[-1]["sent_at"]), ROME) if earlier else None

    def _write(self, folder: str, files: list[tuple[RenderedFile, bytes]]) -> None:
        """The files into ``folder``, whole or not at all: written beside it, fsynced, then renamed into place."""
        target = self.data_dir / folder
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(f"{target.name}.tmp-*"):  # a try that died while writing
            shutil.rmtree(stale, ignore_errors=True)
        temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        try:
            temporary.mkdir()
            for item, content in files:
                with open(temporary / item.name, "wb") as handle:
                    handle.write(content)
                    handle.flush()
                    os.fsync(handle.fileno())
            _fsync_dir(temporary)
            if target.exists():  # rendered before, never recorded (killed before the row was): not what was sent
                shutil.rmtree(target)
            os.replace(temporary, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            shutil.rmtree(temporary, ignore_errors=True)
            raise Unsent(ErrorStage.RENDER, f"cannot keep the rendered report in {target}: {exc.strerror or exc}; "
                                            "check that the data dir is writable and not full") from None

    def _read(self, row: sqlite3.Row) -> list[tuple[RenderedFile, bytes]] | None:
        """The row's files if every one is there with its recorded SHA-256; None otherwise."""
        folder = self.data_dir / str(row["folder"])
        out = []
        for item in files_of(row):
            try:
                content = (folder / item.name).read_bytes()
            except OSError:
                return None
            if hashlib.sha256(content).hexdigest() != item.sha256:
                return None
            out.append((item, content))
        return out or None

    # --- sending -----------------------------------------------------------------------------

    def _send(self, row: sqlite3.Row, files: list[tuple[RenderedFile, bytes]]) -> tuple[str, list[str], str]:
        """Send the rendered files: (Message-ID, who accepted them, what was refused); Unsent when nobody got them."""
        from custode.agent.mailer import MailAttachment, MailerError, OutgoingMail

        tenant = str(row["tenant"])
        if self.mailer is None:
            raise Unsent(ErrorStage.SEND, "cannot e-mail the report: the config has no smtp section (see README, "
                                          "'Reports by e-mail')")
        to, cc = recipients_of(self.config, tenant)
        if not to:
            raise Unsent(ErrorStage.SEND, f"nobody to send the report to: add tenants.{tenant}.referents or "
                                          f"tenants.{tenant}.reports.recipients")
        attachments: list[MailAttachment] = [MailAttachment(item.name, content, item.media_type)
                                             for item, content in files]
        mail = OutgoingMail(to=to, cc=cc, subject=str(row["subject"]), text=str(row["body"]),
                            message_id=self._message_id(row),
                            headers={"X-Custode-Report": _subject(tenant, str(row["kind"]), str(row["period"])),
                                     "X-Custode-Report-SHA256": str(row["sha256"])},
                            attachments=attachments)
        try:
            return self.mailer.send(mail), [*to, *cc], ""
        except MailerError as exc:
            if exc.accepted:  # delivered to some: sending again would be twice for them
                refused = ", ".join(exc.refused) or "some recipients"
                return exc.message_id or mail.message_id or "", list(exc.accepted), f"refused for {refused}: {exc}"
            raise Unsent(ErrorStage.SEND, f"report not sent: {exc}") from None
        except ValueError as exc:
            raise Unsent(ErrorStage.SEND, f"report not sent: {exc}; check tenants.{tenant}.referents, "
                                          f"tenants.{tenant}.reports.recipients and smtp.sender") from None

    def _message_id(self, row: sqlite3.Row) -> str:
        """The same id on every try of the row: a copy sent again after a crash is folded into the first one."""
        from custode.agent.smtp_settings import parse_address

        sender = getattr(getattr(self.mailer, "settings", None), "sender", None)
        try:
            domain = parse_address(str(sender)).domain.strip("[]").encode("idna").decode("ascii")
        except (ValueError, UnicodeError):
            domain = "custode.invalid"
        return (f"<custode.report.{row['kind']}.{row['tenant']}.{row['period']}.{row['id']}."
                f"{int(float(row['created_at']))}@{domain}>")

    # --- recording -----------------------------------------------------------------------------

    def _sent(self, row: sqlite3.Row, message_id: str, recipients: list[str], note: str) -> Outcome:
        now = self.clock()
        row_id = int(row["id"])
        self.store.sent(row_id, now, message_id, recipients, note)
        tenant, kind, period = str(row["tenant"]), str(row["kind"]), str(row["period"])
        files = files_of(row)
        self.audit("report.sent", _subject(tenant, kind, period), {
            "row": row_id, "tenant": tenant, "kind": kind, "period": period, "trigger": row["trigger"],
            **({"reason": row["reason"]} if row["reason"] else {}), "recipients": recipients,
            "sha256": row["sha256"], "message_id": message_id, "file": f"{row['folder']}/{files[0].name}",
            "attachments": [{"name": f.name, "sha256": f.sha256} for f in files[1:]], "attempts": row["attempts"],
            **({"refused": note} if note else {})})
        log.info("report sent", extra={"row": row_id, "tenant": tenant, "kind": kind, "period": period,
                                       "message_id": message_id})
        if int(row["attempts"]) > self.config.reports.incident_after:
            self._observe(row, "ok", f"the {kind} report {period} of {tenant} was sent at try {row['attempts']}")
        detail = f"sent to {', '.join(recipients)} ({message_id})" + (f"; {note}" if note else "")
        return Outcome(row_id, tenant, kind, period, OutboxStatus.SENT.value, detail, int(row["attempts"]),
                       recipients=tuple(recipients), message_id=message_id)

    def _failed(self, row: sqlite3.Row, exc: Unsent) -> Outcome:
        row_id, error = int(row["id"]), str(exc)
        tenant, kind, period = str(row["tenant"]), str(row["kind"]), str(row["period"])
        attempts = int(row["attempts"])
        self.store.failed(row_id, exc.stage, error)
        changed = row["error"] != error
        next_at = float(row["next_attempt_at"])
        when = datetime.fromtimestamp(next_at, ROME).isoformat(timespec="seconds")
        log.log(logging.WARNING if changed else logging.DEBUG, "report not sent; tried again later", extra={
            "row": row_id, "tenant": tenant, "kind": kind, "period": period, "stage": exc.stage.value,
            "error": error, "attempts": attempts, "next_attempt": when})
        if exc.stage == ErrorStage.RENDER:
            self.audit("report.render_failed", _subject(tenant, kind, period), {
                "row": row_id, "tenant": tenant, "kind": kind, "period": period, "attempts": attempts,
                "reason": error, "next_attempt": when})
        if attempts >= self.config.reports.incident_after:
            what = "rendered" if exc.stage == ErrorStage.RENDER else "sent"
            self._observe(row, "warning", f"the {kind} report {period} of {tenant} could not be {what} in {attempts} "
                                          f"tries: {error}; tried again from {when} (custode report outbox)")
        return Outcome(row_id, tenant, kind, period, "retry", error, attempts, next_attempt_at=next_at)

    def _observe(self, row: sqlite3.Row, severity: str, summary: str) -> None:
        """The provider's incident for this report (its fix is the provider's: SMTP, config, the renderer)."""
        if self.incidents is None:
            return
        target = f"{row['tenant']}/{row['kind']}/{row['period']}"
        try:
            self.incidents.observe(CheckResult(self.config.agent.tenant, REPORT_CHECK, target,
                                               severity,  # type: ignore[arg-type]
                                               summary, {"row": int(row["id"]), "tenant": row["tenant"]}))
        except sqlite3.Error:
            log.exception("cannot record the report's incident", extra={"row": row["id"]})

    def resolve_incident(self, row: sqlite3.Row, why: str) -> None:
        """A row cancelled by hand: its incident, if any, is over."""
        if int(row["attempts"]) >= self.config.reports.incident_after:
            self._observe(row, "ok", why)


def _subject(tenant: str, kind: str, period: str) -> str:
    """The audit subject and X-Custode-Report header: ``report/crema/quarterly/2026Q4``."""
    return f"report/{tenant}/{kind}/{period}"


def _safe_name(name: str) -> str:
    """A plain file name (the renderer's, as the mail client will save it): no folders, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(ch for ch in base if ord(ch) >= 32)
    return "" if base in ("", ".", "..") or base.startswith(".") else base


def _media_type(name: str) -> str:
    if name.lower().endswith(".csv"):
        return "text/csv"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _file(name: str, content: bytes, media_type: str) -> RenderedFile:
    return RenderedFile(name, hashlib.sha256(content).hexdigest(), media_type or "application/octet-stream",
                        len(content))


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (POSIX; Windows has no directory handles to sync)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def row_summary(row: sqlite3.Row) -> dict[str, Any]:
    """A row as ``custode report outbox --format json`` lists it (times turned ISO by the caller)."""
    files = files_of(row)
    return {"id": row["id"], "tenant": row["tenant"], "kind": row["kind"], "period": row["period"],
            "trigger": row["trigger"], "reason": row["reason"], "status": row["status"],
            "created_at": row["created_at"], "due_at": row["due_at"], "attempts": row["attempts"],
            "last_attempt_at": row["last_attempt_at"],
            "next_attempt_at": row["next_attempt_at"] if row["status"] in ("pending", "sending") else None,
            "error": row["error"], "error_stage": row["error_stage"], "rendered_at": row["rendered_at"],
            "sha256": row["sha256"], "files": [f.as_json() for f in files],
            "folder": row["folder"], "message_id": row["message_id"],
            "recipients": json.loads(row["recipients"] or "[]"), "note": row["note"], "sent_at": row["sent_at"],
            "closed_at": row["closed_at"]}
