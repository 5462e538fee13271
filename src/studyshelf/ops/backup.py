"""Backups of the embedded install: Litestream replicates the SQLite WAL, points are on-demand snapshots
(database, warehouse, event spool) with a blob manifest, and blobs are copied once by content hash.

`backup_store` holds the on-disk layout, `litestream` the replicator; this module holds the operations
the `studyshelf backup` commands call.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from studyshelf.core.errors import Invalid
from studyshelf.ops import litestream
from studyshelf.ops.backup_blobs import copy_missing_blobs
from studyshelf.ops.backup_store import (
    INSTALL_SECRET,
    MANIFEST,
    BackupLocation,
    DirectoryLocation,
    FileEntry,
    Manifest,
    Progress,
    point_id,
    sha256_of,
    write_json,
)
from studyshelf.services import Services
from studyshelf.settings import SECRET_KEY_FILE, Settings

DATABASE_FILE = "studyshelf.sqlite3"
WAREHOUSE_FILE = "warehouse.duckdb"
SPOOL_DIR = "events"
STATUS_TIMEOUT = 20.0  # a status never waits longer on Litestream's listing of a slow replica

Sizing = Callable[[int], None]  # tells a progress bar the total bytes, once known


def uses_pgbackrest(settings: Settings) -> bool:
    """PostgreSQL's WAL goes to pgBackRest; the embedded SQLite's to Litestream."""
    return not settings.is_embedded_database


def location_of(settings: Settings) -> BackupLocation:
    """The backup location of the settings: a directory, or an S3 prefix (`s3://bucket/prefix`)."""
    if settings.backup_s3 is not None:
        from studyshelf.ops.backup_s3 import s3_location  # boto3 is imported only when backups go to S3

        return s3_location(settings)
    if settings.backup_dir is None:
        raise Invalid("no backup location: set STUDYSHELF_BACKUP_URL to a directory or s3://bucket/prefix")
    return DirectoryLocation(settings.backup_dir)


REPLICATOR_LOCK = "backup-replicate.lock"


@contextlib.contextmanager
def replicator_lock(settings: Settings) -> Iterator[None]:
    """Held by `backup replicate` while it runs, so a status can tell whether anything is shipping changes.

    An advisory lock, not a file's presence: the kernel lets go when the process dies, kill -9 included.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (settings.data_dir / REPLICATOR_LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Invalid("`studyshelf backup replicate` is running already for this data dir") from None
        yield


def replicator_running(settings: Settings) -> bool:
    path = settings.data_dir / REPLICATOR_LOCK
    if not path.is_file():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def keep_install_secret(settings: Settings, location: BackupLocation) -> None:
    """Keep a copy of the install secret with the backups (mode 0600), so restored tokens still verify."""
    source = settings.data_dir / SECRET_KEY_FILE
    if source.is_file() and location.read_install_secret() != source.read_bytes():
        location.files.write(INSTALL_SECRET, source.read_bytes())


def _database_snapshot(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's online backup API (readers and writers carry on meanwhile)."""
    with (
        contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as live,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)


def _known_blobs(database: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)) as db:
        return {digest: int(size) for digest, size in db.execute("SELECT sha256, size FROM blobs")}


def create_point(services: Services, *, progress: Progress | None = None, sizing: Sizing | None = None) -> str:
    """Write an on-demand point (database, warehouse, spool, blob manifest) and copy its new blobs; return its id."""
    settings = services.settings
    location = location_of(settings)
    location.prepare()
    keep_install_secret(settings, location)
    created_at = services.clock.now()
    identifier = point_id(created_at)
    draft = location.draft_dir(identifier)
    try:
        _database_snapshot(litestream.database_path(settings), draft / DATABASE_FILE)
        services.warehouse.snapshot(draft / WAREHOUSE_FILE)
        spool = settings.data_dir / SPOOL_DIR
        if spool.is_dir():
            # Segments are append-only and the reader drops a torn last line, so a plain copy is consistent.
            shutil.copytree(spool, draft / SPOOL_DIR, ignore=shutil.ignore_patterns("*.lock", "*.tmp"))
        files = tuple(
            FileEntry(str(path.relative_to(draft)), sha256_of(path), path.stat().st_size)
            for path in sorted(draft.rglob("*"), key=lambda p: (p.name != DATABASE_FILE, str(p)))
            if path.is_file()
        )
        blobs = _known_blobs(draft / DATABASE_FILE)
        if sizing:
            sizing(sum(blobs.values()))
        copy_missing_blobs(services.blobs, location.blobs, sorted(blobs), progress)
        write_json(draft / MANIFEST, Manifest(created_at, files, blobs).to_json())
        location.publish_point(draft, identifier)
    finally:
        shutil.rmtree(draft, ignore_errors=True)  # gone already when published by a rename
    return identifier


def sync_blobs(services: Services) -> int:
    """Copy the blobs the backup lacks and record what the store holds now (the replica's blob manifest)."""
    location = location_of(services.settings)
    location.prepare()
    held = {digest: services.blobs.size(digest) for digest in services.blobs.iter_digests()}
    copied = copy_missing_blobs(services.blobs, location.blobs, sorted(held))
    location.write_blob_manifest(point_id(services.clock.now()), held)
    return copied


@dataclass(frozen=True, slots=True)
class PointSummary:
    kind: str  # "snapshot" (an on-demand point) or "replica" (Litestream's restorable range)
    name: str
    oldest: datetime
    newest: datetime
    size: int


def list_points(settings: Settings) -> list[PointSummary]:
    """Litestream's restorable range (when it has replicated anything) and every on-demand point."""
    location = location_of(settings)
    found: list[PointSummary] = []
    ltx = litestream.list_ltx(settings, location.replica)
    if ltx:
        found.append(
            PointSummary(
                "replica",
                "litestream",
                min(f.shipped_at for f in ltx),
                max(f.shipped_at for f in ltx),
                sum(f.size for f in ltx),
            )
        )
    for identifier in location.point_ids():
        manifest = location.manifest(identifier)
        size = sum(f.size for f in manifest.files) + sum(manifest.blobs.values())
        found.append(PointSummary("snapshot", identifier, manifest.created_at, manifest.created_at, size))
    return found


@dataclass(frozen=True, slots=True)
class Status:
    location: str  # a directory or s3://bucket/prefix/
    problem: str | None  # unreachable, not writable or full: replication cannot go on (serving does)
    replicated: str | None  # the last position shipped: a Litestream txid or a WAL segment
    replicated_at: datetime | None
    lag_seconds: float | None
    oldest_restorable: datetime | None
    size: int
    free: int


def unreachable(location: BackupLocation, problem: str) -> Status:
    return Status(location.describe, problem, None, None, None, None, 0, 0)


def is_unreachable(problem: str | None) -> bool:
    return problem is not None and problem.startswith("unreachable")


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """The positions the replica's lag is worked out from."""

    database: litestream.WalPosition | None  # SQLite's committed WAL position now
    taken: litestream.Capture | None  # the newest LTX file Litestream made from the WAL
    shipped_txid: int | None  # the newest transaction in the replica
    shipped_at: datetime | None
    oldest_shipped_at: datetime | None  # where the replica's restorable range starts
    first_unshipped: litestream.Capture | None  # made from the WAL, not in the replica yet
    wal_written_at: datetime | None
    replicator_running: bool  # `backup replicate` holds its lock


def waiting_since(state: ReplicaState, *, interval: float) -> datetime | None:
    """Since when a committed change has been waiting to reach the replica; None when none waits.

    A change Litestream took but has not shipped waits since it was taken. A change it has not taken (the WAL
    has moved past the newest LTX file) waits at most since that file was made; while `backup replicate` runs,
    a write newer than one interval is simply due at the next one, so it counts from one interval before it.
    """
    candidates = []
    if state.first_unshipped is not None:
        candidates.append(state.first_unshipped.made_at)
    last_taken = state.taken.made_at if state.taken else state.shipped_at
    database = state.database
    moved_on = database is not None and database.end > 0 and (state.taken is None or database != state.taken.wal)
    if moved_on and last_taken is not None:
        since = last_taken
        if state.replicator_running and state.wal_written_at is not None:
            since = max(since, state.wal_written_at - timedelta(seconds=interval))
        candidates.append(since)
    return min(candidates, default=None)


def replica_state(settings: Settings, location: BackupLocation) -> ReplicaState:
    database = litestream.database_path(settings)
    shipped = litestream.list_ltx(settings, location.replica, timeout=STATUS_TIMEOUT)
    shipped_txid = max((f.max_txid for f in shipped), default=None)
    meta = litestream.metadata_dir(database)
    wal = database.with_name(database.name + "-wal")
    written = wal.stat().st_mtime if wal.exists() else None
    return ReplicaState(
        database=litestream.wal_position(database),
        taken=litestream.newest_capture(meta)
        or (litestream.newest_capture(location.replica) if isinstance(location.replica, Path) else None),
        shipped_txid=shipped_txid,
        shipped_at=max((f.shipped_at for f in shipped), default=None),
        oldest_shipped_at=min((f.shipped_at for f in shipped), default=None),
        first_unshipped=None if shipped_txid is None else litestream.first_capture_after(meta, shipped_txid),
        wal_written_at=None if written is None else datetime.fromtimestamp(written, UTC),
        replicator_running=replicator_running(settings),
    )


def status(settings: Settings, *, now: datetime) -> Status:
    """Where replication stands: last replicated position, lag, oldest restorable point, size and space.

    The lag compares the database's own WAL position with what Litestream took from it and shipped (not file
    times): 0 when the replica holds every committed change, else how long the oldest one has waited.
    """
    location = location_of(settings)
    problem, free = location.files.problem()
    if is_unreachable(problem):
        assert problem is not None
        return unreachable(location, problem)
    state = replica_state(settings, location)
    replicated = None if state.shipped_txid is None else f"txid {state.shipped_txid:x}"
    lag = None
    if state.shipped_at is not None:
        since = waiting_since(state, interval=settings.backup_sync_interval_seconds)
        lag = 0.0 if since is None else max(0.0, (now - since).total_seconds())
    points = [location.manifest(i).created_at for i in location.point_ids()[:1]]
    shipped = [state.oldest_shipped_at] if state.oldest_shipped_at else []
    oldest = min([*points, *shipped], default=None)
    return Status(location.describe, problem, replicated, state.shipped_at, lag, oldest, location.size(), free)


def retention_cutoff(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(days=settings.backup_retention_days)
