"""Veeam parsers: what the fixture expectations cannot say (per-object statuses, edge cases, robustness)."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from pathlib import Path

import pytest

from custode.agent.backups.parsers import _common, classify, veeam_agent, veeam_br, veeam_m365
from custode.agent.mail.message import MailMessage, parse_message

MAIL = Path(__file__).parent / "data" / "mail"


def _load(name: str) -> MailMessage:
    return parse_message((MAIL / name).read_bytes())


def _edited(name: str, old: str, new: str) -> MailMessage:
    """A fixture whose decoded HTML body has ``old`` replaced (fixtures are quoted-printable or base64)."""
    message = email.message_from_bytes((MAIL / name).read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    assert old in html
    message.set_content(html.replace(old, new, 1), subtype="html")
    return parse_message(message.as_bytes())


@pytest.mark.parametrize("subject,status,job", [
    ("[Success] Backup Server Comune (3 VMs)", "success", "Backup Server Comune"),
    ("[Warning] Backup DC (2 objects) 1 warning", "warning", "Backup DC"),
    ("[Failed] Daily Backup (5 machines) 1 failed, 2 warnings", "failure", "Daily Backup"),
    ("[Failed] Backup SQL (1 of 1 VMs)", "failure", "Backup SQL"),
    ("[Error] Copia Offsite\\Backup Server (2 instances)", "failure", "Copia Offsite"),
    ("Backup notturno Comune", None, "Backup notturno Comune"),
])
def test_subject_parts(subject: str, status: str | None, job: str) -> None:
    assert veeam_br.subject_parts(subject) == (status, job)


def test_clock_times_on_the_session_day() -> None:
    base = datetime(2024, 3, 12, 23, 30, tzinfo=_common.ROME)
    start = veeam_br.clock("23:30:00", base)
    assert start is not None and start.isoformat() == "2024-03-12T23:30:00+01:00"
    assert veeam_br.clock("0:02:41 (+1)", start).isoformat() == "2024-03-13T00:02:41+01:00"
    assert veeam_br.clock("0:02:41", start, after=start).isoformat() == "2024-03-13T00:02:41+01:00"
    assert veeam_br.clock("1:03:20 AM", base).isoformat() == "2024-03-12T01:03:20+01:00"
    assert veeam_br.clock("10:15:00 PM", base).isoformat() == "2024-03-12T22:15:00+01:00"
    assert veeam_br.clock("n/a", base) is None


def test_per_object_statuses_and_errors() -> None:
    report = classify(_load("veeam_br/br_warning_italian_server.eml")).report
    assert report is not None
    assert [(item.name, item.status) for item in report.items] == [("SRV-DC02", "success"),
                                                                    ("SRV-PROTOCOLLO", "warning")]
    assert report.items[0].error is None
    assert "TruncateSQLLog" in (report.items[1].error or "")
    assert report.details["session_type"] == "Incremental"
    assert report.details["dedupe"] == "2,3x"


def test_session_messages_and_processed_count() -> None:
    report = classify(_load("veeam_br/br_failed_forwarded_it.eml")).report
    assert report is not None
    assert report.error is not None and report.error.startswith("Error: Insufficient free space")
    assert report.details["processed"] == "0 of 1 VMs"
    assert report.transferred_bytes == 0


def test_forward_note_does_not_shadow_the_report_header() -> None:
    message = _edited("veeam_br/br_success_backup_3vm.eml", "<body>", "<body><p>Controlla questo job: sembra lento</p>")
    report = veeam_br.parse(message)
    assert report is not None and report.job == "Backup Server Comune"


def test_a_vb365_vm_in_a_backup_and_replication_report_stays_br() -> None:
    verdict = classify(_edited("veeam_br/br_success_backup_3vm.eml", "SRV-APP01", "VB365-SRV"))
    assert verdict.parser == "veeam_br" and verdict.report is not None
    assert "VB365-SRV" in [item.name for item in verdict.report.items]


def test_agent_reports_are_not_taken_by_backup_and_replication_first() -> None:
    for name in ("agent_win_success.eml", "agent_win_warning_italian_server.eml", "agent_linux_veemail_failed.eml"):
        assert classify(_load(f"veeam_agent/{name}")).parser == "veeam_agent"
    for name in ("m365_success.eml", "m365_failed_office365.eml"):
        assert classify(_load(f"veeam_m365/{name}")).parser == "veeam_m365"


def test_old_endpoint_backup_name_is_the_windows_agent() -> None:
    message = _edited("veeam_agent/agent_win_success.eml", "Veeam Agent for Microsoft Windows 6.1.2.134",
                      "Veeam Endpoint Backup 1.5.0.306")
    report = veeam_agent.parse(message)
    assert report is not None and report.software == "Veeam Agent for Microsoft Windows"
    assert report.host == "PC-RAGIONERIA"


def test_m365_keeps_the_organization() -> None:
    report = veeam_m365.parse(_load("veeam_m365/m365_success.eml"))
    assert report is not None and report.details["organization"] == "comuneesempio.onmicrosoft.com"
    legacy = veeam_m365.parse(_load("veeam_m365/m365_failed_office365.eml"))
    assert legacy is not None and legacy.details["product_name"] == "Veeam Backup for Microsoft Office 365"
    assert "product_name" not in report.details


@pytest.mark.parametrize("parser", [veeam_br, veeam_agent, veeam_m365])
def test_unrelated_mail_is_none(parser) -> None:
    plain = MailMessage(subject="Riunione di giunta", sender="sindaco@comune.example.it",
                        text="Ordine del giorno: bilancio.\nStart time 10:00")
    assert parser.parse(plain) is None


@pytest.mark.parametrize("name", sorted(str(p.relative_to(MAIL)) for p in MAIL.glob("veeam_*/*.eml")))
def test_parsers_never_raise_on_damaged_reports(name: str) -> None:
    raw = (MAIL / name).read_bytes()
    for cut in (len(raw) // 5, len(raw) // 3, len(raw) // 2, len(raw) - 7):
        damaged = raw[:cut] + b"<table><tr><td>Success</td><td>Start time</td><td>|||</td>" + raw[cut:cut + 40]
        message = parse_message(damaged)
        for parser in (veeam_m365, veeam_agent, veeam_br):
            parser.parse(message)  # must not raise


def test_backup_copy_job_name_without_its_source_job() -> None:
    message = _edited("veeam_br/br_backup_copy_custom_subject.eml", "Copia Offsite NAS",
                      "Copia Offsite NAS\\Backup Server Comune")
    report = veeam_br.parse(message)
    assert report is not None and report.job == "Copia Offsite NAS"
    assert report.details["source_job"] == "Backup Server Comune"


def test_agent_job_reported_by_the_backup_server_is_backup_and_replication() -> None:
    raw = (MAIL / "veeam_agent" / "agent_win_success.eml").read_bytes().replace(
        b"Subject: [Success] PC-RAGIONERIA - Backup Job PC-RAGIONERIA - 12/03/2024 12:41:07",
        b"Subject: [Success] Backup Job PC-RAGIONERIA (1 machines)")
    verdict = classify(parse_message(raw))
    assert verdict.parser == "veeam_br" and verdict.report is not None
    assert verdict.report.software == "Veeam Backup & Replication"
    assert verdict.report.job == "Backup Job PC-RAGIONERIA"


def test_other_products_counting_files_are_not_veeam() -> None:
    text = ("Backup job: Documenti\nSuccess\n1200 of 1200 files processed\nMonday, 18 March 2024 22:00:00\n"
            "Start time | 22:00:00 | End time | 22:10:00 | Duration | 0:10:00 | Transferred | 2 GB")
    message = MailMessage(subject="[Success] Documenti", sender="nas@comune.example.it", text=text)
    assert veeam_br.parse(message) is None
