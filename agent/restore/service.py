"""Restore tests and coverage checks for the configured sets: run, certify, record, raise incidents.

Used by the agent's scheduler and by ``custode restore-test run NAME`` alike,
so a test run by hand leaves exactly the same proof as a scheduled one.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from custode.agent.clock import Clock, current_time
from custode.agent.config import Config
from custode.agent.fileutil import write_atomic
from custode.agent.incidents import CheckResult, Incidents
from custode.agent.restore.backends.base import Backend
from custode.agent.restore.config import RestoreSet
from custode.agent.restore.engine import RestoreRequest, RestoreTest
from custode.agent.restore.model import RestoreError, RestoreTrigger
from custode.agent.restore.sampling import SamplePolicy
from custode.agent.restore.store import RestoreStore
from custode.agent.state import State

log = logging.getLogger(__name__)

TEST_CHECK = "restore_test"
OVERDUE_CHECK = "restore_test_overdue"
COVERAGE_CHECK = "backup_coverage"
Audit = Callable[[str, str | None, dict], None]


def build_backend(name: str, test_set: RestoreSet, config: Config, data_dir: Path) -> Backend:
    """The set's backend, with its secret resolved now (a missing secret fails this test, not the agent)."""
    from custode.agent.secrets import SecretError

    try:
        password = test_set.password.resolve() if test_set.password else None
    except SecretError as exc:
        raise RestoreError(f"restore set {name}: repository password: {exc}") from None
    common = dict(binary=test_set.binary or test_set.backend, path_in_backup=test_set.path_in_backup,
                  extra_env=dict(test_set.env) or None, timeout=test_set.timeout, password=password)
    if test_set.backend == "restic":
        from custode.agent.restore.backends.restic import ResticBackend

        return ResticBackend(test_set.repository, test_set.source, cache_dir=str(data_dir / "cache" / "restic"),
                             **common)
    if test_set.backend == "borg":
        from custode.agent.restore.backends.borg import BorgBackend

        return BorgBackend(test_set.repository, test_set.source, **common)
    if test_set.backend == "mirror":
        from custode.agent.restore.backends.mirror import MirrorBackend

        return MirrorBackend(test_set.repository, test_set.source)
    from custode.agent.restore.backends.command import CommandBackend
    from custode.agent.transports import open_transport
    from custode.agent.transports.config import HostConfig

    host = config.hosts[test_set.host] if test_set.host else HostConfig(address="localhost",
                                                                                transport="local")
    templates = test_set.command
    assert templates is not None  # RestoreSet's validator requires it
    return CommandBackend(open_transport(test_set.host or "local", host), test_set.source,
                          snapshot_command=templates.snapshot, restore_command=templates.restore,
                          restored_path=templates.restored_path, list_command=templates.list,
                          version_command=templates.version, items_separator=templates.items_separator,
                          timeout=test_set.timeout)


def policy_of(test_set: RestoreSet) -> SamplePolicy:
    sample = test_set.sample
    return SamplePolicy(count=sample.count, max_bytes=sample.max_bytes, recent=sample.recent, seed=sample.seed)


@dataclass(frozen=True)
class SetStatus:
    name: str
    tenant: str
    backend: str
    last_success: float | None
    overdue: bool
    latest: sqlite3.Row | None
    """The set's last test (figures for metrics and tables), None when never tested."""

    @property
    def last_test(self) -> float | None:
        return self.latest["finished_at"] if self.latest else None

    @property
    def last_passed(self) -> bool | None:
        return bool(self.latest["passed"]) if self.latest else None

    @property
    def summary(self) -> str:
        return self.latest["summary"] if self.latest else "never tested"


class RestoreService:
    def __init__(self, config: Config, state: State, incidents: Incidents, audit: Audit, data_dir: Path,
                 clock: Clock = current_time) -> None:
        self.config = config
        self.section = config.restore_tests
        self.store = RestoreStore(state)
        self.incidents = incidents
        self.audit = audit
        self.data_dir = data_dir
        self.clock = clock

    def sets(self) -> dict[str, RestoreSet]:
        return {name: s for name, s in self.section.sets.items() if s.enabled}

    def covered_sets(self) -> dict[str, RestoreSet]:
        """Sets with a coverage: section (volumes to compare with)."""
        return {name: s for name, s in self.sets().items() if s.coverage and s.coverage.volumes}

    def tenant_of(self, test_set: RestoreSet) -> str:
        return test_set.tenant or self.config.agent.tenant

    # --- restore tests ----------------------------------------------------------------

    def run_test(self, name: str, trigger: str = RestoreTrigger.SCHEDULED) -> tuple[dict, Path | None]:
        """Run one set's test, keep the certificate, update the incident; return (certificate, JSON file)."""
        test_set = self.section.sets[name]
        tenant = self.tenant_of(test_set)
        max_backup_age = test_set.max_backup_age or self.section.max_backup_age
        try:
            backend = build_backend(name, test_set, self.config, self.data_dir)
        except RestoreError as exc:
            backend = _Unavailable(test_set.backend, str(exc))
        request = RestoreRequest(set_name=name, backend=backend, source=test_set.source,
                              repository=test_set.repository or (test_set.host or "local"), tenant=tenant,
                              host=test_set.host, policy=policy_of(test_set), trigger=trigger,
                              scratch_parent=str(self.section.scratch_dir or self.data_dir / "restore")
                              if test_set.backend != "command" else None,
                              max_backup_age=max_backup_age)
        certificate = RestoreTest(request, clock=self.clock).run()
        path = self._save(tenant, certificate)
        self.store.record_test(tenant, certificate, str(path) if path else None)
        self.audit("restore.test", f"restore/{name}", certificate)
        self._observe_test(name, tenant, certificate, path)
        self.check_overdue()
        return certificate, path

    def _save(self, tenant: str, certificate: dict) -> Path | None:
        """JSON, HTML and text side by side; a failure to write them is logged, the audit log still has it all."""
        from custode.agent.restore.page import render_html, render_text

        folder = Path(self.section.certificates_dir or self.data_dir / "certificates") / tenant / certificate["set"]
        stamp = datetime.fromisoformat(certificate["started_at"]).strftime("%Y%m%dT%H%M%SZ")
        base = folder / f"{stamp}-{certificate['id'][:8]}"
        tenant_config = self.config.tenants.get(tenant)
        language = tenant_config.language if tenant_config else "it"
        name = tenant_config.name if tenant_config else None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(base.with_suffix(".json"), json.dumps(certificate, ensure_ascii=False, indent=1)
                         .encode("utf-8"), mode=0o640)
            write_atomic(base.with_suffix(".html"), render_html(certificate, language, name).encode("utf-8"),
                         mode=0o640)
            write_atomic(base.with_suffix(".txt"), render_text(certificate, language, name).encode("utf-8"),
                         mode=0o640)
        except OSError as exc:
            log.error("cannot write the restore certificate files; the audit log keeps the certificate",
                      extra={"folder": str(folder), "error": str(exc)})
            return None
        return base.with_suffix(".json")

    def _observe_test(self, name: str, tenant: str, certificate: dict, path: Path | None) -> None:
        where = f" (certificate {path.with_suffix('.html')})" if path else ""
        if certificate["passed"]:
            result = CheckResult(tenant, TEST_CHECK, name, "ok",
                                 f"restore test of {name} passed: {certificate['files_verified']} files verified")
        else:
            problems = certificate["errors"][:2] + [f"{len(certificate['mismatches'])} files failed: "
                                                    + ", ".join(certificate["mismatches"][:5])] \
                * bool(certificate["mismatches"])
            result = CheckResult(tenant, TEST_CHECK, name, "critical",
                                 f"restore test of {name} FAILED, the backup cannot be trusted: "
                                 + "; ".join(problems) + where,
                                 {"certificate": certificate["id"], "mismatches": certificate["mismatches"][:50],
                                  "errors": certificate["errors"][:10]})
        self.incidents.observe(result)

    def max_age_of(self, test_set: RestoreSet) -> float:
        return test_set.max_age or self.section.max_age

    def check_overdue(self) -> None:
        """One incident per set without a passed test within its max_age (never tested counts too)."""
        for status in self.statuses(only_enabled=True):
            limit = self.max_age_of(self.section.sets[status.name])
            if not status.overdue:
                self.incidents.observe(CheckResult(status.tenant, OVERDUE_CHECK, status.name, "ok",
                                                   f"restore test of {status.name} is current"))
                continue
            last = status.last_success
            since = "never passed" if last is None else f"last passed {(self.clock() - last) / 86400:.0f} days ago"
            self.incidents.observe(CheckResult(
                status.tenant, OVERDUE_CHECK, status.name, "warning",
                f"restore test of {status.name} is overdue ({since}; the policy asks for one every "
                f"{limit / 86400:g} days): run 'custode restore-test run {status.name}'"))

    # --- status and metrics ----------------------------------------------------------

    def statuses(self, only_enabled: bool = False) -> list[SetStatus]:
        """Every set's last test and whether it is overdue, from two queries."""
        now = self.clock()
        latest, passed = self.store.latest(), self.store.last_passed()
        sets = self.sets() if only_enabled else self.section.sets
        result = []
        for name, test_set in sets.items():
            last_success = passed.get(name)
            overdue = test_set.enabled and (last_success is None or now - last_success > self.max_age_of(test_set))
            result.append(SetStatus(name, self.tenant_of(test_set), test_set.backend, last_success, overdue,
                                    latest.get(name)))
        return result

    # --- coverage ---------------------------------------------------------------------

    def coverage(self, name: str, record: bool = True):
        """Check one set's coverage now; with ``record``, store it and raise the incident for new gaps."""
        from custode.agent.restore.coverage import check_coverage

        test_set = self.section.sets[name]
        tenant = self.tenant_of(test_set)
        included = list(test_set.coverage.include) if test_set.coverage and test_set.coverage.include else None
        errors: list[str] = []
        if included is None:
            included = self._included_by_tool(name, test_set, errors)
        report = check_coverage(included, coverage_rules(test_set))
        report.errors[:0] = errors
        if record:
            now = self.clock()
            new = self.store.record_coverage(name, tenant, included, report.items, report.truncated, report.errors,
                                             now)
            self._observe_coverage(name, tenant, report, new)
        return report

    def _included_by_tool(self, name: str, test_set: RestoreSet, errors: list[str]) -> list[str]:
        """The backup's own list of paths (restic/borg snapshot); the set's source when the tool cannot say."""
        if test_set.backend in ("restic", "borg"):
            try:
                backend = build_backend(name, test_set, self.config, self.data_dir)
                try:
                    paths = backend.latest_snapshot().paths
                finally:
                    backend.close()
                if paths:
                    return paths
            except RestoreError as exc:
                errors.append(f"cannot read what the backup includes ({exc}); using the set's source")
        return [test_set.source]

    def _observe_coverage(self, name: str, tenant: str, report, new) -> None:
        unprotected = report.unprotected
        if not unprotected:
            self.incidents.observe(CheckResult(tenant, COVERAGE_CHECK, name, "ok",
                                               f"everything found on the data volumes is in backup set {name}"))
            return
        shown = ", ".join(item.path for item in unprotected[:5]) + (" …" if len(unprotected) > 5 else "")
        fresh = f"; new since the last check: {', '.join(r.path for r in new[:5])}" if new else ""
        self.incidents.observe(CheckResult(
            tenant, COVERAGE_CHECK, name, "warning",
            f"{len(unprotected)} paths on the data volumes are not in backup set {name}: {shown}{fresh}. Add them "
            "to the backup, or to coverage.exclude if that is deliberate",
            {"unprotected": [item.path for item in unprotected[:100]]}))


def coverage_rules(test_set: RestoreSet):
    from custode.agent.restore.coverage import CoverageRules

    settings = test_set.coverage
    if settings is None:
        raise ValueError("this set has no coverage: section")
    return CoverageRules(volumes=list(settings.volumes), depth=settings.depth,
                         application_dirs=list(settings.application_dirs),
                         database_patterns=list(settings.database_patterns), exclude=list(settings.exclude),
                         max_depth=settings.max_depth, max_entries=settings.max_entries)


class _Unavailable(Backend):
    """Stands in for a backend that could not even be built, so the failure still gets a certificate."""

    def __init__(self, kind: str, reason: str) -> None:
        from custode.agent.restore.files import LocalFileSystem

        self.kind = kind
        self.reason = reason
        self.fs = LocalFileSystem()

    def tool_version(self) -> str:
        raise RestoreError(self.reason)

    def latest_snapshot(self):  # pragma: no cover - tool_version raises first
        raise RestoreError(self.reason)

    def manifest(self, snapshot, paths):  # pragma: no cover
        raise RestoreError(self.reason)

    def restore(self, snapshot, paths, scratch):  # pragma: no cover
        raise RestoreError(self.reason)
