"""Backup parsers are found, not listed: every module of the package, plus installed plug-ins, in PRIORITY order."""

from __future__ import annotations

import logging
import pkgutil

import pytest
from plugin_dist import fake_distribution

import custode.agent.backups.parsers as registry
from custode.agent.backups.parsers import classify, contract_problems, parsers
from custode.agent.mail.message import parse_message

PLUGIN = '''
from custode.agent.backups.report import BackupReport
SOFTWARE = "Vendor Tape Robot"
PRIORITY = 5
NEEDLES = ("tape robot",)
def parse(message):
    if "Tape robot run" in message.subject:
        return BackupReport(software=SOFTWARE, job="robot", status="success")
    return None
'''


@pytest.fixture
def fresh_registry(monkeypatch):
    monkeypatch.setattr(registry, "_loaded", None)
    monkeypatch.setattr(registry, "_broken", {})
    yield
    registry._loaded = None


def test_every_module_of_the_package_is_a_registered_parser() -> None:
    modules = {info.name for info in pkgutil.iter_modules(registry.__path__) if not info.name.startswith("_")}
    registered = [module.__name__.rsplit(".", 1)[-1] for module in parsers()]
    assert set(registered) == modules
    assert registry.broken_parsers() == {}
    for module in parsers():
        assert contract_problems(module) == [], module.__name__


def test_the_order_is_by_priority_and_priorities_are_unique() -> None:
    priorities = [module.PRIORITY for module in parsers()]
    assert priorities == sorted(priorities) and len(set(priorities)) == len(priorities)
    names = [module.__name__.rsplit(".", 1)[-1] for module in parsers()]
    assert names.index("veeam_agent") < names.index("veeam_br")  # the agent's reports share B&R's layout
    assert names[-1] == "wbadmin"  # plain wbadmin output is quoted by other tools' logs


def test_an_installed_plugin_parser_is_used_and_a_broken_one_is_reported(tmp_path, monkeypatch, fresh_registry,
                                                                         caplog) -> None:
    site = fake_distribution(tmp_path / "site", "custode-tape-robot", registry.ENTRY_POINT_GROUP,
                             {"tape_robot": "custode_tape_robot", "half_done": "custode_half_done"},
                             {"custode_tape_robot": PLUGIN, "custode_half_done": "SOFTWARE = 'Half'\n"})
    monkeypatch.syspath_prepend(str(site))
    with caplog.at_level(logging.ERROR, logger="custode.agent.backups.parsers"):
        loaded = parsers()
    assert loaded[0].__name__ == "custode_tape_robot"  # PRIORITY 5 comes first
    broken = registry.broken_parsers()
    assert set(broken) == {"half_done"}
    assert "custode_half_done" in broken["half_done"] and "no PRIORITY" in broken["half_done"]
    assert any(getattr(record, "parser", None) == "half_done" for record in caplog.records)
    verdict = classify(parse_message(b"From: robot@example.com\r\nSubject: Tape robot run\r\n\r\nok\r\n"))
    assert verdict.status == "success" and verdict.parser == "custode_tape_robot"
