"""One JSON convention for the listing commands: --format json is one document, --json its alias.

Each document names the config (and state DB) it was made from and carries
ISO 8601 times with their offset; the human output's first line names them too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FARM = Path("farm.yaml")  # config/examples/farm-node.yaml with its data_dir moved to the test's folder

COMMANDS = [
    (["once"], "collectors", False),
    (["windows", "list", "--config", str(FARM), "--from", "2026-12-01"], "windows", False),
    (["farm", "list", "--config", str(FARM)], "hosts", True),
    (["restore-test", "list", "--config", str(FARM)], "sets", True),
    (["backups", "status", "--config", str(FARM)], "jobs", True),
    (["update", "history", "--config", str(FARM)], "runs", True),
    (["update", "notices", "--dry-run", "--config", str(FARM)], "notices", True),
    (["tickets", "list", "--config", str(FARM)], "tickets", True),
    (["tickets", "outbox", "--config", str(FARM)], "operations", True),
    (["report", "outbox", "--config", str(FARM)], "reports", True),
]


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    example = (ROOT / "config/examples/farm-node.yaml").read_text()
    (tmp_path / "farm.yaml").write_text(example.replace("data_dir: /var/lib/custode", f"data_dir: {tmp_path / 'data'}")
                                        .replace("../../playbooks", str(ROOT / "playbooks")))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CUSTODE_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "custode.agent", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)


def _times(value, key: str = "") -> list[str]:
    from custode.agent.cli_output import is_time_key

    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v, key)]
    return [value] if isinstance(value, str) and is_time_key(key) else []


@pytest.mark.parametrize(("args", "kind", "state"), COMMANDS, ids=[" ".join(c[0][:2]) for c in COMMANDS])
def test_format_json_is_one_document_with_its_sources_and_offset_times(tmp_path, args, kind, state) -> None:
    if args[0] in ("backups", "update", "tickets"):  # these read the state DB: make one
        (tmp_path / "data").mkdir()
        from custode.agent.state import State

        State(tmp_path / "data" / "state.db").close()
    done = _run([*args, "--format", "json"], tmp_path)
    assert done.returncode in (0, 1), done.stderr
    document = json.loads(done.stdout)
    assert isinstance(document[kind], list)
    assert document["config"] == ("farm.yaml" if "--config" in args else "<embedded default>")
    assert ("state_db" in document) == state
    assert datetime.fromisoformat(document["generated_at"]).utcoffset() is not None
    for text in _times(document):
        assert datetime.fromisoformat(text).utcoffset() is not None, text
    alias = _run([*args, "--json"], tmp_path)
    assert json.loads(alias.stdout)[kind] == document[kind] or kind in ("collectors", "hosts")


def test_the_human_output_starts_with_the_config_and_state_db_it_read(tmp_path) -> None:
    done = _run(["farm", "list", "--config", str(FARM)], tmp_path)
    assert done.stdout.splitlines()[0] == f"Config: farm.yaml · state DB: {tmp_path / 'data' / 'state.db'}"
