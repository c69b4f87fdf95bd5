"""HTML to PDF in a bounded child process: a hung or huge render is killed and reported in one line.

WeasyPrint lays the whole document out in memory, in the calling process,
with no timeout of its own; the agent delivers reports from its scheduler
and must not hang or swell doing it. So the PDF is made by
:mod:`custode.agent.reports.pdf_worker` in a child with a time bound (the
parent kills it, default 60 s) and an address-space bound (``RLIMIT_AS``,
default 1 GiB, set by the child itself; not on Windows). Every way it can go
wrong is one :class:`PdfError` line that says what to do: WeasyPrint missing
(it is the optional ``reports`` extra, so the default install and the HTML
and CSV reports do not need it or Pango), too slow, out of memory, crashed.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys

from custode.agent.reports.pdf_worker import MISSING, OUT_OF_MEMORY

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY = 1 << 30
INSTALL_HINT = ("PDF reports need WeasyPrint, which is not installed: pip install 'custode[reports]' "
                "(on Debian also apt-get install libpango-1.0-0 libpangoft2-1.0-0); "
                "--format html and csv work without it")


class PdfError(Exception):
    """The PDF could not be made; the message is one line, for the CLI and the delivery log."""


def weasyprint_installed() -> bool:
    """Whether WeasyPrint can be imported here, without importing it (that costs 50 MB and a second)."""
    try:
        return importlib.util.find_spec("weasyprint") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["weasyprint"] is None (a blocked import)
        return False


def _signal_name(number: int) -> str:
    try:
        return f"{number} ({signal.Signals(number).name})"
    except ValueError:
        return str(number)


def _size(limit: int) -> str:
    return f"{limit / (1 << 30):g} GiB" if limit >= 1 << 30 else f"{limit / (1 << 20):g} MiB"


def pdf_from_html(html: str, timeout: float = DEFAULT_TIMEOUT, memory: int = DEFAULT_MEMORY) -> bytes:
    """The PDF of ``html``; :class:`PdfError` when WeasyPrint is missing or the render breaks a bound."""
    if not weasyprint_installed():
        raise PdfError(INSTALL_HINT)
    command = [sys.executable, "-m", "custode.agent.reports.pdf_worker", str(int(memory))]
    try:
        done = subprocess.run(command, input=html.encode("utf-8"), capture_output=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child and reaped it
        raise PdfError(f"the PDF render took longer than {timeout:g} s and was stopped; the report may be too "
                       "large for one PDF: --format html or csv have the same figures") from None
    error = done.stderr.decode("utf-8", "replace").strip().splitlines()
    last = error[-1] if error else ""
    if done.returncode == MISSING:
        raise PdfError(f"{INSTALL_HINT} ({last})")
    if done.returncode == OUT_OF_MEMORY or "MemoryError" in last:
        raise PdfError(f"the PDF render needed more than its {_size(memory)} memory bound and was stopped; "
                       "--format html or csv have the same figures")
    if done.returncode < 0:
        raise PdfError(f"the PDF render stopped on signal {_signal_name(-done.returncode)}, most likely at its "
                       f"{_size(memory)} memory bound (a C library that cannot allocate aborts); "
                       "--format html or csv have the same figures")
    if done.returncode != 0 or not done.stdout.startswith(b"%PDF"):
        raise PdfError(f"the PDF render failed (exit {done.returncode}): {last or 'no PDF written'}")
    return done.stdout
