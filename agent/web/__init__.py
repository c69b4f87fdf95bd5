"""The HTTP layer: a router that features register their routes with, and the server that answers them.

The agent core registers the read-only routes (``/metrics``, ``/healthz``,
``/ready``, ``/``: :mod:`.core`); every service adds its own through
``Service.routes()`` (the Alertmanager bridge its POST endpoint). Two owners
claiming the same method and path is an error at start that names both, not a
silent override. The server (:mod:`.server`) knows no route by name.
"""

from custode.agent.web.routes import Headers, Request, Response, Route, RouteConflict, Router
from custode.agent.web.server import ListenError, make_server, serve_in_thread

__all__ = ["Headers", "ListenError", "Request", "Response", "Route", "RouteConflict", "Router", "make_server",
           "serve_in_thread"]
