"""``custode probe URL …`` (ad hoc, nothing recorded) and ``custode probe --config C`` (the configured targets)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from custode.agent.cli_output import add_format, print_document, sources_line
from custode.agent.table import table

ADHOC_WORKERS = 32
"""URLs given on the command line probed at the same time."""

if TYPE_CHECKING:
    from custode.agent.blackbox.base import ProbeResult
    from custode.agent.blackbox.service import ProbeService
    from custode.agent.blackbox.target import Options, Target
    from custode.agent.config_loader import LoadedConfig


def _url_argument(value: str) -> str:
    """argparse type: a malformed URL is a usage error before anything connects."""
    from custode.agent.blackbox.urls import target_from_url

    try:
        target_from_url(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _regex_argument(value: str) -> str:
    import re

    try:
        re.compile(value)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a regular expression: {exc}") from None
    return value


def _adhoc_targets(args: argparse.Namespace) -> list[Target]:
    from custode.agent.blackbox.config import HttpOptions, TcpOptions
    from custode.agent.blackbox.target import adhoc_target
    from custode.agent.blackbox.urls import target_from_url
    from custode.agent.config import DEFAULT_TENANT

    targets = []
    for url in args.urls:
        kind = target_from_url(url).kind
        options: Options | None = None
        if kind == "http":
            options = HttpOptions(ca_file=args.ca_file, body=args.body)
        elif kind == "tcp":
            options = TcpOptions(tls=args.tls or args.ca_file is not None, ca_file=args.ca_file)
        targets.append(adhoc_target(url, DEFAULT_TENANT, timeout=args.timeout, options=options))
    names = [t.name for t in targets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SystemExit(f"custode: {twice[0]} given twice")
    return targets


def _configured_targets(loaded: LoadedConfig, args: argparse.Namespace) -> list[Target]:
    from custode.agent.blackbox.target import targets_of
    from custode.agent.suggest import did_you_mean

    targets = targets_of(loaded.model)
    known = [t.name for t in targets]
    for name in args.probe or []:
        if name not in known:
            hint = did_you_mean(name, known)
            raise SystemExit(f"custode: no probe {name!r} in the config; "
                             + (f"did you mean {hint!r}?" if hint else f"probes: {', '.join(known) or 'none'}"))
    return [t for t in targets if (not args.probe or t.name in args.probe)
            and (not args.tenant or t.tenant == args.tenant)]


def cmd_probe(args: argparse.Namespace) -> int:
    from custode.agent.blackbox.service import probe_now

    if args.urls and (args.config or args.tenant or args.probe):
        raise SystemExit("custode: --config/--tenant/--probe choose the configured probes; with URLs the targets "
                         "are the ones given (no config, nothing recorded)")
    if not args.urls and not args.config:
        raise SystemExit("custode: give URLs to probe (https://host/, tcp://host:port, icmp://host, "
                         "dns://server/name?type=A), or --config with probes.targets")
    if args.urls:
        targets = _adhoc_targets(args)
        results = probe_now(targets, workers=min(len(targets), ADHOC_WORKERS))
        _print(results, args.format, None, None)
        return 0 if all(r.success for r in results) else 1
    from custode.agent.config_loader import load

    loaded = load(args.config)
    targets = _configured_targets(loaded, args)
    if not targets:
        raise SystemExit("custode: nothing to probe: the config has no probes.targets"
                         + (f" of tenant {args.tenant}" if args.tenant else "") + " (see README, 'Service probes')")
    results = probe_now(targets, workers=loaded.model.probes.workers)
    from custode.agent.blackbox.service import ProbeService
    from custode.agent.recording import open_recording

    with open_recording(loaded.model) as recording:  # the same records as a scheduled run
        service = ProbeService(loaded.model, recording.state, recording.incidents)
        service.handle(results)
        _print(results, args.format, loaded, service)
    return 0 if all(r.success for r in results) else 1


def _detail(result: ProbeResult) -> str:
    from custode.agent.blackbox.checks import when

    parts = []
    if result.status_code is not None:
        parts.append(f"status {result.status_code}")
    if result.tls_version:
        parts.append(result.tls_version)
    if result.cert_expiry is not None:
        parts.append(f"certificate until {when(result.cert_expiry)}")
    if result.ip_address:
        parts.append(result.ip_address)
    return ", ".join(parts)


def _print(results: list[ProbeResult], fmt: str, loaded: LoadedConfig | None,
           service: ProbeService | None) -> None:
    from custode.agent.blackbox.metrics import merged, probe_families

    if fmt == "prometheus":
        from custode.agent.metric_cache import MetricCache

        if service is not None:
            groups = [service.families(r) for r in results]
        elif len(results) == 1:  # exactly blackbox_exporter's /probe?target=… page
            groups = [probe_families(results[0], {}, custode=False)]
        else:
            groups = [probe_families(r, {"target": r.target.url}, custode=False) for r in results]
        cache = MetricCache()
        cache.update("probes", merged(groups))
        sys.stdout.write(cache.exposition.plain.decode())
    elif fmt == "json":
        items = [{"probe": r.target.name, "tenant": r.target.tenant, "kind": r.target.kind, "target": r.target.url,
                  "success": r.success, "started_at": r.started_at, "duration": round(r.duration, 4),
                  "error": r.error, "note": r.note, "ip_protocol": r.ip_protocol, "ip_address": r.ip_address,
                  "status_code": r.status_code, "tls_version": r.tls_version,
                  "certificate_expires_at": r.cert_expiry,
                  "series": [{"name": s.name, "labels": s.labels, "value": s.value} for s in r.series]}
                 for r in results]
        print_document("probes", items, loaded)
    else:
        if loaded is not None:
            print(sources_line(loaded))
        rows = [(r.target.name if loaded is not None else r.target.url, "up" if r.success else "DOWN",
                 f"{r.duration:.3f} s", _detail(r), (r.error or r.note or "")[:120]) for r in results]
        print(table(("PROBE" if loaded is not None else "TARGET", "STATE", "TIME", "DETAIL", "PROBLEM"), rows))


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    probe = sub.add_parser(
        "probe", epilog=epilog, help="Probe services like blackbox_exporter (HTTP(S), TCP, ICMP, DNS); exit 1 if any "
                                     "fails.",
        description="Probe the URLs given (no config, nothing recorded), or the config's probes.targets (recorded "
                    "like a scheduled run: states, daily rows, incidents). --format prometheus prints the series "
                    "blackbox_exporter would.")
    probe.add_argument("urls", nargs="*", type=_url_argument, metavar="URL",
                       help="https://host/path, http://host:port/, tcp://host:port, icmp://host, "
                            "dns://server[:port]/name?type=A")
    probe.add_argument("--config", "-c", metavar="PATH", help="config file (YAML): probe its probes.targets")
    probe.add_argument("--tenant", metavar="TENANT", help="--config: only this tenant's probes")
    probe.add_argument("--probe", action="append", metavar="NAME", help="--config: only this probe (repeatable)")
    probe.add_argument("--ca-file", metavar="FILE", help="https/tcp: CA certificates of a private CA (then only "
                                                         "these are trusted)")
    probe.add_argument("--tls", action="store_true", help="tcp://: a TLS handshake after the connect")
    probe.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                       help="for each probe (default 10)")
    probe.add_argument("--body", type=_regex_argument, metavar="REGEX", help="http: a regex the body must match")
    add_format(probe, ("table", "json", "prometheus"))
    probe.set_defaults(handler=cmd_probe)
