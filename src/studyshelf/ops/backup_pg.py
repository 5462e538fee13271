"""Backups of a PostgreSQL install: pgBackRest holds the database (WAL archive, full and differential
backups), and the blobs are copied by content hash beside it, as for the embedded install.

The `studyshelf backup` commands call these when the app database is PostgreSQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from studyshelf.core.errors import Invalid
from studyshelf.ops import pgbackrest
from studyshelf.ops.backup import (
    PointSummary,
    Sizing,
    Status,
    location_of,
    location_problem,
    sync_blobs,
    unreachable,
)
from studyshelf.ops.backup_blobs import check_blobs, restore_blobs
from studyshelf.ops.backup_restore import Pruned, Restored, apply_prune, check_target, plan_prune
from studyshelf.ops.backup_store import BackupLocation, Progress, point_time
from studyshelf.services import Services
from studyshelf.settings import SECRET_KEY_FILE, Settings
from studyshelf.storage.local import LocalBlobStore

CLUSTER_DIR = "postgresql"  # inside the restore target, beside blobs/ and the install secret

ARCHIVER_STATE = text(
    """
    SELECT current_setting('archive_mode') AS archive_mode, a.last_archived_wal, a.last_archived_time,
           a.last_failed_wal, a.last_failed_time,
           (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') AS waiting
    FROM pg_stat_archiver a
    """
)


def create(services: Services, kind: pgbackrest.BackupType) -> str:
    """Take a pgBackRest backup (full or differential), then copy new blobs and record the blob manifest."""
    label = pgbackrest.backup(services.settings, kind)
    sync_blobs(services)
    return label


def list_points(settings: Settings) -> list[PointSummary]:
    """pgBackRest's backups, oldest first; with the archived WAL, any time after the first one restores."""
    return [
        PointSummary(f"pgbackrest {b.type}", b.label, b.started_at, b.stopped_at, b.size)
        for b in pgbackrest.info(settings).backups
    ]


def verify(settings: Settings, *, progress: Progress | None = None) -> list[str]:
    """pgBackRest's verify of its repository, then every blob of the newest blob manifest against its hash."""
    problems = pgbackrest.verify(settings)
    location = location_of(settings)
    manifests = location.blob_manifest_ids()
    if not manifests:
        return [*problems, f"no blob manifest in {location.blob_manifests}: run `studyshelf backup create`"]
    newest = sorted(location.blob_manifest(manifests[-1]))
    return problems + check_blobs(location.blobs, newest, settings.encryption_master_keys(), progress)


def _blobs_as_of(location: BackupLocation, at: datetime | None) -> set[str]:
    """The blobs of the newest full manifest at or before `at`, of the next one, and of every followed blob
    between them (a blob uploaded in between is in the next one, or only in a followed manifest when the
    server was lost before the next full one; an extra blob is harmless, a missing one is not)."""
    ids = location.blob_manifest_ids()
    before = [i for i in ids if at is None or point_time(i) <= at][-1:]
    after = [i for i in ids if at is not None and point_time(i) > at][:1]
    digests: set[str] = set()
    for identifier in before + after:
        digests |= location.blob_manifest(identifier).keys()
    for identifier in location.followed_ids():
        if (not before or identifier >= before[0]) and (not after or identifier <= after[0]):
            digests |= location.followed_manifest(identifier).keys()
    return digests


def restore(
    settings: Settings,
    *,
    target: Path,
    at: datetime | None,
    now: datetime,
    progress: Progress | None = None,
    sizing: Sizing | None = None,
) -> Restored:
    """Restore the cluster as of `at` (or the end of the archived WAL) into `target`/postgresql, a new data
    directory, with the blobs and the install secret beside it; never over a live cluster."""
    check_target(settings, target)
    location = location_of(settings)
    target.mkdir(parents=True, exist_ok=True)
    pgbackrest.restore(settings, target=target / CLUSTER_DIR, at=at)
    wanted = sorted(_blobs_as_of(location, at))
    missing = [d for d in wanted if not location.blobs.exists(d)]
    held = [d for d in wanted if d not in missing]
    restore_blobs(
        location.blobs,
        LocalBlobStore(target / "blobs"),
        held,
        settings.encryption_master_keys(),
        progress=progress,
        sizing=sizing,
    )
    secret = location.install_dir / SECRET_KEY_FILE
    if secret.is_file():
        descriptor = os.open(target / SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secret.read_bytes())
    return Restored("pgbackrest", at or now, None, len(wanted) - len(missing), missing)


def expire(
    settings: Settings, *, now: datetime, progress: Progress | None = None, sizing: Sizing | None = None
) -> Pruned:
    """pgBackRest's expire (its retention), then blob manifests and blobs beyond StudyShelf's retention.

    Progress counts pgBackRest's expire as one step, then each manifest and blob dropped.
    """
    plan = plan_prune(settings, now=now)
    if sizing:
        sizing(plan.steps + 1)
    pgbackrest.expire(settings)
    if progress:
        progress(1)
    return apply_prune(settings, plan, progress=progress)


@dataclass(frozen=True, slots=True)
class _Archiver:
    archive_mode: str
    last_archived_wal: str | None
    last_archived_time: datetime | None
    last_failed_wal: str | None
    last_failed_time: datetime | None
    waiting: int  # finished WAL segments not archived yet


def status(settings: Settings, engine: Engine, *, now: datetime) -> Status:
    """Archive lag from pg_stat_archiver (how long finished WAL has waited), oldest restorable from pgBackRest."""
    location = location_of(settings)
    if not location.root.is_dir():
        return unreachable(location.root)
    problem, free = location_problem(location.root)
    try:
        with engine.connect() as conn:
            state = _Archiver(**conn.execute(ARCHIVER_STATE).mappings().one())
    except SQLAlchemyError as exc:
        reason = "grant pg_monitor to the app's role" if "permission" in str(exc) else type(exc).__name__
        return Status(location.root, f"archive state unreadable: {reason}", None, None, None, None, 0, free)
    lag = None
    if state.archive_mode == "off":
        problem = problem or "archive_mode is off: WAL is not archived"
    elif state.waiting == 0:
        lag = 0.0  # only the segment being written is unarchived; archive_timeout bounds it
    elif state.last_archived_time is not None:
        lag = max(0.0, (now - state.last_archived_time).total_seconds())
    if state.last_failed_time and (
        state.last_archived_time is None or state.last_failed_time > state.last_archived_time
    ):
        problem = problem or f"archiving {state.last_failed_wal} failed at {state.last_failed_time.isoformat()}"
    try:
        stanza = pgbackrest.info(settings)
    except Invalid as exc:
        return Status(
            location.root, problem or str(exc), state.last_archived_wal, state.last_archived_time, lag, None, 0, free
        )
    oldest = stanza.backups[0].stopped_at if stanza.backups else None
    if stanza.status != "ok":
        problem = problem or f"pgbackrest: {stanza.status}"
    size = sum(b.size for b in stanza.backups)
    return Status(location.root, problem, state.last_archived_wal, state.last_archived_time, lag, oldest, size, free)
