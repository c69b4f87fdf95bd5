"""Each contract's table gives the due times the contract implies (config/examples/contracts.yaml, as shipped).

Every expected value is worked out by hand in the comment beside it, from the
contract's office hours: Saturdays (counted for every level in Cremona and
Sassuolo, only for blocking levels in Vaiano and Ponte San Pietro), lunch
breaks, national holidays, patron days (Sant'Omobono 13 November in Cremona,
San Jacopo 25 July in Capannori) and both DST changes (29 March and 25 October
2026). Each case runs through ``custode sla due`` (main() in-process); a few
also as a subprocess, as a sysadmin types it. Nothing here reads the wall clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from custode.agent.calendar import ROME, BusinessCalendar, CalendarSection
from custode.agent.cli import main
from custode.agent.config_loader import ConfigError, load, load_text
from custode.agent.service_levels.targets import Target, Unit, parse_target
from custode.agent.tickets import sla

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "config" / "examples" / "contracts.yaml"

CASES = [
    # --- Cremona: Mon-Fri 08:30-17:30 (9 h), Sat 08:30-12:30 (4 h) for every level; CR: 13 Nov Sant'Omobono
    # Sat 5 Dec 12:00-12:30 (0.5 h); Mon 7 08:30 + 0.5 h
    pytest.param("cremona", "bloccante", "take", "2026-12-05T12:00", "2026-12-07T09:00:00+01:00", id="cr-saturday"),
    # Thu 12 Nov 16:00-17:30 (1.5 h); Fri 13 Sant'Omobono; Sat 14 08:30 + 2.5 h
    pytest.param("cremona", "bloccante", "resolve", "2026-11-12T16:00", "2026-11-14T11:00:00+01:00",
                 id="cr-patron-then-saturday"),
    # 2 working days from Thu 24 Dec 10:00: Fri 25 Natale, Sat 26 Santo Stefano, Sun; Mon 28 (1), Tue 29 (2)
    pytest.param("cremona", "urgente", "resolve", "2026-12-24T10:00", "2026-12-29T10:00:00+01:00", id="cr-christmas"),
    # 4 working days from Fri 23 Oct 15:00 (+02:00): Sat 24 (1), Mon 26 (2), Tue 27 (3), Wed 28 (4), now +01:00
    pytest.param("cremona", "media", "resolve", "2026-10-23T15:00", "2026-10-28T15:00:00+01:00", id="cr-dst-end"),
    # 3 working days from Fri 27 Mar 16:00 (+01:00): Sat 28 (1), Mon 30 (2), Tue 31 (3), now +02:00
    pytest.param("cremona", "migliorativa", "take", "2026-03-27T16:00", "2026-03-31T16:00:00+02:00",
                 id="cr-dst-start"),
    # 2 working days from Thu 3 Dec 15:00: Fri 4 (1), Sat 5 (2) closes at 12:30, before 15:00: due at 12:30
    pytest.param("cremona", "urgente", "resolve", "2026-12-03T15:00", "2026-12-05T12:30:00+01:00",
                 id="cr-short-saturday"),
    # restore 4 wh from Sat 28 Mar 11:00: 1.5 h; Sun 29 summer time; Mon 30 08:30 + 2.5 h (+02:00)
    pytest.param("cremona", "bloccante", "restore", "2026-03-28T11:00", "2026-03-30T11:00:00+02:00",
                 id="cr-restore-dst"),
    # --- Capannori: no hours in the contract, the provider's Mon-Fri 08:30-12:30, 14:00-18:00; 25 Jul San Jacopo
    # Fri 4 Dec 17:30-18:00 (0.5 h); no Saturday (no blocking hours); Mon 7 08:30 + 1.5 h
    pytest.param("capannori", "livello4", "restore", "2026-12-04T17:30", "2026-12-07T10:00:00+01:00",
                 id="lu-no-saturday"),
    # 8 wh from Thu 24 Jul 2025 15:00: 3 h; Fri 25 San Jacopo; Mon 28: 4 h morning (7), 14:00 + 1 h
    pytest.param("capannori", "livello3", "restore", "2025-07-24T15:00", "2025-07-28T15:00:00+02:00",
                 id="lu-patron"),
    # 2 working days from Mon 1 Jun 10:00: Tue 2 Festa della Repubblica; Wed 3 (1), Thu 4 (2)
    pytest.param("capannori", "livello2", "restore", "2026-06-01T10:00", "2026-06-04T10:00:00+02:00",
                 id="lu-2-june"),
    # 10 working days from Wed 23 Dec 13:00 (lunch: the count starts at 14:00): Thu 24 (1), Mon 28-Thu 31 (2-5),
    # Fri 1 Jan Capodanno, Mon 4 (6), Tue 5 (7), Wed 6 Epifania, Thu 7 (8), Fri 8 (9), Mon 11 (10)
    pytest.param("capannori", "livello1", "restore", "2026-12-23T13:00", "2027-01-11T14:00:00+01:00",
                 id="lu-lunch-holidays"),
    # --- Vaiano: Mon-Fri 08:30-12:30, 14:00-18:00; Sat 08:30-12:30 only for blocking (ENTERPRISE has on-call)
    # alta (blocking) from Sat 5 Dec 11:00: 1.5 h; Mon 7: 4 h (5.5), 14:00 + 2.5 h
    pytest.param("vaiano", "alta", "take", "2026-12-05T11:00", "2026-12-07T16:30:00+01:00", id="va-saturday-on-call"),
    # media (not blocking) from Sat 5 Dec 11:00: Saturday does not count; Mon 7 8 h (4 left); Tue 8 Immacolata;
    # Wed 9 08:30 + 4 h
    pytest.param("vaiano", "media", "take", "2026-12-05T11:00", "2026-12-09T12:30:00+01:00", id="va-saturday-not"),
    # bassa 16 wh from Fri 23 Oct 17:00: 1 h; Mon 26 8 h (7 left); Tue 27 4 h (3 left), 14:00 + 3 h (+01:00)
    pytest.param("vaiano", "bassa", "take", "2026-10-23T17:00", "2026-10-27T17:00:00+01:00", id="va-dst-end"),
    # alta from Fri 27 Mar 17:00 (+01:00): 1 h (7); Sat 28 4 h (3); Sun 29 summer time; Mon 30 08:30 + 3 h
    pytest.param("vaiano", "alta", "take", "2026-03-27T17:00", "2026-03-30T11:30:00+02:00", id="va-dst-start"),
    # media from Mon 14 Dec 12:45 (lunch: the clock starts at 14:00): 4 h (8 left); Tue 15 8 h -> 18:00
    pytest.param("vaiano", "media", "take", "2026-12-14T12:45", "2026-12-15T18:00:00+01:00", id="va-lunch"),
    # --- Sassuolo: Mon-Fri 08:30-13:00, 14:00-17:30 (8 h), Sat 08:00-12:30 for every level
    # bloccante take 2 wh from Fri 4 Dec 17:00: 0.5 h; Sat 5 08:00 + 1.5 h
    pytest.param("sassuolo", "bloccante", "take", "2026-12-04T17:00", "2026-12-05T09:30:00+01:00",
                 id="mo-saturday"),
    # resolve 1 working day from Fri 4 Dec 16:00: Sat 5, which closes at 12:30: due at 12:30
    pytest.param("sassuolo", "bloccante", "resolve", "2026-12-04T16:00", "2026-12-05T12:30:00+01:00",
                 id="mo-one-day-saturday"),
    # ordinario resolve 10 working days from Mon 20 Apr 10:00: Tue 21-Fri 24 (1-4), Sat 25 Liberazione,
    # Mon 27-Thu 30 (5-8), Fri 1 May Festa del Lavoro, Sat 2 (9), Mon 4 (10)
    pytest.param("sassuolo", "ordinario", "resolve", "2026-04-20T10:00", "2026-05-04T10:00:00+02:00",
                 id="mo-april-may"),
    # ordinario take 8 wh from Fri 23 Oct 16:30: 1 h (7); Sat 24 08:00-12:30 4.5 h (2.5); Mon 26 08:30 + 2.5 h
    pytest.param("sassuolo", "ordinario", "take", "2026-10-23T16:30", "2026-10-26T11:00:00+01:00", id="mo-dst-end"),
    # bloccante take from Tue 1 Dec 12:30: 12:30-13:00 (0.5 h); lunch; 14:00 + 1.5 h
    pytest.param("sassuolo", "bloccante", "take", "2026-12-01T12:30", "2026-12-01T15:30:00+01:00", id="mo-lunch"),
    # --- Ponte San Pietro: Mon-Fri 08:30-12:30, 13:30-17:30; Sat 08:30-12:30 only for blocking problems
    # bloccante from Fri 4 Dec 16:00: 1.5 h (2.5); Sat 5 08:30 + 2.5 h
    pytest.param("pontesanpietro", "bloccante", "take", "2026-12-04T16:00", "2026-12-05T11:00:00+01:00",
                 id="bg-saturday-blocking"),
    # ordinario from Fri 4 Dec 16:00: 1.5 h; no Saturday; Mon 7 08:30 + 2.5 h
    pytest.param("pontesanpietro", "ordinario", "take", "2026-12-04T16:00", "2026-12-07T11:00:00+01:00",
                 id="bg-saturday-ordinary"),
    # ordinario from Mon 7 Dec 16:00: 1.5 h; Tue 8 Immacolata; Wed 9 08:30 + 2.5 h
    pytest.param("pontesanpietro", "ordinario", "take", "2026-12-07T16:00", "2026-12-09T11:00:00+01:00",
                 id="bg-immacolata"),
    # bloccante from Sat 28 Mar 12:00: 0.5 h (3.5); Sun 29 summer time; Mon 30 08:30 + 3.5 h (+02:00)
    pytest.param("pontesanpietro", "bloccante", "take", "2026-03-28T12:00", "2026-03-30T12:00:00+02:00",
                 id="bg-dst-start"),
    # ordinario from Thu 10 Dec 12:45 (lunch: the clock starts at 13:30) + 4 h
    pytest.param("pontesanpietro", "ordinario", "take", "2026-12-10T12:45", "2026-12-10T17:30:00+01:00",
                 id="bg-lunch"),
]

FLAGS = {"take": [], "resolve": ["--resolve"], "restore": ["--restore"]}


@pytest.fixture(scope="module")
def contracts():
    return load(CONTRACTS).model


@pytest.mark.parametrize("tenant, level, kind, opened, expected", CASES)
def test_each_contract_gives_the_due_time_it_implies(contracts, capsys, tenant, level, kind, opened,
                                                      expected) -> None:
    target = {"take": "take_charge"}.get(kind, kind)
    assert sla.due(contracts, tenant, level, target, sla.parse_opened(opened)).isoformat() == expected
    code = main(["sla", "due", "--config", str(CONTRACTS), "--tenant", tenant, "--level", level,
                 "--opened", opened, *FLAGS[kind]])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and out[-1] == expected


def test_sla_due_as_a_sysadmin_types_it() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODE_")}
    result = subprocess.run([sys.executable, "-m", "custode.agent", "sla", "due", "--config", str(CONTRACTS),
                             "--tenant", "vaiano", "--level", "alta", "--opened", "2026-12-05T11:00"],
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2026-12-07T16:30:00+01:00"


def test_the_default_table_still_answers_by_priority(capsys) -> None:
    assert main(["sla", "due", "--priority", "high", "--opened", "2026-12-24T17:00"]) == 0
    assert capsys.readouterr().out.strip() == "2026-12-28T17:00:00+01:00"


def test_saturday_counts_for_blocking_levels_only_with_the_on_call_service(contracts) -> None:
    """Vaiano on a profile without saturday_on_call: its blocking level loses the Saturday hours."""
    data = contracts.model_dump(by_alias=True, exclude_unset=True)
    data["tenants"]["vaiano"]["profile"] = "PRO"
    config = type(contracts).model_validate(data)
    opened = sla.parse_opened("2026-12-05T11:00")
    # Sat does not count; Mon 7: 8 h -> 18:00
    assert sla.due(config, "vaiano", "alta", "take_charge", opened).isoformat() == "2026-12-07T18:00:00+01:00"
    assert sla.due(contracts, "vaiano", "alta", "take_charge", opened).isoformat() == "2026-12-07T16:30:00+01:00"


def test_unknown_level_names_the_levels(capsys) -> None:
    assert main(["sla", "due", "--config", str(CONTRACTS), "--tenant", "cremona", "--level", "alta",
                 "--opened", "2026-12-05T11:00"]) == 2
    err = capsys.readouterr().err
    assert "'alta' is not in tenant cremona's service levels" in err
    assert "bloccante, urgente, media, migliorativa" in err


def test_a_missing_target_says_which_to_add(capsys) -> None:
    assert main(["sla", "due", "--config", str(CONTRACTS), "--tenant", "capannori", "--level", "livello4",
                 "--opened", "2026-12-05T11:00"]) == 2
    assert "no take_charge target" in capsys.readouterr().err


# --- the arithmetic on the calendar, DST inside an office span ----------------------------------------------

def _all_day_sundays() -> BusinessCalendar:
    return BusinessCalendar.build(CalendarSection(office_hours={"sunday": ["00:00-23:59"]}))


def test_working_time_across_the_spring_change_counts_real_hours() -> None:
    """Sun 29 Mar 2026 00:00+01:00 is 23:00Z; 20 real hours later is 19:00Z, 21:00+02:00 (wall time lost an hour)."""
    start = datetime(2026, 3, 29, 0, 0, tzinfo=ROME)
    assert _all_day_sundays().add_working_time(start, 20 * 3600).isoformat() == "2026-03-29T21:00:00+02:00"


def test_working_time_across_the_autumn_change_counts_real_hours() -> None:
    """Sun 25 Oct 2026 00:00+02:00 is Sat 22:00Z; +20 h is 18:00Z, 19:00+01:00 (wall time gained an hour)."""
    start = datetime(2026, 10, 25, 0, 0, tzinfo=ROME)
    assert _all_day_sundays().add_working_time(start, 20 * 3600).isoformat() == "2026-10-25T19:00:00+01:00"


def test_clock_hours_are_plain_elapsed_hours_across_dst() -> None:
    from custode.agent.service_levels.clock import add_target

    calendar = _all_day_sundays()
    # 01:00+01:00 is 00:00Z; +4 h is 04:00Z = 06:00+02:00, whatever the office hours
    start = datetime(2026, 3, 29, 1, 0, tzinfo=ROME)
    assert add_target(calendar, start, Target(Unit.CLOCK_TIME, 4 * 3600)).isoformat() == "2026-03-29T06:00:00+02:00"
    # Sat 24 Oct 23:00+02:00 is 21:00Z; +4 h is 01:00Z = 02:00+01:00 (the second 02:00)
    start = datetime(2026, 10, 24, 23, 0, tzinfo=ROME)
    assert add_target(calendar, start, Target(Unit.CLOCK_TIME, 4 * 3600)).isoformat() == "2026-10-25T02:00:00+01:00"


# --- how a contract's words become targets ---------------------------------------------------------------

@pytest.mark.parametrize("text, unit, amount", [
    ("8 working hours", Unit.WORKING_TIME, 8 * 3600), ("8h", Unit.WORKING_TIME, 8 * 3600),
    ("2 working days", Unit.WORKING_DAYS, 2), ("10 giorni lavorativi", Unit.WORKING_DAYS, 10),
    ("4 clock hours", Unit.CLOCK_TIME, 4 * 3600), ("4 ore solari", Unit.CLOCK_TIME, 4 * 3600),
    ("2wd", Unit.WORKING_DAYS, 2), ("90 working minutes", Unit.WORKING_TIME, 5400),
    ({"amount": 3, "unit": "working_days"}, Unit.WORKING_DAYS, 3),
])
def test_targets_read_as_contracts_write_them(text, unit, amount) -> None:
    assert parse_target(text) == Target(unit, float(amount))
    assert parse_target(parse_target(text).as_config()) == parse_target(text)


@pytest.mark.parametrize("text, says", [
    ("2 days", "a bare 'days' is ambiguous"), ("3 giorni", "a bare 'days' is ambiguous"),
    ("1.5 working days", "give whole days"), ("soon", "is not a service-level target"),
    ("0 working hours", "greater than zero"),
])
def test_ambiguous_targets_are_refused_with_the_fix(text, says) -> None:
    with pytest.raises(ValueError, match=says):
        parse_target(text)


def test_config_errors_name_the_place() -> None:
    bad = """
tenants:
  t:
    name: T
    service_levels:
      levels:
        alta: {priority: high, take_charge: 2 days}
        bassa: {priority: low}
      map: {checks: {backup: media}}
"""
    with pytest.raises(ConfigError) as caught:
        load_text(bad)
    text = str(caught.value)
    assert "tenants.t.service_levels.levels.alta.take_charge" in text and "ambiguous" in text
    assert "tenants.t.service_levels.levels.bassa" in text and "at least one target" in text


def test_mapping_picks_the_most_specific_level() -> None:
    config = load_text("""
tenants:
  t:
    name: T
    service_levels:
      levels:
        alta: {priority: high, take_charge: 2h}
        media: {priority: medium, take_charge: 8h}
        bassa: {priority: low, take_charge: 16h}
      map:
        severity: {critical: alta, warning: media}
        checks: {os_updates: bassa}
        jobs: {nightly-sql: alta}
        hosts: {srv-anagrafe: alta}
""").model
    assert sla.level_for(config, "t", "backup", "nightly-sql", "warning") == "alta"       # job
    assert sla.level_for(config, "t", "filesystem", "srv-anagrafe:/", "warning") == "alta"  # host
    assert sla.level_for(config, "t", "os_updates", "srv-anagrafe:updates", "warning") == "alta"  # host wins
    assert sla.level_for(config, "t", "os_updates", "srv2:updates", "critical") == "bassa"  # check over severity
    assert sla.level_for(config, "t", "filesystem", "srv2:/", "critical") == "alta"         # severity
    assert sla.level_for(config, "t", "filesystem", "srv2:/", "ok") == "media"              # default: a medium one


def test_the_calendar_of_a_blocking_level_shows_the_saturday_on_call(capsys) -> None:
    common = ["sla", "calendar", "--config", str(CONTRACTS), "--tenant", "vaiano", "--from", "2026-12-05", "--days",
              "1"]
    assert main([*common, "--level", "alta"]) == 0
    assert capsys.readouterr().out.split("\n")[1].split() == ["2026-12-05", "saturday", "working", "08:30-12:30"]
    assert main([*common, "--level", "media"]) == 0
    assert capsys.readouterr().out.split("\n")[1].split() == ["2026-12-05", "saturday", "closed", "no", "office",
                                                              "hours"]
