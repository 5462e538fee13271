"""Checking, restoring and pruning backups: `backup verify`, `backup restore`, `backup prune`."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from studyshelf.core.errors import Conflict, Invalid, NotFound
from studyshelf.ops import litestream
from studyshelf.ops.backup import DATABASE_FILE, Sizing, location_of, retention_cutoff
from studyshelf.ops.backup_blobs import check_blobs, restore_blobs
from studyshelf.ops.backup_store import BackupLocation, DirectoryLocation, Progress, point_time
from studyshelf.settings import SECRET_KEY_FILE, Settings
from studyshelf.storage.crypto import ALL_SEALED
from studyshelf.storage.local import LocalBlobStore


def integrity_problem(database: Path) -> str | None:
    """SQLite's own full check of a database file; None when it is sound."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)) as db:
            answer = [row[0] for row in db.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if answer == ["ok"] else "; ".join(answer[:5])


def verify_point(settings: Settings, identifier: str, *, progress: Progress | None = None) -> list[str]:
    """Check every checksum of a point (its files and every blob it references); return each failure, naming it."""
    location = location_of(settings)
    manifest = location.manifest(identifier)
    problems: list[str] = []
    for entry in manifest.files:
        key = location.point_key(identifier, entry.path)
        found = location.files.sha256(key, progress)
        if found is None:
            problems.append(f"{_name(location, key)}: missing")
        elif found != entry.sha256:
            problems.append(f"{_name(location, key)}: checksum mismatch (recorded {entry.sha256})")
    key = location.point_key(identifier, DATABASE_FILE)
    with _local_copy(location, key) as database:
        if database is not None and (problem := integrity_problem(database)):
            problems.append(f"{_name(location, key)}: integrity check failed: {problem}")
    keys = settings.encryption_master_keys()
    problems += check_blobs(location.blobs, sorted(manifest.blobs), keys, progress, where=location.describe)
    return problems


def _name(location: BackupLocation, key: str) -> str:
    """A file of the location as an operator finds it: its path in a directory, its URL in S3."""
    if isinstance(location, DirectoryLocation):
        return str(location.root / key)
    return f"{location.describe}{key}"


@contextlib.contextmanager
def _local_copy(location: BackupLocation, key: str) -> Iterator[Path | None]:
    """The file on local disk (SQLite reads files): itself in a directory, else a temporary download."""
    if isinstance(location, DirectoryLocation):
        path = location.root / key
        yield path if path.is_file() else None
        return
    if location.files.sha256(key) is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="studyshelf-verify-") as scratch:
        copy = Path(scratch) / Path(key).name
        location.files.download(key, copy)
        yield copy


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore brought back, and from which point in time exactly."""

    source: str  # "replica" or "snapshot <id>"
    as_of: datetime
    txid: int | None
    blobs: int
    missing_blobs: list[str] = field(default_factory=list)
    extras_from: str | None = None  # the point whose warehouse and spool came along


def check_target(settings: Settings, target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"refused: {target} is not empty; restore only into a new or empty directory")
    if target.resolve() == settings.data_dir.resolve():
        raise Conflict(f"refused: {target} is the live data dir")


def _pick_point(location: BackupLocation, at: datetime | None) -> str | None:
    ids = [i for i in location.point_ids() if at is None or point_time(i) <= at]
    return ids[-1] if ids else None


def restore(
    settings: Settings,
    *,
    target: Path,
    at: datetime | None,
    progress: Progress | None = None,
    sizing: Sizing | None = None,
) -> Restored:
    """Restore the database as of `at` (or the latest) into an empty `target` data dir, with its blobs."""
    check_target(settings, target)
    location = location_of(settings)
    ltx = litestream.list_ltx(settings, location.replica)
    point = _pick_point(location, at)
    point_at = point_time(point) if point else None
    use_replica = bool(ltx) and (
        min(f.shipped_at for f in ltx) <= at
        if at is not None
        else point_at is None or max(f.shipped_at for f in ltx) >= point_at
    )
    if not use_replica and point is None:
        raise NotFound(f"no backup point at or before {at.isoformat() if at else 'now'} in {location.describe}")
    target.mkdir(parents=True, exist_ok=True)
    try:
        return _restore_into(
            settings,
            location,
            target,
            at=at,
            point=point,
            use_replica=use_replica,
            progress=progress,
            sizing=sizing,
        )
    except BaseException:
        for leftover in sorted(target.rglob("*"), reverse=True):  # it was empty: leave it so
            leftover.rmdir() if leftover.is_dir() else leftover.unlink()
        raise


def _restore_into(
    settings: Settings,
    location: BackupLocation,
    target: Path,
    *,
    at: datetime | None,
    point: str | None,
    use_replica: bool,
    progress: Progress | None,
    sizing: Sizing | None,
) -> Restored:
    ltx = litestream.list_ltx(settings, location.replica)
    point_at = point_time(point) if point else None
    database = target / DATABASE_FILE
    if use_replica:
        # Litestream refuses a time after its newest shipment: that time restores the latest.
        newest = max(f.shipped_at for f in ltx)
        txid = litestream.restore(
            settings, location.replica, database, at=at if at is not None and at < newest else None
        )
        as_of = max(f.shipped_at for f in ltx if f.max_txid <= txid)
        source = "replica"
    else:
        assert point is not None
        assert point_at is not None
        _refuse_corrupt(settings, location, point)
        location.files.download(location.point_key(point, DATABASE_FILE), database)
        txid, as_of, source = None, point_at, f"snapshot {point}"
    extras = _restore_extras(location, point, target)
    copied, missing = _restore_blobs(settings, location, database, target / "blobs", progress, sizing)
    restore_install_secret(location, target)
    return Restored(source, as_of, txid, copied, missing, extras)


def restore_install_secret(location: BackupLocation, target: Path) -> None:
    secret = location.read_install_secret()
    if secret is not None:
        descriptor = os.open(target / SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secret)


def _refuse_corrupt(settings: Settings, location: BackupLocation, point: str) -> None:
    manifest = location.manifest(point)
    key = location.point_key(point, DATABASE_FILE)
    entry = manifest.files[0]
    if location.files.sha256(key) != entry.sha256:
        earlier = [i for i in location.point_ids() if i < point]
        offer = (
            f"; the previous point is {earlier[-1]}: restore --at {point_time(earlier[-1]).isoformat()}"
            if earlier
            else ""
        )
        raise Invalid(
            f"refused: backup point {point} is corrupt ({_name(location, key)} does not match its checksum){offer}"
        )


def _restore_extras(location: BackupLocation, point: str | None, target: Path) -> str | None:
    """The warehouse and the event spool come from the point at or before the time restored, when there is one."""
    if point is None:
        return None
    for entry in location.manifest(point).files[1:]:
        destination = target / entry.path
        destination.parent.mkdir(parents=True, exist_ok=True)
        location.files.download(location.point_key(point, entry.path), destination)
    return point


def _restore_blobs(
    settings: Settings,
    location: BackupLocation,
    database: Path,
    blob_root: Path,
    progress: Progress | None,
    sizing: Sizing | None,
) -> tuple[int, list[str]]:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)) as db:
        digests = sorted(row[0] for row in db.execute("SELECT sha256 FROM blobs"))
    missing = [d for d in digests if not location.blobs.exists(d)]
    held = [d for d in digests if d not in missing]
    keys = settings.encryption_master_keys()
    copied = restore_blobs(location.blobs, LocalBlobStore(blob_root), held, keys, progress=progress, sizing=sizing)
    return copied, missing


@dataclass(frozen=True, slots=True)
class Pruned:
    points: int
    blob_manifests: int
    blobs: int


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What a prune will drop, counted before anything goes (so its progress bar knows the total)."""

    points: list[str]
    blob_manifests: list[str]
    followed: list[str]
    blobs: list[str]

    @property
    def steps(self) -> int:
        return len(self.points) + len(self.blob_manifests) + len(self.followed) + len(self.blobs)


def plan_prune(settings: Settings, *, now: datetime) -> PrunePlan:
    """Points and blob manifests older than the retention, then blobs no retained manifest references.

    The newest full blob manifest older than the retention stays: it covers the start of Litestream's window;
    manifests of followed blobs go once a retained full manifest (which lists everything held) is newer. A blob
    copied after the newest manifest of any kind stays too: `backup replicate` has just followed it in.
    """
    location = location_of(settings)
    cutoff = retention_cutoff(settings, now)
    points = location.point_ids()
    old_points = [i for i in points if point_time(i) < cutoff]
    if old_points and len(old_points) == len(points):
        old_points = old_points[:-1]  # never prune the last point there is
    manifests = location.blob_manifest_ids()
    old_manifests = [i for i in manifests if point_time(i) < cutoff][:-1]
    kept_manifests = [i for i in manifests if i not in old_manifests]
    followed = location.followed_ids()
    old_followed = [i for i in followed if point_time(i) < cutoff and kept_manifests and i < kept_manifests[0]]
    referenced: set[str] = set()
    for identifier in points:
        if identifier not in old_points:
            referenced |= location.manifest(identifier).blobs.keys()
    for identifier in kept_manifests:
        referenced |= location.blob_manifest(identifier).keys()
    for identifier in followed:
        if identifier not in old_followed:
            referenced |= location.followed_manifest(identifier).keys()
    newest = max([point_time(i).timestamp() for i in [*manifests, *followed]], default=None)
    unreferenced = [
        digest
        for digest, copied_at in location.copied_blobs()
        if digest not in referenced and digest != ALL_SEALED and (newest is None or copied_at < newest)
    ]
    return PrunePlan(old_points, old_manifests, old_followed, unreferenced)


def prune(
    settings: Settings, *, now: datetime, progress: Progress | None = None, sizing: Sizing | None = None
) -> Pruned:
    """Drop what `plan_prune` finds, one step of progress per point, manifest and blob."""
    plan = plan_prune(settings, now=now)
    if sizing:
        sizing(plan.steps)
    return apply_prune(settings, plan, progress=progress)


def apply_prune(settings: Settings, plan: PrunePlan, *, progress: Progress | None = None) -> Pruned:
    location = location_of(settings)
    for identifier in plan.points:
        location.drop_point(identifier)
        if progress:
            progress(1)
    doomed = [(i, False) for i in plan.blob_manifests] + [(i, True) for i in plan.followed]
    for identifier, followed in doomed:
        location.drop_blob_manifest(identifier, followed=followed)
        if progress:
            progress(1)
    for digest in plan.blobs:
        location.blobs.delete(digest)
        if progress:
            progress(1)
    return Pruned(len(plan.points), len(plan.blob_manifests), len(plan.blobs))
