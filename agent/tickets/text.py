"""The words a comune's referent reads in a ticket Custode opened, in Italian (default) or English.

The referent is not a sysadmin: the ticket must say what failed, where, since
when, what Custode already checked and by when someone will take it in
charge, in plain sentences. The checks' own summaries are English one-liners
for logs, so for every known check the Italian text is written here from the
incident's details instead; only an unknown check falls back to its summary.
Weekday and month names come from tables below, never from the machine's
locale (a Windows server set to English must still write "lunedì").

The marker line (:func:`custode.agent.tickets.backends.base.op_marker`) is not part of
these texts: the backend that writes a text appends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from custode.agent.calendar import ROME
from custode.agent.calendar_words import MONTH_NAMES, WEEKDAY_NAMES
from custode.agent.clock import now_rome
from custode.agent.incidents import Incident

SUBJECT_MAX = 150

_WEEKDAYS = WEEKDAY_NAMES
_MONTHS = MONTH_NAMES
_PRIORITY = {"it": {"low": "bassa", "medium": "media", "high": "alta"},
             "en": {"low": "low", "medium": "medium", "high": "high"}}
_SEVERITY = {"it": {"warning": "avviso", "critical": "critica", "ok": "nessun problema"},
             "en": {"warning": "warning", "critical": "critical", "ok": "no problem"}}


# --- the facts --------------------------------------------------------------------------

@dataclass(frozen=True)
class IncidentFacts:
    """What the texts say about one incident: a frozen copy, so texts can be rebuilt on a retry."""

    key: str
    tenant: str
    tenant_name: str
    check: str
    target: str
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    opened_at: datetime = field(default_factory=now_rome)
    occurrences: int = 1

    @property
    def host(self) -> str:
        """The machine: host checks' targets are ``HOST:THING``."""
        return self.target.split(":", 1)[0]

    @property
    def thing(self) -> str:
        """What on the host (mountpoint, service), or the whole target when it names no host."""
        return self.target.split(":", 1)[1] if ":" in self.target else self.target

    @classmethod
    def from_incident(cls, incident: Incident, tenant_name: str) -> "IncidentFacts":
        return cls(key=incident.key, tenant=incident.tenant, tenant_name=tenant_name, check=incident.check,
                   target=incident.target, severity=incident.severity, summary=incident.summary,
                   details=dict(incident.details), opened_at=datetime.fromtimestamp(began_at(incident), ROME),
                   occurrences=incident.occurrences)


def began_at(incident: Incident) -> float:
    """When the problem itself began: the check's own ``began_at`` (a failed report's time, a missed
    deadline) when it gives one, else when the incident opened.

    A backup that failed at 02:30 and was read at 08:00, or a Custode started after the deadline passed,
    must not tell the referent "since 08:00"; nor may the resolution note measure the outage from there.
    A ``began_at`` after the incident opened is not believed (clock trouble): the opening time is used.
    """
    value = incident.details.get("began_at") if isinstance(incident.details, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= incident.opened_at:
        return float(value)
    return incident.opened_at


# --- words for times, numbers, durations ------------------------------------------------------

def _lang(language: str) -> str:
    """Italian unless English is asked: an unknown language must not break a ticket."""
    return "en" if str(language).lower().startswith("en") else "it"


def when(moment: datetime, language: str) -> str:
    """'lunedì 28 dicembre 2026 alle 17:00' / 'Monday 28 December 2026 at 17:00', Europe/Rome time."""
    lang = _lang(language)
    local = moment.astimezone(ROME) if moment.tzinfo else moment.replace(tzinfo=ROME)
    weekday, month = _WEEKDAYS[lang][local.weekday()], _MONTHS[lang][local.month - 1]
    if lang == "en":
        return f"{weekday} {local.day} {month} {local.year} at {local:%H:%M}"
    day = "1º" if local.day == 1 else str(local.day)
    article = "all'" if local.hour == 1 else "alle "
    return f"{weekday} {day} {month} {local.year} {article}{local.hour}:{local:%M}"


def day_words(moment: datetime, language: str) -> str:
    """The date alone: 'lunedì 28 dicembre 2026'."""
    lang = _lang(language)
    local = moment.astimezone(ROME) if moment.tzinfo else moment
    day = "1º" if lang == "it" and local.day == 1 else str(local.day)
    return f"{_WEEKDAYS[lang][local.weekday()]} {day} {_MONTHS[lang][local.month - 1]} {local.year}"


def iso(moment: datetime) -> str:
    return moment.astimezone(ROME).isoformat(timespec="seconds")


def number(value: float, language: str) -> str:
    """1 decimal at most; Italian writes a decimal comma."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if _lang(language) == "it" else text


def duration_words(seconds: float, language: str) -> str:
    """'2 giorni, 3 ore e 5 minuti' / '2 days, 3 hours and 5 minutes'."""
    lang = _lang(language)
    total = int(max(0, seconds) // 60)
    if total == 0:
        return "meno di un minuto" if lang == "it" else "less than a minute"
    days, rest = divmod(total, 1440)
    hours, minutes = divmod(rest, 60)
    names = {"it": (("giorno", "giorni"), ("ora", "ore"), ("minuto", "minuti")),
             "en": (("day", "days"), ("hour", "hours"), ("minute", "minutes"))}[lang]
    parts = [f"{n} {name[0] if n == 1 else name[1]}"
             for n, name in zip((days, hours, minutes), names, strict=True) if n]
    joiner = " e " if lang == "it" else " and "
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + joiner + parts[-1]


def hours_words(hours: float, language: str) -> str:
    """'8 ore lavorative' / '8 working hours'."""
    lang = _lang(language)
    amount = number(hours, lang)
    if lang == "it":
        return f"{amount} {'ora lavorativa' if hours == 1 else 'ore lavorative'}"
    return f"{amount} working {'hour' if hours == 1 else 'hours'}"


def _bytes(value: Any, language: str) -> str:
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(amount) < 1024 or unit == "PB":
            return f"{number(amount, language)} {unit}"
        amount /= 1024
    return f"{number(amount, language)} PB"  # pragma: no cover - the loop always returns


def ref_words(ref: str) -> str:
    """'#123' for a helpdesk number; a Message-ID or other reference as it is."""
    return f"#{ref}" if ref.isdigit() else ref


# --- per-check sentences ---------------------------------------------------------------------

_Fields = dict[str, str]
_Sentence = tuple[str, str]
"""(what failed, what Custode checked), each a template over the fields of :func:`_fields`."""


def _fields(facts: IncidentFacts, lang: str) -> _Fields:
    """The details as ready-to-print words; a missing one makes its template fall back."""
    out: _Fields = {"host": facts.host, "thing": facts.thing, "target": facts.target, "check": facts.check}
    details = facts.details or {}
    for name, value in details.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            out[name] = number(value, lang)
        elif isinstance(value, str) and value:
            out[name] = value
    for name in ("due", "deadline", "last_success_at", "last_installed"):
        if isinstance(details.get(name), (int, float)) and not isinstance(details.get(name), bool):
            out[f"{name}_words"] = when(datetime.fromtimestamp(details[name], ROME), lang)
    if isinstance(details.get("last_installed"), (int, float)):
        out["last_installed_day"] = day_words(datetime.fromtimestamp(details["last_installed"], ROME), lang)
    if isinstance(details.get("avail_bytes"), (int, float)) and isinstance(details.get("size_bytes"), (int, float)):
        out["avail_size"] = _bytes(details["avail_bytes"], lang)
        out["total_size"] = _bytes(details["size_bytes"], lang)
    report = details.get("report")
    if isinstance(report, dict):
        if isinstance(report.get("at"), (int, float)):
            out["report_words"] = when(datetime.fromtimestamp(report["at"], ROME), lang)
        if report.get("error"):
            out["report_error"] = str(report["error"]).splitlines()[0][:300]
    for name in ("unprotected", "mismatches", "products"):
        if isinstance(details.get(name), list) and details[name]:
            items = [str(x) for x in details[name]]
            out[f"{name}_count"] = _counted(len(items), name, lang)
            out[f"{name}_examples"] = ", ".join(items[:3]) + (" …" if len(items) > 3 else "")
    for name in ("failures", "pending"):
        value = details.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            out[f"{name}_count"] = _counted(value, name, lang)
    return out


_COUNTED = {  # (one, many) with {n}; Italian verbs agree with the number too
    "it": {"unprotected": ("1 percorso non è protetto", "{n} percorsi non sono protetti"),
           "mismatches": ("1 file non corrisponde", "{n} file non corrispondono"),
           "products": ("1 prodotto", "{n} prodotti"),
           "failures": ("1 volta", "{n} volte di seguito"),
           "pending": ("1 aggiornamento in attesa", "{n} aggiornamenti in attesa")},
    "en": {"unprotected": ("1 path is not protected", "{n} paths are not protected"),
           "mismatches": ("1 file does not match", "{n} files do not match"),
           "products": ("1 product", "{n} products"),
           "failures": ("once", "{n} times in a row"),
           "pending": ("1 update pending", "{n} updates pending")},
}


def _counted(n: int, name: str, lang: str) -> str:
    one, many = _COUNTED[lang][name]
    return one if n == 1 else many.format(n=n)


def _backup_key(facts: IncidentFacts) -> str:
    """``backup`` says missing/failed/warning in its details; older names carry it in the check."""
    state = str((facts.details or {}).get("state", ""))
    if facts.check in ("backup_missing", "backup_failed", "backup_warning"):
        return facts.check
    return {"missing": "backup_missing", "failed": "backup_failed", "warning": "backup_warning"}.get(
        state, "backup_failed")


_CHECK_KEY: dict[str, Callable[[IncidentFacts], str]] = {
    "backup": _backup_key, "backup_missing": _backup_key, "backup_failed": _backup_key,
    "backup_warning": _backup_key, "disk_space": lambda f: "filesystem",
}

# Each check: per language a list of (what, checked) alternatives; the first whose fields all exist wins.
_SENTENCES: dict[str, dict[str, list[_Sentence]]] = {
    "backup_missing": {
        "it": [("il backup «{thing}» non ha inviato il report atteso",
                "il report atteso per l'esecuzione prevista {due_words} non è arrivato entro {deadline_words} "
                "nelle caselle di posta controllate da Custode"),
               ("il backup «{thing}» non ha inviato il report atteso",
                "il report atteso non è arrivato entro il termine nelle caselle di posta controllate da Custode")],
        "en": [("backup “{thing}” did not send its expected report",
                "the report expected for the run scheduled {due_words} did not arrive by {deadline_words} "
                "in the mailboxes Custode reads"),
               ("backup “{thing}” did not send its expected report",
                "the expected report did not arrive in time in the mailboxes Custode reads")]},
    "backup_failed": {
        "it": [("il backup «{thing}» è fallito",
                "il report del backup ({software}) ricevuto {report_words} segnala un errore: «{report_error}»"),
               ("il backup «{thing}» è fallito",
                "il report del backup ({software}) ricevuto {report_words} segnala un errore"),
               ("il backup «{thing}» è fallito", "il report del backup segnala un errore")],
        "en": [("backup “{thing}” failed",
                "the backup report ({software}) received {report_words} states an error: “{report_error}”"),
               ("backup “{thing}” failed",
                "the backup report ({software}) received {report_words} states an error"),
               ("backup “{thing}” failed", "the backup report states an error")]},
    "backup_warning": {
        "it": [("il backup «{thing}» è terminato con avvisi",
                "il report del backup ({software}) ricevuto {report_words} segnala: «{report_error}»"),
               ("il backup «{thing}» è terminato con avvisi",
                "il report del backup ricevuto da Custode segnala degli avvisi")],
        "en": [("backup “{thing}” completed with warnings",
                "the backup report ({software}) received {report_words} says: “{report_error}”"),
               ("backup “{thing}” completed with warnings",
                "the backup report Custode received states warnings")]},
    "filesystem": {
        "it": [("lo spazio libero sul disco {mountpoint} del server {host} sta per esaurirsi",
                "Custode ha misurato lo spazio libero: {avail_percent}% ({avail_size} liberi su {total_size})"),
               ("il disco {thing} del server {host} non risponde",
                "Custode ha provato a leggere il disco, che risulta bloccato o non montato")],
        "en": [("free space on disk {mountpoint} of server {host} is running out",
                "Custode measured the free space: {avail_percent}% ({avail_size} free of {total_size})"),
               ("disk {thing} of server {host} does not answer",
                "Custode tried to read the disk, which is stuck or not mounted")]},
    "memory": {
        "it": [("la memoria libera del server {host} è scarsa",
                "Custode ha misurato la memoria disponibile: {available_percent}%")],
        "en": [("free memory on server {host} is low",
                "Custode measured the available memory: {available_percent}%")]},
    "cpu": {
        "it": [("il processore del server {host} è sovraccarico",
                "Custode ha misurato un utilizzo del processore del {busy_percent}% per un periodo prolungato")],
        "en": [("the processor of server {host} is overloaded",
                "Custode measured the processor {busy_percent}% busy over a sustained period")]},
    "services": {
        "it": [("il servizio {service} del server {host} non è in esecuzione",
                "Custode ha controllato lo stato dei servizi: {service} risulta fermo o in errore")],
        "en": [("service {service} on server {host} is not running",
                "Custode checked the state of the services: {service} is stopped or failed")]},
    "reachability": {
        "it": [("il server {host} non risponde",
                "Custode ha provato a collegarsi ({transport}, indirizzo {address}) {failures_count} "
                "senza risposta"),
               ("il server {host} non risponde", "Custode ha provato più volte a collegarsi senza risposta")],
        "en": [("server {host} does not answer",
                "Custode tried to connect ({transport}, address {address}) {failures_count} without "
                "an answer"),
               ("server {host} does not answer", "Custode tried to connect several times without an answer")]},
    "update": {
        "it": [("l'aggiornamento programmato «{thing}» non è andato a buon fine",
                "Custode ha eseguito l'aggiornamento (esecuzione n. {run_id}): {status_words}")],
        "en": [("the scheduled update “{thing}” did not succeed",
                "Custode ran the update (run {run_id}): {status_words}")]},
    "os_updates": {
        "it": [("il server {host} non installa gli aggiornamenti del sistema operativo da tempo",
                "Custode ha letto lo stato degli aggiornamenti: {pending_count}, l'ultimo installato "
                "{last_installed_day}"),
               ("il server {host} non installa gli aggiornamenti del sistema operativo da tempo",
                "Custode ha letto lo stato degli aggiornamenti: {pending_count}")],
        "en": [("server {host} has not installed operating system updates for a long time",
                "Custode read the update state: {pending_count}, the last one installed "
                "{last_installed_day}"),
               ("server {host} has not installed operating system updates for a long time",
                "Custode read the update state: {pending_count}")]},
    "antivirus": {
        "it": [("le firme dell'antivirus del server {host} non sono aggiornate",
                "Custode ha letto lo stato dell'antivirus: le firme di {product} hanno {signature_age_days} giorni"),
               ("nessun antivirus è attivo sul server {host}",
                "Custode ha letto lo stato dell'antivirus: nessun prodotto attivo tra quelli installati "
                "({products_examples})"),
               ("nessun antivirus è attivo sul server {host}",
                "Custode ha letto lo stato dell'antivirus: non risulta alcun prodotto attivo")],
        "en": [("antivirus signatures on server {host} are out of date",
                "Custode read the antivirus state: the signatures of {product} are {signature_age_days} days old"),
               ("no antivirus is active on server {host}",
                "Custode read the antivirus state: none of the installed products is active "
                "({products_examples})"),
               ("no antivirus is active on server {host}",
                "Custode read the antivirus state: no active product is reported")]},
    "disk_health": {
        "it": [("il disco {device} del server {host} segnala un guasto",
                "Custode ha letto lo stato di salute del disco (SMART): «{status}»; va sostituito o va "
                "controllato il RAID"),
               ("il disco {device} del server {host} segnala un guasto",
                "Custode ha letto lo stato di salute del disco (SMART); va sostituito o va controllato il RAID")],
        "en": [("disk {device} of server {host} reports a failure",
                "Custode read the disk's health (SMART): “{status}”; replace it or check the RAID"),
               ("disk {device} of server {host} reports a failure",
                "Custode read the disk's health (SMART); replace it or check the RAID")]},
    "os_support": {
        "it": [("il sistema operativo del server {host} ({os}) non è più supportato",
                "Custode ha confrontato la versione installata con le date di fine supporto del produttore "
                "(fine supporto: {end_of_support})"),
               ("il sistema operativo del server {host} non è più supportato",
                "Custode ha confrontato la versione installata con le date di fine supporto del produttore")],
        "en": [("the operating system of server {host} ({os}) is no longer supported",
                "Custode compared the installed version with the vendor's end-of-support dates "
                "(end of support: {end_of_support})"),
               ("the operating system of server {host} is no longer supported",
                "Custode compared the installed version with the vendor's end-of-support dates")]},
    "restore_test": {
        "it": [("il test di ripristino del backup «{thing}» è fallito: il backup non è affidabile",
                "Custode ha ripristinato i dati in un'area di prova e li ha confrontati con l'originale: "
                "{mismatches_count} (ad esempio {mismatches_examples})"),
               ("il test di ripristino del backup «{thing}» è fallito: il backup non è affidabile",
                "Custode ha provato a ripristinare i dati in un'area di prova senza riuscirci")],
        "en": [("the restore test of backup “{thing}” failed: the backup cannot be trusted",
                "Custode restored the data into a test area and compared it with the original: "
                "{mismatches_count} (e.g. {mismatches_examples})"),
               ("the restore test of backup “{thing}” failed: the backup cannot be trusted",
                "Custode tried to restore the data into a test area and could not")]},
    "restore_test_overdue": {
        "it": [("il test di ripristino del backup «{thing}» è scaduto",
                "Custode non trova un test di ripristino riuscito entro il periodo previsto")],
        "en": [("the restore test of backup “{thing}” is overdue",
                "Custode finds no passed restore test within the required period")]},
    "backup_coverage": {
        "it": [("alcuni dati non sono inclusi nel backup «{thing}»",
                "Custode ha confrontato i dischi dei dati con il contenuto del backup: {unprotected_count}: "
                "{unprotected_examples}")],
        "en": [("some data is not included in backup “{thing}”",
                "Custode compared the data volumes with the backup's contents: {unprotected_count}: "
                "{unprotected_examples}")]},
    "collectors": {
        "it": [("Custode non riesce a raccogliere i dati «{collector}» del server {host}",
                "la raccolta è fallita più volte di seguito")],
        "en": [("Custode cannot collect the “{collector}” data of server {host}",
                "the collection failed several times in a row")]},
}

_UPDATE_STATUS = {"it": {"failed": "l'aggiornamento è fallito",
                         "rolled_back": "l'aggiornamento è stato annullato e il sistema riportato allo stato "
                                        "precedente",
                         "interrupted": "l'esecuzione si è interrotta senza terminare: i server potrebbero essere "
                                        "aggiornati solo in parte"},
                  "en": {"failed": "the update failed",
                         "rolled_back": "the update was rolled back to the previous state",
                         "interrupted": "the run stopped without finishing: the servers may be half-updated"}}

_GENERIC = {"it": ("il controllo «{check}» segnala un problema su «{target}»", "esito del controllo: {summary}"),
            "en": ("check “{check}” reports a problem on “{target}”", "the check says: {summary}")}


def check_key(facts: IncidentFacts) -> str:
    """The sentence table entry of this incident's check ('' when unknown)."""
    key = _CHECK_KEY.get(facts.check, lambda f: f.check)(facts)
    return key if key in _SENTENCES else ""


def is_known_check(facts: IncidentFacts) -> bool:
    return bool(check_key(facts))


def _sentences(facts: IncidentFacts, lang: str) -> _Sentence:
    """(what failed, what was checked) in ``lang``; the generic pair when the check is unknown."""
    fields = _fields(facts, lang)
    if facts.check == "update" and fields.get("status") in _UPDATE_STATUS[lang]:
        fields["status_words"] = _UPDATE_STATUS[lang][fields["status"]]
    key = check_key(facts)
    for what, checked in _SENTENCES[key][lang] if key else ():
        try:
            return what.format_map(fields), checked.format_map(fields)
        except (KeyError, ValueError, IndexError):
            continue
    what, checked = _GENERIC[lang]
    generic = {"check": facts.check, "target": facts.target, "summary": facts.summary}
    return what.format_map(generic), checked.format_map(generic)


def what_failed(facts: IncidentFacts, language: str) -> str:
    """One clause: 'lo spazio libero sul disco / del server srv1 sta per esaurirsi'."""
    return _sentences(facts, _lang(language))[0]


def _tried(facts: IncidentFacts, lang: str) -> list[str]:
    """What Custode already did: the check's own "tried" list when it gives one, else the known sentence."""
    tried = (facts.details or {}).get("tried")
    if isinstance(tried, list) and tried and all(isinstance(t, str) for t in tried):
        return list(tried)
    return [_sentences(facts, lang)[1]]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- the texts ---------------------------------------------------------------------------------

def ticket_subject(facts: IncidentFacts, language: str) -> str:
    """'Comune di Crema – srv1: lo spazio libero sul disco / …', at most 150 characters."""
    what = what_failed(facts, language)
    named = not _on_host(facts) or facts.host in what
    subject = f"{facts.tenant_name}: {what}" if named else f"{facts.tenant_name} – {facts.host}: {what}"
    subject = " ".join(subject.split())
    return subject if len(subject) <= SUBJECT_MAX else subject[:SUBJECT_MAX - 1].rstrip() + "…"


def _on_host(facts: IncidentFacts) -> bool:
    """Host checks' targets are HOST:THING; a backup job or update window names no server."""
    return ":" in facts.target


_CHECK_LABEL = {
    "it": {"filesystem": "spazio su disco", "disk_space": "spazio su disco", "memory": "memoria",
           "cpu": "processore", "services": "servizi", "reachability": "raggiungibilità", "backup": "backup",
           "backup_missing": "backup", "backup_failed": "backup", "backup_warning": "backup",
           "update": "aggiornamento programmato", "os_updates": "aggiornamenti del sistema operativo",
           "antivirus": "antivirus", "disk_health": "salute dei dischi",
           "os_support": "supporto del sistema operativo", "restore_test": "test di ripristino",
           "restore_test_overdue": "test di ripristino periodico", "backup_coverage": "copertura del backup",
           "collectors": "raccolta dei dati"},
    "en": {"filesystem": "disk space", "disk_space": "disk space", "memory": "memory", "cpu": "processor",
           "services": "services", "reachability": "reachability", "backup": "backup",
           "backup_missing": "backup", "backup_failed": "backup", "backup_warning": "backup",
           "update": "scheduled update", "os_updates": "operating system updates", "antivirus": "antivirus",
           "disk_health": "disk health", "os_support": "operating system support",
           "restore_test": "restore test", "restore_test_overdue": "periodic restore test",
           "backup_coverage": "backup coverage", "collectors": "data collection"},
}
_WHOLE_HOST = {"memory", "cpu", "reachability", "updates", "antivirus", "os"}
"""Targets that name no part of the host: the 'what' line adds nothing to the server name."""


def _where(facts: IncidentFacts, lang: str) -> str:
    """'Dove: server srv1, controllo «spazio su disco», oggetto «/var»' in words a referent knows."""
    label = _CHECK_LABEL[lang].get(facts.check, facts.check)
    parts = [f"server {facts.host}"] if _on_host(facts) else []
    parts.append(f"controllo «{label}»" if lang == "it" else f"check “{label}”")
    if not _on_host(facts) or facts.thing not in _WHOLE_HOST:
        parts.append(f"oggetto «{facts.thing}»" if lang == "it" else f"target “{facts.thing}”")
    return ("Dove: " if lang == "it" else "Where: ") + ", ".join(parts)


@dataclass(frozen=True)
class SlaWords:
    """The ticket's service level in words: the contract's level name and each target with its due time."""

    level: str | None = None
    """The level as the contract names it; None on the default table (the priority says it all)."""
    take_charge: str | None = None
    """"8 ore lavorative" / "8 working hours"."""
    take_charge_unit: str | None = None
    """The target's unit (``working``, ``working_days``, ``clock``): which hours count."""
    targets: tuple[tuple[str, str, str, datetime | None], ...] = ()
    """Resolve and restore targets: (kind, words, unit, due time)."""


_COUNTS = {"it": {"working": "contano solo gli orari d'ufficio", "working_days": "contano solo i giorni lavorativi",
                  "clock": "contano tutte le ore, anche fuori orario"},
           "en": {"working": "only office hours count", "working_days": "only working days count",
                  "clock": "every hour counts, outside office hours too"}}
_LATER = {"it": {"resolve": "Da risolvere entro", "restore": "Servizio da ripristinare entro"},
          "en": {"resolve": "To be resolved by", "restore": "Service to be restored by"}}


def _due_line(lang: str, priority: str, due_at: datetime | None, sla_hours: float | None,
              sla: SlaWords | None = None) -> str:
    name = _PRIORITY[lang].get(priority, priority)
    within_words = sla.take_charge if sla and sla.take_charge else (hours_words(sla_hours, lang) if sla_hours
                                                                    else None)
    counts = _COUNTS[lang][(sla.take_charge_unit if sla and sla.take_charge_unit else "working")]
    if lang == "it":
        head = f"Livello: {sla.level} (priorità {name})." if sla and sla.level else f"Priorità: {name}."
        if due_at is None:
            line = f"{head} Nessuna scadenza di presa in carico."
        else:
            within = f", cioè {within_words} dall'apertura" if within_words else ""
            line = f"{head} Da prendere in carico entro {when(due_at, lang)} ({iso(due_at)}){within}; {counts}."
    else:
        head = f"Level: {sla.level} (priority {name})." if sla and sla.level else f"Priority: {name}."
        if due_at is None:
            line = f"{head} No take-charge deadline."
        else:
            within = f", that is {within_words} after opening" if within_words else ""
            line = f"{head} To be taken in charge by {when(due_at, lang)} ({iso(due_at)}){within}; {counts}."
    for kind, words, unit, due in (sla.targets if sla else ()):
        if due is not None:
            line += f"\n{_LATER[lang][kind]} {when(due, lang)} ({iso(due)}): {words}; {_COUNTS[lang][unit]}."
    return line


_OPENING = {
    "it": {"found": "Custode ha rilevato un problema per {tenant}: {what}.", "since": "Da quando: {when}",
           "severity": "Gravità: {severity}", "occurrences": "Occorrenze finora: {n}",
           "checked": "Cosa ha già verificato Custode:",
           "continues": "Questo ticket prosegue il ticket {ref}, chiuso mentre il problema era ancora presente.",
           "reference": "Riferimento Custode: {key}"},
    "en": {"found": "Custode found a problem for {tenant}: {what}.", "since": "Since: {when} (Europe/Rome)",
           "severity": "Severity: {severity}", "occurrences": "Occurrences so far: {n}",
           "checked": "What Custode already checked:",
           "continues": "This ticket continues ticket {ref}, closed while the problem persisted.",
           "reference": "Custode reference: {key}"},
}


def opening_text(facts: IncidentFacts, language: str, priority: str, due_at: datetime | None,
                 previous_ref: str | None = None, sla_hours: float | None = None, sla: SlaWords | None = None) -> str:
    """The body of a new ticket: what, where, since when, how serious, what was checked, the SLA."""
    lang = _lang(language)
    words = _OPENING[lang]
    lines = [words["found"].format(tenant=facts.tenant_name, what=what_failed(facts, lang)), "",
             _where(facts, lang),
             words["since"].format(when=when(facts.opened_at, lang)),
             words["severity"].format(severity=_SEVERITY[lang].get(facts.severity, facts.severity))]
    if facts.occurrences > 1:
        lines.append(words["occurrences"].format(n=facts.occurrences))
    lines += ["", words["checked"]] + [f"- {_capital(t)}." for t in _tried(facts, lang)]
    lines += ["", _due_line(lang, priority, due_at, sla_hours, sla)]
    if previous_ref:
        lines += ["", words["continues"].format(ref=ref_words(previous_ref))]
    lines += ["", words["reference"].format(key=facts.key)]
    return "\n".join(lines)


def followup_text(facts: IncidentFacts, language: str, repeats: int, last_summary: str, now: datetime) -> str:
    """The problem persists: how many more times since the last update, and the latest state.

    In Italian, a known check's state is described from the facts rather than
    ``last_summary`` (an English one-liner from the check).
    """
    lang = _lang(language)
    what = what_failed(facts, lang)
    if lang == "it":
        count = "1 nuova occorrenza" if repeats == 1 else f"{repeats} nuove occorrenze"
        lines = [f"Il problema è ancora presente ({when(now, lang)}): {what}.",
                 f"Dall'ultimo aggiornamento: {count}."]
        if is_known_check(facts):
            lines.append(f"Situazione attuale: {_sentences(facts, lang)[1]}.")
        elif last_summary:
            lines.append(f"Ultimo esito del controllo: {last_summary}")
    else:
        count = "1 more occurrence" if repeats == 1 else f"{repeats} more occurrences"
        lines = [f"The problem persists ({when(now, lang)}): {what}.",
                 f"Since the last update: {count}."]
        if last_summary:
            lines.append(f"Latest result: {last_summary}")
    return "\n".join(lines)


def priority_text(facts: IncidentFacts, language: str, old: str, new: str, due_at: datetime | None) -> str:
    """The priority changed (the failure got worse or better): the new priority and the new due time."""
    lang = _lang(language)
    old_name, new_name = _PRIORITY[lang].get(old, old), _PRIORITY[lang].get(new, new)
    severity = _SEVERITY[lang].get(facts.severity, facts.severity)
    if lang == "it":
        to = "ad" if new_name.startswith("a") else "a"  # d eufonica: "da media ad alta"
        lines = [f"La priorità del ticket passa da {old_name} {to} {new_name}: la gravità del problema è ora "
                 f"«{severity}» ({what_failed(facts, lang)})."]
        lines.append(f"Nuova scadenza di presa in carico: {when(due_at, lang)} ({iso(due_at)})." if due_at
                     else "Nessuna scadenza di presa in carico.")
    else:
        lines = [f"The ticket's priority changes from {old_name} to {new_name}: the problem's severity is now "
                 f"“{severity}” ({what_failed(facts, lang)})."]
        lines.append(f"New take-charge deadline: {when(due_at, lang)} ({iso(due_at)})." if due_at
                     else "No take-charge deadline.")
    return "\n".join(lines)


def recovery_text(facts: IncidentFacts, language: str, recovered_at: datetime,
                  solve_after: datetime | None) -> str:
    """The resolution note: what recovered, when, how long it lasted, and when the ticket will be solved."""
    lang = _lang(language)
    # timestamps, not aware subtraction: two Europe/Rome times subtract as wall clocks across a DST change
    lasted = duration_words(recovered_at.timestamp() - facts.opened_at.timestamp(), lang)
    what = what_failed(facts, lang)
    if lang == "it":
        lines = [f"Il problema è rientrato {when(recovered_at, lang)}: Custode non rileva più che {what}.",
                 f"È durato {lasted} (era iniziato {when(facts.opened_at, lang)})."]
        if solve_after:
            lines.append(f"Il ticket sarà segnato come risolto {when(solve_after, lang)} se il problema non "
                         "si ripresenta.")
    else:
        lines = [f"The problem recovered on {when(recovered_at, lang)}: Custode no longer sees that {what}.",
                 f"It lasted {lasted} (it began on {when(facts.opened_at, lang)})."]
        if solve_after:
            lines.append(f"The ticket will be marked solved on {when(solve_after, lang)} unless the problem "
                         "returns.")
    return "\n".join(lines)


def flap_text(facts: IncidentFacts, language: str, recovered_at: datetime, times: int) -> str:
    """The problem came back soon after recovering: the ticket stays open."""
    lang = _lang(language)
    what = what_failed(facts, lang)
    if lang == "it":
        count = "una volta" if times == 1 else f"{times} volte"
        return (f"Il problema si è ripresentato poco dopo essere rientrato ({when(recovered_at, lang)}): {what}.\n"
                f"È successo {count}; il ticket resta aperto.")
    count = "once" if times == 1 else f"{times} times"
    return (f"The problem came back soon after recovering (on {when(recovered_at, lang)}): {what}.\n"
            f"This has happened {count}; the ticket stays open.")


def _warranty_words(working_days: int | float | str, lang: str) -> str:
    """'10 giorni lavorativi' / '10 working days'; a warranty already in words is kept as it is."""
    if isinstance(working_days, str):
        return working_days
    amount = number(working_days, lang)
    if lang == "it":
        return f"{amount} giorno lavorativo" if working_days == 1 else f"{amount} giorni lavorativi"
    return f"{amount} working day" if working_days == 1 else f"{amount} working days"


def _of_day(moment: datetime) -> str:
    """'del 23 novembre 2026 alle 9:00', 'dell'8 …', 'del 1º …': the date after "dalla risoluzione"."""
    local = moment.astimezone(ROME) if moment.tzinfo else moment.replace(tzinfo=ROME)
    preposition = "dell'" if local.day in (8, 11) else "del "  # elision before "otto", "undici"
    return preposition + when(local, "it").split(" ", 1)[1]  # when() without its weekday


def reopen_text(facts: IncidentFacts, language: str, resolved_at: datetime, working_days: int | float | str) -> str:
    """The same failure back within the warranty after the ticket was solved: the ticket is reopened.

    The contract warrants an intervention for a time after its resolution (10 working days), so the
    referent must read that this is the same case coming back, not a new problem. ``working_days`` is
    that warranty: a number of working days, or the warranty already in words (the planner passes the
    service-level table's ``warranty`` as :meth:`Target.describe` writes it, which may be in hours).
    """
    lang = _lang(language)
    what = what_failed(facts, lang)
    warranty = _warranty_words(working_days, lang)
    if lang == "it":
        return (f"Il problema si è ripresentato entro la garanzia di {warranty} dalla risoluzione "
                f"{_of_day(resolved_at)}: il ticket viene riaperto.\n"
                f"Di nuovo presente da {when(facts.opened_at, lang)}: {what}.")
    return (f"The problem came back within the warranty of {warranty} from its resolution on "
            f"{when(resolved_at, lang)}: the ticket is reopened.\n"
            f"Back since {when(facts.opened_at, lang)}: {what}.")
