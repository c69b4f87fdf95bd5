"""One comune's service-level report for a period: compliance, penalty exposure, and the cases behind them.

:func:`tenant_report` is pure (cases, release facts, config, ``now``);
:func:`load_tenant_report` reads the state DB for it. :func:`as_json` is the
one shape every output is drawn from: the JSON document itself, the table for
people and the CSV (:mod:`custode.agent.service_levels.render`), and the
Grafana figures (:mod:`custode.agent.service_levels.metrics`), so they cannot
disagree. Times in it are ISO 8601 in Europe/Rome with their offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from custode.agent.cli_output import iso
from custode.agent.service_levels.cases import Case, StatusReading, cases_of
from custode.agent.service_levels.compliance import (
    Bucket,
    CaseResult,
    LevelCompliance,
    TenantCompliance,
    bucket_spans,
    compliance,
)
from custode.agent.service_levels.penalties import (
    Charge,
    ContractCharge,
    Exposure,
    NotEvaluated,
    ReleaseFacts,
    release_charges,
    ticket_charges,
    wants_releases,
)
from custode.agent.service_levels.period import Span, months_of

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.state import State


@dataclass
class TenantReport:
    tenant: str
    name: str
    compliance: TenantCompliance
    charges: list[Charge]
    not_evaluated: list[NotEvaluated]
    releases: ReleaseFacts | None
    """None when the tenant's table has no penalty on releases: runs are then not looked at."""
    release_charges: list[ContractCharge] = field(default_factory=list)
    now: float = 0.0

    @property
    def period(self) -> Span:
        return self.compliance.period

    @property
    def empty(self) -> bool:
        return not self.compliance.cases


def tenant_report(config: "Config", tenant: str, cases: list[Case], releases: ReleaseFacts | None, period: Span,
                  now: float) -> TenantReport:
    """The report from what :func:`load_tenant_report` read; pure."""
    judged = compliance(config, tenant, cases, period, now)
    charges, skipped = ticket_charges(config, tenant, judged.cases)
    own = config.tenants.get(tenant)
    contract = release_charges(judged.table, releases) if releases is not None else []
    return TenantReport(tenant, own.name if own is not None else tenant, judged, charges, skipped, releases,
                        contract, now)


def load_tenant_report(config: "Config", state: "State", tenant: str, period: Span, now: float) -> TenantReport:
    """Read the tenant's tickets opened in ``period`` (with their replacements) and releases, then report."""
    from custode.agent.service_levels.compliance import tables
    from custode.agent.service_levels.releases import release_facts
    from custode.agent.tickets import store

    rows = store.compliance_rows(state, tenant, period.start_ts, period.end_ts)
    cases = cases_of(rows, StatusReading(config))
    table = tables(config, tenant)[0]
    releases = release_facts(config, state, tenant, period) if wants_releases(table) else None
    return tenant_report(config, tenant, cases, releases, period, now)


def known_tenants(config: "Config") -> list[str]:
    """The tenants a report may be asked for: the configured ones, or the implicit default of a one-comune install."""
    from custode.agent.config import DEFAULT_TENANT

    return sorted(config.tenants) or [DEFAULT_TENANT]


def default_tenants(config: "Config") -> list[str]:
    """The tenants reported when none is named: those that file tickets or have a penalty on releases."""
    from custode.agent.service_levels.compliance import tables

    chosen = [name for name, tenant in sorted(config.tenants.items())
              if tenant.tickets.backend != "none" or wants_releases(tables(config, name)[0])]
    return chosen or known_tenants(config)


# --- the JSON shape ---------------------------------------------------------------------------------

def _exposure(charges: list[Charge] | list[ContractCharge]) -> dict[str, Any]:
    total = Exposure()
    for item in charges:
        total.add(item.euros_min, item.euros_max)
    return {"euros_min": round(total.euros_min, 2), "euros_max": round(total.euros_max, 2),
            "charges": total.charges, "unpriced": total.unpriced}


def _bucket(level: LevelCompliance, bucket: Bucket, charges: list[Charge]) -> dict[str, Any]:
    threshold = level.level.threshold
    mine = [c for c in charges if bucket.span.contains(c.result.case.opened_at)]
    out: dict[str, Any] = {"period": bucket.span.key, "kind": bucket.span.kind, "start": iso(bucket.span.start),
                           "end": iso(bucket.span.end), "complete": bucket.complete, "opened": bucket.opened}
    for kind, figures in bucket.kinds.items():
        share = figures.share
        out[kind] = {"within": figures.within, "late": figures.late, "not_known": figures.not_known,
                     "open": figures.open, "no_due": figures.no_due, "decided": figures.decided,
                     "share": share, "met": figures.met(threshold)}
    out["met"] = bucket.met(threshold)
    out["exposure"] = _exposure(mine)
    return out


def _level(report: TenantReport, level: LevelCompliance) -> dict[str, Any]:
    ref = level.level
    spec = ref.spec
    charges = [c for c in report.charges if (c.level.table, c.level.key) == (ref.table, ref.key)]
    return {"level": ref.key, "label": ref.label, "table": ref.table, "in_table": spec is not None,
            "priority": spec.priority if spec is not None else None,
            "targets": {k: spec.target(k).describe("en") for k in ref.kinds()} if spec is not None else {},
            "threshold": ref.threshold, "threshold_from": ref.threshold_from, "kinds": list(level.kinds),
            "buckets": [_bucket(level, b, charges) for b in level.buckets]}


def _case(result: CaseResult) -> dict[str, Any]:
    case = result.case
    out: dict[str, Any] = {"ticket": case.first.id, "tickets": [t.id for t in case.tickets], "refs": case.refs,
                           "key": case.first.key, "backend": case.first.backend, "level": result.level.key,
                           "table": result.level.table, "opened_at": iso(case.opened_at),
                           "recovered_at": iso(case.recovered_at()), "reopened": case.first.reopened}
    for kind, judgement in result.judgements.items():
        out[kind] = {"outcome": str(judgement.outcome), "due_at": iso(judgement.due_at),
                     "met_at": iso(judgement.met_at), "late_until": iso(judgement.late_until),
                     "running": judgement.running, "why": judgement.why}
    return out


def _charge(item: Charge, period: Span) -> dict[str, Any]:
    judgement, rule, case = item.judgement, item.rule, item.result.case
    month = next((m.key for m in months_of(period) if m.contains(case.opened_at)), period.key)
    return {"ticket": case.first.id, "refs": case.refs, "key": case.first.key, "level": item.level.key,
            "label": item.level.label, "target": item.kind, "month": month, "opened_at": iso(case.opened_at),
            "due_at": iso(judgement.due_at), "met_at": iso(judgement.met_at),
            "late_until": iso(judgement.late_until), "running": judgement.running,
            "late_seconds": round((judgement.late_until or judgement.due_at) - judgement.due_at),
            "per": rule.per, "slot": rule.slot.describe("en") if rule.slot is not None else None,
            "units": item.units, "amount": rule.amount, "amount_max": rule.amount_max, "max_total": rule.max_total,
            "euros_min": item.euros_min, "euros_max": item.euros_max, "capped": item.capped, "note": rule.note,
            "why": item.why}


def _releases(report: TenantReport) -> dict[str, Any] | None:
    facts = report.releases
    if facts is None:
        return None
    penalties = [p for p in report.compliance.table.penalties if p.event == "unannounced_release"]
    runs = [{"run": r.run_id, "window": r.window, "application": r.application, "started_at": iso(r.started_at),
             "window_opens_at": iso(r.window_start), "trigger": r.trigger, "status": r.status,
             "announced_at": iso(r.announced_at), "evaluated": r.evaluated, "unannounced": r.unannounced,
             "why": r.why} for r in facts.releases]
    charges = [{"run": c.release.run_id, "window": c.release.window, "started_at": iso(c.release.started_at),
                "euros_min": c.euros_min, "euros_max": c.euros_max, "note": c.penalty.note, "why": c.why}
               for c in report.release_charges]
    buckets = []
    for span in (s for s in bucket_spans(report.period) if s.start_ts <= report.now):
        inside = [c for c in report.release_charges if span.contains(c.release.started_at)]
        buckets.append({"period": span.key, "kind": span.kind,
                        "releases": sum(1 for r in facts.releases if span.contains(r.started_at)),
                        "unannounced": len(inside), "exposure": _exposure(inside) if facts.evaluated else None})
    return {"evaluated": facts.evaluated, "reason": facts.reason,
            "penalty": [{"amount": p.amount, "amount_max": p.amount_max, "note": p.note} for p in penalties],
            "runs": runs, "charges": charges, "buckets": buckets,
            "exposure": _exposure(report.release_charges) if facts.evaluated else None}


def as_json(report: TenantReport) -> dict[str, Any]:
    """The whole report as plain data (ISO times): the item of ``custode sla report --format json``."""
    period = report.period
    judged = report.compliance
    opened = len(judged.cases)
    message = None if opened else f"No tickets opened in {period.key}: no service level to measure."
    return {
        "tenant": report.tenant, "name": report.name, "contract": judged.table.contract, "table": judged.table_kind,
        "period": period.key, "start": iso(period.start), "end": iso(period.end),
        "complete": period.complete(report.now), "opened": opened, "empty": not opened, "message": message,
        "levels": [_level(report, level) for level in judged.levels],
        "charges": [_charge(c, period) for c in report.charges],
        "not_evaluated": [{"ticket": n.result.case.first.id, "refs": n.result.case.refs, "level": n.result.level.key,
                           "target": n.kind, "note": n.rule.note, "why": n.why} for n in report.not_evaluated],
        "releases": _releases(report),
        "exposure": {"tickets": _exposure(report.charges),
                     "releases": _exposure(report.release_charges) if report.releases is not None
                     and report.releases.evaluated else None},
        "cases": [_case(r) for r in judged.cases],
    }
