"""Secrets referenced by config, never written in it.

A config file is copied, diffed and mailed around; a password in it leaks. So
config says *where* a secret is: an environment variable (systemd
``Environment=``/``EnvironmentFile=``), a file readable only by the service
(systemd ``LoadCredential=`` puts it in ``$CREDENTIALS_DIRECTORY``), or the OS
keyring (Windows Credential Manager; the ``keyring`` package).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, model_validator

from custode.agent.schema import Strict


class SecretError(Exception):
    """A referenced secret cannot be read; the message names the reference and the fix.

    ``ref`` is the reference that failed, so a caller that knows the config
    (``custode run``) can say which key holds it.
    """

    def __init__(self, message: str, ref: "SecretRef | None" = None) -> None:
        super().__init__(message)
        self.ref = ref


class SecretRef(Strict):
    """Exactly one of ``env``, ``file`` or ``keyring`` (``service/username``)."""

    env: str | None = None
    file: Path | None = None
    keyring: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_plain_secret(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError("a secret must not be written in the config; use {env: VARIABLE}, "
                             "{file: /path/readable/only/by/custode} or {keyring: service/username}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "SecretRef":
        given = [name for name in ("env", "file", "keyring") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or keyring")
        if self.keyring and "/" not in self.keyring:
            raise ValueError("keyring must be 'service/username', e.g. custode/imap-backup")
        return self

    def describe(self) -> str:
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"file {self.file}"
        return f"keyring entry {self.keyring}"

    def resolve(self) -> str:
        """The secret's value; SecretError with the fix when it is not there."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise SecretError(f"environment variable {self.env} is not set (or is empty); set it in the "
                                  "service's environment (systemd: Environment= or EnvironmentFile=)", self)
            return value
        if self.file:
            path = self.file
            if not path.is_absolute() and os.environ.get("CREDENTIALS_DIRECTORY"):
                path = Path(os.environ["CREDENTIALS_DIRECTORY"]) / path
            try:
                return path.read_text(encoding="utf-8").strip("\r\n")
            except OSError as exc:
                raise SecretError(f"cannot read secret file {path}: {exc.strerror}; create it readable "
                                  "only by the custode user (chmod 600)", self) from None
        service, _, username = (self.keyring or "").partition("/")
        try:
            import keyring  # optional: Windows Credential Manager, Secret Service, macOS Keychain
        except ImportError:
            raise SecretError(f"keyring entry {self.keyring} needs the 'keyring' package "
                              "(pip install keyring), or use {env: ...} instead", self) from None
        try:
            value = keyring.get_password(service, username)
        except Exception as exc:  # noqa: BLE001 - keyring backends (D-Bus, Windows, macOS) raise their own types
            raise SecretError(f"cannot read keyring entry {self.keyring}: {exc}", self) from None
        if value is None:
            raise SecretError(f"keyring entry {self.keyring} does not exist; create it with "
                              f"'keyring set {service} {username}'", self)
        return value


SecretPath = tuple[str | int, ...]


def secret_refs(value: object, path: SecretPath = (), *, in_use: bool = False,
                _off: bool = False) -> Iterator[tuple[SecretPath, SecretRef]]:
    """Every SecretRef inside a validated config value, with its YAML key path.

    With ``in_use``, the references under a section switched off
    (``enabled: false``) are left out: nothing reads them. A section with a
    switch of its own decides for itself, so ``tickets.enabled: false`` (no
    helpdesk tickets) leaves out the backends' tokens but not the token of an
    enabled ``tickets.alertmanager`` bridge.
    """
    if isinstance(value, SecretRef):
        if not _off:
            yield path, value
        return
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        if in_use and "enabled" in fields and isinstance(value.enabled, bool):  # type: ignore[attr-defined]
            _off = not value.enabled  # type: ignore[attr-defined]
        for name, info in fields.items():
            yield from secret_refs(getattr(value, name), (*path, info.alias or name), in_use=in_use, _off=_off)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from secret_refs(item, (*path, str(key)), in_use=in_use, _off=_off)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from secret_refs(item, (*path, index), in_use=in_use, _off=_off)
