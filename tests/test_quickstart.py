"""The README's quick start, run as written: its config, a real restic cron mail, a ticket by e-mail.

The YAML is read out of README.md itself, so the quick start cannot drift
from what works; only the places that differ on a test machine (the Maildir
path, the SMTP server's port and CA) are replaced. The report is a rebuilt
real-world mail (tests/data/mail/realworld/restic, provenance in its
index.json) dated 2026-12-06, so the clock is pinned to that morning.
"""

from __future__ import annotations

import mailbox
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import yaml
from conftest import free_port
from smtp_server import SmtpServer

from custode.agent.calendar import ROME
from custode.agent.config_loader import load_text
from custode.agent.runtime import Agent

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "tests/data/mail/realworld/restic/cron_backup_fatal_no_repo.eml"


def quickstart_yaml() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "the README's quick start has no yaml block"
    return "\n".join(line[3:] if line.startswith("   ") else line for line in block.group(1).splitlines())


def test_the_quick_start_config_is_valid_as_written(tmp_path) -> None:
    path = tmp_path / "custode.yaml"
    path.write_text(quickstart_yaml())
    done = subprocess.run([sys.executable, "-m", "custode.agent", "config", "check", str(path)],
                          capture_output=True, text=True, timeout=60,
                          env={"CUSTODE_SMTP_PASSWORD": "x", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "CUSTODE_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_a_failed_backup_in_the_mailbox_reaches_the_helpdesk_as_one_ticket(tmp_path, pin_clock,
                                                                          monkeypatch) -> None:
    pin_clock(datetime(2026, 12, 6, 8, 0, tzinfo=ROME))
    password = "quick-start-pw"
    monkeypatch.setenv("CUSTODE_SMTP_PASSWORD", password)
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    key = maildir.add(mailbox.MaildirMessage(REPORT.read_bytes()))
    arrived = datetime(2026, 12, 6, 2, 31, tzinfo=ROME).timestamp()  # delivered a minute after it was sent,
    os.utime(tmp_path / "Maildir" / "new" / key, (arrived, arrived))  # not on the day the suite runs
    with SmtpServer(starttls=True, auth=("custode", password), base=tmp_path / "smtp") as server:
        config = yaml.safe_load(quickstart_yaml())
        config["backups"]["mailboxes"][0]["path"] = str(tmp_path / "Maildir")
        config["smtp"].update(host="127.0.0.1", port=server.port, ca_file=str(server.ca_file))
        config["agent"]["data_dir"] = str(tmp_path / "data")
        agent = Agent(load_text(yaml.safe_dump(config), "quickstart.yaml"), listen=f"127.0.0.1:{free_port()}")
        try:
            summary = agent.service("backups").feature.poll()
            assert summary is not None
            agent.service("backups").feature.evaluate()
            opened = [i for i in agent.incidents.open_incidents() if i.tenant == "crema"]
            assert [i.check for i in opened] == ["backup"], opened
            agent.service("tickets").feature.step(sync=True)
            [received] = server.wait_for(1)
        finally:
            agent.state.close()
    message = received.message
    assert received.rcpt_tos == ["assistenza@provider.example.it"]
    assert received.login == "custode" and received.tls
    assert "srv-crema-web01" in str(message["Subject"])
    body = message.get_body(("plain",)).get_content()
    assert "Comune di Crema" in body
    # "since" is the failure's own time (the report of 02:30), not when Custode read the mailbox (08:00)
    assert "Da quando: domenica 6 dicembre 2026 alle 2:30" in body, body
