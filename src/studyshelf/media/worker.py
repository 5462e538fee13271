"""Runs processing jobs: in serve (a daemon thread) and in `studyshelf worker`, any number of them at once.

A job is claimed under a lease longer than its deadline, so a crashed worker's job is taken over once the
lease runs out; every run is idempotent (outputs are content-addressed and replace the previous run's rows).
Sources are copied to a work directory under the data dir, outputs streamed from there into the blob store;
no file is held in memory.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from studyshelf.core.db import unit_of_work
from studyshelf.core.ids import uuid7
from studyshelf.media import service
from studyshelf.media.produce import Job, produce
from studyshelf.media.tools import ToolFailed, Tools
from studyshelf.services import Services
from studyshelf.storage import BlobStore, StoredBlob

log = logging.getLogger("studyshelf.media")
WORK_DIR = "media-work"
CHUNK = 1 << 20
PROGRESS_EVERY = 1.0  # seconds between progress writes
DISK_FACTOR = 3
DISCOVERY_OVERLAP_MS = 60_000  # a version committed up to this long after its id was stamped is still found
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
    ".m4a": "audio/mp4",
}


def process_next(services: Services, *, holder: str, tools: Tools | None = None) -> str | None:
    """Claim and run one due job; return its final state, or None when nothing was due."""
    settings = services.settings
    lease = timedelta(seconds=settings.media_timeout_seconds * 2 + 60)
    with unit_of_work(services.write_sessions) as db:
        claimed = service.claim(db, holder=holder, now=services.clock.now(), lease=lease)
    if claimed is None:
        return None
    tools = tools or Tools.find(settings)
    work = settings.data_dir / WORK_DIR / uuid.uuid4().hex
    (work / "out").mkdir(parents=True)
    try:
        result = _run(services, claimed, tools, work, holder)
    except ToolFailed as failed:
        return _failed(services, claimed, holder, str(failed), retry=False)
    except Exception as exc:
        log.exception("media processing of version %s failed", claimed.version_id)
        reason = str(exc) if isinstance(exc, NotEnoughDisk) else type(exc).__name__
        return _failed(services, claimed, holder, f"processing failed ({reason}); it will be retried", retry=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with unit_of_work(services.write_sessions) as db:
        kept = service.complete(
            db, version_id=claimed.version_id, holder=holder, result=result, now=services.clock.now()
        )
    return "done" if kept else "lost"


def _failed(services: Services, claimed: service.Claimed, holder: str, error: str, *, retry: bool) -> str:
    log.warning("media processing of version %s: %s", claimed.version_id, error)
    with unit_of_work(services.write_sessions) as db:
        return service.fail(
            db, version_id=claimed.version_id, holder=holder, error=error, retry=retry, now=services.clock.now()
        )


class NotEnoughDisk(Exception):
    """Too little free space in the data dir for this run: tried again later (the original is served meanwhile)."""


def _check_disk(blobs: BlobStore, sha256: str, work: Path) -> None:
    """Renditions take about the source's size again, a copy of the source as much: want three times it free."""
    needed = DISK_FACTOR * blobs.size(sha256)
    free = shutil.disk_usage(work).free
    if free < needed:
        raise NotEnoughDisk(f"{free >> 20} MiB free in the data dir, {needed >> 20} MiB wanted")


def _run(services: Services, claimed: service.Claimed, tools: Tools, work: Path, holder: str) -> service.Result:
    settings = services.settings
    _check_disk(services.blobs, claimed.blob_sha256, work)
    source = _source_file(services.blobs, claimed.blob_sha256, work / "source")
    last = [0.0, -1]

    def progress(fraction: float) -> None:
        percent = min(99, int(fraction * 100))
        now = time.monotonic()
        if percent != last[1] and now - last[0] >= PROGRESS_EVERY:
            last[0], last[1] = now, percent
            with unit_of_work(services.write_sessions) as db:
                service.report_progress(
                    db, version_id=claimed.version_id, holder=holder, percent=percent, now=services.clock.now()
                )

    job = Job(
        kind=claimed.kind,
        content_type=claimed.content_type,
        source=source,
        out=work / "out",
        timeout=settings.media_timeout_seconds,
        max_duration=settings.media_max_duration_seconds,
    )
    made = produce(tools, job, progress)
    outputs = [(path, _store(services.blobs, work / "out" / path), _content_type(path)) for path in _paths(job.out)]
    return service.Result(
        duration=made.duration,
        width=made.width,
        height=made.height,
        page_count=made.page_count,
        renditions=made.renditions,
        outputs=outputs,
    )


def _source_file(blobs: BlobStore, sha256: str, target: Path) -> Path:
    """The source on local disk: the store's own file when it has one (and it is stored plain), else a copy."""
    local = blobs.local_path(sha256)
    if local is not None and local.is_file():
        return local
    size = blobs.size(sha256)
    with target.open("wb") as out:
        for chunk in blobs.read_range(sha256, 0, size, CHUNK):
            out.write(chunk)
    return target


def _paths(out: Path) -> Iterator[str]:
    for path in sorted(out.rglob("*")):
        if path.is_file():
            yield path.relative_to(out).as_posix()


def _store(blobs: BlobStore, path: Path) -> StoredBlob:
    writer = blobs.writer()
    try:
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


def _content_type(path: str) -> str:
    return CONTENT_TYPES.get(Path(path).suffix, "application/octet-stream")


def discover(services: Services, *, since_ms: int | None = None) -> int:
    """Queue new uploads (versions stamped from `since_ms` on; every version without a job when None)."""
    since = None if since_ms is None else uuid7(max(since_ms - DISCOVERY_OVERLAP_MS, 0), 0)
    with unit_of_work(services.write_sessions) as db:
        return service.discover(db, now=services.clock.now(), since=since)


def process_pending(services: Services, *, holder: str | None = None, limit: int | None = None) -> int:
    """Queue new uploads, then run due jobs until none is left (or `limit`); return how many ran."""
    holder = holder or uuid.uuid4().hex
    discover(services)
    tools = Tools.find(services.settings)
    ran = 0
    while limit is None or ran < limit:
        if process_next(services, holder=holder, tools=tools) is None:
            break
        ran += 1
    return ran


class MediaWorker:
    """Looks for new uploads every `media_poll_seconds` and processes them, in a daemon thread."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="studyshelf-media", daemon=True)
        self._holder = f"media-{uuid.uuid4().hex[:12]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        interval = self.services.settings.media_poll_seconds
        since_ms: int | None = None  # the first pass looks at every version (a backfill after downtime)
        tools = Tools.find(self.services.settings)
        while not self._stop.is_set():
            try:
                started_ms = time.time_ns() // 1_000_000
                discover(self.services, since_ms=since_ms)
                since_ms = started_ms
                while not self._stop.is_set() and process_next(self.services, holder=self._holder, tools=tools):
                    pass
            except Exception:
                log.exception("media processing pass failed")
            self._stop.wait(interval)
