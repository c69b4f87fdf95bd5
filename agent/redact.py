"""Secrets out of URLs and out of the texts that quote them (errors, logs, the outbox, the audit log).

A URL is the one place a secret hides in plain sight: ``https://user:pass@host``
or ``…?api_key=…`` travels into every exception ``requests`` raises, into log
lines, into the outbox's ``last_error`` and from there into ``custode tickets
outbox`` and the audit log. So, as Prometheus and Alertmanager do for their
secret URLs, the password of the userinfo and the value of every query
parameter that looks like a secret become ``<redacted>`` wherever a URL is
shown, and :func:`url_secrets` lets the config loader refuse such a URL before
it is ever used.

Only the secret parts change: the rest of the text stays byte for byte what it
was, so an error still says which host and which call failed.
"""

from __future__ import annotations

import copy
import re
from types import TracebackType
from typing import TypeVar, cast
from urllib.parse import unquote

REDACTED = "<redacted>"
T = TypeVar("T")

SECRET_PARAMS = frozenset({
    "token", "key", "apikey", "api_key", "password", "passwd", "pass", "pwd", "secret", "access_token",
    "refresh_token", "id_token", "auth", "auth_token", "authorization", "sig", "signature", "client_secret",
    "session_token", "app_token", "user_token", "private_token", "access_key", "secret_key", "private_key",
    "subscription_key", "credential", "credentials", "x_amz_signature", "x_amz_credential",
    "x_amz_security_token", "x_goog_signature", "x_goog_credential",
})
"""Query parameter names (lower case, ``-`` read as ``_``) whose value is a credential."""
SECRET_SUFFIXES = ("_token", "_secret", "_password", "_apikey", "_api_key", "_signature")

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
"""An absolute URL inside free text; it ends at white space, a quote or an angle bracket."""
_QUERY_PAIR = re.compile(r"(?P<lead>[?&;#])(?P<name>[A-Za-z0-9_.%-]{1,64})=(?P<value>[^&;#\s'\"<>)]+)")
"""A ``name=value`` of a query string, also in a path without host (``requests``: "with url: /x?token=…")."""


def is_secret_param(name: str) -> bool:
    """Whether a query parameter called ``name`` carries a credential (token, key, password, signature …)."""
    normal = unquote(name).strip().lower().replace("-", "_")
    return normal in SECRET_PARAMS or normal.endswith(SECRET_SUFFIXES)


def _is_placeholder(value: str) -> bool:
    """``{{ secret.x }}``, ``${VAR}``, ``$VAR``, ``{x}``: a reference to a secret, not the secret."""
    text = unquote(value).strip()
    return text.startswith(("$", "{", "%(")) or "{{" in text


def _split(url: str) -> tuple[str, str, str] | None:
    """(``scheme://``, authority, the rest) of an absolute URL, or None for anything else."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return None
    end = len(rest)
    for stop in "/?#":
        position = rest.find(stop)
        if position != -1:
            end = min(end, position)
    return scheme + sep, rest[:end], rest[end:]


def _is_http(prefix: str) -> bool:
    return prefix.lower() in ("http://", "https://")


def url_secrets(url: str) -> list[str]:
    """What in ``url`` is a credential, in words ("a password in the userinfo", "query parameter 'token'").

    Empty when the URL holds none. Placeholders (``{{ secret.token }}``,
    ``${VAR}``) are references, not secrets, and are not reported. A user name
    alone is fine for ssh/sftp (``sftp://backup@nas``); in an http(s) URL a
    bare userinfo is a token (``https://TOKEN@host``) and is reported.
    """
    found: list[str] = []
    parts = _split(url)
    if parts is not None:
        prefix, authority, _ = parts
        userinfo, at, _ = authority.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            if colon and password and not _is_placeholder(password):
                found.append("a password in the userinfo (user:password@)")
            elif not colon and user and _is_http(prefix) and not _is_placeholder(user):
                found.append("a credential in the userinfo (TOKEN@)")
    for match in _QUERY_PAIR.finditer(url):
        if match["lead"] in "?&;#" and is_secret_param(match["name"]) and not _is_placeholder(match["value"]):
            found.append(f"query parameter {unquote(match['name'])!r}")
    return found


def _redact_query(text: str) -> str:
    return _QUERY_PAIR.sub(lambda m: f"{m['lead']}{m['name']}={REDACTED}" if is_secret_param(m["name"])
                           else m[0], text)


def urls_in(text: str) -> list[str]:
    """The absolute URLs written in ``text`` (a field that is one, or a command that contains some)."""
    return _URL.findall(text) if "://" in text else []


def redact_url(url: str) -> str:
    """``url`` with the userinfo password and secret-looking query values replaced by ``<redacted>``.

    ``https://bot:s3cret@desk.example.it/api?key=abc&page=2`` becomes
    ``https://bot:<redacted>@desk.example.it/api?key=<redacted>&page=2``; a
    bare http(s) userinfo (a token used as user name) is redacted whole.
    """
    parts = _split(url)
    if parts is not None:
        prefix, authority, rest = parts
        userinfo, at, host = authority.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            if colon and password:
                authority = f"{user}:{REDACTED}@{host}"
            elif not colon and user and _is_http(prefix):
                authority = f"{REDACTED}@{host}"
        url = prefix + authority + rest
    return _redact_query(url)


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (:func:`redact_url`), and query strings of bare paths too.

    For free text that quotes URLs: a ``requests`` exception ("… Max retries
    exceeded with url: /api?token=…"), a helpdesk's error page, an SMTP reply.
    """
    if not text or ("://" not in text and "=" not in text):
        return text
    return _redact_query(_URL.sub(lambda match: redact_url(match[0]), text))


def redact_values(value: T) -> T:
    """Every string in a JSON-like value (dicts, lists, tuples) redacted: details bound for the audit log."""
    if isinstance(value, str):
        return cast(T, redact_text(value))
    if isinstance(value, dict):
        return cast(T, {key: redact_values(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return cast(T, type(value)(redact_values(item) for item in value))
    return value


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def safe_exc_info(exc: BaseException) -> ExcInfo:
    """``exc_info`` for a log call whose exception text is redacted, traceback (the code's lines) kept.

    An unexpected error is logged with its traceback so the bug can be found;
    its message may quote a URL with a secret, so a copy with the redacted
    message is logged instead. The chained causes are left out: their texts
    are not redacted.
    """
    message = redact_text(str(exc))
    clone: BaseException
    try:
        clone = copy.copy(exc)
        clone.args = (message,)
        if str(clone) != message:
            raise TypeError("an exception that does not print its args")
    except Exception:  # noqa: BLE001 - any exception type may come here; fall back to a plain one
        clone = RuntimeError(f"{type(exc).__name__}: {message}")
    clone.__cause__ = None
    clone.__context__ = None
    clone.__suppress_context__ = True
    return type(clone), clone, exc.__traceback__


__all__ = ["REDACTED", "is_secret_param", "redact_text", "redact_url", "redact_values", "safe_exc_info",
           "url_secrets", "urls_in"]
