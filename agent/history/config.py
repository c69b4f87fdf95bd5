"""The ``history:`` section: how long every host's daily rows are kept.

The yearly analysis report of a comune's servers needs a full year plus the
weeks it takes to write it, so nothing under 400 days is accepted.
``farm.history_days``, the older place for the same setting, still counts:
the longer of the two applies, so an existing config keeps its rows as long as before.
"""

from __future__ import annotations

from pydantic import Field

from custode.agent.farm.config import MIN_HISTORY_DAYS
from custode.agent.schema import Strict


class HistorySection(Strict):
    days: int = Field(default=MIN_HISTORY_DAYS, ge=MIN_HISTORY_DAYS,
                      description="days of daily rows kept for every host, polled or with its own agent")
