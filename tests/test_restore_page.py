"""Tests for custode.agent.restore.page: the certificate page a provider sends to the comune.

They read the page as its reader would: the verdict word, the files that
failed named in plain words, dates in Rome time, the id and digest that tie the
page to the audit record; and as a browser would: well-formed, self-contained,
with hostile file names shown as text, never as markup.
"""

from __future__ import annotations

import copy
from html.parser import HTMLParser

import pytest

from custode.agent.restore.engine import certificate_digest
from custode.agent.restore.page import MAX_OK_ROWS, render_html, render_text

EVIL = 'Protocollo/2026/doc <b>1</b> & "quoted" \'x\'.pdf'
EVIL_ESCAPED = "Protocollo/2026/doc &lt;b&gt;1&lt;/b&gt; &amp; &quot;quoted&quot; &#x27;x&#x27;.pdf"
SHA = "9f" * 32
CERT_ID = "0b6f1c2e-7d1a-4a2b-9c3d-5e6f7a8b9c0d"


def _file(path: str, result: str = "ok", mtime: str = "2026-07-01T10:00:00+00:00", size: int = 123456,
          detail: str | None = None, stratum: str = "medium/recent") -> dict:
    return {"path": path, "size": size, "mtime": mtime, "stratum": stratum, "result": result,
            "source_sha256": "a" * 64, "restored_sha256": "a" * 64 if result == "ok" else "b" * 64,
            "manifest_sha256": None, "detail": detail}


def make_certificate(passed: bool = True) -> dict:
    files = [
        _file("Anagrafe/elenco.csv"),
        _file("Ragioneria/bilancio 2026.xlsx", mtime="2026-11-21T08:00:00+00:00", stratum="recent"),
        _file("Tributi/nuovo.docx", "skipped", mtime="2026-11-23T01:00:00+00:00", stratum="small/after-backup",
              detail="created or changed after the backup; the next backup will include it"),
        _file("Delibere/2025/delibera 12.pdf", "ok_manifest",
              detail="changed at the source after the backup; the restored copy matches the backup's own record"),
    ]
    if not passed:
        files += [
            _file(EVIL, "mismatch", mtime="2026-11-20T10:00:00+00:00", stratum="medium/new",
                  detail="restored copy differs from the source, which has not changed since the backup"),
            _file("Posta/archivio.pst", "not_restored", detail="restic: ciphertext verification failed"),
            _file("Servizi Sociali/fascicolo.odt", "missing", stratum="small/old",
                  detail="the file dates from 2026-01-01, before the backup, but the backup does not contain it"),
        ]
    failed = [f["path"] for f in files if f["result"] in ("mismatch", "not_restored", "missing")]
    return {
        "kind": "custode.restore-test", "version": 1, "id": CERT_ID,
        "set": "crema-files", "tenant": "crema", "backend": "restic",
        "repository": "/srv/backup/restic-crema", "source": "/srv/dati", "host": None,
        "snapshot": {"id": "4f2a9c1e", "time": "2026-11-22T23:10:05+00:00", "paths": ["/srv/dati"],
                     "hostname": "fs01"},
        "started_at": "2026-11-23T02:30:00+00:00", "finished_at": "2026-11-23T02:31:12+00:00",
        "duration_seconds": 72.4,
        "run_by": {"trigger": "scheduled", "user": "root", "hostname": "custode01", "custode_version": "0.5.0"},
        "tools": {"restic": "restic 0.14.0 compiled with go1.19.8 on linux/amd64"},
        "sample": {"requested": 50, "max_bytes": 1073741824, "recent": 5, "seed": 123456,
                   "source_files": 48211, "source_bytes": 91234567890, "selected": len(files),
                   "selected_bytes": 734003200, "strata": {}},
        "files": files,
        "files_checked": sum(f["result"] != "skipped" for f in files),
        "files_verified": sum(f["result"] in ("ok", "ok_manifest") for f in files),
        "mismatches": failed,
        "errors": [] if passed else ["restic: ciphertext verification failed for pack 3e1c (repository damaged)"],
        "warnings": [],
        "restore": {"bytes": 734003200, "seconds": 60.1, "throughput_bytes_per_second": 12212990.0},
        "passed": passed,
        "sha256": SHA,
    }


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "footer", "section", "h1", "h2", "h3",
                "p", "strong", "span", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd"}
VOID = {"meta"}


class StrictParser(HTMLParser):
    """html.parser plus the checks a lenient parser skips: nesting, closing, no unexpected tag or attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.doctype = False
        self.text: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"unexpected <{tag}>")
        for name, _ in attrs:
            if name not in ("class", "lang", "charset", "name", "content"):
                self.problems.append(f"unexpected attribute {name} on <{tag}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.problems.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> does not close {self.stack[-1:] or 'anything'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] != "style":
            self.text.append(data)


def parse(page: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.doctype, "missing <!DOCTYPE html>"
    assert not parser.problems, parser.problems
    assert not parser.stack, f"unclosed elements: {parser.stack}"
    return parser


def visible_text(page: str) -> str:
    return " ".join(" ".join(parse(page).text).split())


@pytest.mark.parametrize("language", ["it", "en"])
@pytest.mark.parametrize("passed", [True, False])
def test_html_is_well_formed_self_contained_and_printable(language, passed):
    page = render_html(make_certificate(passed), language, "Comune di Crema")
    parse(page)
    lowered = page.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    for external in ("http://", "https://", "src=", "href=", "url(", "@import", "<link"):
        assert external not in lowered, external
    assert '<meta charset="utf-8">' in page
    assert "@media print" in page and "size: A4" in page
    assert f'<html lang="{language}">' in page
    page.encode("utf-8")


def test_italian_passed():
    cert = make_certificate(passed=True)
    text = visible_text(render_html(cert, "it", "Comune di Crema"))
    assert "SUPERATO" in text and "NON SUPERATO" not in text
    assert "Comune di Crema" in text
    assert "completo e coerente alla data del 23/11/2026 00:10" in text
    assert "4f2a9c1e" in text and "/srv/backup/restic-crema" in text and "restic" in text
    assert "Inizio 23/11/2026 03:30" in text and "Fine 23/11/2026 03:31" in text
    assert "3 su 48.211 file presenti nell'origine (85,0 GiB)" in text
    assert "700,0 MiB in 1 min 00 s" in text and "11,6 MiB/s" in text
    assert "restic 0.14.0 compiled with go1.19.8" in text
    assert "Custode 0.5.0 sul server custode01 (utente root), avvio automatico programmato" in text
    for path in ("Anagrafe/elenco.csv", "Ragioneria/bilancio 2026.xlsx", "Tributi/nuovo.docx"):
        assert path in text
    assert "non confrontabile" in text and "non è un errore" in text
    assert "Problemi riscontrati" not in text
    assert CERT_ID in text and SHA in text


def test_italian_failed_lists_problems_first_and_escapes_names():
    cert = make_certificate(passed=False)
    page = render_html(cert, "it")
    assert EVIL_ESCAPED in page and "<b>1</b>" not in page
    text = visible_text(page)
    assert "NON SUPERATO" in text
    assert "NON può essere considerato affidabile: 3 file con problemi su 6 controllati" in text
    assert "la prova ha riportato 1 errore" in text
    problems = text.index("Problemi riscontrati")
    assert problems < text.index("Backup verificato")
    section = text[problems:text.index("Backup verificato")]
    assert "ciphertext verification failed for pack 3e1c" in section
    assert EVIL in section and "DIFFERENTE" in section and "il backup è danneggiato" in section
    assert "Posta/archivio.pst" in section and "NON RIPRISTINATO" in section
    assert "Servizi Sociali/fascicolo.odt" in section and "ASSENTE DAL BACKUP" in section
    assert "Ente: crema" in text  # no display name given: the tenant id stands in
    assert page.count('<tr class="bad">') == 3
    assert CERT_ID in text and SHA in text


def test_english_passed_and_failed():
    passed = visible_text(render_html(make_certificate(True), "en", "Comune di Crema"))
    assert "PASSED" in passed and "FAILED" not in passed
    assert "complete and consistent as of 2026-11-23 00:10 CET" in passed
    assert "Started 2026-11-23 03:30 CET" in passed
    assert "3 of the 48,211 files in the source (85.0 GiB)" in passed and "11.6 MiB/s" in passed
    failed_page = render_html(make_certificate(False), "en")
    failed = visible_text(failed_page)
    assert "FAILED" in failed and "PASSED" not in failed
    assert "can NOT be trusted: 3 of the 6 files checked" in failed
    assert EVIL in failed and "DIFFERENT" in failed and "NOT RESTORED" in failed and "NOT IN BACKUP" in failed
    assert EVIL_ESCAPED in failed_page
    assert CERT_ID in failed and SHA in failed


def test_unknown_language_falls_back_to_italian():
    assert "NON SUPERATO" in render_text(make_certificate(False), "de")
    assert "FAILED" in render_text(make_certificate(False), "EN")


@pytest.mark.parametrize("utc, italian, english", [
    ("2026-07-01T10:00:00+00:00", "01/07/2026 12:00", "2026-07-01 12:00 CEST"),  # summer time: UTC+2
    ("2026-01-15T10:00:00+00:00", "15/01/2026 11:00", "2026-01-15 11:00 CET"),  # winter time: UTC+1
    ("2026-03-29T00:59:00+00:00", "29/03/2026 01:59", "2026-03-29 01:59 CET"),  # last minute before the switch
    ("2026-03-29T01:00:00+00:00", "29/03/2026 03:00", "2026-03-29 03:00 CEST"),  # 02:00 never happens
    ("2026-10-25T00:30:00+00:00", "25/10/2026 02:30", "2026-10-25 02:30 CEST"),  # the repeated hour, first time
    ("2026-10-25T01:30:00+00:00", "25/10/2026 02:30", "2026-10-25 02:30 CET"),  # ... and second time
    ("2026-11-22T23:10:05Z", "23/11/2026 00:10", "2026-11-23 00:10 CET"),  # crosses midnight into the next day
])
def test_dates_in_rome_time_across_dst(utc, italian, english):
    cert = make_certificate()
    cert["started_at"] = utc
    assert f"Inizio: {italian}\n" in render_text(cert, "it")
    assert f"Started: {english}\n" in render_text(cert, "en")
    assert f"<tr><th>Inizio</th><td>{italian}</td></tr>" in render_html(cert, "it")


def test_long_lists_truncate_only_the_intact_files():
    cert = make_certificate(passed=False)
    cert["files"] += [_file(f"Archivio/file {i:04d}.pdf") for i in range(250)]
    intact = sum(f["result"] in ("ok", "ok_manifest") for f in cert["files"])
    hidden = intact - MAX_OK_ROWS
    assert hidden > 0
    page = render_html(cert, "it")
    parse(page)
    assert page.count('<tr class="bad">') == 3
    assert page.count('<td class="result">integro') == MAX_OK_ROWS
    assert f"… e altri {hidden} file integri" in page
    assert "non confrontabile" in page  # skipped files are not cut
    text = render_text(cert, "en")
    assert text.count("\n[intact") == MAX_OK_ROWS
    assert f"… and {hidden} more intact files" in text
    for failed in cert["mismatches"]:
        assert failed in text


def test_short_lists_are_not_truncated():
    page = render_text(make_certificate(), "en")
    assert "more intact files" not in page


def test_text_version_has_the_same_content():
    text = render_text(make_certificate(False), "it", "Comune di Crema")
    assert text.startswith("CERTIFICATO DI PROVA DI RIPRISTINO DEL BACKUP\nEnte: Comune di Crema\n")
    assert "ESITO DELLA PROVA: NON SUPERATO" in text
    assert text.index("PROBLEMI RISCONTRATI") < text.index("BACKUP VERIFICATO") < text.index("ELENCO DEI FILE")
    assert f"- {EVIL}\n" in text and f"[DIFFERENTE] {EVIL}\n" in text  # plain text: the raw name
    assert "Data del backup: 23/11/2026 00:10" in text
    assert "Velocità di ripristino: 11,6 MiB/s" in text
    assert f"Identificativo: {CERT_ID}" in text and f"Impronta SHA-256 del JSON: {SHA}" in text
    assert "<" not in text.replace(EVIL, "")
    assert max(len(line) for line in text.splitlines() if EVIL not in line and SHA not in line) <= 78


def test_digest_is_computed_when_the_certificate_has_none():
    cert = make_certificate()
    del cert["sha256"]
    expected = certificate_digest(cert)
    assert expected in render_html(cert) and expected in render_text(cert, "en")


def test_certificate_of_a_test_that_could_not_start():
    """Snapshot, sample and tools are empty when the repository was unreachable: the page still says why."""
    cert = make_certificate(False)
    cert.update(snapshot=None, sample=None, tools={}, files=[], files_checked=0, files_verified=0, mismatches=[],
                errors=["restic: repository /srv/backup/restic-crema not found: check the path in custode.yaml"],
                restore={"bytes": 0, "seconds": 0.0, "throughput_bytes_per_second": None},
                finished_at=None, duration_seconds=None, passed=False, host="fs01")
    for language in ("it", "en"):
        page = render_html(cert, language)
        text = visible_text(page)
        assert ("NON SUPERATO" if language == "it" else "FAILED") in text
        assert "repository /srv/backup/restic-crema not found" in text
        assert "fs01" in text
        render_text(cert, language)
    assert "Nessun file è stato controllato." in render_text(cert, "it")


def test_hostile_characters_cannot_forge_lines_or_break_encoding():
    cert = make_certificate(False)
    forged = "evil\nESITO DELLA PROVA: SUPERATO\u202egpj.exe\udcff"
    cert["files"].append(_file(forged, "mismatch"))
    cert["mismatches"].append(forged)
    text = render_text(cert, "it")
    assert "\nESITO DELLA PROVA: SUPERATO" not in text
    assert "evil\\x0aESITO DELLA PROVA: SUPERATO\\u202egpj.exe\\udcff" in text
    text.encode("utf-8")
    page = render_html(cert, "it")
    page.encode("utf-8")
    parse(page)


def test_rendering_does_not_modify_the_certificate():
    cert = make_certificate(False)
    before = copy.deepcopy(cert)
    render_html(cert, "it")
    render_text(cert, "en")
    assert cert == before


def test_manual_run_and_other_backends_in_words():
    cert = make_certificate()
    cert["run_by"]["trigger"] = "manual"
    cert["backend"] = "mirror"
    text = render_text(cert, "it")
    assert "avvio manuale" in text
    assert "copia speculare su cartella condivisa o NAS" in text
    assert "scelto come: medio, ultimo anno" in " ".join(text.split())
