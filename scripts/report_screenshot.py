"""Regenerate docs/report-page.png: the first page of the scenario's quarterly report PDF, as pdftoppm draws it.

    .venv/bin/python scripts/report_screenshot.py                       # docs/report-page.png
    .venv/bin/python scripts/report_screenshot.py --out /tmp/p.png --dpi 150 --page 2
    .venv/bin/python scripts/report_screenshot.py --hand-written        # tests/report_documents.py instead

The scenario is ``tests/report_scenario.py``: a quarter (2026Q4) of the
Comune di Vaiano Cremasco written into a state DB through each feature's own
path (farm polls, agent cycles, backup mail, a restore test, tickets, update
runs); ``custode.agent.reports.data.build_report`` makes the report of it at
the scenario's fixed time, ``render(report, "pdf")`` the PDF (WeasyPrint, in
its bounded child), and Debian's ``pdftoppm`` (poppler-utils) the picture.
``--hand-written`` skips the state DB and the builder and photographs the
quarter of ``tests/report_documents.py``. Nothing reads the wall clock, so
the picture is the same on any day.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from custode.agent.reports.document import Report  # noqa: E402
from custode.agent.reports.render import render  # noqa: E402


def scenario_report(folder: Path) -> Report:
    """The scenario's quarter, built from a state DB by the real builder."""
    from report_scenario import NOW, fill_quarter, load_scenario_config

    from custode.agent.reports.data import build_report
    from custode.agent.state import State

    config = load_scenario_config()
    state = State(folder / "state.db")
    try:
        fill_quarter(state, config)
        return build_report(config, state, "vaiano", "quarterly", "2026Q4", NOW)
    finally:
        state.close()


def page_png(pdf: bytes, out: Path, page: int = 1, dpi: int = 110) -> Path:
    """Page ``page`` of ``pdf`` as a PNG at ``dpi`` (pdftoppm -singlefile)."""
    binary = shutil.which("pdftoppm")
    if binary is None:
        raise SystemExit("pdftoppm is not installed: apt-get install poppler-utils (bash scripts/test.sh installs it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="custode-report-png-") as folder:
        source = Path(folder) / "report.pdf"
        source.write_bytes(pdf)
        subprocess.run([binary, "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile",
                        str(source), str(out.with_suffix(""))], check=True, timeout=120)
    if not out.is_file() or out.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"pdftoppm wrote no PNG at {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-page.png")
    parser.add_argument("--page", type=int, default=1)
    parser.add_argument("--dpi", type=int, default=110, help="resolution (default 110: a page about 910 px wide)")
    parser.add_argument("--hand-written", action="store_true",
                        help="photograph tests/report_documents.py's quarter (no state DB, no builder)")
    parser.add_argument("--pdf", type=Path, help="also keep the whole PDF here")
    args = parser.parse_args(argv)
    if args.hand_written:
        from report_documents import vaiano_quarter

        report = vaiano_quarter()
    else:
        with tempfile.TemporaryDirectory(prefix="custode-report-scenario-") as folder:
            report = scenario_report(Path(folder))
    pdf = render(report, "pdf").content
    if args.pdf:
        args.pdf.write_bytes(pdf)
    page_png(pdf, args.out, args.page, args.dpi)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
