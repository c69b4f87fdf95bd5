"""The base of every config model, apart from :mod:`custode.agent.config` so feature sections can import it."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def check_names(value: dict, what: str = "names") -> dict:
    """Keys used on the command line and in metric labels: letters, digits, '-', '_' and '.'."""
    for name in value:
        if not NAME.match(name):
            raise ValueError(f"{name!r}: {what} are letters, digits, '-', '_' and '.', starting with a letter or "
                             "digit, at most 63 characters (they are used on the command line and in metrics)")
    return value


LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def check_label_names(value: dict[str, str], reserved: frozenset[str], examples: str) -> dict[str, str]:
    """A config's own metric labels (a host's, a probe's): Prometheus' rule, and none Custode already sets.

    ``examples``: two label names that suit the section, for the message (``'site' or 'role'``)."""
    for name in value:
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"label {name!r}: label names are letters, digits and '_', not starting with a "
                             f"digit or '__' (Prometheus' rule), e.g. {examples.replace(' or ', ', ')}")
        if name in reserved:
            raise ValueError(f"label {name!r} is set by Custode or Prometheus itself; choose another name "
                             f"(e.g. {examples})")
    return value


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors.

    A misspelt option silently ignored is how a monitoring agent ends up not
    monitoring.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
