"""`studyshelf backup …`: continuous replication, on-demand points, checks, restores and pruning."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from studyshelf.core.clock import SystemClock
from studyshelf.core.errors import Invalid
from studyshelf.ops import backup, backup_health, backup_pg, backup_restore, litestream, pgbackrest
from studyshelf.ops.backup_follow import BlobFollower, follow_until
from studyshelf.ops.backup_store import Progress as Advance
from studyshelf.services import Services, command_services
from studyshelf.settings import Settings

app = typer.Typer(
    help="Backups: Litestream (SQLite) or pgBackRest (PostgreSQL), blobs by hash; verify, restore, prune.",
    no_args_is_help=True,
)
console = Console()


@contextmanager
def _bar(description: str, *, steps: bool = False) -> Iterator[tuple[Advance, backup.Sizing]]:
    """A progress bar in bytes, or in steps (M of N): yields (advance, set_total)."""
    amount = MofNCompleteColumn() if steps else DownloadColumn()
    columns = (TextColumn("{task.description}"), BarColumn(), amount, TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield (lambda n: bar.advance(task, n)), (lambda total: bar.update(task, total=total))


def _when(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a time: use ISO 8601, e.g. 2026-01-31T12:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("replicate")
def replicate() -> None:
    """Run Litestream in the foreground (what `make run` starts beside serve) and copy new blobs as they come.

    Blobs of new file versions are copied within about a second (STUDYSHELF_BACKUP_SYNC_INTERVAL_SECONDS), and
    every STUDYSHELF_BACKUP_BLOB_SYNC_SECONDS the whole store is checked and a blob manifest written.
    On PostgreSQL, the cluster's archive_command ships the WAL to pgBackRest: this copies the blobs only.
    """
    with command_services() as services, backup.replicator_lock(services.settings):
        settings = services.settings
        location = backup.location_of(settings)
        location.prepare()
        backup.keep_install_secret(settings, location)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        following = threading.Thread(
            target=follow_until,
            args=(BlobFollower(services, location, report=_report_blob_failure), stop),
            kwargs={"every": settings.backup_sync_interval_seconds, "report": _report_blob_failure},
            name="blob-follower",
            daemon=True,
        )
        following.start()
        if backup.uses_pgbackrest(settings):
            console.print(f"Copying new blobs to {location.describe}.")
            _sync_blobs_until(services, stop, lambda: True)
            following.join()
            return
        config = litestream.write_config(settings, location.replica)
        console.print(f"Replicating {litestream.database_path(settings)} to {location.describe}.")
        child = subprocess.Popen(  # noqa: S603 - our argv, no shell
            litestream.replicate_command(config), env=litestream.environment(settings)
        )
        _sync_blobs_until(services, stop, lambda: child.poll() is None)
        stopped = stop.is_set()
        stop.set()
        following.join()
        if child.poll() is None:
            child.terminate()
        code = child.wait()
    raise typer.Exit(code=0 if stopped else code)


def _report_blob_failure(exc: Exception) -> None:
    console.print(f"[yellow]Blob backup failed, retrying: {exc}[/yellow]")


def _sync_blobs_until(services: Services, stop: threading.Event, running: Callable[[], bool]) -> None:
    """Check every blob and write a blob manifest every STUDYSHELF_BACKUP_BLOB_SYNC_SECONDS, until stopped."""
    while not stop.is_set() and running():
        try:
            backup.sync_blobs(services)
        except (OSError, Invalid) as exc:  # a full or unreachable location: say so, keep trying
            _report_blob_failure(exc)
        stop.wait(services.settings.backup_blob_sync_seconds)


@app.command("create")
def create(
    kind: Annotated[
        pgbackrest.BackupType, typer.Option("--type", help="PostgreSQL: a full or a differential pgBackRest backup.")
    ] = pgbackrest.BackupType.FULL,
) -> None:
    """Write a consistent point now: a snapshot (SQLite) or a pgBackRest backup (PostgreSQL), and copy new blobs."""
    with command_services() as services:
        if backup.uses_pgbackrest(services.settings):
            with console.status(f"pgBackRest {kind} backup"):
                label = backup_pg.create(services, kind)
            console.print(f"[green]Created pgBackRest {kind} backup {label}.[/green]")
            return
    with command_services() as services, _bar("Copying blobs") as (advance, sizing):
        identifier = backup.create_point(services, progress=advance, sizing=sizing)
    console.print(f"[green]Created backup point {identifier}.[/green]")


@app.command("list")
def list_command() -> None:
    """List what can be restored: Litestream's range and the snapshot points."""
    settings = Settings()
    table = Table("kind", "point", "oldest", "newest", "size (bytes)")
    with console.status("Reading the backup location"):  # quick on disk; on S3 a few listings
        points = backup_pg.list_points(settings) if backup.uses_pgbackrest(settings) else backup.list_points(settings)
    for point in points:
        table.add_row(point.kind, point.name, _when(point.oldest), _when(point.newest), f"{point.size:,}")
    console.print(table)


@app.command("status")
def status_command() -> None:
    """Last replicated position, lag, oldest restorable point, size; says when the location is unusable."""
    with command_services() as services, console.status("Reading the backup location and the replica position"):
        state = backup_health.current_status(services, services.clock.now())
    if state.problem:
        console.print(f"[red]Backup location {state.location}: {state.problem}[/red] (serving is not affected)")
    free = f", {state.free:,} free" if state.free else ""  # S3 has no free space to tell
    console.print(f"location: {state.location} ({state.size:,} bytes{free})")
    if state.replicated_at is None:
        console.print("replicated: nothing yet (is `studyshelf backup replicate` or archive_command running?)")
    else:
        console.print(f"replicated: {state.replicated} at {_when(state.replicated_at)}")
    if state.lag_seconds is not None:
        console.print(f"lag: {state.lag_seconds:.1f} s")
    oldest = _when(state.oldest_restorable) if state.oldest_restorable else "none"
    console.print(f"oldest restorable point: {oldest}")
    if state.problem:
        raise typer.Exit(code=1)


@app.command("verify")
def verify(
    point: Annotated[str | None, typer.Argument(help="A point id from `backup list` (default: the newest).")] = None,
) -> None:
    """Check every checksum: a snapshot point (SQLite) or pgBackRest's repository (PostgreSQL), and the blobs.

    The result is recorded in the backup location; the Backups page shows it.
    """
    settings = Settings()
    if backup.uses_pgbackrest(settings):
        chosen = f"pgBackRest stanza {settings.backup_pgbackrest_stanza}"
        with _bar(f"Verifying {chosen}") as (advance, _):
            problems = backup_pg.verify(settings, progress=advance)
    else:
        ids = backup.location_of(settings).point_ids()
        chosen = point or (ids[-1] if ids else "")
        if not chosen:
            raise Invalid("no snapshot points to verify: run `studyshelf backup create` first")
        with _bar(f"Verifying {chosen}") as (advance, _):
            problems = backup_restore.verify_point(settings, chosen, progress=advance)
    backup_health.record_verify(settings, what=chosen, problems=problems, at=SystemClock().now())
    for problem in problems:
        console.print(f"[red]{problem}[/red]", highlight=False)
    if problems:
        raise typer.Exit(code=1)
    console.print(f"[green]{chosen}: every checksum matches.[/green]")


@app.command("restore")
def restore(
    to: Annotated[
        Path,
        typer.Option("--to", help="A new or empty directory: becomes a data dir (PostgreSQL: cluster in postgresql/)."),
    ],
    at: Annotated[str | None, typer.Option("--at", help="The time to go back to (ISO 8601, UTC if no zone).")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="The newest point there is.")] = False,
) -> None:
    """Restore the database and its blobs into an empty directory, never over a live one."""
    if (at is None) == (not latest):
        raise typer.BadParameter("give exactly one of --at TIME or --latest")
    wanted = _parse_time(at) if at else None
    settings = Settings()
    with _bar("Restoring") as (advance, sizing):
        if backup.uses_pgbackrest(settings):
            done = backup_pg.restore(
                settings, target=to, at=wanted, now=SystemClock().now(), progress=advance, sizing=sizing
            )
        else:
            done = backup_restore.restore(settings, target=to, at=wanted, progress=advance, sizing=sizing)
    position = f" (txid {done.txid:x})" if done.txid is not None else ""
    console.print(f"[green]Restored the database as of {_when(done.as_of)}[/green] from {done.source}{position}.")
    if done.source == "pgbackrest":
        console.print(f"Cluster: {to / backup_pg.CLUSTER_DIR}; start it on a spare port with archive_mode=off first.")
    extras = f"from point {done.extras_from}" if done.extras_from else "none (no snapshot point at or before)"
    console.print(f"Blobs: {done.blobs} restored. Warehouse and event spool: {extras}.")
    if done.missing_blobs:
        console.print(f"[yellow]{len(done.missing_blobs)} blobs are not in the backup:[/yellow]")
        for digest in done.missing_blobs:
            console.print(f"  {digest}")


@app.command("prune")
def prune() -> None:
    """Drop points older than the retention (PostgreSQL: pgBackRest's expire), and blobs no point references."""
    settings = Settings()
    with _bar("Pruning", steps=True) as (advance, sizing):
        now = SystemClock().now()
        if backup.uses_pgbackrest(settings):
            done = backup_pg.expire(settings, now=now, progress=advance, sizing=sizing)
        else:
            done = backup_restore.prune(settings, now=now, progress=advance, sizing=sizing)
    console.print(
        f"Pruned {done.points} points, {done.blob_manifests} blob manifests and {done.blobs} unreferenced blobs."
    )
