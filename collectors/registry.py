"""Collector registry: modules register their class, the agent looks them up.

Built-in collectors are the modules of this package; third-party collectors
are found through the ``custode.collectors`` entry point group. Discovery
imports modules lazily so that a broken optional collector cannot stop the
agent: its import error is logged, kept in :func:`broken`, and the agent runs
a stand-in under the module's name that fails every run with that error, so
``custode_collector_success{collector="NAME"} 0``, ``custode status`` and
``custode once`` show it instead of the collector silently missing.
"""

from __future__ import annotations

import logging

from custode.agent.plugins import entry_point_objects, package_modules
from custode.collectors.base import Collector

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Collector]] = {}
_BROKEN: dict[str, str] = {}
_NOT_COLLECTORS = frozenset({"base", "registry"})
ENTRY_POINT_GROUP = "custode.collectors"
_discovered = False


def register(cls: type[Collector]) -> type[Collector]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"collector class {cls.__qualname__} has no name")
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"collector name {cls.name!r} is registered twice "
                         f"({existing.__module__} and {cls.__module__})")
    _REGISTRY[cls.name] = cls
    return cls


def discover() -> None:
    """Import every built-in collector module and every installed plugin once."""
    global _discovered
    if _discovered:
        return
    from custode import collectors
    for found in package_modules(collectors, skip=_NOT_COLLECTORS):  # built-ins register on import
        if found.error is not None:
            _record_broken(found.name, found.source, found.error)
    for found in entry_point_objects(ENTRY_POINT_GROUP):
        try:
            if found.error is not None:
                raise found.error
            register(found.loaded)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - a broken third-party plug-in must not stop the agent
            _record_broken(found.name, found.source, exc)
    _discovered = True


def _record_broken(name: str, where: str, exc: BaseException) -> None:
    # LogRecord reserves "module" (and "name"): an extra key of that name makes the log call itself raise.
    error = f"{where} cannot be loaded: {type(exc).__name__}: {exc}"
    _BROKEN[name] = error
    log.error("collector not loaded; fix or remove it", exc_info=exc,
              extra={"collector": name, "source": where, "error": f"{type(exc).__name__}: {exc}"})


def broken() -> dict[str, str]:
    """Collectors that could not be loaded (after discovery): name -> why, naming the module or plug-in."""
    discover()
    return {name: error for name, error in sorted(_BROKEN.items()) if name not in _REGISTRY}


class Unloadable(Collector):
    """Stand-in for a collector whose code could not be loaded: every run fails with the load error."""

    description = "a collector whose module could not be imported"
    default_interval = 60.0
    default_timeout = 1.0

    def __init__(self, name: str, error: str) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]  # one stand-in class serves every broken module
        self.error = error

    def collect(self) -> list:
        raise RuntimeError(self.error)


def available() -> dict[str, type[Collector]]:
    """All known collectors by name (after discovery)."""
    discover()
    return dict(sorted(_REGISTRY.items()))
