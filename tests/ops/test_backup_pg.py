"""PostgreSQL backups with a real pgBackRest, on a throwaway cluster this module starts (never the machine's own).

One cluster serves the whole module; WAL reaches the repository through archive_command within
archive_timeout, so the drills poll for it with deadlines. The RPO drill kills the cluster with SIGKILL
and starts it again (crash recovery) before it ends, so the tests after it find it running.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import MetaData, create_engine, select

from studyshelf.core import migrate
from studyshelf.core.db import make_engine
from studyshelf.ops import backup, backup_health, backup_pg, pgbackrest
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.conftest import Member
from tests.library.support import make_folder
from tests.ops.pg_cluster import (
    ARCHIVE_TIMEOUT_SECONDS,
    STANZA,
    Cluster,
    as_cluster_user,
    free_port,
    running_cluster,
    until,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as started:
        engine = make_engine(started.url())
        migrate.upgrade(engine)
        engine.dispose()
        yield started


@pytest.fixture(scope="module")
def _stanza(cluster: Cluster) -> Settings:
    settings = _settings(cluster, cluster.root / "stanza-check")
    pgbackrest.create_stanza(settings)
    return settings


def _settings(cluster: Cluster, data_dir: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        database_url=cluster.url(),
        secret_key="test-secret-key-that-is-long-enough-for-production-0123456789",
        scheduler_interval_seconds=0,
        backup_url=str(data_dir.parent / f"{data_dir.name}-backup"),
        backup_pgbackrest_config=cluster.config,
        backup_pgbackrest_stanza=STANZA,
        backup_pgbackrest_command=as_cluster_user(["pgbackrest"]),
    )


@pytest.fixture
def db_url(cluster: Cluster) -> str:
    return cluster.url()


@pytest.fixture
def settings(tmp_path: Path, cluster: Cluster, _stanza: Settings) -> Settings:
    return _settings(cluster, tmp_path / "data")


def _every_row(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in primary-key order, read through reflection (so no table is forgotten)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    metadata = MetaData()
    metadata.reflect(engine)
    try:
        with engine.connect() as conn:
            return {
                name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def _restored_cluster(cluster: Cluster, target: Path) -> Iterator[str]:
    """Start a restored cluster on a spare port, archiving off (it must never push into the same repository)."""
    port = free_port()
    cluster.start(target / backup_pg.CLUSTER_DIR, port, "-c archive_mode=off")
    try:
        # pg_ctl returns once the cluster takes read-only connections (hot standby), while it may still
        # replay archived WAL: the restore is complete only when recovery has ended.
        until(lambda: not _in_recovery(cluster.url("postgres", port=port)), "the restored cluster ends recovery")
        yield cluster.url(port=port)
    finally:
        cluster.stop(target / backup_pg.CLUSTER_DIR)


def _in_recovery(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is None or bool(row[0])


def _folder_deleted_at(url: str, name: str) -> tuple[datetime | None] | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT deleted_at FROM folders WHERE name = %s", (name,)).fetchone()
    return None if row is None else (row[0],)


def test_backups_list_verify_status_and_expire(owner: Member, services: Services, cluster: Cluster) -> None:
    settings = services.settings
    full = backup_pg.create(services, pgbackrest.BackupType.FULL)
    diff = backup_pg.create(services, pgbackrest.BackupType.DIFF)

    points = backup_pg.list_points(settings)
    assert [p.name for p in points][-2:] == [full, diff]
    assert [p.kind for p in points][-2:] == ["pgbackrest full", "pgbackrest diff"]
    assert backup_pg.verify(settings) == []
    make_folder(owner, owner.root_folder_id, "Week 1")
    cluster.wait_archived()
    state = backup_health.current_status(services, datetime.now(UTC))
    assert state.problem is None
    assert state.lag_seconds is not None
    assert state.lag_seconds < 60
    assert state.replicated is not None
    assert state.oldest_restorable == points[0].newest
    backup_pg.expire(settings, now=datetime.now(UTC))
    assert [p.name for p in backup_pg.list_points(settings)][-2:] == [full, diff]  # within the 35 days


def _set_archive_command(cluster: Cluster, command: str | None) -> None:
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        if command is None:
            conn.execute("ALTER SYSTEM RESET archive_command")
        else:
            conn.execute(f"ALTER SYSTEM SET archive_command = '{command}'")
        conn.execute("SELECT pg_reload_conf()")


def _failed_since(cluster: Cluster, moment: datetime) -> bool:
    with psycopg.connect(cluster.url("postgres")) as conn:
        row = conn.execute("SELECT last_failed_time FROM pg_stat_archiver").fetchone()
    return row is not None and row[0] is not None and row[0] >= moment


def test_status_lag_compares_the_repository_s_wal_with_the_cluster_s(
    owner: Member, services: Services, cluster: Cluster
) -> None:
    backup.location_of(services.settings).prepare()
    make_folder(owner, owner.root_folder_id, "Archived")
    cluster.wait_archived()
    later = datetime.now(UTC) + timedelta(seconds=1000)
    settled = backup_health.current_status(services, later)
    assert settled.lag_seconds is not None
    assert settled.lag_seconds <= ARCHIVE_TIMEOUT_SECONDS  # only the open segment waits: no lag from the clock
    assert settled.problem is None

    broke_at = datetime.now(UTC)
    _set_archive_command(cluster, "false")
    try:
        make_folder(owner, owner.root_folder_id, "Not archived")
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_switch_wal()")  # a finished segment the repository will not get
        until(lambda: _failed_since(cluster, broke_at), "archiving the segment fails")
        now = datetime.now(UTC) + timedelta(seconds=100)

        stuck = backup_health.current_status(services, now)

        assert stuck.lag_seconds is not None
        assert stuck.lag_seconds >= 100
        assert stuck.problem is not None
        assert "failed" in stuck.problem
    finally:
        _set_archive_command(cluster, None)
    make_folder(owner, owner.root_folder_id, "Archived again")
    cluster.wait_archived()
    assert backup_health.current_status(services, datetime.now(UTC)).problem is None


def test_point_in_time_drill(owner: Member, services: Services, cluster: Cluster) -> None:
    backup_pg.create(services, pgbackrest.BackupType.FULL)
    make_folder(owner, owner.root_folder_id, "Week 7")
    folder = make_folder(owner, owner.root_folder_id, "Week 8")
    created = datetime.now(UTC)
    until(lambda: datetime.now(UTC) > created + timedelta(seconds=1.5), "the folder is 1.5 s old")
    mistake_at = datetime.now(UTC)
    response = owner.client.delete(f"/api/v1/folders/{folder['id']}", headers=owner.headers())
    assert response.status_code == 204, response.text
    make_folder(owner, owner.root_folder_id, "After the mistake")
    cluster.wait_archived()

    target = cluster.new_directory("before-mistake")
    done = backup_pg.restore(
        services.settings, target=target, at=mistake_at - timedelta(seconds=1), now=datetime.now(UTC)
    )

    assert done.source == "pgbackrest"
    for url in _restored_cluster(cluster, target):
        assert _folder_deleted_at(url, "Week 8") == (None,)  # back, not in the trash
        assert _folder_deleted_at(url, "Week 7") == (None,)
        assert _folder_deleted_at(url, "After the mistake") is None


def test_restore_drill_rows_identical(owner: Member, services: Services, cluster: Cluster) -> None:
    backup_pg.create(services, pgbackrest.BackupType.FULL)
    for week in range(3):
        make_folder(owner, owner.root_folder_id, f"Week {week}")
    backup_pg.create(services, pgbackrest.BackupType.DIFF)
    make_folder(owner, owner.root_folder_id, "After the differential")
    cluster.wait_archived()
    live = _every_row(cluster.url())

    target = cluster.new_directory("latest")
    backup_pg.restore(services.settings, target=target, at=None, now=datetime.now(UTC))

    for url in _restored_cluster(cluster, target):
        assert _every_row(url) == live
    assert (target / backup_pg.CLUSTER_DIR / "PG_VERSION").is_file()


WRITER = """
import sys, time, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute("CREATE TABLE drill_rows (id serial PRIMARY KEY, committed_at double precision NOT NULL)")
    while True:
        conn.execute("INSERT INTO drill_rows (committed_at) VALUES (%s)", (time.time(),))
        time.sleep(0.05)
"""


def _drill_rows(url: str) -> list[tuple[int, float]]:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('drill_rows') IS NOT NULL").fetchone()
        if exists is None or not exists[0]:
            return []
        return [(int(i), float(at)) for i, at in conn.execute("SELECT id, committed_at FROM drill_rows ORDER BY id")]


def _server_processes(cluster: Cluster) -> list[int]:
    """The postmaster and its children (checkpointer, WAL writer, archiver, backends): the whole server."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *map(int, children)]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # a zombie has stopped; only its parent's wait is missing


def _crash(cluster: Cluster, writer: subprocess.Popen[bytes]) -> float:
    """kill -9 the whole server and the writer at once; return the moment (epoch seconds)."""
    server = _server_processes(cluster)
    for pid in server:
        os.kill(pid, signal.SIGKILL)
    writer.send_signal(signal.SIGKILL)
    killed_at = time.time()
    writer.wait()
    until(lambda: all(_gone(pid) for pid in server), "the killed server's processes are gone")
    # Nobody may reap the killed postmaster here, and PostgreSQL takes a zombie's PID in its lock file for
    # a live server: the lock files go, as after any crash whose processes are known to be gone.
    (cluster.data / "postmaster.pid").unlink()
    (cluster.root / f".s.PGSQL.{cluster.port}.lock").unlink()
    return killed_at


def test_rpo_drill_kill_9(services: Services, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """A writer commits a row every 50 ms; kill -9 of the server and the writer at a random moment 6-12 s in;
    restore --latest; every row committed more than 5 s before the kill is there."""
    backup_pg.create(services, pgbackrest.BackupType.FULL)
    url = cluster.url()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url])  # noqa: S603 - our own script
    try:
        run_for = random.uniform(6.0, 12.0)  # noqa: S311 - a random moment, not a secret
        until(lambda: len(_drill_rows(url)) > 0, "the writer commits")
        first = _drill_rows(url)[0][1]
        until(lambda: _drill_rows(url)[-1][1] >= first + run_for, f"the writer has run {run_for:.1f} s")
    finally:
        killed_at = _crash(cluster, writer)

    target = cluster.new_directory("after-crash")
    try:
        done = backup_pg.restore(services.settings, target=target, at=None, now=datetime.now(UTC))
        assert done.source == "pgbackrest"
        for restored_url in _restored_cluster(cluster, target):
            restored = dict(_drill_rows(restored_url))
    finally:
        cluster.start(cluster.data, cluster.port)  # crash recovery: the later tests find the cluster up
    committed = _drill_rows(url)

    assert len(committed) > 100
    assert all(restored[row_id] == at for row_id, at in committed if row_id in restored)
    loss = killed_at - max(restored.values(), default=committed[0][1])
    with capsys.disabled():
        print(
            f"\nPostgreSQL RPO drill: {loss:.2f} s of committed writes lost after {run_for:.1f} s "
            f"(archive_timeout {ARCHIVE_TIMEOUT_SECONDS} s; target <= 5 s)"
        )
    too_old_to_lose = [row_id for row_id, at in committed if at < killed_at - 5]
    assert [row_id for row_id in too_old_to_lose if row_id not in restored] == []
    assert loss <= 5.0
