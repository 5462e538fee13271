"""pgBackRest (Debian's package): WAL archiving and backups of the PostgreSQL app database.

PostgreSQL's `archive_command` pushes every WAL segment to pgBackRest's repository (a directory or S3, set in
its config file; deploy/pgbackrest holds the reference). StudyShelf runs the binary for backups, info,
verify, restore and expire; this module is the only one that knows its command line and its JSON output.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from studyshelf.core.errors import Invalid
from studyshelf.settings import Settings

COMMAND_TIMEOUT = 6 * 3600.0  # a full backup of a large cluster takes hours
INFO_TIMEOUT = 30.0


class PgBackRestError(Invalid):
    """pgBackRest refused or failed; the detail carries its own message."""


class BackupType(StrEnum):
    FULL = "full"
    DIFF = "diff"


@dataclass(frozen=True, slots=True)
class PgBackup:
    """One backup in the repository: restorable from `stopped_at` on (WAL replays it forward)."""

    label: str
    type: str  # full, diff or incr
    started_at: datetime
    stopped_at: datetime
    size: int  # in the repository (compressed)
    wal_start: str
    wal_stop: str


@dataclass(frozen=True, slots=True)
class StanzaInfo:
    status: str  # "ok" or pgBackRest's message ("no valid backups", "missing stanza path", …)
    backups: tuple[PgBackup, ...]  # oldest first
    wal_min: str | None
    wal_max: str | None  # the newest WAL segment archived


def _base(settings: Settings) -> list[str]:
    return [
        *settings.backup_pgbackrest_command,
        f"--config={settings.backup_pgbackrest_config}",
        f"--stanza={settings.backup_pgbackrest_stanza}",
    ]


def _run(settings: Settings, args: list[str], *, timeout: float = COMMAND_TIMEOUT) -> str:
    argv = [*_base(settings), "--log-level-console=error", *args]
    try:
        done = subprocess.run(  # noqa: S603 - argv from settings and our own arguments, never a shell
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PgBackRestError(f"pgbackrest {args[-1]} took longer than {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise PgBackRestError(f"pgbackrest is not installed ({argv[0]}): apt-get install pgbackrest") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        raise PgBackRestError(f"pgbackrest {args[-1]} failed (exit {done.returncode}): {message}")
    return done.stdout


def _when(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _backup(row: dict[str, Any]) -> PgBackup:
    return PgBackup(
        label=row["label"],
        type=row["type"],
        started_at=_when(row["timestamp"]["start"]),
        stopped_at=_when(row["timestamp"]["stop"]),
        size=int(row["info"]["repository"]["delta"]),
        wal_start=row["archive"]["start"],
        wal_stop=row["archive"]["stop"],
    )


def info(settings: Settings, *, timeout: float = INFO_TIMEOUT) -> StanzaInfo:
    """The stanza's backups and archived WAL range (`pgbackrest info`)."""
    stanzas = json.loads(_run(settings, ["--output=json", "info"], timeout=timeout))
    if not stanzas:
        return StanzaInfo(f"no stanza {settings.backup_pgbackrest_stanza}", (), None, None)
    stanza = stanzas[0]
    archives = stanza.get("archive") or []
    backups = tuple(_backup(row) for row in stanza.get("backup") or [] if not row.get("error"))
    return StanzaInfo(
        status=str(stanza["status"]["message"]),
        backups=backups,
        wal_min=min((a["min"] for a in archives if a.get("min")), default=None),
        wal_max=max((a["max"] for a in archives if a.get("max")), default=None),
    )


def create_stanza(settings: Settings) -> None:
    """Create the stanza (once, on a new cluster) and check that archiving reaches the repository."""
    _run(settings, ["stanza-create"])
    _run(settings, ["check"])


def backup(settings: Settings, kind: BackupType) -> str:
    """Take a full or differential backup; return its label."""
    _run(settings, [f"--type={kind}", "backup"])
    return info(settings).backups[-1].label


def verify(settings: Settings) -> list[str]:
    """Check every file of the repository (backups and WAL) against its checksum; return each failure."""
    try:
        _run(settings, ["verify"])
    except PgBackRestError as exc:
        return [line for line in str(exc).splitlines() if line.strip()]
    return []


def restore(settings: Settings, *, target: Path, at: datetime | None) -> None:
    """Restore into `target` (a new data directory) as of `at`, or to the end of the archived WAL."""
    args = [f"--pg1-path={target}"]
    if at is not None:
        stamp = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        args += ["--type=time", f"--target={stamp}", "--target-action=promote"]
    _run(settings, [*args, "restore"])


def expire(settings: Settings) -> None:
    """Drop backups and WAL beyond the repository's retention (repo1-retention-full in its config)."""
    _run(settings, ["expire"])
