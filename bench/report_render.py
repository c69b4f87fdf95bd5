#!/usr/bin/env python3
"""Report rendering benchmark: a synthetic big comune's year rendered as HTML, CSV and PDF; time, pages, peak RSS.

Usage::

    /work/main/.venv/bin/python bench/report_render.py [--servers 50] [--json]

The report is ``tests/report_documents.synthetic_year``: N servers with 3
disks and 365 daily CPU, memory and disk figures each, 1.2 backup jobs per
server with a year of nights (a dozen failures, missing reports and warnings
each), a ticket every working day, five weekly update windows, two outages
and ten folders per server. No peer, no state DB: the builder is not timed,
only :func:`custode.agent.reports.render.render`. The PDF is made as the
agent makes it, in the bounded child process (60 s, 1 GiB), and the child's
peak RSS is read from ``getrusage(RUSAGE_CHILDREN)``. The target: a 50-server
comune under 30 s, in tens of pages.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from report_documents import synthetic_year  # noqa: E402

from custode.agent.reports.render import render  # noqa: E402


def _pages(pdf: bytes) -> int:
    """pdfinfo's page count (poppler-utils); -1 without it (WeasyPrint compresses the page tree)."""
    if shutil.which("pdfinfo") is None:
        return -1
    done = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, timeout=60)
    found = re.search(rb"^Pages:\s+(\d+)", done.stdout, re.M)
    return int(found.group(1)) if found else -1


def _mib(kib: int) -> float:
    return kib / 1024  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="also print one JSON object with every figure")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    report = synthetic_year(args.servers)
    built = time.perf_counter() - started
    figures: dict[str, float | int] = {"servers": args.servers, "jobs": len(report.backups.jobs),
                                       "tickets": len(report.tickets.tickets), "build_s": round(built, 2)}
    for fmt in ("html", "csv", "pdf"):
        started = time.perf_counter()
        rendered = render(report, fmt)  # type: ignore[arg-type]
        figures[f"{fmt}_s"] = round(time.perf_counter() - started, 2)
        figures[f"{fmt}_bytes"] = len(rendered.content)
        if fmt == "pdf":
            figures["pdf_pages"] = _pages(rendered.content)
            figures["attachments_bytes"] = sum(len(v) for v in rendered.attachments.values())
    figures["pdf_child_peak_rss_mib"] = round(_mib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss), 1)
    figures["agent_peak_rss_mib"] = round(_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), 1)

    print(f"synthetic year: {figures['servers']} servers, {figures['jobs']} backup jobs, "
          f"{figures['tickets']} tickets (built in {figures['build_s']} s)")
    print(f"html: {figures['html_s']:>6} s  {figures['html_bytes']:>10,} bytes")
    print(f"csv:  {figures['csv_s']:>6} s  {figures['csv_bytes']:>10,} bytes (zip)")
    print(f"pdf:  {figures['pdf_s']:>6} s  {figures['pdf_bytes']:>10,} bytes, {figures['pdf_pages']} pages, "
          f"CSV attachments {figures['attachments_bytes']:,} bytes")
    print(f"peak RSS: PDF child {figures['pdf_child_peak_rss_mib']} MiB, this process "
          f"{figures['agent_peak_rss_mib']} MiB")
    verdict = "within" if figures["pdf_s"] < 30 else "OVER"
    print(f"{verdict} the 30 s target for the PDF")
    if args.json:
        print(json.dumps(figures))
    return 0 if figures["pdf_s"] < 30 else 1


if __name__ == "__main__":
    sys.exit(main())
