"""The shipped OS patch playbooks: os-apt.yaml for real over sshd, os-windows-update.yaml over the WinRM double.

os-apt.yaml runs unchanged over a real OpenSSH server (tests/ssh_server.py)
with real apt-get and dpkg, against a throwaway apt root: a fake dpkg database
with one toy package, version 1.0, and a flat file repository offering 2.0.
The playbook's ``apt_get`` variable points at a wrapper that sets APT_CONFIG
to that root (``Dir``, status file, sources, apt.conf.d, dpkg's ``--root`` and
``--admindir`` all inside it) and refuses to run if apt would see anything
else, so this machine's packages are never touched: the test checks that its
dpkg status file is byte for byte the same afterwards.

No Windows host is available: os-windows-update.yaml is run over the
WS-Management double (tests/winrm_server.py) with a model of Windows Update
behind it, which shows that the playbook plans, that every script fits
Windows' command line, that the calls the Windows Update Agent refuses to a
remote caller are only in the scripts the scheduled task runs as SYSTEM, and
how exit codes become step outcomes. tests/test_powershell_parse.py parses
each of its scripts (and the two it writes to the host) and holds them to
PowerShell 2.0.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from conftest import require_binary
from ssh_server import SshServer
from update_helpers import runner_for
from winrm_server import WinrmServer

from custode.agent.calendar import ROME

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
REAL_STATUS = Path("/var/lib/dpkg/status")
_HERE_STRING = re.compile(r"@'\n.*?\n'@", re.S)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def _deb(root: Path, version: str, out: Path) -> Path:
    """custode-toy VERSION: one file, /opt/custode-toy/VERSION, no maintainer scripts."""
    tree = root / f"build-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "opt" / "custode-toy").mkdir(parents=True)
    (tree / "opt" / "custode-toy" / "VERSION").write_text(version + "\n")
    (tree / "DEBIAN" / "control").write_text(
        f"Package: custode-toy\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Custode tests <tests@example.invalid>\nDescription: toy package for the OS patch test\n")
    deb = out / f"custode-toy_{version}_all.deb"
    subprocess.run([require_binary("dpkg-deb", "dpkg"), "--root-owner-group", "-b", str(tree), str(deb)],
                   check=True, capture_output=True, timeout=60)
    return deb


class AptRoot:
    """A throwaway apt root with custode-toy 1.0 installed and 2.0 in its file repository."""

    def __init__(self, base: Path) -> None:
        self.root = base / "aptroot"
        root = self.root
        for folder in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d",
                       "etc/apt/trusted.gpg.d", "var/lib/dpkg/info", "var/lib/dpkg/updates",
                       "var/lib/dpkg/triggers", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial",
                       "var/log/apt", "repo", "bin", "boot", "run", "backups"):
            (root / folder).mkdir(parents=True)
        (root / "var/lib/dpkg/status").write_text("")
        (root / "var/lib/dpkg/available").write_text("")
        dpkg = require_binary("dpkg", "dpkg")
        self.dpkg = f"{dpkg} --admindir={root}/var/lib/dpkg"
        old = _deb(root, "1.0", root)
        subprocess.run([dpkg, f"--root={root}", f"--admindir={root}/var/lib/dpkg", f"--log={root}/var/log/dpkg.log",
                        "--force-script-chrootless", "-i", str(old)], check=True, capture_output=True, timeout=60)
        self.new = _deb(root, "2.0", root / "repo")
        packages = subprocess.run([require_binary("dpkg-scanpackages", "dpkg-dev"), "-m", "."], cwd=root / "repo",
                                  check=True, capture_output=True, text=True, timeout=60).stdout
        (root / "repo" / "Packages").write_text(packages)
        (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] file:{root}/repo ./\n")
        self.config = root / "etc/apt/apt.conf"
        self.config.write_text(f"""Dir "{root}/";
Dir::State::status "{root}/var/lib/dpkg/status";
Dir::Bin::dpkg "{dpkg}";
APT::Sandbox::User "root";
Acquire::Languages "none";
DPkg::Options {{ "--root={root}"; "--admindir={root}/var/lib/dpkg"; "--log={root}/var/log/dpkg.log";
                 "--force-script-chrootless"; }};
""")
        # apt-get as the playbook runs it, held to this root: it refuses to start if apt would read another one
        self.apt_get = root / "bin" / "apt-get"
        self.apt_get.write_text(f"""#!/bin/sh
APT_CONFIG={self.config}
export APT_CONFIG
/usr/bin/apt-config dump | grep -qx 'Dir::State::status "{root}/var/lib/dpkg/status";' || {{
  echo "apt would not use the test root {root}: refusing" >&2; exit 99; }}
exec /usr/bin/apt-get "$@"
""")
        self.apt_get.chmod(0o755)

    def version(self) -> str:
        return (self.root / "opt/custode-toy/VERSION").read_text().strip()

    def host_vars(self) -> str:
        root = self.root
        return (f'{{sudo: "", apt_get: "{self.apt_get}", dpkg: "{self.dpkg}", backup_dir: "{root}/backups", '
                f'reboot_flag: "{root}/run/reboot-required", boot_dir: "{root}/boot", check_process: sshd}}')


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def apt_root(tmp_path):
    before = _sha256(REAL_STATUS)
    yield AptRoot(tmp_path)
    assert _sha256(REAL_STATUS) == before, "this machine's dpkg database changed: the test escaped its apt root"


def _apt_config(sshd: SshServer, apt: AptRoot) -> str:
    return f"""
agent: {{tenant: crema}}
tenants:
  crema: {{name: Comune di Crema}}
hosts:
  linux1:
    address: 127.0.0.1
    tenant: crema
    transport: ssh
    ssh: {{user: {sshd.user}, port: {sshd.port}, identity_file: "{sshd.client_key}",
          known_hosts: "{sshd.known_hosts}", use_agent: false, connect_timeout: 5s}}
    vars: {apt.host_vars()}
updates:
  playbooks_dir: {PLAYBOOKS}
  windows:
    os-patch:
      application: Debian OS patches
      tenant: crema
      dates: [2027-03-13, 2027-10-09]
      start: "08:00"
      duration: 6h
      hosts: [linux1]
      playbook: os-apt.yaml
"""


def _steps(runner, run_id: int) -> dict[str, dict]:
    return {row["name"]: dict(row) for row in runner.store.steps(run_id)}


@pytest.mark.integration
def test_os_apt_upgrades_over_ssh_and_reports_no_reboot(sshd, apt_root, write_config, pin_clock):
    pin_clock(datetime(2027, 3, 13, 8, 0, 30, tzinfo=ROME))
    with runner_for(write_config(_apt_config(sshd, apt_root))) as runner:
        result = runner.run("os-patch", "manual")
        steps = _steps(runner, result.run_id)
    assert result.status == "succeeded", result.summary
    assert apt_root.version() == "2.0"
    assert "Inst custode-toy [1.0] (2.0" in steps["what will be upgraded"]["stdout"]
    assert "1 packages to upgrade" in steps["what will be upgraded"]["stdout"]
    assert "Setting up custode-toy (2.0)" in steps["full-upgrade"]["stdout"]
    assert steps["reboot required?"]["status"] == "ok" and "no reboot required" in steps["reboot required?"]["stdout"]
    assert steps["package database consistent"]["status"] == "ok"
    assert steps["collaudo"]["status"] == "ok" and "process sshd is running" in steps["collaudo"]["detail"]
    assert (apt_root.root / "backups" / "custode-etc-20270313-0800.tar.gz").stat().st_size > 0
    assert "upgrade custode-toy:all 1.0 2.0" in (apt_root.root / "var/log/dpkg.log").read_text()


@pytest.mark.integration
@pytest.mark.parametrize("why", ["flag", "kernel"])
def test_os_apt_reports_a_required_reboot_as_a_warning(sshd, apt_root, write_config, pin_clock, why):
    if why == "flag":  # what update-notifier-common and unattended-upgrades leave after a kernel or libc update
        (apt_root.root / "run/reboot-required").write_text("*** System restart required ***\n")
        (apt_root.root / "run/reboot-required.pkgs").write_text("linux-image-6.1.0-99-amd64\nlibc6\n")
    else:  # a newer kernel installed than the one running
        (apt_root.root / "boot/vmlinuz-999.0.0-custode-amd64").write_text("")
    pin_clock(datetime(2027, 10, 9, 8, 0, 30, tzinfo=ROME))
    with runner_for(write_config(_apt_config(sshd, apt_root))) as runner:
        result = runner.run("os-patch", "manual")
        reboot = _steps(runner, result.run_id)["reboot required?"]
    assert result.status == "succeeded", result.summary
    assert reboot["status"] == "warning" and reboot["exit_code"] == 10
    if why == "flag":
        assert reboot["detail"] == "command: exit code 10: reboot required by: libc6 linux-image-6.1.0-99-amd64"
    else:
        assert "reboot required: kernel 999.0.0-custode-amd64 installed" in reboot["detail"]


@pytest.mark.integration
def test_os_apt_a_broken_package_fails_the_run_and_opens_an_incident(sshd, apt_root, write_config, pin_clock):
    apt_root.new.write_bytes(apt_root.new.read_bytes()[:-16] + b"0" * 16)  # no longer the indexed checksum
    pin_clock(datetime(2027, 3, 13, 8, 0, 30, tzinfo=ROME))
    with runner_for(write_config(_apt_config(sshd, apt_root))) as runner:
        result = runner.run("os-patch", "manual")
        incidents = runner.incidents.open_incidents()
    assert result.status == "failed"
    assert "step 'full-upgrade' on linux1 failed" in result.summary and "no rollback" in result.summary
    assert apt_root.version() == "1.0"
    assert [(i.key, i.severity) for i in incidents] == [("crema/update/os-patch", "critical")]


# --- Windows Update over WinRM ----------------------------------------------------------------------------

PASSWORD_ENV = "CUSTODE_TEST_WINRM_PASSWORD"
REMOTE_REFUSED = ("CreateUpdateInstaller", "CreateUpdateDownloader", "AcceptEula")
"""Not available to a remote caller (Microsoft: "Using WUA From a Remote Computer"): only as SYSTEM, on the host."""


class WindowsUpdateHost:
    """What the host answers: two updates found, downloaded, installed (``install_result``), reboot pending."""

    def __init__(self, install_code: int) -> None:
        self.install_code = install_code
        self.written: dict[str, str] = {}

    def answer(self, script: str):
        if "custode-wu.ps1') -Encoding UTF8" in script:
            self.written["job"] = script
            return (0, "written: C:\\CustodeUpdates\\custode-wu.ps1", "")
        if "custode-wu-run.ps1') -Encoding UTF8" in script:
            self.written["runner"] = script
            return (0, "written: C:\\CustodeUpdates\\custode-wu-run.ps1", "")
        if "custode-wu-run.ps1') download" in script:
            return (0, "download: 2 updates\r\nresult 2 (2 succeeded, 3 succeeded with errors, 4 failed, 5 aborted)",
                    "")
        if "custode-wu-run.ps1') install" in script:
            lines = ["install: 2 updates", "  2027-03 Cumulative Update for Windows Server 2019 (KB5035849): 2",
                     "  Security Intelligence Update for Microsoft Defender Antivirus: "
                     + ("2" if self.install_code == 0 else "4"),
                     f"result {2 if self.install_code == 0 else 3} (2 succeeded, 3 succeeded with errors, ...)"]
            return (self.install_code, "\r\n".join(lines), "")
        if "Microsoft.Update.Session" in script and ".Search(" in script:
            return (0, "2 updates to install\r\n  2027-03 Cumulative Update for Windows Server 2019 (KB5035849)\r\n"
                       "  Security Intelligence Update for Microsoft Defender Antivirus", "")
        if "RebootPending" in script:
            return (3010, "reboot required: the updates just installed, Windows Update", "")
        if "Get-Service -Name 'LanmanServer'" in script:
            return (0, "", "")
        return (1, "", f"unexpected script: {script[:80]}")


def _windows_config(write_config, winrm: WinrmServer) -> Path:
    return write_config(f"""
agent: {{tenant: crema}}
tenants:
  crema: {{name: Comune di Crema}}
hosts:
  fs-crema:
    address: 127.0.0.1
    tenant: crema
    transport: winrm
    winrm: {{user: {winrm.user}, password: {{env: {PASSWORD_ENV}}}, port: {winrm.port}, auth: basic,
            ca_file: "{winrm.ca_file}", connect_timeout: 5s}}
updates:
  playbooks_dir: {PLAYBOOKS}
  windows:
    os-patch-windows:
      application: Windows Server OS patches
      tenant: crema
      dates: [2027-03-13]
      start: "08:00"
      duration: 8h
      hosts: [fs-crema]
      playbook: os-windows-update.yaml
""")


@pytest.mark.parametrize("install_code, install_status", [(0, "ok"), (2, "warning")], ids=["all", "some-failed"])
def test_os_windows_update_over_winrm(write_config, monkeypatch, pin_clock, install_code, install_status):
    host = WindowsUpdateHost(install_code)
    pin_clock(datetime(2027, 3, 13, 8, 0, 30, tzinfo=ROME))
    with WinrmServer(tls=True) as winrm:
        monkeypatch.setenv(PASSWORD_ENV, winrm.password)
        winrm.on(lambda script: True, host.answer)
        with runner_for(_windows_config(write_config, winrm)) as runner:
            result = runner.run("os-patch-windows", "manual")
            steps = _steps(runner, result.run_id)
        sent = winrm.scripts
    assert result.status == "succeeded", result.summary
    assert [name for name in steps] == [
        "notify start", "updates to install", "write the Windows Update job (run as SYSTEM)",
        "write the script that runs it as a scheduled task", "download the updates (as SYSTEM)",
        "install the updates (as SYSTEM)", "reboot required?", "collaudo", "notify outcome"]
    assert "2 updates to install" in steps["updates to install"]["stdout"]
    assert steps["install the updates (as SYSTEM)"]["status"] == install_status
    reboot = steps["reboot required?"]
    assert reboot["status"] == "warning" and reboot["exit_code"] == 3010
    assert reboot["detail"] == "command: exit code 3010: reboot required: the updates just installed, Windows Update"
    # what the WUA refuses to a remote caller is only in the scripts the scheduled task runs on the host
    for script in sent:
        outside = _HERE_STRING.sub("", script)
        assert not [call for call in REMOTE_REFUSED if call in outside], script[:200]
    job = host.written["job"]
    assert all(call in job for call in REMOTE_REFUSED) and "Microsoft.Update.Session" in job
    assert "IsInstalled=0 and IsHidden=0 and Type='Software'" in job
    assert "schtasks.exe /Create /F /TN $task /RU SYSTEM" in host.written["runner"]


def test_warn_exit_codes_are_checked_when_the_playbook_loads(tmp_path):
    from custode.agent.config_loader import ConfigError
    from custode.agent.transports.base import CommandResult
    from custode.agent.updates.playbook import load_playbook
    from custode.agent.updates.steps import StepOutcome

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - run: {command: 'true', expect: [0, 3010], warn: [3010]}\n")
    with pytest.raises(ConfigError, match="exit code 3010 is in both expect and warn"):
        load_playbook(bad)
    result = CommandResult(exit_code=3010, stdout="installed 4 updates\nreboot required: Windows Update\n",
                           stderr="", duration=1.0)
    outcome = StepOutcome.from_command(result, [0], "command", [3010])
    assert (outcome.status, outcome.ok) == ("warning", True)
    assert outcome.detail == "command: exit code 3010: reboot required: Windows Update"
    assert StepOutcome.from_command(result, [0], "command").status == "failed"
