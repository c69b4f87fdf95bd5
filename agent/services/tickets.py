"""Tickets: the outbox worker (its own thread), woken by every incident change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from custode.agent.services import Context, Service

if TYPE_CHECKING:
    from custode.agent.incidents import IncidentChange
    from custode.agent.tickets.service import TicketService

ORDER = 50


class TicketsService(Service):
    name = "tickets"

    def __init__(self, tickets: TicketService) -> None:
        self.feature = tickets

    def start(self) -> None:
        self.feature.start()

    def stop(self) -> None:
        self.feature.stop()

    def incident_changed(self, change: IncidentChange) -> None:
        self.feature.wake()


def build(context: Context) -> TicketsService | None:
    """Tickets, when the config has helpdesk backends."""
    config = context.loaded.model
    if not config.tickets.enabled or not config.tickets.backends:
        return None
    from custode.agent.tickets.service import TicketService

    cache = context.cache
    return TicketsService(TicketService(config, context.state, audit=context.audit,
                                        publish=lambda families: cache.update("tickets", families)))
