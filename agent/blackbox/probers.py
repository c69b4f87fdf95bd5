"""The prober registry (like node_exporter's ``registerCollector``): kind -> ``probe(target, result, deadline)``.

Adding a prober is one module with a ``probe`` function and its line in
:data:`PROBERS`; its config block goes into :class:`ProbeTarget`
(``agent/blackbox/config.py``) and its URL scheme into
:func:`custode.agent.blackbox.urls.target_from_url`. A prober fills the
result's facts and series and raises :class:`ProbeFailed` with the reason in
words; :func:`run_probe` adds what every probe has (success, duration) and
turns anything unexpected into a failed result, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from custode.agent.blackbox import dns_probe, http_probe, icmp_probe, tcp_probe
from custode.agent.blackbox.base import Deadline, ProbeFailed, ProbeResult, seconds
from custode.agent.blackbox.target import Target
from custode.agent.clock import Clock, current_time

log = logging.getLogger(__name__)

Prober = Callable[[Target, ProbeResult, Deadline], None]

PROBERS: dict[str, Prober] = {
    "http": http_probe.probe,
    "tcp": tcp_probe.probe,
    "icmp": icmp_probe.probe,
    "dns": dns_probe.probe,
}


def run_probe(target: Target, clock: Clock = current_time) -> ProbeResult:
    """Probe ``target`` once, within its timeout; the result says why it failed."""
    result = ProbeResult(target, clock())
    deadline = Deadline(target.timeout)
    try:
        PROBERS[target.kind](target, result, deadline)
        result.success = True
    except ProbeFailed as failed:
        result.error = str(failed)
    except Exception as exc:  # noqa: BLE001 - a prober's bug is one failed probe, never a stopped service
        log.exception("prober failed", extra={"probe": target.name, "kind": target.kind})
        result.error = f"the {target.kind} probe itself failed ({type(exc).__name__}: {exc})"
    result.duration = deadline.elapsed()
    if result.success and result.duration > target.timeout:
        result.success = False
        result.error = f"no complete answer within {seconds(target.timeout)}"
    return result
