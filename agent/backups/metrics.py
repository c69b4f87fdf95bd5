"""Backup job states and mailbox health as Prometheus families."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from custode.agent.backups.jobs import JOB_STATES, Evaluation
from custode.agent.backups.report import STATUSES

JOB_LABELS = ["tenant", "backup_job", "software"]  # "job" is Prometheus' own target label


@dataclass
class MailboxHealth:
    up: bool
    last_success_at: float | None
    duration: float
    error: str | None = None


def backup_families(evaluation: Evaluation, mailboxes: dict[str, MailboxHealth],
                    messages: dict[tuple[str, str], int], unexpected_tenants: dict[str, str | None]) -> list[Metric]:
    state = GaugeMetricFamily("custode_backup_state", "1 for the job's current state (ok, warning, failed, late, "
                              "missing), 0 for the others.", labels=JOB_LABELS + ["state"])
    last_success = GaugeMetricFamily("custode_backup_last_success_timestamp_seconds",
                                     "Unix time of the job's last successful report.", labels=JOB_LABELS)
    last_report = GaugeMetricFamily("custode_backup_last_report_timestamp_seconds",
                                    "Unix time of the job's last report, whatever it said.", labels=JOB_LABELS)
    deadline = GaugeMetricFamily("custode_backup_deadline_timestamp_seconds",
                                 "Unix time by which the current run must report (schedule + grace).",
                                 labels=JOB_LABELS)
    reports = CounterMetricFamily("custode_backup_reports", "Reports received for the job, by status "
                                  "(within the retention).", labels=JOB_LABELS + ["status"])
    for job in evaluation.jobs:
        labels = [job.tenant, job.job.name, job.software_label]
        for name in JOB_STATES:
            state.add_metric(labels + [name], 1.0 if job.state == name else 0.0)
        if job.last_success_at is not None:
            last_success.add_metric(labels, job.last_success_at)
        if job.last_report is not None:
            last_report.add_metric(labels, job.last_report.reported_at)
        deadline.add_metric(labels, job.deadline)
        for status in STATUSES:
            reports.add_metric(labels + [status], float(job.counts.get(status, 0)))

    unexpected = GaugeMetricFamily("custode_backup_unexpected_jobs", "Distinct (software, job, host) that "
                                   "reported recently but match no expected job.", labels=["tenant"])
    distinct: dict[str, set[tuple]] = {}
    for report in evaluation.unexpected:
        tenant = unexpected_tenants.get(report.mailbox) or ""
        distinct.setdefault(tenant, set()).add((report.software, report.job, report.host))
    for tenant in sorted(set(distinct) | {t or "" for t in unexpected_tenants.values()}):
        unexpected.add_metric([tenant], float(len(distinct.get(tenant, ()))))

    up = GaugeMetricFamily("custode_backup_mailbox_up", "1 if the mailbox's last poll succeeded.",
                           labels=["mailbox"])
    last_poll = GaugeMetricFamily("custode_backup_mailbox_last_poll_timestamp_seconds",
                                  "Unix time of the mailbox's last successful poll.", labels=["mailbox"])
    duration = GaugeMetricFamily("custode_backup_mailbox_poll_duration_seconds",
                                 "Wall time of the mailbox's last poll.", labels=["mailbox"])
    processed = CounterMetricFamily("custode_backup_mailbox_messages", "Messages processed, by verdict "
                                    "(report, not_a_report, error), within the retention.",
                                    labels=["mailbox", "kind"])
    for name in sorted(mailboxes):
        health = mailboxes[name]
        up.add_metric([name], 1.0 if health.up else 0.0)
        if health.last_success_at is not None:
            last_poll.add_metric([name], health.last_success_at)
        duration.add_metric([name], health.duration)
        for kind in ("report", "not_a_report", "error"):
            processed.add_metric([name, kind], float(messages.get((name, kind), 0)))
    return [state, last_success, last_report, deadline, reports, unexpected, up, last_poll, duration, processed]
