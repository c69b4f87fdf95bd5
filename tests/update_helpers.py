"""Config and runner builders shared by the update-run tests (local, SSH, WinRM)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from custode.agent.config_loader import load
from custode.agent.updates.service import open_runner

PLAYBOOKS = Path(__file__).resolve().parent / "data" / "playbooks"


def toy_config(app, host_block: str = "transport: local", *, playbook: str = "toyapp.yaml", version: str = "2.0",
               duration: str = "2h", days: str = "[monday, tuesday, wednesday, thursday, friday, saturday, sunday]",
               start: str = "00:00", referents: str = "[]", extra: str = "", playbooks: Path = PLAYBOOKS,
               host_name: str = "app1") -> str:
    return f"""
agent: {{tenant: crema, hostname: custode-node}}
tenants:
  crema:
    name: Comune di Crema
    referents: {referents}
updates:
  playbooks_dir: {playbooks}
  hosts:
    {host_name}:
      address: 127.0.0.1
      tenant: crema
      {host_block}
      vars: {{app_root: "{app.root}", app_service: {app.name}, app_port: "{app.port}"}}
  windows:
    toy:
      application: Toy App
      tenant: crema
      days: {days}
      start: "{start}"
      duration: {duration}
      hosts: [{host_name}]
      playbook: {playbook}
      vars: {{version: "{version}"}}
{extra}"""


@contextlib.contextmanager
def runner_for(path: Path, **kwargs) -> Iterator:
    loaded = load(path)
    with open_runner(loaded) as runner:
        for key, value in kwargs.items():
            setattr(runner, key, value)
        yield runner
