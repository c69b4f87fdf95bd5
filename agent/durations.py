"""Durations as sysadmins write them ("30s", "5m", "1h30m", "2d") or bare seconds.

A config full of bare numbers is ambiguous (seconds? minutes?); a unit suffix
makes intent obvious, while bare numbers stay accepted as seconds.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
DURATION_HINT = "a duration such as 30s, 5m, 1h30m or 2d"


def parse_duration(value: object) -> float:
    """Seconds for ``value``; raise ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HINT}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _PART.sub("", text) == "":
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(f"expected {DURATION_HINT}")
    else:
        raise ValueError(f"expected {DURATION_HINT}")
    if seconds <= 0:
        raise ValueError(f"expected {DURATION_HINT} greater than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest readable form: 90 -> '1m30s', 0.5 -> '500ms'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = [], round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            count, rest = divmod(rest, size)
            out.append(f"{count}{unit}")
    return "".join(out) or "0s"


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
