"""The status page as HTML: one self-contained document, readable on a phone, in the tenant's language.

No build step and no external asset: the CSS is inline, there is no
JavaScript (a ``<meta http-equiv="refresh">`` reloads it), and every value
that comes from the config, a mail or the helpdesk goes through
:func:`html.escape` (a job called ``<script>`` is shown, not run). Every
state is a coloured badge *and* a word, so it reads without colour (and
printed, and to a screen reader). Every time is Europe/Rome with its zone
abbreviation (CET/CEST) in the text and the ISO 8601 offset in
``<time datetime>``. Pure functions of the gathered data
(:mod:`custode.agent.web.status_data`): tests and the screenshot script
render the same page the agent serves.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custode.agent.clock import ROME
from custode.agent.table import human_age
from custode.agent.tickets.model import TicketState
from custode.agent.web.status_data import (
    BAD_BACKUP,
    DOUBTFUL_BACKUP,
    WINDOW_DAYS,
    Availability,
    BackupSection,
    Section,
    TenantStatus,
    Verdict,
    ticket_late,
)

LINKS = ("/metrics", "/healthz", "/ready")
"""The agent's own endpoints, linked at the foot of every page (the page that used to be the index)."""

WORDS: dict[str, dict[str, str]] = {
    "it": {
        "subtitle": "Stato dei servizi", "updated": "Aggiornato", "refresh": "si aggiorna ogni {n} s",
        "tenants": "Comuni", "all": "tutti",
        "backups": "Backup", "incidents": "Incidenti aperti", "tickets": "Ticket aperti",
        "windows": "Prossime finestre di aggiornamento", "restore": "Ultimo test di ripristino",
        "job": "Job", "last_report": "Ultimo report", "state": "Stato", "since": "Dal",
        "severity": "Gravità", "what": "Descrizione", "last_seen": "Ultima rilevazione",
        "ticket": "Ticket", "priority": "Priorità", "opened": "Aperto", "take_charge": "Presa in carico entro",
        "resolve": "Risoluzione entro", "application": "Applicazione", "start": "Inizio", "end": "Fine",
        "set": "Insieme di backup", "last_test": "Ultimo test", "result": "Esito", "last_passed": "Ultimo superato",
        "none": "nessuno", "never": "mai",
        "v.ok": "NESSUN PROBLEMA RILEVATO", "v.attention": "ATTENZIONE", "v.unknown": "STATO INCOMPLETO",
        "v.problem": "PROBLEMI",
        "v.unknown.why": "alcuni dati non si possono leggere: la pagina non può dire che va tutto bene",
        "b.ok": "OK", "b.warning": "CON AVVISI", "b.failed": "FALLITO", "b.late": "IN RITARDO",
        "b.missing": "MANCANTE",
        "r.success": "riuscito", "r.warning": "con avvisi", "r.failure": "fallito",
        "s.critical": "CRITICO", "s.warning": "AVVISO",
        "p.high": "alta", "p.medium": "media", "p.low": "bassa",
        "t.late": "SCADUTA", "t.taken": "presa in carico", "t.due": "in attesa",
        "t.recovered": "RISOLTO", "t.recovered.note": "guasto rientrato, in osservazione",
        "w.running": "IN CORSO", "w.planned": "PREVISTA", "w.skipped": "SALTATA",
        "x.passed": "SUPERATO", "x.failed": "FALLITO", "x.never": "MAI ESEGUITO", "x.overdue": "DA RIFARE",
        "x.current": "aggiornato",
        "unknown": "NON LEGGIBILE", "unreadable": "Dati non leggibili dal database di stato: {error}",
        "not_configured": "NON CONFIGURATO",
        "nc.backups": "Nessun backup atteso ({key}).",
        "nc.tickets": "Nessun ticket viene aperto ({key}).",
        "nc.windows": "Nessuna finestra di aggiornamento ({key}).",
        "nc.restore": "Nessun test di ripristino ({key}).",
        "ne.backups": "Nessun backup atteso per questo comune ({key}).",
        "ne.tickets": "Nessun helpdesk configurato per questo comune: nessun ticket viene aperto.",
        "ne.windows": "Nessuna finestra di aggiornamento per questo comune.",
        "ne.restore": "Nessun test di ripristino previsto per questo comune.",
        "empty.incidents": "Nessun incidente aperto.", "empty.tickets": "Nessun ticket aperto.",
        "empty.windows": "Nessuna finestra nei prossimi {n} giorni.",
        "mailbox": "La casella dei report «{name}» non si può leggere dal {since}: i report che porta non "
                   "arrivano, quindi lo stato qui sotto può non essere aggiornato.",
        "late.note": "previsto {due}, termine {deadline}",
        "count.backups": "{n} backup fallito o mancante|{n} backup falliti o mancanti",
        "count.critical": "{n} incidente critico|{n} incidenti critici", "count.warning": "{n} avviso|{n} avvisi",
        "count.tickets": "{n} ticket oltre la presa in carico",
        "count.restore": "{n} test di ripristino fallito|{n} test di ripristino falliti",
        "count.overdue": "{n} test di ripristino scaduto o mai eseguito|{n} test di ripristino scaduti o mai eseguiti",
        "count.late": "{n} backup in ritardo o con avvisi",
        "ago": "da {age}", "in": "tra {age}", "overdue_by": "scaduta da {age}",
        "day": "giorno", "days": "giorni",
        "forbidden": "Accesso negato", "forbidden.user": "L'utente «{user}» può vedere solo:",
        "forbidden.nouser": "Questa pagina è riservata per utente (status_page.tenant_users), ma il web config "
                            "non chiede utente e password (basic_auth_users): nessun utente è riconosciuto.",
        "links": "Altre pagine",
    },
    "en": {
        "subtitle": "Service status", "updated": "Updated", "refresh": "refreshes every {n} s",
        "tenants": "Tenants", "all": "all",
        "backups": "Backups", "incidents": "Open incidents", "tickets": "Open tickets",
        "windows": "Next update windows", "restore": "Last restore test",
        "job": "Job", "last_report": "Last report", "state": "State", "since": "Since",
        "severity": "Severity", "what": "What", "last_seen": "Last seen",
        "ticket": "Ticket", "priority": "Priority", "opened": "Opened", "take_charge": "Take charge by",
        "resolve": "Resolve by", "application": "Application", "start": "Start", "end": "End",
        "set": "Backup set", "last_test": "Last test", "result": "Result", "last_passed": "Last passed",
        "none": "none", "never": "never",
        "v.ok": "NO PROBLEMS FOUND", "v.attention": "ATTENTION", "v.unknown": "INCOMPLETE", "v.problem": "PROBLEMS",
        "v.unknown.why": "some data cannot be read: this page cannot say that all is well",
        "b.ok": "OK", "b.warning": "WARNINGS", "b.failed": "FAILED", "b.late": "LATE", "b.missing": "MISSING",
        "r.success": "succeeded", "r.warning": "with warnings", "r.failure": "failed",
        "s.critical": "CRITICAL", "s.warning": "WARNING",
        "p.high": "high", "p.medium": "medium", "p.low": "low",
        "t.late": "OVERDUE", "t.taken": "taken in charge", "t.due": "waiting",
        "t.recovered": "RECOVERED", "t.recovered.note": "the fault went away, under watch",
        "w.running": "RUNNING", "w.planned": "PLANNED", "w.skipped": "SKIPPED",
        "x.passed": "PASSED", "x.failed": "FAILED", "x.never": "NEVER RUN", "x.overdue": "OVERDUE",
        "x.current": "current",
        "unknown": "UNREADABLE", "unreadable": "The state database cannot be read: {error}",
        "not_configured": "NOT CONFIGURED",
        "nc.backups": "No backup is expected ({key}).",
        "nc.tickets": "No ticket is opened ({key}).",
        "nc.windows": "No update window ({key}).",
        "nc.restore": "No restore test ({key}).",
        "ne.backups": "No backup is expected for this tenant ({key}).",
        "ne.tickets": "No helpdesk is configured for this tenant: no ticket is opened.",
        "ne.windows": "No update window for this tenant.",
        "ne.restore": "No restore test is planned for this tenant.",
        "empty.incidents": "No open incidents.", "empty.tickets": "No open tickets.",
        "empty.windows": "No window in the next {n} days.",
        "mailbox": "The report mailbox \u201c{name}\u201d cannot be read since {since}: the reports it carries do "
                   "not arrive, so the states below may be out of date.",
        "late.note": "due {due}, deadline {deadline}",
        "count.backups": "{n} backup failed or missing|{n} backups failed or missing",
        "count.critical": "{n} critical incident|{n} critical incidents", "count.warning": "{n} warning|{n} warnings",
        "count.tickets": "{n} ticket past its take-charge time|{n} tickets past their take-charge time",
        "count.restore": "{n} restore test failed|{n} restore tests failed",
        "count.overdue": "{n} restore test overdue or never run|{n} restore tests overdue or never run",
        "count.late": "{n} backup late or with warnings|{n} backups late or with warnings",
        "ago": "for {age}", "in": "in {age}", "overdue_by": "overdue by {age}",
        "day": "day", "days": "days",
        "forbidden": "Forbidden", "forbidden.user": "User \u201c{user}\u201d may see only:",
        "forbidden.nouser": "This page is limited per user (status_page.tenant_users), but the web config asks "
                            "for no user and password (basic_auth_users): no user is known.",
        "links": "Other pages",
    },
}

_VERDICT = {Verdict.OK: ("ok", "v.ok"), Verdict.ATTENTION: ("warn", "v.attention"),
            Verdict.UNKNOWN: ("unknown", "v.unknown"), Verdict.PROBLEM: ("bad", "v.problem")}
_JOB_TONE = {"ok": "ok", "warning": "warn", "failed": "bad", "late": "warn", "missing": "bad"}

CSS = """
:root{color-scheme:light;--ok:#1a7f37;--ok-bg:#dafbe1;--warn:#7d4e00;--warn-bg:#fff1c2;--bad:#b3261e;
--bad-bg:#ffe1de;--unknown:#4a4f57;--unknown-bg:#e4e6ea;--info:#0b57d0;--info-bg:#dde8fc;--line:#d0d4da}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1b1f24;
background:#f5f6f8}
header,main,footer{max-width:72rem;margin:0 auto;padding:.75rem 1rem}
header h1{margin:0;font-size:1.5rem}
header p,footer p{margin:.25rem 0;color:#4a4f57;font-size:.9rem}
nav a,footer a{margin-right:.75rem}
a{color:var(--info)}
.tenant{background:#fff;border:1px solid var(--line);border-radius:.5rem;padding:.75rem 1rem;margin:0 0 1rem}
.tenant h2{margin:.1rem 0 .4rem;font-size:1.3rem}
.tenant h3{margin:1rem 0 .4rem;font-size:1.05rem;border-top:1px solid var(--line);padding-top:.6rem}
.verdict{margin:.2rem 0 .4rem;font-weight:600}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:.3rem;border:1px solid;font-weight:700;
font-size:.8rem;letter-spacing:.02em;white-space:nowrap}
.ok{color:var(--ok);background:var(--ok-bg);border-color:var(--ok)}
.warn{color:var(--warn);background:var(--warn-bg);border-color:var(--warn)}
.bad{color:var(--bad);background:var(--bad-bg);border-color:var(--bad)}
.unknown{color:var(--unknown);background:var(--unknown-bg);border-color:var(--unknown)}
.info{color:var(--info);background:var(--info-bg);border-color:var(--info)}
.note{border-left:4px solid;padding:.4rem .6rem;margin:.4rem 0;border-radius:.2rem}
.note.ok,.note.warn,.note.bad,.note.unknown,.note.info{border-top:0;border-right:0;border-bottom:0}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--line)}
th{font-size:.8rem;color:#4a4f57;text-transform:uppercase;letter-spacing:.03em}
small,.muted{color:#4a4f57}
code{font-size:.85em}
.summary ul{list-style:none;margin:0;padding:0}
.summary li{padding:.25rem 0}
@media (max-width:40rem){
 header,main,footer{padding:.5rem .6rem}
 .tenant{padding:.5rem .6rem}
 table,thead,tbody,tr,th,td{display:block}
 thead{position:absolute;left:-9999px}
 tr{border:1px solid var(--line);border-radius:.4rem;margin:0 0 .5rem;padding:.2rem .4rem}
 td{border:0;padding:.15rem 0 .15rem 42%;position:relative;min-height:1.4rem}
 td::before{content:attr(data-label);position:absolute;left:0;width:40%;font-size:.78rem;color:#4a4f57;
 text-transform:uppercase;padding-top:.1rem}
}
""".strip()


def esc(value: object) -> str:
    """Text for HTML content and attribute values (quotes included)."""
    return html.escape(str(value), quote=True)


def rome(ts: float, language: str) -> str:
    """A moment as the comuni read it: ``07/12/2026 17:30 CET`` (English ``2026-12-07 17:30 CET``)."""
    local = datetime.fromtimestamp(ts, ROME)
    text = f"{local:%d/%m/%Y %H:%M %Z}" if language == "it" else f"{local:%Y-%m-%d %H:%M %Z}"
    return f'<time datetime="{local.isoformat(timespec="seconds")}">{esc(text)}</time>'


def age(seconds: float, language: str) -> str:
    """'45 s', '12 min', '3 h 5 min', '2 giorni 4 h': how people say a duration, in the page's language."""
    return human_age(seconds, WORDS[language]["day"], WORDS[language]["days"])


def badge(tone: str, word: str) -> str:
    return f'<span class="badge {esc(tone)}">{esc(word)}</span>'


@dataclass(frozen=True)
class _Table:
    """Column titles, and rows of cells already escaped; ``data-label`` repeats the title for narrow screens."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]

    def html(self) -> str:
        head = "".join(f"<th scope=\"col\">{esc(column)}</th>" for column in self.columns)
        body = "".join("<tr>" + "".join(f'<td data-label="{esc(column)}">{cell}</td>'
                                        for column, cell in zip(self.columns, row, strict=True)) + "</tr>"
                       for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _TenantPage:
    """One tenant's sections in the tenant's language."""

    def __init__(self, status: TenantStatus) -> None:
        self.s = status
        self.lang = status.language if status.language in WORDS else "it"
        self.w = WORDS[self.lang]

    def when(self, ts: float | None) -> str:
        return esc(self.w["never"]) if ts is None else rome(ts, self.lang)

    def since(self, ts: float) -> str:
        return f"{rome(ts, self.lang)} <small>({self.t('ago', age=age(self.s.now - ts, self.lang))})</small>"

    def html(self) -> str:
        s = self.s
        parts = [f'<section class="tenant" id="tenant-{esc(s.tenant)}" lang="{esc(self.lang)}">',
                 f'<h2><a href="/tenant/{esc(s.tenant)}">{esc(s.name)}</a></h2>', self.verdict(),
                 self.block("backups", s.backups, self.backups, "backups.expected"),
                 self.block("incidents", s.incidents, self.incidents, ""),
                 self.block("tickets", s.tickets, self.tickets, "tickets.backends"),
                 self.block("windows", s.windows, self.windows, "updates.windows"),
                 self.block("restore", s.restore_tests, self.restores, "restore_tests.sets"),
                 "</section>"]
        return "\n".join(parts)

    def verdict(self) -> str:
        verdict = self.s.verdict()
        tone, key = _VERDICT[verdict]
        counts = self.counts()
        if self.s.incomplete():
            counts.insert(0, self.t("v.unknown.why"))
        detail = f" {' · '.join(counts)}" if counts else ""
        return f'<p class="verdict">{badge(tone, self.w[key])}{detail}</p>'

    def counts(self) -> list[str]:
        s, out = self.s, []
        jobs = s.backups.rows
        tallies = [("count.backups", sum(job.state in BAD_BACKUP for job in jobs)),
                   ("count.late", sum(job.state in DOUBTFUL_BACKUP for job in jobs)),
                   ("count.critical", sum(i.severity == "critical" for i in s.incidents.rows)),
                   ("count.warning", sum(i.severity != "critical" for i in s.incidents.rows)),
                   ("count.tickets", sum(ticket_late(t, s.now) for t in s.tickets.rows)),
                   ("count.restore", sum(r.last_passed is False for r in s.restore_tests.rows)),
                   ("count.overdue", sum(bool(r.overdue) and r.last_passed is not False
                                         for r in s.restore_tests.rows))]
        for key, n in tallies:
            if n:
                out.append(self.t(key, n=n))
        return out

    def t(self, phrase: str, /, **values: object) -> str:
        """A phrase of the tenant's language with ``values`` escaped into it (markup passed as :class:`_Safe`).

        A phrase with two forms (``singular|plural``) takes the one its ``n`` asks for."""
        text = self.w[phrase]
        if "|" in text:
            one, many = text.split("|", 1)
            text = one if values.get("n") == 1 else many
        return esc(text).format(**{name: value if isinstance(value, _Safe) else esc(value)
                                   for name, value in values.items()})

    def block(self, name: str, section: Section[Any], rows: Callable[[], str], key: str) -> str:
        """A section's heading and its rows, or the words for why there are none (``key``: its config key)."""
        head = f"<h3>{esc(self.w[name])}</h3>"
        if section.availability is Availability.UNREADABLE:
            return (f'{head}<p class="note unknown">{badge("unknown", self.w["unknown"])} '
                    f'{self.t("unreadable", error=section.error)}</p>')
        if section.availability is Availability.NOT_CONFIGURED:
            return (f'{head}<p class="note unknown">{badge("unknown", self.w["not_configured"])} '
                    f'{self.t("nc." + name, key=_Safe(f"<code>{esc(key)}</code>"))}</p>')
        if section.availability is Availability.NONE_EXPECTED:
            extra = rows() if isinstance(section, BackupSection) and section.mailboxes_down else ""
            return (f'{head}{extra}<p class="note unknown">'
                    f'{self.t("ne." + name, key=_Safe(f"<code>{esc(key)}</code>"))}</p>')
        return head + rows()

    # --- sections ------------------------------------------------------------------------------------

    def backups(self) -> str:
        section = self.s.backups
        notes = "".join(
            f'<p class="note bad">{badge("bad", self.w["unknown"])} '
            f'{self.t("mailbox", name=down.mailbox, since=_Safe(rome(down.since, self.lang)))}'
            + (f"<br><small>{esc(down.summary)}</small>" if down.summary else "") + "</p>"
            for down in section.mailboxes_down)
        if not section.rows:
            return notes
        rows = []
        for job in section.rows:
            report = job.last_report
            last = (f"{rome(report.reported_at, self.lang)} <small>"
                    f"({esc(self.w.get('r.' + report.status, report.status))})</small>"
                    if report is not None else esc(self.w["none"]))
            name = esc(job.job.name) + (f"<br><small>{esc(job.software)}</small>" if job.software else "")
            state = badge(_JOB_TONE.get(job.state, "unknown"), self.w.get("b." + job.state, job.state.upper()))
            since = self.since(job.since)
            if job.state in ("late", "missing"):  # no report for this run: say when it was due
                since += "<br><small>" + self.t("late.note", due=_Safe(rome(job.due, self.lang)),
                                                deadline=_Safe(rome(job.deadline, self.lang))) + "</small>"
            rows.append((name, last, state, since))
        w = self.w
        return notes + _Table((w["job"], w["last_report"], w["state"], w["since"]), rows).html()

    def incidents(self) -> str:
        section = self.s.incidents
        if not section.rows:
            return f'<p class="note ok">{badge("ok", self.w["b.ok"])} {self.t("empty.incidents")}</p>'
        rows = [(badge("bad" if i.severity == "critical" else "warn", self.w.get("s." + i.severity, i.severity)),
                 esc(i.summary), self.since(i.opened_at), self.when(i.last_seen_at)) for i in section.rows]
        w = self.w
        return _Table((w["severity"], w["what"], w["since"], w["last_seen"]), rows).html()

    def tickets(self) -> str:
        section, now = self.s.tickets, self.s.now
        if not section.rows:
            return f'<p class="note ok">{badge("ok", self.w["b.ok"])} {self.t("empty.tickets")}</p>'
        rows = []
        for ticket in section.rows:
            what = esc(ticket.subject)
            if ticket.ref:  # the helpdesk's number; e-mail and webhook helpdesks give none
                ref = esc(ticket.ref)
                if ticket.url and ticket.url.startswith(("https://", "http://")):
                    ref = f'<a href="{esc(ticket.url)}" rel="noreferrer">{ref}</a>'
                what = f"{ref}<br>{what}"
            if ticket.state == TicketState.RECOVERED:
                charge = f'{badge("ok", self.w["t.recovered"])} <small>{self.t("t.recovered.note")}</small>'
            elif ticket.taken_at is not None:
                charge = f'{badge("ok", self.w["t.taken"].upper())} {self.when(ticket.taken_at)}'
            elif ticket.due_at is None:
                charge = esc(self.w["none"])
            elif ticket_late(ticket, now):
                charge = (f'{badge("bad", self.w["t.late"])} {rome(ticket.due_at, self.lang)} '
                          f'<small>({self.t("overdue_by", age=age(now - ticket.due_at, self.lang))})</small>')
            else:
                charge = (f'{badge("info", self.w["t.due"].upper())} {rome(ticket.due_at, self.lang)} '
                          f'<small>({self.t("in", age=age(ticket.due_at - now, self.lang))})</small>')
            resolve = "–" if ticket.resolve_due_at is None else rome(ticket.resolve_due_at, self.lang)
            priority = esc(self.w.get("p." + ticket.priority, ticket.priority))
            rows.append((what, priority, self.when(ticket.opened_at), charge, resolve))
        w = self.w
        return _Table((w["ticket"], w["priority"], w["opened"], w["take_charge"], w["resolve"]), rows).html()

    def windows(self) -> str:
        section, now = self.s.windows, self.s.now
        if not section.rows:
            return f'<p class="note info">{self.t("empty.windows", n=WINDOW_DAYS)}</p>'
        rows = []
        for occ in section.rows:
            if occ.skipped:
                state = f'{badge("unknown", self.w["w.skipped"])} {esc(occ.reason or "")}'
            elif occ.start.timestamp() <= now < occ.end.timestamp():
                state = badge("info", self.w["w.running"])
            else:
                state = (f'{badge("info", self.w["w.planned"])} '
                         f'<small>({self.t("in", age=age(occ.start.timestamp() - now, self.lang))})</small>')
            rows.append((f"{esc(occ.application)}<br><small>{esc(occ.window)}</small>",
                         rome(occ.start.timestamp(), self.lang), rome(occ.end.timestamp(), self.lang), state))
        w = self.w
        return _Table((w["application"], w["start"], w["end"], w["state"]), rows).html()

    def restores(self) -> str:
        rows = []
        for test_set in self.s.restore_tests.rows:
            if test_set.last_passed is None:
                result = badge("warn", self.w["x.never"])
            elif test_set.last_passed:
                result = badge("ok", self.w["x.passed"])
            else:
                result = f'{badge("bad", self.w["x.failed"])}<br><small>{esc(test_set.summary)}</small>'
            if test_set.overdue and test_set.last_passed is not None:
                result += " " + badge("warn", self.w["x.overdue"])
            passed = self.when(test_set.last_success)
            rows.append((f"{esc(test_set.name)}<br><small>{esc(test_set.backend)}</small>",
                         self.when(test_set.last_test), result, passed))
        w = self.w
        return _Table((w["set"], w["last_test"], w["result"], w["last_passed"]), rows).html()


class _Safe(str):
    """Markup already escaped, put into a phrase as it is."""


def page_language(statuses: Sequence[TenantStatus]) -> str:
    """English only when every tenant shown reads English; Italian otherwise (and with none)."""
    return "en" if statuses and all(status.language == "en" for status in statuses) else "it"


def _document(title: str, language: str, refresh: float | None, body: str) -> str:
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    return ("<!DOCTYPE html>\n"
            f'<html lang="{esc(language)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'{meta}<meta name="robots" content="noindex"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def _footer(words: dict[str, str]) -> str:
    links = " ".join(f'<a href="{esc(link)}">{esc(link)}</a>' for link in LINKS)
    return f"<footer><p>{esc(words['links'])}: {links}</p></footer>"


def _summary(statuses: Sequence[TenantStatus], words: dict[str, str]) -> str:
    """One line per tenant with its headline, linking to its part of the page: the morning's first look."""
    items = []
    for status in statuses:
        tone, key = _VERDICT[status.verdict()]
        items.append(f'<li>{badge(tone, words[key])} <a href="#tenant-{esc(status.tenant)}">{esc(status.name)}</a>'
                     "</li>")
    return f'<section class="tenant summary"><h2>{esc(words["tenants"])}</h2><ul>{"".join(items)}</ul></section>\n'


def render_page(title: str, statuses: Sequence[TenantStatus], now: float, refresh: float,
                navigation: Sequence[tuple[str, str]] = ()) -> str:
    """The whole page: a header (title, time, links to the tenant pages in ``navigation``: (id, name)),
    each tenant's sections, the links to the agent's endpoints."""
    language = page_language(statuses)
    words = WORDS[language]
    nav = ""
    if len(statuses) == 1 and len(navigation) > 1:  # a tenant's page: the way to the others the user may see
        items = " ".join(f'<a href="/tenant/{esc(tenant)}">{esc(name)}</a>' for tenant, name in navigation)
        nav = f'<nav><a href="/">{esc(words["all"])}</a> {items}</nav>'
    header = (f"<header><h1>{esc(title)}</h1><p>{esc(words['subtitle'])} · {esc(words['updated'])} "
              f"{rome(now, language)} · {esc(words['refresh'].format(n=int(refresh)))}</p>{nav}</header>")
    summary = _summary(statuses, words) if len(statuses) > 1 else ""
    main = "<main>\n" + summary + "\n".join(_TenantPage(status).html() for status in statuses) + "\n</main>"
    heading = title if len(statuses) != 1 else f"{title} · {statuses[0].name}"
    return _document(heading, language, refresh, f"{header}\n{main}\n{_footer(words)}")


def render_forbidden(title: str, language: str, user: str | None, allowed: Sequence[tuple[str, str]]) -> str:
    """The 403 page: who was refused and which pages that user may see (``allowed``: (tenant id, name))."""
    words = WORDS[language if language in WORDS else "it"]
    if user is None:
        text = f"<p>{esc(words['forbidden.nouser'])}</p>"
    else:
        links = "".join(f'<li><a href="/tenant/{esc(tenant)}">{esc(name)}</a></li>' for tenant, name in allowed)
        text = f"<p>{esc(words['forbidden.user'].format(user=user))}</p><ul>{links}</ul>"
    body = (f"<header><h1>{esc(title)}</h1></header><main><section class=\"tenant\"><h2>"
            f"{badge('bad', words['forbidden'].upper())}</h2>{text}</section></main>{_footer(words)}")
    return _document(f"{title} · {words['forbidden']}", language, None, body)
