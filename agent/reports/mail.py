"""The e-mail that carries a report to the comune: subject, a short text, what is attached.

The reader is a clerk (the IT referent, the secretary), who files the mail and
perhaps forwards the PDF to the mayor: the subject says which report, which
period, which comune; the text says in one line per area how things went
(the report's summary lights, in words) and what each attachment is and
what opens it. In the tenant's language (``it``, or ``en``). Composed when
the report is rendered and kept with it, so every try sends the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from custode.agent.calendar import ROME
from custode.agent.reports.document import Light, Report
from custode.agent.reports.words import MONTHS

Role = Literal["report", "csv", "zip"]


_TEXTS: dict[str, dict[str, str]] = {
    "it": {
        "subject.quarterly": "Rapporto trimestrale {period} – {tenant}",
        "subject.yearly": "Rapporto annuale {period} – {tenant}",
        "head": "Gentili referenti del {tenant},\n\n",
        "intro.quarterly": "vi inviamo in allegato il rapporto trimestrale sui servizi informatici del {n}° "
                           "trimestre {year} ({span}), a cura di {provider}.",
        "intro.yearly": "vi inviamo in allegato il rapporto annuale sui servizi informatici e sui server "
                        "dell'anno {year} ({span}), a cura di {provider}.",
        "span": "dal {start} al {end}",
        "replaces": "Questo invio sostituisce quello {of_the}{when}.",
        "summary": "In sintesi:",
        "empty": "Nel periodo non è stato registrato alcun dato per il {tenant}: nessun report di backup, nessuna "
                 "misura dei server, nessuna finestra di aggiornamento, nessun ticket. Il rapporto allegato lo "
                 "indica. Se nel periodo i servizi erano attivi, il fornitore deve verificare perché non sono stati "
                 "raccolti dati.",
        "attached": "Allegati a questo messaggio:",
        "a.report": "il rapporto completo, da leggere o stampare (PDF)",
        "a.csv": "i dati delle tabelle del rapporto, da aprire con un foglio di calcolo come Excel o LibreOffice "
                 "Calc (CSV)",
        "a.zip": "un archivio ZIP con i dati delle tabelle del rapporto, in file CSV da aprire con un foglio di "
                 "calcolo come Excel o LibreOffice Calc",
        "generated": "Il rapporto è stato preparato {the}{when}.",
        "foot": "\n\n-- \nMessaggio inviato automaticamente da Custode per conto di {provider}.\n",
        "light.green": "regolare",
        "light.yellow": "da tenere sotto controllo",
        "light.red": "richiede attenzione",
        "light.none": "non valutato (nessun dato, o servizio non compreso nel contratto)",
        "area.backups": "Backup",
        "area.availability": "Disponibilità dei server",
        "area.security": "Sicurezza (antivirus, aggiornamenti di sistema)",
        "area.service_levels": "Livelli di servizio (ticket)",
        "area.updates": "Aggiornamenti degli applicativi",
        "area.capacity": "Capacità (dischi, memoria, processori)",
        "area.network": "Rete e servizi online (dispositivi, portali, certificati)",
        "at": "alle",
    },
    "en": {
        "subject.quarterly": "Quarterly report {period} – {tenant}",
        "subject.yearly": "Yearly report {period} – {tenant}",
        "head": "Dear {tenant} contacts,\n\n",
        "intro.quarterly": "please find attached the quarterly report on the IT services for Q{n} {year} "
                           "({span}), by {provider}.",
        "intro.yearly": "please find attached the yearly report on the IT services and servers for {year} "
                        "({span}), by {provider}.",
        "span": "{start} to {end}",
        "replaces": "This message replaces the one sent on {of_the}{when}.",
        "summary": "In short:",
        "empty": "Nothing at all was recorded for {tenant} in the period: no backup report, no server "
                 "measurement, no update window, no ticket. The attached report says so. If the services were "
                 "active in the period, the provider has to check why no data was collected.",
        "attached": "Attached to this message:",
        "a.report": "the full report, to read or print (PDF)",
        "a.csv": "the data of the report's tables, to open with a spreadsheet such as Excel or LibreOffice Calc "
                 "(CSV)",
        "a.zip": "a ZIP archive of the data of the report's tables, CSV files to open with a spreadsheet such as "
                 "Excel or LibreOffice Calc",
        "generated": "The report was prepared on {the}{when}.",
        "foot": "\n\n-- \nSent automatically by Custode on behalf of {provider}.\n",
        "light.green": "in order",
        "light.yellow": "worth watching",
        "light.red": "needs attention",
        "light.none": "not judged (no data, or not a service of the contract)",
        "area.backups": "Backups",
        "area.availability": "Server availability",
        "area.security": "Security (antivirus, system updates)",
        "area.service_levels": "Service levels (tickets)",
        "area.updates": "Application updates",
        "area.capacity": "Capacity (disks, memory, processors)",
        "area.network": "Network and online services (devices, portals, certificates)",
        "at": "at",
    },
}


@dataclass(frozen=True)
class Attached:
    """A file the mail carries, and what it is to the reader."""

    name: str
    role: Role


def _date(day: date, language: str) -> str:
    return f"{day.day} {MONTHS[language][day.month - 1]} {day.year}"


def _moment(when: datetime, language: str) -> str:
    """``11 gennaio 2027 alle 07:00 (UTC+01:00)``: the offset says which hour it was, in any season."""
    local = when.astimezone(ROME) if when.tzinfo else when.replace(tzinfo=ROME)
    offset = local.isoformat(timespec="minutes")[-6:]
    return f"{_date(local.date(), language)} {_TEXTS[language]['at']} {local:%H:%M} (UTC{offset})"


def _articles(when: datetime, language: str) -> dict[str, str]:
    """Italian elides the article before a day read with a vowel: l'8, dell'11 gennaio (il 7, del 12)."""
    if language != "it":
        return {"the": "", "of_the": ""}
    vowel = when.astimezone(ROME).day in (8, 11) if when.tzinfo else when.day in (8, 11)
    return {"the": "l'" if vowel else "il ", "of_the": "dell'" if vowel else "del "}


def _span(report: Report, language: str) -> str:
    start, end = report.period_start, report.period_end
    first = (f"{start.day}" if (start.year, start.month) == (end.year, end.month) else
             f"{start.day} {MONTHS[language][start.month - 1]}" if start.year == end.year else _date(start, language))
    if language == "it" and start.day == 1:
        first = first.replace("1", "1°", 1)
    return _TEXTS[language]["span"].format(start=first, end=_date(end, language))


def subject_of(report: Report) -> str:
    language = _language(report)
    return _TEXTS[language][f"subject.{report.kind}"].format(period=report.period, tenant=report.tenant_name)


def compose(report: Report, attached: list[Attached], *, replaces: datetime | None = None) -> tuple[str, str]:
    """(subject, plain text) of the mail carrying ``report`` with ``attached`` (the PDF first).

    ``replaces``: when an earlier mail of the same report was sent (a re-send
    by hand), so the clerk files this one in its place.
    """
    language = _language(report)
    words = _TEXTS[language]
    year = report.period_start.year
    quarter = (report.period_start.month - 1) // 3 + 1
    lines = [words["head"].format(tenant=report.tenant_name)
             + words[f"intro.{report.kind}"].format(n=quarter, year=year, span=_span(report, language),
                                                    provider=report.provider_name)]
    if replaces is not None:
        lines.append(words["replaces"].format(when=_moment(replaces, language), **_articles(replaces, language)))
    if report.empty:
        lines.append(words["empty"].format(tenant=report.tenant_name))
    elif report.summary:
        lines.append("\n".join([words["summary"], *(
            f"- {words[f'area.{item.area}']}: {words[f'light.{Light(item.light).value}']}"
            for item in report.summary)]))
    files = [f"- {item.name}: {words['a.report']}" for item in attached if item.role == "report"]
    csv = [item.name for item in attached if item.role == "csv"]
    if csv:
        files.append(f"- {', '.join(csv)}: {words['a.csv']}")
    files += [f"- {item.name}: {words['a.zip']}" for item in attached if item.role == "zip"]
    lines.append("\n".join([words["attached"], *files]))
    lines.append(words["generated"].format(when=_moment(report.generated_at, language),
                                           **_articles(report.generated_at, language)))
    text = "\n\n".join(lines) + words["foot"].format(provider=report.provider_name)
    return subject_of(report), text


def _language(report: Report) -> str:
    return "en" if report.language == "en" else "it"
