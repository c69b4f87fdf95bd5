"""Reports written by hand, for the renderers' tests: a realistic quarter of the Comune di Vaiano Cremasco,
an empty quarter, and a synthetic 50-server year (``bench/report_render.py`` times it).

The renderers read only :mod:`custode.agent.reports.document`, so they are
tested on documents whose every figure is known here, without a state DB or
the builder (``agent/reports/data.py``).
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date, datetime, timedelta

from custode.agent.clock import ROME
from custode.agent.reports.document import (
    BackupDay,
    BackupJobHistory,
    BackupSection,
    CoveredPath,
    DiskTrend,
    LevelFigures,
    Light,
    Outage,
    Report,
    RestoreTestRecord,
    ServerRecord,
    ServersSection,
    SummaryLight,
    TicketRecord,
    TicketsSection,
    UpdatesSection,
    WindowRecord,
)

ALL_FEATURES = ("monitoring", "backup_control", "restore_tests", "updates", "os_patches", "alerts")
Q4_START, Q4_END = date(2026, 10, 1), date(2026, 12, 31)
GENERATED = datetime(2027, 1, 4, 8, 0, tzinfo=ROME)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ROME)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _job(name: str, software: str, schedule: str, hour: int, due: list[date],
         exceptions: dict[date, tuple[str, str | None]]) -> BackupJobHistory:
    records = []
    for day in due:
        outcome, error = exceptions.get(day, ("success", None))
        reported = None if outcome == "missing" else at(day, hour, 17 + day.day % 30)
        records.append(BackupDay(day, outcome, reported, error))  # type: ignore[arg-type]
    return BackupJobHistory(name, software, schedule, tuple(records))


def _daily(start: date, end: date, base: float, swing: float, peak: float) -> tuple[tuple[date, float, float], ...]:
    out = []
    for n, day in enumerate(days(start, end)):
        average = base + swing * math.sin(n / 5) + (6 if day.weekday() < 5 else -4)
        out.append((day, round(max(1.0, average), 1), round(min(100.0, average + peak + 8 * math.cos(n / 3)), 1)))
    return tuple(out)


def _disk(mount: str, size: int, start_pct: float, end_pct: float, full_by: date | None, first: date,
          last: date) -> DiskTrend:
    span = days(first, last)
    step = (end_pct - start_pct) / max(1, len(span) - 1)
    daily = tuple((day, round(start_pct + step * n + 0.4 * math.sin(n), 1)) for n, day in enumerate(span))
    return DiskTrend(mount, size, start_pct, end_pct, max(v for _, v in daily), full_by, daily)


def vaiano_quarter() -> Report:
    """The fourth quarter of 2026 of the Comune di Vaiano Cremasco, as Consorzio.IT would report it.

    Figures the tests look for: 3 backup jobs; "Backup notturno server" failed
    on 3 November (vaiano-file01 unreachable) and sent no report on 26
    December; the off-site copy sent none on 18 and 19 November and failed
    on 7 December; restore test certificate ``vaiano-dati-202611150312``
    passed; vaiano-file01 at 98,90% with the longest outage (3 h 20 min),
    Windows Server 2012 R2 (unsupported), disk E: full around 2 April 2027;
    Halley rolled back on 20 November, skipped on Christmas; the medium
    level missed its 90% target (2 of 3 in time)."""
    q = days(Q4_START, Q4_END)
    weekdays = [d for d in q if d.weekday() < 5]
    jobs = (
        _job("Backup notturno server", "Veeam Backup & Replication", "0 2 * * *", 2, q, {
            date(2026, 10, 14): ("warning", "1 file saltato perché in uso: D:\\Dati\\Tributi\\tari.mdb"),
            date(2026, 11, 3): ("failure", "Failed to connect to vaiano-file01: host unreachable"),
            date(2026, 12, 26): ("missing", None)}),
        _job("Copia off-site NAS", "Synology Hyper Backup", "0 4 * * *", 4, q, {
            date(2026, 11, 18): ("missing", None), date(2026, 11, 19): ("missing", None),
            date(2026, 12, 7): ("failure", "Spazio insufficiente sulla destinazione.")}),
        _job("Backup SQL Halley", "Veeam Backup & Replication", "30 23 * * 1-5", 23, weekdays, {}),
    )
    restore = (RestoreTestRecord("vaiano-dati", at(date(2026, 11, 15), 3, 12), True, 50, 50, 0, 1_350_000_000,
                                 at(date(2026, 11, 14), 2, 31), "vaiano-dati-202611150312",
                                 "50 file campione ripristinati dalla copia del 14 novembre, tutti identici"),)
    paths = (
        CoveredPath("vaiano-dati", "D:\\Dati\\Protocollo", True, "nel job Backup notturno server", 48_200_000_000),
        CoveredPath("vaiano-dati", "D:\\Dati\\Anagrafe", True, "nel job Backup notturno server", 12_700_000_000),
        CoveredPath("vaiano-dati", "D:\\Dati\\Tributi", True, "nel job Backup notturno server", 9_300_000_000),
        CoveredPath("vaiano-dati", "E:\\Scansioni", False, "non compresa in alcun job di backup", 310_000_000_000),
        CoveredPath("vaiano-dati", "C:\\ProgramData\\NuovaApp", False,
                    "cartella di un applicativo installato a novembre, non compresa in alcun job", 2_100_000_000),
    )
    servers = (
        ServerRecord("halley-vaiano", "Debian GNU/Linux 12", "farm", 100.0, 92, 8.4, 71.0, 41.2, 68.5,
                     _daily(Q4_START, Q4_END, 7, 3, 30), _daily(Q4_START, Q4_END, 40, 4, 15),
                     (_disk("/", 40_000_000_000, 31.0, 33.0, None, Q4_START, Q4_END),
                      _disk("/var/lib/postgresql", 200_000_000_000, 52.0, 55.5, None, Q4_START, Q4_END)),
                     None, None, 0, 0, at(date(2026, 12, 17), 5, 40), True, 0),
        ServerRecord("vaiano-dc01", "Windows Server 2019 Standard", "agent", 99.87, 92, 12.3, 64.0, 55.1, 81.0,
                     _daily(Q4_START, Q4_END, 11, 4, 40), _daily(Q4_START, Q4_END, 54, 3, 20),
                     (_disk("C:", 120_000_000_000, 58.0, 61.0, None, Q4_START, Q4_END),
                      _disk("D:", 500_000_000_000, 71.0, 78.0, date(2027, 10, 16), Q4_START, Q4_END)),
                     "Windows Defender, attivo", 0.4, 2, 1, at(date(2026, 12, 10), 3, 15), True, 14,
                     antivirus_active=True, os_end_of_support=date(2029, 1, 9)),
        ServerRecord("vaiano-file01", "Windows Server 2012 R2 Standard", "agent", 98.9, 92, 18.0, 93.0, 72.4, 96.0,
                     _daily(Q4_START, Q4_END, 17, 6, 45), _daily(Q4_START, Q4_END, 70, 5, 18),
                     (_disk("C:", 80_000_000_000, 67.0, 69.0, None, Q4_START, Q4_END),
                      _disk("E:", 2_000_000_000_000, 88.0, 94.0, date(2027, 4, 2), Q4_START, Q4_END)),
                     "Kaspersky Endpoint Security 11, attivo", 5.2, 37, 12, at(date(2026, 9, 8), 4, 0), False,
                     231, ("Disco 2 dell'array RAID in stato degradato",), antivirus_active=True,
                     antivirus_days_inactive=2, os_end_of_support=date(2023, 10, 10), unhealthy_disk_days=9),
    )
    outages = (
        Outage("vaiano-dc01", at(date(2026, 10, 21), 6, 0), at(date(2026, 10, 21), 6, 40), 2400,
               "Riavvio per gli aggiornamenti del sistema operativo"),
        Outage("vaiano-file01", at(date(2026, 11, 3), 10, 12), at(date(2026, 11, 3), 13, 32), 12000,
               "Il server non risponde al ping né a WinRM"),
        Outage("vaiano-file01", at(date(2026, 12, 14), 22, 5), at(date(2026, 12, 14), 22, 50), 2700,
               "Riavvio non pianificato"),
    )
    fridays = [d for d in q if d.weekday() == 4]
    windows = [WindowRecord("os-patch-ottobre", "Patch del sistema operativo", at(date(2026, 10, 21), 5, 0),
                            "succeeded", None, at(date(2026, 10, 16), 7, 0), "scheduled", 311),
               WindowRecord("halley-vaiano", "Halley", at(date(2026, 12, 2), 13, 0), "succeeded",
                            "correzione urgente del modulo tributi, annunciata ai referenti",
                            at(date(2026, 12, 2), 9, 0),
                            "now", 340)]
    for friday in fridays:
        outcome, reason = "succeeded", None
        if friday == date(2026, 11, 20):
            outcome, reason = "rolled_back", ("la verifica dopo l'aggiornamento è fallita: il servizio Halley non "
                                              "risponde; ripristinata la versione precedente")
        if friday == date(2026, 12, 25):
            outcome, reason = "skipped", "Natale (festività nazionale)"
        windows.append(WindowRecord("halley-vaiano", "Halley", at(friday, 16, 0), outcome, reason,  # type: ignore[arg-type]
                                    at(friday - timedelta(days=2), 7, 0)))
    tickets = TicketsSection(
        "Consorzio.IT – assistenza sistemistica, profilo PRO",
        (LevelFigures("high", "Alta (bloccante, perdita o corruzione di dati)", 2, 2, 0, 2, 0, 0, 90.0, True, 0, 0),
         LevelFigures("medium", "Media", 3, 2, 1, 2, 1, 0, 90.0, False, 0, 0),
         LevelFigures("low", "Bassa", 3, 3, 0, 2, 0, 1, 90.0, True, 0, 0)),
        (TicketRecord("#2026-1012", "low", "Richiesta nuova utenza per l'ufficio tributi",
                      at(date(2026, 10, 12), 9, 20),
                      at(date(2026, 10, 12), 11, 0), at(date(2026, 10, 13), 10, 0), True),
         TicketRecord("#2026-1025", "low", "Stampante dell'ufficio anagrafe non stampa", at(date(2026, 10, 26), 8, 50),
                      at(date(2026, 10, 26), 10, 5), at(date(2026, 10, 27), 9, 30), True),
         TicketRecord("#2026-1041", "high", "Backup notturno server fallito", at(date(2026, 11, 3), 6, 30),
                      at(date(2026, 11, 3), 8, 45), at(date(2026, 11, 3), 14, 10), True),
         TicketRecord("#2026-1042", "high", "vaiano-file01 non raggiungibile", at(date(2026, 11, 3), 10, 15),
                      at(date(2026, 11, 3), 10, 40), at(date(2026, 11, 3), 13, 35), True),
         TicketRecord("#2026-1050", "medium", "Copia off-site NAS: nessun report", at(date(2026, 11, 19), 6, 0),
                      at(date(2026, 11, 20), 9, 30), at(date(2026, 11, 20), 16, 0), False),
         TicketRecord("#2026-1068", "medium", "Halley: aggiornamento annullato", at(date(2026, 11, 20), 18, 5),
                      at(date(2026, 11, 23), 8, 40), at(date(2026, 11, 23), 12, 0), True),
         TicketRecord("#2026-1063", "medium", "Copia off-site: spazio insufficiente", at(date(2026, 12, 7), 6, 0),
                      at(date(2026, 12, 7), 9, 10), at(date(2026, 12, 9), 11, 0), True),
         TicketRecord("#2026-1071", "low", "Disco E: di vaiano-file01 oltre il 90%", at(date(2026, 12, 15), 7, 0),
                      at(date(2026, 12, 15), 9, 0), None, None)),
    )
    summary = (SummaryLight("backups", Light.RED, {"nights_failed": 2, "nights_missing": 3, "jobs": 3}),
               SummaryLight("availability", Light.YELLOW, {"outages": 3}),
               SummaryLight("security", Light.RED, {"unsupported": 1}),
               SummaryLight("service_levels", Light.RED, {"levels_missed": 1}),
               SummaryLight("updates", Light.YELLOW, {"rolled_back": 1}),
               SummaryLight("capacity", Light.YELLOW, {"disks_filling": 2}))
    return Report("quarterly", "2026Q4", Q4_START, Q4_END, "vaiano", "Comune di Vaiano Cremasco", "Consorzio.IT",
                  "it", GENERATED, ALL_FEATURES, summary, BackupSection(jobs, restore, paths),
                  ServersSection(servers, outages), UpdatesSection(tuple(windows)), tickets, False)


def vaiano_english() -> Report:
    return replace(vaiano_quarter(), language="en")


def empty_quarter() -> Report:
    """A comune with nothing recorded in the quarter."""
    return Report("quarterly", "2026Q4", Q4_START, Q4_END, "vaiano", "Comune di Vaiano Cremasco", "Consorzio.IT",
                  "it", GENERATED, ALL_FEATURES, (), BackupSection(), ServersSection(), UpdatesSection(),
                  TicketsSection(), True)


def without_backup_control() -> Report:
    """The quarter of a comune whose profile has monitoring and updates only."""
    report = vaiano_quarter()
    return replace(report, features=("monitoring", "updates"), backups=BackupSection())


def synthetic_year(servers: int = 50, year: int = 2026, seed: int = 7) -> Report:
    """A big comune's year: ``servers`` servers with 3 disks and 365 days each, 1.2 jobs per server, a ticket
    every working day, 5 weekly windows, 2 outages per server, 10 folders per server."""
    rng = random.Random(seed)
    start, end = date(year, 1, 1), date(year, 12, 31)
    span = days(start, end)
    records, outages, jobs, paths = [], [], [], []
    for n in range(servers):
        host = f"srv-{n:02d}"
        windows_os = n % 3 != 0
        disks = tuple(_disk(mount, size, s, s + rng.uniform(0, 20), date(year + 1, rng.randint(1, 12), 1)
                            if rng.random() < 0.3 else None, start, end)
                      for mount, size, s in (("C:" if windows_os else "/", 120_000_000_000, rng.uniform(30, 60)),
                                             ("D:" if windows_os else "/srv", 1_000_000_000_000, rng.uniform(20, 70)),
                                             ("E:" if windows_os else "/var", 2_000_000_000_000, rng.uniform(10, 60))))
        records.append(ServerRecord(
            host, "Windows Server 2019" if windows_os else "Debian 12", "farm", round(rng.uniform(98, 100), 2),
            365, rng.uniform(5, 30), rng.uniform(60, 100), rng.uniform(30, 80), rng.uniform(70, 100),
            _daily(start, end, rng.uniform(5, 30), 5, 30), _daily(start, end, rng.uniform(30, 70), 4, 15), disks,
            "Windows Defender, attivo" if windows_os else None, rng.uniform(0, 4) if windows_os else None,
            rng.randint(0, 30), rng.randint(0, 8), at(start + timedelta(days=rng.randint(0, 364)), 3), n % 17 != 5,
            rng.randint(0, 500)))
        for _ in range(2):
            begin = at(start + timedelta(days=rng.randint(0, 364)), rng.randint(0, 23))
            seconds = rng.randint(300, 20000)
            outages.append(Outage(host, begin, begin + timedelta(seconds=seconds), seconds, "non raggiungibile"))
        for k in range(10):
            paths.append(CoveredPath(f"set-{n:02d}", f"D:\\Dati\\Cartella{k:02d}", k != 9, "nel job notturno",
                                     rng.randint(1, 10**11)))
    for n in range(servers * 6 // 5):
        exceptions: dict[date, tuple[str, str | None]] = {}
        for day in rng.sample(span, 12):
            exceptions[day] = rng.choice([("failure", "errore di scrittura sulla destinazione"), ("missing", None),
                                          ("warning", "file in uso saltati")])
        jobs.append(_job(f"Job {n:02d} backup notturno", "Veeam Backup & Replication", "0 2 * * *", 2, span,
                         exceptions))
    applications = ("Halley", "APK SICI", "APK HyperSIC", "Sicr@web (Maggioli)", "Patch del sistema operativo")
    windows = [WindowRecord(app.lower(), app, at(day, 17), rng.choice(["succeeded"] * 20 + ["skipped", "failed",
                                                                                           "rolled_back"]),
                            None) for app in applications for day in span if day.weekday() == 4]  # type: ignore[arg-type]
    tickets = [TicketRecord(f"#{year}-{k:04d}", rng.choice(["low", "medium", "high"]), f"Richiesta {k}",
                            at(day, 9), at(day, 11), at(day, 16) if rng.random() < 0.97 else None,
                            rng.random() < 0.93) for k, day in enumerate(d for d in span if d.weekday() < 5)]
    levels = tuple(LevelFigures(level, level.capitalize(), 80, 75, 5, 74, 6, 0, 90.0, True, 0, 0)
                   for level in ("high", "medium", "low"))
    summary = tuple(SummaryLight(area, Light.GREEN) for area in  # type: ignore[arg-type]
                    ("backups", "availability", "security", "service_levels", "updates", "capacity"))
    return Report("yearly", str(year), start, end, "grande", "Comune di Grande Esempio", "Consorzio.IT", "it",
                  at(date(year + 1, 1, 5), 8), ALL_FEATURES, summary,
                  BackupSection(tuple(jobs), (), tuple(paths)), ServersSection(tuple(records), tuple(outages)),
                  UpdatesSection(tuple(windows)), TicketsSection("Contratto di esempio", levels, tuple(tickets)),
                  False)
