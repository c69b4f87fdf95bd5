"""Restore tests and coverage as Prometheus families, per tenant and backup set."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily, Metric

from custode.agent.restore.service import RestoreService

LABELS = ["tenant", "set", "backend"]


def restore_families(service: RestoreService) -> list[Metric]:
    def gauge(name: str, text: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, labels=LABELS)

    last_success = gauge("custode_restore_test_last_success_timestamp_seconds",
                         "Unix time the set's last passed restore test ended.")
    last_run = gauge("custode_restore_test_last_run_timestamp_seconds", "Unix time the set's last restore test ended.")
    passed = gauge("custode_restore_test_passed", "1 if the last restore test passed, 0 if it failed.")
    checked = gauge("custode_restore_test_files_checked", "Files compared by the last restore test.")
    verified = gauge("custode_restore_test_files_verified", "Files the last restore test found intact.")
    mismatches = gauge("custode_restore_test_mismatches", "Files the last restore test found damaged, "
                                                          "unrestorable or missing from the backup.")
    throughput = gauge("custode_restore_test_throughput_bytes_per_second",
                       "Restore speed of the last test (restored bytes / restore time).")
    overdue = gauge("custode_restore_test_overdue", "1 when no restore test passed within the set's max_age.")
    unprotected = gauge("custode_backup_unprotected_paths",
                        "Folders and database files on the data volumes that the set does not back up.")
    coverage_time = gauge("custode_backup_coverage_last_check_timestamp_seconds",
                          "Unix time of the set's last coverage check.")
    coverage = service.store.coverage_runs()
    for status in service.statuses(only_enabled=True):
        name = status.name
        labels = [status.tenant, name, status.backend]
        overdue.add_metric(labels, 1.0 if status.overdue else 0.0)
        if status.last_success is not None:
            last_success.add_metric(labels, status.last_success)
        row = status.latest
        if row is not None:
            last_run.add_metric(labels, row["finished_at"])
            passed.add_metric(labels, float(row["passed"]))
            checked.add_metric(labels, row["files_checked"])
            verified.add_metric(labels, row["files_verified"])
            mismatches.add_metric(labels, row["mismatches"])
            if row["restore_seconds"] > 0:
                throughput.add_metric(labels, row["restored_bytes"] / row["restore_seconds"])
        run = coverage.get(name)
        if run is not None:
            unprotected.add_metric(labels, run["unprotected"])
            coverage_time.add_metric(labels, run["checked_at"])
    return [last_success, last_run, passed, checked, verified, mismatches, throughput, overdue, unprotected,
            coverage_time]
