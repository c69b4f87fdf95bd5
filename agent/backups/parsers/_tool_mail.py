"""The frame around a command-line tool's output that cron or a systemd ``OnFailure=`` unit mailed.

restic and borg send no mail of their own: cron mails a job's output
(``Subject: Cron <root@srv01> COMMAND``, ``X-Cron-Env`` headers), and an
OnFailure unit mails ``systemctl status`` and the journal tail. Both parsers
need the same things from that frame, also when the mail was forwarded inline
or through a gateway: the command that ran, the host it ran on, the exit code
systemd saw, and the output itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from custode.agent.backups.parsers._common import REPLY as _REPLY
from custode.agent.backups.parsers._common import forwarded_text, per_message
from custode.agent.backups.parsers._common import is_bulk as _bulk
from custode.agent.mail.message import MailMessage

_CRON_SUBJECT = re.compile(r"^\s*Cron\s+<(?P<user>[^@<>\s]+)@(?P<host>[^<>\s]+)>\s*(?P<command>.*?)\s*$",
                           re.IGNORECASE)
# "Subject: Cron <...>" / "Oggetto: Cron <...>" in an inline forward's header block
_QUOTED_CRON_SUBJECT = re.compile(r"^[ \t>]*\*?(?:subject|oggetto|betreff|objet|asunto)\s*:\*?[ \t]*"
                                  r"(?P<subject>Cron\s+<[^<>\s@]+@[^<>\s]+>.*?)\s*$", re.IGNORECASE | re.MULTILINE)
# "Dec 06 03:14:05 srv01 restic[1250590]: Fatal: ..." (journalctl short and short-iso)
_JOURNAL = re.compile(r"^[ \t]*(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\S*)"
                      r"\s+(?P<host>[\w.-]+)\s+(?P<ident>[^\s\[\]:]+)(?:\[\d+\])?:\s?(?P<msg>.*)$", re.MULTILINE)
_UNIT = re.compile(r"^[ \t]*(?:[●×○*x]\s+)?(?P<unit>[\w@.:\\-]+\.service)\b(?:\s+-\s+.*)?$", re.MULTILINE)
_STATUS_FIELDS = re.compile(r"^\s*Loaded:\s.*$\n(?:.*\n){0,2}?^\s*Active:\s", re.MULTILINE)
_EXIT_STATUS = re.compile(r"(?:Main process exited|Main PID:).*?code=exited,\s*status=(?P<code>\d+)")
_EXEC_START = re.compile(r"\bExecStart=(?P<command>\S.*?)\s*(?:\(code=.*)?$", re.MULTILINE)
_SENDER_HOST = re.compile(r"@(?P<host>[\w-]+)")


@dataclass
class ToolOutput:
    """What cron or systemd mailed: the machine, the command or unit, and the command's output."""

    kind: str  # "cron" or "systemd"
    host: str | None
    output: str
    command: str = ""  # cron's command line, or the unit's ExecStart=
    unit: str = ""
    idents: set[str] = field(default_factory=set)  # journal identifiers of the output lines
    exit_code: int | None = None


def tool_output(message: MailMessage) -> ToolOutput | None:
    """The cron or systemd frame of ``message`` (an original or an inline forward), or None.

    Replies and list mail are never tool output, even when they quote it. Read
    once per message: the restic and borg parsers both ask.
    """
    return per_message(message, "cron_tool_output", _tool_output)


def _tool_output(message: MailMessage) -> ToolOutput | None:
    if _REPLY.match(message.subject) or _bulk(message):
        return None
    text = forwarded_text(message)
    cron = _CRON_SUBJECT.match(message.clean_subject)
    if cron is None:
        quoted = _QUOTED_CRON_SUBJECT.search(text)
        cron = _CRON_SUBJECT.match(quoted.group("subject")) if quoted else None
    if cron is not None:
        return ToolOutput("cron", _short_host(cron.group("host")), text, command=cron.group("command"))
    unit = _UNIT.search(text)
    journal = list(_JOURNAL.finditer(text))
    if (unit and _STATUS_FIELDS.search(text)) or len(journal) >= 2 and any(
            m.group("ident") == "systemd" for m in journal):
        own = [m for m in journal if m.group("ident") not in ("systemd", "kernel")]
        host = journal[0].group("host") if journal else None
        if host is None:
            sender = _SENDER_HOST.search(message.original_sender)
            host = sender.group("host") if sender else None
        exit_code = _EXIT_STATUS.search(text)
        start = _EXEC_START.search(text)
        return ToolOutput("systemd", _short_host(host) if host else None,
                          "\n".join(m.group("msg") for m in own), command=start.group("command") if start else "",
                          unit=unit.group("unit") if unit else "",
                          idents={m.group("ident") for m in own},
                          exit_code=int(exit_code.group("code")) if exit_code else None)
    return None


def _short_host(host: str) -> str:
    """``srv01.example.lan`` -> ``srv01``: cron and the journal may write either."""
    return host.split(".", 1)[0] if not re.fullmatch(r"[\d.]+", host) else host


def command_words(command: str, program: str) -> list[str] | None:
    """The words after ``program`` in a cron command line, or None when it does not run ``program``."""
    words = command.split()
    for index, word in enumerate(words):
        if re.fullmatch(r"(?:\S*/)?" + re.escape(program) + r"(?:\.exe)?", word.strip("'\";&|()")):
            return words[index + 1:]
    return None


# --- restic's output ----------------------------------------------------------------------------------
