"""Backups of the embedded install: replication lag under a write load, and backup/restore throughput.

    python -m bench.backup                          # 30 s at 200 commits/s, then a 2 GiB library
    python -m bench.backup --seconds 10 --gib 0.25  # a quick run
    python -m bench.backup --only lag               # or --only transfer

Lag: a throwaway data dir (migrated), `litestream replicate` with the config the app writes (sync interval
1 s), a writer process committing one row with its commit time per transaction at `--rate` per second.
A follower (`litestream restore -f -follow-interval 100ms`) applies what reaches the replica to its own copy;
every 100 ms the reader takes the newest row in that copy, and the lag is now minus that row's commit time.

Throughput: a library of `--gib` GiB of random bytes in files of several sizes, each stored through the blob
store and registered through the library service (so the database references it); then
`studyshelf backup create` and `studyshelf backup restore --latest --to NEW`, each timed as a whole command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from bench.common import SECRET_KEY, STUDYSHELF, MiB, Processes, make_instance
from studyshelf.core.db import unit_of_work
from studyshelf.library.files import add_file
from studyshelf.ops import backup, litestream
from studyshelf.partners.models import User
from studyshelf.partners.principal import Principal
from studyshelf.services import build_services
from studyshelf.settings import Settings

LAG_TARGET_P99 = 2.0
POLL_SECONDS = 0.1
WARMUP_SECONDS = 2.0
FILE_SIZES = (128 * MiB, 32 * MiB, 8 * MiB, 2 * MiB, MiB // 2, 100 * 1024)  # one round; repeated to the total
WRITER = """
import sqlite3, sys, time
rate, seconds = float(sys.argv[2]), float(sys.argv[3])
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA busy_timeout=10000")
start = time.time()
n = 0
while time.time() < start + seconds:
    db.execute("INSERT INTO bench_rows (committed_at) VALUES (?)", (time.time(),))
    n += 1
    pause = start + n / rate - time.time()
    if pause > 0:
        time.sleep(pause)
print(n)
"""


def settings_for(data_dir: Path, backup_dir: Path) -> Settings:
    return Settings(
        environment="production",
        data_dir=data_dir,
        secret_key=SECRET_KEY,
        backup_url=str(backup_dir),
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def newest_row(database: Path) -> float | None:
    """The newest commit time in the follower's copy (None while it is being swapped in or has no rows)."""
    if not database.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.05)) as db:
            row = db.execute("SELECT max(committed_at) FROM bench_rows").fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None or row[0] is None else float(row[0])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting until {what}")
        time.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class LagResult:
    commits: int
    samples: list[float]
    missed: int  # polls where the follower's copy could not be read


def measure_lag(tmp: Path, procs: Processes, *, seconds: float, rate: float) -> LagResult:
    instance = make_instance(tmp / "lag-data")
    settings = settings_for(instance.data_dir, tmp / "lag-backup")
    database = litestream.database_path(settings)
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, committed_at REAL NOT NULL)")
        db.commit()
    location = backup.location_of(settings)
    location.prepare()
    config = litestream.write_config(settings, location.replica)
    procs.start(litestream.replicate_command(config), log=tmp / "litestream.log")
    wait_until(lambda: bool(litestream.list_ltx(settings, location.replica)), "Litestream has shipped the database")
    follower_db = tmp / "follower.sqlite3"
    follower = [litestream.binary(), "restore", "-f", "-follow-interval", "100ms", "-o", str(follower_db)]
    procs.start([*follower, location.replica.as_uri()], log=tmp / "follower.log")
    wait_until(follower_db.is_file, "the follower has restored the replica")

    writer = procs.start([sys.executable, "-c", WRITER, str(database), str(rate), str(seconds)])
    samples: list[float] = []
    missed = 0
    started = time.time()
    next_poll = started + WARMUP_SECONDS
    while writer.poll() is None:
        time.sleep(max(0.0, next_poll - time.time()))
        next_poll += POLL_SECONDS
        newest = newest_row(follower_db)
        if newest is None:
            missed += 1
        else:
            samples.append(time.time() - newest)
    with contextlib.closing(sqlite3.connect(database)) as db:
        commits = int(db.execute("SELECT count(*) FROM bench_rows").fetchone()[0])
    return LagResult(commits, samples, missed)


def registered_library(data_dir: Path, total: int) -> tuple[int, int]:
    """Store `total` bytes of random files through the blob store and the library service; return (files, bytes)."""
    instance = make_instance(data_dir)
    services = build_services(settings_for(data_dir, data_dir.parent / "unused"))
    files = stored = 0
    try:
        while stored < total:
            for largest in FILE_SIZES:
                size = min(largest, total - stored)
                if size <= 0:
                    break
                writer = services.blobs.writer()
                for offset in range(0, size, MiB):
                    writer.write(os.urandom(min(MiB, size - offset)))
                blob = writer.commit()
                with unit_of_work(services.write_sessions) as db:
                    user = db.scalars(select(User)).one()
                    add_file(
                        db,
                        principal=Principal(user=user),
                        folder_id=instance.root_folder_id,
                        name=f"material-{files:04d}.bin",
                        blob=blob,
                        content_type="application/octet-stream",
                        now=services.clock.now(),
                    )
                files += 1
                stored += size
    finally:
        services.engine.dispose()
    return files, stored


def timed_command(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)  # noqa: S603 - our own argv
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with status {done.returncode}: {done.stderr or done.stdout}")
    return time.monotonic() - started


@dataclass(frozen=True)
class TransferResult:
    files: int
    library_bytes: int  # blobs plus the database file
    backup_seconds: float
    restore_seconds: float


def measure_transfer(tmp: Path, *, gib: float) -> TransferResult:
    data_dir = tmp / "library"
    files, blob_bytes = registered_library(data_dir, int(gib * 1024**3))
    library_bytes = blob_bytes + (data_dir / backup.DATABASE_FILE).stat().st_size
    env = {
        "STUDYSHELF_DATA_DIR": str(data_dir),
        "STUDYSHELF_SECRET_KEY": SECRET_KEY,
        "STUDYSHELF_ENVIRONMENT": "production",
        "STUDYSHELF_BASE_URL": "http://127.0.0.1",
        "STUDYSHELF_BACKUP_URL": str(tmp / "library-backup"),
    }
    os.sync()  # the library's own write-back must not be charged to the backup
    backup_seconds = timed_command([str(STUDYSHELF), "backup", "create"], env)
    os.sync()
    restored = tmp / "restored"
    restore_seconds = timed_command([str(STUDYSHELF), "backup", "restore", "--latest", "--to", str(restored)], env)
    held = sum(path.stat().st_size for path in (restored / "blobs").rglob("*") if path.is_file())
    if held != blob_bytes:
        raise RuntimeError(f"the restore holds {held} blob bytes, the library {blob_bytes}")
    return TransferResult(files, library_bytes, backup_seconds, restore_seconds)


def report_lag(result: LagResult, *, seconds: float, rate: float) -> None:
    samples = result.samples
    p99 = percentile(samples, 0.99)
    verdict = "met" if p99 <= LAG_TARGET_P99 else "NOT met"
    print(
        f"\nReplication lag: {result.commits} commits in {seconds:.0f} s ({result.commits / seconds:.0f}/s, "
        f"asked {rate:.0f}/s), {len(samples)} samples every {POLL_SECONDS * 1000:.0f} ms, {result.missed} missed"
    )
    print(
        f"  p50 {percentile(samples, 0.5):.2f} s  p95 {percentile(samples, 0.95):.2f} s  p99 {p99:.2f} s  "
        f"max {max(samples):.2f} s  mean {statistics.fmean(samples):.2f} s   p99 <= {LAG_TARGET_P99} s: {verdict}"
    )


def report_transfer(result: TransferResult) -> None:
    megabytes = result.library_bytes / 1e6
    print(f"\nLibrary: {result.files} files, {result.library_bytes / 1024**3:.2f} GiB ({megabytes:,.0f} MB)")
    print(f"  backup create:            {result.backup_seconds:6.1f} s  {megabytes / result.backup_seconds:6.0f} MB/s")
    print(
        f"  backup restore --latest:  {result.restore_seconds:6.1f} s  {megabytes / result.restore_seconds:6.0f} MB/s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the writer commits (default 30)")
    parser.add_argument("--rate", type=float, default=200.0, help="commits per second (default 200)")
    parser.add_argument("--gib", type=float, default=2.0, help="size of the library to back up (default 2)")
    parser.add_argument("--only", choices=("lag", "transfer"), help="run one of the two measurements")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-backup-"))
    started = time.monotonic()
    try:
        if args.only != "transfer":
            with Processes() as procs:
                lag = measure_lag(tmp, procs, seconds=args.seconds, rate=args.rate)
            report_lag(lag, seconds=args.seconds, rate=args.rate)
        if args.only != "lag":
            report_transfer(measure_transfer(tmp, gib=args.gib))
        print(f"({time.monotonic() - started:.0f} s)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
