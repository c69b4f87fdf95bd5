"""Operator-defined rules for reports no built-in parser knows.

Modelled on healthchecks.io's e-mail filters, minus their users' complaints:
matching is case-insensitive, keywords may be phrases, subject and body are
both searched, failure words are checked before success words (so "success:
0, failed: 1" is a failure), and a rule says whether a matching mail with no
keyword is a failure or no report at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from custode.agent.backups.config import MailRule
from custode.agent.backups.parsers._common import error_text, neutralise_zero_counts
from custode.agent.backups.report import BackupReport, Classification, Status
from custode.agent.mail.message import MailMessage


def _phrases(words: list[str]) -> re.Pattern[str] | None:
    words = [w.strip() for w in words if w.strip()]
    if not words:
        return None
    alternatives = "|".join(r"\s+".join(re.escape(part) for part in w.split()) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _optional(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE) if pattern else None


@dataclass
class CompiledRule:
    """A :class:`MailRule` with its patterns compiled once."""

    config: MailRule

    def __post_init__(self) -> None:
        rule = self.config
        self.name = rule.name
        self.sender = _optional(rule.sender)
        self.subject = _optional(rule.subject)
        self.body = _optional(rule.body)
        self.job = _optional(rule.job)
        self.host = _optional(rule.host)
        self.keywords: list[tuple[Status, re.Pattern[str] | None]] = [
            ("failure", _phrases(rule.failure)), ("warning", _phrases(rule.warning)),
            ("success", _phrases(rule.success))]

    def matches(self, message: MailMessage) -> bool:
        if self.sender and not (self.sender.search(message.sender) or self.sender.search(message.original_sender)
                                or self.sender.search(message.sender_name)):
            return False
        if self.subject and not self.subject.search(message.clean_subject):
            return False
        if self.body and not self.body.search(message.text):
            return False
        return True

    def apply(self, message: MailMessage) -> Classification | None:
        """None when the rule does not select this mail; else the verdict."""
        if not self.matches(message):
            return None
        searched = neutralise_zero_counts(message.clean_subject + "\n" + message.text)
        status: Status | None = next((s for s, pattern in self.keywords if pattern and pattern.search(searched)), None)
        if status is None:
            if self.config.no_keyword == "not_a_report":
                return Classification("not_a_report", parser=f"rule:{self.name}",
                                      reason=f"rule {self.name!r} matched but none of its keywords did")
            status = "failure"
        report = BackupReport(software=self.config.software, job=self._extract(self.job, self.config.job, message),
                              status=status, host=self._extract(self.host, self.config.host, message),
                              finished_at=message.date,
                              error=error_text(message.text) if status != "success" else None)
        return Classification("report", report, parser=f"rule:{self.name}")

    @staticmethod
    def _extract(pattern: re.Pattern[str] | None, literal: str | None, message: MailMessage) -> str | None:
        if pattern is None:
            return None
        if pattern.groups == 0:
            return literal
        for text in (message.clean_subject, message.text):
            match = pattern.search(text)
            if match:
                value = match.group("job" if "job" in pattern.groupindex else
                                    "host" if "host" in pattern.groupindex else 1)
                return value.strip() if value else None
        return None


def compile_rules(rules: list[MailRule]) -> list[CompiledRule]:
    return [CompiledRule(rule) for rule in rules]
