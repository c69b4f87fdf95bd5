"""The SLA clock: due times over holidays, patron days, closures, weekends, lunch breaks and DST.

Every row of the table is checked twice: through take_charge_due and through
``custode sla due`` (main() in-process; a few rows also as a subprocess, as a
sysadmin runs it). Expected values are worked out by hand in the comments.
The default calendar: Monday-Friday 08:30-12:30 and 14:00-18:00 (8 h a day);
default SLA high 8 h, medium 12 h, low 16 h of office time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from custode.agent.calendar import ROME
from custode.agent.cli import main
from custode.agent.config_loader import load_text
from custode.agent.tickets.sla import parse_opened, resolve_due, take_charge_due, tenant_calendar

ROOT = Path(__file__).resolve().parent.parent

TENANTS_YAML = """\
agent:
  tenant: cremona
calendar:
  closures:
    - {from: 2026-08-10, to: 2026-08-21, reason: chiusura estiva}
tenants:
  cremona:
    name: Comune di Cremona
    calendar: {province: CR}
  crema:
    name: Comune di Crema
    calendar:
      province: CR
      patron: {day: "01-25", name: Conversione di San Paolo}
  sabato:
    name: Comune aperto il sabato
    calendar:
      office_hours:
        monday: ["08:30-12:30", "14:00-18:00"]
        tuesday: ["08:30-12:30", "14:00-18:00"]
        wednesday: ["08:30-12:30", "14:00-18:00"]
        thursday: ["08:30-12:30", "14:00-18:00"]
        friday: ["08:30-12:30", "14:00-18:00"]
        saturday: ["08:30-12:30"]
tickets:
  sla:
    low: {take_charge: 1h}
    high: {take_charge: 8h, resolve: 16h}
"""

CONFIGS = {"default": "", "tenants": TENANTS_YAML}

CASES = [
    # config, tenant, priority, opened, expected due
    # Thu 24 Dec 17-18 (1 h); Fri 25 Natale, Sat 26, Sun 27; Mon 28 08:30-12:30 (4 h) + 14:00-17:00 (3 h)
    pytest.param("default", None, "high", "2026-12-24T17:00", "2026-12-28T17:00:00+01:00", id="christmas"),
    # Wed 24 Dec 2025 1 h; Thu 25 Natale; Fri 26 Santo Stefano; weekend; Mon 29: 7 h -> 17:00
    pytest.param("default", None, "high", "2025-12-24T17:00", "2025-12-29T17:00:00+01:00", id="st-stephen-friday"),
    # Mon 7 Dec 1 h; Tue 8 Immacolata; Wed 9: 7 h -> 17:00
    pytest.param("default", None, "high", "2026-12-07T17:00", "2026-12-09T17:00:00+01:00", id="8-december"),
    # low 16 h: Thu 31 Dec 1 h (15 left); Fri 1 Jan Capodanno; weekend; Mon 4: 8 h (7 left);
    # Tue 5: 4 h morning (3 left), 14:00 + 3 h = 17:00
    pytest.param("default", None, "low", "2026-12-31T17:00", "2027-01-05T17:00:00+01:00", id="new-year"),
    # medium 12 h: Tue 5 Jan 1 h (11); Wed 6 Epifania; Thu 7: 8 h (3); Fri 8: 08:30 + 3 h = 11:30
    pytest.param("default", None, "medium", "2027-01-05T17:00", "2027-01-08T11:30:00+01:00", id="epiphany"),
    # Fri 26 Mar 2027 1 h (+01:00); Sun 28 Easter and summer time; Mon 29 Lunedì dell'Angelo;
    # Tue 30: 7 h -> 17:00, now +02:00
    pytest.param("default", None, "high", "2027-03-26T17:00", "2027-03-30T17:00:00+02:00", id="easter-monday"),
    # 25 April 2027 is a Sunday: nothing moves. Fri 23 1 h; Mon 26: 7 h -> 17:00
    pytest.param("default", None, "high", "2027-04-23T17:00", "2027-04-26T17:00:00+02:00", id="25-april-sunday"),
    # 25 April 2029 is a Wednesday: Tue 24 1 h; Wed 25 closed; Thu 26: 7 h -> 17:00
    pytest.param("default", None, "high", "2029-04-24T17:00", "2029-04-26T17:00:00+02:00", id="25-april-weekday"),
    # Thu 30 Apr 2026 1 h; Fri 1 May Festa del Lavoro; weekend; Mon 4 May: 7 h -> 17:00
    pytest.param("default", None, "high", "2026-04-30T17:00", "2026-05-04T17:00:00+02:00", id="1-may"),
    # Mon 1 Jun 2026 1 h; Tue 2 Festa della Repubblica; Wed 3: 7 h -> 17:00
    pytest.param("default", None, "high", "2026-06-01T17:00", "2026-06-03T17:00:00+02:00", id="2-june"),
    # Mon 14 Aug 2028 1 h; Tue 15 Ferragosto; Wed 16: 7 h -> 17:00
    pytest.param("default", None, "high", "2028-08-14T17:00", "2028-08-16T17:00:00+02:00", id="15-august"),
    # Fri 29 Oct 2027 1 h (+02:00); Sun 31 back to winter time; Mon 1 Nov Ognissanti; Tue 2: 7 h -> 17:00 +01:00
    pytest.param("default", None, "high", "2027-10-29T17:00", "2027-11-02T17:00:00+01:00", id="1-november-dst"),
    # 4 October is national again from 2026 (a Monday in 2027): Fri 1 Oct 1 h; Mon 4 closed; Tue 5: 7 h -> 17:00
    pytest.param("default", None, "high", "2027-10-01T17:00", "2027-10-05T17:00:00+02:00", id="4-october"),
    # Fri 20 Nov 1 h; weekend; Mon 23: 7 h -> 17:00
    pytest.param("default", None, "high", "2026-11-20T17:00", "2026-11-23T17:00:00+01:00", id="weekend"),
    # Saturday: the clock starts Monday 08:30; medium 12 h: Mon 8 h; Tue 08:30 + 4 h = 12:30
    pytest.param("default", None, "medium", "2026-11-21T10:00", "2026-11-24T12:30:00+01:00", id="opened-saturday"),
    # Sunday night 23:30: same as above
    pytest.param("default", None, "medium", "2026-11-22T23:30", "2026-11-24T12:30:00+01:00", id="sunday-night"),
    # Tue 03:00: 08:30-12:30 (4 h) + 14:00-18:00 (4 h) -> 18:00 the same day
    pytest.param("default", None, "high", "2026-11-24T03:00", "2026-11-24T18:00:00+01:00", id="opened-at-night"),
    # on a holiday (Tue 8 Dec 10:00): nothing counts until Wed 9 08:30; 8 h -> 18:00
    pytest.param("default", None, "high", "2026-12-08T10:00", "2026-12-09T18:00:00+01:00", id="opened-on-holiday"),
    # Fri 27 Mar 2026 1 h (+01:00); Sun 29 summer time; Mon 30: 7 h -> 17:00 +02:00
    pytest.param("default", None, "high", "2026-03-27T17:00", "2026-03-30T17:00:00+02:00", id="dst-spring"),
    # Fri 23 Oct 2026 1 h (+02:00); Sun 25 winter time; Mon 26: 7 h -> 17:00 +01:00
    pytest.param("default", None, "high", "2026-10-23T17:00", "2026-10-26T17:00:00+01:00", id="dst-autumn"),
    # 02:30 on 25 Oct 2026 happens twice (taken as the first); Sunday anyway: Mon 26 8 h -> 18:00 +01:00
    pytest.param("default", None, "high", "2026-10-25T02:30", "2026-10-26T18:00:00+01:00", id="dst-repeated-hour"),
    # an offset is kept: 16:00 UTC is 17:00 in Rome on 24 Dec -> as "christmas"
    pytest.param("default", None, "high", "2026-12-24T16:00:00+00:00", "2026-12-28T17:00:00+01:00", id="utc-input"),
    # no tenant calendar: 13 Nov 2026 is an ordinary Friday. Thu 12 1 h; Fri 13: 7 h -> 17:00
    pytest.param("default", None, "high", "2026-11-12T17:00", "2026-11-13T17:00:00+01:00", id="no-patron"),
    # low is 1 h in this config: Mon 12:00-12:30 (30 min), lunch, 14:00 + 30 min = 14:30
    pytest.param("tenants", "cremona", "low", "2026-11-23T12:00", "2026-11-23T14:30:00+01:00", id="lunch-break"),
    # province CR: Fri 13 Nov is Sant'Omobono in Cremona. Thu 12 1 h; Fri 13 closed; weekend; Mon 16: 7 h -> 17:00
    pytest.param("tenants", "cremona", "high", "2026-11-12T17:00", "2026-11-16T17:00:00+01:00", id="patron-cremona"),
    # Crema's own patron (25 Jan) replaces Cremona's: 13 Nov is a working day. Thu 12 1 h; Fri 13 7 h -> 17:00
    pytest.param("tenants", "crema", "high", "2026-11-12T17:00", "2026-11-13T17:00:00+01:00", id="crema-not-cremona"),
    # Fri 22 Jan 2027 1 h; weekend; Mon 25 Conversione di San Paolo; Tue 26: 7 h -> 17:00
    pytest.param("tenants", "crema", "high", "2027-01-22T17:00", "2027-01-26T17:00:00+01:00", id="patron-override"),
    # the provider's closure 10-21 Aug: Fri 7 Aug 1 h; 10-21 closed; weekend; Mon 24: 7 h -> 17:00
    pytest.param("tenants", "cremona", "high", "2026-08-07T17:00", "2026-08-24T17:00:00+02:00", id="closure"),
    # Saturday 08:30-12:30 counts: Fri 20 Nov 1 h (7); Sat 21 4 h (3); Mon 23 08:30 + 3 h = 11:30
    pytest.param("tenants", "sabato", "high", "2026-11-20T17:00", "2026-11-23T11:30:00+01:00", id="saturday-hours"),
    # but not when Saturday is Santo Stefano: Thu 24 Dec 1 h; 25, 26 closed; Mon 28: 7 h -> 17:00
    pytest.param("tenants", "sabato", "high", "2026-12-24T17:00", "2026-12-28T17:00:00+01:00",
                 id="saturday-st-stephen"),
]


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sla")
    out = {}
    for name, text in CONFIGS.items():
        path = folder / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        out[name] = (load_text(text).model, path)
    return out


def _cli_args(config_name: str, path: Path, tenant: str | None, priority: str, opened: str) -> list[str]:
    args = ["sla", "due", "--priority", priority, "--opened", opened]
    if config_name != "default":
        args += ["--config", str(path)]
    if tenant:
        args += ["--tenant", tenant]
    return args


@pytest.mark.parametrize("config_name, tenant, priority, opened, expected", CASES)
def test_take_charge_due(configs, capsys, config_name, tenant, priority, opened, expected):
    config, path = configs[config_name]
    due = take_charge_due(config, tenant, priority, parse_opened(opened))
    assert due.isoformat() == expected
    assert due.tzinfo is ROME
    assert main(_cli_args(config_name, path, tenant, priority, opened)) == 0
    captured = capsys.readouterr()
    assert captured.out == expected + "\n" and captured.err == ""


def custode(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "custode.agent", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=ROOT, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("config_name, tenant, priority, opened, expected",
                         [c for c in CASES if c.id in ("christmas", "easter-monday", "patron-cremona",
                                                       "patron-override", "saturday-hours")])
def test_cli_in_a_subprocess(configs, config_name, tenant, priority, opened, expected):
    _, path = configs[config_name]
    result = custode(*_cli_args(config_name, path, tenant, priority, opened))
    assert (result.returncode, result.stdout, result.stderr) == (0, expected + "\n", "")


def test_resolve_due_uses_the_resolve_target(configs):
    config, _ = configs["tenants"]
    # high resolve 16 h for Cremona: Thu 12 Nov 1 h (15); Fri 13 Sant'Omobono; weekend; Mon 16 8 h (7);
    # Tue 17 08:30-12:30 (3 left), 14:00 + 3 h = 17:00
    opened = datetime(2026, 11, 12, 17, 0, tzinfo=ROME)
    assert resolve_due(config, "cremona", "high", opened).isoformat() == "2026-11-17T17:00:00+01:00"
    assert resolve_due(config, "cremona", "medium", opened) is None, "no resolve target for medium"
    assert resolve_due(configs["default"][0], None, "high", opened) is None


def test_resolve_through_the_cli(configs, capsys):
    _, path = configs["tenants"]
    assert main(["sla", "due", "--priority", "high", "--opened", "2026-11-12T17:00", "--tenant", "cremona",
                 "--resolve", "--config", str(path)]) == 0
    assert capsys.readouterr().out == "2026-11-17T17:00:00+01:00\n"
    assert main(["sla", "due", "--priority", "high", "--opened", "2026-11-12T17:00", "--resolve"]) == 2
    assert "tickets.sla.high.resolve" in capsys.readouterr().err


def test_tenant_calendar_choice(configs):
    config, _ = configs["tenants"]
    assert tenant_calendar(config, "cremona").closed_reason(datetime(2026, 11, 13).date()) == "Sant'Omobono"
    assert tenant_calendar(config, None).closed_reason(datetime(2026, 11, 13).date()) is None
    assert tenant_calendar(config, "default").closed_reason(datetime(2026, 11, 13).date()) is None
    with pytest.raises(ValueError, match="'milano' is not defined.*crema, cremona, sabato"):
        tenant_calendar(config, "milano")


def test_parse_opened():
    assert parse_opened("2026-12-24T17:00") == datetime(2026, 12, 24, 17, 0, tzinfo=ROME)
    assert parse_opened("2026-07-01T09:00").utcoffset().total_seconds() == 7200
    aware = parse_opened("2026-12-24T16:00+00:00")
    assert aware.tzinfo == timezone.utc and aware.hour == 16
    with pytest.raises(ValueError, match="does not exist in Europe/Rome"):
        parse_opened("2026-03-29T02:30")
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_opened("24/12/2026 17:00")
    with pytest.raises(ValueError, match="no time zone"):
        take_charge_due(load_text("").model, None, "high", datetime(2026, 12, 24, 17, 0))


@pytest.mark.parametrize("args, words", [
    (["--opened", "2026-03-29T02:30"], "does not exist in Europe/Rome"),
    (["--opened", "yesterday"], "ISO 8601"),
    (["--opened", "2026-12-24T17:00", "--tenant", "crema"], "pass --config PATH"),
])
def test_cli_errors_are_one_line_and_exit_2(args, words):
    result = custode("sla", "due", "--priority", "high", *args)
    assert result.returncode == 2 and result.stdout == ""
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_unknown_tenant_in_a_config_names_the_defined_ones(configs, capsys):
    _, path = configs["tenants"]
    assert main(["sla", "due", "--priority", "high", "--opened", "2026-12-24T17:00", "--tenant", "milano",
                 "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'milano'" in err and "crema, cremona, sabato" in err


def test_cli_without_config_ignores_the_default_config_location(monkeypatch, capsys, tmp_path):
    """A config at the default path must not change the answer unless --config names it."""
    import custode.agent.config_loader as loader

    other = tmp_path / "custode.yaml"
    other.write_text("calendar:\n  closures: ['2026-12-28']\n", encoding="utf-8")
    monkeypatch.setattr(loader, "default_config_path", lambda: other)
    assert main(["sla", "due", "--priority", "high", "--opened", "2026-12-24T17:00"]) == 0
    assert capsys.readouterr().out == "2026-12-28T17:00:00+01:00\n"
    assert main(["sla", "due", "--priority", "high", "--opened", "2026-12-24T17:00", "--config", str(other)]) == 0
    assert capsys.readouterr().out == "2026-12-29T17:00:00+01:00\n", "the closure on the 28th moves it a day"


def test_calendar_lists_working_and_closed_days(configs, capsys):
    _, path = configs["tenants"]
    assert main(["sla", "calendar", "--config", str(path), "--tenant", "cremona", "--from", "2026-11-12",
                 "--days", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["DATE", "DAY", "STATE"]
    assert lines[1].split()[:3] == ["2026-11-12", "thursday", "working"] and "08:30-12:30" in lines[1]
    assert lines[2].split()[:3] == ["2026-11-13", "friday", "closed"] and "Sant'Omobono" in lines[2]
    assert lines[3].split()[:3] == ["2026-11-14", "saturday", "closed"] and "no office hours" in lines[3]
    assert len(lines) == 5
