"""The shipped Prometheus alert rules: valid for promtool, firing as designed, on metrics Custode exposes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import require_binary

pytestmark = pytest.mark.real_clock  # starts a Go program (conftest.GO_PROGRAMS)

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "packaging" / "prometheus" / "custode-alerts.yml"
UNIT_TESTS = ROOT / "tests" / "data" / "prometheus" / "custode-alerts-test.yml"


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    promtool = require_binary("promtool", "prometheus")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run([promtool, "test", "rules", UNIT_TESTS.name], cwd=UNIT_TESTS.parent,
                          capture_output=True, text=True, timeout=60)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_metric_a_rule_uses_is_one_custode_exposes():
    """A renamed metric must break this test, not silently disarm an alert."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "agent").rglob("*.py"))
    source += "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "collectors").rglob("*.py"))
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    used = {name for rule in rules for name in re.findall(r"\bcustode_[a-z_]+", rule["expr"])}
    assert used, "the rules reference no Custode metric"
    assert {name for name in used if f'"{name}"' not in source} == set()
