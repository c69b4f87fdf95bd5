"""Finding the plug-ins of one kind: the modules of a package, then an entry-point group.

Every plug-in kind (collectors, backup-report parsers, ticket backends, ...)
is found the same way, as node_exporter finds its collectors: a built-in is a
module of the kind's package, an outside one is an installed distribution's
entry point in the kind's group (``custode.collectors``,
``custode.backup_parsers``, ...). Loading is the kind's own business; this
module only walks both sources and hands each name over with what it loaded,
or with the exception that stopped it, so that one broken plug-in is reported
and the others still load.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType


@dataclass(frozen=True)
class Found:
    """One plug-in: its name, where it comes from (for messages), and what loading it gave."""

    name: str
    source: str  # "module custode.agent.backups.parsers.veeam_br" or "plug-in vendor_pkg:Parser"
    loaded: object | None = None
    error: BaseException | None = None


def package_modules(package: ModuleType, skip: frozenset[str] = frozenset()) -> Iterator[Found]:
    """The package's modules (not those starting with ``_`` or named in ``skip``), imported, in name order."""
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__))
    for name in names:
        if name.startswith("_") or name in skip:
            continue
        qualified = f"{package.__name__}.{name}"
        try:
            yield Found(name, f"module {qualified}", importlib.import_module(qualified))
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported by the caller, the rest still load
            yield Found(name, f"module {qualified}", error=exc)


def entry_point_objects(group: str) -> Iterator[Found]:
    """The objects installed distributions declare in the entry-point ``group``, loaded."""
    for point in entry_points(group=group):
        try:
            yield Found(point.name, f"plug-in {point.value}", point.load())
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported by the caller, the rest still load
            yield Found(point.name, f"plug-in {point.value}", error=exc)
