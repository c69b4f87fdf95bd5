"""An APScheduler trigger that reads crontab lines the way cron does.

APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from Monday = 0,
so "0 6 * * 1" would fire on Tuesdays; the config documents cron's own
meaning (Sunday = 0, Monday = 1), which croniter implements. One trigger
for every cron field in the config keeps that promise in one place.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from apscheduler.triggers.base import BaseTrigger
from croniter import croniter


class CronLineTrigger(BaseTrigger):
    def __init__(self, expression: str, timezone: tzinfo) -> None:
        self.expression = expression
        self.timezone = timezone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        start = max(previous_fire_time, now) if previous_fire_time else now
        return croniter(self.expression, start.astimezone(self.timezone)).get_next(datetime)

    def __str__(self) -> str:
        return f"cron[{self.expression}]"
