"""The web configuration file, in the format node_exporter, Prometheus and Alertmanager read.

One file format for every exporter on a host means a sysadmin writes TLS and
basic auth once (prometheus/exporter-toolkit's ``web-config.yml``: see
https://prometheus.io/docs/prometheus/latest/configuration/https/) and points
``--web.config.file`` of each program at it. Unknown keys are errors, as in
exporter-toolkit. What Python's TLS cannot do the same way is refused with
the alternative, never silently weakened: accepting a client certificate
without verifying it (``RequestClientCert``, ``RequireAnyClientCert``).

:class:`WebSettings` is one loaded file turned into what the server needs (an
``SSLContext``, the users, the headers); :class:`WebConfigSource` re-reads the
file and the files it names when they change, so a renewed certificate
applies without a restart, and keeps the last good settings when an edit is
broken.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from custode.agent.config_loader import ConfigError, Problem, load_model_file
from custode.agent.schema import Strict
from custode.agent.web.basic_auth import BasicAuth, check_hash

log = logging.getLogger(__name__)

_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}
# Go's names of the TLS 1.2 suites it offers, and OpenSSL's for each (TLS 1.3 suites are fixed, in Go too).
_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
# exporter-toolkit allows these response headers only, some with fixed values (compared case-insensitively).
_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (), "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": (), "Content-Security-Policy": (),
}
ClientAuth = Literal["NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                     "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
_UNVERIFIED = ("RequestClientCert", "RequireAnyClientCert")


class TlsServerConfig(Strict):
    cert_file: str = Field("", description="the server's certificate (PEM), with its chain")
    key_file: str = Field("", description="the certificate's private key (PEM); readable only by custode")
    client_auth_type: ClientAuth | Literal[""] = Field("", description="whether clients must show a certificate")
    client_ca_file: str = Field("", description="CAs that sign the accepted client certificates (PEM)")
    client_allowed_sans: list[str] = Field(default_factory=list,
                                           description="accepted client certificates' DNS, e-mail, IP or URI SANs")
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = Field("TLS12", description="oldest TLS accepted")
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = Field("TLS13", description="newest TLS accepted")
    cipher_suites: list[str] = Field(default_factory=list, description="TLS 1.2 suites, Go's names; empty: defaults")
    curve_preferences: list[str] = Field(default_factory=list, description="key exchange curves; the first is used")
    prefer_server_cipher_suites: bool = Field(True, description="the server's order of suites wins")

    @field_validator("cipher_suites", "curve_preferences")
    @classmethod
    def _known_names(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = _CIPHERS if info.field_name == "cipher_suites" else _CURVES
        unknown = [name for name in value if name not in known]
        if unknown:
            what = "cipher suite(s)" if known is _CIPHERS else "curve(s)"
            raise ValueError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> TlsServerConfig:
        if self.client_auth_type in _UNVERIFIED:
            raise ValueError(f"client_auth_type {self.client_auth_type} accepts a client certificate without "
                             "verifying it, which Custode does not do; use VerifyClientCertIfGiven or "
                             "RequireAndVerifyClientCert with client_ca_file")
        if self.client_ca_file and self.client_auth_type in ("", "NoClientCert"):
            raise ValueError("client_ca_file is set but client_auth_type does not ask for client certificates; "
                             "set client_auth_type: RequireAndVerifyClientCert")
        verifying = self.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
        if verifying and not self.client_ca_file:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file, the CA that signs "
                             "the client certificates")
        if self.client_allowed_sans and self.client_auth_type != "RequireAndVerifyClientCert":
            raise ValueError("client_allowed_sans needs client_auth_type: RequireAndVerifyClientCert")
        if _VERSIONS[self.min_version] > _VERSIONS[self.max_version]:
            raise ValueError(f"min_version {self.min_version} is newer than max_version {self.max_version}")
        return self

    def enabled(self) -> bool:
        """exporter-toolkit serves plain HTTP when none of the four main keys is set."""
        return bool(self.cert_file or self.key_file or self.client_auth_type or self.client_ca_file)


class HttpServerConfig(Strict):
    http2: bool = Field(True, description="accepted for compatibility; Custode speaks HTTP/1.1")
    headers: dict[str, str] = Field(default_factory=dict, description="response headers added to every answer")

    @field_validator("headers")
    @classmethod
    def _allowed_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if name not in _HEADERS:
                raise ValueError(f"HTTP header {name!r} can not be configured; allowed: {', '.join(_HEADERS)}")
            allowed = _HEADERS[name]
            if allowed and text.lower() not in allowed:
                raise ValueError(f"invalid value for {name}: expected one of {', '.join(allowed)}, got {text!r}")
            if "\r" in text or "\n" in text:
                raise ValueError(f"header {name} must be one line")
        return value


class WebConfigFile(Strict):
    """The whole file; every part optional (an empty file serves plain HTTP with no auth)."""

    tls_server_config: TlsServerConfig = Field(default_factory=TlsServerConfig)  # type: ignore[arg-type]
    http_server_config: HttpServerConfig = Field(default_factory=HttpServerConfig)  # type: ignore[arg-type]
    basic_auth_users: dict[str, str] = Field(default_factory=dict, description="user name -> bcrypt hash")

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for user, digest in value.items():
            problem = check_hash(digest)
            if problem:
                raise ValueError(f"user {user!r}: {problem}")
            if ":" in user:
                raise ValueError(f"user {user!r}: a user name cannot contain ':' (basic auth splits on it)")
        return value


@dataclass(frozen=True)
class WebSettings:
    """What the server applies: TLS (None: plain HTTP), users, headers."""

    ssl_context: ssl.SSLContext | None = None
    auth: BasicAuth | None = None
    headers: dict[str, str] = field(default_factory=dict)
    allowed_sans: frozenset[str] = frozenset()
    source: str = ""

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"


PLAIN = WebSettings()


def _resolve(base: Path, name: str) -> Path:
    """Relative paths are relative to the web config file, as in exporter-toolkit."""
    path = Path(name)
    return path if path.is_absolute() else base.parent / path


def _named_files(config: WebConfigFile, path: Path) -> list[Path]:
    tls = config.tls_server_config
    return [_resolve(path, name) for name in (tls.cert_file, tls.key_file, tls.client_ca_file) if name]


def _ssl_context(tls: TlsServerConfig, path: Path) -> ssl.SSLContext:
    source = str(path)
    if not tls.cert_file:
        raise ConfigError([Problem(source, None, "tls_server_config.cert_file", "missing cert_file; "
                                   "give the server certificate (PEM) or remove tls_server_config")])
    if not tls.key_file:
        raise ConfigError([Problem(source, None, "tls_server_config.key_file", "missing key_file; "
                                   "give the certificate's private key (PEM)")])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.maximum_version = _VERSIONS[tls.max_version]
    cert, key = _resolve(path, tls.cert_file), _resolve(path, tls.key_file)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError([Problem(source, None, "tls_server_config", f"{exc.filename}: file not found")]) from None
    except PermissionError as exc:
        raise ConfigError([Problem(source, None, "tls_server_config", f"{exc.filename}: permission denied; "
                                   "make it readable by the custode user")]) from None
    except ssl.SSLError as exc:
        raise ConfigError([Problem(source, None, "tls_server_config", f"cannot use {cert} with {key}: "
                                   f"{exc.reason or exc}; both must be PEM and the key must match the "
                                   "certificate")]) from None
    if tls.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        context.verify_mode = ssl.CERT_REQUIRED if tls.client_auth_type == "RequireAndVerifyClientCert" \
            else ssl.CERT_OPTIONAL
        ca = _resolve(path, tls.client_ca_file)
        try:
            context.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise ConfigError([Problem(source, None, "tls_server_config.client_ca_file",
                                       f"cannot read CA file {ca}: {reason}")]) from None
    if tls.cipher_suites:
        try:
            context.set_ciphers(":".join(_CIPHERS[name] for name in tls.cipher_suites))
        except ssl.SSLError:
            raise ConfigError([Problem(source, None, "tls_server_config.cipher_suites",
                                       "none of these suites is available in this OpenSSL")]) from None
    if tls.curve_preferences:
        context.set_ecdh_curve(_CURVES[tls.curve_preferences[0]])
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    return context


def _parse(path: Path) -> WebConfigFile:
    config, _ = load_model_file(path, WebConfigFile, "web config file")
    assert isinstance(config, WebConfigFile)
    return config


def _build(config: WebConfigFile, path: Path) -> WebSettings:
    tls = config.tls_server_config
    context = _ssl_context(tls, path) if tls.enabled() else None
    auth = BasicAuth(config.basic_auth_users) if config.basic_auth_users else None
    return WebSettings(context, auth, dict(config.http_server_config.headers),
                       frozenset(tls.client_allowed_sans), str(path))


def load_web_config(path: str | os.PathLike[str]) -> WebSettings:
    """Read and check ``path``; ConfigError naming the key and the fix when it cannot be used."""
    file = Path(path)
    return _build(_parse(file), file)


def _stamp(paths: list[Path]) -> str:
    """A fingerprint of the files' sizes, modification times and inodes (not their content: cheap)."""
    parts = []
    for path in paths:
        try:
            info = path.stat()
            parts.append(f"{path}:{info.st_size}:{info.st_mtime_ns}:{info.st_ino}")
        except OSError as exc:
            parts.append(f"{path}:{exc.errno}")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "backslashreplace")).hexdigest()


class WebConfigSource:
    """The current settings, re-read when the web config file or a file it names changes.

    :meth:`refresh` is called every few seconds off the request path (the
    server's reload timer runs it on a worker thread) and costs a few
    ``stat()`` calls when nothing changed. A broken edit keeps the last good
    settings: an invalid file must neither drop authentication nor stop the
    scrape; it is logged once per change and shown by
    ``custode_web_config_last_reload_successful``.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self.last_reload_ok = True
        self._settings = PLAIN
        self._files: list[Path] = []
        self._stamp = ""
        if self.path is not None:
            config = _parse(self.path)  # at start a broken file stops the agent, naming the problem
            self._files = [self.path, *_named_files(config, self.path)]
            self._stamp = _stamp(self._files)
            self._settings = _build(config, self.path)

    @property
    def settings(self) -> WebSettings:
        return self._settings

    def refresh(self) -> bool:
        """Reload when a file changed; True when new settings took effect."""
        if self.path is None:
            return False
        with self._lock:
            if _stamp(self._files) == self._stamp:
                return False
            try:
                config = _parse(self.path)
                self._files = [self.path, *_named_files(config, self.path)]
                self._stamp = _stamp(self._files)
                settings = _build(config, self.path)
            except ConfigError as exc:
                self._stamp = _stamp(self._files)
                self.last_reload_ok = False
                log.error("web config not reloaded; the previous settings stay in force",
                          extra={"web_config": str(self.path), "problems": [str(p) for p in exc.problems]})
                return False
            self._settings = settings
            self.last_reload_ok = True
            log.info("web config reloaded", extra={"web_config": str(self.path), "scheme": settings.scheme,
                                                   "basic_auth": settings.auth is not None})
            return True
