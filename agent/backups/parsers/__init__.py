"""Turn a message into a backup report, or say why it is none.

Order of judgement: mail that is certainly not a report (auto-replies, bounces,
read receipts) is set aside first, even when it quotes a report's subject;
then the operator's own rules (config) win over the built-in product parsers;
then each product parser looks for its product's signature. A message that
none recognises is ``not_a_report``: guessing from loose keywords is how a
newsletter about "backup failed" becomes a false alarm.

A product parser is a module here with ``SOFTWARE`` (its product name),
``PRIORITY`` (its place in the order of judgement: a specific product before a
generic one whose signature its mail also carries, e.g. Veeam's agents before
Backup & Replication, plain wbadmin output last) and ``parse(message) ->
BackupReport | None``; None means "not my product". Every module of this
package not starting with ``_`` is one, found by :func:`parsers`; outside
parsers are modules named in the ``custode.backup_parsers`` entry-point group.
A parser that raises is logged and skipped, never allowed to stop the others;
one that cannot be imported or lacks its contract is logged and listed by
:func:`broken_parsers`.
A parser may also declare ``NEEDLES``: lower-case fragments at least one of
which its product's mail always contains (in the subject, sender, attachment
names, body or text attachments). The dispatcher lower-cases that window once
per message and skips a parser none of whose needles is in it, so that a
mailbox of nineteen products costs one parser per message, not nineteen;
``tests/test_parser_needles.py`` holds every parser to its needles over every
fixture and real-world message.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Protocol

from custode.agent.backups.parsers._common import is_bulk, needle_window
from custode.agent.backups.report import BackupReport, Classification
from custode.agent.mail.message import MailMessage
from custode.agent.plugins import Found, entry_point_objects, package_modules

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "custode.backup_parsers"


class Rule(Protocol):
    name: str

    def apply(self, message: MailMessage) -> Classification | None: ...


_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)? ?reply|autoreply|auto-reply|risposta automatica|auto|"
    r"out of (?:the )?office|fuori (?:sede|ufficio)|assente|assenza|abwesenheitsnotiz|automatische antwort|"
    r"réponse automatique|respuesta automática)\b\s*[:\-]?", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliverable|undelivered mail|delivery status notification|mail delivery (?:failed|failure|system)|"
    r"returned mail|non recapitabile|mancato recapito|messaggio non recapitato|impossibile recapitare|"
    r"delivery has failed|failure notice|unzustellbar)", re.IGNORECASE)
_RECEIPT_SUBJECT = re.compile(r"^\s*(?:read|letto|gelesen|lu|ricevuta di (?:lettura|ritorno)|read receipt)\s*:",
                              re.IGNORECASE)


def not_a_report_reason(message: MailMessage) -> str | None:
    """Why a message is certainly not a backup report, or None."""
    auto = message.header("auto-submitted").lower()
    if auto.startswith("auto-replied") or message.header("x-autoreply") or message.header("x-autorespond") \
            or _AUTO_REPLY_SUBJECT.match(message.subject):
        return "automatic reply (out of office)"
    content_type = message.header("content-type").lower()
    if "report-type=delivery-status" in content_type or "report-type=\"delivery-status\"" in content_type \
            or message.sender.startswith(("mailer-daemon@", "postmaster@")) or _BOUNCE_SUBJECT.match(message.subject):
        return "delivery status notification (bounce)"
    if "disposition-notification" in content_type or _RECEIPT_SUBJECT.match(message.subject):
        return "read receipt"
    return None


_loaded: list[ModuleType] | None = None
_broken: dict[str, str] = {}


def parsers() -> list[ModuleType]:
    """The product parser modules, found once, in judgement order (PRIORITY, then name)."""
    global _loaded
    if _loaded is None:
        found = [*package_modules(sys.modules[__name__]), *entry_point_objects(ENTRY_POINT_GROUP)]
        modules = [module for module in map(_checked, found) if module is not None]
        _loaded = sorted(modules, key=lambda module: (module.PRIORITY, module.__name__))
    return _loaded


def broken_parsers() -> dict[str, str]:
    """Parsers that could not be loaded: name -> why, naming the module or plug-in."""
    parsers()
    return dict(sorted(_broken.items()))


def contract_problems(module: object) -> list[str]:
    """What a parser module lacks of the contract (empty when it is one)."""
    problems = []
    if not isinstance(getattr(module, "SOFTWARE", None), str):
        problems.append("no SOFTWARE string")
    if not isinstance(getattr(module, "PRIORITY", None), int):
        problems.append("no PRIORITY number")
    if not callable(getattr(module, "parse", None)):
        problems.append("no parse(message) function")
    needles = getattr(module, "NEEDLES", ())
    if not isinstance(needles, tuple) or not all(isinstance(n, str) and n == n.lower() and n for n in needles):
        problems.append("NEEDLES is not a tuple of lower-case strings")
    return problems


def _checked(found: Found) -> ModuleType | None:
    if found.error is not None:
        why = f"{found.source} cannot be loaded: {type(found.error).__name__}: {found.error}"
    elif not isinstance(found.loaded, ModuleType):
        why = f"{found.source} is not a module"
    else:
        problems = contract_problems(found.loaded)
        if not problems:
            return found.loaded
        why = f"{found.source} is no backup parser: " + "; ".join(problems)
    _broken[found.name] = why
    log.error("backup parser not loaded; fix or remove it", extra={"parser": found.name, "error": why})
    return None


def may_claim(module: ModuleType, message: MailMessage) -> bool:
    """False when ``module`` certainly does not claim ``message``: none of its NEEDLES is there."""
    needles: tuple[str, ...] = getattr(module, "NEEDLES", ())
    return not needles or _holds_any(needle_window(message), needles)


def _holds_any(window: str, needles: tuple[str, ...]) -> bool:
    for needle in needles:
        if needle in window:
            return True
    return False


def parse_product(message: MailMessage) -> tuple[BackupReport, str] | None:
    """The first product parser's report on ``message`` (or on the message it forwards)."""
    for candidate in (message, message.inner):
        if candidate is None:
            continue
        window = needle_window(candidate)
        for module in parsers():
            needles: tuple[str, ...] = getattr(module, "NEEDLES", ())
            if needles and not _holds_any(window, needles):
                continue
            try:
                report = module.parse(candidate)
            except Exception:  # a parser bug must not stop classification
                log.exception("backup report parser failed", extra={"parser": module.__name__,
                                                                    "message_id": candidate.message_id})
                continue
            if report is not None:
                return report, module.__name__.rsplit(".", 1)[-1]
    return None


def classify(message: MailMessage, rules: Iterable[Rule] = ()) -> Classification:
    """The verdict on one message. Never raises on message content."""
    reason = not_a_report_reason(message)
    if reason:
        return Classification("not_a_report", reason=reason)
    for rule in rules:
        verdict = rule.apply(message)
        if verdict is not None:
            return verdict
    found = parse_product(message)
    if found is not None:
        report, parser = found
        return Classification("report", report, parser=parser)
    if is_bulk(message):
        return Classification("not_a_report", reason="bulk or mailing-list mail that no product parser recognised")
    return Classification("not_a_report", reason="no parser or rule recognised it as a backup report")
