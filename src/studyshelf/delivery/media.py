"""GET/HEAD /m/…: the bytes a signed media URL names (signing.py), authorised by the URL alone.

No cookie is read (iOS media requests omit them) and no database is touched: the URL carries every
field that decides the answer, under an HMAC. The bytes are the same for every valid signature, so
the answer is `public` and may be cached by a CDN or nginx, for no longer than the signature lives.

`MediaUrls` is an ASGI middleware that answers /m/ itself, before FastAPI's router and dependency
machinery; being outside the app's SecurityHeadersMiddleware, it sets the baseline headers itself.
A path that verified is remembered until it expires, and a small blob's plain whole GET is then
answered from memory with the headers chosen the first time (bench/README.md, "Signed media URLs").

Bytes are counted for analytics: a download URL's GET is reported when it ends (`on_download`); the
bytes of inline GETs (playback, mostly Range requests) go to a per-process tally (transfers.py) that
reports few `transfer` events (`on_transfer`), the rest at the app's shutdown.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studyshelf.core.errors import StudyShelfError
from studyshelf.delivery import media_sets
from studyshelf.delivery.embed import origin_of
from studyshelf.delivery.streaming import SMALL_BLOB_MAX, BlobResponse, Representation, small_blobs
from studyshelf.delivery.transfers import Transfer, TransferKey, TransferTally
from studyshelf.limits import LimitsUnavailable, Verdict
from studyshelf.services import Services
from studyshelf.signing import CLOCK_SKEW, MediaClaims, MediaRefused, RefusalReason
from studyshelf.signing.media import SET_PREFIX
from studyshelf.web.errors import problem
from studyshelf.web.security import client_ip

PREFIX = "/m/"
VERIFIED_PATHS_MAX = 4096
REFUSAL_INTERVAL = 1.0  # seconds: at most one recorded refusal per client address in this time
REFUSAL_CLIENTS_MAX = 10_000
REFUSAL_KEYS_SECONDS = 5  # the shared limit forgets a second's mark a few seconds after it
log = logging.getLogger("studyshelf.delivery")

# The viewer is on our origin (and framed by the LMS), so media is only ever fetched same-origin.
MEDIA_HEADERS = {
    "cross-origin-resource-policy": "same-origin",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-content-type-options": "nosniff",
}
# Behind a CDN the viewer (our origin) loads media from the CDN's: players must be allowed to (CORP), and
# pdf.js's range fetches to read the answer and its range headers (CORS).
CDN_MEDIA_HEADERS = {
    "cross-origin-resource-policy": "cross-origin",
    "access-control-expose-headers": "Accept-Ranges, Content-Range, Content-Length, ETag",
}
PROBLEM_CSP = "default-src 'none'; frame-ancestors 'none'"
_REFUSAL_DETAIL: dict[RefusalReason, str] = {
    "bad-signature": "This media URL is not valid. Reload the page to get a fresh one.",
    "expired": "This media URL has expired. Reload the page to get a fresh one.",
}

DownloadRecorder = Callable[[Request, MediaClaims, int, bool], None]
"""Called (in a worker thread) after a GET of a download URL: the claims, bytes sent, and whether the
transfer completed (False: the client went away, an aborted download)."""

TransferRecorder = Callable[[Services, list[Transfer]], None]
"""Called (in a worker thread or the tally's ticker thread) with inline transfers due for reporting."""

RefusalRecorder = Callable[[Request, RefusalReason, "str | None"], None]
"""Called (in a worker thread, at most once a second per client address and process) for a refused media URL;
it records at most one a second per client address for the whole cluster (`admit_refusal`).
The link id comes from the URL as sent: trust it only as far as "someone asked for this link"."""


def refusal_window(client: str, now: float) -> dict[str, str]:
    """The shared-limit keys of a refused media request: one recorded a second per client address."""
    tag = f"{{media-refusal:{client}}}"  # a Redis hash tag: both keys in one slot, for the one script
    second = int(now)
    return {"seen": f"{tag}:seconds", "item": str(second), "window": f"{tag}:{second}"}


def admit_refusal(services: Services, keys: dict[str, str]) -> bool:
    """Whether this refused media request (its `refusal_window`) is the one its client address gets recorded
    this second, across every instance (`Services.limits`); a store that does not answer lets it through (a
    recorded refusal too many, never one lost)."""
    try:
        verdict = services.limits.admit(**keys, limit=1, seen_ttl=REFUSAL_KEYS_SECONDS, window_ttl=REFUSAL_KEYS_SECONDS)
    except (LimitsUnavailable, SQLAlchemyError):
        log.warning("media refusals: the shared limit did not answer; recording this one", exc_info=True)
        return True
    return verdict is Verdict.ADMITTED


class RefusalLimiter:
    """Lets one refusal per client address through every `interval` seconds (per process): the first line,
    which spares the shared limit a flood; `admit_refusal` decides for the cluster."""

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


class VerifiedPath(NamedTuple):
    claims: MediaClaims
    rep: Representation
    plain_headers: list[tuple[bytes, bytes]] | None  # a plain 200's fixed headers, once one was sent


class VerifiedPaths:
    """Paths whose signature checked out, kept until they expire: a player asks for one URL many times.

    Keyed by the exact path that was verified, so a hit is the answer verify() would give again (the keys
    cannot change while the process runs); expiry is still checked on every request.
    """

    def __init__(self, max_entries: int = VERIFIED_PATHS_MAX) -> None:
        self.max_entries = max_entries
        self._paths: dict[str, VerifiedPath] = {}

    def get(self, path: str) -> VerifiedPath | None:
        return self._paths.get(path)

    def put(self, path: str, entry: VerifiedPath, now: float) -> None:
        if len(self._paths) >= self.max_entries:
            self._paths = {p: e for p, e in self._paths.items() if e.claims.expires + CLOCK_SKEW >= now}
            if len(self._paths) >= self.max_entries:
                self._paths.clear()
        self._paths[path] = entry

    def forget(self, path: str) -> None:
        self._paths.pop(path, None)


class MediaUrls:
    """Answers GET/HEAD /m/… from the signed URL; passes every other request on to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        on_refused: RefusalRecorder | None = None,
        on_download: DownloadRecorder | None = None,
        on_transfer: TransferRecorder | None = None,
    ) -> None:
        self.app = app
        self.on_refused = on_refused
        self.on_download = on_download
        self.on_transfer = on_transfer
        self.limiter = RefusalLimiter()
        self.verified = VerifiedPaths()
        self.sets = media_sets.MediaSets()
        self.transfers: TransferTally | None = None  # made at the first request (it needs the services)

    def _tally(self, services: Services) -> TransferTally | None:
        if self.on_transfer is None:
            return None
        if self.transfers is None:
            recorder = self.on_transfer
            self.transfers = TransferTally(lambda entries: recorder(services, entries), clock=services.clock.time)
        return self.transfers

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_then_flush() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown" and self.transfers is not None:
                await run_in_threadpool(self.transfers.stop)  # before the app closes its event stream
            return message

        await self.app(scope, receive_then_flush, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        request = Request(scope)
        respond = self._respond_set if scope["path"].startswith(SET_PREFIX) else self._respond
        response = await respond(request, services, request_id, send)
        claims: MediaClaims | None = scope["state"].get("media_claims")
        getting = claims is not None and scope["method"] == "GET"
        counting = self.on_download is not None and getting and claims is not None and claims.download
        tally = self._tally(services) if getting and claims is not None and not claims.download else None
        if response is None:  # sent already, whole, from memory
            if counting and claims is not None:
                await self._downloaded(request, claims, claims.size, complete=True)
            elif tally is not None and claims is not None:
                await self._transferred(request, services, tally, claims, claims.size)
            return
        if isinstance(response, BlobResponse):
            response.blob_headers["x-request-id"] = request_id
        else:
            response.headers["x-request-id"] = request_id
        if tally is not None and claims is not None and isinstance(response, BlobResponse):
            await self._send_tallied(request, services, tally, claims, response, receive, send)
            return
        if not counting or claims is None or not isinstance(response, BlobResponse):
            await response(scope, receive, send)
            return
        sent, complete = 0, False

        async def send_counting(message: Message) -> None:
            nonlocal sent, complete
            await send(message)
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                complete = complete or not message.get("more_body", False)

        try:
            await response(scope, receive, send_counting)
        finally:
            sent += response.sent_elsewhere
            await self._downloaded(request, claims, sent, complete=complete)

    async def _send_tallied(
        self,
        request: Request,
        services: Services,
        tally: TransferTally,
        claims: MediaClaims,
        response: BlobResponse,
        receive: Receive,
        send: Send,
    ) -> None:
        sent = 0

        async def send_counting(message: Message) -> None:
            nonlocal sent
            await send(message)
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))

        try:
            await response(request.scope, receive, send_counting)
        finally:
            await self._transferred(request, services, tally, claims, sent + response.sent_elsewhere)

    async def _transferred(
        self, request: Request, services: Services, tally: TransferTally, claims: MediaClaims, sent: int
    ) -> None:
        if sent <= 0:
            return
        headers = request.headers
        key = TransferKey(
            link_id=claims.link_id,
            version_id=claims.version_id,
            client_ip=client_ip(request.scope, services.settings.trusted_proxies),
            user_agent=headers.get("user-agent", "")[:512],
        )
        full = tally.add(key, sent, referer=headers.get("referer", ""))
        if full:
            await run_in_threadpool(tally.report, full)

    async def _downloaded(self, request: Request, claims: MediaClaims, sent: int, *, complete: bool) -> None:
        if self.on_download is not None:
            await run_in_threadpool(self.on_download, request, claims, sent, complete)

    async def _respond(self, request: Request, services: Services, request_id: str, send: Send) -> Response | None:
        scope = request.scope
        if scope["method"] == "OPTIONS" and services.signer.cdn is not None:
            return _cdn_preflight(services)
        if scope["method"] not in ("GET", "HEAD"):
            return _problem(request, 405, "method-not-allowed", "Method not allowed", "Use GET or HEAD.", allow=True)
        now = services.clock.time()
        path: str = scope["path"]
        entry = self.verified.get(path)
        remembered = entry is not None
        try:
            if entry is None:
                claims = services.signer.verify(path, now)
                entry = VerifiedPath(claims, _representation(claims), None)
                self.verified.put(path, entry, now)
            elif entry.claims.expires + CLOCK_SKEW < now:
                self.verified.forget(path)
                raise MediaRefused("expired", entry.claims.link_id)
            scope["state"]["media_claims"] = entry.claims  # for the download recorder
        except MediaRefused as refused:
            await self._refused(request, services, refused)
            detail = _REFUSAL_DETAIL[refused.reason]
            return _problem(request, 403, "media-refused", "Media URL refused", detail, refused.reason)
        ttl = services.settings.media_url_ttl_seconds
        life = max(0, min(entry.claims.expires - int(now), ttl))  # what is left of the signature's life
        cache_control = f"public, max-age={life}"
        if entry.plain_headers is not None and _plain(scope):
            try:
                data = await small_blobs.get(services.blobs, entry.rep)
            except StudyShelfError:
                data = None  # BlobResponse below answers it with a problem (500, 503), before any byte is sent
            if data is not None:
                await _send_whole(scope, send, entry.plain_headers, cache_control, request_id, data)
                return None
        try:
            response = BlobResponse(
                request,
                services.blobs,
                entry.rep,
                download=entry.claims.download,
                cache_control=cache_control,
                url_life=life,
                accel_redirect=services.settings.accel_redirect,
            )
        except StudyShelfError as exc:  # 416 from the Range header
            refusal = _problem(request, exc.status, exc.type_slug, exc.title, exc.detail)
            if "content_range" in exc.extra:
                refusal.headers["content-range"] = str(exc.extra["content_range"])
            return refusal
        response.blob_headers.update(MEDIA_HEADERS)
        if services.signer.cdn is not None:
            response.blob_headers.update(CDN_MEDIA_HEADERS)
            response.blob_headers["access-control-allow-origin"] = origin_of(services.settings.base_url) or "*"
        if (
            remembered
            and entry.plain_headers is None
            and response.status_code == 200
            and entry.rep.size <= SMALL_BLOB_MAX
        ):
            # Asked for a second time: worth keeping the headers (a URL asked for once, as most small
            # files are, is not worth the work).
            self.verified.put(path, entry._replace(plain_headers=_plain_headers(response)), now)
        return response

    async def _respond_set(self, request: Request, services: Services, _request_id: str, _send: Send) -> Response:
        """A file of a processed version's set (/m/~/…): media_sets.py."""
        if request.scope["method"] not in ("GET", "HEAD"):
            return _problem(request, 405, "method-not-allowed", "Method not allowed", "Use GET or HEAD.", allow=True)
        path: str = request.scope["path"]
        try:
            response, refused, missing = await media_sets.respond(
                self.sets, request, services, path, services.clock.time()
            )
        except StudyShelfError as exc:  # 416 from the Range header
            return _problem(request, exc.status, exc.type_slug, exc.title, exc.detail)
        if refused is not None:
            await self._refused(request, services, refused)
            detail = _REFUSAL_DETAIL[refused.reason]
            return _problem(request, 403, "media-refused", "Media URL refused", detail, refused.reason)
        if response is None:
            detail = f"This media set has no file {missing!r} (it may have been processed again): reload the page."
            return _problem(request, 404, "media-not-found", "No such media file", detail)
        response.blob_headers.update(MEDIA_HEADERS)
        return response

    async def _refused(self, request: Request, services: Services, refused: MediaRefused) -> None:
        if self.on_refused is None:
            return
        client = client_ip(request.scope, services.settings.trusted_proxies)
        if self.limiter.allow(client, time.monotonic()):
            await run_in_threadpool(self.on_refused, request, refused.reason, refused.link_id)


# The small, whole, unconditional GET/HEAD, answered from memory with the headers BlobResponse chose for
# the same URL before (the common case: an image, a slide, a short clip). Everything else: BlobResponse.
_NOT_PLAIN = frozenset(
    {b"range", b"if-range", b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since"}
)


def _plain(scope: Scope) -> bool:
    return not any(name in _NOT_PLAIN for name, _ in scope["headers"])


def _plain_headers(response: BlobResponse) -> list[tuple[bytes, bytes]]:
    """The fixed headers of a whole 200 for this URL (cache-control and the request id vary)."""
    headers = {**response.blob_headers, "content-length": str(response.rep.size)}
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if k != "cache-control"]


async def _send_whole(
    scope: Scope, send: Send, fixed: list[tuple[bytes, bytes]], cache_control: str, request_id: str, data: bytes
) -> None:
    headers = [*fixed, (b"cache-control", cache_control.encode()), (b"x-request-id", request_id.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else data})


def _cdn_preflight(services: Services) -> Response:
    """The CORS preflight of a cross-origin Range request (pdf.js from the CDN's origin); it reveals nothing."""
    headers = {
        "access-control-allow-origin": origin_of(services.settings.base_url) or "*",
        "access-control-allow-methods": "GET, HEAD",
        "access-control-allow-headers": "Range, If-Range",
        "access-control-max-age": str(services.settings.media_url_ttl_seconds),
        "cache-control": f"public, max-age={services.settings.media_url_ttl_seconds}",
    }
    return Response(status_code=204, headers=headers)


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
