"""Proxmox VE (vzdump) and Proxmox Backup Server job mails, on the real-world corpus.

The files under tests/data/mail/realworld/ are rebuilt from the products'
public templates and source (provenance in each index.json); the look-alikes
come from the same senders and must stay ``not_a_report``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custode.agent.backups.parsers import classify, proxmox_backup, proxmox_ve
from custode.agent.backups.report import Classification
from custode.agent.mail.message import MailMessage, parse_message

REALWORLD = Path(__file__).parent / "data" / "mail" / "realworld"
PVE = REALWORLD / "proxmox_ve"
PBS = REALWORLD / "proxmox_backup"
LOOKALIKE = REALWORLD / "lookalike"


def _classify(path: Path) -> Classification:
    return classify(parse_message(path.read_bytes()))


def _labelled(folder: Path) -> list[tuple[str, dict]]:
    return sorted(json.loads((folder / "index.json").read_text(encoding="utf-8")).items())


@pytest.mark.parametrize("name,expected", _labelled(PVE) + _labelled(PBS),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_labelled_file(name: str, expected: dict) -> None:
    folder = PVE if (PVE / name).is_file() else PBS
    verdict = _classify(folder / name)
    assert verdict.kind == "report", verdict.reason
    report = verdict.report
    assert report is not None
    assert report.software == expected["software"]
    assert report.status == expected["status"]
    assert report.job == expected["job"]
    assert verdict.parser == ("proxmox_ve" if folder == PVE else "proxmox_backup")


@pytest.mark.parametrize("name", sorted(p.name for p in LOOKALIKE.glob("*.eml")
                                        if p.name.startswith(("pve_", "pbs_", "reply_", "autoreply_"))))
def test_lookalike_is_not_a_report(name: str) -> None:
    verdict = _classify(LOOKALIKE / name)
    assert verdict.kind == "not_a_report", f"{name} taken for a report: {verdict.report}"


@pytest.mark.parametrize("name", sorted(p.name for p in LOOKALIKE.glob("*.eml")))
def test_parsers_do_not_claim_lookalikes_directly(name: str) -> None:
    """Called directly (no auto-reply filter in front), neither parser claims a look-alike."""
    message = parse_message((LOOKALIKE / name).read_bytes())
    if name.startswith("autoreply_"):
        return  # set aside by classify() before any parser; its body is a plain out-of-office text
    assert proxmox_ve.parse(message) is None
    assert proxmox_backup.parse(message) is None


# -- Proxmox VE --------------------------------------------------------------

def test_pve_current_success_has_one_item_per_guest() -> None:
    report = _classify(PVE / "current_success_3guests.eml").report
    assert report is not None
    assert report.host == "pve-crema01.comune.crema.cr.it"
    assert [item.name for item in report.items] == ["100 srv-anagrafe", "101 srv-protocollo", "200 ct-dns-crema"]
    assert all(item.status == "success" for item in report.items)
    assert report.items[0].size_bytes == 32 * 1024 ** 3
    assert report.error is None
    assert report.started_at is not None and report.started_at.isoformat() == "2026-12-06T00:00:02+01:00"
    assert report.finished_at is not None and report.finished_at.isoformat() == "2026-12-06T00:28:35+01:00"
    assert report.size_bytes == int(134.1 * 1024 ** 3)
    assert report.details["storage"] == "pbs-crema"


@pytest.mark.parametrize("name", ["current_failure_qmp_timeout.eml", "current_failure_fwd_thunderbird.eml"])
def test_pve_current_failure_names_the_failed_guest(name: str) -> None:
    report = _classify(PVE / name).report
    assert report is not None and report.status == "failure"
    assert [(item.name, item.status) for item in report.items] == [("110 srv-tributi", "success"),
                                                                    ("111 srv-suap", "failure")]
    assert "got timeout" in (report.items[1].error or "")
    assert report.error and report.error.startswith("111 srv-suap:")


def test_pve_job_level_failure_takes_the_error_from_the_subject() -> None:
    report = _classify(PVE / "current_failure_storage_unreachable.eml").report
    assert report is not None and report.status == "failure"
    assert report.items == []
    assert report.error and "could not get storage information for 'pbs-crema'" in report.error


@pytest.mark.parametrize("name", ["legacy_failure_vm_and_ct.eml", "legacy_failure_fwd_attached.eml"])
def test_pve_legacy_failure(name: str) -> None:
    report = _classify(PVE / name).report
    assert report is not None and report.status == "failure"
    assert report.details["format"] == "pre-8.1"
    assert [(item.name, item.status) for item in report.items] == [("104 srv-polizia-locale", "failure"),
                                                                    ("105 ct-biblioteca", "success")]
    assert "unable to create temporary directory" in (report.items[0].error or "")
    assert report.items[1].size_bytes == 870 * 1024 ** 2


@pytest.mark.parametrize("name", ["legacy_success_2guests.eml", "legacy_success_fwd_outlook_it.eml"])
def test_pve_legacy_success(name: str) -> None:
    report = _classify(PVE / name).report
    assert report is not None and report.status == "success"
    assert [item.name for item in report.items] == ["102 srv-ragioneria", "103 ct-web-comune"]
    assert report.items[0].size_bytes == 27 * 1024 ** 3


def _rewrite(path: Path, old: bytes, new: bytes) -> MailMessage:
    raw = path.read_bytes()
    assert old in raw
    return parse_message(raw.replace(old, new, 1))


def test_pve_reply_behind_a_gateway_tag_is_not_a_report() -> None:
    message = _rewrite(PVE / "current_success_3guests.eml", b"Subject: vzdump", b"Subject: [EXTERNAL] R: vzdump")
    assert classify(message).kind == "not_a_report"


def test_pve_quoted_report_without_reply_prefix_is_not_a_report() -> None:
    message = _rewrite(LOOKALIKE / "reply_to_vzdump_success_thunderbird.eml", b"Subject: Re: ", b"Subject: ")
    assert classify(message).kind == "not_a_report"


def test_pve_forward_with_a_rewritten_subject_reads_the_forwarded_header() -> None:
    message = _rewrite(PVE / "current_failure_fwd_thunderbird.eml",
                       b"Subject: Fwd: vzdump backup status (pve-crema02.comune.crema.cr.it): backup failed",
                       b"Subject: Fwd: backup di stanotte")
    report = classify(message).report
    assert report is not None and (report.job, report.status) == ("pve-crema02", "failure")


def test_pve_forwarded_as_quote() -> None:
    raw = (PVE / "current_failure_fwd_thunderbird.eml").read_bytes()
    head, _, body = raw.partition(b"-------- Forwarded Message --------\n")
    quoted = b"\n".join(b"> " + line for line in body.splitlines())
    report = classify(parse_message(head + b"-------- Forwarded Message --------\n" + quoted)).report
    assert report is not None and (report.job, report.status, len(report.items)) == ("pve-crema02", "failure", 2)


def test_pve_multiple_problems_error_comes_from_the_body() -> None:
    raw = (b"From: vzdump backup tool <root@pve1.example.com>\n"
           b"Subject: vzdump backup status (pve1.example.com): backup failed: multiple problems\n"
           b"Content-Type: text/plain; charset=utf-8\n\n"
           b"could not activate storage 'nfs1': storage is not online\n"
           b"Details\n=======\nVMID    Name    Status    Time    Size    Filename\n"
           b"Total running time: 0s\nTotal size: 0 B\n\nLogs\n====\nvzdump --all 1 --storage nfs1 --node pve1\n")
    report = classify(parse_message(raw)).report
    assert report is not None and (report.job, report.status) == ("pve1", "failure")
    assert report.error == "could not activate storage 'nfs1': storage is not online"


def test_pve_subject_without_the_notification_body_is_not_a_report() -> None:
    raw = (b"From: someone@example.com\nSubject: vzdump backup status (pve1): backup failed\n"
           b"Content-Type: text/plain\n\nIl backup di stanotte non e' partito, ci guardate?\n")
    assert proxmox_ve.parse(parse_message(raw)) is None


# -- Proxmox Backup Server ---------------------------------------------------

@pytest.mark.parametrize("name,kind", [
    ("verify_ok.eml", "verify"), ("gc_ok.eml", "garbage collection"), ("prune_ok.eml", "prune"),
    ("sync_remote_ok.eml", "sync"), ("sync_local_ok.eml", "sync"), ("tape_backup_ok.eml", "tape backup"),
])
def test_pbs_job_type(name: str, kind: str) -> None:
    report = _classify(PBS / name).report
    assert report is not None and report.details["job_type"] == kind
    assert report.host == "pbs-crema.comune.crema.cr.it"


@pytest.mark.parametrize("name", ["verify_err.eml", "verify_err_fwd_outlook_it.eml"])
def test_pbs_failed_verification_lists_the_snapshots(name: str) -> None:
    report = _classify(PBS / name).report
    assert report is not None and report.status == "failure"
    assert [(item.name, item.status) for item in report.items] == [("vm/101/2026-12-04T23:06:54Z", "failure")]
    assert report.error and "vm/101/2026-12-04T23:06:54Z" in report.error


@pytest.mark.parametrize("name,needle", [
    ("gc_err.eml", "ENOSPC"), ("prune_err.eml", "unable to acquire lock"),
    ("sync_remote_err.eml", "No route to host"), ("tape_backup_err.eml", "no usable media found"),
])
def test_pbs_error_text(name: str, needle: str) -> None:
    report = _classify(PBS / name).report
    assert report is not None and report.status == "failure"
    assert report.error and needle in report.error


def test_pbs_sync_details() -> None:
    report = _classify(PBS / "sync_remote_ok.eml").report
    assert report is not None
    assert (report.details["remote"], report.details["remote_store"], report.details["datastore"]) == \
        ("pbs-ombriano", "store-ombriano", "store-crema")


def test_pbs_tape_backup_without_job_id_is_named_by_its_datastore() -> None:
    raw = (b"From: Proxmox Backup Server <root@pbs1.example.com>\n"
           b"Subject: Tape Backup datastore 'store1' successful\nContent-Type: text/plain\n\n"
           b"Datastore:  store1\nTape Pool:  p1\nTape Drive: d1\n\nTape Backup successful.\n\n\n"
           b"Please visit the web interface for further details:\n\n"
           b"<https://pbs1.example.com:8007/#DataStore-store1>\n")
    report = classify(parse_message(raw)).report
    assert report is not None and (report.software, report.job, report.status) == \
        ("Proxmox Backup Server", "store1", "success")


def test_pbs_reply_behind_a_gateway_tag_is_not_a_report() -> None:
    message = _rewrite(LOOKALIKE / "reply_outlook_it_to_pbs_verify_failed.eml", b"Subject: R:",
                       b"Subject: [EXTERNAL] R:")
    assert classify(message).kind == "not_a_report"


def test_pbs_subject_alone_is_not_a_report() -> None:
    raw = (b"From: someone@example.com\nSubject: Verify Datastore 'store1' failed\n"
           b"Content-Type: text/plain\n\nCosa significa questo errore?\n")
    assert proxmox_backup.parse(parse_message(raw)) is None


@pytest.mark.parametrize("raw", [b"", b"Subject: vzdump backup status (x): backup failed\n\nDatastore:\nvzdump",
                                 b"\xff\xfe garbage \x00", b"Subject: Sync remote 'a' datastore '' failed\n\n|||"])
def test_parsers_never_raise(raw: bytes) -> None:
    message = parse_message(raw)
    proxmox_ve.parse(message)
    proxmox_backup.parse(message)
