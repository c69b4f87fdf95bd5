"""Update windows as Prometheus families: when the next one opens, how the last run went."""

from __future__ import annotations

from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric

from custode.agent.calendar import ROME
from custode.agent.config import Config
from custode.agent.updates.states import FINISHED_RUN_STATUSES
from custode.agent.updates.store import UpdateStore
from custode.agent.updates.windows import next_occurrence

LABELS = ["window", "application", "tenant"]
RUN_STATUSES = FINISHED_RUN_STATUSES


def update_families(config: Config, store: UpdateStore, now: float) -> list[Metric]:
    next_start = GaugeMetricFamily("custode_update_window_next_start_timestamp_seconds",
                                   "Unix time the window next opens (holidays and closures skipped).", labels=LABELS)
    last_time = GaugeMetricFamily("custode_update_last_run_timestamp_seconds",
                                  "Unix time the window's last run ended.", labels=LABELS)
    last_status = GaugeMetricFamily("custode_update_last_run_status",
                                    "1 for the last run's outcome (succeeded, rolled_back, failed, interrupted).",
                                    labels=LABELS + ["status"])
    last_success = GaugeMetricFamily("custode_update_last_success_timestamp_seconds",
                                     "Unix time the window's last successful run ended.", labels=LABELS)
    duration = GaugeMetricFamily("custode_update_last_run_duration_seconds", "How long the last run took.",
                                 labels=LABELS)
    running = GaugeMetricFamily("custode_update_running", "1 while a run of the window is in progress.",
                                labels=LABELS)
    moment = datetime.fromtimestamp(now, ROME)
    last = store.last_finished()
    successes = store.last_success_times()
    busy = store.running()
    for name, window in config.updates.windows.items():
        if not window.enabled:
            continue
        labels = [name, window.application, window.tenant or config.agent.tenant]
        upcoming = next_occurrence(config, name, moment)
        if upcoming is not None:
            next_start.add_metric(labels, upcoming.start.timestamp())
        running.add_metric(labels, 1.0 if name in busy else 0.0)
        if name in successes:
            last_success.add_metric(labels, successes[name])
        row = last.get(name)
        if row is None:
            continue
        last_time.add_metric(labels, row["ended_at"])
        duration.add_metric(labels, row["ended_at"] - row["started_at"])
        for status in RUN_STATUSES:
            last_status.add_metric(labels + [status], 1.0 if row["status"] == status else 0.0)
    return [next_start, running, last_time, last_status, last_success, duration]
