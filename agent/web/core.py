"""The agent's own read-only routes: the exposition, health and readiness.

Nothing here does I/O: ``/metrics`` writes bytes the cache already rendered
(gzipped once per render, not per scrape), and the health answers are the
runtime's in-memory view. The page at ``/`` is the status page's
(:mod:`custode.agent.services.status_page`), which links to these three.
"""

from __future__ import annotations

from collections.abc import Callable

from custode.agent.metric_cache import MetricCache
from custode.agent.web.routes import Request, Response, Route, Router

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
Probe = Callable[[], tuple[bool, str]]


def core_routes(cache: MetricCache, ready: Probe, healthy: Probe, router: Router) -> list[Route]:
    """``/metrics``, ``/healthz`` and ``/ready``, titled so a 404 lists them.

    ``router`` is the router they will join (kept in the signature the
    runtime calls; the index that listed its pages is now the status page).
    """

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

    return [Route("/metrics", metrics, ("GET",), title="/metrics"),
            Route("/healthz", probe(healthy), ("GET",), title="/healthz"),
            Route("/ready", probe(ready), ("GET",), title="/ready")]
