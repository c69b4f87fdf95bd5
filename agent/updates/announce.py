"""Advance notices of update windows: each sent once per occurrence and tenant, retried until the window opens.

Sassuolo's contract fines the provider €500–1,000 for a release not announced
in advance, so the notice must not be lost when the SMTP server is down at
the moment it is due: every cycle (the agent runs one every few minutes, and
``custode update notices`` runs one by hand) sends what is due and not sent
yet, until the window opens; then what is still unsent is recorded as not
sent, with the reason, and audited. Every notice sent is audited too.

:func:`announcement_for` answers the SLA side's question: was this release
announced in advance, and when?
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custode.agent.calendar import ROME
from custode.agent.clock import Clock, current_time
from custode.agent.config import Config
from custode.agent.state import State
from custode.agent.updates.advance import PlannedNotice, planned_notices
from custode.agent.updates.notice_store import START_TOLERANCE, NoticeStore
from custode.agent.updates.notify import Notice, compose
from custode.agent.updates.states import NoticeKind, NoticeStatus

if TYPE_CHECKING:
    from custode.agent.config_loader import LoadedConfig

log = logging.getLogger(__name__)

Audit = Callable[[str, str, dict], None]


class NoticeNotSent(Exception):
    """This attempt did not send the notice; the message says why and what to fix."""


@dataclass(frozen=True)
class NoticeOutcome:
    """What a cycle did with one notice: ``sent``, ``retry`` (next cycle) or ``not_sent`` (final)."""

    tenant: str
    window: str
    application: str
    kind: str
    start: datetime
    due: datetime | None
    status: str
    detail: str
    recipients: tuple[str, ...] = ()

    @classmethod
    def of(cls, notice: PlannedNotice, status: str, detail: str,
           recipients: tuple[str, ...] = ()) -> "NoticeOutcome":
        occ = notice.occurrence
        return cls(notice.tenant, occ.window, occ.application, notice.kind, occ.start, notice.due, status, detail,
                   recipients or tuple(notice.recipients))

    def as_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "window": self.window, "application": self.application, "kind": self.kind,
                "start": self.start, "due": self.due, "status": self.status, "detail": self.detail,
                "recipients": list(self.recipients)}


@dataclass(frozen=True)
class DueNotice:
    """A notice due now, as a dry run lists it: what it is and how its earlier attempts went."""

    notice: PlannedNotice
    status: str
    """``new``, ``pending`` (tried before), ``sending`` (another process has it), ``sent`` or ``not_sent``."""
    attempts: int
    error: str

    def as_json(self) -> dict[str, Any]:
        occ = self.notice.occurrence
        return {"tenant": self.notice.tenant, "window": occ.window, "application": occ.application,
                "kind": self.notice.kind, "start": occ.start, "end": occ.end, "due": self.notice.due,
                "skipped_reason": occ.reason, "recipients": list(self.notice.recipients), "status": self.status,
                "attempts": self.attempts, "error": self.error}


class Announcer:
    """Sends the advance notices due; ``mailer`` None (no smtp section) leaves every one unsent, with the reason."""

    def __init__(self, config: Config, store: NoticeStore, mailer: Any, *, audit: Audit | None = None,
                 clock: Clock = current_time) -> None:
        self.config = config
        self.store = store
        self.mailer = mailer
        self.audit: Audit = audit or (lambda action, subject, details: None)
        self.clock = clock

    def due(self) -> list[DueNotice]:
        """The notices due now, each with its recorded state; nothing is sent or written (``--dry-run``)."""
        now = datetime.fromtimestamp(self.clock(), ROME)
        out = []
        for notice in planned_notices(self.config, now):
            row = self.store.find(notice.key)
            out.append(DueNotice(notice, row["status"] if row else "new", row["attempts"] if row else 0,
                                 row["error"] if row else ""))
        return out

    def cycle(self) -> list[NoticeOutcome]:
        """Close what can no longer be sent in time, then send (or retry) every notice due now."""
        now = self.clock()
        outcomes = self._close_started(now)
        for notice in planned_notices(self.config, datetime.fromtimestamp(now, ROME)):
            outcome = self._send(notice, now)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    # --- internals -----------------------------------------------------------------------------

    def _close_started(self, now: float) -> list[NoticeOutcome]:
        outcomes = []
        for row in self.store.started_unsent(now):
            start = datetime.fromtimestamp(row["window_start"], ROME)
            cause = row["error"] or "never tried (Custode was not running, or the process sending it died)"
            reason = f"not sent before the window opened ({start:%Y-%m-%d %H:%M %Z}): {cause}"
            if not self.store.close_unsent(row, now, reason):
                continue
            subject = f"update/{row['window']}"
            self.audit("update.notice.not_sent", subject, {
                "tenant": row["tenant"], "kind": row["kind"], "window_start": start.isoformat(),
                "attempts": row["attempts"], "reason": reason})
            log.error("advance notice not sent before the window", extra={
                "window": row["window"], "tenant": row["tenant"], "reason": reason})
            outcomes.append(NoticeOutcome(row["tenant"], row["window"], row["application"], row["kind"], start,
                                          datetime.fromtimestamp(row["due_at"], ROME), NoticeStatus.NOT_SENT,
                                          reason))
        return outcomes

    def _send(self, notice: PlannedNotice, now: float) -> NoticeOutcome | None:
        previous = self.store.find(notice.key)
        notice_id = self.store.claim(notice.record(), now)
        if notice_id is None:
            return None  # sent already, closed, or another process is sending it this moment
        try:
            message_id, recipients, note = self._deliver(notice)
        except NoticeNotSent as exc:
            error = str(exc)
            self.store.failed(notice_id, self.clock(), error)
            changed = previous is None or previous["error"] != error
            log.log(logging.WARNING if changed else logging.DEBUG, "advance notice not sent; tried again next cycle",
                    extra={"window": notice.occurrence.window, "tenant": notice.tenant, "error": error})
            return NoticeOutcome.of(notice, "retry", error)
        except BaseException:
            self.store.failed(notice_id, self.clock(), "internal error while sending; see the agent's log")
            raise
        sent_at = self.clock()
        self.store.sent(notice_id, sent_at, message_id, recipients, note)
        occ = notice.occurrence
        self.audit("update.notice.sent", f"update/{occ.window}", {
            "tenant": notice.tenant, "kind": notice.kind, "window_start": occ.start.isoformat(),
            "window_end": occ.end.isoformat(), "due": notice.due.isoformat(), "recipients": recipients,
            "message_id": message_id, **({"refused": note} if note else {})})
        log.info("advance notice sent", extra={"window": occ.window, "tenant": notice.tenant, "kind": notice.kind,
                                               "message_id": message_id})
        detail = f"{notice.kind} notice sent to {', '.join(recipients)} ({message_id})" + (f"; {note}" if note else "")
        return NoticeOutcome.of(notice, NoticeStatus.SENT, detail, tuple(recipients))

    def _deliver(self, notice: PlannedNotice) -> tuple[str, list[str], str]:
        """Send one notice: (Message-ID, who accepted it, what was refused); NoticeNotSent when nobody got it."""
        from custode.agent.mailer import MailerError, OutgoingMail

        if not notice.recipients:
            raise NoticeNotSent(f"no referents to notify: add tenants.{notice.tenant}.referents")
        if self.mailer is None:
            raise NoticeNotSent("cannot e-mail the referents: the config has no smtp section (see README, "
                                "'Update windows and playbooks')")
        occ = notice.occurrence
        subject, text = compose(Notice(notice.kind, occ.application, notice.tenant_name, notice.hosts, occ.start,
                                       occ.end, occ.reason), notice.language)
        mail = OutgoingMail(to=list(notice.recipients), subject=subject, text=text,
                            message_id=self._message_id(notice),
                            headers={"X-Custode-Window": occ.window, "X-Custode-Notice": str(notice.kind)})
        try:
            return self.mailer.send(mail), list(notice.recipients), ""
        except MailerError as exc:
            if exc.accepted:  # delivered to some: sending again would be twice for them
                refused = ", ".join(exc.refused) or "some recipients"
                return exc.message_id or mail.message_id or "", list(exc.accepted), f"refused for {refused}: {exc}"
            raise NoticeNotSent(f"notice not sent: {exc}") from None
        except ValueError as exc:
            raise NoticeNotSent(f"notice not sent: {exc}; check tenants.{notice.tenant}.referents and "
                                "smtp.sender") from None

    def _message_id(self, notice: PlannedNotice) -> str:
        """The same id on every attempt: a copy sent again after a crash is folded into the first by mail clients."""
        from custode.agent.smtp_settings import parse_address

        sender = getattr(getattr(self.mailer, "settings", None), "sender", None)
        try:
            domain = parse_address(str(sender)).domain.strip("[]").encode("idna").decode("ascii")
        except (ValueError, UnicodeError):
            domain = "custode.invalid"
        occ = notice.occurrence
        return f"<custode.notice.{notice.kind}.{notice.tenant}.{occ.window}.{occ.start:%Y%m%dT%H%M%z}@{domain}>"


# --- for the SLA side -------------------------------------------------------------------------------

def announcement_for(source: NoticeStore | State | Config | LoadedConfig | str | os.PathLike[str], window: str,
                     start_ts: float, tenant: str | None) -> float | None:
    """When the occurrence of ``window`` that starts at ``start_ts`` was announced in advance, or None.

    ``source`` is where the record is: a state DB (open, or its path; a
    path that does not exist means nothing was ever announced), a notice
    store, or a config (its state DB).

    For SLA compliance (Sassuolo: a penalty per release not announced in
    advance). ``start_ts`` is the occurrence's start as Unix time (the
    ``window_start`` of its run in ``update_runs``; a second either way
    matches). With ``tenant``, the time that tenant's referents were sent the
    advance notice; with None, the time by which every tenant the notice was
    due to had been sent it (None if any was not). None also when nothing was
    recorded: the notice was never due (an urgent run, ``notify: false``,
    ``notice.enabled: false``), or not sent (the reason is in ``custode update
    notices`` and the audit log). A cancellation notice is no announcement of
    a release and is not counted.
    """
    with _notice_store(source) as store:
        if store is None:
            return None
        rows = store.for_occurrence(window, float(start_ts), NoticeKind.ADVANCE, tenant)
    if not rows or any(row["status"] != NoticeStatus.SENT for row in rows):
        return None
    return max(float(row["sent_at"]) for row in rows)


@dataclass(frozen=True)
class Announcements:
    """The advance notices sent to one tenant over a period, for asking :func:`announcement_for`'s question
    of many occurrences at once (the quarterly and yearly reports list a year of windows)."""

    sent: dict[str, tuple[tuple[float, float], ...]]
    """Window -> (occurrence start, sent_at) of each notice recorded as sent."""

    def at(self, window: str, start_ts: float) -> float | None:
        """What ``announcement_for(state, window, start_ts, tenant)`` answers, without a query."""
        return next((sent for start, sent in self.sent.get(window, ())
                     if abs(start - start_ts) <= START_TOLERANCE), None)


def announcements(store: NoticeStore, tenant: str, start_ts: float, end_ts: float) -> Announcements:
    """The tenant's advance notices of the occurrences starting in ``[start_ts, end_ts)``, read in one query.

    The same rule as :func:`announcement_for` with a tenant: a notice counts once it is recorded as sent;
    one still pending, or closed as not sent, is no announcement.
    """
    sent: dict[str, list[tuple[float, float]]] = {}
    for row in store.of_tenant_between(tenant, start_ts, end_ts, NoticeKind.ADVANCE):
        if row["status"] == NoticeStatus.SENT:
            sent.setdefault(row["window"], []).append((float(row["window_start"]), float(row["sent_at"])))
    return Announcements({window: tuple(pairs) for window, pairs in sent.items()})


@contextlib.contextmanager
def _notice_store(source: Any) -> Iterator[NoticeStore | None]:
    if isinstance(source, NoticeStore):
        yield source
        return
    if isinstance(source, State):
        yield NoticeStore(source)
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
    else:
        from custode.agent.paths import state_path

        config = getattr(source, "model", source)  # a LoadedConfig, or the Config itself
        if not isinstance(config, Config):
            raise TypeError(f"announcement_for: cannot find a state DB in {type(source).__name__}; pass a State, a "
                            "NoticeStore, a Config or the state DB's path")
        path = state_path(config)
    if not path.exists():
        yield None
        return
    state = State(path)
    try:
        yield NoticeStore(state)
    finally:
        state.close()
