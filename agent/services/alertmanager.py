"""The Alertmanager bridge: a POST route that turns alert notifications into incidents."""

from __future__ import annotations

from custode.agent.services import Context, Service

ORDER = 60


class AlertmanagerBridgeService(Service):
    name = "alertmanager"

    def __init__(self, path: str, handler: object) -> None:
        self.path = path
        self.handler = handler

    def routes(self) -> dict[str, object]:
        return {self.path: self.handler}


def build(context: Context) -> AlertmanagerBridgeService | None:
    """The bridge, when ``tickets.alertmanager`` is enabled."""
    config = context.loaded.model
    bridge = config.tickets.alertmanager
    if not bridge.enabled:
        return None
    from custode.agent.tickets.alertmanager import AlertmanagerReceiver

    return AlertmanagerBridgeService(
        bridge.path, AlertmanagerReceiver(bridge, context.incidents, config.tenant_ids()).route())
