"""YAML 1.1 traps and one-pass reporting in ``config check`` (issue 19's config traps)."""

from __future__ import annotations

import pytest

from custode.agent.config_loader import ConfigError, load_text

HOST = "hosts:\n  web1:\n    address: 10.0.0.1\n    transport: ssh\n    ssh: {user: custode}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "c.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("word", ["off", "no", "OFF", "No"])
def test_an_unquoted_off_or_no_where_a_word_is_wanted_says_quote_it(word) -> None:
    [problem] = problems(HOST + f"    monitor: {word}\n")
    assert problem.startswith("c.yaml:6: hosts.web1.monitor: expected one of 'farm', 'agent' or 'off'; got False")
    assert f"YAML reads an unquoted {word} as false: write it in quotes, '{word}'" in problem


def test_a_quoted_off_is_the_word() -> None:
    loaded = load_text(HOST + "    monitor: 'off'\n", "c.yaml")
    assert loaded.model.hosts["web1"].monitor == "off"


def test_an_unquoted_time_is_a_base_60_number_and_says_so() -> None:
    text = (HOST + "updates:\n  windows:\n    w: {application: A, days: [thursday], start: 17:30, hosts: [web1], "
            "playbook: x.yaml}\n")
    found = [p for p in problems(text) if "start" in p]
    assert found == ["c.yaml:8: updates.windows.w.start: expected text; got 1050; YAML reads an unquoted 17:30 "
                     "as the base-60 number 1050: write it in quotes, '17:30'"]


def test_a_real_true_or_number_gets_no_yaml_hint() -> None:
    [problem] = problems("checks:\n  filesystem:\n    warning_avail_percent: true\n")
    assert "YAML reads" not in problem


def test_schema_errors_and_wrong_names_come_in_one_pass() -> None:
    text = ("tenants:\n  crema: {name: Comune di Crema}\nagent:\n  tenant: crema\n"
            "checks:\n  filesystem:\n    warning_avail_percent: lots\n"
            "backups:\n  mailboxes: [{type: maildir, name: m, path: /tmp/x}]\n  expected:\n    crem:\n"
            "      - {name: nightly, software: restic, schedule: '0 2 * * *'}\n")
    assert problems(text) == [
        "c.yaml:7: checks.filesystem.warning_avail_percent: expected a number; got 'lots'",
        "c.yaml:11: backups.expected.crem: tenant 'crem' is not defined under tenants; did you mean 'crema'?"]


def test_names_defined_in_a_section_with_errors_still_count() -> None:
    # hosts has an error, but web1 is written there: a window naming it is not also wrong.
    text = (HOST + "    bogus: 1\nupdates:\n  windows:\n    w: {application: A, days: [thursday], start: '17:30', "
            "hosts: [web1, web9], playbook: x.yaml}\n")
    found = problems(text)
    assert any("hosts.web1.bogus: unknown key" in p for p in found)
    assert any("web9" in p and "not defined" in p for p in found), found
    assert not any("host 'web1' is not defined" in p for p in found), found
