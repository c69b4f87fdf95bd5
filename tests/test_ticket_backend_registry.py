"""Each helpdesk type of the config is one module of agent/tickets/backends, and each module one type."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing

import pytest

import custode.agent.tickets.backends as backends
from custode.agent.config_loader import ConfigError, load_text
from custode.agent.tickets.backends.base import TicketBackend
from custode.agent.tickets.config import BackendConfig


def _config_types() -> set[str]:
    union = typing.get_args(BackendConfig)[0]
    return {typing.get_args(model.model_fields["type"].annotation)[0] for model in typing.get_args(union)}


def test_the_config_union_and_the_modules_name_the_same_helpdesks() -> None:
    modules = {info.name for info in pkgutil.iter_modules(backends.__path__)} - backends.NOT_BACKENDS
    assert _config_types() == modules


@pytest.mark.parametrize("kind", sorted(_config_types()))
def test_each_module_builds_its_backend(kind: str) -> None:
    module = importlib.import_module(f"custode.agent.tickets.backends.{kind}")
    built = inspect.signature(module.build).return_annotation
    assert issubclass(getattr(module, built) if isinstance(built, str) else built, TicketBackend)


def test_an_unknown_helpdesk_type_is_a_config_error_naming_the_types() -> None:
    with pytest.raises(ConfigError) as raised:
        load_text("tickets:\n  backends:\n    helpdesk:\n      type: otrs\n      url: https://otrs.example.it\n")
    message = str(raised.value)
    assert "otrs" in message and "zendesk" in message
