"""Polling many remote hosts at once without letting one slow host hold up the rest.

A bounded thread pool runs one probe per host; each probe is bounded by the
transport's own connect and command timeouts, so a dead or blackholed host
costs one worker for at most ``connect_timeout + timeout`` seconds and never
the others. Hosts keep their transport (SSH connection, WinRM shell) between
polls unless ``keep_connections`` is off.

An SNMP device (``transport: snmp``) takes a worker too: the worker hands the
poll to the one asyncio loop of :class:`~custode.agent.snmp.runner.SnmpRunner`
and waits for it, so servers and devices share the same ``workers`` bound and
the same schedule, and a device that does not answer costs its worker at
most ``poll_timeout``.

The poller only gathers: results queue up until the agent's farm job drains
them, records them, runs the checks and publishes the metrics in one batch,
so 500 hosts finishing at different moments cost one metrics render, not 500.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custode.agent.clock import Clock, current_time
from custode.agent.farm.probes import ProbeRegistryError, probe_for
from custode.agent.farm.snapshot import DiskHealth, HostSnapshot, ProbeOutputError, UpdateStatus
from custode.agent.farm.targets import Target
from custode.agent.snmp.device import DeviceSnapshot, SnmpError
from custode.agent.transports import Transport, TransportError, open_transport

if TYPE_CHECKING:
    from custode.agent.snmp.runner import SnmpRunner

log = logging.getLogger(__name__)

PROBE_OUTPUT_LIMIT = 512 * 1024
"""Bytes of probe output kept; a normal probe prints a few KB, a host with hundreds of disks perhaps 100 KB."""


@dataclass(frozen=True)
class PollResult:
    target: Target
    started_at: float
    """Unix time the poll started."""
    duration: float
    snapshot: HostSnapshot | None
    error: str | None = None
    """Why the host could not be polled, in words; None when ``snapshot`` is set."""
    cpu_busy_ratio: float | None = None
    """CPU busy since the previous poll (Linux) or as the probe measured it (Windows)."""
    included_updates: bool = False
    device: DeviceSnapshot | None = None
    """What an SNMP device answered (``transport: snmp``); ``snapshot`` is None for those."""

    @property
    def up(self) -> bool:
        return self.snapshot is not None or self.device is not None


@dataclass
class _HostState:
    transport: Transport | None = None
    in_flight: bool = False
    next_due: float = 0.0
    updates_read_at: float | None = None
    cpu_previous: tuple[float, float] | None = None
    """(total, idle) CPU seconds at the previous poll, for the busy ratio between polls."""
    slow_sections: tuple[UpdateStatus | None, tuple[DiskHealth, ...] | None] | None = None
    """(updates, disks) of the last poll that read them, carried into the polls in between."""


def cpu_totals(snapshot: HostSnapshot) -> tuple[float, float] | None:
    """(total, idle + iowait) CPU seconds summed over every CPU, or None when not reported."""
    if not snapshot.cpu_seconds:
        return None
    total = sum(snapshot.cpu_seconds.values())
    idle = sum(v for (_, mode), v in snapshot.cpu_seconds.items() if mode in ("idle", "iowait"))
    return total, idle


class FarmPoller:
    def __init__(self, targets: Iterable[Target], *, workers: int = 32, keep_connections: bool = True,
                 updates_interval: float | None = 6 * 3600.0,
                 transport_factory: Callable[[str, object], Transport] = open_transport,
                 clock: Clock = current_time) -> None:
        self.targets = {t.name: t for t in targets}
        self.keep_connections = keep_connections
        self.updates_interval = updates_interval
        self._factory = transport_factory
        self._clock = clock
        self._states = {name: _HostState() for name in self.targets}
        self._lock = threading.Lock()
        self._finished: list[PollResult] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(self.targets) or 1)),
                                        thread_name_prefix="farm")
        self._closed = False
        self._snmp: SnmpRunner | None = None
        """One asyncio loop and SNMP engine for every device, started with the first device poll; the
        worker threads wait on it, so devices and servers share the one ``workers`` bound."""

    # -- scheduling ------------------------------------------------------------------

    def submit_due(self, now: float | None = None) -> list[str]:
        """Start a poll of every host whose interval has passed and that is not being polled now."""
        now = self._clock() if now is None else now
        started = []
        with self._lock:
            for name, target in self.targets.items():
                state = self._states[name]
                if state.in_flight or now < state.next_due or self._closed:
                    continue
                state.in_flight = True
                state.next_due = now + target.interval
                started.append(name)
        for name in started:
            self._pool.submit(self._run, name)
        return started

    def drain(self) -> list[PollResult]:
        """The results finished since the last drain, oldest first."""
        with self._lock:
            finished, self._finished = self._finished, []
        return finished

    def give_back(self, results: list[PollResult]) -> int:
        """Put drained results back (their recording failed) ahead of newer ones; returns how many were
        dropped to stay within ten cycles' worth, so a state DB that stays broken cannot fill memory."""
        limit = 10 * max(1, len(self.targets))
        with self._lock:
            self._finished = results + self._finished
            dropped = max(0, len(self._finished) - limit)
            del self._finished[:dropped]
        return dropped

    def poll(self, names: Iterable[str] | None = None) -> list[PollResult]:
        """Poll ``names`` (default: all) now and wait for them: the command-line path."""
        chosen = list(self.targets) if names is None else list(names)
        futures: list[Future] = []
        with self._lock:
            for name in chosen:
                self._states[name].in_flight = True
        for name in chosen:
            futures.append(self._pool.submit(self._run, name, queue=False))
        wait(futures)
        return [f.result() for f in futures]

    def close(self) -> None:
        """Stop taking work and close every kept connection (polls in progress end on their own timeouts)."""
        with self._lock:
            self._closed = True
            transports = [s.transport for s in self._states.values() if s.transport is not None]
            for state in self._states.values():
                state.transport = None
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._snmp is not None:
            self._snmp.close()
        for transport in transports:
            try:
                transport.close()
            except Exception:  # closing is best effort; the host may be gone
                log.debug("closing a farm connection failed", exc_info=True)

    # -- one poll --------------------------------------------------------------------

    def _run(self, name: str, queue: bool = True) -> PollResult:
        try:
            result = self._poll_one(self.targets[name])
        except BaseException as exc:  # noqa: BLE001 - a bug must not kill the worker or lose the host
            log.exception("farm poll crashed", extra={"host": name})
            result = PollResult(self.targets[name], self._clock(), 0.0, None,
                                error=f"internal error in Custode ({type(exc).__name__}: {exc}); see the agent's log")
        with self._lock:
            self._states[name].in_flight = False
            if queue:
                self._finished.append(result)
        return result

    def _snmp_runner(self) -> SnmpRunner:
        with self._lock:
            if self._snmp is None:
                from custode.agent.snmp.runner import SnmpRunner

                self._snmp = SnmpRunner()
            return self._snmp

    def _poll_device(self, target: Target) -> PollResult:
        """One SNMP poll: no transport, no probe script; the device's answers are the snapshot."""
        from custode.agent.snmp.credentials import credentials_of

        options = target.host.snmp
        assert options is not None  # HostConfig requires it for transport snmp
        started_at = self._clock()
        begin = time.monotonic()
        try:
            device = self._snmp_runner().poll(target.host.address, options, credentials_of(options),
                                              timeout=target.timeout)
        except SnmpError as exc:
            return PollResult(target, started_at, time.monotonic() - begin, None, error=str(exc))
        return PollResult(target, started_at, time.monotonic() - begin, None, device=device)

    def _poll_one(self, target: Target) -> PollResult:
        if target.transport == "snmp":
            return self._poll_device(target)
        state = self._states[target.name]
        started_at = self._clock()
        begin = time.monotonic()
        include_updates = self.updates_interval is not None and (
            state.updates_read_at is None or started_at - state.updates_read_at >= self.updates_interval)
        transport = state.transport or self._factory(target.name, target.host)
        if self.keep_connections:
            state.transport = transport
        try:
            probe = probe_for(transport.shell, host=target.name)
        except ProbeRegistryError as exc:
            self._forget_transport(state, transport)
            return PollResult(target, started_at, time.monotonic() - begin, None, error=str(exc))
        snapshot: HostSnapshot | None = None
        error: str | None = None
        try:
            result = transport.run(probe.probe_command(include_updates=include_updates), target.timeout,
                                   max_output=PROBE_OUTPUT_LIMIT)
            if result.timed_out:
                error = (f"the probe did not finish within {target.timeout:g} s (poll_timeout) and was stopped: "
                         "the host is overloaded, or a command on it hangs (a stuck network mount, Windows "
                         "Update); raise poll_timeout for this host if it is just slow")
            else:
                try:
                    snapshot = probe.parse(result.stdout, now=self._clock())
                except ProbeOutputError as exc:
                    tail = "" if result.ok else f" (the probe ended with {result.describe()})"
                    error = f"{exc}{tail}"
        except TransportError as exc:
            error = exc.cause
            self._forget_transport(state, transport)
        finally:
            if not self.keep_connections:
                transport.close()
        duration = time.monotonic() - begin
        if snapshot is None:
            return PollResult(target, started_at, duration, None, error=error)
        if include_updates:
            state.updates_read_at = started_at
            state.slow_sections = (snapshot.updates, snapshot.disks)
        elif state.slow_sections is not None:
            updates, disks = state.slow_sections
            snapshot = dataclasses.replace(snapshot, updates=snapshot.updates or updates,
                                           disks=snapshot.disks if snapshot.disks is not None else disks)
        return PollResult(target, started_at, duration, snapshot, cpu_busy_ratio=self._busy(state, snapshot),
                          included_updates=include_updates)

    @staticmethod
    def _forget_transport(state: _HostState, transport: Transport) -> None:
        """A host that failed gets a fresh transport next time (the transport reconnects anyway)."""
        if state.transport is transport:
            state.transport = None
        try:
            transport.close()
        except Exception:
            log.debug("closing a failed farm connection failed", exc_info=True)

    @staticmethod
    def _busy(state: _HostState, snapshot: HostSnapshot) -> float | None:
        if snapshot.cpu_busy_ratio is not None:
            return snapshot.cpu_busy_ratio
        totals = cpu_totals(snapshot)
        previous, state.cpu_previous = state.cpu_previous, totals
        if totals is None or previous is None:
            return None
        elapsed, idle = totals[0] - previous[0], totals[1] - previous[1]
        if elapsed <= 0 or idle < 0:
            return None  # the host rebooted between polls: counters restarted
        return min(1.0, max(0.0, 1.0 - idle / elapsed))
