"""``custode report send``, ``custode report outbox`` and ``custode report cancel``: the reports' outbox by hand.

The agent queues and sends the reports by itself; these commands are for the
day a comune asks for its report again, or an operator wants to know why one
has not gone out. ``send`` queues a row and makes one try at once in this
process (the agent retries it if that try fails); ``outbox`` lists the rows
and exits 1 when one is stuck, so a monitoring script can run it.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import datetime
from typing import Any

from custode.agent.calendar import ROME
from custode.agent.cli_output import add_format, print_document, sources_line
from custode.agent.clock import current_time
from custode.agent.config import Config
from custode.agent.table import table

STUCK_AFTER = 86400.0
"""A row unsent this long after it was due is stuck even before ``reports.incident_after`` failed tries
(the agent is not running, or a claim is held by a process that hangs)."""


def add_send_commands(report_subparsers: Any, epilog: str) -> None:
    """``send``, ``outbox`` and ``cancel`` under the ``report`` command (whose parser owns ``quarterly|yearly``)."""
    send = report_subparsers.add_parser(
        "send", epilog=epilog, help="Queue a report for e-mail now and try to send it; a second send of the same "
                                    "period needs --reason.",
        description="Queue TENANT's report of PERIOD for its recipients (tenants.<id>.reports.recipients, else the "
                    "referents) and try to render and send it at once. If that try fails the row stays in the outbox "
                    "and the agent retries it with backoff. Exit 0 when sent (or queued with --queue-only), 1 when "
                    "the try failed, 2 for a tenant or period that does not exist.")
    send.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    send.add_argument("--tenant", required=True, metavar="TENANT", help="the comune (a key under tenants:)")
    send.add_argument("--kind", required=True, choices=["quarterly", "yearly"])
    send.add_argument("--period", required=True, metavar="PERIOD", help="2026Q4 (quarterly) or 2026 (yearly)")
    send.add_argument("--reason", metavar="TEXT", help="why (audited); required when the period was queued before")
    send.add_argument("--queue-only", action="store_true", help="only queue it: the running agent sends it")
    add_format(send)
    send.set_defaults(handler=cmd_send)

    outbox = report_subparsers.add_parser(
        "outbox", epilog=epilog, help="The reports queued, sent and waiting, with their state; exit 1 if any is "
                                      "stuck.",
        description="Every report not sent yet and the latest ones sent: tenant, kind, period, state (queued, "
                    "retrying, sending, interrupted, sent, cancelled), tries, the last error and the next try. A "
                    f"row is stuck after reports.incident_after failed tries, or {STUCK_AFTER / 3600:g} hours "
                    "after it was due; then the exit status is 1.")
    outbox.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    outbox.add_argument("--limit", type=int, default=50, metavar="N", help="sent and cancelled rows shown (default 50)")
    add_format(outbox)
    outbox.set_defaults(handler=cmd_outbox)

    cancel = report_subparsers.add_parser(
        "cancel", epilog=epilog, help="Drop a report that is not sent yet (a tenant that left), with the reason.",
        description="Mark an unsent row of the outbox cancelled, with the reason (audited); the agent stops "
                    "trying it and its incident is resolved.")
    cancel.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    cancel.add_argument("row", type=int, metavar="ID", help="the row's id, from custode report outbox")
    cancel.add_argument("--reason", required=True, metavar="TEXT", help="why, for the audit log")
    cancel.set_defaults(handler=cmd_cancel)


# --- the commands ----------------------------------------------------------------------------------

def _loaded(args: argparse.Namespace) -> Any:
    from custode.agent.config_loader import load

    return load(getattr(args, "config", None))


def _mailer(config: Config) -> Any:
    if config.smtp is None:
        return None
    from custode.agent.mailer import Mailer

    return Mailer(config.smtp)


def cmd_send(args: argparse.Namespace) -> int:
    from custode.agent.paths import data_dir
    from custode.agent.recording import open_recording
    from custode.agent.reports.delivery import ReportDeliverer
    from custode.agent.reports.schedule import PeriodError, parse_period

    loaded = _loaded(args)
    config = loaded.model
    try:
        period = parse_period(args.kind, args.period)
    except PeriodError as exc:
        print(f"custode report send: {exc}", file=sys.stderr)
        return 2
    with open_recording(config, actor=f"cli:{_user()}") as recording:
        deliverer = ReportDeliverer(config, recording.state, data_dir(config), _mailer(config), audit=recording.audit,
                                    incidents=recording.incidents)
        earlier = deliverer.store.of_report(args.tenant, args.kind, period.label)
        if earlier and not args.reason:
            last = earlier[-1]
            print(f"custode report send: the {args.kind} report {period.label} of {args.tenant} is already in the "
                  f"outbox (row {last['id']}, {_state(last, config, current_time())[0]}); to send it again give "
                  "--reason (audited)", file=sys.stderr)
            return 1
        try:
            row_id = deliverer.queue_by_hand(args.tenant, args.kind, period.label, args.reason or "asked by hand")
        except ValueError as exc:
            print(f"custode report send: {exc}", file=sys.stderr)
            return 2
        outcome = None if args.queue_only else deliverer.deliver(row_id)
        row = deliverer.store.get(row_id)
    assert row is not None
    if args.format == "json":
        print_document("reports", [_listed(row, config, current_time())], loaded)
    else:
        print(sources_line(loaded))
        if outcome is None:
            print(f"Row {row_id}: the {args.kind} report {period.label} of {args.tenant} is queued; the agent "
                  "renders and sends it within minutes (custode report outbox shows it).")
        elif outcome.status == "sent":
            print(f"Row {row_id}: {outcome.detail}.")
        else:
            when = datetime.fromtimestamp(outcome.next_attempt_at or current_time(), ROME)
            print(f"Row {row_id}: not sent: {outcome.detail}\nIt stays in the outbox; the agent tries again from "
                  f"{when:%Y-%m-%d %H:%M %Z}.")
    return 0 if outcome is None or outcome.status == "sent" else 1


def cmd_outbox(args: argparse.Namespace) -> int:
    from custode.agent.paths import state_path
    from custode.agent.reports.store import ReportStore
    from custode.agent.state import State

    loaded = _loaded(args)
    config = loaded.model
    path = state_path(config)
    now = current_time()
    rows: list[sqlite3.Row] = []
    if path.exists():
        state = State(path)
        try:
            rows = ReportStore(state).listing(max(0, args.limit))
        finally:
            state.close()
    listed = [_listed(row, config, now) for row in rows]
    stuck = [item for item in listed if item["stuck"]]
    if args.format == "json":
        print_document("reports", listed, loaded, stuck=len(stuck))
        return 1 if stuck else 0
    print(sources_line(loaded))
    if not listed:
        print("The outbox is empty: no report has been queued (tenants.<id>.reports.enabled sends them when due).")
        return 0
    table_rows = []
    for item in listed:
        when = item["sent_at"] or item["next_attempt_at"]
        table_rows.append((item["id"], item["tenant"], item["kind"], item["period"], item["trigger"],
                           item["state"] + (" (STUCK)" if item["stuck"] else ""), item["attempts"], _local(when),
                           (item["error"] or item["note"] or ", ".join(item["recipients"]))[:100]))
    print(table(["ID", "TENANT", "KIND", "PERIOD", "TRIGGER", "STATE", "TRIES", "SENT / NEXT TRY", "DETAIL"],
                table_rows))
    if stuck:
        print(f"\n{len(stuck)} report(s) stuck: fix what DETAIL says (the agent keeps trying), or drop one with "
              "custode report cancel ID --reason ...")
    return 1 if stuck else 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from custode.agent.paths import data_dir
    from custode.agent.recording import open_recording
    from custode.agent.reports.delivery import ReportDeliverer

    loaded = _loaded(args)
    config = loaded.model
    with open_recording(config, actor=f"cli:{_user()}") as recording:
        deliverer = ReportDeliverer(config, recording.state, data_dir(config), None, audit=recording.audit,
                                    incidents=recording.incidents)
        row = deliverer.store.cancel(args.row, current_time(), args.reason)
        if row is None:
            found = deliverer.store.get(args.row)
            what = "does not exist" if found is None else f"is {found['status']}"
            print(f"custode report cancel: row {args.row} {what}; only a row not sent yet, and not being sent "
                  "this moment, can be cancelled", file=sys.stderr)
            return 1
        subject = f"report/{row['tenant']}/{row['kind']}/{row['period']}"
        recording.audit("report.cancelled", subject, {"row": args.row, "tenant": row["tenant"], "kind": row["kind"],
                                                      "period": row["period"], "reason": args.reason,
                                                      "attempts": row["attempts"]})
        deliverer.resolve_incident(row, f"the {row['kind']} report {row['period']} of {row['tenant']} was "
                                        f"cancelled: {args.reason}")
    print(f"Row {args.row} cancelled: the {row['kind']} report {row['period']} of {row['tenant']} will not be sent.")
    return 0


# --- helpers ---------------------------------------------------------------------------------------

def _state(row: sqlite3.Row, config: Config, now: float) -> tuple[str, bool]:
    """(state word, stuck) of a row as the outbox lists it."""
    from custode.agent.reports.store import OutboxStatus, owner_of

    status = row["status"]
    if status in (OutboxStatus.SENT, OutboxStatus.CANCELLED):
        return str(status), False
    owner = owner_of(row)
    if owner is not None:
        word = "sending" if owner.alive() else "interrupted"
    else:
        word = "retrying" if row["attempts"] else "queued"
    stuck = row["attempts"] >= config.reports.incident_after or now - float(row["due_at"]) > STUCK_AFTER
    return word, stuck


def _listed(row: sqlite3.Row, config: Config, now: float) -> dict[str, Any]:
    from custode.agent.reports.delivery import row_summary

    word, stuck = _state(row, config, now)
    return {**row_summary(row), "state": word, "stuck": stuck}


def _local(ts: float | None) -> str:
    return "-" if ts is None else f"{datetime.fromtimestamp(ts, ROME):%Y-%m-%d %H:%M %Z}"


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not worth failing a command
        return "unknown"
