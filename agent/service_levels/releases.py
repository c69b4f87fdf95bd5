"""The tenant's releases in a period (update runs of its windows) and whether each was announced beforehand.

Sassuolo's contract fines a release not announced in advance. A release is an
update run (any trigger, any outcome: a run that failed or rolled back still
touched the comune's service) of a window that is the tenant's: one with
``tenant:`` set to it, or a farm-wide window (no ``tenant:``) that updates one
of its hosts. Whether the run was announced is the announcement module's
answer (``custode.agent.updates.announce.announcement_for``, which knows the
notices sent); this module only asks it, so the report and the notices agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from custode.agent.service_levels.penalties import Release, ReleaseFacts
from custode.agent.service_levels.period import Span

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.state import State

log = logging.getLogger(__name__)
RUNS_READ = 100_000
"""Runs read from the update history at most: weekly windows make a few hundred a year."""
Lookup = Callable[["State", str, float, str], "float | None"]


def tenant_windows(config: "Config", tenant: str) -> set[str]:
    """Names of the windows whose runs are the tenant's releases."""
    names = set()
    for name, window in config.updates.windows.items():
        if window.tenant == tenant:
            names.add(name)
        elif window.tenant is None and any(getattr(config.hosts.get(h), "tenant", None) == tenant
                                           for h in window.hosts):
            names.add(name)
    return names


def announcement_lookup() -> tuple[Lookup | None, str | None]:
    """``announcement_for`` when the announcement module is installed, else None and the reason."""
    try:
        from custode.agent.updates import announce
    except ImportError:
        return None, ("custode.agent.updates.announce is not part of this build: whether a release was announced "
                      "cannot be checked yet")
    lookup = getattr(announce, "announcement_for", None)
    if lookup is None:
        return None, "custode.agent.updates.announce has no announcement_for(): releases cannot be judged"
    return lookup, None


def release_facts(config: "Config", state: "State", tenant: str, period: Span,
                  lookup: Lookup | None = None) -> ReleaseFacts:
    """The tenant's runs started in ``period``, each with its announcement time (or why it is not known)."""
    from custode.agent.updates.store import UpdateStore

    reason = None
    if lookup is None:
        lookup, reason = announcement_lookup()
    windows = tenant_windows(config, tenant)
    rows = [row for row in UpdateStore(state).history(limit=RUNS_READ)
            if period.contains(row["started_at"]) and (row["window"] in windows or row["tenant"] == tenant)]
    releases = []
    failures = []
    for row in sorted(rows, key=lambda r: (r["started_at"], r["id"])):
        base = dict(run_id=row["id"], window=row["window"], application=row["application"],
                    started_at=row["started_at"], window_start=row["window_start"], trigger=row["trigger"],
                    status=row["status"])
        if lookup is None:
            releases.append(Release(**base, announced_at=None, evaluated=False, why=reason or "not evaluated"))
            continue
        try:
            announced = lookup(state, row["window"], row["window_start"], tenant)
        except Exception as exc:  # noqa: BLE001 - one failed lookup must not hide the rest of the report
            log.warning("announcement lookup failed", extra={"window": row["window"], "error": str(exc)})
            failures.append(str(exc))
            releases.append(Release(**base, announced_at=None, evaluated=False,
                                    why=f"the announcement could not be looked up: {exc}"))
            continue
        if announced is None:
            why = ("urgent run outside the window (--now): no advance notice recorded, only its start may have been "
                   "announced" if row["trigger"] == "now" else "no advance notice recorded as sent")
        else:
            why = "announced before it started" if announced < row["started_at"] else "announced after it started"
        releases.append(Release(**base, announced_at=announced, evaluated=True, why=why))
    if lookup is None:
        return ReleaseFacts(tuple(releases), False, reason)
    if failures:
        return ReleaseFacts(tuple(releases), False, f"{len(failures)} announcement lookup(s) failed: {failures[0]}")
    return ReleaseFacts(tuple(releases), True)
