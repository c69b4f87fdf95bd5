"""End to end over SSH: a real OpenSSH server on loopback, the toy vendor application behind it.

The playbook stops the application through its init script, installs the new
release, starts it, waits for the port and runs the collaudo; a broken release
is rolled back so the old version answers again, and the failed run becomes an
incident. An unknown host key is refused before anything is touched.
"""

from __future__ import annotations

import pytest
from ssh_server import SshServer
from toyapp import ToyApp
from update_helpers import runner_for, toy_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def app(tmp_path):
    with ToyApp(tmp_path, {"1.0": True, "2.0": True, "2.1": False}, current="1.0") as toy:
        toy.start()
        yield toy


def _ssh(sshd: SshServer, known_hosts=None) -> str:
    return (f"transport: ssh\n      ssh: {{user: {sshd.user}, port: {sshd.port}, identity_file: "
            f"\"{sshd.client_key}\", known_hosts: \"{known_hosts or sshd.known_hosts}\", use_agent: false, "
            "connect_timeout: 5s}")


def test_update_over_ssh_installs_and_proves_the_new_version(sshd, app, write_config):
    with runner_for(write_config(toy_config(app, _ssh(sshd)))) as runner:
        result = runner.run("toy", "now", reason="over ssh")
        steps = runner.store.steps(result.run_id)
    assert result.status == "succeeded", result.summary
    assert app.version() == "2.0"
    install = next(s for s in steps if s["name"] == "install 2.0")
    assert install["host"] == "app1" and "installed 2.0" in install["stdout"]


def test_failed_collaudo_over_ssh_rolls_back_and_opens_an_incident(sshd, app, write_config):
    with runner_for(write_config(toy_config(app, _ssh(sshd), version="2.1"))) as runner:
        result = runner.run("toy", "now", reason="broken release")
        incidents = runner.incidents.open_incidents()
    assert result.status == "rolled_back" and "HTTP 500" in result.summary
    assert app.version() == "1.0", "the old version answers again"
    assert [i.key for i in incidents] == ["crema/update/toy"]


def test_unknown_host_key_is_refused_and_nothing_is_touched(sshd, app, write_config, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with runner_for(write_config(toy_config(app, _ssh(sshd, known_hosts=empty)))) as runner:
        result = runner.run("toy", "now", reason="unknown key")
    assert result.status == "failed"
    assert "step 'keep the current release pointer' on app1 failed: cannot reach app1" in result.summary
    assert sshd.host_key_fingerprint in result.summary
    assert app.version() == "1.0" and app.answer()[0] == 200
