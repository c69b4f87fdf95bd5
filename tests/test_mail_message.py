"""Whatever a mailbox holds, parsing and classifying never crash and decode what can be decoded."""

from __future__ import annotations

import base64
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mailfactory import SCRIPT_RULE, make_mail

from custode.agent.backups.config import MailRule
from custode.agent.backups.parsers import classify, not_a_report_reason
from custode.agent.backups.rules import compile_rules
from custode.agent.mail.message import MAX_MESSAGE_BYTES, parse_message


def test_rfc2047_subject_and_sender_in_any_charset() -> None:
    raw = (b"From: =?iso-8859-1?q?Comune_di_Cant=F9?= <backup@comune.cantu.co.it>\r\n"
           b"Subject: =?utf-8?b?" + base64.b64encode("Backup completato con successo – àèìòù".encode()) + b"?=\r\n"
           b"\r\nbody\r\n")
    message = parse_message(raw)
    assert message.sender_name == "Comune di Cantù"
    assert message.subject == "Backup completato con successo – àèìòù"
    assert message.sender == "backup@comune.cantu.co.it"


def test_raw_8bit_headers_are_decoded_not_mangled() -> None:
    message = parse_message("Subject: Backup però ok\r\nFrom: Città <a@b.it>\r\n\r\nx".encode("utf-8"))
    assert (message.subject, message.sender_name) == ("Backup però ok", "Città")
    assert parse_message("Subject: Backup però ok\r\n\r\nx".encode("latin-1")).subject == "Backup però ok"


def test_unknown_and_wrong_charsets_fall_back() -> None:
    raw = ("Subject: x\r\nContent-Type: text/plain; charset=klingon-8\r\n\r\nriuscito al 100%: però".encode("cp1252"))
    assert "però" in parse_message(raw).text
    wrong = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nperò".encode("latin-1")
    assert "per" in parse_message(wrong).text  # invalid UTF-8 is decoded with the fallbacks, not dropped


def test_html_only_body_becomes_text_and_tables() -> None:
    html = ("<html><head><style>td{color:red}</style></head><body><h1>Job Nightly</h1>"
            "<table><tr><th>VM</th><th>Status</th></tr><tr><td>srv-dc01</td><td>Success</td></tr>"
            "<tr><td>srv-sql</td><td>Failed</td></tr></table></body></html>")
    raw = b"Subject: r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.encode()
    message = parse_message(raw)
    assert "color" not in message.text
    assert "srv-sql | Failed" in message.text
    assert message.tables == [[["VM", "Status"], ["srv-dc01", "Success"], ["srv-sql", "Failed"]]]


def test_html_source_layout_is_not_the_text_layout() -> None:
    """A generator's source lines, cell-internal newlines and indentation are spaces, as in a browser."""
    html = ("<table>\n  <tr>\n    <td>\n      Start\n      time\n    </td>\n    <td>22:00:12</td>\n"
            "    <td>Total\r\n size</td>\n    <td>412.5\n GB</td>\n  </tr>\n</table>\n"
            "<p>Job\nfinished<br>with\t\twarnings</p><pre>line one\n  line two</pre>")
    raw = b"Subject: r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.encode()
    message = parse_message(raw)
    lines = message.text.splitlines()
    assert "Start time | 22:00:12 | Total size | 412.5 GB" in lines
    assert "Job finished" in lines and "with warnings" in lines
    assert "line one" in lines and "line two" in lines  # <pre> keeps its own line breaks
    assert message.tables == [[["Start time", "22:00:12", "Total size", "412.5 GB"]]]


def test_huge_attachment_is_capped_and_the_text_part_still_read() -> None:
    payload = base64.encodebytes(b"\0" * (MAX_MESSAGE_BYTES + 100_000))
    raw = (b"Subject: Backup nightly: success\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
           b"all good\r\n--XX\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; "
           b"filename=log.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" + payload + b"\r\n--XX--\r\n")
    message = parse_message(raw)
    assert message.truncated
    assert message.text == "all good"
    assert message.attachments == ["log.zip"]


def test_forward_as_attachment_exposes_the_inner_message() -> None:
    inner = make_mail("Backup nightly: failed", "disk full", sender="nas-script@comune.example.it")
    raw = (b"Subject: I: Backup nightly: failed\r\nFrom: referente@comune.example.it\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nvedi sotto\r\n"
           b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--B--\r\n")
    message = parse_message(raw)
    assert message.forwarded and message.inner is not None
    assert message.inner.sender == "nas-script@comune.example.it"
    assert message.clean_subject == "Backup nightly: failed"


def test_inline_forward_names_the_original_sender() -> None:
    body = ("Guarda qui\n\n-------- Messaggio inoltrato --------\nDa: Veeam <veeam@comune.example.it>\n"
            "Oggetto: [Failed] Nightly\n")
    message = parse_message(make_mail("Fwd: [Failed] Nightly", body, sender="collega@provider.example.it"))
    assert message.original_sender == "veeam@comune.example.it"
    assert message.clean_subject == "[Failed] Nightly"


def test_out_of_office_quoting_a_failure_is_not_a_report() -> None:
    reply = make_mail("Risposta automatica: Backup nightly: failed", "Sono fuori sede fino al 3.",
                      sender="nas-script@comune.example.it", headers={"Auto-Submitted": "auto-replied"})
    message = parse_message(reply)
    assert not_a_report_reason(message) == "automatic reply (out of office)"
    rules = compile_rules([MailRule.model_validate(SCRIPT_RULE)])
    assert classify(message, rules).kind == "not_a_report"


def test_bounce_is_not_a_report() -> None:
    bounce = make_mail("Undeliverable: Backup nightly: failed", "delivery failed",
                       sender="MAILER-DAEMON@mx.example.it")
    assert classify(parse_message(bounce)).kind == "not_a_report"


def test_newsletter_about_failed_backups_is_not_a_report() -> None:
    news = make_mail("5 reasons your backup failed last night", "Backup failed? Read our guide.",
                     sender="news@vendor.example.com", headers={"List-Unsubscribe": "<mailto:u@vendor.example.com>"})
    assert classify(parse_message(news)).kind == "not_a_report"


class TestRules:
    def rule(self, **overrides) -> list:
        return compile_rules([MailRule.model_validate({**SCRIPT_RULE, **overrides})])

    def verdict(self, subject: str, body: str = "", **overrides):
        return classify(parse_message(make_mail(subject, body, sender="nas-script@comune.example.it")),
                        self.rule(**overrides))

    def test_failure_words_win_over_success_words(self) -> None:
        verdict = self.verdict("Backup nightly: completed", "copied 10 files, 2 FAILED")
        assert verdict.report.status == "failure" and verdict.report.job == "nightly"

    def test_zero_counts_are_not_failures(self) -> None:
        assert self.verdict("Backup nightly: completed", "Errors: 0, 0 failed").report.status == "success"

    def test_phrases_and_case(self) -> None:
        verdict = self.verdict("Backup nightly: esito", "Backup COMPLETATO CON   AVVISI",
                               warning=["completato con avvisi"])
        assert verdict.report.status == "warning"

    def test_no_keyword_is_a_failure_or_not_a_report_as_configured(self) -> None:
        assert self.verdict("Backup nightly: ???", "nothing").kind == "not_a_report"
        assert self.verdict("Backup nightly: ???", "nothing", no_keyword="failure").report.status == "failure"

    def test_rules_need_a_selector(self) -> None:
        import pytest
        from pydantic import ValidationError

        with pytest.raises(ValidationError, match="at least one of sender, subject or body"):
            MailRule.model_validate({"name": "x", "software": "y"})


_header = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes_never_crash(raw: bytes) -> None:
    message = parse_message(raw)
    classify(message)
    # everything kept must be storable (SQLite) and printable (JSON): no surrogate escapes
    for text in (message.subject, message.sender, message.text, message.sender_name):
        text.encode("utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=_header, content_type=st.sampled_from(["text/plain", "text/html", "multipart/mixed",
                                                      "multipart/alternative", "message/rfc822", "x/y", ""]),
       charset=st.sampled_from(["utf-8", "iso-8859-1", "bogus", "", "utf-16", "cp1252"]),
       encoding=st.sampled_from(["base64", "quoted-printable", "8bit", "x-uuencode", "nonsense"]),
       body=st.binary(max_size=2048), boundary=st.text(min_size=0, max_size=10))
def test_fuzz_mime_structure_never_crash(subject: str, content_type: str, charset: str, encoding: str,
                                         body: bytes, boundary: str) -> None:
    head = (f"Subject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}; charset={charset}; "
            f"boundary=\"{boundary}\"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n")
    raw = head.encode("utf-8", "replace") + body + f"\r\n--{boundary}\r\n".encode("utf-8", "replace") + body
    message = parse_message(raw)
    classify(message)
    for text in (message.subject, message.text, message.attachment_text):
        text.encode("utf-8")


def test_an_html_report_with_tables_is_read_from_its_html_not_its_flattened_text_part() -> None:
    """Outlook's text alternative of a forwarded HTML report puts every cell on its own line."""
    html = ("<table><tr><td>Name</td><td>Status</td></tr><tr><td>SRV-ANAGRAFE</td><td>Warning</td></tr></table>")
    raw = (b"Subject: I: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
           b"--A\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nName\r\nStatus\r\nSRV-ANAGRAFE\r\nWarning\r\n"
           b"--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.encode() + b"\r\n--A--\r\n")
    assert "SRV-ANAGRAFE | Warning" in parse_message(raw).text.splitlines()
    plain_only = raw.replace(b"<table>", b"<div>").replace(b"</table>", b"</div>")
    assert "SRV-ANAGRAFE" in parse_message(plain_only).text.splitlines()  # no table: the text part is kept


_WORDS = st.sampled_from(["Success", "Warning", "Errore", "SRV-DC01", "412,5 GB", "22:00:12", "però", "&amp;",
                          "&nbsp;", "Total size", "1 of 3 VMs"])
_CELL = st.lists(st.one_of(_WORDS, st.sampled_from(["<b>", "</b>", "<span style=x>", "</span>", "<br>"])),
                 min_size=1, max_size=4).map(" ".join)
_ROW = st.lists(_CELL, min_size=1, max_size=4).map(lambda cells: "<tr>" + "".join(f"<td>{c}</td>" for c in cells)
                                                   + "</tr>")
_BLOCK = st.one_of(st.lists(_ROW, min_size=1, max_size=4).map(lambda rows: "<table>" + "".join(rows) + "</table>"),
                   _CELL.map(lambda text: f"<p>{text}</p>"), _CELL.map(lambda text: f"<div>{text}</div>"))
_SOURCE_SPACE = st.sampled_from(["", "\n", "\r\n    ", "\t", "  \n\n  "])


@settings(max_examples=200, deadline=None)
@given(blocks=st.lists(_BLOCK, min_size=1, max_size=5), spaces=st.lists(_SOURCE_SPACE, min_size=40, max_size=40))
def test_fuzz_html_text_does_not_depend_on_the_source_layout(blocks: list[str], spaces: list[str]) -> None:
    """Generators indent and break their HTML source as they like; the text a browser shows stays the same."""
    from custode.agent.mail.html import html_tables, html_text

    compact = "".join(blocks)
    pieces = iter(spaces * 100)
    laid_out = re.sub(r"(?<=>)(?=<(?:/?(?:table|tr|td|p|div)\b))", lambda _: next(pieces), compact)
    assert html_text(laid_out) == html_text(compact)
    assert html_tables(laid_out) == html_tables(compact)
    for line in html_text(laid_out).splitlines():
        assert line == line.strip() and "  " not in line and "\t" not in line
    for table in html_tables(laid_out):
        assert all("\n" not in cell and cell == cell.strip() for row in table for cell in row)
