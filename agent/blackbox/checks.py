"""Judging probes: ``probe`` (down), ``probe_latency`` (slow), ``certificate`` (close to its end).

Each probe is one target of each check, named by the probe (key
``TENANT/probe/NAME``). Streaks are counted in :func:`advance` (stored in
``probe_targets``, so a restart keeps them): ``probe`` is critical after
``failures`` failed probes in a row, ``probe_latency`` a warning after
``slow_probes`` slow ones in a row. A failed probe measures no latency and
leaves the slow streak as it was; a probe that read no certificate leaves
the certificate's incident as it was. Summaries are written for the ticket a
comune's clerk reads, times in Europe/Rome with their offset.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from custode.agent.blackbox.base import ProbeResult, seconds
from custode.agent.blackbox.store import ProbeState
from custode.agent.blackbox.target import Target
from custode.agent.checks import Evaluation
from custode.agent.clock import ROME
from custode.agent.incidents import CheckResult, Severity

PROBE_CHECKS = ("probe", "probe_latency", "certificate")
"""Every check the probes are judged by (the incident keys' middle part)."""
DAY = 86400.0


def when(timestamp: float) -> str:
    """``07/12/2026 10:02 +01:00``: a moment as the comuni read it."""
    moment = datetime.fromtimestamp(timestamp, ROME)
    offset = moment.strftime("%z")
    return f"{moment:%d/%m/%Y %H:%M} {offset[:3]}:{offset[3:]}"


def is_slow(target: Target, result: ProbeResult) -> bool:
    return result.success and result.duration > target.thresholds.slow


def advance(previous: ProbeState | None, target: Target, result: ProbeResult) -> ProbeState:
    """The probe's state after ``result``: the streaks, when each began, the last facts."""
    before = previous or ProbeState(target.name, target.tenant, target.kind, target.url)
    at = result.started_at
    if result.success:
        slow = is_slow(target, result)
        return ProbeState(
            target.name, target.tenant, target.kind, target.url, last_probe_at=at, last_success_at=at, success=True,
            consecutive_failures=0, consecutive_slow=before.consecutive_slow + 1 if slow else 0,
            failing_since=None, slow_since=(before.slow_since or at) if slow else None, last_error=None,
            duration_seconds=result.duration, status_code=result.status_code, cert_expiry=result.cert_expiry)
    return replace(before, tenant=target.tenant, kind=target.kind, target=target.url, last_probe_at=at,
                   success=False, consecutive_failures=before.consecutive_failures + 1,
                   failing_since=before.failing_since if before.consecutive_failures else at,
                   last_error=result.error, duration_seconds=result.duration, status_code=result.status_code,
                   cert_expiry=result.cert_expiry if result.cert_expiry is not None else before.cert_expiry)


def _answer(result: ProbeResult) -> str:
    took = f"in {seconds(result.duration)}"
    if result.status_code is not None:
        return f"status {result.status_code} {took}"
    return f"answered {took}"


def probe_evaluations(target: Target, result: ProbeResult, state: ProbeState, now: float,
                      unmonitored: str | None = None) -> list[Evaluation]:
    """The probe's evaluations after ``result`` (``state`` already advanced by it).

    ``unmonitored`` (why: the tenant's profile has no monitoring) makes every
    result OK with that reason, so no incident opens and an open one resolves."""
    evaluations = [_down(target, result, state, unmonitored)]
    if result.success:
        evaluations.append(_latency(target, result, state, unmonitored))
    if result.cert_expiry is not None:
        evaluations.append(_certificate(target, result.cert_expiry, now, unmonitored))
    return evaluations


def _evaluation(check: str, target: Target, severity: Severity, summary: str, unmonitored: str | None,
                **details: object) -> Evaluation:
    if unmonitored is not None:
        severity, summary = "ok", f"{target.url} is not judged: {unmonitored}"
    result = CheckResult(target.tenant, check, target.name, severity, summary,
                         {"probe": target.name, "url": target.url, "kind": target.kind, **details},
                         covered_by=target.runs_on)
    return Evaluation(check, [result], complete=False)  # one target, always reported: nothing to reconcile


def _down(target: Target, result: ProbeResult, state: ProbeState, unmonitored: str | None) -> Evaluation:
    limit = target.thresholds.failures
    failures = state.consecutive_failures
    if result.success:
        severity: Severity = "ok"
        summary = f"{target.url} is up: {_answer(result)}"
        if result.note:
            summary += f" ({result.note})"
    else:
        severity = "critical" if failures >= limit else "ok"
        since = when(state.failing_since or result.started_at)
        row = f"{failures} probes in a row" if failures > 1 else "1 probe"
        if severity == "critical":
            summary = f"{target.url} is down: {result.error} ({row} since {since})"
        else:
            summary = f"{target.url} failed {row} ({limit} in a row make it down): {result.error} (since {since})"
    return _evaluation("probe", target, severity, summary, unmonitored, error=result.error, failures=failures,
                       failures_limit=limit, failing_since=state.failing_since, status_code=result.status_code,
                       duration_seconds=round(result.duration, 3), note=result.note)


def _latency(target: Target, result: ProbeResult, state: ProbeState, unmonitored: str | None) -> Evaluation:
    limit, slow = target.thresholds.slow_probes, target.thresholds.slow
    count = state.consecutive_slow
    took = seconds(result.duration)
    if count >= limit:
        severity: Severity = "warning"
        summary = (f"{target.url} is slow: {count} probes in a row took over {seconds(slow)} since "
                   f"{when(state.slow_since or result.started_at)}, the last {took}")
    elif count:
        severity = "ok"
        summary = f"{target.url} took {took}: {count} slow in a row ({limit} in a row make a warning)"
    else:
        severity = "ok"
        summary = f"{target.url} answers in {took} (slow: over {seconds(slow)})"
    return _evaluation("probe_latency", target, severity, summary, unmonitored,
                       duration_seconds=round(result.duration, 3), slow_seconds=slow, slow_probes=count,
                       slow_limit=limit, slow_since=state.slow_since)


def _certificate(target: Target, expiry: float, now: float, unmonitored: str | None) -> Evaluation:
    thresholds = target.thresholds
    left = expiry - now
    days = round(left / DAY)
    ends = when(expiry)
    host = target.where.address
    if left <= 0:
        severity: Severity = "critical"
        summary = (f"the certificate of {host} ended on {ends} ({target.url}): browsers and programs refuse the "
                   "connection; renew it now")
    elif left < thresholds.certificate_critical_days * DAY:
        severity = "critical"
        summary = f"the certificate of {host} ends on {ends}, in {_days(days)} ({target.url}): renew it now"
    elif left < thresholds.certificate_days * DAY:
        severity = "warning"
        summary = (f"the certificate of {host} ends on {ends}, in {_days(days)} ({target.url}): renew it before "
                   f"{_days(thresholds.certificate_critical_days)} are left")
    else:
        severity = "ok"
        summary = f"the certificate of {host} is valid until {ends}, {_days(days)} from now ({target.url})"
    return _evaluation("certificate", target, severity, summary, unmonitored, not_after=expiry,
                       days_left=round(left / DAY, 1), warning_days=thresholds.certificate_days,
                       critical_days=thresholds.certificate_critical_days)


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"
