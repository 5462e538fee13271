"""The S3 store's own behaviour beyond the contract suite: multipart uploads, recovery, refusing a bad bucket."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from studyshelf.cli import app as cli
from studyshelf.core.clock import MovableClock
from studyshelf.storage import build_blob_store
from studyshelf.storage.interface import StorageConfigError
from studyshelf.storage.s3 import MIN_PART_BYTES, S3BlobStore, S3Options
from tests.s3_support import ACCESS_KEY, REGION, SECRET_KEY, S3Server, free_port

PART = MIN_PART_BYTES
BIG = os.urandom(2 * PART + 12345)  # two full parts and a short last one


def options(server: S3Server, **extra: Any) -> S3Options:
    return S3Options(
        endpoint_url=server.endpoint, region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, **extra
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def store(s3_server: S3Server, clock: MovableClock) -> S3BlobStore:
    return S3BlobStore(s3_server.fresh_bucket(), "blobs/", options=options(s3_server), part_bytes=PART, now=clock.now)


def write(writer: Any, data: bytes, piece: int = 256 * 1024) -> None:
    for at in range(0, len(data), piece):
        writer.write(data[at : at + piece])


def keys(store: S3BlobStore) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def uploads(store: S3BlobStore) -> list[str]:
    return [u["Key"] for u in store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]


def test_a_large_blob_goes_up_in_parts_and_lands_under_its_digest(store: S3BlobStore) -> None:
    digest = hashlib.sha256(BIG).hexdigest()
    writer = store.writer()
    write(writer, BIG[: PART + 1])
    writer.sync()  # the first part is at the server now
    assert len(uploads(store)) == 1
    assert keys(store) == []
    assert list(store.iter_digests()) == []  # nothing visible before commit
    write(writer, BIG[PART + 1 :])
    blob = writer.commit()
    assert (blob.sha256, blob.size) == (digest, len(BIG))
    assert keys(store) == [f"blobs/{digest[:2]}/{digest[2:4]}/{digest}"]  # the temporary key is gone
    assert uploads(store) == []
    assert hashlib.sha256(b"".join(store.read_range(digest, 0, len(BIG)))).hexdigest() == digest
    start, end = PART - 10, PART + 10  # across a part boundary
    assert b"".join(store.read_range(digest, start, end, chunk_size=7)) == BIG[start:end]


def test_identical_large_bytes_are_stored_once(store: S3BlobStore) -> None:
    first, second = store.writer(), store.writer()
    write(first, BIG)
    write(second, BIG)
    assert first.commit() == second.commit()
    assert len(keys(store)) == 1
    assert uploads(store) == []


def test_abort_between_parts_leaves_nothing(store: S3BlobStore) -> None:
    writer = store.writer()
    write(writer, BIG[: PART + 100])
    writer.sync()
    assert len(uploads(store)) == 1
    writer.abort()
    assert uploads(store) == []
    assert keys(store) == []
    assert store.recover() == 0


def test_recover_removes_what_a_crash_left_once_it_is_stale(store: S3BlobStore, clock: MovableClock) -> None:
    crashed = store.writer()
    write(crashed, BIG[: PART + 1])
    crashed.sync()  # … and the process died here: no commit, no abort
    store.client.put_object(
        Bucket=store.bucket, Key=f"blobs/tmp/{int(clock.now().timestamp())}-left-behind", Body=b"half"
    )
    kept = store.writer()
    write(kept, b"a blob")
    kept.commit()
    assert store.recover() == 0  # young: may belong to a live upload in another process
    clock.advance(store.stale_after.total_seconds() + 3600)
    assert store.recover() == 2
    assert uploads(store) == []
    assert keys(store) == [store.key_for(hashlib.sha256(b"a blob").hexdigest())]


def test_presigned_url_answers_ranges_from_s3(s3_server: S3Server, store: S3BlobStore) -> None:
    presigning = S3BlobStore(store.bucket, store.prefix, options=options(s3_server, delivery="presigned"))
    writer = presigning.writer()
    writer.write(b"0123456789" * 100)
    digest = writer.commit().sha256
    assert store.presigned_url(digest, expires_in=30, content_type="", content_disposition="", cache_control="") is None
    url = presigning.presigned_url(
        digest,
        expires_in=30,
        content_type="text/plain",
        content_disposition='attachment; filename="digits.txt"',
        cache_control="private, no-cache",
    )
    assert url is not None
    response = httpx.get(url, headers={"Range": "bytes=5-14"})
    assert (response.status_code, response.content) == (206, b"5678901234")
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-disposition"] == 'attachment; filename="digits.txt"'


def test_a_missing_bucket_is_refused_at_start(s3_server: S3Server) -> None:
    with pytest.raises(StorageConfigError, match="STUDYSHELF_STORAGE_URL: bucket 'no-such-bucket' does not exist"):
        build_blob_store("s3://no-such-bucket/blobs", s3=options(s3_server))


def test_an_endpoint_that_does_not_answer_is_refused_at_start(s3_server: S3Server) -> None:
    nobody = S3Options(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    with pytest.raises(StorageConfigError, match="STUDYSHELF_S3_ENDPOINT_URL: cannot reach"):
        build_blob_store(f"s3://{s3_server.fresh_bucket()}", s3=nobody)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("STUDYSHELF_")]:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_env")
def test_serve_refuses_to_start_naming_the_setting(s3_server: S3Server, tmp_path: Path) -> None:
    env = {
        "STUDYSHELF_DATA_DIR": str(tmp_path / "data"),
        "STUDYSHELF_STORAGE_URL": "s3://no-such-bucket/blobs",
        "STUDYSHELF_S3_ENDPOINT_URL": s3_server.endpoint,
        "STUDYSHELF_S3_REGION": REGION,
        "STUDYSHELF_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "STUDYSHELF_S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    refused = CliRunner().invoke(cli, ["serve"], env=env)
    assert refused.exit_code == 1
    assert "STUDYSHELF_STORAGE_URL" in refused.output
    assert "no-such-bucket" in refused.output
    env["STUDYSHELF_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    refused = CliRunner().invoke(cli, ["serve"], env=env)
    assert refused.exit_code == 1
    assert "STUDYSHELF_S3_ENDPOINT_URL" in refused.output


def test_settings_take_both_keys_or_neither(tmp_path: Path) -> None:
    from studyshelf.settings import Settings

    with pytest.raises(ValueError, match="STUDYSHELF_S3_ACCESS_KEY_ID and STUDYSHELF_S3_SECRET_ACCESS_KEY"):
        Settings(data_dir=tmp_path, s3_access_key_id="AKIA")
    with_keys = Settings(data_dir=tmp_path, s3_access_key_id="AKIA", s3_secret_access_key="shh")  # type: ignore[arg-type]  # pydantic turns the str into a SecretStr
    assert "shh" not in repr(with_keys)
    assert S3Options.from_settings(with_keys).secret_access_key == "shh"


def test_every_part_is_sent_signed_with_its_sha256(store: S3BlobStore) -> None:
    """S3 (and MinIO, Ceph RGW, R2) refuse a body that does not hash to its signed x-amz-content-sha256."""
    sent: list[tuple[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        if request.method != "PUT" or "x-amz-copy-source" in request.headers:
            return
        body = request.body
        if hasattr(body, "read"):  # a seekable stream: read it and put it back
            at = body.tell()
            body, _unused = body.read(), body.seek(at)
        signed = request.headers["X-Amz-Content-SHA256"]
        sent.append((signed.decode() if isinstance(signed, bytes) else signed, hashlib.sha256(body).hexdigest()))

    store.client.meta.events.register("before-send.s3", capture)
    writer = store.writer()
    write(writer, BIG)
    writer.commit()
    small = store.writer()
    small.write(b"one PutObject")
    small.commit()
    assert len(sent) == 4  # three parts and the small blob
    assert all(signed == actual for signed, actual in sent)


def test_rotating_the_master_key_rewrites_blobs_in_the_bucket(store: S3BlobStore) -> None:
    from studyshelf.storage.crypto import EncryptedBlobStore, MasterKeys

    old, new = os.urandom(32), os.urandom(32)
    data = os.urandom(200_000)
    writer = EncryptedBlobStore(store, MasterKeys(old)).writer()
    writer.write(data)
    digest = writer.commit().sha256
    assert EncryptedBlobStore(store, MasterKeys(new, [old])).rewrap(digest)  # no replace_tail on S3: a new copy
    only_new = EncryptedBlobStore(store, MasterKeys(new))
    assert b"".join(only_new.read_range(digest, 0, len(data))) == data
    assert uploads(store) == []
    assert len(keys(store)) == 1
