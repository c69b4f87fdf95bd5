"""``custode config init`` writes a starter that passes ``config check`` as it is."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _custode(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "custode.agent", *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(home), "CUSTODE_DATA_DIR": str(home / "d"),
                               **env})


@pytest.mark.parametrize("kind", ["comune", "farm", "reference"])
def test_each_starter_is_written_private_and_checks_clean(tmp_path, kind) -> None:
    target = tmp_path / "etc" / "custode.yaml"
    done = _custode("config", "init", kind, "-o", str(target), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    source = {"comune": "config/examples/comune.yaml", "farm": "config/examples/farm-node.yaml",
              "reference": "config/reference.yaml"}[kind]
    shipped = (ROOT / source).read_text()
    if kind == "farm":  # its playbooks are written beside it
        assert sorted(p.name for p in (target.parent / "playbooks").iterdir()) == sorted(
            p.name for p in (ROOT / "playbooks").glob("*.yaml"))
        shipped = shipped.replace("playbooks_dir: ../../playbooks", "playbooks_dir: playbooks   ")
    assert target.read_text() == shipped  # the shipped example itself, not a second copy that drifts
    # the secrets the starter refers to exist in a real service's environment
    secrets = {name: "x" for name in re.findall(r"\{env: ([A-Z0-9_]+)\}", target.read_text())}
    checked = _custode("config", "check", str(target), home=tmp_path, **secrets)
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_an_existing_config_is_kept_unless_forced(tmp_path) -> None:
    target = tmp_path / "custode.yaml"
    target.write_text("agent: {tenant: mine}\n")
    refused = _custode("config", "init", "-o", str(target), home=tmp_path)
    assert refused.returncode == 1 and "exists" in refused.stderr and "--force" in refused.stderr
    assert target.read_text() == "agent: {tenant: mine}\n"
    assert _custode("config", "init", "-o", str(target), "--force", home=tmp_path).returncode == 0
    assert "tenant: crema" in target.read_text()


def test_custode_config_names_the_default_target(tmp_path) -> None:
    target = tmp_path / "from-env.yaml"
    done = _custode("config", "init", "farm", home=tmp_path, CUSTODE_CONFIG=str(target))
    assert done.returncode == 0 and target.exists(), done.stderr
