"""``custode sla report``: each comune's service levels over a month, a quarter or a year, with the exposure.

The quarterly report a referent reads, the JSON a billing script reads and
the CSV a spreadsheet reads come from one computation
(:mod:`custode.agent.service_levels.report`). A mistake in what was asked
(a tenant the config does not have, a period that does not parse or has not
begun) is one line saying how to ask, exit 2; a comune with no tickets gets a
report that says so, exit 0.
"""

from __future__ import annotations

import argparse
import sys

from custode.agent.cli_output import add_format, iso, print_document, sources_line


def _fail(message: str) -> int:
    print(f"custode sla report: {message}", file=sys.stderr)
    return 2


def cmd_report(args: argparse.Namespace) -> int:
    from custode.agent.clock import current_time
    from custode.agent.config_loader import load
    from custode.agent.paths import state_path
    from custode.agent.service_levels import render
    from custode.agent.service_levels.period import current, parse_period
    from custode.agent.service_levels.report import as_json, default_tenants, known_tenants, load_tenant_report
    from custode.agent.state import State

    loaded = load(args.config)
    config = loaded.model
    try:
        period = parse_period(args.period)
    except ValueError as exc:
        return _fail(f"--period {exc}")
    now = current_time()
    if period.start_ts > now:
        return _fail(f"--period {period.key} has not begun (it starts {iso(period.start)}); the latest are "
                     f"{current('quarter', now).key}, {current('month', now).key} and {current('year', now).key}")
    known = known_tenants(config)
    tenants = list(dict.fromkeys(args.tenant)) if args.tenant else default_tenants(config)
    for tenant in tenants:
        if tenant not in known:
            hint = "" if args.config else " (or pass --config PATH: the agent's config may be elsewhere)"
            return _fail(f"--tenant {tenant!r} is not a tenant of {loaded.source}; tenants: {', '.join(known)}{hint}")
    state = State(state_path(config))
    try:
        reports = [as_json(load_tenant_report(config, state, tenant, period, now)) for tenant in tenants]
    finally:
        state.close()
    if args.format == "json":
        print_document("reports", reports, loaded, period=period.key, now_at=iso(now))
    elif args.format == "csv":
        sys.stdout.write(render.csv_text(reports))
    else:
        print(sources_line(loaded))
        sys.stdout.write(render.text(reports))
    return 0


def add_report_command(sla_subparsers, epilog: str) -> None:
    """Register ``custode sla report`` under ``custode sla`` (called from custode.agent.tickets.sla_cli)."""
    from custode.agent.service_levels.render import CSV_HELP

    report = sla_subparsers.add_parser(
        "report", epilog=epilog,
        help="Service-level compliance and penalty exposure of a comune over a month, quarter or year.",
        description="Per level of the tenant's contract, per month and per quarter of the period (Europe/Rome): "
                    "tickets opened, taken in charge / resolved / restored within the target, late, not known "
                    "(a helpdesk that cannot tell, e.g. e-mail) or still open; the share within target against "
                    "the contract's threshold; the penalty exposure in euros with every ticket that costs money "
                    "and why; releases not announced in advance where the contract fines them.")
    report.add_argument("--tenant", action="append", metavar="TENANT",
                        help="the comune (repeat for several); default: every tenant that files tickets")
    report.add_argument("--period", required=True, metavar="PERIOD",
                        help="2026Q4 (a quarter), 2026-11 (a month) or 2026 (a year)")
    report.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    add_format(report, ("table", "json", "csv"))
    report.epilog = f"{CSV_HELP}\n\n{epilog}" if epilog else CSV_HELP
    report.set_defaults(handler=cmd_report)
