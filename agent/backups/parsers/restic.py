"""restic backup runs, as cron or a systemd ``OnFailure=`` unit mails them.

restic sends no mail of its own: what arrives is the output of ``restic
backup`` that cron mailed (``Subject: Cron <root@srv01> restic -r ... backup
/srv``, ``X-Cron-Env`` headers, sender the cron user), or the ``systemctl
status`` block and journal tail that an OnFailure unit mailed. The output is
restic's own (``cmd_backup.go``, ``ui/backup/text.go``, ``errors.go``)::

    repository 3f9a1c7e opened successfully, password is correct
    using parent snapshot 8d2e4b61
    error: open /srv/spool/.lock: permission denied
    Files:          88 new,    23 changed, 184641 unmodified
    Added to the repo: 402.117 MiB          (0.15+: "Added to the repository: ... (... stored)")
    processed 184752 files, 96.519 GiB in 5:58
    snapshot 5c6d7e8f saved
    Warning: at least one source file could not be read

``snapshot <id> saved`` is a backup made (the run's success); ``error: ...``
lines for single files and the closing ``Warning: at least one source file
could not be read`` (exit code 3) make it a warning; ``Fatal: ...`` is a run
that made no snapshot. Exit codes (0.17+): 1 fatal, 3 incomplete snapshot,
10 no repository, 11 lock failed, 12 wrong password, 130 interrupted. With
``--json`` the same facts are ``summary``/``error``/``exit_error`` records.

Only mail that is plainly such output is claimed: the cron or systemd frame
must be there (also when forwarded inline or through a mail gateway) and the
command must be ``restic backup`` (or a script whose output is restic's). A
cron job that lists snapshots (``restic snapshots``), checks or prunes is no
backup report, and neither is a person's reply that quotes a Fatal line.

restic's output names no job. The job is the machine the cron or systemd mail
comes from (cron's ``<user@host>``, the journal's hostname), which is how
admins tell the runs apart; the repository goes into the details.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import guarded, parse_size
from custode.agent.backups.parsers._tool_mail import ToolOutput, command_words, tool_output
from custode.agent.backups.report import BackupReport, Status
from custode.agent.mail.message import MailMessage

SOFTWARE = "restic"
PRIORITY = 170

_SAVED = re.compile(r"^\s*snapshot (?P<id>[0-9a-f]{8,64}) saved\s*$", re.MULTILINE | re.IGNORECASE)
_FATAL = re.compile(r"^\s*Fatal: (?P<msg>.+?)\s*$", re.MULTILINE)
_FILE_ERROR = re.compile(r"^\s*(?P<msg>(?:error|warning for \S+?): .+?)\s*$", re.MULTILINE)
_WARNING = re.compile(r"^\s*(?P<msg>Warning: .+?)\s*$", re.MULTILINE)
_INCOMPLETE = "at least one source file could not be read"
_OPENED = re.compile(r"^\s*repository [0-9a-f]{8} opened\b", re.MULTILINE)
_WHERE = re.compile(r"^\s*Is there a repository at the following location\?\s*\n\s*(?P<repo>\S+)", re.MULTILINE)
_PARENT = re.compile(r"^\s*using parent snapshot (?P<id>[0-9a-f]{8,64})", re.MULTILINE)
_FILES = re.compile(r"^\s*Files:\s+(?P<new>\d+) new,\s+(?P<changed>\d+) changed,\s+(?P<unmodified>\d+) unmodified",
                    re.MULTILINE)
_ADDED = re.compile(r"^\s*Added to the repo(?:sitory)?:\s*(?P<size>[\d.,]+\s*[KMGTP]?i?B)", re.MULTILINE)
_PROCESSED = re.compile(r"^\s*processed (?P<files>\d+) files, (?P<size>[\d.,]+\s*[KMGTP]?i?B) in (?P<took>[\d:]+)",
                        re.MULTILINE | re.IGNORECASE)
_JSON_SUMMARY = re.compile(r"\{\s*\"message_type\"\s*:\s*\"summary\".*?\"snapshot_id\"\s*:\s*\"(?P<id>[0-9a-f]+)\"")
_JSON_EXIT = re.compile(r"\{\s*\"message_type\"\s*:\s*\"exit_error\"\s*,\s*\"code\"\s*:\s*(?P<code>\d+)\s*,"
                        r"\s*\"message\"\s*:\s*\"(?P<msg>(?:[^\"\\]|\\.)*)\"")
_JSON_ERROR = re.compile(r"\{\s*\"message_type\"\s*:\s*\"error\".*?\"message\"\s*:\s*\"(?P<msg>(?:[^\"\\]|\\.)*)\"")
_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")  # rest:https://user:secret@host -> user:***@
_REPO_OPTION = re.compile(r"(?:^|\s)(?:-r|--repo)(?:\s+|=)(?P<repo>\S+)|\bRESTIC_REPOSITORY=(?P<env>\S+)")
# restic commands that are not a backup: their output is no backup report
_OTHER_COMMANDS = frozenset({
    "snapshots", "ls", "find", "stats", "check", "forget", "prune", "mount", "restore", "diff", "cat", "dump",
    "copy", "init", "key", "list", "tag", "unlock", "version", "rewrite", "repair", "migrate", "recover",
    "self-update", "cache", "generate", "help", "features", "options"})
_WARNING_CODES = frozenset({3})


def parse(message: MailMessage) -> BackupReport | None:
    """The restic backup run in ``message``, or None when it is not one."""
    if "restic" not in message.subject.lower() and "restic" not in message.text[:20_000].lower() \
            and not _SAVED.search(message.text):
        return None
    return _parse(message)


@guarded
def _parse(message: MailMessage) -> BackupReport | None:
    frame = tool_output(message)
    if frame is None or not _runs_restic_backup(frame):
        return None
    output = frame.output
    saved = _SAVED.search(output) or _JSON_SUMMARY.search(output)
    fatal = [m.group("msg") for m in _FATAL.finditer(output)]
    json_exit = _JSON_EXIT.search(output)
    problems = [m.group("msg") for m in _FILE_ERROR.finditer(output)]
    problems += [m.group("msg") for m in _WARNING.finditer(output)]
    problems += [m.group("msg") for m in _JSON_ERROR.finditer(output)]
    exit_code = int(json_exit.group("code")) if json_exit else frame.exit_code
    status: Status
    if fatal or (exit_code not in (None, 0) and exit_code not in _WARNING_CODES):
        status = "failure"
    elif saved or _INCOMPLETE in output or exit_code in _WARNING_CODES:
        status = "warning" if problems or exit_code in _WARNING_CODES else "success"
    else:
        return None  # restic said nothing about a backup (a listing, a version banner...)
    report = BackupReport(software=SOFTWARE, job=frame.host, status=status, host=frame.host)
    if status == "failure":
        lines = [f"Fatal: {line}" for line in fatal] or ([json_exit.group("msg")] if json_exit else [])
        where = _WHERE.search(output)
        if where:
            lines.append(f"repository: {where.group('repo')}")
        report.error = "\n".join(lines[:4])[:2000] or (f"exit status {exit_code}" if exit_code else None)
    elif status == "warning":
        report.error = "\n".join(problems[:3])[:2000] or None
    report.details = _details(frame, output, saved, exit_code)
    processed = _PROCESSED.search(output)
    added = _ADDED.search(output)
    report.size_bytes = parse_size(processed.group("size")) if processed else None
    report.transferred_bytes = parse_size(added.group("size")) if added else None
    return report


def _runs_restic_backup(frame: ToolOutput) -> bool:
    """Whether the mailed command is a restic backup (and not a listing or maintenance)."""
    words = command_words(frame.command, "restic")
    if words is not None:
        if "backup" in words:  # "restic backup ...", also "... && restic forget ..."
            return True
        if any(word in _OTHER_COMMANDS for word in words):
            return False
    if frame.kind == "systemd" and "restic" not in frame.unit.lower() and "restic" not in frame.idents:
        return False
    # a script, or a unit: the output itself must be restic's
    output = frame.output
    return bool(_SAVED.search(output) or _OPENED.search(output) or _WHERE.search(output)
                or _JSON_SUMMARY.search(output) or _JSON_EXIT.search(output)
                or (frame.kind == "systemd" and (_FATAL.search(output) or frame.exit_code is not None)))


def _details(frame: ToolOutput, output: str, saved: re.Match[str] | None, exit_code: int | None) -> dict[str, object]:
    details: dict[str, object] = {"source": frame.kind}
    repository = _repository(frame, output)
    if repository:
        details["repository"] = repository
    if frame.unit:
        details["unit"] = frame.unit
    if saved:
        details["snapshot"] = saved.group("id")[:8]
    parent = _PARENT.search(output)
    if parent:
        details["parent_snapshot"] = parent.group("id")
    files = _FILES.search(output)
    if files:
        details.update({f"files_{name}": int(files.group(name)) for name in ("new", "changed", "unmodified")})
    processed = _PROCESSED.search(output)
    if processed:
        details["duration"] = processed.group("took")
    if exit_code is not None:
        details["exit_code"] = exit_code
    return details


def _repository(frame: ToolOutput, output: str) -> str | None:
    option = _REPO_OPTION.search(frame.command) if frame.command else None
    where = _WHERE.search(output)
    repository = (option.group("repo") or option.group("env")) if option else where.group("repo") if where else None
    return _PASSWORD.sub(r"\1***@", repository) if repository else None
