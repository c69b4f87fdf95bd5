"""restic, borg and borgmatic: tool output that cron or systemd mailed, on the real-world corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from custode.agent.backups.parsers import borg, classify, restic
from custode.agent.mail.message import MailMessage, parse_message

CORPUS = Path(__file__).resolve().parent / "data" / "mail" / "realworld"

REAL = [
    # file, software, status, job
    ("restic/cron_backup_success.eml", "restic", "success", "srv-crema-app01"),
    ("restic/cron_backup_success_external_tag.eml", "restic", "success", "srv-crema-app01"),
    ("restic/cron_backup_first_run.eml", "restic", "success", "srv-crema-file01"),
    ("restic/cron_backup_warning_unreadable.eml", "restic", "warning", "srv-crema-app01"),
    ("restic/cron_backup_warning_fwd_thunderbird.eml", "restic", "warning", "srv-crema-app01"),
    ("restic/cron_backup_fatal_no_repo.eml", "restic", "failure", "srv-crema-web01"),
    ("restic/cron_backup_fatal_fwd_outlook_it.eml", "restic", "failure", "srv-crema-web01"),
    ("restic/systemd_onfailure_exit10.eml", "restic", "failure", "srv-crema-app02"),
    ("borg/cron_create_success.eml", "borg", "success", "srv-crema-db01"),
    ("borg/cron_create_warning_file_changed.eml", "borg", "warning", "srv-crema-db01"),
    ("borg/cron_create_warning_fwd_thunderbird.eml", "borg", "warning", "srv-crema-db01"),
    ("borg/cron_create_error_lock.eml", "borg", "failure", "srv-crema-mail01"),
    ("borg/cron_create_error_fwd_attached.eml", "borg", "failure", "srv-crema-mail01"),
    ("borg/borgmatic_cron_success.eml", "borgmatic", "success", "/etc/borgmatic/gis01.yaml"),
    ("borg/borgmatic_cron_success_external_tag.eml", "borgmatic", "success", "/etc/borgmatic/gis01.yaml"),
    ("borg/borgmatic_cron_error.eml", "borgmatic", "failure", "/etc/borgmatic/gis01.yaml"),
]

LOOKALIKES = ["lookalike/restic_snapshots_listing_cron.eml", "lookalike/reply_to_restic_fatal_cron.eml"]


def _classify(name: str):
    return classify(parse_message((CORPUS / name).read_bytes()))


@pytest.mark.parametrize("name,software,status,job", REAL, ids=[row[0] for row in REAL])
def test_real_world_runs(name: str, software: str, status: str, job: str) -> None:
    verdict = _classify(name)
    assert verdict.kind == "report", verdict.reason
    assert verdict.parser == ("restic" if software == "restic" else "borg")
    assert verdict.report.software == software
    assert verdict.report.status == status
    assert verdict.report.job == job
    if status != "success":
        assert verdict.report.error


@pytest.mark.parametrize("name", LOOKALIKES)
def test_lookalikes_are_not_reports(name: str) -> None:
    assert _classify(name).kind == "not_a_report"


@pytest.mark.parametrize("name", sorted(str(p.relative_to(CORPUS)) for p in (CORPUS / "lookalike").glob("*.eml")))
def test_no_lookalike_is_claimed_by_these_parsers(name: str) -> None:
    message = parse_message((CORPUS / name).read_bytes())
    assert restic.parse(message) is None
    assert borg.parse(message) is None


def test_restic_figures_and_details() -> None:
    report = _classify("restic/cron_backup_success.eml").report
    assert report.host == "srv-crema-app01"
    assert report.details["snapshot"] == "1a2b3c4d"
    assert report.details["parent_snapshot"] == "8d2e4b61"
    assert report.details["repository"] == "/mnt/nas-backup/restic-crema"
    assert report.details["files_new"] == 412
    assert report.size_bytes == int(96.417 * 1024 ** 3)
    assert report.transferred_bytes == int(1.284 * 1024 ** 3)


def test_restic_fatal_error_text_and_masked_repository() -> None:
    report = _classify("restic/cron_backup_fatal_no_repo.eml").report
    assert report.error.startswith("Fatal: unable to open config file")
    assert "$RESTIC_REST_PW" not in report.details["repository"]
    systemd = _classify("restic/systemd_onfailure_exit10.eml").report
    assert systemd.details["exit_code"] == 10
    assert systemd.details["unit"] == "restic-backups-nas.service"


def test_borg_stats() -> None:
    report = _classify("borg/cron_create_success.eml").report
    assert report.details["archive"] == "srv-crema-db01-2026-12-06T01.00"
    assert report.details["rc"] == 0
    assert report.started_at is not None and report.finished_at is not None
    assert report.started_at < report.finished_at
    assert report.size_bytes == int(61.27 * 1024 ** 3)
    assert report.transferred_bytes == int(318.55 * 1024 ** 2)


def _cron(command: str, body: str, host: str = "srv01") -> MailMessage:
    return MailMessage(subject=f"Cron <root@{host}> {command}", sender=f"root@{host}.example.lan",
                       headers={"x-cron-env": "<SHELL=/bin/sh>"}, text=body)


@pytest.mark.parametrize("line,status", [
    ("terminating with success status, rc 0", "success"),
    ("terminating with warning status, rc 1", "warning"),
    ("terminating with warning status, rc 107", "warning"),  # borg 1.4: a specific warning
    ("terminating with error status, rc 2", "failure"),
    ("terminating with error status, rc 13", "failure"),  # borg 1.4: a specific error
    ("terminating with signal status, rc 143", "failure"),
    ("terminating with abnormal status, rc 666", "failure"),
])
def test_borg_show_rc_classes(line: str, status: str) -> None:
    report = borg.parse(_cron("/usr/local/sbin/backup.sh", f"some output\n{line}\n"))
    assert report is not None and report.status == status and report.job == "srv01"


def test_borg_listing_and_restic_check_are_not_reports() -> None:
    assert borg.parse(_cron("borg list --show-rc /srv/borg/repo",
                            "srv01-2026-12-06 Sun, 2026-12-06 01:00:03 [ab12]\n"
                            "terminating with success status, rc 0\n")) is None
    assert restic.parse(_cron("restic -r /srv/restic check",
                              "Fatal: repository contains errors\n")) is None


def test_restic_json_output() -> None:
    body = ('{"message_type":"error","error":{"message":"open /data/secret: permission denied"},'
            '"during":"archival","item":"/data/secret"}\n'
            '{"message_type":"summary","files_new":1,"snapshot_id":"aaaa0000aaaa0000"}\n'
            '{"message_type":"exit_error","code":3,"message":"Warning: at least one source file could not be read"}\n')
    report = restic.parse(_cron("restic -r /srv/restic backup --json /data", body))
    assert report is not None and report.status == "warning"
    assert "permission denied" in report.error


def test_borgmatic_several_configurations() -> None:
    body = ("summary:\n/etc/borgmatic.d/a.yaml: Successfully ran configuration file\n"
            "/etc/borgmatic.d/b.yaml: An error occurred\n"
            "/srv/borg/b: Error running actions for repository\n"
            "Command 'borg create /srv/borg/b::x /srv' returned non-zero exit status 2.\n")
    report = borg.parse(_cron("borgmatic --stats", body))
    assert report is not None and report.software == "borgmatic"
    assert report.status == "failure" and report.job == "srv01"
    assert [(item.name, item.status) for item in report.items] == [
        ("/etc/borgmatic.d/a.yaml", "success"), ("/etc/borgmatic.d/b.yaml", "failure")]


@pytest.mark.parametrize("message", [
    MailMessage(),
    MailMessage(subject="Cron <root@x> restic backup", text="snapshot zz saved\nFatal:"),
    MailMessage(subject="Cron <root@x> borg create", text="terminating with  status, rc\nArchive name:"),
    MailMessage(subject="Re: Cron <root@x> borg create", text="> terminating with error status, rc 2"),
    MailMessage(subject="restic newsletter", text="snapshot 1a2b3c4d saved", headers={"list-id": "<restic.x>"}),
    MailMessage(subject="Cron <root@x> /bin/job", text="Fatal: something else broke\n"),
])
def test_not_claimed_and_never_raises(message: MailMessage) -> None:
    restic_report = restic.parse(message)
    borg_report = borg.parse(message)
    if message.subject.startswith("Re:") or message.header("list-id") or not message.subject.startswith("Cron"):
        assert restic_report is None and borg_report is None
    if message.subject == "Cron <root@x> /bin/job":
        assert restic_report is None
