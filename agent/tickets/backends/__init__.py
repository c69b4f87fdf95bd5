"""One module per helpdesk, named as its ``type``; :func:`build_backend` imports only the one a config names.

Adding a helpdesk is its module here (``agent/tickets/backends/<type>.py``
with a ``build(name, config, smtp)`` function) plus its config model, with
``type: Literal["<type>"]``, in the ``BackendConfig`` union of
``agent/tickets/config.py``; a ``type`` no module answers is refused when the
config is loaded, by that union. ``tests/test_ticket_backend_registry.py``
holds the union and the modules to each other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from custode.agent.smtp_settings import SmtpSettings
    from custode.agent.tickets.backends.base import TicketBackend
    from custode.agent.tickets.config import BackendConfig

NOT_BACKENDS = frozenset({"base", "http"})  # the contract and the HTTP client the helpdesk modules share


def build_backend(name: str, config: BackendConfig, smtp: SmtpSettings | None = None) -> TicketBackend:
    """The backend for one ``tickets.backends`` entry: ``custode.agent.tickets.backends.<type>.build``."""
    if config.type in NOT_BACKENDS:
        raise ValueError(f"tickets.backends.{name}: {config.type!r} is no helpdesk type")
    module = importlib.import_module(f"{__name__}.{config.type}")
    backend: TicketBackend = module.build(name, config, smtp)
    return backend
