"""The report rendered: HTML with its figures, the PDF as a reader sees it (pdftotext, pdftoppm), the CSV zip,
English, an empty quarter, a service not bought, the PDF child's bounds, WeasyPrint missing, and the command.

The documents are written by hand (``tests/report_documents.py``), so every
figure looked for is known; the builder is replaced in the command's tests.
The PDF tests need WeasyPrint (the ``reports`` extra, which the test extra
pulls in) and Debian's poppler-utils (``scripts/test.sh`` installs it); they
skip, saying which, when either is missing. Page images are kept under the
test's tmp dir (``pages/page-N.png``) for a look after a failure.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from report_documents import empty_quarter, vaiano_english, vaiano_quarter, without_backup_control

from custode.agent.reports import cli as report_cli
from custode.agent.reports.csvfiles import FILES
from custode.agent.reports.document import BackupJobHistory
from custode.agent.reports.pdf import INSTALL_HINT, PdfError, pdf_from_html, weasyprint_installed
from custode.agent.reports.render import TEMPLATES, check_templates, html_text, render

ROOT = Path(__file__).resolve().parent.parent
needs_weasyprint = pytest.mark.skipif(not weasyprint_installed(),
                                      reason="WeasyPrint is not installed: pip install -e '.[reports]'")


def _poppler(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        pytest.skip(f"{program} is missing: apt-get install poppler-utils (scripts/test.sh installs it)")
    return found


def pdf_pages(pdf: bytes, folder: Path) -> list[str]:
    """The text of each page (pdftotext -layout), and each page as a PNG under ``folder/pages``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.pdf"
    path.write_bytes(pdf)
    text = subprocess.run([_poppler("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    (folder / "pages").mkdir(exist_ok=True)
    subprocess.run([_poppler("pdftoppm"), "-r", "60", "-png", str(path), str(folder / "pages" / "page")],
                   check=True, timeout=120)
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


# --- HTML -----------------------------------------------------------------------------------------

def test_the_html_has_the_figures_a_referent_looks_for() -> None:
    rendered = render(vaiano_quarter(), "html")
    html = rendered.content.decode("utf-8")
    assert rendered.filename == "rapporto-trimestrale-vaiano-2026Q4.html"
    assert rendered.media_type.startswith("text/html")
    for expected in ("Comune di Vaiano Cremasco", "Consorzio.IT", "4° trimestre 2026",
                     "dal 1 ottobre 2026 al 31 dicembre 2026",
                     "Generato il 4 gennaio 2027 alle 08:00 (UTC+01:00)",
                     # the summary, from the sections' own figures
                     "Esecuzioni previste: 250; riuscite 244, con avvisi 1, fallite 2, senza report 3.",
                     "Test di ripristino superati: 1 su 1.", "Disponibilità media: 99,59%",
                     "la più lunga: 3 h 20 min (vaiano-file01)", "presi in carico entro i tempi: 7 su 8 (87,5%)",
                     # backups: the grid's totals, the nights with no report, the failure, the certificate
                     "89/92", "66/66", "18 nov, 19 nov", "26 dic",
                     "Failed to connect to vaiano-file01: host unreachable",
                     "vaiano-dati-202611150312", "50 su 50",
                     # availability, capacity, security
                     "98,90%", "3 h 20 min", "2 aprile 2027", "16 ottobre 2027", "2,0 TB",
                     "supporto terminato il 10 ottobre 2023", "5 giorni 4 h", "37 (12)",
                     "Disco 2 dell&#39;array RAID in stato degradato",
                     # updates: the rollback, the holiday, the urgent run
                     "annullata (ripristinata)", "Natale (festività nazionale)", "urgente, fuori finestra",
                     # tickets: the missed level, the late ticket, the open one
                     "Consorzio.IT – assistenza sistemistica, profilo PRO", "2 su 3 (67%)", "#2026-1050",
                     "#2026-1071",
                     # folders, attachments, glossary
                     "E:\\Scansioni", "Cartelle salvate: 3; non protette: 2.", "backup_days.csv", "Glossario",
                     "Presa in carico"):
        assert expected in html, expected
    assert html.count('class="light light-red"') == 3
    assert html.count("<svg") > 10 and 'class="chart"' in html  # charts inline, as vectors
    assert "#2026-1041" not in html  # a ticket in time is in tickets.csv, not in the PDF's list
    assert set(rendered.attachments) == set(FILES)


def test_values_from_mail_and_helpdesk_are_printed_never_run() -> None:
    report = vaiano_quarter()
    job = report.backups.jobs[0]
    hostile = BackupJobHistory('<script>alert("x")</script>', "<b>Veeam</b>", job.schedule, job.days)
    html = html_text(replace(report, backups=replace(report.backups, jobs=(hostile, *report.backups.jobs[1:])),
                             tenant_name="Comune di <img src=x onerror=alert(1)>"))
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>Veeam" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "Comune di &lt;img src=x onerror=alert(1)&gt;" in html


def test_an_english_report_has_english_words_and_numbers() -> None:
    html = render(vaiano_english(), "html").content.decode("utf-8")
    for expected in ("Quarterly report", "Q4 2026", "1 October 2026 to 31 December 2026",
                     "Generated on 4 January 2027 at 08:00 (UTC+01:00)", "98.90%", "2 April 2027",
                     "Restore tests passed: 1 of 1.", "rolled back", "Glossary", "Take in charge",
                     "2 of 3 (67%)"):
        assert expected in html, expected
    for italian in ("Rapporto trimestrale", "Glossario", "98,90%", "aprile"):
        assert italian not in html, italian
    assert render(vaiano_english(), "csv").filename == "quarterly-report-vaiano-2026Q4-data.zip"


def test_an_empty_report_says_there_is_no_data_instead_of_empty_tables() -> None:
    rendered = render(empty_quarter(), "html")
    html = rendered.content.decode("utf-8")
    assert "Nel periodo non è stato registrato alcun dato per questo comune" in html
    assert "<table class=\"grid\"" not in html and "<thead>" not in html
    assert html.count("Non valutato") == 6
    assert rendered.attachments == {}
    archive = zipfile.ZipFile(io.BytesIO(render(empty_quarter(), "csv").content))
    assert set(archive.namelist()) == {"LEGGIMI.txt", *FILES}  # the fixed set, header only
    assert archive.read("tickets.csv").decode() == "ref,level,subject,opened_at,taken_at,resolved_at,within_target\n"


def test_a_service_the_comune_did_not_buy_says_so() -> None:
    html = render(without_backup_control(), "html").content.decode("utf-8")
    note = "Questo servizio non è compreso nel contratto del comune"
    assert html.count(note) >= 3  # the summary's line, the backups section, the restore tests, the folders
    assert "<table class=\"grid\"" not in html
    assert "98,90%" in html  # monitoring was bought: availability is there


# --- CSV ---------------------------------------------------------------------------------------------

def test_the_csv_zip_holds_every_row_the_pdf_leaves_out() -> None:
    report = vaiano_quarter()
    rendered = render(report, "csv")
    assert rendered.filename == "rapporto-trimestrale-vaiano-2026Q4-dati.zip"
    assert rendered.media_type == "application/zip" and rendered.attachments == {}
    archive = zipfile.ZipFile(io.BytesIO(rendered.content))
    assert set(archive.namelist()) == {"LEGGIMI.txt", *FILES}
    assert "backup_days.csv: ogni esecuzione prevista" in archive.read("LEGGIMI.txt").decode()
    days = archive.read("backup_days.csv").decode().splitlines()
    assert len(days) == 1 + sum(len(j.days) for j in report.backups.jobs)
    assert ("Backup notturno server,Veeam Backup & Replication,0 2 * * *,2026-11-03,failure,2026-11-03T02:20:00+01:00,"
            "Failed to connect to vaiano-file01: host unreachable") in days
    assert "Copia off-site NAS,Synology Hyper Backup,0 4 * * *,2026-11-18,missing,," in days
    grid = archive.read("backup_grid.csv").decode().splitlines()
    assert grid[0] == "day,Backup notturno server,Copia off-site NAS,Backup SQL Halley"
    assert "2026-10-03,success,success," in grid  # a Saturday: the SQL job is not due
    daily = archive.read("servers_daily.csv").decode().splitlines()
    assert len(daily) == 1 + 3 * 92
    assert len(archive.read("tickets.csv").decode().splitlines()) == 1 + 8
    assert render(report, "csv").content == rendered.content  # the same report, the same bytes


# --- PDF ---------------------------------------------------------------------------------------------

@needs_weasyprint
def test_the_pdf_shows_the_comune_the_period_the_figures_and_page_n_of_m(tmp_path) -> None:
    rendered = render(vaiano_quarter(), "pdf")
    assert rendered.filename == "rapporto-trimestrale-vaiano-2026Q4.pdf" and rendered.content.startswith(b"%PDF")
    pages = pdf_pages(rendered.content, tmp_path)
    count = len(pages)
    assert 5 <= count <= 20, count
    for number, page in enumerate(pages, 1):
        assert f"Pagina {number} di {count}" in page, f"page {number} has no 'Pagina {number} di {count}'"
        assert "Comune di Vaiano Cremasco" in page and "4° trimestre 2026" in page
        assert "Generato il 4 gennaio 2027 alle 08:00 (UTC+01:00)" in page
    text = " ".join(" ".join(page.split()) for page in pages)
    for expected in ("Rapporto trimestrale", "Consorzio.IT", "Disponibilità media: 99,59%", "98,90%",
                     "vaiano-dati-202611150312", "2 aprile 2027", "Natale (festività nazionale)", "#2026-1050",
                     "Cartelle salvate e non protette", "Glossario"):
        assert expected in text, expected
    pngs = sorted((tmp_path / "pages").glob("page-*.png"))
    assert len(pngs) == count and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


@needs_weasyprint
def test_an_english_and_an_empty_pdf(tmp_path) -> None:
    english = pdf_pages(render(vaiano_english(), "pdf").content, tmp_path / "en")
    assert f"Page 1 of {len(english)}" in english[0] and "Quarterly report" in english[0]
    empty = pdf_pages(render(empty_quarter(), "pdf").content, tmp_path / "empty")
    assert len(empty) <= 3
    assert "Nel periodo non è stato registrato alcun dato" in " ".join(" ".join(p.split()) for p in empty)
    assert f"Pagina 1 di {len(empty)}" in empty[0]


@needs_weasyprint
def test_a_render_past_its_time_bound_is_killed_in_one_line() -> None:
    html = html_text(vaiano_quarter())
    started = time.monotonic()
    with pytest.raises(PdfError) as caught:
        pdf_from_html(html, timeout=0.3)
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "took longer than 0.3 s and was stopped" in message and "\n" not in message


@needs_weasyprint
def test_a_render_past_its_memory_bound_is_stopped_in_one_line() -> None:
    if sys.platform == "win32":
        pytest.skip("no RLIMIT_AS on Windows")
    with pytest.raises(PdfError) as caught:
        pdf_from_html(html_text(vaiano_quarter()), memory=120 << 20)
    message = str(caught.value)
    assert "120 MiB memory bound" in message and "\n" not in message, message


def test_without_weasyprint_pdf_fails_in_one_line_naming_the_fix_and_html_csv_work(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint now fails, as when not installed
    assert not weasyprint_installed()
    with pytest.raises(PdfError) as caught:
        render(vaiano_quarter(), "pdf")
    assert str(caught.value) == INSTALL_HINT and "pip install 'custode[reports]'" in INSTALL_HINT
    assert render(vaiano_quarter(), "html").content and render(vaiano_quarter(), "csv").content


def test_weasyprint_that_cannot_import_in_the_child_names_the_fix(tmp_path, monkeypatch) -> None:
    """WeasyPrint present but broken (its Pango missing): the child's import fails, the message says what to do."""
    shadow = tmp_path / "shadow" / "weasyprint"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise OSError(\"cannot load library 'libpango-1.0-0'\")\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))
    monkeypatch.syspath_prepend(str(tmp_path / "shadow"))
    with pytest.raises(PdfError) as caught:
        pdf_from_html("<p>x</p>")
    assert str(caught.value).startswith(INSTALL_HINT) and "libpango-1.0-0" in str(caught.value)


def test_the_templates_are_package_data() -> None:
    import tomllib

    assert check_templates() == list(TEMPLATES)
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["custode.agent.reports"]
    for path in (ROOT / "agent" / "reports" / "templates").iterdir():
        assert any(path.match(p.split("/")[-1]) for p in patterns), f"{path.name} is not in package-data"
    assert '"weasyprint>=62"' in (ROOT / "pyproject.toml").read_text()
    assert "poppler-utils" in (ROOT / "scripts" / "test.sh").read_text()
    assert "check_templates" in (ROOT / "scripts" / "build-deb.sh").read_text()


# --- the command ---------------------------------------------------------------------------------------

@pytest.fixture
def command(tmp_path, monkeypatch):
    """``custode report`` on a config with Vaiano, the builder replaced by the hand-written quarter."""
    config = tmp_path / "custode.yaml"
    config.write_text(f"agent:\n  data_dir: {tmp_path / 'data'}\ntenants:\n  vaiano:\n"
                      "    name: Comune di Vaiano Cremasco\n")
    calls: list[tuple] = []

    def builder(cfg, state, tenant, kind, period, now):
        calls.append((tenant, kind, period, now))
        return empty_quarter() if tenant == "empty" else vaiano_quarter()

    monkeypatch.setattr(report_cli, "load_builder", lambda: builder)
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> int:
        from custode.agent.cli import main

        return main(["report", *args, "--config", str(config)])

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_report_html_writes_the_document_and_its_csv_zip_beside_it(command, tmp_path, capsys) -> None:
    assert command("quarterly", "--tenant", "vaiano", "--period", "2026Q4", "--format", "html") == 0
    out = capsys.readouterr().out
    assert out.startswith("Config: ")
    document = tmp_path / "rapporto-trimestrale-vaiano-2026Q4.html"
    beside = tmp_path / "rapporto-trimestrale-vaiano-2026Q4-dati.zip"
    assert f"wrote {document.name}" in out and f"wrote {beside.name}" in out
    assert "Comune di Vaiano Cremasco" in document.read_text(encoding="utf-8")
    assert "backup_days.csv" in zipfile.ZipFile(beside).namelist()
    tenant, kind, period, now = command.calls[0]
    assert (tenant, kind, period) == ("vaiano", "quarterly", "2026Q4")
    assert isinstance(now, datetime) and now.tzinfo is not None


def test_report_csv_into_a_directory_and_json_on_stdout(command, tmp_path, capsys) -> None:
    (tmp_path / "out").mkdir()
    assert command("quarterly", "--tenant", "vaiano", "--period", "2026Q4", "--format", "csv", "-o", "out") == 0
    assert zipfile.ZipFile(tmp_path / "out" / "rapporto-trimestrale-vaiano-2026Q4-dati.zip").namelist()
    capsys.readouterr()
    assert command("quarterly", "--tenant", "vaiano", "--period", "2026Q4", "--format", "json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["config"].endswith("custode.yaml") and "state_db" in body
    assert body["report"]["tenant_name"] == "Comune di Vaiano Cremasco"
    assert body["report"]["generated_at"] == "2027-01-04T08:00:00+01:00"


def test_report_asked_wrong_is_one_line_and_exit_2(command, capsys) -> None:
    assert command("quarterly", "--tenant", "vaiano", "--period", "2026", "--format", "html") == 2
    assert "--period 2026 is a year; a quarterly report takes a quarter" in capsys.readouterr().err
    assert command("yearly", "--tenant", "vaiano", "--period", "2026Q4", "--format", "html") == 2
    assert "a yearly report takes a year" in capsys.readouterr().err
    assert command("quarterly", "--tenant", "nessuno", "--period", "2026Q4", "--format", "html") == 2
    err = capsys.readouterr().err
    assert "--tenant 'nessuno' is not a tenant" in err and len(err.strip().splitlines()) == 1
    assert command("quarterly", "--tenant", "vaiano", "--period", "2026Q9", "--format", "html") == 2
    assert command.calls == []  # nothing was built


def test_report_pdf_without_weasyprint_is_one_line_naming_the_fix(command, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)
    assert command("quarterly", "--tenant", "vaiano", "--period", "2026Q4") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"custode report: {INSTALL_HINT}"]
    assert command.calls == []  # checked before the report is built


@needs_weasyprint
def test_report_pdf_past_its_time_bound_exits_1_in_one_line(command, capsys) -> None:
    assert command("quarterly", "--tenant", "vaiano", "--period", "2026Q4", "--timeout", "0.2") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "took longer than 0.2 s" in err[0]


def test_the_report_command_keeps_the_outbox_subcommands() -> None:
    from custode.agent.cli import _parser

    parser = _parser()
    for args in (["report", "send", "--tenant", "vaiano", "--kind", "quarterly", "--period", "2026Q4"],
                 ["report", "outbox"], ["report", "yearly", "--tenant", "vaiano", "--period", "2026"]):
        assert parser.parse_args(args).handler is not None


@needs_weasyprint
def test_the_screenshot_script_draws_page_one(tmp_path) -> None:
    _poppler("pdftoppm")
    out = tmp_path / "report-page.png"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "report_screenshot.py"), "--hand-written",
                           "--out", str(out), "--dpi", "40"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
