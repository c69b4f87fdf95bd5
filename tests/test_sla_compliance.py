"""Service-level compliance and penalty exposure: the arithmetic, on rows written through the ticket store.

Every ticket is inserted with agent/tickets/store.py's functions and its due
times computed as the planner computes them (custode.agent.tickets.sla.due);
``now`` is injected, never read from the wall clock, so the figures are the
same on any day the suite runs. The last test drives the whole chain through
the Zendesk double: incidents, the planner, the fake taking tickets in charge
before and after their due time, recoveries, then ``custode sla report``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from custode.agent.calendar import ROME
from custode.agent.clock import pinned
from custode.agent.config_loader import load_text
from custode.agent.service_levels import lateness
from custode.agent.service_levels.cases import StatusReading, cases_of
from custode.agent.service_levels.compliance import KindFigures, Outcome
from custode.agent.service_levels.penalties import ReleaseFacts
from custode.agent.service_levels.period import parse_period, quarter
from custode.agent.service_levels.releases import release_facts
from custode.agent.service_levels.render import CSV_COLUMNS, csv_text, text
from custode.agent.service_levels.report import as_json, load_tenant_report, tenant_report
from custode.agent.state import State
from custode.agent.tickets import sla, store
from custode.agent.tickets.model import TicketState

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
CONFIG = """
agent: {tenant: provider}
tenants:
  provider: {name: Provider, tickets: {backend: none}}
  cremona:
    name: Comune di Cremona
    tickets: {backend: zd}
    calendar:
      province: CR                     # 13 November (Sant'Omobono) is closed
      office_hours: {monday: ["08:30-17:30"], tuesday: ["08:30-17:30"], wednesday: ["08:30-17:30"],
                     thursday: ["08:30-17:30"], friday: ["08:30-17:30"], saturday: ["08:30-12:30"]}
    service_levels:
      contract: Manutenzione Sicraweb
      threshold: 90
      levels:
        bloccante:
          label: Bloccante
          priority: high
          take_charge: 1 working hour
          resolve: 4 working hours
          restore: 4 working hours
          penalties: [{missed: resolve, amount: 22, per: slot, slot: 4 working hours, note: "€22 per fascia"}]
        urgente:
          label: Urgente
          priority: high
          take_charge: 8 working hours
          resolve: 2 working days
          penalties: [{missed: resolve, amount: 15, per: day, note: "€15 per giorno"}]
        media:
          label: Media
          priority: medium
          take_charge: 8 working hours
          resolve: 4 working days
          threshold: 50
          penalties: [{missed: resolve, amount: 100, amount_max: 200, per: day, max_total: 500}]
  pontesanpietro:
    name: Comune di Ponte San Pietro
    tickets: {backend: mail}
    calendar:
      office_hours: {monday: ["08:30-12:30", "13:30-17:30"], tuesday: ["08:30-12:30", "13:30-17:30"],
                     wednesday: ["08:30-12:30", "13:30-17:30"], thursday: ["08:30-12:30", "13:30-17:30"],
                     friday: ["08:30-12:30", "13:30-17:30"]}
    service_levels:
      levels:
        ordinario:
          priority: medium
          take_charge: 4 working hours
          penalties: [{missed: take_charge, amount: 50, per: ticket}, {missed: take_charge, per: ticket}]
  sassuolo:
    name: Comune di Sassuolo
    service_levels:
      levels:
        ordinario: {priority: medium, take_charge: 8 working hours, resolve: 10 working days}
      penalties: [{event: unannounced_release, amount: 500, amount_max: 1000}]
  vaiano:
    name: Comune di Vaiano Cremasco
    service_levels:
      threshold: 90
      levels:
        alta: {priority: high, take_charge: 8 working hours}
smtp: {host: smtp.example.it, sender: custode@example.it}
tickets:
  backends:
    zd: {type: zendesk, url: "https://helpdesk.example.it", email: custode@example.it, token: {env: T_ZD}}
    mail: {type: email, to: [helpdesk@example.it]}
"""
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=ROME).timestamp()  # Friday
Q4 = parse_period("2026Q4")


def at(text_: str) -> float:
    return datetime.fromisoformat(text_).replace(tzinfo=ROME).timestamp()


@pytest.fixture
def config():
    return load_text(CONFIG).model


@pytest.fixture
def state(tmp_path):
    state = State(tmp_path / "state.db")
    yield state
    state.close()


_keys = iter(range(1, 10_000))


def add(state: State, config, tenant: str, level: str | None, opened: str, *, backend: str = "zd",
        ref: str | None = "auto", priority: str | None = None, taken: str | None = None,
        recovered: str | None = None, state_: TicketState | None = None, previous_id: int | None = None,
        **fields) -> int:
    """One ticket through the store, with the due times the planner would have given it."""
    number = next(_keys)
    opened_ts = at(opened)
    moment = datetime.fromtimestamp(opened_ts, ROME)
    dues = {kind: sla.due(config, tenant, level or priority, kind, moment) if level else None
            for kind in ("take_charge", "resolve", "restore")}
    if level is None:  # an old row: due times from the default table, at its priority
        dues["take_charge"] = sla.take_charge_due(config, None, priority, moment)
        dues["resolve"] = sla.resolve_due(config, None, priority, moment)
    with state.transaction() as db:
        ticket_id = store.insert_ticket(
            db, key=f"{tenant}/check{number}/target", tenant=tenant, backend=backend, check="check",
            incident_id=None, priority=priority or sla.priority_of(config, tenant, level), subject="s",
            opened_at=opened_ts, due_at=_ts(dues["take_charge"]), resolve_due_at=_ts(dues["resolve"]),
            restore_due_at=_ts(dues["restore"]), level=level, previous_id=previous_id)
        changes = dict(fields)
        if ref:
            changes["ref"] = str(1000 + ticket_id) if ref == "auto" else ref
        if taken:
            changes["taken_at"] = at(taken)
        if recovered:
            changes["recovered_at"] = at(recovered)
            changes["state"] = TicketState.RECOVERED
        if state_ is not None:
            changes["state"] = state_
        if changes:
            store.update_ticket(db, ticket_id, **changes)
    return ticket_id


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


def report(state: State, config, tenant: str, period: str = "2026Q4", now: float = NOW) -> dict:
    return as_json(load_tenant_report(config, state, tenant, parse_period(period), now))


def level(doc: dict, key: str) -> dict:
    return next(entry for entry in doc["levels"] if entry["level"] == key)


def bucket(entry: dict, period: str) -> dict:
    return next(b for b in entry["buckets"] if b["period"] == period)


def charges_of(doc: dict, ticket_id: int) -> list[dict]:
    return [c for c in doc["charges"] if c["ticket"] == ticket_id]


# --- periods -------------------------------------------------------------------------------------

def test_periods_are_rome_intervals_and_a_ticket_at_2330_on_30_september_is_q3(state, config) -> None:
    q3, q4 = parse_period("2026Q3"), parse_period("2026-q4")
    assert q4.start == datetime(2026, 10, 1, tzinfo=ROME) and q4.end == datetime(2027, 1, 1, tzinfo=ROME)
    assert q4.start.isoformat() == "2026-10-01T00:00:00+02:00" and q4.end.isoformat() == "2027-01-01T00:00:00+01:00"
    assert parse_period("2026-11").key == "2026-11" and parse_period("2026").kind == "year"
    for wrong in ("2026Q5", "2026-13", "Q4", "26Q4", ""):
        with pytest.raises(ValueError, match="write 2026Q4"):
            parse_period(wrong)

    late_september = datetime.fromisoformat("2026-09-30T23:30+02:00").timestamp()  # 21:30 UTC
    assert q3.contains(late_september) and not q4.contains(late_september)
    september = add(state, config, "cremona", "urgente", "2026-09-30T23:30")
    october = add(state, config, "cremona", "urgente", "2026-10-01T00:00")

    in_q3 = report(state, config, "cremona", "2026Q3")
    in_q4 = report(state, config, "cremona", "2026Q4")
    assert [c["ticket"] for c in in_q3["cases"]] == [september]
    assert [c["ticket"] for c in in_q4["cases"]] == [october]
    assert bucket(level(in_q3, "urgente"), "2026-09")["opened"] == 1
    assert bucket(level(in_q4, "urgente"), "2026-10")["opened"] == 1
    assert bucket(level(in_q4, "urgente"), "2026Q4")["opened"] == 1
    year = report(state, config, "cremona", "2026")
    assert [b["period"] for b in level(year, "urgente")["buckets"]][-5:] == ["2026Q1", "2026Q2", "2026Q3",
                                                                           "2026Q4", "2026"]
    assert bucket(level(year, "urgente"), "2026Q3")["opened"] == bucket(level(year, "urgente"), "2026Q4")["opened"] == 1
    assert bucket(level(year, "urgente"), "2026")["opened"] == 2


# --- counting ------------------------------------------------------------------------------------

def test_take_charge_resolve_and_restore_within_late_and_open(state, config) -> None:
    # bloccante, Monday 2 November 09:00: take charge by 10:00, resolve and restore by 13:00
    quick = add(state, config, "cremona", "bloccante", "2026-11-02T09:00", taken="2026-11-02T09:30",
                recovered="2026-11-02T12:00")
    slow = add(state, config, "cremona", "bloccante", "2026-11-02T09:00", taken="2026-11-02T10:30",
               recovered="2026-11-03T10:00")
    # the failure was over before anyone had to take it in charge: nothing was missed, even if someone
    # opened the solved ticket on the helpdesk later
    over = add(state, config, "cremona", "bloccante", "2026-11-02T09:00", recovered="2026-11-02T09:40",
               taken="2026-11-02T11:00")
    # Friday 20 November 11:30: take charge due 12:30, after now; still failing
    pending = add(state, config, "cremona", "bloccante", "2026-11-20T11:30")

    doc = report(state, config, "cremona")
    entry = level(doc, "bloccante")
    assert entry["label"] == "Bloccante" and entry["threshold"] == 90 and entry["threshold_from"] == "table"
    nov = bucket(entry, "2026-11")
    assert nov["opened"] == 4
    assert nov["take_charge"]["within"] == 2 and nov["take_charge"]["late"] == 1 and nov["take_charge"]["open"] == 1
    assert nov["resolve"]["within"] == 2 and nov["resolve"]["late"] == 1 and nov["resolve"]["open"] == 1
    assert nov["restore"]["within"] == 2 and nov["restore"]["late"] == 1
    assert nov["take_charge"]["share"] == pytest.approx(2 / 3) and nov["take_charge"]["met"] is False
    assert nov["met"] is False
    assert bucket(entry, "2026-10")["opened"] == 0 and bucket(entry, "2026-10")["met"] is None
    quarter_row = bucket(entry, "2026Q4")
    assert quarter_row["opened"] == 4 and quarter_row["complete"] is False and doc["complete"] is False
    cases = {c["ticket"]: c for c in doc["cases"]}
    assert cases[quick]["take_charge"]["outcome"] == "within"
    assert cases[slow]["take_charge"]["outcome"] == "late"
    assert cases[over]["take_charge"]["outcome"] == "within" and "over before" in cases[over]["take_charge"]["why"]
    assert cases[pending]["take_charge"]["outcome"] == "open"
    assert cases[slow]["resolve"]["met_at"] == "2026-11-03T10:00:00+01:00"
    assert cases[slow]["resolve"]["due_at"] == "2026-11-02T13:00:00+01:00"


def test_share_against_the_threshold_is_exact_at_the_boundary() -> None:
    figures = KindFigures(within=29, late=71)
    assert figures.met(29) is True and figures.met(29.5) is False
    assert KindFigures(within=9, late=1).met(90) is True
    assert KindFigures(within=0, late=0, open=3).met(90) is None  # nothing decided yet
    assert KindFigures(within=3).met(None) is None


def test_not_known_when_the_helpdesk_cannot_tell_and_missed_when_it_can(state, config) -> None:
    # Ponte San Pietro, Monday 2 November 09:00: take charge within 4 working hours → 14:00
    mail = add(state, config, "pontesanpietro", "ordinario", "2026-11-02T09:00", backend="mail", ref="<m1@x>")
    mail_over = add(state, config, "pontesanpietro", "ordinario", "2026-11-02T09:00", backend="mail", ref="<m2@x>",
                    recovered="2026-11-02T10:00")
    zendesk_missed = add(state, config, "pontesanpietro", "ordinario", "2026-11-02T09:00", backend="zd", ref="77")
    never_delivered = add(state, config, "pontesanpietro", "ordinario", "2026-11-02T09:00", backend="zd", ref=None)
    zendesk_late_recovered = add(state, config, "pontesanpietro", "ordinario", "2026-11-02T09:00", backend="zd",
                                 ref="78", recovered="2026-11-02T16:00")

    doc = report(state, config, "pontesanpietro")
    figures = bucket(level(doc, "ordinario"), "2026-11")["take_charge"]
    assert (figures["within"], figures["late"], figures["not_known"], figures["open"]) == (1, 2, 2, 0)
    assert figures["share"] == pytest.approx(1 / 3), "not-known cases are not decided either way"
    cases = {c["ticket"]: c for c in doc["cases"]}
    assert cases[mail]["take_charge"]["due_at"] == "2026-11-02T14:00:00+01:00"
    assert "cannot tell" in cases[mail]["take_charge"]["why"]
    assert "never reached" in cases[never_delivered]["take_charge"]["why"]
    assert cases[mail_over]["take_charge"]["outcome"] == "within"
    assert cases[zendesk_missed]["take_charge"]["running"] is True
    assert cases[zendesk_late_recovered]["take_charge"]["late_until"] == "2026-11-02T16:00:00+01:00"
    # per ticket: €50 for each missed take charge; the rule without an amount counts the misses unpriced
    assert [c["euros_min"] for c in charges_of(doc, zendesk_missed)] == [50, None]
    assert doc["exposure"]["tickets"] == {"euros_min": 100, "euros_max": 100, "charges": 4, "unpriced": 2}
    assert sorted(n["ticket"] for n in doc["not_evaluated"]) == sorted([mail, mail, never_delivered,
                                                                        never_delivered])


def test_a_person_closing_the_ticket_and_its_replacement_are_one_case(state, config) -> None:
    first = add(state, config, "cremona", "bloccante", "2026-11-03T09:00", state_=TicketState.CLOSED_REMOTE,
                finished_at=at("2026-11-03T09:20"))
    add(state, config, "cremona", "bloccante", "2026-11-03T09:21", previous_id=first,
        recovered="2026-11-03T10:00", state_=TicketState.DONE, finished_at=at("2026-11-03T11:00"))

    doc = report(state, config, "cremona")
    [case] = doc["cases"]
    assert case["ticket"] == first and len(case["tickets"]) == 2
    assert case["take_charge"]["outcome"] == "within", "a person closed it: it was in someone's hands by then"
    assert case["resolve"]["outcome"] == "within" and case["recovered_at"] == "2026-11-03T10:00:00+01:00"
    assert bucket(level(doc, "bloccante"), "2026-11")["opened"] == 1


def test_a_warranty_reopen_voids_the_earlier_resolution(state, config) -> None:
    # urgente, Monday 2 November 09:00: resolve within 2 working days → Wednesday 09:00
    ticket = add(state, config, "cremona", "urgente", "2026-11-02T09:00", taken="2026-11-02T09:10",
                 recovered="2026-11-02T11:00", state_=TicketState.DONE)
    assert report(state, config, "cremona")["cases"][0]["resolve"]["outcome"] == "within"
    with state.transaction() as db:
        store.reopen_ticket(db, ticket, 1, at("2026-11-09T09:00"))

    [case] = report(state, config, "cremona")["cases"]
    assert case["reopened"] == 1 and case["resolve"]["outcome"] == "late" and case["resolve"]["running"] is True
    assert "reopened" in case["resolve"]["why"]
    with state.transaction() as db:
        store.update_ticket(db, ticket, state=TicketState.RECOVERED, recovered_at=at("2026-11-10T09:00"))
    [case] = report(state, config, "cremona")["cases"]
    assert case["resolve"]["outcome"] == "late" and case["resolve"]["met_at"] == "2026-11-10T09:00:00+01:00"


def test_old_rows_without_a_level_are_counted_on_the_default_table_at_their_priority(state, config) -> None:
    add(state, config, "cremona", None, "2026-11-02T09:00", priority="high", taken="2026-11-02T09:05")
    doc = report(state, config, "cremona")
    old = next(entry for entry in doc["levels"] if entry["table"] == "default")
    assert old["level"] == "high" and old["threshold"] is None
    nov = bucket(old, "2026-11")
    assert nov["take_charge"]["within"] == 1 and nov["take_charge"]["met"] is None, "no threshold: just the share"
    assert nov["take_charge"]["share"] == 1.0
    assert {entry["level"] for entry in doc["levels"] if entry["table"] == "tenant"} == {"bloccante", "urgente",
                                                                                        "media"}


def test_a_level_the_table_no_longer_has_is_reported_under_its_key_without_threshold_or_penalty(state, config):
    with state.transaction() as db:
        ticket = store.insert_ticket(db, key="cremona/x/y", tenant="cremona", backend="zd", check="x",
                                     incident_id=None, priority="high", subject="s", opened_at=at("2026-11-02T09:00"),
                                     due_at=at("2026-11-02T10:00"), resolve_due_at=at("2026-11-02T11:00"),
                                     level="vecchio")
        store.update_ticket(db, ticket, ref="9", taken_at=at("2026-11-02T12:00"))
    doc = report(state, config, "cremona")
    old = level(doc, "vecchio")
    assert old["in_table"] is False and old["threshold"] is None and old["kinds"] == ["take_charge", "resolve"]
    assert bucket(old, "2026-11")["take_charge"]["late"] == 1 and bucket(old, "2026-11")["met"] is None
    assert doc["charges"] == [] and "vecchio (not in the table)" in text([doc])


# --- penalties -----------------------------------------------------------------------------------

def test_penalty_per_started_slot_of_working_hours(state, config) -> None:
    # resolve due Monday 13:00; resolved Tuesday 10:00: 4.5 h on Monday + 1.5 h on Tuesday = 6 working hours
    # → 2 started slots of 4 working hours × €22 (the night does not count)
    ticket = add(state, config, "cremona", "bloccante", "2026-11-02T09:00", taken="2026-11-02T09:30",
                 recovered="2026-11-03T10:00")
    [charge] = charges_of(report(state, config, "cremona"), ticket)
    assert (charge["units"], charge["euros_min"], charge["euros_max"]) == (2, 44, 44)
    assert charge["per"] == "slot" and charge["slot"] == "4 working hours" and charge["target"] == "resolve"
    assert charge["due_at"] == "2026-11-02T13:00:00+01:00" and charge["late_until"] == "2026-11-03T10:00:00+01:00"
    assert "2 started slots of 4 working hours × €22 = €44" in charge["why"]
    assert charge["note"] == "€22 per fascia" and charge["month"] == "2026-11"


def test_penalty_per_started_calendar_day(state, config) -> None:
    # urgente, Monday 10:00: resolve within 2 working days → Wednesday 10:00; resolved Friday 11:00:
    # 2 days and 1 hour late → 3 started days × €15
    ticket = add(state, config, "cremona", "urgente", "2026-11-02T10:00", recovered="2026-11-06T11:00")
    [charge] = charges_of(report(state, config, "cremona"), ticket)
    assert charge["due_at"] == "2026-11-04T10:00:00+01:00"
    assert (charge["units"], charge["euros_min"], charge["euros_max"]) == (3, 45, 45)
    assert charge["late_seconds"] == 2 * 86400 + 3600


def test_penalty_range_and_cap_and_a_still_open_ticket_counted_to_now(state, config) -> None:
    # media, Monday 16 November 09:00: 4 working days → Friday 20 09:00; resolved 10:00 → 1 day × €100–200
    ranged = add(state, config, "cremona", "media", "2026-11-16T09:00", recovered="2026-11-20T10:00")
    # media, Monday 9 November 09:00: Tue, Wed, Thu, (13 Nov Sant'Omobono closed), Saturday 14 09:00;
    # still open at now (Friday 20 12:00): 6 days 3 h → 7 started days = €700–1,400, capped at €500
    capped = add(state, config, "cremona", "media", "2026-11-09T09:00")

    doc = report(state, config, "cremona")
    [low_high] = charges_of(doc, ranged)
    assert (low_high["units"], low_high["euros_min"], low_high["euros_max"]) == (1, 100, 200)
    assert "€100–200" in low_high["why"]
    [cap] = charges_of(doc, capped)
    assert cap["due_at"] == "2026-11-14T09:00:00+01:00"
    assert (cap["units"], cap["euros_min"], cap["euros_max"], cap["capped"]) == (7, 500, 500, True)
    assert cap["running"] is True and "still late" in cap["why"]
    assert "7 started days × €100–200 = €700–1,400, capped at €500 per ticket: €500" in cap["why"]
    media = bucket(level(doc, "media"), "2026-11")
    assert media["exposure"] == {"euros_min": 600, "euros_max": 700, "charges": 2, "unpriced": 0}
    assert media["resolve"]["met"] is False and media["met"] is False
    # the same rows a day later: the open ticket's lateness grew, the cap holds
    later = report(state, config, "cremona", now=NOW + 86400)
    assert charges_of(later, capped)[0]["units"] == 8 and charges_of(later, capped)[0]["euros_max"] == 500


def test_lateness_units_on_the_calendar(config) -> None:
    calendar = sla.level_calendar(config, "pontesanpietro", "ordinario")
    friday_17 = at("2026-11-06T17:00")
    monday_0900 = at("2026-11-09T09:00")
    # Friday 17:00-17:30 and Monday 08:30-09:00: one working hour, though 64 clock hours passed
    assert lateness.working_seconds(calendar, friday_17, monday_0900) == 3600
    assert lateness.started_units(calendar, "working_hour", None, friday_17, monday_0900) == 1
    assert lateness.started_units(calendar, "hour", None, friday_17, monday_0900) == 64
    assert lateness.started_units(calendar, "day", None, friday_17, monday_0900) == 3
    # a working day from Friday 17:00 ends Monday 17:00
    assert lateness.started_units(calendar, "working_day", None, friday_17, at("2026-11-09T16:59")) == 1
    assert lateness.started_units(calendar, "working_day", None, friday_17, at("2026-11-09T17:01")) == 2
    # late by one second still starts a unit; exactly on the boundary does not start the next
    assert lateness.started_units(calendar, "hour", None, friday_17, friday_17 + 1) == 1
    assert lateness.started_units(calendar, "hour", None, friday_17, friday_17 + 3600) == 1


# --- releases ------------------------------------------------------------------------------------

def _runs(state: State, *starts: str) -> list[int]:
    from custode.agent.updates.states import RunStatus
    from custode.agent.updates.store import NewRun, Owner, UpdateStore

    updates = UpdateStore(state)
    ids = []
    for start in starts:
        begin = at(start)
        run = NewRun(window="sanzioni", application="Concilia", tenant="sassuolo", trigger="scheduled", reason=None,
                     playbook="concilia.yaml", window_start=begin, window_end=begin + 7200, silence=[],
                     silence_until=begin + 7200)
        run_id = updates.begin(run, begin, Owner("test", 1, 0.0))
        updates.finish(run_id, RunStatus.SUCCEEDED, "ok", begin + 600)
        ids.append(run_id)
    return ids


def test_unannounced_releases_cost_the_contract_range(state, config) -> None:
    announced, silent, outside = _runs(state, "2026-11-05T17:30", "2026-11-12T17:30", "2026-09-24T17:30")

    def lookup(source, window, start_ts, tenant):
        assert (window, tenant) == ("sanzioni", "sassuolo")
        return start_ts - 3 * 86400 if start_ts == at("2026-11-05T17:30") else None

    facts = release_facts(config, state, "sassuolo", Q4, lookup=lookup)
    assert facts.evaluated and [r.run_id for r in facts.releases] == [announced, silent]
    doc = as_json(tenant_report(config, "sassuolo", [], facts, Q4, NOW))
    assert doc["empty"] is True and doc["message"].startswith("No tickets opened in 2026Q4")
    releases = doc["releases"]
    assert [c["run"] for c in releases["charges"]] == [silent]
    assert releases["exposure"] == {"euros_min": 500, "euros_max": 1000, "charges": 1, "unpriced": 0}
    assert bucket(releases, "2026-11")["unannounced"] == 1 and bucket(releases, "2026-10")["releases"] == 0
    assert outside not in [r["run"] for r in releases["runs"]]


def test_releases_without_the_announcement_module_are_not_evaluated_and_say_why(state, config) -> None:
    _runs(state, "2026-11-05T17:30")
    doc = as_json(tenant_report(config, "sassuolo", [], ReleaseFacts((), False, "no module"), Q4, NOW))
    assert doc["releases"]["evaluated"] is False and doc["releases"]["exposure"] is None
    assert "not evaluated" in text([doc]) and "no module" in text([doc])
    try:
        import custode.agent.updates.announce  # noqa: F401
    except ImportError:
        facts = release_facts(config, state, "sassuolo", Q4)
        assert not facts.evaluated and "announce" in (facts.reason or "")
        assert [r.evaluated for r in facts.releases] == [False]


def test_a_release_with_no_advance_notice_recorded_is_charged(state, config) -> None:
    """Through the announcement module itself: nothing was sent for this run, so it was not announced."""
    pytest.importorskip("custode.agent.updates.announce")
    [run] = _runs(state, "2026-11-05T17:30")
    facts = release_facts(config, state, "sassuolo", Q4)
    assert facts.evaluated, facts.reason
    [release] = facts.releases
    assert release.run_id == run and release.announced_at is None and release.unannounced
    assert "no advance notice recorded" in release.why
    doc = as_json(tenant_report(config, "sassuolo", [], facts, Q4, NOW))
    assert doc["releases"]["exposure"] == {"euros_min": 500, "euros_max": 1000, "charges": 1, "unpriced": 0}
    assert "1 of 1 run(s), exposure €500–€1,000" in text([doc])


# --- outputs -------------------------------------------------------------------------------------

def test_csv_has_a_row_per_level_and_month_then_the_quarter(state, config) -> None:
    add(state, config, "cremona", "bloccante", "2026-11-02T09:00", taken="2026-11-02T09:30",
        recovered="2026-11-03T10:00")
    doc = report(state, config, "cremona")
    lines = csv_text([doc]).splitlines()
    assert lines[0].split(",") == CSV_COLUMNS
    rows = [line.split(",") for line in lines[1:]]
    assert [(r[1], r[5]) for r in rows[:3]] == [("bloccante", "2026-10"), ("bloccante", "2026-11"),
                                                ("bloccante", "2026Q4")], "December has not begun: no row"
    november = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert november["take_charge_within"] == "1" and november["resolve_late"] == "1"
    assert november["euros_min"] == "44.0" and november["met"] == "false"
    assert dict(zip(CSV_COLUMNS, rows[0], strict=True))["opened"] == "0"


def test_the_table_names_levels_with_the_contract_labels_and_the_charges(state, config) -> None:
    add(state, config, "cremona", "urgente", "2026-11-02T10:00", ref="555", recovered="2026-11-06T11:00")
    shown = text([report(state, config, "cremona")])
    assert "Comune di Cremona (cremona) — Manutenzione Sicraweb" in shown
    assert "Period 2026Q4: 2026-10-01 to 2026-12-31, still running" in shown
    assert "Urgente" in shown and "90%" in shown and "€45" in shown and "#555" in shown
    assert "3 started days × €15 = €45" in shown


def _config_file(tmp_path: Path, text_: str = CONFIG) -> Path:
    path = tmp_path / "custode.yaml"
    path.write_text(text_.replace("agent: {tenant: provider}",
                                  f"agent: {{tenant: provider, data_dir: {tmp_path / 'data'}}}"))
    return path


def _times(value, key: str = "") -> list[str]:
    """Every string under a time key (``*_at``, ``start``, ``end`` …) of a JSON document."""
    from custode.agent.cli_output import is_time_key

    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v, key)]
    return [value] if isinstance(value, str) and is_time_key(key) else []


def _cli(capsys, *args: str, now: float = NOW) -> tuple[int, str, str]:
    from custode.agent.cli import main

    with pinned(now, running=False):
        code = main(["sla", "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_empty_tenant_unknown_tenant_and_period(tmp_path, capsys) -> None:
    path = _config_file(tmp_path)
    code, out, _ = _cli(capsys, "-c", str(path), "--tenant", "vaiano", "--period", "2026Q4")
    assert code == 0 and "No tickets opened in 2026Q4" in out
    code, out, _ = _cli(capsys, "-c", str(path), "--tenant", "vaiano", "--period", "2026Q4", "--format", "json")
    document = json.loads(out)
    assert code == 0 and document["reports"][0]["empty"] is True and document["period"] == "2026Q4"
    assert document["generated_at"] == "2026-11-20T12:00:00+01:00"
    assert all(datetime.fromisoformat(moment).utcoffset() is not None for moment in _times(document))

    code, out, err = _cli(capsys, "-c", str(path), "--tenant", "vaiana", "--period", "2026Q4")
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert "'vaiana' is not a tenant" in err and "vaiano" in err
    code, _, err = _cli(capsys, "-c", str(path), "--tenant", "vaiano", "--period", "2026Q5")
    assert code == 2 and "write 2026Q4 (a quarter), 2026-11 (a month) or 2026 (a year)" in err
    code, _, err = _cli(capsys, "-c", str(path), "--tenant", "vaiano", "--period", "2027Q1")
    assert code == 2 and "has not begun" in err and len(err.strip().splitlines()) == 1


def test_status_reading_asks_the_backend_classes(config) -> None:
    reading = StatusReading(config)
    [zd, mail] = cases_of([_row(1, "zd", "5"), _row(2, "mail", "<m@x>")], reading)
    assert zd.reads_status is True and mail.reads_status is False
    [unknown] = cases_of([_row(3, "gone", "9")], reading)
    assert unknown.reads_status is False, "a backend no longer configured: only a recorded taken_at is trusted"


def _row(ticket_id: int, backend: str, ref: str):
    from custode.agent.service_levels.cases import SlaTicket

    return SlaTicket(id=ticket_id, key="k", tenant="t", backend=backend, ref=ref, state="open", priority="high",
                     level="x", previous_id=None, opened_at=0.0, due_at=1.0, resolve_due_at=None, restore_due_at=None,
                     taken_at=None, recovered_at=None, finished_at=None, reopened=0)


def test_outcome_words_are_stable() -> None:
    """The JSON and CSV carry these words; a rename would break readers."""
    assert [o.value for o in Outcome] == ["within", "late", "not_known", "open"]
    assert quarter(2026, 4).key == "2026Q4"


# --- Grafana ---------------------------------------------------------------------------------------

def _samples(families, name: str) -> dict[tuple, float]:
    family = next(f for f in families if f.name == name)
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def test_metrics_for_the_current_month_and_quarter_are_recomputed_off_the_scrape_path(state, config) -> None:
    from custode.agent.service_levels.metrics import SlaMetrics

    add(state, config, "cremona", "bloccante", "2026-11-02T09:00", taken="2026-11-02T09:30",
        recovered="2026-11-03T10:00")
    add(state, config, "cremona", "urgente", "2026-10-05T10:00", taken="2026-10-05T10:10",
        recovered="2026-10-05T11:00")
    metrics = SlaMetrics(config, state, refresh=300)
    families = metrics.families(NOW)
    tickets = _samples(families, "custode_sla_tickets")
    key = (("kind", "resolve"), ("level", "bloccante"), ("outcome", "late"), ("period", "month"), ("tenant", "cremona"))
    assert tickets[key] == 1
    october = (("kind", "resolve"), ("level", "urgente"), ("outcome", "within"), ("tenant", "cremona"))
    assert tickets[tuple(sorted(dict(october, period="quarter").items()))] == 1
    assert tickets[tuple(sorted(dict(october, period="month").items()))] == 0, "October is not this month"
    ratio = _samples(families, "custode_sla_within_target_ratio")
    assert ratio[(("kind", "take_charge"), ("level", "bloccante"), ("period", "quarter"), ("tenant", "cremona"))] == 1
    euros = _samples(families, "custode_sla_penalty_euros")
    assert euros[(("bound", "max"), ("level", "bloccante"), ("period", "month"), ("tenant", "cremona"))] == 44
    assert _samples(families, "custode_sla_threshold_ratio")[(("level", "bloccante"), ("tenant", "cremona"))] == 0.9
    assert _samples(families, "custode_sla_period_start_timestamp_seconds")[(("period", "quarter"),)] == Q4.start_ts
    assert _samples(families, "custode_sla_release_penalty_evaluated")[(("tenant", "sassuolo"),)] in (0, 1)

    add(state, config, "cremona", "bloccante", "2026-11-02T09:00", taken="2026-11-02T09:30")
    assert metrics.families(NOW + 60) is families, "within the refresh interval: the last figures, no query"
    again = _samples(metrics.families(NOW + 301), "custode_sla_cases_opened")
    assert again[(("level", "bloccante"), ("period", "month"), ("tenant", "cremona"))] == 2


def test_a_failing_computation_keeps_the_last_figures(state, config, monkeypatch) -> None:
    from custode.agent.service_levels import metrics as module

    sla_metrics = module.SlaMetrics(config, state, refresh=0)
    first = sla_metrics.families(NOW)
    monkeypatch.setattr(module, "sla_families", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    assert sla_metrics.families(NOW + 1) is first


# --- end to end, through the Zendesk double -------------------------------------------------------

E2E = """
agent: {{tenant: provider, data_dir: {data}}}
tenants:
  provider: {{name: Provider, tickets: {{backend: none}}}}
  cremona:
    name: Comune di Cremona
    calendar:
      office_hours: {{monday: ["08:30-17:30"], tuesday: ["08:30-17:30"], wednesday: ["08:30-17:30"],
                     thursday: ["08:30-17:30"], friday: ["08:30-17:30"]}}
    service_levels:
      contract: Manutenzione Sicraweb
      threshold: 90
      levels:
        bloccante:
          label: Bloccante
          priority: high
          take_charge: 1 working hour
          resolve: 4 working hours
          restore: 4 working hours
          penalties: [{{missed: resolve, amount: 22, per: slot, slot: 4 working hours}}]
        urgente:
          label: Urgente
          priority: high
          take_charge: 8 working hours
          resolve: 2 working days
          penalties: [{{missed: resolve, amount: 15, per: working_day}}]
        media: {{label: Media, priority: medium, take_charge: 8 working hours, resolve: 4 working days}}
      default_level: media
      map:
        severity: {{critical: urgente, warning: media}}
        checks: {{reachability: bloccante}}
tickets:
  default_backend: desk
  backends:
    desk: {{type: zendesk, url: "{url}", email: custode@example.it, token: {{env: T_ZD}}, timeout: 3s}}
  flap_window: 30m
"""


def test_end_to_end_through_zendesk_then_sla_report_json(tmp_path, monkeypatch, capsys) -> None:
    from zendesk_fake import DEFAULT_TOKEN, ZendeskFake

    from custode.agent.config_loader import load
    from custode.agent.incidents import CheckResult, Incidents
    from custode.agent.paths import state_path
    from custode.agent.tickets.service import TicketService

    monkeypatch.setenv("T_ZD", DEFAULT_TOKEN)
    with ZendeskFake() as fake:
        path = tmp_path / "custode.yaml"
        path.write_text(E2E.format(data=tmp_path / "data", url=fake.url))
        config = load(str(path)).model
        clock = Clock(at("2026-11-02T09:00"))  # Monday
        state = State(state_path(config))
        incidents = Incidents(state, clock=clock)
        service = TicketService(config, state, clock=clock, publish=lambda families: None)

        def fail(check: str, target: str, severity: str) -> None:
            incidents.observe(CheckResult("cremona", check, target, severity, f"{check} {target} failing"),
                              occurrence=True, now=clock.now)

        def recover(check: str, target: str) -> None:
            incidents.observe(CheckResult("cremona", check, target, "ok", "back"), now=clock.now)

        def on_helpdesk(check: str, target: str) -> int:
            key = f"cremona/{check}/{target}"
            return next(int(t["id"]) for t in fake.tickets() if t["external_id"] == key)

        def step(moment: str) -> None:
            clock.now = at(moment)
            service.step(sync=True)

        fail("reachability", "srv1", "critical")   # bloccante: take charge by 10:00, resolve by 13:00
        fail("backup", "nightly", "critical")      # urgente: take charge by 17:00, resolve by Wednesday 09:00
        fail("disk_space", "srv2", "warning")      # media: take charge by 17:00
        step("2026-11-02T09:00")
        assert len(fake.tickets()) == 3

        fake.set_status(on_helpdesk("reachability", "srv1"), "open")  # taken in charge in time
        step("2026-11-02T09:30")
        clock.now = at("2026-11-02T11:00")
        recover("reachability", "srv1")
        step("2026-11-02T11:00")
        clock.now = at("2026-11-02T12:00")
        recover("disk_space", "srv2")              # over before anyone had to take it in charge
        step("2026-11-02T12:00")
        fake.set_status(on_helpdesk("backup", "nightly"), "pending")  # taken in charge the next morning: late
        step("2026-11-03T10:00")
        clock.now = at("2026-11-05T10:00")
        recover("backup", "nightly")               # a day and an hour after its resolve due time
        step("2026-11-05T10:00")
        clock.now = at("2026-11-05T14:00")
        fail("reachability", "srv3", "critical")   # never taken, never back
        step("2026-11-05T14:00")
        step("2026-11-05T16:00")
        state.close()

    code, out, err = _cli(capsys, "-c", str(path), "--tenant", "cremona", "--period", "2026Q4", "--format", "json",
                          now=at("2026-11-20T12:00"))
    assert code == 0, err
    document = json.loads(out)
    [doc] = document["reports"]
    moments = _times(document)
    assert len(moments) > 20 and all(datetime.fromisoformat(m).utcoffset() is not None for m in moments)
    november = {entry["level"]: bucket(entry, "2026-11") for entry in doc["levels"]}
    figures = {level: {kind: tuple(b[kind][o] for o in ("within", "late", "not_known", "open"))
                       for kind in ("take_charge", "resolve", "restore") if kind in b}
               for level, b in november.items()}
    assert figures == {
        "bloccante": {"take_charge": (1, 1, 0, 0), "resolve": (1, 1, 0, 0), "restore": (1, 1, 0, 0)},
        "urgente": {"take_charge": (0, 1, 0, 0), "resolve": (0, 1, 0, 0)},
        "media": {"take_charge": (1, 0, 0, 0), "resolve": (1, 0, 0, 0)},
    }
    assert [november[level]["opened"] for level in ("bloccante", "urgente", "media")] == [2, 1, 1]
    cases = {c["key"]: c for c in doc["cases"]}
    assert cases["cremona/reachability/srv1"]["take_charge"]["met_at"] == "2026-11-02T09:30:00+01:00"
    assert cases["cremona/backup/nightly"]["take_charge"]["met_at"] == "2026-11-03T10:00:00+01:00"
    assert cases["cremona/reachability/srv3"]["take_charge"]["running"] is True
    charges = {c["key"]: c for c in doc["charges"]}
    # urgente: due Wednesday 09:00, back Thursday 10:00 → 2 started working days × €15
    assert charges["cremona/backup/nightly"]["due_at"] == "2026-11-04T09:00:00+01:00"
    assert (charges["cremona/backup/nightly"]["units"], charges["cremona/backup/nightly"]["euros_max"]) == (2, 30)
    # bloccante srv3: resolve due Friday 6 09:00, still failing on Friday 20 12:00: 8.5 + 45 + 36 + 3.5 = 93
    # working hours → 24 started slots of 4 working hours × €22
    srv3 = charges["cremona/reachability/srv3"]
    assert srv3["due_at"] == "2026-11-06T09:00:00+01:00" and srv3["running"] is True
    assert (srv3["units"], srv3["euros_min"]) == (24, 528)
    assert doc["exposure"]["tickets"]["euros_max"] == 558


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
