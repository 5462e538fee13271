"""Backups of a PostgreSQL install: pgBackRest holds the database (WAL archive, full and differential
backups), and the blobs are copied by content hash beside it, as for the embedded install.

The `studyshelf backup` commands call these when the app database is PostgreSQL.
"""

from __future__ import annotations

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
    is_unreachable,
    location_of,
    sync_blobs,
    unreachable,
)
from studyshelf.ops.backup_blobs import check_blobs, restore_blobs
from studyshelf.ops.backup_restore import (
    Pruned,
    Restored,
    apply_prune,
    check_target,
    plan_prune,
    restore_install_secret,
)
from studyshelf.ops.backup_store import BackupLocation, Progress, point_time
from studyshelf.services import Services
from studyshelf.settings import Settings
from studyshelf.storage.local import LocalBlobStore

CLUSTER_DIR = "postgresql"  # inside the restore target, beside blobs/ and the install secret

# The segment being written and how far into it, the last finished one (the byte before the current segment),
# and the archiver's record. pg_current_wal_lsn() is the position of the next WAL record.
ARCHIVER_STATE = text(
    """
    SELECT current_setting('archive_mode') AS archive_mode,
           (SELECT setting::int FROM pg_settings WHERE name = 'archive_timeout') AS archive_timeout,
           w.file_name AS current_wal, w.file_offset AS current_offset,
           pg_walfile_name(pg_current_wal_lsn() - (w.file_offset + 1)) AS finished_wal,
           a.last_archived_wal, a.last_archived_time, a.last_failed_wal, a.last_failed_time,
           pg_postmaster_start_time() AS started_at
    FROM pg_stat_archiver a, pg_walfile_name_offset(pg_current_wal_lsn()) w
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
        return [*problems, f"no blob manifest in {location.describe}: run `studyshelf backup create`"]
    newest = sorted(location.blob_manifest(manifests[-1]))
    keys = settings.encryption_master_keys()
    return problems + check_blobs(location.blobs, newest, keys, progress, where=location.describe)


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
    restore_install_secret(location, target)
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
class ArchiverState:
    archive_mode: str
    archive_timeout: int  # seconds; 0: off
    current_wal: str  # the segment being written
    current_offset: int  # bytes written into it
    finished_wal: str  # the newest finished segment
    last_archived_wal: str | None
    last_archived_time: datetime | None
    last_failed_wal: str | None
    last_failed_time: datetime | None
    started_at: datetime


def archive_lag(state: ArchiverState, archived: str | None, *, now: datetime) -> float:
    """How long the oldest change not in the repository has waited, from positions: the newest segment the
    repository holds (`archived`) against the newest finished one and the one being written.

    A finished segment the repository lacks has waited since the last segment was archived. Otherwise only
    the segment being written is missing, and archive_timeout closes it at most that long after its first
    change: it counts as the time since the last archive, capped there. Nothing written into it: 0.
    """
    since_archive = (now - (state.last_archived_time or state.started_at)).total_seconds()
    if archived is None or archived < state.finished_wal:  # segment names sort in WAL order
        return max(0.0, since_archive)
    if state.current_offset == 0:
        return 0.0
    if state.archive_timeout > 0:
        return max(0.0, min(since_archive, float(state.archive_timeout)))
    return max(0.0, since_archive)


def status(settings: Settings, engine: Engine, *, now: datetime) -> Status:
    """Archive lag from the WAL positions (the repository's newest segment from `pgbackrest info`, else the
    archiver's last one, against the cluster's current WAL), oldest restorable point from pgBackRest."""
    location = location_of(settings)
    problem, free = location.files.problem()
    if is_unreachable(problem):
        assert problem is not None
        return unreachable(location, problem)
    try:
        with engine.connect() as conn:
            state = ArchiverState(**conn.execute(ARCHIVER_STATE).mappings().one())
    except SQLAlchemyError as exc:
        reason = "grant pg_monitor to the app's role" if "permission" in str(exc) else type(exc).__name__
        return Status(location.describe, f"archive state unreadable: {reason}", None, None, None, None, 0, free)
    if state.archive_mode == "off":
        problem = problem or "archive_mode is off: WAL is not archived"
    if state.last_failed_time and (
        state.last_archived_time is None or state.last_failed_time > state.last_archived_time
    ):
        problem = problem or f"archiving {state.last_failed_wal} failed at {state.last_failed_time.isoformat()}"
    try:
        stanza = pgbackrest.info(settings)
    except Invalid as exc:
        lag = None if state.archive_mode == "off" else archive_lag(state, state.last_archived_wal, now=now)
        return Status(
            location.describe,
            problem or str(exc),
            state.last_archived_wal,
            state.last_archived_time,
            lag,
            None,
            0,
            free,
        )
    archived = stanza.wal_max or state.last_archived_wal
    lag = None if state.archive_mode == "off" else archive_lag(state, archived, now=now)
    oldest = stanza.backups[0].stopped_at if stanza.backups else None
    if stanza.status != "ok":
        problem = problem or f"pgbackrest: {stanza.status}"
    size = sum(b.size for b in stanza.backups)
    return Status(location.describe, problem, archived, state.last_archived_time, lag, oldest, size, free)
