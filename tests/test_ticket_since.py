"""A ticket's "since" and "lasted" run from the failure's own time, not from when Custode noticed."""

from __future__ import annotations

from datetime import datetime

from custode.agent.calendar import ROME
from custode.agent.incidents import Incident
from custode.agent.tickets.text import IncidentFacts, began_at, recovery_text

FAILED = datetime(2026, 12, 6, 2, 30, tzinfo=ROME).timestamp()   # the report's time
NOTICED = datetime(2026, 12, 6, 8, 0, tzinfo=ROME).timestamp()   # Custode started and read the mailbox


def incident(details: dict) -> Incident:
    return Incident(id=1, key="crema/backup/nightly", tenant="crema", check="backup", target="nightly",
                    severity="critical", max_severity="critical", status="open", summary="backup failed",
                    details=details, opened_at=NOTICED, last_seen_at=NOTICED, resolved_at=None, occurrences=1)


def test_the_failure_time_the_check_gives_is_the_start() -> None:
    assert began_at(incident({"began_at": FAILED})) == FAILED
    facts = IncidentFacts.from_incident(incident({"began_at": FAILED}), "Comune di Crema")
    recovered = datetime(2026, 12, 7, 2, 30, tzinfo=ROME)
    note = recovery_text(facts, "it", recovered, None)
    assert "È durato 1 giorno" in note and "era iniziato domenica 6 dicembre 2026 alle 2:30" in note, note


def test_without_one_or_with_an_impossible_one_the_opening_time_is_used() -> None:
    assert began_at(incident({})) == NOTICED
    assert began_at(incident({"began_at": NOTICED + 3600})) == NOTICED  # after the opening: not believed
    assert began_at(incident({"began_at": "yesterday"})) == NOTICED
