"""``custode restore-test run|list|show`` and ``custode backups coverage``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Iterator

from custode.agent.cli_output import add_format, print_document, sources_line
from custode.agent.table import human_age, human_bytes, table

BACKENDS = ("restic", "borg", "mirror")


def _load(args: argparse.Namespace):
    from custode.agent.config_loader import load

    return load(args.config)


@contextlib.contextmanager
def _service(loaded) -> Iterator:
    """The restore service with the same records (audit, incidents) a scheduled test leaves."""
    from custode.agent.paths import data_dir
    from custode.agent.recording import open_recording
    from custode.agent.restore.service import RestoreService

    with open_recording(loaded.model) as recording:
        yield RestoreService(loaded.model, recording.state, recording.incidents, recording.audit,
                             data_dir(loaded.model))


def _unknown_set(loaded, name: str) -> SystemExit:
    from custode.agent.suggest import did_you_mean

    known = sorted(loaded.model.restore_tests.sets)
    hint = did_you_mean(name, known)
    return SystemExit(f"custode: no restore set {name!r} under restore_tests.sets; "
                      + (f"did you mean {hint!r}?" if hint else f"defined: {', '.join(known) or 'none'}"))


def _adhoc_request(args: argparse.Namespace):
    """A one-off test from the command line: no config, no state, just the certificate."""
    from custode.agent.restore.engine import RestoreRequest
    from custode.agent.restore.model import RestoreTrigger
    from custode.agent.restore.sampling import SamplePolicy

    missing = [flag for flag, value in (("--backend", args.backend), ("--repo", args.repo),
                                        ("--source", args.source)) if not value]
    if missing:
        raise SystemExit("custode: restore-test run needs a set NAME from the config, or "
                         f"{', '.join(missing)} for a one-off test (see 'custode restore-test run --help')")
    source = str(Path(args.source).resolve())
    if args.backend == "mirror":
        from custode.agent.restore.backends.mirror import MirrorBackend

        backend = MirrorBackend(str(Path(args.repo).resolve()), source)
    elif args.backend == "restic":
        from custode.agent.restore.backends.restic import ResticBackend

        backend = ResticBackend(args.repo, source, password_file=args.password_file)
    else:
        from custode.agent.restore.backends.borg import BorgBackend

        backend = BorgBackend(args.repo, source, password_file=args.password_file)
    policy = SamplePolicy(count=args.sample, max_bytes=args.max_bytes, recent=min(5, args.sample), seed=args.seed)
    return RestoreRequest(set_name="adhoc", backend=backend, source=source, repository=args.repo, policy=policy,
                          trigger=RestoreTrigger.MANUAL)


def cmd_run(args: argparse.Namespace) -> int:
    from custode.agent.restore.engine import RestoreTest
    from custode.agent.restore.model import RestoreTrigger

    path = None
    language = "it"
    if args.name:
        loaded = _load(args)
        if args.name not in loaded.model.restore_tests.sets:
            raise _unknown_set(loaded, args.name)
        with _service(loaded) as service:
            certificate, path = service.run_test(args.name, RestoreTrigger.MANUAL)
        tenant = loaded.model.tenants.get(certificate["tenant"] or "")
        language = tenant.language if tenant else "it"
    else:
        if args.password_file and not Path(args.password_file).is_file():
            raise SystemExit(f"custode: password file {args.password_file} does not exist")
        certificate = RestoreTest(_adhoc_request(args)).run()
    if args.html:
        from custode.agent.restore.page import render_html

        Path(args.html).write_text(render_html(certificate, language), encoding="utf-8")
    if args.json:
        print(json.dumps(certificate, ensure_ascii=False))
    else:
        from custode.agent.restore.page import render_text

        sys.stdout.write(render_text(certificate, language))
        if path:
            print(f"\nCertificate: {path} (and .html, .txt beside it); also in the audit log.")
    return 0 if certificate["passed"] else 1


def _local(ts: float | None) -> str:
    from custode.agent.calendar import ROME

    return "-" if ts is None else f"{datetime.fromtimestamp(ts, ROME):%Y-%m-%d %H:%M %Z}"


def cmd_list(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if not loaded.model.restore_tests.sets and args.format == "json":
        print_document("sets", [], loaded)
        return 0
    if not loaded.model.restore_tests.sets:
        print("No backup sets under restore_tests.sets; see README, 'Restore tests'.")
        return 0
    with _service(loaded) as service:
        statuses = [s for s in service.statuses() if not args.tenant or s.tenant == args.tenant]
        coverage = service.store.coverage_runs()
    now = service.clock()
    if args.format == "json":
        print_document("sets", [{"set": s.name, "tenant": s.tenant, "backend": s.backend, "last_test": s.last_test,
                                 "last_passed": s.last_passed, "last_success": s.last_success, "overdue": s.overdue,
                                 "summary": s.summary,
                                 "unprotected": coverage[s.name]["unprotected"] if s.name in coverage else None}
                                for s in statuses], loaded)
        return 0
    print(sources_line(loaded))
    rows = []
    for s in statuses:
        verdict = "-" if s.last_passed is None else "passed" if s.last_passed else "FAILED"
        run = coverage.get(s.name)
        rows.append((s.tenant, s.name, s.backend, _local(s.last_test), verdict,
                     _local(s.last_success) + (f" ({human_age(now - s.last_success)})" if s.last_success else ""),
                     "OVERDUE" if s.overdue else "no", "-" if run is None else run["unprotected"]))
    print(table(["TENANT", "SET", "BACKEND", "LAST TEST", "RESULT", "LAST PASSED", "OVERDUE", "UNPROTECTED"], rows))
    return 1 if any(s.overdue or s.last_passed is False for s in statuses) else 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print a stored certificate: by id (or its first characters), or the latest of a set."""
    from custode.agent.restore.page import render_html, render_text

    loaded = _load(args)
    with _service(loaded) as service:
        row = service.store.find(args.what)
        if row is None and args.what in loaded.model.restore_tests.sets:
            history = service.store.history(args.what, limit=1)
            row = history[0] if history else None
    if row is None:
        raise SystemExit(f"custode: no certificate {args.what!r}: give a certificate id from 'custode restore-test "
                         "list --json' or the audit log, or a set name that has been tested")
    if not row["certificate_path"] or not Path(row["certificate_path"]).is_file():
        raise SystemExit(f"custode: the certificate file of {row['certificate_id']} is gone "
                         f"({row['certificate_path']}); 'custode audit export' still has the full record")
    certificate = json.loads(Path(row["certificate_path"]).read_text(encoding="utf-8"))
    tenant = loaded.model.tenants.get(row["tenant"])
    language = args.language or (tenant.language if tenant else "it")
    if args.format == "json":
        print(json.dumps(certificate, ensure_ascii=False, indent=1))
    elif args.format == "html":
        sys.stdout.write(render_html(certificate, language, tenant.name if tenant else None))
    else:
        sys.stdout.write(render_text(certificate, language, tenant.name if tenant else None))
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    """The yearly list: what each set backs up and what on its volumes it does not."""
    from custode.agent.restore.coverage import write_csv

    loaded = _load(args)
    with _service(loaded) as service:
        names = [n for n, s in service.covered_sets().items()
                 if (not args.tenant or service.tenant_of(s) == args.tenant) and (not args.set or n == args.set)]
        if not names:
            print("No backup set to check: give restore_tests.sets.<name>.coverage.volumes in the config "
                  "(see README, 'Restore tests')" + (f" for tenant {args.tenant}" if args.tenant else "") + ".",
                  file=sys.stderr)
            return 1
        reports = [(service.tenant_of(service.section.sets[n]), n, service.coverage(n, record=not args.no_record))
                   for n in names]
    if args.format == "csv":
        write_csv(reports, sys.stdout)
    elif args.format == "json":
        print_document("paths", [{"tenant": tenant, "set": name, "path": item.path, "kind": item.kind,
                                  "protected": item.protected, "covered_by": item.covered_by,
                                  "size_bytes": item.size_bytes, "reason": item.reason}
                                 for tenant, name, report in reports for item in report.items], loaded)
    else:
        print(sources_line(loaded))
        for tenant, name, report in reports:
            print(f"{tenant} / {name}: backs up {', '.join(report.included) or '-'}")
            rows = [("yes" if i.protected else "NO", i.kind, i.path, "-" if i.size_bytes is None
                     else human_bytes(i.size_bytes), i.reason) for i in report.items]
            print(table(["PROTECTED", "KIND", "PATH", "SIZE", "WHY"], rows) if rows else "  (nothing found)")
            for error in report.errors:
                print(f"  warning: {error}")
            print()
    return 1 if any(report.unprotected for _, _, report in reports) else 0


def add_commands(sub, backups_sub, epilog: str) -> None:
    """Register ``restore-test`` on the top level and ``coverage`` under ``backups``."""
    restore = sub.add_parser("restore-test", help="Restore tests: run one, list the sets, show a certificate.")
    restore_sub = restore.add_subparsers(dest="restore_command", metavar="SUBCOMMAND", required=True)
    run = restore_sub.add_parser(
        "run", epilog=epilog, help="Run a restore test now and print its certificate; exit 0 only if it passed.",
        description="Run the restore test of set NAME from the config (recorded, certified, audited), or a one-off "
                    "test with --backend, --repo and --source and no config.")
    run.add_argument("name", nargs="?", metavar="NAME", help="a set under restore_tests.sets")
    run.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    run.add_argument("--backend", choices=BACKENDS, help="one-off test: the backup tool")
    run.add_argument("--repo", metavar="PATH", help="one-off test: repository (restic, borg) or copy folder (mirror)")
    run.add_argument("--source", metavar="DIR", help="one-off test: the backed-up folder")
    run.add_argument("--password-file", metavar="FILE", help="repository password (else RESTIC_PASSWORD / "
                                                             "BORG_PASSPHRASE from the environment)")
    run.add_argument("--sample", type=int, default=50, metavar="N", help="files to restore (default 50)")
    run.add_argument("--max-bytes", type=_size, default=1024 ** 3, metavar="SIZE",
                     help="byte budget, e.g. 500MB (default 1GiB)")
    run.add_argument("--seed", type=int, help="fixed random seed: the same files again")
    run.add_argument("--json", action="store_true", help="print the certificate as one JSON object")
    run.add_argument("--html", metavar="FILE", help="also write the readable certificate page here")
    run.set_defaults(handler=cmd_run)

    listing = restore_sub.add_parser("list", epilog=epilog, help="Each set: last test, result, overdue, "
                                                                  "unprotected paths. Exit 1 if any failed or "
                                                                  "is overdue.")
    listing.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    listing.add_argument("--tenant", metavar="TENANT")
    add_format(listing)
    listing.set_defaults(handler=cmd_list)

    show = restore_sub.add_parser("show", epilog=epilog, help="Print a stored certificate (text, HTML or JSON).")
    show.add_argument("what", metavar="ID|SET", help="certificate id (or its start), or a set: its latest")
    show.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    show.add_argument("--format", choices=["text", "html", "json"], default="text")
    show.add_argument("--language", choices=["it", "en"], help="default: the tenant's language")
    show.set_defaults(handler=cmd_show)

    coverage = backups_sub.add_parser(
        "coverage", epilog=epilog, help="What each backup set includes and what on the data volumes it does not "
                                        "(the yearly list). Exit 1 if anything is unprotected.")
    coverage.add_argument("--config", "-c", metavar="PATH", help="config file (YAML)")
    coverage.add_argument("--tenant", metavar="TENANT", help="only this tenant's sets")
    coverage.add_argument("--set", metavar="NAME", help="only this set")
    coverage.add_argument("--format", choices=["table", "csv", "json"], default="table")
    coverage.add_argument("--no-record", action="store_true",
                          help="do not store the result (no incident, no metric update)")
    coverage.set_defaults(handler=cmd_coverage)


def _size(text: str) -> int:
    from custode.agent.sizes import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
