"""``custode backups status|unexpected|poll`` and ``custode mail classify`` as a sysadmin runs them."""

from __future__ import annotations

import json
import mailbox
from datetime import datetime

from mailfactory import deliver, make_mail, script_report

from custode.agent.backups.jobs import ROME, previous_run
from custode.agent.cli import main
from custode.agent.clock import current_time

CONFIG = """
tenants:
  crema: {name: Comune di Crema}
  cantu: {name: Comune di Cantù}
agent:
  tenant: crema
backups:
  mailboxes:
    - {type: maildir, name: provider, path: "%s"}
  rules:
    - name: nas-script
      software: NAS script
      sender: "^nas-script@"
      subject: "^Backup \\\\w+:"
      job: "^Backup (?P<job>\\\\w+):"
  expected:
    crema:
      - {name: alpha, software: NAS script, schedule: "0 22 * * *", grace: 6h}
      - {name: beta, software: NAS script, schedule: "0 22 * * *", grace: 6h}
    cantu:
      - {name: gamma, software: NAS script, schedule: "0 22 * * *", grace: 6h}
"""


def setup_mailbox(tmp_path, write_config):
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    now = current_time()
    due = previous_run("0 22 * * *", now)
    last_night = datetime.fromtimestamp(max(due, min(due + 600, now - 2)), ROME)
    for job, outcome in (("alpha", "success"), ("beta", "failed"), ("zeta", "success")):
        deliver(box, script_report(job, outcome, last_night), arrived=last_night)
    return write_config(CONFIG % (tmp_path / "Maildir"))


def test_poll_then_morning_table(tmp_path, write_config, capsys) -> None:
    config = str(setup_mailbox(tmp_path, write_config))
    assert main(["backups", "poll", "--config", config]) == 0
    assert "3 new messages (3 backup reports)" in capsys.readouterr().out
    assert main(["backups", "status", "--config", config]) == 1  # beta failed
    out = capsys.readouterr().out
    first, *lines = out.splitlines()
    assert first == f"Config: {config} · state DB: {tmp_path / 'data' / 'state.db'}"
    assert lines[0].split() == ["TENANT", "JOB", "SOFTWARE", "LAST", "REPORT", "STATE", "SINCE"]
    assert lines[1].split()[:2] == ["crema", "beta"] and "FAILED" in lines[1]
    rows = {line.split()[1]: line for line in lines[1:4]}
    assert "ok" in rows["alpha"].split()
    assert rows["gamma"].split()[0] == "cantu"
    assert any(word in rows["gamma"].split() for word in ("late", "MISSING"))
    assert main(["backups", "status", "--config", config, "--json", "--tenant", "crema"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["config"] == config and document["state_db"].endswith("state.db")
    records = document["jobs"]
    assert {r["job"]: r["state"] for r in records} == {"alpha": "ok", "beta": "failed"}
    assert all(datetime.fromisoformat(r["since"]).utcoffset() is not None for r in records)
    assert main(["backups", "status", "--config", config, "--format", "json", "--tenant", "crema"]) == 1
    assert json.loads(capsys.readouterr().out)["jobs"] == records


def test_unexpected_lists_the_job_nobody_configured(tmp_path, write_config, capsys) -> None:
    config = str(setup_mailbox(tmp_path, write_config))
    main(["backups", "poll", "--config", config])
    capsys.readouterr()
    assert main(["backups", "unexpected", "--config", config, "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)["unexpected"]
    assert record["job"] == "zeta" and record["software"] == "NAS script" and record["reports"] == 1
    assert main(["backups", "unexpected", "--config", config]) == 0
    assert "backups.expected" in capsys.readouterr().out


def test_status_without_state_explains(tmp_path, write_config, capsys) -> None:
    config = str(write_config(CONFIG % (tmp_path / "Maildir")))
    try:
        code = main(["backups", "status", "--config", config])
    except SystemExit as exc:
        code, message = 1, str(exc)
    else:
        message = capsys.readouterr().out
    assert code == 1 and "custode backups poll" in message


def test_mail_classify_prints_one_json_line_per_message(tmp_path, capsys) -> None:
    (tmp_path / "ooo.eml").write_bytes(make_mail("Automatic reply: [Failed] Nightly", "away",
                                                 headers={"Auto-Submitted": "auto-replied"}))
    (tmp_path / "human.eml").write_bytes(make_mail("Pranzo?", "ci vediamo alle 13"))
    assert main(["mail", "classify", str(tmp_path / "ooo.eml"), str(tmp_path / "human.eml"),
                 str(tmp_path / "missing.eml")]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in records] == ["not_a_report", "not_a_report", "error"]
    assert all({"file", "software", "job", "status"} <= set(r) for r in records)
    assert records[0]["reason"] == "automatic reply (out of office)"


def test_mail_classify_applies_rules_from_a_config(tmp_path, write_config, capsys) -> None:
    config = str(write_config(CONFIG % (tmp_path / "Maildir")))
    (tmp_path / "r.eml").write_bytes(script_report("alpha", "failed", datetime(2026, 11, 20, 23, 0, tzinfo=ROME)))
    assert main(["mail", "classify", "--config", config, str(tmp_path / "r.eml")]) == 0
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (record["software"], record["job"], record["status"]) == ("NAS script", "alpha", "failure")
