"""Members' downloads: a file's current bytes, or any version's.

The hot path: who may read which file is decided by the usual code (`resolve_principal`, then
`library.files.get_file` / `get_version`, so `partners.permissions`) in a worker thread, and the
answer is remembered per process for at most ACCESS_TTL seconds, keyed by the exact credential and
the file (and version), with the access epoch read before deciding (`library/access_epoch.py`). A
remembered answer is used only while the epoch is unchanged, so a revoked token, an ended session, a
lost membership or grant or a deleted file stops working at once on every instance; only expiry by
time (a grant's or session's end) may lag, by ACCESS_TTL. Failures are never remembered. The bytes
themselves are immutable (content-addressed), see streaming.py.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from studyshelf.core.errors import NotAuthenticated, NotFound, StudyShelfError
from studyshelf.delivery.streaming import BlobResponse, Representation
from studyshelf.library.access_epoch import EPOCH_SQL, EpochCache, read_epoch
from studyshelf.library.files import get_file, get_version
from studyshelf.library.models import File, FileVersion
from studyshelf.media import service as media
from studyshelf.partners.deps import SESSION_COOKIE, resolve_principal
from studyshelf.partners.principal import Principal
from studyshelf.services import Services

router = APIRouter(prefix="/api/v1", tags=["delivery"])

ACCESS_TTL = 1.0  # seconds a granted read is remembered: the most an expiry by time can lag
ACCESS_CACHE_MAX = 10_000

_BYTES_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    206: {
        "description": "A byte range",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    304: {"description": "Not modified"},
    412: {"description": "Precondition failed"},
    416: {"description": "Range not satisfiable"},
}

_AccessKey = tuple[str, str, uuid.UUID, uuid.UUID | None]


# Per process; what it holds is checked against the cluster's epoch on every use.
access_cache: EpochCache[_AccessKey, Representation] = EpochCache(ACCESS_TTL, ACCESS_CACHE_MAX)


def _read_epoch(services: Services) -> int:
    with services.engine.connect() as connection:
        return read_epoch(connection)


CONNECT_TIMEOUT_SECONDS = 5


class _LoopConnection:
    """On PostgreSQL, the event loop's own connection for epoch reads (psycopg's async API): a read is one round
    trip awaited on the loop, where a pooled read costs a hop to a worker thread and back, and a checkout.
    One more connection per worker process: count it when sizing `max_connections` (docs/operations.md)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._connection: psycopg.AsyncConnection[tuple[Any, ...]] | None = None

    async def read(self) -> int | None:
        """The epoch, or None when this connection cannot read it (the server closed it, say): the read then
        runs through the pool in a worker thread, and the next one connects afresh."""
        try:
            if self._connection is None or self._connection.closed:
                self._connection = await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            cursor = await self._connection.execute(EPOCH_SQL)
            row = await cursor.fetchone()
        except psycopg.Error:
            self.close()
            return None
        return int(row[0]) if row is not None and row[0] is not None else 0

    def close(self) -> None:
        """Close without the loop (it may be gone): libpq's own close, synchronous and immediate."""
        if self._connection is not None:
            self._connection.pgconn.finish()
            self._connection = None


class _LoopSqlite:
    """On SQLite, the event loop's own connection for epoch reads: a WAL reader never waits for the writer, and
    reading one row of a file the page cache holds costs microseconds, far less than a hop to a worker thread.
    Should the read ever have to wait (a reader can, while the WAL index is rebuilt), it gives up at once and
    the read runs in a worker thread instead."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._connection: sqlite3.Connection | None = None

    async def read(self) -> int | None:
        """The epoch, or None when it must be read in a worker thread (run on the loop: it never waits)."""
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self.database, timeout=0, isolation_level=None, check_same_thread=False
                )
            row = self._connection.execute(EPOCH_SQL).fetchone()
        except sqlite3.Error:
            self.close()
            return None
        return int(row[0]) if row is not None and row[0] is not None else 0

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class EpochReads:
    """Reads of the access epoch shared by the requests that wait for them, one at a time per event loop.

    A request joins the next read to *start* (never one already running, which may have begun before the
    request arrived), so it sees every change committed before it arrived; under load one read answers every
    request that came in while the previous one ran. The read uses the loop's own connection (PostgreSQL:
    awaited; SQLite: a WAL read that never waits), not a pooled one in a worker thread.
    """

    def __init__(self, services: Services, loop: asyncio.AbstractEventLoop, *, own_connection: bool = True) -> None:
        self.services = services
        self.loop = loop
        self._next: asyncio.Future[int] | None = None
        self._reader: asyncio.Task[None] | None = None
        url = services.engine.url
        self._own: _LoopConnection | _LoopSqlite | None = None
        if own_connection and url.get_backend_name() == "postgresql":
            self._own = _LoopConnection(url.set(drivername="postgresql").render_as_string(hide_password=False))
        elif own_connection and url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            self._own = _LoopSqlite(url.database)

    def close(self) -> None:
        if self._own is not None:
            self._own.close()

    async def _read(self) -> int:
        epoch = await self._own.read() if self._own is not None else None
        if epoch is not None:
            return epoch
        # In a worker thread, never in the event loop: taking a pooled connection may have to wait.
        return await run_in_threadpool(_read_epoch, self.services)

    async def read(self) -> int:
        if self._next is None:
            self._next = self.loop.create_future()
            if self._reader is None:
                self._reader = self.loop.create_task(self._run())
        return await asyncio.shield(self._next)

    async def _run(self) -> None:
        try:
            while self._next is not None:
                waiting, self._next = self._next, None
                try:
                    waiting.set_result(await self._read())
                except Exception as exc:  # noqa: BLE001 - every waiter must get an answer, whatever the read raised
                    waiting.set_exception(exc)
        finally:
            self._reader = None


def _epoch_reads(request: Request, services: Services) -> EpochReads:
    """The app's epoch reads on the running event loop (a test client may run one app on several loops)."""
    loop = asyncio.get_running_loop()
    reads: EpochReads | None = getattr(request.app.state, "epoch_reads", None)
    if reads is None or reads.loop is not loop:
        if reads is not None:
            reads.close()  # its loop has ended (a test client's): its connection with it
        # A connection of its own only while the app's lifespan runs (a server's), which closes it at the
        # end; an app driven without one (a test client's, a loop per request) reads through the pool.
        serving = bool(getattr(request.app.state, "serving", False))
        reads = request.app.state.epoch_reads = EpochReads(services, loop, own_connection=serving)
    return reads


def open_epoch_reads(app: Any) -> None:
    """At the app's start: epoch reads may keep a connection of their own from now on."""
    app.state.serving = True


def close_epoch_reads(app: Any) -> None:
    """At the app's shutdown: the epoch reads' own connection, if any."""
    app.state.serving = False
    reads: EpochReads | None = getattr(app.state, "epoch_reads", None)
    if reads is not None:
        reads.close()
        app.state.epoch_reads = None


async def current_epoch(request: Request, services: Services) -> int:
    """The access epoch, read once per request (before any decision of the request is made)."""
    epoch: int | None = getattr(request.state, "access_epoch", None)
    if epoch is None:
        epoch = await _epoch_reads(request, services).read()
        request.state.access_epoch = epoch
    return epoch


# A valid credential is remembered under this pseudo file id (the nil UUID, which no file has).
_CALLER = uuid.UUID(int=0)
_CALLER_OK = Representation(
    sha256="", size=0, content_type="", filename="", last_modified=datetime.min.replace(tzinfo=UTC)
)


def _credential(request: Request) -> tuple[str, str] | None:
    """What identifies the caller, the way resolve_principal reads it: a bearer token first, else the cookie."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return "bearer", value.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    return ("cookie", cookie) if cookie else None


def _representation(file: File, version: FileVersion) -> Representation:
    return Representation(
        sha256=version.blob_sha256,
        size=version.size,
        content_type=version.content_type,
        filename=file.name,
        last_modified=version.created_at,
    )


def _decide(
    request: Request, services: Services, load: Callable[[Session, Principal], Representation]
) -> Representation:
    """Resolve the caller and run the permission checks in one read session (the usual rules)."""
    with services.read_sessions() as db:
        principal = _principal(request, db)
        rep = load(db, principal)
        db.commit()
        return rep


def _principal(request: Request, db: Session) -> Principal:
    principal = resolve_principal(request, db)
    request.state.principal = principal
    if principal is None:
        raise NotAuthenticated("Sign in or send an API token.")
    return principal


def _check_caller(request: Request, services: Services) -> None:
    with services.read_sessions() as db:
        _principal(request, db)


def _services(request: Request) -> Services:
    # Not a (sync) dependency: FastAPI would run that in a worker thread on every request.
    services: Services = request.app.state.services
    return services


async def get_caller(request: Request) -> tuple[str, str]:
    """The caller's credential, checked (as CurrentPrincipal would, so 401 comes before 422 and 404)."""
    credential = _credential(request)
    if credential is None:
        raise NotAuthenticated("Sign in or send an API token.")
    key = (credential[0], credential[1], _CALLER, None)
    services = _services(request)
    epoch = await current_epoch(request, services)
    if access_cache.get(key, epoch=epoch) is None:
        await run_in_threadpool(_check_caller, request, services)
        access_cache.put(key, _CALLER_OK, epoch=epoch)
    return credential


Caller = Annotated[tuple[str, str], Depends(get_caller)]


async def _granted(
    request: Request,
    services: Services,
    caller: tuple[str, str],
    file_id: uuid.UUID,
    version_id: uuid.UUID | None,
    load: Callable[[Session, Principal], Representation],
) -> Representation:
    key = (caller[0], caller[1], file_id, version_id)
    epoch = await current_epoch(request, services)
    rep = access_cache.get(key, epoch=epoch)
    if rep is None:
        rep = await run_in_threadpool(_decide, request, services, load)
        access_cache.put(key, rep, epoch=epoch)
    return rep


# One route per method: a shared GET/HEAD route gives both operations the same OpenAPI operationId.
@router.get("/files/{file_id}/content", response_class=Response, responses=_BYTES_RESPONSES)
@router.head("/files/{file_id}/content", response_class=Response, responses=_BYTES_RESPONSES)
async def file_content(file_id: uuid.UUID, request: Request, caller: Caller, download: bool = False) -> Response:
    """The current version's bytes (Range, conditional requests; `?download=1` for an attachment)."""

    def load(db: Session, principal: Principal) -> Representation:
        file = get_file(db, principal=principal, file_id=file_id, now=services.clock.now())
        assert file.current_version is not None
        return _representation(file, file.current_version)

    services = _services(request)
    rep = await _granted(request, services, caller, file_id, None, load)
    return _blob_response(request, services, rep, download=download, cache_control="private, no-cache")


@router.get("/files/{file_id}/versions/{version_id}/content", response_class=Response, responses=_BYTES_RESPONSES)
@router.head("/files/{file_id}/versions/{version_id}/content", response_class=Response, responses=_BYTES_RESPONSES)
async def version_content(
    file_id: uuid.UUID,
    version_id: uuid.UUID,
    request: Request,
    caller: Caller,
    download: bool = False,
) -> Response:
    """One version's bytes; versions never change, so they may be cached for long."""

    def load(db: Session, principal: Principal) -> Representation:
        file, version = get_version(
            db, principal=principal, file_id=file_id, version_id=version_id, now=services.clock.now()
        )
        return _representation(file, version)

    services = _services(request)
    rep = await _granted(request, services, caller, file_id, version_id, load)
    return _blob_response(
        request, services, rep, download=download, cache_control="private, max-age=31536000, immutable"
    )


PreviewName = Literal["thumb.jpg", "poster.jpg"]


@router.get("/files/{file_id}/previews/{name}", response_class=Response, responses=_BYTES_RESPONSES)
async def file_preview(file_id: uuid.UUID, name: PreviewName, request: Request, caller: Caller) -> Response:
    """The current version's thumbnail or poster, once processing has made it (404 until then)."""

    def load(db: Session, principal: Principal) -> Representation:
        file = get_file(db, principal=principal, file_id=file_id, now=services.clock.now())
        version = file.current_version
        assert version is not None
        found = media.output(db, version_id=version.id, path=name)
        if found is None:
            raise PreviewNotFound(f"This file has no {name.removesuffix('.jpg')} (yet).")
        return Representation(found.blob_sha256, found.size, found.content_type, name, version.created_at)

    services = _services(request)
    rep = await run_in_threadpool(_decide, request, services, load)
    return _blob_response(request, services, rep, download=False, cache_control="private, max-age=300")


class PreviewNotFound(NotFound):
    type_slug = "preview-not-found"
    title = "No preview yet"


def _blob_response(
    request: Request, services: Services, rep: Representation, *, download: bool, cache_control: str
) -> BlobResponse:
    return BlobResponse(
        request,
        services.blobs,
        rep,
        download=download,
        cache_control=cache_control,
        accel_redirect=services.settings.accel_redirect,
    )


_CONTENT_PATH = re.compile(r"/api/v1/files/([0-9a-fA-F-]{32,36})(?:/versions/([0-9a-fA-F-]{32,36}))?/content")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _download_flag(query: str) -> bool | None:
    """`?download=` as FastAPI would read it; None when the query holds anything else (let FastAPI answer)."""
    if not query:
        return False
    flag = False
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "download" or value.lower() not in _TRUE | _FALSE:
            return None
        flag = value.lower() in _TRUE
    return flag


async def _cached_read(scope: Scope) -> tuple[Request, Representation, uuid.UUID | None, bool] | None:
    """The representation a still-cached grant gives this exact request, or None (let the route decide)."""
    match = _CONTENT_PATH.fullmatch(scope["path"])
    download = _download_flag(scope.get("query_string", b"").decode("latin-1")) if match else None
    request = Request(scope)
    credential = _credential(request) if download is not None else None
    if match is None or download is None or credential is None:
        return None
    try:
        file_id = uuid.UUID(match[1])
        version_id = uuid.UUID(match[2]) if match[2] else None
    except ValueError:
        return None
    caller_key = (credential[0], credential[1], _CALLER, None)
    file_key = (credential[0], credential[1], file_id, version_id)
    if not access_cache.holds(caller_key, file_key):  # no round trip for the epoch when it cannot hit
        return None
    epoch = await current_epoch(request, _services(request))
    if access_cache.get(caller_key, epoch=epoch) is None:
        return None
    rep = access_cache.get(file_key, epoch=epoch)
    return None if rep is None else (request, rep, version_id, download)


class MemberContentFastPath:
    """Answers a member's GET/HEAD of bytes straight from the access cache, before FastAPI's router.

    Only cache hits are answered here — a read that `file_content`/`version_content` granted less than
    ACCESS_TTL ago for the same credential, file and version; everything else (first reads, errors,
    odd query strings) goes on to those routes unchanged, so behaviour is identical, only faster.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            response = await self._from_cache(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _from_cache(scope: Scope) -> Response | None:
        hit = await _cached_read(scope)
        if hit is None:
            return None
        request, rep, version_id, download = hit
        services: Services = scope["app"].state.services
        cache_control = "private, no-cache" if version_id is None else "private, max-age=31536000, immutable"
        try:
            return _blob_response(request, services, rep, download=download, cache_control=cache_control)
        except StudyShelfError:
            return None  # a 416 and the like: the route answers it as problem+json
