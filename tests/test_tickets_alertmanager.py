"""The loop closed with real programs: Alertmanager → ``custode run``'s bridge → a ticket → its solve.

Alertmanager (Debian's prometheus-alertmanager) notifies the bridge of the
running agent; the agent files the ticket through the webhook backend to a
real HTTP receiver, and when the alert resolves, writes the resolution note
and solves it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alertmanager_server import AlertmanagerServer
from conftest import free_port, http_get, stop_process, wait_until
from webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "am-bridge-token"
pytestmark = [pytest.mark.integration, pytest.mark.real_clock]


def test_alert_fired_and_resolved_in_alertmanager_opens_and_solves_a_ticket(tmp_path):
    port = free_port()
    with WebhookReceiver(b"hook-secret") as receiver:
        config = tmp_path / "custode.yaml"
        config.write_text(f"""
agent: {{tenant: provider, data_dir: "{tmp_path / 'data'}"}}
tenants:
  provider: {{name: Provider, tickets: {{backend: none}}}}
  comune-b: {{name: Comune B}}
tickets:
  default_backend: hook
  backends: {{hook: {{type: webhook, url: "{receiver.url}", secret: {{env: T_HOOK}}, timeout: 3s}}}}
  flap_window: 1s
  alertmanager: {{enabled: true, token: {{env: T_AM_TOKEN}}}}
""", encoding="utf-8")
        env = {**os.environ, "T_HOOK": "hook-secret", "T_AM_TOKEN": TOKEN}
        agent = subprocess.Popen([sys.executable, "-m", "custode.agent", "run", "--config", str(config), "--listen",
                                  f"127.0.0.1:{port}"], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=open(tmp_path / "custode.log", "wb"))
        try:
            assert wait_until(lambda: _answers(port), 30), (tmp_path / "custode.log").read_text()[-2000:]
            labels = {"alertname": "DiskFull", "tenant": "comune-b", "severity": "critical", "instance": "db7:9100"}
            with AlertmanagerServer(tmp_path / "am", f"http://127.0.0.1:{port}/alertmanager", TOKEN) as am:
                am.fire(labels, {"summary": "/var on db7 is 97% full"})
                assert wait_until(lambda: _kinds(receiver) == ["create"], 20, step=0.1), \
                    f"{_kinds(receiver)}; alertmanager log:\n{am.log_tail()}"
                [create] = [e.payload for e in receiver.events]
                assert create["key"] == "comune-b/alertmanager/db7:alertname=DiskFull,instance=db7:9100"
                assert create["priority"] == "high" and create["tenant_name"] == "Comune B"
                am.resolve(labels, {"summary": "/var on db7 is 97% full"})
                assert wait_until(lambda: _kinds(receiver) == ["create", "comment", "solve"], 30, step=0.1), \
                    f"{_kinds(receiver)}; alertmanager log:\n{am.log_tail()}"
        finally:
            stop_process(agent)
    assert len({e.payload["delivery_id"] for e in receiver.events}) == 3


def _answers(port: int) -> bool:
    try:
        return http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    except OSError:
        return False


def _kinds(receiver: WebhookReceiver) -> list[str]:
    return [e.payload["event"] for e in receiver.events]
