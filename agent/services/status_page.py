"""The status page: ``/`` and ``/tenant/ID``, what a comune's referent reads on a phone.

Built for every config, the embedded default included (its single tenant
``default``): the page is also the agent's index, with the links to
``/metrics``, ``/healthz`` and ``/ready``. It sits behind the web config's
basic auth like every route; ``status_page.tenant_users`` limits a user to
their own comuni (a referent sees only theirs, the provider's staff, not
listed, see all). A handler reads the state DB on the server's worker
threads, a few queries per render (:mod:`custode.agent.web.status_data`),
and renders with :mod:`custode.agent.web.status_page`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from custode.agent.clock import Clock, current_time
from custode.agent.config_refs import TenantRef
from custode.agent.durations import Duration
from custode.agent.schema import Strict
from custode.agent.services import Context, Service

if TYPE_CHECKING:
    from custode.agent.config import Config
    from custode.agent.state import State
    from custode.agent.web import Request, Response, Route

ORDER = 70
HTML = "text/html; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store"}  # one user's page must not be served to another from a cache


class StatusPageSection(Strict):
    """The ``status_page:`` section: the page's title, how often it reloads, and who may see which tenants."""

    title: str = Field(default="Custode", min_length=1, description="the page's heading")
    refresh: Duration = Field(default=60.0, ge=10, description="the browser reloads the page this often")
    tenant_users: dict[str, list[TenantRef]] = Field(
        default_factory=dict, description="web-config user -> the only tenants that user may see; "
                                          "users not listed see every tenant")

    @field_validator("tenant_users")
    @classmethod
    def _someone_to_see(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        empty = sorted(user for user, tenants in value.items() if not tenants)
        if empty:
            raise ValueError(f"user {empty[0]!r} has no tenant: list the tenants that user may see, or remove the "
                             "user (a user not listed sees every tenant)")
        return value


class StatusPages:
    """Who sees which tenant, and the two handlers; ``clock`` is what tests pin."""

    def __init__(self, config: Config, state: State, clock: Clock = current_time) -> None:
        self.config = config
        self.section = config.status_page
        self.state = state
        self.clock = clock
        self.tenants = config.tenant_ids()

    def visible(self, user: str | None) -> list[str] | None:
        """The tenants ``user`` may see, in the config's order; None: no user is known where one is needed.

        Without basic auth there is no user; if the config limits users
        anyway, the limit cannot be applied, so nobody sees any tenant (a
        page open to everyone would be the opposite of what was asked).
        """
        limits = self.section.tenant_users
        if user is None:
            return None if limits else list(self.tenants)
        allowed = limits.get(user)
        return list(self.tenants) if allowed is None else [t for t in self.tenants if t in allowed]

    def routes(self) -> list[Route]:
        from custode.agent.web import Route

        return [Route("/", self.index, title="/"),
                *[Route(f"/tenant/{tenant}", self._tenant_page(tenant)) for tenant in self.tenants]]

    def index(self, request: Request) -> Response:
        """Every tenant the user may see, one after the other."""
        visible = self.visible(request.user)
        if not visible:
            return self._forbidden(request.user, visible or [])
        return self._render(visible, visible)

    def _tenant_page(self, tenant: str) -> Callable[[Request], Response]:
        def page(request: Request) -> Response:
            visible = self.visible(request.user)
            if visible is None or tenant not in visible:
                return self._forbidden(request.user, visible or [], tenant)
            return self._render([tenant], visible)
        return page

    def _render(self, tenants: Sequence[str], navigation: Sequence[str]) -> Response:
        from custode.agent.web import Response
        from custode.agent.web.status_data import gather
        from custode.agent.web.status_page import render_page

        now = self.clock()
        body = render_page(self.section.title, gather(self.config, self.state, tenants, now), now,
                           self.section.refresh, navigation=self._names(navigation))
        return Response(200, body.encode("utf-8"), HTML, NO_STORE)

    def _names(self, tenants: Sequence[str]) -> list[tuple[str, str]]:
        """(id, name) of each tenant, for links: the id where the config names none (``default``)."""
        return [(t, self.config.tenants[t].name if t in self.config.tenants else t) for t in tenants]

    def _forbidden(self, user: str | None, visible: Sequence[str], tenant: str | None = None) -> Response:
        from custode.agent.web import Response
        from custode.agent.web.status_page import render_forbidden

        own = self.config.tenants.get(tenant or "")
        language = own.language if own is not None else "it"
        body = render_forbidden(self.section.title, language, user, self._names(visible))
        return Response(403, body.encode("utf-8"), HTML, NO_STORE)


class StatusPageService(Service):
    name = "status_page"

    def __init__(self, pages: StatusPages) -> None:
        self.pages = pages

    def routes(self) -> list[Route]:
        return self.pages.routes()


def build(context: Context) -> StatusPageService:
    """The page, for every config: with no feature configured it still shows incidents and says the rest is not."""
    return StatusPageService(StatusPages(context.loaded.model, context.state))
