"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2) through boto3.

Keys mirror the local store: `<prefix>ab/cd/<sha256>` for blobs, `<prefix>tmp/<uuid>` while an upload is
being written. The digest is only known when the last byte has arrived, and an S3 object's key is fixed
when its upload starts, so:

- a blob that fits in one part (the common case) is held in memory until commit and put straight under
  its digest key with one PutObject;
- a larger one streams as a multipart upload to a temporary key, one part in memory while the previous one
  is on its way; commit completes it, copies it server-side to the digest key (no byte passes through us
  again) and deletes the temporary key. An interrupted upload is aborted; `recover` aborts the ones a crash
  left behind once they are older than `stale_after`.

Every request body is SigV4-signed with its SHA-256 (`payload_signing_enabled`), which every S3-compatible
server checks, so each part arrives as the bytes we hashed; the whole-blob digest is computed over exactly
those parts. boto3's newer default CRC checksums are turned off (`when_required`): several S3-compatible
servers refuse the aws-chunked uploads they need.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from studyshelf.storage.interface import (
    BlobNotFound,
    StorageConfigError,
    StorageUnavailable,
    StoredBlob,
    WriterTally,
)

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3 import S3Client

    from studyshelf.settings import Settings

log = logging.getLogger("studyshelf.storage")

PART_BYTES = 8 * 1024 * 1024
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part but the last
MAX_SINGLE_COPY = 5 * 1024**3  # CopyObject's limit; larger blobs are copied part by part
STALE_AFTER = timedelta(days=1)  # an upload untouched this long was left by a crash (uploads of hours are fine)
PART_UPLOADERS = 8  # threads per process sending parts (each writer keeps at most one part in flight)
_BLOB_KEY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
S3_ERRORS = (BotoCoreError, ClientError)  # what a request to S3 raises: refused, or not answered
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})

AddressingStyle = Literal["auto", "path", "virtual"]
Delivery = Literal["stream", "presigned"]


@dataclass(frozen=True)
class S3Options:
    """How to reach the S3-compatible service (STUDYSHELF_S3_*); None values fall back to boto3's defaults."""

    endpoint_url: str | None = None
    public_endpoint_url: str | None = None  # what browsers reach, for presigned URLs; None: endpoint_url
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    addressing_style: AddressingStyle = "auto"
    delivery: Delivery = "stream"
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Options:
        secret = settings.s3_secret_access_key
        return cls(
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            addressing_style=settings.s3_addressing_style,
            delivery=settings.s3_delivery,
        )


def s3_client(options: S3Options, *, attempts: int = 3, read_timeout: float | None = None) -> S3Client:
    """A boto3 S3 client for these options (also what backups use to reach the same service)."""
    from botocore.config import Config

    config = Config(
        region_name=options.region,
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout if read_timeout is None else read_timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
        max_pool_connections=PART_UPLOADERS + 16,
        s3={"addressing_style": options.addressing_style, "payload_signing_enabled": True},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    with _session_lock:
        session = _boto3_session()
        return session.client(
            "s3",
            endpoint_url=options.endpoint_url,
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
            config=config,
        )


_session_lock = threading.Lock()


@functools.cache
def _boto3_session() -> boto3.session.Session:
    """One boto3 session per process: its clients share the parsed service model (a client costs ms, not a second).
    Sessions are not thread-safe, so clients are made under `_session_lock`; clients themselves are."""
    import boto3

    return boto3.session.Session()


def parse_storage_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix ending in "/" or empty) of an s3://bucket/prefix URL."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageConfigError(f"STUDYSHELF_STORAGE_URL: {url!r} is not s3://bucket/prefix")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


def _valid_digest(sha256: str) -> bool:
    return len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def _is_missing(exc: Exception) -> bool:
    return _error_code(exc) in _MISSING_CODES


def _unavailable(exc: Exception, doing: str) -> StorageUnavailable:
    log.error("S3 %s failed: %s", doing, exc)
    return StorageUnavailable("File storage cannot be reached right now; nothing was changed. Try again shortly.")


class S3BlobWriter(WriterTally):
    def __init__(self, store: S3BlobStore) -> None:
        super().__init__()
        self._store = store
        # The start time is in the name: `recover` reads it there, not from the server (moto, for one, reports
        # every upload as started in 2010), and in the writer's own clock.
        self._tmp_key = f"{store.tmp_prefix}{int(store.now().timestamp())}-{uuid.uuid4().hex}"
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._in_flight: Future[dict[str, Any]] | None = None
        self._multipart = False  # a part was handed to a sender thread: the bytes go up as a multipart upload
        self._unreachable = False  # S3 did not answer (rather than refused): abort leaves the rest to recover()
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._count(chunk)
        self._buffer += chunk
        part_bytes = self._store.part_bytes
        while len(self._buffer) >= part_bytes:
            self._send_part(bytes(self._buffer[:part_bytes]))
            del self._buffer[:part_bytes]

    def sync(self) -> None:
        """Every full part is sent; the rest (less than a part) stays in memory until commit puts it."""
        self._wait_for_part()

    def commit(self) -> StoredBlob:
        return self._commit(self._hash.hexdigest(), reuse_identical=True)

    def commit_as(self, sha256: str) -> StoredBlob:
        # The caller's bytes may differ from what is stored under the name (a re-encrypted blob): always write.
        return self._commit(sha256, reuse_identical=False)

    def _commit(self, sha256: str, *, reuse_identical: bool) -> StoredBlob:
        store, key = self._store, self._store.key_for(sha256)
        try:
            if reuse_identical and store.stored_size(key) == self._size:
                self._discard_upload()
            elif not self._multipart:
                store.client.put_object(Bucket=store.bucket, Key=key, Body=bytes(self._buffer))
            else:
                self._complete_upload()
                store.copy(self._tmp_key, key, self._size)
                store.client.delete_object(Bucket=store.bucket, Key=self._tmp_key)
        except StorageUnavailable:
            self.abort()
            raise
        except S3_ERRORS as exc:
            self._unreachable = not isinstance(exc, ClientError)
            self.abort()
            raise _unavailable(exc, f"commit of {sha256}") from exc
        self._buffer = bytearray()
        self._done = True
        return StoredBlob(sha256=sha256, size=self._size)

    def abort(self) -> None:
        """Forget the bytes: the multipart upload is aborted and the temporary key deleted (errors only logged;
        `recover` removes what an unreachable server kept)."""
        self._buffer = bytearray()
        if self._done:
            return
        self._done = True
        if self._unreachable:  # another try would only wait for the same timeouts (on the request's event loop)
            log.warning("S3 unreachable: %s is left for recover() to remove", self._tmp_key)
            return
        try:
            self._discard_upload()
        except S3_ERRORS as exc:  # the upload failed already; what stays behind recover() removes
            log.warning("S3 abort of %s failed (recover removes it later): %s", self._tmp_key, exc)

    def _send_part(self, body: bytes) -> None:
        self._wait_for_part()
        self._multipart = True
        self._in_flight = self._store.part_uploaders.submit(self._upload_part, len(self._parts) + 1, body)

    def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        """In a sender thread (one part of a writer at a time), so the request's event loop never waits on S3."""
        store = self._store
        if self._upload_id is None:
            self._upload_id = store.client.create_multipart_upload(Bucket=store.bucket, Key=self._tmp_key)["UploadId"]
        return store.upload_part(self._tmp_key, self._upload_id, number, body)

    def _wait_for_part(self) -> None:
        """Let the part on its way finish (at most one is, so memory holds one part besides the one filling)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        try:
            self._parts.append(in_flight.result())
        except S3_ERRORS as exc:
            self._unreachable = not isinstance(exc, ClientError)
            raise _unavailable(exc, f"upload of part {len(self._parts) + 1} of {self._tmp_key}") from exc

    def _complete_upload(self) -> None:
        self._wait_for_part()
        assert self._upload_id is not None
        if self._buffer or not self._parts:
            number = len(self._parts) + 1
            self._parts.append(self._store.upload_part(self._tmp_key, self._upload_id, number, bytes(self._buffer)))
        store = self._store
        store.client.complete_multipart_upload(
            Bucket=store.bucket,
            Key=self._tmp_key,
            UploadId=self._upload_id or "",
            MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]  # dicts from upload_part
        )
        stored = store.stored_size(self._tmp_key)
        if stored != self._size:
            raise StorageUnavailable(f"S3 kept {stored} bytes of an upload of {self._size}; nothing was changed.")

    def _discard_upload(self) -> None:
        store = self._store
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None and not in_flight.cancel():  # on its way already: let it end (it may create the
            with contextlib.suppress(*S3_ERRORS):  # upload, which is aborted below); the part is thrown away anyway
                in_flight.result()
        if self._upload_id is None:
            return
        try:
            store.client.abort_multipart_upload(Bucket=store.bucket, Key=self._tmp_key, UploadId=self._upload_id)
        except S3_ERRORS as exc:
            if _error_code(exc) != "NoSuchUpload":  # completed already: the temporary object goes below
                raise
        store.client.delete_object(Bucket=store.bucket, Key=self._tmp_key)


class S3BlobStore:
    """A RawBlobStore in a bucket; `check()` (done by `build_blob_store`) refuses an unreachable one."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        options: S3Options | None = None,
        client: S3Client | None = None,
        part_bytes: int = PART_BYTES,
        stale_after: timedelta = STALE_AFTER,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"S3 parts are at least {MIN_PART_BYTES} bytes")
        self.bucket = bucket
        self.prefix = prefix
        self.options = options or S3Options()
        self.client: S3Client = client or s3_client(self.options)
        self.part_bytes = part_bytes
        self.stale_after = stale_after
        self.now = now
        self.tmp_prefix = f"{prefix}tmp/"
        self._uploaders: ThreadPoolExecutor | None = None
        self._uploaders_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, options: S3Options) -> S3BlobStore:
        bucket, prefix = parse_storage_url(url)
        return cls(bucket, prefix, options=options)

    @property
    def part_uploaders(self) -> ThreadPoolExecutor:
        with self._uploaders_lock:
            if self._uploaders is None:
                self._uploaders = ThreadPoolExecutor(PART_UPLOADERS, thread_name_prefix="s3-parts")
            return self._uploaders

    def check(self) -> None:
        """Refuse to start on an endpoint that does not answer or a bucket that is not there (one quick try)."""
        quick = s3_client(self.options, attempts=1, read_timeout=min(5.0, self.options.read_timeout))
        try:
            quick.head_bucket(Bucket=self.bucket)
        except S3_ERRORS as exc:
            raise self._refusal(exc) from None
        finally:
            quick.close()

    def _refusal(self, exc: Exception) -> StorageConfigError:
        where = self.options.endpoint_url or "AWS S3"
        code = _error_code(exc)
        if code in _MISSING_CODES or code == "NoSuchBucket":
            return StorageConfigError(
                f"STUDYSHELF_STORAGE_URL: bucket {self.bucket!r} does not exist at {where} "
                "(create it, or fix the URL or STUDYSHELF_S3_ENDPOINT_URL)"
            )
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StorageConfigError(
                f"STUDYSHELF_S3_ACCESS_KEY_ID / STUDYSHELF_S3_SECRET_ACCESS_KEY: access to bucket "
                f"{self.bucket!r} at {where} was refused ({code or 'forbidden'})"
            )
        return StorageConfigError(
            f"STUDYSHELF_S3_ENDPOINT_URL: cannot reach {where} for bucket {self.bucket!r} ({type(exc).__name__}: {exc})"
        )

    def key_for(self, sha256: str) -> str:
        if not _valid_digest(sha256):
            raise BlobNotFound(sha256)
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def writer(self) -> S3BlobWriter:
        return S3BlobWriter(self)

    def stored_size(self, key: str) -> int | None:
        """The object's length, or None when there is none."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except S3_ERRORS as exc:
            if _is_missing(exc):
                return None
            raise _unavailable(exc, f"HeadObject {key}") from exc

    def exists(self, sha256: str) -> bool:
        try:
            return self.stored_size(self.key_for(sha256)) is not None
        except BlobNotFound:
            return False

    def size(self, sha256: str) -> int:
        size = self.stored_size(self.key_for(sha256))
        if size is None:
            raise BlobNotFound(sha256)
        return size

    def read_range(self, sha256: str, start: int, end: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        key = self.key_for(sha256)
        if start >= end:
            self.size(sha256)  # an empty range of a missing blob is still missing
            return iter(())
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        except S3_ERRORS as exc:
            if _is_missing(exc):
                raise BlobNotFound(sha256) from exc
            if _error_code(exc) == "InvalidRange":  # starts at or past the end, as a file read would
                self.size(sha256)
                return iter(())
            raise _unavailable(exc, f"GetObject {key}") from exc
        return _stream(response["Body"], chunk_size)

    def local_path(self, sha256: str) -> Path | None:
        return None

    def delete(self, sha256: str) -> None:
        try:
            key = self.key_for(sha256)
        except BlobNotFound:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except S3_ERRORS as exc:
            raise _unavailable(exc, f"DeleteObject {key}") from exc

    def iter_digests(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                match = _BLOB_KEY.fullmatch(item["Key"][len(self.prefix) :])
                if match and match[3].startswith(match[1] + match[2]):
                    yield match[3]

    def recover(self) -> int:
        """Abort multipart uploads and delete temporary objects older than `stale_after`; return how many."""
        cutoff = (self.now() - self.stale_after).timestamp()
        removed = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.tmp_prefix)
        for uploads_page in pages:
            for upload in uploads_page.get("Uploads", []):
                if self._started(upload["Key"]) < cutoff:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        objects = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.tmp_prefix)
        for page in objects:
            for item in page.get("Contents", []):
                if self._started(item["Key"]) < cutoff:
                    self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                    removed += 1
        return removed

    def _started(self, tmp_key: str) -> float:
        """When the upload of a temporary key began (0 for a name not of ours: stale)."""
        started = tmp_key[len(self.tmp_prefix) :].split("-", 1)[0]
        return float(started) if started.isdigit() else 0.0

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        sent = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": sent["ETag"]}

    def copy(self, source: str, target: str, size: int) -> None:
        """Server-side copy: one CopyObject up to 5 GiB, boto3's multipart copy beyond."""
        if size <= MAX_SINGLE_COPY:
            self.client.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source})
            return
        from boto3.s3.transfer import TransferConfig

        self.client.copy(
            {"Bucket": self.bucket, "Key": source},
            self.bucket,
            target,
            Config=TransferConfig(multipart_threshold=MAX_SINGLE_COPY, multipart_chunksize=512 * 1024 * 1024),
        )

    @functools.cached_property
    def presigner(self) -> S3Client:
        """The client that signs delivery URLs: on the public endpoint when the app reaches S3 by another name.

        Presigning is computed locally (no request), and SigV4 signs the host, so the URL must be made for the
        host the browser will send; a proxy in front of the service must pass that Host header on unchanged."""
        public = self.options.public_endpoint_url
        if not public or public == self.options.endpoint_url:
            return self.client
        return s3_client(replace(self.options, endpoint_url=public))

    @functools.cached_property
    def presigned_origin(self) -> str | None:
        if self.options.delivery != "presigned":
            return None
        url = urlsplit(self.presigner.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "x"}))
        return f"{url.scheme}://{url.netloc}"

    def presigned_url(
        self, sha256: str, *, expires_in: int, content_type: str, content_disposition: str, cache_control: str
    ) -> str | None:
        """A short-lived GetObject URL answering with these headers, when delivery is `presigned`; else None."""
        if self.options.delivery != "presigned":
            return None
        params = {
            "Bucket": self.bucket,
            "Key": self.key_for(sha256),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition,
            "ResponseCacheControl": cache_control,
        }
        return self.presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=max(1, expires_in))


def _stream(body: Any, chunk_size: int) -> Iterator[bytes]:
    """The object's bytes in chunks of at most chunk_size; the connection goes back when done or dropped."""
    try:
        while chunk := body.read(chunk_size):
            yield chunk
    finally:
        body.close()
