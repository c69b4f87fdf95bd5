"""Every fixture mail under tests/data/mail/<product>/ is classified as its expected.json says.

``expected.json`` maps a file name to the fields that must match exactly
(``software``, ``job``, ``status``, and optionally ``host``, ``error_contains``,
``items`` (count), ``size_bytes``, ``started_at``/``finished_at`` as ISO strings).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custode.agent.backups.parsers import classify
from custode.agent.mail.message import parse_message

MAIL = Path(__file__).parent / "data" / "mail"


def _cases() -> list[tuple[Path, dict]]:
    cases = []
    for expected_file in sorted(MAIL.glob("*/expected.json")):
        expected = json.loads(expected_file.read_text(encoding="utf-8"))
        for name, fields in sorted(expected.items()):
            cases.append((expected_file.parent / name, fields))
    return cases


def test_every_fixture_has_an_expectation() -> None:
    listed = {path for path, _ in _cases()}
    on_disk = {p for p in MAIL.glob("*/*.eml")}
    assert on_disk, "no fixture mails found"
    assert on_disk - listed == set(), "fixtures without an entry in expected.json"
    assert listed - on_disk == set(), "expected.json names files that do not exist"


@pytest.mark.parametrize("path,fields", _cases(), ids=lambda value: value.parent.name + "/" + value.name
                         if isinstance(value, Path) else "")
def test_fixture(path: Path, fields: dict) -> None:
    verdict = classify(parse_message(path.read_bytes()))
    report = verdict.report
    if fields["status"] == "not_a_report":
        assert verdict.kind == "not_a_report", f"{path.name} was taken for a report: {report}"
        return
    assert report is not None, f"{path.name} not recognised: {verdict.reason}"
    assert report.status == fields["status"]
    for key in ("software", "job", "host", "size_bytes"):
        if key in fields:
            assert getattr(report, key) == fields[key], key
    for key in ("started_at", "finished_at"):
        if key in fields:
            value = getattr(report, key)
            assert value is not None and value.isoformat() == fields[key], key
    if "error_contains" in fields:
        assert report.error and fields["error_contains"].lower() in report.error.lower()
    if "items" in fields:
        assert len(report.items) == fields["items"]
