"""Per-tenant OS patch policy: when "no update installed for N days" is a fault and when it is the plan.

(Skeleton: the model's fields are fixed; the judgement lives in this module.)
"""

from __future__ import annotations

from pydantic import Field

from custode.agent.schema import Strict


class PatchPolicy(Strict):
    """How often a comune's server operating systems are patched (Vaiano: twice a year, March and October)."""

    months: list[int] = Field(default_factory=list, description="the months OS patches are installed in, e.g. "
                                                                "[3, 10]; empty: continuous (the age limits apply)")
