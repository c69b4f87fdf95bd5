"""'Did you mean ...?' for misspelt keys, collector names and tenants."""

from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known choice to ``word`` when it is close enough to be a typo."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.75)
    return matches[0] if matches else None
