"""The Alertmanager bridge: a POST route that turns alert notifications into incidents."""

from __future__ import annotations

from custode.agent.services import Context, Service
from custode.agent.web import Route

ORDER = 60


class AlertmanagerBridgeService(Service):
    name = "alertmanager"

    def __init__(self, route: Route) -> None:
        self.route = route

    def routes(self) -> list[Route]:
        return [self.route]


def build(context: Context) -> AlertmanagerBridgeService | None:
    """The bridge, when ``tickets.alertmanager`` is enabled."""
    config = context.loaded.model
    bridge = config.tickets.alertmanager
    if not bridge.enabled:
        return None
    from custode.agent.tickets.alertmanager import AlertmanagerReceiver

    return AlertmanagerBridgeService(AlertmanagerReceiver(bridge, context.incidents, config.tenant_ids()).route())
