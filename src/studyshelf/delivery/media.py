"""GET/HEAD /m/…: the bytes a signed media URL names (signing.py), authorised by the URL alone.

No cookie is read (iOS media requests omit them) and no database is touched: the URL carries every
field that decides the answer, under an HMAC. The bytes are the same for every valid signature, so
the answer is `public` and may be cached by a CDN or nginx, for no longer than the signature lives.

`MediaUrls` is an ASGI middleware that answers /m/ itself, before FastAPI's router and dependency
machinery (which cost more per request than everything below; bench/README.md). Being outside the
app's SecurityHeadersMiddleware, it sets the baseline headers itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from studyshelf.core.errors import StudyShelfError
from studyshelf.delivery.signing import MediaClaims, MediaRefused, RefusalReason
from studyshelf.delivery.streaming import BlobResponse, Representation
from studyshelf.services import Services
from studyshelf.web.errors import problem
from studyshelf.web.security import client_ip

PREFIX = "/m/"
REFUSAL_INTERVAL = 1.0  # seconds: at most one recorded refusal per client address in this time
REFUSAL_CLIENTS_MAX = 10_000

# The viewer is on our origin (and framed by the LMS), so media is only ever fetched same-origin.
MEDIA_HEADERS = {
    "cross-origin-resource-policy": "same-origin",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-content-type-options": "nosniff",
}
PROBLEM_CSP = "default-src 'none'; frame-ancestors 'none'"
_REFUSAL_DETAIL: dict[RefusalReason, str] = {
    "bad-signature": "This media URL is not valid. Reload the page to get a fresh one.",
    "expired": "This media URL has expired. Reload the page to get a fresh one.",
}

RefusalRecorder = Callable[[Request, RefusalReason, "str | None"], None]
"""Called (in a worker thread, at most once a second per client address) for a refused media URL.
The link id comes from the URL as sent: trust it only as far as "someone asked for this link"."""


class RefusalLimiter:
    """Lets one refusal per client address through every `interval` seconds (per process)."""

    def __init__(self, interval: float = REFUSAL_INTERVAL, max_clients: int = REFUSAL_CLIENTS_MAX) -> None:
        self.interval = interval
        self.max_clients = max_clients
        self._last: dict[str, float] = {}

    def allow(self, client: str, now: float) -> bool:
        last = self._last.get(client)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) >= self.max_clients:
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
            if len(self._last) >= self.max_clients:
                return False  # a flood from very many addresses: record none of it rather than all
        self._last[client] = now
        return True


class MediaUrls:
    """Answers GET/HEAD /m/… from the signed URL; passes every other request on to `app`."""

    def __init__(self, app: ASGIApp, on_refused: RefusalRecorder | None = None) -> None:
        self.app = app
        self.on_refused = on_refused
        self.limiter = RefusalLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        request = Request(scope)
        response = await self._respond(request, scope["app"].state.services)
        if isinstance(response, BlobResponse):
            response.blob_headers.update(MEDIA_HEADERS)
            response.blob_headers["x-request-id"] = request_id
        else:
            response.headers["x-request-id"] = request_id
        await response(scope, receive, send)

    async def _respond(self, request: Request, services: Services) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _problem(request, 405, "method-not-allowed", "Method not allowed", "Use GET or HEAD.", allow=True)
        now = time.time()
        try:
            claims = services.signer.verify(request.scope["path"], now)
        except MediaRefused as refused:
            await self._refused(request, services, refused)
            return _problem(
                request, 403, "media-refused", "Media URL refused", _REFUSAL_DETAIL[refused.reason], refused.reason
            )
        ttl = services.settings.media_url_ttl_seconds
        max_age = max(0, min(claims.expires - int(now), ttl))
        try:
            return BlobResponse(
                request,
                services.blobs,
                _representation(claims),
                download=claims.download,
                cache_control=f"public, max-age={max_age}",
            )
        except StudyShelfError as exc:  # 416 from the Range header
            content_range = exc.extra.get("content_range")
            refusal = _problem(request, exc.status, exc.type_slug, exc.title, exc.detail)
            if content_range is not None:
                refusal.headers["content-range"] = str(content_range)
            return refusal

    async def _refused(self, request: Request, services: Services, refused: MediaRefused) -> None:
        if self.on_refused is None:
            return
        client = client_ip(request.scope, services.settings.trusted_proxies)
        if self.limiter.allow(client, time.monotonic()):
            await run_in_threadpool(self.on_refused, request, refused.reason, refused.link_id)


def _representation(claims: MediaClaims) -> Representation:
    return Representation(
        sha256=claims.sha256,
        size=claims.size,
        content_type=claims.content_type,
        filename=claims.filename,
        last_modified=datetime.fromtimestamp(claims.modified, UTC),
    )


def _problem(
    request: Request, status: int, slug: str, title: str, detail: str, reason: str | None = None, *, allow: bool = False
) -> Response:
    headers = {**MEDIA_HEADERS, "cache-control": "no-store", "content-security-policy": PROBLEM_CSP}
    if allow:
        headers["allow"] = "GET, HEAD"
    return problem(request, status=status, slug=slug, title=title, detail=detail, headers=headers, reason=reason)
