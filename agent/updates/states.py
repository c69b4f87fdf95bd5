"""The words an update run is recorded with: triggers, run and step statuses, phases; and advance notices.

Each is a ``StrEnum`` whose members are the very strings the state DB stores
(and its CHECK constraints allow, migrations 3 and 10 in :mod:`custode.agent.state`),
so existing rows read the same and no migration is needed.
"""

from __future__ import annotations

from enum import StrEnum


class RunTrigger(StrEnum):
    """What started a run (``update_runs.trigger``)."""

    SCHEDULED = "scheduled"
    """The window's own cron job."""
    MANUAL = "manual"
    """``custode update run WINDOW`` inside the window."""
    NOW = "now"
    """``--now --reason``: urgent, outside the window, announced to the referents first."""


class RunStatus(StrEnum):
    """How a run stands or ended (``update_runs.status``)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    """A step failed and every rollback step passed."""
    FAILED = "failed"
    """A step failed and there was no rollback, or the rollback failed too."""
    INTERRUPTED = "interrupted"
    """The process died mid-run (crash, kill, reboot); found and recorded at the next start."""


FINISHED_RUN_STATUSES: tuple[RunStatus, ...] = (RunStatus.SUCCEEDED, RunStatus.ROLLED_BACK, RunStatus.FAILED,
                                                RunStatus.INTERRUPTED)


class StepStatus(StrEnum):
    """How one step stands or ended (``update_steps.status``)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    WARNING = "warning"
    """Done, with something to look at (a notice that could not be sent); the run goes on."""
    INTERRUPTED = "interrupted"
    """Still running when its run finished or was found interrupted."""


class Phase(StrEnum):
    """Which list of the playbook a step comes from (``update_steps.phase``)."""

    STEPS = "steps"
    ROLLBACK = "rollback"


class NoticeKind(StrEnum):
    """What an advance notice tells the referents (``update_notices.kind``, migration 10)."""

    ADVANCE = "advance"
    """The window will open: when, for how long, on which servers."""
    CANCELLED = "cancelled"
    """The window falls on a holiday or closure day and will not open."""


class NoticeStatus(StrEnum):
    """Where an advance notice stands (``update_notices.status``)."""

    PENDING = "pending"
    """Due, tried and not sent yet (SMTP down, no referents, no smtp section): tried again next cycle."""
    SENDING = "sending"
    """Claimed by one process, which is sending it now: no other process sends it meanwhile."""
    SENT = "sent"
    NOT_SENT = "not_sent"
    """The window started before the notice could be sent: final, with the reason."""


OPEN_NOTICE_STATUSES: tuple[NoticeStatus, ...] = (NoticeStatus.PENDING, NoticeStatus.SENDING)
