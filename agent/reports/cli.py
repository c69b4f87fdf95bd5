"""``custode report quarterly|yearly``: a comune's report as PDF, HTML, a zip of CSV files, or JSON.

The figures come from the builder (:func:`custode.agent.reports.data.build_report`,
imported when the command runs, so the renderers and this parser stand on
their own), the file from :func:`custode.agent.reports.render.render`. What
was asked wrong (a tenant the config lacks, a period that is not a quarter
for ``quarterly`` or not a year for ``yearly``, one not begun) is one line
saying how to ask, exit 2; a PDF that cannot be made (WeasyPrint missing,
the render too slow or too big) is one line saying what to do, exit 1, and
is checked before the report is built.

Where it writes: ``-o FILE``; ``-o DIR`` puts the default name in DIR; no
``-o`` writes the default name (``rapporto-trimestrale-vaiano-2026Q4.pdf``)
in the current directory; ``-o -`` writes to stdout. ``--format csv`` is one
zip of every CSV file (one file to mail, attach or archive, the same bytes
for the same report); for ``pdf`` and ``html`` the CSV detail the document
names goes beside it as ``…-dati.zip`` (``…-data.zip`` in English), the name
the e-mail delivery gives the same zip. ``--format json`` prints the report as
data (``Report.as_json()``) inside the house JSON document, with the config
and state DB it came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from custode.agent.calendar import ROME
from custode.agent.cli_output import iso, sources, sources_line

KINDS = {"quarterly": "quarter", "yearly": "year"}
FORMATS = ("pdf", "html", "csv", "json")


def _fail(message: str, code: int = 2) -> int:
    print(f"custode report: {message}", file=sys.stderr)
    return code


def load_builder() -> Callable[..., Any]:
    """``build_report(config, state, tenant, kind, period, now)``, imported only when a report is asked for."""
    from custode.agent.reports.data import build_report

    return build_report


def _target(output: str | None, filename: str) -> Path | None:
    """Where the file goes; None for stdout."""
    if output == "-":
        return None
    if output is None:
        return Path(filename)
    path = Path(output)
    return path / filename if path.is_dir() else path


def cmd_report(args: argparse.Namespace) -> int:
    from custode.agent.clock import current_time
    from custode.agent.config_loader import load
    from custode.agent.paths import state_path
    from custode.agent.reports.csvfiles import zip_files
    from custode.agent.reports.pdf import DEFAULT_MEMORY, PdfError, weasyprint_installed
    from custode.agent.reports.pdf import INSTALL_HINT as PDF_HINT
    from custode.agent.reports.render import base_name, data_zip_name, render
    from custode.agent.service_levels.period import HINT, parse_period
    from custode.agent.service_levels.report import known_tenants
    from custode.agent.state import State

    kind = args.report_command
    if args.format == "pdf" and not weasyprint_installed():
        return _fail(PDF_HINT, 1)
    loaded = load(args.config)
    config = loaded.model
    known = known_tenants(config)
    if args.tenant not in known:
        hint = "" if args.config else " (or pass --config PATH: the agent's config may be elsewhere)"
        return _fail(f"--tenant {args.tenant!r} is not a tenant of {loaded.source}; tenants: {', '.join(known)}{hint}")
    try:
        period = parse_period(args.period)
    except ValueError as exc:
        return _fail(f"--period {exc}")
    if period.kind != KINDS[kind]:
        example = "2026Q4" if kind == "quarterly" else "2026"
        return _fail(f"--period {period.key} is a {period.kind}; a {kind} report takes a {KINDS[kind]}, "
                     f"e.g. {example} ({HINT})")
    now = current_time()
    if period.start_ts > now:
        return _fail(f"--period {period.key} has not begun (it starts {iso(period.start)})")
    state = State(state_path(config))
    try:
        report = load_builder()(config, state, args.tenant, kind, period.key, datetime.fromtimestamp(now, ROME))
    finally:
        state.close()
    if args.format == "json":
        body = {**sources(loaded), "generated_at": iso(report.generated_at), "report": report.as_json()}
        text = json.dumps(body, ensure_ascii=False, indent=2, default=str) + "\n"
        target = _target(args.output, f"{base_name(report)}.json") if args.output else None
        if target is None:
            sys.stdout.write(text)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"{sources_line(loaded)}\nwrote {target}")
        return 0
    try:
        rendered = render(report, args.format, timeout=args.timeout, memory=DEFAULT_MEMORY)
    except PdfError as exc:
        return _fail(str(exc), 1)
    target = _target(args.output, rendered.filename)
    if target is None:
        sys.stdout.buffer.write(rendered.content)
        sys.stdout.buffer.flush()
        return 0
    target.write_bytes(rendered.content)
    lines = [sources_line(loaded), f"wrote {target} ({len(rendered.content):,} bytes)"]
    if rendered.attachments:
        beside = target.with_name(data_zip_name(target.name, report))
        beside.write_bytes(zip_files(rendered.attachments, report))
        lines.append(f"wrote {beside} (the CSV detail: {', '.join(rendered.attachments)})")
    if report.empty:
        lines.append(f"note: nothing was recorded for {args.tenant} in {period.key}; the report says so")
    print("\n".join(lines))
    return 0


def add_commands(sub: Any, epilog: str) -> None:
    """Register ``custode report quarterly|yearly`` and the outbox's ``send|outbox|cancel`` (from custode.agent.cli)."""
    from custode.agent.reports.pdf import DEFAULT_TIMEOUT

    report = sub.add_parser(
        "report", epilog=epilog, help="A comune's quarterly or yearly report: PDF, HTML, CSV (zip) or JSON.",
        description="The report a comune's IT referent reads, in the tenant's language: a summary with traffic "
                    "lights, then backups, availability, capacity, security, updates, tickets against the "
                    "contract's service levels, backed-up and unprotected folders, and a glossary; the long "
                    "detail as CSV files.")
    kinds = report.add_subparsers(dest="report_command", metavar="SUBCOMMAND", required=True)
    for kind, text in (("quarterly", "The quarter's activity report (--period 2026Q4)."),
                       ("yearly", "The yearly analysis of the comune's servers and backups (--period 2026).")):
        p = kinds.add_parser(kind, help=text, description=text, epilog=epilog)
        p.add_argument("--tenant", required=True, metavar="TENANT", help="the comune")
        p.add_argument("--period", required=True, metavar="PERIOD",
                       help="2026Q4 (quarterly) or 2026 (yearly), in Europe/Rome")
        p.add_argument("--format", choices=FORMATS, default="pdf",
                       help="pdf (default; needs the reports extra: WeasyPrint), html, csv (a zip of CSV files), "
                            "json (the report as data)")
        p.add_argument("--output", "-o", metavar="FILE",
                       help="where to write (a directory: the default name in it; '-': stdout); default: "
                            "the report's name in the current directory (json: stdout)")
        p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"the PDF render's time bound (default {DEFAULT_TIMEOUT:g})")
        p.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
        p.set_defaults(handler=cmd_report)
    from custode.agent.reports.send_cli import add_send_commands

    add_send_commands(kinds, epilog)
