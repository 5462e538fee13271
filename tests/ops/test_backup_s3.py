"""Backups to S3 (moto's server): the restore drill through Litestream's S3 replica and points in the bucket,
verify, list and prune against it, and an unreachable bucket (status says so, /readyz degraded, serving goes on).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.ops import backup, backup_restore, litestream
from studyshelf.ops.backup_blobs import BlobCopyFailed
from studyshelf.ops.backup_s3 import S3Location
from studyshelf.ops.backup_store import point_time
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.conftest import Member, World, make_settings
from tests.library.support import make_folder, uploaded
from tests.ops.test_backup import _blob_bytes, _every_row
from tests.s3_support import ACCESS_KEY, SECRET_KEY, S3Server, free_port

DEADLINE = 30.0


def _s3_settings(tmp_path: Path, db_url: str, *, endpoint: str, bucket: str) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        backup_url=f"s3://{bucket}/studyshelf/backups",
        s3_endpoint_url=endpoint,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
        s3_addressing_style="path",
    )


@pytest.fixture
def settings(tmp_path: Path, db_url: str, s3_server: S3Server) -> Settings:
    return _s3_settings(tmp_path, db_url, endpoint=s3_server.endpoint, bucket=s3_server.fresh_bucket("backup"))


@contextlib.contextmanager
def _replicating(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    location = backup.location_of(settings)
    config = litestream.write_config(settings, location.replica)
    process = subprocess.Popen(  # noqa: S603 - our own argv
        litestream.replicate_command(config), env=litestream.environment(settings)
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _until(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.2)


def _shipped(settings: Settings) -> int:
    location = backup.location_of(settings)
    return max((f.max_txid for f in litestream.list_ltx(settings, location.replica)), default=0)


def test_restore_drill_from_s3(world: World, owner: Member, services: Services, tmp_path: Path) -> None:
    settings = services.settings
    location = backup.location_of(settings)
    assert isinstance(location, S3Location)
    with _replicating(settings):
        folder = make_folder(owner, owner.root_folder_id, "Week 1")
        uploaded(owner, folder["id"], "notes.txt", b"lecture notes\n")
        uploaded(owner, folder["id"], "lecture.bin", os.urandom(3 * 1024 * 1024))
        identifier = backup.create_point(services)
        backup.sync_blobs(services)
        make_folder(owner, owner.root_folder_id, "After the point")  # only the replica has this one
        database = litestream.database_path(settings)
        _until(lambda: backup.status(settings, now=datetime.now(UTC)).lag_seconds == 0.0, "everything is in S3")
    rows, blobs = _every_row(database), _blob_bytes(settings.data_dir / "blobs")
    points = backup.list_points(settings)
    assert [p.kind for p in points] == ["replica", "snapshot"]
    assert backup_restore.verify_point(settings, identifier) == []
    services.warehouse.close()
    services.engine.dispose()
    for path in sorted(settings.data_dir.rglob("*"), reverse=True):  # the disaster: only the bucket is left
        path.rmdir() if path.is_dir() else path.unlink()

    target = tmp_path / "restored"
    done = backup_restore.restore(settings, target=target, at=None)

    assert done.source == "replica"
    assert done.missing_blobs == []
    assert _every_row(target / backup.DATABASE_FILE) == rows
    assert _blob_bytes(target / "blobs") == blobs


def test_a_point_in_s3_is_verified_restored_and_pruned(owner: Member, services: Services, tmp_path: Path) -> None:
    settings = services.settings
    uploaded(owner, owner.root_folder_id, "a.txt", b"first")
    earlier = backup.create_point(services)
    uploaded(owner, owner.root_folder_id, "b.txt", b"second")
    later = backup.create_point(services)
    location = backup.location_of(settings)
    assert location.point_ids() == [earlier, later]
    digest = next(d for d in location.manifest(later).blobs if d not in location.manifest(earlier).blobs)
    writer = location.blobs.writer()  # bit rot in the bucket: other bytes under the blob's name
    writer.write(b"bit rot")
    writer.commit_as(digest)

    problems = backup_restore.verify_point(settings, later)

    assert any(digest in p and "checksum" in p for p in problems)
    assert backup_restore.verify_point(settings, earlier) == []
    with pytest.raises(BlobCopyFailed, match=digest):  # the rotten blob is refused, not restored
        backup_restore.restore(settings, target=tmp_path / "latest", at=None)
    assert not any((tmp_path / "latest").iterdir())
    done = backup_restore.restore(settings, target=tmp_path / "earlier", at=point_time(earlier))
    assert done.source == f"snapshot {earlier}"
    assert done.blobs == 1
    now = datetime.now(UTC) + timedelta(days=settings.backup_retention_days + 1)
    steps: list[int] = []
    totals: list[int] = []
    pruned = backup_restore.prune(settings, now=now, progress=steps.append, sizing=totals.append)
    assert pruned.points == 1
    assert totals == [len(steps)]
    assert location.point_ids() == [later]


def test_an_unreachable_bucket_is_reported_and_serving_goes_on(tmp_path: Path, db_url: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = _s3_settings(tmp_path, db_url, endpoint=closed, bucket="studyshelf-backups")

    state = backup.status(settings, now=datetime.now(UTC))

    assert state.problem is not None
    assert state.problem.startswith("unreachable")
    assert state.location == "s3://studyshelf-backups/studyshelf/backups/"
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200  # serving goes on
        assert ready.json()["status"] == "degraded"
        assert client.get("/healthz").status_code == 200


def test_a_missing_bucket_is_reported(tmp_path: Path, db_url: str, s3_server: S3Server) -> None:
    settings = _s3_settings(tmp_path, db_url, endpoint=s3_server.endpoint, bucket="no-such-bucket-here")
    state = backup.status(settings, now=datetime.now(UTC))
    assert state.problem is not None
    assert "unreachable" in state.problem
    assert "no-such-bucket-here" in state.problem


def test_backup_url_names_a_directory_or_an_s3_prefix(tmp_path: Path, db_url: str) -> None:
    s3 = make_settings(tmp_path, db_url, backup_url="s3://studyshelf-backups/prod/eu/")
    assert s3.backup_s3 == ("studyshelf-backups", "prod/eu")
    assert s3.backup_dir is None
    directory = make_settings(tmp_path, db_url, backup_url=f"file://{tmp_path}/b")
    assert directory.backup_dir == (tmp_path / "b").resolve()
    assert directory.backup_s3 is None
    for wrong in ("s3:///no-bucket", "gs://bucket/prefix"):
        with pytest.raises(ValueError, match="STUDYSHELF_BACKUP_URL"):
            make_settings(tmp_path, db_url, backup_url=wrong)
