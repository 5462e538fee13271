"""Platform JWKS, fetched with the outbound client and cached per process; an unknown `kid` triggers one refetch.

A per-process cache is safe with several instances: it only ever holds public keys the platform
publishes, and a rotation at the platform is picked up by the refetch on an unknown kid.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import jwt

from studyshelf.core.outbound import OutboundClient, OutboundError

MIN_FORCED_REFETCH_SECONDS = 10.0  # unknown kids from a flood of forged tokens cannot hammer the platform


class JwksUnavailable(Exception):
    """The platform's key set could not be fetched or read."""


class PlatformKeys:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._forced: dict[str, float] = {}

    def _fetch(self, client: OutboundClient, url: str) -> dict[str, Any]:
        try:
            body = client.get(url, what="the platform's key set").json()
        except OutboundError as exc:
            raise JwksUnavailable(str(exc)) from exc
        except ValueError as exc:
            raise JwksUnavailable("the platform's key set is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise JwksUnavailable("the platform did not answer a JSON Web Key Set")
        return body

    def _jwks(self, client: OutboundClient, url: str, *, force: bool, max_age: float) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and not force and now - cached[0] < max_age:
                return cached[1]
            if force and cached is not None and now - self._forced.get(url, -1e9) < MIN_FORCED_REFETCH_SECONDS:
                return cached[1]
            if force:
                self._forced[url] = now
        body = self._fetch(client, url)
        with self._lock:
            self._cache[url] = (time.monotonic(), body)
        return body

    def key_for(self, client: OutboundClient, url: str, kid: str | None, *, max_age: float) -> Any:
        """The RSA public key with this kid (a lone key when the token names none), or None."""
        for force in (False, True):
            keys = [
                k
                for k in self._jwks(client, url, force=force, max_age=max_age)["keys"]
                if isinstance(k, dict) and k.get("kty") == "RSA"
            ]
            if kid is None and len(keys) == 1:
                return jwt.PyJWK(keys[0], algorithm="RS256").key
            match = next((k for k in keys if kid is not None and k.get("kid") == kid), None)
            if match is not None:
                return jwt.PyJWK(match, algorithm="RS256").key
        return None

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._forced.clear()


platform_keys = PlatformKeys()
