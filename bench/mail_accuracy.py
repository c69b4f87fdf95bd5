"""Classification accuracy on the real-world mail corpus (tests/data/mail/realworld).

    .venv/bin/python bench/mail_accuracy.py DIR [--json]

Why it exists: the fixtures under tests/data/mail were written alongside the
parsers, so they agree with them by construction. The real-world corpus is
rebuilt from public vendor templates, source code and quoted mails; this script
says how often Custode's classifier (the same path as ``custode mail classify``:
``parse_message`` then ``classify`` with no operator rules) gets the status and
the job name right on it, per product, and lists every miss.

DIR is walked for ``index.json`` files; each maps an .eml file name (next to the
index) to ``{"software", "status", "job", ...}``. An expected status of
``not_a_report`` is right when Custode says ``not_a_report``; otherwise the
expected status ("success", "warning", "failure") must equal the report's status.
The job is right when it equals the expected job (not checked for look-alikes).
Exit status is 0 unless the arguments are wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custode.agent.backups.parsers import classify  # noqa: E402
from custode.agent.mail.message import parse_message  # noqa: E402
from custode.agent.mail.sources import read_capped  # noqa: E402


def verdict(path: Path) -> dict[str, Any]:
    """What Custode says of one file: software, job, status (not_a_report when nothing matched), parser."""
    raw, truncated = read_capped(path)
    result = classify(parse_message(raw, truncated=truncated))
    report = result.report
    if report is None:
        return {"software": None, "job": None, "status": "not_a_report", "parser": result.parser,
                "reason": result.reason or None}
    return {"software": report.software, "job": report.job, "status": report.status, "parser": result.parser,
            "reason": result.reason or None}


def score(root: Path) -> dict[str, Any]:
    """Per expected ``software`` label: counts and confusions; plus totals."""
    groups: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"messages": 0, "status_right": 0, "job_checked": 0, "job_right": 0, "confusions": []})
    for index in sorted(root.rglob("index.json")):
        entries = json.loads(index.read_text(encoding="utf-8"))
        for name, expected in sorted(entries.items()):
            path = index.parent / name
            label = expected.get("software") or "(not a report)"
            group = groups[label]
            group["messages"] += 1
            rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            if not path.is_file():
                group["confusions"].append({"file": rel, "field": "file", "expected": "present", "got": "missing"})
                continue
            got = verdict(path)
            want_status = expected.get("status")
            if got["status"] == want_status:
                group["status_right"] += 1
            else:
                group["confusions"].append({"file": rel, "field": "status", "expected": want_status,
                                            "got": got["status"], "got_software": got["software"],
                                            "reason": got["reason"]})
            if want_status != "not_a_report":
                group["job_checked"] += 1
                if got["job"] == expected.get("job"):
                    group["job_right"] += 1
                else:
                    group["confusions"].append({"file": rel, "field": "job", "expected": expected.get("job"),
                                                "got": got["job"], "got_software": got["software"]})
    total = {key: sum(g[key] for g in groups.values())
             for key in ("messages", "status_right", "job_checked", "job_right")}
    return {"software": dict(sorted(groups.items())), "total": total}


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="folder holding <product>/index.json files")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        parser.error(f"{args.dir} is not a directory")
    result = score(args.dir)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    for label, group in result["software"].items():
        print(f"{label}: {group['messages']} messages, status right {group['status_right']} "
              f"({_pct(group['status_right'], group['messages'])}), job right {group['job_right']}/"
              f"{group['job_checked']} ({_pct(group['job_right'], group['job_checked'])})")
        for miss in group["confusions"]:
            print(f"  {miss['field']}: expected {miss['expected']!r}, got {miss['got']!r}  {miss['file']}")
    total = result["total"]
    print(f"TOTAL: {total['messages']} messages, status right {total['status_right']} "
          f"({_pct(total['status_right'], total['messages'])}), job right {total['job_right']}/"
          f"{total['job_checked']} ({_pct(total['job_right'], total['job_checked'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
