"""The e-mails to a comune's referents around a maintenance: advance notice, announcement and outcome.

The contracts require announcing interventions, and an urgent one outside the
window beforehand with the expected time of return to service. Texts are
written for the referent (a clerk, not a sysadmin), in the tenant's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from custode.agent.calendar import ROME
from custode.agent.calendar_words import MONTH_NAMES, WEEKDAY_NAMES
from custode.agent.updates.states import RunStatus

_DAYS_IT = WEEKDAY_NAMES["it"]
_MONTHS_IT = MONTH_NAMES["it"]


def _when(moment: datetime, language: str, offset: bool = False) -> str:
    """The moment as a referent reads it, Europe/Rome; ``offset`` adds the UTC offset (``UTC+01:00``).

    Advance notices carry the offset: they are read days before, and across
    the change to or from summer time the hour alone is ambiguous to a reader
    abroad or a calendar program.
    """
    local = moment.astimezone(ROME)
    numeric = f"{local:%z}"  # +0100
    zone = f" (UTC{numeric[:3]}:{numeric[3:]})" if offset else ""
    if language == "it":
        return (f"{_DAYS_IT[local.weekday()]} {local.day} {_MONTHS_IT[local.month - 1]} {local.year} "
                f"alle {local:%H:%M}{zone}")
    return f"{local:%A %d %B %Y at %H:%M}{zone}"


@dataclass(frozen=True)
class Notice:
    kind: str
    """start, urgent, outcome; advance or cancelled (the notice days before, :mod:`custode.agent.updates.announce`)"""
    application: str
    tenant_name: str
    hosts: list[str]
    start: datetime
    end: datetime
    reason: str | None = None
    status: RunStatus | None = None
    """succeeded, rolled_back or failed (outcome only)"""
    detail: str = ""


_TEXTS = {
    "it": {
        "head": "Gentili referenti del {tenant},\n\n",
        "foot": "\n\n-- \nMessaggio inviato da Custode per conto del fornitore del servizio.\n",
        "start": ("Intervento programmato: aggiornamento {app} – {day}",
                  "vi informiamo che {start} inizia l'aggiornamento settimanale di {app} (server: {hosts}).\n"
                  "Fine prevista dell'intervento: {end}.\nDurante l'intervento il servizio può non essere "
                  "disponibile. Al termine vi comunicheremo l'esito e il risultato del collaudo."),
        "urgent": ("Intervento urgente: aggiornamento {app} fuori dalla finestra programmata",
                   "vi informiamo che {start} inizia un aggiornamento urgente di {app} (server: {hosts}), fuori "
                   "dalla finestra settimanale.\nMotivo: {reason}\nRipristino previsto del servizio entro: {end}.\n"
                   "Al termine vi comunicheremo l'esito e il risultato del collaudo."),
        RunStatus.SUCCEEDED: ("Aggiornamento {app} completato",
                      "è stato completato e il collaudo dell'operatività è stato superato."),
        RunStatus.ROLLED_BACK: ("Aggiornamento {app} non riuscito: ripristinata la versione precedente",
                        "non è riuscito; è stata ripristinata la situazione precedente all'intervento e il servizio "
                        "è di nuovo disponibile. È stato aperto un ticket per l'analisi."),
        RunStatus.FAILED: ("Aggiornamento {app} non riuscito: servizio da verificare",
                   "non è riuscito e il ripristino automatico non è stato completato: il servizio può non essere "
                   "disponibile. È stato aperto un ticket ad alta priorità."),
        "advance": ("Avviso di intervento programmato: aggiornamento {app} – {day}",
                    "vi informiamo con anticipo che {start_tz} è programmato l'aggiornamento di {app} (server: "
                    "{hosts}).\nFine prevista dell'intervento: {end_tz}.\nDurante l'intervento il servizio può "
                    "non essere disponibile: vi preghiamo di informarne gli uffici interessati."),
        "cancelled": ("Intervento annullato: aggiornamento {app} – {day}",
                      "vi informiamo che l'aggiornamento di {app} (server: {hosts}) previsto {start_tz} non si "
                      "terrà: {reason}. Nei giorni festivi e di chiusura non si eseguono aggiornamenti; il "
                      "servizio resta disponibile."),
        "outcome": "l'aggiornamento di {app} iniziato {start} (server: {hosts}) {outcome}",
        "detail": "\nDettaglio: {detail}",
        "day": "%d/%m/%Y",
    },
    "en": {
        "head": "Dear {tenant} contacts,\n\n",
        "foot": "\n\n-- \nSent by Custode on behalf of your service provider.\n",
        "start": ("Scheduled maintenance: {app} update – {day}",
                  "the weekly update of {app} (servers: {hosts}) starts on {start}.\nExpected end: {end}.\n"
                  "The service may be unavailable meanwhile. We will tell you the outcome and the result of the "
                  "post-update tests."),
        "urgent": ("Urgent maintenance: {app} update outside the scheduled window",
                   "an urgent update of {app} (servers: {hosts}) starts on {start}, outside the weekly window.\n"
                   "Reason: {reason}\nExpected return to service by: {end}."),
        RunStatus.SUCCEEDED: ("{app} update completed", "is complete and the post-update tests passed."),
        RunStatus.ROLLED_BACK: ("{app} update failed: previous version restored",
                        "failed; the previous state was restored and the service is available again. A ticket "
                        "has been opened."),
        RunStatus.FAILED: ("{app} update failed: service to be checked",
                   "failed and the automatic rollback did not complete: the service may be unavailable. "
                   "A high-priority ticket has been opened."),
        "advance": ("Scheduled maintenance notice: {app} update – {day}",
                    "we inform you in advance that the update of {app} (servers: {hosts}) is scheduled for "
                    "{start_tz}.\nExpected end: {end_tz}.\nThe service may be unavailable meanwhile: please let "
                    "the offices concerned know."),
        "cancelled": ("Maintenance cancelled: {app} update – {day}",
                      "the update of {app} (servers: {hosts}) planned for {start_tz} will not take place: "
                      "{reason}. No updates are made on public holidays and closure days; the service stays "
                      "available."),
        "outcome": "the update of {app} started on {start} (servers: {hosts}) {outcome}",
        "detail": "\nDetail: {detail}",
        "day": "%Y-%m-%d",
    },
}


def compose(notice: Notice, language: str) -> tuple[str, str]:
    """Subject and plain-text body."""
    texts = _TEXTS[language if language in _TEXTS else "it"]
    values = {"tenant": notice.tenant_name, "app": notice.application, "hosts": ", ".join(notice.hosts) or "-",
              "start": _when(notice.start, language), "end": _when(notice.end, language),
              "start_tz": _when(notice.start, language, offset=True),
              "end_tz": _when(notice.end, language, offset=True),
              "day": f"{notice.start.astimezone(ROME):{texts['day']}}", "reason": notice.reason or ""}
    if notice.kind in ("start", "urgent", "advance", "cancelled"):
        subject, body = (t.format(**values) for t in texts[notice.kind])
    else:
        subject, outcome = (t.format(**values) for t in texts.get(notice.status or "", texts[RunStatus.FAILED]))
        body = texts["outcome"].format(outcome=outcome, **values)
        if notice.detail:
            body += texts["detail"].format(detail=notice.detail)
    return subject, texts["head"].format(**values) + body + texts["foot"]
