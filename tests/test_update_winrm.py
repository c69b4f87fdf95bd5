"""The shipped Windows playbook (playbooks/windows-vendor-update.yaml) run over WinRM.

The Windows host is the WS-Management double of tests/winrm_server.py, with a
tiny model of a Windows service and a vendor updater behind the PowerShell
scripts the playbook sends; the health page is served from this machine and
answers only while the service runs.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import free_port
from update_helpers import runner_for
from winrm_server import WinrmServer

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
PASSWORD_ENV = "CUSTODE_TEST_WINRM_PASSWORD"


class WindowsHost:
    """HalleyServer's state as the scripts change it: running or not, installed version, its backup."""

    def __init__(self, updater_works: bool) -> None:
        self.running = True
        self.version = "1.0"
        self.backup: str | None = None
        self.updater_works = updater_works

    def answer(self, script: str):
        if "Compress-Archive" in script:
            self.backup = self.version
        elif "Expand-Archive" in script:
            self.version = self.backup or self.version
        elif re.search(r"Stop-Service -Name 'HalleyServer' -Force", script):
            self.running = False
        elif re.search(r"Start-Service -Name 'HalleyServer'", script):
            self.running = True
        elif "Get-Service -Name 'HalleyServer'" in script:
            return (0 if self.running else 3, "", "")
        elif "Get-Process -Name 'HalleyServer'" in script:
            return (0 if self.running else 1, "", "")
        elif "Aggiorna.exe" in script:
            if self.running:
                return (1, "", "Il servizio HalleyServer è ancora in esecuzione")
            if not self.updater_works:
                return (1, "", "Aggiornamento non riuscito: database bloccato")
            self.version = "2.0"
        else:
            return (1, "", f"unexpected script: {script[:80]}")
        return (0, "", "")


@pytest.fixture
def health():
    """The application's login page as seen from the Custode node."""
    state: dict[str, WindowsHost] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            host = state["host"]
            self.send_response(200 if host.running else 503)
            self.end_headers()
            self.wfile.write(f"Halley {host.version}".encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _config(write_config, winrm: WinrmServer, url: str) -> Path:
    return write_config(f"""
agent: {{tenant: provider}}
tenants:
  provider: {{name: Consorzio informatico}}
updates:
  playbooks_dir: {PLAYBOOKS}
  hosts:
    halley-app:
      address: 127.0.0.1
      transport: winrm
      winrm: {{user: {winrm.user}, password: {{env: {PASSWORD_ENV}}}, port: {winrm.port}, auth: basic,
              ca_file: "{winrm.ca_file}", connect_timeout: 5s}}
      vars: {{service: HalleyServer, updater: 'C:\\Halley\\Aggiorna.exe', health_url: "{url}"}}
  windows:
    halley:
      application: Halley
      days: [friday]
      start: "16:00"
      hosts: [halley-app]
      playbook: windows-vendor-update.yaml
""")


@pytest.mark.parametrize("works", [True, False], ids=["updated", "rolled-back"])
def test_windows_playbook_over_winrm(write_config, health, monkeypatch, works):
    state, url = health
    host = state["host"] = WindowsHost(updater_works=works)
    with WinrmServer(tls=True) as winrm:
        monkeypatch.setenv(PASSWORD_ENV, winrm.password)
        winrm.on(lambda script: True, host.answer)
        with runner_for(_config(write_config, winrm, url)) as runner:
            runner.executor.sleep = lambda seconds: None
            result = runner.run("halley", "now", reason="test over WinRM")
            steps = runner.store.steps(result.run_id)
        shells = len([a for a in winrm.actions if a == "Create"])
    assert host.running, "the service runs at the end, whatever happened"
    assert shells == 1, "one WinRM shell for the whole run"
    if works:
        assert result.status == "succeeded", result.summary
        assert host.version == "2.0"
    else:
        assert result.status == "rolled_back"
        assert ("step 'run the vendor's updater' on halley-app failed: command: exit code 1: "
                "Aggiornamento non riuscito: database bloccato") in result.summary
        assert host.version == "1.0"
        assert [s["name"] for s in steps if s["phase"] == "rollback"] == [
            "stop HalleyServer", "restore the application folder", "start HalleyServer"]


def test_unreachable_windows_host_is_named_with_the_step_and_the_cause(write_config, health, monkeypatch):
    state, url = health
    state["host"] = WindowsHost(updater_works=True)
    with WinrmServer(tls=True) as winrm:
        monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
        config = _config(write_config, winrm, url)
        with runner_for(config) as runner:
            result = runner.run("halley", "now", reason="bad credentials")
    assert result.status == "failed"
    assert "step 'snapshot of the application folder' on halley-app failed: cannot reach halley-app" \
        in result.summary
    assert "refused the credentials" in result.summary
