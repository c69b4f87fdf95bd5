"""One module per helpdesk; :func:`build_backend` picks it from the config's ``type``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.tickets.backends.base import TicketBackend
    from agent.tickets.config import BackendConfig


def build_backend(name: str, config: "BackendConfig", smtp=None) -> "TicketBackend":
    """The backend for one ``tickets.backends`` entry; imports only the module it needs."""
    if config.type == "zendesk":
        from agent.tickets.backends.zendesk import ZendeskBackend

        return ZendeskBackend(name, config)
    if config.type == "glpi":
        from agent.tickets.backends.glpi import GlpiBackend

        return GlpiBackend(name, config)
    if config.type == "email":
        from agent.tickets.backends.email import EmailBackend

        return EmailBackend(name, config, smtp)
    from agent.tickets.backends.webhook import WebhookBackend

    return WebhookBackend(name, config)
