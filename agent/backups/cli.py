"""``custode backups status|unexpected|poll`` and ``custode mail classify``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from custode.agent.backups.jobs import ROME, carry_since, evaluate, lookback
from custode.agent.backups.store import MailStore
from custode.agent.cli_output import print_document, sources_line
from custode.agent.table import human_age, table

_ORDER = {"failed": 0, "missing": 1, "warning": 2, "late": 3, "ok": 4}


def _local(ts: float | None) -> str:
    return "-" if ts is None else f"{datetime.fromtimestamp(ts, ROME):%Y-%m-%d %H:%M %Z}"


def _open_store(loaded):
    from custode.agent.paths import state_path
    from custode.agent.state import State

    path = state_path(loaded.model)
    if not path.exists():
        raise SystemExit(f"custode: no state yet at {path}; start the agent ('custode run') or run "
                         "'custode backups poll' once")
    return State(path)


def cmd_status(args: argparse.Namespace, loaded, now: float) -> int:
    from custode.agent.backups.service import MAILBOX_CHECK
    from custode.agent.incidents import Incidents

    section = loaded.model.backups
    if not section.expected and args.format == "json":
        print_document("jobs", [], loaded)
        return 0
    if not section.expected:
        print("No expected backup jobs are configured: add them under backups.expected (see README, "
              "'Backup reports'). 'custode backups unexpected' lists the jobs that report.")
        return 0
    state = _open_store(loaded)
    try:
        store = MailStore(state)
        result = evaluate(section, store.reports_since(now - lookback(section)), now)
        stored = store.job_states()
        unreadable = [i for i in Incidents(state).open_incidents(args.tenant) if i.check == MAILBOX_CHECK]
    finally:
        state.close()
    jobs = [j for j in result.jobs if not args.tenant or j.tenant == args.tenant]
    carry_since(jobs, stored)
    jobs.sort(key=lambda j: (_ORDER[j.state], j.tenant, j.job.name))
    if args.format == "json":
        print_document("jobs", [{"tenant": job.tenant, "job": job.job.name, "software": job.software,
                                 "state": job.state, "since": job.since, "due": job.due, "deadline": job.deadline,
                                 "last_report": job.last_report.reported_at if job.last_report else None,
                                 "last_status": job.last_report.status if job.last_report else None,
                                 "last_success": job.last_success_at} for job in jobs], loaded,
                       mailboxes_down=[{"mailbox": i.target, "since": i.opened_at, "summary": i.summary}
                                       for i in unreadable])
    else:
        print(sources_line(loaded))
        rows = [(j.tenant, j.job.name, j.software or "-", _local(j.last_report.reported_at if j.last_report else None),
                 j.state.upper() if j.state in ("failed", "missing") else j.state,
                 f"{_local(j.since)} ({human_age(now - j.since)})") for j in jobs]
        print(table(["TENANT", "JOB", "SOFTWARE", "LAST REPORT", "STATE", "SINCE"], rows))
        bad = sum(1 for j in jobs if j.state in ("failed", "missing"))
        print(f"\n{len(jobs)} jobs: {bad} failed or missing, "
              f"{sum(1 for j in jobs if j.state == 'late')} late, {len(result.unexpected)} unexpected reports "
              "(custode backups unexpected)")
        for incident in unreadable:  # the table above cannot be trusted for what that mailbox brings
            print(f"\nMAILBOX DOWN since {_local(incident.opened_at)}: {incident.summary}")
    return 1 if unreadable or any(j.state in ("failed", "missing") for j in jobs) else 0


def cmd_unexpected(args: argparse.Namespace, loaded, now: float) -> int:
    section = loaded.model.backups
    state = _open_store(loaded)
    try:
        reports = MailStore(state).reports_since(now - section.unexpected_window)
    finally:
        state.close()
    result = evaluate(section, reports, now)
    groups: dict[tuple, list] = {}
    for report in result.unexpected:
        groups.setdefault((report.software, report.job or "", report.host or ""), []).append(report)
    tenants = {m.name: m.tenant for m in section.mailboxes}
    if args.format == "json":
        print_document("unexpected", [
            {"software": software, "job": job, "host": host, "reports": len(items),
             "last_report": items[-1].reported_at, "last_status": items[-1].status, "sender": items[-1].sender,
             "mailbox": items[-1].mailbox, "tenant": tenants.get(items[-1].mailbox)}
            for (software, job, host), items in sorted(groups.items())], loaded)
        return 0
    print(sources_line(loaded))
    if not groups:
        print(f"No unexpected reports in the last {human_age(section.unexpected_window)}: every report "
              "matched an expected job.")
        return 0
    rows = [(software, job or "-", host or "-", len(items), _local(items[-1].reported_at), items[-1].status,
             items[-1].sender) for (software, job, host), items in sorted(groups.items())]
    print(table(["SOFTWARE", "JOB", "HOST", "REPORTS", "LAST", "STATUS", "SENDER"], rows))
    print("\nThese jobs report but nobody expects them. To watch one, add it under backups.expected.<tenant>, "
          "e.g.\n  - {name: \"%s\", software: \"%s\", schedule: \"0 22 * * *\"}" % (rows[0][1], rows[0][0]))
    return 0


def cmd_poll(args: argparse.Namespace, loaded, now: float) -> int:
    from custode.agent.backups.service import BackupMonitor
    from custode.agent.incidents import Incidents
    from custode.agent.paths import state_path
    from custode.agent.state import State

    section = loaded.model.backups
    if not section.mailboxes:
        print("No mailboxes configured under backups.mailboxes; nothing to poll.")
        return 1
    state = State(state_path(loaded.model))
    try:
        summary = BackupMonitor(section, state, Incidents(state), default_tenant=loaded.model.agent.tenant).poll()
    finally:
        state.close()
    print(sources_line(loaded))
    print(f"{summary.new} new messages ({summary.reports} backup reports), {summary.duplicates} already known")
    for error in summary.errors.values():
        print(f"error: {error}", file=sys.stderr)
    return 1 if summary.errors else 0


def cmd_classify(args: argparse.Namespace) -> int:
    """One JSON object per message on stdout; no config needed (``--config`` adds its rules)."""
    from custode.agent.backups.parsers import classify
    from custode.agent.backups.rules import compile_rules
    from custode.agent.mail.message import parse_message
    from custode.agent.mail.sources import local_messages

    rules = []
    if args.config:
        from custode.agent.config_loader import load

        rules = compile_rules(load(args.config).model.backups.rules)
    failures = 0
    for path in args.paths:
        try:
            for name, raw, truncated in local_messages([path]):
                verdict = classify(parse_message(raw, truncated=truncated), rules)
                report = verdict.report
                record = {"file": name, "software": report.software if report else None,
                          "job": report.job if report else None, "status": verdict.status}
                if report is not None:
                    record.update(host=report.host, error=report.error,
                                  started_at=report.started_at.isoformat() if report.started_at else None,
                                  finished_at=report.finished_at.isoformat() if report.finished_at else None,
                                  size_bytes=report.size_bytes, items=len(report.items))
                record.update(parser=verdict.parser, reason=verdict.reason or None)
                print(json.dumps(record, ensure_ascii=False), flush=False)
        except OSError as exc:
            failures += 1
            print(json.dumps({"file": path, "software": None, "job": None, "status": "error",
                              "error": f"cannot read: {exc.strerror or exc}"}, ensure_ascii=False))
    sys.stdout.flush()
    return 1 if failures else 0
