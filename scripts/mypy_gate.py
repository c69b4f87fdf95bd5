"""The type gate: mypy may find no error that the committed baseline does not already list.

    .venv/bin/python scripts/mypy_gate.py            # the gate (.ci/run runs it before the tests)
    .venv/bin/python scripts/mypy_gate.py --shrink   # drop fixed errors from the baseline
    .venv/bin/python scripts/mypy_gate.py --show     # mypy's whole report, with line numbers

The code base predates the gate with about 130 errors, mostly unchecked
``None``. Fixing them all at once would be a large change of its own; a
baseline lets the gate start now. An error is keyed by file, error code and
message, not by line, so that editing a file does not "move" its old errors;
the baseline counts each key, so a second copy of an old mistake is new.
``--shrink`` only removes entries, never adds: the baseline can only get
smaller. New packages are checked strictly (``[[tool.mypy.overrides]]`` in
pyproject.toml) and have no baseline entries at all.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "mypy-baseline.txt"
SOURCE_FOLDERS = ("agent", "collectors")
_ERROR = re.compile(r"^(?P<path>[^:]+):\d+(?::\d+)?: error: (?P<message>.*?)(?:\s+\[(?P<code>[a-z-]+)\])?$")
_LINE_REFERENCE = re.compile(r"\bline \d+\b")


def namespace_tree() -> Path:
    """A tree in which the source folders sit where their import names say.

    The code imports itself as ``custode.agent`` and ``custode.collectors``,
    which pyproject's ``package-dir`` maps to the top-level ``agent/`` and
    ``collectors/`` folders. mypy cannot read setuptools' editable-install
    finder, so it reads this tree of two symlinks instead; its error paths are
    mapped back to the source folders.
    """
    tree = ROOT / ".mypy_cache" / "namespace"
    for name in SOURCE_FOLDERS:
        link = tree / "custode" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(Path("..", "..", "..", name), target_is_directory=True)
    return tree


def run_mypy(*extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                             "--cache-dir", str(ROOT / ".mypy_cache"), "--explicit-package-bases",
                             "--no-pretty", "--no-error-summary", "--show-error-codes", *extra, "custode"],
                            cwd=namespace_tree(), capture_output=True, text=True)
    result.stdout = result.stdout.replace("custode/", "").replace("custode\\", "")
    return result


def current_errors() -> Counter[str]:
    """mypy's errors now, keyed without line numbers."""
    result = run_mypy()
    if result.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"mypy could not run (exit {result.returncode})")
    errors: Counter[str] = Counter()
    for line in result.stdout.splitlines():
        match = _ERROR.match(line.strip())
        if match:
            message = _LINE_REFERENCE.sub("line N", match["message"])
            errors[f"{match['path']}: [{match['code'] or 'misc'}] {message}"] += 1
    return errors


def read_baseline() -> Counter[str]:
    if not BASELINE.exists():
        return Counter()
    return Counter(line for line in BASELINE.read_text(encoding="utf-8").splitlines() if line.strip())


def write_baseline(errors: Counter[str]) -> None:
    lines = sorted(errors.elements())
    BASELINE.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shrink", action="store_true", help="remove fixed errors from the baseline")
    parser.add_argument("--show", action="store_true", help="print mypy's whole report, lines and notes included")
    parser.add_argument("--create", action="store_true", help=argparse.SUPPRESS)  # once, when the gate began
    args = parser.parse_args()
    if args.show:
        report = run_mypy("--show-column-numbers")
        sys.stdout.write(report.stdout + report.stderr)
        return report.returncode
    now = current_errors()
    if args.create:
        write_baseline(now)
        print(f"baseline written: {sum(now.values())} errors")
        return 0
    baseline = read_baseline()
    new = now - baseline
    fixed = baseline - now
    if args.shrink:
        write_baseline(baseline - fixed)
        print(f"baseline: {sum(baseline.values())} -> {sum((baseline - fixed).values())} errors")
        return 0
    if new:
        print(f"mypy: {sum(new.values())} new type error(s) not in {BASELINE.relative_to(ROOT)}:", file=sys.stderr)
        for key in sorted(new.elements()):
            print(f"  {key}", file=sys.stderr)
        print("Fix them (run `scripts/mypy_gate.py --show` for the lines); the baseline only shrinks.", file=sys.stderr)
        return 1
    print(f"mypy: no new errors ({sum(now.values())} known, baseline {sum(baseline.values())})")
    if fixed:
        print(f"mypy: {sum(fixed.values())} baseline error(s) are fixed: run scripts/mypy_gate.py --shrink")
    return 0


if __name__ == "__main__":
    sys.exit(main())
