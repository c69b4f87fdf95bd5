"""``custode sla due`` and ``custode sla calendar``: the SLA clock from the command line.

A person arguing about a ticket's due time ("why Monday?") gets the same
answer the planner wrote into the ticket, and can list the days the calendar
counts as closed. Without --config both use the embedded default calendar,
never a config file found elsewhere: the answer must not depend on which
machine the command runs on unless the person asks for a config.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

from custode.agent.calendar import WEEKDAYS
from custode.agent.clock import today_rome
from custode.agent.service_levels.config import TargetKind
from custode.agent.tickets.model import PRIORITIES

MAX_DAYS = 3660


def _config(args: argparse.Namespace):
    """The config of --config (ConfigError goes to the common handler), else the embedded default."""
    from custode.agent.config_loader import load, load_text

    return (load(args.config) if args.config else load_text("")).model


def _fail(command: str, message: str) -> int:
    print(f"custode sla {command}: {message}", file=sys.stderr)
    return 2


def cmd_due(args: argparse.Namespace) -> int:
    from custode.agent.tickets.sla import due, parse_opened, resolve_due, take_charge_due

    try:
        opened = parse_opened(args.opened)
    except ValueError as exc:
        return _fail("due", f"--opened {exc}")
    config = _config(args)
    kind: TargetKind = "restore" if args.restore else "resolve" if args.resolve else "take_charge"
    try:
        if args.level is not None:
            moment = due(config, args.tenant, args.level, kind, opened)
        elif kind == "restore":
            return _fail("due", "--restore needs --level (the default table has no restore targets)")
        else:
            moment = (resolve_due if args.resolve else take_charge_due)(config, args.tenant, args.priority, opened)
    except ValueError as exc:
        return _fail("due", f"{exc}{_tenant_hint(args)}")
    if moment is None:
        if args.level is not None:
            return _fail("due", f"level {args.level!r} has no {kind} target in this tenant's service levels; "
                                f"add {kind}: to it (e.g. '2 working days') or ask for another target")
        return _fail("due", f"no resolve target for priority {args.priority}: set "
                            f"tickets.sla.{args.priority}.resolve in the config (e.g. 3d)")
    print(moment.isoformat(timespec="seconds"))
    return 0


def _tenant_hint(args: argparse.Namespace) -> str:
    if args.tenant and not args.config:
        return "; without --config only the default calendar is known: pass --config PATH"
    return ""


def _day(text: str) -> date:
    """argparse type for --from: a date, so a typo is a usage error before anything runs."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD, e.g. 2026-12-21") from None


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days from 1 to {MAX_DAYS}")
    return value


def cmd_calendar(args: argparse.Namespace) -> int:
    from custode.agent.table import table
    from custode.agent.tickets.sla import level_calendar, tenant_calendar

    config = _config(args)
    try:
        calendar = (level_calendar(config, args.tenant, args.level) if args.level
                    else tenant_calendar(config, args.tenant))
    except ValueError as exc:
        return _fail("calendar", f"{exc}{_tenant_hint(args)}")
    first = args.start or today_rome()
    rows = []
    for offset in range(args.days):
        day = first + timedelta(days=offset)
        spans = calendar.office_hours[day.weekday()]
        reason = calendar.closed_reason(day)
        if reason is not None:
            state, hours = "closed", reason
        elif not spans:
            state, hours = "closed", "no office hours"
        else:
            state, hours = "working", ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in spans)
        rows.append((day.isoformat(), WEEKDAYS[day.weekday()], state, hours))
    print(table(("DATE", "DAY", "STATE", "OFFICE HOURS / REASON"), rows))
    return 0


def add_commands(sub, epilog: str) -> None:
    """Register ``custode sla due|calendar`` on the top-level subparsers."""
    sla = sub.add_parser("sla", help="Ticket SLA clock: due times in office hours, the working-day calendar.")
    sla_sub = sla.add_subparsers(dest="sla_command", metavar="SUBCOMMAND", required=True)

    due = sla_sub.add_parser(
        "due", epilog=epilog, help="Print when a ticket opened at a given time must be taken in charge.",
        description="Print the due time (ISO 8601, Europe/Rome with offset) of a ticket on this level (or "
                    "priority of the default table) opened at --opened: working hours and working days count "
                    "in the office hours of the tenant's calendar for that level, clock hours are plain hours. "
                    "Without --config the embedded default calendar and table are used.")
    which = due.add_mutually_exclusive_group(required=True)
    which.add_argument("--level", metavar="LEVEL", help="a level of the tenant's service_levels (e.g. bloccante)")
    which.add_argument("--priority", choices=PRIORITIES, help="a priority of the default table (tickets.sla)")
    due.add_argument("--opened", required=True, metavar="TIME",
                     help="ISO 8601: 2026-12-24T17:00 (Europe/Rome wall time) or with an offset")
    due.add_argument("--tenant", metavar="TENANT", help="use this tenant's calendar (patron day, closures)")
    target = due.add_mutually_exclusive_group()
    target.add_argument("--resolve", action="store_true",
                        help="the resolution due time instead of taking in charge")
    target.add_argument("--restore", action="store_true", help="the time service must be back (--level only)")
    due.add_argument("--config", "-c", metavar="PATH", help="config file (YAML); default: the embedded default")
    due.set_defaults(handler=cmd_due)

    calendar = sla_sub.add_parser(
        "calendar", epilog=epilog, help="List working and closed days with the reason (holiday, patron, closure).")
    calendar.add_argument("--tenant", metavar="TENANT")
    calendar.add_argument("--level", metavar="LEVEL", help="the hours that count for this service level (a "
                                                           "blocking level adds the blocking-only hours)")
    calendar.add_argument("--from", dest="start", type=_day, metavar="DATE", help="first day (default today)")
    calendar.add_argument("--days", type=_days, default=14, metavar="N", help="how many days (default 14)")
    calendar.add_argument("--config", "-c", metavar="PATH", help="config file (YAML); default: the embedded default")
    calendar.set_defaults(handler=cmd_calendar)

    from custode.agent.service_levels.cli import add_report_command
    add_report_command(sla_sub, epilog)
