"""The e-mails to a comune's referents around a maintenance: announcement and outcome.

The contracts require announcing interventions, and an urgent one outside the
window beforehand with the expected time of return to service. Texts are
written for the referent (a clerk, not a sysadmin), in the tenant's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent.calendar import ROME

_DAYS_IT = ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica")
_MONTHS_IT = ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
              "ottobre", "novembre", "dicembre")


def _when(moment: datetime, language: str) -> str:
    local = moment.astimezone(ROME)
    if language == "it":
        return f"{_DAYS_IT[local.weekday()]} {local.day} {_MONTHS_IT[local.month - 1]} {local.year} alle {local:%H:%M}"
    return f"{local:%A %d %B %Y at %H:%M}"


@dataclass(frozen=True)
class Notice:
    kind: str
    """start, urgent or outcome"""
    application: str
    tenant_name: str
    hosts: list[str]
    start: datetime
    end: datetime
    reason: str | None = None
    status: str | None = None
    """succeeded, rolled_back or failed (outcome only)"""
    detail: str = ""


def compose(notice: Notice, language: str) -> tuple[str, str]:
    """Subject and plain-text body."""
    return (_italian if language == "it" else _english)(notice)


def _italian(n: Notice) -> tuple[str, str]:
    hosts = ", ".join(n.hosts) or "-"
    head = f"Gentili referenti del {n.tenant_name},\n\n"
    if n.kind == "start":
        subject = f"Intervento programmato: aggiornamento {n.application} – {n.start.astimezone(ROME):%d/%m/%Y}"
        body = (f"vi informiamo che {_when(n.start, 'it')} inizia l'aggiornamento settimanale di {n.application} "
                f"(server: {hosts}).\nFine prevista dell'intervento: {_when(n.end, 'it')}.\n"
                "Durante l'intervento il servizio può non essere disponibile. Al termine vi comunicheremo l'esito "
                "e il risultato del collaudo.")
    elif n.kind == "urgent":
        subject = f"Intervento urgente: aggiornamento {n.application} fuori dalla finestra programmata"
        body = (f"vi informiamo che {_when(n.start, 'it')} inizia un aggiornamento urgente di {n.application} "
                f"(server: {hosts}), fuori dalla finestra settimanale.\nMotivo: {n.reason}\n"
                f"Ripristino previsto del servizio entro: {_when(n.end, 'it')}.\n"
                "Al termine vi comunicheremo l'esito e il risultato del collaudo.")
    else:
        subject, outcome = {
            "succeeded": (f"Aggiornamento {n.application} completato",
                          "è stato completato e il collaudo dell'operatività è stato superato."),
            "rolled_back": (f"Aggiornamento {n.application} non riuscito: ripristinata la versione precedente",
                            "non è riuscito; è stata ripristinata la situazione precedente all'intervento e il "
                            "servizio è di nuovo disponibile. È stato aperto un ticket per l'analisi."),
        }.get(n.status or "", (f"Aggiornamento {n.application} non riuscito: servizio da verificare",
                               "non è riuscito e il ripristino automatico non è stato completato: il servizio può "
                               "non essere disponibile. È stato aperto un ticket ad alta priorità."))
        body = f"l'aggiornamento di {n.application} iniziato {_when(n.start, 'it')} (server: {hosts}) {outcome}"
        if n.detail:
            body += f"\nDettaglio: {n.detail}"
    return subject, head + body + "\n\n-- \nMessaggio inviato da Custode per conto del fornitore del servizio.\n"


def _english(n: Notice) -> tuple[str, str]:
    hosts = ", ".join(n.hosts) or "-"
    head = f"Dear {n.tenant_name} contacts,\n\n"
    if n.kind == "start":
        subject = f"Scheduled maintenance: {n.application} update – {n.start.astimezone(ROME):%Y-%m-%d}"
        body = (f"the weekly update of {n.application} (servers: {hosts}) starts on {_when(n.start, 'en')}.\n"
                f"Expected end: {_when(n.end, 'en')}.\nThe service may be unavailable meanwhile. We will tell you "
                "the outcome and the result of the post-update tests.")
    elif n.kind == "urgent":
        subject = f"Urgent maintenance: {n.application} update outside the scheduled window"
        body = (f"an urgent update of {n.application} (servers: {hosts}) starts on {_when(n.start, 'en')}, outside "
                f"the weekly window.\nReason: {n.reason}\nExpected return to service by: {_when(n.end, 'en')}.")
    else:
        subject, outcome = {
            "succeeded": (f"{n.application} update completed", "is complete and the post-update tests passed."),
            "rolled_back": (f"{n.application} update failed: previous version restored",
                            "failed; the previous state was restored and the service is available again. "
                            "A ticket has been opened."),
        }.get(n.status or "", (f"{n.application} update failed: service to be checked",
                               "failed and the automatic rollback did not complete: the service may be "
                               "unavailable. A high-priority ticket has been opened."))
        body = f"the update of {n.application} started on {_when(n.start, 'en')} (servers: {hosts}) {outcome}"
        if n.detail:
            body += f"\nDetail: {n.detail}"
    return subject, head + body + "\n\n-- \nSent by Custode on behalf of your service provider.\n"
