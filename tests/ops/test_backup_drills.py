"""Drills with a real `litestream replicate`: point in time, then the RPO under kill -9, sharing one replicator.

Replication runs in real time (Litestream stamps what it ships with the wall clock), so these tests poll
for conditions with deadlines; they take a few seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from studyshelf.core.clock import MovableClock
from studyshelf.ops import backup, backup_restore, litestream
from studyshelf.ops.backup_blobs import plaintext_digest
from studyshelf.ops.backup_health import BackupMonitor
from studyshelf.services import Services
from studyshelf.settings import Settings
from studyshelf.storage.local import LocalBlobStore
from tests.conftest import Member, World
from tests.library.support import make_folder

DEADLINE = 20.0
WRITER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA busy_timeout=10000")
db.execute("CREATE TABLE IF NOT EXISTS drill_rows (id INTEGER PRIMARY KEY, committed_at REAL NOT NULL)")
while True:
    db.execute("INSERT INTO drill_rows (committed_at) VALUES (?)", (time.time(),))
    time.sleep(0.05)
"""


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.1)


@pytest.fixture
def replicator(services: Services) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    location = backup.location_of(services.settings)
    location.prepare()
    config = litestream.write_config(services.settings, location.replica)
    process = subprocess.Popen(litestream.replicate_command(config))  # noqa: S603 - our own argv
    yield process, config
    if process.poll() is None:
        process.kill()
    process.wait()


def _shipped(settings: Settings) -> int:
    replica = backup.location_of(settings).replica
    return max((f.max_txid for f in litestream.list_ltx(settings, replica)), default=0)


def _folder_state(database: Path, name: str) -> tuple[str | None] | None:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)) as db:
        row = db.execute("SELECT deleted_at FROM folders WHERE name = ?", (name,)).fetchone()
    return None if row is None else (row[0],)


def _point_in_time_drill(owner: Member, services: Services, tmp_path: Path) -> None:
    replica = backup.location_of(services.settings).replica
    before = _shipped(services.settings)
    folder = make_folder(owner, owner.root_folder_id, "Week 7")
    _until(lambda: _shipped(services.settings) > before, "the new folder is replicated")
    shipped = max(f.shipped_at for f in litestream.list_ltx(services.settings, replica))
    # Litestream stamps a shipment up to a second after the commit: go past that before the mistake.
    _until(lambda: datetime.now(UTC) > shipped + timedelta(seconds=2.2), "the folder's shipment is 2 s old")
    mistake_at = datetime.now(UTC)
    before = _shipped(services.settings)
    response = owner.client.delete(f"/api/v1/folders/{folder['id']}", headers=owner.headers())
    assert response.status_code == 204, response.text
    make_folder(owner, owner.root_folder_id, "After the mistake")
    _until(lambda: _shipped(services.settings) > before, "the deletion is replicated")

    target = tmp_path / "before-mistake"
    done = backup_restore.restore(services.settings, target=target, at=mistake_at - timedelta(seconds=1))

    assert done.source == "replica"
    assert done.as_of <= mistake_at - timedelta(seconds=1)
    assert _folder_state(target / backup.DATABASE_FILE, "Week 7") == (None,)  # back, not in the trash
    assert _folder_state(target / backup.DATABASE_FILE, "After the mistake") is None


def _rpo_drill(services: Services, replicator: subprocess.Popen[bytes], tmp_path: Path) -> float:
    """Return the seconds of committed writes lost (kill -9 of writer and replicator at a random moment)."""
    database = litestream.database_path(services.settings)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(database)])  # noqa: S603 - our own script
    try:
        time.sleep(random.uniform(2.0, 4.0))  # noqa: S311 - a random moment, not a secret
    finally:
        replicator.send_signal(signal.SIGKILL)
        writer.send_signal(signal.SIGKILL)
        killed_at = time.time()
        writer.wait()
        replicator.wait()
    with contextlib.closing(sqlite3.connect(database)) as db:
        committed = db.execute("SELECT id, committed_at FROM drill_rows ORDER BY id").fetchall()
    assert len(committed) > 20

    target = tmp_path / "after-crash"
    backup_restore.restore(services.settings, target=target, at=None)

    with contextlib.closing(sqlite3.connect(target / backup.DATABASE_FILE)) as db:
        restored = dict(db.execute("SELECT id, committed_at FROM drill_rows").fetchall())
    old_enough = [row_id for row_id, at in committed if at < killed_at - 5]
    assert all(row_id in restored for row_id in old_enough)
    assert all(restored[row_id] == at for row_id, at in committed if row_id in restored)
    return killed_at - max(restored.values())


def test_point_in_time_and_rpo_drills(
    owner: Member,
    services: Services,
    replicator: tuple[subprocess.Popen[bytes], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    process, _ = replicator
    _point_in_time_drill(owner, services, tmp_path)
    loss = _rpo_drill(services, process, tmp_path)
    with capsys.disabled():
        print(f"\nRPO drill: {loss:.2f} s of committed writes lost (target <= 5 s)")
    assert loss <= 5.0


UPLOADER = """
import os, sys, time
from fastapi.testclient import TestClient
from studyshelf.app import create_app
folder, token = sys.argv[1:3]
with TestClient(create_app()) as client:
    for n in range(100_000):
        data = os.urandom(4096 + n % 7 * 50_000)
        answer = client.post(
            f"/api/v1/folders/{folder}/files",
            files={"file": (f"upload-{n}.bin", data, "application/octet-stream")},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 201, answer.text
        time.sleep(0.1)
"""


def _environment(settings: Settings) -> dict[str, str]:
    """The settings of this test as the environment of a `studyshelf` process (nothing from the caller's shell)."""
    assert settings.backup_url is not None
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("STUDYSHELF_")}
    return {
        **inherited,
        "STUDYSHELF_ENVIRONMENT": settings.environment,
        "STUDYSHELF_DATA_DIR": str(settings.data_dir),
        "STUDYSHELF_DATABASE_URL": settings.resolved_database_url,
        "STUDYSHELF_SECRET_KEY": settings.secret_key or "",
        "STUDYSHELF_SCHEDULER_INTERVAL_SECONDS": "0",
        "STUDYSHELF_BACKUP_URL": settings.backup_url,
        # Only the follower may bring the drill's blobs in: the full blob sync runs once, at the start.
        "STUDYSHELF_BACKUP_BLOB_SYNC_SECONDS": "3600",
    }


def _versions(database: Path) -> dict[str, tuple[str, float]]:
    """Every file version: id → (blob digest, the unix time its id was stamped, just before its commit)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT id, blob_sha256 FROM file_versions").fetchall()
    return {version_id: (digest, (uuid.UUID(version_id).int >> 80) / 1000) for version_id, digest in rows}


def _bearer_token(owner: Member) -> str:
    body = {"name": "drill", "org_id": str(owner.org_id)}
    answer = owner.client.post("/api/v1/auth/tokens", json=body, headers=owner.headers())
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def test_blob_rpo_drill_uploads_under_kill_9(
    owner: Member, services: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Uploads every 100 ms while `backup replicate` runs; kill -9 of both (the replicator's whole process group,
    Litestream included) at a random moment; restore --latest: every version committed more than 5 s before
    the kill is there, with its blob's bytes."""
    settings = services.settings
    env = _environment(settings)
    location = backup.location_of(settings)
    replicate = subprocess.Popen(
        [sys.executable, "-m", "studyshelf", "backup", "replicate"], env=env, start_new_session=True
    )
    uploader: subprocess.Popen[bytes] | None = None
    try:
        _until(lambda: location.blob_manifest_ids() != [], "the replicator's first full blob sync is done")
        database = litestream.database_path(settings)
        before = len(_versions(database))
        script = [sys.executable, "-W", "ignore", "-c", UPLOADER, str(owner.root_folder_id), _bearer_token(owner)]
        uploader = subprocess.Popen(script, env=env)  # noqa: S603 - our own script
        run_for = random.uniform(6.0, 10.0)  # noqa: S311 - a random moment, not a secret
        _until(lambda: len(_versions(database)) > before, "the uploader commits")
        first = min(at for _, at in _versions(database).values())
        _until(lambda: max(at for _, at in _versions(database).values()) >= first + run_for, "uploads ran a while")
    finally:
        if uploader is not None:
            uploader.send_signal(signal.SIGKILL)
        os.killpg(replicate.pid, signal.SIGKILL)
        killed_at = time.time()
        if uploader is not None:
            uploader.wait()
        replicate.wait()
    committed = _versions(database)
    assert len(committed) - before > 30

    target = tmp_path / "after-crash"
    done = backup_restore.restore(settings, target=target, at=None)

    restored = _versions(target / backup.DATABASE_FILE)
    blob_bytes = LocalBlobStore(target / "blobs")
    with_bytes = {
        version_id
        for version_id, (digest, _) in restored.items()
        if blob_bytes.exists(digest) and plaintext_digest(blob_bytes, digest) == digest
    }
    too_old_to_lose = {version_id for version_id, (_, at) in committed.items() if at < killed_at - 5}
    assert sorted(too_old_to_lose - with_bytes) == []
    lost = [at for version_id, (_, at) in committed.items() if version_id not in with_bytes]
    window = killed_at - min(lost) if lost else 0.0
    newest_kept = max(committed[version_id][1] for version_id in with_bytes)
    with capsys.disabled():
        print(
            f"\nBlob RPO drill: {len(committed) - before} uploads in {run_for:.1f} s; {len(lost)} versions lost "
            f"(rows or blob bytes), the oldest {window:.2f} s before the kill; newest kept "
            f"{killed_at - newest_kept:.2f} s before; {len(done.missing_blobs)} restored rows lack their blob"
        )
    assert window <= 5.0


def test_status_lag_compares_the_database_s_position_with_the_replica_s(
    owner: Member, services: Services, replicator: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    settings = services.settings
    process, _ = replicator
    make_folder(owner, owner.root_folder_id, "Shipped")
    _until(lambda: backup.status(settings, now=datetime.now(UTC)).lag_seconds == 0.0, "every commit is shipped")
    later = datetime.now(UTC) + timedelta(seconds=1000)
    assert backup.status(settings, now=later).lag_seconds == 0.0  # nothing waits: no lag, however long since

    process.send_signal(signal.SIGKILL)
    process.wait()
    taken = backup.replica_state(settings, backup.location_of(settings)).taken
    assert taken is not None
    make_folder(owner, owner.root_folder_id, "Never shipped")  # nothing takes it from the WAL now
    now = datetime.now(UTC)

    lag = backup.status(settings, now=now + timedelta(seconds=100)).lag_seconds
    assert lag == (now + timedelta(seconds=100) - taken.made_at).total_seconds()
    with backup.replicator_lock(settings):  # a running replicator takes a fresh write at its next interval
        assert backup.status(settings, now=now).lag_seconds is not None
        assert backup.status(settings, now=now).lag_seconds <= settings.backup_sync_interval_seconds + 1
        assert backup.status(settings, now=now + timedelta(seconds=100)).lag_seconds >= 100


def test_readyz_and_the_metric_read_the_same_lag(
    world: World, owner: Member, services: Services, replicator: tuple[subprocess.Popen[bytes], Path]
) -> None:
    process, _ = replicator
    make_folder(owner, owner.root_folder_id, "Shipped")
    _until(lambda: backup.status(services.settings, now=datetime.now(UTC)).lag_seconds == 0.0, "it is shipped")
    process.send_signal(signal.SIGKILL)
    process.wait()
    make_folder(owner, owner.root_folder_id, "Waiting")
    clock = MovableClock()
    clocked = dataclasses.replace(services, clock=clock)
    world.app.state.backup_monitor = BackupMonitor(clocked, ttl=0)
    client = TestClient(world.app)

    clock.advance(120)
    body = client.get("/readyz").json()
    metric = re.search(r"^studyshelf_backup_lag_seconds (\S+)$", client.get("/metrics").text, re.MULTILINE)

    expected = backup.status(services.settings, now=clock.now()).lag_seconds
    assert expected is not None
    assert expected >= 120
    assert body["status"] == "degraded"
    assert body["backup"].startswith(f"degraded: lag {expected:.1f} s")
    assert metric is not None
    assert float(metric.group(1)) == expected
