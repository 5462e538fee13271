"""Platform JWKS, fetched with the outbound client and cached for the cluster; an unknown `kid` triggers one refetch.

The cache is the app database's `lti_platform_jwks` (one row per key-set URL: the body, when it was fetched, when
an unknown kid last forced a refetch), so every instance shares one fetch per `max_age` and one forced refetch per
`MIN_FORCED_REFETCH_SECONDS`: a flood of forged tokens with made-up kids, spread over the instances, reaches the
platform once in that time, not once per process. It only ever holds public keys the platform publishes. The
fetch itself happens outside any transaction (callers resolve the key before their write transaction opens).
Without sessions (`PlatformKeys()`) the cache is this process's memory.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.core.outbound import OutboundClient, OutboundError
from studyshelf.lti.models import PlatformJwks

MIN_FORCED_REFETCH_SECONDS = 10.0  # unknown kids from a flood of forged tokens cannot hammer the platform


class JwksUnavailable(Exception):
    """The platform's key set could not be fetched or read."""


class PlatformKeys:
    def __init__(
        self,
        read_sessions: sessionmaker[Session] | None = None,
        write_sessions: sessionmaker[Session] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.read_sessions = read_sessions
        self.write_sessions = write_sessions
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}  # only without sessions
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
        now = self.clock()
        cached = self._cached(url)
        if cached is not None and not force and now - cached[0] < max_age:
            return cached[1]
        if force and cached is not None and not self._claim_forced(url, now):
            return cached[1]  # refetched for an unknown kid moments ago, here or on another instance
        body = self._fetch(client, url)
        self._store(url, body, fetched_at=self.clock(), forced_at=now if force else None)
        return body

    def _cached(self, url: str) -> tuple[float, dict[str, Any]] | None:
        if self.read_sessions is None:
            with self._lock:
                return self._cache.get(url)
        with unit_of_work(self.read_sessions) as db:
            row = db.execute(select(PlatformJwks.fetched_at, PlatformJwks.body).where(PlatformJwks.url == url)).first()
        if row is None:
            return None
        try:
            body = json.loads(row.body)
        except ValueError:
            return None
        return (row.fetched_at, body) if isinstance(body, dict) and isinstance(body.get("keys"), list) else None

    def _claim_forced(self, url: str, now: float) -> bool:
        """Take the cluster's one forced refetch of this key set for the next MIN_FORCED_REFETCH_SECONDS."""
        if self.write_sessions is None:
            with self._lock:
                if now - self._forced.get(url, -1e18) < MIN_FORCED_REFETCH_SECONDS:
                    return False
                self._forced[url] = now
                return True
        with unit_of_work(self.write_sessions) as db:
            claim = (
                update(PlatformJwks)
                .where(PlatformJwks.url == url, PlatformJwks.forced_at <= now - MIN_FORCED_REFETCH_SECONDS)
                .values(forced_at=now)
            )
            return affected_rows(db.execute(claim)) == 1

    def _store(self, url: str, body: dict[str, Any], *, fetched_at: float, forced_at: float | None) -> None:
        if self.write_sessions is None:
            with self._lock:
                self._cache[url] = (fetched_at, body)
            return
        text = json.dumps(body, separators=(",", ":"))
        with unit_of_work(self.write_sessions) as db:
            insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
            values = {"url": url, "body": text, "fetched_at": fetched_at, "forced_at": forced_at or 0.0}
            changes: dict[str, Any] = {"body": text, "fetched_at": fetched_at}
            if forced_at is not None:
                changes["forced_at"] = forced_at
            db.execute(
                insert(PlatformJwks).values(**values).on_conflict_do_update(index_elements=["url"], set_=changes)
            )

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
        """Drop this process's cache (without sessions); the database's rows go with their database."""
        with self._lock:
            self._cache.clear()
            self._forced.clear()
