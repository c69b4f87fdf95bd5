"""Judging a polled host: the local checks' levels and words, plus what only farm mode sees.

Every result's target starts with ``HOST:`` and every evaluation is scoped to
it, so reconciling one host never resolves another host's incidents. A host
that could not be polled gets only the reachability evaluation: its disk,
antivirus and update incidents stay as they were until a poll can judge them.
"""

from __future__ import annotations

import re
from datetime import datetime

from custode.agent import patch_policy as rounds
from custode.agent.calendar import ROME
from custode.agent.checks import Evaluation, judge_cpu, judge_filesystem, judge_memory, service_summary
from custode.agent.clock import current_time
from custode.agent.config import ChecksSection
from custode.agent.farm.config import FarmChecks
from custode.agent.farm.poller import PollResult
from custode.agent.farm.snapshot import Antivirus, HostSnapshot
from custode.agent.incidents import CheckResult, Severity
from custode.agent.patch_policy import PatchPolicy
from custode.agent.snmp.store import DeviceMemory

DAY = 86400.0


class HostJudge:
    """One host's results: keys ``TENANT/CHECK/HOST:THING`` and evaluations scoped to ``HOST:``."""

    def __init__(self, result: PollResult) -> None:
        self.tenant = result.target.tenant
        self.host = result.target.name
        self.scope = f"{self.host}:"

    def result(self, check: str, thing: str, severity: Severity, summary: str, **details: object) -> CheckResult:
        return CheckResult(self.tenant, check, f"{self.host}:{thing}", severity, summary,
                           {"host": self.host, **details})

    def evaluation(self, check: str, hold_for: float | None = None) -> Evaluation:
        return Evaluation(check, hold_for=hold_for, scope=self.scope)


def farm_evaluations(checks: ChecksSection, farm: FarmChecks, result: PollResult, consecutive_failures: int,
                     now: float | None = None, patch_policy: PatchPolicy | None = None,
                     device_memory: DeviceMemory | None = None) -> list[Evaluation]:
    """Every check of one polled host; ``patch_policy`` is its tenant's (None: updates judged by age);
    ``device_memory``: an SNMP device's memory after this poll (:func:`custode.agent.snmp.checks.remember`)."""
    now = current_time() if now is None else now
    judge = HostJudge(result)
    evaluations: list[Evaluation] = []
    if farm.unreachable.enabled:
        evaluations.append(_reachability(judge, farm, result, consecutive_failures))
    if result.device is not None and device_memory is not None and result.target.host.snmp is not None:
        from custode.agent.snmp.checks import device_evaluations

        return evaluations + device_evaluations(farm, judge, result.device, result.target.host.snmp,
                                                device_memory, now,
                                                checks.filesystem if checks.filesystem.enabled else None)
    snap = result.snapshot
    if snap is None:
        return evaluations
    evaluations += [e for e in (
        _filesystems(judge, checks, snap) if checks.filesystem.enabled else None,
        _memory(judge, checks, snap) if checks.memory.enabled else None,
        _cpu(judge, checks, result.cpu_busy_ratio) if checks.cpu.enabled else None,
        _services(judge, checks, snap) if checks.services.enabled else None,
    ) if e is not None]
    return evaluations + probe_evaluations(farm, result, now, patch_policy)


def probe_evaluations(farm: FarmChecks, result: PollResult, now: float | None = None,
                      patch_policy: PatchPolicy | None = None) -> list[Evaluation]:
    """The checks of what only a probe reads (antivirus, os_updates, disk_health, os_support); none for a failed probe.

    Apart from :func:`farm_evaluations` because the agent runs the Windows probe
    on its own host too (:mod:`custode.agent.farm.local_probe`), where the local
    collectors already judge disk space, memory, CPU and services.
    """
    snap = result.snapshot
    if snap is None:
        return []
    now = current_time() if now is None else now
    judge = HostJudge(result)
    return [e for e in (
        _antivirus(judge, farm, snap, now) if farm.antivirus.enabled else None,
        _updates(judge, farm, snap, now, patch_policy) if farm.updates.enabled else None,
        _disks(judge, farm, snap) if farm.disks.enabled else None,
        _os_support(judge, farm, snap) if farm.os_support.enabled else None,
    ) if e is not None]


def _reachability(judge: HostJudge, farm: FarmChecks, result: PollResult, failures: int) -> Evaluation:
    cfg = farm.unreachable
    evaluation = judge.evaluation("reachability")
    if result.up:
        severity: Severity = "ok"
        summary = f"host {judge.host} answers"
    else:
        severity = cfg.severity if failures >= cfg.polls else "ok"
        what = "device" if result.target.transport == "snmp" else "host"
        summary = f"{what} {judge.host} could not be polled {failures} times in a row: {result.error}"
    evaluation.results.append(judge.result("reachability", "reachability", severity, summary,
                                           error=result.error, failures=failures,
                                           transport=result.target.transport,
                                           address=result.target.host.address))
    return evaluation


def _filesystems(judge: HostJudge, checks: ChecksSection, snap: HostSnapshot) -> Evaluation:
    cfg = checks.filesystem
    only = re.compile(cfg.mount_points) if cfg.mount_points else None
    evaluation = judge.evaluation("filesystem", cfg.for_)
    for fs in snap.filesystems:
        if fs.size_bytes <= 0 or (only and not only.search(fs.mountpoint)):
            continue
        severity, summary, details = judge_filesystem(cfg, judge.host, fs.mountpoint, fs.avail_bytes, fs.size_bytes)
        evaluation.results.append(judge.result("filesystem", fs.mountpoint, severity, summary, **details))
    return evaluation


def _memory(judge: HostJudge, checks: ChecksSection, snap: HostSnapshot) -> Evaluation | None:
    total, available = snap.memory_total_bytes, snap.memory_available_bytes
    if not total or available is None:
        return None
    severity, summary, details = judge_memory(checks.memory, judge.host, available, total)
    evaluation = judge.evaluation("memory", checks.memory.for_)
    evaluation.results.append(judge.result("memory", "memory", severity, summary, **details))
    return evaluation


def _cpu(judge: HostJudge, checks: ChecksSection, busy: float | None) -> Evaluation | None:
    if busy is None:
        return None
    severity, summary, details = judge_cpu(checks.cpu, judge.host, busy)
    evaluation = judge.evaluation("cpu", checks.cpu.for_)
    evaluation.results.append(judge.result("cpu", "cpu", severity, summary, **details))
    return evaluation


def _services(judge: HostJudge, checks: ChecksSection, snap: HostSnapshot) -> Evaluation | None:
    if snap.failed_services is None:
        return None
    cfg = checks.services
    ignore = re.compile(cfg.ignore) if cfg.ignore else None
    evaluation = judge.evaluation("services", cfg.for_)
    for service in snap.failed_services:
        if ignore and ignore.search(service.name):
            continue
        evaluation.results.append(judge.result("services", service.name, cfg.severity,
                                               service_summary(judge.host, service.name, service.manager),
                                               service=service.name, manager=service.manager))
    return evaluation


def _antivirus(judge: HostJudge, farm: FarmChecks, snap: HostSnapshot, now: float) -> Evaluation | None:
    """One incident per host: no active product is the severity; only stale signatures, a warning."""
    if snap.antivirus is None or snap.os.family != "windows":
        return None
    cfg = farm.antivirus
    evaluation = judge.evaluation("antivirus")
    active = [av for av in snap.antivirus if av.active]
    if not active:
        off = "; ".join(_av_state(av) for av in snap.antivirus) or "no antivirus product is reported"
        summary = f"no active antivirus on {judge.host}: {off}"
        evaluation.results.append(judge.result("antivirus", "antivirus", cfg.severity, summary,
                                               products=[av.product for av in snap.antivirus]))
        return evaluation
    stale = [(av, now - av.signature_updated) for av in active
             if av.signature_updated is not None and now - av.signature_updated > cfg.signature_max_age]
    if stale:
        av, age = stale[0]
        summary = (f"antivirus signatures of {av.product} on {judge.host} are {age / DAY:.0f} days old "
                   f"(limit {cfg.signature_max_age / DAY:g} days): the host does not get its updates")
        evaluation.results.append(judge.result("antivirus", "antivirus", "warning", summary, product=av.product,
                                               signature_age_days=round(age / DAY, 1)))
    else:
        evaluation.results.append(judge.result("antivirus", "antivirus", "ok",
                                               f"antivirus on {judge.host} is active: {active[0].product}"))
    return evaluation


def _av_state(av: Antivirus) -> str:
    if av.enabled is False:
        return f"{av.product} is disabled"
    if av.realtime is False:
        return f"{av.product} has real-time protection off"
    return f"{av.product} state unknown"


def _updates(judge: HostJudge, farm: FarmChecks, snap: HostSnapshot, now: float,
             policy: PatchPolicy | None = None) -> Evaluation | None:
    """Pending OS updates against the tenant's patch rounds when it has a policy, else against the age limits.

    A comune patched twice a year (Vaiano) goes months without installing anything by contract;
    the age limits would keep its servers in warning, so the policy's rounds judge them instead.
    """
    updates = snap.updates
    if updates is None or updates.last_installed is None or updates.pending is None:
        return None
    security = f" ({updates.security} security)" if updates.security else ""
    pending = f"{updates.pending} pending{security}"
    extra: dict[str, object] = {}
    if policy is not None and not policy.continuous:
        verdict = rounds.judge(now, policy, updates.last_installed, updates.pending)
        severity: Severity = verdict.severity
        summary = rounds.summary(judge.host, policy, verdict, updates.last_installed, pending)
        extra = rounds.details(policy, verdict)
    else:
        severity, summary = _updates_by_age(judge.host, farm, updates.last_installed, updates.pending, now, pending)
    if updates.titles and severity != "ok":
        summary += ", e.g. " + "; ".join(updates.titles[:3])
    evaluation = judge.evaluation("os_updates")
    evaluation.results.append(judge.result("os_updates", "updates", severity, summary, pending=updates.pending,
                                           security=updates.security, last_installed=updates.last_installed,
                                           **extra))
    return evaluation


def _updates_by_age(host: str, farm: FarmChecks, last_installed: float, pending: int, now: float,
                    pending_words: str) -> tuple[Severity, str]:
    """Continuous patching: no install for ``max_age`` with updates pending warns; past ``critical_age``, critical."""
    cfg = farm.updates
    age = now - last_installed
    severity: Severity = "ok"
    if pending > 0:
        severity = "critical" if age > cfg.critical_age else "warning" if age > cfg.max_age else "ok"
    last = datetime.fromtimestamp(last_installed, ROME).strftime("%d/%m/%Y")
    return severity, f"no update installed on {host} for {age / DAY:.0f} days (last on {last}); {pending_words}"


def _disks(judge: HostJudge, farm: FarmChecks, snap: HostSnapshot) -> Evaluation | None:
    if snap.disks is None:
        return None
    evaluation = judge.evaluation("disk_health")
    for disk in snap.disks:
        if disk.healthy is None:
            continue
        what = f"disk {disk.device}" + (f" ({disk.model})" if disk.model else "")
        severity: Severity = "ok" if disk.healthy else farm.disks.severity
        summary = (f"{what} on {judge.host} reports {disk.status or 'healthy'}" if disk.healthy else
                   f"{what} on {judge.host} reports {disk.status or 'a failure'}: replace it or check the RAID")
        evaluation.results.append(judge.result("disk_health", f"disk/{disk.device}", severity, summary,
                                               device=disk.device, status=disk.status))
    return evaluation


def _os_support(judge: HostJudge, farm: FarmChecks, snap: HostSnapshot) -> Evaluation | None:
    if snap.os.family != "windows":
        return None
    from custode.agent.farm.windows_eos import support_status

    support = support_status(snap.os, snap.time)
    evaluation = judge.evaluation("os_support")
    severity: Severity = farm.os_support.severity if (support.unsupported or support.contract_excluded) else "ok"
    summary = f"{judge.host} runs {snap.os.name}: {support.reason}"
    evaluation.results.append(judge.result("os_support", "os", severity, summary, os=snap.os.name,
                                           end_of_support=support.end_of_support,
                                           contract_excluded=support.contract_excluded))
    return evaluation
