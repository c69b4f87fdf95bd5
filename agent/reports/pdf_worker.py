"""The child process that turns the report's HTML into PDF with WeasyPrint: HTML on stdin, PDF on stdout.

Run by :func:`custode.agent.reports.pdf.pdf_from_html`, never by hand. It
lives apart from the agent so that a layout that never ends, or one that
eats memory, is killed with its process and cannot take the agent down: it
sets its own address-space bound (``RLIMIT_AS``) before importing WeasyPrint
(in the child rather than through ``preexec_fn``, which is unsafe in the
threaded agent), and the parent holds the time bound. It fetches nothing:
every asset of the report is inline, so any URL (an ``<img>`` a hostile value
might have smuggled past escaping) is refused, never read from disk or net.

Exit codes: 0 the PDF is on stdout; 3 WeasyPrint (or the Pango it loads) is
missing, with the import error on stderr; 4 out of memory; 1 anything else.
"""

from __future__ import annotations

import sys

MISSING = 3
OUT_OF_MEMORY = 4


def _limit_memory(limit: int) -> None:
    if limit <= 0:
        return
    try:
        import resource
    except ImportError:  # Windows: no rlimits; the time bound still holds
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _refuse(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    raise ValueError(f"the report fetches nothing: {url[:80]!r} refused")


def main(argv: list[str]) -> int:
    _limit_memory(int(argv[1]) if len(argv) > 1 else 0)
    try:
        html = sys.stdin.buffer.read().decode("utf-8")
        try:
            import logging

            from weasyprint import HTML
        except (ImportError, OSError) as exc:  # OSError: WeasyPrint is there but cannot load Pango
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return MISSING
        logging.getLogger("weasyprint").setLevel(logging.ERROR)
        logging.getLogger("fontTools").setLevel(logging.ERROR)
        pdf = HTML(string=html, url_fetcher=_refuse).write_pdf()
    except MemoryError:
        print("MemoryError", file=sys.stderr)
        return OUT_OF_MEMORY
    if not isinstance(pdf, bytes):
        print("WeasyPrint returned no PDF", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(pdf)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
