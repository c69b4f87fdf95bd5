"""The HTTP calls of the REST backends (Zendesk, GLPI, webhook), with one error vocabulary.

Every failure becomes a :class:`DeliveryError` that says whether retrying can
help, so the outbox retries an outage or a 429 for as long as it lasts and
keeps a 401 or a 422 for a person instead of hammering the helpdesk.
"""

from __future__ import annotations

import email.utils
from typing import Any

import requests

from custode.agent.clock import current_time
from custode.agent.redact import redact_text, redact_url
from custode.agent.tickets.backends.base import DeliveryError

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
"""409: Zendesk's answer to two updates of one ticket at once; the rest are outages and throttling."""
MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date, RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    wait = when.timestamp() - (current_time() if now is None else now)
    return min(max(wait, 0.0), MAX_RETRY_AFTER)


class HttpClient:
    """A requests session bound to one helpdesk: base URL, TLS policy, timeout, auth."""

    def __init__(self, backend: str, base_url: str, *, tls_verify: bool = True, ca_file: str | None = None,
                 timeout: float = 30.0, headers: dict[str, str] | None = None,
                 auth: tuple[str, str] | None = None, credential_hint: str = "the credentials") -> None:
        self.backend = backend
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.credential_hint = credential_hint
        self.session = requests.Session()
        self.session.verify = (ca_file or True) if tls_verify else False
        self.session.headers.update({"Accept": "application/json", "User-Agent": "custode"})
        if headers:
            self.session.headers.update(headers)
        if auth:
            self.session.auth = auth

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, what: str, ok: tuple[int, ...] = (200, 201, 204),
                **kwargs: Any) -> requests.Response:
        """One call; DeliveryError (naming backend, ``what`` and the fix) unless the status is in ``ok``."""
        url = self.url(path)
        where = f"ticket backend {self.backend!r}: {what} ({method} {redact_url(url)})"
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise DeliveryError(f"{where}: TLS verification failed ({redact_text(str(exc))}); give the helpdesk's "
                                "CA as ca_file, or for this backend only set tls_verify: false",
                                retryable=False) from None
        except requests.exceptions.Timeout:
            raise DeliveryError(f"{where}: no answer within {self.timeout:g} s; will retry",
                                retryable=True) from None
        except requests.exceptions.ConnectionError as exc:
            raise DeliveryError(f"{where}: cannot connect ({_short(exc)}); check the url and that the helpdesk "
                                "is up; will retry", retryable=True) from None
        except requests.exceptions.RequestException as exc:
            raise DeliveryError(f"{where}: {redact_text(str(exc))}", retryable=True) from None
        if response.status_code in ok:
            return response
        raise self.error(response, where)

    def error(self, response: requests.Response, where: str) -> DeliveryError:
        status = response.status_code
        excerpt = " ".join(response.text[:300].split())
        if status in RETRYABLE_STATUS:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            hint = f"; the helpdesk asked to wait {wait:g} s" if wait is not None else ""
            return DeliveryError(f"{where}: HTTP {status}{hint}; will retry ({excerpt})", retryable=True,
                                 retry_after=wait, status=status)
        if status == 401:
            return DeliveryError(f"{where}: HTTP 401, the helpdesk refused {self.credential_hint}; fix them, then "
                                 "run 'custode tickets retry'", retryable=False, status=status)
        if status == 403:
            return DeliveryError(f"{where}: HTTP 403, the API user may not do this; give it the rights, then run "
                                 f"'custode tickets retry' ({excerpt})", retryable=False, status=status)
        return DeliveryError(f"{where}: HTTP {status} ({excerpt}); retrying will not help: fix the backend's "
                             "config or the helpdesk, then run 'custode tickets retry'", retryable=False,
                             status=status)

    def json(self, response: requests.Response, what: str) -> Any:
        """The body as JSON; a non-JSON answer (a proxy's HTML page) is a retryable error that says so."""
        try:
            return response.json()
        except ValueError:
            excerpt = " ".join(response.text[:200].split())
            raise DeliveryError(f"ticket backend {self.backend!r}: {what}: the answer is not JSON "
                                f"(HTTP {response.status_code}: {excerpt!r}); is the url the API's?",
                                retryable=True, status=response.status_code) from None

    def close(self) -> None:
        self.session.close()


def _short(exc: Exception) -> str:
    text = redact_text(str(exc))  # requests quotes the URL, query string included
    marker = "Caused by "
    return text[text.find(marker) + len(marker):][:200] if marker in text else text[:200]
