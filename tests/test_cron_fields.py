"""Cron lines in config: the wrong field is named with its range (issue: '0 25 * * *' said 'use five fields')."""

from __future__ import annotations

import pytest

from custode.agent.config_loader import ConfigError, load_text
from custode.agent.cron_fields import cron_problem


@pytest.mark.parametrize("line", ["0 22 * * *", "30 21 * * 1-5", "*/15 * * * *", "0 6 1,15 jan-mar sun",
                                  "0 0 * * 7", "5-55/10 8-18 * * MON-FRI"])
def test_lines_cron_reads_are_accepted(line) -> None:
    assert cron_problem(line) is None


@pytest.mark.parametrize(("line", "message"), [
    ("0 25 * * *", "hour field: 25 is out of range 0-23"),
    ("60 * * * *", "minute field: 60 is out of range 0-59"),
    ("0 0 0 * *", "day of month field: 0 is out of range 1-31"),
    ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
    ("0 0 * * 8", "day of week field: 8 is out of range 0-7"),
    ("0 0 * * lun", "day of week field: 'lun' is not a number or a name (sun, mon, tue, …)"),
    ("0 18-8 * * *", "the range 18-8 runs backwards"),
    ("*/0 * * * *", "a step of 0 never advances"),
    ("0 22 * *", "4 fields; a cron line has five"),
    ("0 22 * * * *", "6 fields; a cron line has five"),
    ("0 2? * * *", "hour field: '2?' is not '*', a value"),
])
def test_a_wrong_field_is_named_with_what_it_allows(line, message) -> None:
    problem = cron_problem(line)
    assert problem is not None and message in problem


def test_the_config_error_carries_the_field_and_the_line() -> None:
    text = ("backups:\n  mailboxes: [{type: maildir, name: m, path: /tmp/none}]\n"
            "  expected:\n    default: [{name: nightly, software: NAS script, schedule: '0 25 * * *'}]\n")
    with pytest.raises(ConfigError) as caught:
        load_text(text, "custode.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert any("hour field: 25 is out of range 0-23" in p and "custode.yaml:4" in p for p in problems), problems
