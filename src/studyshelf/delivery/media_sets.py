"""GET/HEAD /m/~/…: a processed version's files (HLS playlists and segments, poster, sprite) under one signature.

The prefix's signature is verified once and remembered until it expires, so a player's hundreds of segment
requests cost a dictionary look-up each; which blob a member path names is read from the database once per
version and generation and kept (outputs of a generation never change: a new run has a new generation).
Answers are `public` for what is left of the signature's life, like every /m/ answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from studyshelf.core.db import unit_of_work
from studyshelf.delivery.streaming import BlobResponse, Representation
from studyshelf.media import service as media
from studyshelf.services import Services
from studyshelf.signing import CLOCK_SKEW, MediaRefused, SetClaims, split_set, verify_set

PREFIXES_MAX = 4096
SETS_MAX = 1024
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # outputs are immutable: their ETag (the digest) is what matters


class MemberMissing(Exception):
    """The signature is good but the set has no such file (or a newer run replaced the set)."""


class MediaSets:
    """Verified prefixes and the member files of each version's set, per process."""

    def __init__(self) -> None:
        self._prefixes: dict[str, SetClaims] = {}
        self._sets: dict[tuple[str, int], dict[str, media.OutputFile]] = {}

    def claims(self, services: Services, prefix: str, now: float) -> SetClaims:
        """The prefix's claims, verifying its signature only the first time; MediaRefused."""
        claims = self._prefixes.get(prefix)
        if claims is None:
            claims = verify_set(services.signer, prefix, now)
            if len(self._prefixes) >= PREFIXES_MAX:
                self._prefixes = {p: c for p, c in self._prefixes.items() if c.expires + CLOCK_SKEW >= now}
                if len(self._prefixes) >= PREFIXES_MAX:
                    self._prefixes.clear()
            self._prefixes[prefix] = claims
        elif claims.expires + CLOCK_SKEW < now:
            del self._prefixes[prefix]
            raise MediaRefused("expired", claims.link_id)
        return claims

    async def member(self, services: Services, claims: SetClaims, path: str) -> media.OutputFile:
        key = (claims.version_id, claims.generation)
        files = self._sets.get(key)
        if files is None:
            files = await run_in_threadpool(_load, services, claims)
            if len(self._sets) >= SETS_MAX:
                self._sets.clear()
            self._sets[key] = files
        found = files.get(path)
        if found is None:
            raise MemberMissing(path)
        return found


def _load(services: Services, claims: SetClaims) -> dict[str, media.OutputFile]:
    version_id = uuid.UUID(claims.version_id)
    with unit_of_work(services.read_sessions) as db:
        if media.done_generation(db, version_id=version_id) != claims.generation:
            return {}  # reprocessed since the URL was signed: the page's renewal brings the new generation
        return media.outputs_of(db, version_id=version_id)


async def respond(
    sets: MediaSets, request: Request, services: Services, path: str, now: float
) -> tuple[BlobResponse | None, MediaRefused | None, str | None]:
    """The answer to a set URL: (response, refusal, missing) — exactly one of the first two is set."""
    parts = split_set(path)
    if parts is None:
        return None, MediaRefused("bad-signature"), None
    prefix, member = parts
    try:
        claims = sets.claims(services, prefix, now)
    except MediaRefused as refused:
        return None, refused, None
    try:
        found = await sets.member(services, claims, member)
    except MemberMissing:
        return None, None, member
    life = max(0, min(claims.expires - int(now), services.settings.media_url_ttl_seconds))
    rep = Representation(
        sha256=found.blob_sha256,
        size=found.size,
        content_type=found.content_type,
        filename=member.rsplit("/", 1)[-1],
        last_modified=EPOCH,
    )
    response = BlobResponse(  # StudyShelfError (416) from the Range header: the caller answers it
        request,
        services.blobs,
        rep,
        download=False,
        cache_control=f"public, max-age={life}",
        url_life=life,
        accel_redirect=services.settings.accel_redirect,
    )
    return response, None, None
