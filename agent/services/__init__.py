"""The service contract: what a feature (backups, updates, restore tests, farm, tickets, the status page)
gives the agent.

The agent core knows no feature by name. Each feature is a module of this
package with a ``build(context) -> Service | None`` function (None: the
config does not use the feature) and an ``ORDER`` (its place when services
start; they stop in reverse). The runtime finds the modules
(:func:`build_services`), schedules every :class:`Job` a service declares
under one guard (a job of a stopping agent does not run; a job that raises is
logged and the scheduler goes on), adds the services' executors and HTTP
routes, starts them in order and stops them in reverse. Adding a service is
its module here; ``tests/test_services.py`` holds the modules to the
contract.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from custode.agent.plugins import package_modules

if TYPE_CHECKING:
    from custode.agent.audit import AuditWriter
    from custode.agent.config_loader import LoadedConfig
    from custode.agent.incidents import IncidentChange, Incidents
    from custode.agent.metric_cache import MetricCache
    from custode.agent.state import State
    from custode.agent.web import Route

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What every service is built from: the one config, state DB, incident model, metric cache and audit log."""

    loaded: LoadedConfig
    state: State
    incidents: Incidents
    cache: MetricCache
    audit: AuditWriter


@dataclass(frozen=True)
class Job:
    """One scheduled job: APScheduler's trigger and its arguments, under a name logs and tests use."""

    id: str
    run: Callable[..., object]
    trigger: object  # "interval", or a trigger instance (cron line, CronTrigger)
    trigger_args: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[object, ...] = ()
    executor: str = "default"
    run_now: bool = False  # also once at start
    misfire_grace_time: int | None = None


class Service:
    """A feature as the agent runs it. Every hook has a default that does nothing: a service overrides
    what it has (no abstract methods, so a route-only service is three lines)."""

    name: ClassVar[str]

    def jobs(self, now: datetime) -> list[Job]:
        """The jobs to schedule (``now``: the agent's start, for jobs that also run at once)."""
        return []

    def executors(self) -> dict[str, int]:
        """Thread pools of its own (name -> workers), for jobs that last long or must not overlap."""
        return {}

    def routes(self) -> list[Route]:
        """The HTTP routes the service answers (:mod:`custode.agent.web`); a path another owner has is an error."""
        return []

    def start(self) -> None:
        """After the scheduler has started (threads of the service's own)."""

    def stop(self) -> None:
        """Before the state DB closes: finish or abandon work, close connections."""

    def incident_changed(self, change: IncidentChange) -> None:
        """Every incident opened, changed or resolved (tickets act on them)."""


Builder = Callable[[Context], "Service | None"]


def service_modules() -> list[Any]:
    """The service modules of this package, in start order (ORDER, then name); a broken one raises."""
    modules = []
    for found in package_modules(sys.modules[__name__]):
        if found.error is not None:
            raise found.error  # a feature's code that cannot be imported is a broken installation
        modules.append(found.loaded)
    return sorted(modules, key=lambda module: (module.ORDER, module.__name__))


def build_services(context: Context) -> list[Service]:
    """Every service the config uses, built, in start order."""
    services = []
    for module in service_modules():
        service = module.build(context)
        if service is not None:
            services.append(service)
    return services


def guarded(job: Job, stopping: Callable[[], bool]) -> Callable[..., None]:
    """The job as the scheduler runs it: not at all once the agent stops, and never raising."""

    def run(*args: object) -> None:
        if stopping():
            return
        try:
            job.run(*args)
        except Exception:
            log.exception("scheduled job failed", extra={"job": job.id})

    return run
