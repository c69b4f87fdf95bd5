"""``custode windows list|ics`` and ``custode update run|history|notices``."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime

from custode.agent.calendar import ROME
from custode.agent.cli_output import add_format, print_document, sources_line, with_iso_times
from custode.agent.clock import today_rome
from custode.agent.table import table
from custode.agent.updates.windows import occurrences


def _start_date(text: str | None) -> date:
    if not text:
        return today_rome()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"custode: --from {text!r} is not a date; write YYYY-MM-DD, e.g. 2026-12-01") from None


def cmd_windows_list(args: argparse.Namespace, loaded) -> int:
    config = loaded.model
    found = occurrences(config, _start_date(args.start), args.weeks * 7, tenant=args.tenant)
    if args.format == "json":
        print_document("windows", [o.as_json() for o in found], loaded, state=False)
        return 0
    print(sources_line(loaded, state=False))
    if not config.updates.windows:
        print("No update windows are configured: add them under updates.windows (see README, 'Update windows').")
        return 0
    rows = [(f"{o.start:%a %Y-%m-%d}", f"{o.start:%H:%M}-{o.end:%H:%M %Z}", o.window, o.application, o.tenant or "-",
             f"SKIPPED: {o.reason}" if o.skipped else "planned") for o in found]
    print(table(["DAY", "TIME", "WINDOW", "APPLICATION", "TENANT", "STATUS"], rows))
    skipped = sum(1 for o in found if o.skipped)
    print(f"\n{len(found)} windows in {args.weeks} weeks, {skipped} skipped (holidays, patron days, closures). "
          "Times are Europe/Rome.")
    return 0


def cmd_windows_ics(args: argparse.Namespace, loaded) -> int:
    from custode.agent.updates.ics import build_calendar

    config = loaded.model
    found = occurrences(config, _start_date(args.start), args.weeks * 7, tenant=args.tenant)
    language = config.tenants[args.tenant].language if args.tenant in config.tenants else config.calendar.language
    data = build_calendar(found, language=language,
                          tenant_names={t: spec.name for t, spec in config.tenants.items()})
    if args.output and args.output != "-":
        from custode.agent.fileutil import write_atomic

        write_atomic(args.output, data)
        print(f"{args.output}: {len(found)} windows, {sum(1 for o in found if o.skipped)} of them cancelled")
    else:
        sys.stdout.buffer.write(data)
    return 0


def cmd_update_run(args: argparse.Namespace, loaded) -> int:
    from custode.agent.updates.runner import RunRefused
    from custode.agent.updates.service import open_runner

    if args.reason and not args.now:
        raise SystemExit("custode: --reason goes with --now (an urgent run outside the window)")
    from custode.agent.updates.states import RunStatus, RunTrigger

    trigger = RunTrigger.NOW if args.now else RunTrigger.MANUAL
    if args.dry_run:
        from custode.agent.updates.runner import UpdateRunner

        planner = UpdateRunner(loaded.model, loaded.source)
        try:
            occurrence = planner.dry_run_occurrence(args.window, trigger, args.reason, args.date)
            plan = planner.plan(args.window, trigger, args.reason, occurrence=occurrence, resolve_secrets=False)
        except RunRefused as exc:
            print(f"custode: no plan for {args.window}: {exc}", file=sys.stderr)
            return 1
        print(f"Plan for the window of {occurrence.start:%A %Y-%m-%d %H:%M}–{occurrence.end:%H:%M %Z} "
              f"({occurrence.start:%z}):")
        sys.stdout.write(plan.describe())
        print("Dry run: nothing was touched.")
        return 0
    if args.date is not None:
        raise SystemExit("custode: --date goes with --dry-run (a run happens in the window open now)")
    with open_runner(loaded, actor=f"cli:{_user()}") as runner:
        try:
            result = runner.run(args.window, trigger, args.reason)
        except RunRefused as exc:
            print(f"custode: update {args.window} not started: {exc}", file=sys.stderr)
            return 1
    print(f"run {result.run_id}: {result.status}: {result.summary}")
    print(f"Details: custode update history --run {result.run_id}")
    return 0 if result.status == RunStatus.SUCCEEDED else 1


def cmd_update_history(args: argparse.Namespace, loaded) -> int:
    from custode.agent.updates.service import open_store

    with open_store(loaded) as store:
        if args.run:
            run = store.run(args.run)
            if run is None:
                print(f"custode: no update run {args.run}", file=sys.stderr)
                return 1
            steps = store.steps(args.run)
            if args.format == "json":
                print_document("runs", [{**with_iso_times(dict(run)), "steps": [with_iso_times(dict(s))
                                                                                  for s in steps]}], loaded)
                return 0
            print(sources_line(loaded))
            print(f"Run {run['id']} of {run['window']} ({run['application']}), {run['trigger']}: {run['status']}")
            print(f"  {_local(run['started_at'])} – {_local(run['ended_at'])}; {run['summary']}")
            rows = [(s["phase"], s["position"] + 1, s["name"], s["host"] or "-", s["status"],
                     _local(s["started_at"]), (s["detail"] or "")[:100]) for s in steps]
            print(table(["PHASE", "#", "STEP", "HOST", "STATUS", "STARTED", "DETAIL"], rows))
            return 0
        runs = store.history(args.window, args.limit)
    if args.format == "json":
        print_document("runs", [dict(run) for run in runs], loaded)
        return 0
    print(sources_line(loaded))
    if not runs:
        print("No update runs yet.")
        return 0
    rows = [(r["id"], r["window"], r["trigger"], _local(r["started_at"]), _local(r["ended_at"]), r["status"],
             r["summary"][:80]) for r in runs]
    print(table(["RUN", "WINDOW", "TRIGGER", "STARTED", "ENDED", "STATUS", "SUMMARY"], rows))
    return 0


def cmd_update_notices(args: argparse.Namespace, loaded) -> int:
    """The advance notices due now; without --dry-run they are sent (what the agent does every few minutes)."""
    from custode.agent.updates.announce import Announcer
    from custode.agent.updates.notice_store import NoticeStore
    from custode.agent.updates.service import build_mailer

    config = loaded.model
    if args.dry_run:
        return _show_due_notices(args, loaded)
    from custode.agent.recording import open_recording

    with open_recording(config, actor=f"cli:{_user()}") as recording:
        outcomes = Announcer(config, NoticeStore(recording.state), build_mailer(config),
                             audit=recording.audit).cycle()
    if args.format == "json":
        print_document("notices", [o.as_json() for o in outcomes], loaded)
        return 0 if all(o.status == "sent" for o in outcomes) else 1
    print(sources_line(loaded))
    if not outcomes:
        print("No advance notice is due now (each goes out tenants.<id>.notice.working_days working days before "
              "its window, from 07:00 Europe/Rome).")
        return 0
    rows = [(o.tenant, o.window, f"{o.start:%a %Y-%m-%d %H:%M %Z}", o.kind, o.status.replace("_", " "),
             o.detail[:120]) for o in outcomes]
    print(table(["TENANT", "WINDOW", "WINDOW OPENS", "KIND", "STATUS", "DETAIL"], rows))
    failed = sum(1 for o in outcomes if o.status != "sent")
    if failed:
        print(f"\n{failed} notice(s) not sent: 'retry' ones are tried again at the next cycle until their window "
              "opens.")
    return 1 if failed else 0


def _show_due_notices(args: argparse.Namespace, loaded) -> int:
    """``--dry-run``: what is due and how earlier attempts went; nothing is sent and the state DB is not written."""
    from custode.agent.paths import state_path
    from custode.agent.state import State
    from custode.agent.updates.announce import Announcer
    from custode.agent.updates.notice_store import NoticeStore

    config = loaded.model
    path = state_path(config)
    state = State(path) if path.exists() else State(":memory:")
    try:
        due = Announcer(config, NoticeStore(state), None).due()
    finally:
        state.close()
    pending = [d for d in due if d.status not in ("sent", "not_sent")]
    if args.format == "json":
        print_document("notices", [d.as_json() for d in pending], loaded)
        return 0
    print(sources_line(loaded))
    if not pending:
        print("No advance notice is due now.")
        return 0
    rows = [(d.notice.tenant, d.notice.occurrence.window, f"{d.notice.occurrence.start:%a %Y-%m-%d %H:%M %Z}",
             d.notice.kind, f"{d.notice.due:%Y-%m-%d %H:%M %Z}", ", ".join(d.notice.recipients) or "(no referents)",
             d.status + (f" ({d.attempts} tries: {d.error[:80]})" if d.attempts else ""))
            for d in pending]
    print(table(["TENANT", "WINDOW", "WINDOW OPENS", "KIND", "DUE", "TO", "STATE"], rows))
    print(f"\nDry run: {len(pending)} notice(s) would be sent now; nothing was sent.")
    return 0


def _local(ts: float | None) -> str:
    return "-" if ts is None else f"{datetime.fromtimestamp(ts, ROME):%Y-%m-%d %H:%M %Z}"


def add_commands(sub, common) -> None:
    """Register ``windows`` and ``update`` on the top-level parser."""
    windows = sub.add_parser("windows", help="Weekly update windows: the coming ones, and an iCalendar file.")
    windows_sub = windows.add_subparsers(dest="windows_command", metavar="SUBCOMMAND", required=True)
    for name, handler, text in (
            ("list", cmd_windows_list, "The coming update windows, with the skipped ones and why."),
            ("ics", cmd_windows_ics, "Write the coming windows as an iCalendar (.ics) file to subscribe to.")):
        p = common(windows_sub, name, handler, text)
        p.add_argument("--from", dest="start", metavar="DATE", help="first day, YYYY-MM-DD (default today)")
        p.add_argument("--weeks", type=int, default=4 if name == "list" else 26, metavar="N",
                       help="how many weeks (default %(default)s)")
        p.add_argument("--tenant", metavar="TENANT", help="only the windows of this tenant and the farm-wide ones")
        if name == "list":
            add_format(p)
        else:
            p.add_argument("--output", "-o", metavar="FILE", help="write here (default: standard output)")

    update = sub.add_parser("update", help="Run an update window's playbook; the history of runs.")
    update_sub = update.add_subparsers(dest="update_command", metavar="SUBCOMMAND", required=True)
    run = common(update_sub, "run", cmd_update_run,
                 "Run WINDOW's playbook now. Refused outside the window unless --now --reason is given "
                 "(the referents are notified first).")
    run.add_argument("window", metavar="WINDOW", help="a name under updates.windows")
    run.add_argument("--now", action="store_true", help="urgent: run outside the window")
    run.add_argument("--reason", metavar="TEXT", help="why the urgent run (told to the referents)")
    run.add_argument("--dry-run", action="store_true", help="print the plan with every variable resolved; "
                                                            "touch nothing; at any time: the window open now, "
                                                            "else the next one (or --date)")
    run.add_argument("--date", type=_date_arg, metavar="YYYY-MM-DD",
                     help="with --dry-run: the occurrence on this day (Europe/Rome)")
    history = common(update_sub, "history", cmd_update_history, "Past update runs; --run N shows its steps.")
    history.add_argument("--window", metavar="WINDOW", help="only this window")
    history.add_argument("--run", type=int, metavar="N", help="one run with its steps")
    history.add_argument("--limit", type=int, default=50, metavar="N")
    add_format(history)
    notices = common(update_sub, "notices", cmd_update_notices,
                     "Send the advance notices due now to the tenants' referents (the agent does it by itself every "
                     "few minutes); each once per window and tenant, tried again until the window opens.")
    notices.add_argument("--dry-run", action="store_true", help="list the notices due now and their state; send "
                                                                "nothing")
    add_format(notices)


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-10") from None


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not worth failing a command
        return "unknown"

