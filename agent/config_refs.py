"""References between config sections, declared where the field is and checked in one walk.

A field that names something defined elsewhere in the config (a tenant, a
host under ``hosts:``, a ticket backend) is annotated with its
:class:`Reference`: ``tenant: TenantRef | None``, ``hosts: list[HostRef]``,
``expected: dict[TenantKey, ...]`` for a mapping keyed by tenant. The loader
walks the validated model once (:func:`references`) and checks every value
against what the config defines, whatever section it is in, so a new section
that names a tenant is checked the day it is written.
``tests/test_config_refs.py`` fails for a field named like a reference
(``tenant``, ``host``, ``hosts``, ``backend`` ...) that carries no annotation
and is not listed there as something else.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Union

from pydantic import BaseModel


@dataclass(frozen=True)
class Reference:
    """What a field's value names: ``kind`` (in messages) defined under ``section``."""

    kind: str
    section: str


TENANT = Reference("tenant", "tenants")
HOST = Reference("host", "hosts")
TICKET_BACKEND = Reference("ticket backend", "tickets.backends")
PROFILE = Reference("service profile", "profiles")

TenantRef = Annotated[str, TENANT]
HostRef = Annotated[str, HOST]
TicketBackendRef = Annotated[str, TICKET_BACKEND]
ProfileRef = Annotated[str, PROFILE]
TenantKey = Annotated[str, TENANT]  # a mapping's key that is a tenant id

Path = tuple[str | int, ...]


def references(model: BaseModel, path: Path = ()) -> Iterator[tuple[Path, Reference, str]]:
    """Every (YAML path, reference, value) in ``model`` and the models inside it."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        yield from _walk(field.annotation, value, (*path, field.alias or name))


def _reference_of(annotation: object) -> Reference | None:
    if typing.get_origin(annotation) is Annotated:
        return next((extra for extra in typing.get_args(annotation)[1:] if isinstance(extra, Reference)), None)
    return None


def _walk(annotation: object, value: object, path: Path) -> Iterator[tuple[Path, Reference, str]]:
    reference = _reference_of(annotation)
    if reference is not None and isinstance(value, str):
        yield path, reference, value
        return
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is Annotated:
        yield from _walk(arguments[0], value, path)
    elif origin in (Union, types.UnionType):
        for argument in arguments:
            if _fits(argument, value):
                yield from _walk(argument, value, path)
                return
    elif origin is list and isinstance(value, list) and arguments:
        for index, item in enumerate(value):
            yield from _walk(arguments[0], item, (*path, index))
    elif origin is dict and isinstance(value, dict) and len(arguments) == 2:
        key_reference = _reference_of(arguments[0])
        for key, item in value.items():
            if key_reference is not None:
                yield (*path, key), key_reference, key
            yield from _walk(arguments[1], item, (*path, key))
    elif isinstance(value, BaseModel):
        yield from references(value, path)


def _fits(annotation: object, value: object) -> bool:
    """Whether ``value`` is of the union member ``annotation`` (enough to follow the right branch)."""
    bare = typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation
    origin = typing.get_origin(bare) or bare
    if bare is type(None):
        return value is None
    return isinstance(origin, type) and isinstance(value, origin)
