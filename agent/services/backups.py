"""Backup reports: the mailbox poll, on the config's ``backups.poll_interval``, and the daily prune."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from custode.agent.services import Context, Job, Service

if TYPE_CHECKING:
    from custode.agent.backups.service import BackupMonitor

ORDER = 10


class BackupsService(Service):
    name = "backups"

    def __init__(self, monitor: BackupMonitor, poll_interval: float) -> None:
        self.feature = monitor
        self.poll_interval = poll_interval

    def jobs(self, now: datetime) -> list[Job]:
        return [Job("backups", self.feature.poll, "interval", {"seconds": self.poll_interval}, run_now=True,
                    misfire_grace_time=max(1, int(self.poll_interval))),
                Job("backups-prune", self.feature.prune, "interval", {"hours": 24})]


def build(context: Context) -> BackupsService | None:
    """The backup-mail job, when the config has mailboxes or expected jobs."""
    config = context.loaded.model
    section = config.backups
    if not section.enabled or not (section.mailboxes or section.expected):
        return None
    from custode.agent.backups.service import BackupMonitor

    cache = context.cache
    monitor = BackupMonitor(section, context.state, context.incidents,
                            publish=lambda families: cache.update("backups", families),
                            default_tenant=config.agent.tenant)
    return BackupsService(monitor, section.poll_interval)
