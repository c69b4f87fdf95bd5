"""``custode tickets list|outbox|retry|set-aside``: what Custode filed, and what it could not deliver or plan yet."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from custode.agent.cli_output import add_format, print_document, sources_line
from custode.agent.clock import current_time
from custode.agent.redact import redact_text, redact_values
from custode.agent.table import human_age, table


def _state(args: argparse.Namespace):
    from custode.agent.config_loader import load
    from custode.agent.paths import state_path
    from custode.agent.state import State

    args.loaded = load(args.config)
    return State(state_path(args.loaded.model))


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    from custode.agent.calendar import ROME

    return datetime.fromtimestamp(timestamp, ROME).strftime("%Y-%m-%d %H:%M %Z")


def cmd_list(args: argparse.Namespace) -> int:
    from custode.agent.tickets import store

    rows = store.ticket_rows(_state(args), include_finished=args.all, tenant=args.tenant)
    if args.format == "json":  # redacted: rows stored before Custode redacted URLs may still carry a credential
        print_document("tickets", [redact_values(dict(row)) for row in rows], args.loaded)
        return 0
    print(sources_line(args.loaded))
    if not rows:
        print("no tickets" + ("" if args.all else " open (--all shows the finished ones)"))
        return 0
    lines = [(r["id"], r["tenant"], r["backend"], r["ref"] or "(not yet created)", r["state"],
              r["level"] or r["priority"], r["priority"], _when(r["opened_at"]),
              _when(r["due_at"]) + (" BREACHED" if r["take_charge_breached"] else ""), r["key"]) for r in rows]
    print(table(["id", "tenant", "backend", "ticket", "state", "level", "priority", "opened", "take charge by",
                 "incident"], lines))
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    from custode.agent.tickets import store
    from custode.agent.tickets.model import OpState

    rows = store.outbox_rows(_state(args), include_finished=args.all)
    dead = sum(1 for r in rows if r["state"] == OpState.DEAD)
    if args.format == "json":
        print_document("operations", [redact_values({k: row[k] for k in row.keys() if k != "payload"})
                                      for row in rows], args.loaded)
        return 1 if dead else 0
    print(sources_line(args.loaded))
    if not rows:
        print("outbox empty: every ticket operation was delivered")
        return 0
    now = current_time()
    lines = [(r["op_id"][:12], r["backend"], r["op"], r["state"] if r["state"] != OpState.DEAD else "UNDELIVERABLE",
              r["attempts"], human_age(now - r["created_at"]),
              _when(r["next_attempt_at"]) if r["state"] == OpState.PENDING else "-", r["key"],
              redact_text(r["last_error"] or "")[:160]) for r in rows]
    print(table(["op", "backend", "operation", "state", "tries", "age", "next try", "incident", "last error"], lines))
    if dead:
        print(f"\n{dead} operation(s) undeliverable: fix what the error says, then run "
              "'custode tickets retry --undeliverable' (or name the ops)", file=sys.stderr)
    return 1 if dead else 0


def cmd_retry(args: argparse.Namespace) -> int:
    if not args.ops and not args.undeliverable:
        print("custode tickets retry: name operations (the 'op' column of 'custode tickets outbox') "
              "or give --undeliverable", file=sys.stderr)
        return 2
    from custode.agent.tickets import store

    state = _state(args)
    now = 0.0  # due at once, whatever the agent's clock says
    with state.transaction() as db:
        if args.undeliverable:
            count = store.requeue_undeliverable(db, now)
        else:
            count = 0
            for prefix in args.ops:
                requeued = store.requeue_by_prefix(db, prefix, now)
                if requeued == 0:
                    print(f"no undelivered operation starts with {prefix!r}; see 'custode tickets outbox'",
                          file=sys.stderr)
                count += requeued
    print(f"{count} operation(s) queued again; the running agent delivers them within seconds")
    return 0 if count else 1


def cmd_set_aside(args: argparse.Namespace) -> int:
    """Incident events whose ticket could not be planned, with the reason; --retry plans them again."""
    from custode.agent.tickets import store

    state = _state(args)
    if args.retry:
        from custode.agent.tickets.planner import TicketPlanner

        planned, still = TicketPlanner(args.loaded.model, state).retry_set_aside()
        print(f"{planned} event(s) planned again, {still} still set aside"
              + ("; see 'custode tickets set-aside' for why" if still else ""))
        return 1 if still else 0
    rows = store.set_aside_rows(state)
    if args.format == "json":
        print_document("set_aside", [dict(row) for row in rows], args.loaded)
        return 1 if rows else 0
    print(sources_line(args.loaded))
    if not rows:
        print("no incident event is set aside: every one was planned into tickets")
        return 0
    print(table(["event", "tenant", "incident", "since", "reason"],
                [(r["event_id"], r["tenant"], r["incident_key"], _when(r["at"]), r["reason"][:200]) for r in rows]))
    print("\nfix what the reason says (often the config's tenants or service_levels), then run "
          "'custode tickets set-aside --retry'", file=sys.stderr)
    return 1


def add_commands(sub, epilog: str) -> None:
    tickets = sub.add_parser("tickets", help="Helpdesk tickets Custode opened, and its delivery outbox.")
    tickets_sub = tickets.add_subparsers(dest="tickets_command", metavar="SUBCOMMAND", required=True)

    listing = tickets_sub.add_parser("list", epilog=epilog, help="Live tickets (failure persisting or just "
                                                                 "recovered) with their SLA due time.")
    listing.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    listing.add_argument("--all", action="store_true", help="also finished and replaced tickets")
    listing.add_argument("--tenant", metavar="TENANT")
    add_format(listing)
    listing.set_defaults(handler=cmd_list)

    outbox = tickets_sub.add_parser("outbox", epilog=epilog, help="Operations not delivered yet, and those the "
                                                                  "helpdesk refused; exit 1 if any is undeliverable.")
    outbox.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    outbox.add_argument("--all", action="store_true", help="also delivered and cancelled operations")
    add_format(outbox)
    outbox.set_defaults(handler=cmd_outbox)

    retry = tickets_sub.add_parser("retry", epilog=epilog, help="Queue undeliverable operations again, after "
                                                                "fixing what their error says.")
    retry.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    retry.add_argument("ops", nargs="*", metavar="OP", help="operation ids (or prefixes) from 'tickets outbox'")
    retry.add_argument("--undeliverable", action="store_true", help="every undeliverable operation")
    retry.set_defaults(handler=cmd_retry)

    aside = tickets_sub.add_parser("set-aside", epilog=epilog, help="Incident events whose ticket could not be "
                                                                    "planned, with the reason; exit 1 if any.")
    aside.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    aside.add_argument("--retry", action="store_true", help="plan them again, after fixing the config")
    add_format(aside)
    aside.set_defaults(handler=cmd_set_aside)
