"""Update windows: the example farm's weekly table, holidays, closures, the CLI and the iCalendar file."""

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from custode.agent.cli import main
from custode.agent.config_loader import ConfigError, load, load_text
from custode.agent.updates.ics import build_calendar
from custode.agent.updates.windows import next_occurrence, occurrence_at, occurrences

ROOT = Path(__file__).resolve().parent.parent
FARM = ROOT / "config" / "examples" / "farm-node.yaml"

BRIEF_TABLE = {  # the brief's table: application, weekday, start
    "hypersic": ("APK HyperSIC", 3, "19:00", None),
    "sicraweb": ("Sicr@web (Maggioli)", 3, "17:30", None),
    "sicraweb-crema": ("Sicr@web (Maggioli)", 4, "15:30", "crema"),
    "halley": ("Halley", 4, "16:00", None),
    "sici": ("APK SICI", 4, "17:30", None),
}


def test_example_farm_config_reproduces_the_brief_table():
    config = load(FARM).model
    found = occurrences(config, date(2026, 11, 30), 7)
    assert {o.window for o in found} == set(BRIEF_TABLE)
    for occ in found:
        application, weekday, start, tenant = BRIEF_TABLE[occ.window]
        assert (occ.application, occ.start.weekday(), f"{occ.start:%H:%M}", occ.tenant) == \
               (application, weekday, start, tenant)


def test_christmas_and_new_year_fridays_skipped_christmas_eve_kept():
    config = load(FARM).model
    found = occurrences(config, date(2026, 12, 1), (date(2027, 1, 31) - date(2026, 12, 1)).days + 1)
    skipped = {(o.start.date(), o.window): o.reason for o in found if o.skipped}
    fridays = {"sicraweb-crema", "halley", "sici"}
    assert skipped == {**{(date(2026, 12, 25), w): "Natale" for w in fridays},
                       **{(date(2027, 1, 1), w): "Capodanno" for w in fridays}}
    eve = [o for o in found if o.start.date() == date(2026, 12, 24)]
    assert {o.window for o in eve} == {"sicraweb", "hypersic"} and not any(o.skipped for o in eve)
    assert len(found) == 9 * 5, "nine Thursdays and nine Fridays between 1 December and 31 January"


def test_a_closure_day_skips_christmas_eve_with_its_reason(write_config):
    text = FARM.read_text().replace("    - {from: 2026-08-10, to: 2026-08-21, reason: chiusura estiva}",
                                    "    - {from: 2026-12-24, reason: chiusura aziendale di Natale}")
    config = load(write_config(text)).model
    eve = occurrences(config, date(2026, 12, 24), 1)
    assert eve and all(o.skipped and o.reason == "chiusura aziendale di Natale" for o in eve)


def test_tenant_patron_day_skips_only_that_tenants_window(write_config):
    text = FARM.read_text().replace('patron: {day: "06-10", name: San Pantaleone}',
                                    'patron: {day: "12-04", name: Santa Barbara (test)}')
    config = load(write_config(text)).model
    friday = {o.window: o for o in occurrences(config, date(2026, 12, 4), 1)}
    assert friday["sicraweb-crema"].skipped and friday["sicraweb-crema"].reason == "Santa Barbara (test)"
    assert not friday["halley"].skipped and not friday["sici"].skipped


def test_summer_windows_carry_the_summer_offset_and_next_occurrence_skips_holidays():
    config = load(FARM).model
    summer = occurrences(config, date(2027, 7, 1), 2, ["sicraweb"])
    assert summer[0].start.isoformat() == "2027-07-01T17:30:00+02:00"
    after_christmas_eve = datetime.fromisoformat("2026-12-24T20:00:00+01:00")
    assert next_occurrence(config, "halley", after_christmas_eve).start.date() == date(2027, 1, 8)
    inside = occurrence_at(config, "sicraweb", datetime.fromisoformat("2026-12-03T18:00:00+01:00"))
    assert inside and inside.start.isoformat() == "2026-12-03T17:30:00+01:00"
    assert occurrence_at(config, "sicraweb", datetime.fromisoformat("2026-12-03T19:31:00+01:00")) is None


def test_acceptance_cli_json_from_a_subprocess():
    """custode windows list --from 2026-12-01 --weeks 9 --json --config FILE"""
    result = subprocess.run([sys.executable, "-m", "custode.agent", "windows", "list", "--from", "2026-12-01",
                             "--weeks", "9", "--json", "--config", str(FARM)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["config"] == str(FARM) and datetime.fromisoformat(document["generated_at"]).utcoffset()
    rows = document["windows"]
    assert isinstance(rows, list) and len(rows) == 45
    starts = [datetime.fromisoformat(r["start"]) for r in rows]
    assert starts == sorted(starts) and all(s.utcoffset() is not None for s in starts)
    for row in rows:
        assert isinstance(row["application"], str) and (row["tenant"] is None or isinstance(row["tenant"], str))
        assert datetime.fromisoformat(row["end"]) > datetime.fromisoformat(row["start"])
        assert isinstance(row["skipped"], bool) and (row["reason"] is None) == (not row["skipped"])
    assert sum(r["skipped"] for r in rows) == 6


def test_cli_table_names_skips(capsys):
    assert main(["windows", "list", "--from", "2026-12-21", "--weeks", "1", "--config", str(FARM)]) == 0
    out = capsys.readouterr().out
    assert "SKIPPED: Natale" in out and "15:30-17:30" in out and "3 skipped" in out


def test_ics_imports_with_an_independent_parser(tmp_path):
    import vobject  # another implementation than the icalendar package that wrote the file

    out = tmp_path / "windows.ics"
    assert main(["windows", "ics", "--from", "2026-12-21", "--weeks", "2", "--config", str(FARM),
                 "--output", str(out)]) == 0
    cal = vobject.readOne(out.read_text(encoding="utf-8"))
    events = cal.vevent_list
    assert len(events) == 10
    cancelled = [e for e in events if e.status.value == "CANCELLED"]
    assert len(cancelled) == 6 and all("Natale" in e.summary.value or "Capodanno" in e.summary.value
                                       for e in cancelled)
    first = min(events, key=lambda e: e.dtstart.value)
    assert first.dtstart.value.isoformat() == "2026-12-24T17:30:00+01:00"
    assert len({e.uid.value for e in events}) == 10


def test_ics_summer_time_comes_from_the_embedded_timezone():
    import vobject

    config = load(FARM).model
    data = build_calendar(occurrences(config, date(2027, 7, 1), 1), language="en")
    event = vobject.readOne(data.decode()).vevent_list[0]
    assert event.dtstart.value.utcoffset().total_seconds() == 7200
    assert "update" in event.summary.value


@pytest.mark.parametrize("fragment, message", [
    ("days: [thursday]\n      start: \"25:00\"", "not a time of day"),
    ("days: [funday]\n      start: \"17:30\"", "not a weekday"),
    ("days: [thursday]\n      start: \"17:30\"\n      hosts: [nowhere]", "host 'nowhere' is not defined"),
    ("days: [thursday]\n      start: \"17:30\"\n      tenant: cremma", "did you mean 'crema'"),
])
def test_window_config_errors_name_the_line(fragment, message):
    text = f"""tenants:
  crema: {{name: Comune di Crema}}
agent: {{tenant: crema}}
updates:
  windows:
    w1:
      application: X
      playbook: x.yaml
      {fragment}
"""
    with pytest.raises(ConfigError) as info:
        load_text(text, "farm.yaml")
    assert message in str(info.value) and "farm.yaml:" in str(info.value)
