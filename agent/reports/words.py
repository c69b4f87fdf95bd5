"""The report's fixed words in Italian and English, and how figures are written in each.

The reader is a comune's IT referent or secretary, not a sysadmin: every
heading, label and sentence the renderers print comes from here, so the two
languages stay in step (a key missing from one is a ``KeyError`` in the
tests, not an English word in an Italian report) and the builder's records
carry no wording of their own. Numbers follow the language's convention
(``99,5%`` and ``1.234`` in Italian, ``99.5%`` and ``1,234`` in English);
times are Europe/Rome with their UTC offset written out, because the report
is evidence under a contract and "09:30" alone does not say which zone.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from custode.agent.calendar_words import MONTH_NAMES
from custode.agent.clock import ROME
from custode.agent.table import human_age

Language = Literal["it", "en"]

MONTHS = MONTH_NAMES

WORDS: dict[str, dict[str, str]] = {
    "it": {
        "kind.quarterly": "Rapporto trimestrale", "kind.yearly": "Rapporto annuale",
        "file.quarterly": "rapporto-trimestrale", "file.yearly": "rapporto-annuale",
        "period.quarter": "{n}° trimestre {year}", "period.year": "Anno {year}",
        "period.span": "dal {start} al {end}",
        "generated": "Generato il {when}", "provider": "A cura di {name}",
        "page": "Pagina", "of": "di",
        "toc": "Indice",
        "summary": "In sintesi", "summary.intro": "Lo stato dei servizi nel periodo, area per area.",
        "empty": "Nel periodo non è stato registrato alcun dato per questo comune: nessun report di backup, "
                 "nessuna misura dei server, nessuna finestra di aggiornamento, nessun ticket. Se il servizio "
                 "era attivo, il fornitore deve verificarne la raccolta dei dati.",
        "not_bought": "Questo servizio non è compreso nel contratto del comune: la sezione non riporta dati.",
        "no_data": "Nessun dato nel periodo.",
        "light.green": "Regolare", "light.yellow": "Attenzione", "light.red": "Problemi",
        "light.none": "Non valutato",
        "area.backups": "Backup", "area.availability": "Disponibilità dei server",
        "area.security": "Sicurezza", "area.service_levels": "Livelli di servizio",
        "area.updates": "Aggiornamenti degli applicativi", "area.capacity": "Capacità",
        # summary sentences
        "s.backups": "Job di backup: {jobs}. Esecuzioni previste: {due}; riuscite {success}, con avvisi "
                     "{warning}, fallite {failure}, senza report {missing}.",
        "s.restore": "Test di ripristino superati: {passed} su {tests}.",
        "s.restore_none": "Nessun test di ripristino nel periodo.",
        "s.availability": "Disponibilità media: {avg} (server: {servers}). Interruzioni: {outages}{longest}.",
        "s.longest": "; la più lunga: {duration} ({host})",
        "s.security": "Sistemi operativi non più supportati: {unsupported}. Aggiornamenti di sicurezza in "
                      "attesa: {pending}. Firme antivirus più vecchie: {age}.",
        "s.security_noav": "Sistemi operativi non più supportati: {unsupported}. Aggiornamenti di sicurezza in "
                           "attesa: {pending}.",
        "s.service_levels": "Ticket aperti: {opened}; presi in carico entro i tempi: {within} su {decided} "
                            "({share}).",
        "s.service_levels_none": "Nessun ticket nel periodo.",
        "s.updates": "Finestre di aggiornamento: {windows}; riuscite {succeeded}, saltate {skipped}, fallite o "
                     "annullate {failed}.",
        "s.capacity_full": "Dischi che si riempiranno al ritmo attuale: {count}; il primo: {host} {mount}, "
                           "verso il {date}.",
        "s.capacity_ok": "Nessun disco si riempie al ritmo attuale; occupazione massima: {peak}.",
        "s.none": "Nessun dato.",
        # sections
        "sec.backups": "Backup", "sec.availability": "Disponibilità", "sec.capacity": "Capacità",
        "sec.security": "Sicurezza", "sec.updates": "Aggiornamenti degli applicativi",
        "sec.tickets": "Ticket e livelli di servizio", "sec.paths": "Cartelle salvate e non protette",
        "sec.glossary": "Glossario", "sec.attachments": "Allegati",
        "backups.intro": "Ogni notte il software di backup invia un report per ogni job. La tabella mostra, "
                         "mese per mese, l'esito di ogni esecuzione prevista; il dettaglio giorno per giorno è "
                         "nell'allegato {file}.",
        "backups.legend": "Legenda:",
        "job": "Job", "software": "Software", "schedule": "Pianificazione", "total": "Totale",
        "o.success": "riuscito", "o.warning": "con avvisi", "o.failure": "fallito", "o.missing": "nessun report",
        "o.not_due": "non previsto",
        "backups.missing": "Notti senza report", "backups.missing.none": "Ogni esecuzione prevista ha inviato "
                                                                        "il suo report.",
        "backups.missing.more": "(+{n}: elenco completo in {file})",
        "backups.failures": "Esecuzioni fallite", "day": "Giorno", "error": "Errore",
        "backups.failures.more": "Esecuzioni fallite o con avvisi non elencate qui: {n} (nell'allegato {file}).",
        "restore": "Test di ripristino", "restore.none": "Nessun test di ripristino nel periodo.",
        "restore.set": "Insieme di backup", "restore.when": "Eseguito", "restore.result": "Esito",
        "restore.files": "File verificati", "restore.snapshot": "Copia del", "restore.certificate": "Certificato",
        "restore.passed": "superato", "restore.failed": "non superato",
        "restore.files_value": "{verified} su {checked}",
        "availability.intro": "Quota delle rilevazioni del periodo in cui il server ha risposto.",
        "server": "Server", "os": "Sistema operativo", "availability": "Disponibilità",
        "days_with_data": "Giorni con dati", "outages": "Interruzioni", "downtime": "Fuori servizio",
        "outages.longest": "Le interruzioni più lunghe", "outages.none": "Nessuna interruzione nel periodo.",
        "outage.start": "Inizio", "outage.end": "Fine", "outage.duration": "Durata", "outage.what": "Descrizione",
        "outage.ongoing": "ancora in corso",
        "outages.more": "Tutte le interruzioni ({n}) sono nell'allegato {file}.",
        "capacity.intro": "Uso medio e di picco di CPU e memoria giorno per giorno, e riempimento dei dischi "
                          "con la data in cui, al ritmo del periodo, saranno pieni.",
        "capacity.filling": "Dischi che si riempiono", "capacity.filling.none": "Nessun disco si riempie al "
                                                                                "ritmo del periodo.",
        "cpu": "CPU", "memory": "Memoria", "average": "media", "peak": "picco",
        "disk": "Disco", "size": "Dimensione", "used_start": "Occupato a inizio periodo",
        "used_end": "Occupato a fine periodo", "used_max": "Massimo", "full_by": "Pieno verso il",
        "never_full": "non si riempie", "chart.cpu_memory": "CPU e memoria (%)", "chart.disks": "Dischi (% occupato)",
        "chart.full": "pieno il {date}",
        "security.intro": "Antivirus, aggiornamenti del sistema operativo e sistemi non più supportati dal "
                          "produttore.",
        "antivirus": "Antivirus", "signatures": "Età delle firme", "pending": "Aggiornamenti in attesa (di sicurezza)",
        "last_installed": "Ultimo aggiornamento",
        "supported": "Supportato", "yes": "sì", "no": "no", "unknown": "non noto", "event_errors": "Errori nei log",
        "hardware": "Hardware", "hardware.ok": "nessun problema segnalato",
        "hardware.disk_days": "dischi con problemi di salute in {days}",
        "support.ended": "supporto terminato il {date}", "support.until": "supportato fino al {date}",
        "antivirus.inactive": "non attivo", "antivirus.days_inactive": "non attivo in {days} del periodo",
        "w.urgent": "urgente, fuori finestra",
        "unsupported.title": "Sistemi non più supportati",
        "unsupported.text": "Il produttore non rilascia più aggiornamenti di sicurezza per: {hosts}. Vanno "
                            "sostituiti o aggiornati.",
        "unsupported.none": "Tutti i sistemi operativi sono supportati dal produttore.",
        "updates.intro": "Le finestre settimanali in cui il fornitore aggiorna gli applicativi del comune.",
        "application": "Applicativo", "window": "Finestra", "windows": "Finestre", "when": "Quando",
        "outcome": "Esito", "reason": "Motivo", "announced": "Annunciata",
        "w.succeeded": "riuscita", "w.rolled_back": "annullata (ripristinata)", "w.failed": "fallita",
        "w.interrupted": "interrotta", "w.skipped": "saltata", "w.not_run": "non eseguita",
        "updates.exceptions": "Finestre non riuscite o saltate",
        "updates.exceptions.none": "Ogni finestra prevista è stata eseguita con successo.",
        "updates.none": "Nessuna finestra di aggiornamento nel periodo.",
        "tickets.intro": "Ogni richiesta, guasto o allarme automatico è un ticket. Per ogni livello del contratto: "
                         "quanti ticket sono stati presi in carico e risolti entro i tempi previsti.",
        "contract": "Contratto", "level": "Livello", "opened": "Aperti", "take_charge": "Presa in carico",
        "resolved": "Risoluzione", "still_open": "Ancora aperti", "target": "Obiettivo", "met": "Rispettato",
        "within_of": "{within} su {total}", "penalty": "Penali",
        "tickets.list": "Ticket fuori dai tempi o ancora aperti", "tickets.list.none": "Tutti i ticket sono stati "
                                                                                      "gestiti entro i tempi.",
        "tickets.more": "L'elenco completo dei ticket ({n}) è nell'allegato {file}.",
        "ticket": "Ticket", "subject": "Oggetto", "opened_at": "Aperto", "taken_at": "Preso in carico",
        "resolved_at": "Risolto", "within": "Nei tempi", "tickets.none": "Nessun ticket nel periodo.",
        "paths.intro": "Le cartelle dei server e se sono comprese in un backup: una cartella non protetta "
                       "andrebbe persa in caso di guasto.",
        "paths.count": "Cartelle salvate: {protected}; non protette: {unprotected}.",
        "path": "Cartella", "protected": "Protetta", "unprotected.title": "Cartelle non protette",
        "protected.title": "Cartelle salvate",
        "paths.more": "Cartelle salvate non elencate qui: {n} (nell'allegato {file}).",
        "paths.none": "Nessun elenco delle cartelle nel periodo.",
        "attachments.intro": "I dati completi del rapporto sono nei file CSV allegati (si aprono con un foglio "
                             "di calcolo):",
        "glossary.intro": "Le parole tecniche usate nel rapporto.",
        "duration.day": "giorno", "duration.days": "giorni",
        # network devices and service probes
        "area.network": "Rete e servizi online", "sec.network": "Rete e servizi online",
        "s.network_devices": "Dispositivi di rete: {devices}; disponibilità più bassa {lowest} ({name}).",
        "s.network_probes": "Servizi controllati: {probes}; disponibilità più bassa {lowest} ({name}).",
        "s.network_events": "Interruzioni dei dispositivi: {outages}; interfacce sorvegliate cadute: {interfaces}; "
                            "eventi dei gruppi di continuità: {ups}; interruzioni dei servizi: {downs}.",
        "s.network_cert": "Primo certificato in scadenza: {name}, {when}.",
        "s.network_none": "Nessun dispositivo di rete o servizio controllato registrato nel periodo.",
        "cert.in": "tra {days} dalla fine del periodo", "cert.expired_ago": "scaduto da {days}",
        "cert.expired_now": "scaduto",
        "network.intro": "I dispositivi di rete del comune (switch, router, firewall, gruppi di continuità), "
                         "interrogati via SNMP, e i servizi controllati dall'esterno (portali HTTPS, piattaforme in "
                         "hosting, il collegamento a Internet). Il dettaglio giorno per giorno è nell'allegato {file}.",
        "network.devices": "Dispositivi di rete", "network.devices.none": "Nessun dispositivo di rete nel periodo.",
        "network.probes": "Servizi controllati", "network.probes.none": "Nessun servizio controllato nel periodo.",
        "network.events": "Interruzioni e anomalie",
        "network.events.none": "Nessuna interruzione, interfaccia caduta o evento dei gruppi di continuità.",
        "network.events.more": "Tutti gli eventi ({n}) sono nell'allegato {file}.",
        "device": "Dispositivo", "role": "Ruolo", "site": "Sede", "description": "Descrizione",
        "reboots": "Riavvii", "interface_downs": "Interfacce cadute", "ups_events": "Gruppo di continuità",
        "longest": "la più lunga", "probe": "Servizio", "probe.what": "Indirizzo controllato",
        "latency": "Tempo di risposta (medio / mediano)", "slow_days": "Giorni lenti",
        "certificate": "Certificato", "downs": "Interruzioni", "subject.what": "Dispositivo o servizio",
        "ev.outage": "dispositivo non raggiungibile", "ev.interface_down": "interfaccia {what} non attiva",
        "ev.ups": "a batteria (mancanza di corrente)", "ev.ups_low": "a batteria, batteria scarica",
        "ev.probe_down": "servizio non raggiungibile", "common_error": "errore più frequente: {error} ({n})",
        "events_count": "{n} ({duration})",
    },
    "en": {
        "kind.quarterly": "Quarterly report", "kind.yearly": "Yearly report",
        "file.quarterly": "quarterly-report", "file.yearly": "yearly-report",
        "period.quarter": "Q{n} {year}", "period.year": "Year {year}",
        "period.span": "{start} to {end}",
        "generated": "Generated on {when}", "provider": "Prepared by {name}",
        "page": "Page", "of": "of",
        "toc": "Contents",
        "summary": "Summary", "summary.intro": "The state of the services over the period, area by area.",
        "empty": "Nothing was recorded for this comune in the period: no backup report, no server measurement, "
                 "no update window, no ticket. If the service was running, the provider must check its data "
                 "collection.",
        "not_bought": "This service is not part of the comune's contract: the section has no data.",
        "no_data": "No data in the period.",
        "light.green": "Good", "light.yellow": "Watch", "light.red": "Problem", "light.none": "Not assessed",
        "area.backups": "Backups", "area.availability": "Server availability", "area.security": "Security",
        "area.service_levels": "Service levels", "area.updates": "Application updates",
        "area.capacity": "Capacity",
        "s.backups": "Backup jobs: {jobs}. Runs due: {due}; succeeded {success}, with warnings {warning}, "
                     "failed {failure}, without a report {missing}.",
        "s.restore": "Restore tests passed: {passed} of {tests}.",
        "s.restore_none": "No restore test in the period.",
        "s.availability": "Average availability: {avg} (servers: {servers}). Outages: {outages}{longest}.",
        "s.longest": "; the longest: {duration} ({host})",
        "s.security": "Unsupported operating systems: {unsupported}. Security updates pending: {pending}. "
                      "Oldest antivirus signatures: {age}.",
        "s.security_noav": "Unsupported operating systems: {unsupported}. Security updates pending: {pending}.",
        "s.service_levels": "Tickets opened: {opened}; taken in charge in time: {within} of {decided} ({share}).",
        "s.service_levels_none": "No ticket in the period.",
        "s.updates": "Update windows: {windows}; succeeded {succeeded}, skipped {skipped}, failed or rolled "
                     "back {failed}.",
        "s.capacity_full": "Disks that will fill at the current rate: {count}; the first: {host} {mount}, "
                           "around {date}.",
        "s.capacity_ok": "No disk fills at the current rate; highest use: {peak}.",
        "s.none": "No data.",
        "sec.backups": "Backups", "sec.availability": "Availability", "sec.capacity": "Capacity",
        "sec.security": "Security", "sec.updates": "Application updates",
        "sec.tickets": "Tickets and service levels", "sec.paths": "Backed-up and unprotected folders",
        "sec.glossary": "Glossary", "sec.attachments": "Attachments",
        "backups.intro": "Every night the backup software mails a report for each job. The table shows, month "
                         "by month, the outcome of every run that was due; the day-by-day detail is in the "
                         "attachment {file}.",
        "backups.legend": "Legend:",
        "job": "Job", "software": "Software", "schedule": "Schedule", "total": "Total",
        "o.success": "succeeded", "o.warning": "with warnings", "o.failure": "failed", "o.missing": "no report",
        "o.not_due": "not due",
        "backups.missing": "Nights without a report", "backups.missing.none": "Every run that was due sent its "
                                                                              "report.",
        "backups.missing.more": "(+{n}: the full list is in {file})",
        "backups.failures": "Failed runs", "day": "Day", "error": "Error",
        "backups.failures.more": "Failed runs or runs with warnings not listed here: {n} (in the attachment "
                                 "{file}).",
        "restore": "Restore tests", "restore.none": "No restore test in the period.",
        "restore.set": "Backup set", "restore.when": "Run", "restore.result": "Result",
        "restore.files": "Files verified", "restore.snapshot": "Copy of", "restore.certificate": "Certificate",
        "restore.passed": "passed", "restore.failed": "failed", "restore.files_value": "{verified} of {checked}",
        "availability.intro": "Share of the period's checks in which the server answered.",
        "server": "Server", "os": "Operating system", "availability": "Availability",
        "days_with_data": "Days with data", "outages": "Outages", "downtime": "Down for",
        "outages.longest": "The longest outages", "outages.none": "No outage in the period.",
        "outage.start": "Start", "outage.end": "End", "outage.duration": "Duration", "outage.what": "Description",
        "outage.ongoing": "still going on",
        "outages.more": "All the outages ({n}) are in the attachment {file}.",
        "capacity.intro": "Average and peak CPU and memory use day by day, and how full the disks are, with the "
                          "date each will be full at the period's rate.",
        "capacity.filling": "Disks that are filling up", "capacity.filling.none": "No disk fills at the "
                                                                                  "period's rate.",
        "cpu": "CPU", "memory": "Memory", "average": "average", "peak": "peak",
        "disk": "Disk", "size": "Size", "used_start": "Used at the start", "used_end": "Used at the end",
        "used_max": "Maximum", "full_by": "Full around", "never_full": "not filling",
        "chart.cpu_memory": "CPU and memory (%)", "chart.disks": "Disks (% used)", "chart.full": "full on {date}",
        "security.intro": "Antivirus, operating system updates and systems their vendor no longer supports.",
        "antivirus": "Antivirus", "signatures": "Signature age", "pending": "Updates pending (security)",
        "last_installed": "Last update",
        "supported": "Supported", "yes": "yes", "no": "no", "unknown": "unknown", "event_errors": "Log errors",
        "hardware": "Hardware", "hardware.ok": "no problem reported",
        "hardware.disk_days": "disk health problems on {days}",
        "support.ended": "support ended on {date}", "support.until": "supported until {date}",
        "antivirus.inactive": "not active", "antivirus.days_inactive": "not active on {days} of the period",
        "w.urgent": "urgent, outside the window",
        "unsupported.title": "Unsupported systems",
        "unsupported.text": "The vendor no longer ships security updates for: {hosts}. They must be replaced or "
                            "upgraded.",
        "unsupported.none": "Every operating system is supported by its vendor.",
        "updates.intro": "The weekly windows in which the provider updates the comune's applications.",
        "application": "Application", "window": "Window", "windows": "Windows", "when": "When",
        "outcome": "Outcome", "reason": "Reason", "announced": "Announced",
        "w.succeeded": "succeeded", "w.rolled_back": "rolled back", "w.failed": "failed",
        "w.interrupted": "interrupted", "w.skipped": "skipped", "w.not_run": "not run",
        "updates.exceptions": "Windows that failed or were skipped",
        "updates.exceptions.none": "Every window that was due ran successfully.",
        "updates.none": "No update window in the period.",
        "tickets.intro": "Every request, fault or automatic alert is a ticket. For each level of the contract: how "
                         "many tickets were taken in charge and resolved within the agreed times.",
        "contract": "Contract", "level": "Level", "opened": "Opened", "take_charge": "Take in charge",
        "resolved": "Resolution", "still_open": "Still open", "target": "Target", "met": "Met",
        "within_of": "{within} of {total}", "penalty": "Penalties",
        "tickets.list": "Tickets out of time or still open", "tickets.list.none": "Every ticket was handled in "
                                                                                  "time.",
        "tickets.more": "The full list of tickets ({n}) is in the attachment {file}.",
        "ticket": "Ticket", "subject": "Subject", "opened_at": "Opened", "taken_at": "Taken in charge",
        "resolved_at": "Resolved", "within": "In time", "tickets.none": "No ticket in the period.",
        "paths.intro": "The servers' folders and whether a backup includes them: an unprotected folder would be "
                       "lost in a failure.",
        "paths.count": "Folders backed up: {protected}; unprotected: {unprotected}.",
        "path": "Folder", "protected": "Protected", "unprotected.title": "Unprotected folders",
        "protected.title": "Backed-up folders",
        "paths.more": "Backed-up folders not listed here: {n} (in the attachment {file}).",
        "paths.none": "No folder list in the period.",
        "attachments.intro": "The report's complete data is in the attached CSV files (they open in a "
                             "spreadsheet):",
        "glossary.intro": "The technical words this report uses.",
        "duration.day": "day", "duration.days": "days",
        # network devices and service probes
        "area.network": "Network and online services", "sec.network": "Network and online services",
        "s.network_devices": "Network devices: {devices}; lowest availability {lowest} ({name}).",
        "s.network_probes": "Services checked: {probes}; lowest availability {lowest} ({name}).",
        "s.network_events": "Device outages: {outages}; watched interfaces down: {interfaces}; UPS events: {ups}; "
                            "service outages: {downs}.",
        "s.network_cert": "First certificate to expire: {name}, {when}.",
        "s.network_none": "No network device or checked service recorded in the period.",
        "cert.in": "{days} after the end of the period", "cert.expired_ago": "expired {days} ago",
        "cert.expired_now": "expired",
        "network.intro": "The comune's network devices (switches, routers, firewalls, UPSes), read over SNMP, and "
                         "the services checked from outside (HTTPS portals, hosted platforms, the Internet link). "
                         "The day-by-day detail is in the attachment {file}.",
        "network.devices": "Network devices", "network.devices.none": "No network device in the period.",
        "network.probes": "Services checked", "network.probes.none": "No service checked in the period.",
        "network.events": "Outages and anomalies",
        "network.events.none": "No outage, interface down or UPS event.",
        "network.events.more": "All the events ({n}) are in the attachment {file}.",
        "device": "Device", "role": "Role", "site": "Site", "description": "Description",
        "reboots": "Restarts", "interface_downs": "Interfaces down", "ups_events": "UPS",
        "longest": "longest", "probe": "Service", "probe.what": "Address checked",
        "latency": "Response time (mean / median)", "slow_days": "Slow days",
        "certificate": "Certificate", "downs": "Outages", "subject.what": "Device or service",
        "ev.outage": "device unreachable", "ev.interface_down": "interface {what} down",
        "ev.ups": "on battery (power cut)", "ev.ups_low": "on battery, battery low",
        "ev.probe_down": "service unreachable", "common_error": "commonest error: {error} ({n})",
        "events_count": "{n} ({duration})",
    },
}

GLOSSARY: dict[str, tuple[tuple[str, str], ...]] = {
    "it": (
        ("Backup", "Copia di sicurezza dei dati, fatta ogni notte, da cui si recuperano i file persi o "
                   "danneggiati."),
        ("Job di backup", "Un'attività di backup pianificata: cosa si copia, dove e quando."),
        ("Report di backup", "L'e-mail che il software di backup invia dopo ogni job con l'esito. Se non arriva, "
                             "non si può sapere se il backup c'è: per questo conta come un problema."),
        ("Test di ripristino", "La prova che da un backup si recuperano davvero i dati: si ripristina un campione "
                               "di file e lo si confronta con l'originale."),
        ("Certificato", "Il documento numerato che attesta l'esito di un test di ripristino."),
        ("Disponibilità", "La quota del tempo in cui un server ha risposto ai controlli (uptime)."),
        ("Interruzione", "Un periodo in cui un server non ha risposto."),
        ("Ticket", "La pratica, con un numero progressivo, aperta per ogni richiesta, guasto o allarme."),
        ("SLA (livello di servizio)", "I tempi massimi che il contratto fissa per ogni gravità del problema."),
        ("Presa in carico", "Il momento in cui un tecnico del fornitore prende in mano il ticket."),
        ("Risoluzione", "Il momento in cui il problema del ticket è risolto."),
        ("Finestra di aggiornamento", "L'orario fisso in cui il fornitore aggiorna un applicativo, fuori "
                                      "dall'orario d'ufficio."),
        ("Annullata (rollback)", "Un aggiornamento non riuscito, tolto riportando l'applicativo alla versione "
                                 "precedente."),
        ("Firme antivirus", "L'elenco dei virus conosciuti che l'antivirus scarica ogni giorno: più sono vecchie, "
                            "meno protegge."),
        ("Aggiornamenti di sicurezza", "Le correzioni del sistema operativo che chiudono falle note."),
        ("Sistema non supportato", "Un sistema operativo per cui il produttore non rilascia più correzioni."),
        ("Cartella non protetta", "Una cartella che nessun backup copia."),
        ("Media e picco", "La media è il valore tipico della giornata; il picco il più alto."),
    ),
    "en": (
        ("Backup", "A safety copy of the data, made every night, from which lost or damaged files are recovered."),
        ("Backup job", "One scheduled backup task: what is copied, where and when."),
        ("Backup report", "The e-mail the backup software sends after each job with its outcome. If it does not "
                          "arrive, nobody can tell whether the backup exists: so it counts as a problem."),
        ("Restore test", "The proof that data really comes back from a backup: a sample of files is restored and "
                         "compared with the originals."),
        ("Certificate", "The numbered document stating a restore test's outcome."),
        ("Availability", "The share of time in which a server answered the checks (uptime)."),
        ("Outage", "A period in which a server did not answer."),
        ("Ticket", "The case, with a progressive number, opened for every request, fault or alert."),
        ("SLA (service level)", "The maximum times the contract sets for each severity of problem."),
        ("Take in charge", "When a technician of the provider takes the ticket in hand."),
        ("Resolution", "When the ticket's problem is solved."),
        ("Update window", "The fixed time, outside office hours, in which the provider updates an application."),
        ("Rolled back", "A failed update, removed by putting the application back to its previous version."),
        ("Antivirus signatures", "The list of known viruses the antivirus downloads every day: the older, the less "
                                 "it protects."),
        ("Security updates", "Operating system fixes that close known holes."),
        ("Unsupported system", "An operating system for which the vendor no longer ships fixes."),
        ("Unprotected folder", "A folder no backup copies."),
        ("Average and peak", "The average is the day's typical value; the peak its highest."),
    ),
}


NETWORK_GLOSSARY: dict[str, tuple[tuple[str, str], ...]] = {
    "it": (
        ("SNMP", "Il protocollo con cui si leggono lo stato e il traffico di switch, router, firewall e gruppi di "
                 "continuità."),
        ("Interfaccia", "Una porta di un dispositivo di rete (un cavo, una fibra, il collegamento a Internet)."),
        ("Gruppo di continuità (UPS)", "La batteria che tiene accesi server e apparati quando manca la corrente."),
        ("Servizio controllato", "Un sito o una piattaforma che Custode prova a raggiungere a intervalli regolari, "
                                 "come farebbe un cittadino."),
        ("Certificato HTTPS", "Il documento elettronico che rende sicuro un sito: scaduto, i browser lo "
                              "bloccano."),
        ("Tempo di risposta", "Quanto impiega un servizio a rispondere; il mediano è il valore del giorno tipico."),
    ),
    "en": (
        ("SNMP", "The protocol that reads the state and traffic of switches, routers, firewalls and UPSes."),
        ("Interface", "A port of a network device (a cable, a fibre, the Internet link)."),
        ("UPS", "The battery that keeps servers and devices on when the power fails."),
        ("Checked service", "A site or platform Custode tries to reach at regular intervals, as a citizen would."),
        ("HTTPS certificate", "The electronic document that makes a site secure: once expired, browsers block "
                              "it."),
        ("Response time", "How long a service takes to answer; the median is the typical day's value."),
    ),
}
"""Added to the glossary of a report that has a network section."""


class Words:
    """The fixed words and the number, date and size formats of one language."""

    def __init__(self, language: str) -> None:
        self.language: Language = "en" if language == "en" else "it"
        self._words = WORDS[self.language]

    def __call__(self, key: str, **values: object) -> str:
        text = self._words[key]
        return text.format(**values) if values else text

    # --- numbers -------------------------------------------------------------------------------

    def number(self, value: float | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        text = f"{value:,.{digits}f}"
        if self.language == "it":
            text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return text

    def percent(self, value: float | None, digits: int = 1) -> str:
        """``99,5%``; ``–`` for no data (never ``0%``, which would be a figure)."""
        return "–" if value is None else f"{self.number(value, digits)}%"

    def size(self, value: int | None) -> str:
        """Decimal units (GB, TB), as disks are sold and as a non-sysadmin reads them."""
        if value is None:
            return "–"
        amount = float(value)
        for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
            if amount < 1000 or unit == "PB":
                return f"{self.number(amount, 0 if unit == 'B' or amount >= 100 else 1)} {unit}"
            amount /= 1000
        return f"{self.number(amount, 1)} PB"  # pragma: no cover - the loop returns

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "–"
        return human_age(seconds, self("duration.day"), self("duration.days"))

    def latency(self, seconds: float | None) -> str:
        """``180 ms`` under a second, else ``1,5 s``."""
        if seconds is None:
            return "–"
        return f"{self.number(seconds * 1000)} ms" if seconds < 1 else f"{self.number(seconds, 1)} s"

    def days_age(self, days: float | None) -> str:
        """An age given in days: ``< 1 h``, ``6 h`` under a day, else ``2 giorni 4 h``."""
        if days is None:
            return "–"
        return "< 1 h" if days * 86400 < 3600 else self.duration(days * 86400)

    def day_count(self, count: int) -> str:
        """``1 giorno``, ``9 giorni``: a count of days with the word that agrees with it."""
        return f"{self.number(count)} {self('duration.day') if count == 1 else self('duration.days')}"

    # --- dates and times -----------------------------------------------------------------------

    def month(self, number: int) -> str:
        return MONTHS[self.language][number - 1]

    def month_short(self, number: int) -> str:
        return self.month(number)[:3]

    def long_date(self, day: date | None) -> str:
        """``1 ottobre 2026`` / ``1 October 2026``."""
        return "–" if day is None else f"{day.day} {self.month(day.month)} {day.year}"

    def short_date(self, day: date | None) -> str:
        """``4 ott`` / ``4 Oct``: inside a period whose year the heading already says."""
        return "–" if day is None else f"{day.day} {self.month_short(day.month)}"

    def moment(self, when: datetime | None) -> str:
        """``3 ott 2026 02:31``: a time in a table, Europe/Rome (the offset is in the report's heading)."""
        if when is None:
            return "–"
        local = _rome(when)
        return f"{local.day} {self.month_short(local.month)} {local.year} {local:%H:%M}"

    def moment_full(self, when: datetime) -> str:
        """``7 gennaio 2027, 09:30 (UTC+01:00)``: the generation time, with its offset."""
        local = _rome(when)
        offset = local.isoformat(timespec="minutes")[-6:]
        at = "alle" if self.language == "it" else "at"
        return f"{self.long_date(local.date())} {at} {local:%H:%M} (UTC{offset})"

    def yes_no(self, value: bool | None) -> str:
        return self("unknown") if value is None else self("yes" if value else "no")


def _rome(when: datetime) -> datetime:
    return when.replace(tzinfo=ROME) if when.tzinfo is None else when.astimezone(ROME)
