"""Update windows: one cron job per weekly window and one job per date of a one-off window (Europe/Rome), on a
pool of their own; the advance notices to the referents; and the update metrics."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from custode.agent.clock import current_time, now_utc
from custode.agent.services import Context, Job, Service

if TYPE_CHECKING:
    from custode.agent.audit import AuditWriter
    from custode.agent.config_loader import LoadedConfig
    from custode.agent.metric_cache import MetricCache
    from custode.agent.updates.announce import Announcer
    from custode.agent.updates.config import WindowConfig
    from custode.agent.updates.runner import UpdateRunner

log = logging.getLogger(__name__)
ORDER = 20
MISFIRE_GRACE = 900
"""A window's job may start this late (a busy scheduler) and still run."""
NOTICE_EVERY = 300
"""Seconds between advance-notice cycles: a notice not sent (SMTP down) is tried again this often."""


class UpdatesService(Service):
    name = "updates"

    def __init__(self, runner: UpdateRunner, loaded: LoadedConfig, cache: MetricCache, audit: AuditWriter,
                 announcer: Announcer | None = None) -> None:
        self.feature = runner
        self.loaded = loaded
        self.cache = cache
        self.audit = audit
        self.announcer = announcer

    def _windows(self) -> dict[str, WindowConfig]:
        return {name: window for name, window in self.loaded.model.updates.windows.items() if window.enabled}

    def executors(self) -> dict[str, int]:
        return {"updates": max(1, len(self._windows()))}  # runs last hours: each window its own thread

    def jobs(self, now: datetime) -> list[Job]:
        from apscheduler.triggers.cron import CronTrigger

        from custode.agent.clock import ROME
        from custode.agent.updates.runner import check_playbooks

        for problem in check_playbooks(self.loaded.model, self.loaded.source):
            log.error("playbook problem: the window will fail until it is fixed", extra={"problem": str(problem)})
        for run_id in self.feature.recover():
            log.error("an update run was interrupted by the previous stop", extra={"run_id": run_id})
        jobs: list[Job] = []
        for name, window in self._windows().items():
            if window.dates is not None:
                jobs += self._date_jobs(name, window, now)
                continue
            jobs.append(Job(f"update:{name}", self.run_window,
                            CronTrigger(day_of_week=",".join(str(d) for d in window.weekdays),
                                        hour=window.start_time.hour, minute=window.start_time.minute, timezone=ROME),
                            args=(name,), executor="updates", misfire_grace_time=MISFIRE_GRACE))
        if self.announcer is not None:
            jobs.append(Job("update-notices", self.send_notices, "interval", {"seconds": NOTICE_EVERY},
                            run_now=True))
        return [*jobs, Job("updates-metrics", self.publish, "interval", {"seconds": 60}, run_now=True)]

    def _date_jobs(self, name: str, window: WindowConfig, now: datetime) -> list[Job]:
        """One job per coming date of a one-off window; a date already past is history, not a job.

        Like a weekly window's cron job, a start missed while the agent was
        stopped is not caught up later: the window was agreed for that time.
        """
        from apscheduler.triggers.date import DateTrigger

        from custode.agent.clock import ROME

        jobs = []
        for day in window.dates or []:
            start = datetime.combine(day, window.start_time, ROME)
            if start <= now:
                continue
            jobs.append(Job(f"update:{name}@{day.isoformat()}", self.run_window, DateTrigger(run_date=start),
                            args=(name,), executor="updates", misfire_grace_time=MISFIRE_GRACE))
        return jobs

    def send_notices(self) -> None:
        """The advance notices due now, sent (or tried again); the announcer records and audits each one."""
        if self.announcer is not None:
            self.announcer.cycle()

    def run_window(self, name: str, now: datetime | None = None) -> None:
        """The scheduled start of a window: skip it (holiday, closure) with a record, or run the playbook."""
        from custode.agent.updates.runner import RunRefused
        from custode.agent.updates.windows import occurrence_at

        occurrence = occurrence_at(self.loaded.model, name, now or now_utc())
        try:
            if occurrence is None:
                log.warning("update window job fired outside its window", extra={"window": name})
            elif occurrence.skipped:
                log.info("update window skipped", extra={"window": name, "reason": occurrence.reason})
                self.audit("update.skipped", f"update/{name}", {"start": occurrence.start.isoformat(),
                                                                "reason": occurrence.reason})
            else:
                self.feature.run(name, "scheduled", occurrence=occurrence)
        except RunRefused as exc:
            log.error("update not started", extra={"window": name, "error": str(exc)})
            self.audit("update.refused", f"update/{name}", {"reason": str(exc)})
        except Exception:
            log.exception("update window failed before its run started", extra={"window": name})
        finally:
            self.publish()

    def publish(self) -> None:
        if self.feature.store is None:
            return
        from custode.agent.updates.metrics import update_families

        try:
            self.cache.update("updates", update_families(self.loaded.model, self.feature.store, current_time()))
        except Exception:
            log.exception("update metrics failed")


def build(context: Context) -> UpdatesService | None:
    """The update runner, when the config has update windows."""
    loaded = context.loaded
    section = loaded.model.updates
    if not section.enabled or not section.windows:
        return None
    from custode.agent.updates.announce import Announcer
    from custode.agent.updates.notice_store import NoticeStore
    from custode.agent.updates.runner import UpdateRunner
    from custode.agent.updates.service import build_mailer

    mailer = build_mailer(loaded.model)  # type: ignore[no-untyped-call]
    runner = UpdateRunner(loaded.model, loaded.source, context.state, context.incidents, audit=context.audit,
                          mailer=mailer)
    announcer = Announcer(loaded.model, NoticeStore(context.state), mailer, audit=context.audit)
    return UpdatesService(runner, loaded, context.cache, context.audit, announcer)
