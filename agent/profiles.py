"""Service profiles (MINIMAL, BASIC, PRO, ENTERPRISE …): which services a comune bought, and its queue priority.

A contract sells monitoring, backup control, restore tests, Saturday on-call
and so on in bundles. The profile is what Custode consults before it opens a
ticket on a comune's behalf: a comune that did not buy backup control gets no
backup tickets (its backups may still be shown), and Saturday hours count for
its blocking tickets only if it bought the on-call service. A tenant with no
profile has every service, as before profiles existed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from pydantic import Field

from custode.agent.config_refs import ProfileRef
from custode.agent.schema import Strict

if TYPE_CHECKING:
    from custode.agent.config import Config

Feature = Literal["monitoring", "backup_control", "restore_tests", "updates", "os_patches", "saturday_on_call",
                  "alerts"]
FEATURES: tuple[str, ...] = get_args(Feature)

CHECK_FEATURES: dict[str, str] = {
    "backup": "backup_control", "backup_mailbox": "backup_control",
    "restore_test": "restore_tests", "restore_test_overdue": "restore_tests", "backup_coverage": "restore_tests",
    "update": "updates", "os_updates": "os_patches", "alertmanager": "alerts",
}
"""The feature a check's incidents belong to; every other check is ``monitoring`` (disk, CPU, reachability…)."""

__all__ = ["FEATURES", "Feature", "Profile", "ProfileRef", "feature_of", "has_feature", "profile_lines",
           "queue_priority", "tickets_for_check"]


class Profile(Strict):
    """One service profile of the provider's offer."""

    description: str | None = Field(default=None, description="what the contract says of it")
    features: list[Feature] = Field(description=f"the services it includes: {', '.join(FEATURES)}")
    queue_priority: int = Field(default=0, ge=0, le=9, description="helpdesk queue priority (0 lowest … 9): "
                                                                   "higher goes first in the outbox")


def feature_of(check: str) -> str:
    return CHECK_FEATURES.get(check, "monitoring")


def tenant_profile(config: "Config", tenant: str | None) -> Profile | None:
    own = config.tenants.get(tenant) if tenant else None
    if own is None or own.profile is None:
        return None
    return config.profiles.get(own.profile)


def has_feature(config: "Config", tenant: str | None, feature: str) -> bool:
    """Whether ``tenant`` bought ``feature``; a tenant with no profile has them all."""
    profile = tenant_profile(config, tenant)
    return profile is None or feature in profile.features


def tickets_for_check(config: "Config", tenant: str | None, check: str) -> bool:
    """Whether Custode opens tickets for ``check``'s incidents of ``tenant``."""
    return has_feature(config, tenant, feature_of(check))


def queue_priority(config: "Config", tenant: str | None) -> int:
    profile = tenant_profile(config, tenant)
    return profile.queue_priority if profile is not None else 0


FEATURE_WORDS = {"monitoring": "monitoring", "backup_control": "backup control", "restore_tests": "restore tests",
                 "updates": "vendor updates", "os_patches": "OS patches", "saturday_on_call": "Saturday on call",
                 "alerts": "Prometheus alerts"}


def profile_lines(config: "Config") -> list[str]:
    """One line per tenant with a profile: which services get no tickets (``custode config check`` prints them).

    A profile that leaves a service out is legal, but a sysadmin must see at
    once that a comune's failed backups will not reach the helpdesk.
    """
    lines = []
    for tenant_id, tenant in sorted(config.tenants.items()):
        if tenant.profile is None or tenant.profile not in config.profiles:
            continue
        missing = [FEATURE_WORDS[f] for f in FEATURES if f not in config.profiles[tenant.profile].features]
        without = f"; no tickets for {', '.join(missing)}" if missing else "; every service"
        lines.append(f"  {tenant_id}: profile {tenant.profile} (queue priority "
                     f"{config.profiles[tenant.profile].queue_priority}){without}")
    return lines
