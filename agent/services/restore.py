"""Restore tests and backup coverage: cron per set (Europe/Rome) on one worker, hourly overdue check, metrics."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from custode.agent.services import Context, Job, Service

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.metric_cache import MetricCache
    from custode.agent.restore.service import RestoreService as Restore

log = logging.getLogger(__name__)
ORDER = 30
SIX_HOURS = 6 * 3600


class RestoreService(Service):
    name = "restore"

    def __init__(self, restore: Restore, config: Config, cache: MetricCache) -> None:
        self.feature = restore
        self.config = config
        self.cache = cache

    def executors(self) -> dict[str, int]:
        return {"restore": 1}  # restores are heavy: one at a time is plenty

    def jobs(self, now: datetime) -> list[Job]:
        from custode.agent.clock import ROME
        from custode.agent.cron_trigger import CronLineTrigger

        section = self.config.restore_tests
        jobs = [Job(f"restore:{name}", self.run_test, CronLineTrigger(test_set.schedule or section.schedule, ROME),
                    args=(name,), executor="restore", misfire_grace_time=SIX_HOURS)
                for name, test_set in self.feature.sets().items()]
        checked = self.feature.store.coverage_runs()
        for name in self.feature.covered_sets():
            jobs.append(Job(f"coverage:{name}", self.run_coverage, CronLineTrigger(section.coverage_schedule, ROME),
                            args=(name,), executor="restore", misfire_grace_time=SIX_HOURS))
            if name not in checked:  # never checked: once now, then on its schedule
                jobs.append(Job(f"coverage-first:{name}", self.run_coverage, None, args=(name,), executor="restore",
                                run_now=True))
        return [*jobs, Job("restore-overdue", self.feature.check_overdue, "interval", {"hours": 1}, run_now=True),
                Job("restore-metrics", self.publish, "interval", {"minutes": 5}, run_now=True)]

    def run_test(self, name: str) -> None:
        try:
            certificate, _ = self.feature.run_test(name, "scheduled")
            log.info("restore test finished", extra={"set": name, "passed": certificate["passed"],
                                                     "files_checked": certificate["files_checked"]})
        except Exception:
            log.exception("restore test could not be recorded", extra={"set": name})
        finally:
            self.publish()

    def run_coverage(self, name: str) -> None:
        try:
            self.feature.coverage(name)
        except Exception:
            log.exception("coverage check failed", extra={"set": name})
        finally:
            self.publish()

    def publish(self) -> None:
        from custode.agent.restore.metrics import restore_families

        try:
            self.cache.update("restore", restore_families(self.feature))
        except Exception:
            log.exception("restore-test metrics failed")


def build(context: Context) -> RestoreService | None:
    """Restore tests and coverage, when the config has backup sets."""
    config = context.loaded.model
    if not config.restore_tests.enabled or not config.restore_tests.sets:
        return None
    from custode.agent.paths import data_dir
    from custode.agent.restore.service import RestoreService as Restore

    return RestoreService(Restore(config, context.state, context.incidents, context.audit, data_dir(config)),
                          config, context.cache)
