"""The ticket texts a comune's referent reads: facts present, correct Italian, no English in Italian texts."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from custode.agent.calendar import ROME
from custode.agent.checks import judge_cpu, judge_filesystem, judge_memory, service_summary
from custode.agent.config import ChecksSection
from custode.agent.incidents import Incident
from custode.agent.tickets.text import (
    SUBJECT_MAX,
    IncidentFacts,
    duration_words,
    flap_text,
    followup_text,
    is_known_check,
    opening_text,
    priority_text,
    recovery_text,
    ticket_subject,
    when,
)

OPENED = datetime(2026, 12, 24, 17, 0, tzinfo=ROME)
DUE = datetime(2026, 12, 28, 17, 0, tzinfo=ROME)
CHECKS = ChecksSection()


def facts(check: str, target: str, summary: str, details: dict, severity: str = "critical",
          occurrences: int = 1, tenant_name: str = "Comune di Crema") -> IncidentFacts:
    return IncidentFacts(key=f"crema/{check}/{target}", tenant="crema", tenant_name=tenant_name, check=check,
                         target=target, severity=severity, summary=summary, details=details, opened_at=OPENED,
                         occurrences=occurrences)


def _disk() -> IncidentFacts:
    severity, summary, details = judge_filesystem(CHECKS.filesystem, "srv-anagrafe", "/var", 2.1e9, 50e9)
    return facts("filesystem", "srv-anagrafe:/var", summary, {"host": "srv-anagrafe", **details}, severity, 3)


def _known() -> list[IncidentFacts]:
    """One incident per known check, with details as the checks write them (summaries are English)."""
    memory = judge_memory(CHECKS.memory, "srv-protocollo", 0.3e9, 16e9)
    cpu = judge_cpu(CHECKS.cpu, "srv-protocollo", 0.99)
    due, deadline = datetime(2026, 12, 24, 2, 0, tzinfo=ROME), datetime(2026, 12, 24, 8, 0, tzinfo=ROME)
    return [
        _disk(),
        facts("memory", "srv-protocollo:memory", memory[1], {"host": "srv-protocollo", **memory[2]}, memory[0]),
        facts("cpu", "srv-protocollo:cpu", cpu[1], {"host": "srv-protocollo", **cpu[2]}, cpu[0]),
        facts("services", "srv-protocollo:postgresql", service_summary("srv-protocollo", "postgresql", "systemd"),
              {"host": "srv-protocollo", "service": "postgresql", "manager": "systemd"}),
        facts("reachability", "srv-tributi:reachability", "host srv-tributi could not be polled 3 times in a row",
              {"host": "srv-tributi", "failures": 3, "transport": "ssh", "address": "10.0.0.5",
               "error": "timed out"}),
        facts("backup", "nas-notte", "backup 'nas-notte': no report for the run due 2026-12-24 01:00 UTC",
              {"state": "missing", "due": due.timestamp(), "deadline": deadline.timestamp(), "software": "veeam",
               "report": None}),
        facts("backup", "nas-notte", "backup 'nas-notte' failed (veeam, report of 2026-12-24 01:30 UTC)",
              {"state": "failed", "software": "veeam", "report": {"id": 4, "at": due.timestamp()}}),
        facts("update", "gestionale-notte", "update of gestionale (gestionale-notte) rolled back: the check failed",
              {"run_id": 12, "status": "rolled_back"}),
        facts("os_updates", "srv-tributi:updates", "no update installed on srv-tributi for 90 days",
              {"host": "srv-tributi", "pending": 14, "security": 3,
               "last_installed": datetime(2026, 9, 1, 10, 0, tzinfo=ROME).timestamp()}),
        facts("antivirus", "srv-tributi:antivirus", "no active antivirus on srv-tributi",
              {"host": "srv-tributi", "products": ["Defender"]}),
        facts("disk_health", "srv-tributi:disk/sda", "disk sda on srv-tributi reports FAILING: replace it",
              {"host": "srv-tributi", "device": "sda"}),
        facts("restore_test", "anagrafe", "restore test of anagrafe FAILED, the backup cannot be trusted",
              {"certificate": "c1", "mismatches": ["/dati/a.db", "/dati/b.db"], "errors": []}),
        facts("backup_coverage", "anagrafe", "2 paths on the data volumes are not in backup set anagrafe",
              {"unprotected": ["/dati/nuovi"]}, "warning"),
    ]


ENGLISH = {"the", "is", "has", "have", "failed", "free", "of", "and", "since", "not", "with", "for", "on",
           "by", "from", "at", "was", "could", "be", "no", "run", "due", "days", "hours", "priority",
           "severity", "critical", "warning", "check", "target", "where", "what", "problem", "update",
           "updates", "monday", "thursday", "december", "january", "already", "checked", "found", "polled",
           "times", "row", "trusted", "pending", "memory", "available", "busy", "services", "service", "running"}


def english_words(text: str) -> set[str]:
    """English words outside the reference line (the incident key is an identifier, not prose)."""
    prose = "\n".join(line for line in text.splitlines() if not line.startswith("Riferimento Custode:"))
    return set(re.findall(r"[a-zà-ù]+", prose.lower())) & ENGLISH


def test_opening_text_in_italian_has_every_fact():
    text = opening_text(_disk(), "it", "high", DUE, previous_ref="123", sla_hours=8)
    for expected in ("Comune di Crema", "Dove: server srv-anagrafe, controllo «spazio su disco», oggetto «/var»",
                     "giovedì 24 dicembre 2026 alle 17:00",              # since when
                     "Gravità: critica", "Occorrenze finora: 3",
                     "4,2%",                                              # decimal comma
                     "Priorità: alta", "lunedì 28 dicembre 2026 alle 17:00", "2026-12-28T17:00:00+01:00",
                     "8 ore lavorative", "prosegue il ticket #123", "chiuso mentre il problema era ancora presente",
                     "crema/filesystem/srv-anagrafe:/var"):
        assert expected in text, (expected, text)
    assert not english_words(text), english_words(text)


def test_opening_text_in_english_has_every_fact():
    text = opening_text(_disk(), "en", "medium", DUE, previous_ref="123", sla_hours=12)
    for expected in ("Comune di Crema", "Where: server srv-anagrafe, check “disk space”, target “/var”",
                     "Thursday 24 December 2026 at 17:00",
                     "Severity: critical", "4.2%", "Priority: medium", "Monday 28 December 2026 at 17:00",
                     "2026-12-28T17:00:00+01:00", "12 working hours", "continues ticket #123",
                     "closed while the problem persisted"):
        assert expected in text, (expected, text)
    assert "giovedì" not in text and "Priorità" not in text


def test_without_a_previous_ticket_or_a_due_time():
    it = opening_text(_disk(), "it", "low", None)
    assert "prosegue" not in it and "Priorità: bassa" in it and "Nessuna scadenza" in it
    en = opening_text(_disk(), "en", "low", None, previous_ref="<abc@custode>")
    assert "continues ticket <abc@custode>" in en, "a Message-ID reference is shown as it is"


@pytest.mark.parametrize("incident", _known(), ids=lambda f: f"{f.check}-{f.details.get('state', '')}")
def test_no_english_leaks_into_italian_texts_of_known_checks(incident):
    assert is_known_check(incident)
    recovered = datetime(2026, 12, 28, 9, 12, tzinfo=ROME)
    texts = [ticket_subject(incident, "it"), opening_text(incident, "it", "high", DUE, sla_hours=8),
             followup_text(incident, "it", 2, incident.summary, recovered),
             priority_text(incident, "it", "medium", "high", DUE),
             recovery_text(incident, "it", recovered, DUE), flap_text(incident, "it", recovered, 2)]
    for text in texts:
        assert incident.summary not in text
        assert not english_words(text), (english_words(text), text)
    assert "Custode" in texts[1] and "verificato" in texts[1]
    english = opening_text(incident, "en", "high", DUE)
    assert english_words(english), "the English text is English"


def test_backup_missing_says_when_the_report_was_due_in_italian():
    missing = _known()[5]
    text = opening_text(missing, "it", "high", DUE)
    assert "il backup «nas-notte» non ha inviato il report atteso" in text
    assert "prevista giovedì 24 dicembre 2026 alle 2:00" in text
    assert "entro giovedì 24 dicembre 2026 alle 8:00" in text
    assert "server nas-notte" not in text, "a backup job is not a server"
    assert "nas-notte" in ticket_subject(missing, "it")


def test_tried_list_replaces_the_known_sentence():
    incident = facts("reachability", "srv-tributi:reachability", "down",
                     {"tried": ["ping a 10.0.0.5: nessuna risposta", "riavvio del servizio SSH: non riuscito"]})
    text = opening_text(incident, "it", "high", DUE)
    assert "- Ping a 10.0.0.5: nessuna risposta." in text and "- Riavvio del servizio SSH: non riuscito." in text
    assert "volte di seguito" not in text


def test_unknown_check_falls_back_to_its_summary():
    incident = facts("printer_toner", "stampante-1:toner", "toner at 2%", {})
    assert not is_known_check(incident)
    text = opening_text(incident, "it", "low", DUE)
    assert "«printer_toner»" in text and "toner at 2%" in text
    assert "Ultimo esito del controllo: toner at 1%" in followup_text(incident, "it", 1, "toner at 1%", OPENED)


@pytest.mark.parametrize("language", ["it", "en"])
def test_subject_is_short_and_names_tenant_host_and_failure(language):
    subject = ticket_subject(_disk(), language)
    assert subject.startswith("Comune di Crema") and "srv-anagrafe" in subject and "/var" in subject
    assert len(subject) <= SUBJECT_MAX and "\n" not in subject
    long_one = facts("services", "srv-" + "x" * 120 + ":" + "servizio-" * 20, "down",
                     {"service": "servizio-" * 20}, tenant_name="Unione dei Comuni " + "della Bassa " * 10)
    subject = ticket_subject(long_one, language)
    assert len(subject) <= SUBJECT_MAX and subject.endswith("…")
    unknown = facts("printer_toner", "stampante-1:toner", "toner at 2%", {})
    assert "stampante-1" in ticket_subject(unknown, language)


def test_italian_dates_use_italian_names_and_24_hour_times():
    assert when(datetime(2026, 12, 28, 17, 0, tzinfo=ROME), "it") == "lunedì 28 dicembre 2026 alle 17:00"
    assert when(datetime(2027, 1, 1, 1, 5, tzinfo=ROME), "it") == "venerdì 1º gennaio 2027 all'1:05"
    assert when(datetime(2026, 8, 15, 0, 30, tzinfo=ROME), "it") == "sabato 15 agosto 2026 alle 0:30"
    assert when(datetime(2026, 6, 10, 21, 45, tzinfo=ROME), "it") == "mercoledì 10 giugno 2026 alle 21:45"
    # a UTC time is told in Rome time
    assert when(datetime.fromisoformat("2026-07-01T12:00+00:00"), "it") == "mercoledì 1º luglio 2026 alle 14:00"
    assert when(datetime(2026, 12, 28, 9, 5, tzinfo=ROME), "en") == "Monday 28 December 2026 at 09:05"
    weekdays = {when(datetime(2026, 11, d, 12, 0, tzinfo=ROME), "it").split()[0] for d in range(16, 23)}
    assert weekdays == {"lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"}
    months = [when(datetime(2026, m, 3, 12, 0, tzinfo=ROME), "it").split()[2] for m in range(1, 13)]
    assert months == ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
                      "settembre", "ottobre", "novembre", "dicembre"]


def test_durations_in_words():
    assert duration_words(3 * 86400 + 16 * 3600 + 12 * 60, "it") == "3 giorni, 16 ore e 12 minuti"
    assert duration_words(3600, "it") == "1 ora" and duration_words(86400 + 60, "it") == "1 giorno e 1 minuto"
    assert duration_words(30, "it") == "meno di un minuto"
    assert duration_words(2 * 3600 + 60, "en") == "2 hours and 1 minute"


def test_followup_counts_new_occurrences():
    now = datetime(2026, 12, 28, 9, 0, tzinfo=ROME)
    it = followup_text(_disk(), "it", 3, "filesystem /var on srv-anagrafe has 3.0% free", now)
    assert "ancora presente" in it and "3 nuove occorrenze" in it and "lunedì 28 dicembre 2026 alle 9:00" in it
    assert "4,2%" in it, "the state is told in Italian from the facts"
    assert "1 nuova occorrenza" in followup_text(_disk(), "it", 1, "", now)
    en = followup_text(_disk(), "en", 3, "filesystem /var on srv-anagrafe has 3.0% free", now)
    assert "persists" in en and "3 more occurrences" in en and "has 3.0% free" in en
    assert "1 more occurrence." in followup_text(_disk(), "en", 1, "", now)


def test_priority_change_names_both_priorities_and_the_new_due_time():
    it = priority_text(_disk(), "it", "medium", "high", DUE)
    assert "da media ad alta" in it and "lunedì 28 dicembre 2026 alle 17:00" in it
    assert "2026-12-28T17:00:00+01:00" in it
    assert "da alta a bassa" in priority_text(_disk(), "it", "high", "low", None)
    en = priority_text(_disk(), "en", "medium", "high", DUE)
    assert "from medium to high" in en and "Monday 28 December 2026 at 17:00" in en


def test_recovery_says_when_how_long_and_when_it_will_be_solved():
    recovered = datetime(2026, 12, 28, 9, 12, tzinfo=ROME)
    solve = datetime(2026, 12, 28, 10, 12, tzinfo=ROME)
    it = recovery_text(_disk(), "it", recovered, solve)
    assert "rientrato lunedì 28 dicembre 2026 alle 9:12" in it and "3 giorni, 16 ore e 12 minuti" in it
    assert "segnato come risolto lunedì 28 dicembre 2026 alle 10:12 se il problema non si ripresenta" in it
    assert "segnato come risolto" not in recovery_text(_disk(), "it", recovered, None)
    en = recovery_text(_disk(), "en", recovered, solve)
    assert "3 days, 16 hours and 12 minutes" in en and "marked solved on Monday 28 December 2026 at 10:12" in en


def test_flap_says_the_problem_came_back():
    recovered = datetime(2026, 12, 28, 9, 12, tzinfo=ROME)
    it = flap_text(_disk(), "it", recovered, 2)
    assert "si è ripresentato" in it and "2 volte" in it and "alle 9:12" in it
    assert "una volta" in flap_text(_disk(), "it", recovered, 1)
    en = flap_text(_disk(), "en", recovered, 3)
    assert "came back" in en and "3 times" in en


def test_facts_from_an_incident():
    incident = Incident(id=1, key="crema/filesystem/srv-anagrafe:/var", tenant="crema", check="filesystem",
                        target="srv-anagrafe:/var", severity="warning", max_severity="critical", status="open",
                        summary="low", details={"mountpoint": "/var"}, opened_at=OPENED.timestamp(),
                        last_seen_at=OPENED.timestamp(), resolved_at=None, occurrences=4)
    built = IncidentFacts.from_incident(incident, "Comune di Crema")
    assert built.host == "srv-anagrafe" and built.tenant_name == "Comune di Crema" and built.occurrences == 4
    assert built.opened_at == OPENED and built.opened_at.utcoffset() is not None
    assert built.details == {"mountpoint": "/var"} and built.details is not incident.details


def test_an_unknown_language_gets_italian():
    assert opening_text(_disk(), "de", "high", DUE) == opening_text(_disk(), "it", "high", DUE)


def test_counts_agree_in_number():
    one = facts("restore_test", "anagrafe", "failed", {"mismatches": ["/dati/a.db"]})
    many = facts("backup_coverage", "anagrafe", "gaps", {"unprotected": [f"/dati/{i}" for i in range(5)]})
    assert "1 file non corrisponde (ad esempio /dati/a.db)" in opening_text(one, "it", "high", DUE)
    assert "1 file does not match" in opening_text(one, "en", "high", DUE)
    assert "5 percorsi non sono protetti: /dati/0, /dati/1, /dati/2 …" in opening_text(many, "it", "high", DUE)
    once = facts("reachability", "srv-tributi:reachability", "down",
                 {"failures": 1, "transport": "winrm", "address": "10.0.0.9"})
    assert "1 volta senza risposta" in opening_text(once, "it", "high", DUE)


def test_how_long_it_lasted_counts_real_time_across_a_dst_change():
    opened = facts("cpu", "srv-1:cpu", "busy", {"busy_percent": 99.0})
    opened = IncidentFacts(**{**opened.__dict__, "opened_at": datetime(2026, 10, 24, 10, 0, tzinfo=ROME)})
    # 24 Oct 10:00 +02:00 to 26 Oct 10:00 +01:00 is 49 hours: clocks went back on the 25th
    text = recovery_text(opened, "it", datetime(2026, 10, 26, 10, 0, tzinfo=ROME), None)
    assert "È durato 2 giorni e 1 ora" in text, text
