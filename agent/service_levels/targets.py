"""A service-level target as a contract writes it: "8 working hours", "2 working days", "4 clock hours".

Contracts count in three units and mean different things by them. Working
hours run only inside the office hours that count for the level; working days
end at the same wall-clock time N working days later; clock hours are plain
elapsed hours, nights and Sundays included. The unit is part of the value so a
reader of the config sees which one a contract means; a bare duration (``8h``,
``90m``) is working time, as ``tickets.sla`` always was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from custode.agent.durations import parse_duration


class Unit(StrEnum):
    WORKING_TIME = "working"
    """Seconds of office time (working hours, working minutes)."""
    WORKING_DAYS = "working_days"
    CLOCK_TIME = "clock"
    """Seconds of plain elapsed time."""


_HOURS = {"h", "hour", "hours", "hr", "hrs", "ora", "ore"}
_MINUTES = {"m", "min", "mins", "minute", "minutes", "minuto", "minuti"}
_DAYS = {"d", "day", "days", "giorno", "giorni"}
_WORKING = {"working", "work", "business", "lavorativa", "lavorative", "lavorativo", "lavorativi", "utili", "utile",
            "di servizio", "service"}
_CLOCK = {"clock", "solari", "solare", "elapsed", "continuous", "consecutive", "consecutivi"}
_SHORT = {"wh": (Unit.WORKING_TIME, 3600.0), "wm": (Unit.WORKING_TIME, 60.0), "wd": (Unit.WORKING_DAYS, 1.0),
          "ch": (Unit.CLOCK_TIME, 3600.0), "cm": (Unit.CLOCK_TIME, 60.0)}
_FORM = re.compile(r"^(\d+(?:[.,]\d+)?)\s*([a-zà-ù ]+)$")
HINT = ("write it as '8 working hours', '2 working days', '4 clock hours' (short: 8wh, 2wd, 4ch), "
        "or a bare duration such as 8h or 90m for working time")


@dataclass(frozen=True)
class Target:
    """How long a level allows: ``amount`` seconds of working or clock time, or ``amount`` working days."""

    unit: Unit
    amount: float

    def describe(self, language: str = "en") -> str:
        """"8 working hours" / "8 ore lavorative", for ticket texts and reports."""
        if self.unit is Unit.WORKING_DAYS:
            count = _number(self.amount)
            if language == "it":
                return f"{count} giorn{'o' if self.amount == 1 else 'i'} lavorativ{'o' if self.amount == 1 else 'i'}"
            return f"{count} working day{'' if self.amount == 1 else 's'}"
        hours = self.amount / 3600.0
        if hours == int(hours) or hours >= 1 and (hours * 60) % 30 == 0:
            count, singular = _number(hours), hours == 1
            noun_it, noun_en = ("ora" if singular else "ore"), ("hour" if singular else "hours")
        else:
            count, singular = _number(self.amount / 60.0), self.amount == 60
            noun_it, noun_en = ("minuto" if singular else "minuti"), ("minute" if singular else "minutes")
        if self.unit is Unit.CLOCK_TIME:
            return f"{count} {noun_it} solar{'e' if singular else 'i'}" if language == "it" else \
                f"{count} clock {noun_en}"
        if language == "it":
            return f"{count} {noun_it} lavorativ{'a' if singular else 'e'}"
        return f"{count} working {noun_en}"

    def as_config(self) -> str:
        """The English form, which :func:`parse_target` reads back."""
        return self.describe("en")

    @property
    def working_hours(self) -> float | None:
        """The target in working hours when it is working time (ticket texts say "8 working hours")."""
        return self.amount / 3600.0 if self.unit is Unit.WORKING_TIME else None


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def parse_target(value: object) -> Target:
    """A :class:`Target` from config: a string with its unit, a bare duration, or a mapping {amount, unit}."""
    if isinstance(value, Target):
        return value
    if isinstance(value, dict):
        return _from_mapping(value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(HINT)
    if isinstance(value, (int, float)):
        return Target(Unit.WORKING_TIME, parse_duration(value))
    text = " ".join(value.strip().lower().split())
    short = re.fullmatch(r"(\d+(?:[.,]\d+)?)\s*(wh|wm|wd|ch|cm)", text)
    if short:
        unit, scale = _SHORT[short[2]]
        return _positive(Target(unit, float(short[1].replace(",", ".")) * scale))
    match = _FORM.match(text)
    if match:
        amount = float(match[1].replace(",", "."))
        words = match[2].strip()
        return _positive(_from_words(amount, words, value))
    try:
        return Target(Unit.WORKING_TIME, parse_duration(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a service-level target; {HINT}") from None


def _from_words(amount: float, words: str, original: str) -> Target:
    tokens = words.split()
    head, rest = tokens[0], " ".join(tokens[1:])
    qualifier = rest or ""
    if head in ("working", "work", "business", "clock", "elapsed") and rest:
        head, qualifier = tokens[1], tokens[0] + (" " + " ".join(tokens[2:]) if len(tokens) > 2 else "")
    working = any(q in _WORKING for q in (qualifier, *qualifier.split())) if qualifier else None
    clock = any(q in _CLOCK for q in (qualifier, *qualifier.split())) if qualifier else False
    if qualifier and not working and not clock:
        raise ValueError(f"{original!r} is not a service-level target; {HINT}")
    if head in _DAYS:
        if clock:
            return Target(Unit.CLOCK_TIME, amount * 86400.0)
        if working is None:
            raise ValueError(f"{original!r}: write '{_number(amount)} working days' (same time of day N working "
                             f"days later) or '{_number(amount * 24)} clock hours'; a bare 'days' is ambiguous")
        return Target(Unit.WORKING_DAYS, amount)
    if head in _HOURS or head in _MINUTES:
        seconds = amount * (3600.0 if head in _HOURS else 60.0)
        return Target(Unit.CLOCK_TIME if clock else Unit.WORKING_TIME, seconds)
    raise ValueError(f"{original!r} is not a service-level target; {HINT}")


def _from_mapping(value: dict[str, Any]) -> Target:
    unknown = set(value) - {"amount", "unit"}
    if unknown or "amount" not in value or "unit" not in value:
        raise ValueError(f"a target mapping has exactly 'amount' and 'unit' (working_hours, working_days, "
                         f"clock_hours); or {HINT}")
    units = {"working_hours": (Unit.WORKING_TIME, 3600.0), "working_minutes": (Unit.WORKING_TIME, 60.0),
             "working_days": (Unit.WORKING_DAYS, 1.0), "clock_hours": (Unit.CLOCK_TIME, 3600.0),
             "clock_minutes": (Unit.CLOCK_TIME, 60.0)}
    if value["unit"] not in units:
        raise ValueError(f"unit {value['unit']!r} is not one of {', '.join(units)}")
    amount = value["amount"]
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise ValueError(f"amount {amount!r} is not a number")
    unit, scale = units[value["unit"]]
    return _positive(Target(unit, float(amount) * scale))


def _positive(target: Target) -> Target:
    if target.amount <= 0:
        raise ValueError("a service-level target must be greater than zero")
    if target.unit is Unit.WORKING_DAYS and target.amount != int(target.amount):
        raise ValueError(f"{target.amount:g} working days: give whole days, or the time in working hours")
    return target


TargetField = Annotated[Target, BeforeValidator(parse_target), PlainSerializer(lambda t: t.as_config())]
