"""Crontab lines checked field by field, so an error says which field is wrong and what it allows.

croniter only says yes or no; "use five fields" for ``0 25 * * *`` (five
fields, hour 25) sent a sysadmin counting spaces. Here each field is read
the way cron(5) reads it (``*``, lists, ranges, steps, month and day names,
Sunday as 0 or 7) and the first wrong one is named with its allowed range;
croniter stays the judge of what is left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

EXAMPLES = "e.g. '0 22 * * *' (every night at 22:00) or '30 21 * * 1-5' (weekdays at 21:30)"


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] means low + i


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    _Field("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_ITEM = re.compile(r"^(?P<range>\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>[0-9]+))?$")


def _value(text: str, spec: _Field) -> int:
    lowered = text.lower()
    if lowered in spec.names:
        return spec.low + spec.names.index(lowered)
    if not text.isdigit():
        allowed = f" or a name ({', '.join(spec.names[:3])}, …)" if spec.names else ""
        raise ValueError(f"{spec.name} field: {text!r} is not a number{allowed}")
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise ValueError(f"{spec.name} field: {number} is out of range {spec.low}-{spec.high}")
    return number


def _check_field(text: str, spec: _Field) -> None:
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise ValueError(f"{spec.name} field: {item!r} is not '*', a value, a range a-b or a step */n")
        if match.group("step") is not None and int(match.group("step")) == 0:
            raise ValueError(f"{spec.name} field: a step of 0 never advances; use */1 or *")
        part = match.group("range")
        if part == "*":
            continue
        first, _, last = part.partition("-")
        start = _value(first, spec)
        if last and _value(last, spec) < start:
            raise ValueError(f"{spec.name} field: the range {part} runs backwards; write it low-high")


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a five-field crontab line, naming the field, or None."""
    fields = expression.split()
    if len(fields) != 5:
        return (f"{len(fields)} field{'s' if len(fields) != 1 else ''}; a cron line has five: "
                f"minute hour day-of-month month day-of-week, {EXAMPLES}")
    try:
        for text, spec in zip(fields, _FIELDS, strict=True):
            _check_field(text, spec)
    except ValueError as exc:
        return str(exc)
    from croniter import croniter

    if not croniter.is_valid(" ".join(fields)):
        return f"croniter cannot read it; {EXAMPLES}"
    return None


def _valid_cron(expression: str) -> str:
    expression = " ".join(expression.split())
    problem = cron_problem(expression)
    if problem:
        raise ValueError(f"invalid cron expression {expression!r}: {problem}")
    return expression


Cron = Annotated[str, AfterValidator(_valid_cron)]
"""A crontab line in config (cron's meaning: Sunday = 0 or 7), normalised to single spaces."""
