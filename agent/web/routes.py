"""Routes and the router: what a feature hands the HTTP layer, and how a request finds its handler.

A handler sees a :class:`Request` (its body already read, bounded by the
route's ``max_bytes``) and returns a :class:`Response`; it never touches the
socket, so the limits and error answers of the wire live in one place
(:mod:`custode.agent.web.server`) for every route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

TEXT = "text/plain; charset=utf-8"


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively (HTTP field names are)."""

    def __init__(self, items: Mapping[str, str] | list[tuple[str, str]]) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items = {name.lower(): value for name, value in pairs}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class Request:
    """One request as a handler sees it."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes = b""
    user: str | None = None  # the web config's basic-auth user who was let in; None without basic auth


@dataclass(frozen=True)
class Response:
    """What a handler answers; the server adds Content-Type, Content-Length and the HEAD rule."""

    status: int
    body: bytes
    content_type: str = TEXT
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, reason: str, headers: Mapping[str, str] | None = None) -> Response:
        """A one-line plain-text answer: what went wrong (or right), for a human reading curl's output."""
        return cls(status, (reason + "\n").encode("utf-8"), TEXT, dict(headers or {}))


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """One endpoint: its path, the methods it takes, its handler.

    ``max_bytes`` bounds a request body (POST); a route that takes none keeps 0.
    ``challenge`` goes out as ``WWW-Authenticate`` with a 401, as HTTP requires.
    ``title`` names a GET route on the index page.
    ``authorize`` judges the request's headers before its body is read: it
    returns None to let the request through, or the answer (a 401) that ends
    it, so an unauthenticated client cannot make the server read, or wait
    for, a megabyte. A route with its own ``authorize`` (a webhook with its
    token) is not also asked for the web config's basic auth: both would
    want the one ``Authorization`` header.
    """

    path: str
    handle: Handler
    methods: tuple[str, ...] = ("GET",)
    max_bytes: int = 0
    challenge: str | None = None
    title: str = ""
    authorize: Callable[[Headers], Response | None] | None = None


class RouteConflict(ValueError):
    """Two owners registered the same method on the same path."""


@dataclass(frozen=True)
class _Entry:
    route: Route
    owner: str


class Router:
    """Method and path to route; HEAD is answered by a GET route."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}

    def add(self, route: Route, owner: str) -> None:
        """Register ``route`` for ``owner`` (a service name, or "core"); a second claim raises RouteConflict."""
        if not route.path.startswith("/"):
            raise ValueError(f"{owner}: route path {route.path!r} must start with '/'")
        for method in route.methods:
            existing = self._entries.get((method, route.path))
            if existing is not None:
                raise RouteConflict(f"{method} {route.path} is claimed by both {existing.owner!r} and {owner!r}; "
                                    "change the path in one of their config sections")
        for method in route.methods:
            self._entries[(method, route.path)] = _Entry(route, owner)

    def match(self, method: str, path: str) -> Route | None:
        entry = self._entries.get(("GET" if method == "HEAD" else method, path))
        return entry.route if entry is not None else None

    def allowed(self, path: str) -> list[str]:
        """The methods some route takes at ``path`` (for 405's Allow header); empty: no such path."""
        return sorted({method for method, known in self._entries if known == path})

    def owner(self, method: str, path: str) -> str | None:
        entry = self._entries.get((method, path))
        return entry.owner if entry is not None else None

    def pages(self) -> list[Route]:
        """The GET routes with a title, in registration order: what the index page links to."""
        return [entry.route for (method, _), entry in self._entries.items() if method == "GET" and entry.route.title]
