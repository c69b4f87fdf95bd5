"""An outside plug-in installed with pip works: its collector and its backup parser, through entry points.

``tests/data/plugin_example`` is the README's example plug-in: a distribution
of its own that imports only ``custode.*``. pip builds and installs it
offline into a temporary folder, and Custode, started as a separate process
with that folder on its path, runs the plug-in's collector (``custode once``)
and classifies a mail with the plug-in's parser (``custode mail classify``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent / "data" / "plugin_example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    source = work / "source"
    shutil.copytree(EXAMPLE, source)  # the build writes build/ and *.egg-info beside the sources
    target = work / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                             "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert (target / "custode_ups_example" / "collector.py").exists()
    return target


def custode(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "custode.agent", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


def test_the_plugin_collector_runs_with_its_own_config_section(installed, tmp_path) -> None:
    status = tmp_path / "ups-status"
    status.write_text("87\n", encoding="utf-8")
    config = tmp_path / "custode.yaml"
    config.write_text(f"agent:\n  data_dir: {tmp_path / 'data'}\n"
                      f"collectors:\n  ups_example:\n    status_file: {status}\n", encoding="utf-8")
    result = custode(installed, "once", "--format", "prometheus", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ups_example_battery_charge_ratio 0.87" in result.stdout
    assert 'custode_collector_success{collector="ups_example"} 1.0' in result.stdout

    config.write_text(f"agent:\n  data_dir: {tmp_path / 'data'}\n"
                      "collectors:\n  ups_example:\n    status_fil: /x\n", encoding="utf-8")
    checked = custode(installed, "config", "check", str(config), cwd=tmp_path)
    assert checked.returncode == 1 and "collectors.ups_example.status_fil" in checked.stderr + checked.stdout


def test_the_plugin_parser_classifies_its_product_before_the_built_ins(installed, tmp_path) -> None:
    mail = tmp_path / "tape.eml"
    mail.write_bytes(b"From: library@example.com\r\nTo: backup@example.com\r\n"
                     b"Subject: Tape library job Anagrafe: Completed with warnings\r\n"
                     b"Date: Mon, 07 Dec 2026 03:10:00 +0100\r\n\r\nTape library report\r\n")
    result = custode(installed, "mail", "classify", str(mail), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout.splitlines()[0])
    assert (verdict["software"], verdict["job"], verdict["status"]) == ("Example Tape Library", "Anagrafe", "warning")

    without = subprocess.run([sys.executable, "-m", "custode.agent", "mail", "classify", str(mail)],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert json.loads(without.stdout.splitlines()[0])["status"] != "warning"  # the plug-in, not a built-in, read it
