"""Drills with a real `litestream replicate`: point in time, then the RPO under kill -9, sharing one replicator.

Replication runs in real time (Litestream stamps what it ships with the wall clock), so these tests poll
for conditions with deadlines; they take a few seconds.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from studyshelf.ops import backup, backup_restore, litestream
from studyshelf.services import Services
from tests.conftest import Member
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


def _shipped(replica: Path) -> int:
    return max((f.max_txid for f in litestream.list_ltx(replica)), default=0)


def _folder_state(database: Path, name: str) -> tuple[str | None] | None:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)) as db:
        row = db.execute("SELECT deleted_at FROM folders WHERE name = ?", (name,)).fetchone()
    return None if row is None else (row[0],)


def _point_in_time_drill(owner: Member, services: Services, tmp_path: Path) -> None:
    replica = backup.location_of(services.settings).replica
    before = _shipped(replica)
    folder = make_folder(owner, owner.root_folder_id, "Week 7")
    _until(lambda: _shipped(replica) > before, "the new folder is replicated")
    shipped = max(f.shipped_at for f in litestream.list_ltx(replica))
    # Litestream stamps a shipment up to a second after the commit: go past that before the mistake.
    _until(lambda: datetime.now(UTC) > shipped + timedelta(seconds=2.2), "the folder's shipment is 2 s old")
    mistake_at = datetime.now(UTC)
    before = _shipped(replica)
    response = owner.client.delete(f"/api/v1/folders/{folder['id']}", headers=owner.headers())
    assert response.status_code == 204, response.text
    make_folder(owner, owner.root_folder_id, "After the mistake")
    _until(lambda: _shipped(replica) > before, "the deletion is replicated")

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
