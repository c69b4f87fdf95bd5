"""restore_tests: config errors name the line, the key and the fix."""

from __future__ import annotations

import pytest

from custode.agent.config_loader import ConfigError, load_text
from custode.agent.sizes import parse_size


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_text(text)
    return str(caught.value)


def test_a_restic_set_needs_a_repository_and_an_absolute_source():
    text = problems("restore_tests:\n  sets:\n    a: {backend: restic, source: dati}\n")
    assert "backend restic needs 'repository'" in text and ":3:" in text
    text = problems("restore_tests:\n  sets:\n    a: {backend: restic, repository: /r, source: dati}\n")
    assert "must be an absolute path" in text


def test_a_password_must_be_a_reference_not_the_secret():
    text = problems("restore_tests:\n  sets:\n    a: {backend: restic, repository: /r, source: /srv,\n"
                    "        password: hunter2}\n")
    assert "a secret must not be written in the config" in text and "hunter2" not in text


def test_command_templates_are_checked_for_placeholders_and_quoting_per_host_shell():
    base = """
updates:
  hosts:
    win: {address: win.lan, transport: winrm, winrm: {user: u, password: {env: P}}}
restore_tests:
  sets:
    w:
      backend: command
      host: win
      source: 'D:\\Dati'
      command:
        snapshot: Get-Thing
        restore: %s
"""
    unquoted = problems(base % "wbadmin start recovery -recoveryTarget:{{ target }} -items:'{{ items }}'")
    assert "restore_tests.sets.w.command.restore" in unquoted and "must be inside single quotes" in unquoted
    assert ":13:" in unquoted
    unknown = problems(base % "x '{{ files }}'")
    assert "unknown placeholder {{ files }}" in unknown
    assert load_text(base % "wbadmin start recovery -recoveryTarget:'{{ target }}' -items:'{{ items }}'")


def test_a_command_set_on_an_undefined_host_is_named():
    text = problems("restore_tests:\n  sets:\n    w:\n      backend: command\n      host: halley-ap\n"
                    "      source: /srv\n      command: {snapshot: a, restore: b}\n"
                    "updates:\n  hosts:\n    halley-app: {address: h, transport: ssh}\n")
    assert "host 'halley-ap' is not defined under hosts; did you mean 'halley-app'?" in text


def test_sizes_read_like_a_sysadmin_writes_them():
    assert parse_size("2GiB") == 2 * 1024 ** 3
    assert parse_size("500MB") == 500 * 1000 ** 2
    assert parse_size(1024) == 1024
    for bad in ("lots", "-1", "0", "3 parsecs", True):
        with pytest.raises(ValueError, match="500MB"):
            parse_size(bad)


def test_coverage_of_a_remote_host_is_refused_rather_than_scanning_the_wrong_machine():
    text = problems("updates:\n  hosts:\n    win: {address: w, transport: ssh}\nrestore_tests:\n  sets:\n    w:\n"
                    "      backend: command\n      host: win\n      source: /srv\n"
                    "      command: {snapshot: a, restore: b}\n      coverage: {volumes: [/srv]}\n")
    assert "coverage scans the volumes of the machine Custode runs on" in text
