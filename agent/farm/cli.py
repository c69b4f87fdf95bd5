"""``custode farm poll|list|report``."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date, timedelta
from pathlib import Path

from custode.agent.cli_output import add_format, document, print_document, sources_line
from custode.agent.clock import current_time, today_rome
from custode.agent.history.model import HistorySource
from custode.agent.table import human_age, table

_TARGET = re.compile(r"^(?P<user>[^@\s]+)@(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+)(?::(?P<port>\d{1,5}))?$")


def _load(args: argparse.Namespace):
    from custode.agent.config_loader import load

    return load(args.config)


def parse_target(value: str, default_port: int) -> tuple[str, str, int]:
    """``USER@HOST[:PORT]`` (IPv6 in brackets) -> (user, host, port)."""
    match = _TARGET.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r}: expected USER@HOST[:PORT], e.g. custode@10.0.0.5:22 "
                                         "or custode@[::1]:2222")
    port = int(match["port"] or default_port)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{value!r}: port {port} is out of range 1-65535")
    return match["user"], match["host"].strip("[]"), port


def _target_argument(value: str) -> str:
    """argparse type: reject a malformed target as a usage error before anything connects."""
    parse_target(value, 22)
    return value


def _adhoc_targets(args: argparse.Namespace):
    """Targets from --ssh/--winrm: no config, the default tenant, named HOST or HOST:PORT."""
    from custode.agent.config import DEFAULT_TENANT
    from custode.agent.farm.targets import Target
    from custode.agent.secrets import SecretRef
    from custode.agent.transports.config import HostConfig, SshOptions, WinrmOptions

    targets = []
    for value in args.ssh or []:
        user, address, port = parse_target(value, 22)
        options = SshOptions(user=user, port=port, identity_file=args.identity, known_hosts=args.known_hosts,
                             connect_timeout=args.connect_timeout)
        host = HostConfig(address=address, transport="ssh", ssh=options)
        targets.append(Target(address if port == 22 else f"{address}:{port}", DEFAULT_TENANT, host,
                              args.timeout, args.timeout))
    for value in args.winrm or []:
        user, address, port = parse_target(value, 5986)
        options = WinrmOptions(user=user, password=SecretRef(env=args.winrm_password_env), port=port,
                               scheme="https", ca_file=args.ca_file, connect_timeout=args.connect_timeout)
        host = HostConfig(address=address, transport="winrm", winrm=options)
        targets.append(Target(address if port == 5986 else f"{address}:{port}", DEFAULT_TENANT, host,
                              args.timeout, args.timeout))
    targets += _snmp_targets(args)
    names = [t.name for t in targets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SystemExit(f"custode: target {twice[0]} given twice")
    return targets


def parse_snmp_target(value: str) -> tuple[str, str, int]:
    """``COMMUNITY@HOST[:PORT]`` (or ``USER@…`` for v3; IPv6 in brackets) -> (community or user, host, port).

    The community may itself hold ``@``: the host is what follows the last one."""
    community, at, rest = value.strip().rpartition("@")
    if not at:
        raise argparse.ArgumentTypeError(f"{value!r}: expected COMMUNITY@HOST[:PORT], e.g. public@10.0.0.1 or "
                                         "@10.0.0.1:161 with the community in --community-env")
    _, host, port = parse_target(f"x@{rest}", 161)
    return community, host, port


def _snmp_argument(value: str) -> str:
    parse_snmp_target(value)
    return value


def _snmp_targets(args: argparse.Namespace):
    """Targets from --snmp (v2c) and --snmp-v3; a community written in the argument is handed to the poll through
    this process's environment, as every configured secret is read, so there is one way to read it."""
    import os

    from custode.agent.config import DEFAULT_TENANT
    from custode.agent.farm.targets import Target
    from custode.agent.secrets import SecretRef
    from custode.agent.snmp.options import SnmpOptions, SnmpV3
    from custode.agent.transports.config import HostConfig

    def target(address: str, port: int, options: SnmpOptions) -> Target:
        shown = f"[{address}]" if ":" in address else address
        name = address if port == 161 else f"{shown}:{port}"
        return Target(name, DEFAULT_TENANT, HostConfig(address=address, transport="snmp", snmp=options),
                      args.timeout, args.timeout)

    common = {"timeout": args.snmp_timeout, "retries": args.snmp_retries}
    targets = []
    for index, value in enumerate(args.snmp or []):
        community, address, port = parse_snmp_target(value)
        variable = args.community_env
        if community:
            variable = f"CUSTODE_SNMP_COMMUNITY_ARGUMENT_{index}"
            os.environ[variable] = community
        elif not os.environ.get(variable):
            raise SystemExit(f"custode: --snmp {value}: no community before '@' and environment variable "
                             f"{variable} is not set; write COMMUNITY@HOST or set {variable}")
        targets.append(target(address, port, SnmpOptions(version="2c", community=SecretRef(env=variable),
                                                         port=port, **common)))
    for value in args.snmp_v3 or []:
        user, address, port = parse_snmp_target(value)
        if not user:
            raise SystemExit(f"custode: --snmp-v3 {value}: write USER@HOST[:PORT]")
        auth = SecretRef(env=args.snmp_auth_env) if os.environ.get(args.snmp_auth_env) else None
        priv = SecretRef(env=args.snmp_priv_env) if auth and os.environ.get(args.snmp_priv_env) else None
        v3 = SnmpV3(user=user, auth_protocol=args.snmp_auth_protocol, auth_key=auth,
                    priv_protocol=args.snmp_priv_protocol, priv_key=priv)
        targets.append(target(address, port, SnmpOptions(version="3", v3=v3, port=port, **common)))
    return targets


def _configured_targets(loaded, args: argparse.Namespace):
    from custode.agent.farm.targets import targets_of
    from custode.agent.suggest import did_you_mean

    targets = targets_of(loaded.model)
    known = [t.name for t in targets]
    for name in args.host or []:
        if name not in known:
            hint = did_you_mean(name, known)
            raise SystemExit(f"custode: no polled host {name!r} in the config; "
                             + (f"did you mean {hint!r}?" if hint else f"polled hosts: {', '.join(known) or 'none'}"))
    return [t for t in targets if (not args.host or t.name in args.host)
            and (not args.tenant or t.tenant == args.tenant)]


def cmd_poll(args: argparse.Namespace) -> int:
    from custode.agent.farm.poller import FarmPoller

    adhoc = bool(args.ssh or args.winrm or args.snmp or args.snmp_v3)
    if adhoc and (args.host or args.tenant):
        raise SystemExit("custode: --host/--tenant choose hosts from the config; with --ssh/--winrm/--snmp the "
                         "targets are the ones given")
    loaded = None if adhoc else _load(args)
    targets = _adhoc_targets(args) if adhoc else _configured_targets(loaded, args)
    if not targets:
        raise SystemExit("custode: nothing to poll: give --ssh USER@HOST:PORT (or --winrm, --snmp), or a config "
                         "with hosts under hosts: (see README, 'Farm mode')")
    workers = args.workers or (loaded.model.farm.workers if loaded else 32)
    poller = FarmPoller(targets, workers=workers, keep_connections=False,
                        updates_interval=None if args.no_updates else 0.0)
    try:
        results = poller.poll()
    finally:
        poller.close()
    if loaded is not None:
        _record(loaded, results)
    _print(results, args.format, loaded)
    return 0 if all(r.up for r in results) else 1


def _record(loaded, results) -> None:
    """A poll from the command line leaves the same records as a scheduled one."""
    from custode.agent.farm.service import FarmService
    from custode.agent.recording import open_recording

    with open_recording(loaded.model) as recording:
        FarmService(loaded.model, recording.state, recording.incidents).handle(results)


def _print(results, fmt: str, loaded=None) -> None:
    from custode.agent.farm.metrics import TargetStatus, farm_families
    from custode.agent.farm.service import snapshot_summary

    if fmt == "prometheus":
        from custode.agent.metric_cache import MetricCache

        status = {r.target.name: TargetStatus(r.started_at if r.up else None, 0 if r.up else 1) for r in results}
        cache = MetricCache()
        cache.update("farm", farm_families(results, status))
        sys.stdout.write(cache.exposition.plain.decode())
    elif fmt == "json":
        print_document("hosts", [{"host": r.target.name, "tenant": r.target.tenant, "up": r.up,
                                  "started_at": r.started_at, "duration": round(r.duration, 3), "error": r.error,
                                  "summary": snapshot_summary(r)} for r in results], loaded)
    else:
        if loaded is not None:
            print(sources_line(loaded))
        rows = []
        for r in results:
            s = snapshot_summary(r)
            fs = s.get("tightest_filesystem")
            rows.append((r.target.name, "up" if r.up else "DOWN", f"{r.duration:.1f} s", s.get("os", "")[:32],
                         _percent(s.get("memory_used_percent")), f"{fs[0]} {fs[1]:g}% free" if fs else "",
                         "" if s.get("updates_pending") is None else s["updates_pending"],
                         {True: "on", False: "OFF"}.get(s.get("antivirus_active"), ""),
                         (r.error or "; ".join(s.get("problems", [])))[:100]))
        print(table(("HOST", "STATE", "POLL", "OS", "MEM USED", "TIGHTEST DISK", "UPDATES", "AV", "PROBLEM"), rows))


def _percent(value) -> str:
    return "" if value is None else f"{value:g}%"


def cmd_list(args: argparse.Namespace) -> int:
    from custode.agent.farm.targets import targets_of
    from custode.agent.paths import state_path
    from custode.agent.state import State

    loaded = _load(args)
    targets = [t for t in targets_of(loaded.model) if not args.tenant or t.tenant == args.tenant]
    path = state_path(loaded.model)
    rows_by_host = {}
    if path.exists():
        state = State(path)
        try:
            rows_by_host = {r["host"]: r for r in state.query("SELECT * FROM farm_targets")}
        finally:
            state.close()
    now = current_time()
    down = 0
    lines = []
    for target in targets:
        row = rows_by_host.get(target.name)
        if row is None:
            lines.append((target.name, target.tenant, target.transport, "never polled", "", "", ""))
            continue
        down += 0 if row["up"] else 1
        summary = json.loads(row["summary"] or "{}")
        state_text = "up" if row["up"] else f"DOWN ({row['consecutive_failures']} polls)"
        last = human_age(now - row["last_poll_at"]) + " ago" if row["last_poll_at"] else ""
        detail = row["last_error"] if not row["up"] else "; ".join(summary.get("problems", []))
        lines.append((target.name, target.tenant, target.transport, state_text, last, summary.get("os", "")[:32],
                      (detail or "")[:100]))
    if args.format == "json":
        hosts = []
        for target in targets:
            row = rows_by_host.get(target.name)
            hosts.append({"host": target.name, "tenant": target.tenant, "transport": target.transport,
                          **({k: row[k] for k in row.keys() if k != "summary"} if row else {}),
                          "summary": json.loads(row["summary"]) if row else {}})
        print_document("hosts", hosts, loaded)
    else:
        print(sources_line(loaded))
        print(table(("HOST", "TENANT", "TRANSPORT", "STATE", "LAST POLL", "OS", "PROBLEM"), lines)
              if lines else "No hosts to poll: add them under hosts: (see README, 'Farm mode').")
    return 1 if down else 0


def _sources(choice: str) -> tuple[HistorySource, ...]:
    """``--source``: the polled hosts by default, as before the agent kept its own host's days."""
    return tuple(HistorySource) if choice == "all" else (HistorySource(choice),)


def cmd_report(args: argparse.Namespace) -> int:
    from custode.agent.farm.report import render, summarise
    from custode.agent.paths import state_path
    from custode.agent.state import State

    loaded = _load(args)
    end = args.to or today_rome()  # days are Europe/Rome days
    start = args.since or (date(args.year, 1, 1) if args.year else end - timedelta(days=364))
    if args.year and not args.to:
        end = date(args.year, 12, 31)
    path = state_path(loaded.model)
    if not path.exists():
        raise SystemExit(f"custode: no state database at {path}: farm mode has not run with this config")
    state = State(path)
    try:
        years = summarise(state, start, end, tenant=args.tenant, host=args.host, sources=_sources(args.source))
    finally:
        state.close()
    if args.format == "json":
        from dataclasses import asdict

        text = document("hosts", [asdict(year) for year in years], loaded, since=start.isoformat(),
                        until=end.isoformat())
    else:
        text = render(years, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write YYYY-MM-DD") from None


def add_commands(sub, epilog: str) -> None:
    farm = sub.add_parser("farm", help="Farm mode: poll remote hosts over SSH/WinRM and devices over SNMP, list "
                                       "them, yearly report.")
    farm_sub = farm.add_subparsers(dest="farm_command", metavar="SUBCOMMAND", required=True)

    poll = farm_sub.add_parser(
        "poll", epilog=epilog, help="Poll hosts once and print what they report; exit 1 if any is down.",
        description="Poll the configured hosts (recorded like a scheduled poll), or the --ssh/--winrm/--snmp "
                    "targets with no config and nothing recorded.")
    poll.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    poll.add_argument("--host", action="append", metavar="NAME", help="only this configured host (repeatable)")
    poll.add_argument("--tenant", metavar="TENANT", help="only this tenant's hosts")
    poll.add_argument("--ssh", action="append", type=_target_argument, metavar="USER@HOST[:PORT]",
                      help="a Linux target (repeatable)")
    poll.add_argument("--identity", type=Path, metavar="KEYFILE", help="--ssh: private key (else the SSH agent)")
    poll.add_argument("--known-hosts", type=Path, metavar="FILE",
                      help="--ssh: known_hosts with the targets' keys (default ~/.ssh/known_hosts)")
    poll.add_argument("--winrm", action="append", type=_target_argument, metavar="USER@HOST[:PORT]",
                      help="a Windows target over WinRM HTTPS (repeatable); password from --winrm-password-env")
    poll.add_argument("--winrm-password-env", default="CUSTODE_WINRM_PASSWORD", metavar="VARIABLE",
                      help="environment variable holding the WinRM password (default CUSTODE_WINRM_PASSWORD)")
    poll.add_argument("--ca-file", type=Path, metavar="FILE", help="--winrm: CA bundle of a private CA")
    poll.add_argument("--snmp", action="append", type=_snmp_argument, metavar="COMMUNITY@HOST[:PORT]",
                      help="an SNMP v2c device (repeatable); '@HOST' takes the community from --community-env "
                           "(a community in the argument is visible to other local users in ps)")
    poll.add_argument("--community-env", default="CUSTODE_SNMP_COMMUNITY", metavar="VARIABLE",
                      help="environment variable holding the v2c community for '@HOST' (default "
                           "CUSTODE_SNMP_COMMUNITY)")
    poll.add_argument("--snmp-v3", action="append", type=_snmp_argument, metavar="USER@HOST[:PORT]",
                      help="an SNMPv3 device (repeatable); keys from --snmp-auth-env/--snmp-priv-env")
    poll.add_argument("--snmp-auth-env", default="CUSTODE_SNMP_AUTH_KEY", metavar="VARIABLE",
                      help="--snmp-v3: variable with the auth passphrase (unset: noAuthNoPriv)")
    poll.add_argument("--snmp-priv-env", default="CUSTODE_SNMP_PRIV_KEY", metavar="VARIABLE",
                      help="--snmp-v3: variable with the privacy passphrase (unset: authNoPriv)")
    poll.add_argument("--snmp-auth-protocol", default="SHA",
                      choices=["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"])
    poll.add_argument("--snmp-priv-protocol", default="AES", choices=["DES", "AES", "AES192", "AES256"])
    poll.add_argument("--snmp-timeout", type=float, default=2.0, metavar="SECONDS",
                      help="--snmp: for each request (default 2)")
    poll.add_argument("--snmp-retries", type=int, default=1, metavar="N", help="--snmp: resends (default 1)")
    poll.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    poll.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="for the probe on each host")
    poll.add_argument("--workers", type=int, metavar="N", help="hosts polled at once (default farm.workers or 32)")
    poll.add_argument("--no-updates", action="store_true", help="skip pending updates and SMART (faster)")
    add_format(poll, ("table", "json", "prometheus"))
    poll.set_defaults(handler=cmd_poll)

    listing = farm_sub.add_parser("list", epilog=epilog, help="Each polled host's state from the last poll; exit 1 "
                                                              "if any is down.")
    listing.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    listing.add_argument("--tenant", metavar="TENANT")
    add_format(listing)
    listing.set_defaults(handler=cmd_list)

    report = farm_sub.add_parser(
        "report", epilog=epilog, help="The yearly analysis report: per host availability, CPU, memory, disks, "
                                      "antivirus, updates, disk health, from the daily history.")
    report.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    report.add_argument("--tenant", metavar="TENANT")
    report.add_argument("--host", metavar="NAME")
    report.add_argument("--source", choices=["farm", "agent", "all"], default="farm",
                        help="farm: the polled hosts (default); agent: this host, from the agent running here; "
                             "all: both")
    report.add_argument("--year", type=int, help="a calendar year (default: the last 365 days)")
    report.add_argument("--from", dest="since", type=_day, metavar="YYYY-MM-DD")
    report.add_argument("--to", type=_day, metavar="YYYY-MM-DD")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    report.set_defaults(handler=cmd_report)
