"""Reports by e-mail: every few minutes, queue the reports due and try the outbox's rows, on a worker of their own.

One interval job rather than a cron line per tenant and kind: the due day is
a working day on each tenant's calendar (no cron expression says "the 5th
working day after the quarter"), and the same job retries what the SMTP
server refused, renders what failed to render and takes over a try that a
killed process left, so a report due while the agent was stopped goes out at
the next start.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from custode.agent.services import Context, Job, Service

if TYPE_CHECKING:
    from custode.agent.reports.delivery import ReportDeliverer

log = logging.getLogger(__name__)
ORDER = 45
CYCLE_EVERY = 300
"""Seconds between cycles: a report is queued within this of its due time, and a failed try waits at least this."""


class ReportsService(Service):
    name = "reports"

    def __init__(self, deliverer: ReportDeliverer) -> None:
        self.feature = deliverer

    def executors(self) -> dict[str, int]:
        return {"reports": 1}  # rendering a PDF takes seconds and sending may wait for the SMTP timeout

    def jobs(self, now: datetime) -> list[Job]:
        return [Job("reports", self.cycle, "interval", {"seconds": CYCLE_EVERY}, executor="reports", run_now=True,
                    misfire_grace_time=CYCLE_EVERY)]

    def cycle(self) -> None:
        """Queue what is due, then render and send; each row's outcome is recorded and audited by the deliverer."""
        self.feature.cycle()


def build(context: Context) -> ReportsService | None:
    """The outbox worker, when a tenant sends reports, or rows queued by hand are still waiting."""
    from custode.agent.paths import data_dir
    from custode.agent.reports.delivery import ReportDeliverer
    from custode.agent.reports.store import ReportStore

    config = context.loaded.model
    sending = any(spec.reports.enabled for spec in config.tenants.values())
    if not sending and not ReportStore(context.state).has_unsent():
        return None
    mailer = None
    if config.smtp is not None:
        from custode.agent.mailer import Mailer

        mailer = Mailer(config.smtp)
    return ReportsService(ReportDeliverer(config, context.state, data_dir(config), mailer, audit=context.audit,
                                          incidents=context.incidents))
