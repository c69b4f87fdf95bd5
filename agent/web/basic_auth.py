"""Basic authentication against bcrypt hashes, as exporter-toolkit does it.

bcrypt is slow on purpose (tens of milliseconds per check at cost 10), so a
scrape every 15 s would spend a core on it and a flood of guesses could
spend all of them. Like exporter-toolkit: one check at a time (a lock), and
the outcome of each (user, hash, password) cached, so Prometheus's repeated
scrapes cost one dictionary lookup. An unknown user is checked against a
fixed hash too, so the answer time does not tell which users exist.

bcrypt reads only the first 72 bytes of a password; a longer password is
refused rather than checked on its prefix, so "secret" + anything never
passes for "secret".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt

MAX_PASSWORD_BYTES = 72
CACHE_SIZE = 100
# bcrypt of a random string nobody knows, cost 10: what an unknown user is checked against.
_DECOY = b"$2b$10$zYoLPk/IsXA.AoRkktq.BOFPOcqI2B9fL9o4ygnaS/JYdkj1jb4Lu"


def check_hash(digest: str) -> str | None:
    """Why ``digest`` is not a bcrypt hash Custode can check, or None."""
    if not digest.startswith(("$2a$", "$2b$", "$2y$")) or len(digest) != 60:
        return "the password must be a bcrypt hash ($2y$10$… 60 characters), e.g. from 'custode web hash-password'"
    try:
        cost = int(digest[4:6])
    except ValueError:
        return "the bcrypt hash has no cost after the prefix ($2y$10$…)"
    if not 4 <= cost <= 31:
        return f"bcrypt cost {cost} is out of range (4 to 31)"
    return None


def hash_password(password: str, cost: int = 10) -> str:
    """A bcrypt hash for the web config file (what ``htpasswd -nBC 10`` prints after the colon)."""
    secret = password.encode("utf-8")
    if len(secret) > MAX_PASSWORD_BYTES:
        raise ValueError(f"the password is {len(secret)} bytes; bcrypt reads only {MAX_PASSWORD_BYTES}")
    return bcrypt.hashpw(secret, bcrypt.gensalt(cost)).decode("ascii")


def credentials(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) from an ``Authorization: Basic …`` value, or None when it carries none."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "replace"), password


class BasicAuth:
    """The users of one web config file; :meth:`allows` is safe from many threads."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = {user: digest.encode("ascii") for user, digest in users.items()}
        self._check_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[bytes, bool] = OrderedDict()

    def _key(self, header: str | None) -> tuple[bytes, str, bytes, bytes | None] | None:
        given = credentials(header)
        if given is None:
            return None
        user, password = given
        digest = self._users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode("utf-8"), digest or _DECOY, password))).digest()
        return key, user, password, digest

    def cached(self, header: str | None) -> bool | None:
        """The verdict without bcrypt: False for no credentials, the cached outcome, or None (check needed)."""
        found = self._key(header)
        if found is None:
            return False
        if len(found[2]) > MAX_PASSWORD_BYTES:
            return False
        with self._cache_lock:
            return self._cache.get(found[0])

    def allows(self, header: str | None) -> bool:
        """Whether the ``Authorization`` header names a user with the right password."""
        found = self._key(header)
        if found is None:
            return False
        key, _, password, digest = found
        known = digest is not None
        if len(password) > MAX_PASSWORD_BYTES:
            return False
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        with self._check_lock:
            matches = bcrypt.checkpw(password, digest or _DECOY)
        verdict = known and matches
        with self._cache_lock:
            self._cache[key] = verdict
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return verdict
