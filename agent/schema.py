"""The base of every config model, apart from :mod:`agent.config` so feature sections can import it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors.

    A misspelt option silently ignored is how a monitoring agent ends up not
    monitoring.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
