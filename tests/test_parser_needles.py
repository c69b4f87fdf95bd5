"""A parser's NEEDLES are a promise: it never claims a message that holds none of them.

The dispatcher skips a parser whose needles are all absent (the mailbox's
throughput depends on it), so a needle list that forgets one of the product's
signatures would silently turn its reports into ``not_a_report``. Every
parser is called directly here on every fixture and real-world message, with
no dispatcher in between, and must not claim one that its needles would have
kept from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from custode.agent.backups.parsers import classify, may_claim, parsers
from custode.agent.mail.message import MailMessage, parse_message

MAIL = Path(__file__).resolve().parent / "data" / "mail"
MESSAGES = sorted(MAIL.rglob("*.eml"))
NEEDLED = [module for module in parsers() if getattr(module, "NEEDLES", None)]


def _candidates() -> list[tuple[str, MailMessage]]:
    found = []
    for path in MESSAGES:
        message = parse_message(path.read_bytes())
        found.append((str(path.relative_to(MAIL)), message))
        if message.inner is not None:
            found.append((f"{path.relative_to(MAIL)} (forwarded inside)", message.inner))
    return found


@pytest.fixture(scope="module")
def candidates() -> list[tuple[str, MailMessage]]:
    return _candidates()


def test_the_needles_are_lower_case_and_most_parsers_have_them() -> None:
    assert len(NEEDLED) >= 12
    for module in NEEDLED:
        assert all(needle == needle.lower() and needle.strip() for needle in module.NEEDLES), module.__name__


@pytest.mark.parametrize("module", NEEDLED, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_a_parser_claims_nothing_its_needles_would_skip(module, candidates) -> None:  # noqa: ANN001
    claimed = 0
    for name, message in candidates:
        if module.parse(message) is not None:
            claimed += 1
            assert may_claim(module, message), f"{module.__name__} claims {name}, which holds none of its NEEDLES"
    assert claimed, f"{module.__name__} claims none of the fixtures: its needles are not tested"


def test_needles_skip_what_they_should() -> None:
    veeam = next(module for module in NEEDLED if module.__name__.endswith(".veeam_br"))
    plain = parse_message(b"From: a@b.example\r\nSubject: hello\r\n\r\nNothing about backups here.\r\n")
    assert not may_claim(veeam, plain)
    named = parse_message(b"From: a@b.example\r\nSubject: [Success] Veeam job\r\n\r\nbody\r\n")
    assert may_claim(veeam, named)


def test_the_dispatcher_gives_the_same_verdicts_as_every_parser_tried_in_turn(candidates, monkeypatch) -> None:
    with_needles = [classify(message) for _, message in candidates]
    monkeypatch.setattr("custode.agent.backups.parsers._holds_any", lambda window, needles: True)
    without = [classify(message) for _, message in candidates]
    assert [(v.status, v.parser, v.report and v.report.job) for v in with_needles] == \
        [(v.status, v.parser, v.report and v.report.job) for v in without]
