"""Backups in S3 (STUDYSHELF_BACKUP_URL=s3://bucket/prefix): the backup layout's keys under the prefix, via boto3.

Litestream ships the WAL to `<prefix>/litestream` with its own S3 client (ops/litestream.py writes its config);
this module holds the rest: points, manifests, the install secret, `verify.json` and the blobs, which are copied
once by content hash and checked as in a directory (a blob is written to a temporary file, checked, then put
with its SHA-256 for S3 to check on arrival). The only module that imports boto3 for backups.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from studyshelf.ops.backup_store import HASH_CHUNK, BackupLocation, Progress
from studyshelf.ops.litestream import S3Replica
from studyshelf.settings import Settings
from studyshelf.storage.interface import BlobNotFound, StoredBlob, WriterTally
from studyshelf.storage.s3 import S3Options, s3_client

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 30.0
SIZE_TTL = 300.0
_SIZES: dict[str, tuple[float, int]] = {}  # location → (when measured, bytes): a measurement, not shared state
_SIZES_LOCK = threading.Lock()


def client_for(settings: Settings, *, attempts: int = 3) -> Any:
    """The blob store's S3 client for the STUDYSHELF_S3_* settings, with short timeouts (a backup never hangs a
    status)."""
    options = replace(S3Options.from_settings(settings), connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
    return s3_client(options, attempts=attempts)


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}


class S3Files:
    """The backup's files as keys under `prefix/` in a bucket."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""

    @property
    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def problem(self) -> tuple[str | None, int]:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            return f"unreachable: bucket {self.bucket}: {exc.response.get('Error', {}).get('Code')}", 0
        except BotoCoreError as exc:
            return f"unreachable: {exc}", 0
        return None, 0

    def read(self, key: str) -> bytes | None:
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return body

    def write(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)  # S3 puts are atomic

    def upload(self, key: str, path: Path) -> None:
        self._client.upload_file(str(path), self.bucket, self._key(key))

    def download(self, key: str, target: Path) -> None:
        self._client.download_file(self.bucket, self._key(key), str(target))

    def sha256(self, key: str, progress: Progress | None = None) -> str | None:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(HASH_CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
        return digest.hexdigest()

    def listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object under the prefix (its Key relative to ours, Size, LastModified)."""
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        for page in pages:
            for item in page.get("Contents", []):
                yield {**item, "Key": str(item["Key"]).removeprefix(self.prefix)}

    def keys(self, prefix: str) -> list[str]:
        return sorted(str(item["Key"]) for item in self.listing(prefix))

    def publish(self, draft: Path, prefix: str, last: str) -> None:
        files = sorted((p for p in draft.rglob("*") if p.is_file()), key=lambda p: p.name == last)
        for path in files:  # the manifest last: until it is there, the point is not listed
            self.upload(f"{prefix}/{path.relative_to(draft)}", path)

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def total_size(self) -> int:
        """The bytes under the prefix: a listing of every object, so a process keeps it a few minutes (the
        Backups page asks every few seconds; a large backup is many LIST requests)."""
        place = self.describe
        with _SIZES_LOCK:
            known = _SIZES.get(place)
        if known is not None and time.monotonic() - known[0] < SIZE_TTL:
            return known[1]
        size = sum(int(item["Size"]) for item in self.listing(""))
        with _SIZES_LOCK:
            _SIZES[place] = (time.monotonic(), size)
        return size


class S3BlobWriter(WriterTally):
    """A blob on its way to S3: written to a temporary file (hashed on the way), put whole on commit."""

    def __init__(self, store: S3Blobs) -> None:
        super().__init__()
        self._store = store
        handle, name = tempfile.mkstemp(prefix="studyshelf-backup-blob-")
        self._file = os.fdopen(handle, "w+b")
        self._path = Path(name)

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._count(chunk)

    def sync(self) -> None:
        self._file.flush()

    def commit(self) -> StoredBlob:
        return self.commit_as(self.sha256)

    def commit_as(self, sha256: str) -> StoredBlob:
        self._file.flush()
        self._file.seek(0)
        try:
            # S3 checks the body against this checksum on arrival: a torn upload is refused, never stored.
            stored = hashlib.sha256()
            for chunk in iter(lambda: self._file.read(HASH_CHUNK), b""):
                stored.update(chunk)
            self._file.seek(0)
            self._store.put(sha256, self._file, stored.digest())
        finally:
            self.abort()
        return StoredBlob(sha256=sha256, size=self._size)

    def abort(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class S3Blobs:
    """The backup's blobs in S3, `<prefix>/blobs/ab/cd/<sha256>` as stored (ciphertext when encrypted)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = f"{prefix}/blobs/" if prefix else "blobs/"

    def key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def writer(self) -> S3BlobWriter:
        return S3BlobWriter(self)

    def put(self, sha256: str, body: Any, checksum: bytes) -> None:
        self._client.put_object(
            Bucket=self.bucket, Key=self.key(sha256), Body=body, ChecksumSHA256=base64.b64encode(checksum).decode()
        )

    def _head(self, sha256: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return head

    def exists(self, sha256: str) -> bool:
        return self._head(sha256) is not None

    def size(self, sha256: str) -> int:
        head = self._head(sha256)
        if head is None:
            raise BlobNotFound(sha256)
        return int(head["ContentLength"])

    def read_range(self, sha256: str, start: int, end: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        if start >= end:
            return iter(())
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self.key(sha256), Range=f"bytes={start}-{end - 1}")
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(sha256) from exc
            raise
        return answer["Body"].iter_chunks(chunk_size)  # type: ignore[no-any-return]

    def local_path(self, sha256: str) -> Path | None:
        return None

    def delete(self, sha256: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    def iter_digests(self) -> Iterator[str]:
        for digest, _ in self.iter_copied():
            yield digest

    def iter_copied(self) -> Iterator[tuple[str, float]]:
        """Every blob with the time it was copied (the object's LastModified, unix seconds)."""
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield str(item["Key"]).rsplit("/", 1)[-1], item["LastModified"].timestamp()

    def recover(self) -> int:
        return 0


class S3Location(BackupLocation):
    """A backup location under an S3 prefix."""

    def __init__(self, files: S3Files, blobs: S3Blobs, replica: S3Replica) -> None:
        super().__init__(files, lambda: blobs, replica)
        self.s3_blobs = blobs

    def copied_blobs(self) -> Iterator[tuple[str, float]]:
        return self.s3_blobs.iter_copied()


def s3_location(settings: Settings) -> S3Location:
    """The backup location of an s3:// STUDYSHELF_BACKUP_URL."""
    place = settings.backup_s3
    assert place is not None
    bucket, prefix = place
    client = client_for(settings)
    replica = S3Replica(
        bucket=bucket,
        path=f"{prefix}/litestream" if prefix else "litestream",
        endpoint=settings.s3_endpoint_url,
        region=settings.s3_region,
        force_path_style=settings.s3_addressing_style == "path",  # auto and virtual: Litestream's own default
    )
    return S3Location(S3Files(client, bucket, prefix), S3Blobs(client, bucket, prefix), replica)
