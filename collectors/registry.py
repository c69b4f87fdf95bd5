"""Collector registry: modules register their class, the agent looks them up.

Built-in collectors are the modules of this package; third-party collectors
are found through the ``custode.collectors`` entry point group. Discovery
imports modules lazily so that a broken optional collector cannot stop the
agent: its import error is logged and it is simply absent.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from importlib.metadata import entry_points

from collectors.base import Collector

log = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Collector]] = {}
_NOT_COLLECTORS = {"base", "registry"}
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
    import collectors

    for module in pkgutil.iter_modules(collectors.__path__):
        if module.name in _NOT_COLLECTORS or module.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"collectors.{module.name}")
        except Exception:  # a broken collector must not stop the agent
            log.exception("cannot import collector module", extra={"module": module.name})
    for ep in entry_points(group="custode.collectors"):
        try:
            register(ep.load())
        except Exception:
            log.exception("cannot load collector plugin", extra={"plugin": ep.name})
    _discovered = True


def available() -> dict[str, type[Collector]]:
    """All known collectors by name (after discovery)."""
    discover()
    return dict(sorted(_REGISTRY.items()))
