"""The report laid out for reading: every figure already in words, every long list cut to what a page holds.

The template only places what this module hands it, so the decisions a
reader notices live in Python where tests reach them: which rows the PDF
keeps (the exceptions: failed runs, nights with no report, late tickets,
unprotected folders) and where the rest is (the CSV file it names), the
sentence behind each traffic light (made from the sections' own figures, so
it can never disagree with the tables below it), and what a section of a
service the comune did not buy says. The limits keep a 50-server comune's
year to a few tens of pages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from markupsafe import Markup

from custode.agent.reports import charts
from custode.agent.reports.csvfiles import DESCRIPTIONS, csv_files
from custode.agent.reports.document import (
    BackupJobHistory,
    DeviceRecord,
    Light,
    NetworkEvent,
    ProbeRecord,
    Report,
    ServerRecord,
    SummaryLight,
)
from custode.agent.reports.words import GLOSSARY, NETWORK_GLOSSARY, Words

MAX_FAILURES = 15
MAX_MISSING_DATES = 12
MAX_OUTAGES = 10
MAX_TICKETS = 40
MAX_PROTECTED_PATHS = 80
MAX_WINDOW_EXCEPTIONS = 40
MAX_NETWORK_EVENTS = 15

AREAS = ("backups", "availability", "security", "service_levels", "updates", "capacity", "network")
AREA_FEATURE: dict[str, str | None] = {"backups": "backup_control", "availability": "monitoring",
                                       "security": "monitoring", "capacity": "monitoring", "updates": "updates",
                                       "service_levels": None, "network": "monitoring"}
"""The profile feature (``agent/profiles.py``) each area belongs to; service levels are the contract itself."""
SECTIONS = ("backups", "availability", "capacity", "security", "network", "updates", "tickets", "paths",
            "attachments", "glossary")
"""The table of contents, in the document's order (``network`` only for a comune that has one)."""
SYMBOLS = {"success": "✓", "warning": "!", "failure": "✗", "missing": "?"}
BAD = ("failure", "missing")

Context = dict[str, Any]


def bought(report: Report, feature: str | None) -> bool:
    return feature is None or feature in report.features


def context(report: Report) -> Context:
    """Everything ``report.html`` prints."""
    words = Words(report.language)
    attachments = csv_files(report) if not report.empty else {}
    ctx: Context = {
        "w": words, "report": report, "lang": words.language,
        "title": words(f"kind.{report.kind}"),
        "period_label": period_label(report, words),
        "period_span": words("period.span", start=words.long_date(report.period_start),
                             end=words.long_date(report.period_end)),
        "generated": words("generated", when=words.moment_full(report.generated_at)),
        "provider": words("provider", name=report.provider_name),
        "summary": summary(report, words),
        "attachments": [(name, DESCRIPTIONS[words.language][name]) for name in attachments],
        "glossary": GLOSSARY[words.language] + (NETWORK_GLOSSARY[words.language] if report.has_network else ()),
        "toc": [key for key in SECTIONS if key != "network" or report.has_network],
        "empty": report.empty,
    }
    if not report.empty:
        ctx.update(backups=backups(report, words), availability=availability(report, words),
                   network=network(report, words),
                   capacity=capacity(report, words), security=security(report, words),
                   updates=updates(report, words), tickets=tickets(report, words), paths=paths(report, words))
    return ctx


def period_label(report: Report, words: Words) -> str:
    if report.kind == "yearly":
        return words("period.year", year=report.period_start.year)
    return words("period.quarter", n=(report.period_start.month - 1) // 3 + 1, year=report.period_start.year)


# --- the summary ---------------------------------------------------------------------------------

def summary(report: Report, words: Words) -> list[Context]:
    lights: dict[str, SummaryLight] = {s.area: s for s in report.summary}
    rows = []
    for area in AREAS:
        if area == "network" and not report.has_network:
            continue
        given = lights.get(area)
        if not bought(report, AREA_FEATURE[area]):
            light, sentence = Light.NONE, words("not_bought")
        elif report.empty:
            light, sentence = Light.NONE, words("no_data")
        else:
            light = given.light if given is not None else Light.NONE
            sentence = _SENTENCES[area](report, words, given)
        rows.append({"area": area, "name": words(f"area.{area}"), "light": light.value,
                     "light_word": words(f"light.{light.value}"), "sentence": sentence})
    return rows


def _backups_sentence(report: Report, words: Words, _: SummaryLight | None) -> str:
    jobs = report.backups.jobs
    if not jobs:
        return words("no_data")
    counts = Counter(d.outcome for j in jobs for d in j.days if d.outcome != "not_due")
    text = words("s.backups", jobs=len(jobs), due=sum(counts.values()), success=counts["success"],
                 warning=counts["warning"], failure=counts["failure"], missing=counts["missing"])
    tests = report.backups.restore_tests
    if "restore_tests" in report.features:
        text += " " + (words("s.restore", passed=sum(t.passed for t in tests), tests=len(tests)) if tests
                       else words("s.restore_none"))
    return text


def _availability_sentence(report: Report, words: Words, _: SummaryLight | None) -> str:
    measured = [s.availability_percent for s in report.servers.servers if s.availability_percent is not None]
    if not measured:
        return words("no_data")
    outages = report.servers.outages
    longest = ""
    if outages:
        worst = max(outages, key=lambda o: o.seconds)
        longest = words("s.longest", duration=words.duration(worst.seconds), host=worst.host)
    return words("s.availability", avg=words.percent(sum(measured) / len(measured), 2), servers=len(measured),
                 outages=len(outages), longest=longest)


def _security_sentence(report: Report, words: Words, _: SummaryLight | None) -> str:
    servers = report.servers.servers
    if not servers:
        return words("no_data")
    unsupported = sum(1 for s in servers if s.os_supported is False)
    pending = sum(s.updates_security_pending or 0 for s in servers)
    ages = [s.antivirus_signature_age_days for s in servers if s.antivirus_signature_age_days is not None]
    if ages:
        return words("s.security", unsupported=unsupported, pending=pending, age=words.days_age(max(ages)))
    return words("s.security_noav", unsupported=unsupported, pending=pending)


def _levels_sentence(report: Report, words: Words, _: SummaryLight | None) -> str:
    levels = report.tickets.levels
    opened = sum(v.opened for v in levels) if levels else len(report.tickets.tickets)
    if not opened:
        return words("s.service_levels_none")
    within = sum(v.take_charge_within for v in levels)
    decided = within + sum(v.take_charge_late for v in levels)
    share = words.percent(100 * within / decided) if decided else "–"
    return words("s.service_levels", opened=opened, within=within, decided=decided, share=share)


def _updates_sentence(report: Report, words: Words, _: SummaryLight | None) -> str:
    windows = report.updates.windows
    if not windows:
        return words("updates.none")
    counts = Counter(w.outcome for w in windows)
    return words("s.updates", windows=len(windows), succeeded=counts["succeeded"],
                 skipped=counts["skipped"] + counts["not_run"],
                 failed=counts["failed"] + counts["rolled_back"] + counts["interrupted"])


def _capacity_sentence(report: Report, words: Words, _: SummaryLight | None) -> str:
    filling = _filling(report.servers.servers)
    if filling:
        host, disk = filling[0]
        return words("s.capacity_full", count=len(filling), host=host, mount=disk.mount,
                     date=words.long_date(disk.full_by))
    peaks = [d.used_percent_max for s in report.servers.servers for d in s.disks if d.used_percent_max is not None]
    if not peaks:
        return words("no_data")
    return words("s.capacity_ok", peak=words.percent(max(peaks), 0))


def _lowest(rows: Sequence[tuple[str, float | None]]) -> tuple[str, float] | None:
    measured = [(name, value) for name, value in rows if value is not None]
    return min(measured, key=lambda item: item[1]) if measured else None


def _cert_words(days_left: float, words: Words) -> str:
    """``tra 9 giorni dalla fine del periodo``, ``scaduto da 4 giorni``: whole days, rounded down."""
    whole = int(abs(days_left))
    if days_left >= 0:
        return words("cert.in", days=words.day_count(whole))
    return words("cert.expired_ago", days=words.day_count(whole)) if whole else words("cert.expired_now")


def _network_sentence(report: Report, words: Words, _: SummaryLight | None) -> str:
    devices, probes = report.network.devices, report.network.probes
    if not devices and not probes:
        return words("s.network_none")
    parts = []
    lowest = _lowest([(d.host, d.availability_percent) for d in devices])
    if lowest is not None:
        parts.append(words("s.network_devices", devices=len(devices), lowest=words.percent(lowest[1], 2),
                           name=lowest[0]))
    lowest = _lowest([(p.name, p.availability_percent) for p in probes])
    if lowest is not None:
        parts.append(words("s.network_probes", probes=len(probes), lowest=words.percent(lowest[1], 2),
                           name=lowest[0]))
    parts.append(words("s.network_events", outages=sum(len(d.outages) for d in devices),
                       interfaces=sum(len(d.interface_downs) for d in devices),
                       ups=sum(len(d.ups_events) for d in devices), downs=sum(len(p.downs) for p in probes)))
    certificates = sorted((p.cert_days_left, p.name) for p in probes if p.cert_days_left is not None)
    if certificates:
        days_left, name = certificates[0]
        parts.append(words("s.network_cert", name=name, when=_cert_words(days_left, words)))
    return " ".join(parts)


_SENTENCES = {"backups": _backups_sentence, "availability": _availability_sentence, "security": _security_sentence,
              "service_levels": _levels_sentence, "updates": _updates_sentence, "capacity": _capacity_sentence,
              "network": _network_sentence}


# --- backups -------------------------------------------------------------------------------------

def _months(report: Report) -> list[tuple[date, date]]:
    """Each month of the period as (first day, last day), clipped to the period."""
    firsts = charts.month_starts(report.period_start, report.period_end)
    if not firsts or firsts[0] > report.period_start:
        firsts.insert(0, report.period_start)
    ends = [date.fromordinal(f.toordinal() - 1) for f in firsts[1:]] + [report.period_end]
    return list(zip(firsts, ends, strict=True))


def _job_row(job: BackupJobHistory, months: Sequence[tuple[date, date]], words: Words) -> Context:
    cells = []
    for first, last in months:
        days = [d for d in job.days if first <= d.day <= last]
        counts: Counter[str] = Counter(d.outcome for d in days)
        marks = [f"{counts[o]}{SYMBOLS[o]}" for o in ("failure", "missing", "warning") if counts[o]]
        cells.append({"strip": charts.outcome_strip([(d.day, d.outcome) for d in days], first, last,
                                                    title=words.month(first.month)),
                      "marks": " ".join(marks), "bad": any(counts[o] for o in BAD)})
    due = [d for d in job.days if d.outcome != "not_due"]
    ok = sum(1 for d in due if d.outcome == "success")
    return {"job": job.job, "software": job.software or "", "schedule": job.schedule, "cells": cells,
            "total": f"{ok}/{len(due)}", "share": words.percent(100 * ok / len(due), 0) if due else "–"}


def backups(report: Report, words: Words) -> Context:
    section = report.backups
    months = _months(report)
    missing = []
    for job in section.jobs:
        nights = [d.day for d in job.days if d.outcome == "missing"]
        if nights:
            shown = ", ".join(words.short_date(n) for n in nights[:MAX_MISSING_DATES])
            more = len(nights) - MAX_MISSING_DATES
            if more > 0:
                shown += " " + words("backups.missing.more", n=more, file="backup_days.csv")
            missing.append({"job": job.job, "count": len(nights), "dates": shown})
    problems = sorted(((d.day, j.job, d) for j in section.jobs for d in j.days if d.outcome in ("failure",)),
                      key=lambda item: (item[0], item[1]))
    warnings = sum(1 for j in section.jobs for d in j.days if d.outcome == "warning")
    failures = [{"day": words.short_date(day), "job": job, "error": d.error or "–"}
                for day, job, d in problems[:MAX_FAILURES]]
    more = len(problems) - len(failures) + warnings
    return {
        "bought": bought(report, "backup_control"), "jobs": [_job_row(j, months, words) for j in section.jobs],
        "months": [words.month_short(first.month) for first, _ in months],
        "legend": [(charts.swatch(charts.OUTCOME_COLOURS[o]), SYMBOLS.get(o, ""), words(f"o.{o}"))
                   for o in ("success", "warning", "failure", "missing", "not_due")],
        "missing": missing, "failures": failures,
        "failures_more": words("backups.failures.more", n=more, file="backup_days.csv") if more > 0 else "",
        "restore_bought": bought(report, "restore_tests"),
        "restore_tests": [{"set": t.set_name, "when": words.moment(t.finished_at),
                           "passed": t.passed, "result": words("restore.passed" if t.passed else "restore.failed"),
                           "files": words("restore.files_value", verified=words.number(t.files_verified),
                                          checked=words.number(t.files_checked)),
                           "size": words.size(t.restored_bytes), "snapshot": words.moment(t.snapshot_time),
                           "certificate": t.certificate_id, "summary": t.summary}
                          for t in section.restore_tests],
    }


# --- servers ----------------------------------------------------------------------------------------

def availability(report: Report, words: Words) -> Context:
    outages = report.servers.outages
    per_host = Counter(o.host for o in outages)
    down: Counter[str] = Counter()
    for outage in outages:
        down[outage.host] += int(outage.seconds)
    longest = sorted(outages, key=lambda o: -o.seconds)[:MAX_OUTAGES]
    return {
        "bought": bought(report, "monitoring"),
        "servers": [{"host": s.host, "os": s.os or "–", "availability": words.percent(s.availability_percent, 2),
                     "low": s.availability_percent is not None and s.availability_percent < 99,
                     "days": s.days_with_data, "outages": per_host.get(s.host, 0),
                     "down": words.duration(down[s.host]) if down.get(s.host) else "–"}
                    for s in report.servers.servers],
        "longest": [{"host": o.host, "start": words.moment(o.start),
                     "end": words.moment(o.end) if o.end else words("outage.ongoing"),
                     "duration": words.duration(o.seconds), "summary": o.summary} for o in longest],
        "more": words("outages.more", n=len(outages), file="outages.csv") if len(outages) > len(longest) else "",
    }


def _filling(servers: Sequence[ServerRecord]) -> list[tuple[str, Any]]:
    found = [(s.host, d) for s in servers for d in s.disks if d.full_by is not None]
    return sorted(found, key=lambda item: (item[1].full_by, item[0], item[1].mount))


def capacity(report: Report, words: Words) -> Context:
    start, end = report.period_start, report.period_end
    blocks = []
    for server in report.servers.servers:
        disks = [{"mount": d.mount, "size": words.size(d.size_bytes), "start": words.percent(d.used_percent_start, 0),
                  "end": words.percent(d.used_percent_end, 0), "max": words.percent(d.used_percent_max, 0),
                  "full_by": words.long_date(d.full_by) if d.full_by else words("never_full"),
                  "filling": d.full_by is not None, "swatch": charts.swatch(charts.disk_colour(i))}
                 for i, d in enumerate(server.disks)]
        cpu_memory = (charts.cpu_memory_chart(server.daily_cpu, server.daily_memory, start, end, words)
                      if server.daily_cpu or server.daily_memory else None)
        disk_chart = (charts.disks_chart([(d.mount, d.daily_used_percent, d.full_by) for d in server.disks],
                                         start, end, words)
                      if any(d.daily_used_percent for d in server.disks) else None)
        blocks.append({"host": server.host, "os": server.os or "", "cpu_avg": words.percent(server.cpu_avg_percent, 0),
                       "cpu_max": words.percent(server.cpu_max_percent, 0),
                       "memory_avg": words.percent(server.memory_avg_percent, 0),
                       "memory_max": words.percent(server.memory_max_percent, 0),
                       "cpu_memory": cpu_memory, "disk_chart": disk_chart, "disks": disks})
    legend = [(charts.swatch("#1565c0", line=True), f"{words('cpu')} {words('average')}"),
              (charts.swatch("#1565c0", dashed=True), f"{words('cpu')} {words('peak')}"),
              (charts.swatch("#ef6c00", line=True), f"{words('memory')} {words('average')}"),
              (charts.swatch("#ef6c00", dashed=True), f"{words('memory')} {words('peak')}")]
    return {"bought": bought(report, "monitoring"), "servers": blocks, "legend": legend,
            "filling": [{"host": host, "mount": d.mount, "size": words.size(d.size_bytes),
                         "end": words.percent(d.used_percent_end, 0), "full_by": words.long_date(d.full_by)}
                        for host, d in _filling(report.servers.servers)]}


def security(report: Report, words: Words) -> Context:
    servers = report.servers.servers
    unsupported = [s.host for s in servers if s.os_supported is False]
    rows = []
    for s in servers:
        age = s.antivirus_signature_age_days
        rows.append({"host": s.host, "os": s.os or "–", "supported": _supported(s, words),
                     "unsupported": s.os_supported is False, "antivirus": _antivirus(s, words),
                     "antivirus_bad": s.antivirus_active is False or s.antivirus_days_inactive > 0,
                     "age": words.days_age(age), "old": age is not None and age > 3,
                     "pending": _pending(s, words),
                     "urgent": bool(s.updates_security_pending),
                     "last": words.moment(s.last_update_installed),
                     "errors": words.number(s.event_errors) if s.event_errors is not None else "–",
                     "hardware": _hardware(s, words),
                     "hardware_bad": bool(s.hardware_problems) or s.unhealthy_disk_days > 0})
    return {"bought": bought(report, "monitoring"), "servers": rows,
            "unsupported": words("unsupported.text", hosts=", ".join(unsupported)) if unsupported
            else words("unsupported.none"), "any_unsupported": bool(unsupported)}


def _supported(server: ServerRecord, words: Words) -> str:
    """``no (supporto terminato il 10 ottobre 2023)``: the end of support where the builder knows it."""
    text = words.yes_no(server.os_supported)
    if server.os_end_of_support is not None:
        ended = server.os_supported is False
        key = "support.ended" if ended else "support.until"
        text += f" ({words(key, date=words.long_date(server.os_end_of_support))})"
    return text


def _antivirus(server: ServerRecord, words: Words) -> str:
    text = server.antivirus or "–"
    if server.antivirus_active is False:
        text += f" ({words('antivirus.inactive')})"
    if server.antivirus_days_inactive:
        text += f"; {words('antivirus.days_inactive', days=words.day_count(server.antivirus_days_inactive))}"
    return text


def _hardware(server: ServerRecord, words: Words) -> str:
    problems = list(server.hardware_problems)
    if server.unhealthy_disk_days:
        problems.append(words("hardware.disk_days", days=words.day_count(server.unhealthy_disk_days)))
    return "; ".join(problems) or words("hardware.ok")


def _pending(server: ServerRecord, words: Words) -> str:
    """``37 (12)``: updates pending and, in brackets, how many of them are security updates."""
    if server.updates_pending is None:
        return "–"
    text = words.number(server.updates_pending)
    if server.updates_security_pending is not None:
        text += f" ({words.number(server.updates_security_pending)})"
    return text


# --- network ---------------------------------------------------------------------------------------

def _count(events: Sequence[NetworkEvent], words: Words) -> str:
    """``2 (3 h 5 min)``: how many, and for how long in all; ``–`` for none."""
    if not events:
        return "–"
    return words("events_count", n=len(events), duration=words.duration(sum(e.seconds for e in events)))


def _device_row(device: DeviceRecord, words: Words) -> Context:
    downs = device.interface_downs
    interfaces = _count(downs, words)
    if len(downs) > 1:
        interfaces += f"; {words('longest')} {words.duration(device.interface_down_longest_seconds)}"
    percent = device.availability_percent
    return {"host": device.host, "role": device.role or "–", "site": device.site or "–",
            "description": device.description or "–", "availability": words.percent(percent, 2),
            "low": percent is not None and percent < 99, "outages": _count(device.outages, words),
            "reboots": (f"{len(device.reboots)} ({', '.join(words.short_date(r.date()) for r in device.reboots)})"
                        if device.reboots else "–"),
            "interfaces": interfaces, "ups": _count(device.ups_events, words),
            "bad": bool(device.outages or downs or device.ups_events)}


def _certificate(probe: ProbeRecord, words: Words) -> str:
    if probe.cert_expires_at is None or probe.cert_days_left is None:
        return "–"
    return f"{words.long_date(probe.cert_expires_at.date())} ({_cert_words(probe.cert_days_left, words)})"


def _probe_row(probe: ProbeRecord, words: Words) -> Context:
    percent, left = probe.availability_percent, probe.cert_days_left
    error = ""
    if probe.errors:
        text, n = probe.errors[0]
        error = words("common_error", error=text, n=words.number(n))
    return {"name": probe.name, "target": probe.target or "–", "kind": probe.kind,
            "availability": words.percent(percent, 2), "low": percent is not None and percent < 99,
            "latency": f"{words.latency(probe.latency_avg_seconds)} / {words.latency(probe.latency_median_seconds)}",
            "slow_days": words.number(probe.slow_days), "certificate": _certificate(probe, words),
            "cert_bad": left is not None and left < 21, "downs": _count(probe.downs, words), "error": error}


def _event_words(event: NetworkEvent, words: Words) -> str:
    if event.kind == "interface_down":
        return words("ev.interface_down", what=event.detail)
    if event.kind == "ups":
        return words("ev.ups_low" if event.detail == "battery_low" else "ev.ups")
    return words(f"ev.{event.kind}")


def network(report: Report, words: Words) -> Context:
    section = report.network
    events = [e for d in section.devices for e in (*d.outages, *d.interface_downs, *d.ups_events)]
    events += [e for p in section.probes for e in p.downs]
    longest = sorted(events, key=lambda e: (-e.seconds, e.start))[:MAX_NETWORK_EVENTS]
    return {
        "shown": report.has_network, "bought": bought(report, "monitoring"),
        "devices": [_device_row(d, words) for d in section.devices],
        "probes": [_probe_row(p, words) for p in section.probes],
        "events": [{"subject": e.subject, "what": _event_words(e, words), "start": words.moment(e.start),
                    "end": words.moment(e.end) if e.end else words("outage.ongoing"),
                    "duration": words.duration(e.seconds), "summary": e.summary}
                   for e in sorted(longest, key=lambda e: e.start)],
        "more": words("network.events.more", n=len(events), file="network_events.csv")
        if len(events) > len(longest) else "",
    }


# --- updates, tickets, folders ----------------------------------------------------------------------

def updates(report: Report, words: Words) -> Context:
    windows = sorted(report.updates.windows, key=lambda w: w.start)
    by_app: dict[str, Counter[str]] = {}
    for window in windows:
        by_app.setdefault(window.application, Counter())[window.outcome] += 1
    exceptions = [w for w in windows if w.outcome != "succeeded" or w.trigger == "now"]
    return {
        "bought": bought(report, "updates"),
        "applications": [{"application": app, "windows": sum(c.values()), "succeeded": c["succeeded"],
                          "skipped": c["skipped"] + c["not_run"],
                          "failed": c["failed"] + c["rolled_back"] + c["interrupted"]}
                         for app, c in sorted(by_app.items())],
        "exceptions": [{"when": words.moment(w.start), "application": w.application, "window": w.window,
                        "outcome": words(f"w.{w.outcome}") + (f" ({words('w.urgent')})" if w.trigger == "now"
                                                              else ""),
                        "bad": w.outcome in ("failed", "rolled_back", "interrupted"),
                        "reason": w.reason or "–"} for w in exceptions[:MAX_WINDOW_EXCEPTIONS]],
        "more": len(exceptions) - MAX_WINDOW_EXCEPTIONS,
    }


def tickets(report: Report, words: Words) -> Context:
    section = report.tickets

    def share(within: int, late: int) -> str:
        total = within + late
        return (f"{words('within_of', within=within, total=total)} ({words.percent(100 * within / total, 0)})"
                if total else "–")

    levels = [{"label": v.label or v.level, "opened": v.opened,
               "take_charge": share(v.take_charge_within, v.take_charge_late),
               "resolved": share(v.resolved_within, v.resolved_late), "open": v.still_open,
               "target": words.percent(v.threshold_percent, 0) if v.threshold_percent is not None else "–",
               "met": words.yes_no(v.met) if v.met is not None else "–", "missed": v.met is False,
               "penalty": _euros(v.penalty_euros_min, v.penalty_euros_max, words)} for v in section.levels]
    labels = {v.level: v.label or v.level for v in section.levels}
    flagged = [t for t in sorted(section.tickets, key=lambda t: t.opened_at)
               if t.within_target is False or t.resolved_at is None]
    return {
        "contract": section.contract, "levels": levels, "count": len(section.tickets),
        "any_penalty": any(v.penalty_euros_max for v in section.levels),
        "flagged": [{"ref": t.ref or "–", "level": labels.get(t.level, t.level), "subject": t.subject,
                     "opened": words.moment(t.opened_at), "taken": words.moment(t.taken_at),
                     "resolved": words.moment(t.resolved_at), "within": words.yes_no(t.within_target),
                     "late": t.within_target is False} for t in flagged[:MAX_TICKETS]],
        "more": words("tickets.more", n=len(section.tickets), file="tickets.csv")
        if len(section.tickets) > min(len(flagged), MAX_TICKETS) else "",
    }


def _euros(low: float, high: float, words: Words) -> str:
    if not high:
        return "–"
    if low == high:
        return f"€ {words.number(low, 2)}"
    return f"€ {words.number(low, 2)} – {words.number(high, 2)}"


def paths(report: Report, words: Words) -> Context:
    found = report.backups.paths
    protected = [p for p in found if p.protected]
    unprotected = [p for p in found if not p.protected]
    listed = protected[:MAX_PROTECTED_PATHS] if report.kind == "yearly" else []
    more = len(protected) - len(listed)

    def row(p: Any) -> Context:
        return {"set": p.set_name, "path": p.path, "reason": p.reason, "size": words.size(p.size_bytes)}

    return {"bought": bought(report, "restore_tests"), "any": bool(found),
            "count": words("paths.count", protected=len(protected), unprotected=len(unprotected)),
            "unprotected": [row(p) for p in unprotected], "protected": [row(p) for p in listed],
            "more": words("paths.more", n=more, file="backup_paths.csv") if more > 0 and listed else "",
            "yearly": report.kind == "yearly"}


def css_string(text: str) -> Markup:
    """A CSS string literal (for the page margin boxes), quoted and escaped, safe inside ``<style>``."""
    escaped = "".join(ch if ch.isalnum() or ch in " .,:;-_()°'/" else f"\\{ord(ch):x} " for ch in text)
    return Markup(f'"{escaped}"')
