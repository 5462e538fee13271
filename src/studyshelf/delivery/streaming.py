"""Send a blob's bytes the way a CDN would: ranges, validators, caching headers, zero-copy when possible."""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from studyshelf.core.errors import StudyShelfError
from studyshelf.delivery.ranges import (
    ByteRange,
    http_date,
    not_modified,
    parse_range,
    precondition_failed,
    range_applies,
)
from studyshelf.library.sniff import is_active_content
from studyshelf.storage import BlobNotFound, BlobStore, PresignedDelivery
from studyshelf.web.errors import PROBLEM_BASE

CHUNK_SIZE = 1 << 20  # 1 MiB: measured 3x faster than 64 KiB through uvicorn (bench/README.md)
SMALL_BLOB_MAX = 256 * 1024  # blobs up to this size are served from memory (bench/README.md)
SMALL_CACHE_BYTES = 32 << 20  # per process
PRESIGNED_URL_SECONDS = 30  # a presigned URL only has to be followed: S3 checks expiry when a GET starts
CONDITIONAL_HEADERS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range")
INLINE_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"


@dataclass(frozen=True, slots=True)
class Representation:
    """What is being sent: one immutable blob, with the name and type people see."""

    sha256: str
    size: int
    content_type: str
    filename: str
    last_modified: datetime

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


def content_disposition(filename: str, *, attachment: bool) -> str:
    """RFC 6266: an ASCII fallback plus filename* in UTF-8 for everything else."""
    kind = "attachment" if attachment else "inline"
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in filename) or "download"
    header = f'{kind}; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


class BlobResponse(Response):
    """A response for a blob, honouring Range, If-Range and the conditional headers."""

    def __init__(
        self,
        request: Request,
        blobs: BlobStore,
        rep: Representation,
        *,
        download: bool,
        cache_control: str,
        url_life: int = PRESIGNED_URL_SECONDS,
        accel_redirect: str = "",
    ) -> None:
        self.background = None
        self.url_life = url_life  # the longest a presigned URL handed out for these bytes may live
        # Bytes sent by someone else: the store (a presigned URL) or nginx (X-Accel-Redirect); the app sent none.
        self.sent_elsewhere = 0
        self.blobs = blobs
        self.rep = rep
        self.method = request.method
        # The store's validators (S3's ETag is not our digest) would judge these differently: answer them here.
        self.conditional = any(name in request.headers for name in CONDITIONAL_HEADERS)
        self.accel_redirect = accel_redirect if _may_offload(request, rep) else ""
        active = is_active_content(rep.content_type)
        self.blob_headers: dict[str, str] = {
            "accept-ranges": "bytes",
            "etag": rep.etag,
            "last-modified": http_date(rep.last_modified),
            "cache-control": cache_control,
            "content-type": rep.content_type,
            "content-disposition": content_disposition(rep.filename, attachment=download or active),
            # Active content (HTML, SVG, XML) must never run script on our origin.
            "content-security-policy": INLINE_CSP
            + ("; sandbox" if active or rep.content_type != "application/pdf" else ""),
            "x-content-type-options": "nosniff",
        }
        self.status_code, self.range = self._decide(request)

    def _decide(self, request: Request) -> tuple[int, ByteRange | None]:
        h = request.headers
        rep = self.rep
        if precondition_failed(
            etag=rep.etag,
            last_modified=rep.last_modified,
            if_match=h.get("if-match"),
            if_unmodified_since=h.get("if-unmodified-since"),
        ):
            return 412, None
        if not_modified(
            etag=rep.etag,
            last_modified=rep.last_modified,
            if_none_match=h.get("if-none-match"),
            if_modified_since=h.get("if-modified-since"),
        ):
            return 304, None
        range_header = h.get("range")
        if range_header is not None and range_applies(
            etag=rep.etag, last_modified=rep.last_modified, if_range=h.get("if-range")
        ):
            byte_range = parse_range(range_header, rep.size)
            return 206, byte_range
        return 200, ByteRange(0, rep.size, rep.size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(self.blob_headers)
        if self.status_code in (304, 412):
            for name in ("content-type", "content-disposition", "content-security-policy"):
                headers.pop(name, None)
            if self.status_code == 412:
                headers["content-length"] = "0"
            await send({"type": "http.response.start", "status": self.status_code, "headers": _encode(headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        assert self.range is not None
        byte_range = self.range
        if await self._redirected(send, headers, byte_range) or await self._offloaded(send, headers, byte_range):
            return
        path = self.blobs.local_path(self.rep.sha256)
        sending = self.method != "HEAD" and byte_range.length > 0
        first: tuple[bytes, Iterator[bytes] | None] | None = None
        try:
            if path is not None and not path.exists():  # a stat: microseconds, fine on the event loop
                raise BlobNotFound(self.rep.sha256)  # purged while a URL to it was still valid
            if path is None and sending:
                # Read (and, in an encrypted store, authenticate) the first bytes before any header goes out,
                # so that a missing or tampered blob is answered with an error rather than a cut-off body.
                first = await self._first_bytes(byte_range)
        except BlobNotFound:
            await _send_gone(send)
            return
        except StudyShelfError as exc:  # a blob failing its check, a store that cannot be reached
            await _send_problem(send, exc)
            return
        headers["content-length"] = str(byte_range.length)
        if self.status_code == 206:
            headers["content-range"] = byte_range.content_range
        await send({"type": "http.response.start", "status": self.status_code, "headers": _encode(headers)})
        if not sending:
            await send({"type": "http.response.body", "body": b""})
        elif first is not None:
            await _send_store_chunks(send, *first, length=byte_range.length)
        else:
            assert path is not None
            await self._send_file(scope, send, path, byte_range)

    async def _redirected(self, send: Send, headers: dict[str, str], byte_range: ByteRange) -> bool:
        """Send the client to a presigned URL of the store's own, when it hands them out (S3, not encrypted)."""
        if self.method != "GET" or self.conditional or byte_range.length == 0:
            return False
        if not isinstance(self.blobs, PresignedDelivery):
            return False
        url = await anyio.to_thread.run_sync(
            partial(
                self.blobs.presigned_url,
                self.rep.sha256,
                expires_in=self.url_life,
                content_type=headers["content-type"],
                content_disposition=headers["content-disposition"],
                cache_control=headers["cache-control"],
            )
        )
        if url is None:
            return False
        await _send_redirect(send, url)
        self.sent_elsewhere = byte_range.length  # the client's Range goes along to the store
        return True

    async def _offloaded(self, send: Send, headers: dict[str, str], byte_range: ByteRange) -> bool:
        """Let nginx send the bytes (STUDYSHELF_ACCEL_REDIRECT): a 200 naming the file under its internal location,
        and no body; only for a plain file on local disk (the encrypted store has none: ciphertext).

        nginx answers the client's Range itself (against the ETag and Last-Modified passed on, for If-Range);
        everything else was decided here. deploy/nginx/studyshelf.conf has the matching location.
        """
        if not self.accel_redirect or self.method != "GET":
            return False
        path = self.blobs.local_path(self.rep.sha256)
        if path is None or not path.exists():  # a purged blob: answered 404 on the usual path
            return False
        # The store's layout below its root is <aa>/<bb>/<sha256> (LocalBlobStore.path_for).
        headers["x-accel-redirect"] = self.accel_redirect + "/".join(path.parts[-3:])
        del headers["accept-ranges"]  # nginx says it for the file it sends; passed on, it would be said twice
        headers["content-length"] = "0"
        self.sent_elsewhere = byte_range.length
        await send({"type": "http.response.start", "status": 200, "headers": _encode(headers)})
        await send({"type": "http.response.body", "body": b""})
        return True

    async def _send_file(self, scope: Scope, send: Send, path: Path, byte_range: ByteRange) -> None:
        if self.rep.size <= SMALL_BLOB_MAX:
            data = await small_blobs.get(self.blobs, self.rep)
            if data is not None:
                await send({"type": "http.response.body", "body": data[byte_range.start : byte_range.end]})
                return
        extensions = scope.get("extensions") or {}
        if byte_range.is_whole and "http.response.pathsend" in extensions:
            await send({"type": "http.response.pathsend", "path": str(path)})
            return
        await _send_file_range(send, path, byte_range)

    async def _first_bytes(self, byte_range: ByteRange) -> tuple[bytes, Iterator[bytes] | None]:
        """The first bytes to send from the store, and the iterator of the rest (None: nothing more)."""
        if self.rep.size <= SMALL_BLOB_MAX:
            data = await small_blobs.get(self.blobs, self.rep)
            if data is not None:
                return data[byte_range.start : byte_range.end], None
        return await anyio.to_thread.run_sync(_open_range, self.blobs, self.rep.sha256, byte_range)


def allow_store_origin(headers: dict[str, str], blobs: BlobStore, *, cdn_origin: str | None = None) -> dict[str, str]:
    """A viewer page's headers with the origins its media come from allowed for media, images and fetches: the
    store's, when it sends clients there (presigned delivery), and the CDN's (STUDYSHELF_CDN); else as they are."""
    store_origin = blobs.presigned_origin if isinstance(blobs, PresignedDelivery) else None
    origins = " ".join(origin for origin in (store_origin, cdn_origin) if origin)
    csp = headers.get("content-security-policy")
    if not origins or not csp:
        return headers
    for directive in ("img-src", "media-src", "connect-src"):
        csp = re.sub(rf"(^|; ){directive} ", rf"\g<1>{directive} {origins} ", csp, count=1)
    return {**headers, "content-security-policy": csp}


def _may_offload(request: Request, rep: Representation) -> bool:
    """Whether nginx may send these bytes: big enough to be worth it, and no precondition nginx would re-judge.

    Small blobs are sent from memory (and a proxy cache can keep them; it cannot keep an X-Accel-Redirect).
    nginx re-evaluates If-Match and If-Unmodified-Since against its own validators, not ours, so requests
    carrying them are answered here.
    """
    headers = request.headers
    return rep.size > SMALL_BLOB_MAX and "if-match" not in headers and "if-unmodified-since" not in headers


class SmallBlobCache:
    """Whole small blobs in memory, least recently used out first.

    Safe to keep for any length of time: a blob is named by the SHA-256 of its bytes, so what is
    stored under a name never changes; who may read it is decided before this is asked.
    """

    def __init__(self, max_bytes: int = SMALL_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    async def get(self, blobs: BlobStore, rep: Representation) -> bytes | None:
        """The blob's bytes (read once, then from memory); None when the store disagrees with the size."""
        data = self._blobs.get(rep.sha256)
        if data is not None:
            self._blobs.move_to_end(rep.sha256)
            return data
        data = await anyio.to_thread.run_sync(_read_whole, blobs, rep.sha256, rep.size)
        if data is not None:
            self._put(rep.sha256, data)
        return data

    def _put(self, sha256: str, data: bytes) -> None:
        with self._lock:
            if sha256 in self._blobs or len(data) > self.max_bytes:
                return
            self._blobs[sha256] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _, evicted = self._blobs.popitem(last=False)
                self._bytes -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._blobs.clear()
            self._bytes = 0


small_blobs = SmallBlobCache()


def _read_whole(blobs: BlobStore, sha256: str, size: int) -> bytes | None:
    path = blobs.local_path(sha256)
    if path is not None:
        with open(path, "rb") as handle:
            data = handle.read(size + 1)
    else:
        data = b"".join(blobs.read_range(sha256, 0, size, CHUNK_SIZE))
    return data if len(data) == size else None


async def _send_redirect(send: Send, url: str) -> None:
    # Never cached: a cached redirect would outlive the presigned URL it points at.
    headers = {"location": url, "content-length": "0", "cache-control": "no-store"}
    await send({"type": "http.response.start", "status": 302, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": b""})


async def _send_problem(send: Send, exc: StudyShelfError) -> None:
    body = json.dumps(
        {"type": PROBLEM_BASE + exc.type_slug, "title": exc.title, "status": exc.status, "detail": exc.detail}
    ).encode()
    headers = {
        "content-type": "application/problem+json",
        "content-length": str(len(body)),
        "cache-control": "no-store",
    }
    await send({"type": "http.response.start", "status": exc.status, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": body})


async def _send_gone(send: Send) -> None:
    body = (
        b'{"type":"https://studyshelf.dev/problems/not-found","title":"Not found",'
        b'"status":404,"detail":"These bytes are no longer stored."}'
    )
    headers = {
        "content-type": "application/problem+json",
        "content-length": str(len(body)),
        "cache-control": "no-store",
    }
    await send({"type": "http.response.start", "status": 404, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": body})


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _send_file_range(send: Send, path: Path, byte_range: ByteRange) -> None:
    fd = await anyio.to_thread.run_sync(os.open, path, os.O_RDONLY)
    try:
        position, remaining = byte_range.start, byte_range.length
        while remaining > 0:
            chunk = await anyio.to_thread.run_sync(os.pread, fd, min(CHUNK_SIZE, remaining), position)
            if not chunk:
                break
            position += len(chunk)
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        os.close(fd)


async def _send_store_chunks(send: Send, first: bytes, rest: Iterator[bytes] | None, *, length: int) -> None:
    # Counting the bytes lets the last piece close the body: no extra thread hop to find the iterator's end.
    remaining = length - len(first)
    more = rest is not None and remaining > 0
    await send({"type": "http.response.body", "body": first, "more_body": more})
    if not more:
        return
    assert rest is not None
    while remaining > 0:
        chunk = await anyio.to_thread.run_sync(next, rest, b"")
        if not chunk:
            break
        remaining -= len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
    if remaining > 0:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _open_range(blobs: BlobStore, sha256: str, byte_range: ByteRange) -> tuple[bytes, Iterator[bytes]]:
    """Open the range and read its first piece, in one trip to a worker thread."""
    chunks = blobs.read_range(sha256, byte_range.start, byte_range.end, CHUNK_SIZE)
    return next(chunks, b""), chunks
