"""A :class:`~custode.agent.reports.document.Report` rendered as PDF, HTML or a zip of CSV files.

HTML is made with Jinja2, autoescape on, from ``templates/report.html``
(shipped as package data): the report is a long document in two languages
with a dozen sections, and a template keeps its layout readable apart from
the figures-to-words code (:mod:`view`) while escaping is the default rather
than something every f-string must remember (a job, a ticket subject or an
error message from a mail is hostile input). The PDF is that same HTML laid
out by WeasyPrint in a bounded child (:mod:`pdf`); the charts are inline SVG
(:mod:`charts`), so they stay vectors. The long detail goes to the CSV
attachments (:mod:`csvfiles`), which the PDF names, so the PDF of a 50-server
comune's year is tens of pages, not two hundred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import jinja2

from custode.agent.reports.csvfiles import csv_files, zip_files
from custode.agent.reports.document import Report
from custode.agent.reports.pdf import DEFAULT_MEMORY, DEFAULT_TIMEOUT, pdf_from_html
from custode.agent.reports.view import context, css_string
from custode.agent.reports.words import Words

Format = Literal["pdf", "html", "csv"]
FORMATS: tuple[Format, ...] = ("pdf", "html", "csv")
MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8", "csv": "application/zip"}
TEMPLATES = ("report.html", "report.css")


@dataclass(frozen=True)
class RenderedReport:
    """What a renderer hands to the CLI and to delivery: the file, and the CSV detail to send with it.

    For ``pdf`` and ``html`` the attachments are the CSV files that have rows
    (the PDF's "Attachments" section lists the same names); for ``csv`` the
    content is the zip of every CSV file (header-only ones included, so a
    script finds a fixed set) and there are no separate attachments."""

    filename: str
    content: bytes
    media_type: str
    attachments: dict[str, bytes] = field(default_factory=dict)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Templates from the package (``PackageLoader`` reads them from the wheel and the Debian venv alike)."""
    return jinja2.Environment(loader=jinja2.PackageLoader("custode.agent.reports", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def check_templates() -> list[str]:
    """Load and compile every template: the Debian build calls this to prove they were packaged."""
    for name in TEMPLATES:
        environment().get_template(name)
    return list(TEMPLATES)


def html_text(report: Report) -> str:
    words = Words(report.language)
    return environment().get_template("report.html").render(
        **context(report), page_word=css_string(words("page")), of_word=css_string(words("of")))


def base_name(report: Report) -> str:
    """``rapporto-trimestrale-vaiano-2026Q4``: the language's word for the kind, the tenant, the period."""
    words = Words(report.language)
    tenant = re.sub(r"[^A-Za-z0-9]+", "-", report.tenant).strip("-").lower() or "tenant"
    period = re.sub(r"[^A-Za-z0-9]+", "", report.period) or "period"
    return f"{words(f'file.{report.kind}')}-{tenant}-{period}"


def data_zip_name(name: str, report: Report) -> str:
    """``rapporto-trimestrale-vaiano-2026Q4-dati.zip``: the name the e-mail delivery gives the CSV zip too."""
    stem = name.rsplit(".", 1)[0] if name.endswith((".pdf", ".html")) else name
    return f"{stem}-{'data' if report.language == 'en' else 'dati'}.zip"


def render(report: Report, fmt: Format, timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY,
           ) -> RenderedReport:
    """The report as ``fmt``; a PDF that cannot be made raises :class:`~custode.agent.reports.pdf.PdfError`."""
    name = base_name(report)
    if fmt == "csv":
        return RenderedReport(data_zip_name(name, report), zip_files(csv_files(report, with_empty=True), report),
                              MEDIA_TYPES["csv"])
    attachments = csv_files(report) if not report.empty else {}
    html = html_text(report)
    if fmt == "html":
        return RenderedReport(f"{name}.html", html.encode("utf-8"), MEDIA_TYPES["html"], attachments)
    if fmt == "pdf":
        return RenderedReport(f"{name}.pdf", pdf_from_html(html, timeout, memory), MEDIA_TYPES["pdf"], attachments)
    raise ValueError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
