"""The report's long detail as CSV files: what the PDF leaves out so that it stays a few tens of pages.

A 50-server comune's year is 18,000 server-days, 20,000 backup runs and
hundreds of tickets: printed, that is a 200-page PDF nobody reads. The PDF
shows the month-by-job view, the exceptions and the charts, and says which
file holds the rest; these files hold every row, for a spreadsheet or a
script. The convention is the other CSV exports' (``custode sla report``,
``custode farm report``): comma-separated, UTF-8, a header of stable English
column names, ISO 8601 dates and times with their offset, dot decimals,
empty for "no data" (never 0). Each file's description, in the report's
language, is in the PDF's "Attachments" section and in the zip's README.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from custode.agent.reports.document import Report

Row = Sequence[Any]

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "it": {
        "summary.csv": "i semafori della sintesi",
        "backup_days.csv": "ogni esecuzione prevista di ogni job di backup: giorno, esito, ora del report, errore",
        "backup_grid.csv": "la griglia giorno per job degli esiti dei backup",
        "restore_tests.csv": "i test di ripristino con il numero del certificato",
        "backup_paths.csv": "le cartelle salvate e quelle non protette",
        "servers.csv": "ogni server: disponibilità, CPU, memoria, antivirus, aggiornamenti",
        "servers_daily.csv": "CPU e memoria di ogni server giorno per giorno (media e picco)",
        "disks.csv": "ogni disco: dimensione, occupazione, data in cui sarà pieno",
        "disks_daily.csv": "l'occupazione di ogni disco giorno per giorno",
        "outages.csv": "ogni interruzione di ogni server",
        "update_windows.csv": "ogni finestra di aggiornamento con l'esito e il motivo",
        "service_levels.csv": "i livelli di servizio del contratto: ticket nei tempi e fuori",
        "tickets.csv": "ogni ticket del periodo con i suoi tempi",
        "network_devices.csv": "ogni dispositivo di rete: disponibilità, interruzioni, riavvii, interfacce cadute, "
                               "eventi del gruppo di continuità",
        "network_events.csv": "ogni interruzione, interfaccia caduta ed evento dei gruppi di continuità dei "
                              "dispositivi, e ogni interruzione dei servizi controllati",
        "probes.csv": "ogni servizio controllato: disponibilità, tempi di risposta, certificato",
        "probes_daily.csv": "ogni servizio controllato giorno per giorno: controlli, riusciti, lenti, tempi",
    },
    "en": {
        "summary.csv": "the summary's traffic lights",
        "backup_days.csv": "every run due of every backup job: day, outcome, report time, error",
        "backup_grid.csv": "the day-by-job grid of backup outcomes",
        "restore_tests.csv": "the restore tests with their certificate numbers",
        "backup_paths.csv": "the backed-up and the unprotected folders",
        "servers.csv": "each server: availability, CPU, memory, antivirus, updates",
        "servers_daily.csv": "each server's CPU and memory day by day (average and peak)",
        "disks.csv": "each disk: size, use, the date it will be full",
        "disks_daily.csv": "each disk's use day by day",
        "outages.csv": "every outage of every server",
        "update_windows.csv": "every update window with its outcome and reason",
        "service_levels.csv": "the contract's service levels: tickets in time and late",
        "tickets.csv": "every ticket of the period with its times",
        "network_devices.csv": "each network device: availability, outages, restarts, interfaces down, UPS events",
        "network_events.csv": "every outage, interface down and UPS event of the devices, and every outage of the "
                              "services checked",
        "probes.csv": "each service checked: availability, response times, certificate",
        "probes_daily.csv": "each service checked day by day: checks, successes, slow ones, response times",
    },
}
NETWORK_FILES: tuple[str, ...] = ("network_devices.csv", "network_events.csv", "probes.csv", "probes_daily.csv")
"""Only in the report of a comune with network devices or probes (:attr:`Report.has_network`)."""
FILES: tuple[str, ...] = tuple(name for name in DESCRIPTIONS["en"] if name not in NETWORK_FILES)
"""The fixed set every report's zip holds; a comune with a network section's holds :data:`NETWORK_FILES` too."""


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value == value else ""
    return value


def _csv(header: Sequence[str], rows: Iterable[Row]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


def _summary(report: Report) -> tuple[list[str], list[Row]]:
    return ["area", "light"], [(s.area, s.light.value) for s in report.summary]


def _backup_days(report: Report) -> tuple[list[str], list[Row]]:
    return (["job", "software", "schedule", "day", "outcome", "reported_at", "error"],
            [(j.job, j.software, j.schedule, d.day, d.outcome, d.reported_at, d.error)
             for j in report.backups.jobs for d in j.days])


def _backup_grid(report: Report) -> tuple[list[str], list[Row]]:
    """Rows are days, columns jobs: the grid a referent scrolls in a spreadsheet."""
    jobs = report.backups.jobs
    outcome = {(i, d.day): d.outcome for i, j in enumerate(jobs) for d in j.days}
    days = sorted({day for _, day in outcome})
    return ["day", *(j.job for j in jobs)], [(day, *(outcome.get((i, day), "") for i in range(len(jobs))))
                                            for day in days]


def _restore_tests(report: Report) -> tuple[list[str], list[Row]]:
    return (["set", "finished_at", "passed", "files_checked", "files_verified", "mismatches", "restored_bytes",
             "snapshot_time", "certificate_id", "summary"],
            [(t.set_name, t.finished_at, t.passed, t.files_checked, t.files_verified, t.mismatches, t.restored_bytes,
              t.snapshot_time, t.certificate_id, t.summary) for t in report.backups.restore_tests])


def _paths(report: Report) -> tuple[list[str], list[Row]]:
    return (["set", "path", "protected", "reason", "size_bytes"],
            [(p.set_name, p.path, p.protected, p.reason, p.size_bytes) for p in report.backups.paths])


def _servers(report: Report) -> tuple[list[str], list[Row]]:
    return (["host", "os", "source", "availability_percent", "days_with_data", "cpu_avg_percent", "cpu_max_percent",
             "memory_avg_percent", "memory_max_percent", "antivirus", "antivirus_signature_age_days",
             "updates_pending", "updates_security_pending", "last_update_installed", "os_supported", "event_errors",
             "hardware_problems", "antivirus_active", "antivirus_days_inactive", "os_end_of_support",
             "unhealthy_disk_days"],
            [(s.host, s.os, s.source, s.availability_percent, s.days_with_data, s.cpu_avg_percent, s.cpu_max_percent,
              s.memory_avg_percent, s.memory_max_percent, s.antivirus, s.antivirus_signature_age_days,
              s.updates_pending, s.updates_security_pending, s.last_update_installed, s.os_supported, s.event_errors,
              "; ".join(s.hardware_problems), s.antivirus_active, s.antivirus_days_inactive, s.os_end_of_support,
              s.unhealthy_disk_days) for s in report.servers.servers])


def _servers_daily(report: Report) -> tuple[list[str], list[Row]]:
    rows: list[Row] = []
    for server in report.servers.servers:
        cpu = {d: (a, p) for d, a, p in server.daily_cpu}
        memory = {d: (a, p) for d, a, p in server.daily_memory}
        for day in sorted(set(cpu) | set(memory)):
            c, m = cpu.get(day, (None, None)), memory.get(day, (None, None))
            rows.append((server.host, day, c[0], c[1], m[0], m[1]))
    return ["host", "day", "cpu_avg_percent", "cpu_peak_percent", "memory_avg_percent", "memory_peak_percent"], rows


def _disks(report: Report) -> tuple[list[str], list[Row]]:
    return (["host", "mount", "size_bytes", "used_percent_start", "used_percent_end", "used_percent_max", "full_by"],
            [(s.host, d.mount, d.size_bytes, d.used_percent_start, d.used_percent_end, d.used_percent_max, d.full_by)
             for s in report.servers.servers for d in s.disks])


def _disks_daily(report: Report) -> tuple[list[str], list[Row]]:
    return (["host", "mount", "day", "used_percent"],
            [(s.host, d.mount, day, value) for s in report.servers.servers for d in s.disks
             for day, value in d.daily_used_percent])


def _outages(report: Report) -> tuple[list[str], list[Row]]:
    return (["host", "start", "end", "seconds", "summary"],
            [(o.host, o.start, o.end, o.seconds, o.summary) for o in report.servers.outages])


def _windows(report: Report) -> tuple[list[str], list[Row]]:
    return (["window", "application", "start", "outcome", "reason", "announced_at", "trigger", "run_id"],
            [(w.window, w.application, w.start, w.outcome, w.reason, w.announced_at, w.trigger, w.run_id)
             for w in report.updates.windows])


def _levels(report: Report) -> tuple[list[str], list[Row]]:
    return (["contract", "level", "label", "opened", "take_charge_within", "take_charge_late", "resolved_within",
             "resolved_late", "still_open", "threshold_percent", "met", "penalty_euros_min", "penalty_euros_max"],
            [(report.tickets.contract, v.level, v.label, v.opened, v.take_charge_within, v.take_charge_late,
              v.resolved_within, v.resolved_late, v.still_open, v.threshold_percent, v.met, v.penalty_euros_min,
              v.penalty_euros_max) for v in report.tickets.levels])


def _tickets(report: Report) -> tuple[list[str], list[Row]]:
    return (["ref", "level", "subject", "opened_at", "taken_at", "resolved_at", "within_target"],
            [(t.ref, t.level, t.subject, t.opened_at, t.taken_at, t.resolved_at, t.within_target)
             for t in report.tickets.tickets])


def _ms(seconds: float | None) -> float | None:
    """Latencies in milliseconds: the files keep two decimals, too few for seconds."""
    return None if seconds is None else round(seconds * 1000, 2)


def _network_devices(report: Report) -> tuple[list[str], list[Row]]:
    return (["host", "role", "site", "description", "availability_percent", "days_with_data", "outages",
             "outage_seconds", "reboots", "rebooted_at", "interface_downs", "interface_down_seconds",
             "interface_down_longest_seconds", "ups_events", "ups_seconds"],
            [(d.host, d.role, d.site, d.description, d.availability_percent, d.days_with_data, len(d.outages),
              d.outage_seconds, len(d.reboots), " ".join(r.isoformat() for r in d.reboots), len(d.interface_downs),
              d.interface_down_seconds, d.interface_down_longest_seconds, len(d.ups_events), d.ups_seconds)
             for d in report.network.devices])


def _network_events(report: Report) -> tuple[list[str], list[Row]]:
    section = report.network
    events = [e for d in section.devices for e in (*d.outages, *d.interface_downs, *d.ups_events)]
    events += [e for p in section.probes for e in p.downs]
    return (["subject", "kind", "detail", "start", "end", "seconds", "summary"],
            [(e.subject, e.kind, e.detail, e.start, e.end, e.seconds, e.summary)
             for e in sorted(events, key=lambda e: (e.start, e.subject))])


def _probes(report: Report) -> tuple[list[str], list[Row]]:
    return (["probe", "kind", "target", "availability_percent", "probes", "successes", "latency_avg_ms",
             "latency_median_ms", "latency_max_ms", "slow_days", "cert_expires_at", "cert_days_left",
             "downs", "down_seconds", "errors"],
            [(p.name, p.kind, p.target, p.availability_percent, p.probes, p.successes, _ms(p.latency_avg_seconds),
              _ms(p.latency_median_seconds), _ms(p.latency_max_seconds), p.slow_days, p.cert_expires_at,
              p.cert_days_left, len(p.downs), p.down_seconds, "; ".join(f"{text} ({n})" for text, n in p.errors))
             for p in report.network.probes])


def _probes_daily(report: Report) -> tuple[list[str], list[Row]]:
    return (["probe", "day", "probes", "successes", "slow", "latency_avg_ms", "latency_max_ms",
             "cert_expires_at"],
            [(p.name, d.day, d.probes, d.successes, d.slow, _ms(d.latency_avg_seconds), _ms(d.latency_max_seconds),
              d.cert_expires_at) for p in report.network.probes for d in p.days])


TABLES: dict[str, Callable[[Report], tuple[list[str], list[Row]]]] = {
    "summary.csv": _summary, "backup_days.csv": _backup_days, "backup_grid.csv": _backup_grid,
    "restore_tests.csv": _restore_tests, "backup_paths.csv": _paths, "servers.csv": _servers,
    "servers_daily.csv": _servers_daily, "disks.csv": _disks, "disks_daily.csv": _disks_daily,
    "outages.csv": _outages, "update_windows.csv": _windows, "service_levels.csv": _levels,
    "tickets.csv": _tickets, "network_devices.csv": _network_devices, "network_events.csv": _network_events,
    "probes.csv": _probes, "probes_daily.csv": _probes_daily,
}
assert tuple(TABLES) == (*FILES, *NETWORK_FILES) == tuple(DESCRIPTIONS["it"]), \
    "every CSV file needs a description in both languages"


def csv_files(report: Report, with_empty: bool = False) -> dict[str, bytes]:
    """Every CSV file of the report, by name; files with no row only when ``with_empty`` (the zip's fixed set:
    :data:`FILES`, and :data:`NETWORK_FILES` for a comune with a network section)."""
    files = {}
    for name, build in TABLES.items():
        if name in NETWORK_FILES and not report.has_network:
            continue
        header, rows = build(report)
        if rows or with_empty:
            files[name] = _csv(header, rows)
    return files


def readme(report: Report, names: Iterable[str]) -> bytes:
    """The zip's README: what each file holds, in the report's language."""
    language = "en" if report.language == "en" else "it"
    title = (f"{report.tenant_name} — {report.period}" + (": file CSV del rapporto" if language == "it"
                                                         else ": the report's CSV files"))
    lines = [title, ""] + [f"{name}: {DESCRIPTIONS[language][name]}" for name in names]
    return ("\n".join(lines) + "\n").encode("utf-8")


def zip_files(files: dict[str, bytes], report: Report) -> bytes:
    """The CSV files and a README in one zip, with fixed timestamps: the same report gives the same bytes."""
    buffer = io.BytesIO()
    at = report.generated_at
    stamp = (max(at.year, 1980), at.month, at.day, at.hour, at.minute, at.second)
    name = "LEGGIMI.txt" if report.language != "en" else "README.txt"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, content in [(name, readme(report, files)), *files.items()]:
            info = zipfile.ZipInfo(entry, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()
