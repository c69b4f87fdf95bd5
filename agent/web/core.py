"""The agent's own read-only routes: the exposition, health, readiness, and an index page.

Nothing here does I/O: ``/metrics`` writes bytes the cache already rendered
(gzipped once per render, not per scrape), and the health answers are the
runtime's in-memory view.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from custode.agent.metric_cache import MetricCache
from custode.agent.web.routes import Request, Response, Route, Router

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
Probe = Callable[[], tuple[bool, str]]


def core_routes(cache: MetricCache, ready: Probe, healthy: Probe, router: Router) -> list[Route]:
    """``/metrics``, ``/healthz``, ``/ready`` and ``/`` (the index lists every titled GET route of ``router``)."""

    def metrics(request: Request) -> Response:
        exposition = cache.exposition
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return Response(200, exposition.gzipped, EXPOSITION, {"Content-Encoding": "gzip"})
        return Response(200, exposition.plain, EXPOSITION)

    def probe(check: Probe) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            ok, reason = check()
            return Response.text(200 if ok else 503, reason)
        return answer

    def index(request: Request) -> Response:
        links = " ".join(f"<a href='{html.escape(route.path)}'>{html.escape(route.title)}</a>"
                         for route in router.pages())
        body = f"<html><head><title>Custode</title></head><body><h1>Custode</h1><p>{links}</p></body></html>"
        return Response(200, body.encode("utf-8"), "text/html; charset=utf-8")

    return [Route("/metrics", metrics, ("GET",), title="/metrics"),
            Route("/healthz", probe(healthy), ("GET",), title="/healthz"),
            Route("/ready", probe(ready), ("GET",), title="/ready"),
            Route("/", index, ("GET",))]
