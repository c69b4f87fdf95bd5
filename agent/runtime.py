"""The running agent: wires config, state, audit, collectors, checks and HTTP.

One direction of flow: the scheduler runs collectors, which publish to the
metric cache; the checks job reads the cache and feeds the incident model;
the HTTP server only reads the cache. Each piece can be built alone in tests.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import datetime, timezone

from prometheus_client.core import GaugeMetricFamily

from agent import __version__
from agent.audit import AuditLog, tolerant_writer
from agent.checks import HostChecks, apply
from agent.clock import current_time, now_utc
from agent.collection import CollectorRunner, RunOutcome, cycles
from agent.collector_status import FLUSH_EVERY, CollectorStatusBuffer
from agent.config import DEFAULT_TENANT
from agent.config_loader import LoadedConfig
from agent.http_server import make_server, serve_in_thread
from agent.incidents import IncidentChange, Incidents
from agent.metric_cache import MetricCache
from agent.paths import audit_path, state_path
from agent.state import State
from collectors.base import Collector

log = logging.getLogger(__name__)

FARM_TICK = 5
"""Seconds between farm ticks: how late at most a due poll starts and a finished one is published."""


def build_runners(loaded: LoadedConfig, cache: MetricCache, extra: list[tuple[Collector, float, float]] = (),
                  on_outcome=None) -> list[CollectorRunner]:
    """Runners for every enabled collector (plus ``extra`` (collector, interval, timeout), for tests).

    A collector whose module could not be imported gets a stand-in that fails
    every run with the import error, so it is reported, not silently absent.
    """
    from collectors.registry import Unloadable, broken

    planned = [(plan.build(), plan.interval, plan.timeout) for plan in loaded.enabled_collectors]
    planned += [(Unloadable(name, error), Unloadable.default_interval, Unloadable.default_timeout)
                for name, error in broken().items()]
    return [CollectorRunner(collector, timeout, cache, on_outcome, interval)
            for collector, interval, timeout in planned + list(extra)]


class Agent:
    def __init__(self, loaded: LoadedConfig, listen: str | None = None,
                 extra_collectors: list[tuple[Collector, float, float]] = ()) -> None:
        from agent.config import parse_listen

        self.loaded = loaded
        config = loaded.model
        self.host, self.port = parse_listen(listen or config.agent.listen)
        self.state = State(state_path(config))
        self.collector_status = CollectorStatusBuffer(self.state)
        self.audit = AuditLog(audit_path(config), actor="agent", on_append=self.state.set_audit_anchor)
        self._audit = tolerant_writer(self.audit)
        self.incidents = Incidents(self.state, on_change=self._incident_changed)
        self.cache = MetricCache()
        self.runners = build_runners(loaded, self.cache, list(extra_collectors), self._collector_finished)
        self.checks = HostChecks(config.checks, config.agent.tenant, config.agent.hostname)
        self.backups = build_backup_monitor(config.backups, self.state, self.incidents, self.cache,
                                            config.agent.tenant)
        self.updates = build_update_runner(loaded, self.state, self.incidents, self._audit)
        self.restore = build_restore_service(config, self.state, self.incidents, self._audit)
        self.farm = build_farm_service(config, self.state, self.incidents, self.cache)
        self.tickets = build_ticket_service(config, self.state, self.cache, self._audit)
        self._scheduler = None
        self._server = None
        self._stopped = threading.Event()
        self._stopping = False
        limit_malloc_arenas()

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self._server = make_server(self.host, self.port, self.cache, self.ready, self.healthy,
                                   post_routes=build_post_routes(self.loaded.model, self.incidents))
        self.port = self._server.server_address[1]
        serve_in_thread(self._server)
        hostname = self.loaded.model.agent.hostname
        self._audit("config.loaded", self.loaded.source,
                    {"sha256": self.loaded.sha256, "tenants": self.loaded.model.tenant_ids()})
        self._audit("agent.started", hostname,
                    {"version": __version__, "collectors": [r.name for r in self.runners],
                     "listen": f"{self.host}:{self.port}"})
        collection = cycles(self.runners, self.cache)
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=len(collection) + 6)},
            job_defaults={"coalesce": True, "max_instances": 1}, timezone=timezone.utc)
        now = datetime.now(timezone.utc)
        for cycle in collection:  # one wake-up and one render per interval, not per collector
            scheduler.add_job(cycle.run, "interval", seconds=cycle.interval, next_run_time=now,
                              id=f"collectors:{cycle.interval:g}s", misfire_grace_time=max(1, int(cycle.interval)))
        scheduler.add_job(self._flush_collector_status, "interval", seconds=FLUSH_EVERY, id="collector-status")
        interval = self.loaded.model.agent.check_interval
        scheduler.add_job(self.run_checks, "interval", seconds=interval, id="checks",
                          misfire_grace_time=max(1, int(interval)))
        if self.backups is not None:
            poll = self.loaded.model.backups.poll_interval
            scheduler.add_job(self.poll_backups, "interval", seconds=poll, next_run_time=now, id="backups",
                              misfire_grace_time=max(1, int(poll)))
            scheduler.add_job(self.backups.prune, "interval", hours=24, id="backups-prune")
        if self.updates is not None:
            self._schedule_updates(scheduler, now)
        if self.restore is not None:
            self._schedule_restore_tests(scheduler, now)
        if self.farm is not None:
            scheduler.add_job(self.farm_tick, "interval", seconds=FARM_TICK, next_run_time=now, id="farm")
            scheduler.add_job(self.farm.prune, "interval", hours=24, next_run_time=now, id="farm-prune")
        scheduler.start()
        self._scheduler = scheduler
        if self.tickets is not None:
            self.tickets.start()
        log.info("custode started", extra={"listen": f"{self.host}:{self.port}", "version": __version__,
                                           "collectors": len(self.runners), "config": self.loaded.source})

    def stop(self) -> None:
        # Jobs still running (a collector inside its timeout) must not write to a closed DB.
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self.farm is not None:
            self.farm.close()
        if self.tickets is not None:
            self.tickets.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._audit("agent.stopped", self.loaded.model.agent.hostname, {})
        self.collector_status.flush()
        self.state.close()
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
        except Exception:
            log.exception("checks failed")

    def farm_tick(self) -> None:
        if self._stopping or self.farm is None:
            return
        try:
            self.farm.tick()
        except Exception:
            log.exception("farm poll cycle failed")

    def poll_backups(self) -> None:
        if self._stopping or self.backups is None:
            return
        try:
            self.backups.poll()
        except Exception:
            log.exception("backup mail poll failed")

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

    def _schedule_updates(self, scheduler, now: datetime) -> None:
        """One cron job per window (Europe/Rome); runs get their own threads, they last hours."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.triggers.cron import CronTrigger

        from agent.calendar import ROME
        from agent.updates.runner import check_playbooks

        assert self.updates is not None
        for problem in check_playbooks(self.loaded.model, self.loaded.source):
            log.error("playbook problem: the window will fail until it is fixed", extra={"problem": str(problem)})
        for run_id in self.updates.recover():
            log.error("an update run was interrupted by the previous stop", extra={"run_id": run_id})
        windows = {n: w for n, w in self.loaded.model.updates.windows.items() if w.enabled}
        scheduler.add_executor(ThreadPoolExecutor(max_workers=max(1, len(windows))), "updates")
        for name, window in windows.items():
            days = ",".join(str(d) for d in window.weekdays)
            scheduler.add_job(self.run_update_window, CronTrigger(day_of_week=days, hour=window.start_time.hour,
                                                                  minute=window.start_time.minute, timezone=ROME),
                              args=[name], id=f"update:{name}", executor="updates", misfire_grace_time=900)
        scheduler.add_job(self.publish_updates, "interval", seconds=60, next_run_time=now, id="updates-metrics")

    def run_update_window(self, name: str, now: datetime | None = None) -> None:
        """The scheduled start of a window: skip it (holiday, closure) with a record, or run the playbook."""
        if self._stopping or self.updates is None:
            return
        from agent.updates.runner import RunRefused
        from agent.updates.windows import occurrence_at

        occurrence = occurrence_at(self.loaded.model, name, now or now_utc())
        try:
            if occurrence is None:
                log.warning("update window job fired outside its window", extra={"window": name})
            elif occurrence.skipped:
                log.info("update window skipped", extra={"window": name, "reason": occurrence.reason})
                self._audit("update.skipped", f"update/{name}", {"start": occurrence.start.isoformat(),
                                                                 "reason": occurrence.reason})
            else:
                self.updates.run(name, "scheduled", occurrence=occurrence)
        except RunRefused as exc:
            log.error("update not started", extra={"window": name, "error": str(exc)})
            self._audit("update.refused", f"update/{name}", {"reason": str(exc)})
        except Exception:
            log.exception("update window failed before its run started", extra={"window": name})
        finally:
            self.publish_updates()

    def publish_updates(self) -> None:
        if self._stopping or self.updates is None or self.updates.store is None:
            return
        from agent.updates.metrics import update_families

        try:
            self.cache.update("updates", update_families(self.loaded.model, self.updates.store, current_time()))
        except Exception:
            log.exception("update metrics failed")

    def _schedule_restore_tests(self, scheduler, now: datetime) -> None:
        """Cron per set (Europe/Rome) on one worker: restores are heavy, one at a time is plenty."""
        from apscheduler.executors.pool import ThreadPoolExecutor

        from agent.calendar import ROME
        from agent.cron_trigger import CronLineTrigger

        assert self.restore is not None
        section = self.loaded.model.restore_tests
        scheduler.add_executor(ThreadPoolExecutor(max_workers=1), "restore")
        for name, test_set in self.restore.sets().items():
            scheduler.add_job(self.run_restore_test, CronLineTrigger(test_set.schedule or section.schedule, ROME),
                              args=[name], id=f"restore:{name}", executor="restore", misfire_grace_time=6 * 3600)
        checked = self.restore.store.coverage_runs()
        for name in self.restore.covered_sets():
            scheduler.add_job(self.run_coverage, CronLineTrigger(section.coverage_schedule, ROME),
                              args=[name], id=f"coverage:{name}", executor="restore", misfire_grace_time=6 * 3600)
            if name not in checked:
                scheduler.add_job(self.run_coverage, args=[name], next_run_time=now, executor="restore",
                                  id=f"coverage-first:{name}")
        scheduler.add_job(self.check_restore_overdue, "interval", hours=1, next_run_time=now, id="restore-overdue")
        scheduler.add_job(self.publish_restore, "interval", minutes=5, next_run_time=now, id="restore-metrics")

    def run_restore_test(self, name: str) -> None:
        if self._stopping or self.restore is None:
            return
        try:
            certificate, _ = self.restore.run_test(name, "scheduled")
            log.info("restore test finished", extra={"set": name, "passed": certificate["passed"],
                                                     "files_checked": certificate["files_checked"]})
        except Exception:
            log.exception("restore test could not be recorded", extra={"set": name})
        finally:
            self.publish_restore()

    def run_coverage(self, name: str) -> None:
        if self._stopping or self.restore is None:
            return
        try:
            self.restore.coverage(name)
        except Exception:
            log.exception("coverage check failed", extra={"set": name})
        finally:
            self.publish_restore()

    def check_restore_overdue(self) -> None:
        if self._stopping or self.restore is None:
            return
        try:
            self.restore.check_overdue()
        except Exception:
            log.exception("restore-test overdue check failed")

    def publish_restore(self) -> None:
        if self._stopping or self.restore is None:
            return
        from agent.restore.metrics import restore_families

        try:
            self.cache.update("restore", restore_families(self.restore))
        except Exception:
            log.exception("restore-test metrics failed")

    def _collector_finished(self, outcome: RunOutcome) -> None:
        if self._stopping:
            return
        self.collector_status.record(outcome)

    def _flush_collector_status(self) -> None:
        if not self._stopping:
            self.collector_status.flush()

    def _incident_changed(self, change: IncidentChange) -> None:
        log.warning("incident %s", change.kind, extra={"incident": change.key, "severity": change.severity,
                                                       "summary": change.summary})
        self._audit(*change.audit_record())
        if self.tickets is not None:
            self.tickets.wake()

    # --- probes -----------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        outcomes = self.cache.outcomes()
        waiting = [r.name for r in self.runners if r.name not in outcomes]
        if waiting:
            return False, "waiting for the first run of: " + ", ".join(waiting)
        return True, "ready"

    def healthy(self) -> tuple[bool, str]:
        if self._scheduler is None or not self._scheduler.running:
            return False, "scheduler is not running"
        return True, "ok"


def build_backup_monitor(section, state: State, incidents: Incidents, cache: MetricCache,
                         default_tenant: str = DEFAULT_TENANT):
    """The backup-mail job, when the config has mailboxes or expected jobs (else None)."""
    if not section.enabled or not (section.mailboxes or section.expected):
        return None
    from agent.backups.service import BackupMonitor

    return BackupMonitor(section, state, incidents, publish=lambda families: cache.update("backups", families),
                         default_tenant=default_tenant)


def build_update_runner(loaded: LoadedConfig, state: State, incidents: Incidents, audit):
    """The update runner, when the config has update windows (else None)."""
    section = loaded.model.updates
    if not section.enabled or not section.windows:
        return None
    from agent.updates.runner import UpdateRunner
    from agent.updates.service import build_mailer

    return UpdateRunner(loaded.model, loaded.source, state, incidents, audit=audit,
                        mailer=build_mailer(loaded.model))


def build_farm_service(config, state: State, incidents: Incidents, cache: MetricCache):
    """Farm mode, when the config has hosts to poll (else None)."""
    if not config.polled_hosts():
        return None
    from agent.farm.service import FarmService, new_poller

    return FarmService(config, state, incidents, cache, poller=new_poller(config))


def build_ticket_service(config, state: State, cache: MetricCache, audit):
    """Tickets, when the config has helpdesk backends (else None)."""
    if not config.tickets.enabled or not config.tickets.backends:
        return None
    from agent.tickets.service import TicketService

    return TicketService(config, state, publish=lambda families: cache.update("tickets", families), audit=audit)


def build_post_routes(config, incidents: Incidents) -> dict:
    """POST endpoints: the Alertmanager bridge, when enabled."""
    bridge = config.tickets.alertmanager
    if not bridge.enabled:
        return {}
    from agent.tickets.alertmanager import AlertmanagerReceiver

    return {bridge.path: AlertmanagerReceiver(bridge, incidents, config.tenant_ids()).route()}


def build_restore_service(config, state: State, incidents: Incidents, audit):
    """Restore tests and coverage, when the config has backup sets (else None)."""
    if not config.restore_tests.enabled or not config.restore_tests.sets:
        return None
    from agent.paths import data_dir
    from agent.restore.service import RestoreService

    return RestoreService(config, state, incidents, audit, data_dir(config))


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas (like MALLOC_ARENA_MAX=2).

    Each collector runs in its own short-lived thread; glibc gives busy threads
    their own 64 MiB arenas, which costs a long-running agent megabytes of RSS
    for no speed it needs. Harmless no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-8, arenas)  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):
        pass
