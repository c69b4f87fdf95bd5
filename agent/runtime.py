"""The running agent: config, state, audit, incidents, collection, checks and HTTP, and the services.

One direction of flow: the scheduler runs collection cycles, which publish to
the metric cache; the checks job reads the cache and feeds the incident
model; the HTTP server only reads the cache. The features (backups, updates,
restore tests, farm, tickets, the Alertmanager bridge) are services
(``agent/services``): the core builds those the config uses and runs what
they declare, knowing none by name. Each piece can be built alone in tests.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from prometheus_client.core import GaugeMetricFamily

from custode.agent import __version__
from custode.agent.audit_keeper import AuditKeeper
from custode.agent.checks import HostChecks, apply
from custode.agent.clock import current_time
from custode.agent.collection import CollectionCycle, CollectorRunner, RunOutcome, cycles
from custode.agent.collector_status import FLUSH_EVERY, CollectorStatusBuffer
from custode.agent.config_loader import LoadedConfig
from custode.agent.health import PROBE_EVERY, Health, StorageLogFilter, handles
from custode.agent.heartbeat import BEAT_EVERY, beat
from custode.agent.history import service as history
from custode.agent.history.local import local_os_name
from custode.agent.incidents import IncidentChange, Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.paths import audit_path, state_path
from custode.agent.services import Context, Job, Service, build_services, guarded
from custode.agent.state import State
from custode.agent.web import Router, make_server, serve_in_thread
from custode.agent.web.core import core_routes
from custode.agent.web.server import WebServer
from custode.agent.web.webconfig import WebConfigSource
from custode.collectors.base import Collector

log = logging.getLogger(__name__)



def build_runners(loaded: LoadedConfig, cache: MetricCache, extra: list[tuple[Collector, float, float]] = (),
                  on_outcome=None) -> list[CollectorRunner]:
    """Runners for every enabled collector (plus ``extra`` (collector, interval, timeout), for tests).

    A collector whose module could not be imported gets a stand-in that fails
    every run with the import error, so it is reported, not silently absent.
    """
    from custode.collectors.registry import Unloadable, broken

    planned = [(plan.build(), plan.interval, plan.timeout) for plan in loaded.enabled_collectors]
    planned += [(Unloadable(name, error), Unloadable.default_interval, Unloadable.default_timeout)
                for name, error in broken().items()]
    return [CollectorRunner(collector, timeout, cache, on_outcome, interval)
            for collector, interval, timeout in planned + list(extra)]


class Agent:
    def __init__(self, loaded: LoadedConfig, listen: str | None = None,
                 extra_collectors: list[tuple[Collector, float, float]] = (),
                 web_config: str | None = None, health_every: float = PROBE_EVERY) -> None:
        from custode.agent.config import parse_listen

        self.loaded = loaded
        config = loaded.model
        self.host, self.port = parse_listen(listen or config.agent.listen)
        # Read before anything starts: a broken web config stops the agent here, naming the key.
        self.web = WebConfigSource(web_config or config.agent.web_config_file)
        self.state = State(state_path(config))
        self.collector_status = CollectorStatusBuffer(self.state)
        # The audit log is held to the head the state DB keeps; what it cannot take is held, never lost.
        self.keeper = AuditKeeper(self.state, audit_path(config), actor="agent")
        self.audit = self.keeper.log
        self._audit = self.keeper.write
        self.incidents = Incidents(self.state, on_change=self._incident_changed)
        self.cache = MetricCache()
        self.health = Health(self.state, self.keeper, self.cache, self.incidents, config.agent.tenant,
                             config.agent.hostname, every=health_every)
        self._log_filter = StorageLogFilter(self.health)
        self.runners = build_runners(loaded, self.cache, list(extra_collectors), self._collector_finished)
        self.cycles = cycles(self.runners, self.cache)
        self.checks = HostChecks(config.checks, config.agent.tenant, config.agent.hostname)
        # This host's daily rows for the yearly report: its shortest cycle's interval is the availability unit.
        self.history = history.AgentHistory(
            self.state, self.cache, config.agent.hostname, config.agent.tenant,
            self.cycles[0].interval if self.cycles else 15.0, keep=history.keep_days(config), os_name=local_os_name())
        self.services = build_services(Context(loaded, self.state, self.incidents, self.cache, self._audit))
        self._scheduler = None
        self._started_at: float | None = None
        self._server: WebServer | None = None
        self._stopped = threading.Event()
        self._stopping = False
        limit_malloc_arenas()

    # --- lifecycle ------------------------------------------------------------------

    def router(self) -> Router:
        """The agent's own routes, then each service's; a path claimed twice stops the start (RouteConflict)."""
        router = Router()
        for route in core_routes(self.cache, self.ready, self.healthy, router):
            router.add(route, "core")
        for service in self.services:
            for route in service.routes():
                router.add(route, service.name)
        return router

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        server = self._server = make_server(self.host, self.port, self.router(), self.web)
        self.port = server.server_address[1]
        serve_in_thread(server)
        hostname = self.loaded.model.agent.hostname
        self._watch_logs()
        self.health.start()  # the audit chain, verified from its checkpoint before this run's first record
        self._audit("config.loaded", self.loaded.source,
                    {"sha256": self.loaded.sha256, "tenants": self.loaded.model.tenant_ids()})
        self._audit("agent.started", hostname,
                    {"version": __version__, "collectors": [r.name for r in self.runners],
                     "listen": f"{self.host}:{self.port}"})
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=len(self.cycles) + 8)},
            job_defaults={"coalesce": True, "max_instances": 1}, timezone=timezone.utc)
        now = datetime.now(timezone.utc)
        core = self.collection_jobs()
        interval = self.loaded.model.agent.check_interval
        self._started_at = now.timestamp()
        core += [Job("heartbeat", self._beat, "interval", {"seconds": BEAT_EVERY}, run_now=True),
                 Job("collector-status", self.collector_status.flush, "interval", {"seconds": FLUSH_EVERY}),
                 Job("checks", self.run_checks, "interval", {"seconds": interval},
                     misfire_grace_time=max(1, int(interval))),
                 Job("host-history", self.history.flush, "interval", {"seconds": history.FLUSH_EVERY}),
                 Job("host-history-prune", self.prune_history, "interval", {"hours": 24}, run_now=True)]
        core += self.health.jobs()
        for job in core:
            self._schedule(scheduler, job, now)
        for service in self.services:
            for name, workers in service.executors().items():
                scheduler.add_executor(ThreadPoolExecutor(max_workers=workers), name)
            for job in service.jobs(now):
                self._schedule(scheduler, job, now)
        scheduler.start()
        self._scheduler = scheduler
        for service in self.services:
            service.start()
        log.info("custode started", extra={"listen": f"{self.host}:{self.port}", "version": __version__,
                                           "collectors": len(self.runners), "config": self.loaded.source,
                                           "services": [service.name for service in self.services]})

    def collection_jobs(self) -> list[Job]:
        """One job per collection cycle: one wake-up and one render per interval, then the host's history."""
        return [Job(f"collectors:{cycle.interval:g}s", self._collect(cycle, counted=index == 0), "interval",
                    {"seconds": cycle.interval}, run_now=True, misfire_grace_time=max(1, int(cycle.interval)))
                for index, cycle in enumerate(self.cycles)]

    def _collect(self, cycle: CollectionCycle, counted: bool) -> Callable[[], None]:
        """Run the cycle, then hand its outcomes to the history (memory only: the write is a job of its own)."""
        def run() -> None:
            started = current_time()
            outcomes = cycle.run()
            if not self._stopping:
                self.history.cycle_finished(started, outcomes, counted)
        return run

    def prune_history(self) -> None:
        """Every host's daily rows past the retention (``history.days``), farm and agent alike, once a day."""
        history.prune(self.state, history.keep_days(self.loaded.model), current_time())

    def _schedule(self, scheduler, job: Job, now: datetime) -> None:
        job = dataclasses.replace(job, run=self._shielded(job.id, job.run))
        options: dict = {"id": job.id, "args": list(job.args), "executor": job.executor}
        if job.misfire_grace_time is not None:
            options["misfire_grace_time"] = job.misfire_grace_time
        if job.run_now:
            options["next_run_time"] = now
        scheduler.add_job(guarded(job, lambda: self._stopping), job.trigger, **options, **job.trigger_args)

    def _shielded(self, name: str, run: Callable[..., object]) -> Callable[..., object]:
        """A job whose storage failure (corrupt, full, read-only state DB) is one clear line and a health flag.

        Anything else still reaches the job guard, whose traceback is what a bug needs."""
        def shielded(*args: object) -> object:
            try:
                return run(*args)
            except Exception as exc:
                if self._stopping and isinstance(exc, sqlite3.ProgrammingError):
                    log.debug("job cut short by the stop (state database closed)", extra={"job": name})
                    return None
                if not handles(exc):
                    raise
                self.health.state_failed(exc, f"job {name}")
                return None
        return shielded

    def _watch_logs(self) -> None:
        """Storage failures that features log with a traceback become one line with the fix (StorageLogFilter)."""
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._log_filter)

    def _unwatch_logs(self) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._log_filter)

    def _beat(self, stopped: bool = False) -> None:
        """The heartbeat ``custode status`` reads (custode.agent.heartbeat)."""
        import os

        beat(self.state, pid=os.getpid(), hostname=self.loaded.model.agent.hostname, config=self.loaded.source,
             listen=f"{self.host}:{self.port}", version=__version__, started_at=self._started_at or current_time(),
             now=current_time(), stopped=stopped)

    def service(self, name: str) -> Service:
        """The running service called ``name`` (KeyError when the config does not use it)."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no {name!r} service: the config does not use it")

    def stop(self) -> None:
        # Jobs still running (a collector inside its timeout) must not write to a closed DB.
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                log.exception("service did not stop cleanly", extra={"service": service.name})
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._audit("agent.stopped", self.loaded.model.agent.hostname, {})
        try:
            self.collector_status.flush()
            self.history.flush()
            if self._started_at is not None:
                self._beat(stopped=True)
        except Exception as exc:
            if not handles(exc):
                raise
            self.health.state_failed(exc, "stop")
        self.state.close()
        self._unwatch_logs()
        self._stopped.set()

    def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT (systemd stop, Ctrl-C)."""
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            log.info("custode stopping")
            self.stop()

    # --- jobs -----------------------------------------------------------------------

    def run_checks(self) -> None:
        if self._stopping:
            return
        try:
            apply(self.incidents, self.checks.evaluate(self.cache))
            self.cache.update("custode_incidents", [self._incident_gauge()])
            if self._server is not None:
                self.cache.update("custode_http", list(self._server.metric_families()))
        except Exception as exc:
            if handles(exc):
                self.health.state_failed(exc, "checks")
            else:
                log.exception("checks failed")

    def _incident_gauge(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("custode_incidents_open", "Open incidents by tenant and severity.",
                                   labels=["tenant", "severity"])
        counts: dict[tuple[str, str], int] = {}
        for tenant in self.loaded.model.tenant_ids():
            for severity in ("warning", "critical"):
                counts[(tenant, severity)] = 0
        for incident in self.incidents.open_incidents():
            counts[(incident.tenant, incident.severity)] = counts.get((incident.tenant, incident.severity), 0) + 1
        for (tenant, severity), count in sorted(counts.items()):
            family.add_metric([tenant, severity], count)
        return family

    def _collector_finished(self, outcome: RunOutcome) -> None:
        if self._stopping:
            return
        try:
            self.collector_status.record(outcome)  # a failure or recovery is written at once
        except Exception as exc:
            if not handles(exc):
                raise
            self.health.state_failed(exc, f"collector {outcome.collector}")

    def _incident_changed(self, change: IncidentChange) -> None:
        log.warning("incident %s", change.kind, extra={"incident": change.key, "severity": change.severity,
                                                       "summary": change.summary})
        self._audit(*change.audit_record())
        for service in self.services:
            service.incident_changed(change)

    # --- probes -----------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        """Not ready while the state DB or the audit log cannot be used, or a collector has not run yet.

        Reads flags only: the probes that set them are scheduler jobs."""
        problem = self.health.problem()
        if problem is not None:
            return False, problem
        outcomes = self.cache.outcomes()
        waiting = [r.name for r in self.runners if r.name not in outcomes]
        if waiting:
            return False, "waiting for the first run of: " + ", ".join(waiting)
        return True, "ready"

    def healthy(self) -> tuple[bool, str]:
        if self._scheduler is None or not self._scheduler.running:
            return False, "scheduler is not running"
        # Alive even with broken storage: a restart does not mend a corrupt or full disk, /ready says so.
        problem = self.health.problem()
        return True, "ok" if problem is None else f"ok (alive, but not ready: {problem})"


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas (like MALLOC_ARENA_MAX=2).

    Each collector runs on a thread of its own, and so do the services' jobs;
    glibc gives busy threads their own 64 MiB arenas, which costs a long-running agent megabytes of RSS
    for no speed it needs. Harmless no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-8, arenas)  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):
        pass
