"""Local mail sources (Maildir, mbox) through the backup monitor: incremental, resumable, no duplicates."""

from __future__ import annotations

import mailbox
from datetime import datetime, timedelta
from pathlib import Path

from mailfactory import SCRIPT_RULE, make_mail, script_report

from custode.agent.backups.config import BackupsSection
from custode.agent.backups.jobs import ROME
from custode.agent.backups.service import BackupMonitor
from custode.agent.mail.sources import local_messages, mbox_messages
from custode.agent.state import State

NIGHT = datetime(2026, 11, 20, 23, 0, tzinfo=ROME)


def section(kind: str, path: Path) -> BackupsSection:
    return BackupsSection.model_validate({"rules": [SCRIPT_RULE],
                                          "mailboxes": [{"type": kind, "name": "local", "path": str(path)}]})


def stored_jobs(state: State) -> list[str]:
    return [row["job"] for row in state.query("SELECT job FROM backup_reports ORDER BY id")]


def test_maildir_incremental_and_resumed_after_restart(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for job in ("alpha", "beta"):
        box.add(script_report(job, "success", NIGHT))
    state = State(tmp_path / "state.db")
    first = BackupMonitor(section("maildir", tmp_path / "Maildir"), state).poll()
    assert (first.new, first.reports, first.errors) == (2, 2, {})
    assert BackupMonitor(section("maildir", tmp_path / "Maildir"), state).poll().new == 0
    state.close()

    # a person reads one report (new/ -> cur/ with flags) and a new one arrives; the agent restarts
    key = next(iter(box.keys()))
    message = box.get_message(key)
    message.set_subdir("cur")
    message.add_flag("S")
    box[key] = message
    box.add(script_report("gamma", "failed", NIGHT + timedelta(minutes=5)))
    state = State(tmp_path / "state.db")
    again = BackupMonitor(section("maildir", tmp_path / "Maildir"), state).poll()
    assert (again.new, again.duplicates) == (1, 0)
    assert sorted(stored_jobs(state)) == ["alpha", "beta", "gamma"]


def test_the_same_message_in_two_places_is_stored_once(tmp_path: Path) -> None:
    report = script_report("alpha", "success", NIGHT)
    for name in ("one", "two"):
        mailbox.Maildir(tmp_path / name, create=True).add(report)
    state = State(tmp_path / "state.db")
    assert BackupMonitor(section("maildir", tmp_path / "one"), state).poll().new == 1
    summary = BackupMonitor(section("maildir", tmp_path / "two"), state).poll()
    assert (summary.new, summary.duplicates) == (0, 1)


def test_mbox_resumes_by_offset_and_rereads_a_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "backup.mbox"
    box = mailbox.mbox(path)
    alpha = script_report("alpha", "success", NIGHT)
    box.add(alpha)
    box.add(make_mail("From the past", "From the start of a line\nFrom here too", sender="x@y.it"))
    box.flush()
    state = State(tmp_path / "state.db")
    assert BackupMonitor(section("mbox", path), state).poll().new == 2
    box.add(script_report("beta", "success", NIGHT))
    box.flush()
    summary = BackupMonitor(section("mbox", path), state).poll()
    assert (summary.new, summary.duplicates) == (1, 0)
    # logrotate-style: a new file replaces the old one; what was read before is not stored again
    path.rename(tmp_path / "backup.mbox.1")
    rotated = mailbox.mbox(path)
    rotated.add(alpha)
    rotated.add(script_report("gamma", "success", NIGHT))
    rotated.flush()
    summary = BackupMonitor(section("mbox", path), state).poll()
    assert (summary.new, summary.duplicates) == (1, 1)
    assert sorted(stored_jobs(state)) == ["alpha", "beta", "gamma"]


def test_mbox_reader_unescapes_from_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.mbox"
    box = mailbox.mbox(path)
    box.add(make_mail("s", "From here\nline"))
    box.flush()
    [(offset, raw, truncated)] = list(mbox_messages(path))
    assert offset == 0 and not truncated
    assert b"\nFrom here\n" in raw


def test_missing_maildir_is_a_clear_error_and_not_a_crash(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    summary = BackupMonitor(section("maildir", tmp_path / "nowhere"), state).poll()
    assert "is not a Maildir" in summary.errors["local"]
    assert "backups.mailboxes[].path" in summary.errors["local"]


def test_local_messages_reads_eml_folders_maildirs_and_mbox(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(make_mail("one"))
    mailbox.Maildir(tmp_path / "md", create=True).add(make_mail("two"))
    box = mailbox.mbox(tmp_path / "archive")
    box.add(make_mail("three"))
    box.add(make_mail("four"))
    box.flush()
    names = [name for name, _, _ in local_messages([str(tmp_path / "a.eml"), str(tmp_path / "md"),
                                                   str(tmp_path / "archive")])]
    assert len(names) == 4 and names[0].endswith("a.eml") and names[2].endswith("archive:0")
