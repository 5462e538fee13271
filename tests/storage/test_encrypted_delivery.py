"""Encryption at rest end to end: upload, then download whole and by Range over HTTP; tampering answers 500."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from studyshelf.app import create_app
from studyshelf.cli import app as cli
from studyshelf.delivery.streaming import small_blobs
from studyshelf.library.models import File, FileVersion
from studyshelf.services import Services
from studyshelf.settings import Settings
from studyshelf.signing import MediaClaims
from studyshelf.storage import build_blob_store
from studyshelf.storage.crypto import CHUNK_SIZE, TRAILER_BYTES, EncryptedBlobStore
from studyshelf.storage.local import LocalBlobStore
from tests.conftest import Member, make_settings
from tests.library.support import uploaded

MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
DATA = os.urandom(3 * CHUNK_SIZE + 1234)  # big enough to be streamed, not served from the small-blob cache
SIZE = len(DATA)
RANGES = [(0, 1), (0, CHUNK_SIZE), (CHUNK_SIZE - 1, CHUNK_SIZE + 1), (2 * CHUNK_SIZE, SIZE), (SIZE - 1, SIZE)]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        encryption_key=MASTER_KEY,
    )


@pytest.fixture(autouse=True)
def _empty_small_blob_cache() -> Iterator[None]:
    small_blobs.clear()
    yield
    small_blobs.clear()


@pytest.fixture
def file(owner: Member) -> dict[str, Any]:
    return uploaded(owner, owner.root_folder_id, "lecture.bin", DATA)


def media_url(services: Services, file_id: str) -> str:
    with services.read_sessions() as db:
        found = db.get(File, uuid.UUID(file_id))
        assert found is not None
        version = db.scalars(select(FileVersion).where(FileVersion.id == found.current_version_id)).one()
        claims = MediaClaims(
            expires=int(time.time()) + 300,
            link_id="AbCdEfGhIjKlMnOpQrSt_-",
            version_id=str(version.id),
            sha256=version.blob_sha256,
            size=version.size,
            modified=int(version.created_at.timestamp()),
            content_type=version.content_type,
            download=False,
            filename=found.name,
        )
    return services.signer.sign(claims)


def on_disk(services: Services, digest: str) -> Path:
    assert isinstance(services.blobs, EncryptedBlobStore)
    inner = services.blobs.inner
    assert isinstance(inner, LocalBlobStore)
    return inner.path_for(digest)


def test_ciphertext_on_disk_and_plaintext_over_http(services: Services, owner: Member, file: dict[str, Any]) -> None:
    digest = hashlib.sha256(DATA).hexdigest()
    stored = on_disk(services, digest).read_bytes()
    assert DATA[:64] not in stored
    assert DATA[-64:] not in stored
    whole = owner.client.get(file["content_url"])
    assert (whole.status_code, whole.content) == (200, DATA)
    assert whole.headers["etag"] == f'"{digest}"'  # content addressing stays on the plaintext
    for start, end in RANGES:
        part = owner.client.get(file["content_url"], headers={"Range": f"bytes={start}-{end - 1}"})
        assert (part.status_code, part.content) == (206, DATA[start:end])
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"


def test_signed_media_url_serves_the_plaintext(services: Services, file: dict[str, Any]) -> None:
    url = media_url(services, file["id"])
    with TestClient(create_app(services=services), base_url="http://testserver") as anonymous:
        assert anonymous.get(url).content == DATA
        for start, end in RANGES:
            part = anonymous.get(url, headers={"Range": f"bytes={start}-{end - 1}"})
            assert (part.status_code, part.content) == (206, DATA[start:end])


@pytest.mark.parametrize("where", ["first chunk", "wrapped key"])
def test_tampered_blob_is_answered_500_and_never_served(
    services: Services, owner: Member, file: dict[str, Any], where: str
) -> None:
    path = on_disk(services, hashlib.sha256(DATA).hexdigest())
    stored = bytearray(path.read_bytes())
    stored[20 if where == "first chunk" else len(stored) - TRAILER_BYTES + 40] ^= 0x01
    path.write_bytes(bytes(stored))
    for headers in ({}, {"Range": "bytes=0-99"}):
        response = owner.client.get(file["content_url"], headers=headers)
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/blob-integrity")
    with TestClient(create_app(services=services), base_url="http://testserver") as anonymous:
        response = anonymous.get(media_url(services, file["id"]))
        assert response.status_code == 500
        assert response.json()["type"].endswith("/blob-integrity")


def test_rotate_command_keeps_every_file_readable(
    services: Services, owner: Member, file: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    small = uploaded(owner, owner.root_folder_id, "small.txt", b"small and sealed")
    new_key = CliRunner().invoke(cli, ["keys", "generate"]).output.strip()
    for name in [n for n in os.environ if n.startswith("STUDYSHELF_")]:
        monkeypatch.delenv(name)
    env = {
        "STUDYSHELF_DATA_DIR": str(services.settings.data_dir),
        "STUDYSHELF_DATABASE_URL": services.settings.resolved_database_url,
        "STUDYSHELF_SECRET_KEY": services.settings.secret_key,
        "STUDYSHELF_ENCRYPTION_KEY": new_key,
    }
    refused = CliRunner().invoke(cli, ["keys", "rotate"], env=env)
    assert refused.exit_code == 1
    assert "STUDYSHELF_ENCRYPTION_KEY" in refused.output
    env["STUDYSHELF_ENCRYPTION_OLD_KEYS"] = f'["{MASTER_KEY}"]'
    rotated = CliRunner().invoke(cli, ["keys", "rotate"], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "Rewrapped 2 data keys" in rotated.output
    assert MASTER_KEY not in rotated.output
    assert new_key not in rotated.output
    only_new_key = build_blob_store(services.settings.resolved_storage_url, master_keys=[base64.b64decode(new_key)])
    for digest in (file["sha256"], small["sha256"]):
        stored = b"".join(only_new_key.read_range(digest, 0, only_new_key.size(digest)))
        assert hashlib.sha256(stored).hexdigest() == digest
    # A process still holding only the old key can no longer unwrap: give every process the new key and
    # the old one (STUDYSHELF_ENCRYPTION_OLD_KEYS) before rotating (docs/security.md).
    response = owner.client.get(small["content_url"])
    assert (response.status_code, response.json()["type"]) == (500, "https://studyshelf.dev/problems/blob-integrity")
