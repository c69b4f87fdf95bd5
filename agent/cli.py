"""The ``custode`` command line. Thin: each command calls one agent function.

Exit codes: 0 success, 1 the command ran and found a problem (invalid
config, a broken audit chain, open incidents for ``status``), 2 usage error.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from typing import Callable, Sequence

from custode.agent import __version__
from custode.agent.clock import current_time

EPILOG = ("Config: --config PATH, else $CUSTODE_CONFIG, else /etc/custode/custode.yaml "
          "(Windows: %ProgramData%\\Custode\\custode.yaml) if it exists, else the embedded default. "
          "State: agent.data_dir, else $CUSTODE_DATA_DIR. Docs: README.md.")


def _load(args: argparse.Namespace):
    from custode.agent.config_loader import load

    return load(getattr(args, "config", None))


def cmd_run(args: argparse.Namespace) -> int:
    from custode.agent import logs
    from custode.agent.config_loader import describe_secret_error
    from custode.agent.runtime import Agent
    from custode.agent.secrets import SecretError

    loaded = _load(args)
    logs.setup(loaded.model.logging.level, loaded.model.logging.format)
    try:
        agent = Agent(loaded, listen=args.listen, web_config=args.web_config_file)
    except SecretError as exc:  # a secret read at start-up (the Alertmanager bridge token): one line, no traceback
        print(f"custode: cannot start: {describe_secret_error(loaded, exc)}", file=sys.stderr)
        return 2
    agent.run_forever()
    return 0


def cmd_web_hash_password(args: argparse.Namespace) -> int:
    """The password comes on stdin (a prompt on a terminal), never on the command line."""
    import getpass

    from custode.agent.web.basic_auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("custode: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("custode: empty password; type one, or pipe it on stdin", file=sys.stderr)
        return 2
    try:
        print(hash_password(password, args.cost))
    except ValueError as exc:
        print(f"custode: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from custode.agent.cli_docs import bash_completion, zsh_completion

    sys.stdout.write((bash_completion if args.shell == "bash" else zsh_completion)(_parser()))
    return 0


def cmd_man(args: argparse.Namespace) -> int:
    from custode.agent.cli_docs import man_page

    sys.stdout.write(man_page(_parser()))
    return 0


def cmd_once(args: argparse.Namespace) -> int:
    from custode.agent.once import all_succeeded, collect_once, render_table

    loaded = _load(args)
    cache, runners = collect_once(loaded)
    if args.format == "prometheus":
        sys.stdout.write(cache.exposition.plain.decode())
    elif args.format == "json":
        from custode.agent.once import render_json

        sys.stdout.write(render_json(loaded, cache, runners))
    else:
        sys.stdout.write(render_table(loaded, cache, runners))
    return 0 if all_succeeded(runners) else 1


def cmd_status(args: argparse.Namespace) -> int:
    from custode.agent.status import build_status

    report = build_status(_load(args))
    sys.stdout.write(report.text)
    return 1 if report.problems else 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from custode.agent.config_loader import load

    loaded = load(args.path or args.config)
    from custode.agent.config_loader import require_env_secrets

    require_env_secrets(loaded)  # ConfigError naming each {env: VAR} secret this environment lacks
    enabled = ", ".join(p.name for p in loaded.enabled_collectors)
    tenants = ", ".join(loaded.model.tenant_ids())
    backups = loaded.model.backups
    jobs = sum(len(j) for j in backups.expected.values())
    from custode.agent.updates.runner import check_playbooks

    problems = check_playbooks(loaded.model, loaded.source)
    if problems:
        print("custode: invalid playbooks\n" + "\n".join(str(p) for p in problems), file=sys.stderr)
        return 1
    web = ""
    if loaded.model.agent.web_config_file is not None:
        from custode.agent.web.webconfig import load_web_config

        settings = load_web_config(loaded.model.agent.web_config_file)  # ConfigError: printed like the config's
        web = f"Web: {settings.scheme}{', basic auth' if settings.auth else ''}. "
    updates = loaded.model.updates
    print(f"{loaded.source}: OK. Tenants: {tenants}. Collectors enabled: {enabled}. "
          f"Backup mail: {len(backups.mailboxes)} mailboxes, {len(backups.rules)} rules, {jobs} expected jobs. "
          f"Hosts: {len(loaded.model.hosts)}, {len(loaded.model.polled_hosts())} polled by farm mode. "
          f"Updates: {len(updates.windows)} windows, playbooks valid. {web}"
          f"Restore tests: {len(loaded.model.restore_tests.sets)} backup sets.")
    from custode.agent.profiles import profile_lines

    lines = profile_lines(loaded.model)
    if lines:
        print("Service profiles:\n" + "\n".join(lines))
    from custode.agent.reports.config import delivery_warnings

    warnings = delivery_warnings(loaded.model)
    if warnings:
        print("Warning: reports that cannot be sent yet:\n" + "\n".join(warnings), file=sys.stderr)
    return 0


def cmd_config_init(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from custode.agent.config_init import InitError, starter_text, write_starter
    from custode.agent.config_loader import default_config_path

    if args.output == "-":
        sys.stdout.write(starter_text(args.kind))
        return 0
    target = Path(args.output or os.environ.get("CUSTODE_CONFIG") or default_config_path())
    try:
        write_starter(args.kind, target, args.force)
    except InitError as exc:
        print(f"custode: {exc}", file=sys.stderr)
        return 1
    print(f"{target}: a {args.kind} starter written; edit it, then: custode config check {target}")
    return 0


def _audit_file(args: argparse.Namespace, with_anchor: bool = True) -> tuple[str, tuple[int, str] | None, list[str]]:
    """The audit log path and, when the state DB is at hand, its anchored head; and what stands in the way.

    The notes say what verify cannot vouch for: records held outside the log,
    or a state database that cannot be read (then only the chain is checked,
    and a cut end cannot be seen)."""
    if args.file:
        return args.file, None, []
    from custode.agent.paths import audit_path, state_path
    from custode.agent.state import State, StateError
    from custode.agent.status import held_lines
    from custode.agent.storage_errors import explain_state

    loaded = _load(args)
    path, db = audit_path(loaded.model), state_path(loaded.model)
    if not with_anchor or not db.exists():
        return str(path), None, []
    without = "; the chain is checked without the head kept there, so records cut off its end cannot be seen"
    try:
        state = State(db)
    except StateError as exc:
        return str(path), None, [f"{exc}{without}"]
    try:
        anchor, held = state.audit_anchor(), state.held_audit_summary()
    except sqlite3.DatabaseError as exc:
        return str(path), None, [f"{explain_state(exc, db)}{without}"]
    finally:
        state.close()
    return str(path), anchor, [line for line in held_lines(*held) if line]


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from custode.agent.audit import verify

    path, anchor, notes = _audit_file(args)
    result = verify(path, expected_head=anchor)
    for note in notes:
        print(f"custode audit verify: {note}", file=sys.stderr)
    if result.ok:
        anchored = " and matches the head recorded in the state database" if anchor else ""
        print(f"{path}: OK, {result.records} records, hash chain intact{anchored}.")
        return 1 if notes else 0
    print(f"{path}: BROKEN at line {result.first_bad_line}: {result.reason}", file=sys.stderr)
    if not result.torn:
        print("What to do: keep this file as evidence; restore the log from a backup that holds every record, "
              "or start a new log with 'custode audit new-log --reason \"...\"' (record 1 of the new log names "
              "this file and its hash). Custode holds new records until then.", file=sys.stderr)
    return 1


def cmd_audit_new_log(args: argparse.Namespace) -> int:
    import getpass

    from custode.agent.audit import AuditError
    from custode.agent.audit_keeper import AuditKeeper
    from custode.agent.paths import audit_path, state_path
    from custode.agent.state import State

    loaded = _load(args)
    state = State(state_path(loaded.model))
    try:
        keeper = AuditKeeper(state, audit_path(loaded.model), actor="cli")
        try:
            record, kept = keeper.start_new_log(args.reason, f"cli:{getpass.getuser()}")
        except AuditError as exc:
            print(f"custode audit new-log: {exc}", file=sys.stderr)
            return 1
        held = keeper.status().held
    finally:
        state.close()
    where = f"the damaged one is kept as {kept}" if kept else "there was no file to keep"
    print(f"{keeper.path}: new log started; {where}; record {record['seq']} ({record['action']}) names it "
          f"with its SHA-256. Held records were written after it" + (f" ({held} still held)." if held else "."))
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from custode.agent.audit import export, parse_since

    try:
        since = parse_since(args.since) if args.since else None
        until = parse_since(args.until) if args.until else None
    except ValueError as exc:
        print(f"custode audit export: {exc}", file=sys.stderr)
        return 2
    path, _, _ = _audit_file(args, with_anchor=False)
    for line in export(path, since=since, until=until):
        sys.stdout.write(line + "\n")
    return 0


def cmd_backups(args: argparse.Namespace) -> int:

    from custode.agent.backups import cli as backups_cli

    handler = {"status": backups_cli.cmd_status, "unexpected": backups_cli.cmd_unexpected,
               "poll": backups_cli.cmd_poll}[args.backups_command]
    return handler(args, _load(args), current_time())


def cmd_mail_classify(args: argparse.Namespace) -> int:
    from custode.agent.backups.cli import cmd_classify

    return cmd_classify(args)


def cmd_service(args: argparse.Namespace) -> int:
    if sys.platform != "win32":
        print("custode service manages the Windows service. On Linux install "
              "packaging/linux/custode.service with systemd (see README, 'Running as a service').",
              file=sys.stderr)
        return 2
    from custode.agent.winservice import handle

    return handle(args.action)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custode", epilog=EPILOG,
        description="Custode: monitoring and ops automation for municipal servers.")
    parser.add_argument("--version", action="version", version=f"custode {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
                config: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
        if config:
            p.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
        p.set_defaults(handler=handler)
        return p

    run = command("run", cmd_run, "Run the agent: collectors on schedule, checks, /metrics, /healthz, /ready.")
    run.add_argument("--listen", metavar="HOST:PORT", help="override agent.listen (default 0.0.0.0:10191)")
    run.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                     help="TLS and basic auth (exporter-toolkit format, as node_exporter's); "
                          "overrides agent.web_config_file")

    web = sub.add_parser("web", help="The HTTP endpoint's TLS and basic auth.")
    web_sub = web.add_subparsers(dest="web_command", metavar="SUBCOMMAND", required=True)
    hasher = web_sub.add_parser("hash-password", help="Read a password on stdin, print its bcrypt hash "
                                                      "for basic_auth_users.")
    hasher.add_argument("--cost", type=int, default=10, help="bcrypt cost, 10 (default) to 14")
    hasher.set_defaults(handler=cmd_web_hash_password)

    completion = sub.add_parser("completion", help="Print the shell completion script: "
                                                   "source <(custode completion bash)")
    completion.add_argument("shell", choices=["bash", "zsh"])
    completion.set_defaults(handler=cmd_completion)
    command("man", cmd_man, "Print the custode(1) man page in roff: custode man | man -l -", config=False)

    once = command("once", cmd_once, "Run every enabled collector once and print what it found.")
    from custode.agent.cli_output import add_format

    add_format(once, ("table", "json", "prometheus"))

    command("status", cmd_status, "Say what is wrong right now, from the agent's state database.")

    config = sub.add_parser("config", help="Work with the config file.")
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = config_sub.add_parser("check", help="Validate a config file; exit 1 and explain every error.")
    check.add_argument("path", nargs="?", help="config file (default: as for the other commands)")
    check.add_argument("--config", "-c", metavar="PATH", help=argparse.SUPPRESS)
    check.set_defaults(handler=cmd_config_check)
    init = config_sub.add_parser("init", help="Write a commented starter config: a comune's server (default), "
                                              "a farm node, or the full reference.")
    init.add_argument("kind", nargs="?", choices=["comune", "farm", "reference"], default="comune")
    init.add_argument("--output", "-o", metavar="FILE", help="where (default: /etc/custode/custode.yaml, "
                                                             "or $CUSTODE_CONFIG); '-' prints it")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=cmd_config_init)

    audit = sub.add_parser("audit", help="Verify or export the tamper-evident audit log.")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    for name, handler, text in (("verify", cmd_audit_verify, "Check the hash chain; name the first bad line."),
                                ("export", cmd_audit_export, "Print audit records as JSON lines.")):
        p = audit_sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", "-c", metavar="PATH", help="config file (to find the audit log)")
        p.add_argument("--file", metavar="PATH", help="audit log file (instead of the config's)")
        p.set_defaults(handler=handler)
        if name == "export":
            p.add_argument("--since", metavar="DATE",
                           help="from this time: 2026-11-23 (midnight Europe/Rome), 2026-11-23T10:00, "
                                "or with an offset")
            p.add_argument("--until", metavar="DATE", help="up to (excluding) this time, same forms")
    new_log = audit_sub.add_parser(
        "new-log", help="After damage: keep the damaged log as evidence and start a new chain that names it.",
        description="Move the damaged audit log aside (audit.jsonl.broken-<time>), forget the head the state "
                    "database kept for it, and start a new log whose record 1 gives the reason, the damage, the "
                    "old file and its SHA-256; held records follow. Refused while the log is intact.")
    new_log.add_argument("--config", "-c", metavar="PATH", help="config file (to find the audit log)")
    new_log.add_argument("--reason", required=True, help="why, for the auditors (e.g. the ticket number)")
    new_log.set_defaults(handler=cmd_audit_new_log)

    backups = sub.add_parser("backups", help="Backup reports: the morning table, unexpected jobs, a poll now.")
    backups_sub = backups.add_subparsers(dest="backups_command", metavar="SUBCOMMAND", required=True)
    for name, text in (("status", "Each expected job: last report, state (ok, warning, failed, late, missing), "
                                  "since when. Exit 1 if any failed or is missing."),
                       ("unexpected", "Reports of jobs that no expected job matches (new jobs nobody configured)."),
                       ("poll", "Read the mailboxes now, store new reports, update states and incidents.")):
        p = backups_sub.add_parser(name, help=text, description=text, epilog=EPILOG)
        p.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
        p.set_defaults(handler=cmd_backups)
        if name != "poll":
            from custode.agent.cli_output import add_format

            add_format(p)
        if name == "status":
            p.add_argument("--tenant", metavar="TENANT", help="only this tenant's jobs")

    mail = sub.add_parser("mail", help="Work with e-mail files.")
    mail_sub = mail.add_subparsers(dest="mail_command", metavar="SUBCOMMAND", required=True)
    classify = mail_sub.add_parser(
        "classify", help="Classify .eml files, Maildirs or mbox files as backup reports; JSON lines.",
        description="Print one JSON object per message: file, software, job, status "
                    "(success, warning, failure or not_a_report), and what else the report states. "
                    "Needs no config; --config adds its backups.rules.")
    classify.add_argument("paths", nargs="+", metavar="PATH", help=".eml file, Maildir, mbox file or folder")
    classify.add_argument("--config", "-c", metavar="PATH", help="config whose backups.rules to apply too")
    classify.set_defaults(handler=cmd_mail_classify)

    def with_config(subparsers, name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = subparsers.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
        p.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
        p.set_defaults(handler=lambda args: handler(args, _load(args)))
        return p

    from custode.agent.updates.cli import add_commands as add_update_commands

    add_update_commands(sub, with_config)

    from custode.agent.restore.cli import add_commands as add_restore_commands

    add_restore_commands(sub, backups_sub, EPILOG)

    from custode.agent.farm.cli import add_commands as add_farm_commands

    add_farm_commands(sub, EPILOG)

    from custode.agent.blackbox.cli import add_commands as add_probe_commands

    add_probe_commands(sub, EPILOG)

    from custode.agent.tickets.sla_cli import add_commands as add_sla_commands
    add_sla_commands(sub, EPILOG)

    from custode.agent.tickets.cli import add_commands as add_ticket_commands

    add_ticket_commands(sub, EPILOG)

    from custode.agent.reports.cli import add_commands as add_report_commands
    add_report_commands(sub, EPILOG)

    service = command("service", cmd_service, "Windows only: install, remove, start or stop the Custode service "
                      "(it reads custode.yaml in the ProgramData\\Custode folder).", config=False)
    service.add_argument("action", choices=["install", "remove", "start", "stop"])
    return parser


def _explain_db(args: argparse.Namespace, exc: sqlite3.DatabaseError) -> str:
    """The storage failure in words, naming the state database of the command's config when it can be found."""
    from custode.agent.storage_errors import explain_state

    try:
        from custode.agent.paths import state_path

        return explain_state(exc, state_path(_load(args).model))
    except Exception:  # noqa: BLE001 - the config itself may be the trouble; say what is known
        return f"the state database cannot be used: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from custode.agent.config_loader import ConfigError
    from custode.agent.state import StateError
    from custode.agent.web import ListenError

    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f"custode: invalid configuration\n{exc}", file=sys.stderr)
        return 1
    except (StateError, ListenError, OSError) as exc:
        print(f"custode: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # a command met a damaged, full or read-only state DB
        print(f"custode: {_explain_db(args, exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
