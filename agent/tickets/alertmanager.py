"""Alertmanager webhook bridge: a site's own Prometheus alert rules become Custode incidents, then tickets.

Alertmanager already groups, deduplicates (also across a cluster, through its
notification log) and repeats alerts; Custode adds the ticket lifecycle. So one
Alertmanager *group* is one incident: ``firing`` opens or updates it,
``resolved`` resolves it. The incident key is built from the group's labels,
not from the opaque ``groupKey``, so the same group always lands on the same
incident and the key reads well in a ticket (``comune-a/alertmanager/db1:alertname=DiskFull``).

Every notification (repeat_interval re-sends too) is recorded as an occurrence;
the ticket planner rate-limits the follow-ups it causes.

Answers follow Alertmanager's retry rules: 4xx means "this will never work,
do not retry" (bad credentials, malformed payload, unknown tenant), 5xx means
"try again" (the state database is busy or broken).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from custode.agent.incidents import CheckResult, IncidentChange, Incidents, Severity
from custode.agent.state import StateError
from custode.agent.tickets.config import AlertmanagerBridge
from custode.agent.web import Request, Response, Route

log = logging.getLogger(__name__)

CHECK_NAME = "alertmanager"
ACCEPTED_VERSIONS = ("4",)
MAX_DETAIL_ALERTS = 20
MAX_THING_CHARS = 200
MAX_SUMMARY_CHARS = 500
_SEVERITIES: dict[str, Severity] = {"critical": "critical", "page": "critical", "error": "critical",
                                    "warning": "warning", "info": "warning"}
_RANK = {"warning": 1, "critical": 2}
_OUTCOMES = {"opened": "opened", "repeated": "updated", "severity_changed": "updated", "resolved": "resolved"}


class PayloadError(ValueError):
    """The body is not an Alertmanager version 4 notification; the message says exactly what is wrong."""


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str = ""
    ends_at: str = ""
    generator_url: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class Notification:
    """One webhook POST: a group of alerts sharing the route's group_by labels."""

    status: str
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0
    firing: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "firing", sum(1 for a in self.alerts if a.status == "firing"))


# --- parsing -------------------------------------------------------------------


def _string(value: object, where: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a string, not {_kind(value)}")
    return value


def _labels(value: object, where: str) -> dict[str, str]:
    """A label or annotation set: JSON object of strings (null is Go's empty map)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object of strings, not {_kind(value)}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{where}.{name} must be a string, not {_kind(item)}")
    return dict(value)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _status(value: object, where: str) -> str:
    if value not in ("firing", "resolved"):
        shown = json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else _kind(value)
        raise PayloadError(f"{where} must be \"firing\" or \"resolved\", not {shown}")
    return str(value)


def _alert(value: object, where: str) -> Alert:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object, not {_kind(value)}")
    if "labels" not in value:
        raise PayloadError(f"{where}.labels is missing")
    return Alert(status=_status(value.get("status"), f"{where}.status"),
                 labels=_labels(value["labels"], f"{where}.labels"),
                 annotations=_labels(value.get("annotations"), f"{where}.annotations"),
                 starts_at=_string(value.get("startsAt"), f"{where}.startsAt", required=False),
                 ends_at=_string(value.get("endsAt"), f"{where}.endsAt", required=False),
                 generator_url=_string(value.get("generatorURL"), f"{where}.generatorURL", required=False),
                 fingerprint=_string(value.get("fingerprint"), f"{where}.fingerprint", required=False))


def parse_notification(body: bytes) -> Notification:
    """The notification in ``body``, or PayloadError naming the first field that is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the body is not UTF-8 (byte {exc.start}); send Alertmanager's JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise PayloadError("the body is not an Alertmanager notification: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object (an Alertmanager notification), not {_kind(data)}")
    version = data.get("version")
    if version not in ACCEPTED_VERSIONS:
        shown = json.dumps(version) if isinstance(version, (str, int, float)) else _kind(version)
        raise PayloadError(f"version {shown} is not supported: Custode accepts Alertmanager webhook version "
                           + " or ".join(f'"{v}"' for v in ACCEPTED_VERSIONS)
                           + " (sent by Alertmanager 0.x webhook_configs)")
    group_key = data.get("groupKey")
    if group_key is None:
        raise PayloadError("groupKey is missing")
    if not isinstance(group_key, str) or not group_key:
        raise PayloadError(f"groupKey must be a non-empty string, not {_kind(group_key)}")
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(f"alerts must be a list, not {_kind(alerts)}")
    truncated = data.get("truncatedAlerts", 0)
    if truncated is None:
        truncated = 0
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError(f"truncatedAlerts must be a non-negative integer, not {json.dumps(truncated)}")
    if not alerts and not truncated:
        raise PayloadError("alerts is empty: a notification carries at least one alert")
    return Notification(
        status=_status(data.get("status"), "status"),
        receiver=_string(data.get("receiver"), "receiver", required=False),
        group_key=group_key,
        group_labels=_labels(data.get("groupLabels"), "groupLabels"),
        common_labels=_labels(data.get("commonLabels"), "commonLabels"),
        common_annotations=_labels(data.get("commonAnnotations"), "commonAnnotations"),
        external_url=_string(data.get("externalURL"), "externalURL", required=False),
        alerts=tuple(_alert(item, f"alerts[{index}]") for index, item in enumerate(alerts)),
        truncated_alerts=truncated)


# --- mapping to an incident ------------------------------------------------------


def instance_host(instance: str) -> str:
    """``db1:9100`` → ``db1``; ``[::1]:9100`` → ``::1``; ``https://web.example.it/x`` → ``web.example.it``."""
    value = instance.strip()
    if "://" in value:
        try:
            host = urlsplit(value).hostname or ""
        except ValueError:
            host = ""
        return host or value
    if value.startswith("[") and "]" in value:
        return value[1:value.index("]")]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value  # no port, or a bare IPv6 address


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def group_target(notification: Notification, tenant_label: str) -> str:
    """``<host>:<group labels>``: stable per group, readable in a ticket, host first for maintenance silences.

    The tenant label is left out of the labels: it is already the key's first part.
    """
    host = instance_host(notification.common_labels.get("instance", "")) or "alertmanager"
    labels = sorted((k, v) for k, v in notification.group_labels.items() if k != tenant_label)
    thing = ",".join(f"{name}={value}" for name, value in labels)
    if not thing:
        thing = "group-" + short_hash(notification.group_key)
    elif len(thing) > MAX_THING_CHARS:
        thing = thing[:MAX_THING_CHARS] + "~" + short_hash(thing)
    return f"{host}:{thing}"


def group_severity(notification: Notification) -> Severity:
    """From the common ``severity`` label; else the worst among the firing alerts; else warning."""
    common = notification.common_labels.get("severity")
    if common is not None:
        return _SEVERITIES.get(common.strip().lower(), "warning")
    found = [_SEVERITIES.get(a.labels.get("severity", "").strip().lower(), "warning")
             for a in notification.alerts if a.status == "firing"]
    return max(found, key=_RANK.__getitem__, default="warning")


def group_summary(notification: Notification) -> str:
    """The rule's own words (summary, else description), else ``<alertname>: N alerts firing``."""
    annotations = notification.common_annotations
    text = (annotations.get("summary") or annotations.get("description") or "").strip()
    name = notification.common_labels.get("alertname") or notification.group_labels.get("alertname") or "alerts"
    if notification.status == "resolved":
        text = f"resolved: {text}" if text else f"{name}: resolved"
    elif not text:
        count = notification.firing + notification.truncated_alerts
        text = f"{name}: {count} alert{'s' if count != 1 else ''} firing"
    return text[:MAX_SUMMARY_CHARS]


def group_details(notification: Notification) -> dict[str, Any]:
    """What a ticket shows about the group: where it comes from and its first alerts."""
    return {
        "source": "alertmanager",
        "status": notification.status,
        "receiver": notification.receiver,
        "external_url": notification.external_url,
        "group_key": notification.group_key,
        "group_labels": notification.group_labels,
        "count": len(notification.alerts) + notification.truncated_alerts,
        "firing": notification.firing,
        "truncated_alerts": notification.truncated_alerts,
        "alerts": [{"status": a.status, "labels": a.labels, "annotations": a.annotations,
                    "startsAt": a.starts_at, "generatorURL": a.generator_url}
                   for a in notification.alerts[:MAX_DETAIL_ALERTS]],
    }


# --- the receiver ----------------------------------------------------------------


class AlertmanagerReceiver:
    """The POST handler; secrets are read once here, so a request never touches the environment or files."""

    def __init__(self, settings: AlertmanagerBridge, incidents: Incidents, tenants: Sequence[str]) -> None:
        self.settings = settings
        self.incidents = incidents
        self.tenants = frozenset(tenants)
        self._token = settings.token.resolve().encode("utf-8") if settings.token is not None else None
        self._basic: tuple[bytes, bytes] | None = None
        if settings.username is not None and settings.password is not None:
            self._basic = (settings.username.encode("utf-8"), settings.password.resolve().encode("utf-8"))
        if settings.default_tenant is not None and settings.default_tenant not in self.tenants:
            log.warning("alertmanager bridge: default_tenant is not a defined tenant",
                        extra={"tenant": settings.default_tenant})

    def route(self) -> Route:
        """The POST endpoint at ``tickets.alertmanager.path``, its body bounded by ``max_bytes``."""
        challenge = 'Basic realm="custode"' if self._basic and not self._token else 'Bearer realm="custode"'
        return Route(self.settings.path, self._answer, ("POST",), max_bytes=self.settings.max_bytes,
                     challenge=challenge, authorize=self._authorize)

    def _authorize(self, headers: Mapping[str, str]) -> Response | None:
        """Judged on the headers alone, before the server reads a byte of the body."""
        problem = self._authenticate(headers)
        if problem is None:
            return None
        log.warning("alertmanager notification refused", extra={"status": 401, "reason": problem})
        challenge = 'Basic realm="custode"' if self._basic and not self._token else 'Bearer realm="custode"'
        return Response.text(401, problem, {"WWW-Authenticate": challenge})

    def _answer(self, request: Request) -> Response:
        return Response.text(*self.handle(request.headers, request.body))

    # --- authentication ---

    def _schemes(self) -> str:
        offered = (["a bearer token (Authorization: Bearer …)"] if self._token else []) \
            + (["basic auth"] if self._basic else [])
        return " or ".join(offered)

    def _authenticate(self, headers: Mapping[str, str]) -> str | None:
        """None when the credentials match; else the 401 reason (never containing what was sent)."""
        value = _header(headers, "Authorization")
        fix = (f"send {self._schemes()}, the same as in Alertmanager's webhook_configs http_config")
        if not value:
            return f"authentication required: no Authorization header; {fix}"
        scheme, _, credentials = value.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and self._token is not None:
            if hmac.compare_digest(credentials.encode("utf-8"), self._token):
                return None
            return f"authentication required: the bearer token is wrong; {fix}"
        if scheme.lower() == "basic" and self._basic is not None:
            try:
                user, sep, password = base64.b64decode(credentials, validate=True).partition(b":")
            except (binascii.Error, ValueError):
                return f"authentication required: the basic credentials are not valid base64; {fix}"
            user_ok = hmac.compare_digest(user, self._basic[0])
            password_ok = hmac.compare_digest(password, self._basic[1])
            if sep and user_ok and password_ok:
                return None
            return f"authentication required: wrong username or password; {fix}"
        return f"authentication required: the {scheme[:20]!r} scheme is not accepted here; {fix}"

    # --- the request ---

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """(status, reason): 401/400 are final for Alertmanager, 503 makes it retry, 200 says what changed."""
        problem = self._authenticate(headers)
        if problem is not None:
            log.warning("alertmanager notification refused", extra={"status": 401, "reason": problem})
            return 401, problem
        try:
            notification = parse_notification(body)
            tenant = self._tenant(notification)
        except PayloadError as exc:
            reason = f"bad request: {exc}"
            log.warning("alertmanager notification refused", extra={"status": 400, "reason": reason})
            return 400, reason
        result = CheckResult(tenant=tenant, check=CHECK_NAME,
                             target=group_target(notification, self.settings.tenant_label),
                             severity="ok" if notification.status == "resolved" else group_severity(notification),
                             summary=group_summary(notification), details=group_details(notification))
        try:
            change = self.incidents.observe(result, occurrence=notification.status == "firing")
        except (sqlite3.Error, StateError) as exc:
            log.error("alertmanager notification not recorded: state database error",
                      extra={"incident": result.key, "error": str(exc)})
            return 503, f"state database unavailable ({type(exc).__name__}); Alertmanager will retry"
        outcome = _outcome(change)
        log.info("alertmanager notification", extra={
            "incident": result.key, "tenant": tenant, "alert_status": notification.status,
            "severity": result.severity, "alerts": len(notification.alerts) + notification.truncated_alerts,
            "receiver": notification.receiver, "outcome": outcome})
        return 200, f"ok: {result.key} {outcome}"

    def _tenant(self, notification: Notification) -> str:
        label = self.settings.tenant_label
        tenant = notification.common_labels.get(label)
        source = f"label {label!r}"
        if tenant is None:
            seen = {a.labels[label] for a in notification.alerts if label in a.labels}
            if len(seen) > 1:
                raise PayloadError(f"the group mixes tenants ({', '.join(sorted(seen))}) in label {label!r}; "
                                   f"add {label} to the Alertmanager route's group_by")
            tenant, source = self.settings.default_tenant, "tickets.alertmanager.default_tenant"
        if not tenant:
            raise PayloadError(f"no tenant: the alerts have no {label!r} label; add it to the alert rules "
                               "(and to group_by) or set tickets.alertmanager.default_tenant")
        if tenant not in self.tenants:
            raise PayloadError(f"unknown tenant {tenant!r} (from {source}); define it under tenants: "
                               "or set tickets.alertmanager.default_tenant")
        return tenant


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works on a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _outcome(change: IncidentChange | None) -> str:
    return "unchanged" if change is None else _OUTCOMES[change.kind]
