"""BorgBackup and borgmatic runs, as cron or a systemd ``OnFailure=`` unit mails them.

Neither tool mails by itself: cron mails the output of ``borg create --stats
--show-rc`` (or of a wrapper script, or of borgmatic), a systemd OnFailure
unit mails the unit's status and journal. The frame is read as in restic.py.

borg writes, with ``--show-rc`` (``archiver.py``, the last line of a run)::

    terminating with success status, rc 0
    terminating with warning status, rc 1
    terminating with error status, rc 2

and ``signal``/``abnormal`` for a killed run. borg 1.4 (and 2.x with
``BORG_EXIT_CODES=modern``) gives specific codes: 3-99 are errors, 100-127
warnings, 128+N a signal; the word in the line is the class, the code says
which. Without ``--show-rc`` only the ``--stats`` block (``Archive name:``,
``Archive fingerprint:``, ``This archive: <original> <compressed>
<deduplicated>``) tells of an archive made; borg's warnings before it
(``<path>: file changed while we backed it up``) make that a warning.

borgmatic runs borg for each configuration file and ends with a summary
(``borgmatic/commands/borgmatic.py``)::

    summary:
    /etc/borgmatic/gis01.yaml: Successfully ran configuration file

or, on failure, ``<config>: An error occurred`` (older: ``Error running
configuration file``) followed by ``<repository>: Error running actions for
repository`` and borg's error output. borgmatic is its own product
(SOFTWARE_BORGMATIC) and its job is the configuration file, which is what
borgmatic itself names; plain borg names no job, so its job is the machine
the mail comes from (cron's ``<user@host>``, the journal's hostname).

A cron mail of ``borg list``/``borg info`` or a person's reply quoting a run
is not claimed.
"""

from __future__ import annotations

import re

from custode.agent.backups.parsers._common import guarded, parse_datetime, parse_size
from custode.agent.backups.parsers._tool_mail import ToolOutput, command_words, tool_output
from custode.agent.backups.report import BackupReport, ItemResult, Status, worst
from custode.agent.mail.message import MailMessage

SOFTWARE = "borg"
PRIORITY = 180
SOFTWARE_BORGMATIC = "borgmatic"

_RC = re.compile(r"^.*?\bterminating with (?P<word>success|warning|error|signal|abnormal) status, rc (?P<rc>\d+)\s*$",
                 re.MULTILINE)
_ARCHIVE = re.compile(r"^\s*Archive name:\s*(?P<name>\S.*?)\s*$", re.MULTILINE)
_FINGERPRINT = re.compile(r"^\s*Archive fingerprint:\s*[0-9a-f]{16,}", re.MULTILINE)
_START = re.compile(r"^\s*Time \(start\):\s*(?P<time>.+?)\s*$", re.MULTILINE)
_END = re.compile(r"^\s*Time \(end\):\s*(?P<time>.+?)\s*$", re.MULTILINE)
_FILES = re.compile(r"^\s*Number of files:\s*(?P<files>\d+)", re.MULTILINE)
_SIZE = r"\d[\d.,]*\s*[kKMGTPE]?i?B"
_THIS_ARCHIVE = re.compile(r"^\s*This archive:\s*(?P<original>" + _SIZE + r")\s+(?P<compressed>" + _SIZE +
                           r")\s+(?P<deduplicated>" + _SIZE + r")", re.MULTILINE)
# borg's warnings (print_warning) and well-known errors, for runs without --show-rc
_BORG_WARNING = re.compile(r"^\s*(?P<msg>\S.*?: (?:file changed while we backed it up|\[Errno \d+\] .+|"
                           r"stat: \[Errno \d+\] .+))\s*$", re.MULTILINE)
_BORG_ERROR = re.compile(
    r"^\s*(?P<msg>(?:Failed to create/acquire the lock .+|Repository .+ does not exist\.|"
    r".+ is not a valid repository\..*|Connection closed by remote host\..*|"
    r"passphrase supplied in BORG_PASSPHRASE.* is incorrect\.?|Local Exception\.?|Remote Exception .+|"
    r"Archive .+ already exists|"
    r"Cache, or information obtained from the security directory is newer than repository.*))\s*$",
    re.MULTILINE)
# borgmatic
_SUMMARY = re.compile(r"^\s*summary:\s*$", re.MULTILINE)
_CONFIG_RESULT = re.compile(r"^\s*(?P<config>\S.*?): (?P<result>Successfully ran configuration file|An error occurred|"
                            r"Error running configuration file)\s*$", re.MULTILINE)
_REPOSITORY_ERROR = re.compile(r"^\s*(?P<repo>\S+): Error running actions for repository\s*$", re.MULTILINE)
_BORGMATIC_ACTION = re.compile(r"^\s*(?P<repo>\S+): (?:Creating archive|Pruning archives|Running consistency checks|"
                               r"Compacting segments)\s*$", re.MULTILINE)
_NONZERO = re.compile(r"^\s*(?P<msg>Command '.+' returned non-zero exit status (?P<rc>\d+)\.)\s*$", re.MULTILINE)
# borg commands whose cron output is no backup report
_OTHER_COMMANDS = frozenset({"list", "info", "mount", "umount", "extract", "diff", "export-tar", "key", "init",
                             "rcreate", "rlist", "rinfo", "version", "help", "benchmark", "config", "debug",
                             "with-lock", "break-lock", "upgrade", "serve"})
_BORGMATIC_OTHER = frozenset({"list", "info", "mount", "umount", "extract", "restore", "export-tar", "key",
                              "init", "rcreate", "rlist", "rinfo", "config", "borg", "bootstrap", "break-lock"})


def parse(message: MailMessage) -> BackupReport | None:
    """The borg or borgmatic run in ``message``, or None when it is not one."""
    text = message.text[:50_000]
    if "borg" not in message.subject.lower() and "borg" not in text.lower() and "terminating with" not in text \
            and "Archive fingerprint" not in text:
        return None
    return _parse(message)


@guarded
def _parse(message: MailMessage) -> BackupReport | None:
    frame = tool_output(message)
    if frame is None:
        return None
    if _is_borgmatic(frame):
        return _borgmatic(frame)
    if _runs_borg(frame):
        return _borg(frame)
    return None


def _is_borgmatic(frame: ToolOutput) -> bool:
    words = command_words(frame.command, "borgmatic") if frame.command else None
    if words is not None and any(word in _BORGMATIC_OTHER for word in words if not word.startswith("-")):
        return False
    ran = words is not None or "borgmatic" in frame.unit.lower() or "borgmatic" in frame.idents
    return bool(_CONFIG_RESULT.search(frame.output) and (ran or _SUMMARY.search(frame.output)))


def _runs_borg(frame: ToolOutput) -> bool:
    output = frame.output
    words = command_words(frame.command, "borg") if frame.command else None
    if words is not None and "create" not in words and any(word in _OTHER_COMMANDS for word in words):
        return False  # "borg list", "borg info": no archive was made
    if _RC.search(output) or (_ARCHIVE.search(output) and _FINGERPRINT.search(output)):
        return True
    ran = words is not None or "borg" in frame.unit.lower() or frame.idents & {"borg", "borgbackup"}
    return bool(ran and (_BORG_ERROR.search(output) or frame.exit_code))


def _borg(frame: ToolOutput) -> BackupReport | None:
    output = frame.output
    codes = [(m.group("word"), int(m.group("rc"))) for m in _RC.finditer(output)]
    warnings = [m.group("msg") for m in _BORG_WARNING.finditer(output)]
    errors = [m.group("msg") for m in _BORG_ERROR.finditer(output)]
    status: Status
    if codes:
        status = worst([_rc_status(word, rc) for word, rc in codes])
    elif errors:
        status = "failure"
    elif frame.exit_code:
        status = _rc_status("", frame.exit_code)
    elif _ARCHIVE.search(output):
        status = "warning" if warnings else "success"
    else:
        return None
    report = BackupReport(software=SOFTWARE, job=frame.host, status=status, host=frame.host)
    if status == "failure":
        report.error = "\n".join(errors[:3] or _error_lines(output))[:2000] or None
    elif status == "warning":
        report.error = "\n".join(warnings[:3])[:2000] or None
    _stats(report, output)
    details = report.details
    details["source"] = frame.kind
    if codes:
        details["rc"] = max(rc for _, rc in codes)
    elif frame.exit_code is not None:
        details["rc"] = frame.exit_code
    repository = _borg_repository(frame.command)
    if repository:
        details["repository"] = repository
    if frame.unit:
        details["unit"] = frame.unit
    return report


def _rc_status(word: str, rc: int) -> Status:
    """borg's class word, else its exit code: 0 success, 1 and 100-127 warning, the rest error."""
    if word in ("success", "warning"):
        return word  # type: ignore[return-value]
    if word:
        return "failure"
    if rc == 0:
        return "success"
    return "warning" if rc == 1 or 100 <= rc <= 127 else "failure"


def _error_lines(output: str) -> list[str]:
    lines = [line.strip() for line in output.splitlines() if line.strip() and not _RC.match(line)]
    return lines[-3:]


def _stats(report: BackupReport, output: str) -> None:
    """The ``--stats`` block of the last archive created."""
    archives = list(_ARCHIVE.finditer(output))
    if not archives:
        return
    block = output[archives[-1].start():]
    report.details["archive"] = archives[-1].group("name")
    start, end = _START.search(block), _END.search(block)
    report.started_at = parse_datetime(start.group("time")) if start else None
    report.finished_at = parse_datetime(end.group("time")) if end else None
    sizes = _THIS_ARCHIVE.search(block)
    if sizes:
        report.size_bytes = parse_size(sizes.group("original"))
        report.transferred_bytes = parse_size(sizes.group("deduplicated"))
    files = _FILES.search(block)
    if files:
        report.details["files"] = int(files.group("files"))


def _borg_repository(command: str) -> str | None:
    """The repository of ``borg create REPO::ARCHIVE`` in the cron command line."""
    for word in command_words(command, "borg") or []:
        if "::" in word:
            return word.split("::", 1)[0] or None
    return None


def _borgmatic(frame: ToolOutput) -> BackupReport:
    output = frame.output
    summary = _SUMMARY.search(output)
    tail = output[summary.end():] if summary else output
    results: dict[str, Status] = {}
    for match in _CONFIG_RESULT.finditer(tail):
        failed = not match.group("result").startswith("Successfully")
        previous = results.get(match.group("config"))
        results[match.group("config")] = "failure" if failed or previous == "failure" else "success"
    warnings = [m.group("msg") for m in _BORG_WARNING.finditer(output)]
    warnings += [m.group("msg") for m in _NONZERO.finditer(output) if m.group("rc") == "1"]
    if warnings:  # borg's warnings (rc 1) do not fail a borgmatic run, but they are not a clean success
        results = {config: "warning" if status == "success" else status for config, status in results.items()}
    items = [ItemResult(name=config, status=status) for config, status in results.items()]
    status = worst(list(results.values()))
    job = items[0].name if len(items) == 1 else frame.host
    report = BackupReport(software=SOFTWARE_BORGMATIC, job=job, status=status, host=frame.host,
                          items=items if len(items) > 1 else [])
    if status == "failure":
        lines = [f"{m.group('repo')}: Error running actions for repository" for m in _REPOSITORY_ERROR.finditer(tail)]
        lines += [m.group("msg") for m in _BORG_ERROR.finditer(tail)]
        lines += [m.group("msg") for m in _NONZERO.finditer(tail)]
        report.error = "\n".join(dict.fromkeys(lines))[:2000] or None
        for item in items:
            if item.status == "failure":
                item.error = report.error
    elif status == "warning":
        report.error = "\n".join(warnings[:3])[:2000]
    _stats(report, output)
    report.details.update({"source": frame.kind, "configurations": list(results)})
    repositories = list(dict.fromkeys(m.group("repo") for m in _BORGMATIC_ACTION.finditer(output)))
    if repositories:
        report.details["repositories"] = repositories
    if frame.unit:
        report.details["unit"] = frame.unit
    return report
