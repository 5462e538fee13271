"""`studyshelf backup …`: continuous replication, on-demand points, checks, restores and pruning."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from studyshelf.core.clock import SystemClock
from studyshelf.core.errors import Invalid
from studyshelf.ops import backup, backup_restore, litestream
from studyshelf.ops.backup_store import Progress as Advance
from studyshelf.services import command_services
from studyshelf.settings import Settings

app = typer.Typer(help="Backups: Litestream replication, snapshots, verify, restore, prune.", no_args_is_help=True)
console = Console()


@contextmanager
def _bytes_bar(description: str) -> Iterator[tuple[Advance, backup.Sizing]]:
    """A progress bar in bytes: yields (advance, set_total)."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
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
    """Run Litestream in the foreground (what `make run` starts beside serve) and copy new blobs periodically."""
    with command_services() as services:
        settings = services.settings
        location = backup.location_of(settings)
        location.prepare()
        backup.keep_install_secret(settings, location)
        config = litestream.write_config(settings, location.replica)
        console.print(f"Replicating {litestream.database_path(settings)} to {location.replica}.")
        child = subprocess.Popen(litestream.replicate_command(config))  # noqa: S603 - our argv, no shell
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.is_set() and child.poll() is None:
            try:
                backup.sync_blobs(services)
            except (OSError, Invalid) as exc:  # a full or unreachable location: say so, keep trying
                console.print(f"[yellow]Blob backup failed, retrying: {exc}[/yellow]")
            stop.wait(settings.backup_blob_sync_seconds)
        if child.poll() is None:
            child.terminate()
        code = child.wait()
    raise typer.Exit(code=0 if stop.is_set() else code)


@app.command("create")
def create() -> None:
    """Write a consistent snapshot point now: database (SQLite backup API), warehouse, spool, blob manifest."""
    with command_services() as services, _bytes_bar("Copying blobs") as (advance, sizing):
        identifier = backup.create_point(services, progress=advance, sizing=sizing)
    console.print(f"[green]Created backup point {identifier}.[/green]")


@app.command("list")
def list_command() -> None:
    """List what can be restored: Litestream's range and the snapshot points."""
    table = Table("kind", "point", "oldest", "newest", "size (bytes)")
    for point in backup.list_points(Settings()):
        table.add_row(point.kind, point.name, _when(point.oldest), _when(point.newest), f"{point.size:,}")
    console.print(table)


@app.command("status")
def status_command() -> None:
    """Last replicated position, lag, oldest restorable point, size; says when the location is unusable."""
    settings = Settings()
    state = backup.status(settings, now=SystemClock().now())
    if state.problem:
        console.print(f"[red]Backup location {state.location}: {state.problem}[/red] (serving is not affected)")
    console.print(f"location: {state.location} ({state.size:,} bytes, {state.free:,} free)")
    if state.replicated_at is None:
        console.print("replicated: nothing yet (is `studyshelf backup replicate` running?)")
    else:
        console.print(f"replicated: txid {state.replicated_txid:x} at {_when(state.replicated_at)}")
        console.print(f"lag: {state.lag_seconds:.1f} s")
    oldest = _when(state.oldest_restorable) if state.oldest_restorable else "none"
    console.print(f"oldest restorable point: {oldest}")
    if state.problem:
        raise typer.Exit(code=1)


@app.command("verify")
def verify(
    point: Annotated[str | None, typer.Argument(help="A point id from `backup list` (default: the newest).")] = None,
) -> None:
    """Check every checksum of a point: its database (and SQLite's integrity check), warehouse, spool and blobs."""
    settings = Settings()
    ids = backup.location_of(settings).point_ids()
    chosen = point or (ids[-1] if ids else None)
    if chosen is None:
        raise Invalid("no snapshot points to verify: run `studyshelf backup create` first")
    with _bytes_bar(f"Verifying {chosen}") as (advance, _):
        problems = backup_restore.verify_point(settings, chosen, progress=advance)
    for problem in problems:
        console.print(f"[red]{problem}[/red]", highlight=False)
    if problems:
        raise typer.Exit(code=1)
    console.print(f"[green]Backup point {chosen}: every checksum matches.[/green]")


@app.command("restore")
def restore(
    to: Annotated[Path, typer.Option("--to", help="A new or empty directory: becomes a data dir.")],
    at: Annotated[str | None, typer.Option("--at", help="The time to go back to (ISO 8601, UTC if no zone).")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="The newest point there is.")] = False,
) -> None:
    """Restore the database and its blobs into an empty directory, never over a live one."""
    if (at is None) == (not latest):
        raise typer.BadParameter("give exactly one of --at TIME or --latest")
    wanted = _parse_time(at) if at else None
    with _bytes_bar("Restoring") as _:
        done = backup_restore.restore(Settings(), target=to, at=wanted)
    position = f" (txid {done.txid:x})" if done.txid is not None else ""
    console.print(f"[green]Restored the database as of {_when(done.as_of)}[/green] from {done.source}{position}.")
    extras = f"from point {done.extras_from}" if done.extras_from else "none (no snapshot point at or before)"
    console.print(f"Blobs: {done.blobs} restored. Warehouse and event spool: {extras}.")
    if done.missing_blobs:
        console.print(f"[yellow]{len(done.missing_blobs)} blobs are not in the backup:[/yellow]")
        for digest in done.missing_blobs:
            console.print(f"  {digest}")


@app.command("prune")
def prune() -> None:
    """Drop points older than the retention, and blobs that no retained point references."""
    settings = Settings()
    with _bytes_bar("Pruning") as _:
        done = backup_restore.prune(settings, now=SystemClock().now())
    console.print(
        f"Pruned {done.points} points, {done.blob_manifests} blob manifests and {done.blobs} unreferenced blobs."
    )
